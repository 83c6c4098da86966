//! One open RBD image (librbd's `ImageCtx`): its metadata, object map,
//! snapshot context, exclusive lock and (for a clone) its parent, opened
//! read-only at the parent snapshot. The data path is in `io.rs` (with
//! copy-up in `copyup.rs`), where the data is (object map or listing) in
//! `extents.rs`, resize in `resize.rs`, snapshots in `snapshot.rs`, clones
//! in `clone.rs` and `flatten.rs`, the object-map check in `check.rs`;
//! `storage::rbd` presents the image as byte storage.
//!
//! Lock order: `state` (read for I/O, write for resize/snapshot/rollback/
//! flatten's detach), then `copyups`, then `map_busy`, then `map`; `listed`
//! is never held with `map`. I/O runs concurrently under the `state` read
//! lock; single-object map updates run concurrently too, each object
//! marked busy in `map_busy` while its update is in flight, and each
//! object's copy-up runs once at a time (`copyups`).

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use crate::block::diagnostics::Diagnostics;
use crate::ceph::cls_rbd;
use crate::ceph::features;
use crate::ceph::object_map::{self, FLAG_OBJECT_MAP_INVALID, ObjectMap};
use crate::error::{Error, ErrorKind, Result};
use crate::rados::{Cluster, Pool, SnapContext, config};
use crate::rbd::header::{Header, Snapshot};
use crate::rbd::limits;
use crate::rbd::lock::ExclusiveLock;
use crate::rbd::name::RbdSpec;
use crate::rbd::notify::{self, NOTIFY_TIMEOUT_MS};

/// The name of the image with this id, from its pool's directory.
pub(super) fn parent_name(pool: &dyn Pool, id: &str) -> Result<String> {
    let out = pool.exec(
        crate::ceph::cls_rbd::DIRECTORY,
        &crate::ceph::cls_rbd_layering::dir_get_name(id),
    )?;
    cls_rbd::decode_string(&out).map_err(|e| Error::corrupt(format!("image name: {e}")))
}

pub(super) struct State {
    pub header: Header,
    pub snapc: SnapContext,
    /// The parent this image (head or opened snapshot) reads through to.
    pub parent: Option<ParentLink>,
}

/// A clone's parent as the open image reads it: the parent image, opened
/// read-only at the parent snapshot, and how many bytes of this image
/// (from offset 0) read through to it.
pub(super) struct ParentLink {
    pub image: Arc<RbdImage>,
    pub overlap: u64,
}

pub struct RbdImage {
    pub(super) spec: RbdSpec,
    pub(super) cluster: Arc<dyn Cluster>,
    /// Where the header and object maps live.
    pub(super) pool: Arc<dyn Pool>,
    /// Where data objects live (the data pool, if the image has one).
    pub(super) data: Arc<dyn Pool>,
    pub(super) state: RwLock<State>,
    /// The object map in use: the head's (kept current while we hold the
    /// lock) or the opened snapshot's; `None` when absent or invalid.
    pub(super) map: Mutex<Option<ObjectMap>>,
    /// Why a map that should be there could not be used (read-only opens
    /// do not flag it invalid): `check` reports it.
    pub(super) map_problem: Mutex<Option<String>>,
    /// Without a usable map: the objects one listing found (and our
    /// writes since), loaded on first need (`extents.rs`).
    pub(super) listed: Mutex<Option<BTreeSet<u64>>>,
    /// Where news for the user goes (the listing's warning).
    pub(super) diagnostics: Diagnostics,
    /// Objects whose map update is on its way to the cluster: another
    /// writer of the same object waits until it is durable.
    pub(super) map_busy: Mutex<HashSet<u64>>,
    pub(super) map_settled: Condvar,
    /// The snapshot this image was opened at (read-only).
    pub(super) snapshot: Option<Snapshot>,
    pub(super) lock: Mutex<Option<ExclusiveLock>>,
    /// Objects whose copy-up is under way: another writer of the object
    /// waits, then finds the object there.
    pub(super) copyups: Mutex<HashSet<u64>>,
    pub(super) copied_up: Condvar,
}

impl RbdImage {
    /// Opens `spec`; a writable open takes the exclusive lock. What the
    /// user should hear meanwhile (a store open to others, a wait for a
    /// dead lock owner) goes to `diagnostics` as it happens.
    pub fn open(
        spec: &RbdSpec,
        writable: bool,
        diagnostics: &Diagnostics,
    ) -> Result<Arc<RbdImage>> {
        let cluster = config::connect(&spec.client_config(), diagnostics)?;
        let pool = crate::rbd::header::open_pool(cluster.as_ref(), spec)?;
        Self::open_in(cluster, pool, spec, writable, diagnostics)
    }

    fn open_in(
        cluster: Arc<dyn Cluster>,
        pool: Arc<dyn Pool>,
        spec: &RbdSpec,
        writable: bool,
        diagnostics: &Diagnostics,
    ) -> Result<Arc<RbdImage>> {
        let header = Header::load(pool.as_ref(), &spec.image)?;
        let snapshot = match spec.snapshot() {
            Some(name) => Some(header.readable_snapshot(name).cloned().ok_or_else(|| {
                Error::errno(
                    ErrorKind::NotFound,
                    format!("error reading header from {}", spec.image),
                    libc::ENOENT,
                )
            })?),
            None => None,
        };
        if writable && snapshot.is_some() {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                "rbd snapshots are read-only",
            ));
        }
        if let Some(why) = header.unsupported(writable) {
            return Err(Error::errno(
                ErrorKind::UnsupportedFeature,
                why,
                libc::ENOTSUP,
            ));
        }
        let image = Self::assemble(
            cluster,
            pool,
            spec.clone(),
            header,
            snapshot,
            0,
            diagnostics,
        )?;
        if writable {
            image.acquire_lock(diagnostics)?;
        }
        image.load_object_map()?;
        Ok(Arc::new(image))
    }

    /// Opens the parent of a clone `depth` links down its chain, named as
    /// the child (`child`, whose connection options it shares) names it.
    fn open_parent(
        cluster: &Arc<dyn Cluster>,
        child: &RbdSpec,
        spec: &cls_rbd::ParentSpec,
        depth: usize,
        diagnostics: &Diagnostics,
    ) -> Result<Arc<RbdImage>> {
        if depth > limits::MAX_PARENT_CHAIN {
            return Err(Error::corrupt(format!(
                "parent chain is too long ({})",
                limits::MAX_PARENT_CHAIN
            )));
        }
        let missing = |what: String, e: Error| {
            Error::errno(
                e.kind(),
                format!("the parent of {} ({what}) cannot be opened", child.image),
                e.errno_value(),
            )
        };
        let pool = cluster
            .pool_by_id(spec.pool_id, &spec.namespace)
            .map_err(|e| missing(format!("pool id {}", spec.pool_id), e))?;
        let place = match spec.namespace.as_str() {
            "" => pool.name().to_string(),
            ns => format!("{}/{ns}", pool.name()),
        };
        let name = parent_name(pool.as_ref(), &spec.image_id)
            .map_err(|e| missing(format!("image id {} in {place}", spec.image_id), e))?;
        let header = Header::load_by_id(pool.as_ref(), &name, &spec.image_id)
            .map_err(|e| e.prepend(format!("error reading header from {place}/{name}")))?;
        let snap = header
            .snapshots
            .iter()
            .find(|s| s.id == spec.snap_id)
            .cloned()
            .ok_or_else(|| {
                Error::errno(
                    ErrorKind::NotFound,
                    format!(
                        "the parent snapshot of {} ({place}/{name}, snapshot id {}) is missing",
                        child.image, spec.snap_id
                    ),
                    libc::ENOENT,
                )
            })?;
        let parent_spec = RbdSpec {
            pool: pool.name().to_string(),
            namespace: Some(spec.namespace.clone()),
            image: name,
            snapshot: Some(snap.name.clone()),
            ..child.clone()
        };
        let image = Self::assemble(
            cluster.clone(),
            pool,
            parent_spec,
            header,
            Some(snap),
            depth,
            diagnostics,
        )?;
        image.load_object_map()?;
        Ok(Arc::new(image))
    }

    /// Builds the open image from its loaded header: data pool, parent
    /// (opened read-only at its snapshot) and snapshot context. `depth`
    /// counts the clone links above this image.
    fn assemble(
        cluster: Arc<dyn Cluster>,
        pool: Arc<dyn Pool>,
        spec: RbdSpec,
        header: Header,
        snapshot: Option<Snapshot>,
        depth: usize,
        diagnostics: &Diagnostics,
    ) -> Result<RbdImage> {
        let data = match header.data_pool_id {
            Some(id) if id != pool.id() => cluster.pool_by_id(id, spec.namespace())?,
            _ => pool.clone(),
        };
        if let Some(p) = &header.parent
            && (
                p.spec.pool_id,
                p.spec.namespace.as_str(),
                p.spec.image_id.as_str(),
            ) == (pool.id(), pool.namespace(), header.id.as_str())
        {
            return Err(Error::corrupt(format!(
                "parent image id '{}' is corrupt: the image is its own parent",
                header.id
            )));
        }
        let overlap = Self::overlap_at(&pool, &header, &snapshot)?;
        let parent = match &header.parent {
            Some(p) if overlap > 0 => Some(ParentLink {
                image: Self::open_parent(&cluster, &spec, &p.spec, depth + 1, diagnostics)?,
                overlap,
            }),
            _ => None,
        };
        let snapc = SnapContext {
            seq: header.snap_seq,
            snaps: header.snapshots.iter().map(|s| s.id).collect(),
        };
        Ok(RbdImage {
            spec,
            cluster,
            pool,
            data,
            state: RwLock::new(State {
                header,
                snapc,
                parent,
            }),
            map: Mutex::new(None),
            map_problem: Mutex::new(None),
            listed: Mutex::new(None),
            diagnostics: diagnostics.clone(),
            map_busy: Mutex::new(HashSet::new()),
            map_settled: Condvar::new(),
            snapshot,
            lock: Mutex::new(None),
            copyups: Mutex::new(HashSet::new()),
            copied_up: Condvar::new(),
        })
    }

    /// The parent overlap for the head or an opened snapshot.
    fn overlap_at(
        pool: &Arc<dyn Pool>,
        header: &Header,
        snapshot: &Option<Snapshot>,
    ) -> Result<u64> {
        match snapshot {
            _ if header.parent.is_none() => Ok(0),
            None => Ok(header.head_overlap()),
            Some(s) => {
                let out = pool.exec(&header.header_oid(), &cls_rbd::parent_overlap_get(s.id))?;
                Ok(cls_rbd::decode_overlap(&out)
                    .map_err(|e| Error::corrupt(format!("parent overlap: {e}")))?
                    .unwrap_or(0)
                    .min(s.size))
            }
        }
    }

    fn acquire_lock(&self, diagnostics: &Diagnostics) -> Result<()> {
        let header = &self.state.read().expect("no poisoning").header;
        if !header.has(features::EXCLUSIVE_LOCK) {
            return Ok(());
        }
        let map = header
            .has(features::OBJECT_MAP)
            .then(|| object_map::object_name(&header.id, None));
        let lock = ExclusiveLock::acquire(
            self.cluster.as_ref(),
            self.pool.clone(),
            &header.name,
            &header.header_oid(),
            map,
            diagnostics,
        )?;
        *self.lock.lock().expect("no poisoning") = Some(lock);
        Ok(())
    }

    /// Loads the object map in use, or records that there is none to trust.
    pub(super) fn load_object_map(&self) -> Result<()> {
        let state = self.state.read().expect("no poisoning");
        let header = &state.header;
        let (flags, snap_id, size) = match &self.snapshot {
            Some(s) => (s.flags, Some(s.id), s.size),
            None => (header.flags, None, header.size),
        };
        let mut slot = self.map.lock().expect("no poisoning");
        *slot = None;
        if !header.has(features::OBJECT_MAP) || flags & FLAG_OBJECT_MAP_INVALID != 0 {
            return Ok(());
        }
        let oid = object_map::object_name(&header.id, snap_id);
        let loaded = self
            .pool
            .exec(&oid, &cls_rbd::object_map_load())
            .and_then(|out| {
                ObjectMap::decode(&out).map_err(|e| Error::corrupt(format!("object map: {e}")))
            });
        let needed = header.object_count(size);
        let problem = match loaded {
            // A map larger than the image is left over from an interrupted
            // shrink and is accepted, as librbd accepts it.
            Ok(map) if map.len() >= needed => {
                let pending: Vec<u64> = (0..map.len())
                    .filter(|&o| map.get(o) == object_map::OBJECT_PENDING)
                    .collect();
                *slot = Some(map);
                drop(slot);
                if self.holds_lock() && self.snapshot.is_none() {
                    self.settle_pending(&state, &pending)?;
                }
                return Ok(());
            }
            Ok(map) => format!("it covers {} of the {needed} objects", map.len()),
            Err(e) => e.to_string(),
        };
        drop(slot);
        if self.holds_lock() {
            drop(state);
            return self.invalidate_object_map();
        }
        // Read-only: fall back to asking RADOS whether objects exist.
        *self.map_problem.lock().expect("no poisoning") = Some(problem);
        Ok(())
    }

    /// PENDING entries found when taking the lock are removals a dead
    /// owner never finished: settle each by whether the object exists.
    fn settle_pending(&self, state: &State, pending: &[u64]) -> Result<()> {
        for &object in pending {
            let oid = state.header.data_oid(object);
            let new = match self.data.stat(&oid, crate::rados::SNAP_HEAD) {
                Ok(_) => object_map::OBJECT_EXISTS,
                Err(e) if e.kind() == ErrorKind::NotFound => object_map::OBJECT_NONEXISTENT,
                Err(e) => return Err(e),
            };
            self.update_map(
                state,
                object,
                object + 1,
                new,
                Some(object_map::OBJECT_PENDING),
            )?;
        }
        Ok(())
    }

    pub(super) fn holds_lock(&self) -> bool {
        self.lock.lock().expect("no poisoning").is_some()
    }

    /// Marks the head object map invalid, as librbd does when it cannot
    /// keep it right; `rbd object-map rebuild` repairs it.
    pub(super) fn invalidate_object_map(&self) -> Result<()> {
        let state = self.state.read().expect("no poisoning");
        let mut mask = FLAG_OBJECT_MAP_INVALID;
        if state.header.has(features::FAST_DIFF) {
            mask |= object_map::FLAG_FAST_DIFF_INVALID;
        }
        let call = cls_rbd::set_flags(crate::ceph::NOSNAP, mask, mask);
        self.pool.operate(
            &state.header.header_oid(),
            &[crate::rados::WriteOp::Exec(&call)],
            &SnapContext::default(),
        )?;
        *self.map.lock().expect("no poisoning") = None;
        Ok(())
    }

    /// Re-reads the header after we changed it, keeping our lock. The
    /// parent stays open while the head reads through it (the overlap may
    /// have shrunk); a flattened head lets it go.
    pub(super) fn refresh(&self, state: &mut State) -> Result<()> {
        let header = Header::load_by_id(self.pool.as_ref(), &state.header.name, &state.header.id)?;
        state.snapc = SnapContext {
            seq: header.snap_seq,
            snaps: header.snapshots.iter().map(|s| s.id).collect(),
        };
        let overlap = header.head_overlap();
        state.parent = match (state.parent.take(), &header.parent) {
            (_, None) => None,
            _ if overlap == 0 => None,
            (Some(link), Some(_)) => Some(ParentLink { overlap, ..link }),
            (None, Some(p)) => Some(ParentLink {
                image: Self::open_parent(&self.cluster, &self.spec, &p.spec, 1, &self.diagnostics)?,
                overlap,
            }),
        };
        state.header = header;
        Ok(())
    }

    /// Tells watchers (QEMU, rbd, librbd clients) to re-read the header.
    pub(super) fn notify_header_update(&self, state: &State) {
        let _ = self.pool.notify(
            &state.header.header_oid(),
            &notify::header_update(),
            NOTIFY_TIMEOUT_MS,
        );
    }

    /// Writes need the lock when the image has the feature; a lost watch
    /// means we may no longer own it.
    pub(super) fn check_writable(&self) -> Result<()> {
        if self.snapshot.is_some() {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                "rbd snapshots are read-only",
            ));
        }
        if let Some(lock) = self.lock.lock().expect("no poisoning").as_ref() {
            lock.check()?;
        }
        Ok(())
    }

    pub(super) fn current_size(&self, state: &State) -> u64 {
        self.snapshot.as_ref().map_or(state.header.size, |s| s.size)
    }

    pub(super) fn read_snap(&self) -> u64 {
        self.snapshot
            .as_ref()
            .map_or(crate::rados::SNAP_HEAD, |s| s.id)
    }

    pub fn header(&self) -> Header {
        self.state.read().expect("no poisoning").header.clone()
    }

    /// The size of the head, or of the snapshot the image was opened at.
    pub fn size(&self) -> u64 {
        self.current_size(&self.state.read().expect("no poisoning"))
    }

    pub fn object_size(&self) -> u64 {
        self.state
            .read()
            .expect("no poisoning")
            .header
            .object_size()
    }

    /// The name the image was opened by (a parent: named from the child,
    /// with the child's connection options).
    pub fn spec(&self) -> &RbdSpec {
        &self.spec
    }

    /// The parent this image reads through to, while it does.
    pub fn parent(&self) -> Option<Arc<RbdImage>> {
        let state = self.state.read().expect("no poisoning");
        state.parent.as_ref().map(|p| p.image.clone())
    }

    /// Where the image lives: the cluster's description.
    pub fn store(&self) -> String {
        self.cluster.describe()
    }

    /// Makes completed writes durable (object writes are synchronous; the
    /// backend decides what durable means).
    pub fn flush(&self) -> Result<()> {
        self.data.flush()
    }
}
