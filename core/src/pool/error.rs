//! The errors of [`Pool`](super::Pool).

use std::time::Duration;

/// Why a pool call, or one of its tasks, failed.
///
/// The same type describes both kinds of failure: errors of the call itself (the pool is closed,
/// an argument cannot be serialised, a timeout while waiting) and errors of one task (it
/// panicked, its worker died, it ran past its deadline). Per-task errors are kept per item by
/// [`Pool::map_results`](super::Pool::map_results) and
/// [`MapResult::get_results`](super::MapResult::get_results).
///
/// # Example
/// ```
/// use multiproc::pool::{Pool, PoolError};
///
/// assert!(matches!(Pool::new(0), Err(PoolError::InvalidProcesses)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// A pool needs at least one worker process.
    #[error("a pool needs at least one worker process (processes must be >= 1)")]
    InvalidProcesses,
    /// A chunk size of zero was given.
    #[error("the chunk size must be at least 1")]
    InvalidChunksize,
    /// `maxtasksperchild(0)` was given.
    #[error("maxtasksperchild must be at least 1 (or not set, for workers that live as long as the pool)")]
    InvalidMaxTasks,
    /// Pool workers cannot be started with [`StartMethod::Fork`](crate::StartMethod::Fork).
    #[error(
        "pool workers cannot use StartMethod::Fork (a forked worker would inherit its siblings' pipes); use ForkServer or Spawn"
    )]
    InvalidStartMethod,
    /// The pool was closed (or terminated): it accepts no new tasks.
    #[error("the pool is closed and accepts no new tasks")]
    Closed,
    /// `join` was called before `close` or `terminate`.
    #[error("join() needs close() or terminate() first (the pool is still accepting tasks)")]
    StillRunning,
    /// The pool was terminated (or dropped) before this task finished.
    #[error("the pool was terminated before the task finished")]
    Terminated,
    /// A task argument could not be serialised; nothing was scheduled.
    #[error("a task argument could not be serialised: {0}; nothing was scheduled")]
    Encode(String),
    /// A task (or the initializer) carries more descriptors (Connections, shared-memory
    /// `Array`s and `Value`s) than one message to a worker may carry
    /// ([`MAX_FDS_PER_MSG`](crate::pipe::MAX_FDS_PER_MSG)); nothing was scheduled.
    #[error("a task carries {count} descriptors (Connections, shared-memory objects), more than the {max} one message to a worker may carry; nothing was scheduled")]
    TooManyDescriptors {
        /// How many the task carries.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A worker process (or its pipe) could not be started.
    #[error("a pool worker could not be started: {0}")]
    Start(String),
    /// The initializer failed in a worker; the pool is unusable.
    #[error("the pool's initializer failed in a worker: {0}")]
    InitializerFailed(String),
    /// The task panicked in its worker (the worker survives).
    #[error("the task panicked at {}: {message}", location.as_deref().unwrap_or("an unknown location"))]
    Panicked {
        /// The panic message.
        message: String,
        /// `file:line:column`, when known.
        location: Option<String>,
    },
    /// The task could not run or report (unknown worker, undecodable arguments, a result that
    /// cannot be serialised). Only this task failed; the worker survives.
    #[error("the task failed: {0}")]
    Failed(String),
    /// The task returned a value too large to send back: its encoding (`bytes`; for a chunk of
    /// several tasks, the chunk's report so far) is over the maximum frame size (`max`). Only
    /// this task failed; the worker survives.
    #[error("the task's result is {bytes} bytes, over the maximum frame size of {max} bytes (raise the limit with multiproc::set_max_frame_size before the library's first use, or pass large data through shared memory (multiproc::shm::Array) and send a small value)")]
    ResultTooLarge {
        /// The size of the encoded result.
        bytes: u64,
        /// The maximum frame size in force.
        max: u64,
    },
    /// The task's result arrived but is not a valid encoding of the expected type.
    #[error("the task's result could not be decoded: {0}")]
    Decode(String),
    /// The worker running the task died (killed by a signal, out of memory, exited). A
    /// replacement worker was started.
    #[error("the worker (pid {pid}) running the task died{}", signal.map(|s| format!(" (signal {s})")).unwrap_or_default())]
    WorkerDied {
        /// The worker's pid.
        pid: i32,
        /// The signal that killed it, if it was killed by one.
        signal: Option<i32>,
    },
    /// The task ran past its deadline; its worker was killed and replaced.
    #[error("the task ran past its deadline of {deadline:?}; its worker (pid {pid}) was killed and replaced")]
    TimedOut {
        /// The worker that was killed.
        pid: i32,
        /// The deadline that passed.
        deadline: Duration,
    },
    /// A `_timeout` wait ended before the result was ready (the task keeps running).
    #[error("timed out waiting for the result (the task keeps running)")]
    Timeout,
    /// [`AsyncResult::successful`](super::AsyncResult::successful) was called before the result
    /// was ready.
    #[error("the result is not ready yet")]
    NotReady,
    /// The result was already taken by an earlier `get`.
    #[error("the result was already taken by an earlier get()")]
    ResultTaken,
    /// The MPI backend (feature `mpi`) cannot do this: not launched under MPI, a single rank,
    /// another MPI pool using the ranks, a task that cannot go to another rank (descriptors,
    /// deadlines), or MPI itself failed or is shutting down. The message says which, and what
    /// to do.
    #[error("MPI pool: {0}")]
    Mpi(String),
    /// Interrupted by Ctrl-C (interrupt mode); the pool has been terminated.
    #[error("interrupted by Ctrl-C; the pool was terminated")]
    Interrupted,
}

impl PoolError {
    /// Is this the failure of one task (as opposed to an error of the call or the pool)?
    pub fn is_task_failure(&self) -> bool {
        matches!(
            self,
            PoolError::Panicked { .. }
                | PoolError::Failed(_)
                | PoolError::Decode(_)
                | PoolError::WorkerDied { .. }
                | PoolError::TimedOut { .. }
        )
    }
}
