//! The image header (`rbd_header.<id>`): creation, size, features, object
//! prefix, data pool, striping, flags, timestamps and metadata.

use super::snapshots::read_snap;
use super::{
    args, check_exists, decode_stored, encoded, key, opt_key, opt_u64_key, set_u64, u64_key,
};
use crate::ceph::NOSNAP;
use crate::ceph::cls_rbd_layering::OP_ALL;
use crate::ceph::features;
use crate::rados::embedded::cls::{ClsResult, Method, ObjectCtx, RD, WR};

pub const METHODS: &[Method] = &[
    Method::new("create", RD | WR, create),
    Method::new("get_features", RD, get_features),
    Method::new("get_size", RD, get_size),
    Method::new("set_size", RD | WR, set_size),
    Method::new("get_object_prefix", RD, get_object_prefix),
    Method::new("get_data_pool", RD, get_data_pool),
    Method::new("get_all_features", RD, get_all_features),
    Method::new("get_stripe_unit_count", RD, get_stripe_unit_count),
    Method::new("get_create_timestamp", RD, get_create_timestamp),
    Method::new("get_access_timestamp", RD, get_access_timestamp),
    Method::new("get_modify_timestamp", RD, get_modify_timestamp),
    Method::new("get_flags", RD, get_flags),
    Method::new("set_flags", RD | WR, set_flags),
    Method::new("op_features_get", RD, op_features_get),
    Method::new("op_features_set", RD | WR, op_features_set),
    Method::new("metadata_list", RD, metadata_list),
    Method::new("set_modify_timestamp", RD | WR, set_modify_timestamp),
    Method::new("set_access_timestamp", RD | WR, set_access_timestamp),
];

/// Features a read-only open cannot do without (`RBD_FEATURES_INCOMPATIBLE`).
const INCOMPATIBLE: u64 = features::LAYERING | features::STRIPINGV2 | features::DATA_POOL | 0x800;
/// Features a read-write open cannot do without (`RBD_FEATURES_RW_INCOMPATIBLE`).
const RW_INCOMPATIBLE: u64 = features::ALL;

/// In: size u64, order u8, features u64, object prefix, [data pool i64].
fn create(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let (size, order, feat, prefix, data_pool) = args(input, |d| {
        let fixed = (d.u64()?, d.u8()?, d.u64()?, d.string()?);
        let pool = if d.is_empty() { -1 } else { d.i64()? };
        Ok((fixed.0, fixed.1, fixed.2, fixed.3, pool))
    })?;
    if feat & !features::ALL != 0 {
        return Err(libc::ENOSYS);
    }
    if prefix.is_empty() {
        return Err(libc::EINVAL);
    }
    if !matches!(ctx.omap_get("object_prefix"), Err(libc::ENOENT) | Ok(None)) {
        return Err(libc::EEXIST);
    }
    if feat & features::OPERATIONS != 0 {
        return Err(libc::EINVAL);
    }
    if (feat & features::DATA_POOL != 0) != (data_pool != -1) {
        return Err(libc::EINVAL);
    }
    let now = ctx.now();
    let t = encoded(|e| {
        e.utime(now.0, now.1);
    });
    set_u64(ctx, "size", size)?;
    ctx.omap_set("order", vec![order])?;
    set_u64(ctx, "features", feat)?;
    ctx.omap_set(
        "object_prefix",
        encoded(|e| {
            e.str(&prefix);
        }),
    )?;
    set_u64(ctx, "snap_seq", 0)?;
    ctx.omap_set("create_timestamp", t.clone())?;
    ctx.omap_set("access_timestamp", t.clone())?;
    ctx.omap_set("modify_timestamp", t)?;
    if data_pool != -1 {
        ctx.omap_set(
            "data_pool_id",
            encoded(|e| {
                e.i64(data_pool);
            }),
        )?;
    }
    Ok(Vec::new())
}

/// In: snap id, [read-only bool]. Out: features u64, incompatible u64.
fn get_features(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let read_only = args(input, |d| {
        d.u64()?;
        if d.is_empty() { Ok(false) } else { d.bool() }
    })?;
    let f = u64_key(ctx, "features")?;
    let incompatible = f & if read_only {
        INCOMPATIBLE
    } else {
        RW_INCOMPATIBLE
    };
    Ok(encoded(|e| {
        e.u64(f).u64(incompatible);
    }))
}

/// In: snap id. Out: order u8, size u64 (at that snapshot).
fn get_size(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let snap = args(input, |d| d.u64())?;
    let order = decode_stored(&key(ctx, "order")?, |d| d.u8())?;
    let size = if snap == NOSNAP {
        u64_key(ctx, "size")?
    } else {
        read_snap(ctx, snap)?.image_size
    };
    Ok(encoded(|e| {
        e.u8(order).u64(size);
    }))
}

/// In: size u64. Shrinking below the parent overlap shrinks the overlap.
fn set_size(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let size = args(input, |d| d.u64())?;
    let orig = u64_key(ctx, "size")?;
    if size < orig
        && let Some(mut parent) = super::parent_record::read_parent(ctx)?
        && parent.head_overlap.is_some_and(|o| o > size)
    {
        parent.head_overlap = Some(size);
        ctx.omap_set("parent", parent.encode())?;
    }
    set_u64(ctx, "size", size)?;
    Ok(Vec::new())
}

/// Out: the object prefix, as stored (an encoded string).
fn get_object_prefix(ctx: &mut dyn ObjectCtx, _input: &[u8]) -> ClsResult<Vec<u8>> {
    let v = key(ctx, "object_prefix")?;
    decode_stored(&v, |d| d.string())?;
    Ok(v)
}

/// Out: the data pool id, -1 for none.
fn get_data_pool(ctx: &mut dyn ObjectCtx, _input: &[u8]) -> ClsResult<Vec<u8>> {
    let pool = match opt_key(ctx, "data_pool_id")? {
        Some(v) => decode_stored(&v, |d| d.i64())?,
        None => -1,
    };
    Ok(encoded(|e| {
        e.i64(pool);
    }))
}

/// Out: every feature this class knows.
fn get_all_features(_ctx: &mut dyn ObjectCtx, _input: &[u8]) -> ClsResult<Vec<u8>> {
    Ok(encoded(|e| {
        e.u64(features::ALL);
    }))
}

/// Out: stripe unit u64, stripe count u64; ENOEXEC without STRIPINGV2.
fn get_stripe_unit_count(ctx: &mut dyn ObjectCtx, _input: &[u8]) -> ClsResult<Vec<u8>> {
    check_exists(ctx)?;
    let f = opt_u64_key(ctx, "features")?.ok_or(libc::ENOEXEC)?;
    if f & features::STRIPINGV2 == 0 {
        return Err(libc::ENOEXEC);
    }
    let order = decode_stored(&key(ctx, "order")?, |d| d.u8())?;
    let unit = opt_u64_key(ctx, "stripe_unit")?.unwrap_or(1 << order);
    let count = opt_u64_key(ctx, "stripe_count")?.unwrap_or(1);
    Ok(encoded(|e| {
        e.u64(unit).u64(count);
    }))
}

/// Out: the stored `utime_t` under `name`, zero when never set.
fn get_timestamp(ctx: &dyn ObjectCtx, name: &str) -> ClsResult<Vec<u8>> {
    Ok(match opt_key(ctx, name)? {
        Some(v) => {
            decode_stored(&v, |d| d.utime())?;
            v
        }
        None => vec![0; 8],
    })
}

fn get_create_timestamp(ctx: &mut dyn ObjectCtx, _input: &[u8]) -> ClsResult<Vec<u8>> {
    get_timestamp(ctx, "create_timestamp")
}

fn get_access_timestamp(ctx: &mut dyn ObjectCtx, _input: &[u8]) -> ClsResult<Vec<u8>> {
    get_timestamp(ctx, "access_timestamp")
}

fn get_modify_timestamp(ctx: &mut dyn ObjectCtx, _input: &[u8]) -> ClsResult<Vec<u8>> {
    get_timestamp(ctx, "modify_timestamp")
}

/// Stores the current time under `name`.
fn set_timestamp(ctx: &mut dyn ObjectCtx, name: &str) -> ClsResult<Vec<u8>> {
    check_exists(ctx)?;
    let now = ctx.now();
    ctx.omap_set(
        name,
        encoded(|e| {
            e.utime(now.0, now.1);
        }),
    )?;
    Ok(Vec::new())
}

fn set_modify_timestamp(ctx: &mut dyn ObjectCtx, _input: &[u8]) -> ClsResult<Vec<u8>> {
    set_timestamp(ctx, "modify_timestamp")
}

fn set_access_timestamp(ctx: &mut dyn ObjectCtx, _input: &[u8]) -> ClsResult<Vec<u8>> {
    set_timestamp(ctx, "access_timestamp")
}

/// In: snap id. Out: the image's (or snapshot's) flags u64.
fn get_flags(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let snap = args(input, |d| d.u64())?;
    let flags = if snap == NOSNAP {
        opt_u64_key(ctx, "flags")?.unwrap_or(0)
    } else {
        read_snap(ctx, snap)?.flags
    };
    Ok(encoded(|e| {
        e.u64(flags);
    }))
}

/// In: flags u64, mask u64, [snap id]: the masked bits take `flags`.
fn set_flags(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let (flags, mask, snap) = args(input, |d| {
        let (flags, mask) = (d.u64()?, d.u64()?);
        let snap = if d.is_empty() { NOSNAP } else { d.u64()? };
        Ok((flags, mask, snap))
    })?;
    let apply = |orig: u64| (orig & !mask) | (flags & mask);
    if snap == NOSNAP {
        let orig = opt_u64_key(ctx, "flags")?.unwrap_or(0);
        set_u64(ctx, "flags", apply(orig))?;
    } else {
        let mut record = read_snap(ctx, snap)?;
        record.flags = apply(record.flags);
        super::snapshots::write_snap(ctx, &record)?;
    }
    Ok(Vec::new())
}

/// Out: the op features u64 (0 when none).
fn op_features_get(ctx: &mut dyn ObjectCtx, _input: &[u8]) -> ClsResult<Vec<u8>> {
    let f = opt_u64_key(ctx, "op_features")?.unwrap_or(0);
    Ok(encoded(|e| {
        e.u64(f);
    }))
}

/// In: op features u64, mask u64 (known operation features only).
fn op_features_set(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let (op_features, mask) = args(input, |d| Ok((d.u64()?, d.u64()?)))?;
    if mask & !OP_ALL != 0 {
        return Err(libc::EINVAL);
    }
    super::set_op_features(ctx, op_features, mask)?;
    Ok(Vec::new())
}

/// In: start after, max (0 = 64). Out: map of key -> value bytes.
fn metadata_list(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let (start, max) = args(input, |d| Ok((d.string()?, d.u64()?)))?;
    let max = if max == 0 {
        64
    } else {
        max.min(1 << 20) as usize
    };
    let entries = ctx.omap_list(&format!("metadata_{start}"), "metadata_", max)?;
    Ok(encoded(|e| {
        e.u32(entries.len() as u32);
        for (k, v) in &entries {
            e.str(&k["metadata_".len()..]).bytes(v);
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{header, run};
    use crate::ceph::features;
    use crate::ceph::{NOSNAP, cls_rbd as client};
    use crate::rados::embedded::cls::Staged;

    #[test]
    fn create_and_read_the_header() {
        let mut h = header();
        let size = run(&mut h, client::get_size(NOSNAP)).unwrap();
        assert_eq!(client::decode_size(&size).unwrap(), (22, 1 << 30));
        let f = run(&mut h, client::get_features(true)).unwrap();
        assert_eq!(client::decode_features(&f).unwrap(), (61, 1));
        let f = run(&mut h, client::get_features(false)).unwrap();
        assert_eq!(client::decode_features(&f).unwrap(), (61, 61));
        let prefix = run(&mut h, client::get_object_prefix()).unwrap();
        assert_eq!(client::decode_string(&prefix).unwrap(), "rbd_data.abc");
        assert_eq!(
            client::decode_i64(&run(&mut h, client::get_data_pool()).unwrap()).unwrap(),
            -1
        );
        assert_eq!(
            client::decode_snapcontext(&run(&mut h, client::get_snapcontext()).unwrap()).unwrap(),
            (0, vec![])
        );
        assert_eq!(
            client::decode_utime(&run(&mut h, client::get_create_timestamp()).unwrap()).unwrap(),
            (1_700_000_000, 5)
        );
        assert_eq!(
            client::decode_u64(&run(&mut h, client::get_flags(NOSNAP)).unwrap()).unwrap(),
            0
        );
        let parent = client::decode_parent(&run(&mut h, client::parent_get()).unwrap()).unwrap();
        assert!(!parent.exists());
        assert_eq!(
            client::decode_overlap(&run(&mut h, client::parent_overlap_get(NOSNAP)).unwrap())
                .unwrap(),
            None
        );
        assert_eq!(
            run(&mut h, client::get_stripe_unit_count()),
            Err(libc::ENOEXEC)
        );
        // Stored keys are Ceph's.
        assert_eq!(h.omap["order"], vec![22]);
        assert_eq!(h.omap["snap_seq"], vec![0; 8]);
    }

    #[test]
    fn create_errors() {
        let call = |ctx: &mut Staged, method: &str, input: &[u8]| {
            crate::rados::embedded::cls::call(ctx, "rbd", method, input)
        };
        let mut h = header();
        assert_eq!(
            run(&mut h, client::create(1, 22, 1, "rbd_data.x", None)),
            Err(libc::EEXIST)
        );
        let mut fresh = Staged::empty();
        assert_eq!(
            run(&mut fresh, client::create(1, 22, 1 << 20, "p", None)),
            Err(libc::ENOSYS)
        );
        assert_eq!(
            run(&mut fresh, client::create(1, 22, 1, "", None)),
            Err(libc::EINVAL)
        );
        assert_eq!(
            run(
                &mut fresh,
                client::create(1, 22, features::OPERATIONS, "p", None)
            ),
            Err(libc::EINVAL)
        );
        assert_eq!(
            run(&mut fresh, client::create(1, 22, 1, "p", Some(3))),
            Err(libc::EINVAL)
        );
        assert_eq!(call(&mut fresh, "create", &[1, 2]), Err(libc::EINVAL));
        let mut missing = Staged::default();
        assert_eq!(
            run(&mut missing, client::get_size(NOSNAP)),
            Err(libc::ENOENT)
        );
        assert_eq!(
            run(&mut missing, client::get_snapcontext()),
            Err(libc::ENOENT)
        );
        assert_eq!(run(&mut missing, client::parent_get()), Err(libc::ENOENT));
        assert_eq!(call(&mut missing, "bogus", &[]), Err(libc::EOPNOTSUPP));
    }

    #[test]
    fn size_flags_and_timestamps() {
        let mut h = header();
        run(&mut h, client::set_size(5 << 20)).unwrap();
        assert_eq!(
            client::decode_size(&run(&mut h, client::get_size(NOSNAP)).unwrap()).unwrap(),
            (22, 5 << 20)
        );
        run(&mut h, client::set_flags(NOSNAP, 3, 3)).unwrap();
        run(&mut h, client::set_flags(NOSNAP, 0, 2)).unwrap();
        assert_eq!(
            client::decode_u64(&run(&mut h, client::get_flags(NOSNAP)).unwrap()).unwrap(),
            1
        );
        assert_eq!(run(&mut h, client::set_flags(9, 1, 1)), Err(libc::ENOENT));
        assert_eq!(
            run(&mut Staged::default(), client::set_size(1)),
            Err(libc::ENOENT)
        );
        h.clock = Some((1_800_000_000, 0));
        run(&mut h, client::set_modify_timestamp()).unwrap();
        assert_eq!(
            client::decode_utime(&run(&mut h, client::get_modify_timestamp()).unwrap()).unwrap(),
            (1_800_000_000, 0)
        );
        assert_eq!(
            client::decode_u64(&run(&mut h, client::op_features_get()).unwrap()).unwrap(),
            0
        );
    }
}

#[cfg(test)]
crate::rados::embedded::cls::replay::osd_fixtures!("rbd": create, get_features, get_size, set_size, get_object_prefix, get_data_pool, get_all_features, get_stripe_unit_count, get_create_timestamp, get_access_timestamp, get_modify_timestamp, get_flags, set_flags, op_features_get, op_features_set, metadata_list, set_modify_timestamp, set_access_timestamp);
