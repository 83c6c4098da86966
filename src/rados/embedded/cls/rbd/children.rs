//! The children of clone parents, both ways cls_rbd keeps them: clone v1
//! in the pool's `rbd_children` object (a key per parent snapshot holding
//! the set of child ids), clone v2 in the parent's header (the snapshot's
//! `child_count` and a `snap_children_<id>` key holding the child specs).

use super::snapshots::{SNAP_NS_TRASH, read_snap, snapshots, write_snap};
use super::{args, encoded, opt_key, set_op_features};
use crate::ceph::cls_rbd_layering::OP_CLONE_PARENT;
use crate::ceph::encoding::{DecodeResult, Decoder, Encoder};
use crate::rados::embedded::cls::{ClsResult, Method, ObjectCtx, RD, WR, eio};

pub const METHODS: &[Method] = &[
    Method::new("add_child", RD | WR, add_child),
    Method::new("remove_child", RD | WR, remove_child),
    Method::new("get_children", RD, get_children),
    Method::new("child_attach", RD | WR, child_attach),
    Method::new("child_detach", RD | WR, child_detach),
    Method::new("children_list", RD, children_list),
];

/// `rbd_children`'s key for a parent snapshot: its pool, image id and snap
/// id, encoded (binary). The store's omap keys are text, so each byte
/// becomes the character of that code point: distinct keys stay distinct
/// and keep their order.
fn parent_key(pool: u64, image_id: &str, snap: u64) -> String {
    let bytes = encoded(|e| {
        e.u64(pool).str(image_id).u64(snap);
    });
    bytes.iter().map(|&b| b as char).collect()
}

/// In: parent pool u64, image id, snap id, [child id].
fn parent_and_child(input: &[u8], with_child: bool) -> ClsResult<(String, Option<String>)> {
    args(input, |d| {
        let key = parent_key(d.u64()?, &d.string()?, d.u64()?);
        let child = if with_child { Some(d.string()?) } else { None };
        Ok((key, child))
    })
}

fn decode_ids(bytes: &[u8]) -> DecodeResult<Vec<String>> {
    let mut d = Decoder::new(bytes);
    let n = d.count(4)?;
    (0..n).map(|_| d.string()).collect()
}

fn encode_ids(ids: &[String]) -> Vec<u8> {
    encoded(|e| {
        e.u32(ids.len() as u32);
        for id in ids {
            e.str(id);
        }
    })
}

fn children_of(ctx: &dyn ObjectCtx, key: &str) -> ClsResult<Option<Vec<String>>> {
    opt_key(ctx, key)?
        .map(|v| decode_ids(&v).map_err(eio))
        .transpose()
}

/// Clone v1: adds the child to the parent's set (creating the object);
/// EEXIST when it is there.
fn add_child(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let (key, child) = parent_and_child(input, true)?;
    let child = child.expect("asked for");
    let mut ids = children_of(ctx, &key)?.unwrap_or_default();
    match ids.binary_search(&child) {
        Ok(_) => Err(libc::EEXIST),
        Err(at) => {
            ids.insert(at, child);
            ctx.omap_set(&key, encode_ids(&ids))?;
            Ok(Vec::new())
        }
    }
}

/// Clone v1: removes the child, and the key with its last child; ENOENT
/// when either is missing.
fn remove_child(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let (key, child) = parent_and_child(input, true)?;
    let child = child.expect("asked for");
    let mut ids = children_of(ctx, &key)?.ok_or(libc::ENOENT)?;
    let at = ids.binary_search(&child).map_err(|_| libc::ENOENT)?;
    ids.remove(at);
    if ids.is_empty() {
        ctx.omap_remove(&key)?;
    } else {
        ctx.omap_set(&key, encode_ids(&ids))?;
    }
    Ok(Vec::new())
}

/// Clone v1: the parent snapshot's children; ENOENT when it has none.
fn get_children(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let (key, _) = parent_and_child(input, false)?;
    let ids = children_of(ctx, &key)?.ok_or(libc::ENOENT)?;
    Ok(encode_ids(&ids))
}

/// `cls::rbd::ChildImageSpec` as stored: pool, image id, namespace (v2).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Child {
    pool: i64,
    namespace: String,
    image_id: String,
}

impl Child {
    fn decode(d: &mut Decoder) -> DecodeResult<Child> {
        d.versioned(2, |v, d| {
            let pool = d.i64()?;
            let image_id = d.string()?;
            let namespace = if v >= 2 { d.string()? } else { String::new() };
            Ok(Child {
                pool,
                namespace,
                image_id,
            })
        })
    }

    fn encode(&self, e: &mut Encoder) {
        e.versioned(2, 1, |b| {
            b.i64(self.pool).str(&self.image_id).str(&self.namespace);
        });
    }
}

fn children_key(snap: u64) -> String {
    format!("snap_children_{snap:016x}")
}

/// The snapshot's v2 children, in the set's order (pool, namespace, id).
fn snap_children(ctx: &dyn ObjectCtx, snap: u64) -> ClsResult<Option<Vec<Child>>> {
    opt_key(ctx, &children_key(snap))?
        .map(|v| {
            let mut d = Decoder::new(&v);
            let n = d.count(6).map_err(eio)?;
            (0..n).map(|_| Child::decode(&mut d).map_err(eio)).collect()
        })
        .transpose()
}

fn write_children(ctx: &mut dyn ObjectCtx, snap: u64, children: &[Child]) -> ClsResult<()> {
    if children.is_empty() {
        return ctx.omap_remove(&children_key(snap));
    }
    ctx.omap_set(
        &children_key(snap),
        encoded(|e| {
            e.u32(children.len() as u32);
            for c in children {
                c.encode(e);
            }
        }),
    )
}

/// In: snap id, child spec.
fn snap_and_child(input: &[u8]) -> ClsResult<(u64, Child)> {
    args(input, |d| Ok((d.u64()?, Child::decode(d)?)))
}

/// Clone v2: counts the child on the parent snapshot (not one in the
/// trash: ENOENT) and marks the parent a clone parent.
fn child_attach(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let (snap, child) = snap_and_child(input)?;
    let mut record = read_snap(ctx, snap)?;
    if record.namespace_type() == SNAP_NS_TRASH {
        return Err(libc::ENOENT);
    }
    let mut children = snap_children(ctx, snap)?.unwrap_or_default();
    match children.binary_search(&child) {
        Ok(_) => return Err(libc::EEXIST),
        Err(at) => children.insert(at, child),
    }
    write_children(ctx, snap, &children)?;
    record.child_count += 1;
    write_snap(ctx, &record)?;
    set_op_features(ctx, OP_CLONE_PARENT, OP_CLONE_PARENT)?;
    Ok(Vec::new())
}

/// Clone v2: uncounts the child; the last child of the last snapshot with
/// children ends the image's clone-parent role.
fn child_detach(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let (snap, child) = snap_and_child(input)?;
    let mut record = read_snap(ctx, snap)?;
    let mut children = snap_children(ctx, snap)?.unwrap_or_default();
    if record.child_count as usize != children.len() {
        return Err(libc::EINVAL);
    }
    let at = children.binary_search(&child).map_err(|_| libc::ENOENT)?;
    children.remove(at);
    write_children(ctx, snap, &children)?;
    record.child_count -= 1;
    write_snap(ctx, &record)?;
    if record.child_count == 0
        && !snapshots(ctx)?
            .iter()
            .any(|s| s.id != snap && s.child_count > 0)
    {
        set_op_features(ctx, 0, OP_CLONE_PARENT)?;
    }
    Ok(Vec::new())
}

/// In: snap id. Out: its `ChildImageSpecs`; ENOENT when it has none.
fn children_list(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let snap = args(input, |d| d.u64())?;
    read_snap(ctx, snap)?;
    let children = snap_children(ctx, snap)?.ok_or(libc::ENOENT)?;
    Ok(encoded(|e| {
        e.u32(children.len() as u32);
        for c in &children {
            c.encode(e);
        }
    }))
}

#[cfg(test)]
crate::rados::embedded::cls::replay::osd_fixtures!("rbd": add_child, remove_child, get_children, child_attach, child_detach, children_list);
