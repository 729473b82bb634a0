//! Errors of pipe [`Connection`](super::Connection)s and of [`wait`](super::wait()).

use crate::sys::Errno;

/// Why a message could not be sent on a [`Connection`](super::Connection).
///
/// # Example
/// ```
/// use multiproc::pipe::{Pipe, PipeSendError};
///
/// let (reader, _writer) = Pipe::simplex::<u32>()?;
/// assert!(matches!(reader.send(&1), Err(PipeSendError::WrongDirection)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum PipeSendError {
    /// The value could not be serialised. Nothing was written; the connection is still usable.
    #[error("the message could not be serialised: {0}; nothing was sent")]
    Encode(String),
    /// The message is larger than the maximum frame size. Nothing was written; raise the limit
    /// with `multiproc::set_max_frame_size` before first use, or split the message.
    #[error("a message of {len} bytes exceeds the maximum frame size of {max} bytes; nothing was sent (raise the limit with multiproc::set_max_frame_size before the library's first use, or pass large data through shared memory (multiproc::shm::Array) and send a small value)")]
    TooLarge {
        /// The message's size.
        len: usize,
        /// The maximum in force.
        max: usize,
    },
    /// The message carries more descriptors (Connections, shared-memory segments) than one
    /// write may ([`MAX_FDS_PER_MSG`](crate::pipe::MAX_FDS_PER_MSG)). Nothing was written.
    #[error("the message carries {count} descriptors, more than the {max} one message may carry; nothing was sent (send fewer Connections or shared-memory objects per message)")]
    TooManyDescriptors {
        /// How many the message (or batch) carries.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// This end is the reading end of a one-way pipe.
    #[error("this is the reading end of a one-way pipe; send on the writing end")]
    WrongDirection,
    /// The other end has been closed (dropped, or its process ended). On a pipe's rings a
    /// reader that died while busy (not waiting in `recv`) is noticed once the ring is full:
    /// sends before that succeed into memory nobody reads, as writes into a socket buffer do.
    #[error("the other end of the pipe is closed")]
    Closed,
    /// `send_timeout`: the peer did not read in time. If nothing of the message had been
    /// written, nothing was sent and the connection is still usable. If the deadline passed
    /// mid-message (a message larger than the socket buffer, or than the pipe's shared-memory
    /// ring, 128 KiB), the sending direction was shut
    /// down, since the peer could never read the rest: it reads end of file, and later sends
    /// fail with `Closed`.
    #[error("timed out: the other end did not read the message in time")]
    Timeout,
    /// The socket failed.
    #[error("pipe I/O error: {0}")]
    Io(Errno),
    /// The pipe's shared-memory ring is corrupt: the other end wrote garbage into its counters
    /// (a bug or a hostile peer). Only this connection is affected; drop it.
    #[error("{0}; this connection is unusable, drop it")]
    Corrupt(String),
}

/// Why no message was received from a [`Connection`](super::Connection).
///
/// # Example
/// ```
/// use multiproc::pipe::{pipe, PipeRecvError};
///
/// let (a, b) = pipe::<u32>()?;
/// assert!(matches!(a.try_recv(), Err(PipeRecvError::Empty)));
/// b.send(&7)?;
/// drop(b);
/// assert_eq!(a.recv()?, 7); // buffered messages first,
/// assert!(matches!(a.recv(), Err(PipeRecvError::Eof))); // then end of file
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum PipeRecvError {
    /// The other end is closed (dropped, or its process ended) and every message it sent has
    /// been received.
    #[error("end of file: the other end of the pipe is closed and nothing is left to read")]
    Eof,
    /// `try_recv`: no complete message is waiting.
    #[error("no message is waiting")]
    Empty,
    /// `recv_timeout`: no message arrived in time.
    #[error("timed out waiting for a message")]
    Timeout,
    /// Interrupted by Ctrl-C (interrupt mode, root process only).
    #[error("interrupted by Ctrl-C")]
    Interrupted,
    /// This end is the writing end of a one-way pipe.
    #[error("this is the writing end of a one-way pipe; receive on the reading end")]
    WrongDirection,
    /// The message arrived but is not a valid encoding of the expected type. It has been
    /// consumed; the next `recv` reads the next message.
    #[error("the message could not be decoded: {0}")]
    Decode(String),
    /// The peer announced a message larger than this process's maximum frame size. The stream
    /// cannot be resynchronised: the connection is unusable from here on.
    #[error("the peer sent a message of {len} bytes, over the maximum frame size of {max} bytes (raise the limit with multiproc::set_max_frame_size before the library's first use, or pass large data through shared memory (multiproc::shm::Array) and send a small value)")]
    TooLarge {
        /// The announced size.
        len: usize,
        /// The maximum in force.
        max: usize,
    },
    /// The socket failed.
    #[error("pipe I/O error: {0}")]
    Io(Errno),
    /// The pipe's shared-memory ring is corrupt: the other end wrote garbage into its counters
    /// (a bug or a hostile peer). Only this connection is affected; drop it.
    #[error("{0}; this connection is unusable, drop it")]
    Corrupt(String),
}

/// Why [`wait`](super::wait()) failed.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use multiproc::pipe::{pipe, wait, WaitError, Waitable};
///
/// let (a, _b) = pipe::<u32>()?;
/// let objs: Vec<&dyn Waitable> = vec![&a];
/// let ready: Result<Vec<usize>, WaitError> = wait(&objs, Some(Duration::from_millis(10)));
/// assert!(ready?.is_empty()); // nothing was ready in time
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// Interrupted by Ctrl-C (interrupt mode, root process only).
    #[error("interrupted by Ctrl-C")]
    Interrupted,
    /// Polling failed.
    #[error("poll failed: {0}")]
    Io(Errno),
}
