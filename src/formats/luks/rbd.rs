//! librbd's RBD encryption (`rbd encryption format IMG luks1|luks2`): a
//! LUKS1 or LUKS2 header at the start of the image data, the payload
//! after it (at an object boundary), read as storage under any format, as
//! QEMU's rbd driver loads it with `encrypt.format=luks|luks2|luks-any`.
//! Holes read as zeros, as librbd reads them.

use std::sync::Arc;

use crate::block::driver::{Check, CheckReport, Preallocation, Repair};
use crate::block::extent::{Allocation, Extent};
use crate::block::info::NodeInfo;
use crate::block::snapshot::{SnapshotInfo, Snapshots};
use crate::block::status::Status;
use crate::error::{Error, ErrorKind, Result};
use crate::storage::Storage;

use super::cipher::{Algorithm, IvGen, Mode};
use super::header::{HEADER_LEN, Header, MAGIC, SECTOR};
use super::luks2;
use super::payload::{Holes, Payload};
use super::volume::Volume;

/// An RBD image with librbd's encryption loaded: the payload as storage.
pub struct CryptStorage {
    inner: Arc<dyn Storage>,
    payload: Payload,
}

/// Loads the encryption of `inner` (`encrypt.format`: luks, luks2 or
/// luks-any), with librbd's failures worded as QEMU reports them.
pub fn load(inner: Arc<dyn Storage>, format: &str, passphrase: &[u8]) -> Result<CryptStorage> {
    let fail = |errno| Error::errno(ErrorKind::InvalidFormat, "encryption load fail", errno);
    let mut head = [0u8; 8];
    inner.read_at(&mut head, 0)?;
    let version = (&head[..6] == MAGIC).then(|| u16::from_be_bytes([head[6], head[7]]));
    let read = |buf: &mut [u8], offset: u64| inner.read_at(buf, offset);
    let unlocked = match (format, version) {
        ("luks" | "luks-any", Some(1)) => {
            // librbd's LoadRequest takes aes-xts-plain64 only, and says so
            // before it tries the passphrase.
            let mut head = vec![0u8; HEADER_LEN];
            read(&mut head, 0)?;
            let h = Header::parse(&head)?;
            if (h.cipher_name.as_str(), h.cipher_mode.as_str()) != ("aes", "xts-plain64") {
                return Err(fail(libc::ENOTSUP));
            }
            let volume = Volume::open(&read, Some(passphrase));
            volume.map(|v| (v.payload_offset, SECTOR, v.cipher))
        }
        ("luks2" | "luks-any", Some(2)) => luks2::open(&read, passphrase)
            .map(|(offset, sector, cipher)| (offset, sector, Some(cipher))),
        _ => return Err(fail(libc::EINVAL)),
    };
    let (offset, sector, cipher) = unlocked.map_err(|e| match e.kind() {
        ErrorKind::PermissionDenied => fail(libc::EPERM),
        _ => e,
    })?;
    let cipher = cipher.ok_or_else(|| fail(libc::EPERM))?;
    // librbd's LoadRequest takes aes-xts-plain64 only (LUKS2 too).
    let spec = cipher.spec();
    if (spec.alg, spec.mode, spec.ivgen) != (Algorithm::Aes, Mode::Xts, IvGen::Plain64) {
        return Err(fail(libc::ENOTSUP));
    }
    Ok(CryptStorage {
        payload: Payload::new(inner.clone(), offset, sector, cipher, Holes::ReadAsZeros),
        inner,
    })
}

impl CryptStorage {
    fn offset(&self) -> u64 {
        self.payload.offset
    }
}

impl Storage for CryptStorage {
    fn protocol(&self) -> &'static str {
        self.inner.protocol()
    }

    fn filename(&self) -> &str {
        self.inner.filename()
    }

    fn length(&self) -> Result<u64> {
        self.payload.length()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.payload.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.payload.write_at(buf, offset)
    }

    fn zero_range(&self, offset: u64, len: u64) -> Result<()> {
        self.payload.write_zeroes(offset, len)
    }

    fn discard(&self, offset: u64, len: u64) -> Result<()> {
        self.payload.write_zeroes(offset, len)
    }

    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    /// The payload's size in whole sectors, after the header.
    fn set_len(&self, size: u64, prealloc: Preallocation) -> Result<()> {
        if !size.is_multiple_of(self.payload.sector) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "The new size must be a multiple of the encryption sector size {}",
                    self.payload.sector
                ),
            ));
        }
        self.inner.set_len(self.offset() + size, prealloc)
    }

    /// A clone's parent-backed runs are this node's data: it decrypts the
    /// parent's ciphertext itself, and shows no backing file (as QEMU).
    fn block_status(&self, offset: u64, len: u64) -> Result<Extent> {
        let extent = self.inner.block_status(self.offset() + offset, len)?;
        let allocation = match extent.allocation {
            Allocation::Backing => Allocation::Data,
            own => own,
        };
        Ok(Extent {
            offset,
            allocation,
            ..extent
        })
    }

    fn map_status(&self, offset: u64, len: u64) -> Result<Status> {
        // Data at the same offset of this (decrypted) node, as QEMU's rbd
        // driver maps an image with encryption loaded.
        let status = self.inner.map_status(self.offset() + offset, len)?;
        Ok(Status::protocol(
            status.len,
            status.data || !status.allocated,
            self.filename(),
            offset,
        ))
    }

    fn allocation_unit(&self) -> Option<u64> {
        self.inner.allocation_unit()
    }

    /// A clone's flatten copies its parent's ciphertext, which the clone
    /// decrypts with the same key: the plaintext stays.
    fn flatten(&self, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<()> {
        self.inner.flatten(progress)
    }

    /// The RBD node as QEMU's rbd driver shows it with encryption loaded:
    /// the payload's size, and no LUKS header at its (decrypted) start.
    fn node_info(&self) -> Result<NodeInfo> {
        let mut info = self.inner.node_info()?;
        info.virtual_size = self.payload.length()?;
        if let Some((_, data)) = &mut info.format_specific {
            data.remove("encryption-format");
        }
        Ok(info)
    }
}

impl Snapshots for CryptStorage {
    fn snapshots(&self) -> Result<Option<Vec<SnapshotInfo>>> {
        self.inner.snapshots()
    }

    fn snapshot_create(&self, name: &str) -> Result<()> {
        self.inner.snapshot_create(name)
    }

    fn snapshot_apply(&self, id: &str) -> Result<()> {
        self.inner.snapshot_apply(id)
    }

    fn snapshot_delete(&self, id: &str) -> Result<()> {
        self.inner.snapshot_delete(id)
    }
}

impl Check for CryptStorage {
    fn check(&self, repair: Repair) -> Result<CheckReport> {
        self.inner.check(repair)
    }
}
