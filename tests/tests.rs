//! The integration test binary: every module runs the built rbdimg, most of
//! them side by side with the real qemu-img.

mod rng;
mod util;

mod amend;
mod bench;
mod bitmap;
mod ceph;
mod cli;
mod commit;
mod compare;
mod conformance;
mod convert;
mod convert_salvage;
mod create;
mod dd;
mod docs;
mod fixtures;
mod habits;
mod info;
mod luks;
mod luks_amend;
mod luks_backing;
mod map;
mod measure;
mod names;
mod progress;
mod qcow2;
mod qcow2_aes;
mod qcow2_corrupt;
mod qcow2_luks;
mod rados;
mod raw_options;
mod rbd;
mod rebase;
mod resize;
mod snapshot;
