//! The block driver names QEMU knows (QAPI's `BlockdevDriver`): those this
//! build does not implement are still known, so that using one is "not
//! supported", not "unknown".

/// Every driver name qemu-img accepts with -f/-O.
const QEMU_DRIVERS: &[&str] = &[
    "blkdebug",
    "blklogwrites",
    "blkverify",
    "bochs",
    "cloop",
    "compress",
    "copy-before-write",
    "copy-on-read",
    "dmg",
    "file",
    "ftp",
    "ftps",
    "host_cdrom",
    "host_device",
    "http",
    "https",
    "iscsi",
    "luks",
    "nbd",
    "nfs",
    "null-aio",
    "null-co",
    "nvme",
    "parallels",
    "preallocate",
    "qcow",
    "qcow2",
    "qed",
    "quorum",
    "raw",
    "rbd",
    "snapshot-access",
    "ssh",
    "throttle",
    "vdi",
    "vhdx",
    "vmdk",
    "vpc",
    "vvfat",
];

pub fn is_qemu_driver(name: &str) -> bool {
    QEMU_DRIVERS.contains(&name)
}

/// The drivers qemu-img can create images with (those with create options).
const CREATING_DRIVERS: &[&str] = &[
    "file",
    "host_cdrom",
    "host_device",
    "iscsi",
    "luks",
    "nbd",
    "nfs",
    "nvme",
    "parallels",
    "qcow",
    "qcow2",
    "qed",
    "raw",
    "rbd",
    "ssh",
    "vdi",
    "vhdx",
    "vmdk",
    "vpc",
];

pub fn creates_images(name: &str) -> bool {
    CREATING_DRIVERS.contains(&name)
}
