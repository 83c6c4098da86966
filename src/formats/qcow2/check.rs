//! Consistency check and repair, as `qemu-img check` does it for qcow2
//! (QEMU's `qcow2_check_refcounts` and friends): references are counted
//! from the metadata into an in-memory refcount table and compared with the
//! on-disk refcounts. What it finds is reported line by line in the
//! report's messages, worded as QEMU words them, so the two tools print the
//! same lines.

use crate::block::diagnostics::Diagnostics;
use crate::block::driver::{CheckReport, Repair};
use crate::error::Result;
use crate::formats::qcow2::Qcow2Image;
use crate::formats::qcow2::header::{INCOMPAT_CORRUPT, INCOMPAT_DIRTY, hex};
use crate::formats::qcow2::metadata::Meta;
use crate::formats::qcow2::snapshot_table;
use crate::formats::qcow2::tables::{
    self, ClusterType, L1E_OFFSET_MASK, L1E_RESERVED_MASK, L2E_OFFSET_MASK, L2E_STD_RESERVED_MASK,
    OFLAG_COPIED, OFLAG_ZERO, REFT_OFFSET_MASK, REFT_RESERVED_MASK,
};
use crate::formats::qcow2::validate_table;

#[derive(Debug, Default, Clone)]
struct Res {
    corruptions: u64,
    leaks: u64,
    check_errors: u64,
    corruptions_fixed: u64,
    leaks_fixed: u64,
    allocated: u64,
    fragmented: u64,
    compressed: u64,
}

impl Res {
    /// QEMU's `qcow2_add_check_result` without the allocation figures.
    fn add_counts(&mut self, other: &Res) {
        self.corruptions += other.corruptions;
        self.leaks += other.leaks;
        self.check_errors += other.check_errors;
        self.corruptions_fixed += other.corruptions_fixed;
        self.leaks_fixed += other.leaks_fixed;
    }
}

struct Checker<'a> {
    m: &'a mut Meta,
    res: Res,
    fix_leaks: bool,
    fix_errors: bool,
    /// In-memory refcounts, one per cluster.
    imrt: Vec<u64>,
}

pub fn run(img: &Qcow2Image, repair: Repair) -> Result<CheckReport> {
    let mut m = img.lock();
    // What the check finds, and any corruption event it triggers, goes into
    // the report in the order it happened.
    let found = Diagnostics::default();
    let image_sink = std::mem::replace(&mut m.diagnostics, found.clone());
    let result = check(img, &mut m, repair);
    m.diagnostics = image_sink;
    match result {
        Ok(report) => Ok(CheckReport {
            messages: found.take(),
            ..report
        }),
        // A check that fails still tells what it found on its way.
        Err(e) => {
            for message in found.take() {
                m.diagnostics.report(message);
            }
            Err(e)
        }
    }
}

fn check(img: &Qcow2Image, m: &mut Meta, repair: Repair) -> Result<CheckReport> {
    let fix_errors = repair == Repair::All;
    let fix_leaks = repair != Repair::None;
    let mut c = Checker {
        m,
        res: Res::default(),
        fix_leaks,
        fix_errors,
        imrt: Vec::new(),
    };
    let total = c.m.g.size_to_clusters(img.current_size());
    // As in QEMU, the snapshot table's findings are kept apart from the
    // refcount check's: only they are fixed by rewriting the table.
    let table_read = c.read_snapshot_table();
    let mut snapshots = std::mem::take(&mut c.res);
    let end = if table_read {
        c.check_refcounts()?
    } else {
        None
    };
    if snapshots.corruptions > 0 && fix_errors && end.is_some() {
        if let Err(e) = c.m.write_snapshots() {
            snapshots.check_errors += 1;
            c.m.diagnostics.line(format!(
                "ERROR failed to update snapshot table: {}",
                e.message()
            ));
        } else {
            snapshots.corruptions_fixed += snapshots.corruptions;
            snapshots.corruptions = 0;
        }
    }
    c.res.add_counts(&snapshots);
    let res = c.res.clone();
    let m = c.m;
    if fix_leaks && res.check_errors == 0 && res.corruptions == 0 {
        let flags = m.header.incompatible_features;
        if flags & (INCOMPAT_DIRTY | INCOMPAT_CORRUPT) != 0 {
            m.file.flush()?;
            m.header.incompatible_features &= !(INCOMPAT_DIRTY | INCOMPAT_CORRUPT);
            m.write_header()?;
        }
    }
    Ok(CheckReport {
        corruptions: res.corruptions,
        leaks: res.leaks,
        check_errors: res.check_errors,
        corruptions_fixed: res.corruptions_fixed,
        leaks_fixed: res.leaks_fixed,
        image_end_offset: end,
        total_clusters: Some(total),
        allocated_clusters: Some(res.allocated),
        fragmented_clusters: Some(res.fragmented),
        compressed_clusters: Some(res.compressed),
        messages: Vec::new(),
    })
}

impl Checker<'_> {
    /// QEMU's `qcow2_check_read_snapshot_table`; false when it could not be
    /// read (a check error).
    fn read_snapshot_table(&mut self) -> bool {
        let g = self.m.g;
        let head = match self.m.read_meta(60, 12) {
            Ok(h) => h,
            Err(e) => {
                self.res.check_errors += 1;
                self.m.diagnostics.line(format!(
                    "ERROR failed to read the snapshot table pointer from the image header: {}",
                    e.message()
                ));
                return false;
            }
        };
        let mut count = u32::from_be_bytes(head[0..4].try_into().expect("4 bytes"));
        let offset = u64::from_be_bytes(head[4..12].try_into().expect("8 bytes"));
        let mut reduced = 0;
        if count > snapshot_table::MAX_SNAPSHOTS && self.fix_errors {
            self.m.diagnostics.line(format!(
                "Discarding {} overhanging snapshots",
                count - snapshot_table::MAX_SNAPSHOTS
            ));
            reduced += count - snapshot_table::MAX_SNAPSHOTS;
            count = snapshot_table::MAX_SNAPSHOTS;
        }
        if let Err(e) = validate_table(
            &g,
            offset,
            u64::from(count),
            snapshot_table::ENTRY_HEADER as u64,
            snapshot_table::ENTRY_HEADER as u64 * u64::from(snapshot_table::MAX_SNAPSHOTS),
            "snapshot table",
        ) {
            self.res.check_errors += 1;
            self.m.diagnostics.line(format!("ERROR {}", e.message()));
            if count > snapshot_table::MAX_SNAPSHOTS {
                self.m.diagnostics.line(format!(
                    "You can force-remove all {} overhanging snapshots with qemu-img check -r all",
                    count - snapshot_table::MAX_SNAPSHOTS
                ));
            }
            self.m.snapshots.clear();
            self.m.header.snapshots_offset = 0;
            self.m.snapshots_size = 0;
            return true;
        }
        let size = self.m.header.size;
        let m = &*self.m;
        let repair = self.fix_errors.then_some(&m.diagnostics);
        let table = snapshot_table::parse(count, size, repair, |off, len| {
            m.read_meta(offset + off, len)
        });
        let table = match table {
            Ok(t) => t,
            Err(e) => {
                self.res.check_errors += 1;
                self.m.diagnostics.line(format!(
                    "ERROR failed to read the snapshot table: {}",
                    e.message()
                ));
                self.m.snapshots.clear();
                self.m.header.snapshots_offset = 0;
                self.m.snapshots_size = 0;
                return true;
            }
        };
        reduced += table.overhanging;
        self.res.corruptions += u64::from(reduced + table.extra_dropped);
        self.m.snapshots = table.snapshots;
        self.m.snapshots_size = table.size;
        self.m.header.snapshots_offset = offset;
        if reduced > 0 {
            let n = (self.m.snapshots.len() as u32).to_be_bytes();
            if let Err(e) = self.m.write_meta(60, &n) {
                self.res.check_errors += 1;
                self.m.diagnostics.line(format!(
                    "ERROR failed to update the snapshot count in the image header: {}",
                    e.message()
                ));
                return false;
            }
            self.m.header.nb_snapshots = self.m.snapshots.len() as u32;
            self.res.corruptions_fixed += u64::from(reduced);
            self.res.corruptions -= u64::from(reduced);
        }
        if g.version >= 3 {
            for (i, sn) in self.m.snapshots.iter().enumerate() {
                if (sn.extra_data_size as usize) < snapshot_table::EXTRA_V3_MIN {
                    self.res.corruptions += 1;
                    self.m.diagnostics.line(format!(
                        "{} snapshot table entry {i} is incomplete",
                        if self.fix_errors {
                            "Repairing"
                        } else {
                            "ERROR"
                        }
                    ));
                }
            }
        }
        true
    }

    /// Adds one reference to every cluster of `[offset, offset + size)`.
    fn inc(&mut self, offset: u64, size: u64) -> Result<()> {
        if size == 0 {
            return Ok(());
        }
        let g = self.m.g;
        let file_len = self.m.file.length()?;
        if offset.saturating_add(size) as i128 - file_len as i128 >= g.cluster_size as i128 {
            self.m.diagnostics.line(format!(
                "ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset {:#x} size {:#x}",
                offset, size
            ));
            self.res.corruptions += 1;
            return Ok(());
        }
        let first = offset >> g.cluster_bits;
        let last = (offset + size - 1) >> g.cluster_bits;
        for k in first..=last {
            if k as usize >= self.imrt.len() {
                self.imrt.resize(k as usize + 1, 0);
            }
            if self.imrt[k as usize] == g.refcount_max {
                self.m.diagnostics.line(format!(
                    "ERROR: overflow cluster offset={:#x}",
                    k << g.cluster_bits
                ));
                self.m.diagnostics.line(
                    "Use qemu-img amend to increase the refcount entry width or qemu-img convert to create a clean copy if the image cannot be opened for writing",
                );
                self.res.corruptions += 1;
                continue;
            }
            self.imrt[k as usize] += 1;
        }
        Ok(())
    }

    fn check_l1(&mut self, l1_offset: u64, l1_size: u64, frag: bool, active: bool) -> Result<()> {
        if l1_size == 0 {
            return Ok(());
        }
        self.inc(l1_offset, l1_size * 8)?;
        let l1 = match self.m.read_meta(l1_offset, (l1_size * 8) as usize) {
            Ok(b) => tables::decode_entries(&b),
            Err(_) => {
                self.m
                    .diagnostics
                    .line("ERROR: I/O error in check_refcounts_l1");
                self.res.check_errors += 1;
                return Ok(());
            }
        };
        for entry in l1 {
            if entry == 0 {
                continue;
            }
            if entry & L1E_RESERVED_MASK != 0 {
                self.m.diagnostics.line(format!(
                    "ERROR found L1 entry with reserved bits set: {entry:x}"
                ));
                self.res.corruptions += 1;
            }
            let l2 = entry & L1E_OFFSET_MASK;
            self.inc(l2, self.m.g.cluster_size)?;
            if self.m.g.offset_into_cluster(l2) != 0 {
                self.m.diagnostics.line(format!(
                    "ERROR l2_offset={l2:x}: Table is not cluster aligned; L1 entry corrupted"
                ));
                self.res.corruptions += 1;
            }
            self.check_l2(l2, frag, active)?;
        }
        Ok(())
    }

    fn check_l2(&mut self, l2: u64, frag: bool, _active: bool) -> Result<()> {
        let g = self.m.g;
        let mut table = match self.m.read_meta(l2, g.cluster_size as usize) {
            Ok(b) => tables::decode_entries(&b),
            Err(_) => {
                self.m
                    .diagnostics
                    .line("ERROR: I/O error in check_refcounts_l2");
                self.res.check_errors += 1;
                return Ok(());
            }
        };
        let w = if g.extended_l2 { 2 } else { 1 };
        let mut next_contiguous = 0u64;
        for i in 0..g.l2_entries as usize {
            let mut e = table[i * w];
            let bitmap = if g.extended_l2 { table[i * w + 1] } else { 0 };
            let t = g.cluster_type(e);
            if t != ClusterType::Compressed && e & L2E_STD_RESERVED_MASK != 0 {
                self.m.diagnostics.line(format!(
                    "ERROR found l2 entry with reserved bits set: {e:x}"
                ));
                self.res.corruptions += 1;
            }
            match t {
                ClusterType::Compressed => {
                    if e & OFLAG_COPIED != 0 {
                        self.m.diagnostics.line(format!(
                            "ERROR: coffset={:#x}: copied flag must never be set for compressed clusters",
                            e & g.cluster_offset_mask
                        ));
                        e &= !OFLAG_COPIED;
                        self.res.corruptions += 1;
                    }
                    if g.has_data_file {
                        self.m.diagnostics.line(format!(
                            "ERROR compressed cluster {i} with data file, entry={e:#x}"
                        ));
                        self.res.corruptions += 1;
                        continue;
                    }
                    if bitmap != 0 {
                        self.m.diagnostics.line(format!(
                            "ERROR compressed cluster {i} with non-zero subcluster allocation bitmap, entry={e:#x}"
                        ));
                        self.res.corruptions += 1;
                        continue;
                    }
                    let (off, len) = g.compressed_extent(e);
                    self.inc(off, len)?;
                    if frag {
                        self.res.allocated += 1;
                        self.res.compressed += 1;
                        self.res.fragmented += 1;
                    }
                }
                ClusterType::ZeroAlloc | ClusterType::Normal => {
                    let off = e & L2E_OFFSET_MASK;
                    if (bitmap >> 32) & bitmap != 0 {
                        self.res.corruptions += 1;
                        self.m.diagnostics.line(format!(
                            "ERROR offset={off:x}: Allocated cluster has corrupted subcluster allocation bitmap"
                        ));
                    }
                    if g.offset_into_cluster(off) != 0 {
                        self.res.corruptions += 1;
                        let contains_data = if g.extended_l2 {
                            bitmap & tables::BITMAP_ALL_ALLOC != 0
                        } else {
                            e & OFLAG_ZERO == 0
                        };
                        if !contains_data {
                            self.m.diagnostics.line(format!(
                                "{} offset={off:x}: Preallocated cluster is not properly aligned; L2 entry corrupted.",
                                if self.fix_errors {
                                    "Repairing"
                                } else {
                                    "ERROR"
                                }
                            ));
                            if self.fix_errors {
                                if g.extended_l2 {
                                    table[i * w + 1] =
                                        (bitmap | (bitmap << 32)) & tables::BITMAP_ALL_ZEROES;
                                    table[i * w] = 0;
                                } else {
                                    table[i * w] = OFLAG_ZERO;
                                }
                                let at = l2 + i as u64 * g.l2_entry_bytes;
                                let bytes = tables::encode_entries(&table[i * w..i * w + w]);
                                if self.m.write_meta(at, &bytes).is_ok() {
                                    self.m.forget_table(l2);
                                    self.res.corruptions -= 1;
                                    self.res.corruptions_fixed += 1;
                                    continue;
                                }
                                self.res.check_errors += 1;
                            }
                        } else {
                            self.m.diagnostics.line(format!(
                                "ERROR offset={off:x}: Data cluster is not properly aligned; L2 entry corrupted."
                            ));
                        }
                    }
                    if frag {
                        self.res.allocated += 1;
                        if next_contiguous != 0 && off != next_contiguous {
                            self.res.fragmented += 1;
                        }
                        next_contiguous = off + g.cluster_size;
                    }
                    if !g.has_data_file {
                        self.inc(off, g.cluster_size)?;
                    }
                }
                ClusterType::ZeroPlain => {}
                ClusterType::Unallocated => {
                    if bitmap & tables::BITMAP_ALL_ALLOC != 0 {
                        self.res.corruptions += 1;
                        self.m.diagnostics.line(
                            "ERROR: Unallocated cluster has non-zero subcluster allocation map",
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// Counts every reference the image makes (QEMU's
    /// `calculate_refcounts`); sets `rebuild` when the refcount structure
    /// itself is broken.
    fn calculate(&mut self, rebuild: &mut bool, fix_errors: bool) -> Result<()> {
        let g = self.m.g;
        self.inc(0, g.cluster_size)?;
        let (l1_off, l1_size) = (self.m.header.l1_table_offset, self.m.l1.len() as u64);
        self.check_l1(l1_off, l1_size, true, true)?;
        if g.has_data_file && !self.m.snapshots.is_empty() {
            self.m.diagnostics.line(format!(
                "ERROR {} snapshots in image with data file",
                self.m.snapshots.len()
            ));
            self.res.corruptions += 1;
        }
        for sn in self.m.snapshots.clone() {
            if g.offset_into_cluster(sn.l1_table_offset) != 0 {
                self.m.diagnostics.line(format!(
                    "ERROR snapshot {} ({}) l1_offset={}: L1 table is not cluster aligned; snapshot table entry corrupted",
                    sn.id,
                    sn.name,
                    hex(sn.l1_table_offset)
                ));
                self.res.corruptions += 1;
                continue;
            }
            if u64::from(sn.l1_size) > tables::MAX_L1_BYTES / 8 {
                self.m.diagnostics.line(format!(
                    "ERROR snapshot {} ({}) l1_size={}: L1 table is too large; snapshot table entry corrupted",
                    sn.id,
                    sn.name,
                    hex(u64::from(sn.l1_size))
                ));
                self.res.corruptions += 1;
                continue;
            }
            self.check_l1(sn.l1_table_offset, u64::from(sn.l1_size), false, false)?;
        }
        let (so, ss) = (self.m.header.snapshots_offset, self.m.snapshots_size);
        self.inc(so, ss)?;
        let (ro, rl) = (
            self.m.header.refcount_table_offset,
            self.m.reftable.len() as u64 * 8,
        );
        self.inc(ro, rl)?;
        if let Some((co, cl)) = self.m.header.crypto_header {
            self.inc(co, cl)?;
        }
        if let Some(ext) = self.m.header.bitmaps {
            let size = self.m.header.size / 512 * 512;
            self.inc(ext.directory_offset, ext.directory_size)?;
            let list = self
                .m
                .read_meta(ext.directory_offset, ext.directory_size as usize)
                .and_then(|dir| super::bitmaps::parse_directory(&ext, &dir, g.cluster_size, size));
            if let Err(e) = &list {
                // QEMU refuses to open such an image; its check counts one
                // corruption for a bitmap directory it cannot load.
                self.m
                    .diagnostics
                    .line(format!("ERROR bitmap directory: {}", e.message()));
                self.res.corruptions += 1;
            }
            if let Ok(list) = list {
                for bm in list {
                    let len = u64::from(bm.table_size) * 8;
                    self.inc(bm.table_offset, len)?;
                    if let Ok(t) = self.m.read_meta(bm.table_offset, len as usize) {
                        for off in super::bitmaps::table_clusters(&t) {
                            self.inc(off, g.cluster_size)?;
                        }
                    }
                }
            }
        }
        self.check_refblocks(rebuild, fix_errors)
    }

    fn check_refblocks(&mut self, rebuild: &mut bool, fix_errors: bool) -> Result<()> {
        let g = self.m.g;
        for i in 0..self.m.reftable.len() {
            let raw = self.m.reftable[i];
            let off = raw & REFT_OFFSET_MASK;
            let cluster = off >> g.cluster_bits;
            if raw & REFT_RESERVED_MASK != 0 {
                self.m.diagnostics.line(format!(
                    "ERROR refcount table entry {i} has reserved bits set"
                ));
                self.res.corruptions += 1;
                *rebuild = true;
                continue;
            }
            if g.offset_into_cluster(off) != 0 {
                self.m.diagnostics.line(format!(
                    "ERROR refcount block {i} is not cluster aligned; refcount table entry corrupted"
                ));
                self.res.corruptions += 1;
                *rebuild = true;
                continue;
            }
            let nb_clusters = self.imrt.len() as u64;
            if cluster >= nb_clusters {
                self.res.corruptions += 1;
                self.m.diagnostics.line(format!(
                    "{} refcount block {i} is outside image",
                    if fix_errors { "Repairing" } else { "ERROR" }
                ));
                if fix_errors {
                    match self.m.file.set_len(
                        off + g.cluster_size,
                        crate::block::driver::Preallocation::Off,
                    ) {
                        Ok(()) => {
                            let size = self.m.file.length()?;
                            let n = g.size_to_clusters(size) as usize;
                            if self.imrt.len() < n {
                                self.imrt.resize(n, 0);
                            }
                            self.res.corruptions -= 1;
                            self.res.corruptions_fixed += 1;
                            self.inc(off, g.cluster_size)?;
                        }
                        Err(e) => {
                            *rebuild = true;
                            self.m
                                .diagnostics
                                .line(format!("ERROR could not resize image: {}", e.message()));
                        }
                    }
                }
                continue;
            }
            if off != 0 {
                self.inc(off, g.cluster_size)?;
                let rc = self.imrt[cluster as usize];
                if rc != 1 {
                    self.m
                        .diagnostics
                        .line(format!("ERROR refcount block {i} refcount={rc}"));
                    self.res.corruptions += 1;
                    *rebuild = true;
                }
            }
        }
        Ok(())
    }

    /// Compares counted and stored refcounts; returns the highest cluster
    /// in use (QEMU's `compare_refcounts`).
    fn compare(&mut self, fix_leaks: bool, fix_errors: bool, rebuild: &mut bool) -> u64 {
        let mut highest = 0;
        for i in 0..self.imrt.len() as u64 {
            let rc1 = match self.m.get_refcount(i) {
                Ok(r) => r,
                Err(e) => {
                    self.m.diagnostics.line(format!(
                        "Can't get refcount for cluster {i}: {}",
                        e.message()
                    ));
                    self.res.check_errors += 1;
                    continue;
                }
            };
            let rc2 = self.imrt[i as usize];
            if rc1 > 0 || rc2 > 0 {
                highest = i;
            }
            if rc1 == rc2 {
                continue;
            }
            #[derive(PartialEq)]
            enum Fix {
                None,
                Leak,
                Error,
            }
            let fix = if rc1 == 0 {
                *rebuild = true;
                Fix::None
            } else if rc1 > rc2 && fix_leaks {
                Fix::Leak
            } else if rc1 < rc2 && fix_errors {
                Fix::Error
            } else {
                Fix::None
            };
            let what = if fix != Fix::None {
                "Repairing"
            } else if rc1 < rc2 {
                "ERROR"
            } else {
                "Leaked"
            };
            self.m
                .diagnostics
                .line(format!("{what} cluster {i} refcount={rc1} reference={rc2}"));
            if fix != Fix::None {
                let cs = self.m.g.cluster_size;
                self.m.discard_freed = true;
                let ok = self
                    .m
                    .update_refcount(i * cs, 1, rc1.abs_diff(rc2), rc1 > rc2)
                    .is_ok();
                self.m.discard_freed = false;
                if ok {
                    if fix == Fix::Leak {
                        self.res.leaks_fixed += 1;
                    } else {
                        self.res.corruptions_fixed += 1;
                    }
                    continue;
                }
            }
            if rc1 < rc2 {
                self.res.corruptions += 1;
            } else {
                self.res.leaks += 1;
            }
        }
        highest
    }

    fn check_refcounts(&mut self) -> Result<Option<u64>> {
        let g = self.m.g;
        let size = self.m.file.length()?;
        self.imrt = vec![0; g.size_to_clusters(size) as usize];
        let mut rebuild = false;
        self.calculate(&mut rebuild, self.fix_errors)?;
        let pre_compare = self.res.clone();
        let mut highest = self.compare(false, false, &mut rebuild);
        if rebuild && self.fix_errors {
            let old = self.res.clone();
            self.m.diagnostics.line("Rebuilding refcount structure");
            if let Err(e) = self.rebuild() {
                self.m.diagnostics.error(e.message());
                self.res.check_errors += 1;
                return Ok(None);
            }
            self.res.corruptions = 0;
            self.res.leaks = 0;
            let mut again = false;
            let n = self.imrt.len();
            self.imrt = vec![0; n];
            let keep = self.res.clone();
            self.res = Res::default();
            self.calculate(&mut again, false)?;
            let mut fresh_leaks = 0;
            if self.fix_leaks {
                let saved = self.res.clone();
                self.res = Res::default();
                highest = self.compare(true, false, &mut again);
                if again {
                    self.m
                        .diagnostics
                        .line("ERROR rebuilt refcount structure is still broken");
                }
                fresh_leaks = self.res.leaks;
                self.res = saved;
            }
            let counted = self.res.clone();
            self.res = keep;
            self.res.allocated = counted.allocated;
            self.res.fragmented = counted.fragmented;
            self.res.compressed = counted.compressed;
            self.res.corruptions = counted.corruptions;
            self.res.leaks = counted.leaks;
            if self.res.corruptions < old.corruptions {
                self.res.corruptions_fixed += old.corruptions - self.res.corruptions;
            }
            if self.res.leaks < old.leaks {
                self.res.leaks_fixed += old.leaks - self.res.leaks;
            }
            self.res.leaks += fresh_leaks;
        } else if self.fix_leaks {
            if rebuild {
                self.m
                    .diagnostics
                    .line("ERROR need to rebuild refcount structures");
                self.res.check_errors += 1;
                return Err(crate::error::Error::os(
                    crate::error::ErrorKind::Io,
                    libc::EIO,
                ));
            }
            if self.res.leaks > 0 || self.res.corruptions > 0 {
                self.res = pre_compare;
                highest = self.compare(self.fix_leaks, self.fix_errors, &mut rebuild);
            }
        }
        self.check_copied()?;
        Ok(Some((highest + 1) * g.cluster_size))
    }

    /// Checks (and repairs) the copied flags of the active tables (QEMU's
    /// `check_oflag_copied`).
    fn check_copied(&mut self) -> Result<()> {
        let g = self.m.g;
        let repair = if self.fix_errors {
            true
        } else if self.fix_leaks {
            self.res.check_errors == 0 && self.res.corruptions == 0 && self.res.leaks == 0
        } else {
            false
        };
        let what = if repair { "Repairing" } else { "ERROR" };
        for i in 0..self.m.l1.len() {
            let entry = self.m.l1[i];
            let l2 = entry & L1E_OFFSET_MASK;
            if l2 == 0 {
                continue;
            }
            let Ok(rc) = self.m.get_refcount(l2 >> g.cluster_bits) else {
                continue;
            };
            if (rc == 1) != (entry & OFLAG_COPIED != 0) {
                self.res.corruptions += 1;
                self.m.diagnostics.line(format!(
                    "{what} OFLAG_COPIED L2 cluster: l1_index={i} l1_entry={entry:x} refcount={rc}"
                ));
                if repair {
                    self.m.l1[i] = if rc == 1 {
                        entry | OFLAG_COPIED
                    } else {
                        entry & !OFLAG_COPIED
                    };
                    if self.m.write_l1_entry(i).is_err() {
                        self.res.check_errors += 1;
                        return Ok(());
                    }
                    self.res.corruptions -= 1;
                    self.res.corruptions_fixed += 1;
                }
            }
            let Ok(bytes) = self.m.read_meta(l2, g.cluster_size as usize) else {
                self.m
                    .diagnostics
                    .line("ERROR: Could not read L2 table: Input/output error");
                self.res.check_errors += 1;
                return Ok(());
            };
            let mut table = tables::decode_entries(&bytes);
            let w = if g.extended_l2 { 2 } else { 1 };
            let mut dirty = 0;
            for j in 0..g.l2_entries as usize {
                let e = table[j * w];
                let t = g.cluster_type(e);
                if !matches!(t, ClusterType::Normal | ClusterType::ZeroAlloc) {
                    continue;
                }
                let rc = if g.has_data_file {
                    1
                } else {
                    match self.m.get_refcount((e & L2E_OFFSET_MASK) >> g.cluster_bits) {
                        Ok(r) => r,
                        Err(_) => continue,
                    }
                };
                if (rc == 1) != (e & OFLAG_COPIED != 0) {
                    self.res.corruptions += 1;
                    self.m.diagnostics.line(format!(
                        "{what} OFLAG_COPIED data cluster: l2_entry={e:x} refcount={rc}"
                    ));
                    if repair {
                        table[j * w] = if rc == 1 {
                            e | OFLAG_COPIED
                        } else {
                            e & !OFLAG_COPIED
                        };
                        dirty += 1;
                    }
                }
            }
            if dirty > 0 {
                if let Err(e) = self.m.write_meta(l2, &tables::encode_entries(&table)) {
                    self.m
                        .diagnostics
                        .line(format!("ERROR: Could not write L2 table: {}", e.message()));
                    self.res.check_errors += 1;
                    return Ok(());
                }
                self.m.forget_table(l2);
                self.res.corruptions -= dirty;
                self.res.corruptions_fixed += dirty;
            }
        }
        Ok(())
    }

    /// Finds `count` free clusters in the in-memory table from `*first`,
    /// growing it past the end if needed, and takes them.
    fn alloc_imrt(&mut self, count: u64, first: &mut u64) -> u64 {
        let mut cluster = *first;
        let mut run = 0;
        let mut first_gap = true;
        while cluster < self.imrt.len() as u64 && run < count {
            if self.imrt[cluster as usize] == 0 {
                run += 1;
                if first_gap {
                    *first = cluster;
                    first_gap = false;
                }
            } else {
                run = 0;
            }
            cluster += 1;
        }
        if run < count {
            let need = (cluster + count - run) as usize;
            if self.imrt.len() < need {
                self.imrt.resize(need, 0);
            }
        }
        let start = cluster - run;
        for i in 0..count {
            self.imrt[(start + i) as usize] = 1;
        }
        start << self.m.g.cluster_bits
    }

    fn write_refblocks(&mut self, from: u64, to: u64, reftable: &mut Vec<u64>) -> Result<bool> {
        let g = self.m.g;
        let per_block = g.refblock_entries();
        let mut grown = false;
        let mut first_free = 0;
        let mut end = to;
        let mut cluster = from;
        while cluster < end {
            if self.imrt.get(cluster as usize).copied().unwrap_or(0) == 0 {
                cluster += 1;
                continue;
            }
            let index = cluster / per_block;
            let start = index * per_block;
            let offset = if (index as usize) < reftable.len() && reftable[index as usize] != 0 {
                reftable[index as usize]
            } else {
                first_free = first_free.max(start);
                let off = self.alloc_imrt(1, &mut first_free);
                if off / g.cluster_size >= end {
                    end = off / g.cluster_size + 1;
                }
                if reftable.len() <= index as usize {
                    let entries = ((index + 1) * 8).div_ceil(g.cluster_size) * g.cluster_size / 8;
                    reftable.resize(entries as usize, 0);
                    grown = true;
                }
                reftable[index as usize] = off;
                off
            };
            let mut block = vec![0u8; g.cluster_size as usize];
            for j in 0..per_block {
                let v = self.imrt.get((start + j) as usize).copied().unwrap_or(0);
                super::refcount::set(g.refcount_order, &mut block, j, v);
            }
            self.m.file.write_at(&block, offset)?;
            cluster = start + per_block;
        }
        Ok(grown)
    }

    /// Writes fresh refcount structures from the in-memory counts (QEMU's
    /// `rebuild_refcount_structure`); the old ones leak and are repaired by
    /// the recount.
    fn rebuild(&mut self) -> Result<()> {
        let g = self.m.g;
        self.m.clear_caches();
        let mut reftable = Vec::new();
        let n = self.imrt.len() as u64;
        self.write_refblocks(0, n, &mut reftable)?;
        let (offset, clusters) = loop {
            let clusters = (reftable.len() as u64 * 8).div_ceil(g.cluster_size);
            let mut first = 0;
            let offset = self.alloc_imrt(clusters, &mut first);
            let start = offset / g.cluster_size;
            if !self.write_refblocks(start, start + clusters, &mut reftable)? {
                break (offset, clusters);
            }
        };
        self.m
            .file
            .write_at(&tables::encode_entries(&reftable), offset)?;
        let mut hdr = offset.to_be_bytes().to_vec();
        hdr.extend_from_slice(&(clusters as u32).to_be_bytes());
        self.m.file.write_at(&hdr, 48)?;
        self.m.file.flush()?;
        self.m.reftable = reftable;
        self.m.header.refcount_table_offset = offset;
        self.m.header.refcount_table_clusters = clusters as u32;
        self.m.update_max_reftable_index();
        self.m.clear_caches();
        Ok(())
    }
}
