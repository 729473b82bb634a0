//! Start-method contexts: Python's `multiprocessing.get_context(method)` and
//! `get_all_start_methods()`.
//!
//! A [`Context`] is a start method plus the constructors that use it: its [`process`],
//! [`pool`] and [`pool_builder`] start children with that method whatever the program's
//! default (see [`set_start_method`](crate::set_start_method)). The other objects (queues, locks, pipes, managers) are
//! served by the hub or are plain socketpairs, so they work with every start method; the
//! context offers them too, so that code written against a Python context ports as it is.
//!
//! [`process`]: Context::process
//! [`pool`]: Context::pool
//! [`pool_builder`]: Context::pool_builder

use crate::pipe::{Connection, Pipe, PipeError};
use crate::pool::{Pool, PoolBuilder, PoolError};
use crate::process::{get_start_method, IntoTask, Process, ProcessBuilder, StartMethod};
use crate::queue::{JoinableQueue, Queue, QueueError, SimpleQueue};
use crate::sync::{
    Barrier, BarrierError, BoundedSemaphore, Condition, ConditionError, Event, EventError, Lock, LockError, RLock,
    RLockError, Semaphore, SemaphoreError,
};
use crate::{Manager, ManagerError};

/// Every start method this platform supports, the default first (Python's
/// `get_all_start_methods()`, which on Linux is `['forkserver', 'spawn', 'fork']` since 3.14).
///
/// # Example
/// ```
/// use multiproc::{get_all_start_methods, StartMethod};
///
/// let all = get_all_start_methods();
/// assert_eq!(all[0], StartMethod::ForkServer);
/// assert!(all.contains(&StartMethod::Spawn) && all.contains(&StartMethod::Fork));
/// ```
pub fn get_all_start_methods() -> Vec<StartMethod> {
    vec![StartMethod::ForkServer, StartMethod::Spawn, StartMethod::Fork]
}

/// A context for `method` (Python's `get_context(method)`); `None` gives the default context,
/// which follows [`set_start_method`](crate::set_start_method).
///
/// # Example
/// ```
/// use multiproc::{get_context, StartMethod};
///
/// #[multiproc::worker]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let ctx = get_context(Some(StartMethod::Spawn));
/// assert_eq!(ctx.get_start_method(), StartMethod::Spawn);
/// let mut p = ctx.process(square(4)).start()?; // started by Spawn, whatever the default
/// assert_eq!(p.join()?, 16);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn get_context(method: Option<StartMethod>) -> Context {
    Context { method }
}

/// A start method and the constructors that use it (Python's `multiprocessing` context
/// objects); made by [`get_context`].
///
/// `Pool`s refuse [`StartMethod::Fork`] (a pool's manager thread makes the parent
/// multi-threaded), so `get_context(Some(StartMethod::Fork)).pool(n)` is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    method: Option<StartMethod>,
}

impl Context {
    /// The context's start method (for the default context, the program's current default).
    pub fn get_start_method(&self) -> StartMethod {
        self.method.unwrap_or_else(get_start_method)
    }

    /// Prepares a process that runs `task` with this context's start method (Python's
    /// `ctx.Process`).
    pub fn process<K: IntoTask>(&self, task: K) -> ProcessBuilder<K::Output> {
        match self.method {
            Some(m) => Process::new(task).start_method(m),
            None => Process::new(task),
        }
    }

    /// A pool of `processes` workers started with this context's start method (Python's
    /// `ctx.Pool(processes)`).
    pub fn pool(&self, processes: usize) -> Result<Pool, PoolError> {
        self.pool_builder().processes(processes).build()
    }

    /// A pool builder whose workers are started with this context's start method.
    pub fn pool_builder(&self) -> PoolBuilder {
        match self.method {
            Some(m) => Pool::builder().start_method(m),
            None => Pool::builder(),
        }
    }

    /// [`Queue::new`].
    pub fn queue<T: serde::Serialize + serde::de::DeserializeOwned>(&self) -> Result<Queue<T>, QueueError> {
        Queue::new()
    }

    /// [`JoinableQueue::new`].
    pub fn joinable_queue<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
    ) -> Result<JoinableQueue<T>, QueueError> {
        JoinableQueue::new()
    }

    /// [`SimpleQueue::new`].
    pub fn simple_queue<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
    ) -> Result<SimpleQueue<T>, QueueError> {
        SimpleQueue::new()
    }

    /// [`Pipe::duplex`] (Python's `ctx.Pipe()`).
    pub fn pipe<T>(&self) -> Result<(Connection<T>, Connection<T>), PipeError> {
        Pipe::duplex()
    }

    /// [`Lock::new`].
    pub fn lock(&self) -> Result<Lock, LockError> {
        Lock::new()
    }

    /// [`RLock::new`].
    pub fn rlock(&self) -> Result<RLock, RLockError> {
        RLock::new()
    }

    /// [`Semaphore::new`].
    pub fn semaphore(&self, value: u32) -> Result<Semaphore, SemaphoreError> {
        Semaphore::new(value)
    }

    /// [`BoundedSemaphore::new`].
    pub fn bounded_semaphore(&self, value: u32) -> Result<BoundedSemaphore, SemaphoreError> {
        BoundedSemaphore::new(value)
    }

    /// [`Event::new`].
    pub fn event(&self) -> Result<Event, EventError> {
        Event::new()
    }

    /// [`Condition::new`].
    pub fn condition(&self) -> Result<Condition, ConditionError> {
        Condition::new()
    }

    /// [`Barrier::new`].
    pub fn barrier(&self, parties: usize) -> Result<Barrier, BarrierError> {
        Barrier::new(parties)
    }

    /// [`Manager::new`].
    pub fn manager(&self) -> Result<Manager, ManagerError> {
        Manager::new()
    }
}
