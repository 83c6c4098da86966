//! Cutting a conversion into chunks, lazily, from the sources' allocation
//! status: the engine pulls one chunk at a time, so planning memory does
//! not grow with the image or its fragmentation, and planning time grows
//! with the number of extents, not the virtual size.
//!
//! Chunks are aligned to the target's natural unit (an RBD object, qcow2
//! clusters) and never cross a source boundary (sources are concatenated).
//! A chunk that holds data is at most `CHUNK` long (it is read into a
//! buffer); a stretch with nothing to read (zeros, or ranges left to the
//! target's backing file) is one chunk however long, from unit boundary to
//! unit boundary, unless zeros must be written as data (`-S 0`).

use std::sync::Arc;

use crate::block::driver::BlockDriver;
use crate::block::extent::{Allocation, Extent};
use crate::block::walk::{self, Chain};
use crate::error::Result;

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
    pub source: usize,
    /// Offset within that source.
    pub source_offset: u64,
    /// Offset within the target.
    pub target_offset: u64,
    pub len: u64,
    pub runs: Vec<Run>,
}

impl Chunk {
    /// Whether any of the chunk must be read from the source.
    pub fn copies(&self) -> bool {
        self.runs.iter().any(|r| r.work == Work::Copy)
    }
}

/// The chunk size: 2 MiB, like qemu-img's buffer. Target units are powers
/// of two (RBD objects, qcow2 clusters of at most 2 MiB), so 2 MiB chunks
/// start and end on unit boundaries; measured on bluestore, 2 MiB writes
/// with 8 in flight beat whole 4 MiB objects and use half the memory.
pub const CHUNK: u64 = 2 << 20;

pub struct Planner {
    sources: Vec<Arc<dyn BlockDriver>>,
    chunk: u64,
    keep_backing_unallocated: bool,
    /// Stretches without data may become chunks longer than `chunk`.
    long_runs: bool,
    source: usize,
    offset: u64,
    base: u64,
    next_index: u64,
}

impl Planner {
    /// `long_runs`: zeros need no buffer (they are skipped or zeroed, not
    /// written as data), so a stretch without data is one chunk.
    pub fn new(
        sources: Vec<Arc<dyn BlockDriver>>,
        chunk: u64,
        keep_backing_unallocated: bool,
        long_runs: bool,
    ) -> Planner {
        Planner {
            sources,
            chunk,
            keep_backing_unallocated,
            long_runs,
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
        let Some(source) = self.sources.get(self.source).cloned() else {
            return Ok(None);
        };
        let size = source.size();
        let target_offset = self.base + self.offset;
        // End at the next unit boundary of the target, or the source's end.
        let boundary = (target_offset / self.chunk + 1) * self.chunk;
        let mut len = (boundary - target_offset).min(size - self.offset);
        let mut runs = self.runs(source.as_ref(), self.offset, len)?;
        if let [only] = runs.as_mut_slice()
            && only.work != Work::Copy
            && self.long_runs
        {
            len = self.extend(source.as_ref(), self.offset, len, only.work)?;
            only.len = len;
        }
        let chunk = Chunk {
            index: self.next_index,
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

    /// A chunk of `[offset, offset + len)` that is all `work` (no data):
    /// its length once extended over the rest of the run, to the last unit
    /// boundary the run covers or to the source's end.
    fn extend(&self, source: &dyn BlockDriver, offset: u64, len: u64, work: Work) -> Result<u64> {
        let size = source.size();
        let from = offset + len;
        if from >= size {
            return Ok(len);
        }
        let rest = self.status(source, from, size - from)?;
        if self.work(rest.allocation) != work {
            return Ok(len);
        }
        let run_end = from + rest.len;
        let end = if run_end == size {
            run_end
        } else {
            (self.base + run_end) / self.chunk * self.chunk - self.base
        };
        Ok(end.max(from) - offset)
    }

    fn status(&self, source: &dyn BlockDriver, offset: u64, len: u64) -> Result<Extent> {
        let chain = if self.keep_backing_unallocated {
            Chain::Keep
        } else {
            Chain::Resolve
        };
        walk::status(source, offset, len, chain).map_err(|e| {
            e.prepend(format!(
                "error while reading block status at offset {offset}"
            ))
        })
    }

    fn work(&self, allocation: Allocation) -> Work {
        match allocation {
            Allocation::Data => Work::Copy,
            Allocation::Backing if !self.keep_backing_unallocated => Work::Copy,
            Allocation::Backing => Work::Skip,
            Allocation::Zero | Allocation::Unallocated => Work::Zero,
        }
    }

    /// The range's runs: data (and backing data the target will not
    /// inherit) to copy, inheritable backing to skip, zeros to zero.
    fn runs(&self, source: &dyn BlockDriver, offset: u64, len: u64) -> Result<Vec<Run>> {
        let mut runs: Vec<Run> = Vec::new();
        let mut pos = offset;
        while pos < offset + len {
            let extent = self.status(source, pos, offset + len - pos)?;
            let work = self.work(extent.allocation);
            let n = extent.len;
            match runs.last_mut() {
                // Adjacent runs of one kind (e.g. compressed qcow2 clusters,
                // each its own extent) are one run: one read, one write.
                Some(last) if last.work == work => last.len += n,
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

    use crate::block::walk::test_image::Runs;

    /// A planned chunk: target offset, length, runs (length, work).
    type Planned = (u64, u64, Vec<(u64, Work)>);

    /// An 8 TiB source with 1 MiB of data at 4 TiB, planned in full.
    fn plan(long_runs: bool, limit: usize) -> Vec<Planned> {
        let tib = 1u64 << 40;
        let source: Arc<dyn BlockDriver> = Arc::new(Runs {
            size: 8 * tib,
            runs: vec![(4 * tib, 1 << 20, Allocation::Data)],
            fill: Allocation::Unallocated,
            backing: None,
        });
        let mut planner = Planner::new(vec![source], CHUNK, false, long_runs);
        let mut chunks = Vec::new();
        while let Some(c) = planner.next_chunk().unwrap() {
            let runs = c.runs.iter().map(|r| (r.len, r.work)).collect();
            chunks.push((c.target_offset, c.len, runs));
            if chunks.len() == limit {
                break;
            }
        }
        chunks
    }

    #[test]
    fn a_stretch_without_data_is_one_chunk_however_long() {
        let tib = 1u64 << 40;
        let mib = 1u64 << 20;
        assert_eq!(
            plan(true, usize::MAX),
            [
                (0, 4 * tib, vec![(4 * tib, Work::Zero)]),
                (4 * tib, CHUNK, vec![(mib, Work::Copy), (mib, Work::Zero)]),
                (
                    4 * tib + CHUNK,
                    4 * tib - CHUNK,
                    vec![(4 * tib - CHUNK, Work::Zero)]
                ),
            ]
        );
        // Zeros written as data (-S 0) need buffers: chunks stay short.
        assert!(plan(false, 3).iter().all(|c| c.1 == CHUNK));
    }

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
