//! Refcount block entries of every width ("Refcount block entry (x =
//! refcount_bits - 1): Bit 0 - x: Reference count of the cluster. If
//! refcount_bits implies a sub-byte width, note that bit 0 means the least
//! significant bit in this context.").
//!
//! A refcount block is kept as its raw bytes; these accessors read and write
//! entry `index` for `refcount_order` 0 (1 bit) to 6 (64 bits).

/// Reads entry `index` of a refcount array.
pub fn get(order: u32, block: &[u8], index: u64) -> u64 {
    let i = index as usize;
    match order {
        0..=2 => {
            let bits = 1usize << order;
            let per_byte = 8 / bits;
            let byte = block[i / per_byte];
            let shift = (i % per_byte) * bits;
            u64::from(byte >> shift) & ((1u64 << bits) - 1)
        }
        3 => u64::from(block[i]),
        4 => u64::from(u16::from_be_bytes([block[2 * i], block[2 * i + 1]])),
        5 => u64::from(u32::from_be_bytes(
            block[4 * i..4 * i + 4].try_into().expect("4 bytes"),
        )),
        _ => u64::from_be_bytes(block[8 * i..8 * i + 8].try_into().expect("8 bytes")),
    }
}

/// Writes entry `index`; `value` must fit the width.
pub fn set(order: u32, block: &mut [u8], index: u64, value: u64) {
    let i = index as usize;
    match order {
        0..=2 => {
            let bits = 1usize << order;
            let per_byte = 8 / bits;
            let shift = (i % per_byte) * bits;
            let mask = (((1u16 << bits) - 1) as u8) << shift;
            let byte = &mut block[i / per_byte];
            *byte = (*byte & !mask) | (((value as u8) << shift) & mask);
        }
        3 => block[i] = value as u8,
        4 => block[2 * i..2 * i + 2].copy_from_slice(&(value as u16).to_be_bytes()),
        5 => block[4 * i..4 * i + 4].copy_from_slice(&(value as u32).to_be_bytes()),
        _ => block[8 * i..8 * i + 8].copy_from_slice(&value.to_be_bytes()),
    }
}

/// The byte range of `block` that holds entries `[first, last]`.
pub fn byte_range(order: u32, first: u64, last: u64) -> (usize, usize) {
    let start = (first << order) / 8;
    let end = ((last + 1) << order).div_ceil(8);
    (start as usize, end as usize)
}

/// Bytes needed for `entries` refcounts.
pub fn array_bytes(order: u32, entries: u64) -> u64 {
    (entries << order).div_ceil(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_width_round_trips() {
        for order in 0..=6u32 {
            let bits = 1u32 << order;
            let max = if bits == 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            };
            let mut block = vec![0u8; 512];
            let entries = 512 * 8 / bits as u64;
            for i in 0..entries {
                set(order, &mut block, i, (i * 7 + 3) & max);
            }
            for i in 0..entries {
                assert_eq!(
                    get(order, &block, i),
                    (i * 7 + 3) & max,
                    "order {order} i {i}"
                );
            }
            set(order, &mut block, 5, max);
            assert_eq!(get(order, &block, 5), max);
            assert_eq!(get(order, &block, 4), (4 * 7 + 3) & max, "neighbour kept");
        }
    }

    #[test]
    fn sub_byte_entries_start_at_the_least_significant_bit() {
        let mut block = vec![0u8; 2];
        set(0, &mut block, 0, 1);
        set(0, &mut block, 9, 1);
        assert_eq!(block, vec![0b0000_0001, 0b0000_0010]);
        let mut block = vec![0u8; 1];
        set(1, &mut block, 1, 3);
        assert_eq!(block, vec![0b0000_1100]);
        let mut block = vec![0u8; 1];
        set(2, &mut block, 1, 0xa);
        assert_eq!(block, vec![0xa0]);
        // 16-bit entries are big endian, as `qemu-img create` writes them.
        let mut block = vec![0u8; 4];
        set(4, &mut block, 1, 1);
        assert_eq!(block, vec![0, 0, 0, 1]);
    }

    #[test]
    fn byte_ranges_cover_the_entries() {
        assert_eq!(byte_range(0, 0, 7), (0, 1));
        assert_eq!(byte_range(0, 8, 9), (1, 2));
        assert_eq!(byte_range(4, 3, 4), (6, 10));
        assert_eq!(byte_range(6, 1, 1), (8, 16));
        assert_eq!(array_bytes(0, 9), 2);
    }
}
