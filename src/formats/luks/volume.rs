//! A LUKS volume: its header read from storage, unlocked with a
//! passphrase into the sector cipher of its payload, or formatted anew.
//!
//! ```text
//!   unlock:  passphrase --PBKDF2(slot salt, iters)--> slot key
//!            slot key decrypts the slot's key material (sectors 0..)
//!            AF-merge(material) = candidate volume key
//!            PBKDF2(candidate, digest salt, iters) == header digest ?
//!   format:  random volume key -> digest; AF-split(key) encrypted with the
//!            passphrase's slot key -> slot 0's material
//! ```

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::af;
use super::cipher::{CipherSpec, Hash, IvGen, SectorCipher};
use super::header::{self, DIGEST_LEN, Header, KeySlot, SALT_LEN, SECTOR, SLOTS};
use crate::error::{Error, ErrorKind, Result};

/// Reads bytes of the storage the volume lives in.
pub type ReadFn<'a> = &'a dyn Fn(&mut [u8], u64) -> Result<()>;
/// Writes bytes of the storage the volume lives in.
pub type WriteFn<'a> = &'a dyn Fn(&[u8], u64) -> Result<()>;

/// Anti-forensic stripes per key slot (LUKS1's only value).
pub const STRIPES: u32 = 4000;

/// An opened LUKS volume.
pub struct Volume {
    pub header: Header,
    /// Where the payload starts, in bytes.
    pub payload_offset: u64,
    /// The payload's cipher: `None` when opened without a passphrase, to
    /// describe the volume only.
    pub cipher: Option<SectorCipher>,
}

/// What formatting a new volume takes (QEMU's `QCryptoBlockCreateOptionsLUKS`).
#[derive(Debug, Clone)]
pub struct FormatOptions {
    pub cipher: CipherSpec,
    pub hash: Hash,
    /// Milliseconds of PBKDF2 for the key slot.
    pub iter_time: u64,
    /// The payload starts at a multiple of this (4096 in QEMU, the object
    /// size in librbd).
    pub payload_alignment: u64,
}

/// The sectors of one key slot's material, rounded up to 4096 bytes.
fn slot_sectors(key_bytes: usize) -> u64 {
    (key_bytes as u64 * STRIPES as u64).next_multiple_of(4096) / SECTOR
}

impl FormatOptions {
    /// Where the payload of a volume formatted with these options starts:
    /// the header's 4096 bytes, eight key slots, then the alignment.
    pub fn header_len(&self) -> u64 {
        let slots = slot_sectors(self.cipher.key_bytes()) * SLOTS as u64;
        (4096 + slots * SECTOR).next_multiple_of(self.payload_alignment.max(4096))
    }
}

impl Default for FormatOptions {
    /// QEMU's defaults: aes-256-xts-plain64, sha256, 2 s.
    fn default() -> FormatOptions {
        FormatOptions {
            cipher: CipherSpec {
                aes_bytes: 32,
                mode: super::cipher::Mode::Xts,
                ivgen: IvGen::Plain64,
            },
            hash: Hash::Sha256,
            iter_time: 2000,
            payload_alignment: 4096,
        }
    }
}

fn invalid_password() -> Error {
    Error::new(
        ErrorKind::PermissionDenied,
        "Invalid password, cannot unlock any keyslot",
    )
}

impl Volume {
    /// Opens the volume whose header starts at byte 0 of `read`'s storage;
    /// with a passphrase, unlocks it.
    pub fn open(read: ReadFn, passphrase: Option<&[u8]>) -> Result<Volume> {
        let mut head = vec![0u8; header::HEADER_LEN];
        read(&mut head, 0)?;
        let header = Header::parse(&head)?;
        header.check_layout()?;
        let spec = CipherSpec::from_header(
            &header.cipher_name,
            &header.cipher_mode,
            header.key_bytes as usize,
        )?;
        let hash = Hash::from_header(&header.hash_spec)?;
        let cipher = match passphrase {
            None => None,
            Some(p) => Some(SectorCipher::new(
                spec,
                &unlock(&header, spec, hash, read, p)?,
            )?),
        };
        Ok(Volume {
            payload_offset: header.payload_offset as u64 * SECTOR,
            header,
            cipher,
        })
    }

    /// Formats a LUKS1 volume: writes the header and slot 0 for
    /// `passphrase`, returns it unlocked.
    pub fn format(options: &FormatOptions, passphrase: &[u8], write: WriteFn) -> Result<Volume> {
        let spec = options.cipher;
        let key_bytes = spec.key_bytes();
        let hash = options.hash;
        let key = random(key_bytes)?;
        let rate = pbkdf2_rate(hash)?;
        // QEMU's scaling of the measured rate to `iter-time`, with its
        // checks and words.
        let iterations = |divider: u64| -> Result<u32> {
            let range = |what: String| Error::errno(ErrorKind::InvalidArgument, what, libc::ERANGE);
            let n = rate
                .checked_mul(options.iter_time)
                .ok_or_else(|| range(format!("PBKDF iterations {rate} too large to scale")))?
                / 1000
                / divider;
            if n > u32::MAX as u64 {
                return Err(range(format!(
                    "PBKDF iterations {n} larger than {}",
                    u32::MAX
                )));
            }
            Ok(n.max(1000) as u32)
        };
        let mk_digest_iter = iterations(8)?;
        let mk_digest_salt: [u8; SALT_LEN] = random(SALT_LEN)?[..].try_into().expect("32");
        let mut mk_digest = [0u8; DIGEST_LEN];
        hash.pbkdf2(&key, &mk_digest_salt, mk_digest_iter, &mut mk_digest);

        // Each slot's material, rounded up to 4096 bytes, after the first 4096.
        let slot_sectors = slot_sectors(key_bytes);
        let first = 4096 / SECTOR;
        let payload = options.header_len();
        let slots: [KeySlot; SLOTS] = std::array::from_fn(|i| KeySlot {
            active: false,
            iterations: 0,
            salt: [0; SALT_LEN],
            key_offset: (first + slot_sectors * i as u64) as u32,
            stripes: STRIPES,
        });
        let mut header = Header {
            version: 1,
            cipher_name: "aes".into(),
            cipher_mode: spec.header_mode(),
            hash_spec: hash.name().into(),
            payload_offset: (payload / SECTOR) as u32,
            key_bytes: key_bytes as u32,
            mk_digest,
            mk_digest_salt,
            mk_digest_iter,
            uuid: uuid::Uuid::new_v4().hyphenated().to_string(),
            slots,
        };
        let slot = &mut header.slots[0];
        slot.active = true;
        slot.iterations = iterations(1)?;
        slot.salt = random(SALT_LEN)?[..].try_into().expect("32");
        let material = slot_material(slot, spec, hash, &key, passphrase)?;
        // The material first, then the header that makes it a volume.
        write(&material, slot.key_offset as u64 * SECTOR)?;
        let mut head = header.to_bytes();
        head.resize(4096, 0);
        write(&head, 0)?;
        Ok(Volume {
            payload_offset: payload,
            header,
            cipher: Some(SectorCipher::new(spec, &key)?),
        })
    }

    /// QEMU's `QCryptoBlockInfoLUKS` of this volume (the `format-specific`
    /// data of `info`).
    pub fn info(&self) -> Map<String, Value> {
        luks1_info(&self.header)
    }

    /// The payload's cipher; only an unlocked volume has one.
    pub fn cipher(&self) -> Result<&SectorCipher> {
        self.cipher
            .as_ref()
            .ok_or_else(|| Error::invalid("the LUKS volume is not unlocked"))
    }
}

fn luks1_info(h: &Header) -> Map<String, Value> {
    let mut m = Map::new();
    if let Ok(spec) = CipherSpec::from_header(&h.cipher_name, &h.cipher_mode, h.key_bytes as usize)
    {
        m.insert("cipher-alg".into(), json!(spec.alg_name()));
        m.insert("cipher-mode".into(), json!(spec.mode_name()));
        m.insert("ivgen-alg".into(), json!(spec.ivgen.name()));
        if let IvGen::Essiv(hash) = spec.ivgen {
            m.insert("ivgen-hash-alg".into(), json!(hash.name()));
        }
    }
    m.insert("hash-alg".into(), json!(h.hash_spec));
    m.insert("detached-header".into(), json!(false));
    m.insert(
        "payload-offset".into(),
        json!(h.payload_offset as u64 * SECTOR),
    );
    m.insert("master-key-iters".into(), json!(h.mk_digest_iter));
    m.insert("uuid".into(), json!(h.uuid));
    let slots: Vec<Value> = h
        .slots
        .iter()
        .map(|s| {
            let mut slot = Map::new();
            slot.insert("active".into(), json!(s.active));
            if s.active {
                slot.insert("iters".into(), json!(s.iterations));
                slot.insert("stripes".into(), json!(s.stripes));
            }
            slot.insert("key-offset".into(), json!(s.key_offset as u64 * SECTOR));
            Value::Object(slot)
        })
        .collect();
    m.insert("slots".into(), Value::Array(slots));
    m
}

/// Tries each active slot with `passphrase`; the volume key on success.
fn unlock(
    header: &Header,
    spec: CipherSpec,
    hash: Hash,
    read: ReadFn,
    passphrase: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let key_bytes = header.key_bytes as usize;
    for slot in header.slots.iter().filter(|s| s.active) {
        let stripes = slot.stripes as usize;
        let len = (key_bytes * stripes).next_multiple_of(SECTOR as usize);
        let mut material = Zeroizing::new(vec![0u8; len]);
        read(&mut material, slot.key_offset as u64 * SECTOR)?;
        let mut slot_key = Zeroizing::new(vec![0u8; key_bytes]);
        hash.pbkdf2(passphrase, &slot.salt, slot.iterations, &mut slot_key);
        SectorCipher::new(spec, &slot_key)?.decrypt(&mut material, SECTOR as usize, 0);
        let key = af::merge(hash, &material, key_bytes, stripes);
        let mut digest = [0u8; DIGEST_LEN];
        hash.pbkdf2(
            &key,
            &header.mk_digest_salt,
            header.mk_digest_iter,
            &mut digest,
        );
        if digest == header.mk_digest {
            return Ok(key);
        }
    }
    Err(invalid_password())
}

/// A slot's key material: the volume key split into stripes, encrypted
/// with the key PBKDF2 derives from the passphrase.
fn slot_material(
    slot: &KeySlot,
    spec: CipherSpec,
    hash: Hash,
    key: &[u8],
    passphrase: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let stripes = slot.stripes as usize;
    let mut material = af::split(hash, key, stripes, &random(key.len() * stripes)?);
    let len = material.len().next_multiple_of(SECTOR as usize);
    material.resize(len, 0);
    let mut slot_key = Zeroizing::new(vec![0u8; key.len()]);
    hash.pbkdf2(passphrase, &slot.salt, slot.iterations, &mut slot_key);
    SectorCipher::new(spec, &slot_key)?.encrypt(&mut material, SECTOR as usize, 0);
    Ok(material)
}

/// PBKDF2 iterations per second with this hash on this machine (QEMU's
/// `qcrypto_pbkdf2_count_iters`, measured over a shorter time).
pub(super) fn pbkdf2_rate(hash: Hash) -> Result<u64> {
    let mut out = [0u8; 32];
    let mut iterations = 1u32 << 12;
    loop {
        let start = Instant::now();
        hash.pbkdf2(b"rbdimg benchmark", &[0u8; SALT_LEN], iterations, &mut out);
        let spent = start.elapsed();
        if spent >= Duration::from_millis(50) || iterations >= 1 << 30 {
            return Ok((iterations as u128 * 1_000_000 / spent.as_micros().max(1)) as u64);
        }
        iterations *= 2;
    }
}

pub fn random(n: usize) -> Result<Zeroizing<Vec<u8>>> {
    let mut bytes = Zeroizing::new(vec![0u8; n]);
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::new(ErrorKind::Io, format!("Unable to read random bytes: {e}")))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn formats_then_unlocks_with_the_passphrase_only() {
        let disk = Mutex::new(vec![0u8; 3 << 20]);
        let write = |b: &[u8], off: u64| {
            let mut d = disk.lock().unwrap();
            d[off as usize..off as usize + b.len()].copy_from_slice(b);
            Ok(())
        };
        let read = |b: &mut [u8], off: u64| {
            let d = disk.lock().unwrap();
            b.copy_from_slice(&d[off as usize..off as usize + b.len()]);
            Ok(())
        };
        let options = FormatOptions {
            iter_time: 1,
            ..Default::default()
        };
        let made = Volume::format(&options, b"hunter2", &write).unwrap();
        assert_eq!(made.payload_offset, 2068480);
        let opened = Volume::open(&read, Some(b"hunter2")).unwrap();
        let mut a = vec![5u8; 1024];
        let mut b = a.clone();
        made.cipher().unwrap().encrypt(&mut a, 512, 3);
        opened.cipher().unwrap().encrypt(&mut b, 512, 3);
        assert_eq!(a, b);
        let wrong = Volume::open(&read, Some(b"hunter3")).err().unwrap();
        assert_eq!(
            wrong.to_string(),
            "Invalid password, cannot unlock any keyslot"
        );
        let info = Volume::open(&read, None).unwrap().info();
        assert_eq!(info["payload-offset"], json!(2068480));
        assert_eq!(info["slots"][1]["key-offset"], json!(262144));
    }
}
