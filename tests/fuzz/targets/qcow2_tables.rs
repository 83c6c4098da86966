//! The variable-length tables: the snapshot table, the bitmap directory, L2
//! tables and refcount blocks. The input is a 5-byte prefix followed by the
//! table bytes (zero-filled past their end, as a short file reads):
//!
//! | byte | meaning |
//! | --- | --- |
//! | 0-1 | entry count (snapshots, bitmaps), big endian, mod 4096 |
//! | 2 | bit 0: repair mode (`check -r all`); bit 1: extended L2 entries |
//! | 3 | cluster_bits - 9 (mod 13) |
//! | 4 | refcount_order (mod 7) |

use rbdimg::block::diagnostics::Diagnostics;
use rbdimg::formats::qcow2::header::{BitmapsExt, Header, INCOMPAT_EXTL2};
use rbdimg::formats::qcow2::tables::{Geometry, decode_entries};
use rbdimg::formats::qcow2::{bitmaps, refcount, snapshot_table};

/// `len` bytes at `offset` of `table`, zeros past its end.
fn read(table: &[u8], offset: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(table.len());
    let end = start.saturating_add(len).min(table.len());
    out[..end - start].copy_from_slice(&table[start..end]);
    out
}

/// True when some table parsed.
pub fn run(data: &[u8]) -> bool {
    if data.len() < 5 {
        return false;
    }
    // More entries only repeat what 4096 reach (the 64 MiB table limit).
    let count = u32::from(u16::from_be_bytes([data[0], data[1]])) % 4096;
    let repair = data[2] & 1 != 0;
    let extended = data[2] & 2 != 0;
    let cluster_bits = 9 + u32::from(data[3]) % 13;
    let order = u32::from(data[4]) % 7;
    let table = &data[5..];

    let mut parsed = false;
    // Snapshot table: parse, and what we write parses back the same.
    let notes = Diagnostics::default();
    let table_notes = repair.then_some(&notes);
    if let Ok(t) = snapshot_table::parse(count, 1 << 30, table_notes, |off, len| {
        Ok(read(table, off, len))
    }) {
        let _ = snapshot_table::next_id(&t.snapshots);
        let bytes = snapshot_table::serialize(&t.snapshots);
        assert_eq!(snapshot_table::table_size(&t.snapshots), bytes.len() as u64);
        let n = t.snapshots.len() as u32;
        let back = snapshot_table::parse(n, 1 << 30, None, |off, len| Ok(read(&bytes, off, len)))
            .expect("a serialised snapshot table parses");
        parsed = true;
        for (a, b) in t.snapshots.iter().zip(&back.snapshots) {
            assert_eq!((&a.id, &a.name), (&b.id, &b.name));
            assert_eq!(a.l1_table_offset, b.l1_table_offset);
            assert_eq!(a.vm_state_size, b.vm_state_size);
        }
    }

    // Bitmap directory.
    let ext = BitmapsExt {
        nb_bitmaps: count,
        directory_size: table.len() as u64,
        directory_offset: 0,
    };
    if let Ok(list) = bitmaps::parse_directory(&ext, table, 1 << cluster_bits, 1 << 30) {
        parsed |= !list.is_empty();
        for bm in &list {
            let _ = bm.flag_names();
        }
    }
    let _ = bitmaps::table_clusters(table);
    let _ = bitmaps::decode_table(table, 1 << cluster_bits);

    // An L2 table and a refcount block of this geometry.
    let mut h = Header::new(3, cluster_bits, order);
    if extended {
        h.incompatible_features |= INCOMPAT_EXTL2;
    }
    let g = Geometry::new(&h);
    // Past the input the table is zeros: unallocated entries, refcount 0.
    let cluster = read(table, 0, g.cluster_size as usize);
    let l2 = decode_entries(&cluster);
    let width = if g.extended_l2 { 2 } else { 1 };
    let present = (table.len() as u64 / g.l2_entry_bytes + 1).min(g.l2_entries) as usize;
    for i in 0..present {
        let (entry, bitmap) = (
            l2[i * width],
            if g.extended_l2 { l2[i * width + 1] } else { 0 },
        );
        let _ = g.cluster_type(entry);
        let _ = g.compressed_extent(entry);
        for sc in 0..g.subclusters {
            let _ = g.subcluster_run(entry, bitmap, sc);
        }
    }
    let mut block = cluster;
    let present = ((table.len() as u64 * 8) >> order).min(g.refblock_entries());
    for i in 0..present {
        let v = refcount::get(order, &block, i);
        refcount::set(order, &mut block, i, v);
        assert_eq!(refcount::get(order, &block, i), v);
    }
    parsed
}
