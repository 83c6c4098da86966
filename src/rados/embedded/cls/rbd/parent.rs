//! The parent methods: a clone's parent link and its overlap, at the
//! head or at a snapshot.

use super::parent_record::read_parent;
use super::snapshots::read_snap;
use super::{args, check_exists, encoded, layering};
use crate::ceph::NOSNAP;
use crate::rados::embedded::cls::{ClsResult, Method, ObjectCtx, RD};

pub const METHODS: &[Method] = &[
    Method::new("parent_get", RD, parent_get),
    Method::new("parent_overlap_get", RD, parent_overlap_get),
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

#[cfg(test)]
crate::rados::embedded::cls::replay::osd_fixtures!("rbd": parent_get, parent_overlap_get);
