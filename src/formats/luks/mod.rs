//! LUKS: the encryption QEMU's `luks` format, qcow2's `encrypt.format=luks`
//! and librbd's RBD encryption share. One implementation of the on-disk
//! format serves all three:
//!
//! ```text
//!   header.rs   LUKS1 header fields        af.rs      anti-forensic splitter
//!   cipher.rs   AES/Twofish/Serpent/CAST5 in XTS/CBC/ECB/CTR, IV generators, hashes
//!   volume.rs   unlock / format a volume   payload.rs the encrypted payload over a Storage
//!   image.rs    the raw `luks` format (a BlockDriver)
//!   keyslots.rs `amend` of key slots: add and erase passphrases
//!   luks2.rs    LUKS2 headers (JSON metadata, argon2/PBKDF2 key slots): reading
//!   luks2_format.rs  formatting one as librbd does
//!   rbd.rs      librbd's RBD encryption: the payload of an RBD image as a Storage
//!   options.rs  the create options and their QEMU checks
//!   create.rs   `create -f luks`
//!   xts.rs      XTS over a 16-byte block cipher, a sector's blocks at a time
//! ```

pub mod af;
pub mod cipher;
pub mod create;
pub mod header;
pub mod image;
pub mod keyslots;
pub mod luks2;
pub mod luks2_format;
pub mod options;
pub mod payload;
pub mod rbd;
pub mod volume;
pub mod xts;

pub use volume::{FormatOptions, Volume};
