//! `convert [-f fmt] [-O fmt] [-o opts] [-n] [-p] [-q] [-S size] [-m N] [-W] [-c]
//! [-B backing] [-l snapshot] [--target-is-zero] [-t cache] [-T cache] [-U] src... dst`

use std::sync::Arc;

use anyhow::bail;

use crate::cli::ConvertArgs;
use crate::commands::{cvtnum, is_cache_mode};
use crate::convert::{self, ConvertOptions, progress::Progress};
use crate::formats::{Format, Lookup};
use crate::image::BlockDriver;
use crate::image::create::{self, CreateRequest};
use crate::image::open::{OpenOptions, open_image};
use crate::image::options::Options;
use crate::image::snapshot::SnapshotSelector;

/// qemu-img's limit on `-S`: 512-byte multiples up to 16 MiB (32768 sectors).
const MAX_SPARSE: u64 = 32768 * 512;

/// Chunks in flight without `-m`. Measured on the benchmark (bluestore, 2
/// cores): throughput into RBD and local files is flat from 2 to 8, while
/// each slot costs about 4 MiB (6 MiB with librados' copy), so 4 keeps peak
/// memory below qemu-img's default at the same speed.
const DEFAULT_PARALLEL: u64 = 4;

/// Checks run in qemu-img's order, so that the first complaint is the one
/// qemu-img makes: option values as getopt meets them, then combinations,
/// then the sources, then the target's format and options.
pub fn run(a: ConvertArgs) -> anyhow::Result<i32> {
    let parallel = match a.parallel.as_deref() {
        None => DEFAULT_PARALLEL,
        Some(text) => cvtnum("number of coroutines", text, 1, 16)?,
    };
    let sparse_size = match a.sparse_size.as_deref() {
        None => 4096,
        Some(text) => sparse_size(text)?,
    };
    let options = Options::parse(&a.options)?;
    if a.target_image_opts && !a.no_create {
        bail!("--target-image-opts requires use of -n flag");
    }
    if a.no_create && !a.options.is_empty() {
        bail!("-o has no effect when skipping image creation");
    }
    if a.target_is_zero && !a.no_create {
        bail!("--target-is-zero requires use of -n flag");
    }
    if options.wants_help() {
        let out_format = Format::for_output(&a.output_format)?;
        let target = a.args.last().map(String::as_str).unwrap_or("");
        let location = crate::image::spec::ImageSpec::parse(target, false)?.location;
        let mut descs = out_format.create_options(crate::image::create::storage_of(&location));
        descs.sort_by_key(|d| d.name);
        crate::commands::print(&crate::image::options::help_text(None, &descs))?;
        return Ok(0);
    }
    let Some((target_name, source_names)) = a.args.split_last().filter(|(_, s)| !s.is_empty())
    else {
        bail!("Must specify image file name");
    };
    if let Some(mode) = a.source_cache.as_ref().filter(|m| !is_cache_mode(m)) {
        bail!("Invalid source cache option: {mode}");
    }

    let source_opts = OpenOptions {
        format: a.format.clone(),
        writable: false,
        force_share: a.force_share,
        image_opts: a.image_opts,
        ..Default::default()
    };
    let mut sources: Vec<Arc<dyn BlockDriver>> = Vec::new();
    for name in source_names {
        sources.push(open_image(name, &source_opts)?);
    }
    if let Some(param) = &a.snapshot {
        if sources.len() > 1 {
            bail!("No support for concatenating multiple snapshot");
        }
        sources[0] = open_snapshot(&sources[0], param)?;
    }

    // With -n the target's format is only looked up when it is opened.
    let out_format = match a.no_create {
        false => Some(Format::for_output(&a.output_format)?),
        true => match Format::lookup(&a.output_format) {
            Lookup::Found(f) => Some(f),
            _ => None,
        },
    };
    let total: u64 = sources.iter().map(|s| s.size()).sum();
    let create_request = (!a.no_create).then(|| CreateRequest {
        filename: target_name.clone(),
        format: a.output_format.clone(),
        options: options.clone(),
        size: Some(total),
        backing: a.backing.clone(),
        backing_format: a.backing_format.clone(),
        // convert names the backing file without opening it.
        unsafe_backing: true,
    });
    if let Some(request) = &create_request {
        create::check_options(request)?;
    }
    let backing_file = a.backing.as_deref().or(options.get("backing_file"));
    if a.target_is_zero && backing_file.is_some() {
        bail!("Cannot use --target-is-zero when the destination image has a backing file");
    }
    if backing_file.is_some() && sources.len() > 1 {
        bail!(
            "Having a backing file for the target makes no sense when concatenating multiple input images"
        );
    }
    let backing_format = a.backing_format.as_deref().or(options.get("backing_fmt"));
    if !a.no_create && backing_file.is_some() && backing_format.is_none() {
        bail!("Use of backing file requires explicit backing format");
    }
    if a.compress {
        if out_format.is_some_and(|f| !f.supports_compression()) {
            bail!("Compression not supported for this file format");
        }
        if options.get("preallocation").is_some_and(|p| p != "off") {
            bail!("Compression and preallocation not supported at the same time");
        }
    }

    if let Some(request) = &create_request {
        let plan = create::plan(request)?;
        check_target_cache(&a)?;
        create::execute_as(
            &plan,
            &format!("error while converting {}", plan.format.name()),
        )?;
    } else {
        check_target_cache(&a)?;
    }

    let target_opts = OpenOptions {
        format: if a.target_image_opts {
            None
        } else {
            Some(a.output_format.clone())
        },
        writable: true,
        force_share: false,
        image_opts: a.target_image_opts,
        ..Default::default()
    };
    let target = open_image(target_name, &target_opts)?;
    if target.size() < total {
        bail!(
            "Target image size is smaller than the source ({} < {total})",
            target.size()
        );
    }
    let opts = ConvertOptions {
        sparse_size,
        // A new target reads as zeros unless a backing file shows through.
        target_is_zero: (!a.no_create && backing_file.is_none()) || a.target_is_zero,
        keep_backing_unallocated: backing_file.is_some(),
        parallel: parallel as usize,
        out_of_order: a.out_of_order,
        compress_unit: if a.compress {
            target.allocation_unit()
        } else {
            None
        },
    };
    check_allocation(&sources)?;
    let progress = Progress::new(total, a.progress && !a.quiet);
    convert::convert(&sources, target.as_ref(), &opts, &progress)?;
    // qemu-img's default target cache mode is "unsafe": no final flush.
    if a.cache.as_deref().unwrap_or("unsafe") != "unsafe" {
        target.flush()?;
    }
    Ok(0)
}

/// qemu-img walks the sources' allocation before it copies anything (to
/// count the sectors to copy), so a source whose metadata is corrupt fails
/// with the target created but nothing written to it. The walk reads only
/// metadata.
fn check_allocation(sources: &[Arc<dyn BlockDriver>]) -> anyhow::Result<()> {
    for source in sources {
        let size = source.size();
        let mut pos = 0;
        while pos < size {
            let extent = source.block_status(pos, size - pos).map_err(|e| {
                e.prepend(format!("error while reading block status at offset {pos}"))
            })?;
            pos += extent.len.max(1);
        }
    }
    Ok(())
}

/// `-t`: qemu-img checks it once the target's options are known.
fn check_target_cache(a: &ConvertArgs) -> anyhow::Result<()> {
    match a.cache.as_ref().filter(|m| !is_cache_mode(m)) {
        Some(mode) => bail!("Invalid cache option: {mode}"),
        None => Ok(()),
    }
}

/// `cvtnum("buffer size for sparse output")` plus qemu-img's alignment rule.
fn sparse_size(text: &str) -> anyhow::Result<u64> {
    let n = cvtnum("buffer size for sparse output", text, 0, i64::MAX as u64)?;
    if n % 512 != 0 || n > MAX_SPARSE {
        bail!(
            "Invalid buffer size for sparse output specified. Valid sizes are multiples of 512 up to {MAX_SPARSE}. \
             Select 0 to disable sparse detection (fully allocates output)."
        );
    }
    Ok(n)
}

fn open_snapshot(
    source: &Arc<dyn BlockDriver>,
    param: &str,
) -> anyhow::Result<Arc<dyn BlockDriver>> {
    let selector = SnapshotSelector::parse_convert_option(param).map_err(anyhow::Error::msg)?;
    let Some(list) = source.snapshots()? else {
        bail!(
            "Failed to load snapshot: Block format '{}' used by device '' does not support temporarily loading \
             internal snapshots",
            source.format_name()
        );
    };
    let Some(found) = selector.find(&list) else {
        bail!("Failed to load snapshot: Can't find snapshot");
    };
    Ok(source
        .snapshot_open(&found.id)
        .map_err(|e| e.prepend("Failed to load snapshot"))?)
}
