//! Zero detection for `convert -S`, with qemu-img's exact rule so that our
//! targets are as sparse as qemu-img's, byte for byte:
//!
//! * work in 512-byte sectors; a run of zero sectors shorter than the sparse
//!   size is written as data, a longer one is left out (or zeroed);
//! * where a data run ends off an `alignment` boundary it is extended to the
//!   boundary (or, for a short zero run, the zeros are folded into the data),
//!   so consecutive writes start aligned.

pub const SECTOR: usize = 512;

/// A run inside a buffer: `[start, end)` in bytes and whether it is zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub start: usize,
    pub end: usize,
    pub zero: bool,
}

pub fn is_zero(buf: &[u8]) -> bool {
    // SAFETY: u64 has no invalid bit patterns; align_to only reinterprets.
    let (prefix, words, suffix) = unsafe { buf.align_to::<u64>() };
    prefix.iter().all(|&b| b == 0)
        && words.iter().all(|&w| w == 0)
        && suffix.iter().all(|&b| b == 0)
}

/// The alignment (in sectors) qemu-img uses for a sparse size in bytes.
pub fn alignment_for(sparse_size: u64) -> u64 {
    let sectors = sparse_size / SECTOR as u64;
    if sectors == 0 {
        1
    } else {
        1 << (63 - sectors.leading_zeros())
    }
}

/// Length (sectors) of the leading run of same-zeroness sectors, adjusted
/// to end on an alignment boundary; and whether that run is data.
fn allocated_run(buf: &[u8], sector_num: u64, alignment: u64) -> (bool, usize) {
    let n = buf.len() / SECTOR;
    let first_zero = is_zero(&buf[..SECTOR]);
    let mut i = 1;
    while i < n && is_zero(&buf[i * SECTOR..(i + 1) * SECTOR]) == first_zero {
        i += 1;
    }
    if i == n {
        return (!first_zero, i);
    }
    let mut zero = first_zero;
    let tail = ((sector_num + i as u64) & (alignment - 1)) as usize;
    if tail > 0 {
        if zero && i <= tail {
            // Data follows within this block anyway: write the zeros with it.
            zero = false;
        }
        if !zero {
            i = (i + alignment as usize - tail).min(n);
        } else {
            i -= tail;
        }
    }
    (!zero, i)
}

/// Length (sectors) of the leading run, treating zero runs shorter than
/// `min` sectors as data (qemu-img's `is_allocated_sectors_min`).
fn allocated_run_min(buf: &[u8], sector_num: u64, min: usize, alignment: u64) -> (bool, usize) {
    let n = buf.len() / SECTOR;
    let min = min.min(n);
    let (data, first) = allocated_run(buf, sector_num, alignment);
    if !data {
        return (false, first);
    }
    let (mut used, mut checked) = (first, first);
    while checked < n {
        let (data, len) = allocated_run(
            &buf[checked * SECTOR..],
            sector_num + checked as u64,
            alignment,
        );
        checked += len;
        if data {
            used = checked;
        } else if len >= min {
            break;
        }
    }
    (true, used)
}

/// Splits `buf` (a whole number of sectors, landing at byte `offset` of the
/// target) into data and zero runs; `sparse_size == 0` means all data.
pub fn split(buf: &[u8], offset: u64, sparse_size: u64) -> Vec<Run> {
    if sparse_size == 0 || buf.is_empty() {
        return vec![Run {
            start: 0,
            end: buf.len(),
            zero: false,
        }];
    }
    debug_assert!(buf.len().is_multiple_of(SECTOR) && offset.is_multiple_of(SECTOR as u64));
    let min = (sparse_size / SECTOR as u64) as usize;
    let alignment = alignment_for(sparse_size);
    let mut runs: Vec<Run> = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let sector = (offset + pos as u64) / SECTOR as u64;
        let (data, len) = allocated_run_min(&buf[pos..], sector, min, alignment);
        let end = pos + len * SECTOR;
        match runs.last_mut() {
            Some(last) if last.zero != data => last.end = end,
            _ => runs.push(Run {
                start: pos,
                end,
                zero: !data,
            }),
        }
        pos = end;
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sectors(pattern: &str) -> Vec<u8> {
        pattern
            .bytes()
            .flat_map(|c| std::iter::repeat_n(u8::from(c == b'D'), SECTOR))
            .collect()
    }

    fn shape(runs: &[Run]) -> Vec<(usize, usize, bool)> {
        runs.iter()
            .map(|r| (r.start / SECTOR, r.end / SECTOR, r.zero))
            .collect()
    }

    #[test]
    fn long_zero_runs_are_sparse_short_ones_are_data() {
        // 4 KiB sparse size = 8 sectors, alignment 8.
        let buf = sectors("DD....DD................D.......");
        assert_eq!(
            shape(&split(&buf, 0, 4096)),
            vec![(0, 8, false), (8, 24, true), (24, 32, false)]
        );
    }

    #[test]
    fn data_ends_are_aligned_up() {
        let buf = sectors("D...............");
        assert_eq!(
            shape(&split(&buf, 0, 4096)),
            vec![(0, 8, false), (8, 16, true)]
        );
        // Starting off-boundary: the data run extends to the next boundary.
        assert_eq!(
            shape(&split(&buf, 512 * 3, 4096)),
            vec![(0, 5, false), (5, 16, true)]
        );
    }

    #[test]
    fn zero_sparse_size_means_all_data() {
        assert_eq!(
            split(&[0u8; 1024], 0, 0),
            vec![Run {
                start: 0,
                end: 1024,
                zero: false
            }]
        );
    }

    #[test]
    fn alignment_is_the_power_of_two_below_the_sparse_size() {
        assert_eq!(alignment_for(4096), 8);
        assert_eq!(alignment_for(512 * 12), 8);
        assert_eq!(alignment_for(512), 1);
    }

    #[test]
    fn detects_zero_buffers_of_any_alignment() {
        let buf = vec![0u8; 1027];
        assert!(is_zero(&buf[1..]));
        let mut buf2 = buf.clone();
        buf2[1026] = 3;
        assert!(!is_zero(&buf2[3..]));
    }
}
