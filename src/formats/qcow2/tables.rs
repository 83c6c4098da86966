//! L1 and L2 table entries ("Cluster mapping" and "Extended L2 Entries" in
//! docs/interop/qcow2.txt) and the image geometry that decodes them.

use crate::formats::qcow2::header::{
    AUTOCLEAR_DATA_FILE_RAW, CompressionType, Header, INCOMPAT_DATA_FILE, INCOMPAT_EXTL2,
};

/// L1 entry bits 9-55: "Bits 9-55 of the offset into the image file at
/// which the L2 table starts."
pub const L1E_OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// L1 entry bits 0-8 and 56-62: "Reserved (set to 0)".
pub const L1E_RESERVED_MASK: u64 = 0x7f00_0000_0000_01ff;
/// Standard cluster descriptor bits 9-55: "host cluster offset".
pub const L2E_OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// Standard cluster descriptor bits 1-8 and 56-61: reserved.
pub const L2E_STD_RESERVED_MASK: u64 = 0x3f00_0000_0000_01fe;
/// Refcount table entry bits 9-63: "offset into the image file at which the
/// refcount block starts".
pub const REFT_OFFSET_MASK: u64 = 0xffff_ffff_ffff_fe00;
/// Refcount table entry bits 0-8: reserved.
pub const REFT_RESERVED_MASK: u64 = 0x1ff;

/// Bit 63 of L1 and L2 entries: "1 if its refcount is exactly one".
pub const OFLAG_COPIED: u64 = 1 << 63;
/// L2 bit 62: "1 for compressed clusters".
pub const OFLAG_COMPRESSED: u64 = 1 << 62;
/// Standard descriptor bit 0: "If set to 1, the cluster reads as all zeros."
pub const OFLAG_ZERO: u64 = 1;

/// "standard data clusters are divided into 32 subclusters".
pub const EXTL2_SUBCLUSTERS: u32 = 32;
/// All 32 allocation bits of an extended L2 bitmap.
pub const BITMAP_ALL_ALLOC: u64 = 0xffff_ffff;
/// All 32 "reads as zeros" bits.
pub const BITMAP_ALL_ZEROES: u64 = 0xffff_ffff << 32;

/// Largest host offset a standard descriptor can hold (56 bits).
pub const MAX_CLUSTER_OFFSET: u64 = (1 << 56) - 1;
/// QEMU's limits on table sizes.
pub const MAX_L1_BYTES: u64 = 32 << 20;
pub const MAX_REFTABLE_BYTES: u64 = 8 << 20;

/// Bits [from, to) of the allocation half of a bitmap (0 <= from <= to <= 32).
pub fn alloc_range(from: u32, to: u32) -> u64 {
    (1u64 << to) - (1u64 << from)
}

/// Bits [from, to) of the zero half of a bitmap.
pub fn zero_range(from: u32, to: u32) -> u64 {
    alloc_range(from, to) << 32
}

/// What an L2 entry says about a whole cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterType {
    Unallocated,
    /// Zero flag, no host cluster.
    ZeroPlain,
    /// Zero flag with a (preallocated) host cluster.
    ZeroAlloc,
    Normal,
    Compressed,
}

impl ClusterType {
    /// The entry holds a host cluster (QEMU's `qcow2_cluster_is_allocated`).
    pub fn is_allocated(self) -> bool {
        matches!(
            self,
            ClusterType::Compressed | ClusterType::Normal | ClusterType::ZeroAlloc
        )
    }
}

/// What an L2 entry (and bitmap) says about one subcluster; without
/// extended L2 entries a cluster is one subcluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubclusterType {
    Normal,
    Compressed,
    ZeroPlain,
    ZeroAlloc,
    UnallocatedPlain,
    /// Unallocated subcluster of an allocated host cluster.
    UnallocatedAlloc,
    Invalid,
}

impl SubclusterType {
    pub fn reads_zero(self) -> bool {
        matches!(self, SubclusterType::ZeroPlain | SubclusterType::ZeroAlloc)
    }

    /// Types whose entry names a host cluster (data, or a preallocated
    /// zero or unallocated subcluster).
    pub fn names_host_cluster(self) -> bool {
        matches!(
            self,
            SubclusterType::Normal | SubclusterType::ZeroAlloc | SubclusterType::UnallocatedAlloc
        )
    }

    pub fn is_unallocated(self) -> bool {
        matches!(
            self,
            SubclusterType::UnallocatedPlain | SubclusterType::UnallocatedAlloc
        )
    }
}

/// Sizes and shifts derived from the header, fixed while an image is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub version: u32,
    pub cluster_bits: u32,
    pub cluster_size: u64,
    /// Entries per L2 table.
    pub l2_entries: u64,
    /// 8, or 16 with extended L2 entries.
    pub l2_entry_bytes: u64,
    pub extended_l2: bool,
    pub subcluster_bits: u32,
    pub subclusters: u32,
    pub refcount_order: u32,
    /// log2 of the refcount entries per refcount block.
    pub refblock_bits: u32,
    pub refcount_max: u64,
    /// Compressed descriptor: "x = 62 - (cluster_bits - 8)".
    pub csize_shift: u32,
    pub csize_mask: u64,
    pub cluster_offset_mask: u64,
    pub has_data_file: bool,
    pub data_file_raw: bool,
    pub compression: CompressionType,
}

impl Geometry {
    pub fn new(h: &Header) -> Geometry {
        let cluster_bits = h.cluster_bits;
        let extended_l2 = h.incompatible_features & INCOMPAT_EXTL2 != 0;
        let l2_entry_bytes: u64 = if extended_l2 { 16 } else { 8 };
        let subclusters = if extended_l2 { EXTL2_SUBCLUSTERS } else { 1 };
        let refcount_bits = 1u32 << h.refcount_order.min(6);
        let refcount_max = if refcount_bits == 64 {
            u64::MAX
        } else {
            (1u64 << refcount_bits) - 1
        };
        let csize_shift = 62 - (cluster_bits - 8);
        Geometry {
            version: h.version,
            cluster_bits,
            cluster_size: 1 << cluster_bits,
            l2_entries: (1u64 << cluster_bits) / l2_entry_bytes,
            l2_entry_bytes,
            extended_l2,
            subcluster_bits: cluster_bits - subclusters.trailing_zeros(),
            subclusters,
            refcount_order: h.refcount_order.min(6),
            refblock_bits: cluster_bits + 3 - h.refcount_order.min(6),
            refcount_max,
            csize_shift,
            csize_mask: (1u64 << (cluster_bits - 8)) - 1,
            cluster_offset_mask: (1u64 << csize_shift) - 1,
            has_data_file: h.incompatible_features & INCOMPAT_DATA_FILE != 0,
            data_file_raw: h.autoclear_features & AUTOCLEAR_DATA_FILE_RAW != 0,
            compression: h.compression_type,
        }
    }

    pub fn subcluster_size(&self) -> u64 {
        1 << self.subcluster_bits
    }

    pub fn offset_into_cluster(&self, off: u64) -> u64 {
        off & (self.cluster_size - 1)
    }

    /// Whether the host cluster an L2 entry names passes QEMU's read-path
    /// checks (`qcow2_get_host_offset`): cluster-aligned, and with an
    /// external data file, equal to the guest cluster.
    pub fn host_cluster_valid(&self, entry: u64, guest_cluster: u64) -> bool {
        let host = entry & L2E_OFFSET_MASK;
        self.offset_into_cluster(host) == 0 && (!self.has_data_file || host == guest_cluster)
    }

    pub fn start_of_cluster(&self, off: u64) -> u64 {
        off & !(self.cluster_size - 1)
    }

    pub fn size_to_clusters(&self, size: u64) -> u64 {
        size.div_ceil(self.cluster_size)
    }

    /// Guest bytes one L2 table maps.
    pub fn l2_span(&self) -> u64 {
        self.l2_entries << self.cluster_bits
    }

    pub fn l1_index(&self, off: u64) -> u64 {
        off >> (self.cluster_bits + self.l2_entries.trailing_zeros())
    }

    pub fn l2_index(&self, off: u64) -> usize {
        ((off >> self.cluster_bits) & (self.l2_entries - 1)) as usize
    }

    pub fn sc_index(&self, off: u64) -> u32 {
        ((off >> self.subcluster_bits) & u64::from(self.subclusters - 1)) as u32
    }

    /// L1 entries needed for a virtual size (`size_to_l1`).
    pub fn size_to_l1(&self, size: u64) -> u64 {
        size.div_ceil(self.l2_span())
    }

    /// Refcount entries per refcount block.
    pub fn refblock_entries(&self) -> u64 {
        1 << self.refblock_bits
    }

    pub fn cluster_type(&self, entry: u64) -> ClusterType {
        if entry & OFLAG_COMPRESSED != 0 {
            ClusterType::Compressed
        } else if entry & OFLAG_ZERO != 0 && !self.extended_l2 {
            if entry & L2E_OFFSET_MASK != 0 {
                ClusterType::ZeroAlloc
            } else {
                ClusterType::ZeroPlain
            }
        } else if entry & L2E_OFFSET_MASK == 0 {
            // Offset 0 is valid in an external data file; refcount 1
            // (the copied flag) tells it from "unallocated".
            if self.has_data_file && entry & OFLAG_COPIED != 0 {
                ClusterType::Normal
            } else {
                ClusterType::Unallocated
            }
        } else {
            ClusterType::Normal
        }
    }

    /// The type of subcluster `sc` (always 0 without extended L2 entries).
    pub fn subcluster_type(&self, entry: u64, bitmap: u64, sc: u32) -> SubclusterType {
        let ctype = self.cluster_type(entry);
        if !self.extended_l2 {
            return match ctype {
                ClusterType::Compressed => SubclusterType::Compressed,
                ClusterType::ZeroPlain => SubclusterType::ZeroPlain,
                ClusterType::ZeroAlloc => SubclusterType::ZeroAlloc,
                ClusterType::Normal => SubclusterType::Normal,
                ClusterType::Unallocated => SubclusterType::UnallocatedPlain,
            };
        }
        match ctype {
            ClusterType::Compressed => SubclusterType::Compressed,
            ClusterType::Normal | ClusterType::ZeroAlloc | ClusterType::ZeroPlain => {
                if (bitmap >> 32) & bitmap != 0 {
                    SubclusterType::Invalid
                } else if bitmap & (1u64 << (sc + 32)) != 0 {
                    SubclusterType::ZeroAlloc
                } else if bitmap & (1u64 << sc) != 0 {
                    SubclusterType::Normal
                } else {
                    SubclusterType::UnallocatedAlloc
                }
            }
            ClusterType::Unallocated => {
                if bitmap & BITMAP_ALL_ALLOC != 0 {
                    SubclusterType::Invalid
                } else if bitmap & (1u64 << (sc + 32)) != 0 {
                    SubclusterType::ZeroPlain
                } else {
                    SubclusterType::UnallocatedPlain
                }
            }
        }
    }

    /// The type of subcluster `sc_from` and how many subclusters of the same
    /// type follow it in this cluster (`qcow2_get_subcluster_range_type`).
    pub fn subcluster_run(&self, entry: u64, bitmap: u64, sc_from: u32) -> (SubclusterType, u32) {
        let t = self.subcluster_type(entry, bitmap, sc_from);
        if t == SubclusterType::Invalid {
            return (t, 0);
        }
        if !self.extended_l2 || t == SubclusterType::Compressed {
            return (t, self.subclusters - sc_from);
        }
        let below = alloc_range(0, sc_from) as u32;
        let n = match t {
            SubclusterType::Normal => (bitmap as u32 | below).trailing_ones(),
            SubclusterType::ZeroPlain | SubclusterType::ZeroAlloc => {
                ((bitmap >> 32) as u32 | below).trailing_ones()
            }
            _ => (((bitmap >> 32) as u32 | bitmap as u32) & !below).trailing_zeros(),
        };
        (t, n.min(32) - sc_from)
    }

    /// Host offset and byte length of a compressed cluster's data.
    pub fn compressed_extent(&self, entry: u64) -> (u64, u64) {
        let offset = entry & self.cluster_offset_mask;
        let sectors = ((entry >> self.csize_shift) & self.csize_mask) + 1;
        (offset, sectors * 512 - (offset & 511))
    }

    /// The descriptor for compressed data of `len` bytes at `offset`.
    pub fn compressed_entry(&self, offset: u64, len: u64) -> u64 {
        let sectors = (offset + len - 1) / 512 - offset / 512;
        OFLAG_COMPRESSED | (sectors << self.csize_shift) | offset
    }
}

/// Reads big-endian u64 entries.
pub fn decode_entries(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

/// Writes big-endian u64 entries.
pub fn encode_entries(entries: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 8);
    for e in entries {
        out.extend_from_slice(&e.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(cluster_bits: u32, extended: bool) -> Geometry {
        let mut h = Header::new(3, cluster_bits, 4);
        if extended {
            h.incompatible_features |= INCOMPAT_EXTL2;
        }
        Geometry::new(&h)
    }

    #[test]
    fn standard_entries_decode() {
        let g = geometry(16, false);
        assert_eq!(g.cluster_type(0), ClusterType::Unallocated);
        assert_eq!(g.cluster_type(OFLAG_ZERO), ClusterType::ZeroPlain);
        assert_eq!(g.cluster_type(0x50000 | OFLAG_ZERO), ClusterType::ZeroAlloc);
        assert_eq!(g.cluster_type(OFLAG_COPIED | 0x50000), ClusterType::Normal);
        assert_eq!(
            g.cluster_type(OFLAG_COMPRESSED | 0x50200),
            ClusterType::Compressed
        );
        assert_eq!(g.l2_entries, 8192);
        assert_eq!(g.l2_span(), 512 << 20);
        assert_eq!(g.size_to_l1(1 << 30), 2);
    }

    #[test]
    fn compressed_descriptor_round_trips() {
        let g = geometry(16, false);
        // x = 62 - (16 - 8) = 54: offset in bits 0-53, sector count above.
        assert_eq!(g.csize_shift, 54);
        let e = g.compressed_entry(0x50123, 1000);
        let (off, len) = g.compressed_extent(e);
        assert_eq!(off, 0x50123);
        // 0x50123 + 1000 ends in the third sector from 0x50000, so the
        // descriptor covers three sectors minus the 0x123 lead-in.
        assert_eq!(len, 3 * 512 - 0x123);
        assert!(len >= 1000);
    }

    #[test]
    fn extended_bitmaps_decode() {
        let g = geometry(16, true);
        assert_eq!(g.l2_entries, 4096);
        assert_eq!(g.subcluster_size(), 2048);
        let entry = OFLAG_COPIED | 0x70000;
        // Subclusters 0-3 allocated, 4-5 zero, the rest unallocated.
        let bitmap = alloc_range(0, 4) | zero_range(4, 6);
        assert_eq!(
            g.subcluster_run(entry, bitmap, 0),
            (SubclusterType::Normal, 4)
        );
        assert_eq!(
            g.subcluster_run(entry, bitmap, 2),
            (SubclusterType::Normal, 2)
        );
        assert_eq!(
            g.subcluster_run(entry, bitmap, 4),
            (SubclusterType::ZeroAlloc, 2)
        );
        assert_eq!(
            g.subcluster_run(entry, bitmap, 6),
            (SubclusterType::UnallocatedAlloc, 26)
        );
        assert_eq!(
            g.subcluster_run(0, zero_range(0, 32), 3),
            (SubclusterType::ZeroPlain, 29)
        );
        // An allocation bit on an unallocated cluster is invalid.
        assert_eq!(g.subcluster_type(0, 1, 0), SubclusterType::Invalid);
        // So is a subcluster both allocated and zero.
        assert_eq!(
            g.subcluster_type(entry, 1 | 1 << 32, 5),
            SubclusterType::Invalid
        );
    }

    #[test]
    fn entries_encode_big_endian() {
        let bytes = encode_entries(&[0x8000_0000_0005_0000, 1]);
        assert_eq!(&bytes[..8], &[0x80, 0, 0, 0, 0, 5, 0, 0]);
        assert_eq!(decode_entries(&bytes), vec![0x8000_0000_0005_0000, 1]);
    }
}
