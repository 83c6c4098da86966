//! The parent methods: a clone's parent link and its overlap, at the
//! head or at a snapshot.

use super::parent_record::{ParentRecord, read_parent};
use super::snapshots::{read_snap, snapshots, write_snap};
use super::{args, check_exists, encoded, layering, opt_u64_key, set_op_features, u64_key};
use crate::ceph::NOSNAP;
use crate::ceph::cls_rbd_layering::OP_CLONE_CHILD;
use crate::ceph::features;
use crate::rados::embedded::cls::{ClsResult, Method, ObjectCtx, RD, WR};

pub const METHODS: &[Method] = &[
    Method::new("parent_get", RD, parent_get),
    Method::new("parent_overlap_get", RD, parent_overlap_get),
    Method::new("parent_attach", RD | WR, parent_attach),
    Method::new("parent_detach", RD | WR, parent_detach),
];

/// Out: `cls::rbd::ParentImageSpec` (pool -1 and no snapshot for none;
/// an image without layering has none, whatever its `parent` key says).
fn parent_get(ctx: &mut dyn ObjectCtx, _input: &[u8]) -> ClsResult<Vec<u8>> {
    check_exists(ctx)?;
    let p = if layering(ctx)? {
        read_parent(ctx)?
    } else {
        None
    };
    Ok(encoded(|e| {
        e.versioned(1, 1, |b| match &p {
            Some(p) => {
                b.i64(p.pool).str(&p.namespace).str(&p.image_id).u64(p.snap);
            }
            None => {
                b.i64(-1).str("").str("").u64(NOSNAP);
            }
        });
    }))
}

/// In: snap id. Out: the overlap at that snapshot, as an optional u64.
fn parent_overlap_get(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let snap = args(input, |d| d.u64())?;
    check_exists(ctx)?;
    let overlap = if !layering(ctx)? {
        None
    } else if snap == NOSNAP {
        read_parent(ctx)?.and_then(|p| p.head_overlap)
    } else {
        read_snap(ctx, snap)?.parent_overlap
    };
    Ok(encoded(|e| {
        match overlap {
            Some(o) => e.u8(1).u64(o),
            None => e.u8(0),
        };
    }))
}

/// In: `ParentImageSpec`, overlap u64, [reattach bool]. Links the image to
/// its parent, the overlap clipped to the image; an existing link (other
/// than the same spec without a head overlap) needs `reattach`.
fn parent_attach(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let (mut parent, reattach) = args(input, |d| {
        let spec = d.versioned(1, |_, d| {
            Ok(ParentRecord {
                pool: d.i64()?,
                namespace: d.string()?,
                image_id: d.string()?,
                snap: d.u64()?,
                head_overlap: None,
            })
        })?;
        let overlap = d.u64()?;
        let reattach = if d.is_empty() { false } else { d.bool()? };
        Ok((
            ParentRecord {
                head_overlap: Some(overlap),
                ..spec
            },
            reattach,
        ))
    })?;
    check_exists(ctx)?;
    if !layering(ctx)? {
        return Err(libc::ENOEXEC);
    }
    let exists = parent.pool >= 0 && !parent.image_id.is_empty() && parent.snap != NOSNAP;
    if !exists || parent.head_overlap == Some(0) {
        return Err(libc::EINVAL);
    }
    if let Some(on_disk) = read_parent(ctx)? {
        let same_spec = ParentRecord {
            head_overlap: parent.head_overlap,
            ..on_disk.clone()
        } == parent;
        if (on_disk.head_overlap.is_some() || !same_spec) && !reattach {
            return Err(libc::EEXIST);
        }
    }
    let size = u64_key(ctx, "size")?;
    parent.head_overlap = parent.head_overlap.map(|o| o.min(size));
    ctx.omap_set("parent", parent.encode())?;
    Ok(Vec::new())
}

/// The head stops reading through its parent. Snapshots that still do
/// keep the link, unless deep-flatten copied their data up too (then
/// their overlaps go); with no reference left, so do the link and the
/// image's clone-child role.
fn parent_detach(ctx: &mut dyn ObjectCtx, _input: &[u8]) -> ClsResult<Vec<u8>> {
    check_exists(ctx)?;
    let feats = opt_u64_key(ctx, "features")?.ok_or(libc::ENOEXEC)?;
    if feats & features::LAYERING == 0 {
        return Err(libc::ENOEXEC);
    }
    let mut parent = read_parent(ctx)?.ok_or(libc::ENOENT)?;
    if parent.head_overlap.is_none() {
        return Err(libc::ENOENT);
    }
    let mut child_snaps = false;
    for mut snap in snapshots(ctx)? {
        if snap.parent_overlap.is_none() {
            continue;
        }
        if feats & features::DEEP_FLATTEN == 0 {
            child_snaps = true;
            break;
        }
        snap.parent_overlap = None;
        write_snap(ctx, &snap)?;
    }
    if child_snaps {
        parent.head_overlap = None;
        ctx.omap_set("parent", parent.encode())?;
    } else {
        ctx.omap_remove("parent")?;
        set_op_features(ctx, 0, OP_CLONE_CHILD)?;
    }
    Ok(Vec::new())
}

#[cfg(test)]
crate::rados::embedded::cls::replay::osd_fixtures!("rbd": parent_get, parent_overlap_get, parent_attach, parent_detach);
