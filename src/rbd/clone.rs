//! Clones, as librbd makes and unmakes them (`CloneRequest`,
//! `AttachChildRequest`, `DetachChildRequest`):
//!
//! ```text
//!  clone format   rbd_default_clone_format: 1, 2, or auto = 2 when the
//!                 cluster requires mimic or newer clients
//!  parent         the named snapshot of an image with layering; v1 needs
//!                 it protected (rbdimg protects it, and says so) and the
//!                 child in the parent's namespace
//!  create child   the parent's order and features (unless given), the
//!                 parent snapshot's size (unless given)
//!  parent_attach  on the child: parent spec, overlap = parent snapshot size
//!                 (the OSD clips it to the child's size)
//!  v1             add_child to rbd_children of the child's pool, then the
//!                 snapshot must still be protected
//!  v2             op feature clone-child on the child, child_attach on the
//!                 parent snapshot
//!  any failure    the half-made child is removed again
//!
//!  detach (flatten, last snapshot of a flattened clone):
//!  v1             remove_child from rbd_children
//!  v2             child_detach; a parent snapshot in the trash that has
//!                 no child left is removed
//! ```

use std::sync::Arc;

use crate::block::diagnostics::Diagnostics;
use crate::ceph::cls_rbd::{self, ParentSpec};
use crate::ceph::cls_rbd_layering::{
    self as layering, CHILDREN, ChildSpec, OP_CLONE_CHILD, PROTECTED, SNAP_NAMESPACE_TRASH,
};
use crate::ceph::features;
use crate::error::{Error, ErrorKind, Result};
use crate::rados::{Cluster, MIMIC, Pool, SnapContext, WriteOp, config, ignore_missing};
use crate::rbd::create::{self, CreateSpec};
use crate::rbd::header::{Header, Snapshot, open_pool};
use crate::rbd::image::{RbdImage, parent_name};
use crate::rbd::name::RbdSpec;
use crate::rbd::notify::{self, NOTIFY_TIMEOUT_MS};

/// Features a clone does not inherit from its parent
/// (`RBD_FEATURES_IMPLICIT_ENABLE`).
const IMPLICIT: u64 = features::STRIPINGV2 | features::DATA_POOL | features::OPERATIONS;

/// A clone to make.
#[derive(Debug, Clone)]
pub struct CloneRequest {
    /// The parent image and its snapshot.
    pub parent: RbdSpec,
    pub child: RbdSpec,
    /// Defaults to the parent snapshot's size.
    pub size: Option<u64>,
    /// Defaults to the parent's order.
    pub order: Option<u8>,
    /// Defaults to the parent's features.
    pub features: Option<u64>,
}

/// Which clone format the cluster asks for (librbd's `validate_options`).
pub fn clone_format(cluster: &dyn Cluster) -> Result<u8> {
    match cluster
        .config("rbd_default_clone_format")
        .as_deref()
        .map(str::trim)
    {
        Some("1") => Ok(1),
        Some("2") => Ok(2),
        _ => Ok(if cluster.min_compat_client()? >= MIMIC {
            2
        } else {
            1
        }),
    }
}

/// Settings that say which cluster (and as whom) a name reaches.
const CONNECTION: &[&str] = &["mon_host", "mon_addr", "key", "keyring", "keyfile"];

/// The parent is looked up in the clone's cluster, with the clone's
/// connection options; any the parent's name gives (`conf=`, `store=`,
/// `id=`, monitors, keys) must be the clone's own.
pub fn parent_in_childs_cluster(parent: &RbdSpec, child: &RbdSpec) -> Result<RbdSpec> {
    let setting = |spec: &RbdSpec, key: &str| {
        spec.settings
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let differs = |mine: &Option<String>, theirs: &Option<String>| mine.is_some() && mine != theirs;
    if differs(&parent.user, &child.user)
        || differs(&parent.conf, &child.conf)
        || differs(&parent.store, &child.store)
        || CONNECTION
            .iter()
            .any(|k| differs(&setting(parent, k), &setting(child, k)))
    {
        return Err(Error::invalid(
            "a clone's parent must be in the clone's cluster: name it with the clone's connection options (conf=, id=, store=, mon_host=, keys) or none",
        ));
    }
    Ok(RbdSpec {
        user: child.user.clone(),
        conf: child.conf.clone(),
        settings: child.settings.clone(),
        store: child.store.clone(),
        ..parent.clone()
    })
}

/// `pool[/namespace]/image`, as `rbd` names images.
pub fn display_name(pool: &str, namespace: &str, image: &str) -> String {
    match namespace {
        "" => format!("{pool}/{image}"),
        ns => format!("{pool}/{ns}/{image}"),
    }
}

/// Makes the clone (steps in the diagram above). What the user should
/// hear (a snapshot protected for clone v1) goes to `diagnostics`.
pub fn clone(request: &CloneRequest, diagnostics: &Diagnostics) -> Result<()> {
    let parent = parent_in_childs_cluster(&request.parent, &request.child)?;
    let Some(snap_name) = parent.snapshot() else {
        return Err(Error::invalid(format!(
            "a clone's parent must be a snapshot: name one as {}@SNAPSHOT",
            display_name(&parent.pool, parent.namespace(), &parent.image)
        )));
    };
    let child = &request.child;
    let cluster = config::connect(&child.client_config(), diagnostics)?;
    let parent_pool = open_pool(cluster.as_ref(), &parent)?;
    let header = Header::load(parent_pool.as_ref(), &parent.image)?;
    let parent_name = display_name(&parent.pool, parent.namespace(), &parent.image);
    let snap = header.snapshot(snap_name).cloned().ok_or_else(|| {
        Error::errno(
            ErrorKind::NotFound,
            format!("snapshot '{snap_name}' of {parent_name} does not exist"),
            libc::ENOENT,
        )
    })?;
    if !header.has(features::LAYERING) {
        return Err(Error::errno(
            ErrorKind::UnsupportedFeature,
            format!("cannot clone {parent_name}: it does not have the layering feature"),
            libc::ENOSYS,
        ));
    }
    if let Some(why) = header.unsupported(false) {
        return Err(Error::errno(
            ErrorKind::UnsupportedFeature,
            format!("cannot clone {parent_name}: {why}"),
            libc::ENOTSUP,
        ));
    }
    let format = clone_format(cluster.as_ref())?;
    if format == 1 && parent.namespace() != child.namespace() {
        return Err(Error::errno(
            ErrorKind::InvalidArgument,
            "this cluster makes clone v1 (rbd_default_clone_format, or clients older than mimic), \
             which cannot clone into another namespace; set rbd_default_clone_format=2",
            libc::EXDEV,
        ));
    }
    let features = request.features.unwrap_or(header.features & !IMPLICIT);
    if features & features::LAYERING == 0 {
        return Err(Error::errno(
            ErrorKind::InvalidArgument,
            "a clone needs the layering feature",
            libc::ENOSYS,
        ));
    }
    let spec = CreateSpec {
        name: child.image.clone(),
        size: request.size.unwrap_or(snap.size),
        order: request.order.unwrap_or(header.order),
        features,
    };
    create::validate(&spec)?;
    if format == 1 && !snap.protected {
        protect(parent_pool.as_ref(), &header, &snap)?;
        diagnostics.info(format!(
            "protected snapshot {parent_name}@{snap_name}: clone v1 (this cluster's format) needs it"
        ));
    }
    cluster.ensure_pool(&child.pool, child.namespace())?;
    let child_pool = open_pool(cluster.as_ref(), child)?;
    let id = create::create(cluster.as_ref(), child_pool.as_ref(), &spec)?;
    let spec = ParentSpec {
        pool_id: parent_pool.id(),
        namespace: parent.namespace().to_string(),
        image_id: header.id.clone(),
        snap_id: snap.id,
    };
    let attached = attach(
        parent_pool.as_ref(),
        child_pool.as_ref(),
        &id,
        &spec,
        snap.size,
        format,
    );
    if let Err(e) = attached {
        create::remove_new(child_pool.as_ref(), &child.image, &id);
        return Err(e.prepend(format!("error cloning {parent_name}@{snap_name}")));
    }
    Ok(())
}

/// v1 parents need a protected snapshot.
fn protect(pool: &dyn Pool, header: &Header, snap: &Snapshot) -> Result<()> {
    let call = layering::set_protection_status(snap.id, PROTECTED);
    pool.operate(
        &header.header_oid(),
        &[WriteOp::Exec(&call)],
        &SnapContext::default(),
    )?;
    let _ = pool.notify(
        &header.header_oid(),
        &notify::header_update(),
        NOTIFY_TIMEOUT_MS,
    );
    Ok(())
}

/// Links the new child `id` to its parent and the parent to it.
fn attach(
    parent_pool: &dyn Pool,
    child_pool: &dyn Pool,
    id: &str,
    spec: &ParentSpec,
    overlap: u64,
    format: u8,
) -> Result<()> {
    let none = SnapContext::default();
    let child_header = crate::rbd::header::header_oid(id);
    let parent_header = crate::rbd::header::header_oid(&spec.image_id);
    let exec = |pool: &dyn Pool, oid: &str, call: &crate::ceph::Call| {
        pool.operate(oid, &[WriteOp::Exec(call)], &none)
    };
    exec(
        child_pool,
        &child_header,
        &layering::parent_attach(spec, overlap, false),
    )?;
    if format == 1 {
        let v1 = ParentSpec {
            namespace: String::new(),
            ..spec.clone()
        };
        exec(child_pool, CHILDREN, &layering::add_child(&v1, id))?;
        // The parent snapshot may have been unprotected meanwhile.
        let status = parent_pool.exec(
            &parent_header,
            &cls_rbd::get_protection_status(spec.snap_id),
        );
        if status.ok().and_then(|s| cls_rbd::decode_u8(&s).ok()) != Some(PROTECTED) {
            let _ = exec(child_pool, CHILDREN, &layering::remove_child(&v1, id));
            return Err(Error::errno(
                ErrorKind::InvalidArgument,
                "the parent snapshot was unprotected",
                libc::EINVAL,
            ));
        }
        return Ok(());
    }
    exec(
        child_pool,
        &child_header,
        &layering::op_features_set(OP_CLONE_CHILD, OP_CLONE_CHILD),
    )?;
    let me = ChildSpec {
        pool_id: child_pool.id(),
        namespace: child_pool.namespace().to_string(),
        image_id: id.to_string(),
    };
    exec(
        parent_pool,
        &parent_header,
        &layering::child_attach(spec.snap_id, &me),
    )
    .map_err(|e| match e.errno_value() {
        libc::ENOENT => Error::errno(
            ErrorKind::NotFound,
            "the parent snapshot was removed meanwhile",
            libc::ENOENT,
        ),
        _ => e,
    })
}

impl RbdImage {
    /// Takes this clone off its parent's list of children, as librbd's
    /// DetachChildRequest does once nothing of the clone reads through:
    /// clone v1 in `rbd_children`, v2 on the parent snapshot (a parent
    /// snapshot in the trash goes with its last child, best effort).
    pub(super) fn detach_child(&self, header: &Header, spec: &ParentSpec) -> Result<()> {
        let none = SnapContext::default();
        if header.op_features & OP_CLONE_CHILD == 0 {
            let v1 = ParentSpec {
                namespace: String::new(),
                ..spec.clone()
            };
            let call = layering::remove_child(&v1, &header.id);
            return ignore_missing(self.pool.operate(CHILDREN, &[WriteOp::Exec(&call)], &none));
        }
        let parent_pool = self.cluster.pool_by_id(spec.pool_id, &spec.namespace)?;
        let parent_header = crate::rbd::header::header_oid(&spec.image_id);
        let me = ChildSpec {
            pool_id: self.pool.id(),
            namespace: self.pool.namespace().to_string(),
            image_id: header.id.clone(),
        };
        let call = layering::child_detach(spec.snap_id, &me);
        ignore_missing(parent_pool.operate(&parent_header, &[WriteOp::Exec(&call)], &none))?;
        let trashed_and_unused = parent_pool
            .exec(&parent_header, &cls_rbd::snapshot_get(spec.snap_id))
            .ok()
            .and_then(|out| cls_rbd::decode_snapshot(&out).ok())
            .is_some_and(|s| s.namespace_type == SNAP_NAMESPACE_TRASH && s.child_count == 0);
        if trashed_and_unused {
            let _ = self.remove_trashed_parent_snapshot(&parent_pool, spec);
        }
        Ok(())
    }

    /// Removes a parent snapshot that only clone v2 children kept, once
    /// the last one is gone, through the parent itself (its lock and its
    /// object maps); a parent in use elsewhere keeps it for now.
    fn remove_trashed_parent_snapshot(
        &self,
        parent_pool: &Arc<dyn Pool>,
        spec: &ParentSpec,
    ) -> Result<()> {
        let name = parent_name(parent_pool.as_ref(), &spec.image_id)?;
        let parent = RbdSpec {
            pool: parent_pool.name().to_string(),
            namespace: Some(spec.namespace.clone()),
            image: name,
            snapshot: None,
            ..self.spec.clone()
        };
        let image = RbdImage::open(&parent, true, &Diagnostics::default())?;
        image.remove_snapshot_by_id(spec.snap_id)
    }
}

/// The clones of snapshot `snap` of the image `header` (in `pool`), as
/// `pool[/namespace]/name`: clone v2 children from the snapshot, clone v1
/// children from every pool's `rbd_children` (in the parent's namespace).
pub fn children(
    cluster: &dyn Cluster,
    pool: &dyn Pool,
    header: &Header,
    snap: &Snapshot,
) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let name_in = |p: &dyn Pool, id: &str| {
        let name = parent_name(p, id).unwrap_or_else(|_| format!("(id {id})"));
        display_name(p.name(), p.namespace(), &name)
    };
    if snap.child_count > 0 {
        let out = pool.exec(&header.header_oid(), &layering::children_list(snap.id))?;
        let list = layering::decode_child_specs(&out)
            .map_err(|e| Error::corrupt(format!("snapshot children: {e}")))?;
        for child in list {
            match cluster.pool_by_id(child.pool_id, &child.namespace) {
                Ok(p) => names.push(name_in(p.as_ref(), &child.image_id)),
                Err(_) => names.push(format!("(pool id {}) {}", child.pool_id, child.image_id)),
            }
        }
    }
    let v1 = ParentSpec {
        pool_id: pool.id(),
        namespace: String::new(),
        image_id: header.id.clone(),
        snap_id: snap.id,
    };
    for pool_name in cluster.pool_names()? {
        let Ok(p) = cluster.pool(&pool_name, pool.namespace()) else {
            continue;
        };
        let ids = match p.exec(CHILDREN, &layering::get_children(&v1)) {
            Ok(out) => layering::decode_children(&out)
                .map_err(|e| Error::corrupt(format!("rbd_children: {e}")))?,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        names.extend(ids.iter().map(|id| name_in(p.as_ref(), id)));
    }
    Ok(names)
}
