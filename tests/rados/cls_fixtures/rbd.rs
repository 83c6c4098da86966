//! What each cls_rbd method is asked, for its fixture: the usual calls
//! and their errors (missing objects and keys, bad input, conflicts).

use rbdimg::ceph::encoding::Encoder;
use rbdimg::ceph::features::{DATA_POOL, DEFAULT, EXCLUSIVE_LOCK, LAYERING, STRIPINGV2};
use rbdimg::ceph::{Call, NOSNAP, cls_rbd as c};
use rbdimg::rados::WriteOp;

use super::{Recorder, Scenario};

pub const SCENARIOS: &[(&str, Scenario)] = &[
    ("rbd.create", create),
    ("rbd.get_features", get_features),
    ("rbd.get_size", get_size),
    ("rbd.set_size", set_size),
    ("rbd.get_object_prefix", get_object_prefix),
    ("rbd.get_data_pool", get_data_pool),
    ("rbd.get_all_features", get_all_features),
    ("rbd.get_stripe_unit_count", get_stripe_unit_count),
    ("rbd.get_create_timestamp", get_create_timestamp),
    ("rbd.get_access_timestamp", get_access_timestamp),
    ("rbd.get_modify_timestamp", get_modify_timestamp),
    ("rbd.set_access_timestamp", set_access_timestamp),
    ("rbd.set_modify_timestamp", set_modify_timestamp),
    ("rbd.get_flags", get_flags),
    ("rbd.set_flags", set_flags),
    ("rbd.op_features_get", op_features_get),
    ("rbd.metadata_list", metadata_list),
    ("rbd.get_snapcontext", get_snapcontext),
    ("rbd.snapshot_get", snapshot_get),
    ("rbd.snapshot_add", snapshot_add),
    ("rbd.snapshot_remove", snapshot_remove),
    ("rbd.snapshot_rename", snapshot_rename),
    ("rbd.get_protection_status", get_protection_status),
    ("rbd.set_protection_status", set_protection_status),
    ("rbd.parent_get", parent_get),
    ("rbd.parent_overlap_get", parent_overlap_get),
    ("rbd.get_id", get_id),
    ("rbd.set_id", set_id),
    ("rbd.dir_get_id", dir_get_id),
    ("rbd.dir_get_name", dir_get_name),
    ("rbd.dir_list", dir_list),
    ("rbd.dir_add_image", dir_add_image),
    ("rbd.dir_remove_image", dir_remove_image),
    ("rbd.dir_state_assert", dir_state_assert),
    ("rbd.dir_state_set", dir_state_set),
    ("rbd.object_map_load", object_map_load),
    ("rbd.object_map_save", object_map_save),
    ("rbd.object_map_resize", object_map_resize),
    ("rbd.object_map_update", object_map_update),
    ("rbd.object_map_snap_add", object_map_snap_add),
    ("rbd.object_map_snap_remove", object_map_snap_remove),
];

pub(super) const HDR: &str = "rbd_header.abc";
pub(super) const MISSING: &str = "rbd_header.missing";

pub(super) fn enc(f: impl FnOnce(&mut Encoder)) -> Vec<u8> {
    let mut e = Encoder::new();
    f(&mut e);
    e.into_bytes()
}

/// An `rbd` call with an input of our own making.
fn rbd(method: &'static str, input: Vec<u8>) -> Call {
    Call {
        class: "rbd",
        method,
        input,
    }
}

fn u64_arg(v: u64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

pub(super) fn utime(out: &[u8]) -> (u32, u32) {
    c::decode_utime(out).unwrap()
}

pub(super) fn snap_time(out: &[u8]) -> (u32, u32) {
    c::decode_snapshot(out).unwrap().timestamp
}

/// A 1 GiB header with 4 MiB objects and `features`.
pub(super) fn header_with(r: &mut Recorder, oid: &str, features: u64) {
    let create = c::create(1 << 30, 22, features, "rbd_data.abc", None);
    r.timed(oid, &create, &c::get_create_timestamp(), utime);
}

pub(super) fn header(r: &mut Recorder) {
    header_with(r, HDR, DEFAULT);
}

/// A successful snapshot_add (its record holds the OSD's time).
pub(super) fn snapshot(r: &mut Recorder, oid: &str, name: &str, id: u64) {
    r.timed(
        oid,
        &c::snapshot_add(name, id),
        &c::snapshot_get(id),
        snap_time,
    );
}

/// `cls_rbd_parent` v2, as a nautilus+ OSD stores it.
pub(super) fn parent(
    pool: i64,
    namespace: &str,
    image: &str,
    snap: u64,
    overlap: Option<u64>,
) -> Vec<u8> {
    enc(|e| {
        e.versioned(2, 2, |b| {
            b.i64(pool).str(namespace).str(image).u64(snap);
            match overlap {
                Some(o) => b.u8(1).u64(o),
                None => b.u8(0),
            };
        });
    })
}

fn create(r: &mut Recorder) {
    header(r);
    r.call(HDR, &c::create(1, 22, 1, "rbd_data.x", None));
    r.call("rbd_header.a", &c::create(1, 22, 1 << 20, "p", None));
    r.call("rbd_header.a", &c::create(1, 22, 1, "", None));
    r.call("rbd_header.a", &c::create(1, 22, 1 << 8, "p", None));
    r.call("rbd_header.a", &c::create(1, 22, 1, "p", Some(3)));
    r.call("rbd_header.a", &c::create(1, 22, DATA_POOL, "p", None));
    r.raw("rbd_header.a", "rbd", "create", vec![1, 2]);
    // With a data pool; and the older input without one.
    let with_pool = c::create(5 << 20, 20, LAYERING | DATA_POOL, "rbd_data.b", Some(3));
    r.timed(
        "rbd_header.b",
        &with_pool,
        &c::get_create_timestamp(),
        utime,
    );
    r.call("rbd_header.b", &c::get_data_pool());
    let old = enc(|e| {
        e.u64(7).u8(12).u64(1).str("rbd_data.c");
    });
    let old = rbd("create", old);
    r.timed("rbd_header.c", &old, &c::get_create_timestamp(), utime);
    r.call("rbd_header.c", &c::get_size(NOSNAP));
}

fn get_features(r: &mut Recorder) {
    header(r);
    r.call(HDR, &c::get_features(true));
    r.call(HDR, &c::get_features(false));
    // The older input, a snapshot id alone; a missing snapshot.
    r.raw(HDR, "rbd", "get_features", u64_arg(NOSNAP));
    r.raw(HDR, "rbd", "get_features", u64_arg(9));
    r.raw(HDR, "rbd", "get_features", vec![]);
    r.call(MISSING, &c::get_features(true));
}

fn get_size(r: &mut Recorder) {
    header(r);
    r.call(HDR, &c::get_size(NOSNAP));
    snapshot(r, HDR, "s1", 4);
    r.call(HDR, &c::set_size(8 << 20));
    r.call(HDR, &c::get_size(NOSNAP));
    r.call(HDR, &c::get_size(4));
    r.call(HDR, &c::get_size(9));
    r.raw(HDR, "rbd", "get_size", vec![1]);
    r.call(MISSING, &c::get_size(NOSNAP));
}

fn set_size(r: &mut Recorder) {
    header(r);
    r.call(HDR, &c::set_size(5 << 20));
    r.call(HDR, &c::get_size(NOSNAP));
    r.raw(HDR, "rbd", "set_size", vec![]);
    r.call(MISSING, &c::set_size(1));
    // A clone: shrinking below the parent overlap shrinks the overlap.
    header(r);
    let clone = "rbd_header.clone";
    header_with(r, clone, DEFAULT);
    r.omap(
        clone,
        "parent",
        &parent(2, "", "parentid", 5, Some(1 << 30)),
    );
    r.call(clone, &c::set_size(3 << 20));
    r.call(clone, &c::parent_overlap_get(NOSNAP));
    r.call(clone, &c::set_size(1 << 30));
    r.call(clone, &c::parent_overlap_get(NOSNAP));
}

fn get_object_prefix(r: &mut Recorder) {
    header(r);
    r.call(HDR, &c::get_object_prefix());
    r.op("rbd_header.empty", WriteOp::CreateExclusive);
    r.call("rbd_header.empty", &c::get_object_prefix());
    r.call(MISSING, &c::get_object_prefix());
}

fn get_data_pool(r: &mut Recorder) {
    header(r);
    r.call(HDR, &c::get_data_pool());
    r.omap(HDR, "data_pool_id", &7i64.to_le_bytes());
    r.call(HDR, &c::get_data_pool());
    r.call(MISSING, &c::get_data_pool());
}

fn get_all_features(r: &mut Recorder) {
    r.op("rbd_directory", WriteOp::CreateExclusive);
    r.call("rbd_directory", &c::get_all_features());
    r.call(MISSING, &c::get_all_features());
}

fn get_stripe_unit_count(r: &mut Recorder) {
    header(r);
    r.call(HDR, &c::get_stripe_unit_count());
    let striped = "rbd_header.striped";
    header_with(r, striped, LAYERING | STRIPINGV2);
    r.call(striped, &c::get_stripe_unit_count());
    r.omap(striped, "stripe_unit", &(64u64 << 10).to_le_bytes());
    r.omap(striped, "stripe_count", &8u64.to_le_bytes());
    r.call(striped, &c::get_stripe_unit_count());
    r.op("rbd_header.empty", WriteOp::CreateExclusive);
    r.call("rbd_header.empty", &c::get_stripe_unit_count());
    r.call(MISSING, &c::get_stripe_unit_count());
}

fn timestamp_reads(r: &mut Recorder, get: fn() -> Call) {
    header(r);
    r.call(HDR, &get());
    r.op("rbd_header.empty", WriteOp::CreateExclusive);
    r.call("rbd_header.empty", &get());
    r.omap("rbd_header.bad", "create_timestamp", &[1, 2]);
    r.omap("rbd_header.bad", "access_timestamp", &[1, 2]);
    r.omap("rbd_header.bad", "modify_timestamp", &[1, 2]);
    r.call("rbd_header.bad", &get());
    r.call(MISSING, &get());
}

fn get_create_timestamp(r: &mut Recorder) {
    timestamp_reads(r, c::get_create_timestamp);
}

fn get_access_timestamp(r: &mut Recorder) {
    timestamp_reads(r, get_access_timestamp_call);
}

fn get_access_timestamp_call() -> Call {
    rbd("get_access_timestamp", vec![])
}

fn get_modify_timestamp(r: &mut Recorder) {
    timestamp_reads(r, c::get_modify_timestamp);
}

fn set_access_timestamp(r: &mut Recorder) {
    header(r);
    let set = rbd("set_access_timestamp", vec![]);
    r.timed(HDR, &set, &get_access_timestamp_call(), utime);
    r.call(MISSING, &set);
}

fn set_modify_timestamp(r: &mut Recorder) {
    header(r);
    r.timed(
        HDR,
        &c::set_modify_timestamp(),
        &c::get_modify_timestamp(),
        utime,
    );
    r.call(MISSING, &c::set_modify_timestamp());
}

fn get_flags(r: &mut Recorder) {
    header(r);
    r.call(HDR, &c::get_flags(NOSNAP));
    r.call(HDR, &c::set_flags(NOSNAP, 3, 3));
    snapshot(r, HDR, "s1", 4);
    r.call(HDR, &c::set_flags(NOSNAP, 0, 1));
    r.call(HDR, &c::get_flags(NOSNAP));
    r.call(HDR, &c::get_flags(4));
    r.call(HDR, &c::get_flags(9));
    r.raw(HDR, "rbd", "get_flags", vec![]);
    r.call(MISSING, &c::get_flags(NOSNAP));
}

fn set_flags(r: &mut Recorder) {
    header(r);
    r.call(HDR, &c::set_flags(NOSNAP, 3, 3));
    r.call(HDR, &c::set_flags(NOSNAP, 0, 2));
    r.call(HDR, &c::get_flags(NOSNAP));
    snapshot(r, HDR, "s1", 4);
    r.call(HDR, &c::set_flags(4, 2, 2));
    r.call(HDR, &c::get_flags(4));
    r.call(HDR, &c::set_flags(9, 1, 1));
    // The older input, with no snapshot id.
    r.raw(HDR, "rbd", "set_flags", [u64_arg(4), u64_arg(4)].concat());
    r.call(HDR, &c::get_flags(NOSNAP));
    r.raw(HDR, "rbd", "set_flags", u64_arg(1));
    r.call(MISSING, &c::set_flags(NOSNAP, 1, 1));
    r.call(MISSING, &c::get_flags(NOSNAP));
}

fn op_features_get(r: &mut Recorder) {
    header(r);
    r.call(HDR, &c::op_features_get());
    r.omap(HDR, "op_features", &1u64.to_le_bytes());
    r.call(HDR, &c::op_features_get());
    r.call(MISSING, &c::op_features_get());
}

fn metadata_list(r: &mut Recorder) {
    let list = |start: &str, max: u64| {
        rbd(
            "metadata_list",
            enc(|e| {
                e.str(start).u64(max);
            }),
        )
    };
    header(r);
    r.call(HDR, &list("", 0));
    for (k, v) in [("conf_a", "1"), ("conf_b", "22"), ("user", "x")] {
        r.omap(
            HDR,
            &format!("metadata_{k}"),
            &enc(|e| {
                e.str(v);
            }),
        );
    }
    r.call(HDR, &list("", 0));
    r.call(HDR, &list("conf_a", 10));
    r.call(HDR, &list("", 1));
    r.raw(HDR, "rbd", "metadata_list", vec![0, 0]);
    r.call(MISSING, &list("", 0));
}

fn get_snapcontext(r: &mut Recorder) {
    header(r);
    r.call(HDR, &c::get_snapcontext());
    snapshot(r, HDR, "s1", 4);
    snapshot(r, HDR, "s2", 6);
    r.call(HDR, &c::get_snapcontext());
    r.call(MISSING, &c::get_snapcontext());
}

fn snapshot_get(r: &mut Recorder) {
    header(r);
    snapshot(r, HDR, "s1", 4);
    r.call(HDR, &c::snapshot_get(NOSNAP));
    r.call(HDR, &c::snapshot_get(5));
    r.raw(HDR, "rbd", "snapshot_get", vec![]);
    r.call(MISSING, &c::snapshot_get(4));
}

fn snapshot_add(r: &mut Recorder) {
    header(r);
    r.call(HDR, &c::set_flags(NOSNAP, 1, 1));
    snapshot(r, HDR, "s1", 4);
    r.call(HDR, &c::snapshot_add("s1", 5));
    r.call(HDR, &c::snapshot_add("s0", 3));
    r.call(HDR, &c::snapshot_add("s4", 4));
    r.call(HDR, &c::snapshot_add("big", u64::MAX - 1));
    // The older input with no namespace is a user snapshot.
    let old = enc(|e| {
        e.str("s7").u64(7);
    });
    let old = rbd("snapshot_add", old);
    r.timed(HDR, &old, &c::snapshot_get(7), snap_time);
    r.raw(HDR, "rbd", "snapshot_add", vec![1, 0, 0, 0]);
    r.omap(HDR, "snap_limit", &2u64.to_le_bytes());
    r.call(HDR, &c::snapshot_add("s8", 8));
    r.call(MISSING, &c::snapshot_add("s1", 4));
    // A clone's snapshot records the parent overlap.
    let clone = "rbd_header.clone";
    header_with(r, clone, DEFAULT);
    r.omap(
        clone,
        "parent",
        &parent(2, "", "parentid", 5, Some(3 << 20)),
    );
    snapshot(r, clone, "c1", 10);
    r.call(clone, &c::parent_overlap_get(10));
}

fn snapshot_remove(r: &mut Recorder) {
    header(r);
    snapshot(r, HDR, "s1", 4);
    snapshot(r, HDR, "s2", 5);
    r.call(HDR, &protection(4, 2));
    r.call(HDR, &c::snapshot_remove(4));
    r.call(HDR, &protection(4, 0));
    r.call(HDR, &c::snapshot_remove(4));
    r.call(HDR, &c::snapshot_remove(4));
    r.call(HDR, &c::get_snapcontext());
    r.raw(HDR, "rbd", "snapshot_remove", vec![]);
    r.call(MISSING, &c::snapshot_remove(5));
    // The last snapshot of a flattened clone takes the parent with it.
    let clone = "rbd_header.clone";
    header_with(r, clone, DEFAULT);
    r.omap(
        clone,
        "parent",
        &parent(2, "", "parentid", 5, Some(3 << 20)),
    );
    snapshot(r, clone, "c1", 10);
    r.omap(clone, "parent", &parent(2, "", "parentid", 5, None));
    r.call(clone, &c::parent_get());
    r.call(clone, &c::snapshot_remove(10));
    r.call(clone, &c::parent_get());
}

fn rename(id: u64, name: &str) -> Call {
    rbd(
        "snapshot_rename",
        enc(|e| {
            e.u64(id).str(name);
        }),
    )
}

fn snapshot_rename(r: &mut Recorder) {
    header(r);
    snapshot(r, HDR, "s1", 4);
    snapshot(r, HDR, "s2", 5);
    r.call(HDR, &rename(4, "s2"));
    r.call(HDR, &rename(4, "t1"));
    r.call(HDR, &c::snapshot_get(4));
    r.call(HDR, &rename(9, "t9"));
    r.raw(HDR, "rbd", "snapshot_rename", u64_arg(4));
    r.call(MISSING, &rename(4, "x"));
}

pub(super) fn protection(id: u64, status: u8) -> Call {
    rbd(
        "set_protection_status",
        enc(|e| {
            e.u64(id).u8(status);
        }),
    )
}

fn get_protection_status(r: &mut Recorder) {
    header(r);
    snapshot(r, HDR, "s1", 4);
    r.call(HDR, &c::get_protection_status(4));
    r.call(HDR, &protection(4, 2));
    r.call(HDR, &c::get_protection_status(4));
    r.call(HDR, &c::get_protection_status(NOSNAP));
    r.call(HDR, &c::get_protection_status(5));
    r.raw(HDR, "rbd", "get_protection_status", vec![]);
    r.call(MISSING, &c::get_protection_status(4));
}

fn set_protection_status(r: &mut Recorder) {
    header(r);
    snapshot(r, HDR, "s1", 4);
    r.call(HDR, &protection(4, 1));
    r.call(HDR, &c::get_protection_status(4));
    r.call(HDR, &protection(4, 3));
    r.call(HDR, &protection(NOSNAP, 2));
    r.call(HDR, &protection(5, 2));
    r.raw(HDR, "rbd", "set_protection_status", u64_arg(4));
    r.call(MISSING, &protection(4, 2));
    let flat = "rbd_header.flat";
    header_with(r, flat, EXCLUSIVE_LOCK);
    snapshot(r, flat, "f1", 4);
    r.call(flat, &protection(4, 2));
}

fn parent_get(r: &mut Recorder) {
    header(r);
    r.call(HDR, &c::parent_get());
    r.omap(
        HDR,
        "parent",
        &parent(2, "ns1", "parentid", 5, Some(1 << 20)),
    );
    r.call(HDR, &c::parent_get());
    // Without layering, a parent key is not a parent.
    let flat = "rbd_header.flat";
    header_with(r, flat, EXCLUSIVE_LOCK);
    r.omap(flat, "parent", &parent(2, "", "parentid", 5, Some(1 << 20)));
    r.call(flat, &c::parent_get());
    r.omap("rbd_header.bad", "features", &DEFAULT.to_le_bytes());
    r.omap("rbd_header.bad", "parent", &[1, 2, 3]);
    r.call("rbd_header.bad", &c::parent_get());
    r.call(MISSING, &c::parent_get());
}

fn parent_overlap_get(r: &mut Recorder) {
    header(r);
    r.call(HDR, &c::parent_overlap_get(NOSNAP));
    r.omap(HDR, "parent", &parent(2, "", "parentid", 5, Some(1 << 20)));
    r.call(HDR, &c::parent_overlap_get(NOSNAP));
    snapshot(r, HDR, "s1", 4);
    r.call(HDR, &c::parent_overlap_get(4));
    r.call(HDR, &c::parent_overlap_get(9));
    r.raw(HDR, "rbd", "parent_overlap_get", vec![]);
    let flat = "rbd_header.flat";
    header_with(r, flat, EXCLUSIVE_LOCK);
    r.omap(flat, "parent", &parent(2, "", "parentid", 5, Some(1 << 20)));
    r.call(flat, &c::parent_overlap_get(NOSNAP));
    r.call(MISSING, &c::parent_overlap_get(NOSNAP));
}

const ID: &str = "rbd_id.vm1";

fn get_id(r: &mut Recorder) {
    r.op(ID, WriteOp::CreateExclusive);
    r.call(ID, &c::get_id());
    r.call(ID, &c::set_id("abc123"));
    r.call(ID, &c::get_id());
    r.op("rbd_id.bad", WriteOp::WriteFull(&[9, 0, 0, 0, b'x']));
    r.call("rbd_id.bad", &c::get_id());
    r.call("rbd_id.missing", &c::get_id());
}

fn set_id(r: &mut Recorder) {
    r.call(ID, &c::set_id("abc123"));
    r.op(ID, WriteOp::CreateExclusive);
    r.call(ID, &c::set_id("a-b"));
    r.call(ID, &c::set_id(""));
    r.raw(ID, "rbd", "set_id", vec![9]);
    r.call(ID, &c::set_id("abc123"));
    r.call(ID, &c::set_id("abc123"));
    r.call(ID, &c::get_id());
    r.op(ID, WriteOp::Remove);
    r.op(ID, WriteOp::Remove);
}

const DIR: &str = "rbd_directory";

fn name_arg(method: &'static str, name: &str) -> Call {
    rbd(
        method,
        enc(|e| {
            e.str(name);
        }),
    )
}

fn directory(r: &mut Recorder) {
    r.call(DIR, &c::dir_add_image("vm1", "id1"));
    r.call(DIR, &c::dir_add_image("vm0", "id0"));
}

fn dir_get_id(r: &mut Recorder) {
    r.call(DIR, &name_arg("dir_get_id", "vm1"));
    directory(r);
    r.call(DIR, &name_arg("dir_get_id", "vm1"));
    r.call(DIR, &name_arg("dir_get_id", "vm9"));
    r.raw(DIR, "rbd", "dir_get_id", vec![5]);
}

fn dir_get_name(r: &mut Recorder) {
    r.call(DIR, &name_arg("dir_get_name", "id1"));
    directory(r);
    r.call(DIR, &name_arg("dir_get_name", "id1"));
    r.call(DIR, &name_arg("dir_get_name", "id9"));
    r.raw(DIR, "rbd", "dir_get_name", vec![]);
}

fn dir_list(r: &mut Recorder) {
    r.call(DIR, &c::dir_list("", 10));
    r.call(DIR, &c::dir_state_assert(0));
    r.raw(DIR, "rbd", "dir_state_set", vec![0]);
    r.call(DIR, &c::dir_list("", 10));
    directory(r);
    r.call(DIR, &c::dir_list("", 10));
    r.call(DIR, &c::dir_list("vm0", 10));
    r.call(DIR, &c::dir_list("", 1));
    r.call(DIR, &c::dir_list("", 0));
    r.raw(DIR, "rbd", "dir_list", vec![0, 0, 0, 0]);
}

fn dir_add_image(r: &mut Recorder) {
    directory(r);
    r.call(DIR, &c::dir_add_image("vm1", "id9"));
    r.call(DIR, &c::dir_add_image("vm9", "id1"));
    r.call(DIR, &c::dir_add_image("", "id5"));
    r.call(DIR, &c::dir_add_image("vm5", "i-d"));
    r.raw(DIR, "rbd", "dir_add_image", vec![1]);
    r.call(DIR, &c::dir_list("", 10));
    // Adds are refused while the directory is disabled.
    let disabled = "rbd_directory.disabled";
    r.op(disabled, WriteOp::CreateExclusive);
    r.raw(disabled, "rbd", "dir_state_set", vec![1]);
    r.call(disabled, &c::dir_add_image("vm1", "id1"));
}

fn dir_remove_image(r: &mut Recorder) {
    r.call(DIR, &c::dir_remove_image("vm1", "id1"));
    directory(r);
    r.call(DIR, &c::dir_remove_image("vm1", "id0"));
    r.call(DIR, &c::dir_remove_image("nope", "id0"));
    r.call(DIR, &c::dir_remove_image("vm1", "id1"));
    r.call(DIR, &c::dir_list("", 10));
    r.raw(DIR, "rbd", "dir_remove_image", vec![]);
}

fn dir_state_assert(r: &mut Recorder) {
    r.call(DIR, &c::dir_state_assert(0));
    directory(r);
    r.call(DIR, &c::dir_state_assert(0));
    r.raw(DIR, "rbd", "dir_state_set", vec![0]);
    r.call(DIR, &c::dir_state_assert(0));
    r.call(DIR, &c::dir_state_assert(1));
    r.raw(DIR, "rbd", "dir_state_assert", vec![]);
}

fn dir_state_set(r: &mut Recorder) {
    let fresh = "rbd_directory.fresh";
    r.raw(fresh, "rbd", "dir_state_set", vec![1]);
    r.op(fresh, WriteOp::CreateExclusive);
    r.raw(fresh, "rbd", "dir_state_set", vec![1]);
    r.call(fresh, &c::dir_state_assert(1));
    r.raw(fresh, "rbd", "dir_state_set", vec![0]);
    r.call(fresh, &c::dir_state_assert(0));
    directory(r);
    r.raw(DIR, "rbd", "dir_state_set", vec![1]);
    r.raw(DIR, "rbd", "dir_state_set", vec![7]);
    r.raw(DIR, "rbd", "dir_state_set", vec![]);
    r.raw(DIR, "rbd", "dir_state_set", vec![0]);
}

const MAP: &str = "rbd_object_map.abc";

/// A 10-object map with objects 0..3 existing and 1 pending.
fn map(r: &mut Recorder) {
    r.call(MAP, &c::object_map_resize(10, 0));
    r.call(MAP, &c::object_map_update(0, 3, 1, None));
    r.call(MAP, &c::object_map_update(1, 2, 2, None));
}

fn object_map_load(r: &mut Recorder) {
    r.call(MAP, &c::object_map_load());
    map(r);
    r.call(MAP, &c::object_map_load());
    r.op("rbd_object_map.empty", WriteOp::CreateExclusive);
    r.call("rbd_object_map.empty", &c::object_map_load());
    r.op("rbd_object_map.bad", WriteOp::WriteFull(&[1, 2, 3]));
    r.call("rbd_object_map.bad", &c::object_map_load());
}

fn object_map_save(r: &mut Recorder) {
    map(r);
    let saved = r.call(MAP, &c::object_map_load()).expect("a map");
    r.raw("rbd_object_map.copy", "rbd", "object_map_save", saved);
    r.call("rbd_object_map.copy", &c::object_map_load());
    r.raw(MAP, "rbd", "object_map_save", vec![1, 2, 3]);
}

fn object_map_resize(r: &mut Recorder) {
    r.call(MAP, &c::object_map_resize(10, 0));
    r.call(MAP, &c::object_map_update(0, 3, 1, None));
    r.call(MAP, &c::object_map_resize(1, 0));
    r.call(MAP, &c::object_map_resize(3, 0));
    r.call(MAP, &c::object_map_resize(7, 1));
    r.call(MAP, &c::object_map_load());
    r.call(MAP, &c::object_map_resize(256_000_001, 0));
    r.raw(MAP, "rbd", "object_map_resize", u64_arg(3));
}

fn object_map_update(r: &mut Recorder) {
    r.call(MAP, &c::object_map_update(0, 1, 1, None));
    map(r);
    r.call(MAP, &c::object_map_update(0, 3, 0, Some(2)));
    r.call(MAP, &c::object_map_load());
    r.call(MAP, &c::object_map_update(3, 3, 1, None));
    r.call(MAP, &c::object_map_update(0, 11, 1, None));
    r.call(MAP, &c::object_map_snap_add());
    r.call(MAP, &c::object_map_update(0, 10, 2, Some(1)));
    r.call(MAP, &c::object_map_load());
    r.raw(MAP, "rbd", "object_map_update", u64_arg(0));
}

fn object_map_snap_add(r: &mut Recorder) {
    r.call(MAP, &c::object_map_snap_add());
    map(r);
    r.call(MAP, &c::object_map_snap_add());
    r.call(MAP, &c::object_map_load());
    r.call(MAP, &c::object_map_snap_add());
}

fn object_map_snap_remove(r: &mut Recorder) {
    map(r);
    let before = r.call(MAP, &c::object_map_load()).expect("a map");
    r.call(MAP, &c::object_map_snap_add());
    r.call(MAP, &c::object_map_snap_remove(&before));
    r.call(MAP, &c::object_map_load());
    r.call(
        "rbd_object_map.missing",
        &c::object_map_snap_remove(&before),
    );
    r.call(MAP, &c::object_map_snap_remove(&[1, 2]));
}
