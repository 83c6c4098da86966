//! RBD format 2, implemented over the RADOS client trait as librbd does
//! it: names, the image header and the limits its values must keep, one
//! open image (ImageCtx) with its object requests, object-map protocol,
//! exclusive lock, snapshots, resize and clones. Ceph's encodings are in
//! `ceph/`; `storage::rbd` presents an image as byte storage.

pub mod check;
pub mod clone;
pub mod copyup;
pub mod create;
pub mod diff;
pub mod extents;
pub mod flatten;
pub mod header;
pub mod image;
pub mod io;
pub mod limits;
pub mod lock;
pub mod name;
pub mod notify;
pub mod object_write;
pub mod resize;
pub mod snapshot;
