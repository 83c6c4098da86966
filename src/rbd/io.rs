//! The data path: image byte ranges become per-object requests
//! (`object_write.rs` runs each write, `copyup.rs` a clone's copy-up), sent
//! with the image's snapshot context, with librbd's object-map protocol
//! around them (a wrong map silently hides data from librbd readers):
//!
//! ```text
//!  write:         map -> EXISTS (if not already), then write / write_full
//!  remove object: map -> PENDING, remove, map -> NONEXISTENT if PENDING
//!  zero / trunc:  skipped for nonexistent objects; map -> EXISTS first
//!  in a clone's overlap: zeros hide the parent (an empty object, a
//!                 truncate or zeros after a copy-up), never a removal
//!  read:          object read at the head or snapshot; absent objects read
//!                 from the parent within the overlap, else as zeros; what
//!                 the objects store is reported (encryption decrypts it)
//! ```

use crate::ceph::cls_rbd;
use crate::ceph::object_map::{self, OBJECT_NONEXISTENT, OBJECT_PENDING};
use crate::error::{Error, ErrorKind, Result};
use crate::rados::{SnapContext, WriteOp, ignore_missing};
use crate::rbd::image::{RbdImage, State};
use crate::rbd::lock::ExclusiveLock;
use crate::rbd::object_write::ObjectOp;

/// One object's share of an image range.
pub(super) struct Piece {
    object: u64,
    /// Offset inside the object.
    offset: u64,
    len: u64,
    /// Offset inside the caller's buffer.
    buf_offset: usize,
}

pub(super) fn pieces(object_size: u64, offset: u64, len: u64) -> impl Iterator<Item = Piece> {
    let mut pos = offset;
    let end = offset + len;
    std::iter::from_fn(move || {
        if pos >= end {
            return None;
        }
        let object = pos / object_size;
        let in_object = pos % object_size;
        let n = (object_size - in_object).min(end - pos);
        let piece = Piece {
            object,
            offset: in_object,
            len: n,
            buf_offset: (pos - offset) as usize,
        };
        pos += n;
        Some(piece)
    })
}

/// Where a read found bytes that objects store, as ranges of the
/// caller's buffer: librbd's sparse-read extents, which its encryption
/// decrypts (everything else reads as zeros).
pub type Stored<'a> = &'a mut dyn FnMut(std::ops::Range<usize>);

/// Fills `out` (image offset `offset`) from the parent within the
/// overlap, zeros elsewhere.
pub(super) fn read_parent(
    state: &State,
    out: &mut [u8],
    offset: u64,
    stored: Stored,
) -> Result<()> {
    out.fill(0);
    if let Some(parent) = &state.parent
        && offset < parent.overlap
    {
        let n = (out.len() as u64).min(parent.overlap - offset) as usize;
        parent.image.read_stored(&mut out[..n], offset, stored)?;
    }
    Ok(())
}

/// librbd's `update_required`: whether a map transition needs a write.
fn update_required(current: u8, new: u8) -> bool {
    !(current == new
        || (new == OBJECT_PENDING && current == OBJECT_NONEXISTENT)
        || (new == OBJECT_NONEXISTENT && current != OBJECT_PENDING))
}

/// Whether an object in `state` needs a write to move to `new` under the
/// `current` condition.
fn needs_update(state: u8, new: u8, current: Option<u8>) -> bool {
    object_map::update_applies(state, current) && update_required(state, new)
}

/// librbd batches map updates at this many objects.
const MAP_BATCH: u64 = 262_144;

/// Ends an object's busy state, even if its update unwinds: other writers
/// of the object wait for it.
struct Settle<'a> {
    image: &'a RbdImage,
    object: u64,
}

impl Drop for Settle<'_> {
    fn drop(&mut self) {
        self.image
            .map_busy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.object);
        self.image.map_settled.notify_all();
    }
}

impl RbdImage {
    pub(super) fn check_range(&self, state: &State, offset: u64, len: u64) -> Result<()> {
        let size = self.current_size(state);
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::new(
                ErrorKind::OutOfBounds,
                format!("Access beyond end of image '{}'", self.spec.image),
            )
            .with_offset(offset));
        }
        Ok(())
    }

    /// Sets objects `[start, end)` to `new` where their state is `current`
    /// (any when `None`), durably on the head map, then in memory. A single
    /// object's update runs concurrently with other objects' updates;
    /// ranges (resize, with I/O blocked) run under the map lock.
    pub(super) fn update_map(
        &self,
        state: &State,
        start: u64,
        end: u64,
        new: u8,
        current: Option<u8>,
    ) -> Result<()> {
        if end == start + 1 {
            return self.update_one(state, start, new, current);
        }
        let mut guard = self.map.lock().expect("no poisoning");
        let Some(map) = guard.as_mut() else {
            return Ok(());
        };
        let end = end.min(map.len());
        if !(start..end).any(|o| needs_update(map.get(o), new, current)) {
            return Ok(());
        }
        let mut batch = start;
        while batch < end {
            let batch_end = (batch + MAP_BATCH).min(end);
            if let Err(e) = self.send_map_update(state, batch, batch_end, new, current) {
                drop(guard);
                return Err(self.map_update_failed(e));
            }
            batch = batch_end;
        }
        map.update(start, end, new, current);
        Ok(())
    }

    fn update_one(&self, state: &State, object: u64, new: u8, current: Option<u8>) -> Result<()> {
        {
            let mut busy = self.map_busy.lock().expect("no poisoning");
            while busy.contains(&object) {
                busy = self.map_settled.wait(busy).expect("no poisoning");
            }
            let map = self.map.lock().expect("no poisoning");
            let Some(map) = map.as_ref() else {
                return Ok(());
            };
            if object >= map.len() || !needs_update(map.get(object), new, current) {
                return Ok(());
            }
            busy.insert(object);
        }
        let settled = Settle {
            image: self,
            object,
        };
        let sent = self.send_map_update(state, object, object + 1, new, current);
        if sent.is_ok()
            && let Some(map) = self.map.lock().expect("no poisoning").as_mut()
        {
            map.update(object, object + 1, new, current);
        }
        drop(settled);
        sent.map_err(|e| self.map_update_failed(e))
    }

    fn send_map_update(
        &self,
        state: &State,
        start: u64,
        end: u64,
        new: u8,
        current: Option<u8>,
    ) -> Result<()> {
        let oid = object_map::object_name(&state.header.id, None);
        let assert = ExclusiveLock::assert_object_map_locked();
        let update = cls_rbd::object_map_update(start, end, new, current);
        self.pool.operate(
            &oid,
            &[WriteOp::Exec(&assert), WriteOp::Exec(&update)],
            &SnapContext::default(),
        )
    }

    /// librbd invalidates the map when an update fails.
    fn map_update_failed(&self, e: Error) -> Error {
        let _ = self.invalidate_object_map();
        e.prepend("object map update failed")
    }

    pub(super) fn map_state(&self, object: u64) -> Option<u8> {
        self.map
            .lock()
            .expect("no poisoning")
            .as_ref()
            .map(|m| m.get(object))
    }

    /// Reads image bytes (head or the opened snapshot); absent objects
    /// read from the parent within the overlap, else as zeros.
    pub fn read_range(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.read_stored(buf, offset, &mut |_| {})
    }

    /// `read_range`, telling `stored` which parts of `buf` objects (this
    /// image's or, where it has none, its parents') store. An object's
    /// read ends where its bytes do, so this costs no more than a read.
    pub fn read_stored(&self, buf: &mut [u8], offset: u64, stored: Stored) -> Result<()> {
        let state = self.state.read().expect("no poisoning");
        self.check_range(&state, offset, buf.len() as u64)?;
        let object_size = state.header.object_size();
        let snap = self.read_snap();
        for p in pieces(object_size, offset, buf.len() as u64) {
            let out = &mut buf[p.buf_offset..p.buf_offset + p.len as usize];
            let oid = state.header.data_oid(p.object);
            match self.data.read_into(&oid, p.offset, out, snap) {
                Ok(n) => {
                    out[n..].fill(0);
                    if n > 0 {
                        stored(p.buf_offset..p.buf_offset + n);
                    }
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    let base = p.buf_offset;
                    let image_offset = p.object * object_size + p.offset;
                    read_parent(&state, out, image_offset, &mut |r| {
                        stored(base + r.start..base + r.end)
                    })?;
                }
                Err(e) => return Err(e.with_offset(offset)),
            }
        }
        Ok(())
    }

    /// Writes image bytes, object by object, keeping the object map exact
    /// (and copying a clone's parent data up first where needed).
    pub fn write_range(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.check_writable()?;
        let state = self.state.read().expect("no poisoning");
        self.check_range(&state, offset, buf.len() as u64)?;
        let object_size = state.header.object_size();
        for p in pieces(object_size, offset, buf.len() as u64) {
            let data = &buf[p.buf_offset..p.buf_offset + p.len as usize];
            let op = ObjectOp::Write {
                offset: p.offset,
                data,
            };
            self.object_write(&state, p.object, op)
                .map_err(|e| e.with_offset(offset))?;
        }
        Ok(())
    }

    /// Makes a range read as zeros: whole objects are removed, partial ones
    /// truncated or zeroed (kept allocated when `!may_unmap`). Inside a
    /// clone's overlap a whole object becomes an empty one instead, which
    /// hides the parent's data (after a copy-up into the snapshots, when
    /// the image has some), as librbd discards there.
    pub fn zero_range(&self, offset: u64, len: u64, may_unmap: bool) -> Result<()> {
        self.check_writable()?;
        let state = self.state.read().expect("no poisoning");
        self.check_range(&state, offset, len)?;
        let object_size = state.header.object_size();
        let end = offset + len;
        // Objects in a clone's overlap read the parent where they do not
        // exist: every one of them is zeroed.
        let overlap = state.parent.as_ref().map_or(0, |p| p.overlap);
        let overlap_end = overlap.div_ceil(object_size) * object_size;
        let mut pos = offset;
        while pos < end {
            // Outside it, objects that do not exist read as zeros already:
            // their run is skipped whole.
            let (exists, run_end) = match pos < overlap_end {
                true => (true, overlap_end / object_size),
                false => self.object_run(&state, pos / object_size, end.div_ceil(object_size))?,
            };
            let stop = run_end.saturating_mul(object_size).min(end);
            if exists {
                self.zero_objects(&state, pos, stop - pos, may_unmap)?;
            }
            pos = stop;
        }
        Ok(())
    }

    /// `zero_range` over objects that may exist.
    fn zero_objects(&self, state: &State, offset: u64, len: u64, may_unmap: bool) -> Result<()> {
        let object_size = state.header.object_size();
        let size = state.header.size;
        let overlap = state.parent.as_ref().map_or(0, |p| p.overlap);
        for p in pieces(object_size, offset, len) {
            let object_end = ((p.object + 1) * object_size).min(size) - p.object * object_size;
            let whole = p.offset == 0 && p.len >= object_end;
            let in_overlap = p.object * object_size < overlap;
            let op = if whole && in_overlap {
                if state.snapc.snaps.is_empty() {
                    ObjectOp::Empty
                } else {
                    ObjectOp::Truncate(0)
                }
            } else if whole && may_unmap {
                ObjectOp::Remove
            } else if p.offset + p.len >= object_end && may_unmap {
                ObjectOp::Truncate(p.offset)
            } else {
                ObjectOp::Zero {
                    offset: p.offset,
                    len: p.len,
                }
            };
            self.object_write(state, p.object, op)
                .map_err(|e| e.with_offset(offset))?;
        }
        Ok(())
    }

    /// Deletes a data object under the snapshot context (a clone stays
    /// for snapshots); one already gone is fine. No object-map update.
    pub(super) fn delete_data_object(&self, state: &State, object: u64) -> Result<()> {
        ignore_missing(self.data.operate(
            &state.header.data_oid(object),
            &[WriteOp::Remove],
            &state.snapc,
        ))?;
        self.note_removed(object);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ceph::object_map::OBJECT_EXISTS;

    #[test]
    fn splits_ranges_at_object_boundaries() {
        let p: Vec<_> = pieces(4096, 4000, 5000)
            .map(|p| (p.object, p.offset, p.len, p.buf_offset))
            .collect();
        assert_eq!(
            p,
            vec![(0, 4000, 96, 0), (1, 0, 4096, 96), (2, 0, 808, 4192)]
        );
    }

    #[test]
    fn update_rules_match_librbd() {
        assert!(!update_required(OBJECT_EXISTS, OBJECT_EXISTS));
        assert!(update_required(
            object_map::OBJECT_EXISTS_CLEAN,
            OBJECT_EXISTS
        ));
        assert!(!update_required(OBJECT_NONEXISTENT, OBJECT_PENDING));
        assert!(!update_required(OBJECT_EXISTS, OBJECT_NONEXISTENT));
        assert!(update_required(OBJECT_PENDING, OBJECT_NONEXISTENT));
        assert!(object_map::update_applies(
            object_map::OBJECT_EXISTS_CLEAN,
            Some(OBJECT_EXISTS)
        ));
        assert!(!object_map::update_applies(
            OBJECT_NONEXISTENT,
            Some(OBJECT_PENDING)
        ));
    }
}
