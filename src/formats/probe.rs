//! Format probing from an image's first bytes, for opens without `-f`.
//!
//! Besides the formats we implement, the magic numbers of the other formats
//! qemu-img knows are recognised too, so that a VMDK or VHDX is refused by
//! name instead of being read as a raw disk full of metadata.

/// How many leading bytes `probe` looks at.
pub const PROBE_BYTES: usize = 512;

/// The format name the bytes look like; "raw" when nothing matches.
pub fn probe(head: &[u8]) -> &'static str {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    if at(0, b"QFI\xfb") {
        // Version 1 is the original qcow, versions 2 and 3 are qcow2.
        return match head
            .get(4..8)
            .map(|v| u32::from_be_bytes(v.try_into().expect("4 bytes")))
        {
            Some(1) => "qcow",
            _ => "qcow2",
        };
    }
    const SIGNATURES: &[(usize, &[u8], &str)] = &[
        (0, b"QED\0", "qed"),
        (0, b"KDMV", "vmdk"),
        (0, b"# Disk DescriptorFile", "vmdk"),
        (0, b"COWD", "vmdk"),
        (0x40, b"\x7f\x10\xda\xbe", "vdi"),
        (0, b"conectix", "vpc"),
        (0, b"vhdxfile", "vhdx"),
        // LUKS version 1 only: QEMU reads no other.
        (0, b"LUKS\xba\xbe\0\x01", "luks"),
        (0, b"WithoutFreeSpace", "parallels"),
        (0, b"WithouFreSpacExt", "parallels"),
        (0, b"Bochs Virtual HD Image", "bochs"),
        (0, b"#!/bin/sh\n#V2.0 Format\n", "cloop"),
    ];
    SIGNATURES
        .iter()
        .find(|(offset, magic, _)| at(*offset, magic))
        .map(|(_, _, name)| *name)
        .unwrap_or("raw")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_formats() {
        assert_eq!(probe(b"QFI\xfb\0\0\0\x03rest"), "qcow2");
        assert_eq!(probe(b"QFI\xfb\0\0\0\x02"), "qcow2");
        assert_eq!(probe(b"QFI\xfb\0\0\0\x01"), "qcow");
        assert_eq!(probe(b"KDMV...."), "vmdk");
        assert_eq!(probe(b"vhdxfile"), "vhdx");
        assert_eq!(probe(b"LUKS\xba\xbe\0\x01"), "luks");
        assert_eq!(probe(b"LUKS\xba\xbe\0\x02"), "raw");
        assert_eq!(probe(&[0u8; 512]), "raw");
        assert_eq!(probe(b""), "raw");
        let mut vdi = [0u8; 0x44];
        vdi[0x40..].copy_from_slice(b"\x7f\x10\xda\xbe");
        assert_eq!(probe(&vdi), "vdi");
    }
}
