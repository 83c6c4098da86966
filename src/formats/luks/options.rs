//! The `-o` options of a new LUKS volume (QEMU's luks format; qcow2 and
//! RBD take them under `encrypt.`), read with QEMU's checks and words.

use crate::block::options::{OptDesc, OptType, Options};
use crate::error::{Error, ErrorKind, Result};

use super::cipher::{Algorithm, CipherSpec, Hash, IvGen, Mode};
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

fn not_accepted(key: &str, value: &str) -> Error {
    Error::invalid(format!("Parameter '{key}' does not accept value '{value}'"))
}

fn hash(key: &str, value: &str) -> Result<Hash> {
    Hash::parse(value).ok_or_else(|| not_accepted(key, value))
}

/// The key secret's id and the volume's options, from `-o` options under
/// `prefix` ("" for luks, "encrypt." for qcow2 and rbd). In QEMU's order:
/// the values, then the secret (it must exist), then whether the cipher
/// can be built; a caller that gets no secret id fails on that alone.
pub fn parse(options: &Options, prefix: &str) -> Result<(Option<String>, FormatOptions)> {
    let key = |name: &str| format!("{prefix}{name}");
    let get = |name: &str| options.get(&key(name));
    let mut out = FormatOptions::default();
    // QEMU names des, 3des and sm4 but its LUKS driver has no use for them
    // (said once the secret is found).
    let mut unknown_alg = None;
    if let Some(name) = get("cipher-alg") {
        if !CIPHERS.contains(&name) {
            return Err(not_accepted("cipher-alg", name));
        }
        let known = name
            .split_once('-')
            .and_then(|(alg, bits)| Some((Algorithm::parse(alg)?, bits.parse::<usize>().ok()?)));
        match known {
            Some((alg, bits)) => (out.cipher.alg, out.cipher.alg_bytes) = (alg, bits / 8),
            None => unknown_alg = Some(name),
        }
    }
    if let Some(mode) = get("cipher-mode") {
        out.cipher.mode = Mode::parse(mode).ok_or_else(|| not_accepted("cipher-mode", mode))?;
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
    if !matches!(out.cipher.ivgen, IvGen::Essiv(_)) {
        out.unused_ivgen_hash = ivgen_hash;
    }
    if let Some(t) = options.number(&key("iter-time"))? {
        out.iter_time = t;
    }
    if let Some(h) = get("hash-alg") {
        out.hash = hash("hash-alg", h)?;
    }
    // rbdimg writes no detached headers, as QEMU's image creation takes none.
    if options.bool(&key("detached-header"))?.is_some() {
        return Err(Error::invalid(format!(
            "Parameter '{}' is unexpected",
            key("detached-header")
        )));
    }
    let Some(secret) = get("key-secret") else {
        return Ok((None, out));
    };
    crate::secret::lookup_utf8(secret)?;
    if let Some(name) = unknown_alg {
        return Err(Error::invalid(format!("Algorithm '{name}' not supported")));
    }
    let spec = out.cipher;
    if let IvGen::Essiv(h) = spec.ivgen {
        CipherSpec::essiv_key_bytes(spec.alg, spec.alg_bytes, h)?;
    }
    if spec.mode == Mode::Xts && spec.alg.block_len() != 16 {
        return Err(Error::new(
            ErrorKind::UnsupportedFeature,
            "Unsupported cipher mode xts",
        ));
    }
    // QEMU aborts on these (an assertion: the key material of a 24-byte key
    // is not whole sectors); cryptsetup pads it, rbdimg opens such volumes
    // but makes none that qemu-img cannot open.
    if spec.alg_bytes == 24 && spec.mode != Mode::Xts {
        return Err(Error::new(
            ErrorKind::UnsupportedFeature,
            format!(
                "Cipher {} in mode {} is not supported by rbdimg: qemu-img cannot open it",
                spec.alg_name(),
                spec.mode_name()
            ),
        ));
    }
    // Only the spec's own check: an impossible combination is refused here.
    CipherSpec::from_header(spec.alg.name(), &spec.header_mode(), spec.key_bytes())?;
    Ok((Some(secret.to_string()), out))
}
