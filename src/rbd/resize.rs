//! Resizing an image, as librbd's ResizeRequest and TrimRequest do it:
//!
//! ```text
//!  grow:   object map resize (new objects NONEXISTENT) -> set_size -> notify
//!  shrink: a clone with snapshots: copy the parent's data of the objects
//!          going away up into the snapshots first (deep flatten needs it;
//!          only objects the parent chain's extents hold data in)
//!          map [first gone, last] EXISTS -> PENDING
//!          remove those objects (skipping runs the map, or a listing
//!          without one, says do not exist)
//!          map PENDING -> NONEXISTENT
//!          truncate the object that now holds the end (partial tail; in a
//!          clone's overlap after a copy-up)
//!          set_size (which also shrinks a clone's overlap)
//!          -> object map resize down -> notify
//! ```
//! Every step runs with I/O blocked (the state write lock). A shrink
//! interrupted halfway leaves a map larger than the image, which librbd
//! and rbdimg accept on the next open.

use crate::ceph::cls_rbd;
use crate::ceph::object_map::{self, OBJECT_EXISTS, OBJECT_NONEXISTENT, OBJECT_PENDING};
use crate::error::{Error, ErrorKind, Result};
use crate::rados::{SnapContext, WriteOp};
use crate::rbd::image::RbdImage;
use crate::rbd::lock::ExclusiveLock;
use crate::rbd::object_write::ObjectOp;

impl RbdImage {
    /// Grows or shrinks the image (steps in the diagram above).
    pub fn resize_to(&self, new_size: u64) -> Result<()> {
        self.check_writable()?;
        let mut state = self.state.write().expect("no poisoning");
        let old_size = state.header.size;
        let header_oid = state.header.header_oid();
        let map_oid = object_map::object_name(&state.header.id, None);
        let new_objects = state.header.object_count(new_size);
        let old_objects = state.header.object_count(old_size);
        let none = SnapContext::default();
        let resize_map = |objects: u64| -> Result<()> {
            let mut guard = self.map.lock().expect("no poisoning");
            if let Some(map) = guard.as_mut() {
                let call = cls_rbd::object_map_resize(objects, OBJECT_NONEXISTENT);
                let assert = ExclusiveLock::assert_object_map_locked();
                self.pool.operate(
                    &map_oid,
                    &[WriteOp::Exec(&assert), WriteOp::Exec(&call)],
                    &none,
                )?;
                map.resize(objects);
            }
            Ok(())
        };
        if new_size > old_size {
            if new_objects > object_map::MAX_OBJECTS
                && self.map.lock().expect("no poisoning").is_some()
            {
                return Err(Error::errno(
                    ErrorKind::InvalidArgument,
                    "image too large for its object map",
                    libc::EINVAL,
                ));
            }
            resize_map(new_objects)?;
            self.pool.operate(
                &header_oid,
                &[WriteOp::Exec(&cls_rbd::set_size(new_size))],
                &none,
            )?;
        } else if new_size < old_size {
            if new_objects < old_objects {
                let overlap = state.parent.as_ref().map_or(0, |p| p.overlap);
                if !state.snapc.snaps.is_empty()
                    && let Some(parent) = &state.parent
                {
                    // Only objects the parent chain holds data in have
                    // anything to copy up.
                    let object_size = state.header.object_size();
                    let from = new_objects * object_size;
                    let mut objects: Vec<u64> = parent
                        .image
                        .data_extents(overlap)?
                        .into_iter()
                        .filter(|&(_, end)| end > from)
                        .flat_map(|(start, end)| {
                            start.max(from) / object_size..end.div_ceil(object_size)
                        })
                        .filter(|&object| object < old_objects)
                        .collect();
                    objects.dedup();
                    for object in objects {
                        self.object_write(&state, object, ObjectOp::Remove)?;
                    }
                }
                self.update_map(
                    &state,
                    new_objects,
                    old_objects,
                    OBJECT_PENDING,
                    Some(OBJECT_EXISTS),
                )?;
                let mut object = new_objects;
                while object < old_objects {
                    let (exists, run_end) = self.object_run(&state, object, old_objects)?;
                    if exists {
                        for object in object..run_end {
                            self.delete_data_object(&state, object)?;
                        }
                    }
                    object = run_end;
                }
                self.update_map(
                    &state,
                    new_objects,
                    old_objects,
                    OBJECT_NONEXISTENT,
                    Some(OBJECT_PENDING),
                )?;
            }
            let object_size = state.header.object_size();
            let tail = new_size % object_size;
            let tail_object = new_size / object_size;
            if tail != 0 && tail_object < old_objects {
                self.object_write(&state, tail_object, ObjectOp::Truncate(tail))?;
            }
            self.pool.operate(
                &header_oid,
                &[WriteOp::Exec(&cls_rbd::set_size(new_size))],
                &none,
            )?;
            resize_map(new_objects)?;
        }
        self.refresh(&mut state)?;
        self.notify_header_update(&state);
        Ok(())
    }
}
