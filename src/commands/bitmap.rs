//! `bitmap (--merge SOURCE | --add | --remove | --clear | --enable |
//! --disable)... [-f fmt | --image-opts] [-b source [-F fmt]] [-g size]
//! filename bitmap`
//!
//! The operations run in command-line order on the image's persistent
//! bitmaps; the first that fails ends the command, and what the earlier
//! ones did stays (the bitmaps are written back when the image closes).

use anyhow::bail;

use crate::block::dirty_bitmap::{self, PersistentBitmaps};
use crate::cli::{BitmapArgs, BitmapOp};
use crate::commands::{Console, cvtnum, writing};
use crate::error::{Error, Result};
use crate::formats::qcow2::bitmap_store::node_name;
use crate::open::{OpenOptions, open_image};

pub fn run(a: BitmapArgs, console: &Console) -> anyhow::Result<i32> {
    let granularity = match a.granularity.as_deref() {
        None => 0,
        Some(text) => cvtnum("granularity", text, 0, i64::MAX as u64)?,
    };
    if a.ops.is_empty() {
        bail!("Need at least one of --add, --remove, --clear, --enable, --disable, or --merge");
    }
    let merging = a.ops.iter().any(|op| matches!(op, BitmapOp::Merge(_)));
    if granularity != 0 && !a.ops.contains(&BitmapOp::Add) {
        bail!("granularity only supported with --add");
    }
    if a.source_format.is_some() && a.source_file.is_none() {
        bail!("-F only supported with -b");
    }
    if a.source_file.is_some() && !merging {
        bail!("Merge bitmap source file only supported with --merge");
    }
    let [filename, bitmap] = a.args.as_slice() else {
        bail!("Expecting filename and bitmap name");
    };
    // Bitmaps are changed without the image's content: no backing file.
    let opts = OpenOptions {
        metadata_only: true,
        ..writing(&a.image, console)
    };
    let image = open_image(filename, &opts)?;
    let source = match &a.source_file {
        Some(name) => Some(open_image(
            name,
            &OpenOptions {
                format: a.source_format.clone(),
                metadata_only: true,
                diagnostics: console.diagnostics(),
                ..Default::default()
            },
        )?),
        None => None,
    };
    let target = image.persistent_bitmaps();
    let source_bitmaps = match &source {
        Some(s) => s.persistent_bitmaps(),
        None => target,
    };
    // qmp's granularity is 32 bits wide: larger values are cut.
    let granularity = (granularity != 0).then_some(granularity as u32 as u64);
    for op in &a.ops {
        let (name, result) = match op {
            BitmapOp::Add => ("add", add(target, bitmap, granularity)),
            BitmapOp::Remove => ("remove", with(target, bitmap, |b| b.bitmap_remove(bitmap))),
            BitmapOp::Clear => ("clear", with(target, bitmap, |b| b.bitmap_clear(bitmap))),
            BitmapOp::Enable => (
                "enable",
                with(target, bitmap, |b| b.bitmap_enable(bitmap, true)),
            ),
            BitmapOp::Disable => (
                "disable",
                with(target, bitmap, |b| b.bitmap_enable(bitmap, false)),
            ),
            BitmapOp::Merge(from) => (
                "merge",
                with(target, bitmap, |b| {
                    b.bitmap_merge(bitmap, &|| match source_bitmaps {
                        Some(s) => s.bitmap_get(from),
                        None => Err(dirty_bitmap::not_found(from)),
                    })
                }),
            ),
        };
        if let Err(e) = result {
            bail!("Operation {name} on bitmap {bitmap} failed: {e}");
        }
    }
    Ok(0)
}

/// An operation on an existing bitmap: one that the image cannot have is
/// not found.
fn with(
    bitmaps: Option<&dyn PersistentBitmaps>,
    name: &str,
    op: impl FnOnce(&dyn PersistentBitmaps) -> Result<()>,
) -> Result<()> {
    match bitmaps {
        Some(b) => op(b),
        None => Err(dirty_bitmap::not_found(name)),
    }
}

fn add(
    bitmaps: Option<&dyn PersistentBitmaps>,
    name: &str,
    granularity: Option<u64>,
) -> Result<()> {
    dirty_bitmap::check_new(name, granularity)?;
    match bitmaps {
        Some(b) => b.bitmap_add(name, granularity, false),
        None => Err(Error::errno(
            crate::error::ErrorKind::Unsupported,
            format!("Can't store persistent bitmaps to {}", node_name()),
            libc::ENOTSUP,
        )),
    }
}
