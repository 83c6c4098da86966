//! Ceph's wire formats, shared by the RBD client and the RADOS backends:
//! the encoding, the cls_rbd and cls_lock method calls, the object map.

pub mod cls_lock;
pub mod cls_rbd;
pub mod encoding;
pub mod object_map;
