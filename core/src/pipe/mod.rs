//! Pipes: a direct connection between two processes, with no hub on the path; and [`wait()`].
//!
//! [`Pipe::duplex`] (or [`pipe`]) gives two ends that can both send and receive;
//! [`Pipe::simplex`] gives `(reader, writer)`. Each end is a [`Connection<T>`]. Pass an end to a
//! child as a worker argument: it is *moved* there (its descriptor travels by `SCM_RIGHTS` or
//! inheritance and the parent's copy is dropped), so end of file needs no manual closing.
//!
//! # Protocol
//! A pipe carries frames: a `u32` little-endian length and that many bytes of body (MessagePack
//! for `send`/`recv`, raw for `send_bytes`/`recv_bytes`). Boundaries are exact, empty messages
//! included. A message over the maximum frame size (64 MiB unless changed with
//! [`set_max_frame_size`](crate::set_max_frame_size)) is refused by `send` before anything is
//! written; a peer that announces one gets [`PipeRecvError::TooLarge`] at once instead of a
//! hang.
//!
//! # Transport
//! A pair is a socketpair plus (unless `MULTIPROC_TRANSPORT=socket`) one shared-memory object
//! with a byte ring per direction (128 KiB each). Frames travel in the rings: a `send` to a
//! reader that is awake is a copy, with no system call. The socket stays as the lifeline (end
//! of file when the other end is closed or its process died), the carrier of descriptors, and
//! the doorbell that wakes a reader that sleeps. An end passed to another process takes both
//! descriptors with it (so it counts as two against [`MAX_FDS_PER_MSG`]).
//!
//! # Guarantees
//! - `send` returns once the whole message is in the ring (or the kernel's socket buffer),
//!   memory the other end has mapped: it is received even if the sender dies on the next line.
//! - `recv` returns [`PipeRecvError::Eof`] after the last message once the other end is gone
//!   (dropped, exited, killed). A blocking `recv` in the root returns
//!   [`PipeRecvError::Interrupted`] on Ctrl-C in interrupt mode.
//! - A write to a pipe whose reader is gone is [`PipeSendError::Closed`], never a `SIGPIPE`
//!   (on rings: at once if the reader closed its end or died while waiting in `recv`; if it died
//!   while busy, once the ring is full).
//! - As in Python, two *processes* must not use the same end at the same time (the data may
//!   become corrupted); threads of one process may.
//!
//! Connections travel as worker arguments only: a descriptor cannot ride inside a queue item or
//! a mailbox message (serialising one there is an error that says so).

pub(crate) mod connection;
mod error;
mod wait;

pub use connection::Connection;
pub use error::{PipeRecvError, PipeSendError, WaitError};
pub use wait::{wait, WaitSource, Waitable};

/// The most descriptors one message (or one `send_many` batch) on a [`Connection`] may carry:
/// each shared-memory `Array`/`Value` in a message is one, each `Connection` two on rings (its
/// socket and its ring object; one with `MULTIPROC_TRANSPORT=socket`). Beyond it,
/// `send` fails with [`PipeSendError::TooManyDescriptors`] and writes nothing.
pub const MAX_FDS_PER_MSG: usize = crate::sys::io::MAX_FDS_PER_MSG;

use crate::sys::Errno;

/// Constructors of pipes.
///
/// # Example
/// ```
/// use multiproc::Pipe;
///
/// let (reader, writer) = Pipe::simplex::<String>()?;
/// writer.send(&"hello".to_string())?;
/// assert_eq!(reader.recv()?, "hello");
/// assert!(reader.send(&"no".to_string()).is_err()); // wrong direction
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Pipe;

impl Pipe {
    /// Two connected ends; both can send and receive (Python's `Pipe()`).
    pub fn duplex<T>() -> Result<(Connection<T>, Connection<T>), PipeError> {
        connection::pair(true).map_err(PipeError)
    }

    /// `(reader, writer)`: a one-way pipe (Python's `Pipe(duplex=False)`). Sending on the
    /// reader or receiving on the writer is a `WrongDirection` error.
    pub fn simplex<T>() -> Result<(Connection<T>, Connection<T>), PipeError> {
        connection::pair(false).map_err(PipeError)
    }
}

/// Two connected ends; both can send and receive. The same as [`Pipe::duplex`].
pub fn pipe<T>() -> Result<(Connection<T>, Connection<T>), PipeError> {
    Pipe::duplex()
}

/// The operating system refused to create a pipe (usually: too many open files).
///
/// # Example
/// ```
/// use multiproc::pipe::{pipe, PipeError};
///
/// let made: Result<_, PipeError> = pipe::<u32>();
/// assert!(made.is_ok());
/// ```
#[derive(Debug, thiserror::Error)]
#[error("cannot create a pipe: {0}")]
pub struct PipeError(pub Errno);
