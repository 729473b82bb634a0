//! The process's side of multiproc: who this process is, its connections to the hub, the
//! worker registry, and the bootstrap that turns a re-executed binary into a child.
//!
//! In the root, the first use of the library starts the hub thread and connects to it. In a
//! child, the bootstrap (which runs before `main`) sets the runtime up from the `ChildInit`
//! frame that the hub queued on the child's connection.
//!
//! Each thread that makes blocking calls gets its own connection (created on first use), so a
//! thread blocked in `acquire()` never delays another thread's `put()`. One-way bookkeeping
//! whose order matters (handle reference counts, the worker's outcome) goes through the
//! process's *main* connection under a mutex.

#[cfg(feature = "tokio")]
pub(crate) mod aio;
pub mod authkey;
pub(crate) mod bootstrap;
pub(crate) mod client;
pub mod fdpass;
pub(crate) mod handle;
pub(crate) mod interrupt;
pub mod registry;

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde_bytes::ByteBuf;

use crate::error::CallError;
use crate::hub::{self, Cmd, HubHandle};
use crate::sys;
use crate::wire::proto::{Cast, ChildInit, ObjId, Op, ProcInfo, Value, ROOT_PROC};
use crate::wire::DEFAULT_MAX_FRAME;
#[cfg(feature = "tokio")]
#[doc(hidden)]
pub use aio::{async_calls_undone, async_connections_opened};
use client::ClientConn;
pub use interrupt::InterruptWatch;

/// This process's side of its mailbox: the connection the hub pushes mail on (opened by the
/// first receive) and the messages read from it but not yet taken.
#[derive(Default)]
pub(crate) struct MailboxState {
    pub conn: Option<ClientConn>,
    /// Mail and signals read from the connection, in arrival order, not yet taken.
    pub buf: VecDeque<Inbound>,
}

/// One thing the hub pushed on the mailbox connection.
pub(crate) enum Inbound {
    /// An encoded message, with the descriptors that came with it (usually none).
    Mail(ByteBuf, Vec<OwnedFd>),
    /// A monitor or link signal.
    Signal(crate::wire::names_ops::SignalMsg),
}

/// Everything this process knows about itself.
pub(crate) struct Runtime {
    pub me: ProcInfo,
    pub parent: Option<ProcInfo>,
    pub ident: Vec<u32>,
    pub max_frame: usize,
    hub: Option<HubHandle>,
    main: Mutex<ClientConn>,
    gen: u64,
    /// How many children this process has started (names and identities count from it; zero
    /// means there is nothing to wind down at exit).
    child_seq: AtomicU32,
    refs: Mutex<HashMap<ObjId, usize>>,
    pub(crate) mailbox: Mutex<MailboxState>,
    /// Monitors removed after their `Down` was sent: that `Down` is dropped on arrival.
    pub(crate) flushed_monitors: Mutex<std::collections::HashSet<u64>>,
}

static RUNTIME: AtomicPtr<Runtime> = AtomicPtr::new(std::ptr::null_mut());
static ROOT_INIT: Mutex<()> = Mutex::new(());
static GEN: AtomicU64 = AtomicU64::new(1);
/// At exit, how long to wait for non-daemonic children before saying who we wait for.
const EXIT_QUIET: std::time::Duration = std::time::Duration::from_secs(1);
static MAX_FRAME: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_FRAME);

/// How this process was started: 0 the root, 1 `Spawn`, 2 `ForkServer`, 3 `Fork` (set by the
/// bootstrap and the fork path before the worker runs; read by `ProcessInfo::start_method`).
pub(crate) static STARTED_AS: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Set in processes that should not print panics (pool workers report them instead).
pub(crate) static QUIET_PANICS: AtomicBool = AtomicBool::new(false);

thread_local! {
    static CONN: RefCell<Option<(u64, ClientConn)>> = const { RefCell::new(None) };
}

/// Registers this thread's connection slot (its destructor) without opening a connection (see
/// `bootstrap::warm`).
pub(crate) fn warm_thread_conn() {
    CONN.with(|_| ());
}

/// Bounds on what one process can make the root (its hub) hold. Each has a default that leaves
/// ordinary workloads (1 MiB queue items, bursts of mail) unaffected; set them with
/// [`set_hub_limits`] before the library is first used in the root. Reaching a limit never
/// drops anything that was accepted, and never kills a connection that follows the protocol:
///
/// | limit | at the limit |
/// |---|---|
/// | `max_connections_per_process` | a child's new thread connection fails with "too many connections" (`HubError::Limit`) |
/// | `max_buffered_per_connection` | the hub stops reading requests from a connection while this many bytes of its replies wait unread; it reads on once they are taken |
/// | `max_mailbox_bytes` | mail waiting for one process beyond this makes the hub stop reading from each sender's connection until the receiver takes mail: `send` blocks (backpressure); `Addr::try_send` fails with `SendError::Full`, and `Addr::send_timeout` waits for room until its deadline |
/// | `frame_timeout` | a connection that leaves a frame incomplete this long is dropped as broken (for a child's main connection: the child is treated as dead) |
/// | `max_monitors_per_process` | `monitor` and `link` fail with "too many monitors/links" (`HubError::Limit`); also bounds the `Down` signals of already-ended processes waiting unread |
/// | `max_held_fds` | descriptors the hub keeps for queued items and held mail (a `Connection` or shared memory put in a Queue or sent to a mailbox) beyond this are refused: that put or send fails with `HubError::Limit` (the item is handed back) |
///
/// # Example
/// ```
/// use std::time::Duration;
/// use multiproc::runtime::{set_hub_limits, HubLimits};
///
/// set_hub_limits(HubLimits {
///     max_mailbox_bytes: 64 << 20,
///     frame_timeout: Duration::from_secs(120),
///     ..HubLimits::default()
/// });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubLimits {
    /// Connections one child may have open to the hub (one per thread that makes calls, plus
    /// its main and mailbox connections). Default 1024.
    pub max_connections_per_process: usize,
    /// Reply bytes queued for one connection beyond which the hub stops reading requests from
    /// it. Default 64 MiB.
    pub max_buffered_per_connection: usize,
    /// Mail bytes waiting for one process (in the hub, not yet taken by its receiver) beyond
    /// which senders are held back. Default 256 MiB.
    pub max_mailbox_bytes: usize,
    /// How long a frame may stay incomplete on a connection. Default 60 s.
    pub frame_timeout: std::time::Duration,
    /// Monitors one process may hold at once, and also links, and signals waiting unread for
    /// it from monitors of processes already ended (`monitor` and `link` beyond it fail with
    /// `HubError::Limit`). Names need no limit of their own: a process has at most one, of at
    /// most 255 bytes. Default 65,536.
    pub max_monitors_per_process: usize,
    /// Descriptors the hub may hold, in total, for queue items and mail that carry them (a
    /// `Connection`, shared memory). Past it a put or send that carries descriptors fails (the
    /// item is handed back), so that no process can fill the root's descriptor table. Default
    /// 512, well under the usual 1024 soft `RLIMIT_NOFILE` (a JoinableQueue item counts twice:
    /// the hub keeps a copy of each taken item until `task_done`).
    pub max_held_fds: usize,
}

impl Default for HubLimits {
    fn default() -> Self {
        HubLimits {
            max_connections_per_process: 1024,
            max_buffered_per_connection: 64 << 20,
            max_mailbox_bytes: 256 << 20,
            frame_timeout: std::time::Duration::from_secs(60),
            max_monitors_per_process: 65_536,
            max_held_fds: 512,
        }
    }
}

static HUB_LIMITS: Mutex<Option<HubLimits>> = Mutex::new(None);

/// Sets the hub's [`HubLimits`]. Takes effect only if called in the root process before the
/// library is first used there (like [`set_max_frame_size`]).
pub fn set_hub_limits(limits: HubLimits) {
    *HUB_LIMITS.lock().unwrap_or_else(|p| p.into_inner()) = Some(limits);
}

/// Sets the maximum frame size (default 64 MiB). Takes effect only if called before the library
/// is first used in the root process; children inherit the root's value.
pub fn set_max_frame_size(bytes: usize) {
    MAX_FRAME.store(bytes.max(1024), Ordering::SeqCst);
}

/// The maximum frame body in force in this process (the root's setting; see
/// [`set_max_frame_size`]). Does not start the hub.
pub fn max_frame_size() -> usize {
    match rt_if_started() {
        Some(rt) => rt.max_frame,
        None => MAX_FRAME.load(Ordering::SeqCst),
    }
}

/// Is this the root process with its runtime started (the only process where interrupt mode
/// exists)? Does not start the hub.
pub(crate) fn is_started_root() -> bool {
    rt_if_started().is_some_and(|rt| rt.is_root())
}

fn install(rt: Runtime) -> &'static Runtime {
    let p = Box::into_raw(Box::new(rt));
    // The previous runtime (if any, in a forked child) is leaked on purpose: other threads of
    // the parent may have held its locks at the fork, so it must never be touched or dropped.
    RUNTIME.store(p, Ordering::Release);
    // SAFETY: `p` comes from Box::into_raw and is never freed, so it is valid for 'static.
    unsafe { &*p }
}

/// The runtime, starting the hub if this is the root and it has not started yet. Inlined:
/// the synchronisation fast paths call it on every operation (one load and a branch).
#[inline]
pub(crate) fn rt() -> Result<&'static Runtime, CallError> {
    let p = RUNTIME.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: a non-null pointer was stored by `install` from a leaked Box.
        return Ok(unsafe { &*p });
    }
    init_root_cold()
}

#[cold]
#[inline(never)]
fn init_root_cold() -> Result<&'static Runtime, CallError> {
    init_root()
}

/// The runtime if it already exists (never starts the hub).
pub(crate) fn rt_if_started() -> Option<&'static Runtime> {
    let p = RUNTIME.load(Ordering::Acquire);
    // SAFETY: as in `rt`.
    (!p.is_null()).then(|| unsafe { &*p })
}

fn init_root() -> Result<&'static Runtime, CallError> {
    let _g = ROOT_INIT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(rt) = rt_if_started() {
        return Ok(rt);
    }
    let max_frame = MAX_FRAME.load(Ordering::SeqCst);
    let limits = HUB_LIMITS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_default();
    let handle = hub::start(hub::HubConfig { max_frame, limits }).map_err(io_err)?;
    let (mine, theirs) = sys::fd::socketpair().map_err(CallError::Io)?;
    handle.send(Cmd::MainConn(theirs)).map_err(io_err)?;
    let pid = sys::proc::getpid();
    let rt = Runtime {
        me: ProcInfo {
            proc: ROOT_PROC,
            pid,
            name: "MainProcess".into(),
            daemon: false,
        },
        parent: None,
        ident: Vec::new(),
        max_frame,
        hub: Some(handle),
        main: Mutex::new(ClientConn::new(mine, max_frame)),
        gen: GEN.fetch_add(1, Ordering::SeqCst),
        child_seq: AtomicU32::new(0),
        refs: Mutex::new(HashMap::new()),
        mailbox: Mutex::new(MailboxState::default()),
        flushed_monitors: Mutex::new(std::collections::HashSet::new()),
    };
    let rt = install(rt);
    sys::proc::at_exit(root_at_exit);
    // What the environment asks of the root (a snapshot server, dumps on a signal). The one
    // call from `runtime` up to `observe`: those are root threads that use the public API.
    crate::observe::root_started();
    Ok(rt)
}

fn io_err(e: std::io::Error) -> CallError {
    if let Some(why) = hub::stop_reason() {
        return CallError::HubStopped(why);
    }
    CallError::Io(sys::Errno::from_raw(e.raw_os_error().unwrap_or(nix::libc::EIO)))
}

/// Installs the runtime of a child from its init frame.
pub(crate) fn init_child(init: &ChildInit, main: OwnedFd) -> &'static Runtime {
    let max_frame = init.max_frame.min(usize::MAX as u64) as usize;
    MAX_FRAME.store(max_frame, Ordering::SeqCst);
    authkey::inherit(&init.authkey);
    let mut me = init.me.clone();
    // The hub learns a fork-server child's pid only after the fork; the child knows it now.
    me.pid = sys::proc::getpid();
    install(Runtime {
        me,
        parent: Some(init.parent.clone()),
        ident: init.ident.clone(),
        max_frame,
        hub: None,
        main: Mutex::new(ClientConn::new(main, max_frame)),
        gen: GEN.fetch_add(1, Ordering::SeqCst),
        child_seq: AtomicU32::new(0),
        refs: Mutex::new(HashMap::new()),
        mailbox: Mutex::new(MailboxState::default()),
        flushed_monitors: Mutex::new(std::collections::HashSet::new()),
    })
}

extern "C" fn root_at_exit() {
    if let Some(rt) = rt_if_started() {
        if rt.is_root() && rt.me.pid == sys::proc::getpid() {
            rt.shutdown_children();
        }
    }
}

impl Runtime {
    /// Which installation of the runtime this is: a `Fork` child installs its own, so state
    /// kept per process (pooled connections, reusable reply slots) can tell it was inherited.
    pub(crate) fn generation(&self) -> u64 {
        self.gen
    }

    /// Is this the root process (the one running the hub)?
    pub fn is_root(&self) -> bool {
        self.hub.is_some()
    }

    /// The next default child name and identity path (`Process-N`, `Process-N:M` in a child).
    pub fn next_child_ident(&self) -> (String, Vec<u32>) {
        let n = self.child_seq.fetch_add(1, Ordering::SeqCst) + 1;
        let mut ident = self.ident.clone();
        ident.push(n);
        let parts: Vec<String> = ident.iter().map(|i| i.to_string()).collect();
        (format!("Process-{}", parts.join(":")), ident)
    }

    fn new_thread_conn(&self) -> Result<ClientConn, CallError> {
        let (mine, theirs) = sys::fd::socketpair().map_err(CallError::Io)?;
        match &self.hub {
            Some(h) => h.send(Cmd::Conn(theirs)).map_err(io_err)?,
            None => {
                // A call, not a cast: if the hub cannot take the connection (the root is out
                // of descriptors, or this process has too many), this thread is told why.
                let mut m = self.main.lock().unwrap_or_else(|p| p.into_inner());
                m.call(Op::NewConn, &[theirs.as_fd()], None)?;
            }
        }
        Ok(ClientConn::new(mine, self.max_frame))
    }

    /// Opens the mailbox connection and subscribes it (first receive in this process). Returns
    /// once the hub has answered, with the mail and signals that were waiting in `buf`: a
    /// `try_recv` right after sees everything that was sent before it.
    pub(crate) fn mailbox_conn(&self, buf: &mut VecDeque<Inbound>) -> Result<ClientConn, CallError> {
        use crate::wire::proto::{FromHub, ToHub};
        let mut c = self.new_thread_conn()?;
        // A fresh connection: no other call can have this id.
        c.send(
            &ToHub::Call {
                id: 0,
                op: Op::SubscribeMailbox,
            },
            &[],
        )?;
        loop {
            match c.next_message(None)? {
                FromHub::Reply { id: 0, result } => {
                    result?;
                    return Ok(c);
                }
                FromHub::Mail(batch) => buf.extend(batch.into_iter().map(|m| Inbound::Mail(m, Vec::new()))),
                FromHub::MailFds { mail, nfds } => {
                    let fds = c.take_fds(nfds as usize)?;
                    buf.push_back(Inbound::Mail(mail, fds));
                }
                FromHub::Signal(s) => buf.push_back(Inbound::Signal(s)),
                FromHub::Stopped(why) => return Err(CallError::HubStopped(why)),
                other => {
                    return Err(CallError::Protocol(format!(
                        "unexpected frame while subscribing the mailbox: {other:?}"
                    )))
                }
            }
        }
    }

    /// Hands the hub a connection from another program's client, to be served on behalf of
    /// this process (a remote manager's relay; see `Op::NewRemoteConn`). A call on the main
    /// connection, after the relay's `Retain`s, so the hub knows what the relay holds.
    #[cfg_attr(not(feature = "connection"), allow(dead_code))]
    pub(crate) fn pass_remote_conn(&self, sock: std::os::fd::BorrowedFd<'_>) -> Result<(), CallError> {
        let mut m = self.main.lock().unwrap_or_else(|p| p.into_inner());
        m.call(Op::NewRemoteConn, &[sock], None).map(|_| ())
    }

    /// A one-way message on the main connection (ordered with the process's other bookkeeping).
    pub fn cast_main(&self, c: Cast) -> Result<(), CallError> {
        self.cast_main_with_fds(c, &[])
    }

    fn cast_main_with_fds(&self, c: Cast, fds: &[std::os::fd::BorrowedFd<'_>]) -> Result<(), CallError> {
        let mut m = self.main.lock().unwrap_or_else(|p| p.into_inner());
        m.cast(c, fds)
    }

    /// Asks the hub to interrupt the root's parked calls (interrupt mode), or enables
    /// interrupt mode.
    pub(crate) fn hub_cmd(&self, cmd: Cmd) -> Result<(), CallError> {
        match &self.hub {
            Some(h) => h.send(cmd).map_err(io_err),
            None => Ok(()),
        }
    }

    /// Local reference counting of object handles (see `handle.rs`). Returns true when this
    /// is the process's first handle.
    pub(crate) fn local_retain(&self, id: ObjId) -> bool {
        let mut refs = self.refs.lock().unwrap_or_else(|p| p.into_inner());
        let n = refs.entry(id).or_insert(0);
        *n += 1;
        *n == 1
    }

    /// Does this process hold a handle to `id`?
    #[cfg_attr(not(feature = "connection"), allow(dead_code))]
    pub(crate) fn holds(&self, id: ObjId) -> bool {
        let refs = self.refs.lock().unwrap_or_else(|p| p.into_inner());
        refs.get(&id).is_some_and(|n| *n > 0)
    }

    /// Returns true when the process's last handle to `id` went away.
    pub(crate) fn local_release(&self, id: ObjId) -> bool {
        let mut refs = self.refs.lock().unwrap_or_else(|p| p.into_inner());
        match refs.get_mut(&id) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                refs.remove(&id);
                true
            }
            None => false,
        }
    }

    /// Terminates daemonic children and joins the others (Python's exit behaviour).
    pub(crate) fn shutdown_children(&self) {
        if self.child_seq.load(Ordering::SeqCst) == 0 {
            // Never started a child: nothing to wait for, and no round trip to pay at exit.
            return;
        }
        let Ok(kids) = call(Op::ActiveChildren, None).map(|v| match v {
            Value::Procs(p) => p,
            _ => Vec::new(),
        }) else {
            return;
        };
        for k in kids.iter().filter(|k| k.daemon) {
            let _ = call(
                Op::Signal {
                    proc: k.proc,
                    sig: sys::signal::SIGTERM,
                },
                None,
            );
        }
        let waiting: Vec<&ProcInfo> = kids.iter().filter(|k| !k.daemon).collect();
        if waiting.is_empty() {
            return;
        }
        // Join quietly for a while; then say once who we wait for and how to stop waiting.
        let quiet_until = Instant::now() + EXIT_QUIET;
        let mut still: Vec<&ProcInfo> = Vec::new();
        for k in &waiting {
            let left = quiet_until.saturating_duration_since(Instant::now());
            let wait = crate::wire::proto::Wait::Micros(left.as_micros().max(1) as u64);
            match call(Op::Join { proc: k.proc, wait }, deadline_of(wait)) {
                Err(e) if e.is_timeout() => still.push(k),
                Err(e) if e.is_interrupted() => return,
                _ => {}
            }
        }
        if still.is_empty() {
            return;
        }
        let names: Vec<String> = still.iter().map(|k| format!("{} (pid {})", k.name, k.pid)).collect();
        // A child parked on a lock this process still holds would wait forever: say so.
        let blocked: Vec<String> = match call(Op::LocksAwaited, None) {
            Ok(Value::Procs(ps)) => ps
                .iter()
                .filter(|p| still.iter().any(|k| k.proc == p.proc))
                .map(|p| p.name.clone())
                .collect(),
            _ => Vec::new(),
        };
        let lock_note = if blocked.is_empty() {
            String::new()
        } else {
            format!(
                "; it holds a Lock that {} waits for, so release it (drop the guard) first",
                blocked.join(", ")
            )
        };
        let line = format!(
            "multiproc: {} (pid {}) is exiting and waits for its non-daemonic {} {} to end{}; \
             press Ctrl-C to stop waiting (the children are then killed), or terminate or join \
             them, or make them daemonic, before the program ends\n",
            self.me.name,
            self.me.pid,
            if still.len() == 1 { "child" } else { "children" },
            names.join(", "),
            lock_note,
        );
        // One write, and never a panic on a closed stderr.
        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
        for k in still {
            let r = call(
                Op::Join {
                    proc: k.proc,
                    wait: crate::wire::proto::Wait::Forever,
                },
                None,
            );
            if matches!(&r, Err(e) if e.is_interrupted()) {
                return;
            }
        }
    }
}

/// Runs `f` with this thread's connection (created on first use).
pub(crate) fn with_conn<R>(
    f: impl FnOnce(&'static Runtime, &mut ClientConn) -> Result<R, CallError>,
) -> Result<R, CallError> {
    let rt = rt()?;
    let mut f = Some(f);
    let res = CONN.try_with(|cell| {
        let Ok(mut slot) = cell.try_borrow_mut() else {
            return None;
        };
        if slot.as_ref().is_none_or(|(g, _)| *g != rt.gen) {
            match rt.new_thread_conn() {
                Ok(c) => *slot = Some((rt.gen, c)),
                Err(e) => return Some(Err(e)),
            }
        }
        let (_, conn) = slot.as_mut()?;
        let f = f.take()?;
        Some(f(rt, conn))
    });
    match res {
        Ok(Some(r)) => r,
        // Re-entered (a handle dropped while this thread is mid-call) or the thread is being
        // torn down: use a one-off connection.
        _ => {
            let mut conn = rt.new_thread_conn()?;
            match f.take() {
                Some(f) => f(rt, &mut conn),
                None => Err(CallError::Protocol("connection re-entered".into())),
            }
        }
    }
}

/// A blocking call on this thread's connection.
pub(crate) fn call(op: Op, deadline: Option<Instant>) -> Result<Value, CallError> {
    let r = with_conn(|_, c| c.call(op, &[], deadline).map(|(v, _)| v));
    if matches!(&r, Err(e) if e.is_interrupted()) {
        interrupt::reported();
    }
    r
}

/// A blocking call that may return descriptors.
pub(crate) fn call_fds(
    op: Op,
    fds: &[std::os::fd::BorrowedFd<'_>],
    deadline: Option<Instant>,
) -> Result<(Value, Vec<OwnedFd>), CallError> {
    let r = with_conn(|_, c| c.call(op, fds, deadline));
    if matches!(&r, Err(e) if e.is_interrupted()) {
        interrupt::reported();
    }
    r
}

/// A one-way message on this thread's connection (ordered with this thread's calls).
pub(crate) fn cast(c: Cast) -> Result<(), CallError> {
    with_conn(|_, conn| conn.cast(c, &[]))
}

/// Several one-way messages in one write.
pub(crate) fn cast_many(cs: Vec<Cast>) -> Result<(), CallError> {
    with_conn(|_, conn| conn.cast_many(cs))
}

/// Turns a `Wait` into a client-side deadline (for the safety net in `ClientConn::call`).
pub(crate) fn deadline_of(w: crate::wire::proto::Wait) -> Option<Instant> {
    match w {
        crate::wire::proto::Wait::Forever => None,
        crate::wire::proto::Wait::Never => Some(Instant::now()),
        crate::wire::proto::Wait::Micros(us) => Instant::now().checked_add(std::time::Duration::from_micros(us)),
    }
}

/// Opens a fresh connection to the hub and returns its socket, unmanaged. For tests that check
/// how the hub treats garbage: whatever is written on it costs only this connection.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub fn raw_hub_connection() -> Result<OwnedFd, CallError> {
    rt()?.new_thread_conn().map(ClientConn::into_fd)
}

/// Does the hub still keep an entry for process `proc` (tests: ended processes nobody can ask
/// about must be forgotten)?
#[doc(hidden)]
pub fn hub_knows_process(proc: crate::wire::proto::ProcId) -> Result<bool, CallError> {
    match call(Op::ProcState(proc), None) {
        Ok(_) => Ok(true),
        Err(CallError::Hub(crate::wire::proto::HubError::UnknownProcess)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Sends `Ping` and waits for the answer (tests and benchmarks: the hub round-trip floor).
#[cfg(feature = "internals")]
#[doc(hidden)]
pub fn ping_hub() -> Result<(), CallError> {
    call(Op::Ping, None).map(|_| ())
}

/// Tests only: makes the hub behave as if its next `poll` failed with `why`, so that tests can
/// check what callers see when the hub stops. Root only.
#[doc(hidden)]
pub fn fail_hub_poll_for_tests(why: &str) -> Result<(), CallError> {
    rt()?.hub_cmd(Cmd::FailPoll(why.to_owned()))
}

/// Pins the hub thread to one CPU, or with `None` lets it run on any CPU again (benchmarks that
/// compare CPU placements). Root only.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub fn pin_hub(cpu: Option<usize>) -> Result<(), CallError> {
    rt()?.hub_cmd(Cmd::Pin(cpu))?;
    // The command is handled by the hub thread; a round trip makes sure it has been.
    ping_hub()
}
