//! Snapshot create, remove and rollback, as librbd's operations do them,
//! with I/O blocked (the state write lock) for the duration:
//!
//! ```text
//!  create:   snap id from the data pool -> snapshot_add (ESTALE: new id)
//!            copy the head object map to rbd_object_map.<id>.<snap>
//!            fast-diff: head map EXISTS -> EXISTS_CLEAN (object_map_snap_add)
//!            new snap context -> notify
//!  remove:   protected (clone v1 parent) -> EBUSY, naming its clones
//!            move it to the trash: clone v2 children still attached ->
//!            it stays there (they keep reading it) -> notify, done
//!            fast-diff: fold the snapshot's map into the next newer map
//!            delete its map -> release the snap id -> snapshot_remove
//!            the last reference of a flattened clone to its parent gone:
//!            detach from the parent's children -> notify
//!  rollback: resize to the snapshot's size -> copy its map over the head's
//!            roll back every object that may exist in either (runs of
//!            objects in neither skipped; with fast-diff, objects unchanged
//!            since the newest snapshot too) -> reload map -> the objects
//!            left untouched stay EXISTS_CLEAN
//! ```

use crate::ceph::cls_rbd;
use crate::ceph::cls_rbd_layering::{self, SNAP_NAMESPACE_TRASH};
use crate::ceph::features;
use crate::ceph::object_map::{self, OBJECT_EXISTS, OBJECT_EXISTS_CLEAN, ObjectMap};
use crate::error::{Error, ErrorKind, Result};
use crate::rados::{SnapContext, WriteOp, ignore_missing};
use crate::rbd::extents::union_run;
use crate::rbd::header::Snapshot;
use crate::rbd::image::RbdImage;
use crate::rbd::lock::ExclusiveLock;

/// QEMU's limit on snapshot names.
const MAX_NAME: usize = 127;

impl RbdImage {
    fn find_snapshot(&self, name: &str) -> Result<Snapshot> {
        let state = self.state.read().expect("no poisoning");
        state.header.snapshot(name).cloned().ok_or_else(|| {
            Error::errno(ErrorKind::NotFound, "Failed to load snapshot", libc::ENOENT)
        })
    }

    /// Creates snapshot `name` of the head.
    pub fn create_snapshot(&self, name: &str) -> Result<()> {
        if name.is_empty() {
            return Err(Error::os(ErrorKind::InvalidArgument, libc::EINVAL));
        }
        if name.len() > MAX_NAME {
            return Err(Error::os(ErrorKind::InvalidArgument, libc::ERANGE));
        }
        self.check_writable()?;
        let mut state = self.state.write().expect("no poisoning");
        if state.header.snapshot(name).is_some() {
            return Err(Error::os(ErrorKind::AlreadyExists, libc::EEXIST));
        }
        let header_oid = state.header.header_oid();
        let none = SnapContext::default();
        let mut snap_id = self.data.snap_create()?;
        let mut attempts = 0;
        loop {
            match self.pool.operate(
                &header_oid,
                &[WriteOp::Exec(&cls_rbd::snapshot_add(name, snap_id))],
                &none,
            ) {
                Ok(()) => break,
                // Our id is older than the image's snap_seq: take a fresh one.
                Err(e) if e.errno_value() == libc::ESTALE && attempts < 5 => {
                    let _ = self.data.snap_remove(snap_id);
                    snap_id = self.data.snap_create()?;
                    attempts += 1;
                }
                Err(e) => {
                    let _ = self.data.snap_remove(snap_id);
                    return Err(Error::os(e.kind(), e.errno_value()));
                }
            }
        }
        if self.map.lock().expect("no poisoning").is_some() {
            let head = object_map::object_name(&state.header.id, None);
            let copy = self.pool.read_full(&head).and_then(|bytes| {
                self.pool.operate(
                    &object_map::object_name(&state.header.id, Some(snap_id)),
                    &[WriteOp::WriteFull(&bytes)],
                    &none,
                )
            });
            let cleaned = copy.and_then(|()| {
                if !state.header.has(features::FAST_DIFF) {
                    return Ok(());
                }
                let assert = ExclusiveLock::assert_object_map_locked();
                let snap_add = cls_rbd::object_map_snap_add();
                self.pool.operate(
                    &head,
                    &[WriteOp::Exec(&assert), WriteOp::Exec(&snap_add)],
                    &none,
                )?;
                if let Some(map) = self.map.lock().expect("no poisoning").as_mut() {
                    map.clean();
                }
                Ok(())
            });
            if let Err(e) = cleaned {
                // The snapshot exists; only its map could not be kept right.
                self.invalidate_object_map()?;
                return Err(e.prepend("snapshot created, but its object map could not be written"));
            }
        }
        self.refresh(&mut state)?;
        self.notify_header_update(&state);
        Ok(())
    }

    /// Removes snapshot `name` (steps in the diagram above).
    pub fn remove_snapshot(&self, name: &str) -> Result<()> {
        self.check_writable()?;
        let snap = self
            .find_snapshot(name)
            .map_err(|_| Error::os(ErrorKind::NotFound, libc::ENOENT))?;
        if snap.protected {
            return Err(self.protected(&snap));
        }
        self.remove_snapshot_by_id(snap.id)
    }

    /// Why a protected snapshot stays: the clones (v1) that depend on it.
    fn protected(&self, snap: &Snapshot) -> Error {
        let header = self.header();
        let clones =
            crate::rbd::clone::children(self.cluster.as_ref(), self.pool.as_ref(), &header, snap)
                .unwrap_or_default();
        let why = match clones.as_slice() {
            [] => format!(
                "snapshot '{}' is protected (`rbd snap unprotect` lifts that)",
                snap.name
            ),
            list => format!(
                "snapshot '{}' is protected: clones depend on it ({}); flatten or remove them, \
                 then unprotect it",
                snap.name,
                list.join(", ")
            ),
        };
        Error::errno(ErrorKind::Busy, why, libc::EBUSY)
    }

    /// Removes the snapshot with this id (a user snapshot, or one in the
    /// trash whose clone v2 children are gone).
    pub(super) fn remove_snapshot_by_id(&self, snap_id: u64) -> Result<()> {
        self.check_writable()?;
        let mut state = self.state.write().expect("no poisoning");
        let none = SnapContext::default();
        let header_oid = state.header.header_oid();
        let snap = state
            .header
            .snapshots
            .iter()
            .find(|s| s.id == snap_id)
            .cloned()
            .ok_or_else(|| Error::os(ErrorKind::NotFound, libc::ENOENT))?;
        if snap.namespace != SNAP_NAMESPACE_TRASH {
            let trash = cls_rbd_layering::snapshot_trash_add(snap.id);
            match self
                .pool
                .operate(&header_oid, &[WriteOp::Exec(&trash)], &none)
            {
                Err(e) if e.errno_value() != libc::EEXIST => return Err(e),
                _ => {}
            }
        }
        let info = cls_rbd::decode_snapshot(
            &self
                .pool
                .exec(&header_oid, &cls_rbd::snapshot_get(snap.id))?,
        )
        .map_err(|e| Error::corrupt(format!("snapshot: {e}")))?;
        if info.child_count > 0 {
            // Its clone v2 children read it from the trash; the last one
            // to go removes it.
            self.refresh(&mut state)?;
            self.notify_header_update(&state);
            return Ok(());
        }
        let before = state.header.clone();
        let id = state.header.id.clone();
        if state.header.has(features::OBJECT_MAP) {
            let snap_map = object_map::object_name(&id, Some(snap.id));
            if state.header.has(features::FAST_DIFF) {
                self.fold_snapshot_map(&state.header.snapshots, &id, &snap)?;
            }
            ignore_missing(self.pool.operate(&snap_map, &[WriteOp::Remove], &none))?;
        }
        ignore_missing(self.data.snap_remove(snap.id))?;
        self.pool.operate(
            &state.header.header_oid(),
            &[WriteOp::Exec(&cls_rbd::snapshot_remove(snap.id))],
            &none,
        )?;
        self.refresh(&mut state)?;
        if let Some(parent) = &before.parent
            && state.header.parent.is_none()
        {
            self.detach_child(&before, &parent.spec)?;
        }
        self.notify_header_update(&state);
        Ok(())
    }

    /// Objects changed while the removed snapshot was the newest must stay
    /// "changed" in the next newer map: cls `object_map_snap_remove` turns
    /// EXISTS_CLEAN back into EXISTS where the removed map says EXISTS.
    fn fold_snapshot_map(&self, snapshots: &[Snapshot], id: &str, snap: &Snapshot) -> Result<()> {
        let none = SnapContext::default();
        let removed = match self.pool.exec(
            &object_map::object_name(id, Some(snap.id)),
            &cls_rbd::object_map_load(),
        ) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        // Snapshots are listed newest first: the next newer one precedes us.
        let position = snapshots.iter().position(|s| s.id == snap.id).unwrap_or(0);
        let next = position.checked_sub(1).map(|i| snapshots[i].id);
        let call = cls_rbd::object_map_snap_remove(&removed);
        match next {
            Some(next_id) => self.pool.operate(
                &object_map::object_name(id, Some(next_id)),
                &[WriteOp::Exec(&call)],
                &none,
            ),
            None => {
                let assert = ExclusiveLock::assert_object_map_locked();
                self.pool.operate(
                    &object_map::object_name(id, None),
                    &[WriteOp::Exec(&assert), WriteOp::Exec(&call)],
                    &none,
                )?;
                let source = ObjectMap::decode(&removed)
                    .map_err(|e| Error::corrupt(format!("object map: {e}")))?;
                if let Some(map) = self.map.lock().expect("no poisoning").as_mut() {
                    for o in 0..map.len() {
                        if map.get(o) == OBJECT_EXISTS_CLEAN
                            && (o >= source.len() || source.get(o) == OBJECT_EXISTS)
                        {
                            map.set(o, OBJECT_EXISTS);
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Rolls the head back to snapshot `name`.
    pub fn rollback_to(&self, name: &str) -> Result<()> {
        let snap = self.find_snapshot(name)?;
        self.check_writable()?;
        if self.current_size(&self.state.read().expect("no poisoning")) != snap.size {
            self.resize_to(snap.size)?;
        }
        let state = self.state.write().expect("no poisoning");
        let none = SnapContext::default();
        let id = state.header.id.clone();
        let snap_map = if state.header.has(features::OBJECT_MAP)
            && snap.flags & object_map::FLAG_OBJECT_MAP_INVALID == 0
        {
            self.pool
                .exec(
                    &object_map::object_name(&id, Some(snap.id)),
                    &cls_rbd::object_map_load(),
                )
                .ok()
                .and_then(|bytes| ObjectMap::decode(&bytes).ok())
        } else {
            None
        };
        let head_map = self.map.lock().expect("no poisoning").clone();
        if head_map.is_some() {
            let copied = self
                .pool
                .read_full(&object_map::object_name(&id, Some(snap.id)))
                .and_then(|bytes| {
                    let assert = ExclusiveLock::assert_object_map_locked();
                    let head = object_map::object_name(&id, None);
                    self.pool.operate(
                        &head,
                        &[WriteOp::Exec(&assert), WriteOp::WriteFull(&bytes)],
                        &none,
                    )
                });
            if copied.is_err() {
                drop(state);
                self.invalidate_object_map()?;
                return self.rollback_objects(&snap, None, None);
            }
        }
        drop(state);
        self.rollback_objects(&snap, head_map, snap_map)
    }

    /// Rolls back each object that may exist at the head or in the
    /// snapshot (by both maps, or one listing without them), skipping runs
    /// of objects in neither. With fast-diff, an object the head map says
    /// is unchanged since the newest snapshot (EXISTS_CLEAN) is already as
    /// it was then, when that is the snapshot rolled back to.
    fn rollback_objects(
        &self,
        snap: &Snapshot,
        head: Option<ObjectMap>,
        at_snap: Option<ObjectMap>,
    ) -> Result<()> {
        let mut state = self.state.write().expect("no poisoning");
        let objects = state.header.object_count(state.header.size);
        let unchanged_since_snap = state.header.has(features::FAST_DIFF)
            && state.header.flags & object_map::FLAG_FAST_DIFF_INVALID == 0
            && state
                .header
                .snapshots
                .first()
                .is_some_and(|s| s.id == snap.id);
        // Runs of objects left as they are (still unchanged since the
        // snapshot, so EXISTS_CLEAN where the snapshot's map says EXISTS).
        let mut untouched: Vec<(u64, u64)> = Vec::new();
        let mut object = 0;
        while object < objects {
            let (exists, run_end) = match (&head, &at_snap) {
                (Some(head), Some(at_snap)) => union_run(head, at_snap, object, objects),
                _ => self.listed_run(&state, object, objects)?,
            };
            if exists {
                for object in object..run_end {
                    let clean = head
                        .as_ref()
                        .is_some_and(|m| m.get(object) == OBJECT_EXISTS_CLEAN);
                    if clean && unchanged_since_snap {
                        match untouched.last_mut() {
                            Some(run) if run.1 == object => run.1 += 1,
                            _ => untouched.push((object, object + 1)),
                        }
                        continue;
                    }
                    self.data
                        .rollback(&state.header.data_oid(object), snap.id, &state.snapc)
                        .map_err(|e| e.prepend(format!("rollback stopped at object {object}")))?;
                }
            }
            object = run_end;
        }
        self.forget_listing();
        self.refresh(&mut state)?;
        drop(state);
        self.load_object_map()?;
        let state = self.state.read().expect("no poisoning");
        for (start, end) in untouched {
            self.update_map(&state, start, end, OBJECT_EXISTS_CLEAN, Some(OBJECT_EXISTS))?;
        }
        self.notify_header_update(&state);
        Ok(())
    }
}
