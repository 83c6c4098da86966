//! A non-data object in the store's database, staged for one transaction
//! (`load`, then `store` what changed): its omap and xattrs whole, its
//! bytes a few pieces at a time:
//!
//! ```text
//!  up to SINGLE (64 KiB)  objects.data holds them all (as every object was
//!                         stored before chunks; such an object of any
//!                         size is still read, and chunked when written)
//!  larger                 CHUNK (512-byte) pieces: piece 0 in objects.data,
//!                         piece i in object_chunks(chunk = i); only the
//!                         last one is shorter
//! ```
//!
//! Loading reads the size and piece 0; a method's reads load the pieces
//! they touch; writing back stores only the pieces that changed. So an
//! object map update on a 16 TiB image (a 1 MiB map) reads and writes a
//! few pieces, as the OSD's cls method touches only the range it changes,
//! and the database log grows by a few pages, not by the map. Pieces are
//! small enough that SQLite keeps each row within its page. Everything
//! happens inside the caller's transaction, so the store's atomicity and
//! crash guarantees are the database's, as before.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{OptionalExtension, Transaction, params};

use super::cls::{Bytes, ClsResult, Object};
use super::db::{Key, db_error};
use crate::error::{Error, Result};

/// Bytes of one stored piece of a large object.
pub const CHUNK: u64 = 512;
/// Objects up to this size are stored whole.
pub const SINGLE: u64 = 64 << 10;

/// An object's bytes as stored and as changed within a transaction.
pub struct StoredBytes<'t> {
    tx: &'t Transaction<'t>,
    pool: i64,
    ns: String,
    oid: String,
    /// The stored object: its length and whether it is in pieces.
    stored_len: u64,
    chunked: bool,
    /// Stored bytes below this offset show through; past it (after a
    /// truncate or a replace) the object reads as written since.
    visible: u64,
    len: u64,
    /// Pieces as they are now, by index (each `CHUNK` long but the last).
    pieces: RefCell<BTreeMap<u64, Vec<u8>>>,
    /// Pieces as the database holds them, for those loaded from it.
    loaded: RefCell<BTreeMap<u64, Vec<u8>>>,
    dirty: BTreeSet<u64>,
    /// A database failure while loading pieces: reported instead of the
    /// EIO the method saw.
    failure: RefCell<Option<Error>>,
}

fn pieces_of(len: u64) -> u64 {
    len.div_ceil(CHUNK)
}

impl<'t> StoredBytes<'t> {
    /// The bytes of the object at `k`; `first` is its `objects.data`
    /// (`None` when the object does not exist).
    pub fn load(
        tx: &'t Transaction<'t>,
        k: Key,
        first: Option<Vec<u8>>,
    ) -> Result<StoredBytes<'t>> {
        let mut bytes = StoredBytes {
            tx,
            pool: k.pool,
            ns: k.ns.to_string(),
            oid: k.oid.to_string(),
            stored_len: 0,
            chunked: false,
            visible: 0,
            len: 0,
            pieces: RefCell::new(BTreeMap::new()),
            loaded: RefCell::new(BTreeMap::new()),
            dirty: BTreeSet::new(),
            failure: RefCell::new(None),
        };
        let Some(first) = first else {
            return Ok(bytes);
        };
        let last: Option<(i64, i64)> = if first.len() as u64 <= CHUNK {
            tx.query_row(
                "SELECT chunk, length(data) FROM object_chunks WHERE pool=?1 AND ns=?2 AND oid=?3 \
                 ORDER BY chunk DESC LIMIT 1",
                params![k.pool, k.ns, k.oid],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db_error)?
        } else {
            None
        };
        bytes.chunked = last.is_some();
        bytes.stored_len = match last {
            Some((index, len)) => index as u64 * CHUNK + len as u64,
            None => first.len() as u64,
        };
        bytes.len = bytes.stored_len;
        bytes.visible = bytes.stored_len;
        let mut pieces = bytes.pieces.borrow_mut();
        let mut loaded = bytes.loaded.borrow_mut();
        for (i, piece) in first.chunks(CHUNK as usize).enumerate() {
            pieces.insert(i as u64, piece.to_vec());
            loaded.insert(i as u64, piece.to_vec());
        }
        drop((pieces, loaded));
        Ok(bytes)
    }

    /// The database failure a method met, if any.
    pub fn take_failure(&self) -> Option<Error> {
        self.failure.borrow_mut().take()
    }

    fn piece_len(&self, index: u64) -> u64 {
        CHUNK.min(self.len - index * CHUNK)
    }

    /// Makes sure pieces `[first, end)` (within the object) are in memory,
    /// loading the stored ones in one query.
    fn fetch(&self, first: u64, end: u64) -> ClsResult<()> {
        let missing: Vec<u64> = {
            let pieces = self.pieces.borrow();
            (first..end).filter(|i| !pieces.contains_key(i)).collect()
        };
        let (Some(&lo), Some(&hi)) = (missing.first(), missing.last()) else {
            return Ok(());
        };
        let mut stored = BTreeMap::new();
        if self.chunked && lo * CHUNK < self.visible {
            stored = self.query(lo, hi).map_err(|e| {
                *self.failure.borrow_mut() = Some(e);
                libc::EIO
            })?;
        }
        let mut pieces = self.pieces.borrow_mut();
        let mut loaded = self.loaded.borrow_mut();
        for i in missing {
            let mut piece = vec![0; self.piece_len(i) as usize];
            if let Some(from_db) = stored.remove(&i) {
                // Stored bytes show only below `visible`.
                let shown = (self.visible.saturating_sub(i * CHUNK) as usize)
                    .min(piece.len())
                    .min(from_db.len());
                piece[..shown].copy_from_slice(&from_db[..shown]);
                loaded.insert(i, from_db);
            }
            pieces.insert(i, piece);
        }
        Ok(())
    }

    /// Stored pieces `lo..=hi` (piece 0 is loaded with the object).
    fn query(&self, lo: u64, hi: u64) -> Result<BTreeMap<u64, Vec<u8>>> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT chunk, data FROM object_chunks WHERE pool=?1 AND ns=?2 AND oid=?3 \
                 AND chunk BETWEEN ?4 AND ?5",
            )
            .map_err(db_error)?;
        let rows = stmt
            .query_map(
                params![self.pool, self.ns, self.oid, lo as i64, hi as i64],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?)),
            )
            .map_err(db_error)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db_error)
    }

    /// Writes back what changed: the whole object when it is (or becomes)
    /// small, else the changed pieces, dropping pieces past a new end.
    /// `created`: the object is new, so it is written even if empty.
    pub fn save(&self, created: bool) -> Result<()> {
        let key = params![self.pool, self.ns, self.oid];
        let whole = self.len <= SINGLE;
        if whole {
            let unchanged = !self.chunked && self.dirty.is_empty() && self.len == self.stored_len;
            if unchanged && !created {
                return Ok(());
            }
            let data = self.all()?;
            self.put_first(&data)?;
            if self.chunked {
                self.tx
                    .execute(
                        "DELETE FROM object_chunks WHERE pool=?1 AND ns=?2 AND oid=?3",
                        key,
                    )
                    .map_err(db_error)?;
            }
            return Ok(());
        }
        // Stored whole (small, or written before pieces): every piece is new.
        let changed: Vec<u64> = if self.chunked {
            self.dirty.iter().copied().collect()
        } else {
            (0..pieces_of(self.len)).collect()
        };
        if self.chunked && pieces_of(self.len) < pieces_of(self.stored_len) {
            self.tx
                .execute(
                    "DELETE FROM object_chunks WHERE pool=?1 AND ns=?2 AND oid=?3 AND chunk >= ?4",
                    params![self.pool, self.ns, self.oid, pieces_of(self.len) as i64],
                )
                .map_err(db_error)?;
        }
        for range in runs(&changed) {
            self.fetch(range.start, range.end)
                .map_err(|_| self.failed())?;
        }
        let pieces = self.pieces.borrow();
        let loaded = self.loaded.borrow();
        for i in changed {
            let piece = &pieces[&i];
            if self.chunked && loaded.get(&i) == Some(piece) {
                continue;
            }
            if i == 0 {
                self.put_first(piece)?;
            } else {
                self.tx
                    .execute(
                        "INSERT OR REPLACE INTO object_chunks(pool, ns, oid, chunk, data) \
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![self.pool, self.ns, self.oid, i as i64, piece],
                    )
                    .map_err(db_error)?;
            }
        }
        Ok(())
    }

    /// Deletes every stored piece (the object is removed).
    pub fn delete(&self) -> Result<()> {
        self.tx
            .execute(
                "DELETE FROM object_chunks WHERE pool=?1 AND ns=?2 AND oid=?3",
                params![self.pool, self.ns, self.oid],
            )
            .map_err(db_error)?;
        Ok(())
    }

    fn put_first(&self, data: &[u8]) -> Result<()> {
        self.tx
            .execute(
                "INSERT OR REPLACE INTO objects(pool, ns, oid, data) VALUES (?1, ?2, ?3, ?4)",
                params![self.pool, self.ns, self.oid, data],
            )
            .map_err(db_error)?;
        Ok(())
    }

    fn all(&self) -> Result<Vec<u8>> {
        self.read(0, self.len).map_err(|_| self.failed())
    }

    fn failed(&self) -> Error {
        self.take_failure()
            .unwrap_or_else(|| Error::new(crate::error::ErrorKind::Io, "embedded store: EIO"))
    }

    /// Marks pieces `[first, end)` changed.
    fn touch(&mut self, first: u64, end: u64) {
        self.dirty.extend(first..end);
    }
}

/// Consecutive runs of sorted piece indexes, for one query each.
fn runs(indexes: &[u64]) -> Vec<std::ops::Range<u64>> {
    let mut out: Vec<std::ops::Range<u64>> = Vec::new();
    for &i in indexes {
        match out.last_mut() {
            Some(r) if r.end == i => r.end += 1,
            _ => out.push(i..i + 1),
        }
    }
    out
}

impl Bytes for StoredBytes<'_> {
    fn size(&self) -> u64 {
        self.len
    }

    fn read(&self, offset: u64, len: u64) -> ClsResult<Vec<u8>> {
        let start = offset.min(self.len);
        let end = offset.saturating_add(len).min(self.len);
        if start >= end {
            return Ok(Vec::new());
        }
        let (first, last) = (start / CHUNK, (end - 1) / CHUNK);
        self.fetch(first, last + 1)?;
        let pieces = self.pieces.borrow();
        let mut out = Vec::with_capacity((end - start) as usize);
        for i in first..=last {
            let piece = &pieces[&i];
            let from = start.saturating_sub(i * CHUNK) as usize;
            let to = ((end - i * CHUNK) as usize).min(piece.len());
            out.extend_from_slice(&piece[from..to]);
        }
        Ok(out)
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> ClsResult<()> {
        let end = offset + data.len() as u64;
        if end > self.len {
            self.truncate(end)?;
        }
        if data.is_empty() {
            return Ok(());
        }
        let (first, last) = (offset / CHUNK, (end - 1) / CHUNK);
        self.fetch(first, last + 1)?;
        let mut pieces = self.pieces.borrow_mut();
        for i in first..=last {
            let piece = pieces.get_mut(&i).expect("fetched");
            let from = offset.saturating_sub(i * CHUNK);
            let to = (end - i * CHUNK).min(piece.len() as u64);
            let src = (i * CHUNK + from - offset) as usize;
            piece[from as usize..to as usize]
                .copy_from_slice(&data[src..src + (to - from) as usize]);
        }
        drop(pieces);
        self.touch(first, last + 1);
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> ClsResult<()> {
        let old = self.len;
        if len == old {
            return Ok(());
        }
        // The piece holding the old end changes length either way.
        let edge = len.min(old) / CHUNK;
        if edge < pieces_of(old) {
            self.fetch(edge, edge + 1)?;
        }
        self.visible = self.visible.min(len);
        self.len = len;
        let mut pieces = self.pieces.borrow_mut();
        pieces.retain(|&i, _| i < pieces_of(len));
        if let Some(piece) = pieces.get_mut(&edge) {
            piece.resize(CHUNK.min(len - edge * CHUNK) as usize, 0);
        }
        drop(pieces);
        self.dirty.retain(|&i| i < pieces_of(len));
        // Growing adds pieces of zeros, which must be stored.
        self.touch(edge, pieces_of(len).max(edge));
        Ok(())
    }

    fn replace(&mut self, data: &[u8]) {
        self.visible = 0;
        self.len = 0;
        self.pieces.borrow_mut().clear();
        self.dirty.clear();
        self.write(0, data)
            .expect("nothing is loaded from the database past `visible`");
    }
}

/// A non-data object staged from the database for one transaction.
pub type StoredObject<'t> = Object<StoredBytes<'t>>;

/// Loads one non-data object: its existence, omap and xattrs, and its
/// bytes' size (the bytes themselves as they are read).
pub fn load<'t>(tx: &'t Transaction<'t>, k: Key) -> Result<StoredObject<'t>> {
    let first: Option<Vec<u8>> = tx
        .query_row(
            "SELECT data FROM objects WHERE pool=?1 AND ns=?2 AND oid=?3",
            params![k.pool, k.ns, k.oid],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_error)?;
    let exists = first.is_some();
    let mut object = Object {
        exists,
        data: StoredBytes::load(tx, k, first)?,
        omap: Default::default(),
        xattrs: Default::default(),
        caller: None,
        clock: None,
    };
    if !exists {
        return Ok(object);
    }
    for (table, column) in [("omap", "key"), ("xattrs", "name")] {
        let mut stmt = tx
            .prepare_cached(&format!(
                "SELECT {column}, value FROM {table} WHERE pool=?1 AND ns=?2 AND oid=?3"
            ))
            .map_err(db_error)?;
        let rows = stmt
            .query_map(params![k.pool, k.ns, k.oid], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db_error)?;
        let target = if table == "omap" {
            &mut object.omap
        } else {
            &mut object.xattrs
        };
        for row in rows {
            let (key, value): (String, Vec<u8>) = row.map_err(db_error)?;
            target.insert(key, value);
        }
    }
    Ok(object)
}

/// Writes back what changed between `before` and `after` (two loads of
/// the object in this transaction, `after` changed since).
pub fn store(tx: &Transaction, k: Key, before: &StoredObject, after: &StoredObject) -> Result<()> {
    let p = params![k.pool, k.ns, k.oid];
    if !after.exists {
        if before.exists {
            for table in ["objects", "omap", "xattrs"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE pool=?1 AND ns=?2 AND oid=?3"),
                    p,
                )
                .map_err(db_error)?;
            }
            after.data.delete()?;
        }
        return Ok(());
    }
    after.data.save(!before.exists)?;
    for (table, column, old, new) in [
        ("omap", "key", &before.omap, &after.omap),
        ("xattrs", "name", &before.xattrs, &after.xattrs),
    ] {
        for key in old.keys().filter(|key| !new.contains_key(*key)) {
            tx.execute(
                &format!("DELETE FROM {table} WHERE pool=?1 AND ns=?2 AND oid=?3 AND {column}=?4"),
                params![k.pool, k.ns, k.oid, key],
            )
            .map_err(db_error)?;
        }
        for (key, value) in new.iter().filter(|(key, v)| old.get(*key) != Some(*v)) {
            tx.execute(
                &format!(
                    "INSERT OR REPLACE INTO {table}(pool, ns, oid, {column}, value) VALUES (?1, ?2, ?3, ?4, ?5)"
                ),
                params![k.pool, k.ns, k.oid, key, value],
            )
            .map_err(db_error)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rados::embedded::db::Db;
    use crate::rados::embedded::dir::Dir;

    /// Every kind of change, then the object as stored, must read as the
    /// same changes made to a plain vector.
    #[test]
    fn pieces_read_and_write_back_as_a_plain_vector() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&Dir::open_root(dir.path()).unwrap()).unwrap();
        let k = Key {
            pool: 1,
            ns: "",
            oid: "rbd_object_map.x",
        };
        let big = |n: usize| (0..n).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>();
        // As a store written before pieces holds a large object: whole.
        let mut model = big(100_000);
        db.write(|tx| {
            tx.execute(
                "INSERT INTO objects(pool, ns, oid, data) VALUES (?1, ?2, ?3, ?4)",
                params![k.pool, k.ns, k.oid, model],
            )
            .map_err(db_error)?;
            Ok(())
        })
        .unwrap();
        type Step<'a> = Box<dyn Fn(&mut dyn Bytes) + 'a>;
        let steps: Vec<Step> = vec![
            Box::new(|b| b.write(70_000, &[1; 3000]).unwrap()),
            Box::new(|b| b.replace(&big(100_000))),
            Box::new(|b| b.write(511, &[2; 2]).unwrap()),
            Box::new(|b| b.truncate(90_001).unwrap()),
            Box::new(|b| b.truncate(95_000).unwrap()),
            Box::new(|b| b.write(120_000, &[3; 10]).unwrap()),
            Box::new(|b| b.truncate(40_000).unwrap()),
            Box::new(|b| b.write(100, &[4; 1000]).unwrap()),
            Box::new(|b| b.replace(&big(70_000))),
            Box::new(|b| b.truncate(0).unwrap()),
            Box::new(|b| b.write(0, &big(3)).unwrap()),
        ];
        for step in &steps {
            step(&mut model);
            db.write(|tx| {
                let before = load(tx, k)?;
                let mut after = load(tx, k)?;
                after.exists = true;
                step(&mut after.data);
                store(tx, k, &before, &after)
            })
            .unwrap();
            let stored = db
                .read(|tx| {
                    let object = load(tx, k)?;
                    assert_eq!(object.data.size(), model.len() as u64);
                    Ok(object.data.read(0, u64::MAX).unwrap())
                })
                .unwrap();
            assert!(stored == model, "after {} bytes", model.len());
            // A small change to a large object stores one piece.
            if model.len() > SINGLE as usize {
                let changes = db
                    .write(|tx| {
                        let count = |tx: &Transaction| -> Result<i64> {
                            tx.query_row("SELECT total_changes()", [], |r| r.get(0))
                                .map_err(db_error)
                        };
                        let start = count(tx)?;
                        let before = load(tx, k)?;
                        let mut after = load(tx, k)?;
                        // Rewriting a byte as it is changes nothing.
                        let at = model.len() as u64 / 2;
                        let same = after.data.read(at, 1).unwrap();
                        after.data.write(at, &same).unwrap();
                        after
                            .data
                            .write(at + 1, &[!model[at as usize + 1]])
                            .unwrap();
                        store(tx, k, &before, &after)?;
                        Ok(count(tx)? - start)
                    })
                    .unwrap();
                assert_eq!(changes, 1, "{} bytes", model.len());
                let at = model.len() / 2 + 1;
                model[at] = !model[at];
            }
            // Reads of pieces, including across the old and new ends.
            db.read(|tx| {
                let object = load(tx, k)?;
                for (at, n) in [(0, 10), (500, 30), (65_530, 20), (89_999, 5000)] {
                    let want = model.read(at, n).unwrap();
                    assert_eq!(object.data.read(at, n).unwrap(), want, "{at}+{n}");
                }
                Ok(())
            })
            .unwrap();
        }
    }
}
