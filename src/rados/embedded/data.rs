//! RBD data objects (`rbd_data.*`) as sparse files: one per head and one
//! per clone, so reads and writes go straight to the file with no database
//! round trip. Only a snapshot context newer than the object has seen needs
//! the database (its snapset); clone-on-write copies the head with a
//! reflink where the filesystem has them, else hole by hole.
//!
//! Crash safety: a clone is written to a temporary file and renamed into
//! place before the transaction that records it commits, and the head is
//! changed only after that; whole-object replacements go through a rename.
//! A process killed at any point leaves every recorded clone intact.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{OptionalExtension, Transaction, params};

use super::db::{Db, Key, db_error};
use super::snapset::{SnapSet, Version};
use crate::ceph::errno::errno_error;
use crate::error::{Error, Result};
use crate::rados::{SnapContext, WriteOp};

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

fn io_error(what: &str, oid: &str, e: io::Error) -> Error {
    errno_error(
        e.raw_os_error().unwrap_or(libc::EIO),
        format!("{what} {oid}"),
    )
}

fn enoent(oid: &str) -> Error {
    errno_error(libc::ENOENT, format!("error reading {oid}"))
}

/// The files of one pool namespace, with the per-process state that makes
/// the hot path free of database work.
pub struct DataDir {
    root: PathBuf,
    /// A lower bound of each object's snapset seq. Seqs only grow, so this
    /// stays correct whatever other processes do.
    seqs: Mutex<HashMap<String, u64>>,
    made: Mutex<bool>,
    /// Heads written since the last flush.
    dirty: Mutex<HashSet<PathBuf>>,
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

/// Copies `from` to `to` keeping holes: a reflink when the filesystem can,
/// else data extent by data extent.
pub fn copy_sparse(from: &Path, to: &Path) -> io::Result<()> {
    let src = File::open(from)?;
    let dst = File::create(to)?;
    // SAFETY: FICLONE takes the source descriptor; both files are open.
    let rc = unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONE, src.as_raw_fd()) };
    if rc == 0 {
        return Ok(());
    }
    let size = src.metadata()?.len();
    dst.set_len(size)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    while pos < size {
        // SAFETY: lseek on our own descriptor.
        let data = unsafe { libc::lseek(src.as_raw_fd(), pos as i64, libc::SEEK_DATA) };
        if data < 0 {
            break; // only a hole remains
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(src.as_raw_fd(), data, libc::SEEK_HOLE) };
        let (start, end) = (data as u64, (hole.max(data) as u64).min(size));
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
    pub fn new(root: PathBuf) -> DataDir {
        DataDir {
            root,
            seqs: Mutex::new(HashMap::new()),
            made: Mutex::new(false),
            dirty: Mutex::new(HashSet::new()),
        }
    }

    fn head(&self, oid: &str) -> PathBuf {
        self.root.join(escape(oid))
    }

    fn clone_path(&self, oid: &str, id: u64) -> PathBuf {
        self.root.join(format!("{}@{id:x}", escape(oid)))
    }

    fn temp(&self, oid: &str) -> PathBuf {
        self.root
            .join(format!("{}@tmp{}", escape(oid), std::process::id()))
    }

    fn ensure_dir(&self) -> Result<()> {
        let mut made = self.made.lock().expect("no poisoning");
        if !*made {
            fs::create_dir_all(&self.root)
                .map_err(|e| io_error("cannot create", &self.root.to_string_lossy(), e))?;
            *made = true;
        }
        Ok(())
    }

    /// The file holding `oid` as of `snap`, or None if it did not exist.
    fn version_path(&self, db: &Db, k: Key, snap: u64) -> Result<Option<PathBuf>> {
        if snap == crate::rados::SNAP_HEAD {
            return Ok(Some(self.head(k.oid)));
        }
        let ss = db.read(|tx| load_snapset(tx, k))?;
        Ok(match ss.resolve(snap) {
            Version::Head => Some(self.head(k.oid)),
            Version::Clone(id) => Some(self.clone_path(k.oid, id)),
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
        let path = self
            .version_path(db, k, snap)?
            .ok_or_else(|| enoent(k.oid))?;
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(enoent(k.oid)),
            Err(e) => return Err(io_error("error reading", k.oid, e)),
        };
        let size = file
            .metadata()
            .map_err(|e| io_error("error reading", k.oid, e))?
            .len();
        let n = size.saturating_sub(offset).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], offset)
            .map_err(|e| io_error("error reading", k.oid, e))?;
        Ok(n)
    }

    pub fn stat(&self, db: &Db, k: Key, snap: u64) -> Result<u64> {
        let path = self
            .version_path(db, k, snap)?
            .ok_or_else(|| enoent(k.oid))?;
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(enoent(k.oid)),
            Err(e) => Err(io_error("error reading", k.oid, e)),
        }
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
        self.ensure_dir()?;
        let head = self.head(k.oid);
        let seq = db.write(|tx| {
            let mut ss = load_snapset(tx, k)?;
            let before = ss.clone();
            if let Some(id) = ss.make_writeable(snapc, head.exists()) {
                let temp = self.temp(k.oid);
                copy_sparse(&head, &temp)
                    .and_then(|()| fs::rename(&temp, self.clone_path(k.oid, id)))
                    .map_err(|e| io_error("error cloning", k.oid, e))?;
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
        self.ensure_dir()?;
        let path = self.head(oid);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_error("error writing", oid, e))?;
        self.dirty.lock().expect("no poisoning").insert(path);
        Ok(file)
    }

    /// Applies `ops` in order (rbdimg sends one op per data-object request).
    pub fn operate(&self, db: &Db, k: Key, ops: &[WriteOp], snapc: &SnapContext) -> Result<()> {
        let oid = k.oid;
        let head = self.head(oid);
        let werr = |e: io::Error| io_error("error writing", oid, e);
        for op in ops {
            match *op {
                WriteOp::AssertExists => {
                    if !head.exists() {
                        return Err(enoent(oid));
                    }
                }
                WriteOp::CreateExclusive => {
                    if head.exists() {
                        return Err(errno_error(libc::EEXIST, format!("create on {oid}")));
                    }
                    self.prepare(db, k, snapc)?;
                    self.open_head(oid)?;
                }
                WriteOp::Write { offset, data } => {
                    self.prepare(db, k, snapc)?;
                    self.open_head(oid)?
                        .write_all_at(data, offset)
                        .map_err(werr)?;
                }
                WriteOp::WriteFull(data) => {
                    self.prepare(db, k, snapc)?;
                    self.ensure_dir()?;
                    let temp = self.temp(oid);
                    fs::write(&temp, data)
                        .and_then(|()| fs::rename(&temp, &head))
                        .map_err(werr)?;
                    self.dirty
                        .lock()
                        .expect("no poisoning")
                        .insert(head.clone());
                }
                WriteOp::Zero { offset, len } => {
                    if !head.exists() {
                        continue;
                    }
                    self.prepare(db, k, snapc)?;
                    let file = self.open_head(oid)?;
                    let size = file.metadata().map_err(werr)?.len();
                    let end = offset.saturating_add(len).min(size);
                    if offset < end {
                        punch(&file, offset, end - offset).map_err(werr)?;
                    }
                }
                WriteOp::Truncate(size) => {
                    self.prepare(db, k, snapc)?;
                    self.open_head(oid)?.set_len(size).map_err(werr)?;
                }
                WriteOp::Remove => {
                    if !head.exists() {
                        return Err(errno_error(libc::ENOENT, format!("remove on {oid}")));
                    }
                    self.prepare(db, k, snapc)?;
                    match fs::remove_file(&head) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(werr(e)),
                    }
                    self.dirty.lock().expect("no poisoning").remove(&head);
                }
                WriteOp::Exec(call) => {
                    return Err(errno_error(
                        libc::EOPNOTSUPP,
                        format!(
                            "{}.{} on {oid} (the embedded store runs no class methods on data objects)",
                            call.class, call.method
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Restores the object to its state at `snap` (removed if it did not exist).
    pub fn rollback(&self, db: &Db, k: Key, snap: u64, snapc: &SnapContext) -> Result<()> {
        self.prepare(db, k, snapc)?;
        let head = self.head(k.oid);
        let werr = |e: io::Error| io_error("error rolling back", k.oid, e);
        let ss = db.read(|tx| load_snapset(tx, k))?;
        match ss.resolve(snap) {
            Version::Head => {}
            Version::Clone(id) => {
                let temp = self.temp(k.oid);
                copy_sparse(&self.clone_path(k.oid, id), &temp)
                    .and_then(|()| fs::rename(&temp, &head))
                    .map_err(werr)?;
                self.dirty.lock().expect("no poisoning").insert(head);
            }
            Version::Absent => match fs::remove_file(&head) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(werr(e)),
            },
        }
        Ok(())
    }

    /// Forgets clone files no snapshot needs any more.
    pub fn remove_clones(&self, oid: &str, ids: &[u64]) {
        for id in ids {
            let _ = fs::remove_file(self.clone_path(oid, *id));
        }
    }

    /// Object names with a head file.
    pub fn list(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("error listing", &self.root.to_string_lossy(), e)),
        };
        Ok(entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| !n.contains('@'))
            .filter_map(|n| unescape(&n))
            .collect())
    }

    /// Makes every head written since the last flush durable.
    pub fn flush(&self) -> Result<()> {
        let dirty: Vec<PathBuf> = self.dirty.lock().expect("no poisoning").drain().collect();
        for path in &dirty {
            match File::open(path).and_then(|f| f.sync_data()) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("error flushing", &path.to_string_lossy(), e)),
            }
        }
        if !dirty.is_empty()
            && let Ok(dir) = File::open(&self.root)
        {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// Deallocates a range (reads as zeros), writing zeros where holes cannot be punched.
fn punch(file: &File, offset: u64, len: u64) -> io::Result<()> {
    // SAFETY: fallocate on our own descriptor.
    let rc = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            offset as i64,
            len as i64,
        )
    };
    if rc == 0 {
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
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("db")).unwrap();
        let data = DataDir::new(dir.path().join("objects"));
        let k = Key {
            pool: 1,
            ns: "",
            oid: "rbd_data.x.0000000000000000",
        };
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
        assert!(!data.clone_path(k.oid, 2).exists());
        assert_eq!(read_back(&data, &db, k, 3).unwrap(), b"v2");
    }

    #[test]
    fn sparse_copies_keep_holes_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let f = File::create(&a).unwrap();
        f.set_len(8 << 20).unwrap();
        f.write_all_at(b"hello", 5 << 20).unwrap();
        f.write_all_at(b"x", 0).unwrap();
        copy_sparse(&a, &b).unwrap();
        assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
        use std::os::unix::fs::MetadataExt;
        assert!(fs::metadata(&b).unwrap().blocks() * 512 < 1 << 20);
    }
}
