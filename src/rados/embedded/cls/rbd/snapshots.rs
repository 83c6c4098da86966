//! Snapshots in the header: `snapshot_<id hex>` keys holding
//! `cls_rbd_snap`, the snapshot context and protection.

use super::parent_record::read_parent;
use super::{
    args, check_exists, encoded, key, layering, opt_u64_key, set_op_features, set_u64, u64_key,
};
use crate::ceph::NOSNAP;
use crate::ceph::cls_rbd_layering::{OP_CLONE_CHILD, OP_SNAP_TRASH};
use crate::ceph::encoding::{DecodeResult, Decoder};
use crate::rados::embedded::cls::{ClsResult, Method, ObjectCtx, RD, WR, einval, eio};

pub const METHODS: &[Method] = &[
    Method::new("get_snapcontext", RD, get_snapcontext),
    Method::new("snapshot_get", RD, snapshot_get),
    Method::new("snapshot_add", RD | WR, snapshot_add),
    Method::new("snapshot_remove", RD | WR, snapshot_remove),
    Method::new("snapshot_rename", RD | WR, snapshot_rename),
    Method::new("snapshot_trash_add", RD | WR, snapshot_trash_add),
    Method::new("set_protection_status", RD | WR, set_protection_status),
    Method::new("get_protection_status", RD, get_protection_status),
];

/// The largest snapshot id (`CEPH_MAXSNAP`).
const MAXSNAP: u64 = 0xFFFF_FFFF_FFFF_FFFD;
/// Snapshot namespace types: user snapshots, and those in the trash.
const NS_USER: u32 = 0;
pub const SNAP_NS_TRASH: u32 = 2;
/// Protection states are 0..PROTECTION_LAST (unprotected, unprotecting, protected).
const PROTECTION_LAST: u8 = 3;

fn snapshot_key(id: u64) -> String {
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
    pub fn namespace_type(&self) -> u32 {
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

pub fn read_snap(ctx: &dyn ObjectCtx, id: u64) -> ClsResult<SnapRecord> {
    SnapRecord::decode(&key(ctx, &snapshot_key(id))?).map_err(eio)
}

pub fn write_snap(ctx: &mut dyn ObjectCtx, record: &SnapRecord) -> ClsResult<()> {
    ctx.omap_set(&snapshot_key(record.id), record.encode())
}

/// Every snapshot, by id.
pub fn snapshots(ctx: &dyn ObjectCtx) -> ClsResult<Vec<SnapRecord>> {
    ctx.omap_list("", "snapshot_", usize::MAX)?
        .iter()
        .map(|(_, v)| SnapRecord::decode(v).map_err(eio))
        .collect()
}

/// Out: snap seq u64, snapshot ids newest first.
fn get_snapcontext(ctx: &mut dyn ObjectCtx, _input: &[u8]) -> ClsResult<Vec<u8>> {
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

/// In: snap id. Out: `cls::rbd::SnapshotInfo`.
fn snapshot_get(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let id = args(input, |d| d.u64())?;
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

/// In: name, snap id, [namespace]. Records the head's size, flags and
/// parent overlap under a new id (not below snap_seq, which it becomes).
fn snapshot_add(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let mut d = Decoder::new(input);
    let name = d.string().map_err(einval)?;
    let id = d.u64().map_err(einval)?;
    let namespace = if d.is_empty() {
        user_namespace()
    } else {
        raw_versioned(&mut d).map_err(einval)?
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
        s.namespace == namespace
            || (s.namespace_type() == SNAP_NS_TRASH && ns_type == SNAP_NS_TRASH)
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
    write_snap(ctx, &record)?;
    Ok(Vec::new())
}

/// In: snap id. Busy while protected or with children. The parent link
/// goes once neither the head nor a snapshot uses it, and so do the
/// clone-child and snapshot-trash operation features nothing needs.
fn snapshot_remove(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let id = args(input, |d| d.u64())?;
    let record = read_snap(ctx, id)?;
    if record.protection != 0 || record.child_count > 0 {
        return Err(libc::EBUSY);
    }
    ctx.omap_remove(&snapshot_key(id))?;
    let others = snapshots(ctx)?;
    let child_snaps = others.iter().any(|s| s.parent_overlap.is_some());
    let trash_snaps = others.iter().any(|s| s.namespace_type() == SNAP_NS_TRASH);
    let parent = read_parent(ctx)?;
    let head_child = parent.as_ref().is_some_and(|p| p.head_overlap.is_some());
    if parent.is_some() && !head_child && !child_snaps {
        ctx.omap_remove("parent")?;
    }
    let mut mask = 0;
    if !child_snaps && !head_child {
        mask |= OP_CLONE_CHILD;
    }
    if !trash_snaps {
        mask |= OP_SNAP_TRASH;
    }
    if mask != 0 {
        set_op_features(ctx, 0, mask)?;
    }
    Ok(Vec::new())
}

/// In: snap id. Moves an unprotected snapshot to the trash namespace under
/// a random name (its clone v2 children keep reading it); EEXIST when it
/// is there already.
fn snapshot_trash_add(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let id = args(input, |d| d.u64())?;
    let mut record = read_snap(ctx, id)?;
    if record.protection != 0 {
        return Err(libc::EBUSY);
    }
    let original = record.namespace_type();
    if original == SNAP_NS_TRASH {
        return Err(libc::EEXIST);
    }
    set_op_features(ctx, OP_SNAP_TRASH, OP_SNAP_TRASH)?;
    record.namespace = encoded(|e| {
        e.versioned(1, 1, |b| {
            b.u32(SNAP_NS_TRASH).str(&record.name).u32(original);
        });
    });
    // A random (version 4) UUID, as `uuid_d` prints one.
    record.name = uuid::Uuid::new_v4().hyphenated().to_string();
    write_snap(ctx, &record)?;
    Ok(Vec::new())
}

/// In: snap id, new name (user snapshots only, unique among them).
fn snapshot_rename(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let (id, name) = args(input, |d| Ok((d.u64()?, d.string()?)))?;
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
    write_snap(ctx, &record)?;
    Ok(Vec::new())
}

/// In: snap id. Out: the protection status u8.
fn get_protection_status(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let id = args(input, |d| d.u64())?;
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

/// In: snap id, status u8 (needs layering).
fn set_protection_status(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let (id, status) = args(input, |d| Ok((d.u64()?, d.u8()?)))?;
    check_exists(ctx)?;
    if !layering(ctx)? {
        return Err(libc::ENOEXEC);
    }
    if id == NOSNAP || status >= PROTECTION_LAST {
        return Err(libc::EINVAL);
    }
    let mut record = read_snap(ctx, id)?;
    record.protection = status;
    write_snap(ctx, &record)?;
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{header, run};
    use crate::ceph::encoding::Encoder;
    use crate::ceph::{NOSNAP, cls_rbd as client};
    use crate::rados::embedded::cls::call;

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
        call(&mut h, "rbd", "set_protection_status", &e.into_bytes()).unwrap();
        assert_eq!(run(&mut h, client::snapshot_remove(4)), Err(libc::EBUSY));
        let mut e = Encoder::new();
        e.u64(4).u8(0);
        call(&mut h, "rbd", "set_protection_status", &e.into_bytes()).unwrap();
        run(&mut h, client::snapshot_remove(4)).unwrap();
        assert_eq!(run(&mut h, client::snapshot_remove(4)), Err(libc::ENOENT));
        assert_eq!(
            client::decode_snapcontext(&run(&mut h, client::get_snapcontext()).unwrap()).unwrap(),
            (6, vec![6])
        );
    }
}

#[cfg(test)]
crate::rados::embedded::cls::replay::osd_fixtures!("rbd": get_snapcontext, snapshot_get, snapshot_add, snapshot_remove, snapshot_rename, snapshot_trash_add, set_protection_status, get_protection_status);
