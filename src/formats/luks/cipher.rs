//! The sector cipher of a LUKS volume: a block cipher (AES, Twofish,
//! Serpent, CAST5), a mode (XTS, CBC, ECB, CTR) and an IV generator
//! (`plain`, `plain64`, `essiv:HASH`), as cryptsetup and QEMU name them
//! (`aes` + `xts-plain64`): the set QEMU's LUKS driver implements. Each
//! sector is encrypted on its own, its IV derived from its sector number,
//! so any sector can be read or written alone, on any thread.
//!
//! The hash algorithms are those LUKS uses for PBKDF2, the anti-forensic
//! splitter and ESSIV.
//!
//! ```text
//!   SectorCipher --match once per buffer--> Modes<C> (one cipher type C)
//!                                           --loop over sectors--> Xts | Cbc | Ecb | Ctr
//! ```

use aes::cipher::{
    BlockCipher, BlockDecrypt, BlockDecryptMut, BlockEncrypt, BlockEncryptMut, InnerIvInit,
    KeyInit, StreamCipher, block_padding::NoPadding, generic_array::GenericArray,
};
use aes::{Aes128, Aes192, Aes256};
use cast5::Cast5;
use serpent::Serpent;
use sha2::Digest;
use twofish::Twofish;
use zeroize::Zeroizing;

use super::xts::Xts;
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
    Md5,
    Sm3,
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
            "md5" => Hash::Md5,
            "sm3" => Hash::Sm3,
            _ => return None,
        })
    }

    /// A hash a header names, in QEMU's words when it is unknown.
    pub fn from_header(name: &str) -> Result<Hash> {
        Hash::parse(name).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidFormat,
                format!("Hash algorithm '{name}' not supported"),
            )
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
            Hash::Md5 => "md5",
            Hash::Sm3 => "sm3",
        }
    }

    pub fn digest_len(self) -> usize {
        match self {
            Hash::Md5 => 16,
            Hash::Sha1 | Hash::Ripemd160 => 20,
            Hash::Sha224 => 28,
            Hash::Sha256 | Hash::Sm3 => 32,
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
            Hash::Md5 => run::<md5::Md5>(parts),
            Hash::Sm3 => run::<sm3::Sm3>(parts),
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
            Hash::Md5 => pbkdf2_hmac::<md5::Md5>(password, salt, iterations, out),
            Hash::Sm3 => pbkdf2_hmac::<sm3::Sm3>(password, salt, iterations, out),
        }
    }
}

/// A block cipher algorithm, by its LUKS/QEMU name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Aes,
    Twofish,
    Serpent,
    Cast5,
}

impl Algorithm {
    pub fn parse(name: &str) -> Option<Algorithm> {
        Some(match name {
            "aes" => Algorithm::Aes,
            "twofish" => Algorithm::Twofish,
            "serpent" => Algorithm::Serpent,
            "cast5" => Algorithm::Cast5,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Aes => "aes",
            Algorithm::Twofish => "twofish",
            Algorithm::Serpent => "serpent",
            Algorithm::Cast5 => "cast5",
        }
    }

    /// The key sizes QEMU's LUKS driver takes, in bytes.
    pub fn key_sizes(self) -> &'static [usize] {
        match self {
            Algorithm::Cast5 => &[16],
            _ => &[16, 24, 32],
        }
    }

    /// The cipher's block (and IV) length.
    pub fn block_len(self) -> usize {
        match self {
            Algorithm::Cast5 => 8,
            _ => 16,
        }
    }
}

/// The block cipher mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Xts,
    Cbc,
    Ecb,
    Ctr,
}

impl Mode {
    pub fn parse(name: &str) -> Option<Mode> {
        Some(match name {
            "xts" => Mode::Xts,
            "cbc" => Mode::Cbc,
            "ecb" => Mode::Ecb,
            "ctr" => Mode::Ctr,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Xts => "xts",
            Mode::Cbc => "cbc",
            Mode::Ecb => "ecb",
            Mode::Ctr => "ctr",
        }
    }
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
    pub alg: Algorithm,
    /// The algorithm's key size in bytes (16, 24, 32); XTS keys are twice
    /// this.
    pub alg_bytes: usize,
    pub mode: Mode,
    pub ivgen: IvGen,
}

impl CipherSpec {
    /// The key length the volume key has.
    pub fn key_bytes(&self) -> usize {
        match self.mode {
            Mode::Xts => self.alg_bytes * 2,
            _ => self.alg_bytes,
        }
    }

    /// QEMU's name: "aes-256", "cast5-128".
    pub fn alg_name(&self) -> String {
        format!("{}-{}", self.alg.name(), self.alg_bytes * 8)
    }

    pub fn mode_name(&self) -> &'static str {
        self.mode.name()
    }

    /// The header's cipher-mode string: "xts-plain64", "cbc-essiv:sha256".
    pub fn header_mode(&self) -> String {
        match self.ivgen {
            IvGen::Essiv(h) => format!("{}-essiv:{}", self.mode_name(), h.name()),
            other => format!("{}-{}", self.mode_name(), other.name()),
        }
    }

    /// The key size of ESSIV's cipher (QEMU's dm-crypt quirk: the digest
    /// length picks the key size, within the payload cipher's family).
    pub fn essiv_key_bytes(alg: Algorithm, alg_bytes: usize, hash: Hash) -> Result<usize> {
        let digest = hash.digest_len();
        let family = match alg {
            _ if digest == alg_bytes => return Ok(digest),
            Algorithm::Aes => "AES",
            Algorithm::Serpent => "Serpent",
            Algorithm::Twofish => "Twofish",
            Algorithm::Cast5 => {
                return Err(Error::invalid(format!(
                    "Cipher cast5-{} not supported with essiv",
                    alg_bytes * 8
                )));
            }
        };
        match alg.key_sizes().contains(&digest) {
            true => Ok(digest),
            false => Err(Error::invalid(format!(
                "No {family} cipher with key size {digest} available"
            ))),
        }
    }

    /// Reads the header's cipher name, cipher mode and key size, with
    /// QEMU's checks in its order and its words.
    pub fn from_header(cipher: &str, mode: &str, key_bytes: usize) -> Result<CipherSpec> {
        let invalid = |what: String| Error::new(ErrorKind::InvalidFormat, what);
        let (mode_name, ivgen_spec) = mode
            .split_once('-')
            .ok_or_else(|| invalid(format!("Unexpected cipher mode string format '{mode}'")))?;
        // The IV hash is read even for the generators that ignore it.
        let (ivgen_name, ivgen_hash) = match ivgen_spec.split_once(':') {
            Some((name, hash)) => (name, Some(Hash::from_header(hash)?)),
            None => (ivgen_spec, None),
        };
        let mode = Mode::parse(mode_name)
            .ok_or_else(|| invalid(format!("Cipher mode '{mode_name}' not supported")))?;
        // XTS keys are two keys of the algorithm.
        let alg_bytes = match mode {
            Mode::Xts => key_bytes / 2,
            _ => key_bytes,
        };
        let alg = Algorithm::parse(cipher)
            .filter(|a| a.key_sizes().contains(&alg_bytes))
            .ok_or_else(|| {
                invalid(format!(
                    "Algorithm '{cipher}' with key size {alg_bytes} bytes not supported"
                ))
            })?;
        let ivgen = match ivgen_name {
            "plain" => IvGen::Plain,
            "plain64" => IvGen::Plain64,
            "essiv" => {
                let hash = ivgen_hash.ok_or_else(|| {
                    invalid("Missing IV generator hash specification".to_string())
                })?;
                CipherSpec::essiv_key_bytes(alg, alg_bytes, hash)?;
                IvGen::Essiv(hash)
            }
            other => return Err(invalid(format!("IV generator '{other}' not supported"))),
        };
        Ok(CipherSpec {
            alg,
            alg_bytes,
            mode,
            ivgen,
        })
    }
}

/// What a LUKS sector cipher needs of a block cipher type.
trait LuksBlock: BlockCipher + BlockEncrypt + BlockDecrypt + KeyInit + Clone {
    /// Applies CTR's keystream from the counter block `iv` to `sector`, as
    /// nettle (QEMU's backend) counts: the whole block is one big-endian
    /// counter.
    fn ctr(&self, iv: &[u8], sector: &mut [u8]);
}

macro_rules! luks_block {
    ($($cipher:ty => $ctr:ident),* $(,)?) => {$(
        impl LuksBlock for $cipher {
            fn ctr(&self, iv: &[u8], sector: &mut [u8]) {
                let core = ctr::CtrCore::<$cipher, ctr::flavors::$ctr>::inner_iv_slice_init(
                    self.clone(),
                    iv,
                )
                .expect("block-sized IV");
                ctr::$ctr::<$cipher>::from_core(core).apply_keystream(sector);
            }
        }
    )*};
}

luks_block!(
    Aes128 => Ctr128BE,
    Aes192 => Ctr128BE,
    Aes256 => Ctr128BE,
    Twofish => Ctr128BE,
    Serpent => Ctr128BE,
    Cast5 => Ctr64BE,
);

fn keyed<C: KeyInit>(key: &[u8]) -> Result<C> {
    C::new_from_slice(key).map_err(|_| Error::invalid("LUKS key has the wrong length"))
}

/// One keyed block cipher type in one mode.
enum Modes<C: LuksBlock> {
    Xts(Xts<C>),
    Cbc(C),
    Ecb(C),
    Ctr(C),
}

impl<C: LuksBlock> Modes<C> {
    fn new(mode: Mode, key: &[u8]) -> Result<Box<Modes<C>>> {
        Ok(Box::new(match mode {
            Mode::Xts => {
                let (a, b) = key.split_at(key.len() / 2);
                Modes::Xts(Xts::new(keyed(a)?, keyed(b)?))
            }
            Mode::Cbc => Modes::Cbc(keyed(key)?),
            Mode::Ecb => Modes::Ecb(keyed(key)?),
            Mode::Ctr => Modes::Ctr(keyed(key)?),
        }))
    }

    /// Every sector of `buf`, with the IV of its number (one match, then a
    /// loop monomorphised for the cipher and mode).
    fn sectors(&self, ivs: &Ivs, buf: &mut [u8], sector_size: usize, first: u64, encrypt: bool) {
        debug_assert_eq!(buf.len() % sector_size, 0);
        let step = (sector_size / 512).max(1) as u64;
        let numbered = buf
            .chunks_exact_mut(sector_size)
            .zip((0..).map(|i: u64| first + i * step));
        let bs = C::block_size();
        match self {
            Modes::Xts(x) => {
                for (sector, n) in numbered {
                    match encrypt {
                        true => x.encrypt_sector(sector, ivs.iv(n)),
                        false => x.decrypt_sector(sector, ivs.iv(n)),
                    }
                }
            }
            Modes::Cbc(c) => {
                for (sector, n) in numbered {
                    let iv = ivs.iv(n);
                    if encrypt {
                        cbc::Encryptor::<C>::inner_iv_slice_init(c.clone(), &iv[..bs])
                            .expect("block-sized IV")
                            .encrypt_padded_mut::<NoPadding>(sector, sector.len())
                            .map(drop)
                            .expect("whole blocks")
                    } else {
                        cbc::Decryptor::<C>::inner_iv_slice_init(c.clone(), &iv[..bs])
                            .expect("block-sized IV")
                            .decrypt_padded_mut::<NoPadding>(sector)
                            .map(drop)
                            .expect("whole blocks")
                    }
                }
            }
            // ECB takes no IV: each block on its own.
            Modes::Ecb(c) => {
                for block in buf.chunks_exact_mut(bs) {
                    let block = GenericArray::from_mut_slice(block);
                    match encrypt {
                        true => c.encrypt_block(block),
                        false => c.decrypt_block(block),
                    }
                }
            }
            // CTR: the IV is the first counter block; both ways alike.
            Modes::Ctr(c) => {
                for (sector, n) in numbered {
                    c.ctr(&ivs.iv(n)[..bs], sector);
                }
            }
        }
    }
}

/// The payload cipher, one variant per cipher type.
enum Engine {
    Aes128(Box<Modes<Aes128>>),
    Aes192(Box<Modes<Aes192>>),
    Aes256(Box<Modes<Aes256>>),
    Twofish(Box<Modes<Twofish>>),
    Serpent(Box<Modes<Serpent>>),
    Cast5(Box<Modes<Cast5>>),
}

/// ESSIV's cipher: the payload's algorithm keyed with the hash of the key.
#[derive(Clone)]
enum EssivCipher {
    Aes128(Aes128),
    Aes192(Aes192),
    Aes256(Aes256),
    Twofish(Twofish),
    Serpent(Serpent),
    Cast5(Cast5),
}

impl EssivCipher {
    fn new(alg: Algorithm, key: &[u8]) -> Result<EssivCipher> {
        Ok(match (alg, key.len()) {
            (Algorithm::Aes, 16) => EssivCipher::Aes128(keyed(key)?),
            (Algorithm::Aes, 24) => EssivCipher::Aes192(keyed(key)?),
            (Algorithm::Aes, _) => EssivCipher::Aes256(keyed(key)?),
            (Algorithm::Twofish, _) => EssivCipher::Twofish(keyed(key)?),
            (Algorithm::Serpent, _) => EssivCipher::Serpent(keyed(key)?),
            (Algorithm::Cast5, _) => EssivCipher::Cast5(keyed(key)?),
        })
    }

    /// Encrypts the first block of `iv` (8 or 16 bytes).
    fn encrypt(&self, iv: &mut [u8; 16]) {
        fn one<C: BlockEncrypt>(c: &C, iv: &mut [u8; 16]) {
            c.encrypt_block(GenericArray::from_mut_slice(&mut iv[..C::block_size()]))
        }
        match self {
            EssivCipher::Aes128(c) => one(c, iv),
            EssivCipher::Aes192(c) => one(c, iv),
            EssivCipher::Aes256(c) => one(c, iv),
            EssivCipher::Twofish(c) => one(c, iv),
            EssivCipher::Serpent(c) => one(c, iv),
            EssivCipher::Cast5(c) => one(c, iv),
        }
    }
}

/// The IV generator, keyed.
struct Ivs {
    ivgen: IvGen,
    essiv: Option<EssivCipher>,
}

impl Ivs {
    /// The IV of sector `n`; the cipher takes as many bytes as its block.
    fn iv(&self, n: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        match self.ivgen {
            IvGen::Plain => iv[..4].copy_from_slice(&(n as u32).to_le_bytes()),
            IvGen::Plain64 | IvGen::Essiv(_) => iv[..8].copy_from_slice(&n.to_le_bytes()),
        }
        if let Some(essiv) = &self.essiv {
            essiv.encrypt(&mut iv);
        }
        iv
    }
}

/// A keyed sector cipher: encrypts and decrypts whole sectors in place.
pub struct SectorCipher {
    spec: CipherSpec,
    engine: Engine,
    ivs: Ivs,
}

impl SectorCipher {
    pub fn new(spec: CipherSpec, key: &[u8]) -> Result<SectorCipher> {
        if key.len() != spec.key_bytes() {
            return Err(Error::invalid("LUKS key has the wrong length"));
        }
        // XTS needs 16-byte blocks (QEMU's nettle backend says so too).
        if spec.mode == Mode::Xts && spec.alg.block_len() != 16 {
            return Err(Error::new(
                ErrorKind::UnsupportedFeature,
                "Unsupported cipher mode xts",
            ));
        }
        let engine = match (spec.alg, spec.alg_bytes) {
            (Algorithm::Aes, 16) => Engine::Aes128(Modes::new(spec.mode, key)?),
            (Algorithm::Aes, 24) => Engine::Aes192(Modes::new(spec.mode, key)?),
            (Algorithm::Aes, _) => Engine::Aes256(Modes::new(spec.mode, key)?),
            (Algorithm::Twofish, _) => Engine::Twofish(Modes::new(spec.mode, key)?),
            (Algorithm::Serpent, _) => Engine::Serpent(Modes::new(spec.mode, key)?),
            (Algorithm::Cast5, _) => Engine::Cast5(Modes::new(spec.mode, key)?),
        };
        let essiv = match spec.ivgen {
            IvGen::Essiv(hash) => {
                CipherSpec::essiv_key_bytes(spec.alg, spec.alg_bytes, hash)?;
                Some(EssivCipher::new(spec.alg, &hash.digest(&[key]))?)
            }
            _ => None,
        };
        Ok(SectorCipher {
            spec,
            engine,
            ivs: Ivs {
                ivgen: spec.ivgen,
                essiv,
            },
        })
    }

    pub fn spec(&self) -> CipherSpec {
        self.spec
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
        let ivs = &self.ivs;
        match &self.engine {
            Engine::Aes128(m) => m.sectors(ivs, buf, sector_size, first, encrypt),
            Engine::Aes192(m) => m.sectors(ivs, buf, sector_size, first, encrypt),
            Engine::Aes256(m) => m.sectors(ivs, buf, sector_size, first, encrypt),
            Engine::Twofish(m) => m.sectors(ivs, buf, sector_size, first, encrypt),
            Engine::Serpent(m) => m.sectors(ivs, buf, sector_size, first, encrypt),
            Engine::Cast5(m) => m.sectors(ivs, buf, sector_size, first, encrypt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cipher_and_mode_round_trips_and_differs_per_sector() {
        for alg in ["aes", "twofish", "serpent", "cast5"] {
            let sizes = Algorithm::parse(alg).unwrap().key_sizes();
            for mode in [
                "xts-plain64",
                "xts-plain",
                "cbc-plain64",
                "cbc-essiv:sha256",
                "cbc-essiv:md5",
                "ecb-plain64",
                "ctr-plain",
                "ctr-essiv:sm3",
            ] {
                for &bytes in sizes {
                    let key_bytes = if mode.starts_with("xts") {
                        bytes * 2
                    } else {
                        bytes
                    };
                    let Ok(spec) = CipherSpec::from_header(alg, mode, key_bytes) else {
                        continue;
                    };
                    assert_eq!(spec.header_mode(), mode);
                    let key: Vec<u8> = (0..key_bytes as u8).collect();
                    let Ok(cipher) = SectorCipher::new(spec, &key) else {
                        assert_eq!((alg, &mode[..3]), ("cast5", "xts"));
                        continue;
                    };
                    let plain = vec![7u8; 1024];
                    let mut buf = plain.clone();
                    cipher.encrypt(&mut buf, 512, 5);
                    assert_ne!(buf[..], plain[..], "{alg} {mode}");
                    if !mode.starts_with("ecb") {
                        assert_ne!(buf[..512], buf[512..], "{alg} {mode}");
                    }
                    cipher.decrypt(&mut buf, 512, 5);
                    assert_eq!(buf, plain, "{alg}-{} {mode}", bytes * 8);
                }
            }
        }
    }

    #[test]
    fn refuses_what_qemu_refuses_in_its_words() {
        let err = |c: &str, m: &str, k: usize| {
            CipherSpec::from_header(c, m, k)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            err("sm4", "xts-plain64", 32),
            "Algorithm 'sm4' with key size 16 bytes not supported"
        );
        assert_eq!(
            err("aes", "ofb-plain", 32),
            "Cipher mode 'ofb' not supported"
        );
        assert!(err("aes", "xts", 64).starts_with("Unexpected cipher mode"));
        assert!(err("aes", "xts-plain64", 40).starts_with("Algorithm 'aes'"));
        assert_eq!(
            err("aes", "cbc-essiv:sha1", 16),
            "No AES cipher with key size 20 available"
        );
        assert_eq!(
            err("cast5", "cbc-essiv:sha256", 16),
            "Cipher cast5-128 not supported with essiv"
        );
        let cast5_xts = CipherSpec::from_header("cast5", "xts-plain64", 32).unwrap();
        assert_eq!(
            SectorCipher::new(cast5_xts, &[1; 32])
                .err()
                .unwrap()
                .to_string(),
            "Unsupported cipher mode xts"
        );
    }
}
