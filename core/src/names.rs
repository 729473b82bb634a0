//! Names, monitors and links: Erlang's process registry and failure signals, for OS processes.
//!
//! - **Names.** [`register`] gives the calling process a name; [`whereis`] finds it;
//!   [`Addr::named`](crate::Addr::named) is an address that the hub resolves at each send, so
//!   clients keep working across restarts as long as each incarnation registers again. A
//!   name is freed as soon as its process is dead to the hub.
//! - **Monitors.** [`monitor`] asks for one [`Down`] when a process ends, with its exact
//!   [`ExitReason`] (exit code, panic message and location, or signal); at once if it has
//!   already ended. [`demonitor`] cancels it: no `Down` for it is received afterwards.
//! - **Links.** [`link`] ties two processes: when one ends abnormally (anything but exit code
//!   0), the hub kills the other with SIGKILL, unless it traps exits ([`trap_exits`]), in which
//!   case it receives an [`Exit`] signal instead (for a normal end too). The root process (it
//!   runs the hub) always receives the signal instead of being killed.
//!
//! Signals arrive on the process's mailbox connection, in order with its mail: read them with
//! [`signals()`] (signals only), or together with messages through
//! [`Mailbox::recv_event`](crate::Mailbox::recv_event) (one blocking call, no polling).
//!
//! # Example
//! ```
//! use multiproc::{monitor, signals, ExitReason, ExitStatus, Process, Signal};
//!
//! #[multiproc::worker]
//! fn fails() {
//!     std::process::exit(3);
//! }
//!
//! let p = Process::new(fails()).start()?;
//! let m = monitor(&p)?;
//! let Signal::Down(down) = signals().recv()? else { panic!("expected a Down") };
//! assert_eq!(down.monitor, m);
//! assert_eq!(down.pid, p.pid());
//! assert_eq!(down.reason, ExitReason::Ended(ExitStatus::Exited(3)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{CallError, HubError, RecvError};
use crate::mailbox::{self, Want};
use crate::process::{ExitStatus, Process, ProcessInfo};
use crate::runtime::{self, Inbound};
use crate::wire::names_ops::{NamesOp, NamesReply, Reason, SignalMsg, Target};
use crate::wire::proto::{Op, Value};
use crate::Addr;

/// Why a name operation or a link failed.
///
/// # Example
/// ```
/// use multiproc::{register, NameError};
///
/// assert!(matches!(register(""), Err(NameError::BadName(_))));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    /// The name is taken by a live process (the message names it). Unregister it first, or
    /// wait for that process to end (a name is freed when its process dies).
    #[error("{0}")]
    Taken(String),
    /// The process already has a name (a process has at most one; unregister it first).
    #[error("{0}")]
    AlreadyNamed(String),
    /// The name is empty, longer than 255 bytes, or contains control characters.
    #[error("{0}")]
    BadName(String),
    /// No such live process: nobody is registered under the name, or no live process has
    /// the pid (for [`link`] and [`register_pid`]).
    #[error("{0}")]
    NoProc(String),
    /// The caller may not name or unname that process (only the process itself, the process
    /// that started it, or the root may).
    #[error("{0}")]
    NotAllowed(String),
    /// A limit of the hub was reached (`HubLimits::max_monitors_per_process` for links).
    #[error("{0}")]
    Limit(String),
    /// The hub could not be reached.
    #[error(transparent)]
    Call(CallError),
}

impl From<CallError> for NameError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Hub(HubError::NoProc(m)) => NameError::NoProc(m),
            CallError::Hub(HubError::Limit(m)) => NameError::Limit(m),
            CallError::Hub(HubError::Invalid(m)) if m.contains("is taken by") => NameError::Taken(m),
            CallError::Hub(HubError::Invalid(m)) if m.contains("already registered") => NameError::AlreadyNamed(m),
            CallError::Hub(HubError::Invalid(m)) if m.contains("may not name") => NameError::NotAllowed(m),
            CallError::Hub(HubError::Invalid(m)) if m.contains("process name") => NameError::BadName(m),
            e => NameError::Call(e),
        }
    }
}

/// A process to monitor or link to: a pid, an address (by name: whoever is registered under
/// it now), a [`ProcessInfo`] or a [`Process`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcRef(pub(crate) Target);

impl From<i32> for ProcRef {
    fn from(pid: i32) -> Self {
        ProcRef(Target::Pid(pid))
    }
}

impl<M> From<&Addr<M>> for ProcRef {
    fn from(a: &Addr<M>) -> Self {
        match a.name() {
            Some(n) => ProcRef(Target::Name(n.to_owned())),
            None => ProcRef(Target::Proc(a.proc_id())),
        }
    }
}

impl From<&ProcessInfo> for ProcRef {
    fn from(p: &ProcessInfo) -> Self {
        ProcRef(Target::Proc(p.info.proc))
    }
}

impl<T> From<&Process<T>> for ProcRef {
    fn from(p: &Process<T>) -> Self {
        ProcRef(Target::Proc(p.proc_id()))
    }
}

fn names_call(op: NamesOp) -> Result<Value, CallError> {
    runtime::call(Op::Names(op), None)
}

/// Registers the calling process under `name` (Erlang's `register(Name, self())`).
///
/// Fails if the name is taken by a live process ([`NameError::Taken`]), if this process
/// already has a name ([`NameError::AlreadyNamed`]; registering the same name again is fine),
/// or if the name is invalid ([`NameError::BadName`]: empty, over 255 bytes, or with control
/// characters). The name is freed when the process ends, or by [`unregister`].
///
/// # Example
/// ```
/// multiproc::register("main")?;
/// assert_eq!(multiproc::whereis("main")?.map(|p| p.pid()), Some(std::process::id() as i32));
/// multiproc::unregister("main")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn register(name: &str) -> Result<(), NameError> {
    names_call(NamesOp::Register {
        name: name.to_owned(),
        pid: None,
    })?;
    Ok(())
}

/// Registers process `pid` under `name`: the calling process, one it started (a supervisor
/// names its children), or any process if the caller is the root. Errors as [`register`],
/// plus [`NameError::NoProc`] if no live process has that pid and [`NameError::NotAllowed`].
///
/// # Example
/// ```no_run
/// use multiproc::{register_pid, whereis, Process};
///
/// #[multiproc::worker]
/// fn idle() {
///     std::thread::sleep(std::time::Duration::from_secs(60));
/// }
///
/// let mut p = Process::new(idle()).start()?;
/// register_pid("idler", p.pid())?;
/// assert_eq!(whereis("idler")?.map(|i| i.pid()), Some(p.pid()));
/// p.kill()?;
/// p.join().ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn register_pid(name: &str, pid: i32) -> Result<(), NameError> {
    names_call(NamesOp::Register {
        name: name.to_owned(),
        pid: Some(pid),
    })?;
    Ok(())
}

/// Drops a name. [`NameError::NoProc`] if nobody has it; [`NameError::NotAllowed`] unless the
/// caller is the holder, the process that started it, or the root.
///
/// # Example
/// ```
/// multiproc::register("temporary")?;
/// multiproc::unregister("temporary")?;
/// assert!(multiproc::whereis("temporary")?.is_none());
/// assert!(matches!(multiproc::unregister("temporary"), Err(multiproc::NameError::NoProc(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn unregister(name: &str) -> Result<(), NameError> {
    names_call(NamesOp::Unregister { name: name.to_owned() })?;
    Ok(())
}

/// The live process registered under `name` now, if any (its [`ProcessInfo::addr`] reaches
/// that incarnation only; [`Addr::named`](crate::Addr::named) follows the name).
///
/// # Example
/// ```
/// assert!(multiproc::whereis("nobody-has-this-name")?.is_none());
/// # Ok::<(), multiproc::CallError>(())
/// ```
pub fn whereis(name: &str) -> Result<Option<ProcessInfo>, CallError> {
    match names_call(NamesOp::WhereIs { name: name.to_owned() })? {
        Value::Names(NamesReply::Where(info)) => Ok(info.map(|info| ProcessInfo { info })),
        other => Err(CallError::Protocol(format!("unexpected reply to WhereIs: {other:?}"))),
    }
}

/// A monitor's reference, as [`monitor`] returns it and [`Down::monitor`] repeats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MonitorRef(pub(crate) u64);

/// Watches a process: exactly one [`Down`] arrives (through [`signals()`] or
/// [`Mailbox::recv_event`](crate::Mailbox::recv_event)) when it ends, with its exact reason.
/// If it has already ended, the `Down` is sent at once, with its recorded status if the hub
/// still knows it, else [`ExitReason::NoProc`] (also for a pid nobody has, and for a name
/// nobody is registered under). A monitor by name watches the process registered under it
/// *now*.
///
/// Fails with `HubError::Limit` when this process holds `HubLimits::max_monitors_per_process`
/// monitors (or that many `Down`s of ended processes wait unread).
///
/// # Example
/// ```
/// use multiproc::{monitor, signals, ExitReason, Signal};
///
/// let m = monitor(999_999_999)?; // no such pid
/// let Signal::Down(d) = signals().recv()? else { panic!() };
/// assert_eq!((d.monitor, d.reason), (m, ExitReason::NoProc));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn monitor(target: impl Into<ProcRef>) -> Result<MonitorRef, CallError> {
    match names_call(NamesOp::Monitor(target.into().0))? {
        Value::Names(NamesReply::Monitor(r)) => Ok(MonitorRef(r)),
        other => Err(CallError::Protocol(format!("unexpected reply to Monitor: {other:?}"))),
    }
}

/// Cancels a monitor: after this returns, no `Down` for it is received (one already sent and
/// not yet received is dropped on arrival). Returns `true` if the monitor was still active,
/// `false` if it had already fired (or is not this process's).
///
/// # Example
/// ```no_run
/// use multiproc::{demonitor, monitor, Process};
///
/// #[multiproc::worker]
/// fn idle() {
///     std::thread::sleep(std::time::Duration::from_secs(60));
/// }
///
/// let mut p = Process::new(idle()).start()?;
/// let m = monitor(&p)?;
/// assert!(demonitor(m)?);
/// p.kill()?; // no Down comes
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn demonitor(monitor: MonitorRef) -> Result<bool, CallError> {
    match names_call(NamesOp::Demonitor(monitor.0))? {
        Value::Names(NamesReply::Demonitored(active)) => {
            if !active {
                let rt = runtime::rt()?;
                rt.flushed_monitors
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(monitor.0);
            }
            Ok(active)
        }
        other => Err(CallError::Protocol(format!("unexpected reply to Demonitor: {other:?}"))),
    }
}

/// Links the calling process and `target` (Erlang's `link`): when either ends abnormally
/// (anything but exit code 0: a non-zero code, a panic, a signal), the hub kills the other
/// with SIGKILL, unless that one traps exits ([`trap_exits`]): then it receives
/// [`Signal::Exit`] and keeps running. A normal end kills nobody, but a trapping partner
/// still receives its `Exit`. Links are symmetric; linking twice is one link; the hub drops
/// a link when either side ends. The root process is never killed by a link: it always
/// receives the `Exit` signal.
///
/// Fails with [`NameError::NoProc`] if the target is not a live process (nothing is sent),
/// and [`NameError::Limit`] beyond `HubLimits::max_monitors_per_process` links.
///
/// # Example
/// ```no_run
/// use multiproc::{link, signals, trap_exits, Process, Signal};
///
/// #[multiproc::worker]
/// fn crash() {
///     std::thread::sleep(std::time::Duration::from_millis(100));
///     panic!("boom");
/// }
///
/// trap_exits(true)?;
/// let p = Process::new(crash()).start()?;
/// link(&p)?;
/// let Signal::Exit(e) = signals().recv()? else { panic!() };
/// assert_eq!(e.pid, p.pid());
/// assert!(!e.reason.is_normal());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn link(target: impl Into<ProcRef>) -> Result<(), NameError> {
    names_call(NamesOp::Link(target.into().0))?;
    Ok(())
}

/// Removes the link between the calling process and `target`, if there is one. After it
/// returns, that link kills nobody and sends no new `Exit`.
///
/// # Example
/// ```
/// multiproc::unlink(999_999_999)?; // no link: nothing to do
/// # Ok::<(), multiproc::CallError>(())
/// ```
pub fn unlink(target: impl Into<ProcRef>) -> Result<(), CallError> {
    names_call(NamesOp::Unlink(target.into().0))?;
    Ok(())
}

/// Turns trapping exits on or off for the calling process; returns the previous setting.
/// While it traps, the end of a linked process arrives as [`Signal::Exit`] instead of killing
/// it.
///
/// # Example
/// ```
/// assert!(!multiproc::trap_exits(true)?);
/// assert!(multiproc::trap_exits(false)?);
/// # Ok::<(), multiproc::CallError>(())
/// ```
pub fn trap_exits(on: bool) -> Result<bool, CallError> {
    match names_call(NamesOp::TrapExits(on))? {
        Value::Names(NamesReply::Trap(prev)) => Ok(prev),
        other => Err(CallError::Protocol(format!("unexpected reply to TrapExits: {other:?}"))),
    }
}

/// How a monitored or linked process ended.
///
/// # Example
/// ```
/// use multiproc::{ExitReason, ExitStatus};
///
/// assert!(ExitReason::Ended(ExitStatus::Exited(0)).is_normal());
/// assert!(!ExitReason::Ended(ExitStatus::Signaled(9)).is_normal());
/// assert_eq!(ExitReason::Ended(ExitStatus::Signaled(9)).status().map(|s| s.code()), Some(-9));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExitReason {
    /// It ended, exactly so: exit code, panic (message and location), or signal.
    Ended(ExitStatus),
    /// There was no such process when the monitor was set (it never existed, or it ended so
    /// long ago that the hub has forgotten it).
    NoProc,
}

impl ExitReason {
    /// Exit code 0 (a worker that returned normally): Erlang's `normal`.
    pub fn is_normal(&self) -> bool {
        matches!(self, ExitReason::Ended(ExitStatus::Exited(0)))
    }

    /// The exit status, unless there was no such process.
    pub fn status(&self) -> Option<&ExitStatus> {
        match self {
            ExitReason::Ended(s) => Some(s),
            ExitReason::NoProc => None,
        }
    }

    fn from_wire(r: Reason) -> Self {
        match r {
            Reason::NoProc => ExitReason::NoProc,
            Reason::Exited(c) => ExitReason::Ended(ExitStatus::Exited(c)),
            Reason::Signaled(s) => ExitReason::Ended(ExitStatus::Signaled(s)),
            Reason::Panicked(p) => ExitReason::Ended(ExitStatus::Panicked {
                message: p.message,
                location: p.location,
            }),
        }
    }
}

impl std::fmt::Display for ExitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitReason::Ended(s) => s.fmt(f),
            ExitReason::NoProc => f.write_str("no such process"),
        }
    }
}

/// A monitored process ended (see [`monitor`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Down {
    /// The monitor that fired.
    pub monitor: MonitorRef,
    /// The process's pid (0 if the monitor was set by name and nobody had it).
    pub pid: i32,
    /// The name it was registered under when it ended (or, for a monitor by a name nobody
    /// had, that name).
    pub name: Option<String>,
    /// How it ended.
    pub reason: ExitReason,
}

/// A linked process ended, and this process traps exits (see [`link`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// The process's pid.
    pub pid: i32,
    /// The name it was registered under when it ended.
    pub name: Option<String>,
    /// How it ended.
    pub reason: ExitReason,
}

/// A signal from the hub about another process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Signal {
    /// A monitored process ended.
    Down(Down),
    /// A linked process ended (only while trapping exits).
    Exit(Exit),
}

impl Signal {
    pub(crate) fn from_wire(s: SignalMsg) -> Self {
        match s {
            SignalMsg::Down {
                monitor,
                pid,
                name,
                reason,
                ..
            } => Signal::Down(Down {
                monitor: MonitorRef(monitor),
                pid,
                name,
                reason: ExitReason::from_wire(reason),
            }),
            SignalMsg::Exit { pid, name, reason, .. } => Signal::Exit(Exit {
                pid,
                name,
                reason: ExitReason::from_wire(reason),
            }),
        }
    }
}

/// This process's signals ([`Down`], [`Exit`]), without its messages (those stay in the
/// mailbox). One thread receives at a time, mail or signals.
///
/// # Example
/// ```
/// assert!(matches!(multiproc::signals().try_recv(), Err(multiproc::RecvError::Empty)));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Signals {
    _private: (),
}

/// This process's signals (see [`Signals`]).
pub fn signals() -> Signals {
    Signals { _private: () }
}

fn as_signal(i: Inbound) -> Result<Signal, RecvError> {
    match i {
        Inbound::Signal(s) => Ok(Signal::from_wire(s)),
        Inbound::Mail(..) => Err(RecvError::Call(CallError::Protocol(
            "mail where a signal was expected".into(),
        ))),
    }
}

impl Signals {
    /// Waits for the next signal.
    pub fn recv(&self) -> Result<Signal, RecvError> {
        as_signal(mailbox::take(Want::Signal, crate::wire::proto::Wait::Forever)?)
    }

    /// The next signal if one is waiting, else [`RecvError::Empty`].
    pub fn try_recv(&self) -> Result<Signal, RecvError> {
        as_signal(mailbox::take_now(Want::Signal)?)
    }

    /// Waits at most `timeout` for the next signal ([`RecvError::Timeout`] after that).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Signal, RecvError> {
        as_signal(mailbox::take_timeout(Want::Signal, timeout)?)
    }
}
