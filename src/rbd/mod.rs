//! RBD format 2, implemented over the RADOS client trait: names, Ceph's
//! encodings, the cls_rbd/cls_lock calls, the object map, and the image
//! driver itself.

pub mod check;
pub mod create;
pub mod header;
pub mod image;
pub mod io;
pub mod lock;
pub mod name;
pub mod notify;
pub mod resize;
pub mod snapshot;
