//! Formatting a LUKS2 volume as librbd does (`rbd encryption format IMG
//! luks2`, QEMU's `encrypt.format=luks2`): cryptsetup's defaults with
//! librbd's sector size and alignment.
//!
//! ```text
//!  0        binary header (4096), JSON area          hdr_size 16 KiB
//!  16 KiB   the same again (secondary copy)
//!  32 KiB   key slot 0: the volume key split into 4000 AF stripes,
//!           encrypted (aes-xts-plain64) with an argon2id key
//!  ...      the rest of the key-slot area
//!  16 MiB   the payload (rounded up to an object), 4096-byte sectors
//! ```
//!
//! The JSON names one `luks2` key slot (argon2id, tuned to 2 s on this
//! machine as cryptsetup tunes it), one PBKDF2-sha256 digest of the volume
//! key and one `crypt` segment; each binary header carries a sha256 of its
//! metadata area. The slot material is written first and the primary
//! header last, so an interrupted format is no volume at all.

use std::time::Instant;

use base64::Engine;
use serde_json::json;
use zeroize::Zeroizing;

use super::af;
use super::cipher::{CipherSpec, Hash, SectorCipher};
use super::volume::{WriteFn, random};
use crate::error::{Error, ErrorKind, Result};

/// Metadata area per copy: the 4096-byte binary header, then the JSON.
const HDR_SIZE: u64 = 16 << 10;
/// Where key material starts: after both metadata copies.
const KEYSLOTS_OFFSET: u64 = 2 * HDR_SIZE;
/// cryptsetup's default data offset for LUKS2.
const DATA_OFFSET: u64 = 16 << 20;
const STRIPES: usize = 4000;
const SALT_LEN: usize = 32;
/// librbd's LUKS2 sector size.
pub const SECTOR: u64 = 4096;
/// cryptsetup's argon2 defaults: 2 s, 4 passes at least, at most 1 GiB
/// and 4 threads, 32 MiB at least.
const TARGET_MS: u128 = 2000;
const MIN_TIME: u32 = 4;
const MIN_KIB: u32 = 32 << 10;
const MAX_KIB: u32 = 1 << 20;
const MAX_CPUS: u32 = 4;

/// Where the payload of a LUKS2 volume formatted for objects of
/// `object_size` starts (librbd aligns it to an object).
pub fn data_offset(object_size: u64) -> u64 {
    DATA_OFFSET.next_multiple_of(object_size.max(SECTOR))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Argon2id's (time, memory KiB, lanes) for `TARGET_MS` here, measured
/// the way cryptsetup's benchmark scales them: memory first, then passes.
fn argon2_params() -> Result<(u32, u32, u32)> {
    let cpus = std::thread::available_parallelism()
        .map_or(1, |n| n.get() as u32)
        .min(MAX_CPUS);
    let run = |time: u32, kib: u32| -> Result<u128> {
        let params = argon2::Params::new(kib, time, cpus, Some(32))
            .map_err(|e| Error::invalid(format!("argon2 parameters: {e}")))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = [0u8; 32];
        let start = Instant::now();
        argon
            .hash_password_into(b"rbdimg benchmark", &[0u8; SALT_LEN], &mut out)
            .map_err(|e| Error::invalid(format!("argon2: {e}")))?;
        Ok(start.elapsed().as_millis().max(1))
    };
    let spent = run(MIN_TIME, MIN_KIB)?;
    let kib = (MIN_KIB as u128 * TARGET_MS / spent).clamp(MIN_KIB as u128, MAX_KIB as u128) as u32;
    // At the memory cap, more passes make up the rest of the time.
    let at_cap = spent * kib as u128 / MIN_KIB as u128;
    let time =
        (MIN_TIME as u128 * TARGET_MS / at_cap.max(1)).clamp(MIN_TIME as u128, 1 << 16) as u32;
    Ok((time, kib, cpus))
}

/// The binary header (`offset`: 0, or `HDR_SIZE` for the secondary copy)
/// followed by the JSON area, checksummed.
fn metadata(seqid: u64, uuid: &str, offset: u64, json: &[u8]) -> Result<Vec<u8>> {
    let mut area = vec![0u8; HDR_SIZE as usize];
    // Offset 0: magic ("SKUL" in the secondary copy); 6: version 2.
    let magic: &[u8; 6] = if offset == 0 {
        b"LUKS\xba\xbe"
    } else {
        b"SKUL\xba\xbe"
    };
    area[0..6].copy_from_slice(magic);
    area[6..8].copy_from_slice(&2u16.to_be_bytes());
    // 8: hdr_size; 16: seqid (epoch); 24: label (empty).
    area[8..16].copy_from_slice(&HDR_SIZE.to_be_bytes());
    area[16..24].copy_from_slice(&seqid.to_be_bytes());
    // 72: checksum_alg; 104: salt (64 random bytes per copy).
    area[72..78].copy_from_slice(b"sha256");
    area[104..168].copy_from_slice(&random(64)?);
    // 168: uuid; 208: subsystem (empty); 256: hdr_offset.
    area[168..168 + uuid.len()].copy_from_slice(uuid.as_bytes());
    area[256..264].copy_from_slice(&offset.to_be_bytes());
    // 4096: the JSON text, zero padded to the area's end.
    area[4096..4096 + json.len()].copy_from_slice(json);
    // 448: sha256 of the whole area with this field zero.
    let csum = Hash::Sha256.digest(&[&area]);
    area[448..448 + csum.len()].copy_from_slice(&csum);
    Ok(area)
}

/// Formats a LUKS2 volume through `write` (image offsets) for objects of
/// `object_size`, with key slot 0 opened by `passphrase`; returns where
/// the payload starts and its cipher.
pub fn format(
    spec: CipherSpec,
    passphrase: &[u8],
    object_size: u64,
    write: WriteFn,
) -> Result<(u64, SectorCipher)> {
    let key_bytes = spec.key_bytes();
    let key = random(key_bytes)?;
    let offset = data_offset(object_size);
    let keyslots_size = offset - KEYSLOTS_OFFSET;
    let area_size = (key_bytes * STRIPES).next_multiple_of(SECTOR as usize);
    let encryption = format!("aes-{}", spec.header_mode());

    // Key slot 0: the AF-split volume key under an argon2id key.
    let (time, kib, cpus) = argon2_params()?;
    let slot_salt = random(SALT_LEN)?;
    let mut slot_key = Zeroizing::new(vec![0u8; key_bytes]);
    let params = argon2::Params::new(kib, time, cpus, Some(key_bytes))
        .map_err(|e| Error::invalid(format!("argon2 parameters: {e}")))?;
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(passphrase, &slot_salt, &mut slot_key)
        .map_err(|e| Error::new(ErrorKind::Io, format!("argon2: {e}")))?;
    let stripes = af::split(
        Hash::Sha256,
        &key,
        STRIPES,
        &random(key_bytes * (STRIPES - 1))?,
    );
    let mut material = Zeroizing::new(vec![0u8; area_size]);
    material[..stripes.len()].copy_from_slice(&stripes);
    SectorCipher::new(spec, &slot_key)?.encrypt(&mut material, 512, 0);

    // The digest that tells the right volume key: PBKDF2-sha256 for an
    // eighth of the slot's time, as LUKS1's master-key digest.
    let iterations = (super::volume::pbkdf2_rate(Hash::Sha256)? * TARGET_MS as u64 / 1000 / 8)
        .clamp(1000, u32::MAX as u64) as u32;
    let digest_salt = random(SALT_LEN)?;
    let mut digest = [0u8; 32];
    Hash::Sha256.pbkdf2(&key, &digest_salt, iterations, &mut digest);

    let json = json!({
        "keyslots": {"0": {
            "type": "luks2",
            "key_size": key_bytes,
            "af": {"type": "luks1", "stripes": STRIPES, "hash": "sha256"},
            "area": {
                "type": "raw",
                "offset": KEYSLOTS_OFFSET.to_string(),
                "size": area_size.to_string(),
                "encryption": encryption,
                "key_size": key_bytes,
            },
            "kdf": {"type": "argon2id", "time": time, "memory": kib, "cpus": cpus,
                    "salt": b64(&slot_salt)},
        }},
        "tokens": {},
        "segments": {"0": {
            "type": "crypt",
            "offset": offset.to_string(),
            "size": "dynamic",
            "iv_tweak": "0",
            "encryption": encryption,
            "sector_size": SECTOR,
        }},
        "digests": {"0": {
            "type": "pbkdf2",
            "keyslots": ["0"],
            "segments": ["0"],
            "hash": "sha256",
            "iterations": iterations,
            "salt": b64(&digest_salt),
            "digest": b64(&digest),
        }},
        "config": {
            "json_size": (HDR_SIZE - 4096).to_string(),
            "keyslots_size": keyslots_size.to_string(),
        },
    });
    let json = serde_json::to_vec(&json).expect("JSON of plain values");
    let uuid = uuid::Uuid::new_v4().hyphenated().to_string();
    write(&material, KEYSLOTS_OFFSET)?;
    write(&metadata(1, &uuid, HDR_SIZE, &json)?, HDR_SIZE)?;
    write(&metadata(1, &uuid, 0, &json)?, 0)?;
    Ok((offset, SectorCipher::new(spec, &key)?))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn formatted_volumes_unlock_and_keep_librbds_layout() {
        let disk = Mutex::new(vec![0u8; 1 << 20]);
        let write = |buf: &[u8], at: u64| {
            disk.lock().unwrap()[at as usize..at as usize + buf.len()].copy_from_slice(buf);
            Ok(())
        };
        let spec = CipherSpec::from_header("aes", "xts-plain64", 32).unwrap();
        let (offset, cipher) = format(spec, b"pass", 4 << 20, &write).unwrap();
        assert_eq!(offset, 16 << 20);
        let read = |buf: &mut [u8], at: u64| {
            let disk = disk.lock().unwrap();
            buf.copy_from_slice(&disk[at as usize..at as usize + buf.len()]);
            Ok(())
        };
        let (got_offset, sector, unlocked) = super::super::luks2::open(&read, b"pass").unwrap();
        assert_eq!((got_offset, sector), (16 << 20, 4096));
        let mut a = vec![7u8; 4096];
        let mut b = a.clone();
        cipher.encrypt(&mut a, 4096, 8);
        unlocked.encrypt(&mut b, 4096, 8);
        assert_eq!(a, b);
        let wrong = super::super::luks2::open(&read, b"nope").err().unwrap();
        assert_eq!(wrong.kind(), ErrorKind::PermissionDenied);
        // Both copies checksum to what they carry.
        let disk = disk.lock().unwrap();
        for at in [0, HDR_SIZE as usize] {
            let mut area = disk[at..at + HDR_SIZE as usize].to_vec();
            let stored = area[448..480].to_vec();
            area[448..512].fill(0);
            assert_eq!(Hash::Sha256.digest(&[&area])[..], stored[..]);
        }
        assert_eq!(&disk[HDR_SIZE as usize..HDR_SIZE as usize + 4], b"SKUL");
    }

    #[test]
    fn the_payload_starts_on_an_object() {
        assert_eq!(data_offset(4 << 20), 16 << 20);
        assert_eq!(data_offset(32 << 20), 32 << 20);
        assert_eq!(data_offset(4096), 16 << 20);
    }
}
