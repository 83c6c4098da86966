//! Walking an image's allocation in extents of any length: the one way
//! every command that needs "where is the data" asks for it (convert's
//! planner, compare, convert's up-front metadata walk; `map`, `measure`,
//! `rebase`, `commit` and `dd` are meant to use it too), so their cost
//! grows with the allocated data and the metadata, never with the virtual
//! size.
//!
//! ```text
//!   Walk::new(image, range, Chain::Resolve)        for extent in walk { extent? }
//!     |  block_status(pos, rest of range)          one driver call per extent: a hole
//!     v                                            or zero run is one entry however long
//!   Backing run?  --Resolve--> status_above: the backing's own status for that
//!                              range (recursively), so what no layer stores
//!                              reads as zeros and is never read
//! ```
//!
//! Drivers answer `block_status` from their own metadata in one step per
//! run: raw files from SEEK_DATA/SEEK_HOLE, qcow2 from its L1/L2 tables
//! (a stretch of unallocated L1 entries is one run), RBD images from the
//! object map (or, without a usable map, one listing of the objects that
//! exist). A caller that only needs a bounded answer (the planner filling
//! one buffer) passes a short range; the extent never reaches past it.

use crate::block::driver::BlockDriver;
use crate::block::extent::{Allocation, Extent};
use crate::error::Result;

/// How a walk treats ranges the top image leaves to its backing chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    /// Report them as `Backing` (convert `-B`: they stay unallocated).
    Keep,
    /// Ask the backing chain: ranges no layer stores read as zeros
    /// (`Unallocated`, or `Zero` when a lower layer says so); ranges a lower
    /// layer holds stay `Backing` (data to read), as qemu-img's
    /// `bdrv_block_status_above` sees the chain.
    Resolve,
}

/// The status of the longest run at `offset` (at most `len` bytes, `len` >
/// 0 and within the image) as reads see it through the backing chain.
pub fn status_above(image: &dyn BlockDriver, offset: u64, len: u64) -> Result<Extent> {
    let extent = image.block_status(offset, len)?;
    let len = extent.len.clamp(1, len);
    let top = Extent {
        offset,
        len,
        allocation: extent.allocation,
    };
    if top.allocation != Allocation::Backing {
        return Ok(top);
    }
    let Some(backing) = image.backing() else {
        return Ok(top);
    };
    // Past the backing file's end the image reads zeros.
    let below_size = backing.size();
    if offset >= below_size {
        return Ok(Extent {
            allocation: Allocation::Unallocated,
            ..top
        });
    }
    let below = status_above(backing.as_ref(), offset, len.min(below_size - offset))?;
    Ok(Extent {
        offset,
        len: below.len,
        allocation: if below.allocation.reads_as_zero() {
            below.allocation
        } else {
            Allocation::Backing
        },
    })
}

/// The status of the run at `offset` (see `Chain`).
pub fn status(image: &dyn BlockDriver, offset: u64, len: u64, chain: Chain) -> Result<Extent> {
    match chain {
        Chain::Resolve => status_above(image, offset, len),
        Chain::Keep => {
            let extent = image.block_status(offset, len)?;
            Ok(Extent {
                offset,
                len: extent.len.clamp(1, len),
                allocation: extent.allocation,
            })
        }
    }
}

/// The extents of `[start, end)` in order, each as long as the image
/// reports it; adjacent extents may share a status. A failure ends the walk.
pub struct Walk<'a> {
    image: &'a dyn BlockDriver,
    pos: u64,
    end: u64,
    chain: Chain,
}

impl<'a> Walk<'a> {
    /// Walks `range` (clipped to the image).
    pub fn new(image: &'a dyn BlockDriver, range: std::ops::Range<u64>, chain: Chain) -> Walk<'a> {
        Walk {
            image,
            pos: range.start,
            end: range.end.min(image.size()),
            chain,
        }
    }
}

impl Iterator for Walk<'_> {
    type Item = Result<Extent>;

    fn next(&mut self) -> Option<Result<Extent>> {
        if self.pos >= self.end {
            return None;
        }
        let extent = status(self.image, self.pos, self.end - self.pos, self.chain);
        match &extent {
            Ok(e) => self.pos += e.len,
            Err(_) => self.pos = self.end,
        }
        Some(extent)
    }
}

/// An image made of allocation runs and nothing else, for tests of what
/// plans from extents (this walk, convert's planner).
#[cfg(test)]
pub(crate) mod test_image {
    use std::sync::Arc;

    use crate::block::driver::{BlockDriver, Check, Preallocation};
    use crate::block::extent::{Allocation, Extent};
    use crate::block::info::NodeInfo;
    use crate::block::snapshot::Snapshots;
    use crate::error::Result;

    /// An image described by its runs; unlisted bytes are `fill`.
    pub struct Runs {
        pub size: u64,
        pub runs: Vec<(u64, u64, Allocation)>,
        pub fill: Allocation,
        pub backing: Option<Arc<dyn BlockDriver>>,
    }

    impl Snapshots for Runs {}
    impl Check for Runs {}

    impl BlockDriver for Runs {
        fn format_name(&self) -> &'static str {
            "raw"
        }
        fn filename(&self) -> &str {
            "runs"
        }
        fn size(&self) -> u64 {
            self.size
        }
        fn read_at(&self, _buf: &mut [u8], _offset: u64) -> Result<()> {
            unreachable!()
        }
        fn write_at(&self, _buf: &[u8], _offset: u64) -> Result<()> {
            unreachable!()
        }
        fn write_zeroes(&self, _offset: u64, _len: u64, _may_unmap: bool) -> Result<()> {
            unreachable!()
        }
        fn discard(&self, _offset: u64, _len: u64) -> Result<()> {
            unreachable!()
        }
        fn flush(&self) -> Result<()> {
            Ok(())
        }
        fn resize(&self, _new_size: u64, _prealloc: Preallocation) -> Result<()> {
            unreachable!()
        }
        fn block_status(&self, offset: u64, len: u64) -> Result<Extent> {
            let end = offset + len;
            let (allocation, run_end) = match self
                .runs
                .iter()
                .find(|(s, l, _)| (*s..s + l).contains(&offset))
            {
                Some((s, l, a)) => (*a, s + l),
                None => (
                    self.fill,
                    self.runs
                        .iter()
                        .map(|(s, _, _)| *s)
                        .filter(|&s| s > offset)
                        .min()
                        .unwrap_or(u64::MAX),
                ),
            };
            Ok(Extent {
                offset,
                len: run_end.min(end) - offset,
                allocation,
            })
        }
        fn backing(&self) -> Option<Arc<dyn BlockDriver>> {
            self.backing.clone()
        }
        fn info(&self) -> Result<NodeInfo> {
            Ok(NodeInfo::default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_image::Runs;
    use super::*;
    use std::sync::Arc;

    fn walk(image: &dyn BlockDriver, chain: Chain) -> Vec<(u64, u64, Allocation)> {
        Walk::new(image, 0..u64::MAX, chain)
            .map(|e| e.map(|e| (e.offset, e.len, e.allocation)).unwrap())
            .collect()
    }

    #[test]
    fn holes_are_one_extent_however_long_and_backing_resolves_to_the_chain() {
        use Allocation::*;
        let tib = 1u64 << 40;
        let base: Arc<dyn BlockDriver> = Arc::new(Runs {
            size: 4 * tib,
            runs: vec![(tib, 4096, Data), (2 * tib, 4096, Zero)],
            fill: Unallocated,
            backing: None,
        });
        let top = Runs {
            size: 8 * tib,
            runs: vec![(0, 65536, Data)],
            fill: Backing,
            backing: Some(base),
        };
        assert_eq!(
            walk(&top, Chain::Keep),
            [(0, 65536, Data), (65536, 8 * tib - 65536, Backing)]
        );
        assert_eq!(
            walk(&top, Chain::Resolve),
            [
                (0, 65536, Data),
                (65536, tib - 65536, Unallocated),
                (tib, 4096, Backing),
                (tib + 4096, tib - 4096, Unallocated),
                (2 * tib, 4096, Zero),
                (2 * tib + 4096, 2 * tib - 4096, Unallocated),
                // Past the backing file's end.
                (4 * tib, 4 * tib, Unallocated),
            ]
        );
        let part: Vec<_> = Walk::new(&top, tib..tib + 100, Chain::Resolve)
            .map(|e| e.unwrap().len)
            .collect();
        assert_eq!(part, [100]);
    }
}
