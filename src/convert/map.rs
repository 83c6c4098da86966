//! `map`'s walk: the status of each run of an image through its backing
//! chain (qemu-img's `get_block_status`), merged into the longest entries
//! qemu-img would print (`entry_mergeable`).
//!
//! ```text
//!   top layer --neither data nor zero--> backing (depth 1) --> ... (depth n)
//!   entries with the same flags, depth, file and consecutive host
//!   offsets merge into one
//! ```

use std::sync::Arc;

use crate::block::driver::BlockDriver;
use crate::error::Result;

/// One line of `map`'s output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapEntry {
    pub start: u64,
    pub length: u64,
    /// The backing layer that decides the range: 0 is the image itself.
    pub depth: u64,
    pub present: bool,
    pub zero: bool,
    pub data: bool,
    pub compressed: bool,
    /// The offset in `filename` (the file that holds the bytes), when known.
    pub offset: Option<u64>,
    pub filename: Option<String>,
}

impl MapEntry {
    /// Whether `next` continues this entry (qemu-img's `entry_mergeable`).
    fn mergeable(&self, next: &MapEntry) -> bool {
        if self.length == 0 {
            return false;
        }
        let same = (
            self.zero,
            self.data,
            self.compressed,
            self.depth,
            self.present,
        ) == (
            next.zero,
            next.data,
            next.compressed,
            next.depth,
            next.present,
        );
        let contiguous = match (self.offset, next.offset) {
            (Some(a), Some(b)) => a + self.length == b,
            (None, None) => true,
            _ => false,
        };
        same && self.filename == next.filename && contiguous
    }
}

/// The entry for the run at `offset` (at most `len` bytes): the first layer
/// down the backing chain that has data or zeros there decides it.
pub fn entry_at(image: &Arc<dyn BlockDriver>, offset: u64, len: u64) -> Result<MapEntry> {
    let mut layer = image.clone();
    let mut depth = 0;
    let mut len = len;
    loop {
        let size = layer.size();
        if offset >= size {
            break;
        }
        let status = layer.map_status(offset, len.min(size - offset))?;
        len = status.len;
        if status.data || status.zero {
            let (offset_in_file, filename) = match status.host {
                Some(host) => (Some(host.offset), Some(host.file)),
                None => (None, None),
            };
            return Ok(MapEntry {
                start: offset,
                length: len,
                depth,
                present: status.allocated,
                zero: status.zero,
                data: status.data,
                compressed: status.compressed,
                offset: offset_in_file,
                filename,
            });
        }
        match layer.backing() {
            Some(backing) => (layer, depth) = (backing, depth + 1),
            None => break,
        }
    }
    Ok(MapEntry {
        start: offset,
        length: len,
        depth,
        ..MapEntry::default()
    })
}

/// Walks `[start, end)` and hands each merged entry to `emit` together
/// with the entry that follows it (`None` for the last), which `emit` may
/// adjust before it is merged further, as qemu-img's human output does. An
/// empty range still emits one empty entry at `start`, as qemu-img does.
pub fn walk(
    image: &Arc<dyn BlockDriver>,
    start: u64,
    end: u64,
    mut emit: impl FnMut(&MapEntry, Option<&mut MapEntry>) -> Result<()>,
) -> Result<()> {
    let mut curr = MapEntry {
        start,
        ..MapEntry::default()
    };
    while curr.start + curr.length < end {
        let offset = curr.start + curr.length;
        let mut next = entry_at(image, offset, end - offset)?;
        if curr.mergeable(&next) {
            curr.length += next.length;
            continue;
        }
        if curr.length > 0 {
            emit(&curr, Some(&mut next))?;
        }
        curr = next;
    }
    emit(&curr, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(start: u64, length: u64, offset: Option<u64>) -> MapEntry {
        MapEntry {
            start,
            length,
            present: true,
            data: true,
            offset,
            filename: offset.map(|_| "f".to_string()),
            ..MapEntry::default()
        }
    }

    #[test]
    fn entries_merge_only_when_contiguous_in_the_same_file() {
        assert!(entry(0, 512, Some(0)).mergeable(&entry(512, 512, Some(512))));
        assert!(!entry(0, 512, Some(0)).mergeable(&entry(512, 512, Some(4096))));
        assert!(!entry(0, 512, Some(0)).mergeable(&entry(512, 512, None)));
        assert!(entry(0, 512, None).mergeable(&entry(512, 512, None)));
        let mut zero = entry(512, 512, Some(512));
        zero.zero = true;
        assert!(!entry(0, 512, Some(0)).mergeable(&zero));
        assert!(!entry(0, 0, Some(0)).mergeable(&entry(0, 512, Some(0))));
    }
}
