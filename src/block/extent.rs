//! Allocation status: what a driver says about a guest byte range without
//! reading it. The convert engine plans its work from these answers.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Data stored in this image; must be read.
    Data,
    /// Allocated in this image and known to read as zeros.
    Zero,
    /// Not stored anywhere: reads as zeros and there is no backing image.
    Unallocated,
    /// Not stored in this image: reads come from the backing image.
    Backing,
}

impl Allocation {
    /// True when reads of the range are guaranteed to return zeros.
    pub fn reads_as_zero(self) -> bool {
        matches!(self, Allocation::Zero | Allocation::Unallocated)
    }
}

/// A run of bytes `[offset, offset + len)` with one allocation status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub offset: u64,
    pub len: u64,
    pub allocation: Allocation,
}

impl Extent {
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}
