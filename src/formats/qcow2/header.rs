//! The qcow2 file header (the first cluster of the image) and its header
//! extensions, as docs/interop/qcow2.txt lays them out. All numbers are
//! big endian.
//!
//! Parsing validates every field in the order QEMU does, with QEMU's
//! messages, so that a broken image is refused exactly as qemu-img refuses
//! it. Serialising reproduces QEMU's `qcow2_update_header` byte for byte
//! (extension order, feature name table, padding), so that images we create
//! are identical to the ones qemu-img creates.

use crate::error::{Error, ErrorKind, Result};

/// Byte 0-3, `magic`: "QCOW magic string ("QFI\xfb")".
pub const MAGIC: u32 = 0x5146_49fb;

/// The smallest and largest cluster_bits QEMU accepts ("Must not be less
/// than 9"; "qemu as of today has an implementation limit of 2 MB").
pub const MIN_CLUSTER_BITS: u32 = 9;
pub const MAX_CLUSTER_BITS: u32 = 21;

/// Length of a version 2 header ("For version 2, the header is exactly 72
/// bytes in length").
pub const V2_HEADER_LEN: usize = 72;
/// "For version 3 or higher, the header length is at least 104 bytes".
pub const V3_MIN_HEADER_LEN: usize = 104;
/// The header QEMU writes: 104 bytes plus the compression_type byte and
/// seven bytes of padding.
pub const V3_HEADER_LEN: usize = 112;

/// Incompatible feature bit 0: "Dirty bit. If this bit is set then refcounts
/// may be inconsistent".
pub const INCOMPAT_DIRTY: u64 = 1 << 0;
/// Bit 1: "Corrupt bit. If this bit is set then any data structure may be
/// corrupt and the image must not be written to".
pub const INCOMPAT_CORRUPT: u64 = 1 << 1;
/// Bit 2: "External data file bit".
pub const INCOMPAT_DATA_FILE: u64 = 1 << 2;
/// Bit 3: "Compression type bit. If this bit is set, a non-default
/// compression is used for compressed clusters."
pub const INCOMPAT_COMPRESSION: u64 = 1 << 3;
/// Bit 4: "Extended L2 Entries".
pub const INCOMPAT_EXTL2: u64 = 1 << 4;
/// The incompatible features this implementation understands.
pub const INCOMPAT_MASK: u64 = 0x1f;

/// Compatible feature bit 0: "Lazy refcounts bit".
pub const COMPAT_LAZY_REFCOUNTS: u64 = 1 << 0;

/// Autoclear bit 0: "Bitmaps extension bit".
pub const AUTOCLEAR_BITMAPS: u64 = 1 << 0;
/// Autoclear bit 1: "Raw external data bit".
pub const AUTOCLEAR_DATA_FILE_RAW: u64 = 1 << 1;
pub const AUTOCLEAR_MASK: u64 = 0x3;

/// `crypt_method`: "0 for no encryption, 1 for AES encryption, 2 for LUKS
/// encryption".
pub const CRYPT_NONE: u32 = 0;
pub const CRYPT_AES: u32 = 1;
pub const CRYPT_LUKS: u32 = 2;

/// Header extension types.
pub const EXT_END: u32 = 0x0000_0000;
pub const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;
pub const EXT_FEATURE_TABLE: u32 = 0x6803_f857;
pub const EXT_BITMAPS: u32 = 0x2385_2875;
pub const EXT_CRYPTO_HEADER: u32 = 0x0537_be77;
pub const EXT_DATA_FILE: u32 = 0x4441_5441;

/// QEMU keeps the backing format in a 16-byte buffer.
const BACKING_FORMAT_MAX: usize = 16;
/// "Must not be longer than 1023 bytes."
pub const BACKING_FILE_MAX: usize = 1023;

/// Compression types (byte 104).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionType {
    /// 0: deflate (called "zlib" in QEMU; no zlib header).
    Zlib,
    /// 1: zstd.
    Zstd,
}

impl CompressionType {
    pub fn name(self) -> &'static str {
        match self {
            CompressionType::Zlib => "zlib",
            CompressionType::Zstd => "zstd",
        }
    }

    pub fn code(self) -> u8 {
        match self {
            CompressionType::Zlib => 0,
            CompressionType::Zstd => 1,
        }
    }
}

/// The bitmaps extension (type 0x23852875).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitmapsExt {
    /// Bytes 0-3: "The number of bitmaps contained in the image".
    pub nb_bitmaps: u32,
    /// Bytes 8-15: "Size of the bitmap directory in bytes".
    pub directory_size: u64,
    /// Bytes 16-23: "Offset into the image file at which the bitmap
    /// directory starts".
    pub directory_offset: u64,
}

/// One entry of the feature name table: (type, bit, name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureName {
    /// "0: Incompatible feature, 1: Compatible feature, 2: Autoclear feature".
    pub kind: u8,
    pub bit: u8,
    pub name: String,
}

/// The names QEMU writes into every v3 image with clusters over 4 KiB.
const QEMU_FEATURES: &[(u8, u8, &str)] = &[
    (0, 0, "dirty bit"),
    (0, 1, "corrupt bit"),
    (0, 2, "external data file"),
    (0, 3, "compression type"),
    (0, 4, "extended L2 entries"),
    (1, 0, "lazy refcounts"),
    (2, 0, "bitmaps"),
    (2, 1, "raw external data"),
];

/// The parsed header, extensions included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Bytes 4-7, `version`: "valid values are 2 and 3".
    pub version: u32,
    /// Bytes 8-15, `backing_file_offset`: "Offset into the image file at
    /// which the backing file name is stored ... 0 if the image doesn't have
    /// a backing file."
    pub backing_file_offset: u64,
    /// Bytes 16-19, `backing_file_size`: "Length of the backing file name in
    /// bytes."
    pub backing_file_size: u32,
    /// Bytes 20-23, `cluster_bits`: "Number of bits that are used for
    /// addressing an offset within a cluster".
    pub cluster_bits: u32,
    /// Bytes 24-31, `size`: "Virtual disk size in bytes."
    pub size: u64,
    /// Bytes 32-35, `crypt_method`.
    pub crypt_method: u32,
    /// Bytes 36-39, `l1_size`: "Number of entries in the active L1 table".
    pub l1_size: u32,
    /// Bytes 40-47, `l1_table_offset`: "Offset into the image file at which
    /// the active L1 table starts. Must be aligned to a cluster boundary."
    pub l1_table_offset: u64,
    /// Bytes 48-55, `refcount_table_offset`.
    pub refcount_table_offset: u64,
    /// Bytes 56-59, `refcount_table_clusters`: "Number of clusters that the
    /// refcount table occupies".
    pub refcount_table_clusters: u32,
    /// Bytes 60-63, `nb_snapshots`.
    pub nb_snapshots: u32,
    /// Bytes 64-71, `snapshots_offset`.
    pub snapshots_offset: u64,
    /// Bytes 72-79 (v3), `incompatible_features`.
    pub incompatible_features: u64,
    /// Bytes 80-87 (v3), `compatible_features`.
    pub compatible_features: u64,
    /// Bytes 88-95 (v3), `autoclear_features`.
    pub autoclear_features: u64,
    /// Bytes 96-99 (v3), `refcount_order`: "refcount_bits = 1 <<
    /// refcount_order. For version 2 images, the order is always assumed to
    /// be 4".
    pub refcount_order: u32,
    /// Bytes 100-103 (v3), `header_length`.
    pub header_length: u32,
    /// Byte 104, `compression_type` (present when header_length > 104).
    pub compression_type: CompressionType,
    /// Header fields past the 112 bytes QEMU knows, kept for rewrites.
    pub unknown_fields: Vec<u8>,
    /// The backing file name stored at `backing_file_offset`.
    pub backing_file: Option<String>,
    /// Extension 0xe2792aca: "Backing file format name string".
    pub backing_format: Option<String>,
    /// Extension 0x44415441: "External data file name string".
    pub data_file: Option<String>,
    /// Extension 0x6803f857: "Feature name table".
    pub feature_table: Vec<FeatureName>,
    /// Extension 0x23852875: bitmaps (only when the autoclear bit says they
    /// are consistent).
    pub bitmaps: Option<BitmapsExt>,
    /// True when a bitmaps extension was present but flagged inconsistent.
    pub stale_bitmaps: bool,
    /// Extension 0x0537be77: "Full disk encryption header pointer"
    /// (offset, length).
    pub crypto_header: Option<(u64, u64)>,
    /// Extensions we do not know, kept verbatim for rewrites.
    pub unknown_extensions: Vec<(u32, Vec<u8>)>,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidFormat, msg)
}

fn unsupported(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::UnsupportedFeature, msg)
}

/// "%#x" as C prints it: "0" for zero, "0x..." otherwise.
pub fn hex(v: u64) -> String {
    if v == 0 {
        "0".to_string()
    } else {
        format!("{v:#x}")
    }
}

impl Header {
    /// A fresh header as QEMU's `qcow2_co_create` writes it before the
    /// image is opened for the first time.
    pub fn new(version: u32, cluster_bits: u32, refcount_order: u32) -> Header {
        Header {
            version,
            backing_file_offset: 0,
            backing_file_size: 0,
            cluster_bits,
            size: 0,
            crypt_method: CRYPT_NONE,
            l1_size: 0,
            l1_table_offset: 0,
            refcount_table_offset: 1 << cluster_bits,
            refcount_table_clusters: 1,
            nb_snapshots: 0,
            snapshots_offset: 0,
            incompatible_features: 0,
            compatible_features: 0,
            autoclear_features: 0,
            refcount_order,
            header_length: V3_HEADER_LEN as u32,
            compression_type: CompressionType::Zlib,
            unknown_fields: Vec::new(),
            backing_file: None,
            backing_format: None,
            data_file: None,
            feature_table: Vec::new(),
            bitmaps: None,
            stale_bitmaps: false,
            crypto_header: None,
            unknown_extensions: Vec::new(),
        }
    }

    pub fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }

    /// Parses the fixed part from the first bytes of the file (at least
    /// 112 bytes, zero-filled past the end of a short file) and validates
    /// it as `qcow2_do_open` does, up to the point where the cluster size is
    /// known. Call [`Header::parse_extensions`] with the first cluster next.
    pub fn parse_fixed(b: &[u8]) -> Result<Header> {
        if b.len() < V3_HEADER_LEN {
            return Err(invalid("Image is not in qcow2 format"));
        }
        if be32(b, 0) != MAGIC {
            return Err(invalid("Image is not in qcow2 format"));
        }
        let version = be32(b, 4);
        if !(2..=3).contains(&version) {
            return Err(unsupported(format!("Unsupported qcow2 version {version}")));
        }
        let cluster_bits = be32(b, 20);
        if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&cluster_bits) {
            return Err(invalid(format!(
                "Unsupported cluster size: 2^{cluster_bits}"
            )));
        }
        let mut h = Header::new(version, cluster_bits, 4);
        h.backing_file_offset = be64(b, 8);
        h.backing_file_size = be32(b, 16);
        h.size = be64(b, 24);
        h.crypt_method = be32(b, 32);
        h.l1_size = be32(b, 36);
        h.l1_table_offset = be64(b, 40);
        h.refcount_table_offset = be64(b, 48);
        h.refcount_table_clusters = be32(b, 56);
        h.nb_snapshots = be32(b, 60);
        h.snapshots_offset = be64(b, 64);
        if version == 2 {
            h.header_length = V2_HEADER_LEN as u32;
        } else {
            h.incompatible_features = be64(b, 72);
            h.compatible_features = be64(b, 80);
            h.autoclear_features = be64(b, 88);
            h.refcount_order = be32(b, 96);
            h.header_length = be32(b, 100);
            if (h.header_length as usize) < V3_MIN_HEADER_LEN {
                return Err(invalid("qcow2 header too short"));
            }
        }
        if u64::from(h.header_length) > h.cluster_size() {
            return Err(invalid("qcow2 header exceeds cluster size"));
        }
        if h.backing_file_offset > h.cluster_size() {
            return Err(invalid("Invalid backing file offset"));
        }
        let code = if h.header_length as usize > V3_MIN_HEADER_LEN {
            b[104]
        } else {
            0
        };
        h.compression_type = match code {
            0 => CompressionType::Zlib,
            1 => CompressionType::Zstd,
            other => {
                return Err(unsupported(format!(
                    "qcow2: unknown compression type: {other}"
                )));
            }
        };
        let flagged = h.incompatible_features & INCOMPAT_COMPRESSION != 0;
        match (h.compression_type, flagged) {
            (CompressionType::Zlib, true) => {
                return Err(invalid(
                    "qcow2: Compression type incompatible feature bit must not be set",
                ));
            }
            (CompressionType::Zstd, false) => {
                return Err(invalid(
                    "qcow2: Compression type incompatible feature bit must be set",
                ));
            }
            _ => {}
        }
        Ok(h)
    }

    /// Where the extension area ends: at the backing file name, or at the
    /// end of the first cluster.
    fn extensions_end(&self) -> u64 {
        if self.backing_file_offset != 0 {
            self.backing_file_offset
        } else {
            self.cluster_size()
        }
    }

    /// The "Unsupported qcow2 feature(s)" error for unknown incompatible
    /// bits, named from the image's own feature table where it has one.
    pub fn unknown_features_error(&self, first_cluster: &[u8]) -> Option<Error> {
        let mut mask = self.incompatible_features & !INCOMPAT_MASK;
        if mask == 0 {
            return None;
        }
        let mut probe = self.clone();
        probe.feature_table.clear();
        // The table is read best-effort, errors ignored, as QEMU does.
        let _ = probe.read_extension_area(first_cluster, true);
        let mut names = Vec::new();
        for f in &probe.feature_table {
            if f.kind == 0 && f.bit < 64 && mask & (1u64 << f.bit) != 0 {
                names.push(f.name.chars().take(46).collect::<String>());
                mask &= !(1u64 << f.bit);
            }
        }
        if mask != 0 {
            names.push(format!("Unknown incompatible feature: {mask:x}"));
        }
        Some(unsupported(format!(
            "Unsupported qcow2 feature(s): {}",
            names.join(", ")
        )))
    }

    /// Reads the unknown header fields, the extensions and the backing file
    /// name from the first cluster (zero-filled past the end of the file).
    pub fn parse_extensions(&mut self, first_cluster: &[u8]) -> Result<()> {
        let hl = self.header_length as usize;
        if hl > V3_HEADER_LEN {
            self.unknown_fields = first_cluster
                .get(V3_HEADER_LEN..hl)
                .ok_or_else(|| invalid("qcow2 header exceeds cluster size"))?
                .to_vec();
        }
        self.read_extension_area(first_cluster, false)?;
        if self.backing_file_offset != 0 {
            let len = self.backing_file_size as usize;
            let room = (self.cluster_size() - self.backing_file_offset) as usize;
            if len > BACKING_FILE_MAX.min(room) {
                return Err(invalid("Backing file name too long"));
            }
            let start = self.backing_file_offset as usize;
            let bytes = first_cluster
                .get(start..start + len)
                .ok_or_else(|| invalid("Backing file name too long"))?;
            self.backing_file = Some(c_string(bytes));
        }
        Ok(())
    }

    fn read_extension_area(&mut self, b: &[u8], table_only: bool) -> Result<()> {
        let end = self.extensions_end().min(b.len() as u64);
        let mut offset = u64::from(self.header_length);
        while offset < end {
            if offset + 8 > end {
                return Err(invalid("Header extension too large"));
            }
            let at = offset as usize;
            let magic = be32(b, at);
            let len = u64::from(be32(b, at + 4));
            offset += 8;
            if len > end - offset {
                return Err(invalid("Header extension too large"));
            }
            let data = &b[offset as usize..(offset + len) as usize];
            match magic {
                EXT_END => return Ok(()),
                EXT_FEATURE_TABLE => {
                    self.feature_table = data
                        .chunks_exact(48)
                        .map(|e| FeatureName {
                            kind: e[0],
                            bit: e[1],
                            name: c_string(&e[2..48]),
                        })
                        .collect();
                }
                _ if table_only => {}
                EXT_BACKING_FORMAT => {
                    if data.len() >= BACKING_FORMAT_MAX {
                        return Err(invalid(format!(
                            "ERROR: ext_backing_format: len={} too large (>={BACKING_FORMAT_MAX})",
                            data.len()
                        )));
                    }
                    self.backing_format = Some(c_string(data));
                }
                EXT_CRYPTO_HEADER => {
                    if self.crypt_method != CRYPT_LUKS {
                        return Err(invalid(
                            "CRYPTO header extension only expected with LUKS encryption method",
                        ));
                    }
                    if data.len() != 16 {
                        return Err(invalid(format!(
                            "CRYPTO header extension size {}, but expected size 16",
                            data.len()
                        )));
                    }
                    let (off, length) = (be64(data, 0), be64(data, 8));
                    if !off.is_multiple_of(self.cluster_size()) {
                        return Err(invalid(format!(
                            "Encryption header offset '{off}' is not a multiple of cluster size '{}'",
                            self.cluster_size()
                        )));
                    }
                    self.crypto_header = Some((off, length));
                }
                EXT_BITMAPS => self.parse_bitmaps_ext(data)?,
                EXT_DATA_FILE => self.data_file = Some(c_string(data)),
                other => self.unknown_extensions.push((other, data.to_vec())),
            }
            offset += len.div_ceil(8) * 8;
        }
        Ok(())
    }

    fn parse_bitmaps_ext(&mut self, data: &[u8]) -> Result<()> {
        if data.len() != 24 {
            return Err(invalid("bitmaps_ext: Invalid extension length"));
        }
        if self.autoclear_features & AUTOCLEAR_BITMAPS == 0 {
            // Written by a program without bitmap support: inconsistent.
            self.stale_bitmaps = true;
            return Ok(());
        }
        if be32(data, 4) != 0 {
            return Err(invalid("bitmaps_ext: Reserved field is not zero"));
        }
        let ext = BitmapsExt {
            nb_bitmaps: be32(data, 0),
            directory_size: be64(data, 8),
            directory_offset: be64(data, 16),
        };
        if ext.nb_bitmaps > 65535 {
            return Err(invalid(format!(
                "bitmaps_ext: Image has {} bitmaps, exceeding the QEMU supported maximum of 65535",
                ext.nb_bitmaps
            )));
        }
        if ext.nb_bitmaps == 0 {
            return Err(invalid("found bitmaps extension with zero bitmaps"));
        }
        if !ext.directory_offset.is_multiple_of(self.cluster_size()) {
            return Err(invalid("bitmaps_ext: invalid bitmap directory offset"));
        }
        if ext.directory_size > 1024 * 65535 {
            return Err(invalid(format!(
                "bitmaps_ext: bitmap directory size ({}) exceeds the maximum supported size ({})",
                ext.directory_size,
                1024 * 65535
            )));
        }
        self.bitmaps = Some(ext);
        Ok(())
    }

    /// The first cluster as QEMU's `qcow2_update_header` writes it: the
    /// header, unknown fields, extensions (backing format, data file, crypto
    /// pointer, feature table, bitmaps, unknown ones), the end marker, then
    /// the backing file name.
    pub fn serialize(&self) -> Result<Vec<u8>> {
        let cs = self.cluster_size() as usize;
        let mut b = vec![0u8; cs];
        let put32 =
            |b: &mut [u8], at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_be_bytes());
        let put64 =
            |b: &mut [u8], at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_be_bytes());
        put32(&mut b, 0, MAGIC);
        put32(&mut b, 4, self.version);
        put32(&mut b, 20, self.cluster_bits);
        put64(&mut b, 24, self.size);
        put32(&mut b, 32, self.crypt_method);
        put32(&mut b, 36, self.l1_size);
        put64(&mut b, 40, self.l1_table_offset);
        put64(&mut b, 48, self.refcount_table_offset);
        put32(&mut b, 56, self.refcount_table_clusters);
        put32(&mut b, 60, self.nb_snapshots);
        put64(&mut b, 64, self.snapshots_offset);
        let mut pos = if self.version >= 3 {
            put64(&mut b, 72, self.incompatible_features);
            put64(&mut b, 80, self.compatible_features);
            put64(&mut b, 88, self.autoclear_features);
            put32(&mut b, 96, self.refcount_order);
            put32(
                &mut b,
                100,
                (V3_HEADER_LEN + self.unknown_fields.len()) as u32,
            );
            b[104] = self.compression_type.code();
            V3_HEADER_LEN
        } else {
            V2_HEADER_LEN
        };
        let no_space = || Error::os(ErrorKind::InvalidArgument, libc::ENOSPC);
        let push = |b: &mut Vec<u8>, pos: &mut usize, data: &[u8]| -> Result<()> {
            if *pos + data.len() > cs {
                return Err(no_space());
            }
            b[*pos..*pos + data.len()].copy_from_slice(data);
            *pos += data.len();
            Ok(())
        };
        let ext = |magic: u32, data: &[u8]| -> Vec<u8> {
            let mut e = Vec::with_capacity(8 + data.len().div_ceil(8) * 8);
            e.extend_from_slice(&magic.to_be_bytes());
            e.extend_from_slice(&(data.len() as u32).to_be_bytes());
            e.extend_from_slice(data);
            e.resize(8 + data.len().div_ceil(8) * 8, 0);
            e
        };
        let unknown = self.unknown_fields.clone();
        push(&mut b, &mut pos, &unknown)?;
        if let Some(fmt) = &self.backing_format {
            push(&mut b, &mut pos, &ext(EXT_BACKING_FORMAT, fmt.as_bytes()))?;
        }
        if self.incompatible_features & INCOMPAT_DATA_FILE != 0
            && let Some(df) = &self.data_file
        {
            push(&mut b, &mut pos, &ext(EXT_DATA_FILE, df.as_bytes()))?;
        }
        if let Some((off, len)) = self.crypto_header
            && off != 0
        {
            let mut d = off.to_be_bytes().to_vec();
            d.extend_from_slice(&len.to_be_bytes());
            push(&mut b, &mut pos, &ext(EXT_CRYPTO_HEADER, &d))?;
        }
        if self.version >= 3 && cs > 4096 {
            let mut table = Vec::with_capacity(QEMU_FEATURES.len() * 48);
            for &(kind, bit, name) in QEMU_FEATURES {
                let mut e = [0u8; 48];
                e[0] = kind;
                e[1] = bit;
                e[2..2 + name.len()].copy_from_slice(name.as_bytes());
                table.extend_from_slice(&e);
            }
            push(&mut b, &mut pos, &ext(EXT_FEATURE_TABLE, &table))?;
        }
        if let Some(bm) = self.bitmaps {
            let mut d = bm.nb_bitmaps.to_be_bytes().to_vec();
            d.extend_from_slice(&[0; 4]);
            d.extend_from_slice(&bm.directory_size.to_be_bytes());
            d.extend_from_slice(&bm.directory_offset.to_be_bytes());
            push(&mut b, &mut pos, &ext(EXT_BITMAPS, &d))?;
        }
        for (magic, data) in &self.unknown_extensions {
            push(&mut b, &mut pos, &ext(*magic, data))?;
        }
        push(&mut b, &mut pos, &ext(EXT_END, &[]))?;
        if let Some(backing) = &self.backing_file {
            let name = backing.as_bytes();
            let at = pos;
            push(&mut b, &mut pos, name)?;
            put64(&mut b, 8, at as u64);
            put32(&mut b, 16, name.len() as u32);
        }
        Ok(b)
    }
}

/// A string stored without terminator, cut at the first NUL as C reads it.
fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&c| c == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header of `qemu-img create -f qcow2 -o compat=0.10 v2.qcow2 1M`.
    fn v2_fixture() -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[0..4].copy_from_slice(b"QFI\xfb"); // magic
        b[4..8].copy_from_slice(&2u32.to_be_bytes()); // version
        b[20..24].copy_from_slice(&16u32.to_be_bytes()); // cluster_bits: 64 KiB
        b[24..32].copy_from_slice(&(1u64 << 20).to_be_bytes()); // size: 1 MiB
        b[36..40].copy_from_slice(&1u32.to_be_bytes()); // l1_size
        b[40..48].copy_from_slice(&0x30000u64.to_be_bytes()); // l1_table_offset
        b[48..56].copy_from_slice(&0x10000u64.to_be_bytes()); // refcount_table_offset
        b[56..60].copy_from_slice(&1u32.to_be_bytes()); // refcount_table_clusters
        b
    }

    #[test]
    fn parses_a_v2_header_field_by_field() {
        let b = v2_fixture();
        let mut h = Header::parse_fixed(&b).unwrap();
        h.parse_extensions(&b).unwrap();
        assert_eq!(h.version, 2);
        assert_eq!(h.cluster_size(), 65536);
        assert_eq!(h.size, 1 << 20);
        assert_eq!(h.l1_size, 1);
        assert_eq!(h.l1_table_offset, 0x30000);
        assert_eq!(h.refcount_table_offset, 0x10000);
        assert_eq!(h.refcount_table_clusters, 1);
        assert_eq!(h.refcount_order, 4, "v2 implies 16-bit refcounts");
        assert_eq!(h.header_length, 72);
        assert_eq!(h.backing_file, None);
    }

    #[test]
    fn serialises_v3_like_qemu() {
        let mut h = Header::new(3, 16, 4);
        h.size = 1 << 30;
        h.l1_size = 2;
        h.l1_table_offset = 0x30000;
        let b = h.serialize().unwrap();
        // Bytes 96-103: refcount_order 4, header_length 112.
        assert_eq!(&b[96..104], &[0, 0, 0, 4, 0, 0, 0, 0x70]);
        // The feature name table follows at 112: magic, 8 entries of 48 bytes.
        assert_eq!(&b[112..120], &[0x68, 0x03, 0xf8, 0x57, 0, 0, 1, 0x80]);
        assert_eq!(&b[122..131], b"dirty bit");
        // End marker after the table.
        assert_eq!(&b[120 + 384..128 + 384], &[0; 8]);
        let mut back = Header::parse_fixed(&b).unwrap();
        back.parse_extensions(&b).unwrap();
        assert_eq!(back.feature_table.len(), 8);
        assert_eq!(back.feature_table[4].name, "extended L2 entries");
        assert_eq!(back.size, 1 << 30);
    }

    #[test]
    fn backing_name_and_format_round_trip() {
        let mut h = Header::new(3, 16, 4);
        h.backing_file = Some("base.qcow2".into());
        h.backing_format = Some("qcow2".into());
        let b = h.serialize().unwrap();
        let mut back = Header::parse_fixed(&b).unwrap();
        back.parse_extensions(&b).unwrap();
        assert_eq!(back.backing_file.as_deref(), Some("base.qcow2"));
        assert_eq!(back.backing_format.as_deref(), Some("qcow2"));
        // The format extension comes first, right after the header.
        assert_eq!(&b[112..116], &EXT_BACKING_FORMAT.to_be_bytes());
    }

    #[test]
    fn rejects_bad_headers_with_qemu_messages() {
        let mut b = v2_fixture();
        b[0] = b'X';
        assert_eq!(
            Header::parse_fixed(&b).unwrap_err().to_string(),
            "Image is not in qcow2 format"
        );
        let mut b = v2_fixture();
        b[4..8].copy_from_slice(&0x6761_7262u32.to_be_bytes());
        assert_eq!(
            Header::parse_fixed(&b).unwrap_err().to_string(),
            "Unsupported qcow2 version 1734439522"
        );
        let mut b = v2_fixture();
        b[20..24].copy_from_slice(&22u32.to_be_bytes());
        assert_eq!(
            Header::parse_fixed(&b).unwrap_err().to_string(),
            "Unsupported cluster size: 2^22"
        );
        let mut b = v2_fixture();
        b[8..16].copy_from_slice(&0x20000u64.to_be_bytes());
        assert_eq!(
            Header::parse_fixed(&b).unwrap_err().to_string(),
            "Invalid backing file offset"
        );
    }

    #[test]
    fn names_unknown_incompatible_features() {
        let mut h = Header::new(3, 16, 4);
        h.incompatible_features = 1 << 40 | 1 << 5;
        let b = h.serialize().unwrap();
        let parsed = Header::parse_fixed(&b).unwrap();
        let err = parsed.unknown_features_error(&b).unwrap();
        assert_eq!(
            err.to_string(),
            "Unsupported qcow2 feature(s): Unknown incompatible feature: 10000000020"
        );
    }

    #[test]
    fn extension_overrunning_the_cluster_is_refused() {
        let mut h = Header::new(3, 9, 4);
        h.size = 512;
        let mut b = h.serialize().unwrap();
        b[112..116].copy_from_slice(&0x1234u32.to_be_bytes());
        b[116..120].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        let mut p = Header::parse_fixed(&b).unwrap();
        assert_eq!(
            p.parse_extensions(&b).unwrap_err().to_string(),
            "Header extension too large"
        );
    }
}
