//! Which whole objects of an image exist, as QEMU's rbd driver learns it
//! for `map` from `rbd_diff_iterate2` (whole objects, from the image's
//! creation, parent included): from the object map, and only when
//! fast-diff can answer. QEMU (built against librbd < 1.17, as Debian's
//! is) asks only when the image has fast-diff, its fast-diff is valid,
//! it has default striping and no parent; otherwise it calls the whole
//! range data.

use crate::ceph::features;
use crate::ceph::object_map::FLAG_FAST_DIFF_INVALID;
use crate::error::Result;
use crate::rbd::image::RbdImage;

impl RbdImage {
    /// `(exists, len)` for the run at `offset` of objects that all exist
    /// or all do not, clipped to `len`; `None` when fast-diff cannot say.
    pub fn diff_run(&self, offset: u64, len: u64) -> Result<Option<(bool, u64)>> {
        let state = self.state.read().expect("no poisoning");
        let header = &state.header;
        let flags = self.snapshot.as_ref().map_or(header.flags, |s| s.flags);
        if !header.has(features::FAST_DIFF)
            || flags & FLAG_FAST_DIFF_INVALID != 0
            || header.has(features::STRIPINGV2)
            || state.parent.is_some()
        {
            return Ok(None);
        }
        let object_size = header.object_size();
        let end = offset + len;
        let first = offset / object_size;
        let last = (end - 1) / object_size;
        let (kind, run_end) = self.object_run(&state, first, last + 1)?;
        Ok(Some((kind, (run_end * object_size).min(end) - offset)))
    }
}
