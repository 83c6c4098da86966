//! Every reply decoder of the cls_rbd and cls_lock clients (and the object
//! map and notification payloads read from RADOS): the input is a reply an
//! OSD (or a hostile store) could send. The first byte picks the decoder.

use rbdimg::ceph::{cls_lock, cls_rbd, cls_rbd_layering, object_map};
use rbdimg::rbd::notify;

/// The decoders, by name (the stable harness checks that every `decode_*`
/// of cls_rbd.rs, cls_rbd_layering.rs and cls_lock.rs is here).
pub const DECODERS: &[&str] = &[
    "decode_size",
    "decode_features",
    "decode_string",
    "decode_u64",
    "decode_i64",
    "decode_snapcontext",
    "decode_stripe",
    "decode_utime",
    "decode_parent",
    "decode_overlap",
    "decode_snapshot",
    "decode_u8",
    "decode_dir_list",
    "decode_info",
    "ObjectMap::decode",
    "notify::decode",
    "decode_children",
    "decode_child_specs",
];

/// True when the reply decoded.
pub fn run(data: &[u8]) -> bool {
    let Some((&pick, out)) = data.split_first() else {
        return false;
    };
    match DECODERS[pick as usize % DECODERS.len()] {
        "decode_size" => cls_rbd::decode_size(out).is_ok(),
        "decode_features" => cls_rbd::decode_features(out).is_ok(),
        "decode_string" => cls_rbd::decode_string(out).is_ok(),
        "decode_u64" => cls_rbd::decode_u64(out).is_ok(),
        "decode_i64" => cls_rbd::decode_i64(out).is_ok(),
        "decode_snapcontext" => cls_rbd::decode_snapcontext(out).is_ok(),
        "decode_stripe" => cls_rbd::decode_stripe(out).is_ok(),
        "decode_utime" => cls_rbd::decode_utime(out).is_ok(),
        "decode_parent" => cls_rbd::decode_parent(out).is_ok_and(|p| {
            let _ = p.exists();
            true
        }),
        "decode_overlap" => cls_rbd::decode_overlap(out).is_ok(),
        "decode_snapshot" => cls_rbd::decode_snapshot(out).is_ok(),
        "decode_u8" => cls_rbd::decode_u8(out).is_ok(),
        "decode_dir_list" => cls_rbd::decode_dir_list(out).is_ok(),
        "decode_info" => cls_lock::decode_info(out).is_ok_and(|info| {
            info.lockers.iter().for_each(|l| drop(l.entity()));
            true
        }),
        "ObjectMap::decode" => object_map::ObjectMap::decode(out).is_ok(),
        "notify::decode" => notify::decode(out).is_ok(),
        "decode_children" => cls_rbd_layering::decode_children(out).is_ok(),
        "decode_child_specs" => cls_rbd_layering::decode_child_specs(out).is_ok(),
        other => unreachable!("{other}"),
    }
}
