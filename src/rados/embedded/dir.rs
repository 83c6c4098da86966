//! A directory of the embedded store, held open by its descriptor.
//!
//! Everything below the store's root is reached relative to its parent's
//! descriptor and never through a symbolic link (`O_NOFOLLOW` on every
//! component), so a link planted inside the store can neither leak another
//! file's bytes into a read nor send a write (or a create) anywhere else.
//! Only regular files and directories are accepted; anything else is
//! refused with an error naming it. What the store creates is private,
//! whatever the umask: directories 0700, files 0600 (set with fchmod).

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

/// Modes of what the store creates.
pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// A store file or directory that is something else (a symbolic link, a
/// FIFO, ...): refused, never followed or opened.
#[derive(Debug)]
struct NotOurs {
    path: PathBuf,
    found: FileType,
    wanted: FileType,
}

impl fmt::Display for NotOurs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |t: FileType| match t {
            FileType::RegularFile => "a regular file",
            FileType::Directory => "a directory",
            FileType::Symlink => "a symbolic link",
            FileType::Fifo => "a FIFO",
            FileType::Socket => "a socket",
            FileType::CharacterDevice | FileType::BlockDevice => "a device",
            FileType::Unknown => "of an unknown type",
        };
        write!(
            f,
            "{} is {}, not {} (the embedded store follows no links)",
            self.path.display(),
            name(self.found),
            name(self.wanted)
        )
    }
}

impl std::error::Error for NotOurs {}

pub struct Dir {
    fd: OwnedFd,
    /// Where it is, for messages only: never opened by this path.
    path: PathBuf,
}

impl Dir {
    /// The store's root directory, created (0700, parents too) when
    /// missing; an empty one (made for the store, e.g. by mktemp -d) is
    /// made 0700 too. The path the user chose may pass through links of
    /// their own; nothing below it may.
    pub fn open_root(path: &Path) -> io::Result<Dir> {
        let missing = std::fs::symlink_metadata(path).is_err();
        if missing {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(path)?;
        }
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let dir = Dir {
            fd,
            path: path.to_path_buf(),
        };
        if missing || dir.is_empty()? {
            rustix::fs::fchmod(&dir.fd, Mode::from_raw_mode(DIR_MODE))?;
        }
        Ok(dir)
    }

    fn is_empty(&self) -> io::Result<bool> {
        for entry in rustix::fs::Dir::read_from(&self.fd)? {
            if ![&b"."[..], b".."].contains(&entry?.file_name().to_bytes()) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The permission bits of this directory.
    pub fn mode(&self) -> io::Result<u32> {
        Ok(rustix::fs::fstat(&self.fd)?.st_mode & 0o7777)
    }

    /// What `name` is, without following it; None when it does not exist.
    fn lstat(&self, name: &str) -> io::Result<Option<rustix::fs::Stat>> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn not_ours(&self, name: &str, found: FileType, wanted: FileType) -> io::Error {
        io::Error::other(NotOurs {
            path: self.path.join(name),
            found,
            wanted,
        })
    }

    /// Requires `name`, when it exists, to be of type `wanted`; returns its
    /// permission bits.
    pub fn check(&self, name: &str, wanted: FileType) -> io::Result<Option<u32>> {
        match self.lstat(name)? {
            None => Ok(None),
            Some(st) => {
                let found = FileType::from_raw_mode(st.st_mode);
                if found != wanted {
                    return Err(self.not_ours(name, found, wanted));
                }
                Ok(Some(st.st_mode & 0o7777))
            }
        }
    }

    /// Explains a failed open: something of the wrong type is in the way.
    fn open_error(&self, name: &str, e: rustix::io::Errno, wanted: FileType) -> io::Error {
        if let Ok(Some(st)) = self.lstat(name) {
            let found = FileType::from_raw_mode(st.st_mode);
            if found != wanted {
                return self.not_ours(name, found, wanted);
            }
        }
        e.into()
    }

    /// Opens `name` (never through a link, never blocking on a FIFO) and
    /// requires a regular file.
    fn open(&self, name: &str, flags: OFlags) -> io::Result<File> {
        let flags = flags | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(FILE_MODE))
            .map_err(|e| match e {
                rustix::io::Errno::NOENT | rustix::io::Errno::EXIST => e.into(),
                e => self.open_error(name, e, FileType::RegularFile),
            })?;
        let found = FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode);
        if found != FileType::RegularFile {
            return Err(self.not_ours(name, found, FileType::RegularFile));
        }
        if flags.contains(OFlags::CREATE) {
            // Created just now (O_EXCL): private whatever the umask.
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(FILE_MODE))?;
        }
        Ok(File::from(fd))
    }

    /// Opens regular file `name` for reading; None when it does not exist.
    pub fn open_read(&self, name: &str) -> io::Result<Option<File>> {
        match self.open(name, OFlags::RDONLY) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens regular file `name` for writing, creating it (0600) when missing.
    pub fn open_write(&self, name: &str) -> io::Result<File> {
        loop {
            match self.open(name, OFlags::RDWR | OFlags::CREATE | OFlags::EXCL) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                other => return other,
            }
            match self.open(name, OFlags::RDWR) {
                // Removed in between by another writer: create it after all.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                other => return other,
            }
        }
    }

    /// Creates regular file `name` afresh (0600), removing a leftover of
    /// that name first (whatever it is, it is not followed).
    pub fn create_fresh(&self, name: &str) -> io::Result<File> {
        self.remove(name)?;
        self.open(name, OFlags::RDWR | OFlags::CREATE | OFlags::EXCL)
    }

    /// The size of regular file `name`; None when it does not exist.
    pub fn size(&self, name: &str) -> io::Result<Option<u64>> {
        match self.lstat(name)? {
            None => Ok(None),
            Some(st) => {
                let found = FileType::from_raw_mode(st.st_mode);
                if found != FileType::RegularFile {
                    return Err(self.not_ours(name, found, FileType::RegularFile));
                }
                Ok(Some(st.st_size as u64))
            }
        }
    }

    /// Renames `from` over `to` (a link at `to` is replaced, not followed).
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        Ok(rustix::fs::renameat(&self.fd, from, &self.fd, to)?)
    }

    /// Removes `name` (a link is removed itself); false when it did not exist.
    pub fn remove(&self, name: &str) -> io::Result<bool> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(rustix::io::Errno::ISDIR) => {
                Err(self.not_ours(name, FileType::Directory, FileType::RegularFile))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Subdirectory `name`, never through a link; None when it does not
    /// exist and `create` is false. A created one is 0700.
    pub fn subdir(&self, name: &str, create: bool) -> io::Result<Option<Dir>> {
        let made = create
            && match rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(DIR_MODE)) {
                Ok(()) => true,
                Err(rustix::io::Errno::EXIST) => false,
                Err(e) => return Err(e.into()),
            };
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) if !create => return Ok(None),
            Err(e) => return Err(self.open_error(name, e, FileType::Directory)),
        };
        if made {
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(DIR_MODE))?;
        }
        Ok(Some(Dir {
            fd,
            path: self.path.join(name),
        }))
    }

    /// Names of the regular files in this directory.
    pub fn files(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(&self.fd)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            let regular = match entry.file_type() {
                FileType::RegularFile => true,
                FileType::Unknown => self
                    .lstat(name)?
                    .is_some_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile),
                _ => false,
            };
            if regular {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    /// A second handle on the same directory.
    pub fn try_clone(&self) -> io::Result<Dir> {
        Ok(Dir {
            fd: self.fd.try_clone()?,
            path: self.path.clone(),
        })
    }

    /// Makes the directory's entries (creates, renames, removes) durable.
    pub fn sync(&self) -> io::Result<()> {
        Ok(rustix::fs::fsync(&self.fd)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn links_are_refused_and_never_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, b"secret").unwrap();
        let root = Dir::open_root(&tmp.path().join("store")).unwrap();
        symlink(&outside, root.path().join("obj")).unwrap();
        symlink(tmp.path().join("dangling"), root.path().join("new")).unwrap();
        for err in [
            root.open_read("obj").unwrap_err(),
            root.open_write("obj").unwrap_err(),
            root.open_write("new").unwrap_err(),
            root.size("obj").unwrap_err(),
        ] {
            assert!(
                err.to_string().ends_with(
                    "is a symbolic link, not a regular file (the embedded store follows no links)"
                ),
                "{err}"
            );
        }
        assert!(
            !tmp.path().join("dangling").exists(),
            "a dangling target was created"
        );
        assert_eq!(std::fs::read(&outside).unwrap(), b"secret");
        // Replacing and removing act on the link itself.
        root.create_fresh("tmp").unwrap();
        root.rename("tmp", "obj").unwrap();
        assert!(root.remove("new").unwrap());
        assert_eq!(std::fs::read(&outside).unwrap(), b"secret");
        assert!(tmp.path().join("store/obj").is_file());
        // A directory planted as a link is refused too.
        std::fs::create_dir(tmp.path().join("elsewhere")).unwrap();
        symlink(tmp.path().join("elsewhere"), root.path().join("sub")).unwrap();
        let err = root.subdir("sub", true).err().unwrap();
        assert!(
            err.to_string()
                .contains("is a symbolic link, not a directory"),
            "{err}"
        );
        assert_eq!(root.files().unwrap(), vec!["obj".to_string()]);
    }

    #[test]
    fn fifos_are_refused_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Dir::open_root(tmp.path()).unwrap();
        rustix::fs::mkfifoat(&root.fd, "fifo", Mode::from_raw_mode(0o600)).unwrap();
        for err in [
            root.open_read("fifo").unwrap_err(),
            root.open_write("fifo").unwrap_err(),
        ] {
            assert!(
                err.to_string().contains("is a FIFO, not a regular file"),
                "{err}"
            );
        }
    }

    #[test]
    fn what_it_creates_is_private() {
        // Under any umask: tests/rbd/store.rs runs the binary under 000 and 022.
        let tmp = tempfile::tempdir().unwrap();
        let root = Dir::open_root(&tmp.path().join("a/b")).unwrap();
        let sub = root.subdir("objects", true).unwrap().unwrap();
        let files = [sub.open_write("x").unwrap(), sub.create_fresh("y").unwrap()];
        assert_eq!(
            (root.mode().unwrap(), sub.mode().unwrap()),
            (DIR_MODE, DIR_MODE)
        );
        for f in files {
            assert_eq!(
                f.metadata().unwrap().permissions().mode() & 0o7777,
                FILE_MODE
            );
        }
        assert!(root.subdir("missing", false).unwrap().is_none());
    }
}
