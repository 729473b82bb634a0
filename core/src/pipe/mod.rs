//! Pipes: a direct socketpair between two processes, with no hub on the path; and [`wait()`].
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
//! # Guarantees
//! - `send` returns once the whole message is in the kernel's socket buffer: it is received
//!   even if the sender dies on the next line.
//! - `recv` returns [`PipeRecvError::Eof`] after the last message once the other end is gone
//!   (dropped, exited, killed). A blocking `recv` in the root returns
//!   [`PipeRecvError::Interrupted`] on Ctrl-C in interrupt mode.
//! - A write to a pipe whose reader is gone is [`PipeSendError::Closed`], never a `SIGPIPE`.
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
/// each `Connection` and each shared-memory `Array`/`Value` in a message is one. Beyond it,
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
