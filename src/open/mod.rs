//! Opening an image by the name a user typed: a path, an `rbd:` name, a
//! `json:{...}` object, or `--image-opts` key=value pairs. The name gives
//! the storage (a local file or an RBD image); `-f`, the name's `driver`,
//! or probing the storage's first bytes gives the format laid over it.
//! Formats reach what an image names (backing files, data files) through
//! [`NameOpener`], so they never depend on this layer.

pub mod create;
pub mod format;

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use crate::block::diagnostics::Diagnostics;
use crate::block::driver::BlockDriver;
use crate::block::options::{Options, split_escaped};
use crate::error::{Error, ErrorKind, Result};
use crate::formats::raw::{RawImage, RawWindow};
use crate::formats::{OpenFlags, Opener};
use crate::formats::{probe, qcow2::Qcow2Image};
use crate::open::format::{Format, Lookup};
use crate::rbd::name::{self, RbdSpec};
use crate::storage::Storage;
use crate::storage::file::LocalFile;
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
    /// Open for a consistency check (qemu's `BDRV_O_CHECK`): tolerate what a
    /// check reports or repairs instead of refusing the image.
    pub check: bool,
    /// Where the image (and its backing chain) reports warnings and events.
    pub diagnostics: Diagnostics,
}

impl OpenOptions {
    /// What the format sees of these options.
    fn flags(&self) -> OpenFlags {
        OpenFlags {
            writable: self.writable,
            metadata_only: self.metadata_only,
            check: self.check,
            diagnostics: self.diagnostics.clone(),
        }
    }
}

/// Where an image's bytes live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(String),
    Rbd(RbdSpec),
}

/// The options of QEMU's raw format that a name may carry.
const RAW_OPTIONS: &[&str] = &["offset", "size"];

/// Where an image lives and in which format, once the name is understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    pub location: Location,
    /// The format the name itself asks for (`driver=...`).
    pub format: Option<String>,
    /// The raw format's `offset` and `size`, as given (strings from
    /// `--image-opts`, JSON values from `json:`).
    pub raw_options: Vec<(String, Value)>,
}

impl ImageSpec {
    /// Parses a filename, `rbd:` name, `json:{...}`, or (with `image_opts`) an option string.
    pub fn parse(name: &str, image_opts: bool) -> Result<ImageSpec> {
        if image_opts {
            let pairs = split_escaped(name)
                .iter()
                .filter(|s| !s.is_empty())
                .map(|item| {
                    let (k, v) = item.split_once('=').unwrap_or((item.as_str(), "on"));
                    (k.to_string(), v.to_string())
                })
                .collect::<Vec<_>>();
            return Self::from_pairs(&pairs);
        }
        if let Some(json) = name.strip_prefix("json:") {
            let value: Value = serde_json::from_str(json)
                .map_err(|e| Error::invalid(format!("Could not parse the JSON options: {e}")))?;
            let Value::Object(map) = value else {
                return Err(Error::invalid("Invalid JSON object given"));
            };
            let mut pairs = Vec::new();
            flatten("", &Value::Object(map.clone()), &mut pairs)?;
            let mut spec = Self::from_pairs(&pairs)?;
            for (key, value) in &mut spec.raw_options {
                *value = map[key.as_str()].clone();
            }
            return Ok(spec);
        }
        if name::is_rbd_name(name) {
            return Ok(ImageSpec {
                location: Location::Rbd(name::parse_legacy(name)?),
                format: None,
                raw_options: Vec::new(),
            });
        }
        Ok(ImageSpec {
            location: Location::File(name.to_string()),
            format: None,
            raw_options: Vec::new(),
        })
    }

    /// Builds a spec from flattened options: `driver=rbd,...` is the rbd
    /// node itself; `driver=raw,file.driver=rbd,file.pool=...` raw over it.
    fn from_pairs(pairs: &[(String, String)]) -> Result<ImageSpec> {
        let get = |key: &str| {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let driver = get("driver");
        if driver.as_deref() == Some("rbd") {
            return Ok(ImageSpec {
                location: Location::Rbd(name::parse_structured(pairs)?),
                format: Some("rbd".into()),
                raw_options: Vec::new(),
            });
        }
        // QEMU's raw driver takes `offset` and `size`: a window of its file.
        let is_raw_option =
            |key: &str| driver.as_deref() == Some("raw") && RAW_OPTIONS.contains(&key);
        let raw_options: Vec<(String, Value)> = pairs
            .iter()
            .filter(|(k, _)| is_raw_option(k))
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        if get("file.driver").as_deref() == Some("rbd") {
            let inner: Vec<_> = pairs
                .iter()
                .filter_map(|(k, v)| k.strip_prefix("file.").map(|k| (k.to_string(), v.clone())))
                .collect();
            return Ok(ImageSpec {
                location: Location::Rbd(name::parse_structured(&inner)?),
                format: driver,
                raw_options,
            });
        }
        let mut path = None;
        for (key, value) in pairs {
            match key.as_str() {
                "driver" => {}
                key if is_raw_option(key) => {}
                "filename" | "file.filename" | "file" => path = Some(value.clone()),
                "file.driver" if value == "file" => {}
                "file.driver" => return Err(Error::invalid(format!("Unknown protocol '{value}'"))),
                "file.locking" | "file.aio" | "read-only" | "cache.direct" | "cache.no-flush" => {}
                other => return Err(Error::invalid(format!("Invalid parameter '{other}'"))),
            }
        }
        let path =
            path.ok_or_else(|| Error::invalid("A filename is required (file.filename=...)"))?;
        Ok(ImageSpec {
            location: Location::File(path),
            format: driver,
            raw_options,
        })
    }
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) -> Result<()> {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out)?;
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}.{i}"), v, out)?;
            }
        }
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        Value::Bool(b) => out.push((
            prefix.to_string(),
            if *b { "on" } else { "off" }.to_string(),
        )),
        Value::Number(n) => out.push((prefix.to_string(), n.to_string())),
        Value::Null => {
            return Err(Error::invalid(format!(
                "Invalid value for option '{prefix}'"
            )));
        }
    }
    Ok(())
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
    open_inner(name, opts).map_err(|e| e.prepend(format!("Could not open '{name}'")))
}

/// Opens an image another image refers to (a backing file): errors carry no
/// "Could not open" prefix of their own, the caller words the context.
pub fn open_child(name: &str, opts: &OpenOptions) -> Result<Arc<dyn BlockDriver>> {
    open_inner(name, opts)
}

fn open_inner(name: &str, opts: &OpenOptions) -> Result<Arc<dyn BlockDriver>> {
    let spec = ImageSpec::parse(name, opts.image_opts)?;
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
    let storage = storage_at(&spec.location, opts.writable, &opts.diagnostics)?;
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
    match format {
        Format::Raw => RawImage::open(storage, probed, &RawWindow::parse(&spec.raw_options)?),
        Format::File | Format::Rbd => RawImage::open_protocol(storage),
        Format::Qcow2 => guard_loop(shown, || {
            let opener = NameOpener {
                diagnostics: opts.diagnostics.clone(),
            };
            Qcow2Image::open(storage, &opts.flags(), &opener)
        }),
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
        Location::Rbd(spec) => Arc::new(RbdStorage::open(spec, writable, diagnostics)?),
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
pub fn create_storage(name: &str, options: &Options, diagnostics: &Diagnostics) -> Result<()> {
    let size = options.size("size")?.unwrap_or(0);
    match ImageSpec::parse(name, false)?.location {
        Location::File(path) => LocalFile::create_with(&path, size, options).map(drop),
        Location::Rbd(spec) => RbdStorage::create(&spec, size, options, diagnostics),
    }
}

/// What formats open and create by name: backing images, data files.
pub struct NameOpener {
    /// Where the images opened report (the opening image's sink).
    pub diagnostics: Diagnostics,
}

impl Opener for NameOpener {
    fn open_backing(&self, name: &str, format: Option<&str>) -> Result<Arc<dyn BlockDriver>> {
        let opts = OpenOptions {
            format: format.map(str::to_string),
            force_share: true,
            diagnostics: self.diagnostics.clone(),
            ..Default::default()
        };
        open_child(name, &opts)
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

    fn file(path: &str, format: Option<&str>) -> ImageSpec {
        ImageSpec {
            location: Location::File(path.into()),
            format: format.map(str::to_string),
            raw_options: Vec::new(),
        }
    }

    #[test]
    fn parses_json_and_image_opts() {
        let s = ImageSpec::parse(
            r#"json:{"driver":"raw","file":{"driver":"file","filename":"/x"}}"#,
            false,
        )
        .unwrap();
        assert_eq!(s, file("/x", Some("raw")));
        assert_eq!(
            ImageSpec::parse("driver=raw,file.filename=/a,,b", true).unwrap(),
            file("/a,b", Some("raw"))
        );
        assert_eq!(
            ImageSpec::parse("driver=file,filename=/y", true).unwrap(),
            file("/y", Some("file"))
        );
        assert!(ImageSpec::parse("driver=raw,bogus=1,file.filename=/a", true).is_err());
        assert!(ImageSpec::parse("json:[1]", false).is_err());
    }

    #[test]
    fn recognises_rbd_names_in_every_form() {
        let legacy = ImageSpec::parse("rbd:p/i@s", false).unwrap();
        assert!(
            matches!(&legacy.location, Location::Rbd(r) if r.pool == "p" && r.snapshot() == Some("s"))
        );
        assert_eq!(legacy.format, None);
        let opts = ImageSpec::parse("driver=rbd,pool=p,image=i", true).unwrap();
        assert_eq!(opts.format.as_deref(), Some("rbd"));
        let json = ImageSpec::parse(
            r#"json:{"driver":"raw","file":{"driver":"rbd","pool":"p","image":"i"}}"#,
            false,
        )
        .unwrap();
        assert!(matches!(&json.location, Location::Rbd(r) if r.image == "i"));
        assert_eq!(json.format.as_deref(), Some("raw"));
        let servers = ImageSpec::parse(
            r#"json:{"driver":"rbd","pool":"p","image":"i","server":[{"host":"h","port":"1"}]}"#,
            false,
        )
        .unwrap();
        assert!(matches!(&servers.location, Location::Rbd(r) if r.settings[0].1 == "h:1"));
    }

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
