//! An RBD image as byte storage: QEMU's `rbd` protocol driver over
//! `rbd::RbdImage`. Formats (raw, qcow2) sit on top, exactly as QEMU
//! stacks them, so `create -f qcow2 rbd:pool/img` keeps a qcow2 inside the
//! image and `-f rbd` opens this node itself.
//!
//! What QEMU's driver does that librbd does not: a write past the end
//! grows the image first (to exactly the write's end), so a format can
//! append; reads past the end see zeros; the length shows in whole
//! sectors; preallocation is refused; snapshots are RBD snapshots, listed
//! with id = name and the image size as VM state size.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use serde_json::{Map, json};

use crate::block::diagnostics::Diagnostics;
use crate::block::driver::{Check, CheckReport, Preallocation, Repair};
use crate::block::extent::{Allocation, Extent};
use crate::block::info::NodeInfo;
use crate::block::options::{OptDesc, OptType, Options};
use crate::block::round_to_sector;
use crate::block::snapshot::{SnapshotInfo, Snapshots};
use crate::block::status::Status;
use crate::ceph::features;
use crate::error::{Error, ErrorKind, Result};
use crate::rados::config;
use crate::rbd::clone::CloneRequest;
use crate::rbd::create::{CreateSpec, cluster_defaults};
use crate::rbd::image::RbdImage;
use crate::rbd::name::RbdSpec;
use crate::storage::{Backing, Storage};

/// The rbd storage's `-o` options: QEMU's (same names, help and order),
/// then rbdimg's `features`.
pub const CREATE_OPTIONS: &[OptDesc] = &[
    OptDesc::new("size", OptType::Size, "Virtual disk size"),
    OptDesc::new("cluster_size", OptType::Size, "RBD object size"),
    OptDesc::new(
        "password-secret",
        OptType::Str,
        "ID of secret providing the password",
    ),
    OptDesc::new(
        "encrypt.format",
        OptType::Str,
        "Encrypt the image, format choices: 'luks', 'luks2'",
    ),
    OptDesc::new(
        "encrypt.cipher-alg",
        OptType::Str,
        "Name of encryption cipher algorithm (allowed values: aes-128, aes-256)",
    ),
    OptDesc::new(
        "encrypt.key-secret",
        OptType::Str,
        "ID of secret providing LUKS passphrase",
    ),
    OptDesc::new(
        "features",
        OptType::Str,
        "RBD image features: names joined by '+' (or ',,'), or a number (default: rbd_default_features)",
    ),
    OptDesc::new(
        "backing_file",
        OptType::Str,
        "RBD snapshot to clone (rbd:pool/image@snap)",
    ),
    OptDesc::new(
        "backing_fmt",
        OptType::Str,
        "Image format of the clone's parent (raw)",
    ),
];

pub struct RbdStorage {
    image: Arc<RbdImage>,
    /// The `json:{...}` name QEMU gives the rbd node.
    filename: String,
    /// Held while a write past the end grows the image, so concurrent
    /// appends grow it once each, never backwards.
    growing: Mutex<()>,
}

impl RbdStorage {
    /// Opens the image `spec` names; a writable open takes the exclusive
    /// lock. What the user should hear meanwhile goes to `diagnostics`.
    pub fn open(spec: &RbdSpec, writable: bool, diagnostics: &Diagnostics) -> Result<RbdStorage> {
        Ok(RbdStorage {
            image: RbdImage::open(spec, writable, diagnostics)?,
            filename: spec.json_filename(),
            growing: Mutex::new(()),
        })
    }

    /// `create` on an `rbd:` name with `-o` options: QEMU's checks and
    /// wording for `cluster_size`, rbdimg's `features`, the cluster's
    /// defaults otherwise. The size is rounded up to whole sectors, as QEMU
    /// rounds it. Creating makes the pool and namespace where the backend
    /// makes them on demand (the embedded store). With a `backing_file`
    /// (an RBD snapshot), the image is a clone of it (rbdimg's extension).
    pub fn create(
        spec: &RbdSpec,
        size: u64,
        options: &Options,
        diagnostics: &Diagnostics,
    ) -> Result<()> {
        // (`encrypt.*` is the open layer's: it formats the image after.)
        if options.get("password-secret").is_some() {
            return Err(Error::new(
                ErrorKind::UnsupportedFeature,
                "Option 'password-secret' is not supported by rbdimg",
            ));
        }
        let order = match options.size("cluster_size")?.filter(|&c| c != 0) {
            None => None,
            Some(c) if !c.is_power_of_two() => {
                return Err(Error::invalid("obj size needs to be power of 2"));
            }
            Some(c) if c < 4096 => return Err(Error::invalid("obj size too small")),
            Some(c) => Some(c.trailing_zeros() as u8),
        };
        let requested_features =
            match options.get("features") {
                None => None,
                Some(text) => Some(features::parse(text).ok_or_else(|| {
                    Error::invalid(format!("invalid value for features: '{text}'"))
                })?),
            };
        if let Some(backing) = options.get("backing_file") {
            if options.get("backing_fmt").is_some_and(|f| f != "raw") {
                return Err(Error::invalid(
                    "a clone's parent is raw: give the backing format raw (-F raw)",
                ));
            }
            if !crate::rbd::name::is_rbd_name(backing) {
                return Err(Error::invalid(format!(
                    "the backing file of an RBD image must be an RBD snapshot (rbd:pool/image@snap), not '{backing}'"
                )));
            }
            let request = CloneRequest {
                parent: crate::rbd::name::parse_legacy(backing)?,
                child: spec.clone(),
                size: Some(round_to_sector(size)),
                order,
                features: requested_features,
            };
            return crate::rbd::clone::clone(&request, diagnostics);
        }
        let cluster = config::connect(&spec.client_config(), diagnostics)?;
        cluster.ensure_pool(&spec.pool, spec.namespace())?;
        let pool = crate::rbd::header::open_pool(cluster.as_ref(), spec)?;
        let (default_features, default_order) = cluster_defaults(cluster.as_ref());
        let create = CreateSpec {
            name: spec.image.clone(),
            size: round_to_sector(size),
            order: order.unwrap_or(default_order),
            features: requested_features.unwrap_or(default_features),
        };
        crate::rbd::create::create(cluster.as_ref(), pool.as_ref(), &create).map(drop)
    }

    /// Grows the image so that it holds `end` bytes (QEMU's rbd driver
    /// resizes before a write past the end).
    fn grow_to(&self, end: u64) -> Result<()> {
        let _growing = self.growing.lock().expect("no poisoning");
        if end > self.image.size() {
            self.image.resize_to(end)?;
        }
        Ok(())
    }

    /// `[offset, offset+len)` clipped to the image: what exists to zero.
    fn within(&self, offset: u64, len: u64) -> Option<u64> {
        let size = self.image.size();
        (offset < size).then(|| len.min(size - offset))
    }

    /// A LUKS header at the start of the image (QEMU's rbd driver reports it).
    fn encryption_format(&self, size: u64) -> Result<Option<&'static str>> {
        if size < 8 {
            return Ok(None);
        }
        let mut head = [0u8; 8];
        self.image
            .read_range(&mut head, 0)
            .map_err(|e| e.prepend("cannot read image start for probe"))?;
        Ok(match &head {
            b"LUKS\xba\xbe\0\x01" | b"RBDL\xba\xbe\0\x01" => Some("luks"),
            b"LUKS\xba\xbe\0\x02" | b"RBDL\xba\xbe\0\x02" => Some("luks2"),
            _ => None,
        })
    }

    fn snapshot_infos(&self) -> Vec<SnapshotInfo> {
        // QEMU's rbd driver: id = name, VM state size = image size then,
        // no date or clock, ICOUNT 0. Oldest first.
        let header = self.image.header();
        let user: Vec<_> = header.user_snapshots().collect();
        user.into_iter()
            .rev()
            .map(|s| SnapshotInfo {
                id: s.name.clone(),
                name: s.name.clone(),
                vm_state_size: s.size,
                date_sec: 0,
                date_nsec: 0,
                vm_clock_nsec: 0,
                icount: Some(0),
            })
            .collect()
    }
}

impl Storage for RbdStorage {
    fn protocol(&self) -> &'static str {
        "rbd"
    }

    fn filename(&self) -> &str {
        &self.filename
    }

    fn length(&self) -> Result<u64> {
        Ok(self.image.size())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let n = self.within(offset, buf.len() as u64).unwrap_or(0) as usize;
        buf[n..].fill(0);
        if n == 0 {
            return Ok(());
        }
        self.image.read_range(&mut buf[..n], offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        let end = offset + buf.len() as u64;
        if end > self.image.size() {
            self.grow_to(end)?;
        }
        self.image.write_range(buf, offset)
    }

    fn zero_range(&self, offset: u64, len: u64) -> Result<()> {
        match self.within(offset, len) {
            Some(n) => self.image.zero_range(offset, n, false),
            None => Ok(()),
        }
    }

    fn discard(&self, offset: u64, len: u64) -> Result<()> {
        match self.within(offset, len) {
            Some(n) => self.image.zero_range(offset, n, true),
            None => Ok(()),
        }
    }

    fn flush(&self) -> Result<()> {
        self.image.flush()
    }

    fn set_len(&self, size: u64, prealloc: Preallocation) -> Result<()> {
        if prealloc != Preallocation::Off {
            return Err(Error::invalid(format!(
                "Unsupported preallocation mode '{}'",
                prealloc.name()
            )));
        }
        self.image
            .resize_to(size)
            .map_err(|e| e.prepend("Failed to resize file"))
    }

    fn block_status(&self, offset: u64, len: u64) -> Result<Extent> {
        match self.within(offset, len) {
            Some(n) => self.image.allocation(offset, n),
            None => Ok(Extent {
                offset,
                len,
                allocation: Allocation::Unallocated,
            }),
        }
    }

    /// QEMU's rbd driver: whole objects that exist are data, the others
    /// zeros, when fast-diff can tell; otherwise all data. A clone is
    /// rbdimg's own: objects it lacks in the overlap are its backing's
    /// (the parent's, at depth 1), where QEMU calls the whole image data.
    fn map_status(&self, offset: u64, len: u64) -> Result<Status> {
        let Some(n) = self.within(offset, len) else {
            return Ok(Status::protocol(len, false, &self.filename, offset));
        };
        if self.image.parent().is_some() {
            let extent = self.image.allocation(offset, n)?;
            return Ok(match extent.allocation {
                Allocation::Backing => Status::backing(extent.len),
                own => {
                    Status::protocol(extent.len, own == Allocation::Data, &self.filename, offset)
                }
            });
        }
        let (data, n) = self.image.diff_run(offset, n)?.unwrap_or((true, n));
        Ok(Status::protocol(n, data, &self.filename, offset))
    }

    fn allocation_unit(&self) -> Option<u64> {
        Some(self.image.object_size())
    }

    fn backing(&self) -> Option<Backing> {
        let parent = self.image.parent()?;
        let spec = parent.spec();
        Some(Backing {
            name: spec.legacy_name(false),
            full_name: spec.legacy_name(true),
            storage: Arc::new(RbdStorage {
                filename: spec.json_filename(),
                image: parent,
                growing: Mutex::new(()),
            }),
        })
    }

    fn flatten(&self, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<()> {
        self.image.flatten(progress)
    }

    fn read_stored(&self, buf: &mut [u8], offset: u64) -> Result<Vec<Range<usize>>> {
        let n = self.within(offset, buf.len() as u64).unwrap_or(0) as usize;
        buf[n..].fill(0);
        let mut stored: Vec<Range<usize>> = Vec::new();
        if n > 0 {
            self.image
                .read_stored(&mut buf[..n], offset, &mut |r| match stored.last_mut() {
                    Some(last) if last.end == r.start => last.end = r.end,
                    _ => stored.push(r),
                })?;
        }
        Ok(stored)
    }

    fn node_info(&self) -> Result<NodeInfo> {
        let size = self.image.size();
        let mut data = Map::new();
        if let Some(format) = self.encryption_format(size)? {
            data.insert("encryption-format".into(), json!(format));
        }
        // rbdimg's addition: which store the image lives in.
        data.insert("store".into(), json!(self.image.store()));
        Ok(NodeInfo {
            filename: self.filename.clone(),
            format: "rbd".into(),
            protocol: true,
            virtual_size: round_to_sector(size),
            actual_size: self.image.allocated_bytes(),
            dirty_flag: Some(false),
            cluster_size: Some(self.image.object_size()),
            snapshots: Some(self.snapshot_infos()),
            format_specific: Some(("rbd".into(), data)),
            ..Default::default()
        })
    }
}

impl Snapshots for RbdStorage {
    fn snapshots(&self) -> Result<Option<Vec<SnapshotInfo>>> {
        Ok(Some(self.snapshot_infos()))
    }

    fn snapshot_create(&self, name: &str) -> Result<()> {
        self.image.create_snapshot(name)
    }

    fn snapshot_apply(&self, id: &str) -> Result<()> {
        self.image.rollback_to(id)
    }

    fn snapshot_delete(&self, id: &str) -> Result<()> {
        self.image
            .remove_snapshot(id)
            .map_err(|e| e.prepend("Failed to remove the snapshot"))
    }
}

impl Check for RbdStorage {
    fn check(&self, repair: Repair) -> Result<CheckReport> {
        self.image.check_object_map(repair)
    }
}
