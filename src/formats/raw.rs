//! The raw format: guest offset = storage offset, or a window of the
//! storage with QEMU's `offset` and `size` options.
//!
//! Allocation status comes from the storage (SEEK_DATA/SEEK_HOLE for a
//! file, the object map for RBD), so a sparse raw image converts without
//! reading its holes. The storage may be another format node (raw over raw
//! or qcow2, `storage/node.rs`), as QEMU's raw driver sits on any node.
//! Snapshots are the storage's, as QEMU's raw driver falls through to its
//! file child for them, and so is a backing file (an RBD clone's parent,
//! rbdimg's extension: QEMU's rbd driver hides the parent), when the image
//! is the whole storage; raw has no consistency check (the storage's runs
//! only when the storage node itself is the image, `-f rbd`). When the
//! format was guessed by probing, writes to the first 512 bytes that would
//! make the image probe as another format are refused, as QEMU does:
//! otherwise a guest could turn its raw disk into, say, a qcow2 that names
//! a host file as backing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};

use crate::block::driver::{BlockDriver, Check, CheckReport, Preallocation, Repair};
use crate::block::extent::{Allocation, Extent};
use crate::block::info::{NodeInfo, format_node_filename};
use crate::block::measure::Measure;
use crate::block::options::{OptDesc, OptType};
use crate::block::options::{Options, SIZE_HINT};
use crate::block::snapshot::{SnapshotInfo, Snapshots};
use crate::block::status::Status;
use crate::block::{SECTOR, round_to_sector};
use crate::error::{Error, ErrorKind, Result};
use crate::formats::probe;
use crate::size::parse_size;
use crate::storage::Storage;

/// The raw format's own options; the storage adds its own.
pub const FORMAT_OPTIONS: &[OptDesc] = &[OptDesc::new("size", OptType::Size, "Virtual disk size")];

/// QEMU's raw `offset` and `size` options: the image is the window
/// `[offset, offset + size)` of its storage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawWindow {
    pub offset: u64,
    /// A fixed size; without one the window runs to the storage's end (and
    /// resizing moves the end).
    pub size: Option<u64>,
    /// The options as given, for the node's `json:` name.
    pub given: Map<String, Value>,
}

impl RawWindow {
    /// Reads the options (later ones win), with QEMU's messages.
    pub fn parse(given: &[(String, Value)]) -> Result<RawWindow> {
        let mut window = RawWindow::default();
        for (key, value) in given {
            let n = match value {
                Value::String(text) => parse_size(text).ok(),
                Value::Number(n) if n.is_i64() && !n.is_u64() => {
                    return Err(Error::invalid(format!(
                        "Value '{n}' is out of range for parameter '{key}'"
                    )));
                }
                Value::Number(n) => n.as_u64(),
                _ => None,
            };
            let n = n.ok_or_else(|| {
                Error::invalid(format!(
                    "Parameter '{key}' expects a non-negative number below 2^64\n{SIZE_HINT}"
                ))
            })?;
            match key.as_str() {
                "offset" => window.offset = n,
                _ => window.size = Some(n),
            }
            window.given.insert(key.clone(), value.clone());
        }
        Ok(window)
    }
}

/// `measure -O raw` (QEMU's `raw_measure`): every byte counts, allocated
/// or not: the source's length, or `-o size` in whole sectors.
pub fn measure(options: &Options, source_size: Option<u64>) -> Result<Measure> {
    let required = match source_size {
        Some(size) => size,
        None => round_to_sector(options.size("size")?.unwrap_or(0)),
    };
    Ok(Measure {
        required,
        fully_allocated: required,
        bitmaps: None,
    })
}

pub struct RawImage {
    storage: Arc<dyn Storage>,
    /// Where the image starts in the storage, and whether its size is fixed.
    offset: u64,
    fixed_size: bool,
    /// The `offset`/`size` options as given, shown in the `json:` name.
    given: Map<String, Value>,
    /// The image size, read once at open (as QEMU keeps its sector count)
    /// and changed by resize, so reads and writes do not stat the storage.
    size: AtomicU64,
    probed: bool,
    /// Opened as the protocol itself (`-f file`, `-f rbd`): the storage
    /// node is the image.
    protocol: bool,
}

impl RawImage {
    /// Opens `storage` (the `window` of it) as a raw image; `probed` when
    /// the format was guessed.
    pub fn open(
        storage: Arc<dyn Storage>,
        probed: bool,
        window: &RawWindow,
    ) -> Result<Arc<dyn BlockDriver>> {
        Ok(Arc::new(Self::new(storage, probed, false, window)?))
    }

    /// Opens the storage node itself as the image (`-f file`, `-f rbd`).
    pub fn open_protocol(storage: Arc<dyn Storage>) -> Result<Arc<dyn BlockDriver>> {
        Ok(Arc::new(Self::new(
            storage,
            false,
            true,
            &RawWindow::default(),
        )?))
    }

    /// QEMU's `raw_apply_options` checks, in its order and words.
    fn new(
        storage: Arc<dyn Storage>,
        probed: bool,
        protocol: bool,
        window: &RawWindow,
    ) -> Result<RawImage> {
        if window.size.is_some_and(|s| !s.is_multiple_of(SECTOR)) {
            return Err(Error::invalid(format!(
                "Specified size is not multiple of {SECTOR}"
            )));
        }
        let real = round_to_sector(storage.length()?);
        let offset = window.offset;
        if offset > real {
            return Err(Error::invalid(format!(
                "Offset ({offset}) cannot be greater than size of the containing file ({real})"
            )));
        }
        let size = match window.size {
            Some(size) if real - offset < size => {
                return Err(Error::invalid(format!(
                    "The sum of offset ({offset}) and size ({size}) has to be smaller or equal to the  actual size of the containing file ({real})"
                )));
            }
            Some(size) => size,
            None => round_to_sector(real - offset),
        };
        Ok(RawImage {
            storage,
            offset,
            fixed_size: window.size.is_some(),
            given: window.given.clone(),
            size: AtomicU64::new(size),
            probed,
            protocol,
        })
    }

    /// The storage's backing, when the image is the whole storage (a window
    /// of it reads through at other offsets than the backing's).
    fn storage_backing(&self) -> Option<crate::storage::Backing> {
        if self.offset != 0 || self.fixed_size {
            return None;
        }
        self.storage.backing()
    }

    fn check_range(&self, offset: u64, len: u64) -> Result<()> {
        let size = self.size();
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::new(
                ErrorKind::OutOfBounds,
                format!("Access beyond end of image '{}'", self.storage.filename()),
            )
            .with_offset(offset));
        }
        Ok(())
    }
}

impl BlockDriver for RawImage {
    fn format_name(&self) -> &'static str {
        if self.protocol {
            self.storage.protocol()
        } else {
            "raw"
        }
    }

    fn filename(&self) -> &str {
        self.storage.filename()
    }

    fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.check_range(offset, buf.len() as u64)?;
        self.storage.read_at(buf, self.offset + offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.check_range(offset, buf.len() as u64)?;
        // Block 0 is the image's: the first sector of its window.
        if self.probed && offset < 512 && !buf.is_empty() {
            let mut sector = [0u8; 512];
            self.storage.read_at(&mut sector, self.offset)?;
            let start = offset as usize;
            let n = buf.len().min(512 - start);
            sector[start..start + n].copy_from_slice(&buf[..n]);
            if probe::probe(&sector) != "raw" {
                return Err(Error::errno(
                    ErrorKind::PermissionDenied,
                    "Write to block 0 refused",
                    libc::EPERM,
                ));
            }
        }
        self.storage.write_at(buf, self.offset + offset)
    }

    fn write_zeroes(&self, offset: u64, len: u64, may_unmap: bool) -> Result<()> {
        self.check_range(offset, len)?;
        if may_unmap {
            self.storage.discard(self.offset + offset, len)
        } else {
            self.storage.zero_range(self.offset + offset, len)
        }
    }

    fn discard(&self, offset: u64, len: u64) -> Result<()> {
        self.check_range(offset, len)?;
        self.storage.discard(self.offset + offset, len)
    }

    fn flush(&self) -> Result<()> {
        self.storage.flush()
    }

    fn resize(&self, new_size: u64, prealloc: Preallocation) -> Result<()> {
        if self.fixed_size {
            return Err(Error::unsupported("Cannot resize fixed-size raw disks"));
        }
        let end = new_size
            .checked_add(self.offset)
            .ok_or_else(|| Error::os(ErrorKind::InvalidArgument, libc::EINVAL))?;
        self.storage.set_len(end, prealloc)?;
        self.size
            .store(round_to_sector(new_size), Ordering::Release);
        Ok(())
    }

    fn block_status(&self, offset: u64, len: u64) -> Result<Extent> {
        self.check_range(offset, len)?;
        let mut extent = self.storage.block_status(self.offset + offset, len)?;
        // A window has no backing of its own: what shows through is data.
        if extent.allocation == Allocation::Backing && (self.offset != 0 || self.fixed_size) {
            extent.allocation = Allocation::Data;
        }
        Ok(Extent { offset, ..extent })
    }

    fn backing(&self) -> Option<Arc<dyn BlockDriver>> {
        let backing = self.storage_backing()?;
        RawImage::open(backing.storage, false, &RawWindow::default()).ok()
    }

    fn detach_backing(&self, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<()> {
        self.storage.flatten(progress)
    }

    /// Only `detach_backing` drops an RBD clone's parent: the header alone
    /// (`rebase -u`) cannot, its data lives in the parent.
    fn change_backing_file(&self, _name: Option<&str>, _format: Option<&str>) -> Result<()> {
        if self.storage_backing().is_some() {
            return Err(Error::invalid(
                "an RBD clone's parent cannot be dropped without copying its data: leave out -u \
                 to flatten it",
            ));
        }
        Err(Error::not_supported())
    }

    /// The storage's status at the window's offset (QEMU's raw driver
    /// answers `BDRV_BLOCK_RAW`: ask the file).
    fn map_status(&self, offset: u64, len: u64) -> Result<Status> {
        self.check_range(offset, len)?;
        let mut status = self.storage.map_status(self.offset + offset, len)?;
        status.len = status.len.clamp(1, len);
        // A window has no backing of its own: what shows through is data.
        if !status.data && !status.zero && (self.offset != 0 || self.fixed_size) {
            (status.data, status.allocated) = (true, true);
        }
        Ok(status)
    }

    fn allocation_unit(&self) -> Option<u64> {
        self.storage.allocation_unit()
    }

    fn info(&self) -> Result<NodeInfo> {
        let file = self.storage.node_info()?;
        let backing = self.storage_backing();
        let (backing_filename, full_backing_filename, backing_filename_format) = match backing {
            Some(b) => (Some(b.name), Some(b.full_name), Some("raw".to_string())),
            None => (None, None, None),
        };
        if self.protocol {
            return Ok(NodeInfo {
                protocol: false,
                backing_filename,
                full_backing_filename,
                backing_filename_format,
                ..file
            });
        }
        Ok(NodeInfo {
            filename: format_node_filename("raw", &self.given, &file),
            format: "raw".to_string(),
            virtual_size: self.size(),
            actual_size: file.actual_size,
            dirty_flag: Some(false),
            cluster_size: file.cluster_size,
            backing_filename,
            full_backing_filename,
            backing_filename_format,
            snapshots: file.snapshots.clone(),
            children: vec![("file".to_string(), file)],
            ..Default::default()
        })
    }
}

impl Snapshots for RawImage {
    fn snapshots(&self) -> Result<Option<Vec<SnapshotInfo>>> {
        self.storage.snapshots()
    }

    fn snapshot_create(&self, name: &str) -> Result<()> {
        self.storage.snapshot_create(name)
    }

    fn snapshot_apply(&self, id: &str) -> Result<()> {
        self.storage.snapshot_apply(id)
    }

    fn snapshot_delete(&self, id: &str) -> Result<()> {
        self.storage.snapshot_delete(id)
    }
}

/// Raw has no check: qemu-img reports "does not support checks" (exit 63)
/// for raw over anything. The storage node opened as the image (`-f rbd`)
/// is checked by the storage (RBD's object map: rbdimg's extension).
impl Check for RawImage {
    fn check(&self, repair: Repair) -> Result<CheckReport> {
        if !self.protocol {
            return Err(Error::unsupported(
                "This image format does not support checks",
            ));
        }
        self.storage.check(repair)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::extent::Allocation;
    use crate::block::options::Options;
    use crate::storage::file::LocalFile;

    fn raw_file(dir: &tempfile::TempDir, size: u64) -> Arc<dyn Storage> {
        let path = dir.path().join("r").to_string_lossy().into_owned();
        LocalFile::create_with(&path, size, &Options::default()).unwrap();
        Arc::new(LocalFile::open(&path, true).unwrap())
    }

    #[test]
    fn probed_raw_refuses_a_qcow2_header_in_block_0() {
        let dir = tempfile::tempdir().unwrap();
        let file = raw_file(&dir, 1 << 20);
        let probed = RawImage::open(file.clone(), true, &RawWindow::default()).unwrap();
        let err = probed.write_at(b"QFI\xfb\0\0\0\x03", 0).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        probed.write_at(b"hello", 0).unwrap();
        let explicit = RawImage::open(file, false, &RawWindow::default()).unwrap();
        explicit.write_at(b"QFI\xfb\0\0\0\x03", 0).unwrap();
    }

    #[test]
    fn block_status_follows_holes() {
        let dir = tempfile::tempdir().unwrap();
        let img = RawImage::open(raw_file(&dir, 8 << 20), false, &RawWindow::default()).unwrap();
        img.write_at(&[7u8; 65536], 4 << 20).unwrap();
        // The first block is allocated at creation, as QEMU does.
        assert_eq!(
            img.block_status(0, 8 << 20).unwrap().allocation,
            Allocation::Data
        );
        let hole = img.block_status(4096, (8 << 20) - 4096).unwrap();
        assert_eq!(
            hole,
            Extent {
                offset: 4096,
                len: (4 << 20) - 4096,
                allocation: Allocation::Unallocated
            }
        );
        let second = img.block_status(4 << 20, 4 << 20).unwrap();
        assert_eq!(second.allocation, Allocation::Data);
        assert!(img.read_at(&mut [0u8; 1], 8 << 20).is_err());
    }

    fn window(given: &[(&str, Value)]) -> Result<RawWindow> {
        let given: Vec<_> = given
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        RawWindow::parse(&given)
    }

    #[test]
    fn offset_and_size_make_a_window_as_qemu_checks_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = raw_file(&dir, 4 << 20);
        file.write_at(b"inside", 1 << 20).unwrap();
        let w = window(&[
            ("offset", Value::String("1M".into())),
            ("size", 1024.into()),
        ])
        .unwrap();
        let img = RawImage::open(file.clone(), false, &w).unwrap();
        assert_eq!(img.size(), 1024);
        let mut buf = [0u8; 6];
        img.read_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"inside");
        img.write_at(b"OUT", 1021).unwrap();
        file.read_at(&mut buf[..3], (1 << 20) + 1021).unwrap();
        assert_eq!(&buf[..3], b"OUT");
        assert!(img.write_at(b"x", 1024).is_err());
        assert_eq!(
            img.resize(2048, Preallocation::Off)
                .unwrap_err()
                .to_string(),
            "Cannot resize fixed-size raw disks"
        );
        let open = |w: &RawWindow| {
            RawImage::open(file.clone(), false, w)
                .err()
                .unwrap()
                .to_string()
        };
        assert_eq!(
            open(&window(&[("size", 1000.into())]).unwrap()),
            "Specified size is not multiple of 512"
        );
        assert_eq!(
            open(&window(&[("offset", (8u64 << 20).into())]).unwrap()),
            "Offset (8388608) cannot be greater than size of the containing file (4194304)"
        );
        assert_eq!(
            open(
                &window(&[
                    ("offset", (3u64 << 20).into()),
                    ("size", (2u64 << 20).into())
                ])
                .unwrap()
            ),
            "The sum of offset (3145728) and size (2097152) has to be smaller or equal to the  actual size of the containing file (4194304)"
        );
        assert_eq!(
            window(&[("offset", (-1).into())]).unwrap_err().to_string(),
            "Value '-1' is out of range for parameter 'offset'"
        );
        assert!(
            window(&[("offset", "x".into())])
                .unwrap_err()
                .to_string()
                .starts_with("Parameter 'offset' expects a non-negative number below 2^64\n")
        );
        // Without a size the window ends with the storage, and moves with it.
        let tail = RawImage::open(
            file.clone(),
            false,
            &window(&[("offset", 1000.into())]).unwrap(),
        )
        .unwrap();
        assert_eq!(tail.size(), (4 << 20) - 512);
        tail.resize(1 << 20, Preallocation::Off).unwrap();
        assert_eq!(file.length().unwrap(), (1 << 20) + 1000);
    }

    #[test]
    fn windows_are_named_as_qemu_names_them() {
        let dir = tempfile::tempdir().unwrap();
        let file = raw_file(&dir, 4 << 20);
        let name = |given: &[(&str, Value)]| {
            let img = RawImage::open(file.clone(), false, &window(given).unwrap()).unwrap();
            let info = img.info().unwrap();
            info.filename.replace(file.filename(), "base.raw")
        };
        assert_eq!(name(&[]), "base.raw");
        assert_eq!(
            name(&[("offset", 1048576.into()), ("size", 1048576.into())]),
            r#"json:{"offset": 1048576, "driver": "raw", "size": 1048576, "file": {"driver": "file", "filename": "base.raw"}}"#
        );
        assert_eq!(
            name(&[("size", "1048576".into())]),
            r#"json:{"driver": "raw", "size": "1048576", "file": {"driver": "file", "filename": "base.raw"}}"#
        );
        assert_eq!(
            name(&[("offset", "1k".into())]),
            r#"json:{"offset": "1k", "driver": "raw", "file": {"driver": "file", "filename": "base.raw"}}"#
        );
    }

    #[test]
    fn raw_sits_on_another_format_node() {
        use crate::storage::node::NodeStorage;
        let dir = tempfile::tempdir().unwrap();
        let file = raw_file(&dir, 1 << 20);
        let inner =
            RawImage::open(file, false, &window(&[("offset", 512.into())]).unwrap()).unwrap();
        let over = |w: &RawWindow| {
            RawImage::open(Arc::new(NodeStorage::new(inner.clone())), false, w).unwrap()
        };
        let outer = over(&window(&[("size", 4096.into())]).unwrap());
        outer.write_at(b"abc", 0).unwrap();
        let mut buf = [0u8; 3];
        inner.read_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"abc");
        assert!(outer.write_at(b"x", 4096).is_err());
        // Named by the options of the whole stack, as QEMU names it.
        let name = |img: &Arc<dyn BlockDriver>| {
            let info = img.info().unwrap();
            info.filename.replace(inner.filename(), "A")
        };
        assert_eq!(
            name(&outer),
            r#"json:{"driver": "raw", "size": 4096, "file": {"offset": 512, "driver": "raw", "file": {"driver": "file", "filename": "A"}}}"#
        );
        let plain = RawImage::open(raw_file(&dir, 1 << 20), false, &RawWindow::default()).unwrap();
        let over_plain = RawImage::open(
            Arc::new(NodeStorage::new(plain.clone())),
            false,
            &RawWindow::default(),
        )
        .unwrap();
        assert_eq!(over_plain.size(), 1 << 20);
        assert_eq!(
            over_plain
                .info()
                .unwrap()
                .filename
                .replace(plain.filename(), "A"),
            r#"json:{"driver": "raw", "file": {"driver": "raw", "file": {"driver": "file", "filename": "A"}}}"#
        );
        // Raw has no check of its own, over any node.
        assert_eq!(
            outer.check(Repair::None).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
    }
}
