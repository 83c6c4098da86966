//! One error type for the whole crate: a stable kind, context (the message,
//! which names the path and operation in QEMU's words, and the guest offset
//! where one applies) and the underlying cause. Its text is the qemu-img
//! message for the same failure, so the binary prints it unchanged.

use std::fmt;
use std::io;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// An operating-system or transport failure.
    Io,
    /// A file, pool, image or snapshot that does not exist.
    NotFound,
    /// Already exists (an image or snapshot name).
    AlreadyExists,
    /// The bytes are not the format they were claimed or probed to be.
    InvalidFormat,
    /// A valid image using a feature this build does not implement.
    UnsupportedFeature,
    /// The driver cannot do this operation at all (e.g. snapshots on raw).
    Unsupported,
    /// Metadata that contradicts itself.
    CorruptImage,
    /// An access beyond the end of the image.
    OutOfBounds,
    /// A bad option, size or name given by the user.
    InvalidArgument,
    /// Held by another client (a lock, an image in use).
    Busy,
    /// Not allowed (permissions, read-only images, protected block 0).
    PermissionDenied,
}

#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    offset: Option<u64>,
    source: Option<io::Error>,
    /// QEMU's `error_append_hint`: text printed after the message line,
    /// as it is (no newline added).
    hint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            offset: None,
            source: None,
            hint: None,
        }
    }

    /// An I/O failure, worded as QEMU words it: "<what>: <strerror>".
    pub fn io(what: impl fmt::Display, err: io::Error) -> Self {
        let kind = match err.kind() {
            io::ErrorKind::NotFound => ErrorKind::NotFound,
            io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
            io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            _ => ErrorKind::Io,
        };
        Error {
            kind,
            message: format!("{what}: {}", strerror(&err)),
            offset: None,
            source: Some(err),
            hint: None,
        }
    }

    /// An errno alone: its strerror text, for callers to prepend context to.
    pub fn os(kind: ErrorKind, errno: i32) -> Self {
        let err = io::Error::from_raw_os_error(errno);
        Error {
            kind,
            message: strerror(&err),
            offset: None,
            source: Some(err),
            hint: None,
        }
    }

    /// An error carrying an errno, worded "<what>: <strerror(errno)>".
    pub fn errno(kind: ErrorKind, what: impl fmt::Display, errno: i32) -> Self {
        Error::os(kind, errno).prepend(what)
    }

    /// The bare "Operation not supported" (ENOTSUP) that callers prepend to.
    pub fn not_supported() -> Self {
        Error::os(ErrorKind::Unsupported, libc::ENOTSUP)
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unsupported, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    pub fn corrupt(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::CorruptImage, message)
    }

    pub fn with_offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// Puts `prefix: ` before the message, as QEMU's error_prepend does.
    pub fn prepend(mut self, prefix: impl fmt::Display) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }

    /// Appends to the hint, as QEMU's `error_append_hint` does.
    pub fn append_hint(mut self, text: &str) -> Self {
        self.hint.get_or_insert_default().push_str(text);
        self
    }

    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn offset(&self) -> Option<u64> {
        self.offset
    }

    /// The errno this error corresponds to, for messages that print one.
    pub fn errno_value(&self) -> i32 {
        if let Some(code) = self.source.as_ref().and_then(|e| e.raw_os_error()) {
            return code;
        }
        match self.kind {
            ErrorKind::NotFound => libc::ENOENT,
            ErrorKind::AlreadyExists => libc::EEXIST,
            ErrorKind::Unsupported | ErrorKind::UnsupportedFeature => libc::ENOTSUP,
            ErrorKind::OutOfBounds | ErrorKind::InvalidArgument | ErrorKind::InvalidFormat => {
                libc::EINVAL
            }
            ErrorKind::Busy => libc::EBUSY,
            ErrorKind::PermissionDenied => libc::EPERM,
            ErrorKind::CorruptImage | ErrorKind::Io => libc::EIO,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

/// The C library's text for an errno, without Rust's " (os error N)".
pub fn strerror(err: &io::Error) -> String {
    let text = err.to_string();
    match (err.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(cut)) => text[..cut].to_string(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_read_like_qemu() {
        let e = Error::io(
            "Could not open 'x'",
            io::Error::from_raw_os_error(libc::ENOENT),
        )
        .with_offset(512);
        assert_eq!(
            e.to_string(),
            "Could not open 'x': No such file or directory"
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.errno_value(), libc::ENOENT);
        assert_eq!(e.offset(), Some(512));
    }

    #[test]
    fn prepend_builds_qemu_chains() {
        let e = Error::invalid("Image is not in qcow2 format").prepend("Could not open 'a'");
        assert_eq!(
            e.to_string(),
            "Could not open 'a': Image is not in qcow2 format"
        );
    }
}
