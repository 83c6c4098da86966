//! The LUKS1 on-disk header (the "LUKS On-Disk Format Specification",
//! version 1.2.3): 592 bytes, big-endian, then the key material of the
//! eight key slots, then the payload.

use crate::error::{Error, Result};

/// `magic`: "LUKS\xba\xbe".
pub const MAGIC: &[u8; 6] = b"LUKS\xba\xbe";
/// The header's length in bytes.
pub const HEADER_LEN: usize = 592;
/// Sectors are 512 bytes in LUKS1: offsets count them, the payload is
/// encrypted in them.
pub const SECTOR: u64 = 512;
pub const SLOTS: usize = 8;
/// `active` of a key slot in use, and of a free one.
pub const SLOT_ENABLED: u32 = 0x00AC_71F3;
pub const SLOT_DISABLED: u32 = 0x0000_DEAD;
pub const DIGEST_LEN: usize = 20;
pub const SALT_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySlot {
    /// Offset 0: `active`, SLOT_ENABLED or SLOT_DISABLED.
    pub active: bool,
    /// Offset 4: PBKDF2 iterations of the passphrase.
    pub iterations: u32,
    /// Offset 8: PBKDF2 salt.
    pub salt: [u8; SALT_LEN],
    /// Offset 40: start of the key material, in sectors.
    pub key_offset: u32,
    /// Offset 44: anti-forensic stripes.
    pub stripes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Offset 6: version, 1.
    pub version: u16,
    /// Offset 8: cipher name, NUL-padded ("aes").
    pub cipher_name: String,
    /// Offset 40: cipher mode ("xts-plain64").
    pub cipher_mode: String,
    /// Offset 72: hash spec for PBKDF2 and the splitter ("sha256").
    pub hash_spec: String,
    /// Offset 104: start of the payload, in sectors.
    pub payload_offset: u32,
    /// Offset 108: volume key length in bytes.
    pub key_bytes: u32,
    /// Offset 112: PBKDF2 digest of the volume key.
    pub mk_digest: [u8; DIGEST_LEN],
    /// Offset 132: its salt.
    pub mk_digest_salt: [u8; SALT_LEN],
    /// Offset 164: its iterations.
    pub mk_digest_iter: u32,
    /// Offset 168: UUID text, NUL-padded to 40 bytes.
    pub uuid: String,
    /// Offset 208: eight key slots of 48 bytes.
    pub slots: [KeySlot; SLOTS],
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// A NUL-padded text field.
fn text(b: &[u8]) -> Result<String> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    std::str::from_utf8(&b[..end])
        .map(str::to_string)
        .map_err(|_| Error::corrupt("LUKS header has a field that is not text"))
}

fn put_text(out: &mut [u8], value: &str) {
    out[..value.len()].copy_from_slice(value.as_bytes());
}

impl Header {
    /// Parses and checks a LUKS1 header as QEMU's `qcrypto_block_luks_load_header`
    /// and `..._check_header` do; `image_len` bounds the offsets.
    pub fn parse(b: &[u8]) -> Result<Header> {
        if b.len() < HEADER_LEN {
            return Err(Error::corrupt("LUKS header is truncated"));
        }
        if &b[..6] != MAGIC {
            return Err(Error::invalid("Volume is not in LUKS format"));
        }
        let version = u16::from_be_bytes([b[6], b[7]]);
        if version != 1 {
            return Err(Error::invalid(format!(
                "LUKS version {version} is not supported"
            )));
        }
        let mut slots = Vec::with_capacity(SLOTS);
        for i in 0..SLOTS {
            let s = &b[208 + 48 * i..208 + 48 * (i + 1)];
            let active = match be32(s, 0) {
                SLOT_ENABLED => true,
                SLOT_DISABLED => false,
                _ => {
                    return Err(Error::corrupt(format!(
                        "Keyslot {i} state (active/disable) is corrupted"
                    )));
                }
            };
            slots.push(KeySlot {
                active,
                iterations: be32(s, 4),
                salt: s[8..40].try_into().expect("32 bytes"),
                key_offset: be32(s, 40),
                stripes: be32(s, 44),
            });
        }
        Ok(Header {
            version,
            cipher_name: text(&b[8..40])?,
            cipher_mode: text(&b[40..72])?,
            hash_spec: text(&b[72..104])?,
            payload_offset: be32(b, 104),
            key_bytes: be32(b, 108),
            mk_digest: b[112..132].try_into().expect("20 bytes"),
            mk_digest_salt: b[132..164].try_into().expect("32 bytes"),
            mk_digest_iter: be32(b, 164),
            uuid: text(&b[168..208])?,
            slots: slots.try_into().expect("8 slots"),
        })
    }

    /// The bytes of the header (592, before the key material).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b[..6].copy_from_slice(MAGIC);
        b[6..8].copy_from_slice(&self.version.to_be_bytes());
        put_text(&mut b[8..40], &self.cipher_name);
        put_text(&mut b[40..72], &self.cipher_mode);
        put_text(&mut b[72..104], &self.hash_spec);
        b[104..108].copy_from_slice(&self.payload_offset.to_be_bytes());
        b[108..112].copy_from_slice(&self.key_bytes.to_be_bytes());
        b[112..132].copy_from_slice(&self.mk_digest);
        b[132..164].copy_from_slice(&self.mk_digest_salt);
        b[164..168].copy_from_slice(&self.mk_digest_iter.to_be_bytes());
        put_text(&mut b[168..208], &self.uuid);
        for (i, slot) in self.slots.iter().enumerate() {
            let s = &mut b[208 + 48 * i..208 + 48 * (i + 1)];
            let state = if slot.active {
                SLOT_ENABLED
            } else {
                SLOT_DISABLED
            };
            s[0..4].copy_from_slice(&state.to_be_bytes());
            s[4..8].copy_from_slice(&slot.iterations.to_be_bytes());
            s[8..40].copy_from_slice(&slot.salt);
            s[40..44].copy_from_slice(&slot.key_offset.to_be_bytes());
            s[44..48].copy_from_slice(&slot.stripes.to_be_bytes());
        }
        b
    }

    /// QEMU's checks of the slots' layout: each slot's material lies past
    /// the header, before the payload, and overlaps no other slot.
    pub fn check_layout(&self) -> Result<()> {
        // The key size itself is the cipher's to check (after this).
        let key_bytes = self.key_bytes as u64;
        let header_sectors = (HEADER_LEN as u64).div_ceil(SECTOR);
        let mut extents = Vec::new();
        for (i, slot) in self.slots.iter().enumerate() {
            if slot.stripes != 4000 {
                return Err(Error::corrupt(format!(
                    "Keyslot {i} is corrupted (stripes {} != 4000)",
                    slot.stripes
                )));
            }
            let start = slot.key_offset as u64;
            let sectors = (key_bytes * slot.stripes as u64).div_ceil(SECTOR);
            if start < header_sectors {
                return Err(Error::corrupt(format!(
                    "Keyslot {i} is overlapping with the LUKS header"
                )));
            }
            if start + sectors > self.payload_offset as u64 {
                return Err(Error::corrupt(format!(
                    "Keyslot {i} is overlapping with the encrypted payload"
                )));
            }
            for (j, &(s, n)) in extents.iter().enumerate() {
                if start < s + n && s < start + sectors {
                    return Err(Error::corrupt(format!(
                        "Keyslots {j} and {i} are overlapping in the header"
                    )));
                }
            }
            extents.push((start, sectors));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A header as QEMU lays one out for aes-256-xts-plain64/sha256.
    pub fn sample() -> Header {
        Header {
            version: 1,
            cipher_name: "aes".into(),
            cipher_mode: "xts-plain64".into(),
            hash_spec: "sha256".into(),
            payload_offset: 4040,
            key_bytes: 64,
            mk_digest: [1; DIGEST_LEN],
            mk_digest_salt: [2; SALT_LEN],
            mk_digest_iter: 1000,
            uuid: "30cae94a-df34-48c2-b2e6-522ef078677b".into(),
            slots: std::array::from_fn(|i| KeySlot {
                active: i == 0,
                iterations: if i == 0 { 1000 } else { 0 },
                salt: [0; SALT_LEN],
                key_offset: 8 + 504 * i as u32,
                stripes: 4000,
            }),
        }
    }

    #[test]
    fn round_trips_and_checks_its_layout() {
        let h = sample();
        let bytes = h.to_bytes();
        assert_eq!(&bytes[..6], MAGIC);
        // payload_offset at byte 104, big-endian.
        assert_eq!(&bytes[104..108], &4040u32.to_be_bytes());
        assert_eq!(Header::parse(&bytes).unwrap(), h);
        h.check_layout().unwrap();
        let mut overlapping = h.clone();
        overlapping.slots[1].key_offset = 9;
        assert!(overlapping.check_layout().is_err());
        let mut bad = bytes.clone();
        bad[208..212].copy_from_slice(&[1, 2, 3, 4]);
        assert!(Header::parse(&bad).is_err());
        assert!(Header::parse(&bytes[..100]).is_err());
    }
}
