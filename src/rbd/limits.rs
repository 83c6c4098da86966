//! The values an image header may hold: the limits librbd creates images
//! within, which QEMU and RADOS rely on. Header values read back from RADOS
//! are untrusted input — an omap entry can be corrupted by a bug, a bad
//! disk or a hand edit — so every load checks them here and a bad one is a
//! one-line "... is corrupt: ..." error (librbd's wording where it has
//! one), never a panic, an overflow or a nonsense geometry.

use std::fmt::Display;
use std::ops::RangeInclusive;

use crate::ceph::features;
use crate::error::{Error, Result};

/// Object orders librbd creates: 4 KiB to 32 MiB objects.
pub const ORDERS: RangeInclusive<u8> = 12..=25;

/// The largest image: QEMU addresses bytes with signed 64-bit offsets.
pub const MAX_SIZE: u64 = i64::MAX as u64;

/// The highest snapshot id a snapshot context may hold (`CEPH_MAXSNAP`).
const MAX_SNAP_ID: u64 = u64::MAX - 3;

/// Clone chains longer than this are refused, as the kernel client refuses
/// them; a corrupt parent link can make a chain loop forever.
pub const MAX_PARENT_CHAIN: usize = 16;

/// `osd_max_object_name_len`: data object names (prefix + ".%016x") must fit.
const MAX_OBJECT_NAME: usize = 2048;

/// Protection states (`RBD_PROTECTION_STATUS_*`): unprotected,
/// unprotecting, protected.
pub const PROTECTION_STATES: u8 = 3;

fn corrupt(what: impl Display, why: impl Display) -> Error {
    Error::corrupt(format!("{what} is corrupt: {why}"))
}

/// Image ids name the header object: cls_rbd only sets alphanumeric ones.
pub fn check_id(what: &str, id: &str) -> Result<()> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(corrupt(
            format!("{what} '{}'", id.escape_debug()),
            "ids are alphanumeric",
        ));
    }
    Ok(())
}

pub fn check_order(order: u8) -> Result<()> {
    if !ORDERS.contains(&order) {
        return Err(corrupt(
            format!("order {order}"),
            format_args!(
                "order must be in the range [{}, {}]",
                ORDERS.start(),
                ORDERS.end()
            ),
        ));
    }
    Ok(())
}

pub fn check_size(what: impl Display, size: u64) -> Result<()> {
    if size > MAX_SIZE {
        return Err(corrupt(
            format!("{what} {size}"),
            format_args!("larger than the largest image size, {MAX_SIZE}"),
        ));
    }
    Ok(())
}

/// librbd's feature dependencies (unknown bits are reported as
/// unsupported features when the image is used).
pub fn check_features(bits: u64) -> Result<()> {
    use features::*;
    let broken = [
        (
            FAST_DIFF,
            OBJECT_MAP,
            "cannot use fast diff without object map",
        ),
        (
            OBJECT_MAP,
            EXCLUSIVE_LOCK,
            "cannot use object map without exclusive lock",
        ),
        (
            JOURNALING,
            EXCLUSIVE_LOCK,
            "cannot use journaling without exclusive lock",
        ),
    ]
    .into_iter()
    .find(|&(feature, needs, _)| bits & feature != 0 && bits & needs == 0);
    match broken {
        Some((_, _, why)) => Err(corrupt(format!("feature set 0x{bits:x}"), why)),
        None => Ok(()),
    }
}

/// The prefix names every data object: librbd makes it `rbd_data.<id>`
/// (with the pool id for a data pool). Anything that is not a plain,
/// printable object-name prefix would address other objects.
pub fn check_object_prefix(prefix: &str) -> Result<()> {
    let why = if prefix.is_empty() {
        "empty"
    } else if prefix.len() + ".0000000000000000".len() > MAX_OBJECT_NAME {
        "too long for an object name"
    } else if !prefix.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
        "not a printable name without '/'"
    } else {
        return Ok(());
    };
    Err(corrupt(
        format!("object prefix '{}'", prefix.escape_debug()),
        why,
    ))
}

/// librbd's `SnapContext::is_valid`: the seq is a snapshot id at least as
/// new as every snapshot, and snapshots are listed newest first, once.
pub fn check_snap_context(seq: u64, snaps: &[u64]) -> Result<()> {
    let valid = seq <= MAX_SNAP_ID
        && snaps.first().is_none_or(|&newest| newest <= seq)
        && snaps.windows(2).all(|w| w[1] < w[0])
        && !snaps.contains(&0);
    if !valid {
        return Err(Error::corrupt(format!(
            "image snap context is invalid (seq {seq}, snapshots {snaps:?})"
        )));
    }
    Ok(())
}

/// One snapshot record, as `snapshot_get` and `get_protection_status`
/// returned it for snapshot `asked`.
pub fn check_snapshot(asked: u64, id: u64, name: &str, size: u64, protection: u8) -> Result<()> {
    let what = || format!("snapshot {asked}");
    if id != asked {
        return Err(corrupt(what(), format_args!("its record has id {id}")));
    }
    if name.is_empty() {
        return Err(corrupt(what(), "its name is empty"));
    }
    if protection >= PROTECTION_STATES {
        return Err(corrupt(
            what(),
            format_args!("invalid protection status {protection}"),
        ));
    }
    check_size(format_args!("size of snapshot '{name}'"), size)
}

/// Snapshot names are unique (cls_rbd refuses a second one): commands
/// address snapshots by name.
pub fn check_unique_names<'a>(names: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(corrupt(
                format!("snapshot name '{name}'"),
                "two snapshots have it",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ceph::features::*;

    fn message(r: Result<()>) -> String {
        r.unwrap_err().message().to_string()
    }

    #[test]
    fn orders_sizes_and_ids() {
        assert!(check_order(12).is_ok() && check_order(25).is_ok());
        assert_eq!(
            message(check_order(0)),
            "order 0 is corrupt: order must be in the range [12, 25]"
        );
        assert!(check_order(64).is_err() && check_order(26).is_err());
        assert!(check_size("size", MAX_SIZE).is_ok());
        assert_eq!(
            message(check_size("size", u64::MAX)),
            "size 18446744073709551615 is corrupt: larger than the largest image size, 9223372036854775807"
        );
        assert!(check_id("image id", "10226b8b4567").is_ok());
        for bad in ["", "../x", "a b", "a\0"] {
            assert!(check_id("image id", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn feature_dependencies() {
        assert!(check_features(DEFAULT).is_ok());
        assert!(check_features(LAYERING).is_ok());
        assert_eq!(
            message(check_features(LAYERING | OBJECT_MAP)),
            "feature set 0x9 is corrupt: cannot use object map without exclusive lock"
        );
        assert!(check_features(EXCLUSIVE_LOCK | FAST_DIFF).is_err());
        assert!(check_features(JOURNALING).is_err());
    }

    #[test]
    fn object_prefixes() {
        assert!(check_object_prefix("rbd_data.10226b8b4567").is_ok());
        assert!(check_object_prefix("rbd_data.2.10226b8b4567").is_ok());
        for bad in ["", "rbd_data/../x", "rbd data", "rbd\u{0}data"] {
            assert!(check_object_prefix(bad).is_err(), "{bad:?}");
        }
        assert!(check_object_prefix(&"x".repeat(2040)).is_err());
    }

    #[test]
    fn snapshot_contexts_follow_librbd() {
        assert!(check_snap_context(0, &[]).is_ok());
        assert!(check_snap_context(9, &[9, 4, 2]).is_ok());
        for (seq, snaps) in [
            (3, &[4u64][..]),
            (9, &[2, 4]),
            (9, &[4, 4]),
            (9, &[4, 0]),
            (u64::MAX - 1, &[]),
        ] {
            assert!(check_snap_context(seq, snaps).is_err(), "{seq} {snaps:?}");
        }
        assert_eq!(
            message(check_snap_context(3, &[4])),
            "image snap context is invalid (seq 3, snapshots [4])"
        );
    }

    #[test]
    fn snapshot_records() {
        assert!(check_snapshot(4, 4, "s", 1 << 30, 2).is_ok());
        assert!(check_snapshot(4, 5, "s", 0, 0).is_err());
        assert!(check_snapshot(4, 4, "", 0, 0).is_err());
        assert!(check_snapshot(4, 4, "s", 0, 3).is_err());
        assert!(check_snapshot(4, 4, "s", u64::MAX, 0).is_err());
        assert!(check_unique_names(["a", "b"].into_iter()).is_ok());
        assert_eq!(
            message(check_unique_names(["a", "b", "a"].into_iter())),
            "snapshot name 'a' is corrupt: two snapshots have it"
        );
    }
}
