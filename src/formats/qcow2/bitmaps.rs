//! Persistent dirty bitmaps ("Bitmaps" in docs/interop/qcow2.txt), read
//! only: their names and flags for `info`, and the clusters they occupy for
//! `check`. rbdimg does not update bitmaps; opening an image for writing
//! clears the "bitmaps consistent" autoclear bit, as the format requires of
//! programs without bitmap support.

use crate::formats::qcow2::header::BitmapsExt;
use crate::formats::qcow2::tables::L1E_OFFSET_MASK;
use crate::image::error::{Error, ErrorKind, Result};

/// One bitmap directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    /// Bytes 0-7: "bitmap_table_offset".
    pub table_offset: u64,
    /// Bytes 8-11: "bitmap_table_size", in entries.
    pub table_size: u32,
    /// Bytes 12-15: flags; bit 0 "in_use", bit 1 "auto".
    pub flags: u32,
    /// Byte 17: "granularity_bits".
    pub granularity_bits: u8,
    pub name: String,
}

impl Bitmap {
    /// The flag names qemu-img prints.
    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.flags & 1 != 0 {
            out.push("in-use");
        }
        if self.flags & 2 != 0 {
            out.push("auto");
        }
        out
    }
}

/// Parses the bitmap directory bytes.
pub fn parse_directory(ext: &BitmapsExt, dir: &[u8]) -> Result<Vec<Bitmap>> {
    let bad = || Error::new(ErrorKind::CorruptImage, "Invalid bitmap directory");
    let mut out = Vec::new();
    let mut pos = 0usize;
    for _ in 0..ext.nb_bitmaps {
        let e = dir.get(pos..pos + 24).ok_or_else(bad)?;
        let name_size = u16::from_be_bytes([e[18], e[19]]) as usize;
        let extra = u32::from_be_bytes(e[20..24].try_into().expect("4 bytes")) as usize;
        let name_at = pos + 24 + extra;
        let name = dir.get(name_at..name_at + name_size).ok_or_else(bad)?;
        out.push(Bitmap {
            table_offset: u64::from_be_bytes(e[0..8].try_into().expect("8 bytes")),
            table_size: u32::from_be_bytes(e[8..12].try_into().expect("4 bytes")),
            flags: u32::from_be_bytes(e[12..16].try_into().expect("4 bytes")),
            granularity_bits: e[17],
            name: String::from_utf8_lossy(name).into_owned(),
        });
        pos = (name_at + name_size).div_ceil(8) * 8;
    }
    Ok(out)
}

/// Host clusters referenced by a bitmap table's entries.
pub fn table_clusters(table: &[u8]) -> Vec<u64> {
    table
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().expect("8 bytes")) & L1E_OFFSET_MASK)
        .filter(|&off| off != 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_entries_parse() {
        let mut dir = vec![0u8; 32];
        dir[0..8].copy_from_slice(&0x40000u64.to_be_bytes());
        dir[8..12].copy_from_slice(&1u32.to_be_bytes());
        dir[12..16].copy_from_slice(&2u32.to_be_bytes()); // auto
        dir[16] = 1; // dirty tracking
        dir[17] = 16; // granularity 64 KiB
        dir[18..20].copy_from_slice(&7u16.to_be_bytes());
        dir[24..31].copy_from_slice(b"bitmap0");
        let ext = BitmapsExt {
            nb_bitmaps: 1,
            directory_size: 32,
            directory_offset: 0x30000,
        };
        let list = parse_directory(&ext, &dir).unwrap();
        assert_eq!(list[0].name, "bitmap0");
        assert_eq!(list[0].flag_names(), vec!["auto"]);
        assert_eq!(list[0].granularity_bits, 16);
        assert!(
            parse_directory(
                &BitmapsExt {
                    nb_bitmaps: 2,
                    ..ext
                },
                &dir
            )
            .is_err()
        );
    }
}
