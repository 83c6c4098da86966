//! Persistent dirty bitmaps ("Bitmaps" in docs/interop/qcow2.txt), read
//! only: their names and flags for `info`, and the clusters they occupy for
//! `check`. rbdimg does not update bitmaps; opening an image for writing
//! clears the "bitmaps consistent" autoclear bit, as the format requires of
//! programs without bitmap support.

use crate::error::{Error, ErrorKind, Result};
use crate::formats::qcow2::header::BitmapsExt;
use crate::formats::qcow2::tables::L1E_OFFSET_MASK;

/// QEMU's bitmap directory entry constraints (`check_dir_entry`): a table
/// of at most this many entries ...
pub const MAX_TABLE_SIZE: u32 = 0x800_0000;
/// ... describing at most this many bytes of bitmap data (table entries
/// times the cluster size), which also bounds what reading a table costs.
pub const MAX_PHYS_SIZE: u64 = 0x2000_0000;
const MIN_GRANULARITY_BITS: u8 = 9;
const MAX_GRANULARITY_BITS: u8 = 31;
const MAX_NAME_SIZE: usize = 1023;
/// Flags other than "in_use" and "auto".
const RESERVED_FLAGS: u32 = !3;
/// Byte 16, `type`: "1: Dirty tracking bitmap".
const TYPE_DIRTY_TRACKING: u8 = 1;

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

/// Parses the bitmap directory bytes; every entry must satisfy QEMU's
/// constraints, so that its table can be read (`table_size * 8` bytes,
/// at most 8 MiB) without trusting the field.
pub fn parse_directory(ext: &BitmapsExt, dir: &[u8], cluster_size: u64) -> Result<Vec<Bitmap>> {
    let bad = || Error::new(ErrorKind::CorruptImage, "Invalid bitmap directory");
    let mut out = Vec::new();
    let mut pos = 0usize;
    for _ in 0..ext.nb_bitmaps {
        let e = dir.get(pos..pos + 24).ok_or_else(bad)?;
        let name_size = u16::from_be_bytes([e[18], e[19]]) as usize;
        let extra = u32::from_be_bytes(e[20..24].try_into().expect("4 bytes")) as usize;
        let name_at = pos + 24 + extra;
        let name = dir.get(name_at..name_at + name_size).ok_or_else(bad)?;
        let bitmap = Bitmap {
            table_offset: u64::from_be_bytes(e[0..8].try_into().expect("8 bytes")),
            table_size: u32::from_be_bytes(e[8..12].try_into().expect("4 bytes")),
            flags: u32::from_be_bytes(e[12..16].try_into().expect("4 bytes")),
            granularity_bits: e[17],
            name: String::from_utf8_lossy(name).into_owned(),
        };
        let fail = bitmap.table_size == 0
            || bitmap.table_size > MAX_TABLE_SIZE
            || u64::from(bitmap.table_size) * cluster_size > MAX_PHYS_SIZE
            || bitmap.table_offset == 0
            || !bitmap.table_offset.is_multiple_of(cluster_size)
            || !(MIN_GRANULARITY_BITS..=MAX_GRANULARITY_BITS).contains(&bitmap.granularity_bits)
            || bitmap.flags & RESERVED_FLAGS != 0
            || name_size > MAX_NAME_SIZE
            || e[16] != TYPE_DIRTY_TRACKING;
        if fail {
            return Err(Error::new(
                ErrorKind::CorruptImage,
                format!("Bitmap '{}' doesn't satisfy the constraints", bitmap.name),
            ));
        }
        out.push(bitmap);
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

    /// One directory entry: table at 0x40000, "auto", dirty tracking,
    /// 64 KiB granularity.
    fn entry(table_size: u32, name: &str) -> (BitmapsExt, Vec<u8>) {
        let mut dir = vec![0u8; (24 + name.len()).div_ceil(8) * 8];
        dir[0..8].copy_from_slice(&0x40000u64.to_be_bytes());
        dir[8..12].copy_from_slice(&table_size.to_be_bytes());
        dir[12..16].copy_from_slice(&2u32.to_be_bytes()); // auto
        dir[16] = 1; // dirty tracking
        dir[17] = 16; // granularity 64 KiB
        dir[18..20].copy_from_slice(&(name.len() as u16).to_be_bytes());
        dir[24..24 + name.len()].copy_from_slice(name.as_bytes());
        let ext = BitmapsExt {
            nb_bitmaps: 1,
            directory_size: dir.len() as u64,
            directory_offset: 0x30000,
        };
        (ext, dir)
    }

    #[test]
    fn directory_entries_parse() {
        let (ext, dir) = entry(1, "bitmap0");
        let list = parse_directory(&ext, &dir, 65536).unwrap();
        assert_eq!(list[0].name, "bitmap0");
        assert_eq!(list[0].flag_names(), vec!["auto"]);
        assert_eq!(list[0].granularity_bits, 16);
        assert!(
            parse_directory(
                &BitmapsExt {
                    nb_bitmaps: 2,
                    ..ext
                },
                &dir,
                65536
            )
            .is_err()
        );
    }

    #[test]
    fn oversized_tables_break_the_constraints() {
        let (ext, mut dir) = entry(u32::MAX, "b0");
        let err = parse_directory(&ext, &dir, 512).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Bitmap 'b0' doesn't satisfy the constraints"
        );
        // 512 MiB of bitmap data is the most a table may describe.
        let most = (MAX_PHYS_SIZE / 512) as u32;
        dir[8..12].copy_from_slice(&most.to_be_bytes());
        assert_eq!(
            parse_directory(&ext, &dir, 512).unwrap()[0].table_size,
            most
        );
        dir[8..12].copy_from_slice(&(most + 1).to_be_bytes());
        assert!(parse_directory(&ext, &dir, 512).is_err());
    }
}
