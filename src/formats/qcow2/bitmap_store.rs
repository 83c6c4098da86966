//! Persistent bitmaps while a qcow2 image is open, as QEMU keeps them
//! (block/qcow2-bitmap.c): loaded into memory when the image opens, kept
//! up to date by every guest write, written back when it closes.
//!
//! ```text
//!   open (writable)   load each bitmap; mark it "in use" on disk (the
//!                     directory rewritten in place) -> a crash leaves it
//!                     flagged inconsistent, never silently stale
//!   write/zero/discard  set the bits of every enabled bitmap
//!   add / remove      remove: at once (new directory, clusters freed)
//!   close             every consistent bitmap stored anew: data clusters,
//!                     table, then a new directory; the old tables freed
//! ```
//! Bitmaps loaded "in use" are inconsistent: kept as they are, never
//! stored, refused for everything but removal.

use crate::block::dirty_bitmap::{
    self, BitmapStatus, DirtyBitmap, PersistentBitmaps, check_merge, check_new,
};
use crate::error::{Error, ErrorKind, Result};
use crate::formats::qcow2::Qcow2Image;
use crate::formats::qcow2::bitmaps::{
    self, Bitmap, FLAG_AUTO, FLAG_IN_USE, MAX_BITMAPS, MAX_DIRECTORY_SIZE, MAX_GRANULARITY_BITS,
    MAX_NAME_SIZE, MAX_PHYS_SIZE, MAX_TABLE_SIZE, TABLE_ENTRY_ALL_ONES, TABLE_ENTRY_OFFSET,
};
use crate::formats::qcow2::header::{AUTOCLEAR_BITMAPS, BitmapsExt};
use crate::formats::qcow2::metadata::Meta;
use crate::formats::qcow2::tables;

/// One bitmap in memory.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub name: String,
    pub bits: DirtyBitmap,
    pub enabled: bool,
    pub inconsistent: bool,
}

/// The image's bitmaps in memory, in QEMU's order (loaded ones in
/// directory order, then those added since).
#[derive(Debug, Default)]
pub struct BitmapSet {
    pub list: Vec<Tracked>,
    /// Opened read-only: nothing is ever stored.
    pub readonly: bool,
}

impl BitmapSet {
    fn find(&self, name: &str) -> Result<usize> {
        self.list
            .iter()
            .position(|t| t.name == name)
            .ok_or_else(|| dirty_bitmap::not_found(name))
    }

    /// Whether writes must set bits.
    pub fn tracking(&self) -> bool {
        !self.readonly && self.list.iter().any(|t| t.enabled)
    }

    /// Sets the bits of every enabled bitmap for a guest write.
    pub fn mark(&mut self, offset: u64, len: u64) {
        for t in self.list.iter_mut().filter(|t| t.enabled) {
            t.bits.set(offset, len);
        }
    }
}

fn errno_text(e: &Error) -> String {
    e.message().to_string()
}

/// The bitmap directory as it is on disk, `[]` without one.
fn load_list(m: &Meta, size: u64) -> Result<Vec<Bitmap>> {
    let Some(ext) = m.header.bitmaps else {
        return Ok(Vec::new());
    };
    if ext.directory_size > MAX_DIRECTORY_SIZE {
        return Err(Error::corrupt("Requested bitmap directory size is too big"));
    }
    let dir = m
        .read_meta(ext.directory_offset, ext.directory_size as usize)
        .map_err(|e| {
            Error::new(
                e.kind(),
                format!("Failed to read bitmap directory: {}", errno_text(&e)),
            )
        })?;
    bitmaps::parse_directory(&ext, &dir, m.g.cluster_size, size)
}

/// Reads a bitmap table (entries checked).
fn load_table(m: &Meta, offset: u64, entries: u32) -> Result<Vec<u64>> {
    let bytes = m.read_meta(offset, entries as usize * 8)?;
    bitmaps::decode_table(&bytes, m.g.cluster_size)
}

/// Bytes of image one cluster of bitmap data covers.
fn bytes_per_cluster(granularity: u64, cluster_size: u64) -> u64 {
    granularity * cluster_size * 8
}

/// Entries a bitmap of this size needs in its table.
fn table_entries(bits: &DirtyBitmap, cluster_size: u64) -> u64 {
    bits.serialization_size(0, bits.size())
        .div_ceil(cluster_size)
}

/// QEMU's `load_bitmap_data`.
fn load_data(m: &Meta, bm: &Bitmap, bits: &mut DirtyBitmap) -> Result<()> {
    let cs = m.g.cluster_size;
    let table = load_table(m, bm.table_offset, bm.table_size).map_err(|e| {
        Error::new(
            e.kind(),
            format!(
                "Could not read bitmap_table table from image for bitmap '{}': {}",
                bm.name,
                errno_text(&e)
            ),
        )
    })?;
    let unreadable = |e: Error| {
        Error::new(
            e.kind(),
            format!(
                "Could not read bitmap '{}' from image: {}",
                bm.name,
                errno_text(&e)
            ),
        )
    };
    let entries = table_entries(bits, cs);
    if entries != u64::from(bm.table_size) || entries > u64::from(MAX_TABLE_SIZE) {
        return Err(unreadable(Error::os(
            ErrorKind::InvalidArgument,
            libc::EINVAL,
        )));
    }
    let limit = bytes_per_cluster(bits.granularity(), cs);
    let size = bits.size();
    for (i, &entry) in table.iter().enumerate() {
        let offset = i as u64 * limit;
        let count = (size - offset).min(limit);
        let data = entry & TABLE_ENTRY_OFFSET;
        if data == 0 {
            if entry & TABLE_ENTRY_ALL_ONES != 0 {
                bits.set(offset, count);
            }
            continue;
        }
        let buf = m.read_meta(data, cs as usize).map_err(unreadable)?;
        bits.deserialize(&buf, offset, count);
    }
    Ok(())
}

/// Loads every bitmap of a freshly opened image (QEMU's
/// `qcow2_load_dirty_bitmaps`); a writable image gets its consistent
/// bitmaps flagged "in use" on disk.
pub fn load(img: &Qcow2Image, writable: bool) -> Result<BitmapSet> {
    let size = img.current_size();
    let mut m = img.lock();
    let mut list = load_list(&m, size)?;
    let mut set = BitmapSet {
        list: Vec::new(),
        readonly: !writable,
    };
    let mut flagged = false;
    for bm in &mut list {
        let mut bits = DirtyBitmap::new(1 << bm.granularity_bits, size);
        let inconsistent = bm.flags & FLAG_IN_USE != 0;
        if !inconsistent {
            load_data(&m, bm, &mut bits)?;
            bm.flags |= FLAG_IN_USE;
            flagged = true;
        }
        set.list.push(Tracked {
            name: bm.name.clone(),
            bits,
            enabled: !inconsistent && bm.flags & FLAG_AUTO != 0,
            inconsistent,
        });
    }
    if flagged && writable {
        update_in_place(&mut m, &list, size).map_err(|e| {
            Error::new(
                e.kind(),
                format!("Can't update bitmap directory: {}", errno_text(&e)),
            )
        })?;
    }
    Ok(set)
}

fn write_header_sync(m: &mut Meta) -> Result<()> {
    m.write_header()?;
    m.file.flush()
}

/// Rewrites the directory where it is, with the bitmaps extension
/// switched off meanwhile (QEMU's `update_ext_header_and_dir_in_place`).
fn update_in_place(m: &mut Meta, list: &[Bitmap], size: u64) -> Result<()> {
    let einval = || Error::os(ErrorKind::InvalidArgument, libc::EINVAL);
    let ext = m.header.bitmaps.ok_or_else(einval)?;
    if m.header.autoclear_features & AUTOCLEAR_BITMAPS == 0
        || list.is_empty()
        || list.len() as u32 != ext.nb_bitmaps
    {
        return Err(einval());
    }
    m.header.autoclear_features &= !AUTOCLEAR_BITMAPS;
    write_header_sync(m)?;
    let dir = bitmaps::serialize_directory(list, m.g.cluster_size, size)?;
    if dir.len() as u64 != ext.directory_size {
        return Err(einval());
    }
    m.write_meta(ext.directory_offset, &dir)?;
    write_header_sync(m)?;
    m.header.autoclear_features |= AUTOCLEAR_BITMAPS;
    write_header_sync(m)
}

/// Writes `list` as a new directory and points the header at it (or drops
/// the extension when empty), then frees the old directory (QEMU's
/// `update_ext_header_and_dir`).
fn update_directory(m: &mut Meta, list: &[Bitmap], size: u64) -> Result<()> {
    let old = m.header.bitmaps;
    let old_autoclear = m.header.autoclear_features;
    let mut new = None;
    if !list.is_empty() {
        if list.len() as u32 > MAX_BITMAPS {
            return Err(Error::os(ErrorKind::InvalidArgument, libc::EINVAL));
        }
        let dir = bitmaps::serialize_directory(list, m.g.cluster_size, size)?;
        let offset = m.alloc_clusters(dir.len() as u64)?;
        if let Err(e) = m.write_meta(offset, &dir).and_then(|()| m.file.flush()) {
            m.free_clusters(offset, dir.len() as u64);
            return Err(e);
        }
        new = Some(BitmapsExt {
            nb_bitmaps: list.len() as u32,
            directory_size: dir.len() as u64,
            directory_offset: offset,
        });
        m.header.autoclear_features |= AUTOCLEAR_BITMAPS;
    } else {
        m.header.autoclear_features &= !AUTOCLEAR_BITMAPS;
    }
    m.header.bitmaps = new;
    if let Err(e) = write_header_sync(m) {
        if let Some(n) = new {
            m.free_clusters(n.directory_offset, n.directory_size);
        }
        m.header.bitmaps = old;
        m.header.autoclear_features = old_autoclear;
        return Err(e);
    }
    if let Some(o) = old {
        m.free_clusters(o.directory_offset, o.directory_size);
    }
    Ok(())
}

/// Frees a bitmap table and the data clusters it names (QEMU's
/// `free_bitmap_clusters`): data clusters are discarded, the table not.
fn free_table(m: &mut Meta, offset: u64, entries: u32) -> Result<()> {
    let cs = m.g.cluster_size;
    let table = load_table(m, offset, entries)?;
    for entry in table {
        let data = entry & TABLE_ENTRY_OFFSET;
        if data != 0 {
            m.free_clusters_discard(data, cs);
        }
    }
    m.free_clusters(offset, u64::from(entries) * 8);
    Ok(())
}

/// Writes a bitmap's data and table to new clusters (QEMU's
/// `store_bitmap`); returns the table's offset and entries.
fn store_one(m: &mut Meta, name: &str, bits: &DirtyBitmap) -> Result<(u64, u32)> {
    let cs = m.g.cluster_size;
    let entries = table_entries(bits, cs);
    if entries > u64::from(MAX_TABLE_SIZE) || entries * cs > MAX_PHYS_SIZE {
        return Err(Error::invalid(format!("Bitmap '{name}' is too big")));
    }
    let alloc_failed = |e: Error| {
        Error::new(
            e.kind(),
            format!(
                "Failed to allocate clusters for bitmap '{name}': {}",
                errno_text(&e)
            ),
        )
    };
    let write_failed = |e: Error| {
        Error::new(
            e.kind(),
            format!(
                "Failed to write bitmap '{name}' to file: {}",
                errno_text(&e)
            ),
        )
    };
    let g = bits.granularity();
    let limit = bytes_per_cluster(g, cs);
    let mut table = vec![0u64; entries as usize];
    let result = (|| -> Result<u64> {
        for (i, slot) in table.iter_mut().enumerate() {
            let offset = i as u64 * limit;
            let end = (offset + limit).min(bits.size());
            if !bits.any_in(offset / g, end.div_ceil(g)) {
                continue;
            }
            let at = m.alloc_clusters(cs).map_err(alloc_failed)?;
            *slot = at;
            let mut buf = bits.serialize(offset, end - offset);
            buf.resize(cs as usize, 0);
            m.write_meta(at, &buf).map_err(write_failed)?;
        }
        let at = m.alloc_clusters(entries * 8).map_err(alloc_failed)?;
        if let Err(e) = m.write_meta(at, &tables::encode_entries(&table)) {
            m.free_clusters(at, entries * 8);
            return Err(write_failed(e));
        }
        Ok(at)
    })();
    match result {
        Ok(at) => Ok((at, entries as u32)),
        Err(e) => {
            for &data in table.iter().filter(|&&d| d != 0) {
                m.free_clusters_discard(data, cs);
            }
            Err(e)
        }
    }
}

/// QEMU's `check_constraints_on_bitmap` for an image of `size` bytes.
fn check_constraints(name: &str, granularity: u64, size: u64, cluster_size: u64) -> Result<()> {
    let bits = granularity.trailing_zeros();
    if bits > u32::from(MAX_GRANULARITY_BITS) {
        return Err(Error::invalid(format!(
            "Granularity exceeds maximum ({} bytes)",
            1u64 << MAX_GRANULARITY_BITS
        )));
    }
    if bits < 9 {
        return Err(Error::invalid("Granularity is under minimum (512 bytes)"));
    }
    let bytes = size.div_ceil(granularity).div_ceil(8);
    if bytes > MAX_PHYS_SIZE || bytes > u64::from(MAX_TABLE_SIZE) * cluster_size {
        return Err(Error::invalid(
            "Too much space will be occupied by the bitmap. Use larger granularity",
        ));
    }
    if name.len() > MAX_NAME_SIZE {
        return Err(Error::invalid(format!(
            "Name length exceeds maximum ({MAX_NAME_SIZE} characters)"
        )));
    }
    Ok(())
}

/// Writes every consistent bitmap back as the image closes (QEMU's
/// `qcow2_store_persistent_dirty_bitmaps`).
/// Nothing is written when no bitmap is both writable and consistent.
pub fn store(img: &Qcow2Image, set: &BitmapSet) -> Result<()> {
    if set.readonly || set.list.iter().all(|t| t.inconsistent) {
        return Ok(());
    }
    let size = img.current_size();
    let mut m = img.lock();
    let cs = m.g.cluster_size;
    let mut list = load_list(&m, size)?;
    let mut nb = m.header.bitmaps.map_or(0, |e| e.nb_bitmaps);
    let mut dir_size = m.header.bitmaps.map_or(0, |e| e.directory_size);
    let mut dropped = Vec::new();
    let mut attached: Vec<Option<usize>> = vec![None; list.len()];
    for (k, t) in set.list.iter().enumerate() {
        if t.inconsistent {
            continue;
        }
        let g = t.bits.granularity();
        check_constraints(&t.name, g, size, cs).map_err(|e| {
            e.prepend(format!(
                "Bitmap '{}' doesn't satisfy the constraints",
                t.name
            ))
        })?;
        let index = match list.iter().position(|b| b.name == t.name) {
            None => {
                nb += 1;
                if nb > MAX_BITMAPS {
                    return Err(Error::invalid("Too many persistent bitmaps"));
                }
                dir_size += bitmaps::entry_size(t.name.len());
                if dir_size > MAX_DIRECTORY_SIZE {
                    return Err(Error::invalid("Bitmap directory is too large"));
                }
                list.push(Bitmap {
                    table_offset: 0,
                    table_size: 0,
                    flags: 0,
                    granularity_bits: 0,
                    name: t.name.clone(),
                });
                attached.push(None);
                list.len() - 1
            }
            Some(i) => {
                if list[i].flags & FLAG_IN_USE == 0 {
                    return Err(Error::invalid(format!(
                        "Bitmap '{}' already exists in the image",
                        t.name
                    )));
                }
                dropped.push((list[i].table_offset, list[i].table_size));
                i
            }
        };
        let b = &mut list[index];
        b.flags = if t.enabled { FLAG_AUTO } else { 0 };
        b.granularity_bits = g.trailing_zeros() as u8;
        attached[index] = Some(k);
    }
    let mut stored = Vec::new();
    for (i, k) in attached.iter().enumerate() {
        let Some(k) = *k else { continue };
        match store_one(&mut m, &set.list[k].name, &set.list[k].bits) {
            Ok((offset, entries)) => {
                list[i].table_offset = offset;
                list[i].table_size = entries;
                stored.push(i);
            }
            Err(e) => {
                free_stored(&mut m, &list, &stored);
                return Err(e);
            }
        }
    }
    if let Err(e) = update_directory(&mut m, &list, size) {
        free_stored(&mut m, &list, &stored);
        return Err(Error::new(
            e.kind(),
            format!("Failed to update bitmap extension: {}", errno_text(&e)),
        ));
    }
    for (offset, entries) in dropped {
        let _ = free_table(&mut m, offset, entries);
    }
    Ok(())
}

fn free_stored(m: &mut Meta, list: &[Bitmap], stored: &[usize]) {
    for &i in stored {
        let _ = free_table(m, list[i].table_offset, list[i].table_size);
    }
}

/// Removes a bitmap from the image at once (QEMU's
/// `qcow2_co_remove_persistent_dirty_bitmap`).
fn remove_from_image(img: &Qcow2Image, name: &str) -> Result<()> {
    let size = img.current_size();
    let mut m = img.lock();
    if m.header.bitmaps.is_none() {
        return Ok(());
    }
    let mut list = load_list(&m, size)?;
    let Some(i) = list.iter().position(|b| b.name == name) else {
        return Ok(());
    };
    let gone = list.remove(i);
    update_directory(&mut m, &list, size).map_err(|e| {
        Error::new(
            e.kind(),
            format!("Failed to update bitmap extension: {}", errno_text(&e)),
        )
    })?;
    let _ = free_table(&mut m, gone.table_offset, gone.table_size);
    Ok(())
}

/// QEMU's `qcow2_co_can_store_new_dirty_bitmap`: counts are those of
/// the bitmaps in memory plus the new one.
fn can_store(img: &Qcow2Image, set: &BitmapSet, name: &str, granularity: u64) -> Result<()> {
    if set.list.iter().any(|t| t.name == name) {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("Bitmap already exists: {name}"),
        ));
    }
    let g = img.geometry();
    let check = || -> Result<()> {
        if g.version < 3 {
            return Err(Error::invalid(
                "Cannot store dirty bitmaps in qcow2 v2 files",
            ));
        }
        check_constraints(name, granularity, img.current_size(), g.cluster_size)?;
        let count = set.list.len() as u64 + 1;
        let dir: u64 = set
            .list
            .iter()
            .map(|t| bitmaps::entry_size(t.name.len()))
            .sum::<u64>()
            + bitmaps::entry_size(name.len());
        if count > u64::from(MAX_BITMAPS) {
            return Err(Error::invalid(
                "Maximum number of persistent bitmaps is already reached",
            ));
        }
        if dir > MAX_DIRECTORY_SIZE {
            return Err(Error::invalid("Not enough space in the bitmap directory"));
        }
        Ok(())
    };
    check().map_err(|e| {
        e.prepend(format!(
            "Can't make bitmap '{name}' persistent in '{}'",
            node_name()
        ))
    })
}

/// The name QEMU gives an image node it was not told a name for:
/// "#block" with a counter (1 for the image qemu-img opens) and two
/// random digits.
pub fn node_name() -> String {
    format!("#block1{:02}", std::process::id() % 100)
}

/// The default granularity (QEMU's `bdrv_get_default_bitmap_granularity`).
pub fn default_granularity(cluster_size: u64) -> u64 {
    cluster_size.clamp(4096, 65536)
}

impl PersistentBitmaps for Qcow2Image {
    fn bitmap_list(&self) -> Vec<BitmapStatus> {
        self.bitmap_set()
            .list
            .iter()
            .map(|t| BitmapStatus {
                name: t.name.clone(),
                granularity: t.bits.granularity(),
                enabled: t.enabled,
                inconsistent: t.inconsistent,
            })
            .collect()
    }

    fn bitmap_add(&self, name: &str, granularity: Option<u64>, disabled: bool) -> Result<()> {
        check_new(name, granularity)?;
        let g = granularity.unwrap_or_else(|| default_granularity(self.geometry().cluster_size));
        let mut set = self.bitmap_set();
        can_store(self, &set, name, g)?;
        set.list.push(Tracked {
            name: name.to_string(),
            bits: DirtyBitmap::new(g, self.current_size()),
            enabled: !disabled,
            inconsistent: false,
        });
        self.update_tracking(&set);
        Ok(())
    }

    fn bitmap_remove(&self, name: &str) -> Result<()> {
        let mut set = self.bitmap_set();
        let i = set.find(name)?;
        remove_from_image(self, name)?;
        set.list.remove(i);
        self.update_tracking(&set);
        Ok(())
    }

    fn bitmap_clear(&self, name: &str) -> Result<()> {
        let mut set = self.bitmap_set();
        let i = set.find(name)?;
        check_writable(&set, i)?;
        set.list[i].bits.clear();
        Ok(())
    }

    fn bitmap_enable(&self, name: &str, enabled: bool) -> Result<()> {
        let mut set = self.bitmap_set();
        let i = set.find(name)?;
        if set.list[i].inconsistent {
            return Err(dirty_bitmap::inconsistent(name));
        }
        set.list[i].enabled = enabled;
        self.update_tracking(&set);
        Ok(())
    }

    fn bitmap_get(&self, name: &str) -> Result<DirtyBitmap> {
        let set = self.bitmap_set();
        let t = &set.list[set.find(name)?];
        if t.inconsistent {
            return Err(dirty_bitmap::inconsistent(name));
        }
        Ok(t.bits.clone())
    }

    fn bitmap_merge(&self, target: &str, source: &dyn Fn() -> Result<DirtyBitmap>) -> Result<()> {
        let i = {
            let set = self.bitmap_set();
            let i = set.find(target)?;
            check_writable(&set, i)?;
            i
        };
        let bits = source()?;
        let mut set = self.bitmap_set();
        let anon = DirtyBitmap::new(set.list[i].bits.granularity(), self.current_size());
        check_merge(&anon, &bits)?;
        set.list[i].bits.merge(&bits);
        Ok(())
    }

    fn supports_persistence(&self) -> bool {
        self.geometry().version >= 3
    }
}

/// QEMU's `bdrv_dirty_bitmap_check` with its default flags.
fn check_writable(set: &BitmapSet, i: usize) -> Result<()> {
    let t = &set.list[i];
    if set.readonly {
        return Err(dirty_bitmap::readonly(&t.name));
    }
    if t.inconsistent {
        return Err(dirty_bitmap::inconsistent(&t.name));
    }
    Ok(())
}
