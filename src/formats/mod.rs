//! Image formats: where guest bytes live.

pub mod probe;
pub mod qcow2;
pub mod raw;
