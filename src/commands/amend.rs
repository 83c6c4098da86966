//! `amend -o options [-f fmt | --image-opts] [-t cache] [--force] [-p] [-q]
//! filename`
//!
//! Changes format options of an existing image in place (qcow2: compat,
//! refcount_bits, lazy_refcounts, size, data_file, data_file_raw; the
//! backing file may only be restated). `-o help` lists the options.

use anyhow::bail;

use crate::block::options::{OptDesc, Options, option_lines};
use crate::cli::AmendArgs;
use crate::commands::progress::reporter;
use crate::commands::{Console, cache_mode, print, usage, writing};
use crate::convert::progress::Report;
use crate::open::format::Format;
use crate::open::open_image;

pub fn run(a: AmendArgs, console: &Console) -> anyhow::Result<i32> {
    let options = Options::parse(&a.options)?;
    if a.options.is_empty() {
        return Err(usage("amend", "Must specify options (-o)"));
    }
    // qemu-img's 0% and 100% lines; the steps between (per refcount block,
    // per L1 table) are not reported. Whatever happens from here on, -p
    // ends its line.
    let report = reporter(a.progress && !a.quiet.quiet, 1.0);
    let done = amend(&a, &options, report.as_ref(), console);
    report.end();
    done
}

fn amend(
    a: &AmendArgs,
    options: &Options,
    report: &dyn Report,
    console: &Console,
) -> anyhow::Result<i32> {
    if let Some(fmt) = a.image.format.as_deref().filter(|_| options.wants_help()) {
        print_help(fmt)?;
        return Ok(0);
    }
    let [filename] = a.args.as_slice() else {
        bail!("Expecting one image file name");
    };
    let cache = cache_mode(a.cache.as_deref())?;
    let opts = writing(&a.image, console);
    let image = open_image(filename, &opts)?;
    let fmt = image.format_name();
    if options.wants_help() {
        print_help(fmt)?;
        return Ok(0);
    }
    let descs = amend_options(fmt)?;
    if let Err(e) = options.validate(descs) {
        // The hint QEMU adds when the option exists, but only for create.
        let mut all: Vec<OptDesc> = descs.to_vec();
        all.extend(Format::for_output(fmt)?.format_options());
        if options.validate(&all).is_ok() {
            bail!("{e}\nThis option is only supported for image creation");
        }
        return Err(e.into());
    }
    report.update(0.0);
    let amended = image.amend(options, a.force);
    report.update(100.0);
    amended?;
    if cache != "unsafe" {
        image.flush()?;
    }
    Ok(0)
}

/// The amend options of format `fmt`, or qemu-img's refusal.
fn amend_options(fmt: &str) -> anyhow::Result<&'static [OptDesc]> {
    match Format::for_output(fmt)?.amend_options() {
        Some(descs) => Ok(descs),
        None => bail!("Format driver '{fmt}' does not support option amendment"),
    }
}

/// `-o help`: "Amend options for 'qcow2':" and one line per option.
fn print_help(fmt: &str) -> anyhow::Result<()> {
    let descs = amend_options(fmt)?;
    print(&format!(
        "Amend options for '{fmt}':\n{}",
        option_lines(descs)
    ))?;
    Ok(())
}
