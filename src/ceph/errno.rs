//! The errno codes RADOS and object classes return, as error kinds: the
//! RBD layer reacts to the kind (NotFound, AlreadyExists, Busy ...) and
//! messages keep the errno's text.

use crate::error::{Error, ErrorKind};

/// An error worded "<what>: <strerror(errno)>", of the kind the errno means.
pub fn errno_error(errno: i32, what: String) -> Error {
    let kind = match errno {
        libc::ENOENT => ErrorKind::NotFound,
        libc::EEXIST => ErrorKind::AlreadyExists,
        libc::EBUSY => ErrorKind::Busy,
        libc::EPERM | libc::EACCES | libc::EROFS => ErrorKind::PermissionDenied,
        libc::EINVAL | libc::ERANGE => ErrorKind::InvalidArgument,
        libc::EOPNOTSUPP => ErrorKind::Unsupported,
        _ => ErrorKind::Io,
    };
    Error::errno(kind, what, errno)
}
