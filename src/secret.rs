//! Secrets, as QEMU's `secret` objects hold them: bytes defined once per
//! process by `--object secret,id=ID,...` and looked up by id wherever an
//! image option names one (`encrypt.key-secret=ID`, `key-secret=ID`).
//!
//! Like QEMU's object tree, the registry is process-wide: every open, of
//! an image or of a backing file named inside one, finds the same secrets
//! without each caller passing them along. Secret bytes live in zeroizing
//! buffers and are never formatted: `Secret` has no `Display`, and its
//! `Debug` prints the length only.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::NoPadding};
use base64::Engine;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// A secret's bytes (its data after decoding and decryption).
#[derive(Clone)]
pub struct Secret(Arc<Zeroizing<Vec<u8>>>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(Arc::new(Zeroizing::new(bytes)))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// The properties of a `secret` object, as given.
#[derive(Default)]
pub struct SecretSpec {
    pub id: String,
    pub data: Option<Zeroizing<String>>,
    pub file: Option<String>,
    pub base64: bool,
    pub keyid: Option<String>,
    pub iv: Option<String>,
}

/// id -> bytes; `None` while the object is being completed (QEMU adds the
/// object to the tree before it loads its data).
static REGISTRY: Mutex<Option<HashMap<String, Option<Secret>>>> = Mutex::new(None);

fn with_registry<T>(f: impl FnOnce(&mut HashMap<String, Option<Secret>>) -> T) -> T {
    let mut guard = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    f(guard.get_or_insert_with(HashMap::new))
}

/// Defines a secret object: QEMU's `user_creatable_add_type` for
/// `secret`, with its checks in its order and its words.
pub fn define(spec: SecretSpec) -> Result<()> {
    let id = spec.id.clone();
    let fresh = with_registry(|r| {
        if r.contains_key(&id) {
            return false;
        }
        r.insert(id.clone(), None);
        true
    });
    if !fresh {
        return Err(Error::invalid(format!(
            "attempt to add duplicate property '{id}' to object (type 'container')"
        )));
    }
    match load(&spec) {
        Ok(secret) => {
            with_registry(|r| r.insert(id, Some(secret)));
            Ok(())
        }
        Err(e) => {
            with_registry(|r| r.remove(&id));
            Err(e)
        }
    }
}

/// The secret with this id (`qcrypto_secret_lookup`).
pub fn lookup(id: &str) -> Result<Secret> {
    match with_registry(|r| r.get(id).cloned()) {
        None => Err(Error::invalid(format!("No secret with id '{id}'"))),
        Some(None) => Err(Error::invalid(format!("Secret with id '{id}' has no data"))),
        Some(Some(secret)) => Ok(secret),
    }
}

/// The secret as text (`qcrypto_secret_lookup_as_utf8`): passphrases.
pub fn lookup_utf8(id: &str) -> Result<Secret> {
    let secret = lookup(id)?;
    if std::str::from_utf8(secret.bytes()).is_err() {
        return Err(Error::invalid(format!(
            "Data from secret {id} is not valid UTF-8"
        )));
    }
    Ok(secret)
}

/// `qcrypto_secret_load_data` and what follows it: the raw bytes, then
/// decrypted with the `keyid` secret or decoded from base64.
fn load(spec: &SecretSpec) -> Result<Secret> {
    let raw: Zeroizing<Vec<u8>> = match (&spec.data, &spec.file) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid("'file' and 'data' are mutually exclusive"));
        }
        (Some(data), None) => Zeroizing::new(data.as_bytes().to_vec()),
        (None, Some(path)) => Zeroizing::new(read_file(path)?),
        (None, None) => {
            return Err(Error::invalid("Either 'file' or 'data' must be provided"));
        }
    };
    if let Some(keyid) = &spec.keyid {
        return decrypt(spec, keyid, &raw).map(Secret::new);
    }
    if spec.base64 {
        return Ok(Secret::new(base64_decode(&raw)?));
    }
    Ok(Secret::new(raw.to_vec()))
}

/// glib's `g_file_get_contents` as QEMU reports its failures.
fn read_file(path: &str) -> Result<Vec<u8>> {
    let fail = |what: &str, e: std::io::Error| {
        Error::invalid(format!(
            "Unable to read {path}: {what} “{path}”: {}",
            crate::error::strerror(&e)
        ))
    };
    let mut file = std::fs::File::open(path).map_err(|e| fail("Failed to open file", e))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes).map_err(|e| fail("Error reading file", e))?;
    Ok(bytes)
}

/// QEMU's `qbase64_decode`: only the base64 alphabet (no whitespace), then
/// glib's lenient decoding (padding anywhere is skipped, a dangling
/// character dropped).
pub fn base64_decode(text: &[u8]) -> Result<Vec<u8>> {
    if !text
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
    {
        return Err(Error::invalid("Base64 data contains invalid characters"));
    }
    let mut digits: Vec<u8> = text.iter().copied().filter(|&c| c != b'=').collect();
    if digits.len() % 4 == 1 {
        digits.pop();
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
    );
    engine
        .decode(&digits)
        .map_err(|_| Error::invalid("Base64 data contains invalid characters"))
}

/// `qcrypto_secret_decrypt`: AES-256-CBC with the `keyid` secret as key,
/// the ciphertext base64 when `format=base64`, PKCS#7-style padding removed.
fn decrypt(spec: &SecretSpec, keyid: &str, raw: &[u8]) -> Result<Vec<u8>> {
    let key = lookup(keyid)?;
    if key.bytes().len() != 32 {
        return Err(Error::invalid("Key should be 32 bytes in length"));
    }
    let Some(iv) = &spec.iv else {
        return Err(Error::invalid("IV is required to decrypt secret"));
    };
    let iv = base64_decode(iv.as_bytes())?;
    if iv.len() != 16 {
        return Err(Error::invalid(format!(
            "IV should be 16 bytes in length not {}",
            iv.len()
        )));
    }
    let mut data = Zeroizing::new(if spec.base64 {
        base64_decode(raw)?
    } else {
        raw.to_vec()
    });
    if data.len() % 16 != 0 {
        return Err(Error::invalid(format!(
            "Length {} must be a multiple of block size 16",
            data.len()
        )));
    }
    let cipher = cbc::Decryptor::<aes::Aes256>::new_from_slices(key.bytes(), &iv)
        .expect("key and iv lengths checked");
    let len = data.len();
    cipher
        .decrypt_padded_mut::<NoPadding>(&mut data)
        .expect("whole blocks");
    let padding = data.last().copied().unwrap_or(0) as usize;
    if padding > len {
        return Err(Error::invalid(format!(
            "Incorrect number of padding bytes ({padding}) found on decrypted data"
        )));
    }
    Ok(data[..len - padding].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str, data: &str) -> SecretSpec {
        SecretSpec {
            id: id.into(),
            data: Some(Zeroizing::new(data.into())),
            ..Default::default()
        }
    }

    #[test]
    fn defines_and_looks_up_by_id() {
        define(spec("unit-a", "hunter2")).unwrap();
        assert_eq!(lookup("unit-a").unwrap().bytes(), b"hunter2");
        assert_eq!(
            define(spec("unit-a", "x")).unwrap_err().to_string(),
            "attempt to add duplicate property 'unit-a' to object (type 'container')"
        );
        assert_eq!(
            lookup("unit-none").unwrap_err().to_string(),
            "No secret with id 'unit-none'"
        );
        assert!(!format!("{:?}", lookup("unit-a").unwrap()).contains("hunter2"));
    }

    #[test]
    fn decodes_base64_as_glib() {
        assert_eq!(base64_decode(b"YWJj").unwrap(), b"abc");
        assert_eq!(base64_decode(b"YWJ").unwrap(), b"ab");
        assert_eq!(base64_decode(b"").unwrap(), b"");
        assert!(base64_decode(b"YW Jj").is_err());
    }

    #[test]
    fn decrypts_with_a_key_secret() {
        // "hello", AES-256-CBC, key "0123456789abcdef" twice, IV zero
        // (made with openssl enc).
        let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
        define(SecretSpec {
            base64: true,
            ..spec("unit-key", key)
        })
        .unwrap();
        define(SecretSpec {
            base64: true,
            keyid: Some("unit-key".into()),
            iv: Some("AAAAAAAAAAAAAAAAAAAAAA==".into()),
            ..spec("unit-enc", "pZwJZBLuy3mDACEQT4YTBw==")
        })
        .unwrap();
        assert_eq!(lookup("unit-enc").unwrap().bytes(), b"hello");
        let err = define(SecretSpec {
            keyid: Some("unit-enc".into()),
            ..spec("unit-bad", "x")
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "Key should be 32 bytes in length");
        // A failed definition leaves no trace.
        assert!(lookup("unit-bad").is_err());
    }
}
