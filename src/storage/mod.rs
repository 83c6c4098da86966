//! Byte storage under the image formats (QEMU's protocol layer): a local
//! file or an RBD image, or (for raw only) another format node. A format
//! only describes where guest bytes live; the storage holds them.
//!
//! ```text
//!   raw / qcow2 (formats)
//!        |  Arc<dyn Storage>
//!        v
//!   +-------------+   +--------------------------------+   +-------------------+
//!   | file.rs     |   | rbd.rs: an RBD image as bytes  |   | node.rs: a format |
//!   | LocalFile   |   | RbdStorage -> rbd::RbdImage    |   | node under raw    |
//!   +-------------+   +--------------------------------+   +-------------------+
//! ```
//!
//! The semantics every storage keeps (the conformance tests check them):
//! reads past the end return zeros; writes past the end grow the storage
//! (a format node's fail instead, as in QEMU);
//! `zero_range` keeps the range allocated, `discard` may deallocate it, and
//! both make it read as zeros; `set_len` truncates or grows with the given
//! preallocation. Like `BlockDriver`, every method takes `&self`: one
//! storage serves many threads at once.

pub mod file;
pub mod node;
pub mod rbd;

use std::ops::Range;
use std::sync::Arc;

use crate::block::driver::{Check, Preallocation};
use crate::block::extent::Extent;
use crate::block::info::NodeInfo;
use crate::block::snapshot::Snapshots;
use crate::block::status::Status;
use crate::error::{Error, Result};

/// What a storage reads through to where it holds nothing itself (an RBD
/// clone's parent snapshot): the block layer shows it as the image's
/// backing file.
pub struct Backing {
    /// The name `info` shows, e.g. `rbd:pool/golden@base`.
    pub name: String,
    /// The name that opens it, with this storage's connection options.
    pub full_name: String,
    pub storage: Arc<dyn Storage>,
}

/// Byte storage; its snapshots and check are the storage's own (RBD's, or
/// the format node's): a format without snapshots of its own passes them
/// through, as QEMU's `bdrv_snapshot_*` fall back to the file child.
pub trait Storage: Snapshots + Check + Send + Sync {
    /// The protocol's name, as `-f` and `info` know it ("file", "rbd").
    fn protocol(&self) -> &'static str;

    /// The name `info` shows for this node: a path, or a `json:{...}` name
    /// when the storage cannot be named by a plain string.
    fn filename(&self) -> &str;

    /// The length in bytes.
    fn length(&self) -> Result<u64>;

    /// Fills `buf` from `offset`; bytes past the end read as zeros.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()>;

    /// Writes `buf` at `offset`, growing the storage when it ends past the end.
    fn write_at(&self, buf: &[u8], offset: u64) -> Result<()>;

    /// Makes the range read as zeros and keeps it allocated.
    fn zero_range(&self, offset: u64, len: u64) -> Result<()>;

    /// Makes the range read as zeros, deallocating what the storage can.
    fn discard(&self, offset: u64, len: u64) -> Result<()>;

    /// Makes every completed write durable.
    fn flush(&self) -> Result<()>;

    /// Truncates or grows to `size`; new space is laid out per `prealloc`.
    fn set_len(&self, size: u64, prealloc: Preallocation) -> Result<()>;

    /// The status of the longest run at `offset` with one status, clipped
    /// to `len`; past the end the storage reads as unallocated zeros.
    fn block_status(&self, offset: u64, len: u64) -> Result<Extent>;

    /// What `map` reports of the run at `offset`: data or zeros at that
    /// same offset of this storage (QEMU's protocol-level block status).
    fn map_status(&self, offset: u64, len: u64) -> Result<Status> {
        let extent = self.block_status(offset, len)?;
        let data = !extent.allocation.reads_as_zero();
        Ok(Status::protocol(extent.len, data, self.filename(), offset))
    }

    /// `read_at`, returning the parts of `buf` the storage stores, in
    /// order (the rest reads as zeros): for storage kept in objects (RBD),
    /// what the objects hold; librbd's encryption decrypts only that.
    fn read_stored(&self, buf: &mut [u8], offset: u64) -> Result<Vec<Range<usize>>> {
        self.read_at(buf, offset)?;
        Ok(std::iter::once(0..buf.len()).collect())
    }

    /// The storage's natural allocation unit (an RBD object), if it has one.
    fn allocation_unit(&self) -> Option<u64> {
        None
    }

    /// The protocol node of `info`.
    fn node_info(&self) -> Result<NodeInfo>;

    /// What the storage reads through to, if anything.
    fn backing(&self) -> Option<Backing> {
        None
    }

    /// Copies what the backing provides into this storage and drops the
    /// link (an RBD clone's flatten); `progress` hears (done, total) units
    /// of work as it goes. A storage without a backing stays as it is.
    fn flatten(&self, _progress: &(dyn Fn(u64, u64) + Sync)) -> Result<()> {
        Err(Error::not_supported())
    }
}
