//! Creating qcow2 images with qemu-img's `-o` options, laid out byte for
//! byte as `qemu-img create` lays them out: header cluster, refcount table,
//! one refcount block, then the L1 table (and, with preallocation, L2
//! tables and data clusters) at the next free clusters.

use std::sync::Arc;

use crate::block::diagnostics::Diagnostics;
use crate::block::driver::Preallocation;
use crate::block::driver_names;
use crate::block::options::{OptDesc, OptType, Options};
use crate::error::{Error, ErrorKind, Result};
use crate::formats::qcow2::Qcow2Image;
use crate::formats::qcow2::header::{
    AUTOCLEAR_DATA_FILE_RAW, COMPAT_LAZY_REFCOUNTS, CompressionType, Header, INCOMPAT_COMPRESSION,
    INCOMPAT_DATA_FILE, INCOMPAT_EXTL2, MAX_CLUSTER_BITS, MIN_CLUSTER_BITS,
};
use crate::formats::qcow2::resize;
use crate::formats::{OpenFlags, Opener};
use crate::storage::Storage;

const ENCRYPTION: OptDesc = OptDesc::new(
    "encryption",
    OptType::Bool,
    "Encrypt the image with format 'aes'. (Deprecated in favor of encrypt.format=aes)",
);
const ENCRYPT_FORMAT: OptDesc = OptDesc::new(
    "encrypt.format",
    OptType::Str,
    "Encrypt the image, format choices: 'aes', 'luks'",
);
const ENCRYPT_KEY: OptDesc = OptDesc::new(
    "encrypt.key-secret",
    OptType::Str,
    "ID of secret providing qcow AES key or LUKS passphrase",
);
const ENCRYPT_CIPHER: OptDesc = OptDesc::new(
    "encrypt.cipher-alg",
    OptType::Str,
    "Name of encryption cipher algorithm",
);
const ENCRYPT_MODE: OptDesc = OptDesc::new(
    "encrypt.cipher-mode",
    OptType::Str,
    "Name of encryption cipher mode",
);
const ENCRYPT_IVGEN: OptDesc = OptDesc::new(
    "encrypt.ivgen-alg",
    OptType::Str,
    "Name of IV generator algorithm",
);
const ENCRYPT_IVGEN_HASH: OptDesc = OptDesc::new(
    "encrypt.ivgen-hash-alg",
    OptType::Str,
    "Name of IV generator hash algorithm",
);
const ENCRYPT_HASH: OptDesc = OptDesc::new(
    "encrypt.hash-alg",
    OptType::Str,
    "Name of encryption hash algorithm",
);
const ENCRYPT_ITER: OptDesc = OptDesc::new(
    "encrypt.iter-time",
    OptType::Number,
    "Time to spend in PBKDF in milliseconds",
);
const CLUSTER_SIZE: OptDesc =
    OptDesc::new("cluster_size", OptType::Size, "qcow2 cluster size").with_default("65536");
const EXTENDED_L2: OptDesc =
    OptDesc::new("extended_l2", OptType::Bool, "Extended L2 tables").with_default("off");
const PREALLOCATION: OptDesc = OptDesc::new(
    "preallocation",
    OptType::Str,
    "Preallocation mode (allowed values: off, metadata, falloc, full)",
);
const COMPRESSION_TYPE: OptDesc = OptDesc::new(
    "compression_type",
    OptType::Str,
    "Compression method used for image cluster compression",
)
.with_default("zlib");
const SIZE: OptDesc = OptDesc::new("size", OptType::Size, "Virtual disk size");
const COMPAT: OptDesc = OptDesc::new(
    "compat",
    OptType::Str,
    "Compatibility level (v2 [0.10] or v3 [1.1])",
);
const BACKING_FILE: OptDesc =
    OptDesc::new("backing_file", OptType::Str, "File name of a base image");
const BACKING_FMT: OptDesc = OptDesc::new(
    "backing_fmt",
    OptType::Str,
    "Image format of the base image",
);
const DATA_FILE: OptDesc = OptDesc::new(
    "data_file",
    OptType::Str,
    "File name of an external data file",
);
const DATA_FILE_RAW: OptDesc = OptDesc::new(
    "data_file_raw",
    OptType::Bool,
    "The external data file must stay valid as a raw image",
);
const LAZY_REFCOUNTS: OptDesc =
    OptDesc::new("lazy_refcounts", OptType::Bool, "Postpone refcount updates").with_default("off");
const REFCOUNT_BITS: OptDesc = OptDesc::new(
    "refcount_bits",
    OptType::Number,
    "Width of a reference count entry in bits",
)
.with_default("16");
/// qcow2's options in QEMU's declaration order (the "Formatting" line
/// order); the storage's own options follow them there.
pub const FORMAT_OPTIONS: &[OptDesc] = &[
    ENCRYPTION,
    ENCRYPT_FORMAT,
    ENCRYPT_KEY,
    ENCRYPT_CIPHER,
    ENCRYPT_MODE,
    ENCRYPT_IVGEN,
    ENCRYPT_IVGEN_HASH,
    ENCRYPT_HASH,
    ENCRYPT_ITER,
    CLUSTER_SIZE,
    EXTENDED_L2,
    PREALLOCATION,
    COMPRESSION_TYPE,
    SIZE,
    COMPAT,
    BACKING_FILE,
    BACKING_FMT,
    DATA_FILE,
    DATA_FILE_RAW,
    LAZY_REFCOUNTS,
    REFCOUNT_BITS,
];

/// Everything a new image needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub size: u64,
    pub version: u32,
    pub cluster_bits: u32,
    pub extended_l2: bool,
    pub prealloc: Preallocation,
    pub lazy_refcounts: bool,
    pub refcount_order: u32,
    pub compression: CompressionType,
    pub backing_file: Option<String>,
    pub backing_fmt: Option<String>,
    pub data_file: Option<String>,
    pub data_file_raw: bool,
    pub encryption: Option<super::crypto::Encryption>,
}

/// QEMU's `validate_cluster_size`: the cluster size's bits, or its message.
pub fn validate_cluster_size(cluster_size: u64, extended_l2: bool) -> Result<u32> {
    let cluster_bits = cluster_size.trailing_zeros();
    if !cluster_size.is_power_of_two()
        || !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&cluster_bits)
    {
        return Err(Error::invalid(
            "Cluster size must be a power of two between 512 and 2048k",
        ));
    }
    if extended_l2 && cluster_size < 16384 {
        return Err(Error::invalid(
            "Extended L2 entries are only supported with cluster sizes of at least 16384 bytes",
        ));
    }
    Ok(cluster_bits)
}

fn bad_value(param: &str, value: &str) -> Error {
    Error::invalid(format!(
        "Parameter '{param}' does not accept value '{value}'"
    ))
}

/// Reads and checks the options as `qcow2_co_create_opts` and
/// `qcow2_co_create` do, with their messages, in their order.
pub fn settings(size: u64, o: &Options) -> Result<Settings> {
    let data_file = o.get("data_file").map(str::to_string);
    let data_file_raw = o.bool("data_file_raw")?.unwrap_or(false);
    let extended_l2 = o.bool("extended_l2")?.unwrap_or(false);
    let version = match o.get("compat") {
        None | Some("1.1") | Some("v3") => 3,
        Some("0.10") | Some("v2") => 2,
        Some(other) => return Err(bad_value("version", other)),
    };
    let backing_file = o.get("backing_file").map(str::to_string);
    let backing_fmt = o.get("backing_fmt").map(str::to_string);
    if let Some(f) = &backing_fmt
        && !driver_names::is_qemu_driver(f)
    {
        return Err(bad_value("backing-fmt", f));
    }
    let encryption = super::crypto::create_options(o)?;
    let cluster_size = o.size("cluster_size")?.unwrap_or(65536);
    let prealloc = match o.get("preallocation") {
        None => Preallocation::Off,
        Some(v) => Preallocation::parse(v).ok_or_else(|| bad_value("preallocation", v))?,
    };
    let lazy_refcounts = o.bool("lazy_refcounts")?.unwrap_or(false);
    let refcount_bits = o.number("refcount_bits")?.unwrap_or(16);
    let compression = match o.get("compression_type") {
        None | Some("zlib") => CompressionType::Zlib,
        Some("zstd") => CompressionType::Zstd,
        Some(other) => return Err(bad_value("compression-type", other)),
    };

    let v3_only = |what: &str| {
        Error::invalid(format!(
            "{what} only supported with compatibility level 1.1 and above (use version=v3 or greater)"
        ))
    };
    if extended_l2 && version < 3 {
        return Err(Error::invalid(
            "Extended L2 entries are only supported with compatibility level 1.1 and above (use version=v3 or greater)",
        ));
    }
    let cluster_bits = validate_cluster_size(cluster_size, extended_l2)?;
    if backing_file.is_some() && prealloc != Preallocation::Off && !extended_l2 {
        return Err(Error::invalid(
            "Backing file and preallocation can only be used at the same time if extended_l2 is on",
        ));
    }
    if backing_fmt.is_some() && backing_file.is_none() {
        return Err(Error::invalid(
            "Backing format cannot be used without backing file",
        ));
    }
    if lazy_refcounts && version < 3 {
        return Err(v3_only("Lazy refcounts"));
    }
    if refcount_bits > 64 || !refcount_bits.is_power_of_two() {
        return Err(Error::invalid(
            "Refcount width must be a power of two and may not exceed 64 bits",
        ));
    }
    if version < 3 && refcount_bits != 16 {
        return Err(Error::invalid(
            "Different refcount widths than 16 bits require compatibility level 1.1 or above (use version=v3 or greater)",
        ));
    }
    if data_file_raw && data_file.is_none() {
        return Err(Error::invalid("data-file-raw requires data-file"));
    }
    if data_file_raw && backing_file.is_some() {
        return Err(Error::invalid(
            "Backing file and data-file-raw cannot be used at the same time",
        ));
    }
    let prealloc = if data_file_raw && prealloc == Preallocation::Off {
        Preallocation::Metadata
    } else {
        prealloc
    };
    if data_file.is_some() && version < 3 {
        return Err(Error::invalid(
            "External data files are only supported with compatibility level 1.1 and above (use version=v3 or greater)",
        ));
    }
    if compression != CompressionType::Zlib && version < 3 {
        return Err(Error::invalid(
            "Non-zlib compression type is only supported with compatibility level 1.1 and above (use version=v3 or greater)",
        ));
    }
    Ok(Settings {
        size: size.div_ceil(512) * 512,
        version,
        cluster_bits,
        extended_l2,
        prealloc,
        lazy_refcounts,
        refcount_order: refcount_bits.trailing_zeros(),
        compression,
        backing_file,
        backing_fmt,
        data_file,
        data_file_raw,
        encryption,
    })
}

/// Creates the image `name`: its storage (with the options that are not
/// qcow2's, as QEMU passes them to the protocol), an external data file if
/// asked, then the layout; a failure removes what was created.
pub fn create(
    name: &str,
    size: u64,
    options: &Options,
    opener: &dyn Opener,
    diagnostics: &Diagnostics,
) -> Result<()> {
    let s = settings(size, options)?;
    let storage_options = options.without(FORMAT_OPTIONS);
    opener.create_storage(name, &storage_options)?;
    if let Some(df) = &s.data_file
        && let Err(e) = opener.create_storage(df, &storage_options)
    {
        opener.remove_storage(name);
        return Err(e);
    }
    let result = opener
        .open_storage(name, true)
        .and_then(|file| lay_out(file, &s, opener, diagnostics));
    if result.is_err() {
        opener.remove_storage(name);
        if let Some(df) = &s.data_file {
            opener.remove_storage(df);
        }
    }
    result
}

fn lay_out(
    file: Arc<dyn Storage>,
    s: &Settings,
    opener: &dyn Opener,
    diagnostics: &Diagnostics,
) -> Result<()> {
    let cs = 1u64 << s.cluster_bits;
    let mut h = Header::new(s.version, s.cluster_bits, s.refcount_order);
    h.compression_type = s.compression;
    if s.lazy_refcounts {
        h.compatible_features |= COMPAT_LAZY_REFCOUNTS;
    }
    if s.data_file.is_some() {
        h.incompatible_features |= INCOMPAT_DATA_FILE;
        h.data_file = s.data_file.clone();
    }
    if s.data_file_raw {
        h.autoclear_features |= AUTOCLEAR_DATA_FILE_RAW;
    }
    if s.compression != CompressionType::Zlib {
        h.incompatible_features |= INCOMPAT_COMPRESSION;
    }
    if s.extended_l2 {
        h.incompatible_features |= INCOMPAT_EXTL2;
    }
    file.write_at(&h.serialize()?, 0)
        .map_err(|e| e.prepend("Could not write qcow2 header"))?;
    // A refcount table with one (still empty) refcount block.
    let mut table = vec![0u8; 2 * cs as usize];
    table[..8].copy_from_slice(&(2 * cs).to_be_bytes());
    file.write_at(&table, cs)
        .map_err(|e| e.prepend("Could not write refcount table"))?;

    let opts = OpenFlags {
        writable: true,
        diagnostics: diagnostics.clone(),
        ..Default::default()
    };
    // The fresh image has no backing file yet; it is named at the end.
    let img = Qcow2Image::open_inner(file, &opts, opener, None)?;
    {
        let mut m = img.lock();
        let at = m.alloc_clusters(3 * cs).map_err(|e| {
            e.prepend("Could not allocate clusters for qcow2 header and refcount table")
        })?;
        if at != 0 {
            return Err(Error::new(
                ErrorKind::CorruptImage,
                "Huh, first cluster in empty image is already in use?",
            ));
        }
        m.write_header()
            .map_err(|e| e.prepend("Could not update qcow2 header"))?;
    }
    resize::resize(&img, s.size, s.prealloc).map_err(|e| e.prepend("Could not resize image"))?;
    if let Some(backing) = &s.backing_file {
        if backing.len() > crate::formats::qcow2::header::BACKING_FILE_MAX {
            return Err(Error::invalid(format!(
                "Could not assign backing file '{backing}' with format '{}': Invalid argument",
                s.backing_fmt.as_deref().unwrap_or("(null)")
            )));
        }
        let mut m = img.lock();
        m.header.backing_file = Some(backing.clone());
        m.header.backing_format = s.backing_fmt.clone();
        m.write_header()?;
    }
    if let Some(encryption) = &s.encryption {
        super::crypto::set_up(&img, encryption)?;
    }
    img.flush_files()
}
