//! Task values: a registered worker plus its serialised arguments.

use std::marker::PhantomData;
use std::os::fd::OwnedFd;

use serde::Serialize;

use crate::runtime::fdpass;

/// A call of a `#[worker]`, ready to run in another process: the worker's registered name and
/// its arguments, already serialised. `R` is the worker's return type.
///
/// `#[worker] fn square(x: u64) -> u64` generates `fn square(x: u64) -> Task<u64>`, so
/// `square(3)` is a task. Arguments are serialised when the task is built; a serialisation
/// failure is kept and reported by whatever starts the task, before anything is scheduled.
///
/// # Example
/// ```
/// #[multiproc::worker]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let task: multiproc::Task<u64> = square(3);
/// assert!(task.worker_name().ends_with("::square"));
/// ```
#[must_use = "a task does nothing until it is started (Process::new(task).start())"]
pub struct Task<R> {
    pub(crate) name: &'static str,
    pub(crate) args: Result<Vec<u8>, String>,
    pub(crate) fds: Vec<OwnedFd>,
    _r: PhantomData<fn() -> R>,
}

impl<R> Task<R> {
    /// A task from a worker name and its already encoded arguments (no descriptors).
    #[cfg(feature = "mpi")]
    pub(crate) fn from_encoded(name: &'static str, args: Vec<u8>) -> Task<R> {
        Task {
            name,
            args: Ok(args),
            fds: Vec::new(),
            _r: PhantomData,
        }
    }

    /// Builds a task from a worker name and an argument value (used by `#[worker]`).
    pub fn from_parts<A: Serialize + ?Sized>(name: &'static str, args: &A) -> Task<R> {
        let (res, fds) = fdpass::collect(|| rmp_serde::to_vec(args));
        Task {
            name,
            args: res.map_err(|e| e.to_string()),
            fds,
            _r: PhantomData,
        }
    }

    /// A task whose arguments could not be serialised (the generated code's fallback; never
    /// reached in a program that compiles).
    pub(crate) fn unserialisable(name: &'static str) -> Task<R> {
        Task {
            name,
            args: Err("the arguments are not serialisable".into()),
            fds: Vec::new(),
            _r: PhantomData,
        }
    }

    /// The same task, read as returning `S` (the supervisor keeps tasks of any type; it
    /// never decodes a worker's value as anything but what the worker returns, or
    /// `serde::de::IgnoredAny`).
    pub(crate) fn retype<S>(self) -> Task<S> {
        Task {
            name: self.name,
            args: self.args,
            fds: self.fds,
            _r: PhantomData,
        }
    }

    /// The worker's registered name (`module::path::function`).
    pub fn worker_name(&self) -> &'static str {
        self.name
    }

    /// The serialised arguments, or the serialisation error.
    pub fn encoded_args(&self) -> Result<&[u8], &str> {
        self.args.as_deref().map_err(|e| e.as_str())
    }

    /// Splits the task (for Pool and other layers that batch tasks).
    #[doc(hidden)]
    pub fn into_parts(self) -> (&'static str, Result<Vec<u8>, String>, Vec<OwnedFd>) {
        (self.name, self.args, self.fds)
    }
}

impl<R> std::fmt::Debug for Task<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("worker", &self.name)
            .field("args_len", &self.args.as_ref().map(|a| a.len()))
            .field("fds", &self.fds.len())
            .finish()
    }
}

/// Anything that can become a [`Task`]: a `Task` itself, or a type with `#[worker] impl T { fn
/// run(self) }`.
///
/// # Example
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Clock {
///     ticks: u32,
/// }
///
/// #[multiproc::worker]
/// impl Clock {
///     fn run(self) -> u32 {
///         self.ticks * 2
///     }
/// }
///
/// use multiproc::IntoTask;
/// let task = Clock { ticks: 3 }.into_task();
/// assert!(task.worker_name().ends_with("::Clock"));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a task: a process runs a `#[multiproc::worker]` call",
    label = "not a task",
    note = "mark the function with `#[multiproc::worker]`: then its call is a task (`Process::new(square(12))`, `pool.apply(square(12))`) and the function a task constructor (`pool.map(square, items)`)",
    note = "a type runs as a task when its `impl` block with `fn run(self)` is marked `#[multiproc::worker]`",
    note = "to run a closure, use `Process::fork(move || ..)` (it forks this process; see `StartMethod::Fork`)"
)]
pub trait IntoTask {
    /// What the worker returns.
    type Output;
    /// Serialises the worker call.
    fn into_task(self) -> Task<Self::Output>;
}

impl<R> IntoTask for Task<R> {
    type Output = R;
    fn into_task(self) -> Task<R> {
        self
    }
}
