//! The object map: two bits of state per data object, stored in
//! `rbd_object_map.<id>[.<snapid>]` as Ceph's `BitVector<2>` (object 0 in the
//! top bits of byte 0), with a CRC32C per 4 KiB of packed data.

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

    /// Grows or shrinks to `len` objects; new objects are nonexistent.
    pub fn resize(&mut self, len: u64) {
        let old = self.len;
        self.data.resize(len.div_ceil(4) as usize, 0);
        self.len = len;
        // Clear bits past the end of a shrunk last byte, and reset any
        // stale states a grow would otherwise expose.
        for object in len.min(old)..(len.div_ceil(4) * 4).min(len.max(old)) {
            if object < len {
                self.set(object, OBJECT_NONEXISTENT);
            }
        }
        if !len.is_multiple_of(4)
            && let Some(last) = self.data.last_mut()
        {
            *last &= !(0xffu8 >> ((len % 4) * 2));
        }
    }

    /// How many objects may hold data (EXISTS, EXISTS_CLEAN or PENDING).
    pub fn allocated(&self) -> u64 {
        (0..self.len)
            .filter(|&o| self.get(o) != OBJECT_NONEXISTENT)
            .count() as u64
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
        assert_eq!(map.allocated(), 7);
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
