//! `rebase`'s safe mode (qemu-img's `img_rebase`): before an image is
//! pointed at another backing file, every range it does not store itself
//! (and so reads from its backing file) is compared between the old and the
//! new backing file, and where they differ the old bytes are written into
//! the image, so that its content does not change. Nothing else is
//! written: ranges the image stores stay as they are, equal ranges stay
//! unallocated.
//!
//! ```text
//!   for each extent:      allocated in the image?  -> next
//!                         zeros in both backing files? -> next
//!   for each 2 MiB step:  widen to the write alignment (subcluster, or
//!                         cluster with -c)
//!                         read old and new backing (zeros past their ends)
//!                         per alignment unit: differ? -> write the old bytes
//!                         (zeros where the old backing file had ended)
//! ```
//! Extents come from the allocation metadata (`block::walk`), so ranges
//! that neither backing file stores cost no reads: the work grows with
//! what the three images store, not with the virtual size.
//! A crash at any point leaves the image with its old backing file and
//! unchanged content.

use crate::block::driver::BlockDriver;
use crate::block::extent::Allocation;
use crate::block::walk;
use crate::convert::progress::Progress;
use crate::error::{Error, Result};

/// The step the copy advances by, as qemu-img's buffer.
const STEP: u64 = 2 << 20;

pub struct Rebase<'a> {
    pub image: &'a dyn BlockDriver,
    pub old_backing: Option<&'a dyn BlockDriver>,
    pub new_backing: Option<&'a dyn BlockDriver>,
    /// `-c`: the copies are written compressed (whole clusters).
    pub compress: bool,
}

/// Whether `[offset, offset + len)` starts with a range the image stores
/// itself (data or zeros; everything, for formats without backing files),
/// and how long that run is.
fn allocated(image: &dyn BlockDriver, offset: u64, len: u64) -> Result<(bool, u64)> {
    let e = image
        .block_status(offset, len)
        .map_err(|e| Error::new(e.kind(), format!("error while reading image metadata: {e}")))?;
    let own = match e.allocation {
        Allocation::Data | Allocation::Zero => true,
        Allocation::Unallocated => !image.supports_backing(),
        Allocation::Backing => false,
    };
    Ok((own, e.len.clamp(1, len)))
}

/// How much of `[offset, offset + len)`, from its start, a backing file
/// (or none) reads as zeros through its own chain: 0 when it stores data
/// at `offset`.
fn zeros_in(backing: Option<&dyn BlockDriver>, offset: u64, len: u64) -> Result<u64> {
    let Some(b) = backing.filter(|b| offset < b.size()) else {
        return Ok(len);
    };
    let e = walk::status_above(b, offset, len.min(b.size() - offset))
        .map_err(|e| Error::new(e.kind(), format!("error while reading image metadata: {e}")))?;
    Ok(if e.allocation.reads_as_zero() {
        e.len
    } else {
        0
    })
}

/// Reads `buf.len()` bytes at `offset` from a backing file of `size`
/// bytes (zeros past its end); returns how many bytes it had.
fn read_backing(
    backing: Option<&dyn BlockDriver>,
    buf: &mut [u8],
    offset: u64,
    which: &str,
) -> Result<u64> {
    let size = backing.map_or(0, |b| b.size());
    let have = (buf.len() as u64).min(size.saturating_sub(offset));
    buf[have as usize..].fill(0);
    if let Some(b) = backing.filter(|_| have > 0) {
        b.read_at(&mut buf[..have as usize], offset).map_err(|e| {
            Error::new(
                e.kind(),
                format!("error while reading from {which} backing file"),
            )
        })?;
    }
    Ok(have)
}

/// qemu-img's `compare_buffers`: whether the first `chunk` bytes differ,
/// and how many bytes from the start (whole chunks) share that answer.
pub fn compare_buffers(a: &[u8], b: &[u8], chunk: usize) -> (bool, usize) {
    let len = a.len();
    let first = chunk.min(len);
    let differ = a[..first] != b[..first];
    let mut i = first;
    while i < len {
        let n = chunk.min(len - i);
        if (a[i..i + n] != b[i..i + n]) != differ {
            break;
        }
        i += n;
    }
    (differ, i)
}

impl Rebase<'_> {
    /// Copies what differs; `progress` advances by image bytes walked.
    pub fn run(&self, progress: &Progress) -> Result<()> {
        let image = self.image;
        let size = image.size();
        let align = if self.compress {
            image.allocation_unit()
        } else {
            image.subcluster_size()
        }
        .unwrap_or(1)
        .max(1);
        let old_size = self.old_backing.map_or(0, |b| b.size());
        let mut old = Vec::new();
        let mut new = Vec::new();
        let mut offset = 0;
        while offset < size {
            let (own, run) = allocated(image, offset, size - offset)?;
            // Both backing files read zeros: equal, nothing to copy.
            let zeros = match own {
                true => 0,
                false => match zeros_in(self.old_backing, offset, run)? {
                    0 => 0,
                    n => zeros_in(self.new_backing, offset, n)?,
                },
            };
            if own || zeros > 0 {
                let skip = if own { run } else { zeros };
                offset += skip;
                progress.advance(skip);
                continue;
            }
            let run = run.min(STEP);
            // Whole alignment units, so that no write copies on write.
            let start = offset / align * align;
            let end = (offset + run)
                .div_ceil(align)
                .saturating_mul(align)
                .min(size);
            let n = (end - start) as usize;
            old.resize(n, 0);
            new.resize(n, 0);
            let mut old_eof = read_backing(self.old_backing, &mut old, start, "old")? == 0;
            read_backing(self.new_backing, &mut new, start, "new")?;
            let mut done = 0;
            while done < n {
                let (differ, len) = compare_buffers(&old[done..], &new[done..], align as usize);
                if differ {
                    let at = start + done as u64;
                    let written = if old_eof {
                        image.write_zeroes(at, len as u64, false)
                    } else if self.compress {
                        self.write_compressed(&old[done..done + len], at)
                    } else {
                        image.write_at(&old[done..done + len], at)
                    };
                    written.map_err(|e| {
                        Error::new(e.kind(), format!("Error while writing to COW image: {e}"))
                    })?;
                }
                done += len;
                if start + done as u64 >= old_size {
                    old_eof = true;
                }
            }
            progress.advance(end - offset);
            offset = end;
        }
        Ok(())
    }

    /// `-c`: one compressed write per cluster (the last one may be short).
    fn write_compressed(&self, bytes: &[u8], offset: u64) -> Result<()> {
        let unit = self.image.allocation_unit().unwrap_or(bytes.len() as u64) as usize;
        for (i, piece) in bytes.chunks(unit).enumerate() {
            self.image
                .write_compressed(piece, offset + (i * unit) as u64)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_buffers_counts_whole_chunks_of_one_answer() {
        let a = [0u8; 16];
        let mut b = [0u8; 16];
        assert_eq!(compare_buffers(&a, &b, 4), (false, 16));
        b[9] = 1;
        assert_eq!(compare_buffers(&a, &b, 4), (false, 8));
        assert_eq!(compare_buffers(&a[8..], &b[8..], 4), (true, 4));
        assert_eq!(compare_buffers(&a[12..], &b[12..], 4), (false, 4));
        // A short last chunk.
        assert_eq!(compare_buffers(&a[..6], &b[..6], 4), (false, 6));
    }
}
