//! What the RBD layer relies on from RADOS, asserted the same way on a
//! real cluster (librados) and on the embedded store: objects, compound
//! ops, class methods and their errnos, snapshots, listing, watch/notify.
//! The embedded store keeps RBD data objects (`rbd_data.*`) apart from the
//! others, so object tests run on both kinds of name.

use std::sync::{Arc, Mutex};

use rbdimg::ceph::cls_lock;
use rbdimg::ceph::{Call, cls_rbd};
use rbdimg::rados::{Pool, SNAP_HEAD, SnapContext, WatchHandler, WriteOp};

use super::{Backend, both_backends};

both_backends!(
    objects_read_write_stat_remove,
    compound_ops_apply_all_or_nothing,
    exec_runs_methods_and_keeps_their_writes,
    exec_errors_are_the_osd_errnos,
    class_methods_in_compound_writes,
    locks_name_the_caller,
    snapshots_keep_what_objects_held,
    rollback_and_snapshot_removal,
    listing_sees_one_namespace,
    watch_and_notify,
    names_beyond_the_osd_limits,
    pools_by_name_and_id,
);

const HEAD: SnapContext = SnapContext {
    seq: 0,
    snaps: Vec::new(),
};

/// A metadata object and a data object.
const NAMES: [&str; 2] = ["rbd_header.conf", "rbd_data.conf.0000000000000000"];

/// The errno of a failed call (0 for success).
fn errno<T>(result: rbdimg::error::Result<T>) -> i32 {
    match result {
        Ok(_) => 0,
        Err(e) => e.errno_value(),
    }
}

fn write(pool: &dyn Pool, oid: &str, ops: &[WriteOp]) {
    pool.operate(oid, ops, &HEAD)
        .unwrap_or_else(|e| panic!("{ops:?} on {oid}: {e}"));
}

fn objects_read_write_stat_remove(b: &Backend) {
    let pool = b.pool();
    for oid in NAMES {
        assert_eq!(errno(pool.read(oid, 0, 10, SNAP_HEAD)), libc::ENOENT);
        assert_eq!(errno(pool.stat(oid, SNAP_HEAD)), libc::ENOENT);
        write(&*pool, oid, &[WriteOp::WriteFull(b"hello")]);
        assert_eq!(pool.read_full(oid).unwrap(), b"hello");
        write(
            &*pool,
            oid,
            &[WriteOp::Write {
                offset: 10,
                data: b"xy",
            }],
        );
        assert_eq!(pool.stat(oid, SNAP_HEAD).unwrap(), 12);
        assert_eq!(pool.read_full(oid).unwrap(), b"hello\0\0\0\0\0xy");
        // Reads stop at the end.
        assert_eq!(pool.read(oid, 8, 10, SNAP_HEAD).unwrap(), b"\0\0xy");
        assert_eq!(pool.read(oid, 100, 10, SNAP_HEAD).unwrap(), b"");
        // Zeros inside the object; zeros that reach its end truncate it
        // where they start; past the end, nothing.
        write(&*pool, oid, &[WriteOp::Zero { offset: 0, len: 2 }]);
        write(&*pool, oid, &[WriteOp::Zero { offset: 20, len: 5 }]);
        assert_eq!(pool.read_full(oid).unwrap(), b"\0\0llo\0\0\0\0\0xy");
        write(
            &*pool,
            oid,
            &[WriteOp::Zero {
                offset: 11,
                len: 100,
            }],
        );
        assert_eq!(pool.read_full(oid).unwrap(), b"\0\0llo\0\0\0\0\0x");
        write(&*pool, oid, &[WriteOp::Truncate(3)]);
        write(&*pool, oid, &[WriteOp::Truncate(5)]);
        assert_eq!(pool.read_full(oid).unwrap(), b"\0\0l\0\0");
        write(&*pool, oid, &[WriteOp::WriteFull(b"")]);
        assert_eq!(pool.stat(oid, SNAP_HEAD).unwrap(), 0);
        pool.flush().unwrap();
        write(&*pool, oid, &[WriteOp::Remove]);
        assert_eq!(errno(pool.stat(oid, SNAP_HEAD)), libc::ENOENT);
        assert_eq!(
            errno(pool.operate(oid, &[WriteOp::Remove], &HEAD)),
            libc::ENOENT
        );
        // Zeroing or truncating a missing object does not make it.
        write(&*pool, oid, &[WriteOp::Truncate(4)]);
        write(&*pool, oid, &[WriteOp::Zero { offset: 0, len: 8 }]);
        assert_eq!(errno(pool.stat(oid, SNAP_HEAD)), libc::ENOENT);
        // Steps see what the steps before them did.
        write(
            &*pool,
            oid,
            &[WriteOp::WriteFull(b"x"), WriteOp::AssertExists],
        );
        write(&*pool, oid, &[WriteOp::Remove, WriteOp::CreateExclusive]);
        assert_eq!(pool.stat(oid, SNAP_HEAD).unwrap(), 0);
        write(&*pool, oid, &[WriteOp::Remove]);
        // A plain create makes a missing object, which a truncate then
        // keeps (an empty object that hides a clone's parent), and leaves
        // an existing one as it is.
        write(&*pool, oid, &[WriteOp::Create, WriteOp::Truncate(0)]);
        assert_eq!(pool.stat(oid, SNAP_HEAD).unwrap(), 0);
        write(&*pool, oid, &[WriteOp::WriteFull(b"kept")]);
        write(&*pool, oid, &[WriteOp::Create]);
        assert_eq!(pool.read_full(oid).unwrap(), b"kept");
        write(&*pool, oid, &[WriteOp::Remove]);
    }
}

fn compound_ops_apply_all_or_nothing(b: &Backend) {
    let pool = b.pool();
    for oid in NAMES {
        write(&*pool, oid, &[WriteOp::CreateExclusive]);
        assert_eq!(pool.stat(oid, SNAP_HEAD).unwrap(), 0);
        assert_eq!(
            errno(pool.operate(oid, &[WriteOp::CreateExclusive], &HEAD)),
            libc::EEXIST
        );
        let create_then_write = [WriteOp::CreateExclusive, WriteOp::WriteFull(b"new")];
        assert_eq!(
            errno(pool.operate(oid, &create_then_write, &HEAD)),
            libc::EEXIST
        );
        assert_eq!(pool.read_full(oid).unwrap(), b"");
        write(
            &*pool,
            oid,
            &[WriteOp::AssertExists, WriteOp::WriteFull(b"v1")],
        );
        assert_eq!(pool.read_full(oid).unwrap(), b"v1");
        // A step that fails after others undoes them.
        let write_then_create = [WriteOp::WriteFull(b"v2"), WriteOp::CreateExclusive];
        assert_eq!(
            errno(pool.operate(oid, &write_then_create, &HEAD)),
            libc::EEXIST
        );
        assert_eq!(pool.read_full(oid).unwrap(), b"v1");
        write(&*pool, oid, &[WriteOp::Remove]);
        let assert_then_write = [WriteOp::AssertExists, WriteOp::WriteFull(b"v3")];
        assert_eq!(
            errno(pool.operate(oid, &assert_then_write, &HEAD)),
            libc::ENOENT
        );
        let write_then_remove_twice = [WriteOp::WriteFull(b"v4"), WriteOp::Remove, WriteOp::Remove];
        assert_eq!(
            errno(pool.operate(oid, &write_then_remove_twice, &HEAD)),
            libc::ENOENT
        );
        assert_eq!(errno(pool.stat(oid, SNAP_HEAD)), libc::ENOENT);
        // Create, write and remove in one op leaves nothing.
        write(
            &*pool,
            oid,
            &[
                WriteOp::CreateExclusive,
                WriteOp::WriteFull(b"v5"),
                WriteOp::Remove,
            ],
        );
        assert_eq!(errno(pool.stat(oid, SNAP_HEAD)), libc::ENOENT);
    }
}

const ID_OID: &str = "rbd_id.conformance";

fn exec_runs_methods_and_keeps_their_writes(b: &Backend) {
    let pool = b.pool();
    write(&*pool, ID_OID, &[WriteOp::CreateExclusive]);
    // A method that writes, run by exec: the OSD applies it, no reply data.
    assert_eq!(pool.exec(ID_OID, &cls_rbd::set_id("abc123")).unwrap(), b"");
    let id = pool.exec(ID_OID, &cls_rbd::get_id()).unwrap();
    assert_eq!(cls_rbd::decode_string(&id).unwrap(), "abc123");
    assert_eq!(pool.read_full(ID_OID).unwrap(), id);
    assert_eq!(
        errno(pool.exec(ID_OID, &cls_rbd::set_id("abc123"))),
        libc::EEXIST
    );
    // A directory made and filled by exec alone (omap).
    let dir = "rbd_directory";
    pool.exec(dir, &cls_rbd::dir_add_image("vm1", "abc123"))
        .unwrap();
    pool.exec(dir, &cls_rbd::dir_add_image("vm0", "def456"))
        .unwrap();
    let list = pool.exec(dir, &cls_rbd::dir_list("", 10)).unwrap();
    assert_eq!(
        cls_rbd::decode_dir_list(&list).unwrap(),
        [
            ("vm0".into(), "def456".into()),
            ("vm1".into(), "abc123".into())
        ]
    );
    pool.exec(dir, &cls_rbd::dir_remove_image("vm1", "abc123"))
        .unwrap();
    let list = pool.exec(dir, &cls_rbd::dir_list("", 10)).unwrap();
    assert_eq!(cls_rbd::decode_dir_list(&list).unwrap().len(), 1);
    // The object map, whose methods read and write the object's data.
    let map = "rbd_object_map.abc123";
    pool.exec(map, &cls_rbd::object_map_resize(10, 0)).unwrap();
    pool.exec(map, &cls_rbd::object_map_update(2, 4, 1, None))
        .unwrap();
    let loaded = pool.exec(map, &cls_rbd::object_map_load()).unwrap();
    assert_eq!(&loaded[18..21], &[0b0000_0101, 0, 0]);
}

fn exec_errors_are_the_osd_errnos(b: &Backend) {
    let pool = b.pool();
    let call = |class: &'static str, method: &'static str, input: &[u8]| Call {
        class,
        method,
        input: input.to_vec(),
    };
    // Nothing there: a method that only reads finds no object.
    assert_eq!(errno(pool.exec(ID_OID, &cls_rbd::get_id())), libc::ENOENT);
    assert_eq!(
        errno(pool.exec(ID_OID, &cls_rbd::get_all_features())),
        libc::ENOENT
    );
    // One that writes runs, and says what it finds.
    assert_eq!(
        errno(pool.exec(ID_OID, &cls_rbd::set_id("x"))),
        libc::ENOENT
    );
    assert_eq!(
        errno(pool.exec(ID_OID, &call("rbd", "nope", &[]))),
        libc::EOPNOTSUPP
    );
    // A class the OSD does not load is not permitted.
    assert_eq!(
        errno(pool.exec(ID_OID, &call("nope", "get_id", &[]))),
        libc::EPERM
    );
    write(&*pool, ID_OID, &[WriteOp::CreateExclusive]);
    assert_eq!(
        errno(pool.exec(ID_OID, &call("rbd", "set_id", &[9]))),
        libc::EINVAL
    );
    assert_eq!(
        errno(pool.exec(ID_OID, &cls_rbd::set_id("a-b"))),
        libc::EINVAL
    );
    assert_eq!(errno(pool.exec(ID_OID, &cls_rbd::get_id())), libc::ENOENT);
    // Failed writes leave nothing behind: the object is still empty.
    assert_eq!(pool.stat(ID_OID, SNAP_HEAD).unwrap(), 0);
    let map = "rbd_object_map.x";
    assert_eq!(
        errno(pool.exec(map, &cls_rbd::object_map_update(0, 1, 1, None))),
        libc::ENOENT
    );
    assert_eq!(errno(pool.stat(map, SNAP_HEAD)), libc::ENOENT);
    // The errno shows in the message, as librados words it.
    let e = pool.exec(ID_OID, &cls_rbd::set_id("a-b")).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("rbd.set_id on {ID_OID}: Invalid argument")
    );
}

fn class_methods_in_compound_writes(b: &Backend) {
    let pool = b.pool();
    let set_id = cls_rbd::set_id("abc123");
    write(
        &*pool,
        ID_OID,
        &[WriteOp::CreateExclusive, WriteOp::Exec(&set_id)],
    );
    assert_eq!(
        cls_rbd::decode_string(&pool.exec(ID_OID, &cls_rbd::get_id()).unwrap()).unwrap(),
        "abc123"
    );
    // A failing method undoes the steps before it.
    let again = [WriteOp::WriteFull(b"junk"), WriteOp::Exec(&set_id)];
    assert_eq!(errno(pool.operate(ID_OID, &again, &HEAD)), libc::EEXIST);
    assert_ne!(pool.read_full(ID_OID).unwrap(), b"junk");
    let other = "rbd_id.other";
    let bogus = Call {
        class: "rbd",
        method: "nope",
        input: vec![],
    };
    let fails_late = [
        WriteOp::CreateExclusive,
        WriteOp::Exec(&set_id),
        WriteOp::Exec(&bogus),
    ];
    assert_eq!(
        errno(pool.operate(other, &fails_late, &HEAD)),
        libc::EOPNOTSUPP
    );
    assert_eq!(errno(pool.stat(other, SNAP_HEAD)), libc::ENOENT);
    let assert_first = [WriteOp::AssertExists, WriteOp::Exec(&set_id)];
    assert_eq!(
        errno(pool.operate(other, &assert_first, &HEAD)),
        libc::ENOENT
    );
    assert_eq!(errno(pool.stat(other, SNAP_HEAD)), libc::ENOENT);
}

fn locks_name_the_caller(b: &Backend) {
    let pool = b.pool();
    let header = "rbd_header.locked";
    let take = cls_lock::lock("rbd_lock", "auto 7", "internal", "");
    // Locking creates the object.
    write(&*pool, header, &[WriteOp::Exec(&take)]);
    assert_eq!(pool.stat(header, SNAP_HEAD).unwrap(), 0);
    let info = pool.exec(header, &cls_lock::get_info("rbd_lock")).unwrap();
    let info = cls_lock::decode_info(&info).unwrap();
    assert_eq!(info.lockers.len(), 1);
    let me = &info.lockers[0];
    assert_eq!(me.entity(), format!("client.{}", b.cluster.instance_id()));
    assert_eq!(
        (me.cookie.as_str(), info.tag.as_str()),
        ("auto 7", "internal")
    );
    assert!(me.address.starts_with("127.0.0.1:0/"), "{}", me.address);
    let held = cls_lock::assert_locked("rbd_lock", "auto 7", "internal");
    let update = cls_rbd::set_size(1);
    // assert_locked guards a write, which then fails for want of a header.
    assert_eq!(
        errno(pool.operate(
            header,
            &[WriteOp::Exec(&held), WriteOp::Exec(&update)],
            &HEAD
        )),
        libc::ENOENT
    );
    assert_eq!(
        errno(pool.operate(header, &[WriteOp::Exec(&take)], &HEAD)),
        libc::EEXIST
    );
    // Another client is refused, and may break the lock.
    let other = b.another_client();
    let theirs = other.pool(pool.name(), pool.namespace()).unwrap();
    let take_too = cls_lock::lock("rbd_lock", "auto 8", "internal", "");
    assert_eq!(
        errno(theirs.operate(header, &[WriteOp::Exec(&take_too)], &HEAD)),
        libc::EBUSY
    );
    let gid = b.cluster.instance_id() as i64;
    let broken = cls_lock::break_lock("rbd_lock", 8, gid, "auto 7");
    theirs
        .operate(header, &[WriteOp::Exec(&broken)], &HEAD)
        .unwrap();
    theirs
        .operate(header, &[WriteOp::Exec(&take_too)], &HEAD)
        .unwrap();
}

/// A data object's name.
fn data(n: u64) -> String {
    format!("rbd_data.conf.{n:016x}")
}

fn snapshots_keep_what_objects_held(b: &Backend) {
    let pool = b.pool();
    let (changed, created, removed, untouched) = (data(0), data(1), data(2), data(3));
    for oid in [&changed, &removed, &untouched] {
        write(&*pool, oid, &[WriteOp::WriteFull(b"before")]);
    }
    let s1 = pool.snap_create().unwrap();
    let after_s1 = SnapContext {
        seq: s1,
        snaps: vec![s1],
    };
    let after = |oid: &str, ops: &[WriteOp]| pool.operate(oid, ops, &after_s1).unwrap();
    after(
        &changed,
        &[WriteOp::Write {
            offset: 2,
            data: b"AFTER!!",
        }],
    );
    after(&created, &[WriteOp::WriteFull(b"new")]);
    after(&removed, &[WriteOp::Remove]);
    assert_eq!(pool.read(&changed, 0, 100, s1).unwrap(), b"before");
    assert_eq!(pool.stat(&changed, s1).unwrap(), 6);
    assert_eq!(pool.read_full(&changed).unwrap(), b"beAFTER!!");
    assert_eq!(errno(pool.read(&created, 0, 10, s1)), libc::ENOENT);
    assert_eq!(errno(pool.stat(&created, s1)), libc::ENOENT);
    assert_eq!(pool.read(&removed, 0, 100, s1).unwrap(), b"before");
    assert_eq!(errno(pool.stat(&removed, SNAP_HEAD)), libc::ENOENT);
    assert_eq!(pool.read(&untouched, 0, 100, s1).unwrap(), b"before");
    // A second snapshot: each keeps its own version.
    let s2 = pool.snap_create().unwrap();
    assert!(s2 > s1, "snapshot ids grow: {s1} then {s2}");
    let after_s2 = SnapContext {
        seq: s2,
        snaps: vec![s2, s1],
    };
    pool.operate(&changed, &[WriteOp::WriteFull(b"third")], &after_s2)
        .unwrap();
    assert_eq!(pool.read(&changed, 0, 100, s1).unwrap(), b"before");
    assert_eq!(pool.read(&changed, 0, 100, s2).unwrap(), b"beAFTER!!");
    assert_eq!(pool.read_full(&changed).unwrap(), b"third");
    // Writing under an older context than the object has seen clones
    // nothing more.
    pool.operate(&changed, &[WriteOp::WriteFull(b"fourth")], &after_s1)
        .unwrap();
    assert_eq!(pool.read(&changed, 0, 100, s2).unwrap(), b"beAFTER!!");
}

fn rollback_and_snapshot_removal(b: &Backend) {
    let pool = b.pool();
    let (changed, created) = (data(0), data(1));
    write(&*pool, &changed, &[WriteOp::WriteFull(b"before")]);
    let s1 = pool.snap_create().unwrap();
    let snapc = SnapContext {
        seq: s1,
        snaps: vec![s1],
    };
    pool.operate(&changed, &[WriteOp::WriteFull(b"after")], &snapc)
        .unwrap();
    pool.operate(&created, &[WriteOp::WriteFull(b"new")], &snapc)
        .unwrap();
    pool.rollback(&changed, s1, &snapc).unwrap();
    assert_eq!(pool.read_full(&changed).unwrap(), b"before");
    pool.rollback(&created, s1, &snapc).unwrap();
    assert_eq!(errno(pool.stat(&created, SNAP_HEAD)), libc::ENOENT);
    // A removed snapshot cannot be read any more; the head stays.
    pool.operate(&changed, &[WriteOp::WriteFull(b"later")], &snapc)
        .unwrap();
    pool.snap_remove(s1).unwrap();
    assert_eq!(pool.read_full(&changed).unwrap(), b"later");
    assert_eq!(errno(pool.read(&changed, 0, 10, s1)), libc::ENOENT);
}

fn listing_sees_one_namespace(b: &Backend) {
    let pool = b.pool();
    assert_eq!(pool.list().unwrap(), Vec::<String>::new());
    let mut names = vec![
        "rbd_header.b".to_string(),
        "rbd_id.a".into(),
        data(1),
        data(0),
    ];
    for oid in &names {
        write(&*pool, oid, &[WriteOp::WriteFull(b"x")]);
    }
    let other = b.pool();
    write(&*other, "rbd_header.elsewhere", &[WriteOp::WriteFull(b"x")]);
    // An object removed after a snapshot is still listed (its clone is);
    // one removed with no snapshot to keep is not.
    let s1 = pool.snap_create().unwrap();
    let snapc = SnapContext {
        seq: s1,
        snaps: vec![s1],
    };
    pool.operate(&data(1), &[WriteOp::Remove], &snapc).unwrap();
    write(&*pool, "rbd_id.a", &[WriteOp::Remove]);
    names.retain(|n| n != "rbd_id.a");
    let mut listed = pool.list().unwrap();
    listed.sort();
    names.sort();
    assert_eq!(listed, names);
}

#[derive(Default)]
struct Recorder {
    got: Mutex<Vec<(u64, Vec<u8>)>>,
}

impl WatchHandler for Recorder {
    fn notified(&self, notifier_gid: u64, payload: &[u8]) -> Vec<u8> {
        self.got
            .lock()
            .unwrap()
            .push((notifier_gid, payload.to_vec()));
        b"ack".to_vec()
    }
}

fn watch_and_notify(b: &Backend) {
    let pool = b.pool();
    let header = "rbd_header.watched";
    let recorder = Arc::new(Recorder::default());
    assert_eq!(errno(pool.watch(header, recorder.clone())), libc::ENOENT);
    assert_eq!(errno(pool.notify(header, b"hi", 5000)), libc::ENOENT);
    write(&*pool, header, &[WriteOp::CreateExclusive]);
    assert_eq!(pool.notify(header, b"hi", 5000).unwrap(), vec![]);
    let watch = pool.watch(header, recorder.clone()).unwrap();
    watch.check().unwrap();
    let second = pool.watch(header, recorder.clone()).unwrap();
    assert_ne!(watch.handle(), second.handle());
    let gid = b.cluster.instance_id();
    let mut watchers = pool.notify(header, b"hi", 5000).unwrap();
    watchers.sort_by_key(|w| w.cookie);
    let mut handles = [watch.handle(), second.handle()];
    handles.sort();
    assert_eq!(watchers.len(), 2);
    for (w, handle) in watchers.iter().zip(handles) {
        assert_eq!((w.gid, w.cookie), (gid, handle));
        assert_eq!(w.reply.as_deref(), Some(&b"ack"[..]));
    }
    assert_eq!(
        *recorder.got.lock().unwrap(),
        vec![(gid, b"hi".to_vec()), (gid, b"hi".to_vec())]
    );
    drop(second);
    // Another client's watcher answers too, and names its client.
    let other = b.another_client();
    let theirs = other.pool(pool.name(), pool.namespace()).unwrap();
    let their_recorder = Arc::new(Recorder::default());
    let their_watch = theirs.watch(header, their_recorder.clone()).unwrap();
    let mut watchers = pool.notify(header, b"both", 5000).unwrap();
    watchers.sort_by_key(|w| w.gid);
    let mut expected = vec![
        (gid, watch.handle()),
        (other.instance_id(), their_watch.handle()),
    ];
    expected.sort();
    let listed: Vec<(u64, u64)> = watchers.iter().map(|w| (w.gid, w.cookie)).collect();
    assert_eq!(listed, expected);
    assert!(
        watchers
            .iter()
            .all(|w| w.reply.as_deref() == Some(&b"ack"[..]))
    );
    assert_eq!(
        *their_recorder.got.lock().unwrap(),
        vec![(gid, b"both".to_vec())]
    );
    drop(their_watch);
    drop(watch);
    assert_eq!(pool.notify(header, b"bye", 5000).unwrap(), vec![]);
}

fn names_beyond_the_osd_limits(b: &Backend) {
    let pool = b.pool();
    let long = "o".repeat(2049);
    assert_eq!(errno(pool.stat(&long, SNAP_HEAD)), libc::ENAMETOOLONG);
    assert_eq!(
        errno(pool.operate(&long, &[WriteOp::WriteFull(b"x")], &HEAD)),
        libc::ENAMETOOLONG
    );
    assert_eq!(
        errno(pool.exec(&long, &cls_rbd::get_id())),
        libc::ENAMETOOLONG
    );
    let longest = "o".repeat(2048);
    write(&*pool, &longest, &[WriteOp::WriteFull(b"x")]);
    assert_eq!(pool.read_full(&longest).unwrap(), b"x");
    let far = b.cluster.pool("rbd", &"n".repeat(257)).unwrap();
    assert_eq!(
        errno(far.operate("x", &[WriteOp::WriteFull(b"x")], &HEAD)),
        libc::ENAMETOOLONG
    );
}

fn pools_by_name_and_id(b: &Backend) {
    let pool = b.pool();
    assert_eq!(pool.name(), "rbd");
    let again = b.cluster.pool_by_id(pool.id(), pool.namespace()).unwrap();
    assert_eq!((again.name(), again.namespace()), ("rbd", pool.namespace()));
    write(&*pool, "rbd_id.shared", &[WriteOp::WriteFull(b"x")]);
    assert_eq!(again.read_full("rbd_id.shared").unwrap(), b"x");
    assert_eq!(errno(b.cluster.pool("no-such-pool", "")), libc::ENOENT);
    assert_eq!(errno(b.cluster.pool_by_id(4242, "")), libc::ENOENT);
    let names = b.cluster.pool_names().unwrap();
    assert!(names.iter().any(|n| n == "rbd"), "{names:?}");
    // Which clone format `auto` picks: the test cluster keeps the default
    // floor of a fresh Ceph 16 cluster (luminous, 12); the embedded store
    // serves as a mimic+ cluster.
    let floor = b.cluster.min_compat_client().unwrap();
    assert_eq!(floor, if b.store.is_some() { 13 } else { 12 });
}
