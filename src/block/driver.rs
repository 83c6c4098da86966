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
use crate::block::dirty_bitmap::PersistentBitmaps;
use crate::block::extent::Extent;
use crate::block::info::NodeInfo;
use crate::block::options::Options;
// Re-exported: the type is part of this trait's vocabulary (`resize`).
pub use crate::block::preallocation::Preallocation;
use crate::block::snapshot::Snapshots;
use crate::block::status::Status;
use crate::error::{Error, Result};

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

    /// Whether writes place new data where they arrive in time (qcow2
    /// appends clusters): in-order copies (convert without `-W`) then
    /// issue each chunk's writes after the previous chunk's have finished,
    /// so the layout is qemu-img's, not a race's.
    fn allocates_in_write_order(&self) -> bool {
        false
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

    /// The smallest unit a write allocates (a qcow2 subcluster); `rebase`
    /// aligns its copies to it.
    fn subcluster_size(&self) -> Option<u64> {
        self.allocation_unit()
    }

    fn backing(&self) -> Option<Arc<dyn BlockDriver>> {
        None
    }

    /// Whether the format can name a backing file at all (QEMU's
    /// `supports_backing`): where it cannot, every range is the image's own.
    fn supports_backing(&self) -> bool {
        false
    }

    /// Names another backing file (`None`: none) in the image's metadata
    /// without touching its data: QEMU's `bdrv_change_backing_file`, where
    /// `rebase` ends. Formats without backing files answer ENOTSUP, as
    /// QEMU's generic code does (an RBD clone's parent is dropped by
    /// `detach_backing` instead).
    fn change_backing_file(&self, _name: Option<&str>, _format: Option<&str>) -> Result<()> {
        Err(Error::not_supported())
    }

    /// Changes format options in place (`amend -o`, already checked against
    /// the format's amend options); `force` allows unsafe changes.
    fn amend(&self, _options: &Options, _force: bool) -> Result<()> {
        Err(Error::not_supported())
    }

    /// Drops every allocation so that the image reads through to its
    /// backing file again (QEMU's `bdrv_make_empty`, after `commit`);
    /// ENOTSUP where the format cannot.
    fn make_empty(&self) -> Result<()> {
        Err(Error::not_supported())
    }

    /// Makes an image whose backing is not a format's (an RBD clone's
    /// parent) standalone, as `rebase -b ''` asks: copies what the parent
    /// provides into it and drops the link (a flatten); `progress` hears
    /// (done, total) as it goes; nothing to do for an RBD image that is no
    /// clone. ENOTSUP where the storage has no such link (a file).
    fn detach_backing(&self, _progress: &(dyn Fn(u64, u64) + Sync)) -> Result<()> {
        Err(Error::not_supported())
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

    /// The image's persistent dirty bitmaps, for formats that keep them.
    fn persistent_bitmaps(&self) -> Option<&dyn PersistentBitmaps> {
        None
    }

    /// What `info` reports about this node and its children.
    fn info(&self) -> Result<NodeInfo>;
}
