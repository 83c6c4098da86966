//! Creating an RBD format-2 image, step for step as librbd does it, so the
//! result is an ordinary image to `rbd` and QEMU:
//!
//! ```text
//!  rbd_directory   dir_add_image(name, id)            EEXIST -> "File exists"
//!  rbd_id.<name>   create(excl) + set_id(id)
//!  rbd_directory   get_all_features                   (mask unknown bits)
//!  rbd_header.<id> create(excl) + create(size, order, features, prefix)
//!  rbd_object_map.<id>  object_map_resize(objects, NONEXISTENT)   [object-map]
//! ```
//! A failure undoes the steps already done, newest first.

use crate::ceph::cls_rbd;
use crate::ceph::cls_rbd::DIRECTORY;
use crate::ceph::features;
use crate::ceph::object_map::{self, OBJECT_NONEXISTENT};
use crate::error::{Error, ErrorKind, Result};
use crate::rados::{Cluster, Pool, SnapContext, WriteOp};
use crate::rbd::header::{header_oid, id_oid};
use crate::rbd::limits::ORDERS;

pub const DEFAULT_ORDER: u8 = 22;

#[derive(Debug, Clone)]
pub struct CreateSpec {
    pub name: String,
    pub size: u64,
    pub order: u8,
    pub features: u64,
}

/// `rbd_default_features` / `rbd_default_order` from the cluster's
/// configuration, falling back to Ceph's defaults.
pub fn cluster_defaults(cluster: &dyn Cluster) -> (u64, u8) {
    let features = cluster
        .config("rbd_default_features")
        .and_then(|v| features::parse(&v))
        .unwrap_or(features::DEFAULT);
    let order = cluster
        .config("rbd_default_order")
        .and_then(|v| v.trim().parse::<u8>().ok())
        .filter(|o| ORDERS.contains(o))
        .unwrap_or(DEFAULT_ORDER);
    (features, order)
}

/// librbd's feature rules, checked before anything is written.
pub fn validate(spec: &CreateSpec) -> Result<()> {
    use features::*;
    if !ORDERS.contains(&spec.order) {
        return Err(Error::errno(
            ErrorKind::InvalidArgument,
            format!("invalid object order {}", spec.order),
            libc::EDOM,
        ));
    }
    let f = spec.features;
    let rules = [
        (f & !ALL != 0, "unknown image features"),
        (
            f & (OPERATIONS | MIGRATING | NON_PRIMARY | DIRTY_CACHE | DATA_POOL | STRIPINGV2) != 0,
            "features that cannot be requested at creation",
        ),
        (
            f & JOURNALING != 0,
            "journaling, which rbdimg does not support",
        ),
        (
            f & FAST_DIFF != 0 && f & OBJECT_MAP == 0,
            "fast-diff without object-map",
        ),
        (
            f & OBJECT_MAP != 0 && f & EXCLUSIVE_LOCK == 0,
            "object-map without exclusive-lock",
        ),
    ];
    if let Some((_, why)) = rules.iter().find(|(bad, _)| *bad) {
        return Err(Error::errno(
            ErrorKind::InvalidArgument,
            format!("invalid features: {why}"),
            libc::EINVAL,
        ));
    }
    if spec.size.div_ceil(1 << spec.order) > object_map::MAX_OBJECTS && f & OBJECT_MAP != 0 {
        return Err(Error::errno(
            ErrorKind::InvalidArgument,
            "image too large for an object map",
            libc::EINVAL,
        ));
    }
    Ok(())
}

/// librbd's image id: our client id and a random number in hex, at most 14 characters.
fn generate_id(cluster: &dyn Cluster) -> Result<String> {
    let mut random = [0u8; 4];
    getrandom::fill(&mut random)
        .map_err(|e| Error::new(ErrorKind::Io, format!("no randomness: {e}")))?;
    let id = format!(
        "{:x}{:x}",
        cluster.instance_id(),
        u32::from_le_bytes(random)
    );
    Ok(id[id.len().saturating_sub(14)..].to_string())
}

/// Creates the image and returns its id; errors read "error rbd create:
/// <reason>" as in QEMU.
pub fn create(cluster: &dyn Cluster, pool: &dyn Pool, spec: &CreateSpec) -> Result<String> {
    validate(spec)?;
    let id = generate_id(cluster)?;
    let none = SnapContext::default();
    let mut undo: Vec<Box<dyn Fn() -> Result<()> + '_>> = Vec::new();
    let result = (|| -> Result<()> {
        pool.operate(
            DIRECTORY,
            &[WriteOp::Exec(&cls_rbd::dir_add_image(&spec.name, &id))],
            &none,
        )?;
        undo.push(Box::new(|| {
            pool.operate(
                DIRECTORY,
                &[WriteOp::Exec(&cls_rbd::dir_remove_image(&spec.name, &id))],
                &none,
            )
        }));

        let id_object = id_oid(&spec.name);
        pool.operate(
            &id_object,
            &[
                WriteOp::CreateExclusive,
                WriteOp::Exec(&cls_rbd::set_id(&id)),
            ],
            &none,
        )?;
        undo.push(Box::new(|| {
            pool.operate(&id_oid(&spec.name), &[WriteOp::Remove], &none)
        }));

        let supported = pool
            .exec(DIRECTORY, &cls_rbd::get_all_features())
            .ok()
            .and_then(|out| cls_rbd::decode_u64(&out).ok())
            .unwrap_or(features::ALL);
        let features = spec.features & supported;
        let prefix = format!("rbd_data.{id}");
        let header = header_oid(&id);
        let create = cls_rbd::create(spec.size, spec.order, features, &prefix, None);
        pool.operate(
            &header,
            &[WriteOp::CreateExclusive, WriteOp::Exec(&create)],
            &none,
        )?;
        undo.push(Box::new(|| {
            pool.operate(&header_oid(&id), &[WriteOp::Remove], &none)
        }));

        if features & features::OBJECT_MAP != 0 {
            let objects = spec.size.div_ceil(1 << spec.order);
            let resize = cls_rbd::object_map_resize(objects, OBJECT_NONEXISTENT);
            pool.operate(
                &object_map::object_name(&id, None),
                &[WriteOp::Exec(&resize)],
                &none,
            )?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        for step in undo.iter().rev() {
            // Best effort: the original error is what the user needs to see.
            let _ = step();
        }
        // librbd through QEMU reports only the errno's text.
        return Err(Error::os(e.kind(), e.errno_value()).prepend("error rbd create"));
    }
    drop(undo);
    Ok(id)
}

/// Removes an image `create` made that holds no data yet (a clone whose
/// set-up failed): its object map, header, id object and directory entry.
/// Best effort: the error that made the caller give up is what matters.
pub fn remove_new(pool: &dyn Pool, name: &str, id: &str) {
    let none = SnapContext::default();
    for oid in [
        object_map::object_name(id, None),
        header_oid(id),
        id_oid(name),
    ] {
        let _ = pool.operate(&oid, &[WriteOp::Remove], &none);
    }
    let _ = pool.operate(
        DIRECTORY,
        &[WriteOp::Exec(&cls_rbd::dir_remove_image(name, id))],
        &none,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(order: u8, features: u64) -> CreateSpec {
        CreateSpec {
            name: "x".into(),
            size: 1 << 30,
            order,
            features,
        }
    }

    #[test]
    fn validates_like_librbd() {
        use features::*;
        assert!(validate(&spec(22, DEFAULT)).is_ok());
        assert!(validate(&spec(22, LAYERING)).is_ok());
        assert!(validate(&spec(11, DEFAULT)).is_err());
        assert!(validate(&spec(26, DEFAULT)).is_err());
        assert!(validate(&spec(22, OBJECT_MAP)).is_err());
        assert!(validate(&spec(22, EXCLUSIVE_LOCK | FAST_DIFF)).is_err());
        assert!(validate(&spec(22, EXCLUSIVE_LOCK | JOURNALING)).is_err());
        assert!(validate(&spec(22, 1 << 20)).is_err());
    }
}
