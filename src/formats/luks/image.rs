//! QEMU's `luks` format: a LUKS1 volume's header at byte 0 of any storage
//! (a file, an RBD image), its payload after it as the guest disk.

use std::sync::Arc;

use crate::block::driver::{BlockDriver, Check, Preallocation};
use crate::block::extent::{Allocation, Extent};
use crate::block::info::{NodeInfo, format_node_filename};
use crate::block::options::Options;
use crate::block::snapshot::Snapshots;
use crate::block::status::Status;
use crate::error::{Error, ErrorKind, Result};
use crate::storage::Storage;

use super::header::SECTOR;
use super::keyslots;
use super::payload::{Holes, Payload};
use super::volume::Volume;

/// Opens the volume at the start of `storage`; unlocked when a passphrase
/// is given.
pub fn open_volume(storage: &dyn Storage, passphrase: Option<&[u8]>) -> Result<Volume> {
    let read = |buf: &mut [u8], offset: u64| storage.read_at(buf, offset);
    Volume::open(&read, passphrase)
}

/// QEMU's `luks` block driver.
pub struct LuksImage {
    /// The storage and, once unlocked, the payload over it.
    storage: Arc<dyn Storage>,
    payload: Option<Payload>,
    /// The node's options that show in its `json:` name (`key-secret`).
    given: serde_json::Map<String, serde_json::Value>,
    volume_info: serde_json::Map<String, serde_json::Value>,
    payload_offset: u64,
}

impl LuksImage {
    /// Opens the volume; without a passphrase it can only describe itself
    /// (`info`). `key_secret` is the id the passphrase was named by, a
    /// runtime option of the node's name.
    pub fn open(
        storage: Arc<dyn Storage>,
        key_secret: Option<&str>,
        passphrase: Option<&[u8]>,
    ) -> Result<Arc<dyn BlockDriver>> {
        let volume = open_volume(storage.as_ref(), passphrase)?;
        let volume_info = volume.info();
        let payload_offset = volume.payload_offset;
        // QEMU's `block_crypto_co_getlength`: a file shorter than its
        // header has no length.
        if storage.length()? < payload_offset {
            return Err(Error::errno(
                ErrorKind::CorruptImage,
                "Could not refresh total sector count",
                libc::EIO,
            ));
        }
        let payload = volume.cipher.map(|cipher| {
            Payload::new(
                storage.clone(),
                payload_offset,
                SECTOR,
                cipher,
                Holes::Decrypted,
            )
        });
        let mut given = serde_json::Map::new();
        if let Some(id) = key_secret {
            given.insert("key-secret".into(), id.into());
        }
        Ok(Arc::new(LuksImage {
            storage,
            payload,
            given,
            volume_info,
            payload_offset,
        }))
    }

    fn payload(&self) -> Result<&Payload> {
        self.payload
            .as_ref()
            .ok_or_else(|| Error::invalid("Parameter 'key-secret' is required for cipher"))
    }

    fn check_range(&self, offset: u64, len: u64) -> Result<()> {
        if offset.checked_add(len).is_none_or(|end| end > self.size()) {
            return Err(Error::new(
                ErrorKind::OutOfBounds,
                format!("Access beyond end of image '{}'", self.storage.filename()),
            )
            .with_offset(offset));
        }
        Ok(())
    }
}

impl BlockDriver for LuksImage {
    fn format_name(&self) -> &'static str {
        "luks"
    }

    fn filename(&self) -> &str {
        self.storage.filename()
    }

    /// The file past the header, rounded up to whole sectors as QEMU's
    /// `bdrv_getlength` counts them (a resize to a size that is not a
    /// multiple of 512 leaves the file that size).
    fn size(&self) -> u64 {
        let total = self.storage.length().unwrap_or(0);
        total
            .saturating_sub(self.payload_offset)
            .next_multiple_of(512)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.check_range(offset, buf.len() as u64)?;
        self.payload()?.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.check_range(offset, buf.len() as u64)?;
        self.payload()?.write_at(buf, offset)
    }

    fn write_zeroes(&self, offset: u64, len: u64, _may_unmap: bool) -> Result<()> {
        self.check_range(offset, len)?;
        self.payload()?.write_zeroes(offset, len)
    }

    fn discard(&self, offset: u64, len: u64) -> Result<()> {
        self.write_zeroes(offset, len, true)
    }

    fn flush(&self) -> Result<()> {
        self.storage.flush()
    }

    /// QEMU's `block_crypto_co_truncate`: the file becomes the header plus
    /// exactly `new_size`.
    fn resize(&self, new_size: u64, prealloc: Preallocation) -> Result<()> {
        self.payload()?;
        self.storage
            .set_len(self.payload_offset + new_size, prealloc)
    }

    /// QEMU's luks driver reports every byte as data: ciphertext says
    /// nothing about zeros.
    fn block_status(&self, offset: u64, len: u64) -> Result<Extent> {
        Ok(Extent {
            offset,
            len,
            allocation: Allocation::Data,
        })
    }

    fn map_status(&self, offset: u64, len: u64) -> Result<Status> {
        let extent = self.block_status(offset, len)?;
        Ok(Status::from_extent(&extent, false))
    }

    fn has_zero_init(&self) -> bool {
        false
    }

    /// `amend` of the key slots, unlocked by the image's own key-secret.
    fn amend(&self, options: &Options, force: bool) -> Result<()> {
        let request = keyslots::Request::parse(options, "")?;
        let key_secret = self.given.get("key-secret").and_then(|v| v.as_str());
        let key_secret = key_secret
            .ok_or_else(|| Error::invalid("Parameter 'key-secret' is required for cipher"))?;
        let read = |buf: &mut [u8], offset: u64| self.storage.read_at(buf, offset);
        let write = |buf: &[u8], offset: u64| self.storage.write_at(buf, offset);
        keyslots::amend(&read, &write, key_secret, &request, force)
    }

    fn info(&self) -> Result<NodeInfo> {
        let file = self.storage.node_info()?;
        Ok(NodeInfo {
            filename: format_node_filename("luks", &self.given, &file),
            format: "luks".into(),
            virtual_size: self.size(),
            actual_size: file.actual_size,
            dirty_flag: Some(false),
            cluster_size: file.cluster_size,
            encrypted: Some(true),
            format_specific: Some(("luks".into(), self.volume_info.clone())),
            children: vec![("file".into(), file)],
            ..Default::default()
        })
    }
}

/// QEMU's crypto driver has no snapshots of its own and does not pass
/// them to its file.
impl Snapshots for LuksImage {}

impl Check for LuksImage {}
