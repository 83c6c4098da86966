//! The qcow2 header and its extensions: the input is the start of an image
//! file (zero-filled past its end, as a short file reads). Whatever parses
//! must also decode table entries with the geometry it implies, and
//! serialise into a header that parses again.

use rbdimg::formats::qcow2::header::{Header, V3_HEADER_LEN};
use rbdimg::formats::qcow2::tables::{Geometry, decode_entries};

/// True when the header parsed (the input reached the table code).
pub fn run(data: &[u8]) -> bool {
    let mut head = data.to_vec();
    head.resize(data.len().max(V3_HEADER_LEN), 0);
    let Ok(mut h) = Header::parse_fixed(&head) else {
        return false;
    };
    let mut first = data.to_vec();
    first.resize(h.cluster_size() as usize, 0);
    let _ = h.unknown_features_error(&first);
    if h.parse_extensions(&first).is_err() {
        return false;
    }
    // Entries as an L2 table would hold them (standard or extended).
    let g = Geometry::new(&h);
    let entries = decode_entries(data);
    let width = if g.extended_l2 { 2 } else { 1 };
    for pair in entries.chunks(width).take(64) {
        let (entry, bitmap) = (pair[0], pair.get(1).copied().unwrap_or(0));
        let _ = g.cluster_type(entry);
        let _ = g.compressed_extent(entry);
        for sc in 0..g.subclusters {
            let _ = g.subcluster_type(entry, bitmap, sc);
            let _ = g.subcluster_run(entry, bitmap, sc);
        }
    }
    let _ = (g.l1_index(h.size), g.size_to_l1(h.size), g.l2_index(h.size));
    // What we write must read back.
    if let Ok(bytes) = h.serialize() {
        let mut again = Header::parse_fixed(&bytes).expect("a serialised header parses");
        again
            .parse_extensions(&bytes)
            .expect("serialised extensions parse");
        assert_eq!(again.backing_file, h.backing_file);
        assert_eq!(again.backing_format, h.backing_format);
        assert_eq!(again.size, h.size);
        assert_eq!(again.l1_table_offset, h.l1_table_offset);
    }
    true
}
