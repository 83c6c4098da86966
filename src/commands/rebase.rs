//! `rebase [-f fmt | --image-opts] [-t cache] [-q] [-U] [-p]
//! [-b backing [-F fmt] [-T cache]] [-u] [-c] filename`
//!
//! Safe mode copies what differs between the old and the new backing file
//! into the image (`convert::rebase`), then names the new one; `-u` only
//! names it. `-b ''` makes the image standalone; for an RBD clone, whose
//! parent is not a format's backing file, that is a flatten (the driver's
//! `detach_backing`: the parent's data copied up in parallel, the parent
//! detached), rbdimg's extension.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::bail;

use crate::block::BlockDriver;
use crate::cli::RebaseArgs;
use crate::commands::progress::reporter;
use crate::commands::{Console, cache_mode, is_cache_mode, one_filename, usage, writing};
use crate::convert::progress::Progress;
use crate::convert::rebase::Rebase;
use crate::error::{Error, Result};
use crate::formats::qcow2::path_combine;
use crate::open::chain::find_backing_image;
use crate::open::format::{Format, Lookup};
use crate::open::{OpenOptions, open_child, open_image};

pub fn run(a: RebaseArgs, console: &Console) -> anyhow::Result<i32> {
    let filename = one_filename("rebase", &a.args)?;
    if !a.unsafe_mode && a.backing.is_none() {
        return Err(usage(
            "rebase",
            "Must specify backing file (-b) or use unsafe mode (-u)",
        ));
    }
    let cache = cache_mode(a.cache.as_deref())?;
    if let Some(mode) = a.backing_cache.as_ref().filter(|m| !is_cache_mode(m)) {
        bail!("Invalid source cache option: {mode}");
    }
    let opts = OpenOptions {
        // -u: the old backing file may be gone (renamed, moved).
        metadata_only: a.unsafe_mode,
        ..writing(&a.image, console)
    };
    let image = open_image(filename, &opts)?;
    if a.compress && image.format_name() != "qcow2" {
        bail!("Compression not supported for this file format");
    }
    if let Some(fmt) = &a.backing_format
        && Format::lookup(fmt) == Lookup::Unknown
    {
        bail!("Invalid format name: '{fmt}'");
    }
    let backing = a.backing.as_deref().filter(|b| !b.is_empty());
    if !a.unsafe_mode {
        let new_backing = match backing {
            Some(name) => Some(open_new_backing(&image, name, &a, console)?),
            None => None,
        };
        // A format without backing files takes no new one (and has
        // nothing to copy first); made standalone, it is flattened if it
        // is an RBD clone (a plain RBD image is already standalone).
        if !image.supports_backing() {
            if backing.is_some() {
                change_backing_file(
                    image.as_ref(),
                    a.backing.as_deref(),
                    a.backing_format.as_deref(),
                )?;
            }
            flatten(image.as_ref(), &a)?;
            image.flush()?;
            return Ok(0);
        }
        let old_backing = image.backing();
        // qemu-img's rebase prints a progress line per 2% moved.
        let report = reporter(a.progress && !a.quiet.quiet, 2.0);
        report.update(0.0);
        let progress = Progress::new(image.size(), report.clone());
        let copied = Rebase {
            image: image.as_ref(),
            old_backing: old_backing.as_deref(),
            new_backing: new_backing.as_deref(),
            compress: a.compress,
        }
        .run(&progress);
        report.end();
        copied?;
    }
    change_backing_file(
        image.as_ref(),
        a.backing.as_deref(),
        a.backing_format.as_deref(),
    )?;
    if cache != "unsafe" {
        image.flush()?;
    }
    Ok(0)
}

/// `rebase -b ''` of an RBD clone: the flatten, with qemu-img's progress
/// lines (steps of 2%).
fn flatten(image: &dyn BlockDriver, a: &RebaseArgs) -> anyhow::Result<()> {
    let report = reporter(a.progress && !a.quiet.quiet, 2.0);
    report.update(0.0);
    let progress = Progress::new(100, report.clone());
    let shown = AtomicU64::new(0);
    let result = image.detach_backing(&|done, total| {
        let percent = (done * 100).checked_div(total).unwrap_or(100);
        let before = shown.fetch_max(percent, Ordering::Relaxed);
        progress.advance(percent.saturating_sub(before));
    });
    // Where the storage has no link to drop (a file), there was nothing
    // to copy: qemu-img's copy phase ends at 100% before the change fails.
    if result
        .as_ref()
        .map_or_else(|e| e.errno_value() == libc::ENOTSUP, |()| true)
    {
        report.update(100.0);
    }
    report.end();
    result.map_err(|e| anyhow::anyhow!("Could not change the backing file to '': {e}"))
}

/// The new backing file, resolved against the image's directory: an image
/// already in the chain is reused as it is open (its format stays; `-F`
/// only goes into the header), any other is opened read-only.
fn open_new_backing(
    image: &Arc<dyn BlockDriver>,
    name: &str,
    a: &RebaseArgs,
    console: &Console,
) -> anyhow::Result<Arc<dyn BlockDriver>> {
    let full = path_combine(image.filename(), name);
    if let Some((_, node)) = find_backing_image(image, &full)? {
        return Ok(node);
    }
    let opts = OpenOptions {
        format: a.backing_format.clone(),
        force_share: a.share.force_share,
        diagnostics: console.diagnostics(),
        ..Default::default()
    };
    let new = open_child(&full, &opts)
        .map_err(|e| e.prepend(format!("Could not open new backing file '{name}'")))?;
    refuse_loop(image, &new)
        .map_err(|e| e.prepend(format!("Could not open new backing file '{name}'")))?;
    Ok(new)
}

/// A new backing chain that leads back to the image itself would make a
/// loop: QEMU cannot open it while the image is open for writing and says
/// so through its image locking, at the depth where it meets the image
/// (an image without backing files QEMU opens without that lock, and the
/// rebase of it fails later).
fn refuse_loop(image: &Arc<dyn BlockDriver>, new: &Arc<dyn BlockDriver>) -> Result<()> {
    let own = match std::fs::canonicalize(image.filename()) {
        Ok(path) if image.supports_backing() => path,
        _ => return Ok(()),
    };
    let mut node = Some(new.clone());
    let mut depth = 0;
    while let Some(n) = node {
        if std::fs::canonicalize(n.filename()).is_ok_and(|p| p == own) {
            let mut message = format!(
                "Failed to get shared \"write\" lock\nIs another process using the image [{}]?",
                n.filename()
            );
            for _ in 0..depth {
                message = format!("Could not open backing file: {message}");
            }
            return Err(Error::new(crate::error::ErrorKind::Busy, message));
        }
        node = n.backing();
        depth += 1;
    }
    Ok(())
}

/// Names the new backing file (`-b`; none when absent or empty), worded
/// as qemu-img words each failure.
fn change_backing_file(
    image: &dyn BlockDriver,
    given: Option<&str>,
    format: Option<&str>,
) -> anyhow::Result<()> {
    let backing = given.filter(|b| !b.is_empty());
    // A backing file needs its format named (QEMU's generic check).
    let result = match (backing, format) {
        (Some(_), None) => Err(Error::os(
            crate::error::ErrorKind::InvalidArgument,
            libc::EINVAL,
        )),
        (None, _) => image.change_backing_file(None, None),
        (Some(name), Some(fmt)) => image.change_backing_file(Some(name), Some(fmt)),
    };
    let Err(e) = result else {
        return Ok(());
    };
    // qemu-img prints the -b argument as given, "(null)" without one.
    let shown = given.unwrap_or("(null)");
    match e.errno_value() {
        libc::ENOSPC => bail!(
            "Could not change the backing file to '{shown}': No space left in the file header"
        ),
        libc::EINVAL if backing.is_some() && format.is_none() => {
            bail!(
                "Could not change the backing file to '{shown}': backing format must be specified"
            )
        }
        _ => bail!("Could not change the backing file to '{shown}': {e}"),
    }
}
