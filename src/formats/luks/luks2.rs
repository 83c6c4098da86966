//! LUKS2 headers (cryptsetup's "LUKS2 On-Disk Format Specification"), as
//! `rbd encryption format IMG luks2` writes them: a 4096-byte binary
//! header, then JSON metadata naming key slots (an argon2 or PBKDF2 KDF,
//! the key material area and its cipher), digests (PBKDF2 of the volume
//! key) and the data segment (offset, cipher, sector size).
//!
//! rbdimg reads and unlocks LUKS2 volumes here; `luks2_format.rs`
//! formats them.

use base64::Engine;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::af;
use super::cipher::{CipherSpec, Hash, SectorCipher};
use super::volume::ReadFn;
use crate::error::{Error, ErrorKind, Result};

/// The binary header's length; the JSON area follows it.
const BINARY_LEN: usize = 4096;
/// The largest metadata area LUKS2 defines (binary header + JSON).
const MAX_HEADER: u64 = 4 << 20;
/// Memory an argon2 key slot may ask for (cryptsetup's own limit: 4 GiB).
const MAX_ARGON2_KIB: u32 = 4 << 20;

#[derive(Debug, Clone)]
pub struct Header {
    /// Offset 8: the metadata area's size (binary header + JSON).
    pub hdr_size: u64,
    /// Offset 168: the UUID.
    pub uuid: String,
    /// The JSON metadata.
    json: Map<String, Value>,
}

fn corrupt(what: &str) -> Error {
    Error::corrupt(format!("LUKS2 header is corrupt: {what}"))
}

fn unsupported(what: String) -> Error {
    Error::new(
        ErrorKind::UnsupportedFeature,
        format!("{what} is not supported by rbdimg"),
    )
}

/// A JSON number given as a decimal string (LUKS2 offsets and sizes).
fn u64_str(v: Option<&Value>, what: &str) -> Result<u64> {
    v.and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| corrupt(what))
}

fn b64(v: Option<&Value>, what: &str) -> Result<Vec<u8>> {
    let text = v.and_then(Value::as_str).ok_or_else(|| corrupt(what))?;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| corrupt(what))
}

/// "aes-xts-plain64" with a key of `key_bytes`.
fn cipher_of(encryption: &str, key_bytes: usize) -> Result<CipherSpec> {
    let (cipher, mode) = encryption
        .split_once('-')
        .ok_or_else(|| corrupt("encryption"))?;
    CipherSpec::from_header(cipher, mode, key_bytes)
}

impl Header {
    /// Reads the binary header and the JSON metadata after it.
    pub fn parse(read: ReadFn) -> Result<Header> {
        let mut bin = vec![0u8; BINARY_LEN];
        read(&mut bin, 0)?;
        let hdr_size = u64::from_be_bytes(bin[8..16].try_into().expect("8"));
        if !(BINARY_LEN as u64 * 4..=MAX_HEADER).contains(&hdr_size) {
            return Err(corrupt("header size"));
        }
        let mut area = vec![0u8; hdr_size as usize - BINARY_LEN];
        read(&mut area, BINARY_LEN as u64)?;
        let end = area.iter().position(|&b| b == 0).unwrap_or(area.len());
        let json: Map<String, Value> =
            serde_json::from_slice(&area[..end]).map_err(|_| corrupt("JSON metadata"))?;
        let uuid_end = bin[168..208].iter().position(|&b| b == 0).unwrap_or(40);
        Ok(Header {
            hdr_size,
            uuid: String::from_utf8_lossy(&bin[168..168 + uuid_end]).into_owned(),
            json,
        })
    }

    fn section(&self, name: &str) -> Result<&Map<String, Value>> {
        self.json
            .get(name)
            .and_then(Value::as_object)
            .ok_or_else(|| corrupt(name))
    }

    /// The data segment: offset, cipher, sector size, IV tweak.
    fn segment(&self, key_bytes: usize) -> Result<(u64, CipherSpec, u64, u64)> {
        let segments = self.section("segments")?;
        let seg = segments
            .get("0")
            .and_then(Value::as_object)
            .ok_or_else(|| corrupt("segment 0"))?;
        if seg.get("type").and_then(Value::as_str) != Some("crypt") {
            return Err(unsupported("A LUKS2 segment other than crypt".into()));
        }
        let offset = u64_str(seg.get("offset"), "segment offset")?;
        let encryption = seg
            .get("encryption")
            .and_then(Value::as_str)
            .ok_or_else(|| corrupt("segment encryption"))?;
        let sector = seg
            .get("sector_size")
            .and_then(Value::as_u64)
            .filter(|s| [512, 1024, 2048, 4096].contains(s))
            .ok_or_else(|| corrupt("segment sector size"))?;
        let tweak = u64_str(seg.get("iv_tweak"), "segment iv_tweak").unwrap_or(0);
        Ok((offset, cipher_of(encryption, key_bytes)?, sector, tweak))
    }

    /// The volume key length (from the first digest's first key slot).
    fn key_bytes(&self) -> Result<usize> {
        let keyslots = self.section("keyslots")?;
        keyslots
            .values()
            .find_map(|k| k.get("key_size").and_then(Value::as_u64))
            .filter(|&n| (16..=64).contains(&n))
            .map(|n| n as usize)
            .ok_or_else(|| corrupt("key size"))
    }

    pub fn info(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("uuid".into(), json!(self.uuid));
        m
    }

    /// Tries every key slot with `passphrase`.
    fn unlock(&self, read: ReadFn, passphrase: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let digests = self.section("digests")?;
        for (id, slot) in self.section("keyslots")? {
            let Some(slot) = slot.as_object() else {
                return Err(corrupt("keyslot"));
            };
            let key = self.slot_key(read, slot, passphrase)?;
            for digest in digests.values() {
                let in_digest = digest
                    .get("keyslots")
                    .and_then(Value::as_array)
                    .is_some_and(|l| l.iter().any(|k| k.as_str() == Some(id)));
                if in_digest && verify(digest, &key)? {
                    return Ok(key);
                }
            }
        }
        Err(Error::new(
            ErrorKind::PermissionDenied,
            "Invalid password, cannot unlock any keyslot",
        ))
    }

    /// The candidate volume key one slot gives for `passphrase`.
    fn slot_key(
        &self,
        read: ReadFn,
        slot: &Map<String, Value>,
        passphrase: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let key_bytes = slot
            .get("key_size")
            .and_then(Value::as_u64)
            .filter(|&n| (16..=64).contains(&n))
            .ok_or_else(|| corrupt("keyslot key size"))? as usize;
        let obj = |name: &str| {
            slot.get(name)
                .and_then(Value::as_object)
                .ok_or_else(|| corrupt(name))
        };
        let (af_spec, area, kdf) = (obj("af")?, obj("area")?, obj("kdf")?);
        let stripes = af_spec
            .get("stripes")
            .and_then(Value::as_u64)
            .filter(|&s| (1..=4000).contains(&s))
            .ok_or_else(|| corrupt("stripes"))? as usize;
        let af_hash = af_spec
            .get("hash")
            .and_then(Value::as_str)
            .and_then(Hash::parse)
            .ok_or_else(|| unsupported("The LUKS2 AF hash".into()))?;
        let offset = u64_str(area.get("offset"), "area offset")?;
        let size = u64_str(area.get("size"), "area size")?;
        let area_key_bytes = area
            .get("key_size")
            .and_then(Value::as_u64)
            .filter(|&n| (16..=64).contains(&n))
            .ok_or_else(|| corrupt("area key size"))? as usize;
        let encryption = area
            .get("encryption")
            .and_then(Value::as_str)
            .ok_or_else(|| corrupt("area encryption"))?;
        let spec = cipher_of(encryption, area_key_bytes)?;
        let len = (key_bytes * stripes).next_multiple_of(512);
        if len as u64 > size || size > 64 << 20 {
            return Err(corrupt("area size"));
        }
        let mut slot_key = Zeroizing::new(vec![0u8; area_key_bytes]);
        derive(kdf, passphrase, &mut slot_key)?;
        let mut material = Zeroizing::new(vec![0u8; len]);
        read(&mut material, offset)?;
        SectorCipher::new(spec, &slot_key)?.decrypt(&mut material, 512, 0);
        Ok(af::merge(af_hash, &material, key_bytes, stripes))
    }
}

/// Runs a key slot's KDF.
fn derive(kdf: &Map<String, Value>, passphrase: &[u8], out: &mut [u8]) -> Result<()> {
    let salt = b64(kdf.get("salt"), "kdf salt")?;
    let num = |name: &str| {
        kdf.get(name)
            .and_then(Value::as_u64)
            .filter(|&n| n > 0 && n <= u32::MAX as u64)
            .map(|n| n as u32)
            .ok_or_else(|| corrupt(name))
    };
    match kdf.get("type").and_then(Value::as_str) {
        Some("pbkdf2") => {
            let hash = kdf
                .get("hash")
                .and_then(Value::as_str)
                .and_then(Hash::parse)
                .ok_or_else(|| unsupported("The LUKS2 PBKDF2 hash".into()))?;
            hash.pbkdf2(passphrase, &salt, num("iterations")?, out);
            Ok(())
        }
        Some(kind @ ("argon2i" | "argon2id")) => {
            let memory = num("memory")?;
            if memory > MAX_ARGON2_KIB {
                return Err(corrupt("argon2 memory"));
            }
            let params = argon2::Params::new(memory, num("time")?, num("cpus")?, Some(out.len()))
                .map_err(|_| corrupt("argon2 parameters"))?;
            let algorithm = if kind == "argon2i" {
                argon2::Algorithm::Argon2i
            } else {
                argon2::Algorithm::Argon2id
            };
            argon2::Argon2::new(algorithm, argon2::Version::V0x13, params)
                .hash_password_into(passphrase, &salt, out)
                .map_err(|_| corrupt("argon2 parameters"))
        }
        other => Err(unsupported(format!(
            "The LUKS2 KDF '{}'",
            other.unwrap_or_default()
        ))),
    }
}

/// Whether `key` matches a PBKDF2 digest.
fn verify(digest: &Value, key: &[u8]) -> Result<bool> {
    if digest.get("type").and_then(Value::as_str) != Some("pbkdf2") {
        return Err(unsupported("A LUKS2 digest other than pbkdf2".into()));
    }
    let hash = digest
        .get("hash")
        .and_then(Value::as_str)
        .and_then(Hash::parse)
        .ok_or_else(|| unsupported("The LUKS2 digest hash".into()))?;
    let iterations = digest
        .get("iterations")
        .and_then(Value::as_u64)
        .filter(|&n| n > 0 && n <= u32::MAX as u64)
        .ok_or_else(|| corrupt("digest iterations"))? as u32;
    let salt = b64(digest.get("salt"), "digest salt")?;
    let expected = b64(digest.get("digest"), "digest")?;
    if expected.is_empty() || expected.len() > 64 {
        return Err(corrupt("digest"));
    }
    let mut got = vec![0u8; expected.len()];
    hash.pbkdf2(key, &salt, iterations, &mut got);
    Ok(got == expected)
}

/// Unlocks a LUKS2 volume: where its payload starts, its sector size and
/// its cipher.
pub fn open(read: ReadFn, passphrase: &[u8]) -> Result<(u64, u64, SectorCipher)> {
    let header = Header::parse(read)?;
    let key_bytes = header.key_bytes()?;
    let (offset, spec, sector_size, tweak) = header.segment(key_bytes)?;
    if tweak != 0 {
        return Err(unsupported("A LUKS2 segment with an IV tweak".into()));
    }
    if offset < header.hdr_size {
        return Err(corrupt("segment offset"));
    }
    let cipher = SectorCipher::new(spec, &header.unlock(read, passphrase)?)?;
    Ok((offset, sector_size, cipher))
}
