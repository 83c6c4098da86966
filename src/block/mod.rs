//! The vocabulary every layer shares: the driver trait every image
//! implements, and what drivers report (extents, snapshots, info) and take
//! (`-o` options).

pub mod driver;
pub mod extent;
pub mod info;
pub mod options;
pub mod snapshot;

pub use driver::BlockDriver;
