//! Ceph's wire encoding (`include/encoding.h`): little-endian integers,
//! u32-length-prefixed strings and containers, `utime_t`, and versioned
//! structs framed as (u8 version, u8 compat, u32 length) whose decoders skip
//! fields they do not know.

use std::fmt;

/// A decoding failure: the bytes do not match the expected layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed Ceph encoding: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

pub type DecodeResult<T> = Result<T, DecodeError>;

#[derive(Debug, Default, Clone)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Self {
        Encoder::default()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(v as u8)
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A string or bufferlist: u32 length, then the bytes.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u32(v.len() as u32);
        self.buf.extend_from_slice(v);
        self
    }

    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    /// Raw bytes with no length prefix.
    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    pub fn utime(&mut self, secs: u32, nsecs: u32) -> &mut Self {
        self.u32(secs).u32(nsecs)
    }

    /// `optional<u8>`: presence byte, then the value.
    pub fn opt_u8(&mut self, v: Option<u8>) -> &mut Self {
        match v {
            Some(x) => self.u8(1).u8(x),
            None => self.u8(0),
        }
    }

    /// `ENCODE_START(version, compat)` ... `ENCODE_FINISH` around `body`.
    pub fn versioned(
        &mut self,
        version: u8,
        compat: u8,
        body: impl FnOnce(&mut Encoder),
    ) -> &mut Self {
        let mut inner = Encoder::new();
        body(&mut inner);
        self.u8(version).u8(compat).bytes(&inner.buf)
    }
}

#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Decoder { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    fn take(&mut self, n: usize) -> DecodeResult<&'a [u8]> {
        if self.remaining() < n {
            return Err(DecodeError(format!(
                "need {n} bytes at offset {}, have {}",
                self.pos,
                self.remaining()
            )));
        }
        let slice = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    pub fn u8(&mut self) -> DecodeResult<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn bool(&mut self) -> DecodeResult<bool> {
        Ok(self.u8()? != 0)
    }

    pub fn u32(&mut self) -> DecodeResult<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    pub fn i32(&mut self) -> DecodeResult<i32> {
        Ok(i32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    pub fn u64(&mut self) -> DecodeResult<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    pub fn i64(&mut self) -> DecodeResult<i64> {
        Ok(i64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    pub fn bytes(&mut self) -> DecodeResult<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    pub fn string(&mut self) -> DecodeResult<String> {
        let raw = self.bytes()?;
        String::from_utf8(raw.to_vec()).map_err(|_| DecodeError("string is not UTF-8".into()))
    }

    pub fn raw(&mut self, n: usize) -> DecodeResult<&'a [u8]> {
        self.take(n)
    }

    pub fn utime(&mut self) -> DecodeResult<(u32, u32)> {
        Ok((self.u32()?, self.u32()?))
    }

    pub fn opt_u64(&mut self) -> DecodeResult<Option<u64>> {
        Ok(if self.bool()? {
            Some(self.u64()?)
        } else {
            None
        })
    }

    /// A container count, refused when it cannot fit in the remaining bytes
    /// (each element is at least `min_element` bytes): never allocate by an
    /// untrusted count.
    pub fn count(&mut self, min_element: usize) -> DecodeResult<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_element.max(1)) > self.remaining() {
            return Err(DecodeError(format!(
                "count {n} exceeds the {} bytes left",
                self.remaining()
            )));
        }
        Ok(n)
    }

    /// `DECODE_START(supported, ...)` ... `DECODE_FINISH`: runs `body` on the
    /// struct's payload with its version, then skips what `body` left unread.
    pub fn versioned<T>(
        &mut self,
        supported: u8,
        body: impl FnOnce(u8, &mut Decoder<'a>) -> DecodeResult<T>,
    ) -> DecodeResult<T> {
        let version = self.u8()?;
        let compat = self.u8()?;
        if compat > supported {
            return Err(DecodeError(format!(
                "struct compat {compat} is newer than {supported}"
            )));
        }
        let payload = self.bytes()?;
        let mut inner = Decoder::new(payload);
        body(version, &mut inner)
    }
}

/// Bytes from space-separated hex pairs, for tests written against Ceph's
/// byte vectors.
#[cfg(test)]
pub(crate) fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_primitives() {
        let mut e = Encoder::new();
        e.u8(1)
            .u32(2)
            .u64(3)
            .i64(-1)
            .str("abc")
            .utime(5, 6)
            .opt_u8(Some(7))
            .opt_u8(None);
        let bytes = e.into_bytes();
        let mut d = Decoder::new(&bytes);
        assert_eq!(d.u8().unwrap(), 1);
        assert_eq!(d.u32().unwrap(), 2);
        assert_eq!(d.u64().unwrap(), 3);
        assert_eq!(d.i64().unwrap(), -1);
        assert_eq!(d.string().unwrap(), "abc");
        assert_eq!(d.utime().unwrap(), (5, 6));
        assert_eq!(d.raw(3).unwrap(), &[1, 7, 0]);
        assert!(d.is_empty());
    }

    #[test]
    fn versioned_structs_skip_unknown_fields() {
        let mut e = Encoder::new();
        e.versioned(3, 1, |b| {
            b.u32(42).u64(99);
        })
        .u8(0xee);
        let bytes = e.into_bytes();
        assert_eq!(&bytes[..6], &[3, 1, 12, 0, 0, 0]);
        let mut d = Decoder::new(&bytes);
        let v = d.versioned(2, |version, inner| {
            assert_eq!(version, 3);
            inner.u32()
        });
        assert_eq!(v.unwrap(), 42);
        assert_eq!(d.u8().unwrap(), 0xee);
    }

    #[test]
    fn rejects_newer_compat_and_short_input() {
        let bytes = [5u8, 4, 0, 0, 0, 0];
        assert!(Decoder::new(&bytes).versioned(3, |_, _| Ok(())).is_err());
        assert!(Decoder::new(&[1, 0]).u32().is_err());
        assert!(Decoder::new(&[0xff, 0xff, 0xff, 0x7f]).count(1).is_err());
    }
}
