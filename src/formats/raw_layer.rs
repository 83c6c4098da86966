//! The raw format over another format node (`driver=raw,file.driver=raw`,
//! or raw over qcow2): a valid stack in QEMU, where raw passes every
//! request through to its child. Its name is the `json:` of the whole
//! stack below it, as QEMU names a node whose child is not a plain file.
//!
//! ```text
//!   raw (this)  --file-->  raw | qcow2 | rbd node  --file-->  storage
//! ```

use std::sync::Arc;

use serde_json::Value;

use crate::image::driver::{BlockDriver, Preallocation};
use crate::image::error::Result;
use crate::image::extent::Extent;
use crate::image::info::NodeInfo;
use crate::image::snapshot::SnapshotInfo;
use crate::qjson;

pub struct RawLayer {
    file: Arc<dyn BlockDriver>,
    name: String,
}

impl RawLayer {
    /// `options` are QEMU's full open options of this node (its driver
    /// and its child's), which name it.
    pub fn over(file: Arc<dyn BlockDriver>, options: &Value) -> Arc<dyn BlockDriver> {
        Arc::new(RawLayer {
            file,
            name: format!("json:{}", qjson::to_compact_string(options)),
        })
    }
}

impl BlockDriver for RawLayer {
    fn format_name(&self) -> &'static str {
        "raw"
    }

    fn filename(&self) -> &str {
        &self.name
    }

    fn size(&self) -> u64 {
        self.file.size()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.file.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.file.write_at(buf, offset)
    }

    fn write_zeroes(&self, offset: u64, len: u64, may_unmap: bool) -> Result<()> {
        self.file.write_zeroes(offset, len, may_unmap)
    }

    fn discard(&self, offset: u64, len: u64) -> Result<()> {
        self.file.discard(offset, len)
    }

    fn flush(&self) -> Result<()> {
        self.file.flush()
    }

    fn resize(&self, new_size: u64, prealloc: Preallocation) -> Result<()> {
        self.file.resize(new_size, prealloc)
    }

    fn block_status(&self, offset: u64, len: u64) -> Result<Extent> {
        self.file.block_status(offset, len)
    }

    fn allocation_unit(&self) -> Option<u64> {
        self.file.allocation_unit()
    }

    // Raw has no snapshots of its own: QEMU falls back to the file child.
    fn snapshots(&self) -> Result<Option<Vec<SnapshotInfo>>> {
        self.file.snapshots()
    }

    fn snapshot_create(&self, name: &str) -> Result<()> {
        self.file.snapshot_create(name)
    }

    fn snapshot_apply(&self, id: &str) -> Result<()> {
        self.file.snapshot_apply(id)
    }

    fn snapshot_delete(&self, id: &str) -> Result<()> {
        self.file.snapshot_delete(id)
    }

    fn snapshot_open(&self, id: &str) -> Result<Arc<dyn BlockDriver>> {
        self.file.snapshot_open(id)
    }

    fn info(&self) -> Result<NodeInfo> {
        let file = self.file.info()?;
        Ok(NodeInfo {
            filename: self.name.clone(),
            format: "raw".to_string(),
            virtual_size: self.size(),
            actual_size: file.actual_size,
            dirty_flag: Some(false),
            // bdrv_get_info and the snapshot list pass through raw to its
            // child.
            cluster_size: file.cluster_size,
            snapshots: file.snapshots.clone(),
            children: vec![("file".to_string(), file)],
            ..Default::default()
        })
    }
}
