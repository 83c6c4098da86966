//! `measure -O qcow2`: QEMU's `qcow2_measure` and
//! `qcow2_calc_prealloc_size`. The fully allocated size is the metadata
//! of a fully allocated image (header, L1 and L2 tables, refcount table
//! and blocks) plus every cluster; what is required counts only the
//! clusters the source holds data in (all of them with a backing file or
//! `preallocation=falloc|full`), plus the same metadata.

use crate::block::driver::Preallocation;
use crate::block::measure::{Measure, MeasureSource};
use crate::block::options::Options;
use crate::error::{Error, Result};
use crate::formats::qcow2::create::validate_cluster_size;
use crate::formats::qcow2::metadata::Meta;
use crate::formats::qcow2::tables::MAX_L1_BYTES;

/// Bytes of a bitmap directory entry before its name (`Qcow2BitmapDirEntry`).
const BITMAP_DIR_ENTRY: u64 = 24;

pub fn measure(options: &Options, source: Option<MeasureSource>) -> Result<Measure> {
    let extended_l2 = options.bool("extended_l2")?.unwrap_or(false);
    let cluster_size = options.size("cluster_size")?.unwrap_or(65536);
    validate_cluster_size(cluster_size, extended_l2)?;
    let version = match options.get("compat") {
        None | Some("1.1") => 3,
        Some("0.10") => 2,
        Some(other) => {
            return Err(Error::invalid(format!(
                "Invalid compatibility level: '{other}'"
            )));
        }
    };
    let refcount_bits = options.number("refcount_bits")?.unwrap_or(16);
    if refcount_bits > 64 || !refcount_bits.is_power_of_two() {
        return Err(Error::invalid(
            "Refcount width must be a power of two and may not exceed 64 bits",
        ));
    }
    if version < 3 && refcount_bits != 16 {
        return Err(Error::invalid(
            "Different refcount widths than 16 bits require compatibility level 1.1 or above (use compat=1.1 or greater)",
        ));
    }
    let prealloc = options.preallocation()?;
    let has_backing_file = options.get("backing_file").is_some();
    // The LUKS header's clusters (QEMU looks the secret up to size it).
    let luks_options = match options.get("encrypt.format") {
        Some("luks") => super::crypto::create_options(options)?,
        _ => None,
    };
    let luks = match luks_options.and_then(|e| e.luks) {
        Some(options) => options.header_len().next_multiple_of(cluster_size),
        None => 0,
    };
    let l2_entry = if extended_l2 { 16 } else { 8 };
    let mut virtual_size = options
        .size("size")?
        .unwrap_or(0)
        .next_multiple_of(cluster_size);
    let l2_tables = (virtual_size / cluster_size).div_ceil(cluster_size / l2_entry);
    if l2_tables.saturating_mul(8) > MAX_L1_BYTES {
        return Err(Error::invalid(
            "The image size is too large (try using a larger cluster size)",
        ));
    }
    let mut required = 0;
    let mut has_bitmaps = None;
    if let Some(source) = source {
        virtual_size = source.size.next_multiple_of(cluster_size);
        required = match has_backing_file {
            true => virtual_size,
            false => data_clusters_bytes(source.size, cluster_size, source.status)?,
        };
        // Bitmaps cover the source's length, unrounded.
        has_bitmaps = source
            .bitmaps
            .filter(|_| version >= 3)
            .map(|b| (b, source.size));
    }
    if matches!(prealloc, Preallocation::Full | Preallocation::Falloc) {
        required = virtual_size;
    }
    let fully_allocated = luks
        + prealloc_size(
            virtual_size,
            cluster_size,
            refcount_bits.trailing_zeros(),
            extended_l2,
        );
    Ok(Measure {
        required: fully_allocated - virtual_size + required,
        fully_allocated,
        bitmaps: has_bitmaps.map(|(b, size)| bitmaps_size(&b, size, cluster_size)),
    })
}

/// The bytes of the clusters the source holds data in, counted as QEMU
/// counts them: each data run from the start of its first cluster to the
/// end of its last, the walk then resuming at that cluster boundary.
fn data_clusters_bytes(
    size: u64,
    cluster_size: u64,
    status: &mut crate::block::measure::SourceStatus,
) -> Result<u64> {
    let mut required = 0;
    let mut offset = 0;
    while offset < size {
        let (zero, data, len) = status(offset, size - offset).map_err(|e| {
            let errno = std::io::Error::from_raw_os_error(e.errno_value());
            Error::invalid(format!(
                "Unable to get block status: {}",
                crate::error::strerror(&errno)
            ))
        })?;
        let mut pnum = len.max(1);
        if !zero && data {
            pnum = (offset + pnum).next_multiple_of(cluster_size) - offset;
            required += offset % cluster_size + pnum;
        }
        offset += pnum;
    }
    Ok(required)
}

/// `qcow2_calc_prealloc_size`: a fully allocated image of `total_size`.
pub fn prealloc_size(
    total_size: u64,
    cluster_size: u64,
    refcount_order: u32,
    extended_l2: bool,
) -> u64 {
    let aligned = total_size.next_multiple_of(cluster_size);
    let l2_entry = if extended_l2 { 16 } else { 8 };
    let mut meta = cluster_size;
    let l2_entries = (aligned / cluster_size).next_multiple_of(cluster_size / l2_entry);
    meta += l2_entries * l2_entry;
    let l1_entries = (l2_entries * l2_entry / cluster_size).next_multiple_of(cluster_size / 8);
    meta += l1_entries * 8;
    let (blocks, table) = Meta::refcount_metadata_size(
        (meta + aligned) / cluster_size,
        cluster_size,
        refcount_order,
        false,
    );
    meta + (blocks + table) * cluster_size + aligned
}

/// `qcow2_get_persistent_dirty_bitmap_size`: every bitmap fully allocated,
/// its table, and the directory.
fn bitmaps_size(bitmaps: &[(String, u64)], size: u64, cluster_size: u64) -> u64 {
    let mut total = 0;
    let mut directory = 0;
    for (name, granularity) in bitmaps {
        let bytes = size.div_ceil(*granularity).div_ceil(8);
        let clusters = bytes.div_ceil(cluster_size);
        total += clusters * cluster_size;
        total += (clusters * 8).next_multiple_of(cluster_size);
        directory += (BITMAP_DIR_ENTRY + name.len() as u64).next_multiple_of(8);
    }
    total + directory.next_multiple_of(cluster_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fully_allocated_sizes_match_qemu() {
        // `qemu-img measure -O qcow2 --size 1G`, with cluster_size=4k, and
        // with extended_l2=on.
        assert_eq!(prealloc_size(1 << 30, 65536, 4, false), 1074135040);
        assert_eq!(prealloc_size(1 << 30, 4096, 4, false), 1076379648);
        assert_eq!(prealloc_size(1 << 30, 65536, 4, true), 1074266112);
        assert_eq!(prealloc_size(0, 65536, 4, false), 196608);
    }
}
