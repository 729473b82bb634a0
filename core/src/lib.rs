//! # multiproc
//!
//! Python's `multiprocessing`, for Rust, built the way an actor system would build it.
//!
//! - Every OS process is an **actor with a mailbox**. Processes talk to a **hub** (a `mio`
//!   event loop on one thread of the root process) over Unix domain sockets.
//! - `#[worker]` turns a function (or a type with `fn run(self)`) into a named entry point that
//!   a child process runs. No `if __name__ == "__main__"` guard, no init call: a child diverts
//!   to its worker before `main` runs, in programs, examples, tests and benches alike.
//! - Coordination objects are message protocols served by the hub, and the hub sees every
//!   connection close, so it cleans up after processes that die.
//!
//! ## A first program
//! ```
//! use multiproc::{mailbox, Process};
//!
//! #[multiproc::worker]
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! #[multiproc::worker]
//! fn greeter() -> String {
//!     let name: String = mailbox().recv().unwrap();
//!     format!("hello, {name}")
//! }
//!
//! // A worker call is a task; a process runs it; join returns its value.
//! let mut p = Process::new(square(12)).start()?;
//! assert_eq!(p.join()?, 144);
//!
//! // Processes are actors: send to a child's mailbox.
//! let mut g = Process::new(greeter()).name("greeter").start()?;
//! g.send(&"world".to_string())?;
//! assert_eq!(g.join()?, "hello, world");
//! assert_eq!(g.exitcode(), Some(0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Guarantees
//! - **No orphans**: when the root process dies, even by SIGKILL, every descendant dies
//!   (`PR_SET_PDEATHSIG`, plus the hub connection as a lifeline).
//! - **No zombies**: the hub reaps every child as it exits.
//! - **Exact cause of death**: [`ExitStatus`] tells an exit code, a signal, or a panic with its
//!   message and location; [`Process::exitcode`] follows Python (`-N` for signal `N`).
//! - **Every blocking call has `try_` and `_timeout` forms**, and deadlines are enforced by the
//!   hub, so an answer and a timeout can never both happen.
//! - **Garbage is contained**: a connection that sends a malformed or oversized frame is
//!   dropped; the hub and every other process carry on.
//!
//! See `ARCHITECTURE.md` for the layers and the path of one call.
//!
//! ## Ctrl-C
//! By default Ctrl-C ends the whole program, as for any Rust program: every process in the
//! terminal's process group gets SIGINT, and anything left is killed when the root dies.
//! Call [`catch_interrupts`] once to opt in to cleaning up instead: then a root thread blocked in
//! a multiproc call (`join`, `recv`, ...) gets an `Interrupted` error. If you already handle
//! SIGINT yourself (for example with the `ctrlc` crate), do not call `catch_interrupts`; call
//! [`interrupt_blocked_calls`] from your handler instead. Code that blocks on something of its
//! own can end the same way with an [`InterruptWatch`].

#![warn(missing_docs)]

// Lets `#[multiproc::worker]` (whose expansion names `::multiproc`) be used inside this crate:
// the pool's worker loop is a library-defined worker.
extern crate self as multiproc;

pub mod error;
mod hub;
mod mailbox;
pub mod manager;
pub mod pipe;
pub mod pool;
mod process;
pub mod queue;
pub mod runtime;
pub mod shm;
pub mod sync;
pub mod sys;
pub mod wire;

pub use error::{AskError, CallError, JoinError, ProcessError, RecvError, SendError};
pub use mailbox::{mailbox, Addr, Mailbox, ReplyTo};
pub use multiproc_macros::worker;
pub use process::{
    active_children, cpu_count, current_process, get_start_method, parent_process, set_start_method, ExitStatus,
    IntoTask, Process, ProcessBuilder, ProcessInfo, StartMethod, Task,
};
pub use runtime::{set_max_frame_size, InterruptWatch};
pub use sync::{
    Barrier, BarrierError, BoundedSemaphore, Condition, ConditionError, Event, EventError, Lock, LockError, RLock,
    RLockError, Semaphore, SemaphoreError,
};

// Queues and pipes (issue 4).
pub use pipe::{
    pipe, wait, Connection, Pipe, PipeError, PipeRecvError, PipeSendError, WaitError, WaitSource, Waitable,
};
pub use queue::{GetError, JoinableQueue, PutError, Queue, QueueError, SimpleQueue};

// Manager and shared memory (issue 6).
pub use manager::{Dict, List, Manager, ManagerError, Namespace, ValueProxy};
pub use shm::{Array, Pod, RawArray, RawValue, ShmError, Value};

// Pools (issue 5).
pub use pool::{AsyncResult, Callbacks, IMap, MapResult, Pool, PoolBuilder, PoolError, StarFn};

/// Opts in to interrupt mode (root process only; a no-op elsewhere): from now on, SIGINT
/// (Ctrl-C) makes every root thread blocked in a multiproc call return an `Interrupted` error
/// instead of killing the program. Children still receive the terminal's SIGINT and end as
/// usual. Do not combine with another SIGINT handler (such as the `ctrlc` crate's): the last
/// one installed wins; use [`interrupt_blocked_calls`] from that handler instead.
pub fn catch_interrupts() -> Result<(), CallError> {
    runtime::interrupt::catch()
}

/// Makes every root thread currently blocked in a multiproc call return an `Interrupted`
/// error, as if Ctrl-C had arrived in interrupt mode. For programs with their own SIGINT
/// handling (call it from the `ctrlc` handler). A no-op outside the root process.
pub fn interrupt_blocked_calls() -> Result<(), CallError> {
    runtime::interrupt::interrupt_all()
}

/// Items used by the code that `#[worker]` generates. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use linkme;
    pub use serde;

    pub use crate::runtime::registry::{RunError, WorkerEntry, WORKERS};
    use crate::Task;

    /// Builds a task (the constructor that `#[worker]` generates calls this).
    pub fn make_task<R, A: serde::Serialize + ?Sized>(name: &'static str, args: &A) -> Task<R> {
        Task::from_parts(name, args)
    }

    /// Decodes a worker's arguments in the child.
    pub fn decode_args<A: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<A, RunError> {
        rmp_serde::from_slice(bytes).map_err(|e| RunError(format!("the worker's arguments could not be decoded: {e}")))
    }

    /// Records whether the worker's value is an `Err` (the child then exits with code 1).
    pub fn note_returned(is_err: bool) {
        crate::runtime::bootstrap::note_returned(is_err)
    }

    /// Wraps a worker's value to ask whether it is a `Result::Err`, by autoref
    /// specialisation: `(&Probe(&v)).multiproc_is_err()` picks [`ErrProbe`] for a `Result` and
    /// [`AnyProbe`] (always false) for anything else.
    pub struct Probe<'a, T>(pub &'a T);

    /// See [`Probe`]: the `Result` case.
    pub trait ErrProbe {
        /// Is the value an `Err`?
        fn multiproc_is_err(&self) -> bool;
    }
    impl<T, E> ErrProbe for Probe<'_, Result<T, E>> {
        fn multiproc_is_err(&self) -> bool {
            self.0.is_err()
        }
    }

    /// See [`Probe`]: every other type.
    pub trait AnyProbe {
        /// Always false.
        fn multiproc_is_err(&self) -> bool;
    }
    impl<T> AnyProbe for &Probe<'_, T> {
        fn multiproc_is_err(&self) -> bool {
            false
        }
    }

    /// Encodes a worker's result in the child.
    pub fn encode_result<R: serde::Serialize + ?Sized>(r: &R) -> Result<Vec<u8>, RunError> {
        rmp_serde::to_vec(r).map_err(|e| RunError(format!("the worker's result could not be serialised: {e}")))
    }

    /// A type that can be a worker argument.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be a worker argument: it is sent to another process, so it must implement `serde::Serialize` and `serde::de::DeserializeOwned`",
        label = "not serialisable",
        note = "derive them with `#[derive(serde::Serialize, serde::Deserialize)]`, or pass a value that can be rebuilt in the child"
    )]
    pub trait WorkerArg {}
    impl<T: serde::Serialize + serde::de::DeserializeOwned> WorkerArg for T {}

    /// A type that can be a worker's result.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be a worker's return type: it is sent back to the parent, so it must implement `serde::Serialize` and `serde::de::DeserializeOwned`",
        label = "not serialisable",
        note = "derive them with `#[derive(serde::Serialize, serde::Deserialize)]`"
    )]
    pub trait WorkerResult {}
    impl<T: serde::Serialize + serde::de::DeserializeOwned> WorkerResult for T {}

    /// Finds a registered worker by name (used by pool workers, which run many tasks in one
    /// process).
    pub fn find_worker(name: &str) -> Result<&'static WorkerEntry, RunError> {
        crate::runtime::registry::find(name)
    }

    /// Runs a registered worker on encoded arguments in this process, catching a panic: the
    /// inner result is the worker's encoded value or why it could not run; the outer error is a
    /// panic's `(message, location)`. Used by pool workers.
    pub fn run_caught(entry: &WorkerEntry, args: &[u8]) -> Result<Result<Vec<u8>, RunError>, (String, Option<String>)> {
        let r = crate::runtime::bootstrap::catch(|| (entry.run)(args)).map_err(|r| (r.message, r.location));
        // A pool worker's own exit code does not depend on its tasks' values.
        crate::runtime::bootstrap::clear_returned();
        r
    }

    /// Compile-time check used by `#[worker]`.
    pub fn assert_arg<T: WorkerArg>() {}
    /// Compile-time check used by `#[worker]`.
    pub fn assert_result<T: WorkerResult>() {}
}
