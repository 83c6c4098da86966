//! Changing what an image names as its backing file, and emptying it so
//! that it reads through to that file again (QEMU's
//! `qcow2_change_backing_file` and `qcow2_make_empty`).

use crate::block::driver::Preallocation;
use crate::error::{Error, ErrorKind, Result};
use crate::formats::qcow2::Qcow2Image;
use crate::formats::qcow2::header::{BACKING_FILE_MAX, CRYPT_LUKS, INCOMPAT_DIRTY};
use crate::formats::qcow2::io;
use crate::formats::qcow2::tables::REFT_OFFSET_MASK;

/// Rewrites the header with the new backing file name and format; a name
/// too long for the header, or a backing file for an image whose data file
/// must stay a valid raw image, is EINVAL; a header that does not fit its
/// cluster is ENOSPC.
pub fn change(img: &Qcow2Image, name: Option<&str>, format: Option<&str>) -> Result<()> {
    let einval = || Error::os(ErrorKind::InvalidArgument, libc::EINVAL);
    if name.is_some() && img.geometry().data_file_raw {
        return Err(einval());
    }
    if name.is_some_and(|n| n.len() > BACKING_FILE_MAX) {
        return Err(einval());
    }
    let mut m = img.lock();
    let old = (
        m.header.backing_file.clone(),
        m.header.backing_format.clone(),
    );
    m.header.backing_file = name.map(str::to_string);
    m.header.backing_format = format.map(str::to_string);
    if let Err(e) = m.write_header() {
        (m.header.backing_file, m.header.backing_format) = old;
        return Err(e);
    }
    m.has_backing = name.is_some();
    Ok(())
}

/// Makes every guest cluster unallocated. A v3 image without snapshots,
/// bitmaps, LUKS encryption or a data file is rebuilt from scratch (header,
/// refcount table, one refcount block, an empty L1 table; the file
/// truncated after them); any other image has every cluster discarded.
pub fn make_empty(img: &Qcow2Image) -> Result<()> {
    let g = img.geometry();
    let (fits, whole) = {
        let m = img.lock();
        let l1_clusters = (m.l1.len() as u64).div_ceil(g.cluster_size / 8);
        // Rebuilding keeps only the header cluster: not for what lives in
        // clusters of its own (snapshots, bitmaps, the LUKS header).
        let whole = g.version >= 3
            && m.snapshots.is_empty()
            && m.header.bitmaps.is_none()
            && m.header.crypt_method != CRYPT_LUKS
            && !g.has_data_file;
        (3 + l1_clusters <= g.refblock_entries(), whole)
    };
    if whole && fits {
        return rebuild_empty(img);
    }
    // Discarded clusters are passed down to the file, as QEMU's
    // "snapshot" discards are by default.
    const STEP: u64 = 1 << 30;
    let size = img.current_size();
    let mut offset = 0;
    while offset < size {
        let n = STEP.min(size - offset);
        io::cluster_discard(img, offset, n, true)?;
        offset += n;
    }
    Ok(())
}

/// QEMU's `make_completely_empty`: with the dirty bit set (refcounts are
/// briefly wrong), zero the L1 table and the clusters after the header,
/// point the header at a one-cluster refcount table at cluster 1 whose
/// first block is cluster 2 and an L1 table at cluster 3, count those
/// clusters, clear the dirty bit and cut the file after the L1 table.
fn rebuild_empty(img: &Qcow2Image) -> Result<()> {
    let g = img.geometry();
    let cs = g.cluster_size;
    let mut m = img.lock();
    m.clear_caches();
    let file = m.file.clone();
    if m.header.incompatible_features & INCOMPAT_DIRTY == 0 {
        file.flush()?;
        let dirty = m.header.incompatible_features | INCOMPAT_DIRTY;
        file.write_at(&dirty.to_be_bytes(), 72)?;
        file.flush()?;
        m.header.incompatible_features = dirty;
    }
    let l1_len = m.l1.len() as u64;
    let l1_clusters = l1_len.div_ceil(cs / 8);
    file.zero_range(m.header.l1_table_offset, l1_clusters * cs)?;
    m.l1.iter_mut().for_each(|e| *e = 0);
    file.zero_range(cs, (2 + l1_clusters) * cs)?;
    let mut fields = (3 * cs).to_be_bytes().to_vec();
    fields.extend_from_slice(&cs.to_be_bytes());
    fields.extend_from_slice(&1u32.to_be_bytes());
    file.write_at(&fields, 40)?;
    file.flush()?;
    m.header.l1_table_offset = 3 * cs;
    m.header.refcount_table_offset = cs;
    m.header.refcount_table_clusters = 1;
    m.reftable = vec![0; (cs / 8) as usize];
    file.write_at(&(2 * cs).to_be_bytes(), cs)?;
    file.flush()?;
    m.reftable[0] = (2 * cs) & REFT_OFFSET_MASK;
    m.update_max_reftable_index();
    m.free_cluster_index = 0;
    m.free_byte_offset = 0;
    let at = m.alloc_clusters(3 * cs + l1_len * 8)?;
    if at != 0 {
        return Err(Error::corrupt("First cluster in emptied image is in use"));
    }
    m.header.incompatible_features &= !INCOMPAT_DIRTY;
    m.write_header()?;
    file.set_len((3 + l1_clusters) * cs, Preallocation::Off)
}
