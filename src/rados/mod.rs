//! The RADOS client seam: everything the RBD layer needs from a cluster,
//! and nothing more. Two backends implement it: librados (a real Ceph
//! cluster, loaded at run time) and the embedded local store.
//!
//! Errors are `crate::error::Error`s that keep the errno (`errno_value()`), since
//! RADOS and cls report errno codes the RBD layer reacts to (-ENOENT,
//! -EEXIST, -EBUSY, -ESTALE ...).

pub mod config;
pub mod embedded;
pub mod librados;

use std::sync::Arc;

use crate::ceph::Call;
use crate::error::Result;

/// Treats "no such object" as done: removing or trimming what is already
/// gone succeeds, as it does in librbd.
pub fn ignore_missing(result: Result<()>) -> Result<()> {
    match result {
        Err(e) if e.kind() == crate::error::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Ceph's number for its mimic release (`CEPH_RELEASE_MIMIC`).
pub const MIMIC: u8 = 13;

/// The head of an object, as a read snapshot (`LIBRADOS_SNAP_HEAD`).
pub const SNAP_HEAD: u64 = crate::ceph::NOSNAP;

/// The snapshot context sent with writes: the newest snap id the image has
/// allocated and its existing snapshots, newest first. Objects written under
/// a newer context than they were last written keep a clone for snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapContext {
    pub seq: u64,
    pub snaps: Vec<u64>,
}

/// One step of an atomic compound write on one object.
#[derive(Debug, Clone, Copy)]
pub enum WriteOp<'a> {
    /// Create the object; fail with EEXIST if it exists.
    CreateExclusive,
    /// Create the object if it does not exist (an existing one is kept).
    Create,
    /// Fail with ENOENT unless the object exists.
    AssertExists,
    Write {
        offset: u64,
        data: &'a [u8],
    },
    WriteFull(&'a [u8]),
    Zero {
        offset: u64,
        len: u64,
    },
    Truncate(u64),
    Remove,
    /// A class method that writes (its output, if any, is discarded).
    Exec(&'a Call),
}

/// A watcher of an object, as listed in a notify reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watcher {
    pub gid: u64,
    pub cookie: u64,
    /// `None` when the watcher did not answer in time.
    pub reply: Option<Vec<u8>>,
}

/// Receives notifications on a watched object and returns the ack payload.
pub trait WatchHandler: Send + Sync {
    fn notified(&self, notifier_gid: u64, payload: &[u8]) -> Vec<u8>;
}

/// A registered watch; dropping it unregisters.
pub trait Watch: Send + Sync {
    /// The watch handle (cookie), unique within the client.
    fn handle(&self) -> u64;
    /// Fails when the watch was lost (e.g. after a network partition).
    fn check(&self) -> Result<()>;
}

pub trait Cluster: Send + Sync {
    /// An I/O context on `pool` within `namespace` ("" = default).
    fn pool(&self, name: &str, namespace: &str) -> Result<Arc<dyn Pool>>;
    /// Before an image is created in `pool`/`namespace`: a backend that
    /// makes pools and namespaces on demand (the embedded store) makes them
    /// here. A Ceph cluster's belong to its administrator: nothing happens,
    /// and opening them reports what is missing.
    fn ensure_pool(&self, _pool: &str, _namespace: &str) -> Result<()> {
        Ok(())
    }
    /// The same, by pool id (parents may live in another pool).
    fn pool_by_id(&self, id: i64, namespace: &str) -> Result<Arc<dyn Pool>>;
    /// Our global id (`client.<id>`), as lockers and watchers see us.
    fn instance_id(&self) -> u64;
    /// What `info` says about where images live.
    fn describe(&self) -> String;
    /// A configuration value (e.g. `rbd_default_features`), if set or known.
    fn config(&self, key: &str) -> Option<String>;
    /// The oldest client release the cluster serves: the larger of its
    /// `min_compat_client` and `require_min_compat_client`, as Ceph numbers
    /// releases ([`MIMIC`] is 13). Clone v2 needs mimic.
    fn min_compat_client(&self) -> Result<u8>;
    /// The names of every pool (clone v1 children may be in any of them).
    fn pool_names(&self) -> Result<Vec<String>>;
    /// Fences a dead client (`ip:port/nonce`) so breaking its lock is safe.
    fn blocklist(&self, address: &str) -> Result<()>;
}

pub trait Pool: Send + Sync {
    fn id(&self) -> i64;
    fn name(&self) -> &str;
    fn namespace(&self) -> &str;
    /// Reads from `offset` into `buf`; returns how many bytes the object
    /// had there (short at the object's end). NotFound when the object does
    /// not exist at that snapshot.
    fn read_into(&self, oid: &str, offset: u64, buf: &mut [u8], snap: u64) -> Result<usize>;

    /// Up to `len` bytes from `offset`, in a new buffer.
    fn read(&self, oid: &str, offset: u64, len: u64, snap: u64) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len as usize];
        let n = self.read_into(oid, offset, &mut buf, snap)?;
        buf.truncate(n);
        Ok(buf)
    }
    /// The object's size at a snapshot; NotFound when absent.
    fn stat(&self, oid: &str, snap: u64) -> Result<u64>;
    /// Runs a read-only class method and returns its output.
    fn exec(&self, oid: &str, call: &Call) -> Result<Vec<u8>>;
    /// Applies `ops` atomically under the snapshot context `snapc`.
    fn operate(&self, oid: &str, ops: &[WriteOp], snapc: &SnapContext) -> Result<()>;
    /// Allocates a self-managed snapshot id in the pool.
    fn snap_create(&self) -> Result<u64>;
    /// Releases a self-managed snapshot id (its clones get trimmed).
    fn snap_remove(&self, snap: u64) -> Result<()>;
    /// Restores the object to its state at `snap` (removing it if it did
    /// not exist then).
    fn rollback(&self, oid: &str, snap: u64, snapc: &SnapContext) -> Result<()>;
    fn watch(&self, oid: &str, handler: Arc<dyn WatchHandler>) -> Result<Box<dyn Watch>>;
    /// Notifies every watcher and lists them with their replies.
    fn notify(&self, oid: &str, payload: &[u8], timeout_ms: u64) -> Result<Vec<Watcher>>;
    /// Names of every object in the pool's namespace.
    fn list(&self) -> Result<Vec<String>>;

    /// Makes every completed write durable (a no-op where writes already are).
    fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// The whole object (at the head).
    fn read_full(&self, oid: &str) -> Result<Vec<u8>> {
        let size = self.stat(oid, SNAP_HEAD)?;
        self.read(oid, 0, size, SNAP_HEAD)
    }
}

/// How a failed compound op is named in messages: "<op>+<op> on <oid>".
pub fn describe_ops(oid: &str, ops: &[WriteOp]) -> String {
    let what: Vec<String> = ops
        .iter()
        .map(|op| match op {
            WriteOp::Exec(call) => format!("{}.{}", call.class, call.method),
            other => format!("{other:?}")
                .split([' ', '(', '{'])
                .next()
                .unwrap_or("op")
                .to_lowercase(),
        })
        .collect();
    format!("{} on {oid}", what.join("+"))
}
