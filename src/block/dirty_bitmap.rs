//! Dirty bitmaps: which granules of an image have been written since a
//! point in time (QEMU's `BdrvDirtyBitmap`), and the operations
//! `qemu-img bitmap` and `convert --bitmaps` perform on the persistent
//! ones a format keeps (qcow2's, `formats/qcow2/bitmap_store.rs`).
//!
//! A bitmap is kept as a set of runs of dirty granules, so memory follows
//! what was written, never the image size; the bit layout a format stores
//! (QEMU's serialization: bit `i` of the stream is granule `i`, least
//! significant bit first) is produced and read piece by piece.

use std::collections::BTreeMap;

use crate::error::{Error, ErrorKind, Result};

/// QEMU's `BDRV_BITMAP_MAX_NAME_SIZE`.
pub const MAX_NAME_SIZE: usize = 1023;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirtyBitmap {
    granularity: u64,
    /// The image size the bitmap covers, in bytes.
    size: u64,
    /// Dirty granules: run start -> run end (exclusive), disjoint and not
    /// touching.
    runs: BTreeMap<u64, u64>,
}

impl DirtyBitmap {
    /// An empty bitmap; `granularity` is a power of two.
    pub fn new(granularity: u64, size: u64) -> DirtyBitmap {
        DirtyBitmap {
            granularity,
            size,
            runs: BTreeMap::new(),
        }
    }

    pub fn granularity(&self) -> u64 {
        self.granularity
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Granules covering the bytes of the bitmap.
    pub fn granules(&self) -> u64 {
        self.size.div_ceil(self.granularity)
    }

    pub fn is_clear(&self) -> bool {
        self.runs.is_empty()
    }

    pub fn clear(&mut self) {
        self.runs.clear();
    }

    /// Marks granules `[first, end)`.
    pub fn set_granules(&mut self, first: u64, end: u64) {
        let end = end.min(self.granules());
        if first >= end {
            return;
        }
        let (mut start, mut stop) = (first, end);
        // Absorb every run that overlaps or touches [start, stop).
        let touching: Vec<(u64, u64)> = self
            .runs
            .range(..=stop)
            .rev()
            .take_while(|&(_, &e)| e >= start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in touching {
            self.runs.remove(&s);
            start = start.min(s);
            stop = stop.max(e);
        }
        self.runs.insert(start, stop);
    }

    /// Marks every granule that `[offset, offset + len)` touches.
    pub fn set(&mut self, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        let g = self.granularity;
        self.set_granules(offset / g, (offset + len - 1) / g + 1);
    }

    /// Whether granule `i` is dirty.
    pub fn get(&self, i: u64) -> bool {
        self.runs
            .range(..=i)
            .next_back()
            .is_some_and(|(_, &e)| e > i)
    }

    /// Dirty byte ranges, in order.
    pub fn dirty_ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let g = self.granularity;
        self.runs
            .iter()
            .map(move |(&s, &e)| (s * g, (e * g).min(self.size) - s * g))
    }

    /// Whether any granule in `[first, end)` is dirty.
    pub fn any_in(&self, first: u64, end: u64) -> bool {
        self.runs
            .range(..end)
            .next_back()
            .is_some_and(|(_, &e)| e > first)
    }

    /// Sets what `other` has set (any granularity; QEMU's `hbitmap_merge`).
    pub fn merge(&mut self, other: &DirtyBitmap) {
        for (offset, len) in other.dirty_ranges() {
            self.set(offset, len);
        }
    }

    /// Follows an image resize: granules past the end are dropped.
    pub fn truncate(&mut self, size: u64) {
        self.size = size;
        let end = self.granules();
        let after: Vec<u64> = self.runs.range(end..).map(|(&s, _)| s).collect();
        for s in after {
            self.runs.remove(&s);
        }
        if let Some((_, e)) = self.runs.range_mut(..end).next_back()
            && *e > end
        {
            *e = end;
        }
    }

    /// Bytes that hold the granules of `[offset, offset + len)` when
    /// serialized: whole 64-bit words (QEMU's
    /// `hbitmap_serialization_size`).
    pub fn serialization_size(&self, offset: u64, len: u64) -> u64 {
        if len == 0 {
            return 0;
        }
        let g = self.granularity;
        let first_word = offset / g / 64;
        let last_word = (offset + len - 1) / g / 64;
        (last_word + 1 - first_word) * 8
    }

    /// The bits of `[offset, offset + len)` (`offset` a multiple of 64
    /// granules), least significant bit first.
    pub fn serialize(&self, offset: u64, len: u64) -> Vec<u8> {
        let g = self.granularity;
        let mut out = vec![0u8; self.serialization_size(offset, len) as usize];
        let first = offset / g;
        let end = first + (out.len() as u64) * 8;
        let runs = self.runs.range(..end).filter(|&(_, &e)| e > first);
        for (&s, &e) in runs {
            for i in s.max(first)..e.min(end) {
                let bit = i - first;
                out[(bit / 8) as usize] |= 1 << (bit % 8);
            }
        }
        out
    }

    /// Sets the granules of `[offset, offset + len)` that `bytes` (laid out
    /// as [`DirtyBitmap::serialize`] lays them out) has set.
    pub fn deserialize(&mut self, bytes: &[u8], offset: u64, len: u64) {
        let g = self.granularity;
        let first = offset / g;
        let count = len.div_ceil(g).min(bytes.len() as u64 * 8);
        let mut i = 0;
        while i < count {
            if bytes[(i / 8) as usize] >> (i % 8) & 1 == 0 {
                i += 1;
                continue;
            }
            let start = i;
            while i < count && bytes[(i / 8) as usize] >> (i % 8) & 1 == 1 {
                i += 1;
            }
            self.set_granules(first + start, first + i);
        }
    }
}

/// What a format knows about one of its persistent bitmaps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitmapStatus {
    pub name: String,
    pub granularity: u64,
    /// Recording writes ("auto" on disk).
    pub enabled: bool,
    /// Found "in use" when loaded: its content cannot be trusted.
    pub inconsistent: bool,
}

/// Persistent dirty bitmaps of an open image: the operations of QEMU's
/// `block-dirty-bitmap-*` commands, with their checks and messages.
pub trait PersistentBitmaps {
    /// Every bitmap, in the image's order.
    fn bitmap_list(&self) -> Vec<BitmapStatus>;

    /// Creates an empty bitmap; `granularity` None is the format's default.
    fn bitmap_add(&self, name: &str, granularity: Option<u64>, disabled: bool) -> Result<()>;

    /// Removes a bitmap from the image at once.
    fn bitmap_remove(&self, name: &str) -> Result<()>;

    fn bitmap_clear(&self, name: &str) -> Result<()>;

    /// Starts (true) or stops recording writes.
    fn bitmap_enable(&self, name: &str, enabled: bool) -> Result<()>;

    /// A copy of a bitmap's content, to merge or copy it elsewhere.
    fn bitmap_get(&self, name: &str) -> Result<DirtyBitmap>;

    /// Sets in `target` what the bitmap `source` yields has set; `source`
    /// is looked up once `target` has passed its checks, as QEMU orders
    /// them.
    fn bitmap_merge(&self, target: &str, source: &dyn Fn() -> Result<DirtyBitmap>) -> Result<()>;

    /// Whether this image can keep persistent bitmaps at all (QEMU's
    /// `bdrv_supports_persistent_dirty_bitmap`; a qcow2 v2 image cannot).
    fn supports_persistence(&self) -> bool;
}

/// QEMU's "Dirty bitmap '%s' not found".
pub fn not_found(name: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("Dirty bitmap '{name}' not found"),
    )
}

/// QEMU's refusal of an inconsistent bitmap (`bdrv_dirty_bitmap_check`).
pub fn inconsistent(name: &str) -> Error {
    Error::invalid(format!(
        "Bitmap '{name}' is inconsistent and cannot be used\nTry block-dirty-bitmap-remove to delete this bitmap from disk"
    ))
}

/// QEMU's refusal of a bitmap opened read-only.
pub fn readonly(name: &str) -> Error {
    Error::invalid(format!(
        "Bitmap '{name}' is readonly and cannot be modified"
    ))
}

/// The checks of `block-dirty-bitmap-add` before the format's own.
pub fn check_new(name: &str, granularity: Option<u64>) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid("Bitmap name cannot be empty"));
    }
    if let Some(g) = granularity
        && (g < 512 || !g.is_power_of_two() || g > u64::from(u32::MAX))
    {
        return Err(Error::invalid(
            "Granularity must be power of 2 and at least 512",
        ));
    }
    Ok(())
}

/// QEMU's check that two bitmaps can be merged.
pub fn check_merge(target: &DirtyBitmap, source: &DirtyBitmap) -> Result<()> {
    if source.size() != target.size() {
        return Err(Error::invalid(format!(
            "Bitmaps are of different sizes (destination size is {}, source size is {}) and can't be merged",
            target.size(),
            source.size()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_and_split_as_granules_are_set() {
        let mut b = DirtyBitmap::new(512, 1 << 20);
        b.set(0, 1);
        b.set(1024, 512);
        assert_eq!(
            b.dirty_ranges().collect::<Vec<_>>(),
            [(0, 512), (1024, 512)]
        );
        b.set(300, 900);
        assert_eq!(b.dirty_ranges().collect::<Vec<_>>(), [(0, 1536)]);
        assert!(b.get(2) && !b.get(3));
        assert!(b.any_in(2, 10) && !b.any_in(3, 10));
        b.truncate(1024);
        assert_eq!(b.dirty_ranges().collect::<Vec<_>>(), [(0, 1024)]);
    }

    #[test]
    fn serialization_is_lsb_first_in_whole_words() {
        let mut b = DirtyBitmap::new(65536, 1 << 30);
        b.set_granules(0, 1);
        b.set_granules(9, 11);
        let bytes = b.serialize(0, 1 << 30);
        assert_eq!(bytes.len(), (1 << 30) / 65536 / 8);
        assert_eq!(&bytes[..2], &[0b0000_0001, 0b0000_0110]);
        assert_eq!(b.serialization_size(0, 65536), 8);
        let mut back = DirtyBitmap::new(65536, 1 << 30);
        back.deserialize(&bytes, 0, 1 << 30);
        assert_eq!(back, b);
    }

    #[test]
    fn merging_converts_granularity() {
        let mut fine = DirtyBitmap::new(512, 1 << 20);
        fine.set(70000, 1);
        let mut coarse = DirtyBitmap::new(65536, 1 << 20);
        coarse.merge(&fine);
        assert_eq!(coarse.dirty_ranges().collect::<Vec<_>>(), [(65536, 65536)]);
    }
}
