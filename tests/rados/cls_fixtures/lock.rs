//! What each cls_lock method is asked, for its fixture, by two clients.

use rbdimg::ceph::Call;
use rbdimg::ceph::cls_lock as l;
use rbdimg::ceph::encoding::Encoder;
use rbdimg::rados::WriteOp;

use super::{Recorder, Scenario};

pub const SCENARIOS: &[(&str, Scenario)] = &[
    ("lock.lock", lock),
    ("lock.unlock", unlock),
    ("lock.break_lock", break_lock),
    ("lock.get_info", get_info),
    ("lock.list_locks", list_locks),
    ("lock.assert_locked", assert_locked),
];

const OBJ: &str = "rbd_header.abc";
const MISSING: &str = "rbd_header.missing";

const EXCLUSIVE: u8 = 1;
const SHARED: u8 = 2;
const EPHEMERAL: u8 = 3;
const MAY_RENEW: u8 = 1;
const MUST_RENEW: u8 = 2;

fn versioned(method: &'static str, body: impl FnOnce(&mut Encoder)) -> Call {
    let mut e = Encoder::new();
    e.versioned(1, 1, body);
    Call {
        class: "lock",
        method,
        input: e.into_bytes(),
    }
}

/// `cls_lock_lock_op` with every field chosen (no expiry).
fn lock_op(name: &str, kind: u8, cookie: &str, tag: &str, flags: u8) -> Call {
    versioned("lock", |b| {
        b.str(name)
            .u8(kind)
            .str(cookie)
            .str(tag)
            .str("held by a test")
            .utime(0, 0)
            .u8(flags);
    })
}

fn assert_op(name: &str, kind: u8, cookie: &str, tag: &str) -> Call {
    versioned("assert_locked", |b| {
        b.str(name).u8(kind).str(cookie).str(tag);
    })
}

fn list() -> Call {
    Call {
        class: "lock",
        method: "list_locks",
        input: vec![],
    }
}

fn lock(r: &mut Recorder) {
    r.call(OBJ, &l::lock("rbd_lock", "auto 1", "internal", ""));
    r.call(OBJ, &l::get_info("rbd_lock"));
    r.call(OBJ, &l::lock("rbd_lock", "auto 1", "internal", ""));
    r.call(
        OBJ,
        &lock_op("rbd_lock", EXCLUSIVE, "auto 1", "internal", MAY_RENEW),
    );
    r.call(
        OBJ,
        &lock_op("rbd_lock", EXCLUSIVE, "auto 1", "internal", MUST_RENEW),
    );
    r.call(
        OBJ,
        &lock_op("rbd_lock", EXCLUSIVE, "auto 2", "internal", MUST_RENEW),
    );
    r.call(
        OBJ,
        &lock_op(
            "rbd_lock",
            EXCLUSIVE,
            "auto 1",
            "internal",
            MAY_RENEW | MUST_RENEW,
        ),
    );
    r.call(OBJ, &l::get_info("rbd_lock"));
    r.caller(1);
    r.call(OBJ, &l::lock("rbd_lock", "auto 9", "internal", ""));
    r.call(OBJ, &l::lock("rbd_lock", "auto 9", "other", ""));
    r.call(OBJ, &lock_op("rbd_lock", SHARED, "auto 9", "internal", 0));
    // Shared locks: both clients, one tag.
    let shared = "rbd_header.shared";
    r.call(shared, &lock_op("s", SHARED, "c1", "t", 0));
    r.caller(0);
    r.call(shared, &lock_op("s", SHARED, "c0", "t", 0));
    r.call(shared, &lock_op("s", SHARED, "c2", "u", 0));
    r.call(shared, &lock_op("s", EXCLUSIVE, "c3", "t", 0));
    r.call(shared, &l::get_info("s"));
    // Bad input.
    r.call(OBJ, &lock_op("x", 0, "c", "", 0));
    r.call(OBJ, &lock_op("x", 4, "c", "", 0));
    r.call(OBJ, &lock_op("", EXCLUSIVE, "c", "", 0));
    r.raw(OBJ, "lock", "lock", vec![1, 1, 0, 0, 0, 0]);
    // An ephemeral lock goes with its object.
    let ephemeral = "rbd_header.ephemeral";
    r.call(ephemeral, &lock_op("e", EPHEMERAL, "c", "", 0));
    r.call(ephemeral, &l::get_info("e"));
    r.call(ephemeral, &l::unlock("e", "c"));
    r.call(ephemeral, &l::get_info("e"));
}

fn unlock(r: &mut Recorder) {
    r.call(MISSING, &l::unlock("rbd_lock", "auto 1"));
    r.op(OBJ, WriteOp::CreateExclusive);
    r.call(OBJ, &l::unlock("rbd_lock", "auto 1"));
    r.call(OBJ, &l::lock("rbd_lock", "auto 1", "internal", ""));
    r.call(OBJ, &l::unlock("rbd_lock", "auto 2"));
    r.caller(1);
    r.call(OBJ, &l::unlock("rbd_lock", "auto 1"));
    r.caller(0);
    r.call(OBJ, &l::unlock("rbd_lock", "auto 1"));
    r.call(OBJ, &l::get_info("rbd_lock"));
    r.call(OBJ, &l::unlock("rbd_lock", "auto 1"));
    r.raw(OBJ, "lock", "unlock", vec![1, 1, 2, 0, 0, 0]);
}

fn break_lock(r: &mut Recorder) {
    r.call(OBJ, &l::lock("rbd_lock", "auto 1", "internal", ""));
    let owner = r.gid(0);
    r.caller(1);
    r.call(OBJ, &l::break_lock("rbd_lock", 8, owner, "auto 2"));
    r.call(OBJ, &l::break_lock("rbd_lock", 8, 1, "auto 1"));
    r.call(OBJ, &l::break_lock("rbd_lock", 8, owner, "auto 1"));
    r.call(OBJ, &l::break_lock("rbd_lock", 8, owner, "auto 1"));
    r.call(OBJ, &l::get_info("rbd_lock"));
    r.call(OBJ, &l::lock("rbd_lock", "auto 3", "internal", ""));
    r.call(MISSING, &l::break_lock("rbd_lock", 8, owner, "auto 1"));
    r.raw(OBJ, "lock", "break_lock", vec![]);
}

fn get_info(r: &mut Recorder) {
    r.call(MISSING, &l::get_info("rbd_lock"));
    r.op(OBJ, WriteOp::CreateExclusive);
    r.call(OBJ, &l::get_info("rbd_lock"));
    r.call(
        OBJ,
        &l::lock("rbd_lock", "auto 94819238490112", "internal", ""),
    );
    r.caller(1);
    r.call(OBJ, &l::get_info("rbd_lock"));
    r.call(OBJ, &l::get_info("other"));
    r.raw(OBJ, "lock", "get_info", vec![7]);
    r.xattr(OBJ, "lock.bad", &[1, 2]);
    r.call(OBJ, &l::get_info("bad"));
}

fn list_locks(r: &mut Recorder) {
    r.call(MISSING, &list());
    r.op(OBJ, WriteOp::CreateExclusive);
    r.call(OBJ, &list());
    r.call(OBJ, &l::lock("rbd_lock", "auto 1", "internal", ""));
    r.call(OBJ, &lock_op("b", SHARED, "c", "", 0));
    r.xattr(OBJ, "other", b"x");
    r.call(OBJ, &list());
}

fn assert_locked(r: &mut Recorder) {
    r.call(MISSING, &l::assert_locked("rbd_lock", "auto 1", "internal"));
    r.op(OBJ, WriteOp::CreateExclusive);
    r.call(OBJ, &l::assert_locked("rbd_lock", "auto 1", "internal"));
    r.call(OBJ, &l::lock("rbd_lock", "auto 1", "internal", ""));
    r.call(OBJ, &l::assert_locked("rbd_lock", "auto 1", "internal"));
    r.call(OBJ, &l::assert_locked("rbd_lock", "auto 2", "internal"));
    r.call(OBJ, &l::assert_locked("rbd_lock", "auto 1", "other"));
    r.call(OBJ, &assert_op("rbd_lock", SHARED, "auto 1", "internal"));
    r.call(OBJ, &assert_op("rbd_lock", 0, "auto 1", "internal"));
    r.call(OBJ, &assert_op("", EXCLUSIVE, "auto 1", "internal"));
    r.raw(OBJ, "lock", "assert_locked", vec![1]);
    r.caller(1);
    r.call(OBJ, &l::assert_locked("rbd_lock", "auto 1", "internal"));
}
