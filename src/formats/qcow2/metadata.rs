//! The mutable metadata of an open image, kept behind the driver's lock:
//! header, L1 table, cached L2 tables and refcount blocks, snapshot table.
//!
//! Metadata is written through: every change reaches the file (in an order
//! that keeps the image consistent if the process dies at any point) before
//! the lock is released, so the caches only ever hold clean copies. The
//! ordering rules are QEMU's: a cluster's refcount is raised before anything
//! points at it, data is written before the L2 entry that maps it, an entry
//! is removed before the refcount of what it pointed at drops. A crash can
//! therefore leak clusters but never corrupt the image.

use std::collections::HashMap;
use std::sync::Arc;

use crate::block::diagnostics::Diagnostics;
use crate::error::{Error, ErrorKind, Result};
use crate::formats::qcow2::header::{Header, hex};
use crate::formats::qcow2::snapshot_table::Snapshot;
use crate::formats::qcow2::tables::{
    self, ClusterType, Geometry, L1E_OFFSET_MASK, L2E_OFFSET_MASK, OFLAG_COPIED, REFT_OFFSET_MASK,
    SubclusterType,
};
use crate::storage::Storage;

/// Cache budget for L2 tables and refcount blocks, each.
const CACHE_BYTES: u64 = 32 << 20;

/// A small LRU map of tables keyed by file offset.
pub struct TableCache<T> {
    map: HashMap<u64, (T, u64)>,
    tick: u64,
    capacity: usize,
}

impl<T> TableCache<T> {
    pub fn new(capacity: usize) -> Self {
        TableCache {
            map: HashMap::new(),
            tick: 0,
            capacity: capacity.max(8),
        }
    }

    pub fn get(&mut self, key: u64) -> Option<&mut T> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(&key).map(|(t, used)| {
            *used = tick;
            t
        })
    }

    pub fn insert(&mut self, key: u64, value: T) -> &mut T {
        if self.map.len() >= self.capacity && !self.map.contains_key(&key) {
            // Drop the least recently used quarter at once.
            let mut ticks: Vec<u64> = self.map.values().map(|(_, u)| *u).collect();
            ticks.sort_unstable();
            let cut = ticks[ticks.len() / 4];
            self.map.retain(|_, (_, u)| *u > cut);
        }
        self.tick += 1;
        let tick = self.tick;
        let slot = self.map.entry(key).or_insert_with(|| (value, tick));
        slot.1 = tick;
        &mut slot.0
    }

    pub fn remove(&mut self, key: u64) {
        self.map.remove(&key);
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }
}

/// Whether an allocation must be retried because refcount structures were
/// placed where the caller meant to allocate (QEMU's -EAGAIN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Again,
}

/// How a guest range is stored (the answer to a lookup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    /// Reads as zeros (zero flag or zero subclusters).
    Zero,
    /// Not allocated here: the backing image, or zeros without one.
    Unallocated,
    /// Data at this offset of the data file.
    Data(u64),
    /// A compressed cluster; the L2 entry.
    Compressed(u64),
}

/// A run of guest bytes with one exact subcluster type (`Meta::run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub kind: SubclusterType,
    /// The host offset of the run's first byte where the type names a host
    /// cluster; the L2 entry of a compressed cluster; else 0.
    pub host: u64,
    pub len: u64,
}

pub struct Meta {
    pub g: Geometry,
    pub file: Arc<dyn Storage>,
    pub header: Header,
    /// Where corruption events and failed frees are reported.
    pub diagnostics: Diagnostics,
    pub l1: Vec<u64>,
    pub reftable: Vec<u64>,
    pub max_reftable_index: usize,
    l2_cache: TableCache<Vec<u64>>,
    rb_cache: TableCache<Vec<u8>>,
    pub free_cluster_index: u64,
    pub free_byte_offset: u64,
    pub snapshots: Vec<Snapshot>,
    pub snapshots_size: u64,
    pub writable: bool,
    pub has_backing: bool,
    corruption_signaled: bool,
    /// After a fatal corruption the image refuses further I/O.
    pub broken: bool,
    /// Guest ranges `[start, end)` of allocating writes in progress.
    pub inflight: Vec<(u64, u64)>,
    /// Pass frees through to the file as discards (QEMU's discard types
    /// "always" and "snapshot", on by default).
    pub discard_freed: bool,
}

fn eio() -> Error {
    Error::os(ErrorKind::CorruptImage, libc::EIO)
}

impl Meta {
    pub fn new(
        g: Geometry,
        file: Arc<dyn Storage>,
        header: Header,
        writable: bool,
        diagnostics: Diagnostics,
    ) -> Meta {
        let tables = (CACHE_BYTES / g.cluster_size) as usize;
        Meta {
            g,
            file,
            header,
            diagnostics,
            l1: Vec::new(),
            reftable: Vec::new(),
            max_reftable_index: 0,
            l2_cache: TableCache::new(tables),
            rb_cache: TableCache::new(tables),
            free_cluster_index: 0,
            free_byte_offset: 0,
            snapshots: Vec::new(),
            snapshots_size: 0,
            writable,
            has_backing: false,
            corruption_signaled: false,
            broken: false,
            inflight: Vec::new(),
            discard_freed: false,
        }
    }

    /// QEMU's `qcow2_signal_corruption`: reports it once, marks a writable
    /// image corrupt (fatal), and fails the request with EIO.
    pub fn corruption(&mut self, fatal: bool, message: String) -> Error {
        let fatal = fatal && self.writable;
        let suppressed = self.corruption_signaled
            && (!fatal || self.header.incompatible_features & super::header::INCOMPAT_CORRUPT != 0);
        if !suppressed {
            self.diagnostics.line(if fatal {
                format!(
                    "qcow2: Marking image as corrupt: {message}; further corruption events will be suppressed"
                )
            } else {
                format!(
                    "qcow2: Image is corrupt: {message}; further non-fatal corruption events will be suppressed"
                )
            });
            if fatal {
                self.header.incompatible_features |= super::header::INCOMPAT_CORRUPT;
                let _ = self.write_header();
                self.broken = true;
            }
            self.corruption_signaled = true;
        }
        eio()
    }

    /// Reads `len` bytes of metadata at `offset`.
    pub fn read_meta(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.file.read_at(&mut buf, offset)?;
        Ok(buf)
    }

    /// Writes metadata; nothing but header fields may land in the first
    /// cluster (a pointer into it means the image is corrupt).
    pub fn write_meta(&self, offset: u64, data: &[u8]) -> Result<()> {
        if offset < self.g.cluster_size
            && offset + data.len() as u64 > super::header::V3_HEADER_LEN as u64
        {
            return Err(eio());
        }
        self.file.write_at(data, offset)
    }

    /// Rewrites the whole first cluster from `self.header`.
    pub fn write_header(&mut self) -> Result<()> {
        self.sync_header_fields();
        let bytes = self.header.serialize()?;
        self.file.write_at(&bytes, 0)
    }

    /// Copies in-memory table positions into the header struct.
    pub fn sync_header_fields(&mut self) {
        self.header.l1_size = self.l1.len() as u32;
        self.header.nb_snapshots = self.snapshots.len() as u32;
    }

    // ---------------------------------------------------------------- L2 ---

    /// The L2 table at `offset`, loaded into the cache if needed.
    pub fn l2_table(&mut self, offset: u64) -> Result<&mut Vec<u64>> {
        if self.l2_cache.get(offset).is_none() {
            let bytes = self.read_meta(offset, self.g.cluster_size as usize)?;
            self.l2_cache.insert(offset, tables::decode_entries(&bytes));
        }
        Ok(self.l2_cache.get(offset).expect("just inserted"))
    }

    pub fn l2_entry(&mut self, l2: u64, index: usize) -> Result<(u64, u64)> {
        let ext = self.g.extended_l2;
        let t = self.l2_table(l2)?;
        Ok(if ext {
            (t[2 * index], t[2 * index + 1])
        } else {
            (t[index], 0)
        })
    }

    pub fn set_l2_entry(&mut self, l2: u64, index: usize, entry: u64, bitmap: u64) -> Result<()> {
        let ext = self.g.extended_l2;
        let t = self.l2_table(l2)?;
        if ext {
            t[2 * index] = entry;
            t[2 * index + 1] = bitmap;
        } else {
            t[index] = entry;
        }
        Ok(())
    }

    /// Writes entries `[first, end)` of a cached L2 table to the file.
    pub fn write_l2(&mut self, l2: u64, first: usize, end: usize) -> Result<()> {
        if first >= end {
            return Ok(());
        }
        let w = if self.g.extended_l2 { 2 } else { 1 };
        let eb = self.g.l2_entry_bytes;
        let bytes = {
            let t = self.l2_table(l2)?;
            tables::encode_entries(&t[first * w..end * w])
        };
        self.write_meta(l2 + first as u64 * eb, &bytes)
    }

    pub fn forget_table(&mut self, offset: u64) {
        self.l2_cache.remove(offset);
        self.rb_cache.remove(offset);
    }

    pub fn clear_caches(&mut self) {
        self.l2_cache.clear();
        self.rb_cache.clear();
    }

    pub(super) fn check_l2_offset(&mut self, l2: u64, l1_index: u64) -> Result<()> {
        if self.g.offset_into_cluster(l2) != 0 {
            return Err(self.corruption(
                true,
                format!(
                    "L2 table offset {} unaligned (L1 index: {})",
                    hex(l2),
                    hex(l1_index)
                ),
            ));
        }
        Ok(())
    }

    /// QEMU's checks of an L2 entry that names a host cluster: aligned, and
    /// with an external data file, at the guest offset.
    fn check_host_cluster(
        &mut self,
        entry: u64,
        l2: u64,
        l2_index: usize,
        guest_cluster: u64,
    ) -> Result<()> {
        let host = entry & L2E_OFFSET_MASK;
        self.check_cluster_aligned(host, l2, l2_index)?;
        if !self.g.host_cluster_valid(entry, guest_cluster) {
            return Err(self.corruption(
                true,
                format!(
                    "External data file host cluster offset {} does not match guest cluster offset: {}, L2 index: {})",
                    hex(host),
                    hex(guest_cluster),
                    hex(l2_index as u64)
                ),
            ));
        }
        Ok(())
    }

    /// A host cluster an L2 entry names must be cluster-aligned.
    pub(super) fn check_cluster_aligned(
        &mut self,
        host: u64,
        l2: u64,
        l2_index: usize,
    ) -> Result<()> {
        if self.g.offset_into_cluster(host) != 0 {
            return Err(self.corruption(
                true,
                format!(
                    "Cluster allocation offset {} unaligned (L2 offset: {}, L2 index: {})",
                    hex(host),
                    hex(l2),
                    hex(l2_index as u64)
                ),
            ));
        }
        Ok(())
    }

    /// The L2 table for a guest offset, if one is allocated (read path).
    pub fn l2_for_read(&mut self, offset: u64) -> Result<Option<u64>> {
        let l1_index = self.g.l1_index(offset);
        let Some(&entry) = self.l1.get(l1_index as usize) else {
            return Ok(None);
        };
        let l2 = entry & L1E_OFFSET_MASK;
        if l2 == 0 {
            return Ok(None);
        }
        self.check_l2_offset(l2, l1_index)?;
        Ok(Some(l2))
    }

    /// How far (at most `max`) the run of unallocated L1 entries that
    /// holds `offset` reaches: one step however many entries it spans.
    fn unallocated_l1_run(&self, offset: u64, max: u64) -> u64 {
        let span = self.g.l2_span();
        let first = self.g.l1_index(offset);
        let limit = offset.saturating_add(max);
        let mut end = (first + 1).saturating_mul(span);
        let mut index = first + 1;
        while end < limit {
            match self.l1.get(index as usize) {
                Some(&entry) if entry & L1E_OFFSET_MASK != 0 => break,
                Some(_) => end = end.saturating_add(span),
                // Past the L1 table nothing is allocated.
                None => end = limit,
            }
            index += 1;
        }
        end.min(limit) - offset
    }

    /// How `[offset, offset + max)` starts: the mapping of its first byte
    /// and how many bytes share it (contiguous on the host for data).
    pub fn map(&mut self, offset: u64, max: u64) -> Result<(Mapping, u64)> {
        let run = self.run(offset, max)?;
        let mapping = match run.kind {
            SubclusterType::Normal => Mapping::Data(run.host),
            SubclusterType::Compressed => Mapping::Compressed(run.host),
            SubclusterType::ZeroPlain | SubclusterType::ZeroAlloc => Mapping::Zero,
            _ => Mapping::Unallocated,
        };
        Ok((mapping, run.len))
    }

    /// The run of subclusters at `offset` of one exact type, contiguous on
    /// the host where the type names a host cluster (QEMU's
    /// `qcow2_get_host_offset`), clipped to `max` and to the L2 table.
    pub fn run(&mut self, offset: u64, max: u64) -> Result<Run> {
        let g = self.g;
        let in_cluster = g.offset_into_cluster(offset);
        let l2_index = g.l2_index(offset);
        let available = ((g.l2_entries - l2_index as u64) << g.cluster_bits) - in_cluster;
        let Some(l2) = self.l2_for_read(offset)? else {
            return Ok(Run {
                kind: SubclusterType::UnallocatedPlain,
                host: 0,
                len: self.unallocated_l1_run(offset, max),
            });
        };
        let max = max.min(available);
        let sc_index = g.sc_index(offset);
        let (entry, bitmap) = self.l2_entry(l2, l2_index)?;
        let (t, n) = g.subcluster_run(entry, bitmap, sc_index);
        if g.version < 3 && t.reads_zero() {
            return Err(self.corruption(
                true,
                format!(
                    "Zero cluster entry found in pre-v3 image (L2 offset: {}, L2 index: {})",
                    hex(l2),
                    hex(l2_index as u64)
                ),
            ));
        }
        if t.names_host_cluster() {
            self.check_host_cluster(entry, l2, l2_index, offset - in_cluster)?;
        }
        match t {
            SubclusterType::Invalid => {
                return Err(self.corruption(
                    true,
                    format!(
                        "Invalid cluster entry found  (L2 offset: {}, L2 index: {})",
                        hex(l2),
                        hex(l2_index as u64)
                    ),
                ));
            }
            SubclusterType::Compressed => {
                if g.has_data_file {
                    return Err(self.corruption(
                        true,
                        format!(
                            "Compressed cluster entry found in image with external data file (L2 offset: {}, L2 index: {})",
                            hex(l2),
                            hex(l2_index as u64)
                        ),
                    ));
                }
                let len = (g.cluster_size - in_cluster).min(max);
                return Ok(Run {
                    kind: t,
                    host: entry,
                    len,
                });
            }
            _ => {}
        }
        let host = match t.names_host_cluster() {
            true => (entry & L2E_OFFSET_MASK) + in_cluster,
            false => 0,
        };
        // Extend the run over following clusters of the same kind.
        let mut subclusters = u64::from(n);
        let mut next_host = (entry & L2E_OFFSET_MASK) + g.cluster_size;
        let needed = g.size_to_clusters(in_cluster + max);
        if sc_index + n == g.subclusters {
            for i in 1..needed {
                let idx = l2_index + i as usize;
                let (e, b) = self.l2_entry(l2, idx)?;
                let (t2, n2) = g.subcluster_run(e, b, 0);
                // An entry QEMU would refuse ends the run, so that the
                // next lookup starts at it and reports it.
                let guest = offset - in_cluster + (i << g.cluster_bits);
                if t2.names_host_cluster() && !g.host_cluster_valid(e, guest) {
                    break;
                }
                let same = t2 == t
                    && match t {
                        SubclusterType::Normal => {
                            e & L2E_OFFSET_MASK == next_host && !g.has_data_file
                        }
                        SubclusterType::ZeroAlloc | SubclusterType::UnallocatedAlloc => {
                            e & L2E_OFFSET_MASK == next_host
                        }
                        _ => true,
                    };
                if !same {
                    break;
                }
                next_host += g.cluster_size;
                subclusters += u64::from(n2);
                if n2 < g.subclusters {
                    break;
                }
            }
        }
        let end = (u64::from(sc_index) + subclusters) << g.subcluster_bits;
        Ok(Run {
            kind: t,
            host,
            len: (end - in_cluster).min(max),
        })
    }

    // ---------------------------------------------------------- refcounts ---

    fn refblock(&mut self, offset: u64) -> Result<&mut Vec<u8>> {
        if self.rb_cache.get(offset).is_none() {
            let bytes = self.read_meta(offset, self.g.cluster_size as usize)?;
            self.rb_cache.insert(offset, bytes);
        }
        Ok(self.rb_cache.get(offset).expect("just inserted"))
    }

    pub fn get_refcount(&mut self, cluster_index: u64) -> Result<u64> {
        let ti = cluster_index >> self.g.refblock_bits;
        let Some(&entry) = self.reftable.get(ti as usize) else {
            return Ok(0);
        };
        let offset = entry & REFT_OFFSET_MASK;
        if offset == 0 {
            return Ok(0);
        }
        if self.g.offset_into_cluster(offset) != 0 {
            return Err(self.corruption(
                true,
                format!(
                    "Refblock offset {} unaligned (reftable index: {})",
                    hex(offset),
                    hex(ti)
                ),
            ));
        }
        let order = self.g.refcount_order;
        let index = cluster_index & (self.g.refblock_entries() - 1);
        let block = self.refblock(offset)?;
        Ok(super::refcount::get(order, block, index))
    }

    fn write_refblock_range(&mut self, offset: u64, first: u64, last: u64) -> Result<()> {
        let (start, end) = super::refcount::byte_range(self.g.refcount_order, first, last);
        let bytes = self.refblock(offset)?[start..end].to_vec();
        self.write_meta(offset + start as u64, &bytes)
    }

    /// Changes the refcount of every cluster touched by `[offset, offset +
    /// length)` by `addend` (QEMU's `update_refcount`).
    pub fn update_refcount(
        &mut self,
        offset: u64,
        length: u64,
        addend: u64,
        decrease: bool,
    ) -> Result<Outcome> {
        if length == 0 {
            return Ok(Outcome::Done);
        }
        let g = self.g;
        let start = g.start_of_cluster(offset);
        let last = g.start_of_cluster(offset + length - 1);
        let mut current: Option<(u64, u64, u64, u64)> = None; // (ti, block, first, last)
        let mut freed = Vec::new();
        let mut cluster = start;
        let result = loop {
            if cluster > last {
                break Ok(Outcome::Done);
            }
            let ci = cluster >> g.cluster_bits;
            let ti = ci >> g.refblock_bits;
            if current.map(|c| c.0) != Some(ti) {
                if let Some((_, block, first, lastw)) = current.take()
                    && let Err(e) = self.write_refblock_range(block, first, lastw)
                {
                    break Err(e);
                }
                match self.alloc_refcount_block(ci) {
                    Ok((Outcome::Done, block)) => {
                        let idx = ci & (g.refblock_entries() - 1);
                        current = Some((ti, block, idx, idx));
                    }
                    Ok((Outcome::Again, _)) => {
                        self.free_cluster_index =
                            self.free_cluster_index.min(start >> g.cluster_bits);
                        break Ok(Outcome::Again);
                    }
                    Err(e) => break Err(e),
                }
            }
            let (_, block, first, lastw) = current.expect("block loaded");
            let idx = ci & (g.refblock_entries() - 1);
            current = Some((ti, block, first.min(idx), lastw.max(idx)));
            let order = g.refcount_order;
            let max = g.refcount_max;
            let rb = match self.refblock(block) {
                Ok(rb) => rb,
                Err(e) => break Err(e),
            };
            let rc = super::refcount::get(order, rb, idx);
            let new = if decrease {
                rc.checked_sub(addend)
            } else {
                rc.checked_add(addend).filter(|&n| n <= max)
            };
            let Some(new) = new else {
                break Err(Error::os(ErrorKind::InvalidArgument, libc::EINVAL));
            };
            super::refcount::set(order, rb, idx, new);
            if new == 0 {
                if ci < self.free_cluster_index {
                    self.free_cluster_index = ci;
                }
                self.forget_table(cluster);
                if self.discard_freed {
                    freed.push(cluster);
                }
            }
            cluster += g.cluster_size;
        };
        if let Some((_, block, first, lastw)) = current {
            self.write_refblock_range(block, first, lastw)?;
        }
        for cluster in freed {
            let _ = self.file.discard(cluster, g.cluster_size);
        }
        match result {
            Ok(Outcome::Done) => Ok(Outcome::Done),
            other => {
                // Undo what was done before the failure.
                if cluster > offset {
                    let done = cluster - offset;
                    let _ = self.update_refcount(offset, done.min(length), addend, !decrease);
                }
                other
            }
        }
    }

    /// Makes sure the refcount block for `cluster_index` exists; returns its
    /// offset, or `Again` after allocating one (QEMU's
    /// `alloc_refcount_block`).
    fn alloc_refcount_block(&mut self, cluster_index: u64) -> Result<(Outcome, u64)> {
        let g = self.g;
        let ti = (cluster_index >> g.refblock_bits) as usize;
        if let Some(&entry) = self.reftable.get(ti) {
            let offset = entry & REFT_OFFSET_MASK;
            if offset != 0 {
                if g.offset_into_cluster(offset) != 0 {
                    return Err(self.corruption(
                        true,
                        format!(
                            "Refblock offset {} unaligned (reftable index: {})",
                            hex(offset),
                            hex(ti as u64)
                        ),
                    ));
                }
                return Ok((Outcome::Done, offset));
            }
        }
        let new_block = self.alloc_clusters_noref(g.cluster_size, i64::MAX as u64)?;
        if new_block == 0 {
            return Err(self.corruption(
                true,
                "Preventing invalid allocation of refcount block at offset 0".into(),
            ));
        }
        let span = g.refblock_bits + g.cluster_bits;
        if new_block >> span == (cluster_index << g.cluster_bits) >> span {
            // The block describes itself.
            let mut block = vec![0u8; g.cluster_size as usize];
            let idx = (new_block >> g.cluster_bits) & (g.refblock_entries() - 1);
            super::refcount::set(g.refcount_order, &mut block, idx, 1);
            self.rb_cache.insert(new_block, block);
        } else {
            if self.update_refcount(new_block, g.cluster_size, 1, false)? == Outcome::Again {
                return Ok((Outcome::Again, 0));
            }
            self.rb_cache
                .insert(new_block, vec![0u8; g.cluster_size as usize]);
        }
        let bytes = self.refblock(new_block)?.clone();
        self.write_meta(new_block, &bytes)?;
        if ti < self.reftable.len() {
            let at = self.header.refcount_table_offset + ti as u64 * 8;
            self.write_meta(at, &new_block.to_be_bytes())?;
            self.reftable[ti] = new_block;
            self.max_reftable_index = self.max_reftable_index.max(ti);
            return Ok((Outcome::Again, 0));
        }
        // The refcount table is full: build a bigger one past everything the
        // current refcount blocks cover.
        let blocks_used = (cluster_index + 1)
            .max((new_block >> g.cluster_bits) + 1)
            .div_ceil(g.refblock_entries());
        let meta_offset = (blocks_used * g.refblock_entries()) << g.cluster_bits;
        self.refcount_area(meta_offset, 0, false, ti, new_block)?;
        Ok((Outcome::Again, 0))
    }

    /// Refcount metadata needed to cover `clusters` clusters: (blocks, table
    /// clusters) (QEMU's `qcow2_refcount_metadata_size`).
    pub fn refcount_metadata_size(
        clusters: u64,
        cluster_size: u64,
        refcount_order: u32,
        generous: bool,
    ) -> (u64, u64) {
        let per_table_cluster = cluster_size / 8;
        let per_block = (cluster_size * 8) >> refcount_order;
        let (mut clusters, mut generous) = (clusters, generous);
        let (mut table, mut blocks, mut n) = (0u64, 0u64, 0u64);
        loop {
            let last = n;
            blocks = (clusters + table + blocks).div_ceil(per_block);
            table = blocks.div_ceil(per_table_cluster);
            n = clusters + blocks + table;
            if n == last && generous {
                clusters += table.div_ceil(2);
                n = 0;
                generous = false;
            }
            if n == last {
                return (blocks, table);
            }
        }
    }

    /// Creates a new refcount table and blocks at `start_offset` (the end of
    /// the used area) that cover themselves and `additional` more clusters;
    /// returns the offset after them (QEMU's `qcow2_refcount_area`).
    pub fn refcount_area(
        &mut self,
        start_offset: u64,
        additional: u64,
        exact: bool,
        new_index: usize,
        new_offset: u64,
    ) -> Result<u64> {
        let g = self.g;
        let efbig = || Error::os(ErrorKind::InvalidArgument, libc::EFBIG);
        let (total, _) = Self::refcount_metadata_size(
            start_offset / g.cluster_size + additional,
            g.cluster_size,
            g.refcount_order,
            !exact,
        );
        if total > tables::MAX_REFTABLE_BYTES {
            return Err(efbig());
        }
        let area_index = (start_offset / g.cluster_size / g.refblock_entries()) as usize;
        let mut size = if exact {
            total
        } else {
            total + total.div_ceil(2)
        };
        let per_cluster = g.cluster_size / 8;
        size = size.div_ceil(per_cluster) * per_cluster;
        let table_clusters = size * 8 / g.cluster_size;
        if size > tables::MAX_REFTABLE_BYTES {
            return Err(efbig());
        }
        let total = total as usize;
        let mut table = vec![0u64; size as usize];
        let copy = if size as usize > self.max_reftable_index {
            (self.max_reftable_index + 1).min(self.reftable.len())
        } else {
            size as usize
        };
        table[..copy].copy_from_slice(&self.reftable[..copy]);
        if new_offset != 0 && new_index < table.len() {
            table[new_index] = new_offset;
        }
        let missing = (area_index..total).filter(|&i| table[i] == 0).count() as u64;
        let table_offset = start_offset + missing * g.cluster_size;
        let end_offset = table_offset + table_clusters * g.cluster_size;
        let mut block_offset = start_offset;
        for (i, slot) in table.iter_mut().enumerate().take(total).skip(area_index) {
            if *slot == 0 {
                self.rb_cache
                    .insert(block_offset, vec![0u8; g.cluster_size as usize]);
                *slot = block_offset;
                block_offset += g.cluster_size;
            }
            let block = *slot & REFT_OFFSET_MASK;
            let first_covered = (i as u64 * g.refblock_entries()) << g.cluster_bits;
            if first_covered < end_offset {
                let from = if first_covered < start_offset {
                    (start_offset - first_covered) / g.cluster_size
                } else {
                    0
                };
                let to = ((end_offset - first_covered) / g.cluster_size).min(g.refblock_entries());
                let order = g.refcount_order;
                let rb = self.refblock(block)?;
                for j in from..to {
                    super::refcount::set(order, rb, j, 1);
                }
            }
            let bytes = self.refblock(block)?.clone();
            self.write_meta(block, &bytes)?;
        }
        self.write_meta(table_offset, &tables::encode_entries(&table))?;
        let mut hdr = table_offset.to_be_bytes().to_vec();
        hdr.extend_from_slice(&(table_clusters as u32).to_be_bytes());
        self.write_meta(48, &hdr)?;
        let old_offset = self.header.refcount_table_offset;
        let old_len = self.reftable.len() as u64;
        self.reftable = table;
        self.header.refcount_table_offset = table_offset;
        self.header.refcount_table_clusters = table_clusters as u32;
        self.update_max_reftable_index();
        self.free_clusters(old_offset, old_len * 8);
        Ok(end_offset)
    }

    pub fn update_max_reftable_index(&mut self) {
        let mut i = self.reftable.len().saturating_sub(1);
        while i > 0 && self.reftable[i] & REFT_OFFSET_MASK == 0 {
            i -= 1;
        }
        self.max_reftable_index = i;
    }

    /// Finds `size` bytes of free clusters from the allocation cursor,
    /// without taking them (QEMU's `alloc_clusters_noref`).
    pub fn alloc_clusters_noref(&mut self, size: u64, max: u64) -> Result<u64> {
        let n = self.g.size_to_clusters(size);
        'retry: loop {
            for _ in 0..n {
                let index = self.free_cluster_index;
                self.free_cluster_index += 1;
                if self.get_refcount(index)? != 0 {
                    continue 'retry;
                }
            }
            break;
        }
        if self.free_cluster_index > 0 && self.free_cluster_index - 1 > (max >> self.g.cluster_bits)
        {
            return Err(Error::os(ErrorKind::InvalidArgument, libc::EFBIG));
        }
        Ok((self.free_cluster_index - n) << self.g.cluster_bits)
    }

    /// Allocates `size` bytes of clusters with refcount 1.
    pub fn alloc_clusters(&mut self, size: u64) -> Result<u64> {
        loop {
            let offset = self.alloc_clusters_noref(size, tables::MAX_CLUSTER_OFFSET)?;
            if self.update_refcount(offset, size, 1, false)? == Outcome::Done {
                return Ok(offset);
            }
        }
    }

    /// Allocates up to `count` clusters exactly at `offset`, stopping at the
    /// first one in use; returns how many (QEMU's `qcow2_alloc_clusters_at`).
    pub fn alloc_clusters_at(&mut self, offset: u64, count: u64) -> Result<u64> {
        if count == 0 {
            return Ok(0);
        }
        loop {
            let first = offset >> self.g.cluster_bits;
            let mut free = 0;
            while free < count && self.get_refcount(first + free)? == 0 {
                free += 1;
            }
            if self.update_refcount(offset, free << self.g.cluster_bits, 1, false)? == Outcome::Done
            {
                return Ok(free);
            }
        }
    }

    /// Allocates `size` bytes (at most a cluster) for compressed data,
    /// packing them after the previous compressed cluster.
    pub fn alloc_bytes(&mut self, size: u64) -> Result<u64> {
        let g = self.g;
        let mut offset = self.free_byte_offset;
        if offset != 0 && self.get_refcount(offset >> g.cluster_bits)? == g.refcount_max {
            offset = 0;
        }
        let mut free_in_cluster = g.cluster_size - g.offset_into_cluster(offset);
        loop {
            if offset == 0 || free_in_cluster < size {
                let max = g.cluster_offset_mask.min(tables::MAX_CLUSTER_OFFSET);
                let new_cluster = self.alloc_clusters_noref(g.cluster_size, max)?;
                if new_cluster == 0 {
                    return Err(self.corruption(
                        true,
                        "Preventing invalid allocation of compressed cluster at offset 0".into(),
                    ));
                }
                if offset == 0 || offset.div_ceil(g.cluster_size) * g.cluster_size != new_cluster {
                    offset = new_cluster;
                    free_in_cluster = g.cluster_size;
                } else {
                    free_in_cluster += g.cluster_size;
                }
            }
            match self.update_refcount(offset, size, 1, false)? {
                Outcome::Done => break,
                Outcome::Again => offset = 0,
            }
        }
        self.free_byte_offset = offset + size;
        if g.offset_into_cluster(self.free_byte_offset) == 0 {
            self.free_byte_offset = 0;
        }
        Ok(offset)
    }

    /// Drops a reference and discards the clusters it frees.
    pub fn free_clusters_discard(&mut self, offset: u64, size: u64) {
        let was = std::mem::replace(&mut self.discard_freed, true);
        self.free_clusters(offset, size);
        self.discard_freed = was;
    }

    /// Drops a reference; failures are reported and the clusters leak, as in
    /// QEMU.
    pub fn free_clusters(&mut self, offset: u64, size: u64) {
        if let Err(e) = self.update_refcount(offset, size, 1, true) {
            self.diagnostics
                .line(format!("qcow2_free_clusters failed: {}", e.message()));
        }
    }

    /// Drops the reference an L2 entry holds, whatever its type.
    pub fn free_any_cluster(&mut self, entry: u64) {
        if self.g.has_data_file {
            return;
        }
        match self.g.cluster_type(entry) {
            ClusterType::Compressed => {
                let (off, len) = self.g.compressed_extent(entry);
                self.free_clusters(off, len);
            }
            ClusterType::Normal | ClusterType::ZeroAlloc => {
                let off = entry & L2E_OFFSET_MASK;
                if self.g.offset_into_cluster(off) != 0 {
                    let _ = self
                        .corruption(false, format!("Cannot free unaligned cluster {}", hex(off)));
                } else {
                    self.free_clusters(off, self.g.cluster_size);
                }
            }
            ClusterType::ZeroPlain | ClusterType::Unallocated => {}
        }
    }

    // ---------------------------------------------------------------- L1 ---

    /// Grows the L1 table to at least `min_size` entries (QEMU's
    /// `qcow2_grow_l1_table`).
    pub fn grow_l1(&mut self, min_size: u64, exact: bool) -> Result<()> {
        let current = self.l1.len() as u64;
        if min_size <= current {
            return Ok(());
        }
        let efbig = || Error::os(ErrorKind::InvalidArgument, libc::EFBIG);
        if min_size > (i32::MAX as u64) / 8 {
            return Err(efbig());
        }
        let new_size = if exact {
            min_size
        } else {
            let mut n = current.max(1);
            while min_size > n {
                n = (n * 3).div_ceil(2);
            }
            n
        };
        if new_size > tables::MAX_L1_BYTES / 8 {
            return Err(efbig());
        }
        let mut table = self.l1.clone();
        table.resize(new_size as usize, 0);
        let offset = self.alloc_clusters(new_size * 8)?;
        if let Err(e) = self.write_meta(offset, &tables::encode_entries(&table)) {
            self.free_clusters(offset, new_size * 8);
            return Err(e);
        }
        let mut data = (new_size as u32).to_be_bytes().to_vec();
        data.extend_from_slice(&offset.to_be_bytes());
        self.write_meta(36, &data)?;
        let (old_offset, old_size) = (self.header.l1_table_offset, current);
        self.l1 = table;
        self.header.l1_table_offset = offset;
        self.header.l1_size = new_size as u32;
        self.free_clusters(old_offset, old_size * 8);
        Ok(())
    }

    pub fn write_l1_entry(&mut self, index: usize) -> Result<()> {
        let at = self.header.l1_table_offset + index as u64 * 8;
        let bytes = self.l1[index].to_be_bytes();
        self.write_meta(at, &bytes)
    }

    /// The L2 table for a guest offset, allocated or copied (when shared
    /// with a snapshot) as needed (QEMU's `get_cluster_table`).
    pub fn l2_for_write(&mut self, offset: u64) -> Result<u64> {
        let l1_index = self.g.l1_index(offset);
        if l1_index >= self.l1.len() as u64 {
            self.grow_l1(l1_index + 1, false)?;
        }
        let i = l1_index as usize;
        let l2 = self.l1[i] & L1E_OFFSET_MASK;
        self.check_l2_offset(l2, l1_index)?;
        if self.l1[i] & OFLAG_COPIED == 0 {
            self.l2_allocate(i)?;
            if l2 != 0 {
                self.free_clusters(l2, self.g.cluster_size);
            }
        }
        Ok(self.l1[i] & L1E_OFFSET_MASK)
    }

    fn l2_allocate(&mut self, l1_index: usize) -> Result<()> {
        let old = self.l1[l1_index] & L1E_OFFSET_MASK;
        let cs = self.g.cluster_size;
        let new = self.alloc_clusters(cs)?;
        if new == 0 {
            return Err(self.corruption(
                true,
                "Preventing invalid allocation of L2 table at offset 0".into(),
            ));
        }
        let table = if old == 0 {
            vec![0u64; (cs / 8) as usize]
        } else {
            self.l2_table(old)?.clone()
        };
        let bytes = tables::encode_entries(&table);
        self.l2_cache.insert(new, table);
        if let Err(e) = self.write_meta(new, &bytes) {
            self.free_clusters(new, cs);
            return Err(e);
        }
        self.l1[l1_index] = new | OFLAG_COPIED;
        self.write_l1_entry(l1_index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refcount_metadata_size_reaches_a_fixed_point() {
        // 1 GiB of 64 KiB clusters with 16-bit refcounts: one block covers
        // 32768 clusters, so one block and one table cluster.
        assert_eq!(Meta::refcount_metadata_size(16384, 65536, 4, false), (1, 1));
        // 512-byte clusters, 64-bit refcounts: 64 refcounts per block.
        let (blocks, table) = Meta::refcount_metadata_size(1000, 512, 6, false);
        assert!(blocks * 64 >= 1000 + blocks + table);
        assert_eq!(table, blocks.div_ceil(64));
    }

    #[test]
    fn cache_evicts_old_entries() {
        let mut c: TableCache<u32> = TableCache::new(8);
        for i in 0..20u64 {
            c.insert(i, i as u32);
        }
        assert!(c.map.len() <= 8);
        assert_eq!(c.get(19).copied(), Some(19));
    }
}
