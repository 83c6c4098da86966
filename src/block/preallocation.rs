//! Preallocation modes: a vocabulary of its own so that `-o` option
//! parsing (`options.rs`) and the driver trait both use it without
//! importing each other.

/// How `resize` and `create` lay out new space (qemu's `PreallocMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preallocation {
    #[default]
    Off,
    Metadata,
    Falloc,
    Full,
}

impl Preallocation {
    pub fn parse(text: &str) -> Option<Preallocation> {
        Some(match text {
            "off" => Preallocation::Off,
            "metadata" => Preallocation::Metadata,
            "falloc" => Preallocation::Falloc,
            "full" => Preallocation::Full,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Preallocation::Off => "off",
            Preallocation::Metadata => "metadata",
            Preallocation::Falloc => "falloc",
            Preallocation::Full => "full",
        }
    }
}
