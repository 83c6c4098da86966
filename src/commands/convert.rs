//! `convert [-f fmt] [-O fmt] [-o opts] [-n] [-p] [-q] [-S size] [-m N] [-W] [-c]
//! [-B backing] [-l snapshot] [--target-is-zero] [-t cache] [-T cache] [-U] src... dst`
//!
//! qemu-img checks a convert in three rounds, and so does this file, so that
//! when several things are wrong the first complaint is qemu-img's:
//!
//! ```text
//!   validate()          the command line alone: option values as getopt
//!                       meets them, then their combinations  -> ConvertConfig
//!   open the sources    (a missing source is reported before the rest),
//!                       load -l's snapshot (one source only)
//!   target_plan()       what needs the sources: the target's format, -o,
//!                       the backing file, -c, -t
//! ```

use std::sync::Arc;

use anyhow::bail;

use crate::block::BlockDriver;
use crate::block::diagnostics::{Diagnostic, Diagnostics};
use crate::block::extent::Allocation;
use crate::block::options::{Options, help_text};
use crate::block::snapshot::SnapshotSelector;
use crate::block::walk::Chain;
use crate::cli::ConvertArgs;
use crate::commands::progress::reporter;
use crate::commands::{Console, cvtnum, is_cache_mode};
use crate::convert::plan::salvaged_status;
use crate::convert::progress::{Progress, Report};
use crate::convert::{self, ConvertOptions};
use crate::open::create::{self, CreatePlan, CreateRequest};
use crate::open::format::{Format, Lookup};
use crate::open::{OpenOptions, open_image};

/// qemu-img's limit on `-S`: 512-byte multiples up to 16 MiB (32768 sectors).
const MAX_SPARSE: u64 = 32768 * 512;

/// Chunks in flight without `-m`. Measured on the benchmark (bluestore, 2
/// cores): throughput into RBD and local files is flat from 2 to 8, while
/// each slot costs about 4 MiB (6 MiB with librados' copy), so 4 keeps peak
/// memory below qemu-img's default at the same speed.
const DEFAULT_PARALLEL: u64 = 4;

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
    /// `-O` as given: qemu-img looks it up once the sources are open (and
    /// with `-n` only when it opens the target).
    out_format: String,
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
    quiet: bool,
    /// `--salvage`: unreadable source sectors become zeros and warnings.
    salvage: bool,
    /// `--bitmaps`, `--skip-broken-bitmaps`.
    bitmaps: bool,
    skip_broken_bitmaps: bool,
    /// `-t`: checked with the target's options.
    target_cache: Option<String>,
}

/// What the command line asks for: a conversion, or `-o help`'s text.
enum Request {
    Convert(Box<ConvertConfig>),
    OptionHelp(String),
}

pub fn run(a: ConvertArgs, console: &Console) -> anyhow::Result<i32> {
    match validate(a, console)? {
        Request::OptionHelp(text) => {
            crate::commands::print(&text)?;
            Ok(0)
        }
        Request::Convert(config) => {
            // From here on qemu-img reports progress, and ends the report
            // on every way out.
            let report = reporter(config.progress, 1.0);
            report.update(0.0);
            let code = execute(&config, console, &report);
            if code.is_ok() {
                report.update(100.0);
            }
            report.end();
            code
        }
    }
}

/// The checks qemu-img makes before it opens anything, in its order and
/// with its messages.
fn validate(a: ConvertArgs, console: &Console) -> anyhow::Result<Request> {
    let parallel = match a.parallel.as_deref() {
        None => DEFAULT_PARALLEL,
        Some(text) => cvtnum("number of coroutines", text, 1, 16)?,
    };
    let sparse_size = match a.sparse_size.as_deref() {
        None => 4096,
        Some(text) => sparse_size(text)?,
    };
    let snapshot = a
        .snapshot
        .as_deref()
        .map(|param| snapshot_param(param, console))
        .transpose()?;
    let options = Options::parse(&a.options)?;
    if a.skip_broken_bitmaps && !a.bitmaps {
        bail!("Use of --skip-broken-bitmaps requires --bitmaps");
    }
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
        let location = crate::open::spec::ImageSpec::parse(target, false)?.location;
        let descs = out_format.create_options(create::storage_of(&location));
        return Ok(Request::OptionHelp(help_text(None, &descs)));
    }
    let Some((target, sources)) = a.args.split_last().filter(|(_, s)| !s.is_empty()) else {
        bail!("Must specify image file name");
    };
    if let Some(mode) = a.source_cache.as_ref().filter(|m| !is_cache_mode(m)) {
        bail!("Invalid source cache option: {mode}");
    }
    Ok(Request::Convert(Box::new(ConvertConfig {
        sources: sources.to_vec(),
        target: target.clone(),
        source_format: a.image.format,
        force_share: a.share.force_share,
        image_opts: a.image.image_opts,
        snapshot,
        out_format: a.output_format,
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
        quiet: a.quiet.quiet,
        salvage: a.salvage,
        bitmaps: a.bitmaps,
        skip_broken_bitmaps: a.skip_broken_bitmaps,
        target_cache: a.cache,
    })))
}

impl ConvertConfig {
    /// The target's backing file, from `-B` or `-o backing_file`.
    fn backing_file(&self) -> Option<&str> {
        self.backing.as_deref().or(self.options.get("backing_file"))
    }

    /// The checks qemu-img makes once the sources are open and a snapshot
    /// of them loaded, in its order:
    /// what the target will be, and (without `-n`) how it is created.
    fn target_plan(
        &self,
        sources: &[Arc<dyn BlockDriver>],
        total: u64,
        diagnostics: Diagnostics,
    ) -> anyhow::Result<Option<CreatePlan>> {
        // With -n the target's format is only looked up when it is opened.
        let out_format = match self.no_create {
            false => Some(Format::for_output(&self.out_format)?),
            true => match Format::lookup(&self.out_format) {
                Lookup::Found(f) => Some(f),
                _ => None,
            },
        };
        let request = (!self.no_create).then(|| CreateRequest {
            filename: self.target.clone(),
            format: self.out_format.clone(),
            options: self.options.clone(),
            size: Some(total),
            backing: self.backing.clone(),
            backing_format: self.backing_format.clone(),
            // convert names the backing file without opening it.
            unsafe_backing: true,
            diagnostics,
        });
        if let Some(request) = &request {
            create::check_options(request)?;
        }
        let backing_file = self.backing_file();
        if self.target_is_zero && backing_file.is_some() {
            bail!("Cannot use --target-is-zero when the destination image has a backing file");
        }
        if backing_file.is_some() && sources.len() > 1 {
            bail!(
                "Having a backing file for the target makes no sense when concatenating multiple input images"
            );
        }
        let backing_format = self
            .backing_format
            .as_deref()
            .or(self.options.get("backing_fmt"));
        if !self.no_create && backing_file.is_some() && backing_format.is_none() {
            bail!("Use of backing file requires explicit backing format");
        }
        if self.compress {
            if out_format.is_some_and(|f| !f.supports_compression()) {
                bail!("Compression not supported for this file format");
            }
            let encrypted = self.options.get("encryption").is_some_and(|e| e != "off")
                || self.options.get("encrypt.format").is_some();
            if encrypted {
                bail!("Compression and encryption not supported at the same time");
            }
            if self
                .options
                .get("preallocation")
                .is_some_and(|p| p != "off")
            {
                bail!("Compression and preallocation not supported at the same time");
            }
        }
        if self.bitmaps {
            check_bitmaps(sources, self.skip_broken_bitmaps)?;
        }
        let plan = request.as_ref().map(create::plan).transpose()?;
        // qemu-img checks -t once the target's options are known.
        if let Some(mode) = self.target_cache.as_ref().filter(|m| !is_cache_mode(m)) {
            bail!("Invalid cache option: {mode}");
        }
        Ok(plan)
    }
}

/// Opens the sources, creates the target unless `-n`, copies.
fn execute(c: &ConvertConfig, console: &Console, report: &Arc<dyn Report>) -> anyhow::Result<i32> {
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
    if c.snapshot.is_some() && sources.len() > 1 {
        bail!("No support for concatenating multiple snapshot");
    }
    if let Some(selector) = &c.snapshot {
        sources[0] = open_snapshot(&sources[0], selector)?;
    }
    let total: u64 = sources.iter().map(|s| s.size()).sum();
    if let Some(plan) = c.target_plan(&sources, total, console.diagnostics())? {
        create::execute_as(
            &plan,
            &format!("error while converting {}", plan.format.name()),
        )?;
        // qemu-img opens the new target with the -o options raw does not
        // take: librbd's encryption options fail there, before anything
        // (plaintext) is written over the new LUKS header.
        if c.out_format == "raw" && c.options.get("encrypt.key-secret").is_some() {
            bail!(
                "Could not open '{}': Block format 'raw' does not support the option 'encrypt.key-secret'",
                c.target
            );
        }
    }
    let target_opts = OpenOptions {
        format: if c.target_image_opts {
            None
        } else {
            Some(c.out_format.clone())
        },
        writable: true,
        force_share: false,
        image_opts: c.target_image_opts,
        diagnostics: console.diagnostics(),
        // An encrypted target just made opens with the secret it was made with.
        created_key_secret: match c.out_format.as_str() {
            "luks" => c.options.get("key-secret"),
            "qcow2" => c.options.get("encrypt.key-secret"),
            _ => None,
        }
        .map(str::to_string),
        ..Default::default()
    };
    let target = open_image(&c.target, &target_opts)?;
    if target.size() < total {
        bail!(
            "Target image size is smaller than the source ({} < {total})",
            target.size()
        );
    }
    if c.bitmaps
        && !target
            .persistent_bitmaps()
            .is_some_and(|b| b.supports_persistence())
    {
        bail!(
            "Format driver '{}' does not support bitmaps",
            target.format_name()
        );
    }
    let backing_file = c.backing_file();
    // Salvage warnings go nowhere with -q.
    let salvage = c.salvage.then(|| match c.quiet {
        true => Diagnostics::default(),
        false => console.diagnostics(),
    });
    let opts = ConvertOptions {
        sparse_size: c.sparse_size,
        // A new target reads as zeros unless a backing file shows through.
        // A fresh LUKS volume reads as garbage: its zeros are written.
        target_is_zero: (!c.no_create && backing_file.is_none() && target.has_zero_init())
            || c.target_is_zero,
        keep_backing_unallocated: backing_file.is_some(),
        parallel: c.parallel,
        out_of_order: c.out_of_order,
        compress_unit: if c.compress {
            target.allocation_unit()
        } else {
            None
        },
        salvage: salvage.clone(),
        target_backing: backing_file.and(target.backing()),
    };
    let chain = if opts.keep_backing_unallocated {
        Chain::Keep
    } else {
        Chain::Resolve
    };
    let (data, backing) = check_allocation(&sources, chain, salvage.as_ref())?;
    let work = match (opts.keep_backing_unallocated, opts.sparse_size) {
        (_, 0) => total,
        (true, _) => data,
        (false, _) => data + backing,
    };
    let progress = Progress::new(work, report.clone());
    convert::convert(&sources, target.as_ref(), &opts, &progress)?;
    if c.bitmaps {
        copy_bitmaps(sources[0].as_ref(), target.as_ref(), console)?;
    }
    // qemu-img's default target cache mode is "unsafe": no final flush.
    if c.target_cache.as_deref().unwrap_or("unsafe") != "unsafe" {
        target.flush()?;
    }
    Ok(0)
}

/// qemu-img walks the sources' allocation before it copies anything (to
/// count the sectors to copy), so a source whose metadata is corrupt fails
/// with the target created but nothing written to it. The walk reads only
/// metadata, one step per extent; it counts the bytes stored in the
/// sources and in their backing chains. `--salvage` lookups that fail
/// are warned about here and count as data.
fn check_allocation(
    sources: &[Arc<dyn BlockDriver>],
    chain: Chain,
    salvage: Option<&Diagnostics>,
) -> anyhow::Result<(u64, u64)> {
    let (mut data, mut backing) = (0, 0);
    for source in sources {
        let size = source.size();
        let mut pos = 0;
        while pos < size {
            let (extent, warning) =
                salvaged_status(source.as_ref(), pos, size - pos, chain, salvage.is_some())
                    .map_err(|e| {
                        e.prepend(format!("error while reading block status at offset {pos}"))
                    })?;
            if let (Some(sink), Some(w)) = (salvage, warning) {
                sink.warning(w);
            }
            match extent.allocation {
                Allocation::Data => data += extent.len,
                Allocation::Backing => backing += extent.len,
                Allocation::Zero | Allocation::Unallocated => {}
            }
            pos = extent.end();
        }
    }
    Ok((data, backing))
}

/// `--bitmaps`: the single source must keep persistent bitmaps, and every
/// one must be consistent unless `--skip-broken-bitmaps` (looked at in
/// QEMU's order, the newest first).
fn check_bitmaps(sources: &[Arc<dyn BlockDriver>], skip_broken: bool) -> anyhow::Result<()> {
    if sources.len() > 1 {
        bail!("Copying bitmaps only possible with single source");
    }
    let Some(bitmaps) = sources[0]
        .persistent_bitmaps()
        .filter(|b| b.supports_persistence())
    else {
        bail!("Source lacks bitmap support");
    };
    if let Some(broken) = bitmaps
        .bitmap_list()
        .iter()
        .rev()
        .find(|b| b.inconsistent && !skip_broken)
    {
        bail!(
            "Cannot copy inconsistent bitmap '{}'\nTry --skip-broken-bitmaps, or use 'qemu-img bitmap --remove' to delete it",
            broken.name
        );
    }
    Ok(())
}

/// Copies the source's persistent bitmaps into the target after the data
/// (QEMU's `convert_copy_bitmaps`): each added with its granularity and
/// state, then filled from the source's.
fn copy_bitmaps(
    source: &dyn BlockDriver,
    target: &dyn BlockDriver,
    console: &Console,
) -> anyhow::Result<()> {
    let (Some(from), Some(to)) = (source.persistent_bitmaps(), target.persistent_bitmaps()) else {
        return Ok(());
    };
    let list = from.bitmap_list();
    for b in list.iter().rev().filter(|b| b.inconsistent) {
        console.diagnostic(&Diagnostic::Warning(format!(
            "Skipping inconsistent bitmap '{}'",
            b.name
        )));
    }
    for b in list.iter().filter(|b| !b.inconsistent) {
        to.bitmap_add(&b.name, Some(b.granularity), !b.enabled)
            .map_err(|e| e.prepend(format!("Failed to create bitmap {}", b.name)))?;
        if let Err(e) = to.bitmap_merge(&b.name, &|| from.bitmap_get(&b.name)) {
            let _ = to.bitmap_remove(&b.name);
            bail!("Failed to populate bitmap {}: {e}", b.name);
        }
    }
    Ok(())
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

/// `-l`'s argument; qemu-img reports a bad key, then the whole parameter.
pub(crate) fn snapshot_param(param: &str, console: &Console) -> anyhow::Result<SnapshotSelector> {
    SnapshotSelector::parse_convert_option(param).map_err(|e| {
        console.error(e);
        anyhow::anyhow!("Failed in parsing snapshot param '{param}'")
    })
}

pub(crate) fn open_snapshot(
    source: &Arc<dyn BlockDriver>,
    selector: &SnapshotSelector,
) -> anyhow::Result<Arc<dyn BlockDriver>> {
    // Only qcow2 loads a snapshot for reading (QEMU's `bdrv_snapshot_load_tmp`).
    let list = match source.snapshots()? {
        Some(list) if source.format_name() == "qcow2" => list,
        _ => {
            bail!(
                "Failed to load snapshot: Block format '{}' used by device '' does not support temporarily loading \
                 internal snapshots",
                source.format_name()
            );
        }
    };
    let Some(found) = selector.find(&list) else {
        bail!("Failed to load snapshot: Can't find snapshot");
    };
    Ok(source
        .snapshot_open(&found.id)
        .map_err(|e| e.prepend("Failed to load snapshot"))?)
}
