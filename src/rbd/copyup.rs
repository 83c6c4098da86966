//! Copy-up, as librbd's `CopyupRequest` does it: the first write to an
//! object of a clone that the child does not have yet copies the parent's
//! bytes for that object (within the overlap, read through the parent's
//! own chain) into the child, then applies the write.
//!
//! ```text
//!  read the parent's share of the object
//!  all zeros and nothing to write (flatten) -----------------> done
//!  object maps: each snapshot's EXISTS (oldest first; later ones
//!               EXISTS_CLEAN with fast-diff), the head's EXISTS
//!  no snapshots:  [create exclusive, parent data..., the write] atomic
//!                 EEXIST (someone made it meanwhile) -> the write alone
//!  snapshots:     [create exclusive, parent data] with an empty snapshot
//!                 context, so every snapshot sees the parent's data too
//!                 (deep flatten needs them to); then the write with the
//!                 image's context, which preserves that data for them
//! ```
//!
//! librbd sends the parent data through cls `rbd.sparse_copyup`, which
//! writes only if the object does not exist; an exclusive create in the
//! same compound op does exactly that on every RADOS, including the
//! embedded store (which runs no class methods on data objects). A killed
//! copy-up leaves the object as it was or with the parent's bytes, which
//! read the same. Zero runs of the parent's data are not written.

use crate::ceph::cls_rbd;
use crate::ceph::features;
use crate::ceph::object_map::{self, OBJECT_EXISTS, OBJECT_EXISTS_CLEAN};
use crate::error::{Error, ErrorKind, Result};
use crate::rados::{SnapContext, WriteOp, ignore_missing};
use crate::rbd::image::{RbdImage, State};
use crate::rbd::object_write::ObjectOp;

/// Zero detection granularity of the parent's data.
const BLOCK: usize = 4096;

/// The non-zero runs of `data`, in `BLOCK`s, as (offset, len).
fn data_runs(data: &[u8]) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, block) in data.chunks(BLOCK).enumerate() {
        if block.iter().all(|&b| b == 0) {
            continue;
        }
        let at = i * BLOCK;
        match runs.last_mut() {
            Some((start, len)) if *start + *len == at => *len += block.len(),
            _ => runs.push((at, block.len())),
        }
    }
    runs
}

/// Ends an object's copy-up, even if it unwinds: writers of the object
/// that wait for it go on.
struct CopyupDone<'a> {
    image: &'a RbdImage,
    object: u64,
}

impl Drop for CopyupDone<'_> {
    fn drop(&mut self) {
        self.image
            .copyups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.object);
        self.image.copied_up.notify_all();
    }
}

impl RbdImage {
    /// Copies the parent's share of `object` up, applying `op` with it
    /// (steps in the diagram above). One copy-up per object runs at a time;
    /// a writer that waited for another one finds the object there.
    pub(super) fn copy_up(&self, state: &State, object: u64, op: ObjectOp) -> Result<()> {
        let waited = {
            let mut running = self.copyups.lock().expect("no poisoning");
            let mut waited = false;
            while running.contains(&object) {
                waited = true;
                running = self.copied_up.wait(running).expect("no poisoning");
            }
            running.insert(object);
            waited
        };
        let _done = CopyupDone {
            image: self,
            object,
        };
        let object_size = state.header.object_size();
        let oid = state.header.data_oid(object);
        let own = op.rados_ops(object_size);
        if waited {
            let mut guarded = vec![WriteOp::AssertExists];
            guarded.extend(own.iter().copied());
            match self.data.operate(&oid, &guarded, &state.snapc) {
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                other => return other,
            }
        }
        let Some(parent) = &state.parent else {
            // Flattened meanwhile: nothing reads through any more.
            return if own.is_empty() {
                Ok(())
            } else {
                ignore_missing(self.data.operate(&oid, &own, &state.snapc))
            };
        };
        let start = object * object_size;
        let end = (start + object_size).min(parent.overlap);
        let mut data = vec![0u8; end.saturating_sub(start) as usize];
        if !data.is_empty() {
            parent
                .image
                .read_range(&mut data, start)
                .map_err(|e| e.prepend(format!("error reading the parent for copy-up of {oid}")))?;
        }
        let runs = data_runs(&data);
        if runs.is_empty() && op.is_empty_write() {
            return Ok(());
        }
        let snaps = &state.snapc.snaps;
        let deep = !snaps.is_empty() && !runs.is_empty();
        if self.map.lock().expect("no poisoning").is_some() {
            if !runs.is_empty() {
                let fast_diff = state.header.has(features::FAST_DIFF);
                // Oldest first: the first holds the data, later ones inherit it.
                for (i, &snap) in snaps.iter().rev().enumerate() {
                    let clean = fast_diff && i > 0;
                    let new = if clean {
                        OBJECT_EXISTS_CLEAN
                    } else {
                        OBJECT_EXISTS
                    };
                    self.update_snapshot_map(state, snap, object, new)?;
                }
            }
            self.update_map(state, object, object + 1, op.pre_state(), None)?;
        }
        let mut copy: Vec<WriteOp> = Vec::new();
        if !runs.is_empty() {
            copy.push(WriteOp::CreateExclusive);
            copy.extend(runs.iter().map(|&(at, len)| WriteOp::Write {
                offset: at as u64,
                data: &data[at..at + len],
            }));
        }
        let exists = |e: &Error| e.errno_value() == libc::EEXIST;
        if deep {
            match self.data.operate(&oid, &copy, &SnapContext::default()) {
                Err(e) if exists(&e) => {}
                other => other?,
            }
            copy.clear();
        }
        // The request alone; removing, zeroing or truncating nothing is done.
        let apply_own = || match own.is_empty() {
            true => Ok(()),
            false if matches!(op, ObjectOp::Write { .. }) => {
                self.data.operate(&oid, &own, &state.snapc)
            }
            false => ignore_missing(self.data.operate(&oid, &own, &state.snapc)),
        };
        if copy.is_empty() {
            return apply_own();
        }
        copy.extend(own.iter().copied());
        match self.data.operate(&oid, &copy, &state.snapc) {
            Err(e) if exists(&e) => apply_own(),
            other => other,
        }
    }

    /// Sets `object`'s state in a snapshot's object map (a map that is
    /// not there is not kept, as librbd ignores it).
    fn update_snapshot_map(&self, state: &State, snap: u64, object: u64, new: u8) -> Result<()> {
        let oid = object_map::object_name(&state.header.id, Some(snap));
        let call = cls_rbd::object_map_update(object, object + 1, new, None);
        ignore_missing(
            self.pool
                .operate(&oid, &[WriteOp::Exec(&call)], &SnapContext::default()),
        )
        .map_err(|e| e.prepend("object map update of a snapshot failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_skip_zero_blocks_and_merge_neighbours() {
        let mut data = vec![0u8; 5 * BLOCK + 100];
        data[BLOCK + 7] = 1;
        data[2 * BLOCK] = 2;
        data[5 * BLOCK + 99] = 3;
        assert_eq!(data_runs(&data), vec![(BLOCK, 2 * BLOCK), (5 * BLOCK, 100)]);
        assert!(data_runs(&[0; 10]).is_empty());
    }
}
