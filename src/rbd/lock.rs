//! The exclusive lock, held the way librbd holds it so that librbd clients
//! (QEMU, rbd, krbd tooling) see an ordinary, live owner:
//!
//! ```text
//!  watch rbd_header.<id>                          -> handle H
//!  lock.lock(rbd_lock, excl, "auto H", "internal")
//!    EBUSY: notify the header; the owner's watch (gid, handle)...
//!           answers         -> "image is in use" (a live lock is never broken)
//!           is gone         -> blocklist the owner, break its lock, lock again
//!           stays silent    -> a dead client whose watch the OSD has not
//!                              dropped yet: say so, notify again until it is
//!                              gone (then as above) or answers; still there
//!                              after the watch timeout -> "image is in use"
//!  lock rbd_object_map.<id> (cookie "", tag "")     [object-map]
//!  notify ACQUIRED_LOCK
//!  ... while held: REQUEST_LOCK and remote operations answered -EROFS
//!  unlock map, unlock header, notify RELEASED_LOCK, unwatch
//! ```
//!
//! librbd does the same (managed_lock's BreakRequest refuses while the
//! owner's watch is listed; its request-lock retries wait the watch out),
//! which is why `qemu-img` takes over from a writer killed with SIGKILL
//! about 30 s later instead of failing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::block::diagnostics::Diagnostics;
use crate::ceph::cls_lock::{self, LIBRBD_TAG, LOCK_EXCLUSIVE, Locker, RBD_LOCK_NAME};
use crate::error::{Error, ErrorKind, Result};
use crate::rados::{
    Cluster, Pool, SnapContext, Watch, WatchHandler, Watcher, WriteOp, ignore_missing,
};
use crate::rbd::notify::{self, ClientId, NOTIFY_TIMEOUT_MS};

/// The OSD drops the watch of a client that stopped pinging this long
/// after its last ping (`osd_client_watch_timeout`'s default).
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Rounds of breaking dead owners' locks before giving up: each round
/// lost means another client took the lock first.
const MAX_BREAKS: u32 = 3;

/// `entity_name_t` type of clients.
const ENTITY_CLIENT: u8 = 8;

/// What the header's watchers say about a lock owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// Its watch acknowledged our notification: alive.
    Answers,
    /// Its watch is registered but did not answer: dead (or hung) until
    /// the OSD drops the watch.
    Silent,
    /// No watch: the client is gone.
    Gone,
}

fn owner_state(locker: &Locker, handle: u64, watchers: &[Watcher]) -> Owner {
    match watchers
        .iter()
        .find(|w| w.gid == locker.entity_num as u64 && w.cookie == handle)
    {
        Some(w) if w.reply.is_some() => Owner::Answers,
        Some(_) => Owner::Silent,
        None => Owner::Gone,
    }
}

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
    /// Whether the header lock was taken: a failed take must not unlock
    /// or announce a release.
    held: bool,
}

fn in_use(image: &str, detail: &str) -> Error {
    Error::errno(
        ErrorKind::Busy,
        format!("image {image} is in use: {detail}"),
        libc::EBUSY,
    )
}

impl ExclusiveLock {
    /// Watches the header and takes the lock (and the object map's lock);
    /// a wait for a dead owner is announced on `diagnostics` as it starts.
    pub fn acquire(
        cluster: &dyn Cluster,
        pool: Arc<dyn Pool>,
        image: &str,
        header: &str,
        object_map: Option<String>,
        diagnostics: &Diagnostics,
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
            held: false,
        };
        lock.take_header_lock(cluster, image, diagnostics)?;
        lock.held = true;
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

    fn take_header_lock(
        &self,
        cluster: &dyn Cluster,
        image: &str,
        diagnostics: &Diagnostics,
    ) -> Result<()> {
        let none = SnapContext::default();
        let call = cls_lock::lock(RBD_LOCK_NAME, &self.cookie, LIBRBD_TAG, "");
        // A dead owner's watch is gone a watch timeout after its last ping,
        // at the latest: that (plus one notify) after our first try.
        let deadline =
            Instant::now() + watch_timeout(cluster) + Duration::from_millis(NOTIFY_TIMEOUT_MS);
        let mut announced = false;
        let mut breaks = 0;
        loop {
            match self
                .pool
                .operate(&self.header, &[WriteOp::Exec(&call)], &none)
            {
                Ok(()) => return Ok(()),
                Err(e) if e.errno_value() == libc::EBUSY => {}
                Err(e) => return Err(e),
            }
            let lockers = self.librbd_lockers(image)?;
            // One notify lists the header's watchers and tells the live ones
            // (they answer) from the silent ones.
            let watchers =
                self.pool
                    .notify(&self.header, &notify::header_update(), NOTIFY_TIMEOUT_MS)?;
            let mut silent = None;
            for (locker, handle) in &lockers {
                let who = format!("{} ({})", locker.entity(), locker.address);
                match owner_state(locker, *handle, &watchers) {
                    Owner::Answers => {
                        return Err(in_use(image, &format!("held by live client {who}")));
                    }
                    Owner::Silent => silent = Some(who),
                    Owner::Gone => {}
                }
            }
            let Some(who) = silent else {
                // Every owner is gone: fence it so it cannot write after we
                // take over, then break its lock and try again.
                if breaks == MAX_BREAKS {
                    return Err(in_use(image, "another client took the lock"));
                }
                breaks += 1;
                for (locker, _) in &lockers {
                    self.break_dead_lock(cluster, locker)?;
                }
                continue;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(in_use(
                    image,
                    &format!("held by {who}, which does not answer but keeps its watch"),
                ));
            }
            if !announced {
                announced = true;
                diagnostics.info(format!(
                    "image {image} is locked by {who}, which does not answer: \
                     waiting up to {} s for its watch to expire",
                    left.as_secs_f64().ceil()
                ));
            }
            // No pause: each notify waits NOTIFY_TIMEOUT_MS for the owner.
        }
    }

    /// The header lock's owners with their watch handles, if librbd (or
    /// rbdimg) holds it; a lock taken any other way is never broken.
    fn librbd_lockers(&self, image: &str) -> Result<Vec<(Locker, u64)>> {
        let info = cls_lock::decode_info(
            &self
                .pool
                .exec(&self.header, &cls_lock::get_info(RBD_LOCK_NAME))?,
        )
        .map_err(|e| Error::corrupt(format!("lock info: {e}")))?;
        let external = || {
            in_use(
                image,
                "locked by an external mechanism (rbd lock ls shows it)",
            )
        };
        // No owner left (released meanwhile): nothing to judge.
        if info.lockers.is_empty() {
            return Ok(Vec::new());
        }
        if info.tag != LIBRBD_TAG || info.lock_type != LOCK_EXCLUSIVE {
            return Err(external());
        }
        info.lockers
            .into_iter()
            .map(|locker| {
                let handle = locker
                    .cookie
                    .strip_prefix("auto ")
                    .and_then(|h| h.parse::<u64>().ok())
                    .filter(|_| locker.entity_type == ENTITY_CLIENT)
                    .ok_or_else(external)?;
                if locker.entity_num as u64 == self.me.gid {
                    return Err(in_use(image, "held by this very client"));
                }
                Ok((locker, handle))
            })
            .collect()
    }

    /// Blocklists a dead owner (so it can never write again), then breaks
    /// its lock, as librbd's BreakRequest does.
    fn break_dead_lock(&self, cluster: &dyn Cluster, locker: &Locker) -> Result<()> {
        cluster
            .blocklist(&locker.address)
            .map_err(|e| e.prepend("could not fence the dead lock owner"))?;
        let brk = cls_lock_break(locker);
        ignore_missing(self.pool.operate(
            &self.header,
            &[WriteOp::Exec(&brk)],
            &SnapContext::default(),
        ))
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
        if self.held {
            let _ = self.release();
        }
    }
}

/// How long the OSD keeps a dead client's watch: the
/// `osd_client_watch_timeout` in our configuration, which is the cluster's
/// when its ceph.conf sets it; else Ceph's default.
fn watch_timeout(cluster: &dyn Cluster) -> Duration {
    cluster
        .config("osd_client_watch_timeout")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 3600.0)
        .map_or(DEFAULT_WATCH_TIMEOUT, Duration::from_secs_f64)
}

fn cls_lock_break(locker: &Locker) -> crate::ceph::Call {
    cls_lock::break_lock(
        RBD_LOCK_NAME,
        locker.entity_type,
        locker.entity_num,
        &locker.cookie,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locker(gid: i64) -> Locker {
        Locker {
            entity_type: ENTITY_CLIENT,
            entity_num: gid,
            cookie: cls_lock::librbd_cookie(7),
            address: "127.0.0.1:0/1".into(),
            description: String::new(),
        }
    }

    fn watcher(gid: u64, cookie: u64, answered: bool) -> Watcher {
        Watcher {
            gid,
            cookie,
            reply: answered.then(Vec::new),
        }
    }

    #[test]
    fn an_owner_is_judged_by_its_own_watch() {
        let owner = locker(4235);
        assert_eq!(
            owner_state(&owner, 7, &[watcher(1, 7, true), watcher(4235, 7, true)]),
            Owner::Answers
        );
        assert_eq!(
            owner_state(&owner, 7, &[watcher(4235, 7, false)]),
            Owner::Silent
        );
        // Another watch of the same client, or another client's watch with
        // the same handle, says nothing about this lock.
        assert_eq!(
            owner_state(&owner, 7, &[watcher(4235, 8, true), watcher(9, 7, true)]),
            Owner::Gone
        );
    }
}
