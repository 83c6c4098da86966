//! A clone's parent link in its header (`parent`: `cls_rbd_parent`).

use super::snapshots::read_snap;
use super::{args, check_exists, encoded, layering, opt_key};
use crate::rados::embedded::cls::{ClsResult, Method, ObjectCtx, RD, eio};
use crate::rbd::cls_rbd::NOSNAP;
use crate::rbd::encoding::{DecodeResult, Decoder};

pub const METHODS: &[Method] = &[
    Method::new("parent_get", RD, parent_get),
    Method::new("parent_overlap_get", RD, parent_overlap_get),
];

/// `cls_rbd_parent` (v2; v1 decoded too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentRecord {
    pool: i64,
    namespace: String,
    image_id: String,
    snap: u64,
    pub head_overlap: Option<u64>,
}

impl ParentRecord {
    fn decode(bytes: &[u8]) -> DecodeResult<ParentRecord> {
        Decoder::new(bytes).versioned(2, |v, d| {
            if v >= 2 {
                Ok(ParentRecord {
                    pool: d.i64()?,
                    namespace: d.string()?,
                    image_id: d.string()?,
                    snap: d.u64()?,
                    head_overlap: d.opt_u64()?,
                })
            } else {
                Ok(ParentRecord {
                    pool: d.i64()?,
                    namespace: String::new(),
                    image_id: d.string()?,
                    snap: d.u64()?,
                    head_overlap: Some(d.u64()?),
                })
            }
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        encoded(|e| {
            e.versioned(2, 2, |b| {
                b.i64(self.pool)
                    .str(&self.namespace)
                    .str(&self.image_id)
                    .u64(self.snap);
                match self.head_overlap {
                    Some(o) => b.u8(1).u64(o),
                    None => b.u8(0),
                };
            });
        })
    }
}

pub fn read_parent(ctx: &dyn ObjectCtx) -> ClsResult<Option<ParentRecord>> {
    opt_key(ctx, "parent")?
        .map(|v| ParentRecord::decode(&v).map_err(eio))
        .transpose()
}

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
