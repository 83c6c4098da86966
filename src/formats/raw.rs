//! Raw images in local files: guest offset = file offset.
//!
//! Allocation status comes from the filesystem (SEEK_DATA/SEEK_HOLE), so a
//! sparse raw file converts without reading its holes. When the format was
//! guessed by probing, writes to the first 512 bytes that would make the
//! file probe as another format are refused, as QEMU does: otherwise a guest
//! could turn its raw disk into, say, a qcow2 that names a host file as backing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::block::driver::{BlockDriver, Preallocation};
use crate::block::extent::{Allocation, Extent};
use crate::block::info::NodeInfo;
use crate::block::options::{OptDesc, OptType, Options};
use crate::error::{Error, ErrorKind, Result};
use crate::formats::probe;
use crate::open::create::preallocation;
use crate::storage::file::{
    DEFAULT_EXTENT_SIZE_HINT, FileCreateOptions, LocalFile, SECTOR, round_to_sector,
};

/// The raw format's own options; the file storage adds preallocation.
pub const FORMAT_OPTIONS: &[OptDesc] = &[OptDesc::new("size", OptType::Size, "Virtual disk size")];

/// How much of a new file QEMU allocates at creation.
const FIRST_BLOCK: u64 = 4096;

pub struct RawImage {
    file: LocalFile,
    /// The image size, read once at open (as QEMU keeps its sector count)
    /// and changed by resize, so reads and writes do not stat the file.
    size: AtomicU64,
    probed: bool,
    /// Opened as `driver=file`: the protocol node is the image itself.
    protocol: bool,
}

impl RawImage {
    pub fn open(path: &str, writable: bool, probed: bool) -> Result<Arc<dyn BlockDriver>> {
        Ok(Arc::new(Self::open_file(path, writable, probed, false)?))
    }

    /// Opens the file itself as the image (`driver=file`).
    pub fn open_protocol(path: &str, writable: bool) -> Result<Arc<dyn BlockDriver>> {
        Ok(Arc::new(Self::open_file(path, writable, false, true)?))
    }

    fn open_file(path: &str, writable: bool, probed: bool, protocol: bool) -> Result<RawImage> {
        let file = LocalFile::open(path, writable)?;
        let size = AtomicU64::new(round_to_sector(file.len()?));
        Ok(RawImage {
            file,
            size,
            probed,
            protocol,
        })
    }

    /// Creates a raw file; `options` are the validated `-o` options.
    pub fn create(path: &str, size: u64, options: &Options) -> Result<()> {
        let prealloc = preallocation(options)?;
        if prealloc == Preallocation::Metadata {
            return Err(Error::invalid("Unsupported preallocation mode: metadata"));
        }
        let hint = options
            .size("extent_size_hint")?
            .unwrap_or(DEFAULT_EXTENT_SIZE_HINT as u64);
        let extent_size_hint =
            u32::try_from(hint).map_err(|_| Error::invalid("Extent size hint is too large"))?;
        let opts = FileCreateOptions {
            prealloc,
            nocow: options.bool("nocow")?.unwrap_or(false),
            extent_size_hint,
        };
        let size = round_to_sector(size);
        let file = LocalFile::create(path, size, opts)?;
        if prealloc == Preallocation::Off {
            // QEMU allocates the first block of a new file (so that later
            // alignment probing is cheap); doing the same keeps `info`'s
            // disk size identical for identical commands.
            let head = vec![0u8; FIRST_BLOCK.min(size) as usize];
            file.write_at(&head, 0)?;
        }
        file.sync()
    }

    fn check_range(&self, offset: u64, len: u64) -> Result<()> {
        let size = self.size();
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::new(
                ErrorKind::OutOfBounds,
                format!("Access beyond end of image '{}'", self.file.path()),
            )
            .with_offset(offset));
        }
        Ok(())
    }
}

impl BlockDriver for RawImage {
    fn format_name(&self) -> &'static str {
        if self.protocol { "file" } else { "raw" }
    }

    fn filename(&self) -> &str {
        self.file.path()
    }

    fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.check_range(offset, buf.len() as u64)?;
        self.file.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.check_range(offset, buf.len() as u64)?;
        if self.probed && offset < 512 && !buf.is_empty() {
            let mut sector = [0u8; 512];
            self.file.read_at(&mut sector, 0)?;
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
        self.file.write_at(buf, offset)
    }

    fn write_zeroes(&self, offset: u64, len: u64, may_unmap: bool) -> Result<()> {
        self.check_range(offset, len)?;
        if may_unmap {
            self.file.punch_hole(offset, len)
        } else {
            self.file.zero_range(offset, len)
        }
    }

    fn discard(&self, offset: u64, len: u64) -> Result<()> {
        self.check_range(offset, len)?;
        self.file.punch_hole(offset, len)
    }

    fn flush(&self) -> Result<()> {
        self.file.sync()
    }

    fn resize(&self, new_size: u64, prealloc: Preallocation) -> Result<()> {
        if prealloc == Preallocation::Metadata {
            return Err(Error::invalid("Unsupported preallocation mode: metadata"));
        }
        self.file.set_len(new_size, prealloc)?;
        self.size
            .store(round_to_sector(new_size), Ordering::Release);
        Ok(())
    }

    fn block_status(&self, offset: u64, len: u64) -> Result<Extent> {
        self.check_range(offset, len)?;
        let limit = offset + len;
        let (mut is_data, end) = self.file.data_run(offset, limit)?;
        // Report whole sectors: data ends round up, hole ends round down, and
        // a hole shorter than one sector counts as data.
        let mut end = if is_data {
            round_to_sector(end)
        } else {
            end / SECTOR * SECTOR
        };
        if end <= offset {
            is_data = true;
            end = round_to_sector(offset + 1);
        }
        let allocation = if is_data {
            Allocation::Data
        } else {
            Allocation::Unallocated
        };
        Ok(Extent {
            offset,
            len: end.min(limit) - offset,
            allocation,
        })
    }

    fn info(&self) -> Result<NodeInfo> {
        let file = self.file.node_info()?;
        if self.protocol {
            return Ok(NodeInfo {
                protocol: false,
                ..file
            });
        }
        Ok(NodeInfo {
            filename: self.file.path().to_string(),
            format: "raw".to_string(),
            virtual_size: self.size(),
            actual_size: file.actual_size,
            dirty_flag: Some(false),
            children: vec![("file".to_string(), file)],
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probed_raw_refuses_a_qcow2_header_in_block_0() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r").to_string_lossy().into_owned();
        RawImage::create(&path, 1 << 20, &Options::default()).unwrap();
        let probed = RawImage::open(&path, true, true).unwrap();
        let err = probed.write_at(b"QFI\xfb\0\0\0\x03", 0).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        probed.write_at(b"hello", 0).unwrap();
        let explicit = RawImage::open(&path, true, false).unwrap();
        explicit.write_at(b"QFI\xfb\0\0\0\x03", 0).unwrap();
    }

    #[test]
    fn block_status_follows_holes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r").to_string_lossy().into_owned();
        RawImage::create(&path, 8 << 20, &Options::default()).unwrap();
        let img = RawImage::open(&path, true, false).unwrap();
        img.write_at(&[7u8; 65536], 4 << 20).unwrap();
        // The first block is allocated at creation, as QEMU does.
        assert_eq!(
            img.block_status(0, 8 << 20).unwrap().allocation,
            Allocation::Data
        );
        let hole = img
            .block_status(FIRST_BLOCK, (8 << 20) - FIRST_BLOCK)
            .unwrap();
        assert_eq!(
            hole,
            Extent {
                offset: FIRST_BLOCK,
                len: (4 << 20) - FIRST_BLOCK,
                allocation: Allocation::Unallocated
            }
        );
        let second = img.block_status(4 << 20, 4 << 20).unwrap();
        assert_eq!(second.allocation, Allocation::Data);
        assert!(img.read_at(&mut [0u8; 1], 8 << 20).is_err());
    }
}
