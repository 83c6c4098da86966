//! Byte storage under the image formats.

pub mod file;
