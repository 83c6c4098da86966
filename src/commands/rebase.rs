//! `rebase [-f FMT | --image-opts] [-t CACHE] [-q] [-U] [-p] [-b BACKING [-F FMT] [-T CACHE]]
//! [-u] [-c] FILENAME`
//!
//! qemu-img's checks, in its order: the arguments, the cache modes, the
//! image (opened for writing), compression, the new backing format, the
//! new backing file (opened unless `-u`); then the backing link changes.
//! `-b ''` makes an image standalone: for an RBD clone that is a flatten
//! (its parent's data copied up, the parent detached), rbdimg's
//! extension; an image without a backing file to drop, or another new
//! backing file, is "Operation not supported", as qemu-img's raw is.

use anyhow::bail;

use crate::cli::RebaseArgs;
use crate::commands::progress::reporter;
use crate::commands::{Console, is_cache_mode, one_filename, usage};
use crate::convert::progress::Progress;
use crate::error::Error;
use crate::open::format::{Format, Lookup};
use crate::open::{OpenOptions, open_child, open_image};

pub fn run(a: RebaseArgs, console: &Console) -> anyhow::Result<i32> {
    let filename = one_filename("rebase", &a.args)?;
    if !a.unsafe_backing && a.backing.is_none() {
        return Err(usage(
            "rebase",
            "Must specify backing file (-b) or use unsafe mode (-u)",
        ));
    }
    // qemu-img names a missing -b (with -u) as C prints a null string.
    let backing = a.backing.as_deref().unwrap_or("");
    let shown_backing = a.backing.as_deref().unwrap_or("(null)");
    if let Some(mode) = a.cache.as_deref().filter(|m| !is_cache_mode(m)) {
        bail!("Invalid cache option: {mode}");
    }
    if let Some(mode) = a.backing_cache.as_deref().filter(|m| !is_cache_mode(m)) {
        bail!("Invalid source cache option: {mode}");
    }
    let opts = OpenOptions {
        format: a.image.format,
        writable: true,
        image_opts: a.image.image_opts,
        diagnostics: console.diagnostics(),
        ..Default::default()
    };
    let image = open_image(filename, &opts)?;
    let compresses =
        matches!(Format::lookup(image.format_name()), Lookup::Found(f) if f.supports_compression());
    if a.compress && !compresses {
        bail!("Compression not supported for this file format");
    }
    if let Some(format) = &a.backing_format
        && Format::lookup(format) == Lookup::Unknown
    {
        bail!("Invalid format name: '{format}'");
    }
    if !a.unsafe_backing && !backing.is_empty() {
        let opts = OpenOptions {
            format: a.backing_format.clone(),
            force_share: a.share.force_share,
            diagnostics: console.diagnostics(),
            ..Default::default()
        };
        let path = crate::formats::qcow2::path_combine(image.filename(), backing);
        if let Err(e) = open_child(&path, &opts) {
            bail!("Could not open new backing file '{backing}': {e}");
        }
    }
    if !backing.is_empty() {
        return change_failed(backing, Error::not_supported());
    }
    if a.unsafe_backing && image.backing().is_some() {
        bail!(
            "Could not change the backing file to '{shown_backing}': an RBD clone's parent cannot \
             be dropped without copying its data: leave out -u to flatten it"
        );
    }
    // qemu-img's rebase prints its progress in steps of 2%.
    let report = reporter(a.progress && !a.quiet.quiet, 2.0);
    report.update(0.0);
    let progress = Progress::new(100, report.clone());
    let shown = std::sync::atomic::AtomicU64::new(0);
    let result = image.detach_backing(&|done, total| {
        let percent = (done * 100).checked_div(total).unwrap_or(100);
        let before = shown.fetch_max(percent, std::sync::atomic::Ordering::Relaxed);
        progress.advance(percent.saturating_sub(before));
    });
    if result.is_ok() {
        report.update(100.0);
    }
    report.end();
    match result {
        Ok(()) => {
            image.flush()?;
            Ok(0)
        }
        Err(e) => change_failed(shown_backing, e),
    }
}

/// qemu-img's words for a backing change that did not happen.
fn change_failed(backing: &str, e: Error) -> anyhow::Result<i32> {
    bail!("Could not change the backing file to '{backing}': {e}")
}
