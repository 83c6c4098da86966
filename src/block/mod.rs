//! The vocabulary every layer shares: the driver trait every image
//! implements, what drivers report (extents, snapshots, info, check
//! reports, diagnostics), what they take (`-o` options), and the walk of
//! an image's allocation in extents that every command plans from.

pub mod diagnostics;
pub mod driver;
pub mod driver_names;
pub mod extent;
pub mod info;
pub mod measure;
pub mod options;
pub mod snapshot;
pub mod status;
pub mod walk;

pub use driver::BlockDriver;

/// QEMU's block layer counts in 512-byte sectors: an image's size is its
/// storage's length rounded up, and creation rounds the requested size up.
pub const SECTOR: u64 = 512;

pub fn round_to_sector(n: u64) -> u64 {
    n.div_ceil(SECTOR) * SECTOR
}
