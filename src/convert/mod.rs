//! The convert engine: copies one or more sources, concatenated, into a
//! target, guided by the sources' allocation status so that holes and zeros
//! are never read or written needlessly.
//!
//! ```text
//!  sources (concatenated) --block_status--> extents
//!     Data/Backing  -> read -> split at -S granules -> data: write / zero: skip or zero
//!     Zero/Unalloc  -> skip (fresh or known-zero target) or write_zeroes (-n)
//!     Backing + -B  -> skip: the target's own backing provides it
//! ```

pub mod progress;
pub mod sparse;

use std::sync::Arc;

use crate::image::driver::BlockDriver;
use crate::image::error::{Error, Result};
use crate::image::extent::Allocation;

/// The largest piece read into memory at once.
pub const MAX_CHUNK: u64 = 2 << 20;

#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// `-S`: zero runs of at least this many bytes (aligned) stay sparse; 0
    /// writes every byte.
    pub sparse_size: u64,
    /// The target reads as zeros before we start (freshly created, or
    /// `--target-is-zero`): zero ranges are then skipped entirely.
    pub target_is_zero: bool,
    /// `-B`: ranges the source takes from its backing chain stay
    /// unallocated in the target, whose own backing provides them.
    pub keep_backing_unallocated: bool,
    /// `-c`: write whole target allocation units of this size compressed.
    pub compress_unit: Option<u64>,
}

pub struct Copier<'a> {
    target: &'a dyn BlockDriver,
    opts: &'a ConvertOptions,
    progress: &'a progress::Progress,
    buffer: Vec<u8>,
}

/// Copies `sources`, one after the other, into `target` from offset 0.
pub fn convert(
    sources: &[Arc<dyn BlockDriver>],
    target: &dyn BlockDriver,
    opts: &ConvertOptions,
    progress: &progress::Progress,
) -> Result<()> {
    let mut copier = Copier {
        target,
        opts,
        progress,
        buffer: Vec::new(),
    };
    let mut base = 0;
    for source in sources {
        copier.copy_source(source.as_ref(), base)?;
        base += source.size();
    }
    progress.finish();
    Ok(())
}

impl Copier<'_> {
    fn copy_source(&mut self, source: &dyn BlockDriver, base: u64) -> Result<()> {
        if let Some(unit) = self.opts.compress_unit {
            return self.copy_compressed(source, base, unit);
        }
        let size = source.size();
        let mut offset = 0;
        while offset < size {
            let want = MAX_CHUNK.min(size - offset);
            let extent = source.block_status(offset, want).map_err(|e| {
                e.prepend(format!(
                    "error while reading block status at offset {offset}"
                ))
            })?;
            let len = extent.len.clamp(1, want);
            match extent.allocation {
                Allocation::Zero | Allocation::Unallocated => self.zero(base + offset, len)?,
                Allocation::Backing if self.opts.keep_backing_unallocated => {}
                Allocation::Data | Allocation::Backing => {
                    self.copy_data(source, offset, base + offset, len)?
                }
            }
            self.progress.advance(len);
            offset += len;
        }
        Ok(())
    }

    /// `-c`: copies in target allocation units; a unit that is all zeros is
    /// left out, any other is written compressed (a unit cut short by the
    /// end of a source that is not the end of the target is written plain).
    fn copy_compressed(&mut self, source: &dyn BlockDriver, base: u64, unit: u64) -> Result<()> {
        let size = source.size();
        let target_size = self.target.size();
        let mut offset = 0;
        while offset < size {
            let t = base + offset;
            let len = ((t / unit + 1) * unit - t).min(size - offset);
            let extent = source.block_status(offset, len).map_err(|e| {
                e.prepend(format!(
                    "error while reading block status at offset {offset}"
                ))
            })?;
            let skip = match extent.allocation {
                Allocation::Zero | Allocation::Unallocated => extent.len >= len,
                Allocation::Backing => self.opts.keep_backing_unallocated && extent.len >= len,
                Allocation::Data => false,
            };
            if skip {
                if !matches!(extent.allocation, Allocation::Backing) {
                    self.zero(t, len)?;
                }
            } else {
                self.buffer.resize(len as usize, 0);
                source
                    .read_at(&mut self.buffer, offset)
                    .map_err(|e| e.prepend(format!("error while reading at byte {offset}")))?;
                if sparse::is_zero(&self.buffer) && self.opts.sparse_size > 0 {
                    self.zero(t, len)?;
                } else {
                    let whole = t.is_multiple_of(unit) && (len == unit || t + len == target_size);
                    let written = if whole {
                        self.target.write_compressed(&self.buffer, t)
                    } else {
                        self.target.write_at(&self.buffer, t)
                    };
                    written.map_err(|e| e.prepend(format!("error while writing at byte {t}")))?;
                }
            }
            self.progress.advance(len);
            offset += len;
        }
        Ok(())
    }

    fn zero(&self, target_offset: u64, len: u64) -> Result<()> {
        if self.opts.target_is_zero && self.opts.sparse_size > 0 {
            return Ok(());
        }
        if self.opts.sparse_size == 0 {
            // -S 0: allocate everything, zeros included.
            return write_zeros_as_data(self.target, target_offset, len);
        }
        self.target
            .write_zeroes(target_offset, len, true)
            .map_err(|e| e.prepend(format!("error while writing at byte {target_offset}")))
    }

    fn copy_data(
        &mut self,
        source: &dyn BlockDriver,
        offset: u64,
        target_offset: u64,
        len: u64,
    ) -> Result<()> {
        self.buffer.resize(len as usize, 0);
        source
            .read_at(&mut self.buffer, offset)
            .map_err(|e| e.prepend(format!("error while reading at byte {offset}")))?;
        for run in sparse::split(&self.buffer, target_offset, self.opts.sparse_size) {
            let at = target_offset + run.start as u64;
            if run.zero {
                self.zero(at, (run.end - run.start) as u64)?;
            } else {
                self.target
                    .write_at(&self.buffer[run.start..run.end], at)
                    .map_err(|e| e.prepend(format!("error while writing at byte {at}")))?;
            }
        }
        Ok(())
    }
}

fn write_zeros_as_data(target: &dyn BlockDriver, offset: u64, len: u64) -> Result<()> {
    let zeros = vec![0u8; MAX_CHUNK.min(len) as usize];
    let mut pos = offset;
    while pos < offset + len {
        let n = (offset + len - pos).min(zeros.len() as u64) as usize;
        target
            .write_at(&zeros[..n], pos)
            .map_err(|e: Error| e.prepend(format!("error while writing at byte {pos}")))?;
        pos += n as u64;
    }
    Ok(())
}
