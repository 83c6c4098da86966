//! The raw format: guest offset = storage offset.
//!
//! Allocation status comes from the storage (SEEK_DATA/SEEK_HOLE for a
//! file, the object map for RBD), so a sparse raw image converts without
//! reading its holes. Snapshots and the consistency check are the
//! storage's, as QEMU's raw driver falls through to its file child. When
//! the format was guessed by probing, writes to the first 512 bytes that
//! would make the image probe as another format are refused, as QEMU does:
//! otherwise a guest could turn its raw disk into, say, a qcow2 that names
//! a host file as backing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::block::driver::{BlockDriver, CheckReport, Preallocation, Repair};
use crate::block::extent::Extent;
use crate::block::info::NodeInfo;
use crate::block::options::{OptDesc, OptType};
use crate::block::round_to_sector;
use crate::block::snapshot::SnapshotInfo;
use crate::error::{Error, ErrorKind, Result};
use crate::formats::probe;
use crate::storage::Storage;

/// The raw format's own options; the storage adds its own.
pub const FORMAT_OPTIONS: &[OptDesc] = &[OptDesc::new("size", OptType::Size, "Virtual disk size")];

pub struct RawImage {
    storage: Arc<dyn Storage>,
    /// The image size, read once at open (as QEMU keeps its sector count)
    /// and changed by resize, so reads and writes do not stat the storage.
    size: AtomicU64,
    probed: bool,
    /// Opened as the protocol itself (`-f file`, `-f rbd`): the storage
    /// node is the image.
    protocol: bool,
}

impl RawImage {
    /// Opens `storage` as a raw image; `probed` when the format was guessed.
    pub fn open(storage: Arc<dyn Storage>, probed: bool) -> Result<Arc<dyn BlockDriver>> {
        Ok(Arc::new(Self::new(storage, probed, false)?))
    }

    /// Opens the storage node itself as the image (`-f file`, `-f rbd`).
    pub fn open_protocol(storage: Arc<dyn Storage>) -> Result<Arc<dyn BlockDriver>> {
        Ok(Arc::new(Self::new(storage, false, true)?))
    }

    fn new(storage: Arc<dyn Storage>, probed: bool, protocol: bool) -> Result<RawImage> {
        let size = AtomicU64::new(round_to_sector(storage.length()?));
        Ok(RawImage {
            storage,
            size,
            probed,
            protocol,
        })
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
        self.storage.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.check_range(offset, buf.len() as u64)?;
        if self.probed && offset < 512 && !buf.is_empty() {
            let mut sector = [0u8; 512];
            self.storage.read_at(&mut sector, 0)?;
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
        self.storage.write_at(buf, offset)
    }

    fn write_zeroes(&self, offset: u64, len: u64, may_unmap: bool) -> Result<()> {
        self.check_range(offset, len)?;
        if may_unmap {
            self.storage.discard(offset, len)
        } else {
            self.storage.zero_range(offset, len)
        }
    }

    fn discard(&self, offset: u64, len: u64) -> Result<()> {
        self.check_range(offset, len)?;
        self.storage.discard(offset, len)
    }

    fn flush(&self) -> Result<()> {
        self.storage.flush()
    }

    fn resize(&self, new_size: u64, prealloc: Preallocation) -> Result<()> {
        self.storage.set_len(new_size, prealloc)?;
        self.size
            .store(round_to_sector(new_size), Ordering::Release);
        Ok(())
    }

    fn block_status(&self, offset: u64, len: u64) -> Result<Extent> {
        self.check_range(offset, len)?;
        self.storage.block_status(offset, len)
    }

    fn allocation_unit(&self) -> Option<u64> {
        self.storage.allocation_unit()
    }

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

    fn info(&self) -> Result<NodeInfo> {
        let file = self.storage.node_info()?;
        if self.protocol {
            return Ok(NodeInfo {
                protocol: false,
                ..file
            });
        }
        Ok(NodeInfo {
            filename: crate::block::info::format_node_filename("raw", &file.filename),
            format: "raw".to_string(),
            virtual_size: self.size(),
            actual_size: file.actual_size,
            dirty_flag: Some(false),
            cluster_size: file.cluster_size,
            snapshots: file.snapshots.clone(),
            children: vec![("file".to_string(), file)],
            ..Default::default()
        })
    }

    fn check(&self, repair: Repair) -> Result<CheckReport> {
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
        let probed = RawImage::open(file.clone(), true).unwrap();
        let err = probed.write_at(b"QFI\xfb\0\0\0\x03", 0).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        probed.write_at(b"hello", 0).unwrap();
        let explicit = RawImage::open(file, false).unwrap();
        explicit.write_at(b"QFI\xfb\0\0\0\x03", 0).unwrap();
    }

    #[test]
    fn block_status_follows_holes() {
        let dir = tempfile::tempdir().unwrap();
        let img = RawImage::open(raw_file(&dir, 8 << 20), false).unwrap();
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
}
