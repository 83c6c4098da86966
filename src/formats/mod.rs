//! Image formats: where guest bytes live, over a `Storage`.
//!
//! A format never opens anything by name itself: its backing image and
//! external data file are named inside the image, and the layer that opens
//! names (`open/`) hands the format an [`Opener`] to reach them.

pub mod luks;
pub mod probe;
pub mod qcow2;
pub mod raw;

use std::sync::Arc;

use crate::block::BlockDriver;
use crate::block::diagnostics::Diagnostics;
use crate::block::options::Options;
use crate::error::Result;
use crate::storage::Storage;

/// What opening asks of a format (QEMU's open flags that formats see).
#[derive(Debug, Clone, Default)]
pub struct OpenFlags {
    pub writable: bool,
    /// Open only what describing the image needs (qemu's `BDRV_O_NO_BACKING
    /// | BDRV_O_NO_IO`, used by `info`): no backing file, no external data
    /// file.
    pub metadata_only: bool,
    /// Leave the backing file closed (qemu's `BDRV_O_NO_BACKING`).
    pub no_backing: bool,
    /// Open for a consistency check (qemu's `BDRV_O_CHECK`): tolerate what a
    /// check reports or repairs instead of refusing the image.
    pub check: bool,
    /// Where the image reports what it has to tell besides results.
    pub diagnostics: Diagnostics,
    /// The id of the secret that unlocks the image's encryption (qcow2's
    /// `encrypt.key-secret`).
    pub key_secret: Option<String>,
}

/// Opens and creates what an image names: the callback a format gets from
/// the layer above, so that formats never depend on how names are opened.
pub trait Opener {
    /// A backing image, by its name as combined with the image's own
    /// (`path_combine`), read-only.
    fn open_backing(&self, name: &str, format: Option<&str>) -> Result<Arc<dyn BlockDriver>>;
    /// Byte storage by name (an external data file).
    fn open_storage(&self, name: &str, writable: bool) -> Result<Arc<dyn Storage>>;
    /// Creates empty byte storage by name with the storage's `-o` options.
    fn create_storage(&self, name: &str, options: &Options) -> Result<()>;
    /// Removes storage created by `create_storage` after a failed create.
    fn remove_storage(&self, name: &str);
}
