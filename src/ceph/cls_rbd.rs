//! The `rbd` object class (cls_rbd) methods we call: each is an encode half
//! building a [`Call`] and, where the method returns data, a decode half.
//! Layouts are Ceph pacific's, byte for byte; the RADOS backend only moves
//! the bytes.

use crate::ceph::encoding::{DecodeResult, Decoder, Encoder};
use crate::ceph::{Call, NOSNAP};

/// The pool's (or namespace's) image directory, where the `dir_*` methods run.
pub const DIRECTORY: &str = "rbd_directory";

fn rbd(method: &'static str, input: Encoder) -> Call {
    Call {
        class: "rbd",
        method,
        input: input.into_bytes(),
    }
}

fn snap_arg(snap: u64) -> Encoder {
    let mut e = Encoder::new();
    e.u64(snap);
    e
}

/// `create`: lays out a new header.
pub fn create(
    size: u64,
    order: u8,
    features: u64,
    object_prefix: &str,
    data_pool: Option<i64>,
) -> Call {
    let mut e = Encoder::new();
    e.u64(size)
        .u8(order)
        .u64(features)
        .str(object_prefix)
        .i64(data_pool.unwrap_or(-1));
    rbd("create", e)
}

pub fn get_size(snap: u64) -> Call {
    rbd("get_size", snap_arg(snap))
}

/// `get_size` output: (order, size).
pub fn decode_size(out: &[u8]) -> DecodeResult<(u8, u64)> {
    let mut d = Decoder::new(out);
    Ok((d.u8()?, d.u64()?))
}

pub fn set_size(size: u64) -> Call {
    rbd("set_size", snap_arg(size))
}

pub fn get_features(read_only: bool) -> Call {
    let mut e = snap_arg(NOSNAP);
    e.bool(read_only);
    rbd("get_features", e)
}

/// `get_features` output: (features, incompatible features in use).
pub fn decode_features(out: &[u8]) -> DecodeResult<(u64, u64)> {
    let mut d = Decoder::new(out);
    Ok((d.u64()?, d.u64()?))
}

pub fn get_object_prefix() -> Call {
    rbd("get_object_prefix", Encoder::new())
}

pub fn decode_string(out: &[u8]) -> DecodeResult<String> {
    Decoder::new(out).string()
}

pub fn decode_u64(out: &[u8]) -> DecodeResult<u64> {
    Decoder::new(out).u64()
}

pub fn get_data_pool() -> Call {
    rbd("get_data_pool", Encoder::new())
}

pub fn decode_i64(out: &[u8]) -> DecodeResult<i64> {
    Decoder::new(out).i64()
}

pub fn get_snapcontext() -> Call {
    rbd("get_snapcontext", Encoder::new())
}

/// `get_snapcontext` output: (snap_seq, snapshot ids in descending order).
pub fn decode_snapcontext(out: &[u8]) -> DecodeResult<(u64, Vec<u64>)> {
    let mut d = Decoder::new(out);
    let seq = d.u64()?;
    let n = d.count(8)?;
    let snaps = (0..n).map(|_| d.u64()).collect::<DecodeResult<Vec<_>>>()?;
    Ok((seq, snaps))
}

pub fn get_flags(snap: u64) -> Call {
    rbd("get_flags", snap_arg(snap))
}

pub fn set_flags(snap: u64, flags: u64, mask: u64) -> Call {
    let mut e = Encoder::new();
    e.u64(flags).u64(mask).u64(snap);
    rbd("set_flags", e)
}

pub fn get_stripe_unit_count() -> Call {
    rbd("get_stripe_unit_count", Encoder::new())
}

/// `get_stripe_unit_count` output: (stripe_unit, stripe_count).
pub fn decode_stripe(out: &[u8]) -> DecodeResult<(u64, u64)> {
    let mut d = Decoder::new(out);
    Ok((d.u64()?, d.u64()?))
}

pub fn get_create_timestamp() -> Call {
    rbd("get_create_timestamp", Encoder::new())
}

pub fn get_modify_timestamp() -> Call {
    rbd("get_modify_timestamp", Encoder::new())
}

pub fn set_modify_timestamp() -> Call {
    rbd("set_modify_timestamp", Encoder::new())
}

pub fn decode_utime(out: &[u8]) -> DecodeResult<(u32, u32)> {
    Decoder::new(out).utime()
}

pub fn op_features_get() -> Call {
    rbd("op_features_get", Encoder::new())
}

/// A clone's parent: pool, namespace, image id and snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentSpec {
    pub pool_id: i64,
    pub namespace: String,
    pub image_id: String,
    pub snap_id: u64,
}

impl ParentSpec {
    pub fn exists(&self) -> bool {
        self.pool_id >= 0 && !self.image_id.is_empty() && self.snap_id != NOSNAP
    }
}

pub fn parent_get() -> Call {
    rbd("parent_get", Encoder::new())
}

pub fn decode_parent(out: &[u8]) -> DecodeResult<ParentSpec> {
    Decoder::new(out).versioned(1, |_, d| {
        Ok(ParentSpec {
            pool_id: d.i64()?,
            namespace: d.string()?,
            image_id: d.string()?,
            snap_id: d.u64()?,
        })
    })
}

pub fn parent_overlap_get(snap: u64) -> Call {
    rbd("parent_overlap_get", snap_arg(snap))
}

pub fn decode_overlap(out: &[u8]) -> DecodeResult<Option<u64>> {
    Decoder::new(out).opt_u64()
}

/// The user snapshot namespace, `SnapshotNamespace{type=USER}`.
fn user_namespace(e: &mut Encoder) {
    e.versioned(1, 1, |b| {
        b.u32(0);
    });
}

pub fn snapshot_add(name: &str, snap_id: u64) -> Call {
    let mut e = Encoder::new();
    e.str(name).u64(snap_id);
    user_namespace(&mut e);
    rbd("snapshot_add", e)
}

pub fn snapshot_remove(snap_id: u64) -> Call {
    rbd("snapshot_remove", snap_arg(snap_id))
}

pub fn snapshot_get(snap_id: u64) -> Call {
    rbd("snapshot_get", snap_arg(snap_id))
}

/// Snapshot namespace types; rbdimg lists and manages user snapshots only.
pub const SNAP_NAMESPACE_USER: u32 = 0;

/// `cls::rbd::SnapshotInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub id: u64,
    pub namespace_type: u32,
    pub name: String,
    pub image_size: u64,
    pub timestamp: (u32, u32),
    pub child_count: u32,
}

pub fn decode_snapshot(out: &[u8]) -> DecodeResult<SnapshotInfo> {
    Decoder::new(out).versioned(1, |_, d| {
        let id = d.u64()?;
        let namespace_type = d.versioned(1, |_, ns| ns.u32())?;
        Ok(SnapshotInfo {
            id,
            namespace_type,
            name: d.string()?,
            image_size: d.u64()?,
            timestamp: d.utime()?,
            child_count: d.u32()?,
        })
    })
}

pub fn get_protection_status(snap_id: u64) -> Call {
    rbd("get_protection_status", snap_arg(snap_id))
}

pub fn decode_u8(out: &[u8]) -> DecodeResult<u8> {
    Decoder::new(out).u8()
}

pub fn get_id() -> Call {
    rbd("get_id", Encoder::new())
}

pub fn set_id(id: &str) -> Call {
    let mut e = Encoder::new();
    e.str(id);
    rbd("set_id", e)
}

pub fn dir_add_image(name: &str, id: &str) -> Call {
    let mut e = Encoder::new();
    e.str(name).str(id);
    rbd("dir_add_image", e)
}

pub fn dir_remove_image(name: &str, id: &str) -> Call {
    let mut e = Encoder::new();
    e.str(name).str(id);
    rbd("dir_remove_image", e)
}

pub fn dir_list(start_after: &str, max: u64) -> Call {
    let mut e = Encoder::new();
    e.str(start_after).u64(max);
    rbd("dir_list", e)
}

/// `dir_list` output: image name -> id, sorted by name.
pub fn decode_dir_list(out: &[u8]) -> DecodeResult<Vec<(String, String)>> {
    let mut d = Decoder::new(out);
    let n = d.count(8)?;
    (0..n).map(|_| Ok((d.string()?, d.string()?))).collect()
}

/// Fails with ENOENT unless the pool namespace's directory is in `state`
/// (0 = ready): how librbd tells whether a namespace exists.
pub fn dir_state_assert(state: u8) -> Call {
    let mut e = Encoder::new();
    e.u8(state);
    rbd("dir_state_assert", e)
}

pub fn get_all_features() -> Call {
    rbd("get_all_features", Encoder::new())
}

pub fn object_map_load() -> Call {
    rbd("object_map_load", Encoder::new())
}

pub fn object_map_resize(object_count: u64, default_state: u8) -> Call {
    let mut e = Encoder::new();
    e.u64(object_count).u8(default_state);
    rbd("object_map_resize", e)
}

/// Sets objects `[start, end)` to `state` where their state is `current` (any when `None`).
pub fn object_map_update(start: u64, end: u64, state: u8, current: Option<u8>) -> Call {
    let mut e = Encoder::new();
    e.u64(start).u64(end).u8(state).opt_u8(current);
    rbd("object_map_update", e)
}

pub fn object_map_snap_add() -> Call {
    rbd("object_map_snap_add", Encoder::new())
}

/// Folds a removed snapshot's map (its encoding) into the next newer map.
pub fn object_map_snap_remove(removed_map: &[u8]) -> Call {
    let mut e = Encoder::new();
    e.raw(removed_map);
    rbd("object_map_snap_remove", e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ceph::encoding::hex;

    #[test]
    fn create_matches_ceph_vector() {
        let call = create(1 << 30, 22, 61, "rbd_data.10226b8b4567", None);
        let mut expected = hex("00 00 00 40 00 00 00 00 16 3d 00 00 00 00 00 00 00 15 00 00 00");
        expected.extend_from_slice(b"rbd_data.10226b8b4567");
        expected.extend_from_slice(&[0xff; 8]);
        assert_eq!(
            (call.class, call.method, call.input),
            ("rbd", "create", expected)
        );
    }

    #[test]
    fn snapshot_add_matches_ceph_vector() {
        let call = snapshot_add("snap1", 4);
        let mut expected = hex("05 00 00 00");
        expected.extend_from_slice(b"snap1");
        expected.extend(hex("04 00 00 00 00 00 00 00 01 01 04 00 00 00 00 00 00 00"));
        assert_eq!(call.input, expected);
    }

    #[test]
    fn decodes_snapshot_info_vector() {
        let mut bytes = hex(
            "01 01 2f 00 00 00 04 00 00 00 00 00 00 00 01 01 04 00 00 00 00 00 00 00 05 00 00 00",
        );
        bytes.extend_from_slice(b"snap1");
        bytes.extend(hex(
            "00 00 00 40 00 00 00 00 00 f1 53 65 05 00 00 00 00 00 00 00",
        ));
        let info = decode_snapshot(&bytes).unwrap();
        assert_eq!(
            info,
            SnapshotInfo {
                id: 4,
                namespace_type: 0,
                name: "snap1".into(),
                image_size: 1 << 30,
                timestamp: (1700000000, 5),
                child_count: 0
            }
        );
    }

    #[test]
    fn decodes_snapcontext_vector() {
        let bytes = hex(
            "04 00 00 00 00 00 00 00 02 00 00 00 04 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00",
        );
        assert_eq!(decode_snapcontext(&bytes).unwrap(), (4, vec![4, 2]));
        assert!(decode_snapcontext(&hex("04 00 00 00 00 00 00 00 ff ff ff 00")).is_err());
    }

    #[test]
    fn object_map_update_encodes_optional_current_state() {
        assert_eq!(
            object_map_update(0, 1, 1, None).input,
            hex("00 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 01 00")
        );
        assert_eq!(object_map_update(0, 1, 0, Some(2)).input[16..], [0, 1, 2]);
    }
}
