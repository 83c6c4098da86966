//! An image's metadata as librbd's open and refresh read it: the id from
//! `rbd_id.<name>`, then size, order, features, flags, snapshot context,
//! snapshots, parent, striping and data pool from `rbd_header.<id>`.

use crate::ceph::cls_rbd::{self, DIRECTORY, ParentSpec};
use crate::ceph::cls_rbd_layering;
use crate::ceph::encoding::DecodeError;
use crate::ceph::{NOSNAP, features};
use crate::error::{Error, ErrorKind, Result};
use crate::rados::Pool;
use crate::rbd::limits;

/// A snapshot as the image knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub id: u64,
    pub name: String,
    pub size: u64,
    pub timestamp: (u32, u32),
    pub protected: bool,
    pub flags: u64,
    /// `SNAP_NAMESPACE_USER` for the snapshots users see; a removed
    /// snapshot that clone v2 children still read is in the trash
    /// namespace (named by a UUID), and others belong to mirroring or groups.
    pub namespace: u32,
    /// Clone v2 children attached to it.
    pub child_count: u32,
}

impl Snapshot {
    pub fn is_user(&self) -> bool {
        self.namespace == cls_rbd::SNAP_NAMESPACE_USER
    }
}

/// A clone's link to its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    pub spec: ParentSpec,
    /// Bytes of the head, from offset 0, that still read through to the
    /// parent; `None` once the head was flattened while snapshots (of an
    /// image without deep-flatten) still read through.
    pub overlap: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Header {
    pub name: String,
    pub id: String,
    pub object_prefix: String,
    pub order: u8,
    /// Size of the head.
    pub size: u64,
    pub features: u64,
    /// Head flags (object map / fast-diff invalid).
    pub flags: u64,
    pub snap_seq: u64,
    /// Newest first, as the snapshot context lists them.
    pub snapshots: Vec<Snapshot>,
    pub parent: Option<Parent>,
    /// Operation features (clone parent/child, snapshot trash, ...).
    pub op_features: u64,
    pub stripe_unit: u64,
    pub stripe_count: u64,
    pub data_pool_id: Option<i64>,
    pub create_timestamp: (u32, u32),
}

pub fn header_oid(id: &str) -> String {
    format!("rbd_header.{id}")
}

pub fn id_oid(name: &str) -> String {
    format!("rbd_id.{name}")
}

/// Opens the pool (and namespace) an `rbd:` name addresses, with QEMU's
/// messages for a missing pool or namespace.
pub fn open_pool(
    cluster: &dyn crate::rados::Cluster,
    spec: &crate::rbd::name::RbdSpec,
) -> Result<std::sync::Arc<dyn Pool>> {
    let pool = cluster.pool(&spec.pool, spec.namespace())?;
    if !spec.namespace().is_empty() {
        match pool.exec(DIRECTORY, &cls_rbd::dir_state_assert(0)) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("namespace '{}' does not exist", spec.namespace()),
                ));
            }
            Err(e) => return Err(e.prepend("error checking namespace")),
        }
    }
    Ok(pool)
}

/// Turns a decode failure of cls output into a corrupt-image error.
pub fn corrupt(what: &str) -> impl FnOnce(DecodeError) -> Error + '_ {
    move |e| Error::corrupt(format!("{what}: {e}"))
}

impl Header {
    pub fn object_size(&self) -> u64 {
        1 << self.order
    }

    pub fn header_oid(&self) -> String {
        header_oid(&self.id)
    }

    pub fn has(&self, feature: u64) -> bool {
        self.features & feature != 0
    }

    /// Objects needed for `size` bytes (default striping).
    pub fn object_count(&self, size: u64) -> u64 {
        size.div_ceil(self.object_size())
    }

    pub fn data_oid(&self, object: u64) -> String {
        format!("{}.{object:016x}", self.object_prefix)
    }

    /// The object number of one of this image's data object names.
    pub fn object_number(&self, oid: &str) -> Option<u64> {
        let hex = oid.strip_prefix(&self.object_prefix)?.strip_prefix('.')?;
        let digits = hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        digits.then(|| u64::from_str_radix(hex, 16).ok()).flatten()
    }

    /// The snapshots users see (`snapshot -l`), newest first.
    pub fn user_snapshots(&self) -> impl Iterator<Item = &Snapshot> {
        self.snapshots.iter().filter(|s| s.is_user())
    }

    /// The user snapshot named `name`.
    pub fn snapshot(&self, name: &str) -> Option<&Snapshot> {
        self.user_snapshots().find(|s| s.name == name)
    }

    /// A snapshot to open read-only by name: a user snapshot, else one in
    /// the trash by its UUID name (a clone v2 parent's removed snapshot).
    pub fn readable_snapshot(&self, name: &str) -> Option<&Snapshot> {
        self.snapshot(name).or_else(|| {
            self.snapshots
                .iter()
                .find(|s| s.namespace == cls_rbd_layering::SNAP_NAMESPACE_TRASH && s.name == name)
        })
    }

    /// How much of the head reads through to a parent (0 for none).
    pub fn head_overlap(&self) -> u64 {
        self.parent.as_ref().and_then(|p| p.overlap).unwrap_or(0)
    }

    /// Reads the metadata of image `name`; errors read like librbd's
    /// through QEMU: "error reading header from <name>: <reason>".
    pub fn load(pool: &dyn Pool, name: &str) -> Result<Header> {
        Self::load_inner(pool, name)
            .map_err(|e| e.prepend(format!("error reading header from {name}")))
    }

    fn load_inner(pool: &dyn Pool, name: &str) -> Result<Header> {
        let id_out = pool
            .exec(&id_oid(name), &cls_rbd::get_id())
            .map_err(strip)?;
        let id = cls_rbd::decode_string(&id_out).map_err(corrupt("rbd_id"))?;
        Self::load_by_id(pool, name, &id)
    }

    /// Reads the metadata of the image with this id (e.g. a clone's parent),
    /// checking every value against [`limits`].
    pub fn load_by_id(pool: &dyn Pool, name: &str, id: &str) -> Result<Header> {
        limits::check_id("image id", id)?;
        let oid = header_oid(id);
        let call = |c: crate::ceph::Call| pool.exec(&oid, &c).map_err(strip);
        let (order, size) =
            cls_rbd::decode_size(&call(cls_rbd::get_size(NOSNAP))?).map_err(corrupt("size"))?;
        limits::check_order(order)?;
        limits::check_size("size", size)?;
        let (features, _) = cls_rbd::decode_features(&call(cls_rbd::get_features(false))?)
            .map_err(corrupt("features"))?;
        limits::check_features(features)?;
        let object_prefix = cls_rbd::decode_string(&call(cls_rbd::get_object_prefix())?)
            .map_err(corrupt("prefix"))?;
        limits::check_object_prefix(&object_prefix)?;
        let flags =
            cls_rbd::decode_u64(&call(cls_rbd::get_flags(NOSNAP))?).map_err(corrupt("flags"))?;
        let (snap_seq, snap_ids) = cls_rbd::decode_snapcontext(&call(cls_rbd::get_snapcontext())?)
            .map_err(corrupt("snapshot context"))?;
        limits::check_snap_context(snap_seq, &snap_ids)?;
        let (stripe_unit, stripe_count) = if features & features::STRIPINGV2 != 0 {
            cls_rbd::decode_stripe(&call(cls_rbd::get_stripe_unit_count())?)
                .map_err(corrupt("striping"))?
        } else {
            (1 << order, 1)
        };
        let data_pool =
            cls_rbd::decode_i64(&call(cls_rbd::get_data_pool())?).map_err(corrupt("data pool"))?;
        let create_timestamp = cls_rbd::decode_utime(&call(cls_rbd::get_create_timestamp())?)
            .map_err(corrupt("timestamp"))?;
        let parent = if features & features::LAYERING != 0 {
            let spec =
                cls_rbd::decode_parent(&call(cls_rbd::parent_get())?).map_err(corrupt("parent"))?;
            let overlap = cls_rbd::decode_overlap(&call(cls_rbd::parent_overlap_get(NOSNAP))?)
                .map_err(corrupt("parent overlap"))?;
            if spec.exists() {
                limits::check_id("parent image id", &spec.image_id)?;
                Some(Parent {
                    spec,
                    overlap: overlap.map(|o| o.min(size)),
                })
            } else {
                None
            }
        } else {
            None
        };
        let op_features = if features & features::OPERATIONS != 0 {
            cls_rbd::decode_u64(&call(cls_rbd::op_features_get())?)
                .map_err(corrupt("op features"))?
        } else {
            0
        };
        let mut snapshots = Vec::with_capacity(snap_ids.len());
        for snap in snap_ids {
            let info = match call(cls_rbd::snapshot_get(snap)) {
                Ok(out) => cls_rbd::decode_snapshot(&out).map_err(corrupt("snapshot"))?,
                // Removed between the two reads: it is simply gone.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let protection = cls_rbd::decode_u8(&call(cls_rbd::get_protection_status(snap))?)
                .map_err(corrupt("protection"))?;
            limits::check_snapshot(snap, info.id, &info.name, info.image_size, protection)?;
            let flags =
                cls_rbd::decode_u64(&call(cls_rbd::get_flags(snap))?).map_err(corrupt("flags"))?;
            snapshots.push(Snapshot {
                id: info.id,
                name: info.name,
                size: info.image_size,
                timestamp: info.timestamp,
                protected: protection != 0,
                flags,
                namespace: info.namespace_type,
                child_count: info.child_count,
            });
        }
        limits::check_unique_names(
            snapshots
                .iter()
                .filter(|s| s.is_user())
                .map(|s| s.name.as_str()),
        )?;
        Ok(Header {
            name: name.to_string(),
            id: id.to_string(),
            object_prefix,
            order,
            size,
            features,
            flags,
            snap_seq,
            snapshots,
            parent,
            op_features,
            stripe_unit,
            stripe_count,
            data_pool_id: (data_pool >= 0).then_some(data_pool),
            create_timestamp,
        })
    }

    /// Why this image cannot be used, if it cannot: features rbdimg does
    /// not implement. Reading is allowed where only writes would be unsafe.
    pub fn unsupported(&self, writable: bool) -> Option<String> {
        use features::*;
        let unknown = self.features & !ALL;
        if unknown != 0 {
            return Some(format!("image uses unknown features 0x{unknown:x}"));
        }
        if self.has(STRIPINGV2)
            && (self.stripe_unit != self.object_size() || self.stripe_count != 1)
        {
            return Some(format!(
                "image uses fancy striping (stripe unit {}, count {}), which rbdimg does not support",
                self.stripe_unit, self.stripe_count
            ));
        }
        if self.has(MIGRATING) {
            return Some("image is being migrated, which rbdimg does not support".into());
        }
        let unknown_ops = self.op_features & !cls_rbd_layering::OP_ALL;
        if writable && unknown_ops != 0 {
            return Some(format!(
                "image uses unknown operation features 0x{unknown_ops:x}: open it read-only"
            ));
        }
        if writable {
            for (feature, name) in [
                (JOURNALING, "journaling"),
                (DIRTY_CACHE, "dirty-cache"),
                (NON_PRIMARY, "non-primary"),
            ] {
                if self.has(feature) {
                    return Some(format!(
                        "image uses {name}, which rbdimg can only read: open it read-only"
                    ));
                }
            }
        }
        None
    }
}

/// cls errors carry our "exec on object" context; librbd-through-QEMU
/// messages show only the errno text.
fn strip(e: Error) -> Error {
    let errno = e.errno_value();
    Error::os(e.kind(), errno)
}

#[cfg(test)]
mod tests {
    use super::features::*;

    #[test]
    fn parses_feature_settings() {
        assert_eq!(parse("61"), Some(DEFAULT));
        assert_eq!(
            parse("layering,exclusive-lock,object-map,fast-diff,deep-flatten"),
            Some(DEFAULT)
        );
        assert_eq!(
            parse("layering, exclusive-lock"),
            Some(LAYERING | EXCLUSIVE_LOCK)
        );
        assert_eq!(
            parse("layering+exclusive-lock"),
            Some(LAYERING | EXCLUSIVE_LOCK)
        );
        assert_eq!(parse("layering,bogus"), None);
        assert_eq!(
            names(DEFAULT),
            [
                "layering",
                "exclusive-lock",
                "object-map",
                "fast-diff",
                "deep-flatten"
            ]
        );
    }
}
