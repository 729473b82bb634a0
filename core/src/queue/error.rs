//! Errors of the queues. An error from a put hands the item back.

use crate::error::CallError;

/// Why an item was not put. Every variant hands the item back ([`into_inner`](Self::into_inner)).
///
/// # Example
/// ```
/// use multiproc::{PutError, Queue};
///
/// let q = Queue::bounded(1)?;
/// q.put(1u32)?;
/// match q.try_put(2) {
///     Err(PutError::Full(item)) => assert_eq!(item, 2), // the item is handed back
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(thiserror::Error)]
pub enum PutError<T> {
    /// The queue is bounded and stayed full (at once for `try_put`, for the whole timeout for
    /// `put_timeout`), as Python's `queue.Full`.
    #[error("the queue is full")]
    Full(T),
    /// The queue has been closed; nothing more can be put.
    #[error("the queue is closed")]
    Closed(T),
    /// The item could not be serialised (or is larger than the maximum frame size). Nothing was
    /// sent, and the queue is still usable.
    #[error("the item could not be serialised: {1}; nothing was put")]
    Encode(T, String),
    /// Interrupted by Ctrl-C (interrupt mode) while waiting for room; the item was not put.
    #[error("interrupted by Ctrl-C; the item was not put")]
    Interrupted(T),
    /// The hub could not be reached.
    #[error("the item was not put: {1}")]
    Call(T, CallError),
}

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(t)
            | PutError::Closed(t)
            | PutError::Encode(t, _)
            | PutError::Interrupted(t)
            | PutError::Call(t, _) => t,
        }
    }

    /// Is this [`PutError::Full`]?
    pub fn is_full(&self) -> bool {
        matches!(self, PutError::Full(_))
    }

    /// Is this [`PutError::Closed`]?
    pub fn is_closed(&self) -> bool {
        matches!(self, PutError::Closed(_))
    }

    /// The same error with the item transformed (used by the batch forms).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> PutError<U> {
        match self {
            PutError::Full(t) => PutError::Full(f(t)),
            PutError::Closed(t) => PutError::Closed(f(t)),
            PutError::Encode(t, m) => PutError::Encode(f(t), m),
            PutError::Interrupted(t) => PutError::Interrupted(f(t)),
            PutError::Call(t, e) => PutError::Call(f(t), e),
        }
    }
}

// Like crossbeam-channel's errors: no `T: Debug` bound, so any item type works with `?`.
impl<T> std::fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("Full(..)"),
            PutError::Closed(_) => f.write_str("Closed(..)"),
            PutError::Encode(_, m) => f.debug_tuple("Encode").field(&"..").field(m).finish(),
            PutError::Interrupted(_) => f.write_str("Interrupted(..)"),
            PutError::Call(_, e) => f.debug_tuple("Call").field(&"..").field(e).finish(),
        }
    }
}

/// Why no item was taken.
///
/// # Example
/// ```
/// use multiproc::{GetError, Queue};
///
/// let q: Queue<u32> = Queue::new()?;
/// assert!(matches!(q.try_get(), Err(GetError::Empty)));
/// q.close()?;
/// assert!(matches!(q.try_get(), Err(GetError::Closed)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum GetError {
    /// The queue is empty: at once for `try_get`, for the whole timeout for `get_timeout`
    /// (whatever the timeout, zero included), as Python's `queue.Empty` for both.
    #[error("the queue is empty")]
    Empty,
    /// The queue has been closed.
    #[error("the queue is closed")]
    Closed,
    /// Interrupted by Ctrl-C (interrupt mode).
    #[error("interrupted by Ctrl-C")]
    Interrupted,
    /// The item is not a valid encoding of the queue's item type (a process put another type).
    /// It has been consumed.
    #[error("the item could not be decoded: {0}")]
    Decode(String),
    /// The hub could not be reached.
    #[error(transparent)]
    Call(CallError),
}

impl GetError {
    /// Is this [`GetError::Empty`] (Python's `queue.Empty`, from `get_nowait` or a `get` that
    /// timed out)?
    pub fn is_empty(&self) -> bool {
        matches!(self, GetError::Empty)
    }
}

/// Why another queue operation failed (creating, sizing, closing, `task_done`, `join`).
///
/// # Example
/// ```
/// use multiproc::{JoinableQueue, QueueError};
///
/// let q: JoinableQueue<u32> = JoinableQueue::new()?;
/// assert!(matches!(q.task_done(), Err(QueueError::TooManyTaskDone)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// `join_timeout`: unfinished items remain.
    #[error("timed out: unfinished items remain")]
    Timeout,
    /// Interrupted by Ctrl-C (interrupt mode).
    #[error("interrupted by Ctrl-C")]
    Interrupted,
    /// `task_done()` was called more times than items were taken (Python's `ValueError`). The
    /// count is unchanged.
    #[error("task_done() called more times than items were taken from the queue")]
    TooManyTaskDone,
    /// The hub could not be reached.
    #[error(transparent)]
    Call(CallError),
}

impl From<CallError> for QueueError {
    fn from(e: CallError) -> Self {
        if e.is_interrupted() {
            QueueError::Interrupted
        } else if e.is_timeout() {
            QueueError::Timeout
        } else {
            QueueError::Call(e)
        }
    }
}
