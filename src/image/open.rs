//! Opening an image by the name a user typed: a path, an `rbd:` name, a
//! `json:{...}` object, or `--image-opts` key=value pairs; the format from
//! `-f`, the name's `driver`, or probing.

use std::sync::Arc;

use serde_json::Value;

use crate::formats::{Format, Lookup, probe, qcow2::Qcow2Image, raw::RawImage};
use crate::image::driver::BlockDriver;
use crate::image::error::{Error, ErrorKind, Result};
use crate::image::options::parse_list;
use crate::rbd::image::{Presentation, RbdImage};
use crate::rbd::name::{self, RbdSpec};
use crate::storage::file::LocalFile;

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
}

/// Where an image's bytes live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(String),
    Rbd(RbdSpec),
}

/// Where an image lives and in which format, once the name is understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    pub location: Location,
    /// The format the name itself asks for (`driver=...`).
    pub format: Option<String>,
}

impl ImageSpec {
    /// Parses a filename, `rbd:` name, `json:{...}`, or (with `image_opts`) an option string.
    pub fn parse(name: &str, image_opts: bool) -> Result<ImageSpec> {
        if image_opts {
            return Self::from_pairs(&parse_list(name));
        }
        if let Some(json) = name.strip_prefix("json:") {
            let value: Value = serde_json::from_str(json)
                .map_err(|e| Error::invalid(format!("Could not parse the JSON options: {e}")))?;
            let Value::Object(map) = value else {
                return Err(Error::invalid("Invalid JSON object given"));
            };
            let mut pairs = Vec::new();
            flatten("", &Value::Object(map), &mut pairs)?;
            return Self::from_pairs(&pairs);
        }
        if name::is_rbd_name(name) {
            return Ok(ImageSpec {
                location: Location::Rbd(name::parse_legacy(name)?),
                format: None,
            });
        }
        Ok(ImageSpec {
            location: Location::File(name.to_string()),
            format: None,
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
            });
        }
        if get("file.driver").as_deref() == Some("rbd") {
            let inner: Vec<_> = pairs
                .iter()
                .filter_map(|(k, v)| k.strip_prefix("file.").map(|k| (k.to_string(), v.clone())))
                .collect();
            return Ok(ImageSpec {
                location: Location::Rbd(name::parse_structured(&inner)?),
                format: driver,
            });
        }
        let mut path = None;
        for (key, value) in pairs {
            match key.as_str() {
                "driver" => {}
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
    match spec.location {
        Location::File(path) => open_file(&path, requested, opts),
        Location::Rbd(rbd) => open_rbd(&rbd, name, requested, opts.writable),
    }
}

fn open_file(
    path: &str,
    requested: Option<Format>,
    opts: &OpenOptions,
) -> Result<Arc<dyn BlockDriver>> {
    let (format, probed) = match requested {
        Some(f) => (f, false),
        None => {
            let file = LocalFile::open(path, false)?;
            let mut head = vec![0u8; probe::PROBE_BYTES];
            file.read_at(&mut head, 0)?;
            let guessed = probe::probe(&head);
            // QEMU warns only when the guessed raw image is opened for writing.
            if guessed == "raw" && opts.writable {
                eprintln!("{}", raw_guess_warning(path));
            }
            (resolve_format(guessed)?, guessed == "raw")
        }
    };
    match format {
        Format::Raw => RawImage::open(path, opts.writable, probed),
        Format::File => RawImage::open_protocol(path, opts.writable),
        Format::Qcow2 => Qcow2Image::open(path, opts),
        Format::Rbd => Err(Error::invalid(format!(
            "'{path}' is not an rbd: image name"
        ))),
    }
}

fn open_rbd(
    spec: &RbdSpec,
    name: &str,
    requested: Option<Format>,
    writable: bool,
) -> Result<Arc<dyn BlockDriver>> {
    let presentation = match requested {
        Some(Format::Rbd) => Presentation::Rbd,
        Some(Format::Raw) => Presentation::Raw,
        Some(other) => {
            return Err(Error::new(
                ErrorKind::UnsupportedFeature,
                format!(
                    "format '{}' inside RBD images is not supported by rbdimg",
                    other.name()
                ),
            ));
        }
        None => Presentation::Raw,
    };
    let image = RbdImage::open(spec, name, writable, presentation)?;
    if requested.is_none() {
        let mut head = vec![0u8; probe::PROBE_BYTES.min(image.size() as usize)];
        image.read_at(&mut head, 0)?;
        let guessed = probe::probe(&head);
        if guessed != "raw" {
            return Err(Error::new(
                ErrorKind::UnsupportedFeature,
                format!("format '{guessed}' inside RBD images is not supported by rbdimg"),
            ));
        }
        if writable {
            eprintln!("{}", raw_guess_warning(name));
        }
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, format: Option<&str>) -> ImageSpec {
        ImageSpec {
            location: Location::File(path.into()),
            format: format.map(str::to_string),
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
