//! Process pools: [`Pool`] runs `#[worker]` tasks on a fixed set of worker processes, like
//! Python's `multiprocessing.Pool`, and survives the faults where CPython hangs.
//!
//! # Design
//! The pool is built only on the public layers: each worker is a [`Process`](crate::Process)
//! running a library-defined `#[worker]` loop, connected to the parent by its own duplex
//! [`Pipe`]. No hub object is on the path of a task.
//!
//! - **Tasks** are `#[worker]` calls ([`Task`]): the worker's registered name and its encoded
//!   arguments. The parent groups them into *chunks* (consecutive tasks of one worker
//!   function) and sends each chunk as one message; the worker runs each task through the
//!   registry, catching panics, and answers with one message holding an outcome per task
//!   (the encoded value, a panic with its message and location, or a failure such as a result
//!   that cannot be serialised). A failing task fails only itself; the worker carries on.
//! - **The manager thread** (one per pool, in the parent) owns the workers and their pipes. It
//!   waits on all pipes at once with [`wait`](crate::wait()), gives each worker two chunks at a
//!   time (the running one and the next; up to 16 while its chunks take under 1 ms, and never
//!   more than 64 KiB queued behind the running one, so that no send can block), delivers
//!   outcomes to the waiting handles and runs callbacks. A worker runs its chunks strictly in
//!   order, so the manager always knows which chunk a worker was running.
//! - **Messages** are a compact binary layout (a chunk appends each task's encoded arguments
//!   once; results are decoded straight from the received buffer), not one envelope per task.
//! - **Faults.** A worker's pipe reaching end of file means it is gone: the manager collects its
//!   exit status, fails the chunk it was running with [`PoolError::WorkerDied`] (which carries
//!   the pid and signal), requeues the chunk it had not started, and starts a replacement. A
//!   task with a deadline ([`Pool::apply_async_with_deadline`]) that runs too long gets its
//!   worker killed; it fails with [`PoolError::TimedOut`] and the worker is replaced.
//! - **maxtasksperchild** counts chunks (Python's "tasks": one `apply`, or one chunk of a
//!   `map`): after that many, the worker exits and is replaced.
//! - **Lifecycle.** [`close`](Pool::close) stops new submissions; the workers exit once the work
//!   is done. [`terminate`](Pool::terminate) fails everything pending with
//!   [`PoolError::Terminated`], sends SIGTERM, waits a grace period (1 s unless
//!   [`PoolBuilder::terminate_grace`] says otherwise) and sends SIGKILL: it never waits for
//!   running tasks. Dropping a pool terminates it and waits for its workers, as Python's
//!   `with Pool() as p:` does.
//! - **Ctrl-C.** Workers ignore SIGINT and report panics instead of printing them. By default
//!   Ctrl-C ends the program and the workers die with it (parent-death signal). In interrupt
//!   mode ([`catch_interrupts`](crate::catch_interrupts)), a caller blocked in `map`, `get` or an
//!   imap iterator returns [`PoolError::Interrupted`] promptly and the pool is terminated.
//! - Workers are daemonic processes: a task cannot start processes of its own (as in Python).
//!   A pool can be created inside any non-daemonic child process.
//!
//! # Example
//! ```
//! use multiproc::pool::Pool;
//!
//! #[multiproc::worker]
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! let pool = Pool::new(2)?;
//! assert_eq!(pool.map(square, 0..5)?, [0, 1, 4, 9, 16]);
//! assert_eq!(pool.apply(square(12))?, 144);
//! pool.close();
//! pool.join()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
pub(crate) mod job;
mod manager;
mod stats;
pub(crate) mod worker;

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde_bytes::ByteBuf;

pub use error::PoolError;
pub use job::{AsyncResult, Callbacks, IMap, MapResult};

use crate::pipe::{Connection, Pipe, MAX_FDS_PER_MSG};
use crate::process::{cpu_count, get_start_method, ArgBytes, IntoTask, StartMethod, Task};
use job::{Fixed, Sink};
use worker::ChunkBuf;

/// How often `join` looks at the workers, its deadline and Ctrl-C.
const JOIN_SLICE: Duration = Duration::from_millis(10);

fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or(now + Duration::from_secs(86400 * 365))
}

/// A group of consecutive tasks of one worker function, sent to a worker as one message.
pub(crate) struct Chunk {
    pub sink: Arc<dyn Sink>,
    /// The chunk's number within its call (imap orders by it).
    pub seq: usize,
    /// The index of the chunk's first item within its call.
    pub start: usize,
    /// The number of tasks.
    pub count: usize,
    /// The message for the worker (see `worker.rs`).
    pub body: Vec<u8>,
    /// The descriptors its tasks' arguments carry, in task order (sent with `body`; kept
    /// until the chunk is done, so a chunk requeued after a worker's death can be sent again).
    pub fds: Vec<OwnedFd>,
    /// How long the chunk may run before its worker is killed.
    pub deadline: Option<Duration>,
}

impl Chunk {
    /// Fails every task of the chunk with `err`.
    pub(crate) fn fail(&self, err: &PoolError) {
        self.sink
            .deliver(self.seq, self.start, &mut (0..self.count).map(|_| Err(err.clone())));
    }
}

/// Tasks grouped for sending: a chunk to run, or an item that failed before scheduling.
pub(crate) enum Segment {
    Run {
        count: usize,
        body: Vec<u8>,
        fds: Vec<OwnedFd>,
    },
    Fail {
        err: PoolError,
    },
}

/// Groups tasks into chunks of at most `chunksize` consecutive tasks of one worker function,
/// task by task: a chunk is handed out as soon as it is full, so that a long `map` is running
/// while its later chunks are still being built. A task that cannot be sent becomes a `Fail`
/// segment of its own.
pub(crate) struct Chunker<'a> {
    chunksize: usize,
    cur: Option<(&'static str, ChunkBuf, Vec<OwnedFd>)>,
    /// Where chunk buffers come from, if the pool keeps spares.
    spares: Option<&'a Spares>,
}

/// At most this many bytes are reserved for a chunk up front (from its first task's size).
const CHUNK_RESERVE_MAX: usize = 1 << 20;

impl<'a> Chunker<'a> {
    pub(crate) fn new(chunksize: usize, spares: Option<&'a Spares>) -> Chunker<'a> {
        Chunker {
            chunksize: chunksize.max(1),
            cur: None,
            spares,
        }
    }

    /// Adds a task; hands `out` the segments it completes (none, one, or two: the chunk
    /// before a task that fails, then the failure).
    pub(crate) fn push<R>(&mut self, t: Task<R>, out: &mut impl FnMut(Segment)) {
        let (name, args, fds) = t.into_raw_parts();
        let item = if fds.len() > MAX_FDS_PER_MSG {
            Err(PoolError::TooManyDescriptors {
                count: fds.len(),
                max: MAX_FDS_PER_MSG,
            })
        } else {
            args.map_err(PoolError::Encode)
        };
        let a = match item {
            Ok(a) => a,
            Err(err) => {
                self.flush(out);
                out(Segment::Fail { err });
                return;
            }
        };
        // A chunk's descriptors travel in one message: at most MAX_FDS_PER_MSG.
        // Names are usually the same `&'static str`: compare the pointers before the bytes.
        let fits = matches!(&self.cur, Some((w, _, have))
            if (std::ptr::eq(*w, name) || *w == name) && have.len() + fds.len() <= MAX_FDS_PER_MSG);
        if !fits {
            self.flush(out);
            let mut buf = ChunkBuf::new(name, self.spares.map(Spares::take).unwrap_or_default());
            // Twice the first task's size, since later arguments are often longer (larger
            // numbers): growing the buffer would copy it.
            let per_task = 2 * a.as_slice().len() + ChunkBuf::TASK_HEADER;
            buf.reserve(per_task.saturating_mul(self.chunksize).min(CHUNK_RESERVE_MAX));
            self.cur = Some((name, buf, Vec::new()));
        }
        if let Some((_, buf, have)) = &mut self.cur {
            match &a {
                ArgBytes::Inline { len, buf: inline } => buf.push_fixed(inline, *len as usize, fds.len()),
                ArgBytes::Heap(v) => buf.push(v, fds.len()),
            }
            have.extend(fds);
            if buf.len() >= self.chunksize {
                self.flush(out);
            }
        }
    }

    /// Hands `out` the chunk being built, if any.
    pub(crate) fn flush(&mut self, out: &mut impl FnMut(Segment)) {
        if let Some((_, buf, fds)) = self.cur.take() {
            let (body, count) = buf.finish();
            out(Segment::Run { count, body, fds });
        }
    }
}

/// Groups tasks into chunks (see [`Chunker`]), all at once.
pub(crate) fn segments<R>(tasks: impl IntoIterator<Item = Task<R>>, chunksize: usize) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut chunker = Chunker::new(chunksize, None);
    for t in tasks {
        chunker.push(t, &mut |s| out.push(s));
    }
    chunker.flush(&mut |s| out.push(s));
    out
}

/// The state shared by the pool handle, the result handles and the manager thread.
pub(crate) struct St {
    pub queue: VecDeque<Chunk>,
    pub closed: bool,
    pub terminating: bool,
    pub finished: bool,
    pub broken: Option<PoolError>,
    /// A wake-up byte is on its way to the manager.
    pub woken: bool,
    pub pids: Vec<i32>,
}

pub(crate) struct Shared {
    st: Mutex<St>,
    /// Writing end of the manager's wake-up pipe.
    wake_tx: Connection<()>,
    manager: Mutex<Option<ThreadId>>,
    /// Bodies of finished chunks, kept for the next chunks (see [`Spares`]).
    pub(crate) spares: Spares,
}

/// At most this many bytes of finished chunks' buffers, in at most this many buffers, are
/// kept for reuse, per pool.
const SPARE_BYTES: usize = 4 << 20;
const SPARE_BUFS: usize = 64;

/// Buffers of finished chunks, kept so that the next chunks are built in memory that is
/// already mapped: a `map` of 100,000 ints builds about 1.4 MB of chunks, and freeing that at
/// the end of each call hands it back to the system, so the next call faults every page in
/// again (a few hundred page faults, a tenth of the caller's time). At most [`SPARE_BYTES`]
/// in [`SPARE_BUFS`] buffers are kept; a buffer that does not fit is freed.
#[derive(Default)]
pub(crate) struct Spares {
    bufs: Mutex<(Vec<Vec<u8>>, usize)>,
}

impl Spares {
    /// A buffer to build a chunk in (empty, with whatever capacity it has).
    pub(crate) fn take(&self) -> Vec<u8> {
        let mut g = self.bufs.lock().unwrap_or_else(|p| p.into_inner());
        match g.0.pop() {
            Some(mut b) => {
                g.1 -= b.capacity();
                b.clear();
                b
            }
            None => Vec::new(),
        }
    }

    /// Keeps a finished chunk's buffer, if there is room.
    pub(crate) fn give(&self, buf: Vec<u8>) {
        let cap = buf.capacity();
        let mut g = self.bufs.lock().unwrap_or_else(|p| p.into_inner());
        if cap > 0 && g.1 + cap <= SPARE_BYTES && g.0.len() < SPARE_BUFS {
            g.1 += cap;
            g.0.push(buf);
        }
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, St> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake(&self, mut st: MutexGuard<'_, St>) {
        let send = !st.woken;
        st.woken = true;
        drop(st);
        if send {
            let _ = self.wake_tx.send_bytes(&[]);
        }
    }

    fn check_open(&self) -> Result<(), PoolError> {
        let st = self.lock();
        if st.closed || st.terminating {
            return Err(PoolError::Closed);
        }
        if let Some(b) = &st.broken {
            return Err(b.clone());
        }
        Ok(())
    }

    /// Queues chunks for the workers; hands them back if the pool takes no new work.
    pub(crate) fn submit(&self, chunks: Vec<Chunk>) -> Result<(), (PoolError, Vec<Chunk>)> {
        let mut st = self.lock();
        if st.closed || st.terminating {
            return Err((PoolError::Closed, chunks));
        }
        if let Some(b) = &st.broken {
            return Err((b.clone(), chunks));
        }
        if chunks.is_empty() {
            return Ok(());
        }
        st.queue.extend(chunks);
        self.wake(st);
        Ok(())
    }

    /// Takes out of the queue every chunk that reports to `sink` (a call that failed while
    /// its chunks were being submitted).
    pub(crate) fn withdraw(&self, sink: &Arc<impl Sink>) {
        let target = Arc::as_ptr(sink).cast::<()>();
        self.lock()
            .queue
            .retain(|c| !std::ptr::eq(Arc::as_ptr(&c.sink).cast::<()>(), target));
    }

    /// Asks the manager to terminate the pool (does not wait).
    pub(crate) fn request_terminate(&self) {
        let mut st = self.lock();
        if st.finished {
            return;
        }
        st.closed = true;
        st.terminating = true;
        let queued: Vec<Chunk> = st.queue.drain(..).collect();
        self.wake(st);
        for c in &queued {
            c.fail(&PoolError::Terminated);
        }
    }
}

/// Makes a [`Task`] from each item: implemented for `#[worker]` task constructors of any
/// arity (`Fn(A) -> Task<R>`, `Fn(A, B) -> Task<R>`, ... up to 8 arguments), taking the
/// arguments as a tuple. Used by [`Pool::starmap`].
///
/// # Example
/// ```
/// use multiproc::pool::{Pool, StarFn};
///
/// #[multiproc::worker]
/// fn add(a: u64, b: u64) -> u64 {
///     a + b
/// }
///
/// let task = add.call_with((2, 3));
/// let pool = Pool::new(1)?;
/// assert_eq!(pool.apply(task)?, 5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a task constructor for `starmap`",
    label = "not a `#[multiproc::worker]` function of the items' arguments",
    note = "mark the function with `#[multiproc::worker]`: `pool.starmap(add, [(1, 2), (3, 4)])` works for `#[multiproc::worker] fn add(a: u64, b: u64) -> u64`",
    note = "each item is the tuple of the function's arguments (1 to 8 of them), in order"
)]
pub trait StarFn<Args, R> {
    /// Builds the task for one tuple of arguments.
    fn call_with(&self, args: Args) -> Task<R>;
}

macro_rules! star_fn {
    ($($a:ident),+) => {
        impl<F, T, R, $($a),+> StarFn<($($a,)+), R> for F
        where
            F: Fn($($a),+) -> T,
            T: IntoTask<Output = R>,
        {
            #[allow(non_snake_case)]
            fn call_with(&self, ($($a,)+): ($($a,)+)) -> Task<R> {
                self($($a),+).into_task()
            }
        }
    };
}

star_fn!(A);
star_fn!(A, B);
star_fn!(A, B, C);
star_fn!(A, B, C, D);
star_fn!(A, B, C, D, E);
star_fn!(A, B, C, D, E, G);
star_fn!(A, B, C, D, E, G, H);
star_fn!(A, B, C, D, E, G, H, I);

/// Settings for a [`Pool`]; made by [`Pool::builder`].
///
/// # Example
/// ```
/// use multiproc::pool::Pool;
/// use multiproc::StartMethod;
///
/// #[multiproc::worker]
/// fn setup() {}
///
/// #[multiproc::worker]
/// fn pid() -> u32 {
///     std::process::id()
/// }
///
/// let pool = Pool::builder()
///     .processes(2)
///     .initializer(setup())
///     .maxtasksperchild(10)
///     .start_method(StartMethod::ForkServer)
///     .build()?;
/// assert_eq!(pool.processes(), 2);
/// assert!(pool.apply(pid())? > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a pool builder does nothing until .build() is called"]
#[derive(Debug)]
pub struct PoolBuilder {
    processes: Option<usize>,
    init: Option<Result<manager::Init, PoolError>>,
    maxtasks: Option<usize>,
    method: Option<StartMethod>,
    grace: Duration,
    #[cfg(feature = "mpi")]
    mpi: bool,
    /// The task server whose workers these are (an MPI rank's local pool): handles decoded in
    /// them are relayed through it to rank 0.
    #[cfg(feature = "mpi")]
    relay: Option<crate::Addr<()>>,
}

impl PoolBuilder {
    /// Runs the pool's tasks on the ranks of an MPI job instead of local processes (feature
    /// `mpi`). Start the program with `mpirun -n N ./app` (or `srun`): rank 0 runs `main`, and
    /// ranks 1 to N-1 serve tasks (they divert before `main`; no code is needed for them). The
    /// API and semantics are those of a local pool: `map`, `imap`, callbacks (run in rank 0),
    /// errors with the task's panic message and location.
    ///
    /// - Without [`processes`](Self::processes), each rank runs its tasks itself, one chunk at
    ///   a time; with `processes(k)`, each rank starts `k` local worker processes (N-1 ranks ×
    ///   k processes). [`maxtasksperchild`](Self::maxtasksperchild) and
    ///   [`start_method`](Self::start_method) apply to those local processes.
    /// - Chunks are handed out dynamically: the next one goes to whichever rank answers.
    /// - Not launched under MPI, or with a single rank: [`build`](Self::build) is
    ///   [`PoolError::Mpi`], saying what to do. One MPI pool at a time uses the ranks.
    /// - Task arguments cannot carry descriptors (Connections, shared-memory objects) to a
    ///   rank: such tasks fail with [`PoolError::Mpi`].
    /// - Task deadlines ([`Pool::apply_async_with_deadline`]) need `processes(k)`: the rank's
    ///   local pool kills and replaces the worker, and the task is [`PoolError::TimedOut`].
    ///   Without local processes they fail with [`PoolError::Mpi`].
    /// - One rank's death ends the whole job (MPI semantics): the launcher names the rank.
    /// - Handles (`Queue`, `Lock`, `Event`, Manager containers, ...) created in rank 0 and
    ///   passed to tasks work on every rank, in the rank itself or in its local processes:
    ///   each operation is relayed to rank 0 over MPI.
    /// - [`Pool::pids`] gives the pids of the processes that run tasks, each on its own host.
    ///
    /// ```
    /// use multiproc::pool::{Pool, PoolError};
    ///
    /// #[multiproc::worker]
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// // Under `mpirun -n 3` this maps on ranks 1 and 2; here (no launcher) it says why not.
    /// match Pool::builder().mpi().build() {
    ///     Ok(pool) => assert_eq!(pool.map(square, 0..4)?, [0, 1, 4, 9]),
    ///     Err(PoolError::Mpi(why)) => assert!(why.contains("mpirun")),
    ///     Err(e) => return Err(e.into()),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "mpi")]
    pub fn mpi(mut self) -> Self {
        self.mpi = true;
        self
    }

    /// The number of worker processes (default [`cpu_count`]). Zero is an error at `build`.
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = Some(n);
        self
    }

    /// A task run once in each worker when it starts, before any other task (Python's
    /// `initializer` + `initargs`). If it fails or panics, the pool is unusable and every call
    /// returns [`PoolError::InitializerFailed`].
    pub fn initializer<K: IntoTask>(mut self, task: K) -> Self {
        let (name, args, fds) = task.into_task().into_parts();
        self.init = Some(if fds.len() > MAX_FDS_PER_MSG {
            Err(PoolError::TooManyDescriptors {
                count: fds.len(),
                max: MAX_FDS_PER_MSG,
            })
        } else {
            args.map(|a| (name.to_owned(), ByteBuf::from(a), Arc::new(fds)))
                .map_err(PoolError::Encode)
        });
        self
    }

    /// Retires each worker after it has run `k` tasks (chunks) and starts a fresh one (Python's
    /// `maxtasksperchild`). Zero is an error at `build`.
    pub fn maxtasksperchild(mut self, k: usize) -> Self {
        self.maxtasks = Some(k);
        self
    }

    /// How workers are started (default [`get_start_method`]); `Fork` is refused.
    pub fn start_method(mut self, m: StartMethod) -> Self {
        self.method = Some(m);
        self
    }

    /// How long [`Pool::terminate`] waits after SIGTERM before it sends SIGKILL (default 1 s).
    pub fn terminate_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Starts the workers and the pool's manager thread.
    pub fn build(self) -> Result<Pool, PoolError> {
        #[cfg(feature = "mpi")]
        if self.mpi {
            return self.build_mpi();
        }
        let processes = self.processes.unwrap_or_else(|| cpu_count().max(1));
        if processes == 0 {
            return Err(PoolError::InvalidProcesses);
        }
        let maxtasks = match self.maxtasks {
            Some(0) => return Err(PoolError::InvalidMaxTasks),
            Some(k) => k as u64,
            None => 0,
        };
        let method = self.method.unwrap_or_else(get_start_method);
        if method == StartMethod::Fork {
            return Err(PoolError::InvalidStartMethod);
        }
        let init = self.init.transpose()?;
        let cfg = manager::Config {
            processes,
            init,
            maxtasks,
            method,
            grace: self.grace,
            #[cfg(feature = "mpi")]
            relay: self.relay,
            #[cfg(not(feature = "mpi"))]
            relay: None,
        };
        let (wake_tx, wake_rx) = Pipe::duplex::<()>().map_err(|e| PoolError::Start(e.to_string()))?;
        let mut workers = Vec::with_capacity(processes);
        for _ in 0..processes {
            match manager::start_worker(&cfg) {
                Ok(w) => workers.push(w),
                Err(e) => {
                    // Dropping the started workers closes their pipes: they exit.
                    drop(workers);
                    return Err(e);
                }
            }
        }
        let pids = workers.iter().map(|w| w.pid()).collect();
        Pool::start(processes, pids, None, (wake_tx, wake_rx), move |sh, wake_rx| {
            manager::run(sh, wake_rx, workers, cfg)
        })
    }

    /// The workers are an MPI rank's local pool, served by the task server at `server`: the
    /// handles their tasks decode are relayed through it to rank 0 (`backend/mpi/relay.rs`).
    #[cfg(feature = "mpi")]
    pub(crate) fn relay_handles_to(mut self, server: crate::Addr<()>) -> Self {
        self.relay = Some(server);
        self
    }

    #[cfg(feature = "mpi")]
    fn build_mpi(self) -> Result<Pool, PoolError> {
        use crate::backend::mpi::{manager as mpi_manager, server::Open};
        if self.processes == Some(0) {
            return Err(PoolError::InvalidProcesses);
        }
        let maxtasks = match self.maxtasks {
            Some(0) => return Err(PoolError::InvalidMaxTasks),
            Some(_) if self.processes.is_none() => {
                return Err(PoolError::Mpi(
                    "maxtasksperchild needs local worker processes on the ranks: set processes(k) too".into(),
                ))
            }
            Some(k) => k as u64,
            None => 0,
        };
        if self.method == Some(StartMethod::Fork) {
            return Err(PoolError::InvalidStartMethod);
        }
        let init = match self.init.transpose()? {
            Some((_, _, fds)) if !fds.is_empty() => {
                return Err(PoolError::Mpi(
                    "the initializer carries descriptors, which cannot be sent to another rank".into(),
                ))
            }
            Some((name, args, _)) => Some((name, args)),
            None => None,
        };
        let open = Open {
            procs: self.processes.map(|k| k as u32),
            init,
            maxtasks,
            method: self.method,
        };
        let (wake_tx, wake_rx) = Pipe::duplex::<()>().map_err(|e| PoolError::Start(e.to_string()))?;
        let (ranks, pids, broken) = mpi_manager::open(&open)?;
        let processes = pids.len().max(1);
        Pool::start(processes, pids, broken, (wake_tx, wake_rx), move |sh, wake_rx| {
            mpi_manager::run(sh, wake_rx, ranks)
        })
    }
}

/// Python's default chunk size for a map over `len` items: ceil(len / (4 × workers)).
fn default_chunksize(len: usize, workers: usize) -> usize {
    len.div_ceil(workers * 4).max(1)
}

/// A pool of worker processes that run `#[worker]` tasks: `apply`, `map`, `starmap`, their
/// async forms, `imap` and `imap_unordered` (Python's `multiprocessing.Pool`). See the
/// [module documentation](self) for the design and the fault guarantees.
///
/// Every method takes `&self`: a pool can be shared between threads (`Pool` is `Sync`).
///
/// # Example
/// ```
/// use multiproc::pool::{Pool, PoolError};
///
/// #[multiproc::worker]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// #[multiproc::worker]
/// fn boom(x: u64) -> u64 {
///     if x == 2 {
///         panic!("two");
///     }
///     x
/// }
///
/// let pool = Pool::new(2)?;
/// assert_eq!(pool.map(square, 1..=3)?, [1, 4, 9]);
/// let r = pool.apply_async(square(5))?;
/// assert_eq!(r.get()?, 25);
/// // A failing task fails only itself; map reports the first error, map_results every outcome.
/// assert!(matches!(pool.map(boom, 0..4), Err(PoolError::Panicked { .. })));
/// let all = pool.map_results(boom, 0..4)?;
/// assert_eq!(all.iter().filter(|r| r.is_ok()).count(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pool {
    shared: Arc<Shared>,
    manager: Mutex<Option<JoinHandle<()>>>,
    processes: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("Pool")
            .field("processes", &self.processes)
            .field("pids", &st.pids)
            .field("closed", &st.closed)
            .field("terminated", &st.terminating)
            .finish()
    }
}

impl Pool {
    /// Starts a pool of `n` worker processes. `n == 0` is [`PoolError::InvalidProcesses`].
    pub fn new(n: usize) -> Result<Pool, PoolError> {
        Pool::builder().processes(n).build()
    }

    /// A builder for a pool with non-default settings.
    pub fn builder() -> PoolBuilder {
        PoolBuilder {
            processes: None,
            init: None,
            maxtasks: None,
            method: None,
            grace: Duration::from_secs(1),
            #[cfg(feature = "mpi")]
            mpi: false,
            #[cfg(feature = "mpi")]
            relay: None,
        }
    }

    /// Makes the shared state and starts the manager thread running `run`.
    fn start<F>(
        processes: usize,
        pids: Vec<i32>,
        broken: Option<PoolError>,
        (wake_tx, wake_rx): (Connection<()>, Connection<()>),
        run: F,
    ) -> Result<Pool, PoolError>
    where
        F: FnOnce(Arc<Shared>, Connection<()>) + Send + 'static,
    {
        let shared = Arc::new(Shared {
            st: Mutex::new(St {
                queue: VecDeque::new(),
                closed: false,
                terminating: false,
                finished: false,
                broken,
                woken: false,
                pids,
            }),
            wake_tx,
            manager: Mutex::new(None),
            spares: Spares::default(),
        });
        let sh = shared.clone();
        let handle = std::thread::Builder::new()
            .name("multiproc-pool".into())
            .spawn(move || {
                *sh.manager.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::thread::current().id());
                run(sh, wake_rx)
            })
            .map_err(|e| PoolError::Start(format!("cannot start the pool's manager thread: {e}")))?;
        Ok(Pool {
            shared,
            manager: Mutex::new(Some(handle)),
            processes,
        })
    }

    /// Queues raw chunks (the MPI backend's task servers relay chunks to a local pool).
    #[cfg(feature = "mpi")]
    pub(crate) fn submit_chunks(&self, chunks: Vec<Chunk>) -> Result<(), (PoolError, Vec<Chunk>)> {
        self.shared.submit(chunks)
    }

    /// The number of worker processes.
    pub fn processes(&self) -> usize {
        self.processes
    }

    /// The pids of the current workers (they change as workers are replaced). Empty once the
    /// pool has shut down.
    pub fn pids(&self) -> Vec<i32> {
        self.shared.lock().pids.clone()
    }

    /// Submits `n` tasks (exactly what `tasks` yields), each chunk as soon as it is built
    /// when the call has no per-task callbacks (with them, once every chunk is built: a
    /// callback must not run for a call that then fails). If a task cannot be sent (its
    /// arguments do not serialise), the whole call fails with that error, as if nothing had
    /// been scheduled: its queued chunks are withdrawn, and the results of chunks already
    /// running are dropped.
    fn submit_fixed<R: DeserializeOwned + Send + 'static>(
        &self,
        n: usize,
        tasks: impl Iterator<Item = Task<R>>,
        chunksize: usize,
        deadline: Option<Duration>,
        cbs: Callbacks<R>,
        whole: Option<Callbacks<Vec<R>>>,
    ) -> Result<Arc<Fixed<R>>, PoolError> {
        self.shared.check_open()?;
        let stream = cbs.is_empty();
        let fixed = Fixed::new(n, cbs, whole);
        let mut chunker = Chunker::new(chunksize, Some(&self.shared.spares));
        let (mut seq, mut start) = (0, 0);
        let mut failed: Option<PoolError> = None;
        let mut held: Vec<Chunk> = Vec::new();
        let mut send = |seg: Segment| {
            if failed.is_some() {
                return;
            }
            match seg {
                Segment::Fail { err } => failed = Some(err),
                Segment::Run { count, body, fds } => {
                    let chunk = Chunk {
                        sink: fixed.clone(),
                        seq,
                        start,
                        count,
                        body,
                        fds,
                        deadline,
                    };
                    seq += 1;
                    start += count;
                    if !stream {
                        held.push(chunk);
                    } else if let Err((e, _)) = self.shared.submit(vec![chunk]) {
                        failed = Some(e);
                    }
                }
            }
        };
        for t in tasks {
            chunker.push(t, &mut send);
        }
        chunker.flush(&mut send);
        if failed.is_none() && !held.is_empty() {
            if let Err((e, _)) = self.shared.submit(held) {
                failed = Some(e);
            }
        }
        if failed.is_none() && start != n {
            // Only an iterator whose exact `size_hint` is wrong gets here (see `map_fixed`).
            failed = Some(PoolError::Encode(format!(
                "the items' iterator yielded {start} items where its size_hint said exactly {n}"
            )));
        }
        match failed {
            None => Ok(fixed),
            Some(err) => {
                fixed.abandon();
                self.shared.withdraw(&fixed);
                Err(err)
            }
        }
    }

    fn result<R>(&self, inner: Arc<Fixed<R>>) -> AsyncResult<R> {
        AsyncResult {
            inner,
            shared: self.shared.clone(),
        }
    }

    fn map_result<R>(&self, inner: Arc<Fixed<R>>) -> MapResult<R> {
        MapResult {
            inner,
            shared: self.shared.clone(),
        }
    }

    // ----- apply -------------------------------------------------------------------------

    /// Runs one task in a worker and waits for its result (Python's `apply`).
    pub fn apply<K>(&self, task: K) -> Result<K::Output, PoolError>
    where
        K: IntoTask,
        K::Output: DeserializeOwned + Send + 'static,
    {
        self.apply_async(task)?.get()
    }

    /// Submits one task and returns a handle to its result (Python's `apply_async`). A task
    /// argument that cannot be serialised is an error here, before anything is scheduled.
    pub fn apply_async<K>(&self, task: K) -> Result<AsyncResult<K::Output>, PoolError>
    where
        K: IntoTask,
        K::Output: DeserializeOwned + Send + 'static,
    {
        self.apply_async_with(task, Callbacks::new())
    }

    /// [`apply_async`](Self::apply_async) with callbacks run in the parent when the result
    /// (or the error) arrives.
    pub fn apply_async_with<K>(
        &self,
        task: K,
        callbacks: Callbacks<K::Output>,
    ) -> Result<AsyncResult<K::Output>, PoolError>
    where
        K: IntoTask,
        K::Output: DeserializeOwned + Send + 'static,
    {
        let inner = self.submit_fixed(1, std::iter::once(task.into_task()), 1, None, callbacks, None)?;
        Ok(self.result(inner))
    }

    /// [`apply_async`](Self::apply_async) with a deadline (beyond Python): if the task runs
    /// longer than `deadline` (counted from when its worker starts it), the worker is killed
    /// and replaced, and the task fails with [`PoolError::TimedOut`].
    pub fn apply_async_with_deadline<K>(&self, task: K, deadline: Duration) -> Result<AsyncResult<K::Output>, PoolError>
    where
        K: IntoTask,
        K::Output: DeserializeOwned + Send + 'static,
    {
        let inner = self.submit_fixed(
            1,
            std::iter::once(task.into_task()),
            1,
            Some(deadline),
            Callbacks::new(),
            None,
        )?;
        Ok(self.result(inner))
    }

    // ----- map ---------------------------------------------------------------------------

    /// Runs `f(item)` for every item and returns the results in order (Python's `map`), with
    /// the default chunk size ceil(len / (4 × workers)). `f` is a `#[worker]` task
    /// constructor, e.g. `pool.map(square, 0..100)`.
    ///
    /// If tasks fail, `map` still waits for every chunk, then returns the first error in input
    /// order (CPython's behaviour since bpo-23992); [`map_results`](Self::map_results) gives
    /// every result or error. An argument that cannot be serialised fails the whole call
    /// (`PoolError::Encode`), as if nothing had been scheduled.
    ///
    /// The items are read as the chunks are queued when the iterator's `size_hint` is exact
    /// (a range, a `Vec`, a `map` of either), so the workers start before the last item is
    /// read; any other iterator is gathered first, as Python's `map` makes a list. An
    /// iterator whose exact `size_hint` is wrong (a bug in that iterator) fails the call.
    pub fn map<A, R, F, T>(&self, f: F, items: impl IntoIterator<Item = A>) -> Result<Vec<R>, PoolError>
    where
        F: Fn(A) -> T,
        T: IntoTask<Output = R>,
        R: DeserializeOwned + Send + 'static,
    {
        self.map_async(f, items)?.get()
    }

    /// [`map`](Self::map) with an explicit chunk size (0 is [`PoolError::InvalidChunksize`]).
    pub fn map_chunked<A, R, F, T>(
        &self,
        f: F,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<Vec<R>, PoolError>
    where
        F: Fn(A) -> T,
        T: IntoTask<Output = R>,
        R: DeserializeOwned + Send + 'static,
    {
        self.map_fixed(f, items, Some(chunksize), Callbacks::new(), None)?.get()
    }

    /// Like [`map`](Self::map), but returns every task's result or error, in input order
    /// ("map without failfast"). The outer error is for the call itself (closed pool,
    /// unserialisable argument, Ctrl-C).
    pub fn map_results<A, R, F, T>(
        &self,
        f: F,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Vec<Result<R, PoolError>>, PoolError>
    where
        F: Fn(A) -> T,
        T: IntoTask<Output = R>,
        R: DeserializeOwned + Send + 'static,
    {
        self.map_async(f, items)?.get_results()
    }

    /// Submits `f(item)` for every item and returns a handle to the results (Python's
    /// `map_async`).
    pub fn map_async<A, R, F, T>(&self, f: F, items: impl IntoIterator<Item = A>) -> Result<MapResult<R>, PoolError>
    where
        F: Fn(A) -> T,
        T: IntoTask<Output = R>,
        R: DeserializeOwned + Send + 'static,
    {
        self.map_fixed(f, items, None, Callbacks::new(), None)
    }

    /// [`map_async`](Self::map_async) with a chunk size (`None`: the default) and callbacks, as
    /// Python's `map_async(f, items, chunksize, callback, error_callback)`: once every task is
    /// done, and before the results are ready to `get`, `on_result` runs **once, with the whole
    /// list** of results in input order, or, if some task failed, `on_error` runs once with the
    /// first error in input order. (As in Python, an empty input calls neither.) For a callback
    /// per task, use [`map_async_each`](Self::map_async_each).
    ///
    /// ```
    /// use multiproc::pool::{Callbacks, Pool};
    /// use std::sync::mpsc;
    ///
    /// #[multiproc::worker]
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// let pool = Pool::new(2)?;
    /// let (tx, rx) = mpsc::channel();
    /// let cbs = Callbacks::new().on_result(move |all: &Vec<u64>| tx.send(all.clone()).unwrap());
    /// let r = pool.map_async_with(square, 1..=4, None, cbs)?;
    /// assert_eq!(r.get()?, [1, 4, 9, 16]);
    /// assert_eq!(rx.recv()?, [1, 4, 9, 16]); // called once, with the list
    /// assert!(rx.try_recv().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map_async_with<A, R, F, T>(
        &self,
        f: F,
        items: impl IntoIterator<Item = A>,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<R>>,
    ) -> Result<MapResult<R>, PoolError>
    where
        F: Fn(A) -> T,
        T: IntoTask<Output = R>,
        R: DeserializeOwned + Send + 'static,
    {
        self.map_fixed(f, items, chunksize, Callbacks::new(), Some(callbacks))
    }

    /// [`map_async`](Self::map_async) with a chunk size (`None`: the default) and callbacks
    /// run in the parent **for each task**: `on_result` for each result, `on_error` for each
    /// error, as the tasks finish (in completion order). Python's `map_async` calls its
    /// callback once with the whole list instead: that is [`map_async_with`](Self::map_async_with).
    pub fn map_async_each<A, R, F, T>(
        &self,
        f: F,
        items: impl IntoIterator<Item = A>,
        chunksize: Option<usize>,
        callbacks: Callbacks<R>,
    ) -> Result<MapResult<R>, PoolError>
    where
        F: Fn(A) -> T,
        T: IntoTask<Output = R>,
        R: DeserializeOwned + Send + 'static,
    {
        self.map_fixed(f, items, chunksize, callbacks, None)
    }

    fn map_fixed<A, R, F, T>(
        &self,
        f: F,
        items: impl IntoIterator<Item = A>,
        chunksize: Option<usize>,
        callbacks: Callbacks<R>,
        whole: Option<Callbacks<Vec<R>>>,
    ) -> Result<MapResult<R>, PoolError>
    where
        F: Fn(A) -> T,
        T: IntoTask<Output = R>,
        R: DeserializeOwned + Send + 'static,
    {
        if chunksize == Some(0) {
            return Err(PoolError::InvalidChunksize);
        }
        self.shared.check_open()?;
        let mut items = items.into_iter();
        // The number of items sizes the default chunks and the result. An iterator that says
        // exactly how many items it has (a range, a `Vec`, a `map` of either) is read as the
        // chunks are queued; any other is gathered first, as Python's `map` makes a list.
        let inner = match items.size_hint() {
            (lo, Some(hi)) if lo == hi => {
                let n = lo;
                let cs = chunksize.unwrap_or_else(|| default_chunksize(n, self.processes));
                let tasks = items.by_ref().take(n).map(&f).map(IntoTask::into_task);
                let inner = self.submit_fixed(n, tasks, cs, None, callbacks, whole)?;
                if items.next().is_some() {
                    inner.abandon();
                    self.shared.withdraw(&inner);
                    return Err(PoolError::Encode(format!(
                        "the items' iterator yielded more items than its size_hint said (exactly {n})"
                    )));
                }
                inner
            }
            _ => {
                let items: Vec<A> = items.collect();
                let n = items.len();
                let cs = chunksize.unwrap_or_else(|| default_chunksize(n, self.processes));
                let tasks = items.into_iter().map(f).map(IntoTask::into_task);
                self.submit_fixed(n, tasks, cs, None, callbacks, whole)?
            }
        };
        Ok(self.map_result(inner))
    }

    // ----- starmap -----------------------------------------------------------------------

    /// Like [`map`](Self::map), for task constructors of several arguments: each item is a
    /// tuple of arguments (Python's `starmap`), e.g. `pool.starmap(add, [(1, 2), (3, 4)])`.
    pub fn starmap<Args, R, F>(&self, f: F, items: impl IntoIterator<Item = Args>) -> Result<Vec<R>, PoolError>
    where
        F: StarFn<Args, R>,
        R: DeserializeOwned + Send + 'static,
    {
        self.starmap_async(f, items)?.get()
    }

    /// [`starmap`](Self::starmap) with an explicit chunk size.
    pub fn starmap_chunked<Args, R, F>(
        &self,
        f: F,
        items: impl IntoIterator<Item = Args>,
        chunksize: usize,
    ) -> Result<Vec<R>, PoolError>
    where
        F: StarFn<Args, R>,
        R: DeserializeOwned + Send + 'static,
    {
        self.map_fixed(|a| f.call_with(a), items, Some(chunksize), Callbacks::new(), None)?
            .get()
    }

    /// The async form of [`starmap`](Self::starmap) (Python's `starmap_async`).
    pub fn starmap_async<Args, R, F>(
        &self,
        f: F,
        items: impl IntoIterator<Item = Args>,
    ) -> Result<MapResult<R>, PoolError>
    where
        F: StarFn<Args, R>,
        R: DeserializeOwned + Send + 'static,
    {
        self.map_fixed(|a| f.call_with(a), items, None, Callbacks::new(), None)
    }

    /// [`starmap_async`](Self::starmap_async) with a chunk size and callbacks, run once with
    /// the whole list (or the first error), as Python's `starmap_async(.., callback=,
    /// error_callback=)`; see [`map_async_with`](Self::map_async_with).
    pub fn starmap_async_with<Args, R, F>(
        &self,
        f: F,
        items: impl IntoIterator<Item = Args>,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<R>>,
    ) -> Result<MapResult<R>, PoolError>
    where
        F: StarFn<Args, R>,
        R: DeserializeOwned + Send + 'static,
    {
        self.map_fixed(|a| f.call_with(a), items, chunksize, Callbacks::new(), Some(callbacks))
    }

    // ----- imap --------------------------------------------------------------------------

    /// A lazy iterator over `f(item)` in input order (Python's `imap`, chunk size 1). It
    /// streams: the input is consumed only a few chunks ahead of the results taken.
    pub fn imap<A, R, F, I, T>(&self, f: F, items: I) -> Result<IMap<R>, PoolError>
    where
        F: Fn(A) -> T + 'static,
        T: IntoTask<Output = R>,
        I: IntoIterator<Item = A>,
        I::IntoIter: 'static,
        R: DeserializeOwned + Send + 'static,
    {
        self.imap_with(f, items, 1, true)
    }

    /// [`imap`](Self::imap) with a chunk size (0 is [`PoolError::InvalidChunksize`]).
    pub fn imap_chunked<A, R, F, I, T>(&self, f: F, items: I, chunksize: usize) -> Result<IMap<R>, PoolError>
    where
        F: Fn(A) -> T + 'static,
        T: IntoTask<Output = R>,
        I: IntoIterator<Item = A>,
        I::IntoIter: 'static,
        R: DeserializeOwned + Send + 'static,
    {
        self.imap_with(f, items, chunksize, true)
    }

    /// Like [`imap`](Self::imap), but yields results as they complete (Python's
    /// `imap_unordered`).
    pub fn imap_unordered<A, R, F, I, T>(&self, f: F, items: I) -> Result<IMap<R>, PoolError>
    where
        F: Fn(A) -> T + 'static,
        T: IntoTask<Output = R>,
        I: IntoIterator<Item = A>,
        I::IntoIter: 'static,
        R: DeserializeOwned + Send + 'static,
    {
        self.imap_with(f, items, 1, false)
    }

    /// [`imap_unordered`](Self::imap_unordered) with a chunk size.
    pub fn imap_unordered_chunked<A, R, F, I, T>(&self, f: F, items: I, chunksize: usize) -> Result<IMap<R>, PoolError>
    where
        F: Fn(A) -> T + 'static,
        T: IntoTask<Output = R>,
        I: IntoIterator<Item = A>,
        I::IntoIter: 'static,
        R: DeserializeOwned + Send + 'static,
    {
        self.imap_with(f, items, chunksize, false)
    }

    fn imap_with<A, R, F, I, T>(&self, f: F, items: I, chunksize: usize, ordered: bool) -> Result<IMap<R>, PoolError>
    where
        F: Fn(A) -> T + 'static,
        T: IntoTask<Output = R>,
        I: IntoIterator<Item = A>,
        I::IntoIter: 'static,
        R: DeserializeOwned + Send + 'static,
    {
        if chunksize == 0 {
            return Err(PoolError::InvalidChunksize);
        }
        self.shared.check_open()?;
        let items = items.into_iter();
        let total = match items.size_hint() {
            (lo, Some(hi)) if lo == hi => Some(lo),
            _ => None,
        };
        let mut it = IMap {
            shared: self.shared.clone(),
            inner: IMap::<R>::new_stream(ordered),
            src: Box::new(items.map(move |a| f(a).into_task())),
            chunksize,
            window: 2 * self.processes + 2,
            exhausted: false,
            submitted: 0,
            items: 0,
            next_seq: 0,
            yielded: 0,
            total,
            _r: PhantomData,
        };
        it.start();
        Ok(it)
    }

    // ----- lifecycle ---------------------------------------------------------------------

    /// Accepts no more tasks; the workers exit once the submitted work is done (Python's
    /// `close`). Call [`join`](Self::join) to wait for them.
    pub fn close(&self) {
        let mut st = self.shared.lock();
        if st.closed {
            return;
        }
        st.closed = true;
        self.shared.wake(st);
    }

    /// Stops at once (Python's `terminate`): pending and running tasks fail with
    /// [`PoolError::Terminated`], workers get SIGTERM, then SIGKILL after the grace period
    /// (1 s by default). Returns once every worker is gone; it never waits for running tasks.
    pub fn terminate(&self) {
        self.shared.request_terminate();
        self.join_manager();
    }

    /// Waits for the workers to exit, after [`close`](Self::close) or
    /// [`terminate`](Self::terminate); before either it is [`PoolError::StillRunning`]. In
    /// interrupt mode a Ctrl-C ends the wait with [`PoolError::Interrupted`] and terminates the
    /// pool.
    pub fn join(&self) -> Result<(), PoolError> {
        self.join_until(None)
    }

    /// [`join`](Self::join), waiting at most `timeout`: [`PoolError::Timeout`] if the workers
    /// are still finishing their work then (the pool carries on; join again later).
    ///
    /// ```
    /// use std::time::Duration;
    /// use multiproc::Pool;
    ///
    /// #[multiproc::worker]
    /// fn nap(ms: u64) {
    ///     std::thread::sleep(Duration::from_millis(ms));
    /// }
    ///
    /// let pool = Pool::new(1)?;
    /// let r = pool.apply_async(nap(2000))?;
    /// pool.close();
    /// assert!(pool.join_timeout(Duration::from_millis(10)).is_err()); // still working
    /// pool.join_timeout(Duration::from_secs(60))?;
    /// assert!(r.ready());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), PoolError> {
        self.join_until(Some(deadline_after(timeout)))
    }

    fn join_until(&self, deadline: Option<Instant>) -> Result<(), PoolError> {
        let watch = crate::InterruptWatch::new();
        loop {
            {
                let st = self.shared.lock();
                if !st.closed && !st.terminating {
                    return Err(PoolError::StillRunning);
                }
                if st.finished {
                    break;
                }
            }
            let manager_done = self
                .manager
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .is_none_or(|h| h.is_finished());
            if manager_done {
                break;
            }
            if watch.fired() {
                self.shared.request_terminate();
                return Err(PoolError::Interrupted);
            }
            let mut slice = JOIN_SLICE;
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(PoolError::Timeout);
                }
                slice = slice.min(left);
            }
            std::thread::sleep(slice);
        }
        self.join_manager();
        Ok(())
    }

    fn join_manager(&self) {
        let on_manager =
            *self.shared.manager.lock().unwrap_or_else(|p| p.into_inner()) == Some(std::thread::current().id());
        if on_manager {
            // Called from a callback: the manager finishes after the callback returns.
            return;
        }
        let handle = self.manager.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for Pool {
    /// Terminates the pool (as Python's `with Pool() as p:` does on exit) and waits for its
    /// workers to be gone. After `close` + `join` there is nothing left to do.
    fn drop(&mut self) {
        self.terminate();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spares_keep_buffers_up_to_their_bound_and_hand_them_out_empty() {
        let s = Spares::default();
        assert_eq!(s.take().capacity(), 0, "nothing kept yet");
        let mut b = Vec::with_capacity(1000);
        b.extend_from_slice(b"old chunk");
        s.give(b);
        let b = s.take();
        assert!(b.is_empty() && b.capacity() >= 1000);
        // Beyond the byte bound, a buffer is freed, not kept.
        s.give(Vec::with_capacity(SPARE_BYTES + 1));
        assert_eq!(s.take().capacity(), 0);
        // Beyond the count bound too.
        for _ in 0..SPARE_BUFS + 10 {
            s.give(Vec::with_capacity(16));
        }
        let mut n = 0;
        while s.take().capacity() > 0 {
            n += 1;
        }
        assert_eq!(n, SPARE_BUFS);
        s.give(Vec::new());
        assert_eq!(s.take().capacity(), 0, "an empty vector is not worth keeping");
    }
}
