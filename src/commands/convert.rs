//! `convert [-f fmt] [-O fmt] [-o opts] [-n] [-p] [-q] [-S size] [-m N] [-W] [-c]
//! [-B backing] [-l snapshot] [--target-is-zero] [-t cache] [-T cache] [-U] src... dst`

use std::sync::Arc;

use anyhow::bail;

use crate::block::BlockDriver;
use crate::block::options::{Options, help_text};
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

/// A convert job as the command line asks for it, validated before any
/// image is opened.
#[derive(Debug)]
struct ConvertConfig {
    sources: Vec<String>,
    target: String,
    /// `-f`, `-U`, `--image-opts` for the sources.
    source_format: Option<String>,
    force_share: bool,
    image_opts: bool,
    /// `-l`: the snapshot of the (single) source to convert.
    snapshot: Option<SnapshotSelector>,
    out_format: Format,
    /// `-o`, with `-B`/`-F` not yet merged in (`create::plan` does that).
    options: Options,
    /// `-n`: write into an existing target.
    no_create: bool,
    backing: Option<String>,
    backing_format: Option<String>,
    target_image_opts: bool,
    target_is_zero: bool,
    sparse_size: u64,
    parallel: usize,
    out_of_order: bool,
    compress: bool,
    progress: bool,
    /// Any target cache mode but "unsafe" flushes the target at the end.
    flush: bool,
}

/// What the command line asks for: a conversion, or `-o help`'s text.
enum Request {
    Convert(ConvertConfig),
    OptionHelp(String),
}

pub fn run(a: ConvertArgs, console: &Console) -> anyhow::Result<i32> {
    match validate(a, console)? {
        Request::OptionHelp(text) => {
            crate::commands::print(&text)?;
            Ok(0)
        }
        Request::Convert(config) => execute(&config, console),
    }
}

/// Checks the command line in qemu-img's order, with its messages.
fn validate(a: ConvertArgs, console: &Console) -> anyhow::Result<Request> {
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
    let snapshot = match &a.snapshot {
        None => None,
        Some(param) => match SnapshotSelector::parse_convert_option(param) {
            Ok(selector) => Some(selector),
            Err(e) => {
                // qemu-img reports the bad key, then the whole parameter.
                console.error(e);
                bail!("Failed in parsing snapshot param '{param}'");
            }
        },
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
        return Ok(Request::OptionHelp(help_text(None, &descs)));
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
    let Some((target, sources)) = a.args.split_last().filter(|(_, s)| !s.is_empty()) else {
        bail!("Must specify image file name");
    };
    if snapshot.is_some() && sources.len() > 1 {
        bail!("No support for concatenating multiple snapshot");
    }
    if backing_named && sources.len() > 1 {
        bail!(
            "Having a backing file for the target makes no sense when concatenating multiple input images"
        );
    }
    Ok(Request::Convert(ConvertConfig {
        sources: sources.to_vec(),
        target: target.clone(),
        source_format: a.image.format,
        force_share: a.image.force_share,
        image_opts: a.image.image_opts,
        snapshot,
        out_format,
        options,
        no_create: a.no_create,
        backing: a.backing,
        backing_format: a.backing_format,
        target_image_opts: a.target_image_opts,
        target_is_zero: a.target_is_zero,
        sparse_size,
        parallel: parallel as usize,
        out_of_order: a.out_of_order,
        compress: a.compress,
        progress: a.progress && !a.quiet.quiet,
        // qemu-img's default target cache mode is "unsafe": no final flush.
        flush: a.cache.as_deref().unwrap_or("unsafe") != "unsafe",
    }))
}

/// Opens the sources, creates the target unless `-n`, copies.
fn execute(c: &ConvertConfig, console: &Console) -> anyhow::Result<i32> {
    let source_opts = OpenOptions {
        format: c.source_format.clone(),
        writable: false,
        force_share: c.force_share,
        image_opts: c.image_opts,
        diagnostics: console.diagnostics(),
        ..Default::default()
    };
    let mut sources: Vec<Arc<dyn BlockDriver>> = Vec::new();
    for name in &c.sources {
        sources.push(open_image(name, &source_opts)?);
    }
    if let Some(selector) = &c.snapshot {
        sources[0] = open_snapshot(&sources[0], selector)?;
    }
    let total: u64 = sources.iter().map(|s| s.size()).sum();

    if !c.no_create {
        let request = CreateRequest {
            filename: c.target.clone(),
            format: c.out_format.name().to_string(),
            options: c.options.clone(),
            size: Some(total),
            backing: c.backing.clone(),
            backing_format: c.backing_format.clone(),
            // convert names the backing file without opening it.
            unsafe_backing: true,
            diagnostics: console.diagnostics(),
        };
        let plan = create::plan(&request)?;
        create::execute_as(
            &plan,
            &format!("error while converting {}", c.out_format.name()),
        )?;
    }
    let target_opts = OpenOptions {
        format: if c.target_image_opts {
            None
        } else {
            Some(c.out_format.name().to_string())
        },
        writable: true,
        force_share: false,
        image_opts: c.target_image_opts,
        diagnostics: console.diagnostics(),
        ..Default::default()
    };
    let target = open_image(&c.target, &target_opts)?;
    if target.size() < total {
        bail!(
            "Target image size is smaller than the source ({} < {total})",
            target.size()
        );
    }
    let opts = ConvertOptions {
        sparse_size: c.sparse_size,
        // A new target reads as zeros unless a backing file shows through.
        target_is_zero: (!c.no_create && c.backing.is_none()) || c.target_is_zero,
        keep_backing_unallocated: c.backing.is_some(),
        parallel: c.parallel,
        out_of_order: c.out_of_order,
        compress_unit: if c.compress {
            target.allocation_unit()
        } else {
            None
        },
    };
    let progress = Progress::new(total, c.progress);
    convert::convert(&sources, target.as_ref(), &opts, &progress)?;
    if c.flush {
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
    selector: &SnapshotSelector,
) -> anyhow::Result<Arc<dyn BlockDriver>> {
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
