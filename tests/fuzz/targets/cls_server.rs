//! The embedded store's object classes, server side: a sequence of
//! cls_rbd and cls_lock method calls with hostile inputs on one object, as
//! a client of the store could send them. Each record of the input is
//! `[method][input length][input]`; the object's state carries over from
//! call to call, so later calls see what earlier ones stored.

use rbdimg::rados::embedded::cls::{self, Caller, Staged};

/// Every method the store runs, as (class, method).
pub const METHODS: &[(&str, &str)] = &[
    ("rbd", "create"),
    ("rbd", "get_size"),
    ("rbd", "set_size"),
    ("rbd", "get_features"),
    ("rbd", "get_object_prefix"),
    ("rbd", "get_data_pool"),
    ("rbd", "get_snapcontext"),
    ("rbd", "get_flags"),
    ("rbd", "set_flags"),
    ("rbd", "get_stripe_unit_count"),
    ("rbd", "get_create_timestamp"),
    ("rbd", "get_access_timestamp"),
    ("rbd", "get_modify_timestamp"),
    ("rbd", "set_access_timestamp"),
    ("rbd", "set_modify_timestamp"),
    ("rbd", "op_features_get"),
    ("rbd", "parent_get"),
    ("rbd", "parent_overlap_get"),
    ("rbd", "snapshot_add"),
    ("rbd", "snapshot_remove"),
    ("rbd", "snapshot_get"),
    ("rbd", "snapshot_rename"),
    ("rbd", "get_protection_status"),
    ("rbd", "set_protection_status"),
    ("rbd", "get_id"),
    ("rbd", "set_id"),
    ("rbd", "dir_add_image"),
    ("rbd", "dir_remove_image"),
    ("rbd", "dir_list"),
    ("rbd", "dir_get_id"),
    ("rbd", "dir_get_name"),
    ("rbd", "dir_state_assert"),
    ("rbd", "dir_state_set"),
    ("rbd", "get_all_features"),
    ("rbd", "metadata_list"),
    ("rbd", "object_map_load"),
    ("rbd", "object_map_save"),
    ("rbd", "object_map_resize"),
    ("rbd", "object_map_update"),
    ("rbd", "object_map_snap_add"),
    ("rbd", "object_map_snap_remove"),
    ("lock", "lock"),
    ("lock", "unlock"),
    ("lock", "break_lock"),
    ("lock", "assert_locked"),
    ("lock", "get_info"),
    ("lock", "list_locks"),
    ("rbd", "no_such_method"),
    ("nope", "create"),
    ("rbd", "parent_attach"),
    ("rbd", "parent_detach"),
    ("rbd", "op_features_set"),
    ("rbd", "snapshot_trash_add"),
    ("rbd", "add_child"),
    ("rbd", "remove_child"),
    ("rbd", "get_children"),
    ("rbd", "child_attach"),
    ("rbd", "child_detach"),
    ("rbd", "children_list"),
];

/// The calls an input encodes.
pub fn calls(data: &[u8]) -> Vec<(&'static str, &'static str, &[u8])> {
    let mut out = Vec::new();
    let mut rest = data;
    while let [pick, len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (class, method) = METHODS[*pick as usize % METHODS.len()];
        out.push((class, method, &tail[..n]));
        rest = &tail[n..];
    }
    out
}

/// True when some call succeeded.
pub fn run(data: &[u8]) -> bool {
    let mut object = Staged {
        caller: Some(Caller { gid: 4, nonce: 7 }),
        clock: Some((1_700_000_000, 0)),
        ..Default::default()
    };
    let mut any = false;
    for (class, method, input) in calls(data) {
        any |= cls::call(&mut object, class, method, input).is_ok();
    }
    any
}
