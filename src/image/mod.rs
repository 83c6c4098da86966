//! The image layer: the driver trait every format implements, what drivers
//! report (extents, snapshots, info, notes for the user), errors, options,
//! opening and creation.

pub mod create;
pub mod driver;
pub mod error;
pub mod extent;
pub mod info;
pub mod notice;
pub mod open;
pub mod options;
pub mod qemu_json;
pub mod snapshot;
pub mod spec;

pub use driver::BlockDriver;
pub use error::{Error, ErrorKind, Result};
