//! One file per subcommand. Commands are the application edge: they take
//! parsed arguments, drive the image layer, print qemu-img's output, and
//! return the process exit code; errors travel as `anyhow::Error`.

pub mod check;
pub mod compare;
pub mod convert;
pub mod create;
pub mod info;
pub mod resize;
pub mod snapshot;

use std::fmt;
use std::io::{self, Write};

use anyhow::bail;

use crate::cli::{Cli, Command};
use crate::size::{SizeError, parse_size};

/// A misuse of a command's arguments: printed with the "Try ... --help" hint.
#[derive(Debug)]
pub struct Usage {
    pub command: &'static str,
    pub message: String,
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Usage {}

pub fn usage(command: &'static str, message: impl Into<String>) -> anyhow::Error {
    Usage {
        command,
        message: message.into(),
    }
    .into()
}

/// Runs the parsed command; returns the exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Create(a) => create::run(a),
        Command::Info(a) => info::run(a),
        Command::Convert(a) => convert::run(a),
        Command::Resize(a) => resize::run(a),
        Command::Snapshot(a) => snapshot::run(a),
        Command::Check(a) => check::run(a),
        Command::Compare(a) => compare::run(a),
    }
}

/// Writes to stdout; a closed pipe surfaces as an io::Error the binary ignores.
pub fn print(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// `--output=human|json`, worded as qemu-img words a bad value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Human,
    Json,
}

pub fn output_format(command: &'static str, text: &str) -> anyhow::Result<OutputFormat> {
    match text {
        "human" => Ok(OutputFormat::Human),
        "json" => Ok(OutputFormat::Json),
        other => Err(usage(
            command,
            format!("--output expects 'human' or 'json' not '{other}'"),
        )),
    }
}

/// The single filename most commands take.
pub fn one_filename<'a>(command: &'static str, args: &'a [String]) -> anyhow::Result<&'a str> {
    match args {
        [name] => Ok(name),
        _ => Err(usage(command, "Expecting one image file name")),
    }
}

/// The cache modes `-t`/`-T` accept (`bdrv_parse_cache_mode`).
pub fn is_cache_mode(mode: &str) -> bool {
    ["none", "writeback", "unsafe", "directsync", "writethrough"].contains(&mode)
}

/// qemu-img's `cvtnum_full(name, text, min, max)`: a size, worded as
/// qemu-img words what it cannot read or what is out of range.
pub fn cvtnum(name: &str, text: &str, min: u64, max: u64) -> anyhow::Result<u64> {
    match parse_size(text) {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        Err(SizeError::Invalid) => bail!("Invalid {name} specified: '{text}'."),
        _ => bail!("Invalid {name} specified. Must be between {min} and {max}."),
    }
}
