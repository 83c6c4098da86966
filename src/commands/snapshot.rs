//! `snapshot [-l | -a snap | -c snap | -d snap] [-f fmt] [-q] [-U] filename`

use anyhow::bail;

use crate::block::BlockDriver;
use crate::block::diagnostics::Diagnostic;
use crate::block::snapshot::{SnapshotSelector, table_header, table_row};
use crate::cli::SnapshotArgs;
use crate::commands::{Console, one_filename, print, reading, usage};
use crate::error::{Error, ErrorKind};
use crate::open::spec::{ImageSpec, Location};
use crate::open::{OpenOptions, open_image, raw_guess_warning};

enum Action {
    List,
    Apply(String),
    Create(String),
    Delete(String),
}

pub fn run(a: SnapshotArgs, console: &Console) -> anyhow::Result<i32> {
    let mut actions = Vec::new();
    if a.list {
        actions.push(Action::List);
    }
    actions.extend(a.apply.map(Action::Apply));
    actions.extend(a.create.map(Action::Create));
    actions.extend(a.delete.map(Action::Delete));
    if actions.len() > 1 {
        return Err(usage("snapshot", "Cannot mix '-l', '-a', '-c', '-d'"));
    }
    let action = actions.pop().unwrap_or(Action::List);
    let filename = one_filename("snapshot", &a.args)?;
    let writable = !matches!(action, Action::List);
    if writable && a.share.force_share {
        bail!("force-share=on can only be used with read-only images");
    }
    let opts = OpenOptions {
        writable,
        ..reading(&a.image, a.share.force_share, console)
    };
    let image = open_image(filename, &opts)?;
    match action {
        Action::List => {
            let list = image.snapshots()?.unwrap_or_default();
            if !list.is_empty() {
                let mut text = format!("Snapshot list:\n{}\n", table_header());
                for sn in &list {
                    text.push_str(&table_row(sn));
                    text.push('\n');
                }
                print(&text)?;
            }
        }
        Action::Create(name) => {
            image
                .snapshot_create(&name)
                .map_err(|e| e.prepend(format!("Could not create snapshot '{name}'")))?;
        }
        Action::Apply(name) => {
            let id = find(&*image, &name).map_err(|e| {
                let e = match e.kind() {
                    ErrorKind::Unsupported => {
                        // qemu-img falls back to the file node: it closes the
                        // probed raw node and opens it again, which warns again.
                        if probed_raw_file(filename, &opts, &*image) {
                            console.diagnostic(&Diagnostic::Line(raw_guess_warning(filename)));
                        }
                        Error::new(e.kind(), "Block driver does not support snapshots")
                    }
                    _ => e.prepend("Failed to load snapshot"),
                };
                e.prepend(format!("Could not apply snapshot '{name}'"))
            })?;
            image
                .snapshot_apply(&id)
                .map_err(|e| e.prepend(format!("Could not apply snapshot '{name}'")))?;
        }
        Action::Delete(name) => {
            let id = find_by_name(&*image, &name).map_err(|e| {
                let e = if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::Unsupported) {
                    Error::new(e.kind(), "snapshot not found")
                } else {
                    e
                };
                e.prepend(format!("Could not delete snapshot '{name}'"))
            })?;
            image
                .snapshot_delete(&id)
                .map_err(|e| e.prepend(format!("Could not delete snapshot '{name}'")))?;
        }
    }
    image.flush()?;
    Ok(0)
}

/// A local file whose format was guessed as raw (no -f, no `driver=`).
fn probed_raw_file(name: &str, opts: &OpenOptions, image: &dyn BlockDriver) -> bool {
    let spec = ImageSpec::parse(name, opts.image_opts);
    opts.format.is_none()
        && image.format_name() == "raw"
        && spec.is_ok_and(|s| s.format.is_none() && matches!(s.location, Location::File(_)))
}

/// The id of the first snapshot with this name (`snapshot -d` matches names
/// only, as qemu-img's `bdrv_snapshot_find`).
fn find_by_name(image: &dyn BlockDriver, name: &str) -> crate::error::Result<String> {
    let Some(list) = image.snapshots()? else {
        return Err(Error::not_supported());
    };
    SnapshotSelector::Name(name.to_string())
        .find(&list)
        .map(|sn| sn.id.clone())
        .ok_or_else(|| Error::os(ErrorKind::NotFound, libc::ENOENT))
}

/// The id of the snapshot a user named (by id first, then by name).
fn find(image: &dyn BlockDriver, name: &str) -> crate::error::Result<String> {
    let Some(list) = image.snapshots()? else {
        return Err(Error::not_supported());
    };
    SnapshotSelector::IdOrName(name.to_string())
        .find(&list)
        .map(|sn| sn.id.clone())
        .ok_or_else(|| Error::os(ErrorKind::NotFound, libc::ENOENT))
}
