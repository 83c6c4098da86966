//! The store's database: SQLite in WAL mode (several rbdimg processes may
//! use one store at once; each transaction is atomic and isolated, writers
//! wait on a busy timeout). It holds pools, every non-data object (bytes,
//! in pieces when large, omap, xattrs: `object.rs` loads and stores them),
//! the snapsets of data objects, and the registry of live clients and
//! their watches.

use std::fs::File;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
use rustix::fs::FileType;

use super::dir::Dir;
use crate::error::{Error, ErrorKind, Result};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS pools(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT UNIQUE NOT NULL,
    snap_seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS objects(
    pool INTEGER NOT NULL, ns TEXT NOT NULL, oid TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY(pool, ns, oid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS omap(
    pool INTEGER NOT NULL, ns TEXT NOT NULL, oid TEXT NOT NULL, key TEXT NOT NULL,
    value BLOB NOT NULL, PRIMARY KEY(pool, ns, oid, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS xattrs(
    pool INTEGER NOT NULL, ns TEXT NOT NULL, oid TEXT NOT NULL, name TEXT NOT NULL,
    value BLOB NOT NULL, PRIMARY KEY(pool, ns, oid, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS object_chunks(
    pool INTEGER NOT NULL, ns TEXT NOT NULL, oid TEXT NOT NULL, chunk INTEGER NOT NULL,
    data BLOB NOT NULL, PRIMARY KEY(pool, ns, oid, chunk)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapsets(
    pool INTEGER NOT NULL, ns TEXT NOT NULL, oid TEXT NOT NULL,
    seq INTEGER NOT NULL, clones TEXT NOT NULL,
    PRIMARY KEY(pool, ns, oid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS clients(
    gid INTEGER PRIMARY KEY AUTOINCREMENT, pid INTEGER NOT NULL, start INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS watches(
    pool INTEGER NOT NULL, ns TEXT NOT NULL, oid TEXT NOT NULL,
    gid INTEGER NOT NULL, cookie INTEGER NOT NULL,
    PRIMARY KEY(pool, ns, oid, gid, cookie)) WITHOUT ROWID;
";

/// The database's file in the store's root, and the companions SQLite
/// opens beside it by path.
pub const FILE: &str = "store.db";
const WAL: &str = "store.db-wal";
pub const COMPANIONS: [&str; 3] = [WAL, "store.db-shm", "store.db-journal"];

/// How long a writer waits for another process's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(120);

pub fn db_error(e: rusqlite::Error) -> Error {
    Error::new(ErrorKind::Io, format!("embedded store database: {e}"))
}

/// An object's address in the store.
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    pub pool: i64,
    pub ns: &'a str,
    pub oid: &'a str,
}

pub struct Db {
    conn: Mutex<Connection>,
    /// The store's root and the database's write-ahead log, for `sync`.
    root: Dir,
    wal: File,
}

impl Db {
    /// Opens (creating) the database in the store's root. SQLite opens
    /// files by path, so first the database and its companions must be
    /// regular files or absent, never links; the database is created here
    /// (0600), and SQLite gives its -wal and -shm files the same mode.
    pub fn open(root: &Dir) -> Result<Db> {
        let path = root.path().join(FILE);
        let cannot = |e: &dyn std::fmt::Display| {
            Error::new(
                ErrorKind::Io,
                format!("cannot open the embedded store {}: {e}", path.display()),
            )
        };
        for name in COMPANIONS {
            root.check(name, FileType::RegularFile)
                .map_err(|e| cannot(&e))?;
        }
        drop(root.open_write(FILE).map_err(|e| cannot(&e))?);
        // Not SQLITE_OPEN_URI: a store path starting "file:" is a path.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let mut conn = Connection::open_with_flags(&path, flags).map_err(|e| cannot(&e))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db_error)?;
        // WAL lets readers run beside one writer; NORMAL syncs at checkpoints,
        // which survives any process crash.
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(db_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::new(
                ErrorKind::Io,
                format!("embedded store: the database refused WAL mode ({mode})"),
            ));
        }
        conn.execute_batch("PRAGMA synchronous=NORMAL;")
            .map_err(db_error)?;
        immediate(&mut conn, |tx| tx.execute_batch(SCHEMA).map_err(db_error))?;
        // The log exists while a connection is open (SQLite deletes it
        // with the last one).
        let wal = root
            .open_read(WAL)
            .and_then(|f| f.ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOENT)))
            .map_err(|e| cannot(&format!("{WAL}: {e}")))?;
        let root = root.try_clone().map_err(|e| cannot(&e))?;
        Ok(Db {
            conn: Mutex::new(conn),
            root,
            wal,
        })
    }

    /// Makes every committed transaction durable. With synchronous=NORMAL
    /// SQLite syncs the log only at checkpoints (a commit survives the
    /// process, not the machine); syncing it here is enough, as the next
    /// open replays it. The root directory holds the database's names.
    pub fn sync(&self) -> Result<()> {
        let fail = |e: std::io::Error| {
            Error::io(
                format!(
                    "cannot flush the embedded store {}",
                    self.root.path().display()
                ),
                e,
            )
        };
        self.wal.sync_data().map_err(fail)?;
        self.root.sync().map_err(fail)
    }

    /// Runs `f` in an immediate (write) transaction, committed when it succeeds.
    pub fn write<T>(&self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        immediate(&mut self.conn.lock().expect("no poisoning"), f)
    }

    /// Runs `f` in a read transaction (one consistent snapshot of the store).
    pub fn read<T>(&self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let mut conn = self.conn.lock().expect("no poisoning");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(db_error)?;
        f(&tx)
    }
}

fn immediate<T>(conn: &mut Connection, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_error)?;
    let value = f(&tx)?;
    tx.commit().map_err(db_error)?;
    Ok(value)
}

/// The pool's id; with `create` a missing pool is made (ensure_pool does).
pub fn pool_id(tx: &Transaction, name: &str, create: bool) -> Result<Option<i64>> {
    let found: Option<i64> = tx
        .query_row("SELECT id FROM pools WHERE name=?1", [name], |r| r.get(0))
        .optional()
        .map_err(db_error)?;
    match found {
        Some(id) => Ok(Some(id)),
        None if create => {
            tx.execute("INSERT INTO pools(name) VALUES (?1)", [name])
                .map_err(db_error)?;
            Ok(Some(tx.last_insert_rowid()))
        }
        None => Ok(None),
    }
}

pub fn pool_name(tx: &Transaction, id: i64) -> Result<Option<String>> {
    tx.query_row("SELECT name FROM pools WHERE id=?1", [id], |r| r.get(0))
        .optional()
        .map_err(db_error)
}

pub fn pool_names(tx: &Transaction) -> Result<Vec<String>> {
    let mut query = tx
        .prepare("SELECT name FROM pools ORDER BY id")
        .map_err(db_error)?;
    let names = query
        .query_map([], |r| r.get(0))
        .map_err(db_error)?
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(db_error)?;
    Ok(names)
}

/// Allocates the pool's next self-managed snapshot id.
pub fn next_snap(tx: &Transaction, pool: i64) -> Result<u64> {
    tx.execute("UPDATE pools SET snap_seq=snap_seq+1 WHERE id=?1", [pool])
        .map_err(db_error)?;
    let seq: i64 = tx
        .query_row("SELECT snap_seq FROM pools WHERE id=?1", [pool], |r| {
            r.get(0)
        })
        .map_err(db_error)?;
    Ok(seq as u64)
}

/// Names of the non-data objects in a pool's namespace.
pub fn list(tx: &Transaction, pool: i64, ns: &str) -> Result<Vec<String>> {
    let mut stmt = tx
        .prepare("SELECT oid FROM objects WHERE pool=?1 AND ns=?2 UNION SELECT oid FROM snapsets WHERE pool=?1 AND ns=?2 AND clones != ''")
        .map_err(db_error)?;
    let rows = stmt
        .query_map(params![pool, ns], |r| r.get(0))
        .map_err(db_error)?;
    rows.collect::<rusqlite::Result<Vec<String>>>()
        .map_err(db_error)
}
