//! What each cls_rbd method of layering is asked, for its fixture: a
//! clone's parent link, the children of parents (clone v1 and v2),
//! operation features and the snapshot trash.

use rbdimg::ceph::cls_rbd_layering::{self as l, ChildSpec};
use rbdimg::ceph::features::{DEFAULT, EXCLUSIVE_LOCK, LAYERING};
use rbdimg::ceph::{NOSNAP, cls_rbd as c, cls_rbd::ParentSpec};

use super::rbd::{HDR, MISSING, enc, header, header_with, parent, protection, snapshot};
use super::{Recorder, Scenario};

pub const SCENARIOS: &[(&str, Scenario)] = &[
    ("rbd.parent_attach", parent_attach),
    ("rbd.parent_detach", parent_detach),
    ("rbd.op_features_set", op_features_set),
    ("rbd.snapshot_trash_add", snapshot_trash_add),
    ("rbd.add_child", add_child),
    ("rbd.remove_child", remove_child),
    ("rbd.get_children", get_children),
    ("rbd.child_attach", child_attach),
    ("rbd.child_detach", child_detach),
    ("rbd.children_list", children_list),
];

const CHILDREN: &str = l::CHILDREN;

fn spec(namespace: &str, snap_id: u64) -> ParentSpec {
    ParentSpec {
        pool_id: 2,
        namespace: namespace.into(),
        image_id: "parentid".into(),
        snap_id,
    }
}

fn child(pool_id: i64, namespace: &str, id: &str) -> ChildSpec {
    ChildSpec {
        pool_id,
        namespace: namespace.into(),
        image_id: id.into(),
    }
}

fn parent_attach(r: &mut Recorder) {
    header(r);
    r.call(HDR, &l::parent_attach(&spec("", 5), 8 << 20, false));
    r.call(HDR, &c::parent_get());
    r.call(HDR, &c::parent_overlap_get(NOSNAP));
    r.call(HDR, &l::parent_attach(&spec("", 5), 8 << 20, false));
    // Reattaching clips the overlap to the image.
    r.call(HDR, &l::parent_attach(&spec("", 5), 2 << 30, true));
    r.call(HDR, &c::parent_overlap_get(NOSNAP));
    // A parent in another namespace.
    r.call(HDR, &l::parent_attach(&spec("ns1", 7), 4096, true));
    r.call(HDR, &c::parent_get());
    // Not a parent: no overlap, no pool, no snapshot.
    let fresh = "rbd_header.fresh";
    header_with(r, fresh, DEFAULT);
    r.call(fresh, &l::parent_attach(&spec("", 5), 0, false));
    let mut no_pool = spec("", 5);
    no_pool.pool_id = -1;
    r.call(fresh, &l::parent_attach(&no_pool, 1, false));
    r.call(fresh, &l::parent_attach(&spec("", NOSNAP), 1, false));
    // The same spec without a head overlap (a flattened head) takes a new
    // overlap; another spec needs reattach.
    r.omap(fresh, "parent", &parent(2, "", "parentid", 5, None));
    r.call(fresh, &l::parent_attach(&spec("", 6), 4096, false));
    r.call(fresh, &l::parent_attach(&spec("", 5), 4096, false));
    r.call(fresh, &c::parent_overlap_get(NOSNAP));
    // The older input, without reattach.
    let old = l::parent_attach(&spec("", 5), 4096, false);
    let old_input = old.input[..old.input.len() - 1].to_vec();
    let plain = "rbd_header.plain";
    header_with(r, plain, DEFAULT);
    r.raw(plain, "rbd", "parent_attach", old_input);
    r.call(plain, &c::parent_get());
    let flat = "rbd_header.flat";
    header_with(r, flat, EXCLUSIVE_LOCK);
    r.call(flat, &l::parent_attach(&spec("", 5), 4096, false));
    r.raw(HDR, "rbd", "parent_attach", vec![1, 1, 0]);
    r.call(MISSING, &l::parent_attach(&spec("", 5), 4096, false));
}

fn parent_detach(r: &mut Recorder) {
    header(r);
    r.call(HDR, &l::parent_detach());
    r.call(HDR, &l::parent_attach(&spec("", 5), 8 << 20, false));
    r.call(
        HDR,
        &l::op_features_set(l::OP_CLONE_CHILD, l::OP_CLONE_CHILD),
    );
    r.call(HDR, &l::parent_detach());
    r.call(HDR, &c::parent_get());
    r.call(HDR, &c::op_features_get());
    r.call(HDR, &c::get_features(false));
    r.call(HDR, &l::parent_detach());
    // Without deep-flatten a snapshot keeps the link; the head loses it.
    let shallow = "rbd_header.shallow";
    header_with(r, shallow, LAYERING | EXCLUSIVE_LOCK);
    r.call(shallow, &l::parent_attach(&spec("", 5), 8 << 20, false));
    r.call(
        shallow,
        &l::op_features_set(l::OP_CLONE_CHILD, l::OP_CLONE_CHILD),
    );
    snapshot(r, shallow, "s1", 4);
    r.call(shallow, &l::parent_detach());
    r.call(shallow, &c::parent_get());
    r.call(shallow, &c::parent_overlap_get(NOSNAP));
    r.call(shallow, &c::parent_overlap_get(4));
    r.call(shallow, &c::op_features_get());
    r.call(shallow, &l::parent_detach());
    // With deep-flatten the snapshots are detached too.
    let deep = "rbd_header.deep";
    header_with(r, deep, DEFAULT);
    r.call(deep, &l::parent_attach(&spec("", 5), 8 << 20, false));
    snapshot(r, deep, "s1", 4);
    r.call(deep, &l::parent_detach());
    r.call(deep, &c::parent_get());
    r.call(deep, &c::parent_overlap_get(4));
    let flat = "rbd_header.flat";
    header_with(r, flat, EXCLUSIVE_LOCK);
    r.call(flat, &l::parent_detach());
    r.call(MISSING, &l::parent_detach());
}

fn op_features_set(r: &mut Recorder) {
    header(r);
    r.call(
        HDR,
        &l::op_features_set(l::OP_CLONE_CHILD, l::OP_CLONE_CHILD),
    );
    r.call(HDR, &c::op_features_get());
    r.call(HDR, &c::get_features(false));
    r.call(HDR, &l::op_features_set(l::OP_ALL, l::OP_SNAP_TRASH));
    r.call(HDR, &c::op_features_get());
    r.call(HDR, &l::op_features_set(0, l::OP_ALL));
    r.call(HDR, &c::op_features_get());
    r.call(HDR, &c::get_features(false));
    r.call(HDR, &l::op_features_set(16, 16));
    r.raw(HDR, "rbd", "op_features_set", vec![1]);
    r.call(MISSING, &l::op_features_set(1, 1));
}

fn snapshot_trash_add(r: &mut Recorder) {
    header(r);
    snapshot(r, HDR, "s1", 4);
    snapshot(r, HDR, "s2", 5);
    r.call(HDR, &protection(5, 2));
    r.call(HDR, &l::snapshot_trash_add(5));
    r.call(HDR, &l::snapshot_trash_add(4));
    r.call(HDR, &l::snapshot_trash_add(4));
    r.call(HDR, &l::snapshot_trash_add(9));
    r.call(HDR, &c::op_features_get());
    r.call(HDR, &c::get_features(false));
    // The trashed snapshot stays in the snapshot context, and its name is
    // free for a new user snapshot.
    r.call(HDR, &c::get_snapcontext());
    snapshot(r, HDR, "s1", 6);
    r.call(HDR, &c::snapshot_remove(4));
    r.call(HDR, &c::op_features_get());
    r.call(HDR, &c::get_features(false));
    r.raw(HDR, "rbd", "snapshot_trash_add", vec![]);
    r.call(MISSING, &l::snapshot_trash_add(4));
}

fn v1_children(r: &mut Recorder) -> ParentSpec {
    // A snap id with bytes past ASCII, as an omap key of binary bytes.
    let p = spec("", 0x1_0080);
    r.call(CHILDREN, &l::add_child(&p, "c1"));
    r.call(CHILDREN, &l::add_child(&p, "c0"));
    p
}

fn add_child(r: &mut Recorder) {
    let p = v1_children(r);
    r.call(CHILDREN, &l::add_child(&p, "c1"));
    r.call(CHILDREN, &l::get_children(&p));
    r.call(CHILDREN, &l::add_child(&spec("", 3), "c1"));
    r.call(CHILDREN, &l::get_children(&spec("", 3)));
    r.raw(CHILDREN, "rbd", "add_child", vec![2, 0, 0, 0, 0, 0, 0, 0]);
}

fn remove_child(r: &mut Recorder) {
    let p = v1_children(r);
    r.call(CHILDREN, &l::remove_child(&p, "c9"));
    r.call(CHILDREN, &l::remove_child(&spec("", 3), "c0"));
    r.call(CHILDREN, &l::remove_child(&p, "c0"));
    r.call(CHILDREN, &l::get_children(&p));
    r.call(CHILDREN, &l::remove_child(&p, "c1"));
    r.call(CHILDREN, &l::get_children(&p));
    r.call(CHILDREN, &l::remove_child(&p, "c1"));
    r.raw(CHILDREN, "rbd", "remove_child", vec![]);
}

fn get_children(r: &mut Recorder) {
    r.call(CHILDREN, &l::get_children(&spec("", 4)));
    let p = v1_children(r);
    r.call(CHILDREN, &l::get_children(&p));
    r.call(CHILDREN, &l::get_children(&spec("", 4)));
    r.raw(CHILDREN, "rbd", "get_children", vec![1]);
}

/// A parent header with snapshot 4 and two clone v2 children on it.
fn v2_children(r: &mut Recorder) {
    header(r);
    snapshot(r, HDR, "s1", 4);
    r.call(HDR, &l::child_attach(4, &child(2, "", "c1")));
    r.call(HDR, &l::child_attach(4, &child(1, "ns", "c2")));
}

fn child_attach(r: &mut Recorder) {
    v2_children(r);
    r.call(HDR, &l::child_attach(4, &child(2, "", "c1")));
    r.call(HDR, &l::children_list(4));
    r.call(HDR, &c::snapshot_get(4));
    r.call(HDR, &c::op_features_get());
    r.call(HDR, &c::get_features(false));
    // Children keep their parent snapshot.
    r.call(HDR, &c::snapshot_remove(4));
    r.call(HDR, &l::child_attach(9, &child(2, "", "c1")));
    // An older ChildImageSpec, without a namespace.
    let v1 = enc(|e| {
        e.u64(4);
        e.versioned(1, 1, |b| {
            b.i64(3).str("c3");
        });
    });
    r.raw(HDR, "rbd", "child_attach", v1);
    r.call(HDR, &l::children_list(4));
    // Not onto a snapshot in the trash.
    snapshot(r, HDR, "s2", 6);
    r.call(HDR, &l::snapshot_trash_add(6));
    r.call(HDR, &l::child_attach(6, &child(2, "", "c1")));
    r.raw(HDR, "rbd", "child_attach", vec![4, 0, 0, 0, 0, 0, 0, 0]);
    r.call(MISSING, &l::child_attach(4, &child(2, "", "c1")));
}

fn child_detach(r: &mut Recorder) {
    v2_children(r);
    r.call(HDR, &l::child_detach(4, &child(1, "ns", "c2")));
    r.call(HDR, &l::child_detach(4, &child(1, "ns", "c2")));
    r.call(HDR, &c::snapshot_get(4));
    r.call(HDR, &c::op_features_get());
    r.call(HDR, &l::child_detach(4, &child(2, "", "c1")));
    r.call(HDR, &c::op_features_get());
    r.call(HDR, &c::get_features(false));
    r.call(HDR, &l::children_list(4));
    r.call(HDR, &l::child_detach(4, &child(2, "", "c1")));
    r.call(HDR, &l::child_detach(9, &child(2, "", "c1")));
    // Children on two snapshots: the parent role ends with the last.
    snapshot(r, HDR, "s2", 6);
    r.call(HDR, &l::child_attach(4, &child(2, "", "c1")));
    r.call(HDR, &l::child_attach(6, &child(2, "", "c2")));
    r.call(HDR, &l::child_detach(4, &child(2, "", "c1")));
    r.call(HDR, &c::op_features_get());
    r.call(HDR, &l::child_detach(6, &child(2, "", "c2")));
    r.call(HDR, &c::op_features_get());
    r.raw(HDR, "rbd", "child_detach", vec![]);
    r.call(MISSING, &l::child_detach(4, &child(2, "", "c1")));
}

fn children_list(r: &mut Recorder) {
    header(r);
    snapshot(r, HDR, "s1", 4);
    r.call(HDR, &l::children_list(4));
    r.call(HDR, &l::child_attach(4, &child(2, "", "c1")));
    r.call(HDR, &l::children_list(4));
    r.call(HDR, &l::children_list(9));
    r.raw(HDR, "rbd", "children_list", vec![]);
    r.call(MISSING, &l::children_list(4));
}
