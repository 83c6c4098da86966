//! The internal snapshot table ("Snapshots" in docs/interop/qcow2.txt): a
//! contiguous run of variable-length entries, each 8-byte aligned.

use crate::block::diagnostics::Diagnostics;
use crate::block::snapshot::SnapshotInfo;
use crate::error::{Error, ErrorKind, Result};

/// Fixed part of an entry: bytes 0-39.
pub const ENTRY_HEADER: usize = 40;
/// The extra data QEMU writes: vm_state_size_large, disk_size, icount.
pub const EXTRA_KNOWN: usize = 24;
/// "Version 3 images must include extra data at least up to byte 55."
pub const EXTRA_V3_MIN: usize = 16;
/// QEMU refuses entries with more extra data than this.
pub const MAX_EXTRA: u32 = 1024;
pub const MAX_SNAPSHOTS: u32 = 65536;
/// "Allow for an average of 1k per snapshot table entry".
pub const MAX_TABLE_BYTES: u64 = 1024 * 65536;

/// One snapshot table entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Bytes 0-7: "Offset into the image file at which the L1 table for the
    /// snapshot starts."
    pub l1_table_offset: u64,
    /// Bytes 8-11: "Number of entries in the L1 table of the snapshots".
    pub l1_size: u32,
    /// Bytes 16-19: "Time at which the snapshot was taken in seconds since
    /// the Epoch".
    pub date_sec: u32,
    /// Bytes 20-23: "Subsecond part of the time ... in nanoseconds".
    pub date_nsec: u32,
    /// Bytes 24-31: "Time that the guest was running until the snapshot was
    /// taken in nanoseconds".
    pub vm_clock_nsec: u64,
    /// Bytes 32-35, or extra bytes 40-47 when present: VM state size.
    pub vm_state_size: u64,
    /// Bytes 36-39: "Size of extra data in the table entry".
    pub extra_data_size: u32,
    /// Extra bytes 48-55: "Virtual disk size of the snapshot in bytes".
    pub disk_size: u64,
    /// Extra bytes 56-63: icount, -1 (u64::MAX) when absent.
    pub icount: u64,
    /// Extra data past the 24 bytes QEMU knows, kept verbatim.
    pub unknown_extra: Vec<u8>,
    pub id: String,
    pub name: String,
}

impl Snapshot {
    pub fn info(&self) -> SnapshotInfo {
        SnapshotInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            vm_state_size: self.vm_state_size,
            date_sec: i64::from(self.date_sec),
            date_nsec: self.date_nsec,
            vm_clock_nsec: self.vm_clock_nsec,
            icount: (self.icount != u64::MAX).then_some(self.icount),
        }
    }

    /// Bytes this entry takes when QEMU writes it (before 8-byte padding).
    fn written_len(&self) -> usize {
        ENTRY_HEADER
            + (self.extra_data_size as usize).max(EXTRA_KNOWN)
            + self.id.len()
            + self.name.len()
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// How a table was read: entries and the bytes they span.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub snapshots: Vec<Snapshot>,
    pub size: u64,
    /// Entries whose extra data was cut to the maximum (repair mode).
    pub extra_dropped: u32,
    /// Entries dropped because the table grew too big (repair mode).
    pub overhanging: u32,
}

/// Parses `count` entries. `read` fetches `len` bytes at a byte offset
/// relative to the table start; `current_size` is the image size (the disk
/// size of entries without one). With `repair`, oversized parts are cut
/// instead of refused (QEMU's `check -r all`), and what was cut is
/// reported there.
pub fn parse(
    count: u32,
    current_size: u64,
    repair: Option<&Diagnostics>,
    mut read: impl FnMut(u64, usize) -> Result<Vec<u8>>,
) -> Result<Table> {
    let mut table = Table::default();
    let mut offset: u64 = 0;
    let mut length: u64 = 0;
    let fail = |e: Error| e.prepend("Failed to read snapshot table");
    for i in 0..count {
        let entry_start = offset;
        length = length.div_ceil(8) * 8;
        offset = offset.div_ceil(8) * 8;
        let h = read(offset, ENTRY_HEADER).map_err(fail)?;
        offset += ENTRY_HEADER as u64;
        let mut sn = Snapshot {
            l1_table_offset: be64(&h, 0),
            l1_size: be32(&h, 8),
            date_sec: be32(&h, 16),
            date_nsec: be32(&h, 20),
            vm_clock_nsec: be64(&h, 24),
            vm_state_size: u64::from(be32(&h, 32)),
            extra_data_size: be32(&h, 36),
            disk_size: current_size,
            icount: u64::MAX,
            unknown_extra: Vec::new(),
            id: String::new(),
            name: String::new(),
        };
        let id_len = be16(&h, 12) as usize;
        let name_len = be16(&h, 14) as usize;
        let mut truncate = false;
        if sn.extra_data_size > MAX_EXTRA {
            let Some(repair) = repair else {
                return Err(Error::new(
                    ErrorKind::CorruptImage,
                    format!(
                        "Too much extra metadata in snapshot table entry {i}\n\
                         You can force-remove this extra metadata with qemu-img check -r all"
                    ),
                ));
            };
            repair.line(format!(
                "Discarding too much extra metadata in snapshot table entry {i} ({} > {MAX_EXTRA})",
                sn.extra_data_size
            ));
            table.extra_dropped += 1;
            truncate = true;
        }
        let known = (sn.extra_data_size as usize).min(EXTRA_KNOWN);
        let extra = read(offset, known).map_err(fail)?;
        offset += known as u64;
        if known >= 8 {
            sn.vm_state_size = be64(&extra, 0);
        }
        if known >= 16 {
            sn.disk_size = be64(&extra, 8);
        }
        if known >= 24 {
            sn.icount = be64(&extra, 16);
        }
        if sn.extra_data_size as usize > EXTRA_KNOWN {
            let end = offset + u64::from(sn.extra_data_size) - EXTRA_KNOWN as u64;
            if truncate {
                sn.extra_data_size = MAX_EXTRA;
            }
            let n = sn.extra_data_size as usize - EXTRA_KNOWN;
            sn.unknown_extra = read(offset, n).map_err(fail)?;
            offset = end;
        }
        let id = read(offset, id_len).map_err(fail)?;
        offset += id_len as u64;
        let name = read(offset, name_len).map_err(fail)?;
        offset += name_len as u64;
        sn.id = c_string(&id);
        sn.name = c_string(&name);
        length += (ENTRY_HEADER + sn.extra_data_size as usize + id_len + name_len) as u64;
        if length > MAX_TABLE_BYTES || offset > i32::MAX as u64 {
            let Some(repair) = repair else {
                return Err(Error::new(
                    ErrorKind::CorruptImage,
                    format!(
                        "Snapshot table is too big\nYou can force-remove all {} overhanging snapshots with qemu-img check -r all",
                        count - i
                    ),
                ));
            };
            repair.line(format!(
                "Discarding {} overhanging snapshots (snapshot table is too big)",
                count - i
            ));
            table.overhanging += count - i;
            offset = entry_start;
            break;
        }
        table.snapshots.push(sn);
    }
    table.size = offset;
    Ok(table)
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&c| c == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Bytes of the table as QEMU writes it (`qcow2_write_snapshots`).
pub fn table_size(snapshots: &[Snapshot]) -> u64 {
    let mut offset = 0u64;
    for sn in snapshots {
        offset = offset.div_ceil(8) * 8;
        offset += sn.written_len() as u64;
    }
    offset
}

/// Serialises the table as QEMU does: every entry with at least the 24 known
/// extra bytes, padding between entries (not after the last).
pub fn serialize(snapshots: &[Snapshot]) -> Vec<u8> {
    let mut out = Vec::new();
    for sn in snapshots {
        out.resize(out.len().div_ceil(8) * 8, 0);
        out.extend_from_slice(&sn.l1_table_offset.to_be_bytes());
        out.extend_from_slice(&sn.l1_size.to_be_bytes());
        out.extend_from_slice(&(sn.id.len() as u16).to_be_bytes());
        out.extend_from_slice(&(sn.name.len() as u16).to_be_bytes());
        out.extend_from_slice(&sn.date_sec.to_be_bytes());
        out.extend_from_slice(&sn.date_nsec.to_be_bytes());
        out.extend_from_slice(&sn.vm_clock_nsec.to_be_bytes());
        let small = if sn.vm_state_size <= u64::from(u32::MAX) {
            sn.vm_state_size as u32
        } else {
            0
        };
        out.extend_from_slice(&small.to_be_bytes());
        let extra = (sn.extra_data_size as usize).max(EXTRA_KNOWN) as u32;
        out.extend_from_slice(&extra.to_be_bytes());
        out.extend_from_slice(&sn.vm_state_size.to_be_bytes());
        out.extend_from_slice(&sn.disk_size.to_be_bytes());
        out.extend_from_slice(&sn.icount.to_be_bytes());
        out.extend_from_slice(&sn.unknown_extra);
        out.extend_from_slice(sn.id.as_bytes());
        out.extend_from_slice(sn.name.as_bytes());
    }
    out
}

/// The next free numeric id (`find_new_snapshot_id`: one above the largest
/// leading number among the ids).
pub fn next_id(snapshots: &[Snapshot]) -> String {
    let max = snapshots
        .iter()
        .map(|sn| {
            let digits: String = sn
                .id
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            digits
                .parse::<u64>()
                .unwrap_or(if digits.is_empty() { 0 } else { u64::MAX })
        })
        .max()
        .unwrap_or(0);
    max.wrapping_add(1).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(id: &str, name: &str) -> Snapshot {
        Snapshot {
            l1_table_offset: 0x50000,
            l1_size: 1,
            date_sec: 1_700_000_000,
            date_nsec: 123_000,
            vm_clock_nsec: 0,
            vm_state_size: 0,
            extra_data_size: EXTRA_KNOWN as u32,
            disk_size: 1 << 20,
            icount: 0,
            unknown_extra: Vec::new(),
            id: id.into(),
            name: name.into(),
        }
    }

    #[test]
    fn table_round_trips_with_padding() {
        let list = vec![snap("1", "first"), snap("2", "a-longer-name")];
        let bytes = serialize(&list);
        // Entry 1: 40 + 24 + 1 + 5 = 70 bytes, padded to 72 before entry 2.
        assert_eq!(bytes.len(), 72 + 40 + 24 + 1 + 13);
        assert_eq!(table_size(&list), bytes.len() as u64);
        // Byte 12-13 of the first entry: the id length.
        assert_eq!(&bytes[12..16], &[0, 1, 0, 5]);
        let t = parse(2, 0, None, |off, len| {
            Ok(bytes[off as usize..off as usize + len].to_vec())
        })
        .unwrap();
        assert_eq!(t.snapshots, list);
        assert_eq!(t.size, bytes.len() as u64);
    }

    #[test]
    fn short_extra_data_defaults() {
        let mut bytes = serialize(&[snap("1", "x")]);
        // Pretend the entry has only 8 bytes of extra data (v2 style).
        bytes[36..40].copy_from_slice(&8u32.to_be_bytes());
        bytes.drain(48..64);
        let t = parse(1, 777, None, |off, len| {
            Ok(bytes[off as usize..off as usize + len].to_vec())
        })
        .unwrap();
        assert_eq!(t.snapshots[0].disk_size, 777);
        assert_eq!(t.snapshots[0].icount, u64::MAX);
        assert_eq!(t.snapshots[0].info().icount, None);
        assert_eq!(t.snapshots[0].id, "1");
    }

    #[test]
    fn huge_extra_data_is_refused() {
        let mut bytes = serialize(&[snap("1", "x")]);
        bytes[36..40].copy_from_slice(&4096u32.to_be_bytes());
        let err = parse(1, 0, None, |off, len| {
            let mut v = vec![0u8; len];
            let end = (off as usize + len).min(bytes.len());
            if (off as usize) < end {
                v[..end - off as usize].copy_from_slice(&bytes[off as usize..end]);
            }
            Ok(v)
        })
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("Too much extra metadata in snapshot table entry 0")
        );
    }

    #[test]
    fn ids_count_up() {
        assert_eq!(next_id(&[]), "1");
        assert_eq!(next_id(&[snap("3", "a"), snap("1", "b")]), "4");
    }
}
