//! The embedded RADOS store: a second backend of the RADOS client trait,
//! for `rbd:` images with no Ceph cluster. One directory holds it:
//!
//! ```text
//!  <store>/store.db                 SQLite (WAL): pools, non-data objects
//!                                   (bytes, in 512-byte pieces above 64 KiB;
//!                                   omap, xattrs), snapsets of data objects,
//!                                   live clients and their watches
//!  <store>/objects/<pool id>/<ns>/  data objects (rbd_data.*) as sparse files,
//!                                   <oid> for the head, <oid>@<hex> per clone;
//!                                   <ns> is `default` or `ns_<escaped name>`
//! ```
//!
//! The store is private and follows no links: below the root the user
//! chose, every directory and file is opened relative to its parent's
//! descriptor without following links, and what the store creates is 0700
//! (directories) or 0600 (files) whatever the umask (`dir.rs`). An existing
//! store that others can reach gets a warning, not a silent chmod.
//!
//! It is as strict as a cluster where a cluster is strict: the name's
//! settings are checked against Ceph's option table (`options.rs`), the
//! OSD's name limits apply, and a missing pool or namespace is an error,
//! except that creating an image makes its pool and namespace (with names
//! Ceph accepts) since the store has no `ceph osd pool create`.
//!
//! Object classes (cls_rbd, cls_lock) run here, inside the same database
//! transaction as the rest of a compound op. Several rbdimg processes may
//! share a store: metadata transactions are atomic and isolated, data writes
//! to an image are serialized by its exclusive lock as on Ceph. A client is
//! alive while its process (pid and start time) is; `notify` reaches the
//! watchers of our own process through their handlers, lists those of
//! other live processes as answering with an empty payload, and drops
//! those of dead ones, which is all librbd's lock protocol needs to tell a
//! live owner from a dead one.
//!
//! Durability: an op that returns is in the kernel (page cache, database
//! log), so it survives its process being killed at any point. It survives
//! a power loss or an OS crash once the pool is flushed: `flush` syncs the
//! data files and clones written since the last flush, the directories
//! that name them and the database log. A power loss before that may lose
//! or tear the objects written since the last flush, including the clones
//! that keep snapshots' contents (the database itself stays consistent).

pub mod cls;
pub mod data;
pub mod db;
pub mod dir;
pub mod object;
pub mod options;
pub mod snapset;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rusqlite::params;

use self::cls::{Caller, ObjectCtx};
use self::data::{DataDir, is_data_object};
use self::db::{Db, Key, db_error};
use self::dir::Dir;
use crate::block::diagnostics::Diagnostics;
use crate::ceph::Call;
use crate::ceph::errno::errno_error;
use crate::error::{Error, Result};
use crate::rados::{
    Cluster, Pool, SNAP_HEAD, SnapContext, Watch, WatchHandler, Watcher, WriteOp, describe_ops,
};

/// The start time of a process (`/proc/<pid>/stat` field 22), which tells
/// a live process from a later one that reused its pid.
pub fn process_start(pid: i64) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn alive(pid: i64, start: u64) -> bool {
    process_start(pid) == Some(start)
}

/// librbd's list of a pool's namespaces (in the default namespace).
const NAMESPACE_DIRECTORY: &str = "rbd_namespace";

type Handlers = HashMap<(u64, u64), Arc<dyn WatchHandler>>;

/// Watch handlers of this process, by "store|pool|ns|oid" and (gid, cookie).
fn handlers() -> &'static Mutex<HashMap<String, Handlers>> {
    static H: OnceLock<Mutex<HashMap<String, Handlers>>> = OnceLock::new();
    H.get_or_init(|| Mutex::new(HashMap::new()))
}

struct Shared {
    root: PathBuf,
    objects: Arc<Dir>,
    db: Db,
    gid: u64,
    pid: i64,
    start: u64,
    settings: Vec<(String, String)>,
    next_cookie: AtomicU64,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = self.db.write(|tx| {
            tx.execute("DELETE FROM watches WHERE gid=?1", [self.gid as i64])
                .map_err(db_error)?;
            tx.execute("DELETE FROM clients WHERE gid=?1", [self.gid as i64])
                .map_err(db_error)?;
            Ok(())
        });
    }
}

/// The OSD's limits (`osd_max_object_name_len`,
/// `osd_max_object_namespace_len`): longer names fail with ENAMETOOLONG.
const MAX_OBJECT_NAME_LEN: usize = 2048;
const MAX_NAMESPACE_LEN: usize = 256;

/// Longest directory name the store makes from a namespace (NAME_MAX is 255).
const NS_CHUNK: usize = 200;

/// The directories (below `objects/`) of a pool namespace's data objects:
/// `<pool id>/default`, or `<pool id>/ns_<escaped name>`, where a long
/// escaped name continues in nested `+<rest>` directories.
fn data_dir(objects: &Arc<Dir>, pool: i64, namespace: &str) -> DataDir {
    let mut components = vec![pool.to_string()];
    if namespace.is_empty() {
        components.push("default".into());
    } else {
        let escaped = data::escape(namespace);
        // Escaped text is ASCII: any byte index is a char boundary.
        for (i, chunk) in escaped.as_bytes().chunks(NS_CHUNK).enumerate() {
            let chunk = std::str::from_utf8(chunk).expect("ASCII");
            components.push(if i == 0 {
                format!("ns_{chunk}")
            } else {
                format!("+{chunk}")
            });
        }
    }
    DataDir::new(objects.clone(), components)
}

/// A pool the store makes on demand: Ceph takes any non-empty name, but
/// reserves names starting with '.' for itself, so those (and `..`) must
/// already exist.
fn creatable_pool(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains('\0')
}

/// A namespace the store makes on demand: librbd requires a name, the OSD
/// bounds its length.
fn creatable_namespace(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAMESPACE_LEN && !name.contains('\0')
}

/// The one-line warning for a store other users can reach, if it is one.
fn exposure_warning(root: &Dir) -> std::io::Result<Option<String>> {
    let mut open = Vec::new();
    let root_mode = root.mode()?;
    if root_mode & 0o077 != 0 {
        open.push(format!("{} is {root_mode:04o}", root.path().display()));
    }
    // SQLite gives the database's mode to its -wal and -shm files.
    if let Some(mode) = root
        .check(db::FILE, rustix::fs::FileType::RegularFile)?
        .filter(|m| m & 0o077 != 0)
    {
        open.push(format!("{} is {mode:04o}", db::FILE));
    }
    Ok((!open.is_empty()).then(|| {
        format!(
            "the embedded store is open to other users ({}); \
             `chmod -R go= {}` makes it private",
            open.join(", "),
            root.path().display()
        )
    }))
}

pub struct EmbeddedCluster {
    shared: Arc<Shared>,
}

impl EmbeddedCluster {
    /// Opens (creating if needed) the store at `root`. `settings` are the
    /// name's key=value pairs, checked as a cluster checks them and answered
    /// by `config` (e.g. rbd_default_features). A store other users can
    /// reach is a warning on `diagnostics`.
    pub fn open(
        root: &Path,
        settings: &[(String, String)],
        diagnostics: &Diagnostics,
    ) -> Result<EmbeddedCluster> {
        // First, as librados applies settings before it connects.
        let settings = options::check(settings)?;
        let cannot = |e: std::io::Error| {
            Error::io(
                format!("cannot open the embedded store {}", root.display()),
                e,
            )
        };
        let root_dir = Dir::open_root(root).map_err(cannot)?;
        let objects = root_dir
            .subdir("objects", true)
            .map_err(cannot)?
            .expect("created");
        let db = Db::open(&root_dir)?;
        if let Some(warning) = exposure_warning(&root_dir).map_err(cannot)? {
            diagnostics.warning(warning);
        }
        let pid = std::process::id() as i64;
        let start = process_start(pid).unwrap_or(0);
        let gid = db.write(|tx| {
            tx.execute(
                "INSERT INTO clients(pid, start) VALUES (?1, ?2)",
                params![pid, start as i64],
            )
            .map_err(db_error)?;
            Ok(tx.last_insert_rowid() as u64)
        })?;
        Ok(EmbeddedCluster {
            shared: Arc::new(Shared {
                root: root.to_path_buf(),
                objects: Arc::new(objects),
                db,
                gid,
                pid,
                start,
                settings,
                next_cookie: AtomicU64::new(1),
            }),
        })
    }

    fn open_pool(&self, id: i64, name: String, namespace: &str) -> Arc<dyn Pool> {
        Arc::new(EmbeddedPool {
            shared: self.shared.clone(),
            id,
            name,
            namespace: namespace.to_string(),
            data: data_dir(&self.shared.objects, id, namespace),
        })
    }
}

impl Cluster for EmbeddedCluster {
    fn pool(&self, name: &str, namespace: &str) -> Result<Arc<dyn Pool>> {
        let id = self
            .shared
            .db
            .read(|tx| db::pool_id(tx, name, false))?
            .ok_or_else(|| errno_error(libc::ENOENT, format!("error opening pool {name}")))?;
        Ok(self.open_pool(id, name.to_string(), namespace))
    }

    /// Makes the pool and namespace an image is about to be created in, as
    /// `ceph osd pool create` and `rbd namespace create` would; names the
    /// store does not make are left for the open to report as missing.
    fn ensure_pool(&self, name: &str, namespace: &str) -> Result<()> {
        if !creatable_pool(name) {
            return Ok(());
        }
        self.shared.db.write(|tx| {
            let id = db::pool_id(tx, name, true)?.expect("created");
            if !creatable_namespace(namespace) {
                return Ok(());
            }
            // librbd's Namespace::create: listed in the default namespace's
            // rbd_namespace, with a ready image directory of its own.
            let listed = Key {
                pool: id,
                ns: "",
                oid: NAMESPACE_DIRECTORY,
            };
            let directory = Key {
                pool: id,
                ns: namespace,
                oid: crate::ceph::cls_rbd::DIRECTORY,
            };
            let before = object::load(tx, listed)?;
            let mut after = object::load(tx, listed)?;
            after.exists = true;
            after.omap.entry(format!("name_{namespace}")).or_default();
            object::store(tx, listed, &before, &after)?;
            let before = object::load(tx, directory)?;
            if !before.omap.contains_key("state") {
                let mut after = object::load(tx, directory)?;
                cls::call(&mut after, "rbd", "dir_state_set", &[0])
                    .map_err(|e| errno_error(e, "rbd.dir_state_set on rbd_directory".into()))?;
                object::store(tx, directory, &before, &after)?;
            }
            Ok(())
        })
    }

    fn pool_by_id(&self, id: i64, namespace: &str) -> Result<Arc<dyn Pool>> {
        let name = self
            .shared
            .db
            .read(|tx| db::pool_name(tx, id))?
            .ok_or_else(|| errno_error(libc::ENOENT, format!("error opening pool {id}")))?;
        Ok(self.open_pool(id, name, namespace))
    }

    fn instance_id(&self) -> u64 {
        self.shared.gid
    }

    /// The store serves rbdimg alone, as a cluster made since mimic that
    /// requires mimic clients: `rbd_default_clone_format=auto` clones v2.
    fn min_compat_client(&self) -> Result<u8> {
        Ok(crate::rados::MIMIC)
    }

    fn pool_names(&self) -> Result<Vec<String>> {
        self.shared.db.read(db::pool_names)
    }

    fn describe(&self) -> String {
        format!("embedded:{}", self.shared.root.display())
    }

    fn config(&self, key: &str) -> Option<String> {
        self.shared
            .settings
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    /// Fencing a client of this store means making sure it is dead: its
    /// process is gone, so it can never write again. A live one is refused.
    fn blocklist(&self, address: &str) -> Result<()> {
        let gid = cls::lock::address_nonce(address)
            .ok_or_else(|| errno_error(libc::EINVAL, format!("error blocklisting {address}")))?
            as i64;
        self.shared.db.write(|tx| {
            let row: Option<(i64, i64)> = rusqlite::OptionalExtension::optional(tx.query_row(
                "SELECT pid, start FROM clients WHERE gid=?1",
                [gid],
                |r| Ok((r.get(0)?, r.get(1)?)),
            ))
            .map_err(db_error)?;
            if let Some((pid, start)) = row
                && alive(pid, start as u64)
            {
                return Err(errno_error(
                    libc::EBUSY,
                    format!("error blocklisting {address}: client.{gid} (pid {pid}) is alive"),
                ));
            }
            tx.execute("DELETE FROM watches WHERE gid=?1", [gid])
                .map_err(db_error)?;
            tx.execute("DELETE FROM clients WHERE gid=?1", [gid])
                .map_err(db_error)?;
            Ok(())
        })
    }
}

pub struct EmbeddedPool {
    shared: Arc<Shared>,
    id: i64,
    name: String,
    namespace: String,
    data: DataDir,
}

impl EmbeddedPool {
    fn key<'a>(&'a self, oid: &'a str) -> Key<'a> {
        Key {
            pool: self.id,
            ns: &self.namespace,
            oid,
        }
    }

    fn caller(&self) -> Caller {
        Caller {
            gid: self.shared.gid,
            nonce: self.shared.gid as u32,
        }
    }

    fn watch_key(&self, oid: &str) -> String {
        format!(
            "{}|{}|{}|{oid}",
            self.shared.root.display(),
            self.id,
            self.namespace
        )
    }

    /// The OSD refuses an over-long object or namespace name before
    /// anything else; `what` words the failure as the librados backend does.
    fn check_names(&self, oid: &str, what: impl FnOnce() -> String) -> Result<()> {
        if oid.len() > MAX_OBJECT_NAME_LEN || self.namespace.len() > MAX_NAMESPACE_LEN {
            return Err(errno_error(libc::ENAMETOOLONG, what()));
        }
        Ok(())
    }

    /// Whether the head exists: watches and notifies need an object.
    fn exists(&self, oid: &str) -> Result<bool> {
        if !is_data_object(oid) {
            return self.with_object(oid, |o| Ok(o.exists), String::new);
        }
        match self.data.stat(&self.shared.db, self.key(oid), SNAP_HEAD) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == crate::error::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// ENOENT worded `what` unless the object exists.
    fn need(&self, oid: &str, what: impl FnOnce() -> String) -> Result<()> {
        if self.exists(oid)? {
            Ok(())
        } else {
            Err(errno_error(libc::ENOENT, what()))
        }
    }

    /// Runs `f` on the non-data object `oid` as it is stored, in a read
    /// transaction; a failure is worded `what`, or is the database's own.
    fn with_object<T>(
        &self,
        oid: &str,
        f: impl FnOnce(&mut object::StoredObject) -> cls::ClsResult<T>,
        what: impl FnOnce() -> String,
    ) -> Result<T> {
        self.shared.db.read(|tx| {
            let mut object = object::load(tx, self.key(oid))?;
            f(&mut object).map_err(|e| failure(&object, e, what))
        })
    }
}

impl Pool for EmbeddedPool {
    fn id(&self) -> i64 {
        self.id
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn read_into(&self, oid: &str, offset: u64, buf: &mut [u8], snap: u64) -> Result<usize> {
        self.check_names(oid, || format!("error reading {oid}"))?;
        if is_data_object(oid) {
            return self
                .data
                .read_into(&self.shared.db, self.key(oid), offset, buf, snap);
        }
        let bytes = self.with_object(
            oid,
            |o| o.read(offset, buf.len() as u64),
            || format!("error reading {oid}"),
        )?;
        buf[..bytes.len()].copy_from_slice(&bytes);
        Ok(bytes.len())
    }

    fn stat(&self, oid: &str, snap: u64) -> Result<u64> {
        self.check_names(oid, || format!("error reading {oid}"))?;
        if is_data_object(oid) {
            return self.data.stat(&self.shared.db, self.key(oid), snap);
        }
        self.with_object(oid, |o| o.size(), || format!("error reading {oid}"))
    }

    /// As librados' exec: a method flagged WR runs as a write (its change
    /// is kept, atomically), any other on a read-only copy.
    fn exec(&self, oid: &str, call: &Call) -> Result<Vec<u8>> {
        let what = || format!("{}.{} on {oid}", call.class, call.method);
        self.check_names(oid, what)?;
        if is_data_object(oid) {
            return Err(errno_error(libc::EOPNOTSUPP, what()));
        }
        let writes = cls::method(call.class, call.method).is_ok_and(|m| m.writes());
        let run = |obj: &mut object::StoredObject| {
            obj.caller = Some(self.caller());
            cls::exec(obj, call.class, call.method, &call.input)
        };
        if !writes {
            return self.with_object(oid, run, what);
        }
        let k = self.key(oid);
        self.shared.db.write(|tx| {
            let before = object::load(tx, k)?;
            let mut after = object::load(tx, k)?;
            let out = run(&mut after).map_err(|e| failure(&after, e, what))?;
            object::store(tx, k, &before, &after)?;
            Ok(out)
        })
    }

    fn operate(&self, oid: &str, ops: &[WriteOp], snapc: &SnapContext) -> Result<()> {
        self.check_names(oid, || describe_ops(oid, ops))?;
        if is_data_object(oid) {
            return self
                .data
                .operate(&self.shared.db, self.key(oid), ops, snapc);
        }
        let k = self.key(oid);
        self.shared.db.write(|tx| {
            let before = object::load(tx, k)?;
            let mut after = object::load(tx, k)?;
            after.caller = Some(self.caller());
            for op in ops {
                after
                    .apply(op)
                    .map_err(|e| failure(&after, e, || describe_ops(oid, ops)))?;
            }
            object::store(tx, k, &before, &after)
        })
    }

    fn snap_create(&self) -> Result<u64> {
        self.shared.db.write(|tx| db::next_snap(tx, self.id))
    }

    fn snap_remove(&self, snap: u64) -> Result<()> {
        // Trim every clone in the pool (all namespaces) that served `snap`.
        let freed = self.shared.db.write(|tx| {
            let mut stmt = tx
                .prepare("SELECT ns, oid, seq, clones FROM snapsets WHERE pool=?1 AND clones != ''")
                .map_err(db_error)?;
            let rows = stmt
                .query_map([self.id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .map_err(db_error)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db_error)?;
            let mut freed = Vec::new();
            for (ns, oid, seq, text) in rows {
                let Some(mut ss) = snapset::SnapSet::parse(seq as u64, &text) else {
                    continue;
                };
                let before = ss.clone();
                let gone = ss.trim(snap);
                if ss != before {
                    let k = Key {
                        pool: self.id,
                        ns: &ns,
                        oid: &oid,
                    };
                    data::save_snapset(tx, k, &ss)?;
                }
                if !gone.is_empty() {
                    freed.push((ns, oid, gone));
                }
            }
            Ok(freed)
        })?;
        for (ns, oid, ids) in freed {
            data_dir(&self.shared.objects, self.id, &ns).remove_clones(&oid, &ids);
        }
        Ok(())
    }

    fn rollback(&self, oid: &str, snap: u64, snapc: &SnapContext) -> Result<()> {
        self.check_names(oid, || format!("error rolling back {oid}"))?;
        if is_data_object(oid) {
            return self
                .data
                .rollback(&self.shared.db, self.key(oid), snap, snapc);
        }
        // Non-data objects are not snapshotted in this store.
        Ok(())
    }

    fn watch(&self, oid: &str, handler: Arc<dyn WatchHandler>) -> Result<Box<dyn Watch>> {
        self.check_names(oid, || format!("error watching {oid}"))?;
        self.need(oid, || format!("error watching {oid}"))?;
        let cookie = self.shared.next_cookie.fetch_add(1, Ordering::SeqCst);
        let gid = self.shared.gid;
        self.shared.db.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO watches(pool, ns, oid, gid, cookie) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![self.id, self.namespace, oid, gid as i64, cookie as i64],
            )
            .map_err(db_error)?;
            Ok(())
        })?;
        let key = self.watch_key(oid);
        handlers()
            .lock()
            .expect("no poisoning")
            .entry(key.clone())
            .or_default()
            .insert((gid, cookie), handler);
        Ok(Box::new(EmbeddedWatch {
            shared: self.shared.clone(),
            pool: self.id,
            namespace: self.namespace.clone(),
            oid: oid.to_string(),
            key,
            cookie,
        }))
    }

    fn notify(&self, oid: &str, payload: &[u8], _timeout_ms: u64) -> Result<Vec<Watcher>> {
        self.check_names(oid, || format!("error notifying {oid}"))?;
        self.need(oid, || format!("error notifying {oid}"))?;
        let rows: Vec<(i64, i64, i64, i64)> = self.shared.db.read(|tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT w.gid, w.cookie, c.pid, c.start FROM watches w JOIN clients c ON c.gid = w.gid \
                     WHERE w.pool=?1 AND w.ns=?2 AND w.oid=?3 ORDER BY w.gid, w.cookie",
                )
                .map_err(db_error)?;
            stmt.query_map(params![self.id, self.namespace, oid], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .map_err(db_error)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db_error)
        })?;
        let ours: Handlers = handlers()
            .lock()
            .expect("no poisoning")
            .get(&self.watch_key(oid))
            .cloned()
            .unwrap_or_default();
        let mut watchers = Vec::new();
        let mut dead = Vec::new();
        for (gid, cookie, pid, start) in rows {
            let (gid, cookie) = (gid as u64, cookie as u64);
            if pid == self.shared.pid && start as u64 == self.shared.start {
                if let Some(h) = ours.get(&(gid, cookie)) {
                    watchers.push(Watcher {
                        gid,
                        cookie,
                        reply: Some(h.notified(self.shared.gid, payload)),
                    });
                }
            } else if alive(pid, start as u64) {
                // Its process is alive, which is what an answer proves.
                watchers.push(Watcher {
                    gid,
                    cookie,
                    reply: Some(Vec::new()),
                });
            } else {
                dead.push(gid);
            }
        }
        if !dead.is_empty() {
            // Clients of dead processes: their watches are gone.
            let _ = self.shared.db.write(|tx| {
                for gid in &dead {
                    tx.execute("DELETE FROM watches WHERE gid=?1", [*gid as i64])
                        .map_err(db_error)?;
                }
                Ok(())
            });
        }
        Ok(watchers)
    }

    fn list(&self) -> Result<Vec<String>> {
        let mut names = self
            .shared
            .db
            .read(|tx| db::list(tx, self.id, &self.namespace))?;
        names.extend(self.data.list()?);
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Data files first, then the database that records their snapsets
    /// (and the object map that makes them visible).
    fn flush(&self) -> Result<()> {
        self.data.flush()?;
        self.shared.db.sync()
    }
}

/// What a failed step on a stored object reports: the database's own
/// error if loading its bytes failed, else the errno worded `what`.
fn failure(object: &object::StoredObject, errno: i32, what: impl FnOnce() -> String) -> Error {
    object
        .data
        .take_failure()
        .unwrap_or_else(|| errno_error(errno, what()))
}

struct EmbeddedWatch {
    shared: Arc<Shared>,
    pool: i64,
    namespace: String,
    oid: String,
    key: String,
    cookie: u64,
}

impl Watch for EmbeddedWatch {
    fn handle(&self) -> u64 {
        self.cookie
    }

    fn check(&self) -> Result<()> {
        Ok(())
    }
}

impl Drop for EmbeddedWatch {
    fn drop(&mut self) {
        if let Some(map) = handlers().lock().expect("no poisoning").get_mut(&self.key) {
            map.remove(&(self.shared.gid, self.cookie));
        }
        let _ = self.shared.db.write(|tx| {
            tx.execute(
                "DELETE FROM watches WHERE pool=?1 AND ns=?2 AND oid=?3 AND gid=?4 AND cookie=?5",
                params![
                    self.pool,
                    self.namespace,
                    self.oid,
                    self.shared.gid as i64,
                    self.cookie as i64
                ],
            )
            .map_err(db_error)?;
            Ok(())
        });
    }
}

/// Where the store lives when nothing says otherwise:
/// `$XDG_DATA_HOME/rbdimg`, else `~/.local/share/rbdimg`.
pub fn default_location() -> Option<PathBuf> {
    let nonempty = |v: &str| std::env::var_os(v).filter(|s| !s.is_empty());
    if let Some(xdg) = nonempty("XDG_DATA_HOME") {
        return Some(PathBuf::from(xdg).join("rbdimg"));
    }
    nonempty("HOME").map(|h| PathBuf::from(h).join(".local/share/rbdimg"))
}
