//! An object-class method call as it travels to an OSD: class, method
//! and encoded input. Each class's encode/decode halves build and read them.

/// One object-class method invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub class: &'static str,
    pub method: &'static str,
    pub input: Vec<u8>,
}
