//! Growing and shrinking (QEMU's `qcow2_co_truncate`), with metadata,
//! falloc and full preallocation of the new space.

use crate::block::dirty_bitmap;
use crate::block::driver::Preallocation;
use crate::error::{Error, ErrorKind, Result};
use crate::formats::qcow2::Qcow2Image;
use crate::formats::qcow2::header::hex;
use crate::formats::qcow2::io;
use crate::formats::qcow2::metadata::Meta;
use crate::formats::qcow2::refcount;
use crate::formats::qcow2::tables::{self, L1E_OFFSET_MASK, OFLAG_COPIED, REFT_OFFSET_MASK};

fn invalid(msg: &str) -> Error {
    Error::invalid(msg)
}

pub fn resize(img: &Qcow2Image, offset: u64, prealloc: Preallocation) -> Result<()> {
    let g = img.geometry();
    let cs = g.cluster_size;
    if !offset.is_multiple_of(512) {
        return Err(invalid("The new size must be a multiple of 512"));
    }
    {
        let m = img.lock();
        if !m.snapshots.is_empty() && g.version < 3 {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "Can't resize a v2 image which has snapshots",
            ));
        }
    }
    check_bitmaps(img)?;
    let old = img.current_size();
    let new_l1 = g.size_to_l1(offset);
    let mut prealloc = prealloc;
    if offset < old {
        if prealloc != Preallocation::Off {
            return Err(invalid(
                "Preallocation can't be used for shrinking an image",
            ));
        }
        let from = offset.div_ceil(cs) * cs;
        if old > from {
            io::cluster_discard(img, from, old - from, true)
                .map_err(|e| e.prepend("Failed to discard cropped clusters"))?;
        }
        let mut m = img.lock();
        shrink_l1(&mut m, new_l1)
            .map_err(|e| e.prepend("Failed to reduce the number of L2 tables"))?;
        shrink_reftable(&mut m).map_err(|e| e.prepend("Failed to discard unused refblocks"))?;
        let len = m.file.length()?;
        let mut last = g.size_to_clusters(len);
        while last > 0 && m.get_refcount(last - 1)? == 0 {
            last -= 1;
        }
        if last == 0 {
            return Err(m.corruption(
                true,
                "There are no references in the refcount table.".into(),
            ));
        }
        if last * cs < len
            && let Err(e) = m.file.set_len(last * cs, Preallocation::Off)
        {
            m.diagnostics.warning(format!(
                "Failed to truncate the tail of the image: {}",
                e.message()
            ));
        }
    } else {
        let mut m = img.lock();
        m.grow_l1(new_l1, true)
            .map_err(|e| e.prepend("Failed to grow the L1 table"))?;
        if g.data_file_raw && prealloc == Preallocation::Off {
            prealloc = Preallocation::Metadata;
        }
    }
    match prealloc {
        Preallocation::Off => {
            if g.has_data_file {
                img.data().set_len(offset, Preallocation::Off)?;
            }
        }
        Preallocation::Metadata => preallocate(img, old, offset, Preallocation::Metadata)?,
        Preallocation::Falloc | Preallocation::Full => {
            if g.has_data_file {
                preallocate(img, old, offset, prealloc)?;
            } else {
                preallocate_data(img, old, offset, prealloc)?;
            }
        }
    }
    let mut m = img.lock();
    m.header.size = offset;
    m.write_meta(24, &offset.to_be_bytes())
        .map_err(|e| e.prepend("Failed to update the image size"))?;
    img.set_size(offset);
    for t in &mut img.bitmap_set().list {
        t.bits.truncate(offset);
    }
    Ok(())
}

/// Bitmaps follow a resize only when every one can be changed (QEMU's
/// `qcow2_truncate_bitmaps_check`).
fn check_bitmaps(img: &Qcow2Image) -> Result<()> {
    let set = img.bitmap_set();
    for t in &set.list {
        if set.readonly {
            return Err(dirty_bitmap::readonly(&t.name));
        }
        if t.inconsistent {
            return Err(dirty_bitmap::inconsistent(&t.name));
        }
    }
    Ok(())
}

/// Drops the L2 tables past `new_size` entries (the L1 table keeps its
/// size, as in QEMU).
fn shrink_l1(m: &mut Meta, new_size: u64) -> Result<()> {
    let current = m.l1.len() as u64;
    if new_size >= current {
        return Ok(());
    }
    let at = m.header.l1_table_offset + new_size * 8;
    m.write_meta(at, &vec![0u8; ((current - new_size) * 8) as usize])?;
    m.file.flush()?;
    for i in (new_size as usize..current as usize).rev() {
        let l2 = m.l1[i] & L1E_OFFSET_MASK;
        if l2 == 0 {
            continue;
        }
        let cs = m.g.cluster_size;
        m.free_clusters_discard(l2, cs);
        m.l1[i] = 0;
    }
    Ok(())
}

/// Drops the refcount blocks that count nothing but themselves from the
/// refcount table, and frees (discards) their clusters (QEMU's
/// `qcow2_shrink_reftable`), so that no table entry points at an all-zero
/// block after a shrink.
fn shrink_reftable(m: &mut Meta) -> Result<()> {
    let g = m.g;
    let span = g.cluster_bits + g.refblock_bits;
    let mut kept = m.reftable.clone();
    for (i, slot) in kept.iter_mut().enumerate() {
        let offset = *slot & REFT_OFFSET_MASK;
        if offset == 0 {
            *slot = 0;
            continue;
        }
        let block = m.refblock(offset)?;
        let unused = if (offset >> span) as usize == i {
            // The block counts itself: ignore that reference.
            let own = (offset >> g.cluster_bits) & (g.refblock_entries() - 1);
            let mut copy = block.clone();
            refcount::set(g.refcount_order, &mut copy, own, 0);
            copy.iter().all(|&b| b == 0)
        } else {
            block.iter().all(|&b| b == 0)
        };
        if unused {
            *slot = 0;
        }
    }
    let at = m.header.refcount_table_offset;
    let written = m
        .write_meta(at, &tables::encode_entries(&kept))
        .and_then(|()| m.file.flush());
    let mut result = written;
    for (i, &entry) in kept.iter().enumerate() {
        let offset = m.reftable[i] & REFT_OFFSET_MASK;
        if offset != 0 && entry == 0 {
            if result.is_ok() {
                result = discard_refblock(m, offset);
            }
            m.reftable[i] = 0;
        }
    }
    m.update_max_reftable_index();
    result
}

/// Frees the cluster of an unused refcount block and discards it (QEMU's
/// `qcow2_discard_refcount_block`): its own refcount must be exactly 1.
fn discard_refblock(m: &mut Meta, offset: u64) -> Result<()> {
    let g = m.g;
    let index = (offset >> (g.cluster_bits + g.refblock_bits)) as usize;
    let covering = m.reftable.get(index).map_or(0, |e| e & REFT_OFFSET_MASK);
    if covering == 0 {
        return Err(m.corruption(
            true,
            format!(
                "Refblock at {} is not covered by the refcount structures",
                hex(offset)
            ),
        ));
    }
    let cluster = offset >> g.cluster_bits;
    let entry = cluster & (g.refblock_entries() - 1);
    let rc = refcount::get(g.refcount_order, m.refblock(covering)?, entry);
    if rc != 1 {
        return Err(m.corruption(
            true,
            format!(
                "Invalid refcount: refblock offset {}, reftable index {index}, block offset {}, refcount {}",
                hex(covering),
                hex(offset),
                hex(rc)
            ),
        ));
    }
    m.update_refcount(offset, g.cluster_size, 1, true)?;
    m.forget_table(offset);
    m.file.discard(offset, g.cluster_size)
}

/// Allocates clusters (and their L2 tables) for `[from, to)` without
/// writing guest data (QEMU's `preallocate_co`).
pub fn preallocate(img: &Qcow2Image, from: u64, to: u64, mode: Preallocation) -> Result<()> {
    let mut end_host = 0u64;
    let mut pos = from;
    while pos < to {
        let (host_end, len) = io::allocate_only(img, pos, to - pos)
            .map_err(|e| e.prepend("Allocating clusters failed"))?;
        end_host = host_end;
        pos += len;
    }
    let file = img.data();
    let length = file.length()?;
    if end_host > length {
        let mode = if mode == Preallocation::Metadata {
            Preallocation::Off
        } else {
            mode
        };
        file.set_len(end_host, mode)?;
    }
    Ok(())
}

/// Falloc/full preallocation without a data file: new refcount structures
/// past the end of the file cover the new data clusters, which follow them
/// in one run.
fn preallocate_data(img: &Qcow2Image, old: u64, offset: u64, mode: Preallocation) -> Result<()> {
    let g = img.geometry();
    let cs = g.cluster_size;
    let mut m = img.lock();
    let len = m.file.length()?;
    let mut last = g.size_to_clusters(len);
    while last > 0 && m.get_refcount(last - 1)? == 0 {
        last -= 1;
    }
    let old_file_size = if last > 0 {
        last * cs
    } else {
        len.div_ceil(cs) * cs
    };
    let new_clusters = (offset.div_ceil(cs) * cs - g.start_of_cluster(old)) / cs;
    let new_l2 = new_clusters.div_ceil(g.l2_entries) + 1;
    let start = m
        .refcount_area(old_file_size, new_clusters + new_l2, true, 0, 0)
        .map_err(|e| e.prepend("Failed to resize refcount structures"))?;
    let got = m
        .alloc_clusters_at(start, new_clusters)
        .map_err(|e| e.prepend("Failed to allocate data clusters"))?;
    if got != new_clusters {
        return Err(Error::os(ErrorKind::Io, libc::EIO));
    }
    let new_file_size = start + new_clusters * cs;
    if let Err(e) = m.file.set_len(new_file_size, mode) {
        m.free_clusters(start, new_clusters * cs);
        return Err(e.prepend("Failed to resize underlying file"));
    }
    drop(m);
    // Map the new clusters, one L2 table at a time.
    let mut host = start;
    let mut guest = old;
    let mut remaining = new_clusters;
    while remaining > 0 {
        let index = g.l2_index(guest);
        let n = remaining.min(g.l2_entries - index as u64);
        let head = g.offset_into_cluster(guest);
        let cluster = g.start_of_cluster(guest);
        if head > 0 {
            let mut zeros = vec![0u8; head as usize];
            io::read(img, &mut zeros, cluster)?;
            img.data().write_at(&zeros, host)?;
        }
        let mut m = img.lock();
        img.mark_dirty(&mut m)?;
        let l2 = m
            .l2_for_write(cluster)
            .map_err(|e| e.prepend("Failed to update L2 tables"))?;
        let mut old_entries = Vec::new();
        for i in 0..n as usize {
            let (e, b) = m.l2_entry(l2, index + i)?;
            if e != 0 {
                old_entries.push(e);
            }
            m.set_l2_entry(l2, index + i, (host + i as u64 * cs) | OFLAG_COPIED, b)?;
        }
        m.write_l2(l2, index, index + n as usize)?;
        for e in old_entries {
            m.free_any_cluster(e);
        }
        guest = cluster + n * cs;
        host += n * cs;
        remaining -= n;
    }
    Ok(())
}
