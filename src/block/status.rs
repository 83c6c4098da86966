//! What one layer of an image says about a guest range, in the detail
//! `qemu-img map` prints: QEMU's block-status flags (`BDRV_BLOCK_DATA`,
//! `_ZERO`, `_ALLOCATED`, `_COMPRESSED`) and, where a file holds the bytes
//! at a known place, that file and offset (`_OFFSET_VALID`).
//!
//! ```text
//!   map (commands)  -->  BlockDriver::map_status   (a format: raw, qcow2)
//!                            |  raw passes through; qcow2 names its data file
//!                            v
//!                        Storage::map_status       (a file's holes, an RBD
//!                                                   image's object map)
//! ```
//!
//! `Extent`/`Allocation` stay the convert engine's coarser view; both
//! describe the same layout.

use crate::block::extent::{Allocation, Extent};

/// Where a range's bytes lie: a file (by the name QEMU shows for it) and
/// the offset in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub file: String,
    pub offset: u64,
}

/// The status of the run `[offset, offset + len)` in one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub len: u64,
    /// Reads return stored bytes (`BDRV_BLOCK_DATA`).
    pub data: bool,
    /// Reads return zeros (`BDRV_BLOCK_ZERO`).
    pub zero: bool,
    /// This layer decides what the range reads (`BDRV_BLOCK_ALLOCATED`:
    /// `map`'s "present"); when neither data nor zero, reads go to the
    /// backing image.
    pub allocated: bool,
    pub compressed: bool,
    pub host: Option<Host>,
}

impl Status {
    /// A run whose reads come from the backing image.
    pub fn backing(len: u64) -> Status {
        Status {
            len,
            data: false,
            zero: false,
            allocated: false,
            compressed: false,
            host: None,
        }
    }

    /// What a protocol layer (a file, an RBD image) reports: data or
    /// zeros, always at the same offset of itself.
    pub fn protocol(len: u64, data: bool, file: &str, offset: u64) -> Status {
        Status {
            len,
            data,
            zero: !data,
            allocated: true,
            compressed: false,
            host: Some(Host {
                file: file.to_string(),
                offset,
            }),
        }
    }

    /// The detail a plain allocation extent implies, for a format layer
    /// that keeps no host offsets; `beyond_backing` says the range starts
    /// past the end of the backing image (it then reads as zeros).
    pub fn from_extent(extent: &Extent, beyond_backing: bool) -> Status {
        let mut status = Status::backing(extent.len);
        match extent.allocation {
            Allocation::Data => (status.data, status.allocated) = (true, true),
            Allocation::Zero => (status.zero, status.allocated) = (true, true),
            Allocation::Unallocated => status.zero = true,
            Allocation::Backing => status.zero = beyond_backing,
        }
        status
    }
}
