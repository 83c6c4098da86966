//! The encrypted payload of a LUKS volume over a storage: guest offset X
//! is ciphertext at `offset + X`, in whole sectors (512 bytes, or 4096 in
//! librbd's LUKS2), each sector's IV its offset from the payload's start in
//! 512-byte units. Reads decrypt, writes encrypt on the calling thread (a
//! convert worker), so no plaintext ever reaches the storage.
//!
//! Two readings of ciphertext that is all zeros, as the two users of LUKS
//! payloads have them:
//! - QEMU's `luks` driver decrypts every sector: zeros must be written
//!   encrypted, and a fresh volume reads as garbage;
//! - librbd decrypts every object that exists and reads the others as
//!   zeros, and so the bytes past an object's stored end: a fresh image
//!   reads as zeros, a sector never written inside an object's stored
//!   bytes as garbage. rbdimg asks the storage (`read_stored`), which
//!   reads a clone's missing objects from its parent, as librbd does.

use std::sync::Arc;
use std::sync::Mutex;

use zeroize::Zeroizing;

use super::cipher::SectorCipher;
use crate::error::Result;
use crate::storage::Storage;

/// How ciphertext zeros read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holes {
    /// Every sector is decrypted (QEMU's luks driver).
    Decrypted,
    /// What no object stores reads as zeros (librbd).
    ReadAsZeros,
}

/// Largest plaintext run encrypted in one buffer.
const BATCH: usize = 1 << 20;

pub struct Payload {
    pub storage: Arc<dyn Storage>,
    /// Where the payload starts in the storage.
    pub offset: u64,
    /// The unit sectors are encrypted in.
    pub sector: u64,
    cipher: SectorCipher,
    holes: Holes,
    /// Serializes read-modify-write of partly written sectors.
    rmw: Mutex<()>,
}

impl Payload {
    pub fn new(
        storage: Arc<dyn Storage>,
        offset: u64,
        sector: u64,
        cipher: SectorCipher,
        holes: Holes,
    ) -> Payload {
        Payload {
            storage,
            offset,
            sector,
            cipher,
            holes,
            rmw: Mutex::new(()),
        }
    }

    /// The payload's length: the storage past the header, in sectors.
    pub fn length(&self) -> Result<u64> {
        let total = self.storage.length()?;
        Ok(total.saturating_sub(self.offset) / self.sector * self.sector)
    }

    /// Reads and decrypts sector-aligned `buf` at payload offset `offset`.
    fn read_sectors(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let size = self.sector as usize;
        let pos = self.offset + offset;
        if self.holes == Holes::Decrypted {
            self.storage.read_at(buf, pos)?;
            self.cipher.decrypt(buf, size, offset / 512);
            return Ok(());
        }
        // librbd decrypts what its sparse read returns; objects end and
        // stored bytes end (librbd writes whole sectors) on sectors, so
        // rounding out only matters for bytes written by someone else.
        let mut done = 0;
        for stored in self.storage.read_stored(buf, pos)? {
            let start = (stored.start / size * size).max(done);
            let end = stored.end.next_multiple_of(size).min(buf.len());
            if start < end {
                let at = offset + start as u64;
                self.cipher.decrypt(&mut buf[start..end], size, at / 512);
                done = end;
            }
        }
        Ok(())
    }

    /// Reads plaintext at payload offset `offset` (any alignment).
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let size = self.sector;
        let start = offset / size * size;
        let end = (offset + buf.len() as u64).next_multiple_of(size);
        if start == offset && end == offset + buf.len() as u64 {
            return self.read_sectors(buf, offset);
        }
        let mut whole = Zeroizing::new(vec![0u8; (end - start) as usize]);
        self.read_sectors(&mut whole, start)?;
        let skip = (offset - start) as usize;
        buf.copy_from_slice(&whole[skip..skip + buf.len()]);
        Ok(())
    }

    /// Encrypts and writes whole sectors at aligned `offset`.
    fn write_sectors(&self, plain: &[u8], offset: u64) -> Result<()> {
        let size = self.sector as usize;
        let mut copy = Zeroizing::new(Vec::with_capacity(plain.len().min(BATCH)));
        for (i, piece) in plain.chunks(BATCH).enumerate() {
            let at = offset + (i * BATCH) as u64;
            copy.clear();
            copy.extend_from_slice(piece);
            self.cipher.encrypt(&mut copy, size, at / 512);
            self.storage.write_at(&copy, self.offset + at)?;
        }
        Ok(())
    }

    /// Writes plaintext at payload offset `offset` (any alignment: partial
    /// sectors are read, merged and rewritten).
    pub fn write_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        let size = self.sector;
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

    /// Makes the range read as zeros: encrypted zeros (a hole would read
    /// as garbage inside an object that exists).
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
