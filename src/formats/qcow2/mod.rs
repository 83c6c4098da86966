//! qcow2 images: the driver, over any `Storage`.
//!
//! ```text
//!   read/write (any thread) --lock--> Meta: L1, L2 cache, refcounts, allocator
//!        |                             (metadata written through, in a
//!        |                              crash-safe order, under the lock)
//!        +--unlock--> read_at/write_at on the data Storage (a file, an RBD image)
//! ```
//!
//! Guest data moves outside the metadata lock; every write registers its
//! guest clusters as "in flight" so that overlapping writers, discards and
//! zero writes wait for it (a cluster is never freed, and reused, under a
//! write still on its way), and a write that allocates links the new
//! clusters into the L2 table once the data (and any copy-on-write of
//! neighbouring bytes) is on disk.

pub mod amend;
pub mod backing;
pub mod bitmap_store;
pub mod bitmaps;
pub mod check;
pub mod compression;
pub mod create;
pub mod crypto;
pub mod header;
pub mod io;
pub mod map;
pub mod measure;
pub mod metadata;
pub mod refcount;
pub mod refcount_width;
pub mod resize;
pub mod snapshot_table;
pub mod tables;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, RwLock};

use serde_json::{Map, Value, json};

use crate::block::driver::{BlockDriver, Check, CheckReport, Preallocation, Repair};
use crate::block::extent::{Allocation, Extent};
use crate::block::info::NodeInfo;
use crate::block::snapshot::{SnapshotInfo, Snapshots};
use crate::block::status::Status;
use crate::error::{Error, ErrorKind, Result};
use crate::formats::{OpenFlags, Opener};
use crate::storage::Storage;

use header::{
    AUTOCLEAR_MASK, COMPAT_LAZY_REFCOUNTS, Header, INCOMPAT_CORRUPT, INCOMPAT_DIRTY, V3_HEADER_LEN,
};
use metadata::{Mapping, Meta};
use tables::Geometry;

pub use create::FORMAT_OPTIONS;

pub struct Qcow2Image {
    /// The name of the storage the image lives in (a path or `json:` name).
    path: String,
    file: Arc<dyn Storage>,
    /// The external data file, when the image has one and it was opened.
    data_file: Option<Arc<dyn Storage>>,
    /// Changes only when `amend` changes the version, the refcount width or
    /// the raw data file bit (Meta's copy changes with it).
    g: RwLock<Geometry>,
    meta: Mutex<Meta>,
    /// Signalled when an in-flight allocation completes.
    settled: Condvar,
    backing: Option<Arc<dyn BlockDriver>>,
    /// The backing file name resolved against the image's directory.
    full_backing: Option<String>,
    writable: bool,
    size: AtomicU64,
    /// Lazy refcounts: the dirty bit is set before the first metadata change
    /// and cleared when the image is closed.
    lazy_refcounts: AtomicBool,
    marked_dirty: AtomicBool,
    /// A read-only view of an internal snapshot (`convert -l`).
    snapshot_view: bool,
    /// Persistent bitmaps, loaded when the image opened.
    bitmaps: Mutex<bitmap_store::BitmapSet>,
    /// Whether writes must set bitmap bits (a bitmap is enabled).
    tracking: AtomicBool,
    /// Whether clusters were preallocated as metadata only (`map.rs`),
    /// found out on the first `map_status`.
    metadata_preallocated: OnceLock<bool>,
    /// The LUKS volume of an encrypted image.
    crypto: Option<Arc<crypto::Crypto>>,
    /// Serializes read-modify-write of partly written encrypted sectors.
    rmw: Mutex<()>,
    /// The node's options that show in its `json:` name
    /// (`encrypt.key-secret`).
    given: Map<String, Value>,
}

/// `qcow2_validate_table`: a table must fit QEMU's limits and start on a
/// cluster boundary.
fn validate_table(
    g: &Geometry,
    offset: u64,
    entries: u64,
    entry_len: u64,
    max_bytes: u64,
    name: &str,
) -> Result<()> {
    if entries > max_bytes / entry_len {
        return Err(Error::new(
            ErrorKind::InvalidFormat,
            format!("{name} too large"),
        ));
    }
    if (i64::MAX as u64) - entries * entry_len < offset || g.offset_into_cluster(offset) != 0 {
        return Err(Error::new(
            ErrorKind::InvalidFormat,
            format!("{name} offset invalid"),
        ));
    }
    Ok(())
}

/// QEMU's `path_combine`: a relative backing name is relative to the
/// directory of the image that names it.
pub fn path_combine(base: &str, name: &str) -> String {
    let protocol = name
        .find(':')
        .is_some_and(|i| !name[..i].contains('/') && i > 0);
    if name.starts_with('/') || protocol {
        return name.to_string();
    }
    match base.rfind('/') {
        Some(i) => format!("{}{name}", &base[..=i]),
        None => name.to_string(),
    }
}

impl Qcow2Image {
    /// Opens the qcow2 image in `file`; its backing image and data file
    /// come through `opener`.
    pub fn open(
        file: Arc<dyn Storage>,
        opts: &OpenFlags,
        opener: &dyn Opener,
    ) -> Result<Arc<dyn BlockDriver>> {
        Ok(Arc::new(Self::open_inner(file, opts, opener, None)?))
    }

    /// `crypto`: the volume already unlocked (a snapshot view's image's).
    fn open_inner(
        file: Arc<dyn Storage>,
        opts: &OpenFlags,
        opener: &dyn Opener,
        crypto: Option<Arc<crypto::Crypto>>,
    ) -> Result<Qcow2Image> {
        let path = file.filename().to_string();
        let mut head = vec![0u8; V3_HEADER_LEN];
        file.read_at(&mut head, 0)
            .map_err(|e| e.prepend("Could not read qcow2 header"))?;
        let mut h = Header::parse_fixed(&head)?;
        let mut first = vec![0u8; h.cluster_size() as usize];
        file.read_at(&mut first, 0)?;
        if let Some(e) = h.unknown_features_error(&first) {
            return Err(e);
        }
        if h.incompatible_features & INCOMPAT_CORRUPT != 0 && opts.writable && !opts.check {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                "qcow2: Image is corrupt; cannot be opened read/write",
            ));
        }
        let g = Geometry::new(&h);
        if g.subcluster_size() < 512 {
            return Err(Error::new(
                ErrorKind::InvalidFormat,
                format!("Unsupported subcluster size: {}", g.subcluster_size()),
            ));
        }
        if h.refcount_order > 6 {
            return Err(Error::new(
                ErrorKind::InvalidFormat,
                "Reference count entry width too large; may not exceed 64 bits",
            ));
        }
        if h.refcount_table_clusters == 0 && !opts.check {
            return Err(Error::new(
                ErrorKind::InvalidFormat,
                "Image does not contain a reference count table",
            ));
        }
        validate_table(
            &g,
            h.refcount_table_offset,
            u64::from(h.refcount_table_clusters),
            g.cluster_size,
            tables::MAX_REFTABLE_BYTES,
            "Reference count table",
        )?;
        if !opts.check {
            validate_table(
                &g,
                h.snapshots_offset,
                u64::from(h.nb_snapshots),
                snapshot_table::ENTRY_HEADER as u64,
                snapshot_table::ENTRY_HEADER as u64 * u64::from(snapshot_table::MAX_SNAPSHOTS),
                "Snapshot table",
            )?;
        }
        validate_table(
            &g,
            h.l1_table_offset,
            u64::from(h.l1_size),
            8,
            tables::MAX_L1_BYTES,
            "Active L1 table",
        )?;
        let l1_needed = g.size_to_l1(h.size);
        if l1_needed > i32::MAX as u64 {
            return Err(Error::new(ErrorKind::InvalidFormat, "Image is too big"));
        }
        if u64::from(h.l1_size) < l1_needed {
            return Err(Error::new(
                ErrorKind::InvalidFormat,
                "L1 table is too small",
            ));
        }
        let mut l1_bytes = vec![0u8; h.l1_size as usize * 8];
        file.read_at(&mut l1_bytes, h.l1_table_offset)
            .map_err(|e| e.prepend("Could not read L1 table"))?;
        let reftable_len = u64::from(h.refcount_table_clusters) * g.cluster_size;
        let mut reftable_bytes = vec![0u8; reftable_len as usize];
        file.read_at(&mut reftable_bytes, h.refcount_table_offset)
            .map_err(|e| e.prepend("Could not initialize refcount handling"))?;
        h.parse_extensions(&first)?;
        let crypto = match crypto {
            Some(c) => Some(c),
            None => crypto::open(&h, file.as_ref(), opts)?.map(Arc::new),
        };

        let data_file = if g.has_data_file {
            let Some(name) = h.data_file.clone() else {
                return Err(Error::invalid("'data-file' is required for this image"));
            };
            if opts.metadata_only {
                None
            } else {
                Some(opener.open_storage(&name, opts.writable)?)
            }
        } else {
            if g.data_file_raw {
                return Err(Error::invalid("data-file-raw requires a data file"));
            }
            None
        };

        let full_backing = h.backing_file.as_ref().map(|b| path_combine(&path, b));
        let backing = match (&full_backing, opts.metadata_only || opts.no_backing) {
            (Some(name), false) => Some(
                opener
                    .open_backing(name, h.backing_format.as_deref())
                    .map_err(|e| e.prepend("Could not open backing file"))?,
            ),
            _ => None,
        };

        let mut meta = Meta::new(
            g,
            file.clone(),
            h.clone(),
            opts.writable,
            opts.diagnostics.clone(),
        );
        meta.l1 = tables::decode_entries(&l1_bytes);
        meta.reftable = tables::decode_entries(&reftable_bytes);
        meta.update_max_reftable_index();
        meta.has_backing = backing.is_some() || h.backing_file.is_some();
        if !opts.check {
            let t = snapshot_table::parse(h.nb_snapshots, h.size, None, |off, len| {
                meta.read_meta(h.snapshots_offset + off, len)
            })?;
            meta.snapshots = t.snapshots;
            meta.snapshots_size = t.size;
        }
        let image = Qcow2Image {
            path,
            file,
            data_file,
            g: RwLock::new(g),
            meta: Mutex::new(meta),
            settled: Condvar::new(),
            backing,
            full_backing,
            writable: opts.writable,
            size: AtomicU64::new(h.size / 512 * 512),
            lazy_refcounts: AtomicBool::new(h.compatible_features & COMPAT_LAZY_REFCOUNTS != 0),
            marked_dirty: AtomicBool::new(false),
            snapshot_view: false,
            bitmaps: Mutex::new(bitmap_store::BitmapSet::default()),
            tracking: AtomicBool::new(false),
            metadata_preallocated: OnceLock::new(),
            crypto,
            rmw: Mutex::new(()),
            given: opts
                .key_secret
                .iter()
                .map(|id| ("encrypt.key-secret".to_string(), json!(id)))
                .collect(),
        };
        if h.stale_bitmaps {
            let diagnostics = &opts.diagnostics;
            diagnostics.warning(if h.version < 3 {
                "This qcow2 v2 image contains bitmaps, but they may have been modified by a program without persistent bitmap support; so now they must all be considered inconsistent"
            } else {
                "a program lacking bitmap support modified this file, so all bitmaps are now considered inconsistent"
            });
            diagnostics.text(
                "Some clusters may be leaked, run 'qemu-img check -r' on the image file to fix.",
            );
        }
        if opts.writable {
            image.clear_unknown_autoclear()?;
        }
        let set = bitmap_store::load(&image, opts.writable)?;
        image.update_tracking(&set);
        *image.bitmap_set() = set;
        if opts.writable && h.incompatible_features & INCOMPAT_DIRTY != 0 && !opts.check {
            image
                .repair_dirty()
                .map_err(|e| e.prepend("Could not repair dirty image"))?;
        }
        Ok(image)
    }

    /// Autoclear bits we do not know are dropped before any write, as the
    /// format asks of programs without their support, and so is a bitmaps
    /// extension a program without bitmap support left behind.
    fn clear_unknown_autoclear(&self) -> Result<()> {
        let mut m = self.lock();
        let keep = AUTOCLEAR_MASK;
        let stale_ext = m.header.stale_bitmaps;
        if m.header.autoclear_features & !keep != 0 || stale_ext {
            m.header.autoclear_features &= keep;
            if stale_ext {
                m.header.stale_bitmaps = false;
            }
            m.write_header()?;
        }
        Ok(())
    }

    /// QEMU repairs an image left dirty (lazy refcounts) when it opens it
    /// for writing, reporting what the repair found.
    fn repair_dirty(&self) -> Result<()> {
        let report = check::run(self, Repair::All)?;
        let diagnostics = self.lock().diagnostics.clone();
        for message in report.messages {
            diagnostics.report(message);
        }
        if report.check_errors > 0 {
            return Err(Error::os(ErrorKind::Io, libc::EIO));
        }
        Ok(())
    }

    pub(crate) fn bitmap_set(&self) -> MutexGuard<'_, bitmap_store::BitmapSet> {
        self.bitmaps.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn update_tracking(&self, set: &bitmap_store::BitmapSet) {
        self.tracking.store(set.tracking(), Ordering::SeqCst);
    }

    /// Sets the bits of the enabled bitmaps for a guest write.
    fn mark_written(&self, offset: u64, len: u64) {
        if self.tracking.load(Ordering::SeqCst) {
            self.bitmap_set().mark(offset, len);
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Meta> {
        self.meta.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn geometry(&self) -> Geometry {
        *self.g.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Installs a changed geometry (after `amend`), in the image and in
    /// its metadata, with the metadata lock held.
    pub(crate) fn set_geometry(&self, m: &mut Meta, g: Geometry) {
        m.g = g;
        *self.g.write().unwrap_or_else(|p| p.into_inner()) = g;
    }

    /// The storage that holds guest data.
    pub(crate) fn data(&self) -> &dyn Storage {
        self.data_file.as_deref().unwrap_or(&*self.file)
    }

    /// Writes guest data of guest offset `guest` at host offset `host`,
    /// encrypted when the image is encrypted (then in whole sectors).
    pub(crate) fn write_data(&self, buf: &[u8], host: u64, guest: u64) -> Result<()> {
        match &self.crypto {
            Some(crypto) => crypto.write(self.data(), buf, host, guest),
            None => self.data().write_at(buf, host),
        }
    }

    /// Whether guest data is encrypted (writes are then whole sectors).
    pub(crate) fn encrypted(&self) -> bool {
        self.crypto.is_some()
    }

    /// Reads guest data of guest offset `guest` at host offset `host`,
    /// decrypted when the image is encrypted.
    pub(crate) fn read_data(&self, buf: &mut [u8], host: u64, guest: u64) -> Result<()> {
        match &self.crypto {
            Some(crypto) => crypto.read(self.data(), buf, host, guest),
            None => self.data().read_at(buf, host),
        }
    }

    /// The storage that holds the image itself (and compressed clusters).
    pub(crate) fn container(&self) -> &dyn Storage {
        &*self.file
    }

    pub(crate) fn backing_image(&self) -> Option<&Arc<dyn BlockDriver>> {
        self.backing.as_ref()
    }

    pub(crate) fn current_size(&self) -> u64 {
        self.size.load(Ordering::SeqCst)
    }

    pub(crate) fn set_size(&self, size: u64) {
        self.size.store(size, Ordering::SeqCst);
    }

    /// Sets the dirty bit before the first metadata change of an image with
    /// lazy refcounts (QEMU's `qcow2_mark_dirty`).
    pub(crate) fn mark_dirty(&self, m: &mut Meta) -> Result<()> {
        if !self.lazy_refcounts.load(Ordering::SeqCst) || self.marked_dirty.load(Ordering::SeqCst) {
            return Ok(());
        }
        if m.header.incompatible_features & INCOMPAT_DIRTY == 0 {
            let v = m.header.incompatible_features | INCOMPAT_DIRTY;
            self.file.write_at(&v.to_be_bytes(), 72)?;
            self.file.flush()?;
            m.header.incompatible_features = v;
        }
        self.marked_dirty.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn mark_clean(&self) -> Result<()> {
        if !self.marked_dirty.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        self.flush_files()?;
        let mut m = self.lock();
        m.header.incompatible_features &= !INCOMPAT_DIRTY;
        let v = m.header.incompatible_features;
        self.file.write_at(&v.to_be_bytes(), 72)?;
        self.file.flush()
    }

    pub(crate) fn flush_files(&self) -> Result<()> {
        if let Some(df) = &self.data_file {
            df.flush()?;
        }
        self.file.flush()
    }

    fn check_range(&self, offset: u64, len: u64) -> Result<()> {
        if offset.checked_add(len).is_none_or(|end| end > self.size()) {
            return Err(Error::new(
                ErrorKind::OutOfBounds,
                format!("Access beyond end of image '{}'", self.path),
            )
            .with_offset(offset));
        }
        if self.lock().broken {
            return Err(Error::os(ErrorKind::CorruptImage, libc::EIO));
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<()> {
        if !self.writable || self.snapshot_view {
            return Err(Error::errno(
                ErrorKind::PermissionDenied,
                "Image is read-only",
                libc::EACCES,
            ));
        }
        Ok(())
    }

    /// The format-specific part of `info` (QAPI `ImageInfoSpecificQCow2`,
    /// fields in declaration order).
    fn format_specific(&self, m: &mut Meta) -> Map<String, Value> {
        let h = &m.header;
        let mut d = Map::new();
        if h.version == 2 {
            d.insert("compat".into(), json!("0.10"));
            d.insert("refcount-bits".into(), json!(1u64 << h.refcount_order));
            d.insert("compression-type".into(), json!(h.compression_type.name()));
            if let Some(crypto) = &self.crypto {
                d.insert("encrypt".into(), Value::Object(crypto.info.clone()));
            }
            return d;
        }
        d.insert("compat".into(), json!("1.1"));
        if let Some(df) = &h.data_file {
            d.insert("data-file".into(), json!(df));
        }
        if self.geometry().has_data_file {
            d.insert("data-file-raw".into(), json!(self.geometry().data_file_raw));
        }
        d.insert("extended-l2".into(), json!(self.geometry().extended_l2));
        d.insert(
            "lazy-refcounts".into(),
            json!(h.compatible_features & COMPAT_LAZY_REFCOUNTS != 0),
        );
        d.insert(
            "corrupt".into(),
            json!(h.incompatible_features & INCOMPAT_CORRUPT != 0),
        );
        d.insert("refcount-bits".into(), json!(1u64 << h.refcount_order));
        let compression = h.compression_type.name();
        if let Some(list) = self.bitmap_list(m)
            && !list.is_empty()
        {
            let items: Vec<Value> = list
                .iter()
                .map(|b| {
                    let mut e = Map::new();
                    e.insert("name".into(), json!(b.name));
                    e.insert("granularity".into(), json!(1u64 << b.granularity_bits));
                    e.insert("flags".into(), json!(b.flag_names()));
                    Value::Object(e)
                })
                .collect();
            d.insert("bitmaps".into(), Value::Array(items));
        }
        d.insert("compression-type".into(), json!(compression));
        if let Some(crypto) = &self.crypto {
            d.insert("encrypt".into(), Value::Object(crypto.info.clone()));
        }
        d
    }

    pub(crate) fn bitmap_list(&self, m: &Meta) -> Option<Vec<bitmaps::Bitmap>> {
        let ext = m.header.bitmaps?;
        let dir = m
            .read_meta(ext.directory_offset, ext.directory_size as usize)
            .ok()?;
        bitmaps::parse_directory(&ext, &dir, self.geometry().cluster_size, self.size()).ok()
    }

    /// A read-only view of snapshot `id` (QEMU's `qcow2_snapshot_load_tmp`:
    /// the snapshot's L1 table, the image's current size).
    fn open_snapshot_view(&self, id: &str) -> Result<Arc<dyn BlockDriver>> {
        let same = SameChildren {
            backing: self.backing.clone(),
            data_file: self.data_file.clone(),
        };
        let flags = OpenFlags {
            diagnostics: self.lock().diagnostics.clone(),
            ..Default::default()
        };
        let mut view = Self::open_inner(self.file.clone(), &flags, &same, self.crypto.clone())?;
        {
            let g = view.geometry();
            let m = view.meta.get_mut().unwrap_or_else(|p| p.into_inner());
            let Some(sn) = m.snapshots.iter().find(|s| s.id == id).cloned() else {
                return Err(Error::invalid("Can't find snapshot"));
            };
            internal_snapshots::validate_snapshot_l1(&g, &sn)?;
            let bytes = m
                .read_meta(sn.l1_table_offset, sn.l1_size as usize * 8)
                .map_err(|_| Error::invalid("Failed to read l1 table for snapshot"))?;
            m.l1 = tables::decode_entries(&bytes);
            m.header.l1_table_offset = sn.l1_table_offset;
        }
        view.snapshot_view = true;
        Ok(Arc::new(view))
    }
}

/// The opener of a snapshot view: the image's own backing and data file.
struct SameChildren {
    backing: Option<Arc<dyn BlockDriver>>,
    data_file: Option<Arc<dyn Storage>>,
}

impl Opener for SameChildren {
    fn open_backing(&self, _name: &str, _format: Option<&str>) -> Result<Arc<dyn BlockDriver>> {
        self.backing.clone().ok_or_else(Error::not_supported)
    }

    fn open_storage(&self, _name: &str, _writable: bool) -> Result<Arc<dyn Storage>> {
        self.data_file.clone().ok_or_else(Error::not_supported)
    }

    fn create_storage(&self, _name: &str, _options: &crate::block::options::Options) -> Result<()> {
        Err(Error::not_supported())
    }

    fn remove_storage(&self, _name: &str) {}
}

impl Drop for Qcow2Image {
    fn drop(&mut self) {
        if self.writable && !self.snapshot_view {
            let set = std::mem::take(&mut *self.bitmap_set());
            if let Err(e) = bitmap_store::store(self, &set) {
                let diagnostics = self.lock().diagnostics.clone();
                diagnostics.error(format!(
                    "Lost persistent bitmaps during inactivation of node '{}': {}",
                    bitmap_store::node_name(),
                    e.message()
                ));
            }
            let _ = self.mark_clean();
        }
    }
}

impl BlockDriver for Qcow2Image {
    fn format_name(&self) -> &'static str {
        "qcow2"
    }

    fn allocates_in_write_order(&self) -> bool {
        true
    }

    fn filename(&self) -> &str {
        &self.path
    }

    fn size(&self) -> u64 {
        self.size.load(Ordering::SeqCst)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.check_range(offset, buf.len() as u64)?;
        io::read(self, buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.check_writable()?;
        self.check_range(offset, buf.len() as u64)?;
        let result = io::write(self, buf, offset);
        self.mark_written(offset, buf.len() as u64);
        result
    }

    fn write_zeroes(&self, offset: u64, len: u64, may_unmap: bool) -> Result<()> {
        self.check_writable()?;
        self.check_range(offset, len)?;
        let result = io::write_zeroes(self, offset, len, may_unmap);
        self.mark_written(offset, len);
        result
    }

    fn discard(&self, offset: u64, len: u64) -> Result<()> {
        self.check_writable()?;
        self.check_range(offset, len)?;
        let result = io::discard(self, offset, len);
        self.mark_written(offset, len);
        result
    }

    fn write_compressed(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.check_writable()?;
        self.check_range(offset, buf.len() as u64)?;
        let result = io::write_compressed(self, buf, offset);
        self.mark_written(offset, buf.len() as u64);
        result
    }

    fn flush(&self) -> Result<()> {
        self.flush_files()
    }

    fn resize(&self, new_size: u64, prealloc: Preallocation) -> Result<()> {
        self.check_writable()?;
        resize::resize(self, new_size, prealloc)
    }

    fn block_status(&self, offset: u64, len: u64) -> Result<Extent> {
        self.check_range(offset, len)?;
        let (mapping, n) = self.lock().map(offset, len)?;
        let allocation = match mapping {
            Mapping::Data(_) | Mapping::Compressed(_) => Allocation::Data,
            Mapping::Zero => Allocation::Zero,
            Mapping::Unallocated if self.backing.is_some() => Allocation::Backing,
            Mapping::Unallocated => Allocation::Unallocated,
        };
        Ok(Extent {
            offset,
            len: n.clamp(1, len),
            allocation,
        })
    }

    fn map_status(&self, offset: u64, len: u64) -> Result<Status> {
        self.check_range(offset, len)?;
        self.status_of(offset, len)
    }

    fn allocation_unit(&self) -> Option<u64> {
        Some(self.geometry().cluster_size)
    }

    fn subcluster_size(&self) -> Option<u64> {
        Some(self.geometry().subcluster_size())
    }

    fn backing(&self) -> Option<Arc<dyn BlockDriver>> {
        self.backing.clone()
    }

    fn supports_backing(&self) -> bool {
        true
    }

    fn change_backing_file(&self, name: Option<&str>, format: Option<&str>) -> Result<()> {
        self.check_writable()?;
        backing::change(self, name, format)
    }

    fn make_empty(&self) -> Result<()> {
        self.check_writable()?;
        backing::make_empty(self)
    }

    fn amend(&self, options: &crate::block::options::Options, force: bool) -> Result<()> {
        self.check_writable()?;
        amend::amend(self, options, force)
    }

    fn snapshot_open(&self, id: &str) -> Result<Arc<dyn BlockDriver>> {
        self.open_snapshot_view(id)
    }

    fn persistent_bitmaps(&self) -> Option<&dyn crate::block::dirty_bitmap::PersistentBitmaps> {
        Some(self)
    }

    fn info(&self) -> Result<NodeInfo> {
        let file_node = self.file.node_info()?;
        let mut m = self.lock();
        let dirty = m.header.incompatible_features & INCOMPAT_DIRTY != 0;
        let specific = self.format_specific(&mut m);
        let snapshots = if self.geometry().has_data_file {
            Vec::new()
        } else {
            m.snapshots.iter().map(|s| s.info()).collect()
        };
        let h = &m.header;
        Ok(NodeInfo {
            filename: crate::block::info::format_node_filename("qcow2", &self.given, &file_node),
            format: "qcow2".into(),
            protocol: false,
            virtual_size: self.size(),
            actual_size: file_node.actual_size,
            dirty_flag: Some(dirty),
            cluster_size: Some(self.geometry().cluster_size),
            encrypted: self.crypto.is_some().then_some(true),
            backing_filename: h.backing_file.clone(),
            full_backing_filename: self.full_backing.clone(),
            backing_filename_format: h.backing_file.as_ref().and(h.backing_format.clone()),
            snapshots: Some(snapshots),
            format_specific: Some(("qcow2".into(), specific)),
            children: vec![("file".into(), file_node)],
        })
    }
}

impl Snapshots for Qcow2Image {
    fn snapshots(&self) -> Result<Option<Vec<SnapshotInfo>>> {
        if self.geometry().has_data_file {
            return Ok(Some(Vec::new()));
        }
        Ok(Some(
            self.lock().snapshots.iter().map(|s| s.info()).collect(),
        ))
    }

    fn snapshot_create(&self, name: &str) -> Result<()> {
        self.check_writable()?;
        internal_snapshots::create(self, name)
    }

    fn snapshot_apply(&self, id: &str) -> Result<()> {
        self.check_writable()?;
        internal_snapshots::apply(self, id)
    }

    fn snapshot_delete(&self, id: &str) -> Result<()> {
        self.check_writable()?;
        internal_snapshots::delete(self, id)
    }
}

impl Check for Qcow2Image {
    fn check(&self, repair: Repair) -> Result<CheckReport> {
        check::run(self, repair)
    }
}

pub mod internal_snapshots;
