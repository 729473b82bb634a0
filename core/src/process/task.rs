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
    pub(crate) args: Result<ArgBytes, String>,
    pub(crate) fds: Vec<OwnedFd>,
    _r: PhantomData<fn() -> R>,
}

impl<R> Task<R> {
    /// A task from a worker name and its already encoded arguments (no descriptors).
    #[cfg(feature = "mpi")]
    pub(crate) fn from_encoded(name: &'static str, args: Vec<u8>) -> Task<R> {
        Task {
            name,
            args: Ok(ArgBytes::Heap(args)),
            fds: Vec::new(),
            _r: PhantomData,
        }
    }

    /// Builds a task from a worker name and an argument value (used by `#[worker]`).
    pub fn from_parts<A: Serialize + ?Sized>(name: &'static str, args: &A) -> Task<R> {
        let (res, fds) = fdpass::collect(|| {
            let mut w = ArgBytes::default();
            rmp_serde::encode::write(&mut w, args).map(|()| w)
        });
        Task {
            name,
            args: res.map_err(|e| e.to_string()),
            fds,
            _r: PhantomData,
        }
    }

    /// A task from plain arguments, already encoded (see `wire::plain`; the generated
    /// constructor of a worker whose arguments are all plain calls this).
    #[inline]
    pub(crate) fn from_plain(name: &'static str, args: crate::wire::plain::PlainBuf) -> Task<R> {
        const _: () = assert!(crate::wire::plain::PLAIN_MAX <= INLINE_ARGS);
        let (plain, len) = args.into_parts();
        let mut buf = [0; INLINE_ARGS];
        buf[..crate::wire::plain::PLAIN_MAX].copy_from_slice(&plain);
        Task {
            name,
            args: Ok(ArgBytes::Inline { len: len as u8, buf }),
            fds: Vec::new(),
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
        match &self.args {
            Ok(a) => Ok(a.as_slice()),
            Err(e) => Err(e.as_str()),
        }
    }

    /// Splits the task (for Pool and other layers that batch tasks).
    #[doc(hidden)]
    pub fn into_parts(self) -> (&'static str, Result<Vec<u8>, String>, Vec<OwnedFd>) {
        (self.name, self.args.map(ArgBytes::into_vec), self.fds)
    }

    /// Splits the task without moving its arguments to the heap (the Pool copies them into
    /// a chunk at once).
    pub(crate) fn into_raw_parts(self) -> (&'static str, Result<ArgBytes, String>, Vec<OwnedFd>) {
        (self.name, self.args, self.fds)
    }
}

impl<R> std::fmt::Debug for Task<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("worker", &self.name)
            .field("args_len", &self.args.as_ref().map(|a| a.as_slice().len()))
            .field("fds", &self.fds.len())
            .finish()
    }
}

/// How many bytes of encoded arguments a task keeps inline, without a heap allocation.
const INLINE_ARGS: usize = 38;

/// A task's encoded arguments: inline when short (the common case of a `Pool::map` over
/// numbers or short strings, where one allocation per item would cost more than the encoding),
/// on the heap otherwise. It is the `Write` target of the encoder, so short arguments never
/// touch the allocator.
pub(crate) enum ArgBytes {
    Inline { len: u8, buf: [u8; INLINE_ARGS] },
    Heap(Vec<u8>),
}

impl Default for ArgBytes {
    fn default() -> Self {
        ArgBytes::Inline {
            len: 0,
            buf: [0; INLINE_ARGS],
        }
    }
}

impl ArgBytes {
    /// Moves inline arguments to the heap and appends `data` (out of line, so that the writes
    /// the encoder makes stay small enough to be inlined).
    #[cold]
    #[inline(never)]
    fn spill(&mut self, data: &[u8]) {
        let at = self.as_slice().len();
        let mut v = Vec::with_capacity((at + data.len()).max(2 * INLINE_ARGS));
        v.extend_from_slice(self.as_slice());
        v.extend_from_slice(data);
        *self = ArgBytes::Heap(v);
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            ArgBytes::Inline { len, buf } => &buf[..*len as usize],
            ArgBytes::Heap(v) => v,
        }
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        match self {
            ArgBytes::Inline { len, buf } => buf[..len as usize].to_vec(),
            ArgBytes::Heap(v) => v,
        }
    }
}

// Inlined: the encoder, instantiated in the caller's crate, calls these for every few bytes.
impl std::io::Write for ArgBytes {
    #[inline]
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.write_all(data)?;
        Ok(data.len())
    }

    #[inline]
    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            ArgBytes::Inline { len, buf } => {
                let at = *len as usize;
                // The encoder writes a marker byte, then a value of a few bytes: a lone byte
                // is stored directly, not through a call of `memcpy`.
                if let ([b], Some(dst)) = (data, buf.get_mut(at)) {
                    *dst = *b;
                    *len += 1;
                } else if let Some(dst) = buf.get_mut(at..at + data.len()) {
                    dst.copy_from_slice(data);
                    *len = (at + data.len()) as u8;
                } else {
                    self.spill(data);
                }
            }
            ArgBytes::Heap(v) => v.extend_from_slice(data),
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn arguments_stay_inline_up_to_the_limit_then_move_to_the_heap() {
        let mut a = ArgBytes::default();
        a.write_all(&[1; INLINE_ARGS - 1]).unwrap();
        a.write_all(&[2]).unwrap();
        assert!(matches!(a, ArgBytes::Inline { .. }));
        a.write_all(&[3, 4]).unwrap();
        assert!(matches!(a, ArgBytes::Heap(_)));
        let mut want = vec![1; INLINE_ARGS - 1];
        want.extend([2, 3, 4]);
        assert_eq!(a.as_slice(), want.as_slice());
        assert_eq!(a.into_vec(), want);
    }

    #[test]
    fn a_task_encodes_the_same_bytes_as_before() {
        for args in [(7u64, String::new()), (u64::MAX, "x".repeat(200))] {
            let t: Task<()> = Task::from_parts("w", &args);
            assert_eq!(t.encoded_args().unwrap(), rmp_serde::to_vec(&args).unwrap().as_slice());
            let (_, bytes, _) = t.into_parts();
            assert_eq!(bytes.unwrap(), rmp_serde::to_vec(&args).unwrap());
        }
    }
}
