//! cls_rbd, server side: the methods of Ceph's `rbd` class that rbdimg
//! calls, with pacific's encodings, omap keys and errors (the client
//! halves are in `ceph::cls_rbd`). One file per group of `cls_rbd.cc`'s
//! registration: the image header, its snapshots, its parent, the
//! `rbd_id.<name>` objects, the `rbd_directory`, the object maps and the
//! children of clone parents; `parent_record.rs` holds the parent link the
//! header, snapshot and parent groups all read.

mod children;
mod directory;
mod header;
mod image_id;
mod object_map;
mod parent;
mod parent_record;
mod snapshots;

use super::{Class, ClsResult, ObjectCtx, einval, eio};
use crate::ceph::encoding::{DecodeResult, Decoder, Encoder};
use crate::ceph::features;

pub const CLASS: Class = Class {
    name: "rbd",
    groups: &[
        header::METHODS,
        snapshots::METHODS,
        parent::METHODS,
        image_id::METHODS,
        directory::METHODS,
        object_map::METHODS,
        children::METHODS,
    ],
};

fn encoded(f: impl FnOnce(&mut Encoder)) -> Vec<u8> {
    let mut e = Encoder::new();
    f(&mut e);
    e.into_bytes()
}

/// Decodes a method's whole input with `f`; a malformed one is EINVAL.
fn args<T>(input: &[u8], f: impl FnOnce(&mut Decoder) -> DecodeResult<T>) -> ClsResult<T> {
    f(&mut Decoder::new(input)).map_err(einval)
}

/// A key's value; ENOENT when the key or the object is missing.
fn key(ctx: &dyn ObjectCtx, k: &str) -> ClsResult<Vec<u8>> {
    ctx.omap_get(k)?.ok_or(libc::ENOENT)
}

/// A key's value, `None` when the key (or the object) is missing.
fn opt_key(ctx: &dyn ObjectCtx, k: &str) -> ClsResult<Option<Vec<u8>>> {
    match ctx.omap_get(k) {
        Err(libc::ENOENT) => Ok(None),
        other => other,
    }
}

fn decode_stored<T>(bytes: &[u8], f: impl FnOnce(&mut Decoder) -> DecodeResult<T>) -> ClsResult<T> {
    f(&mut Decoder::new(bytes)).map_err(eio)
}

fn u64_key(ctx: &dyn ObjectCtx, k: &str) -> ClsResult<u64> {
    decode_stored(&key(ctx, k)?, |d| d.u64())
}

fn opt_u64_key(ctx: &dyn ObjectCtx, k: &str) -> ClsResult<Option<u64>> {
    opt_key(ctx, k)?
        .map(|v| decode_stored(&v, |d| d.u64()))
        .transpose()
}

fn set_u64(ctx: &mut dyn ObjectCtx, k: &str, v: u64) -> ClsResult<()> {
    ctx.omap_set(
        k,
        encoded(|e| {
            e.u64(v);
        }),
    )
}

/// cls_rbd's `check_exists`: a stat of the object.
fn check_exists(ctx: &dyn ObjectCtx) -> ClsResult<()> {
    if ctx.exists() {
        Ok(())
    } else {
        Err(libc::ENOENT)
    }
}

/// cls_rbd's `require_feature(LAYERING)`: false for an image without
/// it, or without features at all (a format 1 header).
fn layering(ctx: &dyn ObjectCtx) -> ClsResult<bool> {
    Ok(opt_u64_key(ctx, "features")?.is_some_and(|f| f & features::LAYERING != 0))
}

/// cls_rbd's `image::set_op_features`: the operation features in `mask`
/// take `op_features`; the `operations` feature bit is set while any is.
fn set_op_features(ctx: &mut dyn ObjectCtx, op_features: u64, mask: u64) -> ClsResult<()> {
    let features = u64_key(ctx, "features")?;
    let orig = opt_u64_key(ctx, "op_features")?.unwrap_or(0);
    let new = (orig & !mask) | (op_features & mask);
    if new == orig {
        return Ok(());
    }
    let updated = if new == 0 {
        ctx.omap_remove("op_features")?;
        features & !features::OPERATIONS
    } else {
        set_u64(ctx, "op_features", new)?;
        features | features::OPERATIONS
    };
    if updated != features {
        set_u64(ctx, "features", updated)?;
    }
    Ok(())
}

/// Image ids are non-empty and alphanumeric.
fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod test_util {
    use crate::ceph::features;
    use crate::ceph::{Call, cls_rbd as client};
    use crate::rados::embedded::cls::{ClsResult, Staged};

    pub fn run(ctx: &mut Staged, call: Call) -> ClsResult<Vec<u8>> {
        assert_eq!(call.class, "rbd");
        crate::rados::embedded::cls::call(ctx, "rbd", call.method, &call.input)
    }

    /// A 1 GiB header with the default features, made at a fixed time.
    pub fn header() -> Staged {
        let mut h = Staged {
            clock: Some((1_700_000_000, 5)),
            ..Staged::empty()
        };
        run(
            &mut h,
            client::create(1 << 30, 22, features::DEFAULT, "rbd_data.abc", None),
        )
        .unwrap();
        h
    }
}
