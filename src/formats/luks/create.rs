//! Creating a LUKS image (QEMU's `block_crypto_co_create_opts_luks`): the
//! storage, then the header and key slot 0, then the payload's length.

use crate::block::driver::Preallocation;
use crate::block::options::Options;
use crate::error::{Error, Result};
use crate::formats::Opener;
use crate::storage::Storage;

use super::options::{self, FORMAT_OPTIONS};
use super::volume::{FormatOptions, Volume};

/// The passphrase of the secret `options` name under `prefix`, with
/// QEMU's message when none is named.
pub fn passphrase(id: Option<String>, prefix: &str) -> Result<crate::secret::Secret> {
    let id = id.ok_or_else(|| {
        Error::invalid(format!(
            "Parameter '{prefix}key-secret' is required for cipher"
        ))
    })?;
    crate::secret::lookup_utf8(&id)
}

/// Formats a volume at the start of `storage` and makes its payload
/// `size` bytes long.
pub fn format_on(
    storage: &dyn Storage,
    format: &FormatOptions,
    passphrase: &[u8],
    size: u64,
    prealloc: Preallocation,
) -> Result<Volume> {
    let write = |buf: &[u8], offset: u64| storage.write_at(buf, offset);
    let volume = Volume::format(format, passphrase, &write)?;
    storage.set_len(volume.payload_offset + size, prealloc)?;
    Ok(volume)
}

/// `create -f luks NAME SIZE`.
pub fn create(name: &str, size: u64, options: &Options, opener: &dyn Opener) -> Result<()> {
    let (secret, format) = options::parse(options, "")?;
    let passphrase = passphrase(secret, "")?;
    // The file's `preallocation`, applied when the payload is sized (QEMU
    // takes `metadata` there and preallocates nothing).
    let prealloc = match options.preallocation()? {
        Preallocation::Metadata => Preallocation::Off,
        other => other,
    };
    let mut storage_options = options.without(FORMAT_OPTIONS);
    storage_options.set("size", "0");
    storage_options.set("preallocation", "off");
    opener.create_storage(name, &storage_options)?;
    let result = opener.open_storage(name, true).and_then(|storage| {
        format_on(
            storage.as_ref(),
            &format,
            passphrase.bytes(),
            size,
            prealloc,
        )
    });
    if result.is_err() {
        opener.remove_storage(name);
    }
    result.map(drop)
}
