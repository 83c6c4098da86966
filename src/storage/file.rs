//! A local file as byte storage (QEMU's `file` protocol): positioned I/O on one
//! descriptor shared by all threads, hole punching, zero ranges, and the
//! filesystem's own map of data and holes.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;

use serde_json::Map;

use crate::block::driver::{Check, Preallocation};
use crate::block::extent::{Allocation, Extent};
use crate::block::info::NodeInfo;
use crate::block::options::{OptDesc, OptType, Options};
use crate::block::snapshot::Snapshots;
use crate::block::status::Status;
use crate::block::{SECTOR, round_to_sector};
use crate::error::{Error, ErrorKind, Result};
use crate::storage::Storage;

/// The `file` protocol's `-o` options.
pub const CREATE_OPTIONS: &[OptDesc] = &[
    OptDesc::new("size", OptType::Size, "Virtual disk size"),
    OptDesc::new(
        "preallocation",
        OptType::Str,
        "Preallocation mode (allowed values: off, falloc, full)",
    ),
    OptDesc::new(
        "nocow",
        OptType::Bool,
        "Turn off copy-on-write (valid only on btrfs)",
    ),
    OptDesc::new(
        "extent_size_hint",
        OptType::Size,
        "Extent size hint for the image file, 0 to disable",
    ),
];

/// Layout hints for a new file (the `file` protocol's create options).
#[derive(Debug, Clone, Copy, Default)]
pub struct FileCreateOptions {
    pub prealloc: Preallocation,
    /// Disable copy-on-write (btrfs); ignored where unsupported, as in QEMU.
    pub nocow: bool,
    /// Extent size hint in bytes (XFS); ignored where unsupported, as in QEMU.
    pub extent_size_hint: u32,
}

/// QEMU's default extent size hint for new files.
pub const DEFAULT_EXTENT_SIZE_HINT: u32 = 1 << 20;

/// How much of a new file QEMU allocates at creation.
const FIRST_BLOCK: u64 = 4096;

impl FileCreateOptions {
    /// The `file` protocol's `-o` options; errors worded as QEMU's.
    pub fn from_options(options: &Options) -> Result<FileCreateOptions> {
        let hint = options
            .size("extent_size_hint")?
            .unwrap_or(DEFAULT_EXTENT_SIZE_HINT as u64);
        Ok(FileCreateOptions {
            prealloc: options.preallocation()?,
            nocow: options.bool("nocow")?.unwrap_or(false),
            extent_size_hint: u32::try_from(hint)
                .map_err(|_| Error::invalid("Extent size hint is too large"))?,
        })
    }
}

pub struct LocalFile {
    file: File,
    path: String,
}

impl LocalFile {
    /// Opens an existing file; errors read "Could not open 'path': reason".
    pub fn open(path: &str, writable: bool) -> Result<LocalFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .map_err(|e| Error::io(format!("Could not open '{path}'"), e))?;
        if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(Error::invalid(format!(
                "'file' driver requires '{path}' to be a regular file"
            )));
        }
        Ok(LocalFile {
            file,
            path: path.to_string(),
        })
    }

    /// Creates (or truncates) a file of `size` bytes.
    pub fn create(path: &str, size: u64, opts: FileCreateOptions) -> Result<LocalFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(path)
            .map_err(|e| Error::io(format!("Could not create '{path}'"), e))?;
        let local = LocalFile {
            file,
            path: path.to_string(),
        };
        // Both hints must be set while the file is still empty.
        if opts.nocow {
            local.set_nocow();
        }
        if opts.extent_size_hint > 0 {
            local.set_extent_size_hint(opts.extent_size_hint);
        }
        local
            .grow(0, size, opts.prealloc)
            .map_err(|e| e.prepend("Could not resize file"))?;
        Ok(local)
    }

    fn set_nocow(&self) {
        const FS_NOCOW_FL: libc::c_long = 0x0080_0000;
        let fd = self.file.as_raw_fd();
        let mut flags: libc::c_long = 0;
        // SAFETY: FS_IOC_GETFLAGS/SETFLAGS read and write one long we own.
        unsafe {
            if libc::ioctl(fd, libc::FS_IOC_GETFLAGS, &mut flags) == 0 {
                flags |= FS_NOCOW_FL;
                libc::ioctl(fd, libc::FS_IOC_SETFLAGS, &flags);
            }
        }
    }

    fn set_extent_size_hint(&self, hint: u32) {
        #[repr(C)]
        #[derive(Default)]
        struct FsXattr {
            xflags: u32,
            extsize: u32,
            nextents: u32,
            projid: u32,
            cowextsize: u32,
            pad: [u8; 8],
        }
        const FS_IOC_FSGETXATTR: libc::c_ulong = 0x801c_581f;
        const FS_IOC_FSSETXATTR: libc::c_ulong = 0x401c_5820;
        const FS_XFLAG_EXTSIZE: u32 = 0x800;
        let fd = self.file.as_raw_fd();
        let mut attr = FsXattr::default();
        // SAFETY: the ioctls read and write one fsxattr we own.
        unsafe {
            if libc::ioctl(fd, FS_IOC_FSGETXATTR, &mut attr) == 0 {
                attr.xflags |= FS_XFLAG_EXTSIZE;
                attr.extsize = hint;
                libc::ioctl(fd, FS_IOC_FSSETXATTR, &attr);
            }
        }
    }

    /// Creates a new image file with the `file` protocol's `-o` options
    /// (QEMU's `raw_co_create`), its first block allocated as QEMU does.
    pub fn create_with(path: &str, size: u64, options: &Options) -> Result<LocalFile> {
        let opts = FileCreateOptions::from_options(options)?;
        if opts.prealloc == Preallocation::Metadata {
            return Err(Error::invalid("Unsupported preallocation mode: metadata"));
        }
        let size = round_to_sector(size);
        let file = LocalFile::create(path, size, opts)?;
        if opts.prealloc == Preallocation::Off {
            // Later alignment probing is cheap this way; doing the same
            // keeps `info`'s disk size identical for identical commands.
            let head = vec![0u8; FIRST_BLOCK.min(size) as usize];
            file.write_at(&head, 0)?;
        }
        file.flush()?;
        Ok(file)
    }

    /// Bytes the filesystem has allocated for the file.
    fn allocated_bytes(&self) -> Result<u64> {
        self.file
            .metadata()
            .map(|m| m.blocks() * 512)
            .map_err(|e| self.err("stat", e))
    }

    fn write_zeros(&self, offset: u64, len: u64) -> Result<()> {
        const CHUNK: u64 = 1 << 20;
        let zeros = vec![0u8; CHUNK.min(len) as usize];
        let mut pos = offset;
        while pos < offset + len {
            let n = CHUNK.min(offset + len - pos) as usize;
            self.write_at(&zeros[..n], pos)?;
            pos += n as u64;
        }
        Ok(())
    }

    fn fallocate(&self, mode: libc::c_int, offset: u64, len: u64) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        // SAFETY: plain syscall on a descriptor we own.
        let rc = unsafe { libc::fallocate(self.file.as_raw_fd(), mode, offset as i64, len as i64) };
        if rc != 0 {
            return Err(self
                .err("fallocate", io::Error::last_os_error())
                .with_offset(offset));
        }
        Ok(())
    }

    /// Extends the file; errors are bare strerror texts for callers to word.
    fn grow(&self, old: u64, size: u64, prealloc: Preallocation) -> Result<()> {
        if size > i64::MAX as u64 {
            return Err(Error::os(ErrorKind::InvalidArgument, libc::EINVAL));
        }
        let truncate = |len| {
            self.file
                .set_len(len)
                .map_err(|e| Error::os(ErrorKind::Io, e.raw_os_error().unwrap_or(libc::EIO)))
        };
        match prealloc {
            Preallocation::Off | Preallocation::Metadata => truncate(size),
            Preallocation::Falloc => {
                // SAFETY: plain syscall on a descriptor we own.
                let rc = unsafe {
                    libc::posix_fallocate(self.file.as_raw_fd(), old as i64, (size - old) as i64)
                };
                if rc != 0 {
                    return Err(Error::errno(
                        ErrorKind::Io,
                        "Could not preallocate new data",
                        rc,
                    ));
                }
                Ok(())
            }
            Preallocation::Full => {
                truncate(size)?;
                self.write_zeros(old, size - old)
            }
        }
    }

    /// The next data/hole boundary: `(is_data, end)` for the run at `offset`,
    /// from SEEK_DATA/SEEK_HOLE (the whole range is data where unsupported).
    fn data_run(&self, offset: u64, limit: u64) -> Result<(bool, u64)> {
        let fd = self.file.as_raw_fd();
        // SAFETY: lseek on a descriptor we own; positioned I/O does not use the offset.
        let data = unsafe { libc::lseek(fd, offset as i64, libc::SEEK_DATA) };
        if data < 0 {
            let err = io::Error::last_os_error();
            return match err.raw_os_error() {
                // ENXIO: no data after offset, the rest is a hole.
                Some(libc::ENXIO) => Ok((false, limit)),
                _ => Ok((true, limit)),
            };
        }
        let data = data as u64;
        if data > offset {
            return Ok((false, data.min(limit)));
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, offset as i64, libc::SEEK_HOLE) };
        if hole < 0 {
            return Ok((true, limit));
        }
        Ok((true, (hole as u64).min(limit)))
    }

    fn err(&self, operation: &'static str, e: io::Error) -> Error {
        Error::io(format!("Could not {operation} '{}'", self.path), e)
    }
}

impl Storage for LocalFile {
    fn protocol(&self) -> &'static str {
        "file"
    }

    fn filename(&self) -> &str {
        &self.path
    }

    fn length(&self) -> Result<u64> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| self.err("stat", e))
    }

    /// Reads exactly `buf.len()` bytes; a read past the end of the file
    /// fills the rest with zeros, as QEMU's file driver does.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => {
                    buf[done..].fill(0);
                    break;
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.err("read", e).with_offset(offset)),
            }
        }
        Ok(())
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| self.err("write", e).with_offset(offset))
    }

    /// Makes the range read as zeros while keeping it allocated.
    fn zero_range(&self, offset: u64, len: u64) -> Result<()> {
        self.fallocate(
            libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_KEEP_SIZE,
            offset,
            len,
        )
        .or_else(|_| self.write_zeros(offset, len))
    }

    /// Deallocates the range (it reads back as zeros); the file keeps its length.
    fn discard(&self, offset: u64, len: u64) -> Result<()> {
        self.fallocate(
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            offset,
            len,
        )
        .or_else(|_| self.write_zeros(offset, len))
    }

    fn flush(&self) -> Result<()> {
        self.file.sync_data().map_err(|e| self.err("flush", e))
    }

    /// Sets the length; new space is laid out per `prealloc`.
    fn set_len(&self, size: u64, prealloc: Preallocation) -> Result<()> {
        if prealloc == Preallocation::Metadata {
            return Err(Error::invalid("Unsupported preallocation mode: metadata"));
        }
        let old = self.length()?;
        if size <= old {
            return self.file.set_len(size).map_err(|e| self.err("truncate", e));
        }
        self.grow(old, size, prealloc)
            .map_err(|e| e.prepend("Could not resize file"))
    }

    /// Data and holes from the filesystem, in whole sectors: data ends round
    /// up, hole ends round down, and a hole shorter than a sector is data.
    fn block_status(&self, offset: u64, len: u64) -> Result<Extent> {
        let limit = offset + len;
        let (mut is_data, end) = self.data_run(offset, limit)?;
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

    /// Data and holes exactly as the filesystem reports them (QEMU's
    /// file-posix driver: no rounding to sectors; past the end, a hole).
    fn map_status(&self, offset: u64, len: u64) -> Result<Status> {
        let (is_data, end) = self.data_run(offset, offset + len)?;
        Ok(Status::protocol(end - offset, is_data, &self.path, offset))
    }

    /// The `file` protocol node of `info`.
    fn node_info(&self) -> Result<NodeInfo> {
        Ok(NodeInfo {
            filename: self.path.clone(),
            format: "file".to_string(),
            protocol: true,
            virtual_size: round_to_sector(self.length()?),
            actual_size: Some(self.allocated_bytes()?),
            dirty_flag: Some(false),
            format_specific: Some(("file".to_string(), Map::new())),
            ..Default::default()
        })
    }
}

impl Snapshots for LocalFile {}

impl Check for LocalFile {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_and_data_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f").to_string_lossy().into_owned();
        let f = LocalFile::create(&path, 4 << 20, FileCreateOptions::default()).unwrap();
        f.write_at(&[1u8; 4096], 1 << 20).unwrap();
        assert_eq!(f.data_run(0, 4 << 20).unwrap(), (false, 1 << 20));
        let (is_data, end) = f.data_run(1 << 20, 4 << 20).unwrap();
        assert!(is_data && end > 1 << 20 && end < 4 << 20);
        f.discard(1 << 20, 4096).unwrap();
        let mut buf = [9u8; 4096];
        f.read_at(&mut buf, 1 << 20).unwrap();
        assert!(buf.iter().all(|&b| b == 0));
    }

    #[test]
    fn missing_file_error_reads_like_qemu() {
        let e = LocalFile::open("/nonexistent/x", false).err().unwrap();
        assert_eq!(
            e.to_string(),
            "Could not open '/nonexistent/x': No such file or directory"
        );
    }
}
