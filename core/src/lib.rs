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

pub mod actor;
// Backends that run pool tasks elsewhere than local processes (feature `mpi`).
#[cfg(feature = "mpi")]
mod backend;
#[cfg(feature = "connection")]
#[cfg_attr(docsrs, doc(cfg(feature = "connection")))]
pub mod connection;
pub mod context;
pub mod error;
mod hub;
mod mailbox;
pub mod manager;
mod names;

pub mod observe;
pub mod pipe;
pub mod pool;
mod process;
pub mod queue;
pub mod runtime;
pub mod shm;
pub mod supervisor;
pub mod sync;
// The `tracing` macros (empty without the `tracing` feature); every layer may use them.
mod trace;
// `sys` (the OS layer) and `wire` (the frame format) are internal. The off-by-default
// `internals` feature makes them reachable, doc-hidden, for tests, benches and fuzz targets
// that write raw frames; it is not a stable API.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod sys;
// Without the feature, what only tests and benches use is dead code here.
#[cfg(not(feature = "internals"))]
#[allow(dead_code, unused_imports)]
mod sys;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod wire;
#[cfg(not(feature = "internals"))]
#[allow(dead_code, unused_imports)]
mod wire;

pub use actor::{Actor, ActorContext, Flow, StopReason};
pub use error::{
    AskError, CallError, CloseError, Errno, FrameError, HubError, JoinError, ProcessError, RecvError, SendError,
    StartMethodError,
};
pub use mailbox::{mailbox, Addr, Incoming, Mailbox, ReplyTo};
/// Makes a function, or a type's `fn run(self)`, the body of a child process.
///
/// A child process is a re-executed copy of the program; `#[worker]` registers the item under
/// its module path and name, so that the child finds it by name, decodes the arguments, runs
/// the body and sends the encoded result back.
///
/// # On a free function
///
/// `#[worker] fn f(args..) -> T` keeps its name, visibility and docs, but now *builds a task*
/// instead of running the body: `f(args..)` returns a [`Task<T>`] (`T` is `()` if there is no
/// return type), which [`Process::new`] and the [`Pool`] run in another process.
///
/// ```
/// use multiproc::{Process, Task};
///
/// /// Squares a number in another process.
/// #[multiproc::worker]
/// pub fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let task: Task<u64> = square(7); // nothing runs yet
/// let mut p = Process::new(task).start()?;
/// assert_eq!(p.join()?, 49);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # On an `impl` block
///
/// Python's "subclass `Process` and override `run()`": the value itself is sent to the child,
/// which calls its `run(self)`. The block is kept as it is, and the type gets [`IntoTask`].
///
/// ```
/// use multiproc::Process;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Countdown {
///     from: u32,
/// }
///
/// #[multiproc::worker]
/// impl Countdown {
///     fn run(self) -> Vec<u32> {
///         (0..=self.from).rev().collect()
///     }
/// }
///
/// let mut p = Process::new(Countdown { from: 3 }).start()?;
/// assert_eq!(p.join()?, [3, 2, 1, 0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # What it accepts
///
/// - A free function that is not generic (no type, lifetime or const parameters, no `where`),
///   not `async`, `const`, `unsafe` or `extern`, and not a method (no `self`).
/// - Arguments with any patterns (`(a, b): (u32, u32)`, `mut x: u64`), whose types are owned
///   (no `&str`, `&[T]` or other references: use `String`, `Vec<T>`), concrete (no
///   `impl Trait`), and implement `serde::Serialize` and `serde::Deserialize`. So must the
///   result type. Handles of multiproc (`Lock`, `Queue`, `Connection`, `shm::Array`, ...) are
///   all valid arguments.
/// - Or an inherent, non-generic `impl` block of a serialisable type with a method
///   `fn run(self)` (or `mut self`) taking nothing else; its other methods are left alone.
/// - No attribute arguments: `#[multiproc::worker]`, not `#[multiproc::worker(..)]`.
///
/// Anything else is a compile error on the offending tokens that says what to write instead;
/// an argument or result type that is not serialisable gives one error, on that type.
///
/// A closure cannot be a worker (it has no name a child could find). To run a closure in a
/// child, use [`Process::fork`], which forks the current process (read [`StartMethod::Fork`]).
#[doc(inline)]
pub use multiproc_macros::worker;
pub use names::{
    demonitor, link, monitor, register, register_pid, signals, trap_exits, unlink, unregister, whereis, Down, Exit,
    ExitReason, MonitorRef, NameError, ProcRef, Signal, Signals,
};

pub use observe::{dump_snapshot, snapshot, Snapshot};
pub use process::{
    active_children, cpu_count, current_process, get_start_method, parent_process, set_start_method, ExitStatus,
    IntoTask, Process, ProcessBuilder, ProcessInfo, StartMethod, Task,
};
pub use runtime::authkey::{authkey, set_authkey, AuthKey};
pub use runtime::{set_hub_limits, set_max_frame_size, HubLimits, InterruptWatch};
pub use supervisor::{ChildSpec, Supervisor};
pub use sync::{
    Barrier, BarrierError, BoundedSemaphore, Condition, ConditionError, Event, EventError, Lock, LockError, RLock,
    RLockError, Semaphore, SemaphoreError,
};

pub use context::{get_all_start_methods, get_context, Context};

// Queues and pipes (issue 4).
pub use pipe::{
    pipe, wait, Connection, Pipe, PipeError, PipeRecvError, PipeSendError, WaitError, WaitSource, Waitable,
};
pub use queue::{GetError, JoinableQueue, PutError, Queue, QueueError, SimpleQueue};

// Manager and shared memory (issue 6).
pub use manager::{ArrayProxy, Dict, List, Manager, ManagerError, Namespace, SetProxy, ValueProxy};
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

/// Every code block of README.md, compiled and run as a doctest (`cargo test --workspace`), so
/// that the README cannot go stale. (`sh` and `toml` blocks are not Rust; rustdoc skips them.)
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The MPI job this program runs in (feature `mpi`): see
/// [`PoolBuilder::mpi`](crate::PoolBuilder::mpi) and README's "Running on a cluster".
#[cfg(feature = "mpi")]
pub mod mpi {
    pub use crate::backend::mpi::{launched, library_version, rank, world_size};
}

/// Items used by the code that `#[worker]` generates. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use linkme;
    pub use serde;

    pub use crate::manager::{make_shared, ErasedShared, SharedEntry, SHARED_TYPES};
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
    /// specialisation: `(&ErrCheck(&v)).multiproc_is_err()` picks [`ErrProbe`] for a `Result`
    /// and [`AnyProbe`] (always false) for anything else.
    pub struct ErrCheck<'a, T>(pub &'a T);

    /// See [`ErrCheck`]: the `Result` case.
    pub trait ErrProbe {
        /// Is the value an `Err`?
        fn multiproc_is_err(&self) -> bool;
    }
    impl<T, E> ErrProbe for ErrCheck<'_, Result<T, E>> {
        fn multiproc_is_err(&self) -> bool {
            self.0.is_err()
        }
    }

    /// See [`ErrCheck`]: every other type.
    pub trait AnyProbe {
        /// Always false.
        fn multiproc_is_err(&self) -> bool;
    }
    impl<T> AnyProbe for &ErrCheck<'_, T> {
        fn multiproc_is_err(&self) -> bool {
            false
        }
    }

    /// Encodes a worker's result in the child, appending it to `out`: a pool worker passes
    /// its chunk's report, so a map over small values neither allocates nor copies per task.
    pub fn encode_result<R: serde::Serialize + ?Sized>(r: &R, out: &mut Vec<u8>) -> Result<(), RunError> {
        rmp_serde::encode::write(out, r)
            .map_err(|e| RunError(format!("the worker's result could not be serialised: {e}")))
    }

    // Argument and result checks. A type that is not serialisable must give ONE error, on the
    // type as the user wrote it, and nothing else. So:
    // - the check is staged: `assert_arg::<T>()` needs `Serialize` only, and the
    //   `DeserializeOwned` check (`assert_arg_de`) is asked for only when `T: Serialize` holds
    //   (autoref specialisation on `Probe<T>`); a type with neither gets one error, not two;
    // - the generated code that encodes and decodes (`Args::task`, `Probe::decode`,
    //   `Out::encode`) goes through the same specialisation, so a type without the traits picks
    //   a fallback that compiles, and the generated calls add no errors of their own. The
    //   fallbacks never run: the checks above make such a program fail to compile.

    /// A type that can be a worker argument.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be a worker argument: it is sent to another process, so it must implement `serde::Serialize` and `serde::Deserialize`",
        label = "not serialisable",
        note = "derive them with `#[derive(serde::Serialize, serde::Deserialize)]` (serde with its `derive` feature), or pass a value that can be rebuilt in the child"
    )]
    pub trait WorkerArg {}
    impl<T: serde::Serialize> WorkerArg for T {}

    /// A type that can be a worker argument (the second half of the check).
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be a worker argument: it is sent to another process, so it must implement `serde::Deserialize` too",
        label = "not deserialisable",
        note = "derive it with `#[derive(serde::Serialize, serde::Deserialize)]` (serde with its `derive` feature); a worker argument must be owned (no borrowed `&str` or `&[u8]` inside)"
    )]
    pub trait WorkerArgDe {}
    impl<T: serde::de::DeserializeOwned> WorkerArgDe for T {}

    /// A type that can be a worker's result.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be a worker's return type: it is sent back to the parent, so it must implement `serde::Serialize` and `serde::Deserialize`",
        label = "not serialisable",
        note = "derive them with `#[derive(serde::Serialize, serde::Deserialize)]` (serde with its `derive` feature)"
    )]
    pub trait WorkerResult {}
    impl<T: serde::Serialize> WorkerResult for T {}

    /// A type that can be a worker's result (the second half of the check).
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be a worker's return type: it is sent back to the parent, so it must implement `serde::Deserialize` too",
        label = "not deserialisable",
        note = "derive it with `#[derive(serde::Serialize, serde::Deserialize)]` (serde with its `derive` feature)"
    )]
    pub trait WorkerResultDe {}
    impl<T: serde::de::DeserializeOwned> WorkerResultDe for T {}

    /// Compile-time check used by `#[worker]` (first half: `Serialize`).
    pub fn assert_arg<T: WorkerArg + ?Sized>() {}
    /// Compile-time check used by `#[worker]` (second half: `DeserializeOwned`).
    pub fn assert_arg_de<T: WorkerArgDe>(_: Probe<T>) {}
    /// Compile-time check used by `#[worker]` (first half: `Serialize`).
    pub fn assert_result<T: WorkerResult + ?Sized>() {}
    /// Compile-time check used by `#[worker]` (second half: `DeserializeOwned`).
    pub fn assert_result_de<T: WorkerResultDe>(_: Probe<T>) {}

    /// A type-level probe for autoref specialisation: `(&&Probe::<T>::new()).method()` picks
    /// the impl on `&Probe<T>` when `T` has the traits, the one on `Probe<T>` otherwise.
    pub struct Probe<T>(core::marker::PhantomData<fn() -> T>);
    impl<T> Probe<T> {
        /// A probe for `T`.
        #[allow(clippy::new_without_default)]
        pub const fn new() -> Self {
            Probe(core::marker::PhantomData)
        }
    }

    /// Asks for the `DeserializeOwned` half only once `Serialize` holds.
    pub trait DeAfterSer {
        /// The type whose `DeserializeOwned` is to be checked.
        type Check;
        /// A probe of that type.
        fn de_check(&self) -> Probe<Self::Check>;
    }
    impl<T: serde::Serialize> DeAfterSer for &Probe<T> {
        type Check = T;
        fn de_check(&self) -> Probe<T> {
            Probe::new()
        }
    }
    /// The fallback of [`DeAfterSer`]: nothing more to check (the `Serialize` error is enough).
    pub trait DeAfterSerSkip {
        /// Always `()`.
        fn de_check(&self) -> Probe<()>;
    }
    impl<T> DeAfterSerSkip for Probe<T> {
        fn de_check(&self) -> Probe<()> {
            Probe::new()
        }
    }

    /// Decodes a worker's arguments (the generated entry calls this).
    pub trait Decode<T> {
        /// Decodes `bytes` as `T`.
        fn decode(&self, bytes: &[u8]) -> Result<T, RunError>;
    }
    impl<T: serde::de::DeserializeOwned> Decode<T> for &Probe<T> {
        fn decode(&self, bytes: &[u8]) -> Result<T, RunError> {
            decode_args(bytes)
        }
    }
    /// [`Decode`] for plain arguments (see `wire::plain`), chosen by the generated entry's
    /// extra `&`: reads them directly, and leaves anything unexpected to `rmp_serde`.
    pub trait DecodePlain<T> {
        /// Decodes `bytes` as `T`.
        fn decode(&self, bytes: &[u8]) -> Result<T, RunError>;
    }
    impl<T: PlainValue + serde::de::DeserializeOwned> DecodePlain<T> for &&Probe<T> {
        #[inline]
        fn decode(&self, bytes: &[u8]) -> Result<T, RunError> {
            match T::decode_plain(bytes) {
                Some(v) => Ok(v),
                None => decode_args(bytes),
            }
        }
    }
    /// The fallback of [`Decode`] (never runs: the program does not compile).
    pub trait DecodeFallback<T> {
        /// Fails.
        fn decode(&self, bytes: &[u8]) -> Result<T, RunError>;
    }
    impl<T> DecodeFallback<T> for Probe<T> {
        fn decode(&self, _: &[u8]) -> Result<T, RunError> {
            Err(RunError("the worker's arguments are not deserialisable".into()))
        }
    }

    /// Runs an actor's loop (the generated entry calls this), when its messages can be
    /// decoded.
    pub trait RunActor<A> {
        /// Runs the actor loop on `state`.
        fn run_actor(&self, state: A) -> Result<A, RunError>;
    }
    impl<A: crate::actor::Actor> RunActor<A> for &Probe<A>
    where
        A::Msg: serde::de::DeserializeOwned,
    {
        fn run_actor(&self, state: A) -> Result<A, RunError> {
            Ok(crate::actor::run(state))
        }
    }
    /// The fallback of [`RunActor`] (never runs: the program does not compile).
    pub trait RunActorFallback<A> {
        /// Fails.
        fn run_actor(&self, state: A) -> Result<A, RunError>;
    }
    impl<A> RunActorFallback<A> for Probe<A> {
        fn run_actor(&self, _: A) -> Result<A, RunError> {
            Err(RunError("the actor's messages are not deserialisable".into()))
        }
    }

    /// A worker's arguments (or its value) by reference, for [`MakeTask`] and [`Encode`].
    pub struct Args<'a, A>(pub &'a A);

    pub use crate::wire::plain::{PlainScalar, PlainValue};

    /// Builds a task from arguments that are all plain values (integers, floats, bools: see
    /// `wire::plain`), chosen over [`MakeTask`] by the generated constructor's extra `&` when
    /// the argument tuple is [`PlainValue`]: no general encoder, no descriptor side table.
    pub trait MakeTaskPlain {
        /// The task that runs worker `name` on these arguments.
        fn task<R>(&self, name: &'static str) -> Task<R>;
    }
    impl<A: PlainValue> MakeTaskPlain for &&Args<'_, A> {
        #[inline]
        fn task<R>(&self, name: &'static str) -> Task<R> {
            Task::from_plain(name, self.0.encode_plain())
        }
    }

    /// Builds a task from encoded arguments (the generated constructor calls this).
    pub trait MakeTask {
        /// The task that runs worker `name` on these arguments.
        fn task<R>(&self, name: &'static str) -> Task<R>;
    }
    impl<A: serde::Serialize> MakeTask for &Args<'_, A> {
        fn task<R>(&self, name: &'static str) -> Task<R> {
            Task::from_parts(name, self.0)
        }
    }
    /// The fallback of [`MakeTask`] (never runs: the program does not compile).
    pub trait MakeTaskFallback {
        /// A task whose arguments failed to serialise.
        fn task<R>(&self, name: &'static str) -> Task<R>;
    }
    impl<A> MakeTaskFallback for Args<'_, A> {
        fn task<R>(&self, name: &'static str) -> Task<R> {
            Task::unserialisable(name)
        }
    }

    /// Encodes a worker's value (the generated entry calls this).
    pub trait Encode {
        /// Appends the encoded value to `out`.
        fn encode(&self, out: &mut Vec<u8>) -> Result<(), RunError>;
    }
    impl<A: serde::Serialize> Encode for &Args<'_, A> {
        fn encode(&self, out: &mut Vec<u8>) -> Result<(), RunError> {
            encode_result(self.0, out)
        }
    }
    /// [`Encode`] for a plain result (see `wire::plain`), chosen by the generated entry's
    /// extra `&`.
    pub trait EncodePlain {
        /// Appends the encoded value to `out`.
        fn encode(&self, out: &mut Vec<u8>) -> Result<(), RunError>;
    }
    impl<A: PlainValue> EncodePlain for &&Args<'_, A> {
        #[inline]
        fn encode(&self, out: &mut Vec<u8>) -> Result<(), RunError> {
            out.extend_from_slice(self.0.encode_plain().as_slice());
            Ok(())
        }
    }
    /// The fallback of [`Encode`] (never runs: the program does not compile).
    pub trait EncodeFallback {
        /// Fails.
        fn encode(&self, out: &mut Vec<u8>) -> Result<(), RunError>;
    }
    impl<A> EncodeFallback for Args<'_, A> {
        fn encode(&self, _out: &mut Vec<u8>) -> Result<(), RunError> {
            Err(RunError("the worker's result is not serialisable".into()))
        }
    }

    /// Finds a registered worker by name (used by pool workers, which run many tasks in one
    /// process).
    pub fn find_worker(name: &str) -> Result<&'static WorkerEntry, RunError> {
        crate::runtime::registry::find(name)
    }

    /// Runs a registered worker on encoded arguments in this process, catching a panic: the
    /// inner result says whether the worker's encoded value was appended to `out` or why it
    /// could not run (then `out` is as it was); the outer error is a panic's
    /// `(message, location)`. Used by pool workers.
    pub fn run_caught(
        entry: &WorkerEntry,
        args: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Result<(), RunError>, (String, Option<String>)> {
        let at = out.len();
        let r = crate::runtime::bootstrap::catch(|| (entry.run)(args, &mut *out)).map_err(|r| (r.message, r.location));
        if !matches!(r, Ok(Ok(()))) {
            out.truncate(at);
        }
        // A pool worker's own exit code does not depend on its tasks' values.
        crate::runtime::bootstrap::clear_returned();
        r
    }
}
