//! Opening an image by the name a user typed: a path, an `rbd:` name, a
//! `json:{...}` object, or `--image-opts` key=value pairs; the format from
//! `-f`, the name's `driver`, or probing.

use std::sync::Arc;

use crate::formats::raw_layer::RawLayer;
use crate::formats::{Format, Lookup, probe, qcow2::Qcow2Image, raw::RawImage};
use crate::image::driver::BlockDriver;
use crate::image::error::{Error, ErrorKind, Result};
use crate::image::notice;
use crate::image::spec::{ImageSpec, Location};
use crate::rbd::image::{Presentation, RbdImage};
use crate::rbd::name::RbdSpec;
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
    for warning in &spec.warnings {
        notice::notice(&format!("warning: {warning}"));
    }
    let requested = opts
        .format
        .clone()
        .or(spec.format.clone())
        .map(|f| resolve_format(&f))
        .transpose()?;
    let image = if spec.inner.is_empty() {
        open_location(&spec.location, name, requested, opts)?
    } else {
        open_stack(&spec, name, requested, opts)?
    };
    if let Some(key) = &spec.unknown_option {
        return Err(Error::invalid(format!(
            "Block format '{}' does not support the option '{key}'",
            image.format_name()
        )));
    }
    Ok(image)
}

fn open_location(
    location: &Location,
    name: &str,
    requested: Option<Format>,
    opts: &OpenOptions,
) -> Result<Arc<dyn BlockDriver>> {
    match location {
        Location::File(path) => open_file(path, requested, opts),
        Location::Rbd(rbd) => open_rbd(rbd, name, requested, opts.writable),
    }
}

/// A format node over another format node: the innermost opens over the
/// storage as usual; raw may sit on anything above it (the only format
/// that does not need its child to be storage).
fn open_stack(
    spec: &ImageSpec,
    name: &str,
    requested: Option<Format>,
    opts: &OpenOptions,
) -> Result<Arc<dyn BlockDriver>> {
    let innermost = spec.inner.last().expect("a stack has inner nodes");
    let mut image = open_location(&spec.location, name, Some(resolve_format(innermost)?), opts)?;
    let layers = spec.inner[..spec.inner.len() - 1].iter().map(Some);
    let top = std::iter::once(requested.map(|f| f.name().to_string()));
    let above: Vec<Option<String>> = top.chain(layers.map(|f| f.cloned())).collect();
    for (depth, format) in above.iter().enumerate().rev() {
        let format = match format {
            Some(f) => resolve_format(f)?.name(),
            None => {
                let mut head = vec![0u8; probe::PROBE_BYTES.min(image.size() as usize)];
                image.read_at(&mut head, 0)?;
                probe::probe(&head)
            }
        };
        if format != "raw" {
            return Err(Error::new(
                ErrorKind::UnsupportedFeature,
                format!("format '{format}' over another format node is not supported by rbdimg"),
            ));
        }
        let options = match depth {
            0 => serde_json::json!({"driver": "raw", "file": spec.node_options(0)}),
            d => spec.node_options(d - 1),
        };
        image = RawLayer::over(image, &options);
    }
    Ok(image)
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
