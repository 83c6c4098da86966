//! `dd [-f fmt | --image-opts] [-O fmt] [-U] [bs=SIZE] [count=N] [skip=N] if=INPUT of=OUTPUT`
//!
//! qemu-img's dd: it creates OUTPUT (format `-O`, raw by default) as large
//! as what it will copy, then copies every byte of the input from block
//! `skip` on, zeros included, so the output is fully allocated. Its
//! quirks are kept: `count` limits the input counted from its start, not
//! from `skip`; a `skip` past the end creates an empty output, says so,
//! and succeeds.

use std::sync::Arc;

use anyhow::bail;

use crate::block::BlockDriver;
use crate::block::diagnostics::Diagnostics;
use crate::block::driver_names;
use crate::block::options::Options;
use crate::cli::DdArgs;
use crate::commands::{Console, cvtnum, reading};
use crate::error::{Error, strerror};
use crate::open::create::{self, CreateRequest};
use crate::open::format::{Format, Lookup};
use crate::open::{OpenOptions, open_image};

/// Bytes moved per read and write (whole blocks): a larger unit than `bs`
/// writes the same bytes in fewer requests.
const CHUNK: u64 = 4 << 20;

/// The operands, as dd(1) spells them.
struct Operands {
    block_size: u64,
    count: Option<u64>,
    skip: Option<u64>,
    input: String,
    output: String,
}

fn operands(args: &[String]) -> anyhow::Result<Operands> {
    let (mut block_size, mut count, mut skip) = (512, None, None);
    let (mut input, mut output) = (None, None);
    for arg in args {
        let Some((key, value)) = arg.split_once('=') else {
            bail!("unrecognized operand {arg}");
        };
        match key {
            "bs" => block_size = cvtnum("bs", value, 1, i32::MAX as u64)?,
            "count" => count = Some(cvtnum("count", value, 0, i64::MAX as u64)?),
            "if" => input = Some(value.to_string()),
            "of" => output = Some(value.to_string()),
            "skip" => skip = Some(cvtnum("skip", value, 0, i64::MAX as u64)?),
            _ => bail!("unrecognized operand {key}"),
        }
    }
    let (Some(input), Some(output)) = (input, output) else {
        bail!("Must specify both input and output files");
    };
    Ok(Operands {
        block_size,
        count,
        skip,
        input,
        output,
    })
}

pub fn run(a: DdArgs, console: &Console) -> anyhow::Result<i32> {
    let ops = operands(&a.args)?;
    let input = open_image(
        &ops.input,
        &reading(&a.image, a.share.force_share, console)?,
    )?;
    let out_fmt = &a.output_format;
    match Format::lookup(out_fmt) {
        Lookup::Unknown => bail!("Unknown file format"),
        _ if !driver_names::creates_images(out_fmt) => {
            bail!("Format driver '{out_fmt}' does not support image creation")
        }
        _ => {}
    }
    let bs = ops.block_size;
    let mut size = input.size();
    if let Some(count) = ops.count
        && count.checked_mul(bs).is_some_and(|n| n < size)
    {
        size = count * bs;
    }
    // Where the copy starts, unless `skip` is past the input's end.
    let start = match ops.skip {
        None => Some(0),
        Some(skip) => skip.checked_mul(bs).filter(|&n| n <= size),
    };
    create_output(
        &ops.output,
        out_fmt,
        size - start.unwrap_or(size),
        console.diagnostics(),
    )?;
    let output = open_image(
        &ops.output,
        &OpenOptions {
            format: Some(out_fmt.clone()),
            writable: true,
            diagnostics: console.diagnostics(),
            ..Default::default()
        },
    )?;
    let start = match start {
        Some(start) => start,
        None => {
            console.error(format!("{}: cannot skip to specified offset", ops.input));
            size
        }
    };
    copy(&input, &output, start, size, bs)?;
    output.flush()?;
    Ok(0)
}

/// Creates the output as qemu-img's dd does (`bdrv_create`, silently).
fn create_output(
    name: &str,
    format: &str,
    size: u64,
    diagnostics: Diagnostics,
) -> anyhow::Result<()> {
    let mut options = Options::default();
    options.set("size", size.to_string());
    let request = CreateRequest {
        filename: name.to_string(),
        format: format.to_string(),
        options,
        diagnostics,
        ..Default::default()
    };
    create::plan(&request)
        .and_then(|plan| create::execute_unprefixed(&plan))
        .map_err(|e| e.prepend(format!("{name}: error while creating output image")))?;
    Ok(())
}

/// Copies `[start, end)` of the input to the output's start, whole blocks
/// of `bs` at a time (the last one partial).
fn copy(
    input: &Arc<dyn BlockDriver>,
    output: &Arc<dyn BlockDriver>,
    start: u64,
    end: u64,
    bs: u64,
) -> anyhow::Result<()> {
    let chunk = CHUNK.div_ceil(bs) * bs;
    let mut buf = vec![0u8; chunk.min(end - start) as usize];
    let mut pos = start;
    while pos < end {
        let n = chunk.min(end - pos) as usize;
        let buf = &mut buf[..n];
        input
            .read_at(buf, pos)
            .map_err(|e| failure("reading from input", &e))?;
        output
            .write_at(buf, pos - start)
            .map_err(|e| failure("writing to output", &e))?;
        pos += n as u64;
    }
    Ok(())
}

fn failure(what: &str, e: &Error) -> anyhow::Error {
    let errno = std::io::Error::from_raw_os_error(e.errno_value());
    anyhow::anyhow!("error while {what} image file: {}", strerror(&errno))
}
