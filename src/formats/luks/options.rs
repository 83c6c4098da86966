//! The `-o` options of a new LUKS volume (QEMU's luks format; qcow2 and
//! RBD take them under `encrypt.`), read with QEMU's checks and words.

use crate::block::options::{OptDesc, OptType, Options};
use crate::error::{Error, ErrorKind, Result};

use super::cipher::{CipherSpec, Hash, IvGen, Mode};
use super::volume::FormatOptions;

/// QEMU's luks create options (same names, help and order).
pub const FORMAT_OPTIONS: &[OptDesc] = &[
    OptDesc::new("size", OptType::Size, "Virtual disk size"),
    OptDesc::new(
        "key-secret",
        OptType::Str,
        "ID of the secret that provides the keyslot passphrase",
    ),
    OptDesc::new(
        "cipher-alg",
        OptType::Str,
        "Name of encryption cipher algorithm",
    ),
    OptDesc::new(
        "cipher-mode",
        OptType::Str,
        "Name of encryption cipher mode",
    ),
    OptDesc::new("ivgen-alg", OptType::Str, "Name of IV generator algorithm"),
    OptDesc::new(
        "ivgen-hash-alg",
        OptType::Str,
        "Name of IV generator hash algorithm",
    ),
    OptDesc::new(
        "hash-alg",
        OptType::Str,
        "Name of encryption hash algorithm",
    ),
    OptDesc::new(
        "iter-time",
        OptType::Number,
        "Time to spend in PBKDF in milliseconds",
    ),
    OptDesc::new(
        "detached-header",
        OptType::Bool,
        "Create a detached LUKS header",
    ),
];

/// QEMU's cipher algorithm names.
const CIPHERS: &[&str] = &[
    "aes-128",
    "aes-192",
    "aes-256",
    "des",
    "3des",
    "cast5-128",
    "serpent-128",
    "serpent-192",
    "serpent-256",
    "twofish-128",
    "twofish-192",
    "twofish-256",
    "sm4",
];
const HASHES: &[&str] = &[
    "md5",
    "sha1",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "ripemd160",
    "sm3",
];

fn not_accepted(key: &str, value: &str) -> Error {
    Error::invalid(format!("Parameter '{key}' does not accept value '{value}'"))
}

fn unsupported(what: String) -> Error {
    Error::new(
        ErrorKind::UnsupportedFeature,
        format!("{what} is not supported by rbdimg"),
    )
}

fn hash(key: &str, value: &str) -> Result<Hash> {
    if !HASHES.contains(&value) {
        return Err(not_accepted(key, value));
    }
    Hash::parse(value).ok_or_else(|| unsupported(format!("Hash algorithm '{value}'")))
}

/// The key secret's id and the volume's options, from `-o` options under
/// `prefix` ("" for luks, "encrypt." for qcow2 and rbd).
pub fn parse(options: &Options, prefix: &str) -> Result<(Option<String>, FormatOptions)> {
    let key = |name: &str| format!("{prefix}{name}");
    let get = |name: &str| options.get(&key(name));
    let mut out = FormatOptions::default();
    if let Some(alg) = get("cipher-alg") {
        if !CIPHERS.contains(&alg) {
            return Err(not_accepted("cipher-alg", alg));
        }
        out.cipher.aes_bytes = match alg {
            "aes-128" => 16,
            "aes-192" => 24,
            "aes-256" => 32,
            other => return Err(unsupported(format!("Cipher '{other}'"))),
        };
    }
    if let Some(mode) = get("cipher-mode") {
        out.cipher.mode = match mode {
            "xts" => Mode::Xts,
            "cbc" => Mode::Cbc,
            "ecb" | "ctr" => return Err(unsupported(format!("Cipher mode '{mode}'"))),
            other => return Err(not_accepted("cipher-mode", other)),
        };
    }
    let ivgen_hash = get("ivgen-hash-alg")
        .map(|h| hash("ivgen-hash-alg", h))
        .transpose()?;
    if let Some(ivgen) = get("ivgen-alg") {
        out.cipher.ivgen = match ivgen {
            "plain" => IvGen::Plain,
            "plain64" => IvGen::Plain64,
            "essiv" => IvGen::Essiv(ivgen_hash.unwrap_or(Hash::Sha256)),
            other => return Err(not_accepted("ivgen-alg", other)),
        };
    }
    if let IvGen::Essiv(h) = out.cipher.ivgen
        && ![16, 24, 32].contains(&h.digest_len())
    {
        return Err(Error::invalid(format!(
            "No AES cipher with key size {} available",
            h.digest_len()
        )));
    }
    if let Some(h) = get("hash-alg") {
        out.hash = hash("hash-alg", h)?;
    }
    if let Some(t) = options.number(&key("iter-time"))? {
        out.iter_time = t;
    }
    // rbdimg writes no detached headers, as QEMU's image creation takes none.
    if options.bool(&key("detached-header"))?.is_some() {
        return Err(Error::invalid(format!(
            "Parameter '{}' is unexpected",
            key("detached-header")
        )));
    }
    // Only the spec's own check: an impossible combination is refused here.
    CipherSpec::from_header("aes", &out.cipher.header_mode(), out.cipher.key_bytes())?;
    Ok((get("key-secret").map(str::to_string), out))
}
