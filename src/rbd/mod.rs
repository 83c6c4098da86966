//! RBD format 2, implemented over the RADOS client trait: names, Ceph's
//! encodings, the cls_rbd/cls_lock calls, the object map, and the image
//! driver itself.

pub mod check;
pub mod cls_lock;
pub mod cls_rbd;
pub mod create;
pub mod encoding;
pub mod header;
pub mod image;
pub mod io;
pub mod limits;
pub mod lock;
pub mod name;
pub mod notify;
pub mod object_map;
pub mod resize;
pub mod snapshot;
