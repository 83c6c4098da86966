//! Finding an image in a backing chain by the name a user typed (QEMU's
//! `bdrv_find_backing_image`, used by `commit -b` and `rebase -b`).

use std::path::Path;
use std::sync::Arc;

use crate::block::driver::BlockDriver;
use crate::error::Result;

/// QEMU's `path_has_protocol`: a ':' before any '/'.
pub fn has_protocol(name: &str) -> bool {
    name.find([':', '/'])
        .is_some_and(|i| name.as_bytes()[i] == b':')
}

/// `name` made absolute against the directory of `image`'s own file, as
/// QEMU's `bdrv_make_absolute_filename` does (names with a protocol and
/// absolute paths stay as they are).
fn relative_to(image: &str, name: &str) -> String {
    if has_protocol(name) || name.starts_with('/') {
        return name.to_string();
    }
    match image.rfind('/') {
        Some(i) => format!("{}{name}", &image[..=i]),
        None => name.to_string(),
    }
}

/// The image below `top` that `name` names, with its depth below `top`
/// (1: the direct backing file). Plain paths are resolved against the
/// directory of each image in turn and compared as canonical paths;
/// names with a protocol are compared as written, with either the backing
/// name stored in the image or that name made absolute.
pub fn find_backing_image(
    top: &Arc<dyn BlockDriver>,
    name: &str,
) -> Result<Option<(usize, Arc<dyn BlockDriver>)>> {
    let protocol = has_protocol(name);
    let mut current = top.clone();
    let mut depth = 0;
    while let Some(below) = current.backing() {
        depth += 1;
        let info = current.info()?;
        let stored = info.backing_filename.unwrap_or_default();
        let full = info.full_backing_filename.unwrap_or_default();
        let found = if protocol || has_protocol(&stored) {
            name == stored || name == full
        } else {
            let wanted = std::fs::canonicalize(relative_to(current.filename(), name));
            let actual = std::fs::canonicalize(Path::new(&full));
            matches!((wanted, actual), (Ok(a), Ok(b)) if a == b)
        };
        if found {
            return Ok(Some((depth, below)));
        }
        current = below;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_are_told_from_paths() {
        assert!(has_protocol("rbd:pool/img"));
        assert!(has_protocol("json:{}"));
        assert!(!has_protocol("dir/a:b"));
        assert!(!has_protocol("plain.qcow2"));
        assert_eq!(relative_to("sub/top.qcow2", "base.qcow2"), "sub/base.qcow2");
        assert_eq!(relative_to("top.qcow2", "/abs/b"), "/abs/b");
        assert_eq!(relative_to("sub/top.qcow2", "rbd:p/i"), "rbd:p/i");
    }
}
