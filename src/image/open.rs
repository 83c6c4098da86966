//! Opening an image by the name a user typed: a path, a `json:{...}` object,
//! or `--image-opts` key=value pairs; the format from `-f` or from probing.

use std::sync::Arc;

use serde_json::Value;

use crate::formats::{Format, Lookup, probe, qcow2::Qcow2Image, raw::RawImage};
use crate::image::driver::BlockDriver;
use crate::image::error::{Error, Result};
use crate::image::options::split_escaped;
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

/// Where an image lives and in which format, once the name is understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    pub path: String,
    pub format: Option<String>,
}

impl ImageSpec {
    /// Parses a filename, `json:{...}`, or (with `image_opts`) an option string.
    pub fn parse(name: &str, image_opts: bool) -> Result<ImageSpec> {
        if image_opts {
            return Self::from_pairs(split_escaped(name).iter().filter(|s| !s.is_empty()).map(
                |item| {
                    let (k, v) = item.split_once('=').unwrap_or((item.as_str(), "on"));
                    (k.to_string(), v.to_string())
                },
            ));
        }
        if let Some(json) = name.strip_prefix("json:") {
            let value: Value = serde_json::from_str(json)
                .map_err(|e| Error::invalid(format!("Could not parse the JSON options: {e}")))?;
            let Value::Object(map) = value else {
                return Err(Error::invalid("Invalid JSON object given"));
            };
            let mut pairs = Vec::new();
            flatten("", &Value::Object(map), &mut pairs)?;
            return Self::from_pairs(pairs.into_iter());
        }
        Ok(ImageSpec {
            path: name.to_string(),
            format: None,
        })
    }

    /// Builds a spec from flattened options (`driver`, `file.filename`, ...).
    fn from_pairs(pairs: impl Iterator<Item = (String, String)>) -> Result<ImageSpec> {
        let (mut driver, mut path, mut file_driver) = (None, None, None);
        for (key, value) in pairs {
            match key.as_str() {
                "driver" => driver = Some(value),
                "filename" | "file.filename" | "file" => path = Some(value),
                "file.driver" => file_driver = Some(value),
                "file.locking" | "file.aio" | "read-only" | "cache.direct" | "cache.no-flush" => {}
                other => return Err(Error::invalid(format!("Invalid parameter '{other}'"))),
            }
        }
        if let Some(d) = &file_driver
            && d != "file"
        {
            return Err(Error::invalid(format!("Unknown protocol '{d}'")));
        }
        let path =
            path.ok_or_else(|| Error::invalid("A filename is required (file.filename=...)"))?;
        Ok(ImageSpec {
            path,
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
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        Value::Bool(b) => out.push((
            prefix.to_string(),
            if *b { "on" } else { "off" }.to_string(),
        )),
        Value::Number(n) => out.push((prefix.to_string(), n.to_string())),
        Value::Null | Value::Array(_) => {
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
    let requested = opts.format.clone().or(spec.format.clone());
    let (format, probed) = match requested {
        Some(f) => (resolve_format(&f)?, false),
        None => {
            let file = LocalFile::open(&spec.path, false)?;
            let mut head = vec![0u8; probe::PROBE_BYTES];
            file.read_at(&mut head, 0)?;
            let guessed = probe::probe(&head);
            // QEMU warns only when the guessed raw image is opened for writing.
            if guessed == "raw" && opts.writable {
                eprintln!("{}", raw_guess_warning(&spec.path));
            }
            (resolve_format(guessed)?, guessed == "raw")
        }
    };
    match format {
        Format::Raw => RawImage::open(&spec.path, opts.writable, probed),
        Format::File => RawImage::open_protocol(&spec.path, opts.writable),
        Format::Qcow2 => Qcow2Image::open(&spec.path, opts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::error::ErrorKind;

    #[test]
    fn parses_json_and_image_opts() {
        let s = ImageSpec::parse(
            r#"json:{"driver":"raw","file":{"driver":"file","filename":"/x"}}"#,
            false,
        )
        .unwrap();
        assert_eq!(
            s,
            ImageSpec {
                path: "/x".into(),
                format: Some("raw".into())
            }
        );
        let s = ImageSpec::parse("driver=raw,file.filename=/a,,b", true).unwrap();
        assert_eq!(
            s,
            ImageSpec {
                path: "/a,b".into(),
                format: Some("raw".into())
            }
        );
        let s = ImageSpec::parse("driver=file,filename=/y", true).unwrap();
        assert_eq!(s.format.as_deref(), Some("file"));
        assert!(ImageSpec::parse("driver=raw,bogus=1,file.filename=/a", true).is_err());
        assert!(ImageSpec::parse("json:[1]", false).is_err());
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
