//! Compressed clusters: raw deflate with a 4 KiB window ("clusters with the
//! deflate compression type do not have zlib headers"; QEMU uses window bits
//! -12) and zstd. Compressed data is stored with sector granularity, so
//! decompression stops once a whole cluster has been produced and ignores
//! trailing bytes.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::error::{Error, ErrorKind, Result};
use crate::formats::qcow2::header::CompressionType;

/// QEMU's deflate window: 2^12 bytes.
const WINDOW_BITS: u8 = 12;

fn io_error() -> Error {
    Error::os(ErrorKind::CorruptImage, libc::EIO)
}

/// Compresses `src` (one cluster). Returns `None` when the result would not
/// be smaller than `limit` bytes (QEMU then writes the cluster uncompressed).
pub fn compress(kind: CompressionType, src: &[u8], limit: usize) -> Result<Option<Vec<u8>>> {
    match kind {
        CompressionType::Zlib => {
            let mut c = Compress::new_with_window_bits(Compression::default(), false, WINDOW_BITS);
            let mut out = Vec::with_capacity(limit);
            match c.compress_vec(src, &mut out, FlushCompress::Finish) {
                Ok(Status::StreamEnd) if out.len() < limit => Ok(Some(out)),
                Ok(_) => Ok(None),
                Err(_) => Err(io_error()),
            }
        }
        CompressionType::Zstd => {
            let out = zstd::bulk::compress(src, 0).map_err(|_| io_error())?;
            Ok((out.len() < limit).then_some(out))
        }
    }
}

/// Decompresses into `dst` (one cluster), which must be filled completely.
pub fn decompress(kind: CompressionType, src: &[u8], dst: &mut [u8]) -> Result<()> {
    match kind {
        CompressionType::Zlib => {
            let mut d = Decompress::new_with_window_bits(false, WINDOW_BITS);
            let status = d.decompress(src, dst, FlushDecompress::Finish);
            // A short read of the input is fine as long as the output is
            // full: compressed sizes are only known to the sector.
            match status {
                Ok(_) if d.total_out() as usize == dst.len() => Ok(()),
                Err(_) if d.total_out() as usize == dst.len() => Ok(()),
                _ => Err(io_error()),
            }
        }
        CompressionType::Zstd => {
            use std::io::Read;
            // The data may hold several frames and trailing garbage after
            // the last byte we need; stream until the cluster is full.
            let mut dec = zstd::stream::read::Decoder::with_buffer(src).map_err(|_| io_error())?;
            let mut filled = 0;
            while filled < dst.len() {
                match dec.read(&mut dst[filled..]) {
                    Ok(0) => return Err(io_error()),
                    Ok(n) => filled += n,
                    Err(_) => return Err(io_error()),
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| ((i / 100) % 7) as u8 * 31).collect()
    }

    #[test]
    fn zlib_round_trip_with_trailing_garbage() {
        let src = sample(65536);
        let mut c = compress(CompressionType::Zlib, &src, 65535)
            .unwrap()
            .unwrap();
        assert!(c.len() < 65535);
        c.extend_from_slice(&[0xaa; 300]);
        let mut out = vec![0u8; 65536];
        decompress(CompressionType::Zlib, &c, &mut out).unwrap();
        assert_eq!(out, src);
    }

    #[test]
    fn zstd_round_trip_with_trailing_garbage() {
        let src = sample(4096);
        let mut c = compress(CompressionType::Zstd, &src, 4095)
            .unwrap()
            .unwrap();
        c.extend_from_slice(&[0; 511]);
        let mut out = vec![0u8; 4096];
        decompress(CompressionType::Zstd, &c, &mut out).unwrap();
        assert_eq!(out, src);
    }

    #[test]
    fn incompressible_data_is_reported() {
        let mut x: u64 = 0x1234_5678;
        let src: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(
            compress(CompressionType::Zlib, &src, 4095)
                .unwrap()
                .is_none()
        );
        assert!(
            compress(CompressionType::Zstd, &src, 4095)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn garbage_fails_cleanly() {
        let mut out = vec![0u8; 4096];
        assert!(decompress(CompressionType::Zlib, &[0xff; 64], &mut out).is_err());
        assert!(decompress(CompressionType::Zstd, &[0xff; 64], &mut out).is_err());
        assert!(decompress(CompressionType::Zlib, &[], &mut out).is_err());
    }
}
