//! One file per subcommand. Commands are the application edge: they take
//! parsed arguments, drive the image layer, print qemu-img's output (and
//! the diagnostics drivers report), and return the process exit code;
//! errors travel as `anyhow::Error`. Nothing below this layer prints.

pub mod amend;
pub mod bench;
pub mod bitmap;
pub mod check;
pub mod commit;
pub mod compare;
pub mod convert;
pub mod create;
pub mod dd;
pub mod info;
pub mod map;
pub mod measure;
pub mod progress;
pub mod rebase;
pub mod resize;
pub mod snapshot;

use std::fmt;
use std::io::{self, Write};

use anyhow::bail;

use crate::block::diagnostics::{Diagnostic, Diagnostics};
use crate::cli::{Cli, Command, object};
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

/// Runs the parsed command; returns the exit code. Its `--object`s are
/// created first, as qemu-img creates them while it reads argv.
pub fn run(cli: Cli, console: &Console) -> anyhow::Result<i32> {
    for text in objects(&cli.command) {
        match object::process(text) {
            Ok(object::Outcome::Help(text)) => {
                print(&text)?;
                return Ok(0);
            }
            Ok(_) => {}
            // compare exits 2 on every error before the comparison.
            Err(e) if matches!(cli.command, Command::Compare(_)) => {
                console.error(e.to_string());
                return Ok(2);
            }
            Err(e) => return Err(e.into()),
        }
    }
    match cli.command {
        Command::Create(a) => create::run(a, console),
        Command::Info(a) => info::run(a, console),
        Command::Convert(a) => convert::run(a, console),
        Command::Resize(a) => resize::run(a, console),
        Command::Snapshot(a) => snapshot::run(a, console),
        Command::Check(a) => check::run(a, console),
        Command::Compare(a) => compare::run(a, console),
        Command::Rebase(a) => rebase::run(a, console),
        Command::Commit(a) => commit::run(a, console),
        Command::Amend(a) => amend::run(a, console),
        Command::Bitmap(a) => bitmap::run(a, console),
        Command::Map(a) => map::run(a, console),
        Command::Measure(a) => measure::run(a, console),
        Command::Dd(a) => dd::run(a, console),
        Command::Bench(a) => bench::run(a, console),
    }
}

/// The `--object` arguments of a command (bench has none, as in qemu-img).
fn objects(command: &Command) -> &[String] {
    match command {
        Command::Create(a) => &a.object.objects,
        Command::Info(a) => &a.object.objects,
        Command::Convert(a) => &a.object.objects,
        Command::Resize(a) => &a.object.objects,
        Command::Snapshot(a) => &a.object.objects,
        Command::Check(a) => &a.object.objects,
        Command::Compare(a) => &a.object.objects,
        Command::Map(a) => &a.object.objects,
        Command::Measure(a) => &a.object.objects,
        Command::Dd(a) => &a.object.objects,
        Command::Rebase(a) => &a.object.objects,
        Command::Commit(a) => &a.object.objects,
        Command::Amend(a) => &a.object.objects,
        Command::Bitmap(a) => &a.object.objects,
        Command::Bench(_) => &[],
    }
}

/// The terminal a command reports to: stderr lines carry the program name
/// as QEMU prints it (the basename the binary was run by).
#[derive(Debug, Clone)]
pub struct Console {
    program: String,
}

impl Console {
    pub fn new(program: impl Into<String>) -> Console {
        Console {
            program: program.into(),
        }
    }

    pub fn program(&self) -> &str {
        &self.program
    }

    /// "<program>: <message>" on stderr.
    pub fn error(&self, message: impl fmt::Display) {
        self.diagnostic(&Diagnostic::Error(message.to_string()));
    }

    /// A driver's diagnostic on stderr, worded by its kind.
    pub fn diagnostic(&self, diagnostic: &Diagnostic) {
        let line = match diagnostic {
            Diagnostic::Line(text) => format!("{text}\n"),
            Diagnostic::Text(text) => text.clone(),
            Diagnostic::Warning(text) => format!("{}: warning: {text}\n", self.program),
            Diagnostic::Error(text) | Diagnostic::Info(text) => {
                format!("{}: {text}\n", self.program)
            }
        };
        // A closed stderr is not worth a panic.
        let _ = io::stderr().write_all(line.as_bytes());
    }

    /// A sink for drivers that prints their diagnostics as they come.
    pub fn diagnostics(&self) -> Diagnostics {
        let console = self.clone();
        Diagnostics::forwarded(move |d| console.diagnostic(d))
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

/// How the commands that only read an image open it: `-f` or
/// `--image-opts` (the open layer refuses both), `-U`.
pub fn reading(
    image: &crate::cli::ImageArgs,
    force_share: bool,
    console: &Console,
) -> crate::open::OpenOptions {
    crate::open::OpenOptions {
        format: image.format.clone(),
        force_share,
        image_opts: image.image_opts,
        diagnostics: console.diagnostics(),
        ..Default::default()
    }
}

/// How the commands that change an image open it: writable, with `-f`
/// or `--image-opts` (the open layer refuses both, as qemu-img's
/// `img_open` does).
pub fn writing(image: &crate::cli::ImageArgs, console: &Console) -> crate::open::OpenOptions {
    crate::open::OpenOptions {
        format: image.format.clone(),
        writable: true,
        image_opts: image.image_opts,
        diagnostics: console.diagnostics(),
        ..Default::default()
    }
}

/// `-t`, checked before the image opens (default writeback).
pub fn cache_mode(cache: Option<&str>) -> anyhow::Result<&str> {
    let cache = cache.unwrap_or("writeback");
    if !is_cache_mode(cache) {
        bail!("Invalid cache option: {cache}");
    }
    Ok(cache)
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
