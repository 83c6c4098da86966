//! Where an image's data is, found without asking object by object:
//!
//! ```text
//!  object map valid  -> runs of objects that may exist / do not, scanned
//!                       a word of 32 objects at a time in the map read
//!                       once at open (and kept current by our writes)
//!  no usable map     -> ONE listing of the pool's objects, filtered by the
//!                       image's data prefix (one warning: it is slower);
//!                       our own writes and removals keep it current
//! ```
//!
//! Every walk of an image goes through `object_run`: block status (which
//! convert, compare and the other commands plan from), `info`'s disk size,
//! zeroing and discarding, shrinking and rollback, so their cost follows
//! the objects that exist, not the virtual size. A listing names every
//! object that has a head or a snapshot clone, so it never misses data of
//! the head or of a snapshot; an object it names that is not there at the
//! snapshot read reads as zeros.

use std::collections::BTreeSet;

use crate::block::extent::{Allocation, Extent};
use crate::ceph::object_map::{OBJECT_NONEXISTENT, ObjectMap};
use crate::error::Result;
use crate::rbd::image::{RbdImage, State};

impl RbdImage {
    /// The run of objects from `first` (below `end`, `first < end`) that all
    /// may exist or all do not: whether they may, and where the run ends.
    pub(super) fn object_run(&self, state: &State, first: u64, end: u64) -> Result<(bool, u64)> {
        if let Some(map) = self.map.lock().expect("no poisoning").as_ref() {
            return Ok(map.run(first, end));
        }
        self.listed_run(state, first, end)
    }

    /// `object_run` from the listing, whatever the map says.
    pub(super) fn listed_run(&self, state: &State, first: u64, end: u64) -> Result<(bool, u64)> {
        let mut listed = self.listed.lock().expect("no poisoning");
        let objects = match &mut *listed {
            Some(objects) => objects,
            none => none.insert(self.list_objects(state)?),
        };
        let mut after = objects.range(first..end);
        Ok(match after.next() {
            Some(&o) if o == first => {
                let mut run_end = first + 1;
                for &o in after {
                    if o != run_end {
                        break;
                    }
                    run_end += 1;
                }
                (true, run_end)
            }
            Some(&o) => (false, o),
            None => (false, end),
        })
    }

    /// The image's data objects that exist at the head or in a snapshot,
    /// by one listing of the pool (namespace).
    fn list_objects(&self, state: &State) -> Result<BTreeSet<u64>> {
        self.diagnostics.warning(format!(
            "image {} has no usable object map: listing the pool's objects to find its data, which is slower",
            state.header.name
        ));
        self.listing(state)
    }

    /// Every data object of the image the pool lists (heads and clones).
    pub(super) fn listing(&self, state: &State) -> Result<BTreeSet<u64>> {
        Ok(self
            .data
            .list()?
            .iter()
            .filter_map(|oid| state.header.object_number(oid))
            .collect())
    }

    /// Keeps the listing current after we wrote `object`.
    pub(super) fn note_written(&self, object: u64) {
        if let Some(objects) = self.listed.lock().expect("no poisoning").as_mut() {
            objects.insert(object);
        }
    }

    /// Keeps the listing current after we removed `object`.
    pub(super) fn note_removed(&self, object: u64) {
        if let Some(objects) = self.listed.lock().expect("no poisoning").as_mut() {
            objects.remove(&object);
        }
    }

    /// Drops the listing after objects changed wholesale (rollback): the
    /// next need lists again.
    pub(super) fn forget_listing(&self) {
        *self.listed.lock().expect("no poisoning") = None;
    }

    /// Allocation of the run at `offset`: whole objects that may exist are
    /// data; absent ones are the parent's within the overlap, else
    /// unallocated. One step per run, however many objects it spans.
    pub fn allocation(&self, offset: u64, len: u64) -> Result<Extent> {
        let state = self.state.read().expect("no poisoning");
        self.check_range(&state, offset, len)?;
        let object_size = state.header.object_size();
        let overlap = state.parent.as_ref().map_or(0, |p| p.overlap);
        let first = offset / object_size;
        let end = offset + len;
        let (exists, mut run_end) = self.object_run(&state, first, end.div_ceil(object_size))?;
        let allocation = if exists {
            Allocation::Data
        } else if first * object_size < overlap {
            // Objects starting below the overlap read from the parent.
            run_end = run_end.min(overlap.div_ceil(object_size));
            Allocation::Backing
        } else {
            Allocation::Unallocated
        };
        Ok(Extent {
            offset,
            len: run_end.saturating_mul(object_size).min(end) - offset,
            allocation,
        })
    }

    /// Bytes the object map says are allocated (whole objects, the last one
    /// clipped to the image), when the map is valid.
    pub fn allocated_bytes(&self) -> Option<u64> {
        let state = self.state.read().expect("no poisoning");
        let size = self.current_size(&state);
        let object_size = state.header.object_size();
        let objects = state.header.object_count(size);
        let map = self.map.lock().expect("no poisoning");
        let map = map.as_ref()?;
        let mut bytes = map.allocated(objects) * object_size;
        if objects > 0 && map.get(objects - 1) != OBJECT_NONEXISTENT {
            bytes -= objects * object_size - size;
        }
        Some(bytes)
    }
}

/// The run from `first` of objects that may exist in either map, or in
/// neither (both `(exists, end)` as `ObjectMap::run` gives them).
pub(super) fn union_run(a: &ObjectMap, b: &ObjectMap, first: u64, end: u64) -> (bool, u64) {
    let (in_a, a_end) = a.run(first, end);
    let (in_b, b_end) = b.run(first, end);
    match (in_a, in_b) {
        (true, _) => (true, a_end),
        (false, true) => (true, b_end),
        (false, false) => (false, a_end.min(b_end)),
    }
}
