//! Errors of the shared-memory types.

use crate::sync::LockError;
use crate::sys::Errno;

/// Why a shared-memory operation failed.
///
/// # Example
/// ```
/// use multiproc::shm::{Array, ShmError};
///
/// let a = Array::<u8>::zeroed(3)?;
/// match a.set(3, 1) {
///     Err(ShmError::IndexOutOfRange { index: 3, len: 3 }) => {}
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), ShmError>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    /// The operating system refused to create, size or map the shared memory (out of memory,
    /// too many open descriptors, or a size the system does not allow).
    #[error("the operating system refused to create or map shared memory: {0}")]
    Os(Errno),
    /// The requested size does not fit in memory (`len * size_of::<T>()` overflows).
    #[error("a shared array of {len} elements of {elem_size} bytes is too large")]
    TooLarge {
        /// The requested number of elements.
        len: usize,
        /// The size of one element.
        elem_size: usize,
    },
    /// An element index (or a range end) was not below the array's length. Nothing changed.
    #[error("index {index} is out of range for a shared array of length {len}")]
    IndexOutOfRange {
        /// The offending index (or range end).
        index: usize,
        /// The array's length.
        len: usize,
    },
    /// The type's alignment exceeds the page size, so it cannot be placed in shared memory.
    #[error("a type aligned to {0} bytes cannot be placed in shared memory (at most 4096)")]
    Alignment(usize),
    /// The synchronised form could not take or create its lock.
    #[error(transparent)]
    Lock(#[from] LockError),
}

impl From<Errno> for ShmError {
    fn from(e: Errno) -> Self {
        ShmError::Os(e)
    }
}
