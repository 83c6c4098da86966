//! The integration test binary: every module runs the built rbdimg, most of
//! them side by side with the real qemu-img.

mod rng;
mod util;

mod bench;
mod ceph;
mod cli;
mod compare;
mod conformance;
mod convert;
mod create;
mod dd;
mod docs;
mod fixtures;
mod habits;
mod info;
mod luks;
mod map;
mod measure;
mod names;
mod progress;
mod qcow2;
mod qcow2_corrupt;
mod qcow2_luks;
mod rados;
mod raw_options;
mod rbd;
mod resize;
mod snapshot;
