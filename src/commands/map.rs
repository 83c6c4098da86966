//! `map [-f fmt | --image-opts] [--output=human|json] [-s OFFSET] [-l LENGTH] [-U] filename`
//!
//! qemu-img's output, byte for byte: the JSON list of every entry (depth,
//! present, zero, data, compressed, offset), or the human table of the
//! ranges that hold data in a file, which refuses ranges with no place in
//! a file (compressed clusters).

use std::io::Write;

use anyhow::bail;

use crate::block::round_to_sector;
use crate::cli::MapArgs;
use crate::commands::{Console, OutputFormat, cvtnum, one_filename, output_format, reading};
use crate::convert::map::{MapEntry, walk};
use crate::error::{Error, strerror};
use crate::open::open_image;

pub fn run(a: MapArgs, console: &Console) -> anyhow::Result<i32> {
    let output = output_format("map", &a.output)?;
    let start = a
        .start_offset
        .as_deref()
        .map(|t| cvtnum("start offset", t, 0, i64::MAX as u64))
        .transpose()?
        .unwrap_or(0);
    let max_length = a
        .max_length
        .as_deref()
        .map(|t| cvtnum("max length", t, 0, i64::MAX as u64))
        .transpose()?;
    let filename = one_filename("map", &a.args)?;
    let image = open_image(filename, &reading(&a.image, a.share.force_share, console)?)?;
    let mut out = std::io::stdout().lock();
    match output {
        OutputFormat::Human => writeln!(
            out,
            "{:<16}{:<16}{:<16}File",
            "Offset", "Length", "Mapped to"
        )?,
        OutputFormat::Json => write!(out, "[")?,
    }
    let length = round_to_sector(image.size());
    let end = max_length.map_or(length, |n| length.min(start.saturating_add(n)));
    let mut printed = Ok(());
    let walked = walk(&image, start, end, |entry, next| {
        printed = print_entry(&mut out, output, entry, next);
        match &printed {
            Ok(()) => Ok(()),
            Err(_) => Err(Error::invalid("stop")),
        }
    });
    printed?;
    if let Err(e) = walked {
        out.flush()?;
        let errno = std::io::Error::from_raw_os_error(e.errno_value());
        bail!("Could not read file metadata: {}", strerror(&errno));
    }
    if output == OutputFormat::Json {
        writeln!(out, "]")?;
    }
    out.flush()?;
    Ok(0)
}

/// qemu-img's `dump_map_entry`.
fn print_entry(
    out: &mut impl Write,
    output: OutputFormat,
    e: &MapEntry,
    next: Option<&mut MapEntry>,
) -> anyhow::Result<()> {
    match output {
        OutputFormat::Human => {
            if e.data && e.offset.is_none() {
                out.flush()?;
                bail!("File contains external, encrypted or compressed clusters.");
            }
            if e.data && !e.zero {
                writeln!(
                    out,
                    "{:<16}{:<16}{:<16}{}",
                    c_hex(e.start),
                    c_hex(e.length),
                    c_hex(e.offset.unwrap_or(0)),
                    e.filename.as_deref().unwrap_or("")
                )?;
            }
            // The table does not tell zeros from holes: such entries merge.
            if let Some(next) = next
                && (!next.data || next.zero)
            {
                (next.data, next.zero) = (false, true);
            }
        }
        OutputFormat::Json => {
            write!(
                out,
                "{{ \"start\": {}, \"length\": {}, \"depth\": {}, \"present\": {}, \"zero\": {}, \"data\": {}, \"compressed\": {}",
                e.start, e.length, e.depth, e.present, e.zero, e.data, e.compressed
            )?;
            if let Some(offset) = e.offset {
                write!(out, ", \"offset\": {offset}")?;
            }
            write!(out, "}}")?;
            if next.is_some() {
                writeln!(out, ",")?;
            }
        }
    }
    Ok(())
}

/// C's `%#x`: `0x` before every value but zero.
fn c_hex(n: u64) -> String {
    match n {
        0 => "0".to_string(),
        n => format!("{n:#x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_as_printf_alternate_form() {
        assert_eq!(c_hex(0), "0");
        assert_eq!(c_hex(4096), "0x1000");
    }
}
