//! qcow2's encryption. LUKS (`encrypt.format=luks`, crypt_method 2): a
//! LUKS1 volume whose header and key slots live in the clusters the crypto
//! header extension points at; each data cluster is encrypted in 512-byte
//! sectors whose IVs count host offsets (QEMU's "physical offset" IVs).
//! Legacy AES (`encrypt.format=aes`, crypt_method 1, QEMU's
//! `crypto/block-qcow.c`): no header at all, the key is the passphrase's
//! first 16 bytes (zero-padded), AES-128-CBC with `plain64` IVs that count
//! guest offsets. Either way zero and unallocated clusters read as zeros
//! without decryption.
//!
//! Writes encrypt on the caller's thread (a convert worker) into a copy;
//! the image layer makes every encrypted write whole sectors.

use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::Qcow2Image;
use super::header::{CRYPT_AES, CRYPT_LUKS, CRYPT_NONE, Header};
use crate::block::options::Options;
use crate::error::{Error, Result};
use crate::formats::OpenFlags;
use crate::formats::luks::cipher::{Algorithm, CipherSpec, IvGen, Mode, SectorCipher};
use crate::formats::luks::header::SECTOR;
use crate::formats::luks::keyslots;
use crate::formats::luks::options as luks_options;
use crate::formats::luks::volume::{FormatOptions, Volume};
use crate::storage::Storage;

/// An encrypted image's volume: described always, unlocked unless opened
/// for `info` only.
pub struct Crypto {
    /// The `encrypt` block of `info`'s format-specific data.
    pub info: Map<String, Value>,
    cipher: Option<SectorCipher>,
    /// The id of the secret it was unlocked with (`encrypt.key-secret`).
    key_secret: Option<String>,
    /// IVs count guest offsets (legacy AES), not host offsets (LUKS).
    guest_ivs: bool,
}

/// The encryption `create -o encrypt.format=luks|aes,...` asks for.
#[derive(Debug, Clone)]
pub struct Encryption {
    pub key_secret: String,
    /// The LUKS volume's options; None for legacy AES.
    pub luks: Option<FormatOptions>,
}

/// Legacy AES's cipher (QEMU's `qcrypto_block_qcow_init`).
const LEGACY_AES: CipherSpec = CipherSpec {
    alg: Algorithm::Aes,
    alg_bytes: 16,
    mode: Mode::Cbc,
    ivgen: IvGen::Plain64,
};

/// Legacy AES's key: the passphrase's first 16 bytes, zero-padded.
fn legacy_key(passphrase: &[u8]) -> Zeroizing<[u8; 16]> {
    let mut key = Zeroizing::new([0u8; 16]);
    let n = passphrase.len().min(16);
    key[..n].copy_from_slice(&passphrase[..n]);
    key
}

/// Reads `encrypt.*` (and the legacy `encryption`) as qcow2's create does.
pub fn create_options(o: &Options) -> Result<Option<Encryption>> {
    let legacy = o.bool("encryption")?.unwrap_or(false);
    let format = match (o.get("encrypt.format"), legacy) {
        (Some("aes"), _) | (None, true) => "aes",
        (Some("luks"), _) => "luks",
        (Some(other), _) => {
            return Err(Error::invalid(format!(
                "Parameter 'format' does not accept value '{other}'"
            )));
        }
        (None, false) => {
            const OPTIONS: &[&str] = &[
                "encrypt.key-secret",
                "encrypt.cipher-alg",
                "encrypt.cipher-mode",
                "encrypt.ivgen-alg",
                "encrypt.ivgen-hash-alg",
                "encrypt.hash-alg",
                "encrypt.iter-time",
            ];
            let any = OPTIONS.iter().any(|k| o.get(k).is_some());
            return match any {
                true => Err(Error::invalid("Parameter 'encrypt.format' is missing")),
                false => Ok(None),
            };
        }
    };
    let required = || Error::invalid("Parameter 'encrypt.key-secret' is required for cipher");
    if format == "aes" {
        // QEMU's qcow encryption takes the secret and nothing else.
        let key_secret = o.get("encrypt.key-secret").ok_or_else(required)?;
        let extra = luks_options::FORMAT_OPTIONS
            .iter()
            .map(|d| format!("encrypt.{}", d.name))
            .find(|k| k != "encrypt.key-secret" && o.get(k).is_some());
        if let Some(key) = extra {
            return Err(Error::invalid(format!("Parameter '{key}' is unexpected")));
        }
        crate::secret::lookup_utf8(key_secret)?;
        return Ok(Some(Encryption {
            key_secret: key_secret.to_string(),
            luks: None,
        }));
    }
    let (key_secret, options) = luks_options::parse(o, "encrypt.")?;
    Ok(Some(Encryption {
        key_secret: key_secret.ok_or_else(required)?,
        luks: Some(options),
    }))
}

/// QEMU's `qcow2_set_up_encryption` on a new image: clusters for the LUKS
/// header and key slots (zeroed), the volume formatted in them, then the
/// header's crypt method and crypto extension. Legacy AES has only the
/// crypt method.
pub fn set_up(img: &Qcow2Image, encryption: &Encryption) -> Result<()> {
    let passphrase = crate::secret::lookup_utf8(&encryption.key_secret)?;
    let Some(options) = &encryption.luks else {
        let mut m = img.lock();
        m.header.crypt_method = CRYPT_AES;
        return m.write_header();
    };
    let len = options.header_len();
    let cs = img.geometry().cluster_size;
    let offset = img.lock().alloc_clusters(len.next_multiple_of(cs))?;
    let file = img.container();
    let zeros = vec![0u8; len.next_multiple_of(cs).min(1 << 20) as usize];
    let mut done = 0;
    while done < len.next_multiple_of(cs) {
        let n = (len.next_multiple_of(cs) - done).min(zeros.len() as u64);
        file.write_at(&zeros[..n as usize], offset + done)?;
        done += n;
    }
    let write = |buf: &[u8], at: u64| file.write_at(buf, offset + at);
    Volume::format(options, passphrase.bytes(), &write)?;
    let mut m = img.lock();
    m.header.crypt_method = CRYPT_LUKS;
    m.header.crypto_header = Some((offset, len));
    m.write_header()
}

/// Reads the volume of an encrypted image (None for a plain one), unlocked
/// with the secret `encrypt.key-secret` names.
pub fn open(h: &Header, file: &dyn Storage, opts: &OpenFlags) -> Result<Option<Crypto>> {
    if h.crypt_method == CRYPT_NONE {
        return Ok(None);
    }
    let passphrase = match (&opts.key_secret, opts.metadata_only) {
        (_, true) => None,
        (Some(id), false) => Some(crate::secret::lookup_utf8(id)?),
        (None, false) => {
            return Err(Error::invalid(
                "Parameter 'encrypt.key-secret' is required for cipher",
            ));
        }
    };
    if h.crypt_method == CRYPT_AES {
        let mut info = Map::new();
        info.insert("format".into(), json!("aes"));
        let cipher = passphrase
            .map(|p| SectorCipher::new(LEGACY_AES, &legacy_key(p.bytes())[..]))
            .transpose()?;
        return Ok(Some(Crypto {
            info,
            cipher,
            key_secret: opts.key_secret.clone(),
            guest_ivs: true,
        }));
    }
    let Some((offset, length)) = h.crypto_header else {
        return Err(Error::corrupt("Missing CRYPTO header for crypt method 2"));
    };
    let read =
        |buf: &mut [u8], at: u64| file.read_at(buf, in_header((offset, length), at, buf.len())?);
    let volume = Volume::open(&read, passphrase.as_ref().map(|p| p.bytes()))?;
    let mut info = volume.info();
    info.insert("format".into(), json!("luks"));
    Ok(Some(Crypto {
        info,
        cipher: volume.cipher,
        key_secret: opts.key_secret.clone(),
        guest_ivs: false,
    }))
}

/// Where byte `at` of the LUKS header lives in the file, for an access of
/// `len` bytes that must stay inside the extension's clusters.
fn in_header((offset, length): (u64, u64), at: u64, len: usize) -> Result<u64> {
    if at.saturating_add(len as u64) > length {
        return Err(Error::invalid(
            "Request for data outside of extension header",
        ));
    }
    Ok(offset + at)
}

/// `amend` of the key slots (the `encrypt.` options, after an upgrade and
/// before anything else changes, as in QEMU), in the header's clusters.
pub fn amend_keyslots(img: &Qcow2Image, o: &Options, force: bool) -> Result<()> {
    let request = keyslots::Request::parse(o, "encrypt.")?;
    let (Some(crypto), Some(region)) = (&img.crypto, img.lock().header.crypto_header) else {
        return Err(Error::invalid(
            "Can't amend encryption options - encryption not present",
        ));
    };
    let key_secret = crypto
        .key_secret
        .as_deref()
        .ok_or_else(|| Error::invalid("Parameter 'encrypt.key-secret' is required for cipher"))?;
    let file = img.container();
    let read = |buf: &mut [u8], at: u64| file.read_at(buf, in_header(region, at, buf.len())?);
    let write = |buf: &[u8], at: u64| file.write_at(buf, in_header(region, at, buf.len())?);
    keyslots::amend(&read, &write, key_secret, &request, force)
}

/// Largest run encrypted in one buffer.
const BATCH: usize = 1 << 20;

impl Crypto {
    fn cipher(&self) -> Result<&SectorCipher> {
        self.cipher
            .as_ref()
            .ok_or_else(|| Error::invalid("the image's encryption is not unlocked"))
    }

    /// The IV number of the sector at host offset `host` that holds guest
    /// offset `guest` (both sector-aligned alike: clusters are).
    fn iv(&self, host: u64, guest: u64) -> u64 {
        match self.guest_ivs {
            true => guest / SECTOR,
            false => host / SECTOR,
        }
    }

    /// Encrypts whole sectors of guest data (at guest offset `guest`) into
    /// a copy and writes it at host offset `host` of `data`.
    pub fn write(&self, data: &dyn Storage, buf: &[u8], host: u64, guest: u64) -> Result<()> {
        let cipher = self.cipher()?;
        debug_assert!(host.is_multiple_of(SECTOR) && buf.len().is_multiple_of(SECTOR as usize));
        let mut copy = Zeroizing::new(Vec::with_capacity(buf.len().min(BATCH)));
        for (i, piece) in buf.chunks(BATCH).enumerate() {
            let skip = (i * BATCH) as u64;
            copy.clear();
            copy.extend_from_slice(piece);
            cipher.encrypt(
                &mut copy,
                SECTOR as usize,
                self.iv(host + skip, guest + skip),
            );
            data.write_at(&copy, host + skip)?;
        }
        Ok(())
    }

    /// Reads and decrypts guest data (at guest offset `guest`) stored at
    /// host offset `host` of `data` (any alignment: whole sectors are read
    /// around it).
    pub fn read(&self, data: &dyn Storage, buf: &mut [u8], host: u64, guest: u64) -> Result<()> {
        let cipher = self.cipher()?;
        let start = host / SECTOR * SECTOR;
        let end = (host + buf.len() as u64).next_multiple_of(SECTOR);
        let first_iv = self.iv(start, guest - (host - start));
        if start == host && end == host + buf.len() as u64 {
            data.read_at(buf, host)?;
            cipher.decrypt(buf, SECTOR as usize, first_iv);
            return Ok(());
        }
        let mut whole = Zeroizing::new(vec![0u8; (end - start) as usize]);
        data.read_at(&mut whole, start)?;
        cipher.decrypt(&mut whole, SECTOR as usize, first_iv);
        let skip = (host - start) as usize;
        buf.copy_from_slice(&whole[skip..skip + buf.len()]);
        Ok(())
    }
}
