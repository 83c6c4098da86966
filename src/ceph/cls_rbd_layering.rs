//! The cls_rbd methods of layering (clones), client side: a child's parent
//! link, the parent's list of children (clone v1: the pool's
//! `rbd_children` object; clone v2: the parent snapshot's own record),
//! operation features, snapshot protection and the snapshot trash, and the
//! directory's id -> name lookup that names a parent. Encode halves build a
//! [`Call`], decode halves read the replies; layouts are Ceph pacific's.

use crate::ceph::Call;
use crate::ceph::cls_rbd::ParentSpec;
use crate::ceph::encoding::{DecodeResult, Decoder, Encoder};

/// Where clone v1 records children: one per pool (and namespace).
pub const CHILDREN: &str = "rbd_children";

/// Operation features (`RBD_OPERATION_FEATURE_*`): what an image takes
/// part in beyond its features, so older clients keep off.
pub const OP_CLONE_PARENT: u64 = 1;
pub const OP_CLONE_CHILD: u64 = 2;
pub const OP_GROUP: u64 = 4;
pub const OP_SNAP_TRASH: u64 = 8;
pub const OP_ALL: u64 = OP_CLONE_PARENT | OP_CLONE_CHILD | OP_GROUP | OP_SNAP_TRASH;

/// `RBD_PROTECTION_STATUS_*`.
pub const UNPROTECTED: u8 = 0;
pub const PROTECTED: u8 = 2;

/// The snapshot namespace of removed snapshots that clone v2 children
/// still read.
pub const SNAP_NAMESPACE_TRASH: u32 = 2;

fn rbd(method: &'static str, input: Encoder) -> Call {
    Call {
        class: "rbd",
        method,
        input: input.into_bytes(),
    }
}

/// `cls::rbd::ParentImageSpec` (v1): pool, namespace, image id, snapshot.
fn parent_spec(e: &mut Encoder, spec: &ParentSpec) {
    e.versioned(1, 1, |b| {
        b.i64(spec.pool_id)
            .str(&spec.namespace)
            .str(&spec.image_id)
            .u64(spec.snap_id);
    });
}

/// `parent_attach`: links the image to its parent with `overlap` bytes
/// reading through (clipped to the image by the OSD); `reattach` replaces
/// an existing link.
pub fn parent_attach(spec: &ParentSpec, overlap: u64, reattach: bool) -> Call {
    let mut e = Encoder::new();
    parent_spec(&mut e, spec);
    e.u64(overlap).bool(reattach);
    rbd("parent_attach", e)
}

/// `parent_detach`: the head no longer reads through (snapshots that still
/// do keep the link).
pub fn parent_detach() -> Call {
    rbd("parent_detach", Encoder::new())
}

/// The legacy parent key of `rbd_children`: pool, image id, snapshot.
fn children_key(e: &mut Encoder, spec: &ParentSpec) {
    e.i64(spec.pool_id).str(&spec.image_id).u64(spec.snap_id);
}

/// Clone v1: records `child_id` as a child of `spec` in `rbd_children`.
pub fn add_child(spec: &ParentSpec, child_id: &str) -> Call {
    let mut e = Encoder::new();
    children_key(&mut e, spec);
    e.str(child_id);
    rbd("add_child", e)
}

pub fn remove_child(spec: &ParentSpec, child_id: &str) -> Call {
    let mut e = Encoder::new();
    children_key(&mut e, spec);
    e.str(child_id);
    rbd("remove_child", e)
}

pub fn get_children(spec: &ParentSpec) -> Call {
    let mut e = Encoder::new();
    children_key(&mut e, spec);
    rbd("get_children", e)
}

/// `get_children` output: child image ids, sorted.
pub fn decode_children(out: &[u8]) -> DecodeResult<Vec<String>> {
    let mut d = Decoder::new(out);
    let n = d.count(4)?;
    (0..n).map(|_| d.string()).collect()
}

/// `cls::rbd::ChildImageSpec`: a clone v2 child, by pool, namespace and id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChildSpec {
    pub pool_id: i64,
    pub namespace: String,
    pub image_id: String,
}

impl ChildSpec {
    fn encode(&self, e: &mut Encoder) {
        e.versioned(2, 1, |b| {
            b.i64(self.pool_id).str(&self.image_id).str(&self.namespace);
        });
    }

    fn decode(d: &mut Decoder) -> DecodeResult<ChildSpec> {
        d.versioned(2, |version, d| {
            let pool_id = d.i64()?;
            let image_id = d.string()?;
            let namespace = if version >= 2 {
                d.string()?
            } else {
                String::new()
            };
            Ok(ChildSpec {
                pool_id,
                namespace,
                image_id,
            })
        })
    }
}

fn snap_and_child(snap_id: u64, child: &ChildSpec) -> Encoder {
    let mut e = Encoder::new();
    e.u64(snap_id);
    child.encode(&mut e);
    e
}

/// Clone v2: counts `child` among the children of snapshot `snap_id`.
pub fn child_attach(snap_id: u64, child: &ChildSpec) -> Call {
    rbd("child_attach", snap_and_child(snap_id, child))
}

pub fn child_detach(snap_id: u64, child: &ChildSpec) -> Call {
    rbd("child_detach", snap_and_child(snap_id, child))
}

pub fn children_list(snap_id: u64) -> Call {
    let mut e = Encoder::new();
    e.u64(snap_id);
    rbd("children_list", e)
}

/// `children_list` output: `ChildImageSpecs`, in their set order.
pub fn decode_child_specs(out: &[u8]) -> DecodeResult<Vec<ChildSpec>> {
    let mut d = Decoder::new(out);
    let n = d.count(6)?;
    (0..n).map(|_| ChildSpec::decode(&mut d)).collect()
}

/// Sets the operation features in `mask` to `features`.
pub fn op_features_set(features: u64, mask: u64) -> Call {
    let mut e = Encoder::new();
    e.u64(features).u64(mask);
    rbd("op_features_set", e)
}

pub fn set_protection_status(snap_id: u64, status: u8) -> Call {
    let mut e = Encoder::new();
    e.u64(snap_id).u8(status);
    rbd("set_protection_status", e)
}

/// Moves a snapshot to the trash namespace (a clone v2 parent snapshot is
/// removed this way while children still read it).
pub fn snapshot_trash_add(snap_id: u64) -> Call {
    let mut e = Encoder::new();
    e.u64(snap_id);
    rbd("snapshot_trash_add", e)
}

/// The name of the image with this id, from the pool's directory.
pub fn dir_get_name(id: &str) -> Call {
    let mut e = Encoder::new();
    e.str(id);
    rbd("dir_get_name", e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ceph::encoding::hex;

    fn spec() -> ParentSpec {
        ParentSpec {
            pool_id: 2,
            namespace: "ns".into(),
            image_id: "abc".into(),
            snap_id: 4,
        }
    }

    #[test]
    fn parent_attach_encodes_spec_overlap_and_reattach() {
        let call = parent_attach(&spec(), 1 << 30, false);
        let mut expected = hex("01 01 1d 00 00 00 02 00 00 00 00 00 00 00 02 00 00 00");
        expected.extend(b"ns");
        expected.extend(hex("03 00 00 00"));
        expected.extend(b"abc");
        expected.extend(hex("04 00 00 00 00 00 00 00 00 00 00 40 00 00 00 00 00"));
        assert_eq!((call.method, call.input), ("parent_attach", expected));
    }

    #[test]
    fn v1_children_keys_leave_out_the_namespace() {
        let call = add_child(&spec(), "c1");
        let mut expected = hex("02 00 00 00 00 00 00 00 03 00 00 00");
        expected.extend(b"abc");
        expected.extend(hex("04 00 00 00 00 00 00 00 02 00 00 00"));
        expected.extend(b"c1");
        assert_eq!(call.input, expected);
        let out = [hex("02 00 00 00 01 00 00 00"), b"a".to_vec()].concat();
        assert!(decode_children(&out).is_err());
        let out = [hex("01 00 00 00 01 00 00 00"), b"a".to_vec()].concat();
        assert_eq!(decode_children(&out).unwrap(), vec!["a".to_string()]);
    }

    #[test]
    fn child_specs_round_trip_with_and_without_namespace() {
        let child = ChildSpec {
            pool_id: 3,
            namespace: "n".into(),
            image_id: "id".into(),
        };
        let call = child_attach(7, &child);
        let mut expected = hex("07 00 00 00 00 00 00 00 02 01 13 00 00 00 03 00 00 00 00 00 00 00");
        expected.extend(hex("02 00 00 00"));
        expected.extend(b"id");
        expected.extend(hex("01 00 00 00"));
        expected.extend(b"n");
        assert_eq!(call.input, expected);
        let list = [hex("01 00 00 00"), call.input[8..].to_vec()].concat();
        assert_eq!(decode_child_specs(&list).unwrap(), vec![child]);
        // A v1 ChildImageSpec has no namespace.
        let v1 = [
            hex("01 00 00 00 01 01 0e 00 00 00 03 00 00 00 00 00 00 00 02 00 00 00"),
            b"id".to_vec(),
        ]
        .concat();
        assert_eq!(decode_child_specs(&v1).unwrap()[0].namespace, "");
    }
}
