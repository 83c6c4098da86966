//! rbdimg: qemu-img's command line over raw, qcow2 and Ceph RBD images.

pub mod block;
pub mod ceph;
pub mod cli;
pub mod commands;
pub mod convert;
pub mod error;
pub mod formats;
pub mod open;
pub mod qjson;
pub mod rados;
pub mod rbd;
pub mod secret;
pub mod size;
pub mod storage;
pub mod strtox;
