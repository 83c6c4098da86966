//! Image formats stored in local files, and the table of format names
//! qemu-img knows.

pub mod probe;
pub mod qcow2;
pub mod raw;

use crate::image::error::{Error, ErrorKind, Result};
use crate::image::options::OptDesc;

/// Format names qemu-img accepts with -f/-O. Those we do not implement are
/// known here so that using one is "not supported", not "unknown".
const QEMU_FORMATS: &[&str] = &[
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

/// What a format name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Found(Format),
    /// A format qemu-img knows that this build does not implement.
    NotImplemented,
    /// A name nobody knows.
    Unknown,
}

/// A format this build implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Raw,
    /// The `file` protocol node used directly as an image (`driver=file`).
    File,
    Qcow2,
}

impl Format {
    /// Looks up a `-f`/`-O` name.
    pub fn lookup(name: &str) -> Lookup {
        match name {
            "raw" => Lookup::Found(Format::Raw),
            "file" => Lookup::Found(Format::File),
            "qcow2" => Lookup::Found(Format::Qcow2),
            _ if QEMU_FORMATS.contains(&name) => Lookup::NotImplemented,
            _ => Lookup::Unknown,
        }
    }

    /// Looks up a name for creating or converting: errors worded as qemu-img's.
    pub fn for_output(name: &str) -> Result<Format> {
        match Format::lookup(name) {
            Lookup::Found(f) => Ok(f),
            Lookup::NotImplemented => Err(Error::new(
                ErrorKind::UnsupportedFeature,
                format!("Image format '{name}' is not supported by rbdimg"),
            )),
            Lookup::Unknown => Err(Error::invalid(format!("Unknown file format '{name}'"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::File => "file",
            Format::Qcow2 => "qcow2",
        }
    }

    /// The format's own `-o` options (what `-o help` lists without a filename).
    pub fn format_options(self) -> &'static [OptDesc] {
        match self {
            Format::Raw => raw::FORMAT_OPTIONS,
            Format::File => raw::CREATE_OPTIONS,
            Format::Qcow2 => qcow2::FORMAT_OPTIONS,
        }
    }

    /// Every `-o` option, the storage's included, in "Formatting" line order.
    pub fn create_options(self) -> &'static [OptDesc] {
        match self {
            Format::Raw | Format::File => raw::CREATE_OPTIONS,
            Format::Qcow2 => qcow2::CREATE_OPTIONS,
        }
    }

    pub fn supports_backing(self) -> bool {
        match self {
            Format::Raw | Format::File => false,
            Format::Qcow2 => true,
        }
    }

    pub fn supports_compression(self) -> bool {
        match self {
            Format::Raw | Format::File => false,
            Format::Qcow2 => true,
        }
    }
}
