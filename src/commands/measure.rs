//! `measure [-f fmt | --image-opts] [-O fmt] [-o options] [-l snapshot]
//! [--output=human|json] [-U] (--size SIZE | filename)`
//!
//! The bytes a new image of format `-O` needs: for a given size, or to
//! hold a source image's contents (its allocation through its backing
//! chain, any storage). The arithmetic is the target format's; the
//! checks, their order and their messages are qemu-img's.

use std::sync::Arc;

use anyhow::bail;

use crate::block::BlockDriver;
use crate::block::driver_names;
use crate::block::measure::{Measure, MeasureSource};
use crate::block::options::Options;
use crate::cli::MeasureArgs;
use crate::commands::convert::{open_snapshot, snapshot_param};
use crate::commands::{Console, OutputFormat, cvtnum, output_format, print, reading};
use crate::convert::map::entry_at;
use crate::formats::{qcow2, raw};
use crate::open::format::{Format, Lookup, Storage};
use crate::open::open_image;
use crate::qjson;

pub fn run(a: MeasureArgs, console: &Console) -> anyhow::Result<i32> {
    let options = Options::parse(&a.options)?;
    let snapshot = a
        .snapshot
        .as_deref()
        .map(|param| snapshot_param(param, console))
        .transpose()?;
    let output = output_format("measure", &a.output)?;
    let size = a
        .size
        .as_deref()
        .map(|t| cvtnum("image size", t, 0, i64::MAX as u64))
        .transpose()?;
    let filename = match a.args.as_slice() {
        [] => None,
        [name] => Some(name.as_str()),
        _ => bail!("At most one filename argument is allowed."),
    };
    let named_source = a.image.image_opts || a.image.format.is_some() || snapshot.is_some();
    match (filename, size) {
        (None, _) if named_source => {
            bail!("--image-opts, -f, and -l require a filename argument.")
        }
        (Some(_), Some(_)) => bail!("--size N cannot be used together with a filename."),
        (None, None) => bail!("Either --size N or one filename must be specified."),
        _ => {}
    }
    let source = match filename {
        None => None,
        Some(name) => {
            let image = open_image(name, &reading(&a.image, a.share.force_share, console)?)?;
            Some(match &snapshot {
                Some(selector) => open_snapshot(&image, selector)?,
                None => image,
            })
        }
    };
    let target = &a.target_format;
    let format = match Format::lookup(target) {
        Lookup::Unknown => bail!("Unknown file format '{target}'"),
        _ if !driver_names::creates_images(target) => {
            bail!("Format driver '{target}' does not support image creation")
        }
        Lookup::Found(f @ (Format::Raw | Format::Qcow2)) => f,
        _ if target == "luks" => bail!("Parameter 'key-secret' is required for cipher"),
        _ => bail!("Block driver '{target}' does not support size measurement"),
    };
    let mut options = options;
    if let Err(e) = options.validate(&format.create_options(Storage::File)) {
        console.error(e);
        bail!("Invalid options for file format '{target}'");
    }
    if let Some(size) = size {
        options.set("size", size.to_string());
    }
    let measure = match format {
        Format::Qcow2 => match &source {
            None => qcow2::measure::measure(&options, None)?,
            Some(image) => {
                let mut status = |offset, len| {
                    let e = entry_at(image, offset, len)?;
                    Ok((e.zero, e.data && e.present, e.length))
                };
                let source = MeasureSource {
                    size: image.size(),
                    status: &mut status,
                    bitmaps: persistent_bitmaps(image)?,
                };
                qcow2::measure::measure(&options, Some(source))?
            }
        },
        _ => raw::measure(&options, source.as_ref().map(|image| image.size()))?,
    };
    print(&render(&measure, output))?;
    Ok(0)
}

fn render(measure: &Measure, output: OutputFormat) -> String {
    match output {
        OutputFormat::Human => measure.to_human(),
        OutputFormat::Json => format!("{}\n", qjson::to_pretty_string(&measure.to_json())),
    }
}

/// The source's persistent bitmaps (name, granularity), when its format
/// keeps them (qcow2 v3), as `info` describes them.
fn persistent_bitmaps(image: &Arc<dyn BlockDriver>) -> anyhow::Result<Option<Vec<(String, u64)>>> {
    if image.format_name() != "qcow2" {
        return Ok(None);
    }
    let info = image.info()?;
    let Some((_, data)) = &info.format_specific else {
        return Ok(None);
    };
    if data.get("compat").and_then(|c| c.as_str()) != Some("1.1") {
        return Ok(None);
    }
    let list = data
        .get("bitmaps")
        .and_then(|b| b.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|b| Some((b["name"].as_str()?.to_string(), b["granularity"].as_u64()?)))
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(list))
}
