//! Changing the refcount width of an image (`amend -o refcount_bits=N`,
//! QEMU's `qcow2_change_refcount_order`): a new refcount table and new
//! refcount blocks in the new width are built beside the old ones and
//! described by the old ones, then the header switches to them and the old
//! structures are freed through the new ones.
//!
//! ```text
//!   walk old refcounts -> new block full? -> allocate it (old structures)
//!     ^   (allocations change refcounts already walked: walk again)   |
//!     +---- until a walk allocates nothing; the new table likewise ---+
//!   walk again, writing each new block; write the new table;
//!   header -> new table and width; free old blocks and table
//! ```

use crate::error::{Error, ErrorKind, Result};
use crate::formats::qcow2::header::Header;
use crate::formats::qcow2::metadata::Meta;
use crate::formats::qcow2::refcount;
use crate::formats::qcow2::tables::{self, Geometry, MAX_REFTABLE_BYTES, REFT_OFFSET_MASK};

/// The state of the new structures while they are built.
struct NewTable {
    order: u32,
    /// Refcounts per new block.
    block_entries: u64,
    table: Vec<u64>,
    /// Whether the last walk allocated a block.
    allocated: bool,
}

/// What a walk does with each completed new block.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Allocate a cluster for every non-empty block that has none.
    Allocate,
    /// Write every allocated block.
    Write,
}

impl NewTable {
    fn finish_block(
        &mut self,
        m: &mut Meta,
        pass: Pass,
        index: usize,
        block: &[u8],
        empty: bool,
    ) -> Result<()> {
        let cs = m.g.cluster_size;
        match pass {
            Pass::Allocate => {
                if !empty && index >= self.table.len() {
                    let per_cluster = (cs / 8) as usize;
                    let size = (index + 1).div_ceil(per_cluster) * per_cluster;
                    if size as u64 * 8 > MAX_REFTABLE_BYTES {
                        return Err(Error::new(
                            ErrorKind::Unsupported,
                            "This operation would make the refcount table grow beyond the maximum size supported by QEMU, aborting",
                        ));
                    }
                    self.table.resize(size, 0);
                }
                if !empty && self.table[index] == 0 {
                    self.table[index] = m
                        .alloc_clusters(cs)
                        .map_err(|e| e.prepend("Failed to allocate refblock"))?;
                    self.allocated = true;
                }
            }
            Pass::Write => {
                if let Some(&offset) = self.table.get(index).filter(|&&o| o != 0) {
                    m.write_meta(offset, block)
                        .map_err(|e| e.prepend("Failed to write refblock"))?;
                }
            }
        }
        Ok(())
    }

    /// Walks every old refcount in order, filling new blocks of the new
    /// width; each full block (and the last, partial one) is finished by
    /// `pass`. The old table may grow while it is walked.
    fn walk(&mut self, m: &mut Meta, pass: Pass) -> Result<()> {
        let old = m.g;
        let bits = 1u32 << self.order;
        let mut f = Filling {
            block: vec![0u8; old.cluster_size as usize],
            filled: 0,
            empty: true,
            index: 0,
        };
        let mut ti = 0usize;
        while ti < m.reftable.len() {
            let offset = m.reftable[ti] & REFT_OFFSET_MASK;
            if offset != 0 && old.offset_into_cluster(offset) != 0 {
                let _ = m.corruption(
                    true,
                    format!(
                        "Refblock offset {} unaligned (reftable index: {})",
                        crate::formats::qcow2::header::hex(offset),
                        crate::formats::qcow2::header::hex(ti as u64)
                    ),
                );
                return Err(Error::corrupt(
                    "Image is corrupt (unaligned refblock offset)",
                ));
            }
            if offset == 0 {
                // No block: every refcount it would hold is 0.
                let mut left = old.refblock_entries();
                while left > 0 {
                    let take = left.min(self.room(m, pass, &mut f)?);
                    f.filled += take;
                    left -= take;
                }
                ti += 1;
                continue;
            }
            for i in 0..old.refblock_entries() {
                self.room(m, pass, &mut f)?;
                let rc = m.get_refcount(((ti as u64) << old.refblock_bits) + i)?;
                if bits < 64 && rc >> bits != 0 {
                    let at = (((ti as u64) << old.refblock_bits) + i) << old.cluster_bits;
                    return Err(Error::invalid(format!(
                        "Cannot decrease refcount entry width to {bits} bits: Cluster at offset {} has a refcount of {rc}",
                        crate::formats::qcow2::header::hex(at)
                    )));
                }
                refcount::set(self.order, &mut f.block, f.filled, rc);
                f.filled += 1;
                f.empty &= rc == 0;
            }
            ti += 1;
        }
        if f.filled > 0 {
            self.finish_block(m, pass, f.index, &f.block, f.empty)?;
        }
        Ok(())
    }

    /// Finishes the block being filled when it is full; the entries left
    /// in it.
    fn room(&mut self, m: &mut Meta, pass: Pass, f: &mut Filling) -> Result<u64> {
        if f.filled == self.block_entries {
            self.finish_block(m, pass, f.index, &f.block, f.empty)?;
            f.index += 1;
            f.filled = 0;
            f.empty = true;
            f.block.fill(0);
        }
        Ok(self.block_entries - f.filled)
    }
}

/// The new refcount block being filled by `NewTable::walk`.
struct Filling {
    block: Vec<u8>,
    filled: u64,
    /// Whether every refcount in it so far is 0.
    empty: bool,
    /// Its index in the new table.
    index: usize,
}

/// Rewrites the refcount structures in width `1 << order`; `header` and
/// geometry in `m` are switched on success (the caller installs the new
/// geometry in the image).
pub fn change(m: &mut Meta, order: u32) -> Result<Geometry> {
    let cs = m.g.cluster_size;
    let mut new = NewTable {
        order,
        block_entries: 1 << (m.g.cluster_bits + 3 - order),
        table: Vec::new(),
        allocated: false,
    };
    let mut table_offset = 0u64;
    let mut table_allocated = 0u64;
    loop {
        new.allocated = false;
        new.walk(m, Pass::Allocate)?;
        if !new.allocated {
            break;
        }
        if table_offset != 0 {
            m.free_clusters(table_offset, table_allocated * 8);
        }
        let size = new.table.len() as u64;
        table_offset = m
            .alloc_clusters(size * 8)
            .map_err(|e| e.prepend("Failed to allocate the new reftable"))?;
        table_allocated = size;
    }
    new.walk(m, Pass::Write)?;
    m.write_meta(table_offset, &tables::encode_entries(&new.table))
        .map_err(|e| e.prepend("Failed to write the new reftable"))?;
    let old_table = std::mem::take(&mut m.reftable);
    let old_offset = m.header.refcount_table_offset;
    let mut header: Header = m.header.clone();
    header.refcount_order = order;
    header.refcount_table_offset = table_offset;
    header.refcount_table_clusters = (new.table.len() as u64 * 8 / cs) as u32;
    let saved = std::mem::replace(&mut m.header, header);
    if let Err(e) = m.write_header() {
        m.header = saved;
        m.reftable = old_table;
        return Err(e.prepend("Failed to update the qcow2 header"));
    }
    let g = Geometry::new(&m.header);
    m.g = g;
    m.reftable = new.table;
    m.update_max_reftable_index();
    m.clear_caches();
    for entry in &old_table {
        let offset = entry & REFT_OFFSET_MASK;
        if offset != 0 {
            m.free_clusters(offset, cs);
        }
    }
    m.free_clusters(old_offset, old_table.len() as u64 * 8);
    Ok(g)
}
