//! A format node as the storage of the raw format above it: QEMU's raw
//! driver may sit on any node, not only on a protocol
//! (`driver=raw,file.driver=raw,...`, raw over qcow2), and then passes its
//! requests through to that node, within its `offset`/`size` window.
//!
//! ```text
//!   raw (formats/raw.rs)  --Storage-->  NodeStorage  --BlockDriver-->  raw | qcow2 node
//! ```
//!
//! Unlike a file or an RBD image, a format node does not grow when written
//! past its end (the write fails, as it does in QEMU); reads past the end
//! read zeros, as from any storage.

use std::sync::Arc;

use crate::block::BlockDriver;
use crate::block::driver::{Check, CheckReport, Preallocation, Repair};
use crate::block::extent::{Allocation, Extent};
use crate::block::info::NodeInfo;
use crate::block::snapshot::{SnapshotInfo, Snapshots};
use crate::block::status::Status;
use crate::error::Result;
use crate::storage::Storage;

pub struct NodeStorage {
    node: Arc<dyn BlockDriver>,
}

impl NodeStorage {
    pub fn new(node: Arc<dyn BlockDriver>) -> NodeStorage {
        NodeStorage { node }
    }
}

impl Storage for NodeStorage {
    /// The node's format: what `-f` would name the layer below.
    fn protocol(&self) -> &'static str {
        self.node.format_name()
    }

    fn filename(&self) -> &str {
        self.node.filename()
    }

    fn length(&self) -> Result<u64> {
        Ok(self.node.size())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let inside = self
            .node
            .size()
            .saturating_sub(offset)
            .min(buf.len() as u64) as usize;
        let (head, tail) = buf.split_at_mut(inside);
        if !head.is_empty() {
            self.node.read_at(head, offset)?;
        }
        tail.fill(0);
        Ok(())
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.node.write_at(buf, offset)
    }

    fn zero_range(&self, offset: u64, len: u64) -> Result<()> {
        self.node.write_zeroes(offset, len, false)
    }

    fn discard(&self, offset: u64, len: u64) -> Result<()> {
        self.node.discard(offset, len)
    }

    fn flush(&self) -> Result<()> {
        self.node.flush()
    }

    fn set_len(&self, size: u64, prealloc: Preallocation) -> Result<()> {
        self.node.resize(size, prealloc)
    }

    fn block_status(&self, offset: u64, len: u64) -> Result<Extent> {
        let size = self.node.size();
        if offset >= size {
            return Ok(Extent {
                offset,
                len,
                allocation: Allocation::Unallocated,
            });
        }
        self.node.block_status(offset, len.min(size - offset))
    }

    /// The node's own status (its host offsets are in its files); past its
    /// end, zeros.
    fn map_status(&self, offset: u64, len: u64) -> Result<Status> {
        let size = self.node.size();
        if offset >= size {
            let mut zeros = Status::backing(len);
            (zeros.zero, zeros.allocated) = (true, true);
            return Ok(zeros);
        }
        self.node.map_status(offset, len.min(size - offset))
    }

    fn allocation_unit(&self) -> Option<u64> {
        self.node.allocation_unit()
    }

    fn node_info(&self) -> Result<NodeInfo> {
        self.node.info()
    }
}

/// Snapshots are the node's: QEMU's raw falls back to its child for them.
impl Snapshots for NodeStorage {
    fn snapshots(&self) -> Result<Option<Vec<SnapshotInfo>>> {
        self.node.snapshots()
    }

    fn snapshot_create(&self, name: &str) -> Result<()> {
        self.node.snapshot_create(name)
    }

    fn snapshot_apply(&self, id: &str) -> Result<()> {
        self.node.snapshot_apply(id)
    }

    fn snapshot_delete(&self, id: &str) -> Result<()> {
        self.node.snapshot_delete(id)
    }
}

impl Check for NodeStorage {
    fn check(&self, repair: Repair) -> Result<CheckReport> {
        self.node.check(repair)
    }
}
