//! The seam every image format plugs into.
//!
//! ```text
//!   commands (info, convert, resize, snapshot, check)
//!        |  Arc<dyn BlockDriver>
//!        v
//!   +-----------+   +-------------+   +-------------+
//!   | raw file  |   | qcow2 file  |   | rbd image   |   ...one per format
//!   +-----------+   +-------------+   +-------------+
//!                          | backing: Arc<dyn BlockDriver> (any format)
//! ```
//!
//! A driver is shared by many convert workers at once, so every method takes
//! `&self`; drivers keep their metadata behind their own locks and do data
//! I/O outside them.

use std::sync::Arc;

use crate::block::diagnostics::Diagnostic;
use crate::block::extent::Extent;
use crate::block::info::NodeInfo;
use crate::block::snapshot::Snapshots;
use crate::block::status::Status;
use crate::error::{Error, Result};

/// How `resize` and `create` lay out new space (qemu's `PreallocMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preallocation {
    #[default]
    Off,
    Metadata,
    Falloc,
    Full,
}

impl Preallocation {
    pub fn parse(text: &str) -> Option<Preallocation> {
        Some(match text {
            "off" => Preallocation::Off,
            "metadata" => Preallocation::Metadata,
            "falloc" => Preallocation::Falloc,
            "full" => Preallocation::Full,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Preallocation::Off => "off",
            Preallocation::Metadata => "metadata",
            Preallocation::Falloc => "falloc",
            Preallocation::Full => "full",
        }
    }
}

/// Result of a consistency check (`qemu-img check`'s `ImageCheck`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub corruptions: u64,
    pub leaks: u64,
    pub check_errors: u64,
    pub corruptions_fixed: u64,
    pub leaks_fixed: u64,
    pub image_end_offset: Option<u64>,
    pub total_clusters: Option<u64>,
    pub allocated_clusters: Option<u64>,
    pub fragmented_clusters: Option<u64>,
    pub compressed_clusters: Option<u64>,
    /// What the check found, one line each, printed before the summary.
    pub messages: Vec<Diagnostic>,
}

/// What `check -r` may repair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    None,
    Leaks,
    All,
}

/// A consistency check of an image's or a storage's own metadata (a
/// capability of both `BlockDriver` and `Storage`): none by default.
pub trait Check {
    /// `qemu-img check`; without a check of its own, `Unsupported`.
    fn check(&self, _repair: Repair) -> Result<CheckReport> {
        Err(Error::unsupported(
            "This image format does not support checks",
        ))
    }
}

/// An open image: bytes at guest offsets, their allocation, and (through
/// its capabilities) snapshots and a consistency check.
pub trait BlockDriver: Snapshots + Check + Send + Sync {
    /// The format name qemu-img prints ("raw", "qcow2").
    fn format_name(&self) -> &'static str;

    /// The name the image was opened by.
    fn filename(&self) -> &str;

    /// Guest-visible size in bytes.
    fn size(&self) -> u64;

    /// Fills `buf` from guest offset `offset`; reads past the end fail.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()>;

    fn write_at(&self, buf: &[u8], offset: u64) -> Result<()>;

    /// Writes one allocation unit (the last one of the image may be short)
    /// compressed, for `convert -c`; formats without compression write it
    /// as is.
    fn write_compressed(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.write_at(buf, offset)
    }

    /// Makes `[offset, offset+len)` read as zeros; `may_unmap` lets the
    /// driver deallocate instead of writing zeros.
    fn write_zeroes(&self, offset: u64, len: u64, may_unmap: bool) -> Result<()>;

    /// Hints that the range is no longer needed; contents become unspecified
    /// in general, but every driver here makes it read as zeros.
    fn discard(&self, offset: u64, len: u64) -> Result<()>;

    fn flush(&self) -> Result<()>;

    fn resize(&self, new_size: u64, prealloc: Preallocation) -> Result<()>;

    /// The status of the longest run starting at `offset` that has a single
    /// status, clipped to `len` (which must be > 0 and within the image).
    fn block_status(&self, offset: u64, len: u64) -> Result<Extent>;

    /// What `map` reports of the run at `offset` in this layer alone
    /// (QEMU's `bdrv_block_status`), clipped to `len` (> 0, within the
    /// image). Without host offsets of its own, a format derives it from
    /// `block_status`.
    fn map_status(&self, offset: u64, len: u64) -> Result<Status> {
        let extent = self.block_status(offset, len)?;
        let beyond_backing = self.backing().is_some_and(|b| offset >= b.size());
        Ok(Status::from_extent(&extent, beyond_backing))
    }

    /// The image's natural allocation unit (cluster, object), if it has one.
    fn allocation_unit(&self) -> Option<u64> {
        None
    }

    fn backing(&self) -> Option<Arc<dyn BlockDriver>> {
        None
    }

    /// Whether a newly created image reads as zeros (QEMU's
    /// `bdrv_has_zero_init`): a fresh LUKS volume reads as decrypted
    /// garbage, so convert must write its zeros.
    fn has_zero_init(&self) -> bool {
        true
    }

    /// A read-only view of the snapshot with this id, for `convert -l`.
    fn snapshot_open(&self, _id: &str) -> Result<Arc<dyn BlockDriver>> {
        Err(Error::not_supported())
    }

    /// What `info` reports about this node and its children.
    fn info(&self) -> Result<NodeInfo>;
}
