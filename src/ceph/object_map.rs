//! The object map: two bits of state per data object, stored in
//! `rbd_object_map.<id>[.<snapid>]` as Ceph's `BitVector<2>` (object 0 in the
//! top bits of byte 0), with a CRC32C per 4 KiB of packed data.

use std::ops::Range;

use crate::ceph::encoding::{DecodeError, DecodeResult, Decoder, Encoder};

pub const OBJECT_NONEXISTENT: u8 = 0;
pub const OBJECT_EXISTS: u8 = 1;
pub const OBJECT_PENDING: u8 = 2;
pub const OBJECT_EXISTS_CLEAN: u8 = 3;

/// librbd refuses maps larger than this many objects.
pub const MAX_OBJECTS: u64 = 256_000_000;

/// Image flags kept in the header.
pub const FLAG_OBJECT_MAP_INVALID: u64 = 1;
pub const FLAG_FAST_DIFF_INVALID: u64 = 2;

/// Bytes of packed data covered by one CRC.
const CRC_BLOCK: usize = 4096;

/// The low bit of every 2-bit field of a 64-bit word.
const FIELD_LOW_BITS: u64 = 0x5555_5555_5555_5555;

/// cls `object_map_update`'s per-object rule: an object in `state` takes
/// the new state when it is in `current` (any state when `None`), an
/// EXISTS_CLEAN object counting as EXISTS.
pub fn update_applies(state: u8, current: Option<u8>) -> bool {
    match current {
        None => true,
        Some(c) => state == c || (c == OBJECT_EXISTS && state == OBJECT_EXISTS_CLEAN),
    }
}

/// Object map name for the head (`None`) or a snapshot.
pub fn object_name(image_id: &str, snap: Option<u64>) -> String {
    match snap {
        None => format!("rbd_object_map.{image_id}"),
        Some(id) => format!("rbd_object_map.{image_id}.{id:016x}"),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMap {
    len: u64,
    data: Vec<u8>,
}

impl ObjectMap {
    pub fn new(len: u64) -> Self {
        ObjectMap {
            len,
            data: vec![0; len.div_ceil(4) as usize],
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A map of `len` objects over packed data (4 objects a byte), such
    /// as a stretch of a stored map.
    pub fn from_packed(len: u64, data: Vec<u8>) -> Self {
        debug_assert!(data.len() as u64 >= len.div_ceil(4));
        ObjectMap { len, data }
    }

    /// The packed data (4 objects a byte, object 0 in the top bits).
    pub fn packed(&self) -> &[u8] {
        &self.data
    }

    /// Objects `[start, end)` (within the map) that `update_applies` to
    /// take `state`; whether any changed.
    pub fn update(&mut self, start: u64, end: u64, state: u8, current: Option<u8>) -> bool {
        let mut changed = false;
        for o in start..end.min(self.len) {
            let s = self.get(o);
            if update_applies(s, current) && s != state {
                self.set(o, state);
                changed = true;
            }
        }
        changed
    }

    pub fn get(&self, object: u64) -> u8 {
        if object >= self.len {
            return OBJECT_NONEXISTENT;
        }
        let shift = (3 - object % 4) * 2;
        (self.data[(object / 4) as usize] >> shift) & 3
    }

    pub fn set(&mut self, object: u64, state: u8) {
        let shift = (3 - object % 4) * 2;
        let byte = &mut self.data[(object / 4) as usize];
        *byte = (*byte & !(3 << shift)) | ((state & 3) << shift);
    }

    /// Sets every object of `range` (within the map) to `state`, whole
    /// bytes at a time: a large map is resized in a moment.
    pub fn fill(&mut self, range: Range<u64>, state: u8) {
        let (start, end) = (range.start, range.end.min(self.len));
        let (first_byte, last_byte) = (start.div_ceil(4), end / 4);
        if first_byte >= last_byte {
            (start..end).for_each(|o| self.set(o, state));
            return;
        }
        (start..first_byte * 4).for_each(|o| self.set(o, state));
        self.data[first_byte as usize..last_byte as usize].fill((state & 3) * 0x55);
        (last_byte * 4..end).for_each(|o| self.set(o, state));
    }

    /// Whether every object of `range` (within the map) is in `state`.
    pub fn all(&self, range: Range<u64>, state: u8) -> bool {
        let (start, end) = (range.start, range.end.min(self.len));
        let (first_byte, last_byte) = (start.div_ceil(4), end / 4);
        if first_byte >= last_byte {
            return (start..end).all(|o| self.get(o) == state);
        }
        (start..first_byte * 4).all(|o| self.get(o) == state)
            && self.data[first_byte as usize..last_byte as usize]
                .iter()
                .all(|&b| b == (state & 3) * 0x55)
            && (last_byte * 4..end).all(|o| self.get(o) == state)
    }

    /// Grows or shrinks to `len` objects; new objects are nonexistent.
    pub fn resize(&mut self, len: u64) {
        let old = self.len;
        self.data.resize(len.div_ceil(4) as usize, 0);
        self.len = len;
        // A grow exposes the rest of the old last byte, whose bits may be
        // stale (new bytes are zeros); a shrink clears the bits past the
        // new end of its last byte.
        (old..len.min(old.div_ceil(4) * 4)).for_each(|o| self.set(o, OBJECT_NONEXISTENT));
        if !len.is_multiple_of(4)
            && let Some(last) = self.data.last_mut()
        {
            *last &= !(0xffu8 >> ((len % 4) * 2));
        }
    }

    /// How many objects below `end` may hold data (EXISTS, EXISTS_CLEAN or
    /// PENDING), counted a word of 32 objects at a time.
    pub fn allocated(&self, end: u64) -> u64 {
        let end = end.min(self.len);
        let whole = end / 4;
        let mut words = self.data[..whole as usize].chunks_exact(8);
        let mut count: u64 = (&mut words)
            .map(|w| {
                let w = u64::from_le_bytes(w.try_into().expect("8 bytes"));
                u64::from(((w | (w >> 1)) & FIELD_LOW_BITS).count_ones())
            })
            .sum();
        let rest = whole - words.remainder().len() as u64;
        count += (rest * 4..end)
            .filter(|&o| self.get(o) != OBJECT_NONEXISTENT)
            .count() as u64;
        count
    }

    /// The run of objects from `from` (below `to`, `from < to`) that all
    /// may exist or all do not: whether they may, and where the run ends.
    /// Objects past the map do not exist. Scans whole words where it can,
    /// so a 16 TiB image's map (1 MiB) is crossed in well under a
    /// millisecond.
    pub fn run(&self, from: u64, to: u64) -> (bool, u64) {
        let exists = self.get(from) != OBJECT_NONEXISTENT;
        let limit = to.min(self.len);
        let differs = |o: u64| (self.get(o) != OBJECT_NONEXISTENT) != exists;
        // Whole words of 32 objects, then bytes of 4, are all alike when
        // every field is zero (none exists) or every field is non-zero.
        let alike = |bits: u64, fields: u64| {
            let nonzero = (bits | (bits >> 1)) & fields;
            if exists {
                nonzero == fields
            } else {
                nonzero == 0
            }
        };
        let mut o = from + 1;
        while o < limit && !o.is_multiple_of(4) {
            if differs(o) {
                return (exists, o);
            }
            o += 1;
        }
        while o + 32 <= limit {
            let at = (o / 4) as usize;
            let word = u64::from_le_bytes(self.data[at..at + 8].try_into().expect("8 bytes"));
            if !alike(word, FIELD_LOW_BITS) {
                break;
            }
            o += 32;
        }
        while o + 4 <= limit && alike(u64::from(self.data[(o / 4) as usize]), 0x55) {
            o += 4;
        }
        while o < limit {
            if differs(o) {
                return (exists, o);
            }
            o += 1;
        }
        (exists, if exists { limit } else { to })
    }

    /// Marks every EXISTS object EXISTS_CLEAN (a snapshot was taken, for
    /// fast-diff); whether any changed.
    pub fn clean(&mut self) -> bool {
        let mut changed = false;
        for byte in &mut self.data {
            // Fields 01 (EXISTS) gain their high bit.
            let exists = *byte & 0x55 & !(*byte >> 1);
            if exists != 0 {
                *byte |= exists << 1;
                changed = true;
            }
        }
        changed
    }

    /// Decodes a `BitVector<2>`, checking CRCs when present.
    pub fn decode(bytes: &[u8]) -> DecodeResult<ObjectMap> {
        let mut d = Decoder::new(bytes);
        let header = d.bytes()?;
        let len = Decoder::new(header).versioned(1, |_, h| h.u64())?;
        if len > MAX_OBJECTS {
            return Err(DecodeError(format!("object map of {len} objects")));
        }
        let data = d.raw(len.div_ceil(4) as usize)?.to_vec();
        let footer = d.bytes()?;
        if !footer.is_empty() {
            let mut f = Decoder::new(footer);
            if f.u32()? != ceph_crc32c(0, header) {
                return Err(DecodeError("object map header CRC mismatch".into()));
            }
            let blocks = f.count(4)?;
            if blocks != data.len().div_ceil(CRC_BLOCK) {
                return Err(DecodeError("object map CRC count mismatch".into()));
            }
            for chunk in data.chunks(CRC_BLOCK) {
                if f.u32()? != ceph_crc32c(0, chunk) {
                    return Err(DecodeError("object map data CRC mismatch".into()));
                }
            }
        }
        Ok(ObjectMap { len, data })
    }

    /// Encodes with CRCs, as the OSD stores it.
    pub fn encode(&self) -> Vec<u8> {
        let mut header = Encoder::new();
        header.versioned(1, 1, |h| {
            h.u64(self.len);
        });
        let header = header.into_bytes();
        let mut footer = Encoder::new();
        footer
            .u32(ceph_crc32c(0, &header))
            .u32(self.data.len().div_ceil(CRC_BLOCK) as u32);
        for chunk in self.data.chunks(CRC_BLOCK) {
            footer.u32(ceph_crc32c(0, chunk));
        }
        let mut e = Encoder::new();
        e.bytes(&header).raw(&self.data).bytes(&footer.into_bytes());
        e.into_bytes()
    }
}

/// Where the parts of a stored map lie (Ceph's `BitVector<2>` with CRCs),
/// for a method that reads and writes only the CRC blocks it changes, as
/// cls_rbd's `object_map_update` does:
///
/// ```text
///  [0, 18)            header: u32 length, versioned { u64 objects }
///  [18, 18 + bytes)   packed data, CRC'd in blocks of 4096 bytes
///  footer             u32 length, u32 header CRC, u32 count, u32 CRC per block
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredLayout {
    /// Objects in the map.
    pub len: u64,
}

impl StoredLayout {
    pub const HEADER_LEN: u64 = 18;

    /// Reads the header (its first `HEADER_LEN` bytes).
    pub fn decode_header(header: &[u8]) -> DecodeResult<StoredLayout> {
        let mut d = Decoder::new(header);
        let inner = d.bytes()?;
        let len = Decoder::new(inner).versioned(1, |_, h| h.u64())?;
        Ok(StoredLayout { len })
    }

    fn data_len(&self) -> u64 {
        self.len.div_ceil(4)
    }

    /// The CRC blocks holding objects `[start, end)` (`start < end`).
    pub fn blocks(&self, start: u64, end: u64) -> Range<u64> {
        let block = |object: u64| object / 4 / CRC_BLOCK as u64;
        block(start)..block(end - 1) + 1
    }

    /// The first object of a block.
    pub fn first_object(block: u64) -> u64 {
        block * CRC_BLOCK as u64 * 4
    }

    /// Where the packed data of `blocks` lies in the object: offset, length.
    pub fn data_extent(&self, blocks: &Range<u64>) -> (u64, u64) {
        let from = blocks.start * CRC_BLOCK as u64;
        let to = (blocks.end * CRC_BLOCK as u64).min(self.data_len());
        (Self::HEADER_LEN + from, to - from)
    }

    /// Where the CRCs of `blocks` lie in the object: offset, length.
    pub fn crc_extent(&self, blocks: &Range<u64>) -> (u64, u64) {
        // After the data: the footer's length, the header CRC, the count.
        let first_crc = Self::HEADER_LEN + self.data_len() + 12;
        (
            first_crc + blocks.start * 4,
            (blocks.end - blocks.start) * 4,
        )
    }

    /// The CRC of one block of packed data, as stored.
    pub fn block_crc(block: &[u8]) -> u32 {
        ceph_crc32c(0, block)
    }

    pub const BLOCK: usize = CRC_BLOCK;
}

/// Ceph's CRC32C: the Castagnoli CRC with the seed as the register and no
/// final inversion.
pub fn ceph_crc32c(seed: u32, data: &[u8]) -> u32 {
    !crc32c::crc32c_append(!seed, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ceph::encoding::hex;

    #[test]
    fn crc_matches_ceph_vectors() {
        assert_eq!(ceph_crc32c(0, b"foo bar baz"), 4119623852);
        assert_eq!(ceph_crc32c(1234, b"foo bar baz"), 881700046);
        assert_eq!(ceph_crc32c(0, b"123456789"), 0x58e3fa20);
    }

    #[test]
    fn encodes_the_worked_example() {
        let mut map = ObjectMap::new(10);
        for (i, s) in [1, 0, 3, 2, 1, 1, 0, 0, 3, 1].into_iter().enumerate() {
            map.set(i as u64, s);
        }
        let stored = hex(
            "0e 00 00 00 01 01 08 00 00 00 0a 00 00 00 00 00 00 00 4e 50 d0 \
             0c 00 00 00 c6 44 f4 3a 01 00 00 00 25 9e 84 3d",
        );
        assert_eq!(map.encode(), stored);
        assert_eq!(ObjectMap::decode(&stored).unwrap(), map);
        // object_map_load's form carries no CRCs.
        let loaded =
            hex("0e 00 00 00 01 01 08 00 00 00 0a 00 00 00 00 00 00 00 4e 50 d0 00 00 00 00");
        assert_eq!(ObjectMap::decode(&loaded).unwrap(), map);
        assert_eq!(map.allocated(10), 7);
        assert_eq!(map.allocated(3), 2);
    }

    #[test]
    fn ranges_fill_and_compare_as_objects_one_by_one() {
        for (len, start, end) in [(10, 0, 10), (10, 1, 9), (10, 2, 3), (37, 5, 37), (8, 4, 8)] {
            let mut map = ObjectMap::new(len);
            let mut one_by_one = ObjectMap::new(len);
            map.set(0, OBJECT_PENDING);
            one_by_one.set(0, OBJECT_PENDING);
            map.fill(start..end, OBJECT_EXISTS_CLEAN);
            (start..end).for_each(|o| one_by_one.set(o, OBJECT_EXISTS_CLEAN));
            assert_eq!(map, one_by_one, "{len} {start}..{end}");
            assert!(map.all(start..end, OBJECT_EXISTS_CLEAN));
            assert_eq!(
                map.all(0..len, OBJECT_EXISTS_CLEAN),
                start == 0 && end == len
            );
        }
    }

    #[test]
    fn runs_and_counts_match_objects_one_by_one() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for len in [1u64, 5, 31, 32, 33, 200, 1000] {
            for density in [0u64, 1, 8, 64] {
                let mut map = ObjectMap::new(len);
                for o in 0..len {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    // Long runs of each kind, with states of all kinds.
                    if density > 0 && rng % 64 < density {
                        map.set(o, (rng >> 8) as u8 % 3 + 1);
                    }
                }
                let may = |o: u64| map.get(o) != OBJECT_NONEXISTENT;
                for end in [0, len / 2, len, len + 9] {
                    let expected = (0..end.min(len)).filter(|&o| may(o)).count() as u64;
                    assert_eq!(map.allocated(end), expected);
                }
                for from in 0..len {
                    let to = len + 3;
                    let (exists, end) = map.run(from, to);
                    assert_eq!(exists, may(from), "{len} {from}");
                    let expected = (from..to).find(|&o| may(o) != exists).unwrap_or(to);
                    assert_eq!(end, expected, "{len} {density} {from}");
                }
                let mut cleaned = map.clone();
                let changed = cleaned.clean();
                assert_eq!(changed, (0..len).any(|o| map.get(o) == OBJECT_EXISTS));
                for o in 0..len {
                    let want = match map.get(o) {
                        OBJECT_EXISTS => OBJECT_EXISTS_CLEAN,
                        s => s,
                    };
                    assert_eq!(cleaned.get(o), want);
                }
            }
        }
    }

    #[test]
    fn stored_layout_locates_blocks_and_crcs() {
        // 40000 objects: 10000 data bytes in 3 CRC blocks.
        let mut map = ObjectMap::new(40_000);
        map.set(39_999, OBJECT_EXISTS);
        let stored = map.encode();
        let layout =
            StoredLayout::decode_header(&stored[..StoredLayout::HEADER_LEN as usize]).unwrap();
        assert_eq!(layout.len, 40_000);
        let blocks = layout.blocks(16_383, 16_385);
        assert_eq!(blocks, 0..2);
        assert_eq!(layout.blocks(39_999, 40_000), 2..3);
        let last = layout.blocks(39_999, 40_000);
        let (at, len) = layout.data_extent(&last);
        assert_eq!((at, len), (18 + 8192, 10_000 - 8192));
        let data = &stored[at as usize..(at + len) as usize];
        assert_eq!(data.last(), Some(&0x01));
        assert_eq!(StoredLayout::first_object(2), 32_768);
        let (crc_at, crc_len) = layout.crc_extent(&last);
        assert_eq!(crc_len, 4);
        let crc = &stored[crc_at as usize..(crc_at + 4) as usize];
        assert_eq!(
            u32::from_le_bytes(crc.try_into().unwrap()),
            StoredLayout::block_crc(data)
        );
        // The footer ends the object.
        assert_eq!(crc_at as usize + 4, stored.len());
    }

    #[test]
    fn detects_corruption_and_resizes() {
        let mut map = ObjectMap::new(10);
        map.set(9, OBJECT_EXISTS);
        let mut bytes = map.encode();
        bytes[19] ^= 1;
        assert!(ObjectMap::decode(&bytes).is_err());
        map.resize(9);
        map.resize(12);
        assert_eq!(map.get(9), OBJECT_NONEXISTENT);
        assert_eq!(map.len(), 12);
        assert_eq!(
            object_name("abc", Some(4)),
            "rbd_object_map.abc.0000000000000004"
        );
    }
}
