//! `commit` (qemu-img's active commit, a mirror job from the top image to
//! its base): every range the images above the base store themselves
//! (data or zeros), widened to the base's bitmap granularity, is copied
//! into the base in offset order, data as data and zeros as zero writes.
//!
//! ```text
//!   top ─┐ (read through the chain)         base (written)
//!   mid ─┤ allocated above base? ─> read ─> write_at / write_zeroes
//!   base ┘ (never read here)
//! ```
//! The base grows first when the top is larger. The caller empties the top
//! afterwards (unless `-d`). Both walks go extent by extent, each run one
//! driver call however long (what the images above the base store, then
//! `block::walk` through the whole chain inside a region), so the work
//! grows with the committed data, not the virtual size.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::block::driver::{BlockDriver, Preallocation};
use crate::block::extent::Allocation;
use crate::block::walk;
use crate::convert::progress::Progress;
use crate::error::Result;

/// The largest data copy in one request, as the mirror job's.
const MAX_IO: u64 = 1 << 20;

pub struct Commit<'a> {
    /// The backing chain from the image the user named down to its end;
    /// reads go through the first one.
    pub chain: Vec<Arc<dyn BlockDriver>>,
    /// How many images, from the top down, are committed (the base is the
    /// backing file of the last one).
    pub layers: usize,
    /// The base, open for writing.
    pub base: &'a dyn BlockDriver,
    /// `-r`: bytes per second of copied data (0: no limit).
    pub rate: u64,
}

/// What a range of the whole chain holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    Data,
    Zero,
}

impl Commit<'_> {
    /// The default granularity of a dirty bitmap on the base (QEMU's
    /// `bdrv_get_default_bitmap_granularity`): its cluster size within
    /// [4 KiB, 64 KiB], 64 KiB without one.
    fn granularity(&self) -> u64 {
        self.base
            .allocation_unit()
            .map_or(65536, |c| c.clamp(4096, 65536))
    }

    /// Whether the images above the base store `[offset, offset + len)`
    /// (QEMU's `bdrv_is_allocated_above`), and the length of the run.
    fn above_base(&self, offset: u64, len: u64) -> Result<(bool, u64)> {
        let mut len = len;
        for node in self.chain.iter().take(self.layers) {
            if offset >= node.size() {
                break;
            }
            let e = node.block_status(offset, len.min(node.size() - offset))?;
            len = e.len.clamp(1, len);
            match e.allocation {
                Allocation::Data | Allocation::Zero => return Ok((true, len)),
                Allocation::Unallocated => break,
                Allocation::Backing => {}
            }
        }
        Ok((false, len))
    }

    /// Copies; `progress` advances by the bytes committed.
    pub fn run(&self, progress: &Progress) -> Result<()> {
        let size = self.chain[0].size();
        if self.base.size() < size {
            self.base.resize(size, Preallocation::Off)?;
        }
        let g = self.granularity();
        let started = Instant::now();
        let mut copied = 0u64;
        let mut offset = 0;
        while offset < size {
            let (stored, run) = self.above_base(offset, size - offset)?;
            if !stored {
                offset += run;
                continue;
            }
            // Widen to whole bitmap granules, and take every following
            // allocated run into the same dirty region.
            let start = offset / g * g;
            let mut end = (offset + run).div_ceil(g) * g;
            while end < size {
                let (stored, r) = self.above_base(end, size - end)?;
                if !stored {
                    break;
                }
                end = (end + r).div_ceil(g) * g;
            }
            let end = end.min(size);
            self.copy_region(start, end, &mut copied, started)?;
            progress.advance(end - start.max(offset));
            offset = end;
        }
        Ok(())
    }

    /// Copies `[start, end)` as the whole chain reads it.
    fn copy_region(&self, start: u64, end: u64, copied: &mut u64, started: Instant) -> Result<()> {
        let sub = self.base.subcluster_size().unwrap_or(1).max(1);
        let mut pos = start;
        let mut buf = Vec::new();
        while pos < end {
            // As reads see the whole chain, base included.
            let e = walk::status_above(self.chain[0].as_ref(), pos, end - pos)?;
            let run = e.len;
            let content = match e.allocation.reads_as_zero() {
                true => Content::Zero,
                false => Content::Data,
            };
            let aligned = pos.is_multiple_of(sub) && (pos + run).is_multiple_of(sub);
            if content == Content::Zero && aligned {
                self.base.write_zeroes(pos, run, true)?;
                pos += run;
                continue;
            }
            let n = run.min(MAX_IO);
            buf.resize(n as usize, 0);
            self.chain[0].read_at(&mut buf, pos)?;
            self.base.write_at(&buf, pos)?;
            *copied += n;
            self.throttle(*copied, started);
            pos += n;
        }
        Ok(())
    }

    /// Sleeps until `copied` bytes are within the rate limit.
    fn throttle(&self, copied: u64, started: Instant) {
        if self.rate == 0 {
            return;
        }
        let due = Duration::from_secs_f64(copied as f64 / self.rate as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}
