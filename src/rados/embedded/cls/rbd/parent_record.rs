//! A clone's parent link as its header stores it (the `parent` key:
//! `cls_rbd_parent`), which the header, snapshot and parent methods read.

use super::{encoded, opt_key};
use crate::ceph::encoding::{DecodeResult, Decoder};
use crate::rados::embedded::cls::{ClsResult, ObjectCtx, eio};

/// `cls_rbd_parent` (v2; v1 decoded too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentRecord {
    pub pool: i64,
    pub namespace: String,
    pub image_id: String,
    pub snap: u64,
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
