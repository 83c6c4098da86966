//! The exclusive lock, held the way librbd holds it so that librbd clients
//! (QEMU, rbd, krbd tooling) see an ordinary, live owner:
//!
//! ```text
//!  watch rbd_header.<id>                          -> handle H
//!  lock.lock(rbd_lock, excl, "auto H", "internal")
//!    EBUSY: owner alive (among the header's watchers)? -> "image is in use"
//!           owner dead?  blocklist it, break its lock, retry once
//!  lock rbd_object_map.<id> (cookie "", tag "")     [object-map]
//!  notify ACQUIRED_LOCK
//!  ... while held: REQUEST_LOCK and remote operations answered -EROFS
//!  unlock map, unlock header, notify RELEASED_LOCK, unwatch
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::ceph::cls_lock::{self, LIBRBD_TAG, RBD_LOCK_NAME};
use crate::error::{Error, ErrorKind, Result};
use crate::rados::{Cluster, Pool, SnapContext, Watch, WatchHandler, WriteOp, ignore_missing};
use crate::rbd::notify::{self, ClientId, NOTIFY_TIMEOUT_MS};

/// Answers the header's notifications on our behalf.
struct Responder {
    me: std::sync::Mutex<ClientId>,
    owner: AtomicBool,
}

impl WatchHandler for Responder {
    fn notified(&self, _notifier: u64, payload: &[u8]) -> Vec<u8> {
        let me = *self.me.lock().expect("no poisoning");
        match notify::decode(payload) {
            Ok(incoming) => notify::answer(incoming, self.owner.load(Ordering::SeqCst), me),
            Err(_) => Vec::new(),
        }
    }
}

/// A held exclusive lock; dropping it releases it, best effort, as librbd
/// does when the image closes.
pub struct ExclusiveLock {
    pool: Arc<dyn Pool>,
    header: String,
    object_map: Option<String>,
    cookie: String,
    me: ClientId,
    responder: Arc<Responder>,
    watch: Option<Box<dyn Watch>>,
}

fn in_use(image: &str, detail: &str) -> Error {
    Error::errno(
        ErrorKind::Busy,
        format!("image {image} is in use: {detail}"),
        libc::EBUSY,
    )
}

impl ExclusiveLock {
    /// Watches the header and takes the lock (and the object map's lock).
    pub fn acquire(
        cluster: &dyn Cluster,
        pool: Arc<dyn Pool>,
        image: &str,
        header: &str,
        object_map: Option<String>,
    ) -> Result<ExclusiveLock> {
        let responder = Arc::new(Responder {
            me: std::sync::Mutex::new(ClientId { gid: 0, handle: 0 }),
            owner: AtomicBool::new(false),
        });
        let watch = pool.watch(header, responder.clone())?;
        let me = ClientId {
            gid: cluster.instance_id(),
            handle: watch.handle(),
        };
        *responder.me.lock().expect("no poisoning") = me;
        let cookie = cls_lock::librbd_cookie(me.handle);
        let mut lock = ExclusiveLock {
            pool,
            header: header.to_string(),
            object_map: None,
            cookie,
            me,
            responder,
            watch: Some(watch),
        };
        lock.take_header_lock(cluster, image)?;
        lock.responder.owner.store(true, Ordering::SeqCst);
        if let Some(map) = object_map {
            lock.take_object_map_lock(&map)?;
            lock.object_map = Some(map);
        }
        // Best effort, as librbd: watchers learn the owner from this.
        let _ = lock
            .pool
            .notify(&lock.header, &notify::acquired_lock(me), NOTIFY_TIMEOUT_MS);
        Ok(lock)
    }

    fn take_header_lock(&self, cluster: &dyn Cluster, image: &str) -> Result<()> {
        let none = SnapContext::default();
        let call = cls_lock::lock(RBD_LOCK_NAME, &self.cookie, LIBRBD_TAG, "");
        let first = self
            .pool
            .operate(&self.header, &[WriteOp::Exec(&call)], &none);
        let Err(err) = first else { return Ok(()) };
        if err.errno_value() != libc::EBUSY {
            return Err(err);
        }
        let info = cls_lock::decode_info(
            &self
                .pool
                .exec(&self.header, &cls_lock::get_info(RBD_LOCK_NAME))?,
        )
        .map_err(|e| Error::corrupt(format!("lock info: {e}")))?;
        if info.tag != LIBRBD_TAG || info.lockers.iter().any(|l| !l.cookie.starts_with("auto ")) {
            return Err(in_use(
                image,
                "locked by an external mechanism (rbd lock ls shows it)",
            ));
        }
        // Alive = among the header's watchers with the lock's watch handle,
        // which is how librbd itself tells a live owner from a dead one.
        let watchers =
            self.pool
                .notify(&self.header, &notify::header_update(), NOTIFY_TIMEOUT_MS)?;
        for locker in &info.lockers {
            let handle: u64 = locker.cookie["auto ".len()..].parse().unwrap_or(u64::MAX);
            let alive = watchers.iter().any(|w| {
                w.gid == locker.entity_num as u64 && w.cookie == handle && w.gid != self.me.gid
            });
            if alive {
                return Err(in_use(
                    image,
                    &format!(
                        "held by live client {} ({})",
                        locker.entity(),
                        locker.address
                    ),
                ));
            }
        }
        // Every owner is gone: fence it so it cannot write after we take
        // over, then break its lock and try again, as librbd does.
        for locker in &info.lockers {
            cluster
                .blocklist(&locker.address)
                .map_err(|e| e.prepend("could not fence the dead lock owner"))?;
            let brk = cls_lock_break(locker);
            ignore_missing(
                self.pool
                    .operate(&self.header, &[WriteOp::Exec(&brk)], &none),
            )?;
        }
        self.pool
            .operate(&self.header, &[WriteOp::Exec(&call)], &none)
            .map_err(|e| {
                if e.errno_value() == libc::EBUSY {
                    in_use(image, "another client took the lock")
                } else {
                    e
                }
            })
    }

    fn take_object_map_lock(&self, map: &str) -> Result<()> {
        let none = SnapContext::default();
        let call = cls_lock::lock(RBD_LOCK_NAME, "", "", "");
        match self.pool.operate(map, &[WriteOp::Exec(&call)], &none) {
            Ok(()) => Ok(()),
            Err(e) if e.errno_value() == libc::EEXIST => Ok(()),
            Err(e) if e.errno_value() == libc::EBUSY => {
                // A stale map lock of a previous owner: we hold the header
                // lock, so it is ours to break (librbd does the same).
                let info = cls_lock::decode_info(
                    &self.pool.exec(map, &cls_lock::get_info(RBD_LOCK_NAME))?,
                )
                .map_err(|e| Error::corrupt(format!("object map lock info: {e}")))?;
                for locker in &info.lockers {
                    let _ =
                        self.pool
                            .operate(map, &[WriteOp::Exec(&cls_lock_break(locker))], &none);
                }
                self.pool.operate(map, &[WriteOp::Exec(&call)], &none)
            }
            Err(e) => Err(e),
        }
    }

    /// The ops that must precede every head object-map update.
    pub fn assert_object_map_locked() -> crate::ceph::Call {
        cls_lock::assert_locked(RBD_LOCK_NAME, "", "")
    }

    /// Fails if the header watch was lost (we may no longer be the owner).
    pub fn check(&self) -> Result<()> {
        match &self.watch {
            Some(w) => w.check(),
            None => Err(Error::new(ErrorKind::Io, "the exclusive lock was released")),
        }
    }

    pub fn client(&self) -> ClientId {
        self.me
    }

    fn release(&mut self) -> Result<()> {
        self.responder.owner.store(false, Ordering::SeqCst);
        let none = SnapContext::default();
        let mut first_error = None;
        if let Some(map) = &self.object_map
            && let Err(e) = self.pool.operate(
                map,
                &[WriteOp::Exec(&cls_lock::unlock(RBD_LOCK_NAME, ""))],
                &none,
            )
        {
            first_error.get_or_insert(e);
        }
        if let Err(e) = self.pool.operate(
            &self.header,
            &[WriteOp::Exec(&cls_lock::unlock(
                RBD_LOCK_NAME,
                &self.cookie,
            ))],
            &none,
        ) {
            first_error.get_or_insert(e);
        }
        let _ = self.pool.notify(
            &self.header,
            &notify::released_lock(self.me),
            NOTIFY_TIMEOUT_MS,
        );
        self.watch = None;
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for ExclusiveLock {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

fn cls_lock_break(locker: &cls_lock::Locker) -> crate::ceph::Call {
    cls_lock::break_lock(
        RBD_LOCK_NAME,
        locker.entity_type,
        locker.entity_num,
        &locker.cookie,
    )
}
