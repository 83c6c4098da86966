//! Internal snapshots: create, apply (goto), delete, following QEMU's
//! qcow2-snapshot.c so that refcounts and copied flags stay consistent and
//! qemu-img agrees with every table we write.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::block::driver::Preallocation;
use crate::error::{Error, ErrorKind, Result};
use crate::formats::qcow2::Qcow2Image;
use crate::formats::qcow2::metadata::{Meta, Outcome};
use crate::formats::qcow2::resize;
use crate::formats::qcow2::snapshot_table::{self, Snapshot};
use crate::formats::qcow2::tables::{
    self, ClusterType, L1E_OFFSET_MASK, L2E_OFFSET_MASK, OFLAG_COPIED,
};
use crate::formats::qcow2::validate_table;

/// QEMU keeps a snapshot's name in a 256-byte buffer
/// (`QEMUSnapshotInfo.name`), so `snapshot -c` cuts longer names to 255
/// bytes (here at a character boundary).
const NAME_MAX: usize = 255;

fn cut_name(name: &str) -> &str {
    let mut end = name.len().min(NAME_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

fn errno(e: i32) -> Error {
    let kind = match e {
        libc::ENOENT => ErrorKind::NotFound,
        libc::ENOTSUP => ErrorKind::Unsupported,
        _ => ErrorKind::Io,
    };
    Error::os(kind, e)
}

impl Meta {
    /// Adds `addend` (-1, 0 or 1) to the refcount of every L2 table and
    /// cluster the L1 table reaches, and recomputes the copied flags (QEMU's
    /// `qcow2_update_snapshot_refcount`). `active` uses the in-memory active
    /// L1 table instead of reading one.
    pub fn update_snapshot_refcount(
        &mut self,
        l1_offset: u64,
        l1_size: u32,
        addend: i64,
        active: bool,
    ) -> Result<()> {
        let g = self.g;
        let mut l1 = if active {
            self.l1.clone()
        } else {
            tables::decode_entries(&self.read_meta(l1_offset, l1_size as usize * 8)?)
        };
        let step = |m: &mut Meta, off: u64, len: u64| -> Result<()> {
            if addend == 0 {
                return Ok(());
            }
            m.discard_freed = addend < 0;
            let r = m.update_refcount(off, len, 1, addend < 0);
            m.discard_freed = false;
            match r? {
                Outcome::Done => Ok(()),
                Outcome::Again => Err(Error::os(ErrorKind::Io, libc::EAGAIN)),
            }
        };
        let mut l1_modified = false;
        #[allow(clippy::needless_range_loop)]
        for i in 0..l1.len() {
            if l1[i] == 0 {
                continue;
            }
            let old_l1 = l1[i];
            let l2 = l1[i] & L1E_OFFSET_MASK;
            self.check_l2_offset(l2, i as u64)?;
            let mut changed = false;
            for j in 0..g.l2_entries as usize {
                let (old, bitmap) = self.l2_entry(l2, j)?;
                let mut e = old & !OFLAG_COPIED;
                let refcount = match g.cluster_type(e) {
                    ClusterType::Compressed => {
                        let (off, len) = g.compressed_extent(e);
                        step(self, off, len)?;
                        2
                    }
                    ClusterType::Normal | ClusterType::ZeroAlloc => {
                        let off = e & L2E_OFFSET_MASK;
                        self.check_cluster_aligned(off, l2, j)?;
                        step(self, off, 1)?;
                        self.get_refcount(off >> g.cluster_bits)?
                    }
                    ClusterType::ZeroPlain | ClusterType::Unallocated => 0,
                };
                if refcount == 1 {
                    e |= OFLAG_COPIED;
                }
                if e != old {
                    self.set_l2_entry(l2, j, e, bitmap)?;
                    changed = true;
                }
            }
            if changed {
                self.write_l2(l2, 0, g.l2_entries as usize)?;
            }
            step(self, l2, 1)?;
            let mut entry = l2;
            if self.get_refcount(l2 >> g.cluster_bits)? == 1 {
                entry |= OFLAG_COPIED;
            }
            if entry != old_l1 {
                l1[i] = entry;
                l1_modified = true;
            }
        }
        self.file.flush()?;
        if addend >= 0 && l1_modified {
            self.write_meta(l1_offset, &tables::encode_entries(&l1))?;
        }
        if active {
            self.l1 = l1;
        }
        Ok(())
    }

    /// Writes the snapshot table to new clusters and points the header at
    /// it (QEMU's `qcow2_write_snapshots`).
    pub fn write_snapshots(&mut self) -> Result<()> {
        // Entries store 16-bit lengths; a longer id or name (decoded from
        // invalid UTF-8) cannot be written back.
        let fits = |s: &str| s.len() <= usize::from(u16::MAX);
        if !self.snapshots.iter().all(|s| fits(&s.id) && fits(&s.name)) {
            return Err(Error::os(ErrorKind::InvalidArgument, libc::EINVAL));
        }
        let size = snapshot_table::table_size(&self.snapshots);
        if size > snapshot_table::MAX_TABLE_BYTES {
            return Err(Error::os(ErrorKind::InvalidArgument, libc::EFBIG));
        }
        let offset = self.alloc_clusters(size)?;
        self.file.flush()?;
        if size > 0
            && let Err(e) = self.write_meta(offset, &snapshot_table::serialize(&self.snapshots))
        {
            self.free_clusters(offset, size);
            return Err(e);
        }
        self.file.flush()?;
        let mut data = (self.snapshots.len() as u32).to_be_bytes().to_vec();
        data.extend_from_slice(&offset.to_be_bytes());
        self.write_meta(60, &data)?;
        self.file.flush()?;
        let (old, old_size) = (self.header.snapshots_offset, self.snapshots_size);
        self.free_clusters_discard(old, old_size);
        self.header.snapshots_offset = offset;
        self.header.nb_snapshots = self.snapshots.len() as u32;
        self.snapshots_size = size;
        Ok(())
    }
}

pub fn create(img: &Qcow2Image, name: &str) -> Result<()> {
    let g = img.geometry();
    if g.has_data_file {
        return Err(errno(libc::ENOTSUP));
    }
    let mut m = img.lock();
    if m.snapshots.len() >= snapshot_table::MAX_SNAPSHOTS as usize {
        return Err(errno(libc::EFBIG));
    }
    img.mark_dirty(&mut m)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let l1_size = m.l1.len() as u32;
    let l1_offset = m.alloc_clusters(u64::from(l1_size) * 8)?;
    let table = tables::encode_entries(&m.l1);
    if let Err(e) = m.write_meta(l1_offset, &table) {
        m.free_clusters(l1_offset, table.len() as u64);
        return Err(e);
    }
    let active = m.header.l1_table_offset;
    m.update_snapshot_refcount(active, l1_size, 1, true)?;
    let sn = Snapshot {
        l1_table_offset: l1_offset,
        l1_size,
        date_sec: now.as_secs() as u32,
        date_nsec: now.subsec_micros() * 1000,
        vm_clock_nsec: 0,
        vm_state_size: 0,
        extra_data_size: snapshot_table::EXTRA_KNOWN as u32,
        disk_size: img.current_size(),
        icount: 0,
        unknown_extra: Vec::new(),
        id: snapshot_table::next_id(&m.snapshots),
        name: cut_name(name).to_string(),
    };
    m.snapshots.push(sn);
    if let Err(e) = m.write_snapshots() {
        m.snapshots.pop();
        return Err(e);
    }
    Ok(())
}

fn find(m: &Meta, id: &str) -> Option<Snapshot> {
    m.snapshots
        .iter()
        .find(|s| s.id == id)
        .or_else(|| m.snapshots.iter().find(|s| s.name == id))
        .cloned()
}

/// `qcow2_validate_table` for a snapshot's L1 table (apply, `convert -l`,
/// amend's zero cluster expansion).
pub(crate) fn validate_snapshot_l1(g: &tables::Geometry, sn: &Snapshot) -> Result<()> {
    validate_table(
        g,
        sn.l1_table_offset,
        u64::from(sn.l1_size),
        8,
        tables::MAX_L1_BYTES,
        "Snapshot L1 table",
    )
}

pub fn apply(img: &Qcow2Image, id: &str) -> Result<()> {
    let g = img.geometry();
    if g.has_data_file {
        return Err(errno(libc::ENOTSUP));
    }
    let sn = {
        let m = img.lock();
        find(&m, id).ok_or_else(|| errno(libc::ENOENT))?
    };
    validate_snapshot_l1(&g, &sn)?;
    if sn.disk_size != img.current_size() {
        resize::resize(img, sn.disk_size, Preallocation::Off)?;
    }
    let mut m = img.lock();
    img.mark_dirty(&mut m)?;
    m.grow_l1(u64::from(sn.l1_size), true)?;
    let current = m.l1.len();
    let mut sn_l1 =
        tables::decode_entries(&m.read_meta(sn.l1_table_offset, sn.l1_size as usize * 8)?);
    sn_l1.resize(current, 0);
    m.update_snapshot_refcount(sn.l1_table_offset, sn.l1_size, 1, false)?;
    let active = m.header.l1_table_offset;
    m.write_meta(active, &tables::encode_entries(&sn_l1))?;
    m.file.flush()?;
    let result = m.update_snapshot_refcount(active, current as u32, -1, true);
    m.l1 = sn_l1;
    result?;
    m.update_snapshot_refcount(active, current as u32, 0, true)
}

pub fn delete(img: &Qcow2Image, id: &str) -> Result<()> {
    let g = img.geometry();
    if g.has_data_file {
        return Err(errno(libc::ENOTSUP));
    }
    let mut m = img.lock();
    let Some(index) = m.snapshots.iter().position(|s| s.id == id) else {
        return Err(Error::new(ErrorKind::NotFound, "Can't find the snapshot"));
    };
    let sn = m.snapshots[index].clone();
    validate_snapshot_l1(&g, &sn)?;
    img.mark_dirty(&mut m)?;
    m.snapshots.remove(index);
    if let Err(e) = m.write_snapshots() {
        m.snapshots.insert(index, sn);
        return Err(e.prepend("Failed to remove snapshot from snapshot list"));
    }
    m.update_snapshot_refcount(sn.l1_table_offset, sn.l1_size, -1, false)
        .map_err(|e| e.prepend("Failed to free the cluster and L1 table"))?;
    m.free_clusters_discard(sn.l1_table_offset, u64::from(sn.l1_size) * 8);
    let active = m.header.l1_table_offset;
    let size = m.l1.len() as u32;
    m.update_snapshot_refcount(active, size, 0, true)
        .map_err(|e| e.prepend("Failed to update snapshot status in disk"))
}
