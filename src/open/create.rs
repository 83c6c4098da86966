//! Creating an image (qemu's `bdrv_img_create`): validate the format and
//! options, settle the size (from the argument, `-o size` or the backing
//! image), announce "Formatting ...", then let the format lay itself out.

use crate::block::diagnostics::Diagnostics;
use crate::block::options::Options;
use crate::error::{Error, Result};
use crate::formats::qcow2;
use crate::open::format::{Format, Storage};
use crate::open::spec::{ImageSpec, Location};
use crate::open::{NameOpener, OpenOptions, open_child};

#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub filename: String,
    pub format: String,
    pub options: Options,
    /// The size argument, when given.
    pub size: Option<u64>,
    pub backing: Option<String>,
    pub backing_format: Option<String>,
    /// `-u`: do not open the backing file (its size is then required).
    pub unsafe_backing: bool,
    /// Where the images opened and created report.
    pub diagnostics: Diagnostics,
}

/// A validated request: what the format will be asked to create.
#[derive(Debug, Clone)]
pub struct CreatePlan {
    pub filename: String,
    pub location: Location,
    pub format: Format,
    pub options: Options,
    pub size: u64,
    pub diagnostics: Diagnostics,
}

impl CreatePlan {
    /// The text after "Formatting 'x', " on create's first line.
    pub fn describe(&self) -> String {
        let descs = self.format.create_options(storage_of(&self.location));
        format!(
            "fmt={} {}",
            self.format.name(),
            self.options.describe(&descs)
        )
    }
}

pub fn storage_of(location: &Location) -> Storage {
    match location {
        Location::File(_) => Storage::File,
        Location::Rbd(_) => Storage::Rbd,
    }
}

/// The first checks of a request, which qemu-img makes as it parses the
/// options: the format, each option's name and type, and whether the format
/// takes a backing file at all.
pub fn check_options(request: &CreateRequest) -> Result<()> {
    let format = Format::for_output(&request.format)?;
    let location = ImageSpec::parse(&request.filename, false)?.location;
    let options = &request.options;
    options.validate(&format.create_options(storage_of(&location)))?;
    // The backing file may come from -b/-F or from -o backing_file/backing_fmt.
    let named = |flag: &Option<String>, key| flag.is_some() || options.get(key).is_some();
    let backing = format.supports_backing(storage_of(&location));
    if named(&request.backing, "backing_file") && !backing {
        return Err(Error::invalid(format!(
            "Backing file not supported for file format '{}'",
            format.name()
        )));
    }
    if named(&request.backing_format, "backing_fmt") && !backing {
        return Err(Error::invalid(format!(
            "Backing file format not supported for file format '{}'",
            format.name()
        )));
    }
    Ok(())
}

/// Validates a request (`create` prefixes its errors with the filename,
/// `convert` does not, as in qemu-img).
pub fn plan(request: &CreateRequest) -> Result<CreatePlan> {
    check_options(request)?;
    let format = Format::for_output(&request.format)?;
    let location = ImageSpec::parse(&request.filename, false)?.location;
    let mut options = request.options.clone();
    let backing = request
        .backing
        .clone()
        .or_else(|| options.get("backing_file").map(str::to_string));
    let backing_format = request
        .backing_format
        .clone()
        .or_else(|| options.get("backing_fmt").map(str::to_string));
    if let Some(b) = &backing {
        options.set("backing_file", b.clone());
    }
    if let Some(f) = &backing_format {
        options.set("backing_fmt", f.clone());
    }
    let mut backing_size = None;
    if let Some(b) = &backing {
        if *b == request.filename {
            return Err(Error::invalid(
                "Error: Trying to create an image with the same filename as the backing file",
            ));
        }
        if b.is_empty() {
            return Err(Error::invalid(
                "Expected backing file name, got empty string",
            ));
        }
        if !request.unsafe_backing {
            let image = open_backing(request, b, backing_format.as_deref())?;
            if backing_format.is_none() {
                return Err(Error::invalid(format!(
                    "Backing file specified without backing format\nDetected format of {}.",
                    image.format_name()
                )));
            }
            backing_size = Some(image.size());
        } else if backing_format.is_none() {
            return Err(Error::invalid(
                "Backing file specified without backing format",
            ));
        }
    }
    // QEMU keeps "no size" as UINT64_MAX: a size of exactly that is none.
    let given = options.size("size")?.filter(|&s| s != u64::MAX);
    let size = match (request.size, given) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid("The image size must be specified only once"));
        }
        (Some(s), None) | (None, Some(s)) => s,
        (None, None) => match backing_size {
            Some(s) => s,
            None => return Err(Error::invalid("Image creation needs a size parameter")),
        },
    };
    if size > i64::MAX as u64 {
        return Err(Error::invalid("Image size must be less than 8 EiB!"));
    }
    options.set("size", size.to_string());
    Ok(CreatePlan {
        filename: request.filename.clone(),
        location,
        format,
        options,
        size,
        diagnostics: request.diagnostics.clone(),
    })
}

/// Opens the backing file as the new image will (relative to its
/// directory, without I/O), to check it and learn its size and format.
fn open_backing(
    request: &CreateRequest,
    backing: &str,
    format: Option<&str>,
) -> Result<std::sync::Arc<dyn crate::block::BlockDriver>> {
    let opts = OpenOptions {
        format: format.map(str::to_string),
        force_share: true,
        metadata_only: true,
        diagnostics: request.diagnostics.clone(),
        ..Default::default()
    };
    let path = match ImageSpec::parse(&request.filename, false)?.location {
        // A clone's parent is found in the clone's cluster.
        Location::Rbd(child) if crate::rbd::name::is_rbd_name(backing) => {
            let parent = crate::rbd::name::parse_legacy(backing)?;
            crate::rbd::clone::parent_in_childs_cluster(&parent, &child)?.legacy_name(true)
        }
        _ => crate::formats::qcow2::path_combine(&request.filename, backing),
    };
    open_child(&path, &opts).map_err(|e| {
        let text = format!("{e}\nCould not open backing image.");
        Error::new(e.kind(), text)
    })
}

/// Lays out the planned image.
pub fn execute(plan: &CreatePlan) -> Result<()> {
    execute_inner(plan).map_err(|e| e.prepend(&plan.filename))
}

/// As `execute`, with convert's wording: "file: error while converting fmt: reason".
pub fn execute_as(plan: &CreatePlan, context: &str) -> Result<()> {
    execute_inner(plan).map_err(|e| e.prepend(context).prepend(&plan.filename))
}

/// As `execute`, with no prefix: the caller words the context (`dd`).
pub fn execute_unprefixed(plan: &CreatePlan) -> Result<()> {
    execute_inner(plan)
}

fn execute_inner(plan: &CreatePlan) -> Result<()> {
    let result = match (&plan.location, plan.format) {
        (Location::File(_), Format::Rbd) => {
            Err(Error::invalid("the rbd format needs an rbd: image name"))
        }
        (Location::Rbd(_), Format::File) => Err(Error::new(
            crate::error::ErrorKind::UnsupportedFeature,
            "format 'file' inside RBD images is not supported by rbdimg",
        )),
        (_, Format::Raw | Format::File | Format::Rbd) => {
            super::create_storage(&plan.filename, &plan.options, &plan.diagnostics)
        }
        (_, Format::Luks) => {
            let opener = NameOpener::new(plan.diagnostics.clone());
            crate::formats::luks::create::create(&plan.filename, plan.size, &plan.options, &opener)
        }
        (_, Format::Qcow2) => {
            let opener = NameOpener::new(plan.diagnostics.clone());
            qcow2::create::create(
                &plan.filename,
                plan.size,
                &plan.options,
                &opener,
                &plan.diagnostics,
            )
        }
    };
    result.map_err(|e| {
        if e.errno_value() == libc::EFBIG {
            // QEMU's wording: clearer than the filesystem's "File too large".
            // qemu adds a hint when the format has a cluster size option.
            let hint = if plan
                .format
                .create_options(storage_of(&plan.location))
                .iter()
                .any(|d| d.name == "cluster_size")
            {
                " (try using a larger cluster size)"
            } else {
                ""
            };
            Error::new(
                e.kind(),
                format!(
                    "The image size is too large for file format '{}'{hint}",
                    plan.format.name()
                ),
            )
        } else {
            e
        }
    })
}
