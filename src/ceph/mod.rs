//! Ceph's wire formats and identifiers, shared by the RBD client and the
//! RADOS backends: the encoding, object-class calls (cls_rbd and cls_lock
//! encode/decode halves), feature bits, the object map, errno codes.

pub mod call;
pub mod cls_lock;
pub mod cls_rbd;
pub mod cls_rbd_layering;
pub mod encoding;
pub mod errno;
pub mod features;
pub mod object_map;

pub use call::Call;

/// The head of an image, as a snapshot id (`CEPH_NOSNAP`).
pub const NOSNAP: u64 = 0xFFFF_FFFF_FFFF_FFFE;
