//! The encrypted payload of a LUKS volume over a storage: guest offset X
//! is ciphertext at `payload_offset + X`, in whole sectors (512 bytes, or
//! 4096 in librbd's LUKS2), each sector's IV its offset from the payload's
//! start in 512-byte units. Reads decrypt, writes
//! encrypt on the calling thread (a convert worker), so no plaintext ever
//! reaches the storage.
//!
//! Every sector is decrypted, as QEMU's crypto driver reads them: zeros
//! must be written encrypted, and a fresh volume reads as garbage.

use std::sync::Arc;
use std::sync::Mutex;

use zeroize::Zeroizing;

use super::header::SECTOR;
use super::volume::Volume;
use crate::error::Result;
use crate::storage::Storage;

/// Largest plaintext run encrypted in one buffer.
const BATCH: usize = 1 << 20;

pub struct Payload {
    pub storage: Arc<dyn Storage>,
    pub volume: Volume,
    /// Serializes read-modify-write of partly written sectors.
    rmw: Mutex<()>,
}

impl Payload {
    pub fn new(storage: Arc<dyn Storage>, volume: Volume) -> Result<Payload> {
        volume.cipher()?;
        Ok(Payload {
            storage,
            volume,
            rmw: Mutex::new(()),
        })
    }

    fn sector(&self) -> u64 {
        SECTOR
    }

    /// Decrypts sector-aligned `buf` read at payload offset `offset`.
    fn decrypt(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let cipher = self.volume.cipher()?;
        let size = self.sector() as usize;
        cipher.decrypt(buf, size, offset / SECTOR);
        Ok(())
    }

    /// Reads plaintext at payload offset `offset` (any alignment).
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let size = self.sector();
        let start = offset / size * size;
        let end = (offset + buf.len() as u64).next_multiple_of(size);
        if start == offset && end == offset + buf.len() as u64 {
            self.storage
                .read_at(buf, self.volume.payload_offset + offset)?;
            return self.decrypt(buf, offset);
        }
        let mut whole = Zeroizing::new(vec![0u8; (end - start) as usize]);
        self.storage
            .read_at(&mut whole, self.volume.payload_offset + start)?;
        self.decrypt(&mut whole, start)?;
        let skip = (offset - start) as usize;
        buf.copy_from_slice(&whole[skip..skip + buf.len()]);
        Ok(())
    }

    /// Encrypts and writes whole sectors at aligned `offset`.
    fn write_sectors(&self, plain: &[u8], offset: u64) -> Result<()> {
        let cipher = self.volume.cipher()?;
        let size = self.sector() as usize;
        let mut copy = Zeroizing::new(Vec::with_capacity(plain.len().min(BATCH)));
        for (i, piece) in plain.chunks(BATCH).enumerate() {
            let at = offset + (i * BATCH) as u64;
            copy.clear();
            copy.extend_from_slice(piece);
            cipher.encrypt(&mut copy, size, at / 512);
            self.storage
                .write_at(&copy, self.volume.payload_offset + at)?;
        }
        Ok(())
    }

    /// Writes plaintext at payload offset `offset` (any alignment: partial
    /// sectors are read, merged and rewritten).
    pub fn write_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        let size = self.sector();
        let end = offset + buf.len() as u64;
        if offset.is_multiple_of(size) && end.is_multiple_of(size) {
            return self.write_sectors(buf, offset);
        }
        let _rmw = self.rmw.lock().unwrap_or_else(|p| p.into_inner());
        let start = offset / size * size;
        let mut whole = Zeroizing::new(vec![0u8; (end.next_multiple_of(size) - start) as usize]);
        self.read_at(&mut whole, start)?;
        let skip = (offset - start) as usize;
        whole[skip..skip + buf.len()].copy_from_slice(buf);
        self.write_sectors(&whole, start)
    }

    /// Makes the range read as zeros: encrypted zeros.
    pub fn write_zeroes(&self, offset: u64, len: u64) -> Result<()> {
        let zeros = Zeroizing::new(vec![0u8; len.min(BATCH as u64) as usize]);
        let mut done = 0;
        while done < len {
            let n = (len - done).min(BATCH as u64) as usize;
            self.write_at(&zeros[..n], offset + done)?;
            done += n as u64;
        }
        Ok(())
    }
}
