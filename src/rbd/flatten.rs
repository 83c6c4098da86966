//! Flattening a clone, as librbd's FlattenRequest does it:
//!
//! ```text
//!  objects of the overlap the parent chain may hold data in (runs of each
//!  parent's object map, or one listing of its objects without a map,
//!  down the chain):
//!      copy-up each (an empty write), a window of them in flight
//!  detach from the parent's children (v1 rbd_children, v2 child_detach),
//!      unless snapshots of an image without deep-flatten still read
//!      through the parent
//!  parent_detach: the head no longer reads through -> refresh -> notify
//! ```
//!
//! Each copy-up is complete or not there (copyup.rs), so an interrupted
//! flatten leaves the clone as it read, and a second run finishes. An
//! object the child's map says exists is checked (a guarded empty write),
//! not skipped as librbd skips it: a writer killed between its map update
//! and its copy-up leaves the map saying so of an object that is not
//! there, and skipping it would lose the parent's data.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::ceph::cls_rbd_layering;
use crate::ceph::features;
use crate::error::Result;
use crate::rados::{SnapContext, WriteOp, ignore_missing};
use crate::rbd::image::RbdImage;
use crate::rbd::object_write::ObjectOp;

/// Copy-ups in flight: librbd's `rbd_concurrent_management_ops` default.
const DEFAULT_WINDOW: usize = 10;

impl RbdImage {
    /// Byte ranges below `limit` that may hold data, this image's own (by
    /// its object map's runs; without one, by one listing of its objects)
    /// and its parents' that it reads through, sorted and merged.
    pub(super) fn data_extents(&self, limit: u64) -> Result<Vec<(u64, u64)>> {
        let state = self.state.read().expect("no poisoning");
        let object_size = state.header.object_size();
        let limit = limit.min(self.current_size(&state));
        let objects = state.header.object_count(limit);
        let mut extents = Vec::new();
        let mut object = 0;
        while object < objects {
            let (exists, run_end) = self.object_run(&state, object, objects)?;
            if exists {
                extents.push((object * object_size, (run_end * object_size).min(limit)));
            }
            object = run_end;
        }
        if let Some(parent) = &state.parent {
            extents.extend(parent.image.data_extents(parent.overlap.min(limit))?);
        }
        extents.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(extents.len());
        for (start, end) in extents {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        Ok(merged)
    }

    /// Copies up every object of the overlap that the parent chain holds
    /// data in and detaches the parent; `progress` hears (objects done,
    /// objects to do) as it goes. An image that is no clone is left as it
    /// is (already standalone).
    pub fn flatten(&self, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<()> {
        self.check_writable()?;
        let window = self
            .cluster
            .config("rbd_concurrent_management_ops")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_WINDOW);
        let todo: Vec<u64> = {
            let state = self.state.read().expect("no poisoning");
            let Some(parent) = &state.parent else {
                drop(state);
                return self.detach_parent();
            };
            let object_size = state.header.object_size();
            let mut objects: Vec<u64> = parent
                .image
                .data_extents(parent.overlap)?
                .iter()
                .flat_map(|&(start, end)| start / object_size..end.div_ceil(object_size))
                .collect();
            objects.dedup();
            objects
        };
        let total = todo.len() as u64;
        progress(0, total);
        let next = AtomicUsize::new(0);
        let done = AtomicU64::new(0);
        let failed = AtomicBool::new(false);
        let first_error = Mutex::new(None);
        let state = self.state.read().expect("no poisoning");
        std::thread::scope(|scope| {
            for _ in 0..window.min(todo.len()) {
                scope.spawn(|| {
                    while !failed.load(Ordering::Relaxed) {
                        let Some(&object) = todo.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            break;
                        };
                        if let Err(e) = self.object_write(&state, object, ObjectOp::CopyUp) {
                            failed.store(true, Ordering::Relaxed);
                            first_error.lock().expect("no poisoning").get_or_insert(
                                e.prepend(format!("flatten stopped at object {object}")),
                            );
                            break;
                        }
                        progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                    }
                });
            }
        });
        drop(state);
        if let Some(e) = first_error.into_inner().expect("no poisoning") {
            return Err(e);
        }
        self.detach_parent()
    }

    /// The head stops reading through its parent; the parent loses this
    /// child unless snapshots (without deep-flatten) still read through it.
    fn detach_parent(&self) -> Result<()> {
        let mut state = self.state.write().expect("no poisoning");
        let header = state.header.clone();
        let Some(parent) = header.parent.as_ref().filter(|p| p.overlap.is_some()) else {
            return Ok(());
        };
        let snapshots_keep_it = !header.has(features::DEEP_FLATTEN) && !header.snapshots.is_empty();
        if !snapshots_keep_it {
            self.detach_child(&header, &parent.spec)?;
        }
        let call = cls_rbd_layering::parent_detach();
        ignore_missing(self.pool.operate(
            &header.header_oid(),
            &[WriteOp::Exec(&call)],
            &SnapContext::default(),
        ))?;
        self.refresh(&mut state)?;
        self.notify_header_update(&state);
        Ok(())
    }
}
