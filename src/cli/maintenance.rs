//! The commands that change an existing image in place: rebase, commit,
//! amend and bitmap. Options sharing a first letter are declared in
//! qemu-img 10.0.2's order (getopt lists ambiguous abbreviations in it).

use clap::{ArgAction, Args};

use super::{ForceShareArg, ImageArgs, ObjectArg, QuietArg};

#[derive(Debug, Args)]
pub struct RebaseArgs {
    #[command(flatten)]
    pub object: ObjectArg,
    #[command(flatten)]
    pub share: ForceShareArg,
    #[command(flatten)]
    pub image: ImageArgs,
    /// Cache mode for the image
    #[arg(
        short = 't',
        long = "cache",
        allow_hyphen_values = true,
        value_name = "CACHE"
    )]
    pub cache: Option<String>,
    /// Write the copied clusters compressed
    #[arg(short = 'c', long = "compress")]
    pub compress: bool,
    /// The new backing file ("" for none)
    #[arg(
        short = 'b',
        long = "backing",
        allow_hyphen_values = true,
        value_name = "BACKING_FILE"
    )]
    pub backing: Option<String>,
    /// Format of the new backing file
    #[arg(
        short = 'F',
        long = "backing-format",
        allow_hyphen_values = true,
        value_name = "BACKING_FMT"
    )]
    pub backing_format: Option<String>,
    /// Cache mode for the backing files
    #[arg(
        short = 'T',
        long = "backing-cache",
        allow_hyphen_values = true,
        value_name = "BACKING_CACHE"
    )]
    pub backing_cache: Option<String>,
    /// Only rewrite the backing file name; compare nothing
    #[arg(short = 'u', long = "backing-unsafe")]
    pub unsafe_mode: bool,
    /// Show progress
    #[arg(short = 'p', long = "progress")]
    pub progress: bool,
    #[command(flatten)]
    pub quiet: QuietArg,
    /// FILENAME
    #[arg(value_name = "FILENAME", num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    #[command(flatten)]
    pub object: ObjectArg,
    #[command(flatten)]
    pub image: ImageArgs,
    /// Cache mode for the image
    #[arg(
        short = 't',
        long = "cache",
        allow_hyphen_values = true,
        value_name = "CACHE"
    )]
    pub cache: Option<String>,
    /// Keep the image's data after committing it (do not empty it)
    #[arg(short = 'd', long = "drop")]
    pub drop: bool,
    /// The image of the backing chain to commit into (implies -d)
    #[arg(
        short = 'b',
        long = "base",
        allow_hyphen_values = true,
        value_name = "BASE"
    )]
    pub base: Option<String>,
    /// I/O rate limit in bytes per second
    #[arg(
        short = 'r',
        long = "rate",
        allow_hyphen_values = true,
        value_name = "RATE"
    )]
    pub rate: Option<String>,
    /// Show progress
    #[arg(short = 'p', long = "progress")]
    pub progress: bool,
    #[command(flatten)]
    pub quiet: QuietArg,
    /// FILENAME
    #[arg(value_name = "FILENAME", num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AmendArgs {
    #[command(flatten)]
    pub object: ObjectArg,
    /// Format options to change, comma separated (-o help lists them)
    #[arg(
        short = 'o',
        long = "options",
        allow_hyphen_values = true,
        value_name = "OPTIONS"
    )]
    pub options: Vec<String>,
    #[command(flatten)]
    pub image: ImageArgs,
    /// Cache mode for the image
    #[arg(
        short = 't',
        long = "cache",
        allow_hyphen_values = true,
        value_name = "CACHE"
    )]
    pub cache: Option<String>,
    /// Allow unsafe operations
    #[arg(long = "force")]
    pub force: bool,
    /// Show progress
    #[arg(short = 'p', long = "progress")]
    pub progress: bool,
    #[command(flatten)]
    pub quiet: QuietArg,
    /// FILENAME
    #[arg(value_name = "FILENAME", num_args = 0..)]
    pub args: Vec<String>,
}

/// One `bitmap` operation, in the order the command line gives them. The
/// flags are declared as appending (one value per occurrence) so that
/// repeating one repeats the operation, as with qemu-img's getopt loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BitmapOp {
    Add,
    Remove,
    Clear,
    Enable,
    Disable,
    /// Merge the named bitmap (of `-b`'s image, or this one) into BITMAP.
    Merge(String),
}

#[derive(Debug, Args)]
pub struct BitmapArgs {
    #[command(flatten)]
    pub object: ObjectArg,
    #[command(flatten)]
    pub image: ImageArgs,
    /// Create BITMAP, recording future writes
    #[arg(
        long = "add",
        action = ArgAction::Append,
        num_args = 0,
        default_missing_value = "add"
    )]
    pub add: Vec<String>,
    /// Granularity of the bitmap --add creates
    #[arg(
        short = 'g',
        long = "granularity",
        allow_hyphen_values = true,
        value_name = "SIZE"
    )]
    pub granularity: Option<String>,
    /// Remove BITMAP
    #[arg(
        long = "remove",
        action = ArgAction::Append,
        num_args = 0,
        default_missing_value = "remove"
    )]
    pub remove: Vec<String>,
    /// Clear every bit of BITMAP
    #[arg(
        long = "clear",
        action = ArgAction::Append,
        num_args = 0,
        default_missing_value = "clear"
    )]
    pub clear: Vec<String>,
    /// Start recording writes in BITMAP
    #[arg(
        long = "enable",
        action = ArgAction::Append,
        num_args = 0,
        default_missing_value = "enable"
    )]
    pub enable: Vec<String>,
    /// Stop recording writes in BITMAP
    #[arg(
        long = "disable",
        action = ArgAction::Append,
        num_args = 0,
        default_missing_value = "disable"
    )]
    pub disable: Vec<String>,
    /// Merge the bitmap SOURCE into BITMAP
    #[arg(
        long = "merge",
        allow_hyphen_values = true,
        value_name = "SOURCE",
        action = ArgAction::Append
    )]
    pub merge: Vec<String>,
    /// The image --merge takes its source bitmap from
    #[arg(
        short = 'b',
        long = "source-file",
        allow_hyphen_values = true,
        value_name = "SRC_FILENAME"
    )]
    pub source_file: Option<String>,
    /// Format of the -b image
    #[arg(
        short = 'F',
        long = "source-format",
        allow_hyphen_values = true,
        value_name = "SRC_FMT"
    )]
    pub source_format: Option<String>,
    /// The operations in command-line order (filled from the parse).
    #[arg(skip)]
    pub ops: Vec<BitmapOp>,
    /// FILENAME BITMAP
    #[arg(value_name = "FILENAME BITMAP", num_args = 0..)]
    pub args: Vec<String>,
}

impl BitmapArgs {
    /// Orders the operations as they appeared on the command line, from
    /// where clap saw each occurrence.
    pub fn order_ops(&mut self, matches: &clap::ArgMatches) {
        let mut seen: Vec<(usize, BitmapOp)> = Vec::new();
        let flags = [
            ("add", BitmapOp::Add),
            ("remove", BitmapOp::Remove),
            ("clear", BitmapOp::Clear),
            ("enable", BitmapOp::Enable),
            ("disable", BitmapOp::Disable),
        ];
        let given =
            |id: &str| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
        for (id, op) in flags {
            if let Some(indices) = matches.indices_of(id).filter(|_| given(id)) {
                seen.extend(indices.map(|i| (i, op.clone())));
            }
        }
        if let Some(indices) = matches.indices_of("merge").filter(|_| given("merge")) {
            seen.extend(
                indices
                    .zip(&self.merge)
                    .map(|(i, source)| (i, BitmapOp::Merge(source.clone()))),
            );
        }
        seen.sort_by_key(|(i, _)| *i);
        self.ops = seen.into_iter().map(|(_, op)| op).collect();
    }
}
