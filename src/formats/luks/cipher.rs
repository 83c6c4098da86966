//! The sector cipher of a LUKS volume: an AES key in XTS or CBC mode and an
//! IV generator (`plain`, `plain64`, `essiv:HASH`), as cryptsetup and QEMU
//! name them (`aes` + `xts-plain64`). Each sector is encrypted on its own,
//! its IV derived from its sector number, so any sector can be read or
//! written alone, on any thread.
//!
//! The hash algorithms are those LUKS uses for PBKDF2, the anti-forensic
//! splitter and ESSIV.

use aes::cipher::{
    BlockDecryptMut, BlockEncrypt, BlockEncryptMut, KeyInit, KeyIvInit, block_padding::NoPadding,
    generic_array::GenericArray,
};
use aes::{Aes128, Aes192, Aes256};
use sha2::Digest;
use xts_mode::Xts128;
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};

/// A hash algorithm, by its LUKS/QEMU name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Ripemd160,
}

impl Hash {
    pub fn parse(name: &str) -> Option<Hash> {
        Some(match name {
            "sha1" => Hash::Sha1,
            "sha224" => Hash::Sha224,
            "sha256" => Hash::Sha256,
            "sha384" => Hash::Sha384,
            "sha512" => Hash::Sha512,
            "ripemd160" => Hash::Ripemd160,
            _ => return None,
        })
    }

    /// A hash a header names, in QEMU's words when it is unknown.
    pub fn from_header(name: &str) -> Result<Hash> {
        Hash::parse(name).ok_or_else(|| match name {
            "md5" | "sm3" => Error::new(
                ErrorKind::UnsupportedFeature,
                format!("LUKS hash '{name}' is not supported by rbdimg"),
            ),
            _ => Error::new(
                ErrorKind::InvalidFormat,
                format!("Hash algorithm '{name}' not supported"),
            ),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Hash::Sha1 => "sha1",
            Hash::Sha224 => "sha224",
            Hash::Sha256 => "sha256",
            Hash::Sha384 => "sha384",
            Hash::Sha512 => "sha512",
            Hash::Ripemd160 => "ripemd160",
        }
    }

    pub fn digest_len(self) -> usize {
        match self {
            Hash::Sha1 | Hash::Ripemd160 => 20,
            Hash::Sha224 => 28,
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    /// The digest of the concatenated parts.
    pub fn digest(self, parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            Zeroizing::new(d.finalize().to_vec())
        }
        match self {
            Hash::Sha1 => run::<sha1::Sha1>(parts),
            Hash::Sha224 => run::<sha2::Sha224>(parts),
            Hash::Sha256 => run::<sha2::Sha256>(parts),
            Hash::Sha384 => run::<sha2::Sha384>(parts),
            Hash::Sha512 => run::<sha2::Sha512>(parts),
            Hash::Ripemd160 => run::<ripemd::Ripemd160>(parts),
        }
    }

    /// PBKDF2-HMAC with this hash, filling `out`.
    pub fn pbkdf2(self, password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
        use pbkdf2::pbkdf2_hmac;
        match self {
            Hash::Sha1 => pbkdf2_hmac::<sha1::Sha1>(password, salt, iterations, out),
            Hash::Sha224 => pbkdf2_hmac::<sha2::Sha224>(password, salt, iterations, out),
            Hash::Sha256 => pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, out),
            Hash::Sha384 => pbkdf2_hmac::<sha2::Sha384>(password, salt, iterations, out),
            Hash::Sha512 => pbkdf2_hmac::<sha2::Sha512>(password, salt, iterations, out),
            Hash::Ripemd160 => pbkdf2_hmac::<ripemd::Ripemd160>(password, salt, iterations, out),
        }
    }
}

/// The block cipher mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Xts,
    Cbc,
}

/// How each sector's IV comes from its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IvGen {
    /// The sector number, 32 bits little-endian.
    Plain,
    /// The sector number, 64 bits little-endian.
    Plain64,
    /// The 64-bit sector number encrypted with a key hashed from the
    /// volume key.
    Essiv(Hash),
}

impl IvGen {
    pub fn name(self) -> &'static str {
        match self {
            IvGen::Plain => "plain",
            IvGen::Plain64 => "plain64",
            IvGen::Essiv(_) => "essiv",
        }
    }
}

/// A LUKS cipher: algorithm, mode and IV generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CipherSpec {
    /// AES key size in bytes (16, 24, 32); XTS keys are twice this.
    pub aes_bytes: usize,
    pub mode: Mode,
    pub ivgen: IvGen,
}

impl CipherSpec {
    /// The key length the volume key has.
    pub fn key_bytes(&self) -> usize {
        match self.mode {
            Mode::Xts => self.aes_bytes * 2,
            Mode::Cbc => self.aes_bytes,
        }
    }

    /// QEMU's name: "aes-256".
    pub fn alg_name(&self) -> String {
        format!("aes-{}", self.aes_bytes * 8)
    }

    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            Mode::Xts => "xts",
            Mode::Cbc => "cbc",
        }
    }

    /// The header's cipher-mode string: "xts-plain64", "cbc-essiv:sha256".
    pub fn header_mode(&self) -> String {
        match self.ivgen {
            IvGen::Essiv(h) => format!("{}-essiv:{}", self.mode_name(), h.name()),
            other => format!("{}-{}", self.mode_name(), other.name()),
        }
    }

    /// Reads the header's cipher name, cipher mode and key size, with
    /// QEMU's checks in its order and its words; what QEMU reads and
    /// rbdimg does not (other ciphers, modes, hashes) is named as such.
    pub fn from_header(cipher: &str, mode: &str, key_bytes: usize) -> Result<CipherSpec> {
        let unsupported = |what: String| {
            Error::new(
                ErrorKind::UnsupportedFeature,
                format!("{what} is not supported by rbdimg"),
            )
        };
        let invalid = |what: String| Error::new(ErrorKind::InvalidFormat, what);
        let (mode_name, ivgen_spec) = mode
            .split_once('-')
            .ok_or_else(|| invalid(format!("Unexpected cipher mode string format '{mode}'")))?;
        let (ivgen_name, ivgen_hash) = match ivgen_spec.split_once(':') {
            Some((name, hash)) => (name, Some(hash)),
            None => (ivgen_spec, None),
        };
        let mode = match mode_name {
            "xts" => Mode::Xts,
            "cbc" => Mode::Cbc,
            "ecb" | "ctr" => return Err(unsupported(format!("LUKS cipher mode '{mode_name}'"))),
            other => return Err(invalid(format!("Cipher mode '{other}' not supported"))),
        };
        // XTS keys are two AES keys.
        let aes_bytes = match mode {
            Mode::Xts => key_bytes / 2,
            Mode::Cbc => key_bytes,
        };
        const QEMU_CIPHERS: &[&str] = &["aes", "cast5", "serpent", "twofish", "sm4", "des", "3des"];
        if !QEMU_CIPHERS.contains(&cipher) || cipher == "aes" && ![16, 24, 32].contains(&aes_bytes)
        {
            return Err(invalid(format!(
                "Algorithm '{cipher}' with key size {aes_bytes} bytes not supported"
            )));
        }
        if cipher != "aes" {
            return Err(unsupported(format!("LUKS cipher '{cipher}'")));
        }
        let hash = Hash::from_header;
        let ivgen = match ivgen_name {
            "plain" => IvGen::Plain,
            "plain64" => IvGen::Plain64,
            "essiv" => IvGen::Essiv(hash(ivgen_hash.ok_or_else(|| {
                invalid("Missing IV generator hash specification".to_string())
            })?)?),
            other => return Err(invalid(format!("IV generator '{other}' not supported"))),
        };
        Ok(CipherSpec {
            aes_bytes,
            mode,
            ivgen,
        })
    }
}

/// An AES key of any size.
#[derive(Clone)]
enum Aes {
    A128(Aes128),
    A192(Aes192),
    A256(Aes256),
}

impl Aes {
    fn new(key: &[u8]) -> Result<Aes> {
        Ok(match key.len() {
            16 => Aes::A128(Aes128::new_from_slice(key).expect("16 bytes")),
            24 => Aes::A192(Aes192::new_from_slice(key).expect("24 bytes")),
            32 => Aes::A256(Aes256::new_from_slice(key).expect("32 bytes")),
            n => {
                return Err(Error::invalid(format!(
                    "No AES cipher with key size {n} available"
                )));
            }
        })
    }

    fn encrypt_block(&self, block: &mut [u8; 16]) {
        let b = GenericArray::from_mut_slice(block);
        match self {
            Aes::A128(c) => c.encrypt_block(b),
            Aes::A192(c) => c.encrypt_block(b),
            Aes::A256(c) => c.encrypt_block(b),
        }
    }
}

enum Engine {
    Xts128(Box<Xts128<Aes128>>),
    Xts192(Box<Xts128<Aes192>>),
    Xts256(Box<Xts128<Aes256>>),
    Cbc(Zeroizing<Vec<u8>>),
}

/// A keyed sector cipher: encrypts and decrypts whole sectors in place.
pub struct SectorCipher {
    spec: CipherSpec,
    engine: Engine,
    /// ESSIV's cipher, keyed with the hash of the key.
    essiv: Option<Aes>,
}

impl SectorCipher {
    pub fn new(spec: CipherSpec, key: &[u8]) -> Result<SectorCipher> {
        if key.len() != spec.key_bytes() {
            return Err(Error::invalid("LUKS key has the wrong length"));
        }
        let half = |k: &[u8]| (k[..k.len() / 2].to_vec(), k[k.len() / 2..].to_vec());
        let engine = match (spec.mode, spec.aes_bytes) {
            (Mode::Xts, 16) => {
                let (a, b) = half(key);
                Engine::Xts128(Box::new(Xts128::new(
                    Aes128::new_from_slice(&a).expect("16"),
                    Aes128::new_from_slice(&b).expect("16"),
                )))
            }
            (Mode::Xts, 24) => {
                let (a, b) = half(key);
                Engine::Xts192(Box::new(Xts128::new(
                    Aes192::new_from_slice(&a).expect("24"),
                    Aes192::new_from_slice(&b).expect("24"),
                )))
            }
            (Mode::Xts, _) => {
                let (a, b) = half(key);
                Engine::Xts256(Box::new(Xts128::new(
                    Aes256::new_from_slice(&a).expect("32"),
                    Aes256::new_from_slice(&b).expect("32"),
                )))
            }
            (Mode::Cbc, _) => Engine::Cbc(Zeroizing::new(key.to_vec())),
        };
        let essiv = match spec.ivgen {
            IvGen::Essiv(hash) => Some(Aes::new(&hash.digest(&[key]))?),
            _ => None,
        };
        Ok(SectorCipher {
            spec,
            engine,
            essiv,
        })
    }

    pub fn spec(&self) -> CipherSpec {
        self.spec
    }

    fn iv(&self, sector: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        match self.spec.ivgen {
            IvGen::Plain => iv[..4].copy_from_slice(&(sector as u32).to_le_bytes()),
            IvGen::Plain64 | IvGen::Essiv(_) => iv[..8].copy_from_slice(&sector.to_le_bytes()),
        }
        if let Some(essiv) = &self.essiv {
            essiv.encrypt_block(&mut iv);
        }
        iv
    }

    /// Encrypts `buf` (whole sectors of `sector_size`) in place. IVs count
    /// 512-byte units whatever the sector size (as dm-crypt and librbd count
    /// them): the first sector's IV number is `first_iv`, the next one's
    /// `first_iv + sector_size / 512`.
    pub fn encrypt(&self, buf: &mut [u8], sector_size: usize, first_iv: u64) {
        self.each_sector(buf, sector_size, first_iv, true)
    }

    pub fn decrypt(&self, buf: &mut [u8], sector_size: usize, first_iv: u64) {
        self.each_sector(buf, sector_size, first_iv, false)
    }

    fn each_sector(&self, buf: &mut [u8], sector_size: usize, first: u64, encrypt: bool) {
        debug_assert_eq!(buf.len() % sector_size, 0);
        let step = (sector_size / 512).max(1) as u64;
        for (i, sector) in buf.chunks_exact_mut(sector_size).enumerate() {
            let iv = self.iv(first + i as u64 * step);
            match &self.engine {
                Engine::Xts128(x) if encrypt => x.encrypt_sector(sector, iv),
                Engine::Xts128(x) => x.decrypt_sector(sector, iv),
                Engine::Xts192(x) if encrypt => x.encrypt_sector(sector, iv),
                Engine::Xts192(x) => x.decrypt_sector(sector, iv),
                Engine::Xts256(x) if encrypt => x.encrypt_sector(sector, iv),
                Engine::Xts256(x) => x.decrypt_sector(sector, iv),
                Engine::Cbc(key) => cbc_sector(key, &iv, sector, encrypt),
            }
        }
    }
}

fn cbc_sector(key: &[u8], iv: &[u8; 16], sector: &mut [u8], encrypt: bool) {
    macro_rules! run {
        ($aes:ty) => {
            if encrypt {
                cbc::Encryptor::<$aes>::new_from_slices(key, iv)
                    .expect("key length checked")
                    .encrypt_padded_mut::<NoPadding>(sector, sector.len())
                    .map(drop)
                    .expect("whole blocks")
            } else {
                cbc::Decryptor::<$aes>::new_from_slices(key, iv)
                    .expect("key length checked")
                    .decrypt_padded_mut::<NoPadding>(sector)
                    .map(drop)
                    .expect("whole blocks")
            }
        };
    }
    match key.len() {
        16 => run!(Aes128),
        24 => run!(Aes192),
        _ => run!(Aes256),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_round_trips_and_differs_per_sector() {
        for mode in [
            "xts-plain64",
            "xts-plain",
            "cbc-plain64",
            "cbc-essiv:sha256",
        ] {
            for aes in [16, 24, 32] {
                let key_bytes = if mode.starts_with("xts") {
                    aes * 2
                } else {
                    aes
                };
                let spec = CipherSpec::from_header("aes", mode, key_bytes).unwrap();
                assert_eq!(spec.header_mode(), mode);
                let key: Vec<u8> = (0..key_bytes as u8).collect();
                let cipher = SectorCipher::new(spec, &key).unwrap();
                let plain = vec![7u8; 1024];
                let mut buf = plain.clone();
                cipher.encrypt(&mut buf, 512, 5);
                assert_ne!(buf[..512], buf[512..], "{mode}");
                cipher.decrypt(&mut buf, 512, 5);
                assert_eq!(buf, plain, "{mode} aes-{}", aes * 8);
            }
        }
    }

    #[test]
    fn refuses_what_it_does_not_implement() {
        assert!(CipherSpec::from_header("twofish", "xts-plain64", 64).is_err());
        assert!(CipherSpec::from_header("aes", "ecb-plain", 32).is_err());
        assert!(CipherSpec::from_header("aes", "xts", 64).is_err());
        assert!(CipherSpec::from_header("aes", "xts-plain64", 40).is_err());
    }
}
