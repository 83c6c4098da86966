//! Opening an image by the name a user typed: a path, an `rbd:` name, a
//! `json:{...}` object, or `--image-opts` key=value pairs (`spec.rs` reads
//! them, with `qemu_json.rs` for QEMU's JSON). The name gives the storage
//! (a local file or an RBD image) and any format nodes stacked on it; `-f`,
//! the name's `driver`, or probing the storage's first bytes gives the
//! format of the top node. Formats reach what an image names (backing
//! files, data files) through [`NameOpener`], so they never depend on this
//! layer.
//!
//! ```text
//!   json:{"driver":"raw","file":{"driver":"qcow2","file":{"filename":"A"}}}
//!   RawImage  over  NodeStorage(Qcow2Image  over  LocalFile A)
//! ```

pub mod chain;
pub mod create;
pub mod format;
pub mod qemu_json;
pub mod spec;

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::block::diagnostics::Diagnostics;
use crate::block::driver::{BlockDriver, Preallocation};
use crate::block::options::Options;
use crate::block::round_to_sector;
use crate::error::{Error, ErrorKind, Result};
use crate::formats::luks::{self, image::LuksImage};
use crate::formats::raw::{RawImage, RawWindow};
use crate::formats::{OpenFlags, Opener};
use crate::formats::{probe, qcow2::Qcow2Image};
use crate::open::format::{Format, Lookup};
use crate::open::spec::{ImageSpec, Location};
use crate::storage::Storage;
use crate::storage::file::LocalFile;
use crate::storage::node::NodeStorage;
use crate::storage::rbd::RbdStorage;

#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// `-f`: the format; probed when absent.
    pub format: Option<String>,
    pub writable: bool,
    /// `-U`: open even when another process holds the image.
    pub force_share: bool,
    /// `--image-opts`: the name is `key=value,...` rather than a filename.
    pub image_opts: bool,
    /// Open only what describing the image needs (qemu's `BDRV_O_NO_BACKING
    /// | BDRV_O_NO_IO`, used by `info`): no backing file, no external data
    /// file.
    pub metadata_only: bool,
    /// Leave the backing file closed (qemu's `BDRV_O_NO_BACKING`: `json:`'s
    /// `"backing": null`): unallocated ranges read as zeros.
    pub no_backing: bool,
    /// Open for a consistency check (qemu's `BDRV_O_CHECK`): tolerate what a
    /// check reports or repairs instead of refusing the image.
    pub check: bool,
    /// Where the image (and its backing chain) reports warnings and events.
    pub diagnostics: Diagnostics,
    /// The key secret of an encrypted target just created with `-o
    /// key-secret` (luks) or `-o encrypt.key-secret` (qcow2), for a plain
    /// name that does not say it.
    pub created_key_secret: Option<String>,
}

impl OpenOptions {
    /// What the format sees of these options.
    fn flags(&self) -> OpenFlags {
        OpenFlags {
            writable: self.writable,
            metadata_only: self.metadata_only,
            no_backing: self.no_backing,
            check: self.check,
            diagnostics: self.diagnostics.clone(),
            key_secret: None,
        }
    }
}

/// What the top node's name says to its format: the key secrets (luks's
/// `key-secret`, qcow2's `encrypt.key-secret`) and the `backing.` options
/// for its backing file.
#[derive(Debug, Clone, Copy, Default)]
struct NodeOptions<'a> {
    luks: Option<&'a str>,
    qcow2: Option<&'a str>,
    backing: Option<&'a Map<String, Value>>,
}

/// Resolves `-f` (or the spec's own driver) to an implemented format.
pub fn resolve_format(name: &str) -> Result<Format> {
    match Format::lookup(name) {
        Lookup::Unknown => Err(Error::invalid(format!("Unknown driver '{name}'"))),
        _ => Format::for_output(name),
    }
}

/// qemu's warning when it had to guess that an image is raw.
pub fn raw_guess_warning(name: &str) -> String {
    format!(
        "WARNING: Image format was not specified for '{name}' and probing guessed raw.\n         \
         Automatically detecting the format is dangerous for raw images, write operations on block 0 will be restricted.\n         \
         Specify the 'raw' format explicitly to remove the restrictions."
    )
}

/// Opens an image; errors read "Could not open 'NAME': reason" like qemu-img.
pub fn open_image(name: &str, opts: &OpenOptions) -> Result<Arc<dyn BlockDriver>> {
    // qemu-img's img_open refuses the pair before it looks at the name.
    if opts.image_opts && opts.format.is_some() {
        return Err(Error::invalid(
            "--image-opts and --format are mutually exclusive",
        ));
    }
    open_inner(name, opts).map_err(|e| e.prepend(format!("Could not open '{name}'")))
}

/// Opens again, for writing, the image `depth` levels below the image named
/// `top` (QEMU reopens that node read-write with the options it was opened
/// with): by the `name` and `format` the image above it gives, with the
/// `backing.` options `top`'s name gave it (an encrypted base's
/// `backing.encrypt.key-secret`).
pub fn reopen_below_writable(
    top: &str,
    top_opts: &OpenOptions,
    depth: usize,
    name: &str,
    format: &str,
) -> Result<Arc<dyn BlockDriver>> {
    let mut options = ImageSpec::parse(top, top_opts.image_opts)?.take_backing();
    for _ in 1..depth {
        options = options
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("backing.")?.to_string(), v)))
            .collect();
    }
    let opts = OpenOptions {
        writable: true,
        diagnostics: top_opts.diagnostics.clone(),
        ..Default::default()
    };
    let spec = ImageSpec::for_backing(name, Some(format), &options)?;
    open_spec(name, spec, &opts).map_err(|e| e.prepend(format!("Could not open '{name}'")))
}

/// Opens an image another image refers to (a backing file): errors carry no
/// "Could not open" prefix of their own, the caller words the context.
pub fn open_child(name: &str, opts: &OpenOptions) -> Result<Arc<dyn BlockDriver>> {
    open_inner(name, opts)
}

fn open_inner(name: &str, opts: &OpenOptions) -> Result<Arc<dyn BlockDriver>> {
    open_spec(name, ImageSpec::parse(name, opts.image_opts)?, opts)
}

fn open_spec(name: &str, mut spec: ImageSpec, opts: &OpenOptions) -> Result<Arc<dyn BlockDriver>> {
    let backing = match opts.metadata_only || opts.no_backing || spec.no_backing {
        true => Map::new(),
        false => spec.take_backing(),
    };
    let without_backing;
    let opts = if spec.no_backing {
        without_backing = OpenOptions {
            no_backing: true,
            ..opts.clone()
        };
        &without_backing
    } else {
        opts
    };
    for warning in &spec.warnings {
        opts.diagnostics.warning(warning.clone());
    }
    let requested = opts
        .format
        .clone()
        .or(spec.format.clone())
        .map(|f| resolve_format(&f))
        .transpose()?;
    // The name warnings use: the file's path, or the rbd: name as typed.
    let shown = match &spec.location {
        Location::File(path) => path.as_str(),
        Location::Rbd(_) => name,
    };
    match (&spec.location, requested) {
        (Location::File(path), Some(Format::Rbd)) => {
            return Err(Error::invalid(format!(
                "'{path}' is not an rbd: image name"
            )));
        }
        (Location::Rbd(_), Some(Format::File)) => {
            return Err(Error::new(
                ErrorKind::UnsupportedFeature,
                "format 'file' inside RBD images is not supported by rbdimg",
            ));
        }
        _ => {}
    }
    let mut storage = storage_at(&spec.location, opts.writable, &opts.diagnostics)?;
    let luks_secret = spec
        .option("key-secret")
        .or_else(|| opts.created_key_secret.clone());
    let qcow2_secret = spec
        .option("encrypt.key-secret")
        .or_else(|| opts.created_key_secret.clone());
    let given = NodeOptions {
        luks: luks_secret.as_deref(),
        qcow2: qcow2_secret.as_deref(),
        backing: Some(&backing),
    };
    // The format nodes below the top one, innermost first, each the
    // storage of the next.
    for (depth, node) in spec.inner.iter().enumerate().rev() {
        let format = resolve_format(&node.driver)?;
        let over_node = depth + 1 < spec.inner.len();
        let image = open_node(
            storage,
            Some(format),
            &node.raw_options,
            NodeOptions::default(),
            over_node,
            shown,
            opts,
        )?;
        storage = Arc::new(NodeStorage::new(image));
    }
    let over_node = !spec.inner.is_empty();
    let image = open_node(
        storage,
        requested,
        &spec.raw_options,
        given,
        over_node,
        shown,
        opts,
    )?;
    // QEMU refuses the options no driver took once the node is open.
    if let Some(key) = spec.leftover_option(image.format_name()) {
        return Err(Error::invalid(format!(
            "Block format '{}' does not support the option '{key}'",
            image.format_name()
        )));
    }
    Ok(image)
}

/// Opens one format node over `storage`: the format asked for, or the one
/// probed from the storage's first bytes. Only raw sits on another format
/// node (`over_node`), as in QEMU's usual stacks.
fn open_node(
    storage: Arc<dyn Storage>,
    requested: Option<Format>,
    raw_options: &[(String, Value)],
    given: NodeOptions,
    over_node: bool,
    shown: &str,
    opts: &OpenOptions,
) -> Result<Arc<dyn BlockDriver>> {
    let (format, probed) = match requested {
        Some(f) => (f, false),
        None => {
            let mut head = vec![0u8; probe::PROBE_BYTES];
            storage.read_at(&mut head, 0)?;
            let guessed = probe::probe(&head);
            // QEMU warns only when the guessed raw image is opened for writing.
            if guessed == "raw" && opts.writable {
                opts.diagnostics.line(raw_guess_warning(shown));
            }
            (resolve_format(guessed)?, guessed == "raw")
        }
    };
    if over_node && format != Format::Raw {
        return Err(Error::new(
            ErrorKind::UnsupportedFeature,
            format!(
                "format '{}' over another format node is not supported by rbdimg",
                format.name()
            ),
        ));
    }
    let no_options = Map::new();
    let backing = given.backing.unwrap_or(&no_options);
    // QEMU's bdrv_open_backing_file, for a driver without backing files.
    if !backing.is_empty() && format != Format::Qcow2 {
        return Err(Error::invalid("Driver doesn't support backing files"));
    }
    match format {
        Format::Raw => RawImage::open(storage, probed, &RawWindow::parse(raw_options)?),
        Format::File | Format::Rbd => RawImage::open_protocol(storage),
        Format::Qcow2 => guard_loop(shown, || {
            let opener = NameOpener {
                diagnostics: opts.diagnostics.clone(),
                backing: backing.clone(),
                backing_opened: Cell::new(false),
            };
            let flags = OpenFlags {
                key_secret: given.qcow2.map(str::to_string),
                ..opts.flags()
            };
            let image = Qcow2Image::open(storage, &flags, &opener)?;
            // Options for a backing file the image does not name: QEMU
            // opens them as a node of their own, which needs a file.
            if !backing.is_empty() && !opener.backing_opened.get() {
                let named = backing
                    .keys()
                    .any(|k| k == "driver" || k.starts_with("file"));
                return Err(match named {
                    false => Error::invalid(
                        "Could not open backing file: Must specify either driver or file",
                    ),
                    true => Error::new(
                        ErrorKind::UnsupportedFeature,
                        "a backing file for an image that names none is not supported by rbdimg",
                    ),
                });
            }
            Ok(image)
        }),
        Format::Luks => {
            let secret = given.luks;
            // Like QEMU's BDRV_O_NO_IO open (`info`): the header only, the
            // secret not even looked up.
            let passphrase = match (secret, opts.metadata_only) {
                (_, true) => None,
                (Some(id), false) => Some(crate::secret::lookup_utf8(id)?),
                (None, false) => {
                    return Err(Error::invalid(
                        "Parameter 'key-secret' is required for cipher",
                    ));
                }
            };
            LuksImage::open(storage, secret, passphrase.as_ref().map(|p| p.bytes()))
        }
    }
}

/// Opens the storage at `location`.
fn storage_at(
    location: &Location,
    writable: bool,
    diagnostics: &Diagnostics,
) -> Result<Arc<dyn Storage>> {
    Ok(match location {
        Location::File(path) => Arc::new(LocalFile::open(path, writable)?),
        Location::Rbd(spec) => {
            let rbd: Arc<dyn Storage> = Arc::new(RbdStorage::open(spec, writable, diagnostics)?);
            match &spec.encryption {
                None => rbd,
                // librbd's encryption, loaded as QEMU's rbd driver loads it.
                Some(encryption) => {
                    let (format, secret) = encryption.as_ref();
                    let passphrase = crate::secret::lookup_utf8(secret)?;
                    Arc::new(luks::rbd::load(rbd, format, passphrase.bytes())?)
                }
            }
        }
    })
}

thread_local! {
    /// Images being opened on this thread, to catch backing-file loops.
    static OPENING: RefCell<Vec<PathBuf>> = const { RefCell::new(Vec::new()) };
}

/// Opens an image that may name a backing file, refusing one that is
/// already being opened further up the chain.
fn guard_loop(
    name: &str,
    open: impl FnOnce() -> Result<Arc<dyn BlockDriver>>,
) -> Result<Arc<dyn BlockDriver>> {
    let canonical = std::fs::canonicalize(name).unwrap_or_else(|_| name.into());
    if OPENING.with(|s| s.borrow().contains(&canonical)) {
        return Err(Error::invalid(format!(
            "Backing file '{name}' creates an infinite loop."
        )));
    }
    OPENING.with(|s| s.borrow_mut().push(canonical));
    let result = open();
    OPENING.with(|s| s.borrow_mut().pop());
    result
}

/// Storage by name: a local file, or an RBD image for `rbd:` names.
pub fn open_storage(
    name: &str,
    writable: bool,
    diagnostics: &Diagnostics,
) -> Result<Arc<dyn Storage>> {
    storage_at(
        &ImageSpec::parse(name, false)?.location,
        writable,
        diagnostics,
    )
}

/// Creates storage by name with its `-o` options (the size among them).
/// An RBD image with `encrypt.format` is formatted with librbd's LUKS
/// encryption and grown by its header, so that `size` bytes remain usable,
/// as QEMU's rbd driver makes it.
pub fn create_storage(name: &str, options: &Options, diagnostics: &Diagnostics) -> Result<()> {
    let size = options.size("size")?.unwrap_or(0);
    match ImageSpec::parse(name, false)?.location {
        Location::File(path) => LocalFile::create_with(&path, size, options).map(drop),
        Location::Rbd(spec) => match options.get("encrypt.format") {
            Some(format) => create_encrypted_rbd(&spec, size, format, options, diagnostics),
            None if ["encrypt.key-secret", "encrypt.cipher-alg"]
                .iter()
                .any(|k| options.get(k).is_some()) =>
            {
                Err(Error::invalid("Parameter 'format' is missing"))
            }
            None => RbdStorage::create(&spec, size, options, diagnostics),
        },
    }
}

/// QEMU's `qemu_rbd_do_create` with `encrypt.*`: create, format, grow.
fn create_encrypted_rbd(
    spec: &crate::rbd::name::RbdSpec,
    size: u64,
    format: &str,
    options: &Options,
    diagnostics: &Diagnostics,
) -> Result<()> {
    match format {
        "luks" | "luks2" => {}
        other => {
            return Err(Error::invalid(format!(
                "Parameter 'format' does not accept value '{other}'"
            )));
        }
    }
    // librbd 16 refuses to format a clone: its reads decrypt the parent's
    // ciphertext with the clone's key (a clone of an encrypted image is
    // encrypted already). Ceph 17's layered encryption is not made here.
    if options.get("backing_file").is_some() {
        return Err(Error::new(
            ErrorKind::UnsupportedFeature,
            "Encrypting an RBD clone (a key of its own over its parent's) is not supported by rbdimg: a clone of an encrypted image opens with its parent's secret",
        ));
    }
    let secret = options.get("encrypt.key-secret").map(str::to_string);
    let Some(secret) = secret else {
        return Err(Error::invalid("Parameter 'key-secret' is missing"));
    };
    // librbd refuses an image its header would not leave room in (the
    // header takes whole objects: 4 MiB unless `cluster_size` says; 16
    // MiB at least in LUKS2).
    let object = options
        .size("cluster_size")?
        .filter(|&c| c != 0)
        .unwrap_or(4 << 20);
    let header = match format {
        "luks2" => luks::luks2_format::data_offset(object),
        _ => object,
    };
    if size <= header {
        return Err(Error::os(ErrorKind::Io, libc::ENOSPC).prepend("encryption format fail"));
    }
    let mut luks_options = Options::default();
    if let Some(alg) = options.get("encrypt.cipher-alg") {
        match alg {
            "aes-128" | "aes-256" => {}
            // QEMU takes the name, librbd refuses it.
            "aes-192" => {
                return Err(Error::errno(
                    ErrorKind::UnsupportedFeature,
                    "unknown encryption algorithm: 1",
                    libc::EOPNOTSUPP,
                ));
            }
            _ => {
                return Err(Error::invalid(format!(
                    "Parameter 'cipher-alg' does not accept value '{alg}'"
                )));
            }
        }
        luks_options.set("cipher-alg", alg);
    }
    let (_, mut format_options) = luks::options::parse(&luks_options, "")?;
    let passphrase = crate::secret::lookup_utf8(&secret)?;
    let encrypt: Vec<_> = crate::storage::rbd::CREATE_OPTIONS
        .iter()
        .filter(|d| d.name.starts_with("encrypt."))
        .copied()
        .collect();
    let plain = options.without(&encrypt);
    RbdStorage::create(spec, size, &plain, diagnostics)?;
    let storage = RbdStorage::open(spec, true, diagnostics)?;
    let object_size = storage.allocation_unit().unwrap_or(4096);
    if format == "luks2" {
        let write = |buf: &[u8], offset: u64| storage.write_at(buf, offset);
        let passphrase = passphrase.bytes();
        let (offset, _) =
            luks::luks2_format::format(format_options.cipher, passphrase, object_size, &write)?;
        return storage.set_len(offset + round_to_sector(size), Preallocation::Off);
    }
    format_options.payload_alignment = object_size;
    luks::create::format_on(
        &storage,
        &format_options,
        passphrase.bytes(),
        round_to_sector(size),
        Preallocation::Off,
    )
    .map(drop)
}

/// What formats open and create by name: backing images, data files.
pub struct NameOpener {
    /// Where the images opened report (the opening image's sink).
    pub diagnostics: Diagnostics,
    /// The `backing.` options of the opening image's name, for its
    /// backing file.
    pub backing: Map<String, Value>,
    /// Whether the backing file was opened (and so took them).
    pub backing_opened: Cell<bool>,
}

impl NameOpener {
    pub fn new(diagnostics: Diagnostics) -> NameOpener {
        NameOpener {
            diagnostics,
            backing: Map::new(),
            backing_opened: Cell::new(false),
        }
    }
}

impl Opener for NameOpener {
    fn open_backing(&self, name: &str, format: Option<&str>) -> Result<Arc<dyn BlockDriver>> {
        self.backing_opened.set(true);
        let mut opts = OpenOptions {
            format: format.map(str::to_string),
            force_share: true,
            diagnostics: self.diagnostics.clone(),
            ..Default::default()
        };
        if self.backing.is_empty() {
            return open_child(name, &opts);
        }
        let spec = ImageSpec::for_backing(name, format, &self.backing)?;
        opts.format = None;
        open_spec(name, spec, &opts)
    }

    fn open_storage(&self, name: &str, writable: bool) -> Result<Arc<dyn Storage>> {
        open_storage(name, writable, &self.diagnostics)
    }

    fn create_storage(&self, name: &str, options: &Options) -> Result<()> {
        create_storage(name, options, &self.diagnostics)
    }

    fn remove_storage(&self, name: &str) {
        // Best effort: the error that made the create fail is what matters.
        // An RBD image stays, as QEMU leaves it.
        if let Ok(Location::File(path)) = ImageSpec::parse(name, false).map(|s| s.location) {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_unsupported_formats_are_told_apart() {
        assert_eq!(
            resolve_format("foo").unwrap_err().to_string(),
            "Unknown driver 'foo'"
        );
        assert_eq!(
            resolve_format("vmdk").unwrap_err().kind(),
            ErrorKind::UnsupportedFeature
        );
    }
}
