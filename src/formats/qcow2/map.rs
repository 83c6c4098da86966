//! What `map` reports of a qcow2 range: QEMU's `qcow2_co_block_status`
//! plus what the generic block layer adds for a format with a backing
//! file (`bdrv_co_do_block_status`): unallocated ranges read as zeros
//! without a backing image or past its end, and in an image whose
//! clusters were preallocated as metadata only, the data file's holes
//! are zeros.

use crate::block::SECTOR;
use crate::block::status::{Host, Status};
use crate::error::Result;
use crate::formats::qcow2::Qcow2Image;
use crate::formats::qcow2::tables::SubclusterType;

impl Qcow2Image {
    pub(super) fn status_of(&self, offset: u64, len: u64) -> Result<Status> {
        let run = self.lock().run(offset, len)?;
        let mut status = Status::backing(run.len.clamp(1, len));
        let host = || Host {
            file: self.data().filename().to_string(),
            offset: run.host,
        };
        match run.kind {
            SubclusterType::Normal => (status.data, status.host) = (true, Some(host())),
            SubclusterType::ZeroAlloc => (status.zero, status.host) = (true, Some(host())),
            SubclusterType::UnallocatedAlloc => status.host = Some(host()),
            SubclusterType::ZeroPlain => status.zero = true,
            SubclusterType::Compressed => (status.data, status.compressed) = (true, true),
            SubclusterType::UnallocatedPlain | SubclusterType::Invalid => {}
        }
        // QEMU shows no host offset of encrypted data (it is not the
        // guest's bytes).
        if self.crypto.is_some() {
            status.host = None;
        }
        if status.data || status.zero {
            status.allocated = true;
        } else {
            status.zero = self.backing.as_ref().is_none_or(|b| offset >= b.size());
        }
        if status.data
            && let Some(host) = &status.host
            && *self
                .metadata_preallocated
                .get_or_init(|| self.detect_preallocation())
        {
            // The data file knows which preallocated clusters hold nothing.
            let file = self.data();
            let there = file.map_status(host.offset, status.len)?;
            let file_end = file.length()?.div_ceil(SECTOR) * SECTOR;
            if !(there.zero && host.offset + there.len >= file_end) {
                status.len = there.len.min(status.len);
            }
            status.zero = there.zero;
        }
        Ok(status)
    }

    /// QEMU's `qcow2_detect_metadata_preallocation`: far more clusters in
    /// use than the file has allocated (a heuristic; only local files tell
    /// their allocation).
    fn detect_preallocation(&self) -> bool {
        if self.file.protocol() != "file" {
            return false;
        }
        let Ok(info) = self.file.node_info() else {
            return false;
        };
        let (Some(allocated), Ok(length)) = (info.actual_size, self.file.length()) else {
            return false;
        };
        let g = self.geometry();
        let real_clusters = allocated / g.cluster_size;
        let threshold = (real_clusters * 10 / 9).max(real_clusters + 2);
        let mut meta = self.lock();
        let mut in_use = 0;
        for cluster in 0..g.size_to_clusters(length) {
            if in_use >= threshold {
                break;
            }
            match meta.get_refcount(cluster) {
                Ok(0) => {}
                Ok(_) => in_use += 1,
                Err(_) => return false,
            }
        }
        in_use >= threshold
    }
}
