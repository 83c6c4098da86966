//! `convert [-f fmt] [-O fmt] [-o opts] [-n] [-p] [-q] [-S size] [-m N] [-W] [-c]
//! [-B backing] [-l snapshot] [--target-is-zero] [-t cache] [-T cache] [-U] src... dst`

use std::sync::Arc;

use anyhow::bail;

use crate::block::BlockDriver;
use crate::block::options::Options;
use crate::block::snapshot::SnapshotSelector;
use crate::cli::ConvertArgs;
use crate::commands::Console;
use crate::convert::{self, ConvertOptions, progress::Progress};
use crate::open::create::{self, CreateRequest};
use crate::open::format::Format;
use crate::open::{OpenOptions, open_image};
use crate::size::parse_size;

/// qemu-img's limit on `-S`: 512-byte multiples up to 16 MiB (32768 sectors).
const MAX_SPARSE: u64 = 32768 * 512;

/// Chunks in flight without `-m`. Measured on the benchmark (bluestore, 2
/// cores): throughput into RBD and local files is flat from 2 to 8, while
/// each slot costs about 4 MiB (6 MiB with librados' copy), so 4 keeps peak
/// memory below qemu-img's default at the same speed.
const DEFAULT_PARALLEL: u64 = 4;

pub const CACHE_MODES: &[&str] = &["none", "writeback", "unsafe", "directsync", "writethrough"];

pub fn run(a: ConvertArgs, console: &Console) -> anyhow::Result<i32> {
    let parallel = match a.parallel.as_deref() {
        None => DEFAULT_PARALLEL,
        Some(text) => match parse_size(text) {
            Ok(n @ 1..=16) => n,
            Ok(_) => bail!("Invalid number of coroutines specified. Must be between 1 and 16."),
            Err(_) => bail!("Invalid number of coroutines specified: '{text}'."),
        },
    };
    let sparse_size = match a.sparse_size.as_deref() {
        None => 4096,
        Some(text) => sparse_size(text)?,
    };
    for mode in [&a.cache, &a.source_cache].into_iter().flatten() {
        if !CACHE_MODES.contains(&mode.as_str()) {
            bail!("Invalid cache option: {mode}");
        }
    }
    if a.target_is_zero && !a.no_create {
        bail!("--target-is-zero requires use of -n flag");
    }
    if a.target_image_opts && !a.no_create {
        bail!("--target-image-opts requires use of -n flag");
    }
    let options = Options::parse(&a.options)?;
    let out_format = Format::for_output(&a.output_format)?;
    if options.wants_help() {
        let target = a.args.last().map(String::as_str).unwrap_or("");
        let location = crate::open::ImageSpec::parse(target, false)?.location;
        let descs = out_format.create_options(crate::open::create::storage_of(&location));
        crate::commands::print(&crate::block::options::help_text(None, &descs))?;
        return Ok(0);
    }
    if a.compress && !out_format.supports_compression() {
        bail!("Compression not supported for this file format");
    }
    if a.backing.is_some() && !out_format.supports_backing() {
        bail!(
            "Backing file not supported for file format '{}'",
            out_format.name()
        );
    }
    if a.backing.is_some() && a.no_create {
        bail!("-B makes no sense when -n is used");
    }
    let backing_named = a.backing.is_some() || options.get("backing_file").is_some();
    if backing_named && a.backing_format.is_none() && options.get("backing_fmt").is_none() {
        bail!("Use of backing file requires explicit backing format");
    }
    let Some((target_name, source_names)) = a.args.split_last().filter(|(_, s)| !s.is_empty())
    else {
        bail!("Must specify image file name");
    };
    if a.snapshot.is_some() && source_names.len() > 1 {
        bail!("No support for concatenating multiple snapshot");
    }
    if (a.backing.is_some() || options.get("backing_file").is_some()) && source_names.len() > 1 {
        bail!(
            "Having a backing file for the target makes no sense when concatenating multiple input images"
        );
    }

    let source_opts = OpenOptions {
        format: a.format.clone(),
        writable: false,
        force_share: a.force_share,
        image_opts: a.image_opts,
        diagnostics: console.diagnostics(),
        ..Default::default()
    };
    let mut sources: Vec<Arc<dyn BlockDriver>> = Vec::new();
    for name in source_names {
        sources.push(open_image(name, &source_opts)?);
    }
    if let Some(param) = &a.snapshot {
        sources[0] = open_snapshot(&sources[0], param)?;
    }
    let total: u64 = sources.iter().map(|s| s.size()).sum();

    if !a.no_create {
        let request = CreateRequest {
            filename: target_name.clone(),
            format: a.output_format.clone(),
            options,
            size: Some(total),
            backing: a.backing.clone(),
            backing_format: a.backing_format.clone(),
            // convert names the backing file without opening it.
            unsafe_backing: true,
            diagnostics: console.diagnostics(),
        };
        let plan = create::plan(&request)?;
        create::execute_as(
            &plan,
            &format!("error while converting {}", out_format.name()),
        )?;
    }
    let target_opts = OpenOptions {
        format: if a.target_image_opts {
            None
        } else {
            Some(out_format.name().to_string())
        },
        writable: true,
        force_share: false,
        image_opts: a.target_image_opts,
        diagnostics: console.diagnostics(),
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
        target_is_zero: (!a.no_create && a.backing.is_none()) || a.target_is_zero,
        keep_backing_unallocated: a.backing.is_some(),
        parallel: parallel as usize,
        out_of_order: a.out_of_order,
        compress_unit: if a.compress {
            target.allocation_unit()
        } else {
            None
        },
    };
    let progress = Progress::new(total, a.progress && !a.quiet);
    convert::convert(&sources, target.as_ref(), &opts, &progress)?;
    // qemu-img's default target cache mode is "unsafe": no final flush.
    if a.cache.as_deref().unwrap_or("unsafe") != "unsafe" {
        target.flush()?;
    }
    Ok(0)
}

/// `cvtnum("buffer size for sparse output")` plus qemu-img's alignment rule.
fn sparse_size(text: &str) -> anyhow::Result<u64> {
    let Ok(n) = parse_size(text) else {
        bail!("Invalid buffer size for sparse output specified: '{text}'.");
    };
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
