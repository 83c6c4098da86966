//! Cutting a conversion into chunks, lazily, from the sources' allocation
//! status: the engine pulls one chunk at a time, so planning memory does
//! not grow with the image or its fragmentation.
//!
//! Chunks are aligned to the target's natural unit (an RBD object, qcow2
//! clusters) and never cross a source boundary (sources are concatenated).

use std::sync::Arc;

use crate::block::driver::BlockDriver;
use crate::block::extent::{Allocation, Extent};
use crate::error::{Result, strerror};

/// What a chunk needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Read the source range and write what is not zero.
    Copy,
    /// The source reads as zeros here: nothing to read.
    Zero,
    /// Only the source's backing has data here, and the target has the
    /// same backing (`-B`): leave the target unallocated.
    Skip,
}

/// A stretch of a chunk with one kind of work. Zero detection (`-S`)
/// never looks across runs, exactly as qemu-img splits its requests at
/// allocation-status boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Offset from the chunk's start.
    pub offset: u64,
    pub len: u64,
    pub work: Work,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Position in the order chunks were planned (the target's order).
    pub index: u64,
    /// `--salvage`: warnings of failed status lookups, by source offset.
    pub warnings: Vec<(u64, String)>,
    pub source: usize,
    /// Offset within that source.
    pub source_offset: u64,
    /// Offset within the target.
    pub target_offset: u64,
    pub len: u64,
    pub runs: Vec<Run>,
}

/// The chunk size: 2 MiB, like qemu-img's buffer. Target units are powers
/// of two (RBD objects, qcow2 clusters of at most 2 MiB), so 2 MiB chunks
/// start and end on unit boundaries; measured on bluestore, 2 MiB writes
/// with 8 in flight beat whole 4 MiB objects and use half the memory.
pub const CHUNK: u64 = 2 << 20;

/// `--salvage`'s status lookup (qemu-img's `convert_iteration_sectors`):
/// a failing lookup is retried on a quarter of the range, down to one
/// sector, which then reads as data; the warning for it is returned.
pub fn salvaged_status(
    source: &dyn BlockDriver,
    offset: u64,
    len: u64,
    salvage: bool,
) -> Result<(Extent, Option<String>)> {
    let mut sectors = len.div_ceil(512);
    loop {
        let e = match source.block_status(offset, (sectors * 512).min(len)) {
            Ok(e) => return Ok((e, None)),
            Err(e) if !salvage => return Err(e),
            Err(e) => e,
        };
        if sectors > 1 {
            sectors = sectors.div_ceil(4);
            continue;
        }
        let errno = std::io::Error::from_raw_os_error(e.errno_value());
        let warning = format!(
            "error while reading block status at offset {offset}: {}",
            strerror(&errno)
        );
        let data = Extent {
            offset,
            len: 512.min(len),
            allocation: Allocation::Data,
        };
        return Ok((data, Some(warning)));
    }
}

pub struct Planner {
    sources: Vec<Arc<dyn BlockDriver>>,
    chunk: u64,
    keep_backing_unallocated: bool,
    salvage: bool,
    source: usize,
    offset: u64,
    base: u64,
    next_index: u64,
}

impl Planner {
    pub fn new(
        sources: Vec<Arc<dyn BlockDriver>>,
        chunk: u64,
        keep_backing_unallocated: bool,
        salvage: bool,
    ) -> Planner {
        Planner {
            sources,
            chunk,
            keep_backing_unallocated,
            salvage,
            source: 0,
            offset: 0,
            base: 0,
            next_index: 0,
        }
    }

    pub fn sources(&self) -> &[Arc<dyn BlockDriver>] {
        &self.sources
    }

    /// The next chunk in target order, or `None` when done.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        while self.source < self.sources.len() && self.offset >= self.sources[self.source].size() {
            self.base += self.sources[self.source].size();
            self.source += 1;
            self.offset = 0;
        }
        let Some(source) = self.sources.get(self.source) else {
            return Ok(None);
        };
        let target_offset = self.base + self.offset;
        // End at the next unit boundary of the target, or the source's end.
        let boundary = (target_offset / self.chunk + 1) * self.chunk;
        let len = (boundary - target_offset).min(source.size() - self.offset);
        let mut warnings = Vec::new();
        let runs = self.runs(source.as_ref(), self.offset, len, &mut warnings)?;
        let chunk = Chunk {
            index: self.next_index,
            warnings,
            source: self.source,
            source_offset: self.offset,
            target_offset,
            len,
            runs,
        };
        self.next_index += 1;
        self.offset += len;
        Ok(Some(chunk))
    }

    /// The range's runs: data (and backing data the target will not
    /// inherit) to copy, inheritable backing to skip, zeros to zero.
    fn runs(
        &self,
        source: &dyn BlockDriver,
        offset: u64,
        len: u64,
        warnings: &mut Vec<(u64, String)>,
    ) -> Result<Vec<Run>> {
        let mut runs: Vec<Run> = Vec::new();
        let mut pos = offset;
        while pos < offset + len {
            let (extent, warning) = salvaged_status(source, pos, offset + len - pos, self.salvage)
                .map_err(|e| {
                    e.prepend(format!("error while reading block status at offset {pos}"))
                })?;
            warnings.extend(warning.map(|w| (pos, w)));
            let work = match extent.allocation {
                Allocation::Data => Work::Copy,
                Allocation::Backing if !self.keep_backing_unallocated => Work::Copy,
                Allocation::Backing => Work::Skip,
                Allocation::Zero | Allocation::Unallocated => Work::Zero,
            };
            let n = extent.len.clamp(1, offset + len - pos);
            match runs.last_mut() {
                // Adjacent data (e.g. compressed qcow2 clusters, each its
                // own extent) is one run: one read, one write.
                Some(last) if last.work == Work::Copy && work == Work::Copy => last.len += n,
                _ => runs.push(Run {
                    offset: pos - offset,
                    len: n,
                    work,
                }),
            }
            pos += n;
        }
        Ok(runs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_aligned_to_every_power_of_two_unit() {
        for unit in [512u64, 64 << 10, 2 << 20, 4 << 20, 32 << 20] {
            assert!(
                CHUNK.is_multiple_of(unit) || unit.is_multiple_of(CHUNK),
                "{unit}"
            );
        }
    }
}
