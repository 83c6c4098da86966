//! cls_rbd, server side: the header, id, directory and object-map methods
//! of Ceph's `rbd` class with pacific's encodings, omap keys and errors
//! (the client halves are in `ceph::cls_rbd`).

use super::{ClsResult, ObjectCtx, einval, eio};
use crate::ceph::NOSNAP;
use crate::ceph::encoding::{DecodeResult, Decoder, Encoder};
use crate::ceph::features;
use crate::ceph::object_map::{MAX_OBJECTS, OBJECT_EXISTS, OBJECT_EXISTS_CLEAN, ObjectMap};

const MAXSNAP: u64 = 0xFFFF_FFFF_FFFF_FFFD;
const INCOMPATIBLE: u64 = features::LAYERING | features::STRIPINGV2 | features::DATA_POOL | 0x800;
const RW_INCOMPATIBLE: u64 = features::ALL;
const NS_USER: u32 = 0;
const NS_TRASH: u32 = 2;
const DIR_READY: u8 = 0;
const DIR_ADD_DISABLED: u8 = 1;
const PROTECTION_LAST: u8 = 3;

fn encoded(f: impl FnOnce(&mut Encoder)) -> Vec<u8> {
    let mut e = Encoder::new();
    f(&mut e);
    e.into_bytes()
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

fn check_exists(ctx: &dyn ObjectCtx) -> ClsResult<()> {
    if ctx.exists() {
        Ok(())
    } else {
        Err(libc::ENOENT)
    }
}

pub fn snapshot_key(id: u64) -> String {
    format!("snapshot_{id:016x}")
}

/// `cls_rbd_snap`, as nautilus+ OSDs store it (v8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapRecord {
    pub id: u64,
    pub name: String,
    pub image_size: u64,
    pub protection: u8,
    pub flags: u64,
    /// The encoded `SnapshotNamespace`, kept as sent.
    pub namespace: Vec<u8>,
    pub timestamp: (u32, u32),
    pub child_count: u32,
    pub parent_overlap: Option<u64>,
}

impl SnapRecord {
    fn namespace_type(&self) -> u32 {
        namespace_type(&self.namespace)
    }

    fn encode(&self) -> Vec<u8> {
        encoded(|e| {
            e.versioned(8, 8, |b| {
                b.u64(self.id)
                    .str(&self.name)
                    .u64(self.image_size)
                    .u8(self.protection)
                    .u64(self.flags)
                    .raw(&self.namespace)
                    .utime(self.timestamp.0, self.timestamp.1)
                    .u32(self.child_count);
                match self.parent_overlap {
                    Some(o) => b.u8(1).u64(o),
                    None => b.u8(0),
                };
            });
        })
    }

    fn decode(bytes: &[u8]) -> DecodeResult<SnapRecord> {
        Decoder::new(bytes).versioned(8, |_, d| {
            let id = d.u64()?;
            let name = d.string()?;
            let image_size = d.u64()?;
            let protection = d.u8()?;
            let flags = d.u64()?;
            let namespace = raw_versioned(d)?;
            Ok(SnapRecord {
                id,
                name,
                image_size,
                protection,
                flags,
                namespace,
                timestamp: d.utime()?,
                child_count: d.u32()?,
                parent_overlap: d.opt_u64()?,
            })
        })
    }
}

/// The bytes of one versioned struct (header included), unparsed.
fn raw_versioned(d: &mut Decoder) -> DecodeResult<Vec<u8>> {
    let mut peek = d.clone();
    peek.u8()?;
    peek.u8()?;
    let len = peek.u32()? as usize;
    Ok(d.raw(6 + len)?.to_vec())
}

fn namespace_type(raw: &[u8]) -> u32 {
    raw.get(6..10)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(u32::MAX)
}

fn user_namespace() -> Vec<u8> {
    encoded(|e| {
        e.versioned(1, 1, |b| {
            b.u32(NS_USER);
        });
    })
}

fn read_snap(ctx: &dyn ObjectCtx, id: u64) -> ClsResult<SnapRecord> {
    SnapRecord::decode(&key(ctx, &snapshot_key(id))?).map_err(eio)
}

fn snapshots(ctx: &dyn ObjectCtx) -> ClsResult<Vec<SnapRecord>> {
    ctx.omap_list("", "snapshot_", usize::MAX)?
        .iter()
        .map(|(_, v)| SnapRecord::decode(v).map_err(eio))
        .collect()
}

/// `cls_rbd_parent` (v2; v1 decoded too).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ParentRecord {
    pool: i64,
    namespace: String,
    image_id: String,
    snap: u64,
    head_overlap: Option<u64>,
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

    fn encode(&self) -> Vec<u8> {
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

fn read_parent(ctx: &dyn ObjectCtx) -> ClsResult<Option<ParentRecord>> {
    opt_key(ctx, "parent")?
        .map(|v| ParentRecord::decode(&v).map_err(eio))
        .transpose()
}

fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

pub fn call(ctx: &mut dyn ObjectCtx, method: &str, input: &[u8]) -> ClsResult<Vec<u8>> {
    let mut d = Decoder::new(input);
    let d = &mut d;
    let none = Ok(Vec::new());
    match method {
        "create" => {
            let (size, order, feat, prefix) = (|| {
                Ok::<_, crate::ceph::encoding::DecodeError>((
                    d.u64()?,
                    d.u8()?,
                    d.u64()?,
                    d.string()?,
                ))
            })()
            .map_err(einval)?;
            let data_pool = if d.is_empty() {
                -1
            } else {
                d.i64().map_err(einval)?
            };
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
            none
        }
        "get_size" => {
            let snap = d.u64().map_err(einval)?;
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
        "set_size" => {
            let size = d.u64().map_err(einval)?;
            let orig = u64_key(ctx, "size")?;
            if size < orig
                && let Some(mut parent) = read_parent(ctx)?
                && parent.head_overlap.is_some_and(|o| o > size)
            {
                parent.head_overlap = Some(size);
                ctx.omap_set("parent", parent.encode())?;
            }
            set_u64(ctx, "size", size)?;
            none
        }
        "get_features" => {
            let _snap = d.u64().map_err(einval)?;
            let read_only = if d.is_empty() {
                false
            } else {
                d.bool().map_err(einval)?
            };
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
        "get_object_prefix" => {
            let v = key(ctx, "object_prefix")?;
            decode_stored(&v, |d| d.string())?;
            Ok(v)
        }
        "get_data_pool" => {
            let pool = match opt_key(ctx, "data_pool_id")? {
                Some(v) => decode_stored(&v, |d| d.i64())?,
                None => -1,
            };
            Ok(encoded(|e| {
                e.i64(pool);
            }))
        }
        "get_snapcontext" => {
            let seq = u64_key(ctx, "snap_seq")?;
            let mut ids: Vec<u64> = ctx
                .omap_list("", "snapshot_", usize::MAX)?
                .iter()
                .filter_map(|(k, _)| u64::from_str_radix(&k["snapshot_".len()..], 16).ok())
                .collect();
            ids.sort_unstable_by(|a, b| b.cmp(a));
            Ok(encoded(|e| {
                e.u64(seq).u32(ids.len() as u32);
                for id in &ids {
                    e.u64(*id);
                }
            }))
        }
        "get_flags" => {
            let snap = d.u64().map_err(einval)?;
            let flags = if snap == NOSNAP {
                opt_u64_key(ctx, "flags")?.unwrap_or(0)
            } else {
                read_snap(ctx, snap)?.flags
            };
            Ok(encoded(|e| {
                e.u64(flags);
            }))
        }
        "set_flags" => {
            let (flags, mask) = (d.u64().map_err(einval)?, d.u64().map_err(einval)?);
            let snap = if d.is_empty() {
                NOSNAP
            } else {
                d.u64().map_err(einval)?
            };
            let apply = |orig: u64| (orig & !mask) | (flags & mask);
            if snap == NOSNAP {
                let orig = opt_u64_key(ctx, "flags")?.unwrap_or(0);
                set_u64(ctx, "flags", apply(orig))?;
            } else {
                let mut record = read_snap(ctx, snap)?;
                record.flags = apply(record.flags);
                ctx.omap_set(&snapshot_key(snap), record.encode())?;
            }
            none
        }
        "get_stripe_unit_count" => {
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
        "get_create_timestamp" | "get_access_timestamp" | "get_modify_timestamp" => {
            let name = &method["get_".len()..];
            Ok(match opt_key(ctx, name)? {
                Some(v) => {
                    decode_stored(&v, |d| d.utime())?;
                    v
                }
                None => vec![0; 8],
            })
        }
        "set_access_timestamp" | "set_modify_timestamp" => {
            check_exists(ctx)?;
            let now = ctx.now();
            ctx.omap_set(
                &method["set_".len()..],
                encoded(|e| {
                    e.utime(now.0, now.1);
                }),
            )?;
            none
        }
        "op_features_get" => {
            let f = opt_u64_key(ctx, "op_features")?.unwrap_or(0);
            Ok(encoded(|e| {
                e.u64(f);
            }))
        }
        "parent_get" => {
            check_exists(ctx)?;
            let p = read_parent(ctx)?;
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
        "parent_overlap_get" => {
            let snap = d.u64().map_err(einval)?;
            let f = u64_key(ctx, "features")?;
            let overlap = if f & features::LAYERING == 0 {
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
        "snapshot_add" => snapshot_add(ctx, d).map(|()| Vec::new()),
        "snapshot_remove" => {
            let id = d.u64().map_err(einval)?;
            let record = read_snap(ctx, id)?;
            if record.protection != 0 || record.child_count > 0 {
                return Err(libc::EBUSY);
            }
            ctx.omap_remove(&snapshot_key(id))?;
            // Drop the parent once neither the head nor a snapshot uses it.
            if let Some(parent) = read_parent(ctx)?
                && parent.head_overlap.is_none()
                && snapshots(ctx)?.iter().all(|s| s.parent_overlap.is_none())
            {
                ctx.omap_remove("parent")?;
            }
            none
        }
        "snapshot_get" => {
            let id = d.u64().map_err(einval)?;
            if id == NOSNAP {
                return Err(libc::EINVAL);
            }
            let s = read_snap(ctx, id)?;
            Ok(encoded(|e| {
                e.versioned(1, 1, |b| {
                    b.u64(s.id)
                        .raw(&s.namespace)
                        .str(&s.name)
                        .u64(s.image_size)
                        .utime(s.timestamp.0, s.timestamp.1)
                        .u32(s.child_count);
                });
            }))
        }
        "snapshot_rename" => {
            let (id, name) = (d.u64().map_err(einval)?, d.string().map_err(einval)?);
            if snapshots(ctx)?
                .iter()
                .any(|s| s.name == name && s.namespace_type() == NS_USER)
            {
                return Err(libc::EEXIST);
            }
            let mut record = read_snap(ctx, id)?;
            if record.namespace_type() != NS_USER {
                return Err(libc::EINVAL);
            }
            record.name = name;
            ctx.omap_set(&snapshot_key(id), record.encode())?;
            none
        }
        "get_protection_status" => {
            let id = d.u64().map_err(einval)?;
            check_exists(ctx)?;
            if id == NOSNAP {
                return Err(libc::EINVAL);
            }
            let status = read_snap(ctx, id)?.protection;
            if status >= PROTECTION_LAST {
                return Err(libc::EIO);
            }
            Ok(vec![status])
        }
        "set_protection_status" => {
            let (id, status) = (d.u64().map_err(einval)?, d.u8().map_err(einval)?);
            check_exists(ctx)?;
            if u64_key(ctx, "features")? & features::LAYERING == 0 {
                return Err(libc::ENOEXEC);
            }
            if id == NOSNAP || status >= PROTECTION_LAST {
                return Err(libc::EINVAL);
            }
            let mut record = read_snap(ctx, id)?;
            record.protection = status;
            ctx.omap_set(&snapshot_key(id), record.encode())?;
            none
        }
        "get_id" => {
            let size = ctx.size()?;
            if size == 0 {
                return Err(libc::ENOENT);
            }
            let data = ctx.read(0, size)?;
            decode_stored(&data, |d| d.string())?;
            Ok(data)
        }
        "set_id" => {
            check_exists(ctx)?;
            let id = d.string().map_err(einval)?;
            if !is_valid_id(&id) {
                return Err(libc::EINVAL);
            }
            if ctx.size()? != 0 {
                return Err(libc::EEXIST);
            }
            ctx.write_full(&encoded(|e| {
                e.str(&id);
            }))?;
            none
        }
        "dir_add_image" => {
            let (name, id) = (d.string().map_err(einval)?, d.string().map_err(einval)?);
            ctx.create(false)?;
            if name.is_empty() || !is_valid_id(&id) {
                return Err(libc::EINVAL);
            }
            if let Some(state) = ctx.omap_get("state")?
                && state.first() == Some(&DIR_ADD_DISABLED)
            {
                return Err(libc::EPERM);
            }
            if ctx.omap_get(&format!("name_{name}"))?.is_some() {
                return Err(libc::EEXIST);
            }
            if ctx.omap_get(&format!("id_{id}"))?.is_some() {
                return Err(libc::EBADF);
            }
            ctx.omap_set(
                &format!("name_{name}"),
                encoded(|e| {
                    e.str(&id);
                }),
            )?;
            ctx.omap_set(
                &format!("id_{id}"),
                encoded(|e| {
                    e.str(&name);
                }),
            )?;
            none
        }
        "dir_remove_image" => {
            let (name, id) = (d.string().map_err(einval)?, d.string().map_err(einval)?);
            let stored_id = key(ctx, &format!("name_{name}"))?;
            let stored_name = key(ctx, &format!("id_{id}"))?;
            let stored_id = decode_stored(&stored_id, |d| d.string())?;
            let stored_name = decode_stored(&stored_name, |d| d.string())?;
            if stored_id != id || stored_name != name {
                return Err(libc::ESTALE);
            }
            ctx.omap_remove(&format!("name_{name}"))?;
            ctx.omap_remove(&format!("id_{id}"))?;
            none
        }
        "dir_list" => {
            let (start, max) = (d.string().map_err(einval)?, d.u64().map_err(einval)?);
            let entries =
                ctx.omap_list(&format!("name_{start}"), "name_", max.min(1 << 20) as usize)?;
            Ok(encoded(|e| {
                e.u32(entries.len() as u32);
                for (k, v) in &entries {
                    e.str(&k["name_".len()..]).raw(v);
                }
            }))
        }
        "dir_get_id" => {
            let name = d.string().map_err(einval)?;
            key(ctx, &format!("name_{name}"))
        }
        "dir_get_name" => {
            let id = d.string().map_err(einval)?;
            key(ctx, &format!("id_{id}"))
        }
        "dir_state_assert" => {
            let want = d.u8().map_err(einval)?;
            match key(ctx, "state")?.first() {
                Some(&s) if s == want => none,
                _ => Err(libc::ENOENT),
            }
        }
        "dir_state_set" => {
            let state = d.u8().map_err(einval)?;
            match state {
                DIR_READY => {}
                DIR_ADD_DISABLED => {
                    if ctx.exists() && !ctx.omap_list("", "name_", 1)?.is_empty() {
                        return Err(libc::EBUSY);
                    }
                }
                _ => return Err(libc::EINVAL),
            }
            ctx.omap_set("state", vec![state])?;
            none
        }
        "get_all_features" => Ok(encoded(|e| {
            e.u64(features::ALL);
        })),
        "metadata_list" => {
            let (start, max) = (d.string().map_err(einval)?, d.u64().map_err(einval)?);
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
        "object_map_load" => Ok(plain(&load_map(ctx)?)),
        "object_map_save" => {
            let map = ObjectMap::decode(input).map_err(einval)?;
            ctx.write_full(&map.encode())?;
            none
        }
        "object_map_resize" => {
            let (count, default) = (d.u64().map_err(einval)?, d.u8().map_err(einval)?);
            if count > MAX_OBJECTS {
                return Err(libc::EINVAL);
            }
            let mut map = match load_map(ctx) {
                Err(libc::ENOENT) => ObjectMap::new(0),
                other => other?,
            };
            let old = map.len();
            if count < old && (count..old).any(|o| map.get(o) != default) {
                return Err(libc::ESTALE);
            }
            map.resize(count);
            for o in old..count {
                map.set(o, default);
            }
            ctx.write_full(&map.encode())?;
            none
        }
        "object_map_update" => {
            let (start, end, state) = (
                d.u64().map_err(einval)?,
                d.u64().map_err(einval)?,
                d.u8().map_err(einval)?,
            );
            let current = if d.bool().map_err(einval)? {
                Some(d.u8().map_err(einval)?)
            } else {
                None
            };
            let mut map = load_map(ctx)?;
            if start >= end || end > map.len() {
                return Err(libc::ERANGE);
            }
            let mut changed = false;
            for o in start..end {
                let s = map.get(o);
                let matches = match current {
                    None => true,
                    Some(c) => s == c || (c == OBJECT_EXISTS && s == OBJECT_EXISTS_CLEAN),
                };
                if matches && s != state {
                    map.set(o, state);
                    changed = true;
                }
            }
            if changed {
                ctx.write_full(&map.encode())?;
            }
            none
        }
        "object_map_snap_add" => {
            let mut map = load_map(ctx)?;
            let mut changed = false;
            for o in 0..map.len() {
                if map.get(o) == OBJECT_EXISTS {
                    map.set(o, OBJECT_EXISTS_CLEAN);
                    changed = true;
                }
            }
            if changed {
                ctx.write_full(&map.encode())?;
            }
            none
        }
        "object_map_snap_remove" => {
            let src = ObjectMap::decode(input).map_err(einval)?;
            let mut dst = load_map(ctx)?;
            let mut changed = false;
            for o in 0..dst.len() {
                if dst.get(o) == OBJECT_EXISTS_CLEAN
                    && (o >= src.len() || src.get(o) == OBJECT_EXISTS)
                {
                    dst.set(o, OBJECT_EXISTS);
                    changed = true;
                }
            }
            if changed {
                ctx.write_full(&dst.encode())?;
            }
            none
        }
        _ => Err(libc::EOPNOTSUPP),
    }
}

fn snapshot_add(ctx: &mut dyn ObjectCtx, d: &mut Decoder) -> ClsResult<()> {
    let name = d.string().map_err(einval)?;
    let id = d.u64().map_err(einval)?;
    let namespace = if d.is_empty() {
        user_namespace()
    } else {
        raw_versioned(d).map_err(einval)?
    };
    let ns_type = namespace_type(&namespace);
    if ns_type > 3 {
        return Err(libc::EINVAL);
    }
    if id > MAXSNAP {
        return Err(libc::EINVAL);
    }
    let seq = u64_key(ctx, "snap_seq")?;
    if id < seq {
        return Err(libc::ESTALE);
    }
    let size = u64_key(ctx, "size")?;
    let flags = opt_u64_key(ctx, "flags")?.unwrap_or(0);
    let limit = opt_u64_key(ctx, "snap_limit")?.unwrap_or(u64::MAX);
    let existing = snapshots(ctx)?;
    if existing.len() as u64 >= limit {
        return Err(libc::EDQUOT);
    }
    let same_namespace = |s: &SnapRecord| {
        s.namespace == namespace || (s.namespace_type() == NS_TRASH && ns_type == NS_TRASH)
    };
    if existing
        .iter()
        .any(|s| s.id == id || (s.name == name && same_namespace(s)))
    {
        return Err(libc::EEXIST);
    }
    let parent_overlap = read_parent(ctx)?.and_then(|p| p.head_overlap);
    let record = SnapRecord {
        id,
        name,
        image_size: size,
        protection: 0,
        flags,
        namespace,
        timestamp: ctx.now(),
        child_count: 0,
        parent_overlap,
    };
    set_u64(ctx, "snap_seq", id)?;
    ctx.omap_set(&snapshot_key(id), record.encode())
}

fn load_map(ctx: &dyn ObjectCtx) -> ClsResult<ObjectMap> {
    let size = ctx.size()?;
    if size == 0 {
        return Err(libc::ENOENT);
    }
    ObjectMap::decode(&ctx.read(0, size)?).map_err(einval)
}

/// The map encoded with CRCs disabled (an empty footer), as
/// `object_map_load` returns it.
fn plain(map: &ObjectMap) -> Vec<u8> {
    let mut bytes = map.encode();
    bytes.truncate(18 + map.len().div_ceil(4) as usize);
    bytes.extend_from_slice(&[0; 4]);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ceph::Call;
    use crate::ceph::cls_rbd as client;
    use crate::ceph::object_map::{OBJECT_NONEXISTENT, OBJECT_PENDING};
    use crate::rados::embedded::cls::Staged;

    fn run(ctx: &mut Staged, call: Call) -> ClsResult<Vec<u8>> {
        assert_eq!(call.class, "rbd");
        super::call(ctx, call.method, &call.input)
    }

    fn header() -> Staged {
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
        assert_eq!(
            super::call(&mut fresh, "create", &[1, 2]),
            Err(libc::EINVAL)
        );
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
        assert_eq!(
            super::call(&mut missing, "bogus", &[]),
            Err(libc::EOPNOTSUPP)
        );
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

    #[test]
    fn snapshots_add_get_remove() {
        let mut h = header();
        run(&mut h, client::set_flags(NOSNAP, 1, 1)).unwrap();
        run(&mut h, client::snapshot_add("snap1", 4)).unwrap();
        assert_eq!(
            run(&mut h, client::snapshot_add("snap1", 5)),
            Err(libc::EEXIST)
        );
        assert_eq!(run(&mut h, client::snapshot_add("x", 3)), Err(libc::ESTALE));
        run(&mut h, client::set_size(2 << 30)).unwrap();
        run(&mut h, client::snapshot_add("snap2", 6)).unwrap();
        assert_eq!(
            client::decode_snapcontext(&run(&mut h, client::get_snapcontext()).unwrap()).unwrap(),
            (6, vec![6, 4])
        );
        let info = client::decode_snapshot(&run(&mut h, client::snapshot_get(4)).unwrap()).unwrap();
        assert_eq!(
            info,
            client::SnapshotInfo {
                id: 4,
                namespace_type: 0,
                name: "snap1".into(),
                image_size: 1 << 30,
                timestamp: (1_700_000_000, 5),
                child_count: 0
            }
        );
        // Ceph's worked SnapshotInfo example, byte for byte.
        let mut expected = vec![1, 1, 0x2f, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0];
        expected.extend([1, 1, 4, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0]);
        expected.extend(b"snap1");
        expected.extend([
            0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0xf1, 0x53, 0x65, 5, 0, 0, 0, 0, 0, 0, 0,
        ]);
        assert_eq!(run(&mut h, client::snapshot_get(4)).unwrap(), expected);
        assert_eq!(
            client::decode_size(&run(&mut h, client::get_size(4)).unwrap()).unwrap(),
            (22, 1 << 30)
        );
        assert_eq!(
            client::decode_u64(&run(&mut h, client::get_flags(4)).unwrap()).unwrap(),
            1
        );
        assert_eq!(
            client::decode_u8(&run(&mut h, client::get_protection_status(4)).unwrap()).unwrap(),
            0
        );
        assert_eq!(run(&mut h, client::snapshot_get(NOSNAP)), Err(libc::EINVAL));
        assert_eq!(run(&mut h, client::snapshot_get(5)), Err(libc::ENOENT));
        assert_eq!(
            run(&mut h, client::get_protection_status(5)),
            Err(libc::ENOENT)
        );
        // A protected snapshot cannot be removed.
        let mut e = Encoder::new();
        e.u64(4).u8(2);
        super::call(&mut h, "set_protection_status", &e.into_bytes()).unwrap();
        assert_eq!(run(&mut h, client::snapshot_remove(4)), Err(libc::EBUSY));
        let mut e = Encoder::new();
        e.u64(4).u8(0);
        super::call(&mut h, "set_protection_status", &e.into_bytes()).unwrap();
        run(&mut h, client::snapshot_remove(4)).unwrap();
        assert_eq!(run(&mut h, client::snapshot_remove(4)), Err(libc::ENOENT));
        assert_eq!(
            client::decode_snapcontext(&run(&mut h, client::get_snapcontext()).unwrap()).unwrap(),
            (6, vec![6])
        );
    }

    #[test]
    fn ids_and_directory() {
        let mut id = Staged::empty();
        assert_eq!(run(&mut id, client::get_id()), Err(libc::ENOENT));
        assert_eq!(run(&mut id, client::set_id("a-b")), Err(libc::EINVAL));
        run(&mut id, client::set_id("abc123")).unwrap();
        assert_eq!(run(&mut id, client::set_id("abc123")), Err(libc::EEXIST));
        assert_eq!(
            client::decode_string(&run(&mut id, client::get_id()).unwrap()).unwrap(),
            "abc123"
        );
        assert_eq!(id.data, b"\x06\0\0\0abc123");
        assert_eq!(
            run(&mut Staged::default(), client::set_id("x")),
            Err(libc::ENOENT)
        );

        let mut dir = Staged::default();
        assert_eq!(run(&mut dir, client::dir_list("", 10)), Err(libc::ENOENT));
        run(&mut dir, client::dir_add_image("vm1", "id1")).unwrap();
        run(&mut dir, client::dir_add_image("vm0", "id0")).unwrap();
        assert_eq!(
            run(&mut dir, client::dir_add_image("vm1", "id9")),
            Err(libc::EEXIST)
        );
        assert_eq!(
            run(&mut dir, client::dir_add_image("vm9", "id1")),
            Err(libc::EBADF)
        );
        assert_eq!(
            run(&mut dir, client::dir_add_image("", "id5")),
            Err(libc::EINVAL)
        );
        let list = client::decode_dir_list(&run(&mut dir, client::dir_list("", 10)).unwrap());
        assert_eq!(
            list.unwrap(),
            vec![("vm0".into(), "id0".into()), ("vm1".into(), "id1".into())]
        );
        let after = client::decode_dir_list(&run(&mut dir, client::dir_list("vm0", 10)).unwrap());
        assert_eq!(after.unwrap().len(), 1);
        assert_eq!(
            run(&mut dir, client::dir_remove_image("vm1", "id0")),
            Err(libc::ESTALE)
        );
        assert_eq!(
            run(&mut dir, client::dir_remove_image("nope", "id0")),
            Err(libc::ENOENT)
        );
        run(&mut dir, client::dir_remove_image("vm1", "id1")).unwrap();
        assert_eq!(
            run(&mut dir, client::dir_state_assert(0)),
            Err(libc::ENOENT)
        );
        super::call(&mut dir, "dir_state_set", &[0]).unwrap();
        run(&mut dir, client::dir_state_assert(0)).unwrap();
        assert_eq!(
            run(&mut dir, client::dir_state_assert(1)),
            Err(libc::ENOENT)
        );
        assert_eq!(
            super::call(&mut dir, "dir_state_set", &[1]),
            Err(libc::EBUSY)
        );
        assert_eq!(
            client::decode_u64(&run(&mut dir, client::get_all_features()).unwrap()).unwrap(),
            0xFFF
        );
    }

    #[test]
    fn object_map_methods() {
        let mut m = Staged::default();
        assert_eq!(run(&mut m, client::object_map_load()), Err(libc::ENOENT));
        assert_eq!(
            run(&mut m, client::object_map_update(0, 1, 1, None)),
            Err(libc::ENOENT)
        );
        run(&mut m, client::object_map_resize(10, OBJECT_NONEXISTENT)).unwrap();
        // Stored with CRCs, loaded without.
        assert_eq!(m.data, ObjectMap::new(10).encode());
        let loaded = run(&mut m, client::object_map_load()).unwrap();
        assert_eq!(loaded.len(), 18 + 3 + 4);
        assert_eq!(ObjectMap::decode(&loaded).unwrap(), ObjectMap::new(10));
        run(&mut m, client::object_map_update(0, 3, OBJECT_EXISTS, None)).unwrap();
        run(
            &mut m,
            client::object_map_update(1, 2, OBJECT_PENDING, None),
        )
        .unwrap();
        // Conditional: only PENDING objects go NONEXISTENT.
        run(
            &mut m,
            client::object_map_update(0, 3, OBJECT_NONEXISTENT, Some(OBJECT_PENDING)),
        )
        .unwrap();
        let map = ObjectMap::decode(&m.data).unwrap();
        assert_eq!((map.get(0), map.get(1), map.get(2)), (1, 0, 1));
        assert_eq!(
            run(&mut m, client::object_map_update(3, 3, 1, None)),
            Err(libc::ERANGE)
        );
        assert_eq!(
            run(&mut m, client::object_map_update(0, 11, 1, None)),
            Err(libc::ERANGE)
        );
        // Shrinking over a non-default entry is stale.
        assert_eq!(
            run(&mut m, client::object_map_resize(1, OBJECT_NONEXISTENT)),
            Err(libc::ESTALE)
        );
        run(&mut m, client::object_map_resize(3, OBJECT_NONEXISTENT)).unwrap();
        assert_eq!(
            run(&mut m, client::object_map_resize(MAX_OBJECTS + 1, 0)),
            Err(libc::EINVAL)
        );
        // Snapshot add cleans; snapshot remove folds back.
        let before = run(&mut m, client::object_map_load()).unwrap();
        run(&mut m, client::object_map_snap_add()).unwrap();
        let map = ObjectMap::decode(&m.data).unwrap();
        assert_eq!(
            (map.get(0), map.get(2)),
            (OBJECT_EXISTS_CLEAN, OBJECT_EXISTS_CLEAN)
        );
        // EXISTS_CLEAN counts as EXISTS for a conditional update.
        let mut probe = m.clone();
        run(
            &mut probe,
            client::object_map_update(0, 1, OBJECT_PENDING, Some(OBJECT_EXISTS)),
        )
        .unwrap();
        assert_eq!(
            ObjectMap::decode(&probe.data).unwrap().get(0),
            OBJECT_PENDING
        );
        run(&mut m, client::object_map_snap_remove(&before)).unwrap();
        let map = ObjectMap::decode(&m.data).unwrap();
        assert_eq!((map.get(0), map.get(2)), (OBJECT_EXISTS, OBJECT_EXISTS));
        // A corrupt stored map is EINVAL.
        m.data[19] ^= 0xff;
        assert_eq!(run(&mut m, client::object_map_load()), Err(libc::EINVAL));
    }
}
