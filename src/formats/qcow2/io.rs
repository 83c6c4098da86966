//! Guest I/O: reads, allocating writes with copy-on-write, zero writes,
//! discards and compressed writes.
//!
//! A write is planned under the metadata lock (clusters looked up, new ones
//! allocated, the range registered as in flight), performed without it
//! (copy-on-write reads through the old mapping, then the data), and
//! committed under the lock again (L2 entries updated, old clusters
//! released). Every write is in flight until its data is on disk; writes,
//! discards and zero writes that overlap one in flight wait for it.

use std::sync::MutexGuard;

use crate::error::{Error, ErrorKind, Result};
use crate::formats::qcow2::Qcow2Image;
use crate::formats::qcow2::compression;
use crate::formats::qcow2::header::hex;
use crate::formats::qcow2::metadata::{Mapping, Meta};
use crate::formats::qcow2::tables::{
    self, BITMAP_ALL_ZEROES, ClusterType, L2E_OFFSET_MASK, OFLAG_COPIED, OFLAG_ZERO, SubclusterType,
};

/// Fills `buf` from guest offset `offset` (no range check: copy-on-write
/// reads may touch the tail of the last cluster past the image end).
pub fn read(img: &Qcow2Image, buf: &mut [u8], offset: u64) -> Result<()> {
    let mut pos = 0usize;
    while pos < buf.len() {
        let off = offset + pos as u64;
        let (mapping, n) = img.lock().map(off, (buf.len() - pos) as u64)?;
        let n = (n.max(1) as usize).min(buf.len() - pos);
        let chunk = &mut buf[pos..pos + n];
        match mapping {
            Mapping::Zero => chunk.fill(0),
            Mapping::Unallocated => read_backing(img, chunk, off)?,
            Mapping::Data(host) => img.read_data(chunk, host, off)?,
            Mapping::Compressed(entry) => read_compressed(img, entry, off, chunk)?,
        }
        pos += n;
    }
    Ok(())
}

fn read_backing(img: &Qcow2Image, chunk: &mut [u8], off: u64) -> Result<()> {
    let Some(backing) = img.backing_image() else {
        chunk.fill(0);
        return Ok(());
    };
    let size = backing.size();
    let inside = size.saturating_sub(off).min(chunk.len() as u64) as usize;
    if inside > 0 {
        backing.read_at(&mut chunk[..inside], off)?;
    }
    chunk[inside..].fill(0);
    Ok(())
}

fn read_compressed(img: &Qcow2Image, entry: u64, off: u64, chunk: &mut [u8]) -> Result<()> {
    let g = img.geometry();
    let (coffset, csize) = g.compressed_extent(entry);
    let mut src = vec![0u8; csize as usize];
    img.container().read_at(&mut src, coffset)?;
    let mut cluster = vec![0u8; g.cluster_size as usize];
    compression::decompress(g.compression, &src, &mut cluster)?;
    let at = g.offset_into_cluster(off) as usize;
    chunk.copy_from_slice(&cluster[at..at + chunk.len()]);
    Ok(())
}

/// One step of a write: where its bytes go and what metadata must change.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Cluster-aligned guest offset of the first cluster.
    guest: u64,
    clusters: u64,
    /// Host offset of the first cluster.
    host: u64,
    /// Copy-on-write ranges relative to `guest`: `[from, to)`.
    cow_start: (u64, u64),
    cow_end: (u64, u64),
    /// The clusters are already allocated to this image and written in
    /// place (refcount 1).
    keep_old: bool,
    /// False for a plain in-place overwrite that changes no metadata.
    needs_meta: bool,
    /// Request bytes this step covers.
    len: u64,
}

impl Plan {
    fn range(&self, cluster_size: u64) -> (u64, u64) {
        (self.guest, self.guest + self.clusters * cluster_size)
    }
}

/// True when writing needs a fresh cluster: unallocated, compressed, zero
/// without a host cluster, or shared (refcount > 1).
fn needs_new_alloc(img: &Qcow2Image, entry: u64) -> bool {
    match img.geometry().cluster_type(entry) {
        ClusterType::Normal | ClusterType::ZeroAlloc => entry & OFLAG_COPIED == 0,
        _ => true,
    }
}

fn invalid_entry(m: &mut Meta, l2: u64, index: usize) -> Error {
    m.corruption(
        true,
        format!(
            "Invalid cluster entry found  (L2 offset: {}, L2 index: {})",
            hex(l2),
            hex(index as u64)
        ),
    )
}

/// Waits until no in-flight allocation overlaps the clusters from `off`;
/// returns how many of `len` bytes may be planned before the next one.
fn wait_for_dependencies<'a>(
    img: &'a Qcow2Image,
    mut m: MutexGuard<'a, Meta>,
    off: u64,
    len: u64,
) -> (MutexGuard<'a, Meta>, u64) {
    let g = img.geometry();
    loop {
        let start = g.start_of_cluster(off);
        let end = (off + len).div_ceil(g.cluster_size) * g.cluster_size;
        let first = m
            .inflight
            .iter()
            .filter(|(s, e)| *s < end && *e > start)
            .map(|(s, _)| *s)
            .min();
        match first {
            None => return (m, len),
            Some(s) if s > start => return (m, (s - off).min(len)),
            Some(_) => {
                m = img.settled.wait(m).unwrap_or_else(|p| p.into_inner());
            }
        }
    }
}

fn plan_write(img: &Qcow2Image, m: &mut Meta, off: u64, remaining: u64) -> Result<Plan> {
    let g = img.geometry();
    let cs = g.cluster_size;
    let in_cluster = g.offset_into_cluster(off);
    let index = g.l2_index(off);
    let nb = g
        .size_to_clusters(in_cluster + remaining)
        .min(g.l2_entries - index as u64);
    let l2 = m.l2_for_write(off)?;
    let (e0, _) = m.l2_entry(l2, index)?;
    let keep_old = !needs_new_alloc(img, e0);
    let (host, n) = if keep_old {
        let host = e0 & L2E_OFFSET_MASK;
        if g.offset_into_cluster(host) != 0 {
            let what = if e0 & OFLAG_ZERO != 0 {
                "Preallocated zero"
            } else {
                "Data"
            };
            return Err(m.corruption(
                true,
                format!(
                    "{what} cluster offset {} unaligned (guest offset: {})",
                    hex(host),
                    hex(off)
                ),
            ));
        }
        let mut n = 1;
        while n < nb {
            let (e, _) = m.l2_entry(l2, index + n as usize)?;
            if needs_new_alloc(img, e) || e & L2E_OFFSET_MASK != host + n * cs {
                break;
            }
            n += 1;
        }
        (host, n)
    } else {
        let mut n = 1;
        while n < nb && needs_new_alloc(img, m.l2_entry(l2, index + n as usize)?.0) {
            n += 1;
        }
        let host = if g.has_data_file {
            g.start_of_cluster(off)
        } else {
            m.alloc_clusters(n * cs)?
        };
        (host, n)
    };
    let len = remaining.min(n * cs - in_cluster);
    let clusters = g.size_to_clusters(in_cluster + len);
    let (cow_start_to, cow_end_from) = (in_cluster, in_cluster + len);
    let mut skip_cow = keep_old;
    for i in 0..clusters {
        let (e, b) = m.l2_entry(l2, index + i as usize)?;
        if skip_cow {
            let from = cow_start_to.max(i * cs);
            let to = cow_end_from.min((i + 1) * cs);
            let (first_sc, last_sc) = (g.sc_index(from), g.sc_index(to - 1));
            let (t, count) = g.subcluster_run(e, b, first_sc);
            if t == SubclusterType::Invalid {
                return Err(invalid_entry(m, l2, index + i as usize));
            }
            if t != SubclusterType::Normal || first_sc + count <= last_sc {
                skip_cow = false;
            }
        } else if g.subcluster_type(e, b, 0) == SubclusterType::Invalid {
            return Err(invalid_entry(m, l2, index + i as usize));
        }
    }
    let mut plan = Plan {
        guest: off - in_cluster,
        clusters,
        host,
        cow_start: (cow_start_to, cow_start_to),
        cow_end: (cow_end_from, cow_end_from),
        keep_old,
        needs_meta: !skip_cow,
        len,
    };
    if skip_cow {
        return Ok(plan);
    }
    let sc_size = g.subcluster_size();
    let (e, b) = m.l2_entry(l2, index)?;
    let sc = g.sc_index(off);
    let t = g.subcluster_type(e, b, sc);
    let alloc_bits = (b & tables::BITMAP_ALL_ALLOC) as u32;
    let cow_start_from = match (keep_old, t) {
        (false, SubclusterType::Compressed) => 0,
        (
            false,
            SubclusterType::Normal | SubclusterType::ZeroAlloc | SubclusterType::UnallocatedAlloc,
        ) => {
            if g.extended_l2 {
                u64::from(sc.min(alloc_bits.trailing_zeros())) << g.subcluster_bits
            } else {
                0
            }
        }
        (false, _) => u64::from(sc) << g.subcluster_bits,
        (true, SubclusterType::Normal) => cow_start_to,
        (true, _) => u64::from(sc) << g.subcluster_bits,
    };
    let last = index + clusters as usize - 1;
    let (e, b) = m.l2_entry(l2, last)?;
    let sc = g.sc_index(off + len - 1);
    let t = g.subcluster_type(e, b, sc);
    let alloc_bits = (b & tables::BITMAP_ALL_ALLOC) as u32;
    let cow_end_to = match (keep_old, t) {
        (false, SubclusterType::Compressed) => cow_end_from.div_ceil(cs) * cs,
        (
            false,
            SubclusterType::Normal | SubclusterType::ZeroAlloc | SubclusterType::UnallocatedAlloc,
        ) => {
            let mut end = cow_end_from.div_ceil(cs) * cs;
            if g.extended_l2 {
                let skip = (g.subclusters - sc - 1).min(alloc_bits.leading_zeros());
                end -= u64::from(skip) << g.subcluster_bits;
            }
            end
        }
        (false, _) => cow_end_from.div_ceil(sc_size) * sc_size,
        (true, SubclusterType::Normal) => cow_end_from,
        (true, _) => cow_end_from.div_ceil(sc_size) * sc_size,
    };
    plan.cow_start = (cow_start_from, cow_start_to);
    plan.cow_end = (cow_end_from, cow_end_to);
    Ok(plan)
}

/// Links the clusters of a completed allocation into the L2 table and
/// releases what they replace (QEMU's `qcow2_alloc_cluster_link_l2`).
fn commit(img: &Qcow2Image, m: &mut Meta, plan: &Plan, prealloc: bool) -> Result<()> {
    let g = img.geometry();
    let cs = g.cluster_size;
    img.mark_dirty(m)?;
    let l2 = m.l2_for_write(plan.guest)?;
    let index = g.l2_index(plan.guest);
    let mut old = Vec::new();
    for i in 0..plan.clusters {
        let (e, mut b) = m.l2_entry(l2, index + i as usize)?;
        if !plan.keep_old && e != 0 {
            old.push(e);
        }
        if g.extended_l2 && !prealloc {
            let from = plan.cow_start.0.max(i * cs);
            let to = plan.cow_end.1.min((i + 1) * cs);
            let (first, last) = (g.sc_index(from), g.sc_index(to - 1));
            b |= tables::alloc_range(first, last + 1);
            b &= !tables::zero_range(first, last + 1);
        }
        m.set_l2_entry(
            l2,
            index + i as usize,
            (plan.host + i * cs) | OFLAG_COPIED,
            b,
        )?;
    }
    m.write_l2(l2, index, index + plan.clusters as usize)?;
    for e in old {
        m.free_any_cluster(e);
    }
    Ok(())
}

/// Writes `buf` at guest offset `offset`.
pub fn write(img: &Qcow2Image, buf: &[u8], offset: u64) -> Result<()> {
    const SECTOR: u64 = 512;
    let end = offset + buf.len() as u64;
    if img.encrypted() && !(offset.is_multiple_of(SECTOR) && end.is_multiple_of(SECTOR)) {
        // Encrypted sectors are written whole: read, merge, write (QEMU's
        // 512-byte request alignment for encrypted images).
        let _rmw = img.rmw.lock().unwrap_or_else(|p| p.into_inner());
        let start = offset / SECTOR * SECTOR;
        let mut whole =
            zeroize::Zeroizing::new(vec![0u8; (end.next_multiple_of(SECTOR) - start) as usize]);
        read(img, &mut whole, start)?;
        let skip = (offset - start) as usize;
        whole[skip..skip + buf.len()].copy_from_slice(buf);
        return write(img, &whole, start);
    }
    let mut pos = 0u64;
    let total = buf.len() as u64;
    while pos < total {
        let step = step(img, offset + pos, total - pos, Some(&buf[pos as usize..]))?;
        pos += step.1;
    }
    Ok(())
}

/// Allocates clusters for `[off, off + len)` without writing guest data
/// (metadata preallocation). Returns the host offset where the covered
/// range ends and how many bytes it covers.
pub fn allocate_only(img: &Qcow2Image, off: u64, len: u64) -> Result<(u64, u64)> {
    step(img, off, len, None)
}

/// Plans, performs and commits one run of a write; `data` is the rest of
/// the request (None: allocate only). Returns (host end, bytes covered).
fn step(img: &Qcow2Image, off: u64, remaining: u64, data: Option<&[u8]>) -> Result<(u64, u64)> {
    let g = img.geometry();
    // Every step is in flight until its data is on disk, plain in-place
    // overwrites too: a discard or zero write waits for them before it may
    // free their clusters (which could otherwise be reused elsewhere and
    // then receive this step's data).
    let plan = {
        let m = img.lock();
        let (mut m, limit) = wait_for_dependencies(img, m, off, remaining);
        let plan = plan_write(img, &mut m, off, limit)?;
        m.inflight.push(plan.range(g.cluster_size));
        plan
    };
    let host_data = plan.host + g.offset_into_cluster(off);
    let data = data.map(|d| &d[..plan.len as usize]);
    let result = if plan.needs_meta {
        write_with_cow(img, &plan, data, host_data, off).and_then(|()| {
            let mut m = img.lock();
            commit(img, &mut m, &plan, data.is_none())
        })
    } else {
        data.map_or(Ok(()), |d| img.write_data(d, host_data, off))
    };
    let mut m = img.lock();
    if result.is_err() && !plan.keep_old && !g.has_data_file {
        m.free_clusters(plan.host, plan.clusters * g.cluster_size);
    }
    let range = plan.range(g.cluster_size);
    if let Some(i) = m.inflight.iter().position(|r| *r == range) {
        m.inflight.swap_remove(i);
    }
    drop(m);
    img.settled.notify_all();
    result?;
    Ok((host_data + plan.len, plan.len))
}

fn write_with_cow(
    img: &Qcow2Image,
    plan: &Plan,
    data: Option<&[u8]>,
    host_data: u64,
    guest_data: u64,
) -> Result<()> {
    let (head_from, head_to) = plan.cow_start;
    let (tail_from, tail_to) = plan.cow_end;
    if head_to > head_from {
        let mut head = vec![0u8; (head_to - head_from) as usize];
        read(img, &mut head, plan.guest + head_from)?;
        img.write_data(&head, plan.host + head_from, plan.guest + head_from)?;
    }
    if let Some(d) = data {
        img.write_data(d, host_data, guest_data)?;
    }
    if tail_to > tail_from {
        let mut tail = vec![0u8; (tail_to - tail_from) as usize];
        read(img, &mut tail, plan.guest + tail_from)?;
        img.write_data(&tail, plan.host + tail_from, plan.guest + tail_from)?;
    }
    Ok(())
}

/// Writes zeros as data (for unaligned edges and when the format cannot
/// mark zeros).
fn write_zero_data(img: &Qcow2Image, offset: u64, len: u64) -> Result<()> {
    const CHUNK: u64 = 1 << 20;
    let zeros = vec![0u8; CHUNK.min(len) as usize];
    let mut pos = offset;
    while pos < offset + len {
        let n = CHUNK.min(offset + len - pos);
        write(img, &zeros[..n as usize], pos)?;
        pos += n;
    }
    Ok(())
}

/// Holds the lock with no in-flight allocation overlapping `[start, end)`.
fn lock_range(img: &Qcow2Image, start: u64, end: u64) -> MutexGuard<'_, Meta> {
    let mut m = img.lock();
    while m.inflight.iter().any(|(s, e)| *s < end && *e > start) {
        m = img.settled.wait(m).unwrap_or_else(|p| p.into_inner());
    }
    m
}

pub fn write_zeroes(img: &Qcow2Image, offset: u64, len: u64, may_unmap: bool) -> Result<()> {
    let g = img.geometry();
    let size = img.current_size();
    let end = offset + len;
    let sc = g.subcluster_size();
    let has_backing = img.backing_image().is_some() || img.lock().has_backing;
    if g.version < 3 && has_backing {
        return write_zero_data(img, offset, len);
    }
    // Unaligned edges are written as data; the aligned middle is zeroed in
    // the metadata.
    let mid_start = offset.div_ceil(sc) * sc;
    let mid_end = if end >= size { end } else { end / sc * sc };
    if mid_start >= mid_end {
        return write_zero_data(img, offset, len);
    }
    if mid_start > offset {
        write_zero_data(img, offset, mid_start - offset)?;
    }
    zeroize(img, mid_start, mid_end - mid_start, may_unmap)?;
    if end > mid_end {
        write_zero_data(img, mid_end, end - mid_end)?;
    }
    Ok(())
}

/// Zeroes a subcluster-aligned range in the metadata (QEMU's
/// `qcow2_subcluster_zeroize`).
fn zeroize(img: &Qcow2Image, offset: u64, bytes: u64, may_unmap: bool) -> Result<()> {
    let g = img.geometry();
    let cs = g.cluster_size;
    if g.data_file_raw {
        img.data().zero_range(offset, bytes)?;
    }
    if g.version < 3 {
        return cluster_discard(img, offset, bytes, false);
    }
    let size = img.current_size();
    let mut end = offset + bytes;
    let head = end.min(offset.div_ceil(cs) * cs) - offset;
    let start = offset + head;
    let tail = if end >= size {
        0
    } else {
        end - start.max(g.start_of_cluster(end))
    };
    end -= tail;
    let mut m = lock_range(
        img,
        g.start_of_cluster(offset),
        (offset + bytes).div_ceil(cs) * cs,
    );
    img.mark_dirty(&mut m)?;
    let mut fallback = Vec::new();
    if head > 0 && !zero_subclusters(&mut m, g, offset, head)? {
        fallback.push((offset, head));
    }
    let mut pos = start;
    while pos < end {
        // A zero write that may unmap comes from an image opened to unmap
        // (convert, commit): QEMU passes the freed clusters down as
        // discards.
        let n = rewrite_l2(&mut m, g, pos, end, may_unmap, |t, e, b| {
            let unmap = t == ClusterType::Compressed || (may_unmap && t.is_allocated());
            let mut ne = if unmap { 0 } else { e };
            let mut nb = b;
            if g.extended_l2 {
                nb = BITMAP_ALL_ZEROES;
            } else {
                ne |= OFLAG_ZERO;
            }
            (ne, nb, unmap)
        })?;
        pos += n * cs;
    }
    if tail > 0 && !zero_subclusters(&mut m, g, end, tail)? {
        fallback.push((end, tail));
    }
    drop(m);
    for (off, len) in fallback {
        write_zero_data(img, off, len)?;
    }
    Ok(())
}

/// Rewrites the L2 entries of `[pos, end)` (within one L2 table) with
/// `change(type, entry, bitmap) -> (entry, bitmap, release)`, writes the
/// table, then drops the references of changed entries marked `release`
/// (discarding the freed clusters with `discard`). Returns the clusters
/// covered.
fn rewrite_l2(
    m: &mut Meta,
    g: tables::Geometry,
    pos: u64,
    end: u64,
    discard: bool,
    change: impl Fn(ClusterType, u64, u64) -> (u64, u64, bool),
) -> Result<u64> {
    let index = g.l2_index(pos);
    let n = g
        .size_to_clusters(end - pos)
        .min(g.l2_entries - index as u64);
    let l2 = m.l2_for_write(pos)?;
    let mut old = Vec::new();
    for i in 0..n as usize {
        let (e, b) = m.l2_entry(l2, index + i)?;
        let (ne, nb, release) = change(g.cluster_type(e), e, b);
        if (ne, nb) == (e, b) {
            continue;
        }
        m.set_l2_entry(l2, index + i, ne, nb)?;
        if release {
            old.push(e);
        }
    }
    m.write_l2(l2, index, index + n as usize)?;
    m.discard_freed = discard;
    for e in old {
        m.free_any_cluster(e);
    }
    m.discard_freed = false;
    Ok(n)
}

/// Marks subclusters of one cluster as zero; false when the cluster is
/// compressed (it cannot be partly zeroed).
fn zero_subclusters(m: &mut Meta, g: tables::Geometry, offset: u64, bytes: u64) -> Result<bool> {
    let l2 = m.l2_for_write(offset)?;
    let index = g.l2_index(offset);
    let (e, b) = m.l2_entry(l2, index)?;
    if g.cluster_type(e) == ClusterType::Compressed {
        return Ok(false);
    }
    let sc = g.sc_index(offset);
    let n = bytes.div_ceil(g.subcluster_size()) as u32;
    let nb = (b | tables::zero_range(sc, sc + n)) & !tables::alloc_range(sc, sc + n);
    if nb != b {
        m.set_l2_entry(l2, index, e, nb)?;
        m.write_l2(l2, index, index + 1)?;
    }
    Ok(true)
}

pub fn discard(img: &Qcow2Image, offset: u64, len: u64) -> Result<()> {
    let g = img.geometry();
    let cs = g.cluster_size;
    let end = offset + len;
    let start = offset.div_ceil(cs) * cs;
    let stop = if end >= img.current_size() {
        end
    } else {
        end / cs * cs
    };
    if start >= stop {
        return write_zero_data(img, offset, len);
    }
    if start > offset {
        write_zero_data(img, offset, start - offset)?;
    }
    cluster_discard(img, start, stop - start, false)?;
    if end > stop {
        write_zero_data(img, stop, end - stop)?;
    }
    Ok(())
}

/// Removes clusters from the mapping (QEMU's `qcow2_cluster_discard`): with
/// `full`, they become unallocated; otherwise they read as zeros on v3.
pub fn cluster_discard(img: &Qcow2Image, offset: u64, bytes: u64, full: bool) -> Result<()> {
    let g = img.geometry();
    let cs = g.cluster_size;
    let end = offset + bytes;
    let mut m = lock_range(img, offset, end.div_ceil(cs) * cs);
    let has_backing = m.has_backing;
    img.mark_dirty(&mut m)?;
    let mut pos = offset;
    while pos < end {
        let n = rewrite_l2(&mut m, g, pos, end, full, |t, e, b| {
            let (ne, nb) = if full {
                (0, 0)
            } else if has_backing || t.is_allocated() {
                if g.extended_l2 {
                    (0, BITMAP_ALL_ZEROES)
                } else if g.version >= 3 {
                    (OFLAG_ZERO, 0)
                } else {
                    (0, 0)
                }
            } else {
                (e, b)
            };
            (ne, nb, true)
        })?;
        pos += n * cs - g.offset_into_cluster(pos);
    }
    Ok(())
}

/// Writes one cluster compressed (the last one may be short); falls back
/// to a normal write when the data does not compress or the cluster is
/// already allocated.
pub fn write_compressed(img: &Qcow2Image, buf: &[u8], offset: u64) -> Result<()> {
    if img.encrypted() {
        return Err(Error::new(
            ErrorKind::UnsupportedFeature,
            "Compressed writes to encrypted qcow2 images are not supported by rbdimg",
        ));
    }
    let g = img.geometry();
    let cs = g.cluster_size;
    let aligned = g.offset_into_cluster(offset) == 0
        && (buf.len() as u64 == cs
            || (buf.len() as u64) < cs && offset + buf.len() as u64 == img.current_size());
    if !aligned || g.has_data_file || buf.is_empty() {
        return write(img, buf, offset);
    }
    let mut cluster = vec![0u8; cs as usize];
    cluster[..buf.len()].copy_from_slice(buf);
    let Some(compressed) = compression::compress(g.compression, &cluster, cs as usize - 1)? else {
        return write(img, buf, offset);
    };
    let mut m = lock_range(img, offset, offset + cs);
    let l2 = m.l2_for_write(offset)?;
    let index = g.l2_index(offset);
    let (e, _) = m.l2_entry(l2, index)?;
    if e & L2E_OFFSET_MASK != 0 {
        drop(m);
        return write(img, buf, offset);
    }
    let coffset = m.alloc_bytes(compressed.len() as u64)?;
    if let Err(e) = img.container().write_at(&compressed, coffset) {
        m.free_clusters(coffset, compressed.len() as u64);
        return Err(e);
    }
    img.mark_dirty(&mut m)?;
    let entry = g.compressed_entry(coffset, compressed.len() as u64);
    m.set_l2_entry(l2, index, entry, 0)?;
    m.write_l2(l2, index, index + 1)
}

/// An error for writes the format cannot take.
pub fn not_supported() -> Error {
    Error::os(ErrorKind::Unsupported, libc::ENOTSUP)
}
