//! The table of format names qemu-img knows.

use crate::block::driver_names;
use crate::block::options::OptDesc;
use crate::error::{Error, ErrorKind, Result};

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
    /// The `rbd` protocol node used directly as an image (`-f rbd`).
    Rbd,
    Qcow2,
    /// QEMU's `luks` format: a LUKS1 volume.
    Luks,
}

/// Where a new image will be stored, which adds the storage's own options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    File,
    Rbd,
}

impl Format {
    /// Looks up a `-f`/`-O` name.
    pub fn lookup(name: &str) -> Lookup {
        match name {
            "raw" => Lookup::Found(Format::Raw),
            "file" => Lookup::Found(Format::File),
            "rbd" => Lookup::Found(Format::Rbd),
            "qcow2" => Lookup::Found(Format::Qcow2),
            "luks" => Lookup::Found(Format::Luks),
            _ if driver_names::is_qemu_driver(name) => Lookup::NotImplemented,
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
            Format::Rbd => "rbd",
            Format::Qcow2 => "qcow2",
            Format::Luks => "luks",
        }
    }

    /// The format's own `-o` options (what `-o help` lists without a filename).
    pub fn format_options(self) -> &'static [OptDesc] {
        match self {
            Format::Raw => crate::formats::raw::FORMAT_OPTIONS,
            Format::File => crate::storage::file::CREATE_OPTIONS,
            Format::Rbd => crate::storage::rbd::CREATE_OPTIONS,
            Format::Qcow2 => crate::formats::qcow2::FORMAT_OPTIONS,
            Format::Luks => crate::formats::luks::options::FORMAT_OPTIONS,
        }
    }

    /// Every `-o` option for an image stored in `storage`: the format's,
    /// then the storage's not already named (QEMU's `qemu_opts_append`),
    /// which is also the order of the "Formatting" line.
    pub fn create_options(self, storage: Storage) -> Vec<OptDesc> {
        let storage_options = match storage {
            Storage::File => crate::storage::file::CREATE_OPTIONS,
            Storage::Rbd => crate::storage::rbd::CREATE_OPTIONS,
        };
        let mut all = self.format_options().to_vec();
        for desc in storage_options {
            if !all.iter().any(|d| d.name == desc.name) {
                all.push(*desc);
            }
        }
        all
    }

    /// The options `amend` takes, for formats that can amend.
    pub fn amend_options(self) -> Option<&'static [OptDesc]> {
        match self {
            Format::Qcow2 => Some(crate::formats::qcow2::amend::AMEND_OPTIONS),
            Format::Luks => Some(crate::formats::luks::keyslots::AMEND_OPTIONS),
            _ => None,
        }
    }

    /// Whether an image of this format, stored in `storage`, may have a
    /// backing file: qcow2, and (rbdimg's extension) a raw RBD image, as a
    /// clone of an RBD snapshot.
    pub fn supports_backing(self, storage: Storage) -> bool {
        match self {
            Format::Qcow2 => true,
            Format::Raw | Format::Rbd => storage == Storage::Rbd,
            Format::File | Format::Luks => false,
        }
    }

    pub fn supports_compression(self) -> bool {
        self == Format::Qcow2
    }
}
