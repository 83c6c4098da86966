//! One object write request, as librbd's `AbstractObjectWriteRequest` runs
//! it for every kind of write (data, zeros, truncation, removal, and the
//! empty write of flatten):
//!
//! ```text
//!  map says absent, op is a no-op there (discards outside a parent) -> done
//!  map says absent, in a clone's overlap -------------------> COPY-UP
//!  map -> EXISTS (PENDING for a removal)
//!  WRITE  the ops; in the overlap guarded by assert_exists
//!         ENOENT (the child has no such object yet) --------> COPY-UP
//!  map PENDING -> NONEXISTENT (a removal)
//!  COPY-UP (copyup.rs): parent data + the ops, the object created once
//! ```
//!
//! Copy-up is skipped where it changes nothing a reader sees: a write that
//! replaces the whole object of an image without snapshots needs none of
//! the parent's bytes.

use crate::ceph::object_map::{OBJECT_EXISTS, OBJECT_NONEXISTENT, OBJECT_PENDING};
use crate::error::{ErrorKind, Result};
use crate::rados::{WriteOp, ignore_missing};
use crate::rbd::image::{RbdImage, State};

/// What one object request does (librbd's object write requests and
/// discard actions).
#[derive(Debug, Clone, Copy)]
pub(super) enum ObjectOp<'a> {
    /// Data at an offset in the object (the whole object: `write_full`).
    Write { offset: u64, data: &'a [u8] },
    /// Zeros inside the object.
    Zero { offset: u64, len: u64 },
    /// Drops the object's bytes from an offset on.
    Truncate(u64),
    /// Removes the object.
    Remove,
    /// An empty object where there was none: reads see zeros, not the
    /// parent (librbd's "remove (create+truncate)").
    Empty,
    /// Nothing of its own: only the copy-up (flatten's empty write).
    CopyUp,
}

impl ObjectOp<'_> {
    /// The RADOS steps of the request itself (none for `CopyUp`).
    pub(super) fn rados_ops(&self, object_size: u64) -> Vec<WriteOp<'_>> {
        match *self {
            ObjectOp::Write { offset, data } if offset == 0 && data.len() as u64 == object_size => {
                vec![WriteOp::WriteFull(data)]
            }
            ObjectOp::Write { offset, data } => vec![WriteOp::Write { offset, data }],
            ObjectOp::Zero { offset, len } => vec![WriteOp::Zero { offset, len }],
            ObjectOp::Truncate(at) => vec![WriteOp::Truncate(at)],
            ObjectOp::Remove => vec![WriteOp::Remove],
            ObjectOp::Empty => vec![WriteOp::Create, WriteOp::Truncate(0)],
            ObjectOp::CopyUp => Vec::new(),
        }
    }

    /// The object map state set before the request is sent.
    pub(super) fn pre_state(&self) -> u8 {
        match self {
            ObjectOp::Remove => OBJECT_PENDING,
            _ => OBJECT_EXISTS,
        }
    }

    /// Discards of an object that does not exist change nothing, unless
    /// a parent shows through it.
    fn no_op_when_absent(&self, has_parent: bool) -> bool {
        match self {
            ObjectOp::Write { .. } | ObjectOp::CopyUp => false,
            _ => !has_parent,
        }
    }

    /// Whether the request replaces everything the object holds.
    fn whole_object(&self, object_size: u64) -> bool {
        match *self {
            ObjectOp::Write { offset, data } => offset == 0 && data.len() as u64 == object_size,
            ObjectOp::Empty => true,
            _ => false,
        }
    }

    /// An empty write: with nothing to copy up, there is nothing to do.
    pub(super) fn is_empty_write(&self) -> bool {
        matches!(self, ObjectOp::CopyUp)
    }
}

impl RbdImage {
    /// Runs one object request (steps in the diagram above), keeping the
    /// listing of objects that may exist (images without a map) current.
    pub(super) fn object_write(&self, state: &State, object: u64, op: ObjectOp) -> Result<()> {
        let result = self.object_request(state, object, op);
        match op {
            ObjectOp::Remove if result.is_ok() => self.note_removed(object),
            ObjectOp::Remove => {}
            // Whatever happened, the object may exist now.
            _ => self.note_written(object),
        }
        result
    }

    fn object_request(&self, state: &State, object: u64, op: ObjectOp) -> Result<()> {
        let object_size = state.header.object_size();
        let has_parent = state
            .parent
            .as_ref()
            .is_some_and(|p| object * object_size < p.overlap);
        let copyup = has_parent && !(op.whole_object(object_size) && state.snapc.snaps.is_empty());
        let map = self.map_state(object);
        let may_exist = map != Some(OBJECT_NONEXISTENT);
        if !may_exist && op.no_op_when_absent(has_parent) {
            return Ok(());
        }
        if !may_exist && copyup {
            return self.copy_up(state, object, op);
        }
        // An object flatten finds there already is left as it is, its
        // state too (EXISTS_CLEAN stays: nothing changed since a snapshot).
        if !op.is_empty_write() {
            self.update_map(state, object, object + 1, op.pre_state(), None)?;
        }
        let mut ops = op.rados_ops(object_size);
        if copyup {
            ops.insert(0, WriteOp::AssertExists);
        }
        if ops.is_empty() {
            return Ok(());
        }
        let oid = state.header.data_oid(object);
        match self.data.operate(&oid, &ops, &state.snapc) {
            Err(e) if copyup && e.kind() == ErrorKind::NotFound => {
                return self.copy_up(state, object, op);
            }
            // Removing, zeroing or truncating what is gone is done.
            result if !matches!(op, ObjectOp::Write { .. }) => ignore_missing(result)?,
            result => result?,
        }
        if matches!(op, ObjectOp::Remove) {
            self.update_map(
                state,
                object,
                object + 1,
                OBJECT_NONEXISTENT,
                Some(OBJECT_PENDING),
            )?;
        }
        Ok(())
    }
}
