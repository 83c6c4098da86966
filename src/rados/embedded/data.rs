//! RBD data objects (`rbd_data.*`) as sparse files: one per head and one
//! per clone, so reads and writes go straight to the file with no database
//! round trip. Only a snapshot context newer than the object has seen needs
//! the database (its snapset); clone-on-write copies the head with a
//! reflink where the filesystem has them, else hole by hole.
//!
//! Every file is reached through the namespace directory's descriptor and
//! never through a link (see `dir.rs`).
//!
//! Crash safety: a clone is written to a temporary file and renamed into
//! place before the transaction that records it commits, and the head is
//! changed only after that; whole-object replacements go through a rename.
//! A write that extends a file first preallocates its range without
//! changing the size, so a kill in between leaves only unused blocks past
//! the end. A process killed at any point leaves every recorded clone
//! intact.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use rusqlite::{OptionalExtension, Transaction, params};
use rustix::fs::{FallocateFlags, SeekFrom};

use super::db::{Db, Key, db_error};
use super::dir::Dir;
use super::snapset::{SnapSet, Version};
use crate::ceph::errno::errno_error;
use crate::error::{Error, ErrorKind, Result};
use crate::rados::{SnapContext, WriteOp, describe_ops};

/// Objects whose bytes live in files rather than in the database.
pub fn is_data_object(oid: &str) -> bool {
    oid.starts_with("rbd_data.")
}

/// A file name for any object name: `[A-Za-z0-9._-]` kept (no leading
/// dot), everything else as `%XX`, so `@` can separate clone suffixes.
pub fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn unescape(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// An errno failure reads "<what> <oid>: <strerror>"; a refused file
/// (a link, a FIFO ...) names itself after the colon.
fn io_error(what: &str, oid: &str, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(errno) => errno_error(errno, format!("{what} {oid}")),
        None => Error::new(ErrorKind::Io, format!("{what} {oid}: {e}")),
    }
}

fn enoent(oid: &str) -> Error {
    errno_error(libc::ENOENT, format!("error reading {oid}"))
}

/// The files of one pool namespace, with the per-process state that makes
/// the hot path free of database work.
pub struct DataDir {
    /// The store's `objects/` directory and the path below it.
    objects: Arc<Dir>,
    components: Vec<String>,
    /// The directories below `objects/` down to the namespace directory
    /// (the last), once it exists; empty before.
    dirs: Mutex<Vec<Arc<Dir>>>,
    /// A lower bound of each object's snapset seq. Seqs only grow, so this
    /// stays correct whatever other processes do.
    seqs: Mutex<HashMap<String, u64>>,
    /// Heads and clones written since the last flush.
    dirty: Mutex<HashSet<String>>,
}

pub fn load_snapset(tx: &Transaction, k: Key) -> Result<SnapSet> {
    let row: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, clones FROM snapsets WHERE pool=?1 AND ns=?2 AND oid=?3",
            params![k.pool, k.ns, k.oid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db_error)?;
    match row {
        None => Ok(SnapSet::default()),
        Some((seq, text)) => SnapSet::parse(seq as u64, &text)
            .ok_or_else(|| Error::corrupt(format!("bad snapset of {}", k.oid))),
    }
}

pub fn save_snapset(tx: &Transaction, k: Key, ss: &SnapSet) -> Result<()> {
    tx.execute(
        "INSERT OR REPLACE INTO snapsets(pool, ns, oid, seq, clones) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![k.pool, k.ns, k.oid, ss.seq as i64, ss.clones_text()],
    )
    .map_err(db_error)?;
    Ok(())
}

/// Copies `src` into the empty `dst` keeping holes: a reflink when the
/// filesystem can, else data extent by data extent.
pub fn copy_sparse(src: &File, dst: &File) -> io::Result<()> {
    if rustix::fs::ioctl_ficlone(dst, src).is_ok() {
        return Ok(());
    }
    let size = src.metadata()?.len();
    dst.set_len(size)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    while pos < size {
        let Ok(start) = rustix::fs::seek(src, SeekFrom::Data(pos)) else {
            break; // only a hole remains
        };
        let end = rustix::fs::seek(src, SeekFrom::Hole(start))?.min(size);
        let mut at = start;
        while at < end {
            let n = ((end - at) as usize).min(buf.len());
            src.read_exact_at(&mut buf[..n], at)?;
            dst.write_all_at(&buf[..n], at)?;
            at += n as u64;
        }
        pos = end.max(start + 1);
    }
    Ok(())
}

impl DataDir {
    /// The directory `objects/<components...>` of the store.
    pub fn new(objects: Arc<Dir>, components: Vec<String>) -> DataDir {
        DataDir {
            objects,
            components,
            dirs: Mutex::new(Vec::new()),
            seqs: Mutex::new(HashMap::new()),
            dirty: Mutex::new(HashSet::new()),
        }
    }

    fn head(oid: &str) -> String {
        escape(oid)
    }

    fn clone_name(oid: &str, id: u64) -> String {
        format!("{}@{id:x}", escape(oid))
    }

    fn temp(oid: &str) -> String {
        format!("{}@tmp{}", escape(oid), std::process::id())
    }

    /// The namespace directory (created when `create`); None while it does
    /// not exist.
    fn dir(&self, create: bool) -> Result<Option<Arc<Dir>>> {
        let mut dirs = self.dirs.lock().expect("no poisoning");
        if let Some(dir) = dirs.last() {
            return Ok(Some(dir.clone()));
        }
        let fail = |e: io::Error| {
            Error::io(
                format!("embedded store directory {}", self.objects.path().display()),
                e,
            )
        };
        let mut chain: Vec<Arc<Dir>> = Vec::new();
        for name in &self.components {
            let parent = chain.last().unwrap_or(&self.objects);
            match parent.subdir(name, create).map_err(fail)? {
                Some(d) => chain.push(Arc::new(d)),
                None => return Ok(None),
            }
        }
        *dirs = chain;
        Ok(Some(
            dirs.last()
                .expect("a namespace directory has components")
                .clone(),
        ))
    }

    fn existing_dir(&self, oid: &str) -> Result<Arc<Dir>> {
        self.dir(false)?.ok_or_else(|| enoent(oid))
    }

    /// The file name holding `oid` as of `snap`, or None if it did not exist.
    fn version_name(&self, db: &Db, k: Key, snap: u64) -> Result<Option<String>> {
        if snap == crate::rados::SNAP_HEAD {
            return Ok(Some(Self::head(k.oid)));
        }
        let ss = db.read(|tx| load_snapset(tx, k))?;
        Ok(match ss.resolve(snap) {
            Version::Head => Some(Self::head(k.oid)),
            Version::Clone(id) => Some(Self::clone_name(k.oid, id)),
            Version::Absent => None,
        })
    }

    /// Reads into `buf`; returns how many bytes the object had there.
    pub fn read_into(
        &self,
        db: &Db,
        k: Key,
        offset: u64,
        buf: &mut [u8],
        snap: u64,
    ) -> Result<usize> {
        let rerr = |e: io::Error| io_error("error reading", k.oid, e);
        let name = self
            .version_name(db, k, snap)?
            .ok_or_else(|| enoent(k.oid))?;
        let file = self
            .existing_dir(k.oid)?
            .open_read(&name)
            .map_err(rerr)?
            .ok_or_else(|| enoent(k.oid))?;
        let size = file.metadata().map_err(rerr)?.len();
        let n = size.saturating_sub(offset).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], offset).map_err(rerr)?;
        Ok(n)
    }

    pub fn stat(&self, db: &Db, k: Key, snap: u64) -> Result<u64> {
        let name = self
            .version_name(db, k, snap)?
            .ok_or_else(|| enoent(k.oid))?;
        self.existing_dir(k.oid)?
            .size(&name)
            .map_err(|e| io_error("error reading", k.oid, e))?
            .ok_or_else(|| enoent(k.oid))
    }

    /// Whether the head exists (a refused file is an error, not absence).
    fn head_exists(&self, oid: &str) -> Result<bool> {
        let Some(dir) = self.dir(false)? else {
            return Ok(false);
        };
        Ok(dir
            .size(&Self::head(oid))
            .map_err(|e| io_error("error reading", oid, e))?
            .is_some())
    }

    /// Copies version `from` of `oid` over `to` through a temporary file.
    fn copy_over(&self, dir: &Dir, oid: &str, from: &str, to: &str) -> io::Result<()> {
        let src = dir
            .open_read(from)?
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        let temp = Self::temp(oid);
        copy_sparse(&src, &dir.create_fresh(&temp)?)?;
        dir.rename(&temp, to)
    }

    /// Brings the object up to `snapc`, cloning the head first when the
    /// context is newer than any it has seen (RADOS `make_writeable`).
    fn prepare(&self, db: &Db, k: Key, snapc: &SnapContext) -> Result<()> {
        if snapc.seq == 0
            || self
                .seqs
                .lock()
                .expect("no poisoning")
                .get(k.oid)
                .is_some_and(|&s| s >= snapc.seq)
        {
            return Ok(());
        }
        let dir = self.dir(true)?.expect("created");
        let head = Self::head(k.oid);
        let seq = db.write(|tx| {
            let mut ss = load_snapset(tx, k)?;
            let before = ss.clone();
            if let Some(id) = ss.make_writeable(snapc, self.head_exists(k.oid)?) {
                let clone = Self::clone_name(k.oid, id);
                self.copy_over(&dir, k.oid, &head, &clone)
                    .map_err(|e| io_error("error cloning", k.oid, e))?;
                self.dirty.lock().expect("no poisoning").insert(clone);
            }
            if ss != before {
                save_snapset(tx, k, &ss)?;
            }
            Ok(ss.seq)
        })?;
        self.seqs
            .lock()
            .expect("no poisoning")
            .insert(k.oid.to_string(), seq);
        Ok(())
    }

    fn open_head(&self, oid: &str) -> Result<File> {
        let name = Self::head(oid);
        let file = self
            .dir(true)?
            .expect("created")
            .open_write(&name)
            .map_err(|e| io_error("error writing", oid, e))?;
        self.dirty.lock().expect("no poisoning").insert(name);
        Ok(file)
    }

    /// Applies `ops` in order. The steps that can fail are checked for the
    /// whole sequence first, so a failing op changes nothing, as on an OSD
    /// (the writes themselves go straight to the file). A compound op that
    /// makes its object (a clone's copy-up: create + parent data + write)
    /// builds it aside and renames it into place, so that a kill leaves the
    /// object absent or whole, as an OSD's transaction does.
    pub fn operate(&self, db: &Db, k: Key, ops: &[WriteOp], snapc: &SnapContext) -> Result<()> {
        let oid = k.oid;
        self.check_steps(oid, ops)?;
        if ops.len() > 1
            && !ops.iter().any(|op| matches!(op, WriteOp::Remove))
            && !self.head_exists(oid)?
        {
            return self.operate_aside(db, k, ops, snapc);
        }
        let head = Self::head(oid);
        let werr = |e: io::Error| io_error("error writing", oid, e);
        for op in ops {
            match *op {
                WriteOp::AssertExists | WriteOp::Exec(_) => {}
                WriteOp::CreateExclusive | WriteOp::Create => {
                    self.prepare(db, k, snapc)?;
                    self.open_head(oid)?;
                }
                WriteOp::Write { offset, data } => {
                    self.prepare(db, k, snapc)?;
                    let file = self.open_head(oid)?;
                    preallocate(&file, offset, data.len() as u64).map_err(werr)?;
                    file.write_all_at(data, offset).map_err(werr)?;
                }
                WriteOp::WriteFull(data) => {
                    self.prepare(db, k, snapc)?;
                    let dir = self.dir(true)?.expect("created");
                    let temp = Self::temp(oid);
                    dir.create_fresh(&temp)
                        .and_then(|f| {
                            preallocate(&f, 0, data.len() as u64)?;
                            f.write_all_at(data, 0)
                        })
                        .and_then(|()| dir.rename(&temp, &head))
                        .map_err(werr)?;
                    self.dirty
                        .lock()
                        .expect("no poisoning")
                        .insert(head.clone());
                }
                // A missing object stays missing; zeros that reach the end
                // truncate the object where they start, as on an OSD.
                WriteOp::Zero { offset, len } => {
                    if !self.head_exists(oid)? {
                        continue;
                    }
                    self.prepare(db, k, snapc)?;
                    let file = self.open_head(oid)?;
                    let size = file.metadata().map_err(werr)?.len();
                    if offset >= size {
                        continue;
                    }
                    if offset.saturating_add(len) >= size {
                        file.set_len(offset).map_err(werr)?;
                    } else {
                        punch(&file, offset, len).map_err(werr)?;
                    }
                }
                WriteOp::Truncate(size) => {
                    if !self.head_exists(oid)? {
                        continue;
                    }
                    self.prepare(db, k, snapc)?;
                    self.open_head(oid)?.set_len(size).map_err(werr)?;
                }
                WriteOp::Remove => {
                    self.prepare(db, k, snapc)?;
                    self.existing_dir(oid)?.remove(&head).map_err(werr)?;
                    self.dirty.lock().expect("no poisoning").remove(&head);
                }
            }
        }
        Ok(())
    }

    /// `operate` for an object `ops` make: every step on a temporary file,
    /// which then becomes the head.
    fn operate_aside(&self, db: &Db, k: Key, ops: &[WriteOp], snapc: &SnapContext) -> Result<()> {
        let oid = k.oid;
        let werr = |e: io::Error| io_error("error writing", oid, e);
        self.prepare(db, k, snapc)?;
        let dir = self.dir(true)?.expect("created");
        let temp = Self::temp(oid);
        let file = dir.create_fresh(&temp).map_err(werr)?;
        let mut made = false;
        for op in ops {
            match *op {
                WriteOp::AssertExists | WriteOp::Exec(_) | WriteOp::Remove => {}
                WriteOp::CreateExclusive | WriteOp::Create => made = true,
                WriteOp::Write { offset, data } => {
                    preallocate(&file, offset, data.len() as u64).map_err(werr)?;
                    file.write_all_at(data, offset).map_err(werr)?;
                    made = true;
                }
                WriteOp::WriteFull(data) => {
                    file.set_len(0).map_err(werr)?;
                    preallocate(&file, 0, data.len() as u64).map_err(werr)?;
                    file.write_all_at(data, 0).map_err(werr)?;
                    made = true;
                }
                WriteOp::Zero { offset, len } if made => {
                    let size = file.metadata().map_err(werr)?.len();
                    if offset.saturating_add(len) >= size {
                        file.set_len(offset.min(size)).map_err(werr)?;
                    } else if offset < size {
                        punch(&file, offset, len).map_err(werr)?;
                    }
                }
                WriteOp::Truncate(size) if made => file.set_len(size).map_err(werr)?,
                WriteOp::Zero { .. } | WriteOp::Truncate(_) => {}
            }
        }
        if !made {
            dir.remove(&temp).map_err(werr)?;
            return Ok(());
        }
        let head = Self::head(oid);
        dir.rename(&temp, &head).map_err(werr)?;
        self.dirty.lock().expect("no poisoning").insert(head);
        Ok(())
    }

    /// The errno the first failing step of `ops` would return, found
    /// before any is applied: existence checks, and class methods (which
    /// this store does not run on data objects).
    fn check_steps(&self, oid: &str, ops: &[WriteOp]) -> Result<()> {
        let mut exists = self.head_exists(oid)?;
        for op in ops {
            let errno = match op {
                WriteOp::CreateExclusive if exists => libc::EEXIST,
                WriteOp::AssertExists | WriteOp::Remove if !exists => libc::ENOENT,
                WriteOp::Exec(call) => {
                    return Err(errno_error(
                        libc::EOPNOTSUPP,
                        format!(
                            "{}.{} on {oid} (the embedded store runs no class methods on data objects)",
                            call.class, call.method
                        ),
                    ));
                }
                _ => 0,
            };
            if errno != 0 {
                return Err(errno_error(errno, describe_ops(oid, ops)));
            }
            match op {
                WriteOp::CreateExclusive
                | WriteOp::Create
                | WriteOp::Write { .. }
                | WriteOp::WriteFull(_) => exists = true,
                WriteOp::Remove => exists = false,
                _ => {}
            }
        }
        Ok(())
    }

    /// Restores the object to its state at `snap` (removed if it did not exist).
    pub fn rollback(&self, db: &Db, k: Key, snap: u64, snapc: &SnapContext) -> Result<()> {
        self.prepare(db, k, snapc)?;
        let head = Self::head(k.oid);
        let werr = |e: io::Error| io_error("error rolling back", k.oid, e);
        let ss = db.read(|tx| load_snapset(tx, k))?;
        match ss.resolve(snap) {
            Version::Head => {}
            Version::Clone(id) => {
                let dir = self.dir(true)?.expect("created");
                self.copy_over(&dir, k.oid, &Self::clone_name(k.oid, id), &head)
                    .map_err(werr)?;
                self.dirty.lock().expect("no poisoning").insert(head);
            }
            Version::Absent => {
                if let Some(dir) = self.dir(false)? {
                    dir.remove(&head).map_err(werr)?;
                }
            }
        }
        Ok(())
    }

    /// Forgets clone files no snapshot needs any more.
    pub fn remove_clones(&self, oid: &str, ids: &[u64]) {
        if let Ok(Some(dir)) = self.dir(false) {
            for id in ids {
                let _ = dir.remove(&Self::clone_name(oid, *id));
            }
        }
    }

    /// Object names with a head file.
    pub fn list(&self) -> Result<Vec<String>> {
        let Some(dir) = self.dir(false)? else {
            return Ok(Vec::new());
        };
        let names = dir
            .files()
            .map_err(|e| io_error("error listing", &dir.path().to_string_lossy(), e))?;
        Ok(names
            .into_iter()
            .filter(|n| !n.contains('@'))
            .filter_map(|n| unescape(&n))
            .collect())
    }

    /// Makes every head and clone written since the last flush durable,
    /// with the directory entries that lead to them. Writeback starts on
    /// every file before the first wait, so their I/O overlaps instead of
    /// taking one round trip per file.
    pub fn flush(&self) -> Result<()> {
        let dirty: Vec<String> = self.dirty.lock().expect("no poisoning").drain().collect();
        let Some(dir) = self.dir(false)? else {
            return Ok(());
        };
        let mut files = Vec::with_capacity(dirty.len());
        for name in &dirty {
            let ferr = |e: io::Error| io_error("error flushing", name, e);
            if let Some(file) = dir.open_read(name).map_err(ferr)? {
                start_writeback(&file);
                files.push((name, file));
            }
        }
        for (name, file) in &files {
            file.sync_data()
                .map_err(|e| io_error("error flushing", name, e))?;
        }
        let dirs = self.dirs.lock().expect("no poisoning").clone();
        for d in dirs.iter().rev().map(|d| &**d).chain([&*self.objects]) {
            d.sync()
                .map_err(|e| io_error("error flushing", &d.path().to_string_lossy(), e))?;
        }
        Ok(())
    }
}

/// Starts writing a file's dirty pages back without waiting for them.
/// Only a hint: the fdatasync that follows reports any failure.
fn start_writeback(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for the call; no memory is passed.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Allocates the blocks of a write that extends the file, in one extent,
/// before the write lands: spares the filesystem's per-page delayed
/// allocation on the write and an allocation per file at writeback.
/// Keeps the size, so a process killed in between changes nothing visible.
/// Filesystems without fallocate just write.
fn preallocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    if len == 0 || offset.saturating_add(len) <= file.metadata()?.len() {
        return Ok(());
    }
    match rustix::fs::fallocate(file, FallocateFlags::KEEP_SIZE, offset, len) {
        Ok(()) | Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Deallocates a range (reads as zeros), writing zeros where holes cannot be punched.
fn punch(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let flags = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
    if rustix::fs::fallocate(file, flags, offset, len).is_ok() {
        return Ok(());
    }
    let zeros = vec![0u8; (len as usize).min(1 << 20)];
    let mut at = offset;
    while at < offset + len {
        let n = ((offset + len - at) as usize).min(zeros.len());
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A store's data directory for pool 1's default namespace, in a
    /// temporary directory (kept alive by the first value).
    fn store() -> (tempfile::TempDir, Db, DataDir) {
        let dir = tempfile::tempdir().unwrap();
        let root = Dir::open_root(dir.path()).unwrap();
        let db = Db::open(&root).unwrap();
        let objects = Arc::new(root.subdir("objects", true).unwrap().unwrap());
        let data = DataDir::new(objects, vec!["1".into(), "default".into()]);
        (dir, db, data)
    }

    const OBJECT: Key<'static> = Key {
        pool: 1,
        ns: "",
        oid: "rbd_data.x.0000000000000000",
    };

    /// The first bytes of an object version, as a vector.
    fn read_back(data: &DataDir, db: &Db, k: Key, snap: u64) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; 9];
        let n = data.read_into(db, k, 0, &mut buf, snap)?;
        buf.truncate(n);
        Ok(buf)
    }

    #[test]
    fn names_escape_reversibly() {
        for name in ["rbd_data.abc.0000000000000001", ".x", "a/b@c%", "ünï"] {
            let e = escape(name);
            assert!(!e.contains('/') && !e.contains('@') && !e.starts_with('.'));
            assert_eq!(unescape(&e).as_deref(), Some(name));
        }
        assert_eq!(escape("rbd_data.1.00"), "rbd_data.1.00");
    }

    #[test]
    fn clone_on_write_read_at_snapshots_rollback_and_trim() {
        let (dir, db, data) = store();
        let k = OBJECT;
        let snapc = |seq: u64, snaps: &[u64]| SnapContext {
            seq,
            snaps: snaps.to_vec(),
        };
        let head = crate::rados::SNAP_HEAD;
        let write = |bytes: &[u8], c: &SnapContext| {
            data.operate(
                &db,
                k,
                &[WriteOp::Write {
                    offset: 0,
                    data: bytes,
                }],
                c,
            )
        };
        write(b"v1", &snapc(0, &[])).unwrap();
        // Snapshot 2, then a write: the clone keeps v1 for snapshot 2.
        write(b"v2", &snapc(2, &[2])).unwrap();
        assert_eq!(read_back(&data, &db, k, 2).unwrap(), b"v1");
        assert_eq!(read_back(&data, &db, k, head).unwrap(), b"v2");
        assert_eq!(
            read_back(&data, &db, k, 1).unwrap_err().kind(),
            crate::error::ErrorKind::NotFound
        );
        // Snapshot 3, then remove: the head is gone, both snapshots read.
        data.operate(&db, k, &[WriteOp::Remove], &snapc(3, &[3, 2]))
            .unwrap();
        assert!(data.stat(&db, k, head).is_err());
        assert_eq!(read_back(&data, &db, k, 3).unwrap(), b"v2");
        // Roll back to 2, then to 3; a snapshot taken before creation removes it.
        data.rollback(&db, k, 2, &snapc(3, &[3, 2])).unwrap();
        assert_eq!(read_back(&data, &db, k, head).unwrap(), b"v1");
        data.rollback(&db, k, 3, &snapc(3, &[3, 2])).unwrap();
        assert_eq!(read_back(&data, &db, k, head).unwrap(), b"v2");
        let other = Key {
            oid: "rbd_data.x.0000000000000001",
            ..k
        };
        data.operate(&db, other, &[WriteOp::Truncate(4)], &snapc(3, &[3, 2]))
            .unwrap();
        data.rollback(&db, other, 3, &snapc(3, &[3, 2])).unwrap();
        assert!(data.stat(&db, other, head).is_err());
        // Trimming snapshot 2 frees the clone that served only it.
        let gone = db
            .write(|tx| {
                let mut ss = load_snapset(tx, k)?;
                let gone = ss.trim(2);
                save_snapset(tx, k, &ss)?;
                Ok(gone)
            })
            .unwrap();
        assert_eq!(gone, vec![2]);
        data.remove_clones(k.oid, &gone);
        let clone = DataDir::clone_name(k.oid, 2);
        assert!(!dir.path().join("objects/1/default").join(clone).exists());
        assert_eq!(read_back(&data, &db, k, 3).unwrap(), b"v2");
    }

    #[test]
    fn extending_writes_preallocate_without_changing_what_reads() {
        use std::os::unix::fs::MetadataExt;
        let (dir, db, data) = store();
        let k = OBJECT;
        let head = crate::rados::SNAP_HEAD;
        let at = 3u64 << 20;
        let bytes = vec![7u8; 1 << 20];
        let write = WriteOp::Write {
            offset: at,
            data: &bytes,
        };
        data.operate(&db, k, &[write], &SnapContext::default())
            .unwrap();
        assert_eq!(data.stat(&db, k, head).unwrap(), at + (1 << 20));
        let path = dir
            .path()
            .join("objects/1/default")
            .join(DataDir::head(k.oid));
        // The hole before the write stays a hole.
        assert!(fs::metadata(&path).unwrap().blocks() * 512 <= 2 << 20);
        let mut buf = vec![1u8; 4 << 20];
        let n = data.read_into(&db, k, 0, &mut buf, head).unwrap();
        assert_eq!(n, 4 << 20);
        assert!(buf[..at as usize].iter().all(|&b| b == 0));
        assert!(buf[at as usize..].iter().all(|&b| b == 7));
        // Killed after the preallocation, before the write: nothing visible changed.
        let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
        let blocks = || fs::metadata(&path).unwrap().blocks() * 512;
        let before = blocks();
        preallocate(&file, 4 << 20, 4 << 20).unwrap();
        assert!(blocks() >= before + (4 << 20), "nothing preallocated");
        assert_eq!(data.stat(&db, k, head).unwrap(), 4 << 20);
        let n = data.read_into(&db, k, 0, &mut buf, head).unwrap();
        assert_eq!((n, buf[n - 1]), (4 << 20, 7));
    }

    #[test]
    fn flush_covers_heads_and_clones() {
        let (_dir, db, data) = store();
        // Nothing written yet: no directory to sync, no error.
        data.flush().unwrap();
        let k = OBJECT;
        let write = |c: &SnapContext| {
            let op = WriteOp::Write {
                offset: 0,
                data: b"v",
            };
            data.operate(&db, k, &[op], c).unwrap()
        };
        write(&SnapContext::default());
        write(&SnapContext {
            seq: 2,
            snaps: vec![2],
        });
        let dirty = |d: &DataDir| {
            let mut v: Vec<String> = d.dirty.lock().unwrap().iter().cloned().collect();
            v.sort();
            v
        };
        assert_eq!(
            dirty(&data),
            vec![DataDir::head(k.oid), DataDir::clone_name(k.oid, 2)]
        );
        data.flush().unwrap();
        assert!(dirty(&data).is_empty());
    }

    #[test]
    fn sparse_copies_keep_holes_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let f = File::create(&a).unwrap();
        f.set_len(8 << 20).unwrap();
        f.write_all_at(b"hello", 5 << 20).unwrap();
        f.write_all_at(b"x", 0).unwrap();
        copy_sparse(&File::open(&a).unwrap(), &File::create(&b).unwrap()).unwrap();
        assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
        use std::os::unix::fs::MetadataExt;
        assert!(fs::metadata(&b).unwrap().blocks() * 512 < 1 << 20);
    }
}
