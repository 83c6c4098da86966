//! A fuzz input as the storage a LUKS volume lives in: bytes past its end
//! read as zeros, as a short file or object reads.

/// Reads `buf` from `offset` of `data`, zero-filled past its end.
pub fn read(data: &[u8], buf: &mut [u8], offset: u64) -> rbdimg::error::Result<()> {
    buf.fill(0);
    let start = (offset as usize).min(data.len());
    let end = (start + buf.len()).min(data.len());
    buf[..end - start].copy_from_slice(&data[start..end]);
    Ok(())
}
