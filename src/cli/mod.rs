//! The command line, defined once: parsing, help, the man page and shell
//! completions all come from these clap definitions. Option letters, long
//! names and meanings are qemu-img 10.0.2's, and so is getopt's way of
//! reading them: an option that takes a value takes the next word even when
//! it starts with '-' (`-S -1`), a long name may be abbreviated to any
//! unambiguous prefix, and a repeated option's last value wins. Within each
//! command, options sharing a first letter are declared in qemu-img's order,
//! which is the order getopt lists them in when an abbreviation is
//! ambiguous (the shared structs below are flattened where that order
//! puts them). Positional arguments are collected loosely and checked by
//! each command so that their errors read like qemu-img's.

pub mod argv;
pub mod docs;
pub mod maintenance;
pub mod object;
pub mod panic_hook;

use clap::{Args, Parser, Subcommand};

pub use maintenance::{AmendArgs, BitmapArgs, BitmapOp, CommitArgs, RebaseArgs};

pub const QEMU_COMPAT_VERSION: &str = "10.0.2";

#[derive(Debug, Parser)]
#[command(
    name = "rbdimg",
    version = concat!(env!("CARGO_PKG_VERSION"), " (qemu-img 10.0.2 command line)"),
    about = "QEMU disk image utility with Ceph RBD built in",
    long_about = "rbdimg creates, inspects, converts, resizes and snapshots virtual machine disk \
                  images with qemu-img's command line and output. Images are local raw or qcow2 \
                  files, or RBD images named rbd:pool[/namespace]/image[@snap][:key=value...].",
    disable_help_subcommand = true,
    subcommand_required = true,
    arg_required_else_help = false,
    args_override_self = true,
    infer_long_args = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new disk image
    Create(CreateArgs),
    /// Display information about a disk image
    Info(InfoArgs),
    /// Convert an image file or snapshot into another image
    #[command(
        mut_arg("format", |a| a.long("source-format").help("Source format (probed when omitted)")),
        mut_arg("image_opts", |a| a
            .visible_alias("source-image-opts")
            .help("Source names are option strings")),
        mut_arg("force_share", |a| a.help("Open the sources even if another process uses them")),
    )]
    Convert(ConvertArgs),
    /// Resize a disk image
    Resize(ResizeArgs),
    /// List, apply, create or delete internal snapshots
    #[command(mut_arg("force_share", |a| a
        .help("Open the image even if another process uses it (listing only)")))]
    Snapshot(SnapshotArgs),
    /// Check an image for consistency
    Check(CheckArgs),
    /// Check whether two images have the same content
    #[command(
        mut_arg("format", |a| a
            .long("a-format")
            .visible_alias("left-format")
            .help("Format of the first image (probed when omitted)")),
        mut_arg("image_opts", |a| a.help("The filenames are option strings")),
        mut_arg("force_share", |a| a.help("Open the images even if another process uses them")),
    )]
    Compare(CompareArgs),
    /// Change the backing file of an image (-b '' flattens an RBD clone)
    Rebase(RebaseArgs),
    /// Commit an image's data into its backing file
    Commit(CommitArgs),
    /// Change format-specific options of an image
    Amend(AmendArgs),
    /// Add, remove, clear, enable, disable or merge persistent bitmaps
    #[command(mut_arg("format", |a| a.long(None)))]
    Bitmap(BitmapArgs),
    /// Dump the image's allocation: where each range's data lies
    Map(MapArgs),
    /// Calculate the file size a new image needs
    Measure(MeasureArgs),
    /// Copy an image into a new one, dd(1) style
    Dd(DdArgs),
    /// Time a run of read or write requests against an image
    Bench(BenchArgs),
}

/// How the commands that open existing images name them: qemu-img's
/// `--image-opts` and `-f`, defined once (convert and compare rename `-f`'s
/// long form, as qemu-img does). `--image-opts` comes first: convert's
/// `--source-image-opts` precedes `--source-format` in qemu-img.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// The filename is an option string (driver=...,file.filename=...)
    #[arg(long = "image-opts")]
    pub image_opts: bool,
    /// Image format (probed when omitted)
    #[arg(
        short = 'f',
        long = "format",
        allow_hyphen_values = true,
        value_name = "FMT"
    )]
    pub format: Option<String>,
}

/// qemu-img's `-U`, for the commands that have it (all that open an
/// existing image but resize).
#[derive(Debug, Args)]
pub struct ForceShareArg {
    /// Open the image even if another process uses it
    #[arg(short = 'U', long = "force-share")]
    pub force_share: bool,
}

/// qemu-img's `--object`, for the commands that have it (all that open or
/// create images but bench); flattened where qemu-img lists it, for
/// getopt's lists of ambiguous abbreviations.
#[derive(Debug, Args)]
pub struct ObjectArg {
    /// Define an object: secret,id=ID,data=TEXT|file=PATH[,format=raw|base64][,keyid=ID,iv=IV]
    #[arg(long = "object", allow_hyphen_values = true, value_name = "OBJECTDEF")]
    pub objects: Vec<String>,
}

/// qemu-img's `-q`, for the commands that have it.
#[derive(Debug, Args)]
pub struct QuietArg {
    /// Quiet: print nothing on success
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Image format (raw, qcow2)
    #[arg(
        short = 'f',
        long = "format",
        allow_hyphen_values = true,
        value_name = "FMT",
        default_value = "raw"
    )]
    pub format: String,
    #[command(flatten)]
    pub object: ObjectArg,
    /// Format options, comma separated (-o help lists them)
    #[arg(
        short = 'o',
        long = "options",
        allow_hyphen_values = true,
        value_name = "OPTIONS"
    )]
    pub options: Vec<String>,
    /// Backing image of the new image
    #[arg(
        short = 'b',
        long = "backing",
        allow_hyphen_values = true,
        value_name = "BACKING_FILE"
    )]
    pub backing: Option<String>,
    /// Format of the backing image
    #[arg(
        short = 'F',
        long = "backing-format",
        allow_hyphen_values = true,
        value_name = "BACKING_FMT"
    )]
    pub backing_format: Option<String>,
    /// Do not open the backing image (its size must then be given)
    #[arg(short = 'u', long = "backing-unsafe")]
    pub unsafe_backing: bool,
    #[command(flatten)]
    pub quiet: QuietArg,
    /// FILENAME [SIZE]
    #[arg(value_name = "FILENAME [SIZE]", num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub image: ImageArgs,
    /// Output format: human or json
    #[arg(
        long = "output",
        allow_hyphen_values = true,
        value_name = "human|json",
        default_value = "human"
    )]
    pub output: String,
    #[command(flatten)]
    pub object: ObjectArg,
    /// Show every image of the backing chain
    #[arg(short = 'b', long = "backing-chain")]
    pub backing_chain: bool,
    #[command(flatten)]
    pub share: ForceShareArg,
    /// FILENAME
    #[arg(value_name = "FILENAME", num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    #[command(flatten)]
    pub image: ImageArgs,
    /// Source cache mode
    #[arg(
        short = 'T',
        long = "source-cache",
        allow_hyphen_values = true,
        value_name = "SRC_CACHE"
    )]
    pub source_cache: Option<String>,
    /// Convert a snapshot: snapshot.id=ID,snapshot.name=NAME or a name
    #[arg(
        short = 'l',
        long = "snapshot",
        allow_hyphen_values = true,
        value_name = "SNAPSHOT_PARAM"
    )]
    pub snapshot: Option<String>,
    /// Minimum run of zeros to leave sparse (default 4k; 0 writes everything)
    #[arg(
        short = 'S',
        long = "sparse-size",
        allow_hyphen_values = true,
        value_name = "SPARSE_SIZE"
    )]
    pub sparse_size: Option<String>,
    /// Read errors become warnings and zeros
    #[arg(long = "salvage")]
    pub salvage: bool,
    /// With --bitmaps, skip inconsistent bitmaps instead of failing
    #[arg(long = "skip-broken-bitmaps")]
    pub skip_broken_bitmaps: bool,
    #[command(flatten)]
    pub object: ObjectArg,
    /// Output format
    #[arg(
        short = 'O',
        long = "output-format",
        allow_hyphen_values = true,
        value_name = "OUTPUT_FMT",
        default_value = "raw"
    )]
    pub output_format: String,
    /// Output format options
    #[arg(
        short = 'o',
        long = "options",
        allow_hyphen_values = true,
        value_name = "OPTIONS"
    )]
    pub options: Vec<String>,
    /// Target cache mode
    #[arg(
        short = 't',
        long = "output-cache",
        allow_hyphen_values = true,
        value_name = "CACHE"
    )]
    pub cache: Option<String>,
    /// Allow writes to complete out of order
    #[arg(short = 'W', long = "oob-writes")]
    pub out_of_order: bool,
    /// Backing image of the target
    #[arg(
        short = 'B',
        long = "backing",
        allow_hyphen_values = true,
        value_name = "BACKING_FILE"
    )]
    pub backing: Option<String>,
    /// Format of the target's backing image
    #[arg(
        short = 'F',
        long = "backing-format",
        allow_hyphen_values = true,
        value_name = "BACKING_FMT"
    )]
    pub backing_format: Option<String>,
    /// Copy the source's persistent bitmaps
    #[arg(long = "bitmaps")]
    pub bitmaps: bool,
    /// The target name is an option string (needs -n)
    #[arg(long = "target-image-opts")]
    pub target_image_opts: bool,
    /// The target is known to read as zeros (needs -n)
    #[arg(long = "target-is-zero")]
    pub target_is_zero: bool,
    /// Parallel requests in flight (1..16)
    #[arg(
        short = 'm',
        long = "parallel",
        allow_hyphen_values = true,
        value_name = "NUM_COROUTINES"
    )]
    pub parallel: Option<String>,
    #[command(flatten)]
    pub share: ForceShareArg,
    #[command(flatten)]
    pub quiet: QuietArg,
    /// Write into an existing target instead of creating it
    #[arg(short = 'n')]
    pub no_create: bool,
    /// Show progress
    #[arg(short = 'p')]
    pub progress: bool,
    /// Compress the target (qcow2)
    #[arg(short = 'c')]
    pub compress: bool,
    /// SOURCE... TARGET
    #[arg(value_name = "FILENAME", num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ResizeArgs {
    #[command(flatten)]
    pub image: ImageArgs,
    #[command(flatten)]
    pub object: ObjectArg,
    /// Allow shrinking (data past the new end is lost)
    #[arg(long = "shrink")]
    pub shrink: bool,
    /// How to allocate the new space: off, metadata, falloc, full
    #[arg(
        long = "preallocation",
        allow_hyphen_values = true,
        value_name = "PREALLOC"
    )]
    pub preallocation: Option<String>,
    #[command(flatten)]
    pub quiet: QuietArg,
    /// FILENAME [+|-]SIZE (the size is always the last argument)
    #[arg(value_name = "FILENAME", num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// List snapshots
    #[arg(short = 'l', long = "list")]
    pub list: bool,
    /// Revert the image to a snapshot
    #[arg(
        short = 'a',
        long = "apply",
        allow_hyphen_values = true,
        value_name = "SNAPSHOT"
    )]
    pub apply: Option<String>,
    /// Create a snapshot
    #[arg(
        short = 'c',
        long = "create",
        allow_hyphen_values = true,
        value_name = "SNAPSHOT"
    )]
    pub create: Option<String>,
    /// Delete a snapshot
    #[arg(
        short = 'd',
        long = "delete",
        allow_hyphen_values = true,
        value_name = "SNAPSHOT"
    )]
    pub delete: Option<String>,
    #[command(flatten)]
    pub object: ObjectArg,
    #[command(flatten)]
    pub image: ImageArgs,
    #[command(flatten)]
    pub quiet: QuietArg,
    #[command(flatten)]
    pub share: ForceShareArg,
    /// FILENAME
    #[arg(value_name = "FILENAME", num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub image: ImageArgs,
    /// Output format: human or json
    #[arg(
        long = "output",
        allow_hyphen_values = true,
        value_name = "human|json",
        default_value = "human"
    )]
    pub output: String,
    #[command(flatten)]
    pub object: ObjectArg,
    /// Repair: leaks or all
    #[arg(
        short = 'r',
        long = "repair",
        allow_hyphen_values = true,
        value_name = "leaks|all"
    )]
    pub repair: Option<String>,
    #[command(flatten)]
    pub quiet: QuietArg,
    #[command(flatten)]
    pub share: ForceShareArg,
    /// Cache mode
    #[arg(
        short = 'T',
        long = "cache",
        allow_hyphen_values = true,
        value_name = "SRC_CACHE"
    )]
    pub cache: Option<String>,
    /// FILENAME
    #[arg(value_name = "FILENAME", num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub image: ImageArgs,
    #[command(flatten)]
    pub object: ObjectArg,
    /// Format of the second image (probed when omitted)
    #[arg(
        short = 'F',
        long = "b-format",
        visible_alias = "right-format",
        allow_hyphen_values = true,
        value_name = "FMT"
    )]
    pub second_format: Option<String>,
    /// Cache mode for both images
    #[arg(
        short = 'T',
        long = "cache",
        allow_hyphen_values = true,
        value_name = "SRC_CACHE"
    )]
    pub cache: Option<String>,
    /// Show progress
    #[arg(short = 'p', long = "progress")]
    pub progress: bool,
    #[command(flatten)]
    pub quiet: QuietArg,
    /// Strict: differing sizes or allocation are differences too
    #[arg(short = 's', long = "strict")]
    pub strict: bool,
    #[command(flatten)]
    pub share: ForceShareArg,
    /// FILENAME1 FILENAME2
    #[arg(value_name = "FILENAME", num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct MapArgs {
    #[command(flatten)]
    pub image: ImageArgs,
    /// Output format: human or json
    #[arg(
        long = "output",
        allow_hyphen_values = true,
        value_name = "human|json",
        default_value = "human"
    )]
    pub output: String,
    #[command(flatten)]
    pub object: ObjectArg,
    #[command(flatten)]
    pub share: ForceShareArg,
    /// Map from this guest offset on
    #[arg(
        short = 's',
        long = "start-offset",
        allow_hyphen_values = true,
        value_name = "OFFSET"
    )]
    pub start_offset: Option<String>,
    /// Map at most this many bytes
    #[arg(
        short = 'l',
        long = "max-length",
        allow_hyphen_values = true,
        value_name = "LENGTH"
    )]
    pub max_length: Option<String>,
    /// FILENAME
    #[arg(value_name = "FILENAME", num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct MeasureArgs {
    #[command(flatten)]
    pub image: ImageArgs,
    /// Options of the target format, comma separated
    #[arg(
        short = 'o',
        long = "options",
        allow_hyphen_values = true,
        value_name = "OPTIONS"
    )]
    pub options: Vec<String>,
    #[command(flatten)]
    pub object: ObjectArg,
    /// Output format: human or json
    #[arg(
        long = "output",
        allow_hyphen_values = true,
        value_name = "human|json",
        default_value = "human"
    )]
    pub output: String,
    /// Measure this snapshot of FILENAME: snapshot.id=ID,snapshot.name=NAME or a name
    #[arg(
        short = 'l',
        long = "snapshot",
        allow_hyphen_values = true,
        value_name = "SNAPSHOT_PARAM"
    )]
    pub snapshot: Option<String>,
    // qemu-img's help lists `-s` too, but its getopt has no such option.
    /// Measure a new image of this size (instead of FILENAME)
    #[arg(long = "size", allow_hyphen_values = true, value_name = "SIZE")]
    pub size: Option<String>,
    /// Target format (default raw)
    #[arg(
        short = 'O',
        long = "target-format",
        allow_hyphen_values = true,
        value_name = "OUTPUT_FMT",
        default_value = "raw"
    )]
    pub target_format: String,
    #[command(flatten)]
    pub share: ForceShareArg,
    /// FILENAME
    #[arg(value_name = "FILENAME", num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DdArgs {
    #[command(flatten)]
    pub image: ImageArgs,
    #[command(flatten)]
    pub object: ObjectArg,
    /// Format of the output (default raw)
    #[arg(
        short = 'O',
        long = "output-format",
        allow_hyphen_values = true,
        value_name = "OUTPUT_FMT",
        default_value = "raw"
    )]
    pub output_format: String,
    #[command(flatten)]
    pub share: ForceShareArg,
    /// [bs=BLOCK_SIZE] [count=BLOCKS] [skip=BLOCKS] if=INPUT of=OUTPUT
    #[arg(value_name = "OPERAND", num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub image: ImageArgs,
    /// Flush after this many write requests
    #[arg(
        long = "flush-interval",
        allow_hyphen_values = true,
        value_name = "FLUSH_INTERVAL"
    )]
    pub flush_interval: Option<String>,
    /// Cache mode (default writeback)
    #[arg(
        short = 't',
        long = "cache",
        allow_hyphen_values = true,
        value_name = "CACHE"
    )]
    pub cache: Option<String>,
    /// Number of requests (default 75000)
    #[arg(
        short = 'c',
        long = "count",
        allow_hyphen_values = true,
        value_name = "COUNT"
    )]
    pub count: Option<String>,
    /// Requests in flight at once (default 64)
    #[arg(
        short = 'd',
        long = "depth",
        allow_hyphen_values = true,
        value_name = "DEPTH"
    )]
    pub depth: Option<String>,
    /// Bytes per request (default 4k)
    #[arg(
        short = 's',
        long = "buffer-size",
        allow_hyphen_values = true,
        value_name = "BUFFER_SIZE"
    )]
    pub buffer_size: Option<String>,
    /// Offset increment between requests (default: the buffer size)
    #[arg(
        short = 'S',
        long = "step-size",
        allow_hyphen_values = true,
        value_name = "STEP_SIZE"
    )]
    pub step_size: Option<String>,
    /// Offset of the first request
    #[arg(
        short = 'o',
        long = "offset",
        allow_hyphen_values = true,
        value_name = "OFFSET"
    )]
    pub offset: Option<String>,
    /// AIO backend: threads, native, io_uring
    #[arg(
        short = 'i',
        long = "aio",
        allow_hyphen_values = true,
        value_name = "AIO"
    )]
    pub aio: Option<String>,
    /// Native AIO (needs -t none or directsync on local files)
    #[arg(short = 'n', long = "native")]
    pub native: bool,
    /// Write requests instead of reads
    #[arg(short = 'w', long = "write")]
    pub write: bool,
    /// Byte written by write requests (default 0)
    #[arg(long = "pattern", allow_hyphen_values = true, value_name = "PATTERN")]
    pub pattern: Option<String>,
    /// With --flush-interval: flush without waiting for requests in flight
    #[arg(long = "no-drain")]
    pub no_drain: bool,
    #[command(flatten)]
    pub share: ForceShareArg,
    /// Quiet (bench prints its lines all the same, as qemu-img)
    #[arg(short = 'q')]
    pub quiet: bool,
    /// FILENAME
    #[arg(value_name = "FILENAME", num_args = 0..)]
    pub args: Vec<String>,
}

/// The clap command, for documentation generators.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
