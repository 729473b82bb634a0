//! Processes: starting them, watching them, and how they end.

mod fork;
mod task;

use std::marker::PhantomData;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

pub(crate) use task::ArgBytes;
pub use task::{IntoTask, Task};

use crate::error::{CallError, CloseError, JoinError, ProcessError, SendError, StartMethodError};
use crate::mailbox::Addr;
use crate::runtime::{self, bootstrap};
use crate::sys;
use crate::wire::proto::{
    ExitInfo, HubError, Joined, Method, Op, Outcome, ProcId, ProcInfo, SpawnReq, TaskSpec, Value, Wait,
};

/// How a child process is created.
///
/// | method | how | speed (start+join, see `benches/RESULTS.md`) | runs |
/// |---|---|---|---|
/// | `ForkServer` (default) | a clean server process, started once by re-exec, forks children on request | fastest | `#[worker]` tasks |
/// | `Spawn` | re-executes the current binary | slower (exec + loading) | `#[worker]` tasks |
/// | `Fork` | forks the calling process | fast | tasks and non-serialisable closures |
///
/// # `Fork` in a multi-threaded parent
/// `fork` copies only the calling thread. If another thread held a lock at that moment (the
/// allocator's, stdout's, a `Mutex` of yours), the child inherits it locked and deadlocks when it
/// takes it. Rust programs are nearly always multi-threaded (the test harness, loggers, async
/// runtimes), so `Fork` is never the default; use it where you know no other thread can hold
/// such a lock, or where you need a closure that cannot be serialised.
///
/// # Example
/// ```
/// use multiproc::{Process, StartMethod};
///
/// #[multiproc::worker]
/// fn hello() -> String {
///     "hi".to_string()
/// }
///
/// let mut p = Process::new(hello()).start_method(StartMethod::Spawn).start()?;
/// assert_eq!(p.join()?, "hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StartMethod {
    /// Re-execute the current binary.
    Spawn,
    /// Ask the fork server (a clean process started once by re-exec) to fork a child.
    ForkServer,
    /// Fork the calling process. See the warning above.
    Fork,
}

/// The default start method (`StartMethod::to_u8`), with [`FIXED`] once it has been set or
/// used. While it is not fixed it is always the initial value, `ForkServer`.
static DEFAULT_METHOD: AtomicU8 = AtomicU8::new(UNFIXED_DEFAULT);
const UNFIXED_DEFAULT: u8 = 1;
const FIXED: u8 = 0x80;

impl StartMethod {
    fn to_u8(self) -> u8 {
        match self {
            StartMethod::Spawn => 0,
            StartMethod::ForkServer => 1,
            StartMethod::Fork => 2,
        }
    }
    fn from_u8(v: u8) -> Self {
        match v {
            0 => StartMethod::Spawn,
            2 => StartMethod::Fork,
            _ => StartMethod::ForkServer,
        }
    }
}

/// Sets the start method used when a process does not choose one (Python's
/// `set_start_method(method, force=False)`). The default is [`StartMethod::ForkServer`], the
/// fastest method that is safe in a multi-threaded parent (measured: `benches/RESULTS.md`).
///
/// As in Python, it can be set once: it fails with [`StartMethodError::AlreadySet`] if it
/// was set before, or fixed by use — a process or pool started with the default, or a call of
/// [`get_start_method`] — unless `force` is true. Call it at the start of `main`; for some
/// processes only, use [`get_context`](crate::get_context) instead.
pub fn set_start_method(m: StartMethod, force: bool) -> Result<(), StartMethodError> {
    let new = m.to_u8() | FIXED;
    if force {
        DEFAULT_METHOD.store(new, Ordering::SeqCst);
        return Ok(());
    }
    DEFAULT_METHOD
        .compare_exchange(UNFIXED_DEFAULT, new, Ordering::SeqCst, Ordering::SeqCst)
        .map(drop)
        .map_err(|cur| StartMethodError::AlreadySet {
            current: StartMethod::from_u8(cur & !FIXED),
        })
}

/// The start method used when a process does not choose one. As Python's
/// `get_start_method()`, it fixes the default if it was not set yet (a later
/// [`set_start_method`] without `force` fails).
pub fn get_start_method() -> StartMethod {
    StartMethod::from_u8(DEFAULT_METHOD.fetch_or(FIXED, Ordering::SeqCst) & !FIXED)
}

/// How a process ended.
///
/// # Example
/// ```
/// use multiproc::{ExitStatus, Process};
///
/// #[multiproc::worker]
/// fn fail() {
///     panic!("boom");
/// }
///
/// let mut p = Process::new(fail()).start()?;
/// assert!(p.join().is_err());
/// match p.exit_status() {
///     Some(ExitStatus::Panicked { message, .. }) => assert_eq!(message, "boom"),
///     other => panic!("unexpected {other:?}"),
/// }
/// assert_eq!(p.exitcode(), Some(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExitStatus {
    /// It exited with this code (0 after a worker returned normally).
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
    /// Its worker panicked (the process then exited with code 1).
    Panicked {
        /// The panic message.
        message: String,
        /// `file:line:column`, when known.
        location: Option<String>,
    },
}

impl ExitStatus {
    /// Python's `exitcode`: the exit code, 1 after a panic, `-N` when killed by signal `N`.
    pub fn code(&self) -> i32 {
        match self {
            ExitStatus::Exited(c) => *c,
            ExitStatus::Signaled(s) => -s,
            ExitStatus::Panicked { .. } => 1,
        }
    }

    /// Did the process end normally with code 0?
    pub fn success(&self) -> bool {
        matches!(self, ExitStatus::Exited(0))
    }

    fn from_joined(j: &Joined) -> Self {
        match (&j.outcome, &j.exit) {
            (Some(Outcome::Panicked(r)), _) => ExitStatus::Panicked {
                message: r.message.clone(),
                location: r.location.clone(),
            },
            (_, ExitInfo::Exited(c)) => ExitStatus::Exited(*c),
            (_, ExitInfo::Signaled(s)) => ExitStatus::Signaled(*s),
        }
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Exited(c) => write!(f, "exited with code {c}"),
            ExitStatus::Signaled(s) => write!(f, "killed by signal {s}"),
            ExitStatus::Panicked { message, location } => {
                write!(
                    f,
                    "panicked at {}: {message}",
                    location.as_deref().unwrap_or("an unknown location")
                )
            }
        }
    }
}

/// A description of a process: its name, pid and address. Returned by [`current_process`],
/// [`parent_process`] and [`active_children`].
///
/// # Example
/// ```
/// let me = multiproc::current_process();
/// assert_eq!(me.name(), "MainProcess");
/// assert_eq!(me.pid(), std::process::id() as i32);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub(crate) info: ProcInfo,
}

impl ProcessInfo {
    /// How this process was started, when it is the calling process and a child (`None` for
    /// the root, and for another process's description). Python's child-side
    /// `get_start_method()`.
    ///
    /// # Example
    /// ```
    /// use multiproc::{current_process, Process, StartMethod};
    ///
    /// #[multiproc::worker]
    /// fn how() -> Option<StartMethod> {
    ///     current_process().start_method()
    /// }
    ///
    /// assert_eq!(current_process().start_method(), None); // the root
    /// let mut p = Process::new(how()).start_method(StartMethod::Spawn).start()?;
    /// assert_eq!(p.join()?, Some(StartMethod::Spawn));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start_method(&self) -> Option<StartMethod> {
        if self.info.pid != sys::proc::getpid() {
            return None;
        }
        match runtime::STARTED_AS.load(Ordering::SeqCst) {
            1 => Some(StartMethod::Spawn),
            2 => Some(StartMethod::ForkServer),
            3 => Some(StartMethod::Fork),
            _ => None,
        }
    }

    /// The name (`MainProcess`, `Process-1`, or the one given at start).
    pub fn name(&self) -> &str {
        &self.info.name
    }
    /// The OS process id.
    pub fn pid(&self) -> i32 {
        self.info.pid
    }
    /// Is it daemonic?
    pub fn daemon(&self) -> bool {
        self.info.daemon
    }
    /// The process's address, for sending it messages of type `M`.
    pub fn addr<M>(&self) -> Addr<M> {
        Addr::new(self.info.proc, self.info.pid)
    }

    /// The hub's record of the process: `Ok(Some(exit))` once it has ended, `Ok(None)` while it
    /// runs, `Err(())` when the hub no longer knows it (it ended, and its starter has joined it
    /// or dropped its handle) or cannot be reached (the root has exited: every process of the
    /// program has ended with it).
    fn hub_state(&self) -> Result<Option<ExitInfo>, ()> {
        if self.info.pid == sys::proc::getpid() {
            return Ok(None);
        }
        match runtime::call(Op::ProcState(self.info.proc), None) {
            Ok(Value::State(s)) => Ok(s.exit),
            _ => Err(()),
        }
    }

    /// Is the process still running? Asks the hub (one round trip), so it works for any
    /// description: [`parent_process`] (Python's `parent_process().is_alive()`), an entry of
    /// [`active_children`], or [`Process::info`]. The calling process is always alive; a
    /// process the hub has forgotten (it ended and was joined) is not, nor is the root once it
    /// has exited.
    ///
    /// To *wait* for a process described here (a child blocking on "a message or my parent
    /// died"), pass it to [`wait`](crate::wait): a `ProcessInfo` is [`Waitable`](crate::Waitable).
    ///
    /// # Example
    /// ```
    /// use multiproc::{parent_process, Process};
    ///
    /// #[multiproc::worker]
    /// fn watch_parent() -> bool {
    ///     parent_process().map_or(false, |p| p.is_alive())
    /// }
    ///
    /// let mut p = Process::new(watch_parent()).start()?;
    /// assert!(p.join()?); // the root was alive while the child asked
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_alive(&self) -> bool {
        matches!(self.hub_state(), Ok(None))
    }

    /// Python's `exitcode`: `None` while the process runs, else its exit code (1 after a
    /// panic) or `-N` when it was killed by signal `N`. Also `None` when the hub no longer
    /// remembers how it ended (see [`is_alive`](Self::is_alive)); the [`Process`] handle keeps
    /// the answer for good.
    ///
    /// # Example
    /// ```
    /// use multiproc::Process;
    ///
    /// #[multiproc::worker]
    /// fn fail() {
    ///     std::process::exit(3);
    /// }
    ///
    /// let p = Process::new(fail()).start()?;
    /// let info = p.info();
    /// while info.is_alive() {
    ///     std::thread::sleep(std::time::Duration::from_millis(10));
    /// }
    /// assert_eq!(info.exitcode(), Some(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn exitcode(&self) -> Option<i32> {
        match self.hub_state() {
            Ok(Some(ExitInfo::Exited(c))) => Some(c),
            Ok(Some(ExitInfo::Signaled(s))) => Some(-s),
            _ => None,
        }
    }
}

/// This process.
pub fn current_process() -> ProcessInfo {
    match runtime::rt() {
        Ok(rt) => ProcessInfo { info: rt.me.clone() },
        Err(_) => ProcessInfo {
            info: ProcInfo {
                proc: crate::wire::proto::ROOT_PROC,
                pid: sys::proc::getpid(),
                name: "MainProcess".into(),
                daemon: false,
            },
        },
    }
}

/// The process that started this one (`None` in the root).
pub fn parent_process() -> Option<ProcessInfo> {
    runtime::rt().ok()?.parent.clone().map(|info| ProcessInfo { info })
}

/// The children of this process that are still running. Finished children are reaped by the
/// hub as they exit, so none is ever a zombie.
pub fn active_children() -> Result<Vec<ProcessInfo>, CallError> {
    match runtime::call(Op::ActiveChildren, None)? {
        Value::Procs(v) => Ok(v.into_iter().map(|info| ProcessInfo { info }).collect()),
        other => Err(CallError::Protocol(format!("unexpected reply {other:?}"))),
    }
}

/// The number of CPUs (Python's `cpu_count()`).
pub fn cpu_count() -> usize {
    sys::proc::cpu_count()
}

enum Body<T> {
    Task(Task<T>),
    Closure(fork::Closure),
}

/// A process not started yet. Made by [`Process::new`] or [`Process::fork`]; [`start`] turns it
/// into a running [`Process`]. Because starting consumes the builder, starting twice, joining
/// before start and setting `daemon` after start are compile-time errors.
///
/// [`start`]: ProcessBuilder::start
///
/// # Example
/// ```
/// use multiproc::{Process, StartMethod};
///
/// #[multiproc::worker]
/// fn hi() -> String {
///     "hi".into()
/// }
///
/// let builder = Process::new(hi()).name("greeter").daemon(false).start_method(StartMethod::Spawn);
/// let mut p = builder.start()?; // consumes the builder: it cannot be started twice
/// assert_eq!(p.join()?, "hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a process builder does nothing until .start() is called"]
pub struct ProcessBuilder<T> {
    body: Body<T>,
    name: Option<String>,
    daemon: bool,
    method: Option<StartMethod>,
    ignore_sigint: bool,
}

impl<T> ProcessBuilder<T> {
    /// Names the process (default `Process-N`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Makes the process daemonic: it is terminated when its parent exits normally, and it may
    /// not start children of its own.
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = daemon;
        self
    }

    /// Chooses the start method for this process (default: [`get_start_method`]).
    pub fn start_method(mut self, m: StartMethod) -> Self {
        self.method = Some(m);
        self
    }

    /// Makes the child ignore SIGINT and report panics only to its parent (used by pools).
    #[doc(hidden)]
    pub fn ignore_sigint(mut self, yes: bool) -> Self {
        self.ignore_sigint = yes;
        self
    }

    /// Starts the process.
    ///
    /// A `ForkServer` start normally returns at once (a child is forked in advance), but it
    /// waits for the fork server when none is ready, for as long as it takes; use
    /// [`start_timeout`](Self::start_timeout) to bound that.
    pub fn start(self) -> Result<Process<T>, ProcessError> {
        self.start_wait(Wait::Forever)
    }

    /// [`start`](Self::start), waiting at most `timeout` for the child to be created (only a
    /// `ForkServer` start can wait: for the fork server, if it is busy or stopped). On
    /// [`ProcessError::Timeout`] you get no process: a child the fork server creates later is
    /// killed by the hub the moment it learns its pid (so its task can at most have begun; do
    /// not rely on a task with side effects never having started).
    ///
    /// ```
    /// use std::time::Duration;
    /// use multiproc::Process;
    ///
    /// #[multiproc::worker]
    /// fn hello() -> String {
    ///     "hello".into()
    /// }
    ///
    /// let mut p = Process::new(hello()).start_timeout(Duration::from_secs(30))?;
    /// assert_eq!(p.join()?, "hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start_timeout(self, timeout: Duration) -> Result<Process<T>, ProcessError> {
        // Never zero: the hub arms no timer for `Wait::Never`.
        self.start_wait(Wait::Micros(timeout.as_micros().clamp(1, u64::MAX as u128) as u64))
    }

    fn start_wait(self, wait: Wait) -> Result<Process<T>, ProcessError> {
        bootstrap::ensure_linked();
        let rt = runtime::rt().map_err(ProcessError::from)?;
        let (default_name, ident) = rt.next_child_ident();
        let name = self.name.unwrap_or(default_name);
        let method = match (&self.body, self.method) {
            (Body::Closure(_), Some(m)) if m != StartMethod::Fork => return Err(ProcessError::Os(
                "a closure can only be started with StartMethod::Fork; use a #[worker] task for Spawn or ForkServer"
                    .into(),
            )),
            (Body::Closure(_), _) => StartMethod::Fork,
            (Body::Task(_), m) => m.unwrap_or_else(get_start_method),
        };
        let info = match self.body {
            Body::Task(task) => {
                let (worker, args, fds) = task.into_parts();
                let args = args.map_err(ProcessError::Encode)?;
                match method {
                    StartMethod::Fork => fork::start(
                        name,
                        self.daemon,
                        ident,
                        fork::ForkBody::Task(
                            TaskSpec {
                                worker: worker.into(),
                                args: ByteBuf::from(args),
                                nfds: 0,
                            },
                            fds,
                        ),
                    )?,
                    StartMethod::Spawn | StartMethod::ForkServer => {
                        let req = SpawnReq {
                            task: TaskSpec {
                                worker: worker.into(),
                                args: ByteBuf::from(args),
                                nfds: fds.len() as u32,
                            },
                            name,
                            daemon: self.daemon,
                            method: if method == StartMethod::Spawn {
                                Method::Spawn
                            } else {
                                Method::ForkServer
                            },
                            ignore_sigint: self.ignore_sigint,
                            ident,
                            wait,
                            authkey: ByteBuf::from(runtime::authkey::authkey().as_bytes().to_vec()),
                        };
                        let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
                        match runtime::call_fds(Op::Spawn(req), &borrowed, runtime::deadline_of(wait))? {
                            (Value::Proc(info), _) => info,
                            (other, _) => return Err(CallError::Protocol(format!("unexpected reply {other:?}")).into()),
                        }
                    }
                }
            }
            Body::Closure(f) => fork::start(name, self.daemon, ident, fork::ForkBody::Closure(f))?,
        };
        Ok(Process {
            info,
            state: Mutex::new(State::Running),
            _t: PhantomData,
        })
    }
}

enum State {
    Running,
    Ended(Joined),
    Taken(Joined),
}

/// A running (or finished) child process. `T` is what its worker returns; [`join`] hands it
/// over, like [`std::thread::JoinHandle::join`].
///
/// Dropping a `Process` does not stop the child. When the program's root process exits
/// normally, daemonic children are terminated and the others are joined, as in Python; if the
/// root dies abruptly (even by SIGKILL), every descendant is killed.
///
/// # Example
/// ```
/// use multiproc::Process;
///
/// #[multiproc::worker]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let mut p = Process::new(square(7)).name("sq").start()?;
/// assert_eq!(p.name(), "sq");
/// assert_eq!(p.join()?, 49);
/// assert_eq!(p.exitcode(), Some(0));
/// assert!(!p.is_alive());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`join`]: Process::join
pub struct Process<T> {
    info: ProcInfo,
    state: Mutex<State>,
    _t: PhantomData<fn() -> T>,
}

impl Process<()> {
    /// Prepares a process that runs `task` (a `#[worker]` call, or a `#[worker]` type).
    // A builder, so that start-twice and join-before-start cannot compile.
    #[allow(clippy::new_ret_no_self)]
    pub fn new<K: IntoTask>(task: K) -> ProcessBuilder<K::Output> {
        ProcessBuilder {
            body: Body::Task(task.into_task()),
            name: None,
            daemon: false,
            method: None,
            ignore_sigint: false,
        }
    }

    /// Prepares a process that runs a closure in a forked copy of this process
    /// ([`StartMethod::Fork`]; read its warning). The closure's value is returned by `join`.
    pub fn fork<F, R>(f: F) -> ProcessBuilder<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Serialize,
    {
        let closure: fork::Closure = Box::new(move || rmp_serde::to_vec(&f()).map_err(|e| e.to_string()));
        ProcessBuilder {
            body: Body::Closure(closure),
            name: None,
            daemon: false,
            method: None,
            ignore_sigint: false,
        }
    }
}

impl<T> Process<T> {
    /// The OS process id.
    pub fn pid(&self) -> i32 {
        self.info.pid
    }

    /// The process's name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// Is it daemonic?
    pub fn daemon(&self) -> bool {
        self.info.daemon
    }

    /// A description of the process (name, pid, address).
    pub fn info(&self) -> ProcessInfo {
        ProcessInfo {
            info: self.info.clone(),
        }
    }

    /// The process's address, for sending it messages of type `M`.
    pub fn addr<M>(&self) -> Addr<M> {
        Addr::new(self.info.proc, self.info.pid)
    }

    /// Sends a message to the process's mailbox. See [`Addr::send`].
    pub fn send<M: Serialize>(&self, msg: &M) -> Result<(), SendError> {
        self.addr::<M>().send(msg)
    }

    /// The hub's id for this process.
    #[doc(hidden)]
    pub fn proc_id(&self) -> ProcId {
        self.info.proc
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks the hub how the process ended, waiting as `wait` says; caches the answer.
    fn poll_end(&self, wait: Wait) -> Result<(), JoinError> {
        if !matches!(*self.lock(), State::Running) {
            return Ok(());
        }
        // Watch first, then look for a Ctrl-C that arrived before: none falls in between.
        let watch = crate::InterruptWatch::new();
        if wait != Wait::Never && runtime::interrupt::take_pending() {
            return Err(JoinError::Interrupted);
        }
        let deadline = runtime::deadline_of(wait);
        match runtime::call(
            Op::Join {
                proc: self.info.proc,
                wait,
            },
            deadline,
        ) {
            Ok(Value::Joined(j)) => {
                let by_sigint = matches!(j.exit, ExitInfo::Signaled(s) if s == sys::signal::SIGINT);
                {
                    let mut st = self.lock();
                    if matches!(*st, State::Running) {
                        *st = State::Ended(j);
                    }
                }
                // In interrupt mode, a Ctrl-C that arrived while we waited wins, even if the
                // same Ctrl-C is what ended the child. The outcome is kept for the next join.
                // A child killed by SIGINT was most likely hit by the terminal's Ctrl-C to the
                // whole group, whose delivery to this process may lag the hub's news of the
                // death by a moment: give our handler that moment.
                if wait != Wait::Never && by_sigint && runtime::interrupt::catching() {
                    let until = std::time::Instant::now() + Duration::from_millis(250);
                    while !watch.fired() && std::time::Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                if wait != Wait::Never && watch.fired() {
                    return Err(JoinError::Interrupted);
                }
                Ok(())
            }
            Ok(other) => Err(JoinError::Call(CallError::Protocol(format!(
                "unexpected reply {other:?}"
            )))),
            Err(CallError::Hub(HubError::UnknownProcess)) => Err(JoinError::Call(CallError::Protocol(
                "the hub no longer knows this process".into(),
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Is the process still running?
    pub fn is_alive(&self) -> bool {
        match self.poll_end(Wait::Never) {
            Ok(()) => matches!(*self.lock(), State::Running),
            Err(JoinError::Timeout) => true,
            Err(_) => false,
        }
    }

    /// How it ended, or `None` while it runs (does not wait).
    pub fn exit_status(&self) -> Option<ExitStatus> {
        let _ = self.poll_end(Wait::Never);
        match &*self.lock() {
            State::Running => None,
            State::Ended(j) | State::Taken(j) => Some(ExitStatus::from_joined(j)),
        }
    }

    /// Python's `exitcode`: `None` while running, else the exit code, 1 after a panic, and
    /// `-N` when killed by signal `N`.
    pub fn exitcode(&self) -> Option<i32> {
        self.exit_status().map(|s| s.code())
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) -> Result<(), ProcessError> {
        self.signal(sys::signal::SIGTERM)
    }

    /// Sends SIGKILL.
    pub fn kill(&self) -> Result<(), ProcessError> {
        self.signal(sys::signal::SIGKILL)
    }

    /// Sends SIGINT (what Ctrl-C sends).
    pub fn interrupt(&self) -> Result<(), ProcessError> {
        self.signal(sys::signal::SIGINT)
    }

    /// Sends a signal by number.
    pub fn signal(&self, sig: i32) -> Result<(), ProcessError> {
        if !matches!(*self.lock(), State::Running) {
            return Ok(());
        }
        runtime::call(
            Op::Signal {
                proc: self.info.proc,
                sig,
            },
            None,
        )?;
        Ok(())
    }
}

impl<T> Process<T> {
    /// Releases the handle of a process that has ended (Python's `close()`), and returns how it
    /// ended. What the hub kept about the process (its entry, its exit status and unclaimed
    /// result) is freed, and the handle is consumed, so using it afterwards (`join`,
    /// `is_alive`, `kill`, ...) does not compile — Python's `ValueError: process object is
    /// closed`, caught before the program runs.
    ///
    /// Closing a process that is still running is an error, as in Python:
    /// [`CloseError::Running`] hands the handle back, to `join` or `terminate` first.
    ///
    /// # Example
    /// ```
    /// use multiproc::{ExitStatus, Process};
    ///
    /// #[multiproc::worker]
    /// fn answer() -> u32 {
    ///     42
    /// }
    ///
    /// let mut p = Process::new(answer()).start()?;
    /// assert_eq!(p.join()?, 42);
    /// assert_eq!(p.close()?, ExitStatus::Exited(0));
    /// // p.is_alive(); // error[E0382]: borrow of moved value: `p`
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    // The error hands the handle back (the crate's rule for errors that take a value); boxing
    // it would make `Err(CloseError::Running(p))` a box to unpack at every call site.
    #[allow(clippy::result_large_err)]
    pub fn close(self) -> Result<ExitStatus, CloseError<T>> {
        match self.poll_end(Wait::Never) {
            Ok(()) | Err(JoinError::Timeout) | Err(JoinError::Interrupted) => {}
            Err(JoinError::Call(error)) => return Err(CloseError::Call { error, process: self }),
            Err(other) => {
                return Err(CloseError::Call {
                    error: CallError::Protocol(other.to_string()),
                    process: self,
                })
            }
        }
        let status = match &*self.lock() {
            State::Running => None,
            State::Ended(j) | State::Taken(j) => Some(ExitStatus::from_joined(j)),
        };
        match status {
            // The hub forgot the child when it answered the join that told us how it ended;
            // dropping the handle now frees the rest.
            Some(s) => Ok(s),
            None => Err(CloseError::Running(self)),
        }
    }
}

impl<T: DeserializeOwned> Process<T> {
    /// Waits for the process to end and returns its worker's value.
    pub fn join(&mut self) -> Result<T, JoinError> {
        self.join_wait(Wait::Forever)
    }

    /// Like [`join`](Self::join), but gives up with [`JoinError::Timeout`] after `timeout`
    /// (the child keeps running). A zero timeout does not wait.
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<T, JoinError> {
        self.join_wait(Wait::from_timeout(Some(timeout)))
    }

    /// Returns the value if the process has ended, else [`JoinError::Running`].
    pub fn try_join(&mut self) -> Result<T, JoinError> {
        match self.join_wait(Wait::Never) {
            Err(JoinError::Timeout) => Err(JoinError::Running),
            other => other,
        }
    }

    fn join_wait(&mut self, wait: Wait) -> Result<T, JoinError> {
        self.poll_end(wait)?;
        let mut st = self.lock();
        let joined = match std::mem::replace(&mut *st, State::Running) {
            State::Running => return Err(JoinError::Timeout),
            State::Taken(j) => {
                *st = State::Taken(j);
                return Err(JoinError::ResultTaken);
            }
            State::Ended(j) => j,
        };
        let result = result_of::<T>(&joined);
        *st = State::Taken(joined);
        result
    }
}

/// The `.await` form (feature `tokio`).
#[cfg(feature = "tokio")]
impl<T: DeserializeOwned> Process<T> {
    /// [`join`](Self::join) as a future: waits for the process to end without blocking the
    /// runtime thread, then returns its value. Cancel-safe: dropping the future only stops
    /// waiting (the hub forgets the waiter; a later join still gets the value).
    ///
    /// # Example
    /// ```no_run
    /// #[multiproc::worker]
    /// fn add(a: u32, b: u32) -> u32 {
    ///     a + b
    /// }
    ///
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut p = multiproc::Process::new(add(2, 3)).start()?;
    /// assert_eq!(p.join_async().await?, 5);
    /// # Ok(()) }
    /// ```
    pub async fn join_async(&mut self) -> Result<T, JoinError> {
        if matches!(*self.lock(), State::Running) {
            if runtime::interrupt::take_pending() {
                return Err(JoinError::Interrupted);
            }
            let op = Op::Join {
                proc: self.info.proc,
                wait: Wait::Forever,
            };
            match runtime::aio::call(op, None).await {
                Ok(Value::Joined(j)) => {
                    let mut st = self.lock();
                    if matches!(*st, State::Running) {
                        *st = State::Ended(j);
                    }
                }
                Ok(other) => {
                    return Err(JoinError::Call(CallError::Protocol(format!(
                        "unexpected reply {other:?}"
                    ))))
                }
                Err(CallError::Hub(HubError::UnknownProcess)) => {
                    return Err(JoinError::Call(CallError::Protocol(
                        "the hub no longer knows this process".into(),
                    )))
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.join_wait(Wait::Never)
    }
}

fn result_of<T: DeserializeOwned>(j: &Joined) -> Result<T, JoinError> {
    match (&j.outcome, &j.exit) {
        (Some(Outcome::Returned(bytes)), _) => {
            rmp_serde::from_slice(bytes).map_err(|e| JoinError::Decode(e.to_string()))
        }
        (Some(Outcome::Panicked(r)), _) => Err(JoinError::Panicked {
            message: r.message.clone(),
            location: r.location.clone(),
        }),
        (Some(Outcome::Failed(m)), _) => Err(JoinError::Failed(m.clone())),
        (Some(Outcome::TooLarge { bytes, max }), _) => Err(JoinError::ResultTooLarge {
            bytes: *bytes,
            max: *max,
        }),
        // exit(0) without a value: fine for workers returning () or Option.
        (None, ExitInfo::Exited(0)) => rmp_serde::from_slice(&[0xc0]).map_err(|_| JoinError::Exited(0)),
        (None, ExitInfo::Exited(c)) => Err(JoinError::Exited(*c)),
        (None, ExitInfo::Signaled(s)) => Err(JoinError::Signaled(*s)),
    }
}

impl<T> Drop for Process<T> {
    /// Dropping a handle never stops the child (as in Python). If this handle never learned how
    /// the child ended, the hub is told that nobody will ask, so it forgets the child once it
    /// has ended (a started-and-dropped process costs the root nothing in the long run).
    fn drop(&mut self) {
        let running = matches!(*self.state.get_mut().unwrap_or_else(|p| p.into_inner()), State::Running);
        if !running {
            // The hub answered a join of this handle and forgot the child then.
            return;
        }
        let Some(rt) = runtime::rt_if_started() else { return };
        if rt.me.pid != sys::proc::getpid() {
            // A forked copy of the handle: the child belongs to the parent.
            return;
        }
        let _ = runtime::cast(crate::wire::proto::Cast::ProcDropped(self.info.proc));
    }
}

impl<T> std::fmt::Debug for Process<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.info.name)
            .field("pid", &self.info.pid)
            .finish()
    }
}
