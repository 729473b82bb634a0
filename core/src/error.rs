//! Error types: one enum per family of operations. Each message says what happened and, where
//! there is something to do about it, what to do.

/// An OS error number (from `nix`), as carried by [`CallError::Io`] and other I/O failures.
pub use crate::sys::Errno;
/// The hub's answer when it refuses or cannot complete a call (carried by [`CallError::Hub`]).
pub use crate::wire::proto::HubError;
/// Why a message could not be framed (carried by [`CallError::Encode`]).
pub use crate::wire::FrameError;

/// A failure in talking to the hub. Usually wrapped by an operation's own error type.
///
/// # Example
/// ```
/// use multiproc::CallError;
///
/// // Most operations wrap a CallError in their own error type; `is_timeout` and
/// // `is_interrupted` tell the two answers a caller usually handles.
/// let r: Result<(), CallError> = multiproc::active_children().map(|_| ());
/// assert!(r.is_ok());
/// ```
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The hub's connection closed: the root process has exited. A child should exit too.
    #[error("the hub is gone (the root process has exited); nothing more can be coordinated")]
    HubGone,
    /// The hub stopped while the root process kept running, for this reason (a failed `poll`,
    /// or a bug). Nothing more can be coordinated; the program should exit.
    #[error("the hub stopped: {0}; nothing more can be coordinated")]
    HubStopped(String),
    /// The hub did not answer within the operation's deadline plus a generous grace period.
    #[error("the hub did not answer in time; the root process may be stopped or overloaded")]
    HubUnresponsive,
    /// The hub refused or could not complete the call.
    #[error(transparent)]
    Hub(#[from] HubError),
    /// A message could not be encoded (a serialisation failure, or larger than the maximum
    /// frame size).
    #[error("could not encode the message: {0}")]
    Encode(FrameError),
    /// A message would carry more descriptors than one message may (the kernel would drop the
    /// rest). Nothing was sent and the connection is still usable: pass fewer descriptors per
    /// call (for example, several smaller arguments or messages).
    #[error("{count} descriptors in one message, more than the {max} one message may carry; nothing was sent (pass fewer per call)")]
    TooManyDescriptors {
        /// How many the message would have carried.
        count: usize,
        /// The most one message may carry.
        max: usize,
    },
    /// The hub sent something this process does not understand (version mismatch or bug).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The socket failed.
    #[error("I/O error talking to the hub: {0}")]
    Io(Errno),
    /// This form of the operation is not available for this handle (the message says which
    /// form to use instead).
    #[error("{0}")]
    Unsupported(&'static str),
}

impl CallError {
    /// Is this the hub answering `Timeout`?
    pub fn is_timeout(&self) -> bool {
        matches!(self, CallError::Hub(HubError::Timeout))
    }
    /// Is this the hub answering `Interrupted` (Ctrl-C in interrupt mode)?
    pub fn is_interrupted(&self) -> bool {
        matches!(self, CallError::Hub(HubError::Interrupted))
    }
}

/// Why a process could not be started or signalled.
///
/// # Example
/// ```
/// use multiproc::{Process, ProcessError, Task};
///
/// struct Refuses;
/// impl serde::Serialize for Refuses {
///     fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
///         Err(serde::ser::Error::custom("no"))
///     }
/// }
/// let task: Task<()> = multiproc::__private::make_task("some::worker", &(Refuses,));
/// match Process::new(task).start() {
///     Err(ProcessError::Encode(why)) => assert!(why.contains("no")),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The task's arguments could not be serialised. Nothing was started.
    #[error("the task's arguments could not be serialised: {0}")]
    Encode(String),
    /// The current process is daemonic, and daemonic processes may not have children (as in
    /// Python). Start the children from a non-daemonic process.
    #[error("{0}")]
    Daemonic(String),
    /// The operating system refused (fork, exec, socket or signal failure).
    #[error("the operating system refused: {0}")]
    Os(String),
    /// `start_timeout`: the child could not be created in time (the fork server is busy or
    /// stopped). Nothing was started.
    #[error("timed out waiting for the fork server to create the child; nothing was started")]
    Timeout,
    /// The hub could not be reached.
    #[error(transparent)]
    Call(CallError),
}

impl From<CallError> for ProcessError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Hub(HubError::Invalid(m)) if m.contains("daemonic") => ProcessError::Daemonic(m),
            CallError::Hub(HubError::Os(m)) => ProcessError::Os(m),
            CallError::Encode(e) => ProcessError::Encode(e.to_string()),
            e if e.is_timeout() => ProcessError::Timeout,
            e => ProcessError::Call(e),
        }
    }
}

/// Why [`Process::close`](crate::Process::close) refused; the process handle is handed back.
///
/// Python's `close()` raises `ValueError: Cannot close a process while it is still running`;
/// here the handle comes back in the error, so that the caller can `join` or `terminate` it and
/// close it again.
///
/// # Example
/// ```
/// use multiproc::{CloseError, Process};
///
/// #[multiproc::worker]
/// fn nap() {
///     std::thread::sleep(std::time::Duration::from_secs(5));
/// }
///
/// let p = Process::new(nap()).start()?;
/// let mut p = match p.close() {
///     Err(CloseError::Running(p)) => p, // still running: we get it back
///     other => panic!("{other:?}"),
/// };
/// p.terminate()?;
/// let _ = p.join();
/// p.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(thiserror::Error)]
pub enum CloseError<T> {
    /// The process is still running: `join()` or `terminate()` it first.
    #[error("cannot close a process while it is still running; join() or terminate() it first")]
    Running(crate::Process<T>),
    /// The hub could not be asked how the process ended.
    #[error("cannot close the process: {error}")]
    Call {
        /// Why the hub could not answer.
        error: CallError,
        /// The process handle, unchanged.
        process: crate::Process<T>,
    },
}

impl<T> CloseError<T> {
    /// The process handle that could not be closed.
    pub fn into_process(self) -> crate::Process<T> {
        match self {
            CloseError::Running(p) | CloseError::Call { process: p, .. } => p,
        }
    }
}

impl<T> std::fmt::Debug for CloseError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseError::Running(p) => f.debug_tuple("Running").field(p).finish(),
            CloseError::Call { error, process } => f
                .debug_struct("Call")
                .field("error", error)
                .field("process", process)
                .finish(),
        }
    }
}

/// Why [`Process::join`](crate::Process::join) did not return the worker's value.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use multiproc::{JoinError, Process};
///
/// #[multiproc::worker]
/// fn nap() {
///     std::thread::sleep(Duration::from_millis(300));
/// }
///
/// let mut p = Process::new(nap()).start()?;
/// assert!(matches!(p.try_join(), Err(JoinError::Running)));
/// assert!(matches!(p.join_timeout(Duration::from_millis(10)), Err(JoinError::Timeout)));
/// p.join()?;
/// assert!(matches!(p.join(), Err(JoinError::ResultTaken)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The worker panicked. The message and location are the child's.
    #[error("the child panicked at {}: {message}", location.as_deref().unwrap_or("an unknown location"))]
    Panicked {
        /// The panic message.
        message: String,
        /// `file:line:column`, when known.
        location: Option<String>,
    },
    /// The child exited with this code without returning a value (it called `exit`).
    #[error("the child exited with code {0} before returning a value")]
    Exited(i32),
    /// The child was killed by this signal (`exitcode()` is its negation, as in Python).
    #[error("the child was killed by signal {0}")]
    Signaled(i32),
    /// The child could not run its worker (unknown worker name, or undecodable arguments).
    #[error("the child could not run its worker: {0}")]
    Failed(String),
    /// The worker returned a value too large to send back: its encoding (`bytes`) is over the
    /// maximum frame size (`max`). The child exited with code 1.
    #[error("the child's result is {bytes} bytes, over the maximum frame size of {max} bytes (raise the limit with multiproc::set_max_frame_size before the library's first use, or pass large data through shared memory (multiproc::shm::Array) and send a small value)")]
    ResultTooLarge {
        /// The size of the encoded result.
        bytes: u64,
        /// The maximum frame size in force.
        max: u64,
    },
    /// The worker's value could not be decoded as the expected type.
    #[error("the child's result could not be decoded: {0}")]
    Decode(String),
    /// `join_timeout`: the child is still running.
    #[error("timed out; the child is still running")]
    Timeout,
    /// `try_join`: the child is still running.
    #[error("the child is still running")]
    Running,
    /// Interrupted by Ctrl-C (interrupt mode); the child may still be running.
    #[error("interrupted by Ctrl-C")]
    Interrupted,
    /// The value was already returned by an earlier join. The exit status stays available
    /// through `exit_status()`.
    #[error("the result was already taken by an earlier join")]
    ResultTaken,
    /// The hub could not be reached.
    #[error(transparent)]
    Call(CallError),
}

impl From<CallError> for JoinError {
    fn from(e: CallError) -> Self {
        if e.is_interrupted() {
            JoinError::Interrupted
        } else if e.is_timeout() {
            JoinError::Timeout
        } else {
            JoinError::Call(e)
        }
    }
}

/// Why a message could not be sent to a mailbox.
///
/// # Example
/// ```
/// use multiproc::SendError;
///
/// struct Refuses;
/// impl serde::Serialize for Refuses {
///     fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
///         Err(serde::ser::Error::custom("no"))
///     }
/// }
/// let me = multiproc::current_process().addr::<Refuses>();
/// assert!(matches!(me.send(&Refuses), Err(SendError::Encode(_))));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The message could not be serialised, or is larger than the maximum frame size.
    #[error("the message could not be encoded: {0}")]
    Encode(String),
    /// `try_send`/`send_timeout`: the receiver's mailbox held more than
    /// `HubLimits::max_mailbox_bytes` until the deadline; the message was not sent.
    #[error("the receiver's mailbox is full (HubLimits::max_mailbox_bytes); the message was not sent")]
    Full,
    /// A send by name ([`Addr::named`](crate::Addr::named)): no live process is registered
    /// under the name now (the message was not sent). Retry later, or watch for the
    /// registration with [`whereis`](crate::whereis).
    #[error("{0}; the message was not sent")]
    NoProc(String),

    /// The message carries descriptors (a `Connection`, shared memory) and the hub already
    /// holds `HubLimits::max_held_fds` of them for queued items and mail; the message was not
    /// sent. Receive some of that mail (or take the items out of queues) and send again.
    #[error("the message was not sent: {0}")]
    TooManyHeldDescriptors(String),
    /// The hub could not be reached.
    #[error(transparent)]
    Call(CallError),
}

impl From<CallError> for SendError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Encode(e) => SendError::Encode(e.to_string()),
            CallError::Hub(HubError::Limit(m)) if m.contains(crate::wire::proto::HELD_FDS_LIMIT) => {
                SendError::TooManyHeldDescriptors(m)
            }
            CallError::Hub(HubError::Timeout) | CallError::Hub(HubError::Limit(_)) => SendError::Full,
            CallError::Hub(HubError::NoProc(m)) => SendError::NoProc(m),
            e => SendError::Call(e),
        }
    }
}

/// Why a message could not be received.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use multiproc::{mailbox, RecvError};
///
/// let inbox = mailbox::<u32>();
/// assert!(matches!(inbox.try_recv(), Err(RecvError::Empty)));
/// assert!(matches!(inbox.recv_timeout(Duration::from_millis(10)), Err(RecvError::Timeout)));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    /// `try_recv`: the mailbox is empty.
    #[error("the mailbox is empty")]
    Empty,
    /// `recv_timeout`: nothing arrived in time.
    #[error("timed out waiting for a message")]
    Timeout,
    /// A message arrived but is not of the mailbox's type. It has been consumed.
    #[error("a message could not be decoded as the mailbox's type: {0}")]
    Decode(String),
    /// Interrupted by Ctrl-C (interrupt mode).
    #[error("interrupted by Ctrl-C")]
    Interrupted,
    /// The hub could not be reached.
    #[error(transparent)]
    Call(CallError),
}

impl From<CallError> for RecvError {
    fn from(e: CallError) -> Self {
        if e.is_interrupted() {
            RecvError::Interrupted
        } else if e.is_timeout() {
            RecvError::Timeout
        } else {
            RecvError::Call(e)
        }
    }
}

/// Why an [`ask`](crate::Addr::ask) got no answer.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use multiproc::{AskError, Process, ReplyTo};
///
/// #[multiproc::worker]
/// fn silent() {}
///
/// // A process that ends without answering: the ask fails instead of hanging.
/// let mut p = Process::new(silent()).start()?;
/// let r: Result<u32, AskError> = p.addr::<ReplyTo<u32>>().ask_timeout(|reply| reply, Duration::from_secs(10));
/// assert!(matches!(r, Err(AskError::Gone) | Err(AskError::Timeout)));
/// p.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// The question could not be sent.
    #[error(transparent)]
    Send(#[from] SendError),
    /// No answer in time.
    #[error("timed out waiting for the answer")]
    Timeout,
    /// The asked process ended without answering.
    #[error("the asked process ended without answering")]
    Gone,
    /// An ask by name ([`Addr::named`](crate::Addr::named)): no live process is registered
    /// under the name now; nothing was sent. Retry later.
    #[error("{0}; nothing was sent")]
    NoProc(String),
    /// The answer is not of the expected type.
    #[error("the answer could not be decoded: {0}")]
    Decode(String),
    /// Interrupted by Ctrl-C (interrupt mode).
    #[error("interrupted by Ctrl-C")]
    Interrupted,
    /// The hub could not be reached.
    #[error(transparent)]
    Call(CallError),
}

impl From<CallError> for AskError {
    fn from(e: CallError) -> Self {
        match e {
            e if e.is_interrupted() => AskError::Interrupted,
            e if e.is_timeout() => AskError::Timeout,
            CallError::Hub(HubError::Gone(_)) => AskError::Gone,
            CallError::Hub(HubError::NoProc(m)) => AskError::NoProc(m),
            e => AskError::Call(e),
        }
    }
}

/// Why [`set_start_method`](crate::set_start_method) refused.
///
/// # Example
/// ```
/// use multiproc::{set_start_method, StartMethod, StartMethodError};
///
/// set_start_method(StartMethod::Spawn, false)?;
/// let again = set_start_method(StartMethod::Fork, false);
/// assert!(matches!(again, Err(StartMethodError::AlreadySet { current: StartMethod::Spawn })));
/// set_start_method(StartMethod::ForkServer, true)?; // force=True
/// # Ok::<(), StartMethodError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartMethodError {
    /// The start method was already set, by an earlier call or by use (a process or pool
    /// started with the default, or `get_start_method()`), as Python's "context has already been
    /// set". Pass `force = true` to change it anyway, or use `get_context(Some(method))` for
    /// the processes that need another method.
    #[error("the start method has already been set (to {current:?}); pass force = true to change it, or use get_context(Some(method))")]
    AlreadySet {
        /// The start method in force.
        current: crate::StartMethod,
    },
}
