//! A local file as byte storage (QEMU's `file` protocol): positioned I/O on one
//! descriptor shared by all threads, hole punching, zero ranges, and the
//! filesystem's own map of data and holes.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;

use serde_json::Map;

use crate::block::driver::Preallocation;
use crate::block::info::NodeInfo;
use crate::block::options::{OptDesc, OptType};
use crate::error::{Error, ErrorKind, Result};

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

/// QEMU's block layer counts in 512-byte sectors: a file's image size is
/// its length rounded up, and creation rounds the requested size up.
pub const SECTOR: u64 = 512;

pub fn round_to_sector(n: u64) -> u64 {
    n.div_ceil(SECTOR) * SECTOR
}

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

pub struct LocalFile {
    file: File,
    path: String,
    writable: bool,
}

impl LocalFile {
    /// Opens an existing file; errors read "Could not open 'path': reason".
    pub fn open(path: &str, writable: bool) -> Result<LocalFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .map_err(|e| {
                Error::io("open", format!("Could not open '{path}'"), e).with_path(path)
            })?;
        if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(Error::invalid(format!(
                "'file' driver requires '{path}' to be a regular file"
            ))
            .with_path(path));
        }
        Ok(LocalFile {
            file,
            path: path.to_string(),
            writable,
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
            .map_err(|e| {
                Error::io("create", format!("Could not create '{path}'"), e).with_path(path)
            })?;
        let local = LocalFile {
            file,
            path: path.to_string(),
            writable: true,
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

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn is_writable(&self) -> bool {
        self.writable
    }

    pub fn len(&self) -> Result<u64> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| self.err("stat", e))
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Bytes the filesystem has allocated for the file.
    pub fn allocated_bytes(&self) -> Result<u64> {
        self.file
            .metadata()
            .map(|m| m.blocks() * 512)
            .map_err(|e| self.err("stat", e))
    }

    /// Reads exactly `buf.len()` bytes; a read past the end of the file
    /// fills the rest with zeros, as QEMU's file driver does.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
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

    pub fn write_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| self.err("write", e).with_offset(offset))
    }

    /// Deallocates the range (it reads back as zeros); the file keeps its length.
    pub fn punch_hole(&self, offset: u64, len: u64) -> Result<()> {
        self.fallocate(
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            offset,
            len,
        )
        .or_else(|_| self.write_zeros(offset, len))
    }

    /// Makes the range read as zeros while keeping it allocated.
    pub fn zero_range(&self, offset: u64, len: u64) -> Result<()> {
        self.fallocate(
            libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_KEEP_SIZE,
            offset,
            len,
        )
        .or_else(|_| self.write_zeros(offset, len))
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

    pub fn sync(&self) -> Result<()> {
        self.file.sync_data().map_err(|e| self.err("flush", e))
    }

    /// Sets the length; new space is laid out per `prealloc`.
    pub fn set_len(&self, size: u64, prealloc: Preallocation) -> Result<()> {
        let old = self.len()?;
        if size <= old {
            return self.file.set_len(size).map_err(|e| self.err("truncate", e));
        }
        self.grow(old, size, prealloc)
            .map_err(|e| e.prepend("Could not resize file"))
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
    pub fn data_run(&self, offset: u64, limit: u64) -> Result<(bool, u64)> {
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

    /// The `file` protocol node of `info`.
    pub fn node_info(&self) -> Result<NodeInfo> {
        Ok(NodeInfo {
            filename: self.path.clone(),
            format: "file".to_string(),
            protocol: true,
            virtual_size: round_to_sector(self.len()?),
            actual_size: Some(self.allocated_bytes()?),
            dirty_flag: Some(false),
            format_specific: Some(("file".to_string(), Map::new())),
            ..Default::default()
        })
    }

    fn err(&self, operation: &'static str, e: io::Error) -> Error {
        Error::io(
            operation,
            format!("Could not {operation} '{}'", self.path),
            e,
        )
        .with_path(&self.path)
    }
}

/// True when `path` names an existing file or device.
pub fn exists(path: &str) -> bool {
    Path::new(path).exists()
}

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
        f.punch_hole(1 << 20, 4096).unwrap();
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
