//! The command line, defined once: parsing, help, the man page and shell
//! completions all come from these clap definitions. Option letters and
//! meanings are qemu-img 10's; positional arguments are collected loosely and
//! checked by each command so that their errors read like qemu-img's.

pub mod argv;
pub mod docs;
pub mod panic_hook;

use clap::{Args, Parser, Subcommand};

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
    propagate_version = true,
    subcommand_required = true,
    arg_required_else_help = false
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
        mut_arg("image_opts", |a| a.help("Source names are option strings")),
    )]
    Convert(ConvertArgs),
    /// Resize a disk image
    Resize(ResizeArgs),
    /// List, apply, create or delete internal snapshots
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
    )]
    Compare(CompareArgs),
}

/// How the commands that open existing images name them: qemu-img's `-f`,
/// `-U` and `--image-opts`, defined once (convert and compare rename `-f`'s
/// long form, as qemu-img does).
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// Image format (probed when omitted)
    #[arg(short = 'f', long = "format", value_name = "FMT")]
    pub format: Option<String>,
    /// Open images even if another process uses them (read-only opens only)
    #[arg(short = 'U', long = "force-share")]
    pub force_share: bool,
    /// The filename is an option string (driver=...,file.filename=...)
    #[arg(long = "image-opts")]
    pub image_opts: bool,
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
        value_name = "FMT",
        default_value = "raw"
    )]
    pub format: String,
    /// Format options, comma separated (-o help lists them)
    #[arg(short = 'o', long = "options", value_name = "OPTIONS")]
    pub options: Vec<String>,
    /// Backing image of the new image
    #[arg(short = 'b', long = "backing", value_name = "BACKING_FILE")]
    pub backing: Option<String>,
    /// Format of the backing image
    #[arg(short = 'F', long = "backing-format", value_name = "BACKING_FMT")]
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
    #[arg(long = "output", value_name = "human|json", default_value = "human")]
    pub output: String,
    /// Show every image of the backing chain
    #[arg(long = "backing-chain")]
    pub backing_chain: bool,
    /// FILENAME
    #[arg(value_name = "FILENAME", num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    #[command(flatten)]
    pub image: ImageArgs,
    /// Output format
    #[arg(
        short = 'O',
        long = "target-format",
        value_name = "OUTPUT_FMT",
        default_value = "raw"
    )]
    pub output_format: String,
    /// Output format options
    #[arg(short = 'o', long = "target-options", value_name = "OPTIONS")]
    pub options: Vec<String>,
    /// Write into an existing target instead of creating it
    #[arg(short = 'n', long = "no-create")]
    pub no_create: bool,
    /// Show progress
    #[arg(short = 'p', long = "progress")]
    pub progress: bool,
    #[command(flatten)]
    pub quiet: QuietArg,
    /// Minimum run of zeros to leave sparse (default 4k; 0 writes everything)
    #[arg(short = 'S', long = "sparse-size", value_name = "SPARSE_SIZE")]
    pub sparse_size: Option<String>,
    /// Parallel requests in flight (1..16)
    #[arg(short = 'm', long = "parallel", value_name = "NUM_COROUTINES")]
    pub parallel: Option<String>,
    /// Allow writes to complete out of order
    #[arg(short = 'W', long = "oob-writes")]
    pub out_of_order: bool,
    /// Compress the target (qcow2)
    #[arg(short = 'c', long = "compress")]
    pub compress: bool,
    /// Backing image of the target
    #[arg(short = 'B', long = "target-backing", value_name = "BACKING_FILE")]
    pub backing: Option<String>,
    /// Format of the target's backing image
    #[arg(
        short = 'F',
        long = "target-backing-format",
        value_name = "BACKING_FMT"
    )]
    pub backing_format: Option<String>,
    /// Convert a snapshot: snapshot.id=ID,snapshot.name=NAME or a name
    #[arg(short = 'l', long = "source-snapshot", value_name = "SNAPSHOT_PARAM")]
    pub snapshot: Option<String>,
    /// The target is known to read as zeros (needs -n)
    #[arg(long = "target-is-zero")]
    pub target_is_zero: bool,
    /// Target cache mode
    #[arg(short = 't', long = "target-cache", value_name = "CACHE")]
    pub cache: Option<String>,
    /// Source cache mode
    #[arg(short = 'T', long = "source-cache", value_name = "SRC_CACHE")]
    pub source_cache: Option<String>,
    /// The target name is an option string (needs -n)
    #[arg(long = "target-image-opts")]
    pub target_image_opts: bool,
    /// SOURCE... TARGET
    #[arg(value_name = "FILENAME", num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ResizeArgs {
    #[command(flatten)]
    pub image: ImageArgs,
    /// Allow shrinking (data past the new end is lost)
    #[arg(long = "shrink")]
    pub shrink: bool,
    /// How to allocate the new space: off, metadata, falloc, full
    #[arg(long = "preallocation", value_name = "PREALLOC")]
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
    #[arg(short = 'a', long = "apply", value_name = "SNAPSHOT")]
    pub apply: Option<String>,
    /// Create a snapshot
    #[arg(short = 'c', long = "create", value_name = "SNAPSHOT")]
    pub create: Option<String>,
    /// Delete a snapshot
    #[arg(short = 'd', long = "delete", value_name = "SNAPSHOT")]
    pub delete: Option<String>,
    #[command(flatten)]
    pub image: ImageArgs,
    #[command(flatten)]
    pub quiet: QuietArg,
    /// FILENAME
    #[arg(value_name = "FILENAME", num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub image: ImageArgs,
    /// Output format: human or json
    #[arg(long = "output", value_name = "human|json", default_value = "human")]
    pub output: String,
    /// Repair: leaks or all
    #[arg(short = 'r', long = "repair", value_name = "leaks|all")]
    pub repair: Option<String>,
    #[command(flatten)]
    pub quiet: QuietArg,
    /// Cache mode
    #[arg(short = 'T', long = "cache", value_name = "SRC_CACHE")]
    pub cache: Option<String>,
    /// FILENAME
    #[arg(value_name = "FILENAME", num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub image: ImageArgs,
    /// Format of the second image (probed when omitted)
    #[arg(
        short = 'F',
        long = "b-format",
        visible_alias = "right-format",
        value_name = "FMT"
    )]
    pub second_format: Option<String>,
    /// Cache mode for both images
    #[arg(short = 'T', long = "cache", value_name = "SRC_CACHE")]
    pub cache: Option<String>,
    /// Show progress
    #[arg(short = 'p', long = "progress")]
    pub progress: bool,
    #[command(flatten)]
    pub quiet: QuietArg,
    /// Strict: differing sizes or allocation are differences too
    #[arg(short = 's', long = "strict")]
    pub strict: bool,
    /// FILENAME1 FILENAME2
    #[arg(value_name = "FILENAME", num_args = 0..)]
    pub args: Vec<String>,
}

/// The clap command, for documentation generators.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
