//! `create [-f fmt] [-o opts] [-b backing -F fmt] [-u] [-q] filename [size]`

use anyhow::bail;

use crate::block::options::{Options, help_text};
use crate::cli::CreateArgs;
use crate::commands::{Console, print, usage};
use crate::open::create::{self, CreateRequest};
use crate::open::format::Format;
use crate::size::{SizeError, parse_size};

pub fn run(a: CreateArgs, console: &Console) -> anyhow::Result<i32> {
    let options = Options::parse(&a.options)?;
    if options.wants_help() {
        return option_help(&a.format, a.args.first());
    }
    let (filename, size) = match a.args.as_slice() {
        [] => return Err(usage("create", "Expecting image file name")),
        [name] => (name.clone(), None),
        [name, size] => (name.clone(), Some(image_size(size)?)),
        [_, _, extra, ..] => return Err(usage("create", format!("Unexpected argument: {extra}"))),
    };
    let request = CreateRequest {
        filename: filename.clone(),
        format: a.format,
        options,
        size,
        backing: a.backing,
        backing_format: a.backing_format,
        unsafe_backing: a.unsafe_backing,
        diagnostics: console.diagnostics(),
    };
    let plan = create::plan(&request).map_err(|e| e.prepend(&filename))?;
    if !a.quiet.quiet {
        print(&format!("Formatting '{}', {}\n", filename, plan.describe()))?;
    }
    create::execute(&plan)?;
    Ok(0)
}

/// qemu-img's `cvtnum("image size", ...)`.
pub fn image_size(text: &str) -> anyhow::Result<u64> {
    match parse_size(text) {
        Ok(n) if n <= i64::MAX as u64 => Ok(n),
        Err(SizeError::Invalid) => bail!("Invalid image size specified: '{text}'."),
        _ => bail!(
            "Invalid image size specified. Must be between 0 and {}.",
            i64::MAX
        ),
    }
}

fn option_help(format: &str, filename: Option<&String>) -> anyhow::Result<i32> {
    let format = Format::for_output(format)?;
    let text = if let Some(filename_arg) = filename {
        let location = crate::open::ImageSpec::parse(filename_arg, false)?.location;
        let descs = format.create_options(crate::open::create::storage_of(&location));
        help_text(None, &descs)
    } else {
        help_text(Some(format.name()), format.format_options())
    };
    print(&text)?;
    Ok(0)
}
