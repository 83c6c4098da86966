//! Persistent dirty bitmaps on disk ("Bitmaps" in docs/interop/qcow2.txt):
//! the bitmap directory, bitmap tables and their entries, read and written
//! with QEMU's checks and messages (block/qcow2-bitmap.c). What is done
//! with them while an image is open is in `bitmap_store.rs`.

use crate::error::{Error, ErrorKind, Result};
use crate::formats::qcow2::header::BitmapsExt;

/// QEMU's bitmap directory entry constraints (`check_dir_entry`): a table
/// of at most this many entries ...
pub const MAX_TABLE_SIZE: u32 = 0x800_0000;
/// ... describing at most this many bytes of bitmap data (table entries
/// times the cluster size), which also bounds what reading a table costs.
pub const MAX_PHYS_SIZE: u64 = 0x2000_0000;
pub const MIN_GRANULARITY_BITS: u8 = 9;
pub const MAX_GRANULARITY_BITS: u8 = 31;
pub const MAX_NAME_SIZE: usize = 1023;
/// `QCOW2_MAX_BITMAPS`.
pub const MAX_BITMAPS: u32 = 65535;
/// `QCOW2_MAX_BITMAP_DIRECTORY_SIZE`.
pub const MAX_DIRECTORY_SIZE: u64 = 1024 * 65535;
/// Flags other than "in_use" and "auto".
const RESERVED_FLAGS: u32 = !3;
/// Flag bit 0: "The bitmap was not saved correctly and may be inconsistent".
pub const FLAG_IN_USE: u32 = 1;
/// Flag bit 1: "The bitmap must reflect all changes of the virtual disk".
pub const FLAG_AUTO: u32 = 2;
/// Byte 16, `type`: "1: Dirty tracking bitmap".
const TYPE_DIRTY_TRACKING: u8 = 1;
/// Bitmap table entry bits 1-8 and 56-63: reserved.
const TABLE_ENTRY_RESERVED: u64 = 0xff00_0000_0000_01fe;
/// Bitmap table entry bits 9-55: "offset into the image file at which the
/// cluster containing bitmap data starts".
pub const TABLE_ENTRY_OFFSET: u64 = 0x00ff_ffff_ffff_fe00;
/// Bitmap table entry bit 0, without an offset: "the whole cluster reads
/// as all ones".
pub const TABLE_ENTRY_ALL_ONES: u64 = 1;

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
        if self.flags & FLAG_IN_USE != 0 {
            out.push("in-use");
        }
        if self.flags & FLAG_AUTO != 0 {
            out.push("auto");
        }
        out
    }

    /// Whether the entry fails QEMU's `check_dir_entry` for an image of
    /// `image_size` bytes.
    fn breaks_constraints(&self, cluster_size: u64, image_size: u64) -> bool {
        let phys = u64::from(self.table_size) * cluster_size;
        let fail = self.table_size == 0
            || self.table_offset == 0
            || !self.table_offset.is_multiple_of(cluster_size)
            || self.table_size > MAX_TABLE_SIZE
            || !(MIN_GRANULARITY_BITS..=MAX_GRANULARITY_BITS).contains(&self.granularity_bits)
            || self.flags & RESERVED_FLAGS != 0
            || self.name.len() > MAX_NAME_SIZE
            || phys > MAX_PHYS_SIZE;
        // A bitmap not in use must have room for every granule.
        fail || (self.flags & FLAG_IN_USE == 0
            && image_size
                > (phys * 8)
                    .checked_shl(u32::from(self.granularity_bits))
                    .unwrap_or(u64::MAX))
    }
}

/// Bytes a directory entry takes: 24, the name, padding to 8.
pub fn entry_size(name_len: usize) -> u64 {
    (24 + name_len as u64).div_ceil(8) * 8
}

fn broken() -> Error {
    Error::new(ErrorKind::CorruptImage, "Broken bitmap directory")
}

/// Reads the bitmap directory as QEMU's `bitmap_list_load` does: exactly
/// `ext.nb_bitmaps` entries filling `dir`, each satisfying the
/// constraints for an image of `image_size` bytes.
pub fn parse_directory(
    ext: &BitmapsExt,
    dir: &[u8],
    cluster_size: u64,
    image_size: u64,
) -> Result<Vec<Bitmap>> {
    let corrupt = |msg: String| Error::new(ErrorKind::CorruptImage, msg);
    if dir.is_empty() {
        return Err(corrupt("Requested bitmap directory size is zero".into()));
    }
    if dir.len() as u64 > MAX_DIRECTORY_SIZE {
        return Err(corrupt("Requested bitmap directory size is too big".into()));
    }
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < dir.len() {
        let e = dir.get(pos..pos + 24).ok_or_else(broken)?;
        if out.len() as u32 >= ext.nb_bitmaps {
            return Err(corrupt(
                "More bitmaps found than specified in header extension".into(),
            ));
        }
        let name_size = u16::from_be_bytes([e[18], e[19]]) as usize;
        let extra = u32::from_be_bytes(e[20..24].try_into().expect("4 bytes")) as u64;
        let next = (24 + name_size as u64 + extra).div_ceil(8) * 8;
        if pos as u64 + next > dir.len() as u64 {
            return Err(broken());
        }
        if extra != 0 {
            return Err(corrupt("Bitmap extra data is not supported".into()));
        }
        let name = &dir[pos + 24..pos + 24 + name_size];
        let bitmap = Bitmap {
            table_offset: u64::from_be_bytes(e[0..8].try_into().expect("8 bytes")),
            table_size: u32::from_be_bytes(e[8..12].try_into().expect("4 bytes")),
            flags: u32::from_be_bytes(e[12..16].try_into().expect("4 bytes")),
            granularity_bits: e[17],
            name: String::from_utf8_lossy(name).into_owned(),
        };
        if e[16] != TYPE_DIRTY_TRACKING || bitmap.breaks_constraints(cluster_size, image_size) {
            return Err(corrupt(format!(
                "Bitmap '{}' doesn't satisfy the constraints",
                bitmap.name
            )));
        }
        out.push(bitmap);
        pos += next as usize;
    }
    if out.len() as u32 != ext.nb_bitmaps {
        return Err(corrupt(
            "Less bitmaps found than specified in header extension".into(),
        ));
    }
    Ok(out)
}

/// The directory bytes for `list` (QEMU's `bitmap_list_store`): EINVAL
/// when empty, too large, or an entry breaks the constraints.
pub fn serialize_directory(list: &[Bitmap], cluster_size: u64, image_size: u64) -> Result<Vec<u8>> {
    let einval = || Error::os(ErrorKind::InvalidArgument, libc::EINVAL);
    let size: u64 = list.iter().map(|b| entry_size(b.name.len())).sum();
    if size == 0 || size > MAX_DIRECTORY_SIZE {
        return Err(einval());
    }
    let mut out = Vec::with_capacity(size as usize);
    for b in list {
        if b.breaks_constraints(cluster_size, image_size) {
            return Err(einval());
        }
        out.extend_from_slice(&b.table_offset.to_be_bytes());
        out.extend_from_slice(&b.table_size.to_be_bytes());
        out.extend_from_slice(&b.flags.to_be_bytes());
        out.push(TYPE_DIRTY_TRACKING);
        out.push(b.granularity_bits);
        out.extend_from_slice(&(b.name.len() as u16).to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(b.name.as_bytes());
        out.resize(out.len().div_ceil(8) * 8, 0);
    }
    Ok(out)
}

/// Decodes a bitmap table, checking every entry as QEMU's
/// `check_table_entry` does (EINVAL on the first bad one).
pub fn decode_table(bytes: &[u8], cluster_size: u64) -> Result<Vec<u64>> {
    let einval = || Error::os(ErrorKind::InvalidArgument, libc::EINVAL);
    let mut out = Vec::with_capacity(bytes.len() / 8);
    for chunk in bytes.chunks_exact(8) {
        let e = u64::from_be_bytes(chunk.try_into().expect("8 bytes"));
        let offset = e & TABLE_ENTRY_OFFSET;
        if e & TABLE_ENTRY_RESERVED != 0
            || (offset != 0
                && (e & TABLE_ENTRY_ALL_ONES != 0 || !offset.is_multiple_of(cluster_size)))
        {
            return Err(einval());
        }
        out.push(e);
    }
    Ok(out)
}

/// Host clusters referenced by a bitmap table's entries.
pub fn table_clusters(table: &[u8]) -> Vec<u64> {
    table
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().expect("8 bytes")) & TABLE_ENTRY_OFFSET)
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
    fn directory_entries_parse_and_serialise_back() {
        let (ext, dir) = entry(1, "bitmap0");
        let list = parse_directory(&ext, &dir, 65536, 1 << 20).unwrap();
        assert_eq!(list[0].name, "bitmap0");
        assert_eq!(list[0].flag_names(), vec!["auto"]);
        assert_eq!(list[0].granularity_bits, 16);
        assert_eq!(serialize_directory(&list, 65536, 1 << 20).unwrap(), dir);
        let two = BitmapsExt {
            nb_bitmaps: 2,
            ..ext
        };
        assert_eq!(
            parse_directory(&two, &dir, 65536, 1 << 20)
                .unwrap_err()
                .to_string(),
            "Less bitmaps found than specified in header extension"
        );
    }

    #[test]
    fn oversized_tables_break_the_constraints() {
        let (ext, mut dir) = entry(u32::MAX, "b0");
        let err = parse_directory(&ext, &dir, 512, 1 << 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Bitmap 'b0' doesn't satisfy the constraints"
        );
        // 512 MiB of bitmap data is the most a table may describe.
        let most = (MAX_PHYS_SIZE / 512) as u32;
        dir[8..12].copy_from_slice(&most.to_be_bytes());
        assert_eq!(
            parse_directory(&ext, &dir, 512, 1 << 20).unwrap()[0].table_size,
            most
        );
        dir[8..12].copy_from_slice(&(most + 1).to_be_bytes());
        assert!(parse_directory(&ext, &dir, 512, 1 << 20).is_err());
    }

    #[test]
    fn a_table_too_small_for_the_image_breaks_them_unless_in_use() {
        // One 512-byte cluster of bits at 64 KiB granularity: 256 MiB.
        let (ext, mut dir) = entry(1, "b");
        assert!(parse_directory(&ext, &dir, 512, 256 << 20).is_ok());
        assert!(parse_directory(&ext, &dir, 512, (256 << 20) + 1).is_err());
        dir[12..16].copy_from_slice(&3u32.to_be_bytes()); // in use, auto
        assert!(parse_directory(&ext, &dir, 512, 1 << 40).is_ok());
    }

    #[test]
    fn table_entries_are_checked() {
        let good = [0x50000u64.to_be_bytes(), 1u64.to_be_bytes()].concat();
        assert_eq!(decode_table(&good, 65536).unwrap(), [0x50000, 1]);
        for bad in [0x50001u64, 0x50200, 1 << 60, 2] {
            assert!(decode_table(&bad.to_be_bytes(), 65536).is_err(), "{bad:#x}");
        }
    }
}
