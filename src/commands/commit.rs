//! `commit [-f fmt | --image-opts] [-t cache] [-b base] [-d] [-r rate] [-p]
//! [-q] filename`
//!
//! Copies what the image (and, with `-b`, every image down to the named
//! base) stores into the base (`convert::commit`), then empties the image
//! so that it reads through to the base again, unless `-d` (which `-b`
//! implies). "Image committed." on success.

use anyhow::bail;

use crate::cli::CommitArgs;
use crate::commands::progress::reporter;
use crate::commands::{Console, cache_mode, cvtnum, one_filename, print, writing};
use crate::convert::commit::Commit;
use crate::convert::progress::Progress;
use crate::open::chain::find_backing_image;
use crate::open::{open_image, reopen_below_writable};

pub fn run(a: CommitArgs, console: &Console) -> anyhow::Result<i32> {
    let rate = match a.rate.as_deref() {
        None => 0,
        Some(text) => cvtnum("rate limit", text, 0, i64::MAX as u64)?,
    };
    let filename = one_filename("commit", &a.args)?;
    let cache = cache_mode(a.cache.as_deref())?;
    let opts = writing(&a.image, console);
    let top = open_image(filename, &opts)?;
    let (layers, base_node) = match &a.base {
        Some(name) => match find_backing_image(&top, name)? {
            Some(found) => found,
            None => bail!("Did not find '{name}' in the backing chain of '{filename}'"),
        },
        None => match top.backing() {
            Some(b) => (1, b),
            None => bail!("Image does not have a backing file"),
        },
    };
    let mut chain = vec![top.clone()];
    while chain.len() < layers {
        let next = chain[chain.len() - 1].backing().expect("the base is below");
        chain.push(next);
    }
    // The base again, for writing, by the name and format the image above
    // it gives (QEMU reopens the node read-write).
    let name = chain[layers - 1]
        .info()?
        .full_backing_filename
        .unwrap_or_else(|| base_node.filename().to_string());
    let base = reopen_below_writable(filename, &opts, layers, &name, base_node.format_name())?;
    let mut below = Some(base.clone());
    while let Some(node) = below {
        below = node.backing();
        chain.push(node);
    }
    let report = reporter(a.progress && !a.quiet.quiet, 1.0);
    report.update(0.0);
    let progress = Progress::new(top.size(), report.clone());
    let committed = Commit {
        chain,
        layers,
        base: base.as_ref(),
        rate,
    }
    .run(&progress);
    report.end();
    committed?;
    if cache != "unsafe" {
        base.flush()?;
    }
    // -b implies -d: the images between stay as they were.
    if !a.drop && a.base.is_none() {
        match top.make_empty() {
            Ok(()) => {}
            Err(e) if e.errno_value() == libc::ENOTSUP => {}
            Err(e) => return Err(e.into()),
        }
        if cache != "unsafe" {
            top.flush()?;
        }
    }
    if !a.quiet.quiet {
        print("Image committed.\n")?;
    }
    Ok(0)
}
