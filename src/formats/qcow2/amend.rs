//! `amend`: changing a qcow2 image's options in place (QEMU's
//! `qcow2_amend_options`), in QEMU's order so that each failure leaves
//! what QEMU leaves:
//!
//! ```text
//!   read the options (in the option table's order)
//!   upgrade to v3          (snapshot table rewritten if entries are short)
//!   key slots              (encrypt.*: luks/keyslots.rs, via crypto.rs)
//!   refcount width         (refcount_width.rs)
//!   data file name, raw-data-file bit -> header
//!   backing file           (may only be restated, never changed)
//!   lazy refcounts         (cleared: the image is made clean first)
//!   size                   (resize, exactly)
//!   downgrade to v2        (zero clusters expanded, features removed)
//! ```

use std::sync::atomic::Ordering;

use crate::block::driver::Preallocation;
use crate::block::options::{OptDesc, OptType, Options};
use crate::error::{Error, ErrorKind, Result};
use crate::formats::qcow2::Qcow2Image;
use crate::formats::qcow2::header::{
    AUTOCLEAR_DATA_FILE_RAW, COMPAT_LAZY_REFCOUNTS, CompressionType, INCOMPAT_COMPRESSION,
    INCOMPAT_DIRTY, hex,
};
use crate::formats::qcow2::internal_snapshots::validate_snapshot_l1;
use crate::formats::qcow2::metadata::{Mapping, Meta};
use crate::formats::qcow2::tables::{
    self, ClusterType, Geometry, L1E_OFFSET_MASK, L2E_OFFSET_MASK, OFLAG_COPIED,
};
use crate::formats::qcow2::{crypto, refcount_width, resize, snapshot_table};

/// The options `amend` takes, in QEMU's table order (which is also the
/// order in which they are read and complained about).
pub const AMEND_OPTIONS: &[OptDesc] = &[
    OptDesc::new(
        "encrypt.state",
        OptType::Str,
        "Select new state of affected keyslots (active/inactive)",
    ),
    OptDesc::new(
        "encrypt.keyslot",
        OptType::Number,
        "Select a single keyslot to modify explicitly",
    ),
    OptDesc::new(
        "encrypt.old-secret",
        OptType::Str,
        "Select all keyslots that match this password",
    ),
    OptDesc::new(
        "encrypt.new-secret",
        OptType::Str,
        "New secret to set in the matching keyslots. Empty string to erase",
    ),
    OptDesc::new(
        "encrypt.iter-time",
        OptType::Number,
        "Time to spend in PBKDF in milliseconds",
    ),
    OptDesc::new("size", OptType::Size, "Virtual disk size"),
    OptDesc::new(
        "compat",
        OptType::Str,
        "Compatibility level (v2 [0.10] or v3 [1.1])",
    ),
    OptDesc::new("backing_file", OptType::Str, "File name of a base image"),
    OptDesc::new(
        "backing_fmt",
        OptType::Str,
        "Image format of the base image",
    ),
    OptDesc::new(
        "data_file",
        OptType::Str,
        "File name of an external data file",
    ),
    OptDesc::new(
        "data_file_raw",
        OptType::Bool,
        "The external data file must stay valid as a raw image",
    ),
    OptDesc::new("lazy_refcounts", OptType::Bool, "Postpone refcount updates"),
    OptDesc::new(
        "refcount_bits",
        OptType::Number,
        "Width of a reference count entry in bits",
    ),
];

/// What the options ask for, read in table order.
struct Request<'a> {
    version: u32,
    size: u64,
    backing_file: Option<&'a str>,
    backing_fmt: Option<&'a str>,
    backing_given: bool,
    lazy_refcounts: bool,
    refcount_bits: u64,
    data_file: Option<&'a str>,
    data_file_raw: bool,
    /// Any `encrypt.` option: the key slots change.
    keyslots: bool,
}

fn read_request<'a>(img: &Qcow2Image, m: &Meta, o: &'a Options) -> Result<Request<'a>> {
    let g = img.geometry();
    let mut r = Request {
        version: g.version,
        size: 0,
        backing_file: None,
        backing_fmt: None,
        backing_given: false,
        lazy_refcounts: m.header.compatible_features & COMPAT_LAZY_REFCOUNTS != 0,
        refcount_bits: 1 << g.refcount_order,
        data_file: None,
        data_file_raw: g.data_file_raw,
        keyslots: false,
    };
    for desc in AMEND_OPTIONS {
        let Some(value) = o.get(desc.name) else {
            continue;
        };
        match desc.name {
            n if n.starts_with("encrypt.") => {
                if img.crypto.is_none() {
                    return Err(Error::invalid(
                        "Can't amend encryption options - encryption not present",
                    ));
                }
                r.keyslots = true;
            }
            "size" => r.size = o.size("size")?.unwrap_or(0),
            "compat" => {
                r.version = match value {
                    "0.10" | "v2" => 2,
                    "1.1" | "v3" => 3,
                    other => {
                        return Err(Error::invalid(format!(
                            "Unknown compatibility level {other}"
                        )));
                    }
                }
            }
            "backing_file" => {
                r.backing_file = Some(value);
                r.backing_given = true;
            }
            "backing_fmt" => {
                r.backing_fmt = Some(value);
                r.backing_given = true;
            }
            "lazy_refcounts" => r.lazy_refcounts = o.bool("lazy_refcounts")?.unwrap_or(false),
            "refcount_bits" => {
                let bits = o.number("refcount_bits")?.unwrap_or(0);
                if bits == 0 || bits > 64 || !bits.is_power_of_two() {
                    return Err(Error::invalid(
                        "Refcount width must be a power of two and may not exceed 64 bits",
                    ));
                }
                r.refcount_bits = bits;
            }
            "data_file" => {
                if !g.has_data_file {
                    return Err(Error::invalid(
                        "data-file can only be set for images that use an external data file",
                    ));
                }
                r.data_file = Some(value);
            }
            _ => {
                let raw = o.bool("data_file_raw")?.unwrap_or(false);
                if raw && !g.data_file_raw {
                    return Err(Error::invalid(
                        "data-file-raw cannot be set on existing images",
                    ));
                }
                r.data_file_raw = raw;
            }
        }
    }
    Ok(r)
}

fn header_error(e: Error) -> Error {
    e.prepend("Failed to update the image header")
}

/// Applies `-o` to the image; `force` lets key slot changes lose data.
pub fn amend(img: &Qcow2Image, o: &Options, force: bool) -> Result<()> {
    let r = {
        let m = img.lock();
        read_request(img, &m, o)?
    };
    let old_version = img.geometry().version;
    if r.version > old_version {
        upgrade(img)?;
    }
    if r.keyslots {
        crypto::amend_keyslots(img, o, force)?;
    }
    if r.refcount_bits != 1 << img.geometry().refcount_order {
        if r.version < 3 && r.refcount_bits != 16 {
            return Err(Error::invalid(
                "Refcount widths other than 16 bits require compatibility level 1.1 or above (use compat=1.1 or greater)",
            ));
        }
        let mut m = img.lock();
        let g = refcount_width::change(&mut m, r.refcount_bits.trailing_zeros())?;
        img.set_geometry(&mut m, g);
    }
    {
        let mut m = img.lock();
        if r.data_file_raw {
            m.header.autoclear_features |= AUTOCLEAR_DATA_FILE_RAW;
        } else {
            m.header.autoclear_features &= !AUTOCLEAR_DATA_FILE_RAW;
        }
        if let Some(df) = r.data_file {
            m.header.data_file = (!df.is_empty()).then(|| df.to_string());
        }
        m.write_header().map_err(header_error)?;
        let g = Geometry::new(&m.header);
        img.set_geometry(&mut m, g);
        if r.backing_given
            && (r.backing_file != m.header.backing_file.as_deref()
                || r.backing_fmt != m.header.backing_format.as_deref())
        {
            return Err(Error::invalid(
                "Cannot amend the backing file\nYou can use 'qemu-img rebase' instead.",
            ));
        }
    }
    let lazy = img.lazy_refcounts.load(Ordering::SeqCst);
    if r.lazy_refcounts != lazy {
        set_lazy_refcounts(img, r.lazy_refcounts, r.version)?;
    }
    if r.size != 0 {
        resize::resize(img, r.size, Preallocation::Off)?;
    }
    if r.version < old_version {
        downgrade(img)?;
    }
    Ok(())
}

fn set_lazy_refcounts(img: &Qcow2Image, on: bool, version: u32) -> Result<()> {
    if on && version < 3 {
        return Err(Error::invalid(
            "Lazy refcounts only supported with compatibility level 1.1 and above (use compat=1.1 or greater)",
        ));
    }
    let mut m = img.lock();
    if !on {
        make_clean(img, &mut m).map_err(|e| e.prepend("Failed to make the image clean"))?;
    }
    let before = m.header.compatible_features;
    if on {
        m.header.compatible_features |= COMPAT_LAZY_REFCOUNTS;
    } else {
        m.header.compatible_features &= !COMPAT_LAZY_REFCOUNTS;
    }
    if let Err(e) = m.write_header() {
        m.header.compatible_features = before;
        return Err(header_error(e));
    }
    img.lazy_refcounts.store(on, Ordering::SeqCst);
    Ok(())
}

/// QEMU's `qcow2_mark_clean`: a dirty image gets its dirty bit cleared.
fn make_clean(img: &Qcow2Image, m: &mut Meta) -> Result<()> {
    if m.header.incompatible_features & INCOMPAT_DIRTY != 0 {
        m.header.incompatible_features &= !INCOMPAT_DIRTY;
        img.flush_files()?;
        m.write_header()?;
    }
    img.marked_dirty.store(false, Ordering::SeqCst);
    Ok(())
}

/// v2 -> v3: snapshot entries without the extra data v3 requires are
/// rewritten, then the header.
fn upgrade(img: &Qcow2Image) -> Result<()> {
    let mut m = img.lock();
    let short = m
        .snapshots
        .iter()
        .any(|s| (s.extra_data_size as usize) < snapshot_table::EXTRA_V3_MIN);
    if short {
        m.write_snapshots()
            .map_err(|e| e.prepend("Failed to update the snapshot table"))?;
    }
    m.header.version = 3;
    if let Err(e) = m.write_header() {
        m.header.version = 2;
        return Err(header_error(e));
    }
    let g = Geometry::new(&m.header);
    img.set_geometry(&mut m, g);
    Ok(())
}

/// v3 -> v2: refused for what v2 cannot express; zero clusters become
/// data (or unallocated), feature bits are dropped.
fn downgrade(img: &Qcow2Image) -> Result<()> {
    let mut m = img.lock();
    let g = img.geometry();
    let unsupported = |msg: &str| Error::new(ErrorKind::Unsupported, msg);
    if g.refcount_order != 4 {
        return Err(unsupported("compat=0.10 requires refcount_bits=16"));
    }
    if g.has_data_file {
        return Err(unsupported("Cannot downgrade an image with a data file"));
    }
    let size = img.current_size();
    if m.snapshots
        .iter()
        .any(|s| s.vm_state_size > u64::from(u32::MAX) || s.disk_size != size)
    {
        return Err(unsupported("Internal snapshots prevent downgrade of image"));
    }
    make_clean(img, &mut m).map_err(|e| e.prepend("Failed to make the image clean"))?;
    let features = m.header.incompatible_features & !INCOMPAT_COMPRESSION;
    if features != 0 {
        return Err(unsupported(&format!(
            "Cannot downgrade an image with incompatible features {} set",
            hex(features)
        )));
    }
    m.header.compatible_features = 0;
    m.header.autoclear_features = 0;
    img.lazy_refcounts.store(false, Ordering::SeqCst);
    expand_zero_clusters(img, &mut m)
        .map_err(|e| e.prepend("Failed to turn zero into data clusters"))?;
    if m.header.incompatible_features & INCOMPAT_COMPRESSION != 0 {
        if has_compressed_clusters(img, &mut m)? {
            return Err(unsupported(
                "Cannot downgrade an image with zstd compression type and existing compressed clusters",
            ));
        }
        m.header.incompatible_features &= !INCOMPAT_COMPRESSION;
        m.header.compression_type = CompressionType::Zlib;
    }
    m.header.version = 2;
    if let Err(e) = m.write_header() {
        m.header.version = 3;
        return Err(header_error(e));
    }
    let g = Geometry::new(&m.header);
    img.set_geometry(&mut m, g);
    Ok(())
}

/// QEMU's `qcow2_has_compressed_clusters`, over the active L1 table.
fn has_compressed_clusters(img: &Qcow2Image, m: &mut Meta) -> Result<bool> {
    let size = img.current_size();
    let mut offset = 0;
    while offset < size {
        let (mapping, n) = m
            .map(offset, size - offset)
            .map_err(|_| Error::invalid("Failed to check block status"))?;
        if matches!(mapping, Mapping::Compressed(_)) {
            return Ok(true);
        }
        offset += n.max(1);
    }
    Ok(false)
}

/// QEMU's `qcow2_expand_zero_clusters`: in the active L1 table and every
/// snapshot's, a zero cluster with a host cluster gets that cluster
/// zeroed and becomes data; one without becomes unallocated (no backing
/// file) or data in a new zeroed cluster.
fn expand_zero_clusters(img: &Qcow2Image, m: &mut Meta) -> Result<()> {
    let active = m.l1.clone();
    expand_in_l1(img, m, &active, true)?;
    m.clear_caches();
    let g = m.g;
    for sn in m.snapshots.clone() {
        validate_snapshot_l1(&g, &sn)?;
        let l1 = tables::decode_entries(&m.read_meta(sn.l1_table_offset, sn.l1_size as usize * 8)?);
        expand_in_l1(img, m, &l1, false)?;
    }
    m.clear_caches();
    Ok(())
}

/// Zeroes a cluster in the data file, extending the file when the cluster
/// lies past its end (as QEMU's zero write does).
fn zero_cluster(img: &Qcow2Image, offset: u64, cs: u64) -> Result<()> {
    let data = img.data();
    if offset + cs > data.length()? {
        data.write_at(&vec![0u8; cs as usize], offset)
    } else {
        data.zero_range(offset, cs)
    }
}

fn expand_in_l1(img: &Qcow2Image, m: &mut Meta, l1: &[u64], active: bool) -> Result<()> {
    let g = m.g;
    let cs = g.cluster_size;
    for (i, &e) in l1.iter().enumerate() {
        let l2 = e & L1E_OFFSET_MASK;
        if l2 == 0 {
            continue;
        }
        if g.offset_into_cluster(l2) != 0 {
            return Err(m.corruption(
                true,
                format!(
                    "L2 table offset {} unaligned (L1 index: {})",
                    hex(l2),
                    hex(i as u64)
                ),
            ));
        }
        let l2_refcount = m.get_refcount(l2 >> g.cluster_bits)?;
        let mut table = if active {
            m.l2_table(l2)?.clone()
        } else {
            tables::decode_entries(&m.read_meta(l2, cs as usize)?)
        };
        let mut dirty = false;
        for (j, entry) in table.iter_mut().enumerate() {
            let kind = g.cluster_type(*entry);
            let mut offset = *entry & L2E_OFFSET_MASK;
            match kind {
                ClusterType::ZeroPlain if !m.has_backing => {
                    *entry = 0;
                    dirty = true;
                    continue;
                }
                ClusterType::ZeroPlain => {
                    offset = m.alloc_clusters(cs)?;
                    if l2_refcount > 1
                        && let Err(e) = m.update_refcount(offset, cs, l2_refcount - 1, false)
                    {
                        m.free_clusters(offset, cs);
                        return Err(e);
                    }
                }
                ClusterType::ZeroAlloc => {}
                _ => continue,
            }
            if g.offset_into_cluster(offset) != 0 {
                let err = m.corruption(
                    true,
                    format!(
                        "Cluster allocation offset {} unaligned (L2 offset: {}, L2 index: {})",
                        hex(offset),
                        hex(l2),
                        hex(j as u64)
                    ),
                );
                if kind == ClusterType::ZeroPlain {
                    m.free_clusters_discard(offset, cs);
                }
                return Err(err);
            }
            if let Err(e) = zero_cluster(img, offset, cs) {
                if kind == ClusterType::ZeroPlain {
                    m.free_clusters_discard(offset, cs);
                }
                return Err(e);
            }
            *entry = if l2_refcount == 1 {
                offset | OFLAG_COPIED
            } else {
                offset
            };
            dirty = true;
        }
        if dirty {
            if active {
                *m.l2_table(l2)? = table.clone();
            }
            m.write_meta(l2, &tables::encode_entries(&table))?;
        }
    }
    Ok(())
}
