//! Supervisors: OTP's "let it crash" for real OS processes.
//!
//! A supervisor starts its children (each from a [`ChildSpec`]: an id, a task factory, a
//! [`Restart`] policy and a [`Shutdown`] policy), watches them, and restarts them as its
//! [`Strategy`] says when they end: [`OneForOne`](Strategy::OneForOne),
//! [`OneForAll`](Strategy::OneForAll) or [`RestForOne`](Strategy::RestForOne). More than
//! `max_restarts` restarts within `period` (the *intensity*, 3 in 5 s by default) make it
//! give up: it stops its children in reverse start order and ends with
//! [`SupervisorError::GaveUp`], which its own supervisor (or whoever joins it) sees.
//!
//! **Where a supervisor runs.** In the process that builds it, on a thread of its own
//! ([`SupervisorBuilder::start`]), or on the calling thread ([`SupervisorBuilder::run`]).
//! A child spec holds a closure (the task factory), and a closure cannot be sent to another
//! process, so the supervisor runs where its specs were made. A tree spans processes by
//! making a child a supervisor of its own: [`ChildSpec::supervisor`] takes a `#[worker]` that
//! builds a supervisor in the child process and calls `run()` there.
//!
//! **How it sees deaths.** Its loop `wait`s on every running child's [`Process`] handle (a
//! pidfd each, confirmed with the hub) and on a wake-up pipe for requests. Children are real
//! OS processes: a child killed by SIGKILL is seen as `Signaled(9)` at once.
//!
//! Built only on the public layers: [`Process`], [`wait`](crate::wait), [`pipe`](crate::pipe),
//! mailboxes and [`Addr::ask`](crate::Addr::ask).
//!
//! # Example
//! ```no_run
//! use std::time::Duration;
//! use multiproc::supervisor::{ChildSpec, Strategy, Supervisor};
//!
//! #[multiproc::worker]
//! fn worker(n: u32) {
//!     std::thread::sleep(Duration::from_secs(3600 + u64::from(n)));
//! }
//!
//! let sup = Supervisor::builder()
//!     .strategy(Strategy::OneForOne)
//!     .intensity(3, Duration::from_secs(5))
//!     .child(ChildSpec::new("a", || worker(1)))
//!     .child(ChildSpec::new("b", || worker(2)))
//!     .start()?;
//! let children = sup.which_children()?;
//! assert_eq!(children.len(), 2);
//! sup.stop()?; // stops b, then a
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Process`]: crate::Process

mod core;
mod error;
mod spec;

use std::sync::{mpsc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use error::SupervisorError;
pub use spec::{ChildExit, ChildInfo, ChildKind, ChildSpec, Restart, Shutdown, Strategy};

use self::core::{Cmd, Core, Reply};
use crate::error::AskError;
use crate::pipe::{pipe, Connection};
use crate::{mailbox, Addr, Incoming, RecvError, ReplyTo, Signal};

/// Builds a supervisor: strategy, intensity, children. See the [module docs](self).
#[must_use = "a supervisor builder does nothing until `start()` or `run()`"]
pub struct SupervisorBuilder {
    strategy: Strategy,
    max_restarts: u32,
    period: Duration,
    children: Vec<ChildSpec>,
}

impl std::fmt::Debug for SupervisorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisorBuilder")
            .field("strategy", &self.strategy)
            .field("max_restarts", &self.max_restarts)
            .field("period", &self.period)
            .field("children", &self.children)
            .finish()
    }
}

impl SupervisorBuilder {
    /// The restart strategy ([`Strategy::OneForOne`] by default).
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// The restart intensity: at most `max_restarts` restarts within any `period` (3 in 5 s
    /// by default); one more and the supervisor gives up.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.period = period;
        self
    }

    /// Adds a child; children start in the order they are added.
    pub fn child(mut self, spec: ChildSpec) -> Self {
        self.children.push(spec);
        self
    }

    /// Adds several children, in order.
    pub fn children(mut self, specs: impl IntoIterator<Item = ChildSpec>) -> Self {
        self.children.extend(specs);
        self
    }

    fn core(self) -> Result<(Core, mpsc::Sender<Cmd>, Connection<u8>), SupervisorError> {
        let (tx, rx) = mpsc::channel();
        let (wake_rx, wake_tx) = pipe::<u8>().map_err(|e| SupervisorError::Unreachable(e.to_string()))?;
        let core = Core::new(
            self.children,
            self.strategy,
            self.max_restarts,
            self.period,
            rx,
            wake_rx,
        )?;
        Ok((core, tx, wake_tx))
    }

    /// Starts the children in order (on this thread: an error means none is left running)
    /// and then supervises them from a thread of this process. The returned handle is a
    /// guard: dropping it stops the tree. The children are not linked to this process (its
    /// mailbox and signals stay the user's): they die with the root, not with this process
    /// if it is a child killed by a signal; for that, use [`run`](Self::run) in a process of
    /// its own ([`ChildSpec::supervisor`]).
    pub fn start(self) -> Result<Supervisor, SupervisorError> {
        let (mut core, tx, wake) = self.core()?;
        core.start_all()?;
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("multiproc-supervisor".into())
            .spawn(move || {
                let _ = done_tx.send(core.serve());
            })
            .map_err(|e| SupervisorError::Unreachable(format!("cannot start the supervisor thread: {e}")))?;
        Ok(Supervisor {
            tx,
            wake: Mutex::new(wake),
            end: Mutex::new(End {
                done: done_rx,
                result: None,
            }),
        })
    }

    /// Starts the children and supervises them on this thread until the supervisor stops:
    /// `Ok(())` when asked to stop ([`SupervisorRef::stop`], or its parent supervisor
    /// stopping it), the reason otherwise ([`SupervisorError::GaveUp`]). For the worker of a
    /// [`ChildSpec::supervisor`]: requests come through this process's mailbox (read as
    /// [`SupervisorMsg`]; other messages are skipped), so use it in a process of its own,
    /// not in the root.
    ///
    /// # Example
    /// ```no_run
    /// use multiproc::supervisor::{ChildSpec, Supervisor, SupervisorError};
    ///
    /// #[multiproc::worker]
    /// fn leaf() {
    ///     std::thread::sleep(std::time::Duration::from_secs(3600));
    /// }
    ///
    /// /// A subtree, run in a child process of its own.
    /// #[multiproc::worker]
    /// fn subtree() -> Result<(), SupervisorError> {
    ///     Supervisor::builder().child(ChildSpec::new("leaf", leaf)).run()
    /// }
    ///
    /// let top = Supervisor::builder()
    ///     .child(ChildSpec::supervisor("sub", subtree))
    ///     .start()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run(self) -> Result<(), SupervisorError> {
        let (mut core, tx, wake) = self.core()?;
        // In a process of its own, the children are linked to it (and it traps exits), so
        // that they die with it even by SIGKILL; the mailbox thread below drains the `Exit`
        // signals. Not in the root: its children die with it anyway, and its mailbox is the
        // user's.
        if crate::parent_process().is_some() {
            core.link_children()?;
        }
        core.start_all()?;
        // Requests arrive in the mailbox; a thread turns them into commands for the loop.
        std::thread::Builder::new()
            .name("multiproc-supervisor-mailbox".into())
            .spawn(move || serve_mailbox(tx, wake))
            .map_err(|e| SupervisorError::Unreachable(format!("cannot start the mailbox thread: {e}")))?;
        core.serve()
    }
}

fn serve_mailbox(tx: mpsc::Sender<Cmd>, wake: Connection<u8>) {
    let inbox = mailbox::<SupervisorMsg>();
    let parent = crate::parent_process().map(|p| p.pid());
    loop {
        let msg = match inbox.recv_event() {
            // The parent ended (this process is linked to it as its child, and traps
            // exits): stop, as an OTP supervisor does on its parent's exit signal.
            Ok(Incoming::Signal(Signal::Exit(e))) if parent == Some(e.pid) => Ok(SupervisorMsg::Stop),
            // Exit signals of the linked children: the loop sees the deaths through the
            // children's handles already.
            Ok(Incoming::Signal(_)) => continue,
            Ok(Incoming::Message(msg)) => Ok(msg),
            Err(e) => Err(e),
        };
        let cmd = match msg {
            Ok(SupervisorMsg::WhichChildren(r)) => Cmd::Which(Reply::Remote(r)),
            Ok(SupervisorMsg::TerminateChild(id, r)) => Cmd::Terminate(id, Reply::Remote(r)),
            Ok(SupervisorMsg::RestartChild(id, r)) => Cmd::Restart(id, Reply::Remote(r)),
            Ok(SupervisorMsg::DeleteChild(id, r)) => Cmd::Delete(id, Reply::Remote(r)),
            Ok(SupervisorMsg::Stop) => Cmd::Stop,
            Err(RecvError::Decode(_)) | Err(RecvError::Interrupted) => continue,
            Err(_) => Cmd::Stop,
        };
        let stop = matches!(cmd, Cmd::Stop);
        if tx.send(cmd).is_err() || wake.send(&0).is_err() || stop {
            return;
        }
    }
}

/// A request to a supervisor that runs in another process ([`SupervisorBuilder::run`]), as
/// its mailbox reads it. [`SupervisorRef`] sends these.
#[derive(Debug, Serialize, Deserialize)]
pub enum SupervisorMsg {
    /// `which_children()`.
    WhichChildren(ReplyTo<Vec<ChildInfo>>),
    /// `terminate_child(id)`.
    TerminateChild(String, ReplyTo<Result<(), SupervisorError>>),
    /// `restart_child(id)`: the new pid.
    RestartChild(String, ReplyTo<Result<i32, SupervisorError>>),
    /// `delete_child(id)`.
    DeleteChild(String, ReplyTo<Result<(), SupervisorError>>),
    /// Stop the children in reverse start order and end normally.
    Stop,
}

/// A supervisor running in this process (see [`SupervisorBuilder::start`]). Dropping the
/// handle stops the tree (children in reverse start order); keep it as long as the tree
/// should run.
#[must_use = "dropping the handle stops the supervisor and its children"]
pub struct Supervisor {
    tx: mpsc::Sender<Cmd>,
    wake: Mutex<Connection<u8>>,
    end: Mutex<End>,
}

/// How the loop ended: its channel, and the answer once read.
struct End {
    done: mpsc::Receiver<Result<(), SupervisorError>>,
    result: Option<Result<(), SupervisorError>>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor").finish_non_exhaustive()
    }
}

impl Supervisor {
    /// A builder with the defaults: one-for-one, 3 restarts in 5 s, no children.
    pub fn builder() -> SupervisorBuilder {
        SupervisorBuilder {
            strategy: Strategy::OneForOne,
            max_restarts: 3,
            period: Duration::from_secs(5),
            children: Vec::new(),
        }
    }

    fn send(&self, cmd: Cmd) -> Result<(), SupervisorError> {
        self.tx.send(cmd).map_err(|_| SupervisorError::Stopped)?;
        let wake = self.wake.lock().unwrap_or_else(|p| p.into_inner());
        // The loop may have ended meanwhile; the answer channel then says `Stopped`.
        let _ = wake.send(&0);
        Ok(())
    }

    fn request<T>(&self, make: impl FnOnce(Reply<T>) -> Cmd) -> Result<T, SupervisorError> {
        let (tx, rx) = mpsc::channel();
        self.send(make(Reply::Local(tx)))?;
        rx.recv().map_err(|_| SupervisorError::Stopped)
    }

    /// The children, in start order: id, pid of the running incarnation, how many times it
    /// was started, how the last one ended.
    pub fn which_children(&self) -> Result<Vec<ChildInfo>, SupervisorError> {
        self.request(Cmd::Which)
    }

    /// Stops a child as its shutdown policy says, without restarting it (a temporary child
    /// is then removed). Waits until it has ended.
    pub fn terminate_child(&self, id: &str) -> Result<(), SupervisorError> {
        self.request(|r| Cmd::Terminate(id.to_owned(), r))?
    }

    /// Starts again a child that is not running (terminated, or a transient one that ended
    /// normally). Returns the new pid.
    pub fn restart_child(&self, id: &str) -> Result<i32, SupervisorError> {
        self.request(|r| Cmd::Restart(id.to_owned(), r))?
    }

    /// Removes a child that is not running.
    pub fn delete_child(&self, id: &str) -> Result<(), SupervisorError> {
        self.request(|r| Cmd::Delete(id.to_owned(), r))?
    }

    /// Adds a child (after the others) and starts it. Returns its pid; on failure, the error
    /// and the spec (`None` only if the supervisor ended with the request unread).
    pub fn start_child(&self, spec: ChildSpec) -> Result<i32, (SupervisorError, Option<Box<ChildSpec>>)> {
        let (tx, rx) = mpsc::channel();
        if let Err(mpsc::SendError(Cmd::Start(spec, _))) = self.tx.send(Cmd::Start(spec, tx)) {
            return Err((SupervisorError::Stopped, Some(Box::new(spec))));
        }
        {
            let wake = self.wake.lock().unwrap_or_else(|p| p.into_inner());
            let _ = wake.send(&0);
        }
        match rx.recv() {
            Ok(r) => r.map_err(|(e, spec)| (e, Some(spec))),
            Err(_) => Err((SupervisorError::Stopped, None)),
        }
    }

    /// Stops the children in reverse start order and ends the supervisor; returns how it
    /// ended (`Ok` unless it had already given up).
    pub fn stop(&self) -> Result<(), SupervisorError> {
        let _ = self.send(Cmd::Stop);
        self.join()
    }

    /// Waits until the supervisor ends by itself (it gave up) or is stopped, and returns how.
    pub fn join(&self) -> Result<(), SupervisorError> {
        self.join_wait(None)
    }

    /// [`join`](Self::join) with a deadline: [`SupervisorError::Timeout`] if it still runs.
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), SupervisorError> {
        self.join_wait(Some(timeout))
    }

    /// How the supervisor ended, or [`SupervisorError::Timeout`] if it still runs.
    pub fn try_join(&self) -> Result<(), SupervisorError> {
        self.join_wait(Some(Duration::ZERO))
    }

    fn join_wait(&self, timeout: Option<Duration>) -> Result<(), SupervisorError> {
        let mut end = self.end.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = &end.result {
            return r.clone();
        }
        let r = match timeout {
            None => end.done.recv().unwrap_or(Err(SupervisorError::Stopped)),
            Some(t) => match end.done.recv_timeout(t) {
                Ok(r) => r,
                Err(mpsc::RecvTimeoutError::Timeout) => return Err(SupervisorError::Timeout),
                Err(mpsc::RecvTimeoutError::Disconnected) => Err(SupervisorError::Stopped),
            },
        };
        end.result = Some(r.clone());
        r
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// A handle to a supervisor running in another process (a [`ChildSpec::supervisor`] child,
/// found with [`ChildInfo::addr`]). Every request is an `ask` with a deadline (30 s unless
/// set with [`timeout`](Self::timeout)).
#[derive(Debug, Clone)]
pub struct SupervisorRef {
    addr: Addr<SupervisorMsg>,
    timeout: Duration,
}

impl SupervisorRef {
    /// A handle to the supervisor at `addr`.
    pub fn new(addr: Addr<SupervisorMsg>) -> Self {
        SupervisorRef {
            addr,
            timeout: Duration::from_secs(30),
        }
    }

    /// The deadline of each request.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn ask<R: serde::de::DeserializeOwned>(
        &self,
        make: impl FnOnce(ReplyTo<R>) -> SupervisorMsg,
    ) -> Result<R, SupervisorError> {
        self.addr.ask_timeout(make, self.timeout).map_err(|e| match e {
            AskError::Gone => SupervisorError::Stopped,
            AskError::Timeout => SupervisorError::Timeout,
            other => SupervisorError::Unreachable(other.to_string()),
        })
    }

    /// See [`Supervisor::which_children`].
    pub fn which_children(&self) -> Result<Vec<ChildInfo>, SupervisorError> {
        self.ask(SupervisorMsg::WhichChildren)
    }

    /// See [`Supervisor::terminate_child`].
    pub fn terminate_child(&self, id: &str) -> Result<(), SupervisorError> {
        self.ask(|r| SupervisorMsg::TerminateChild(id.to_owned(), r))?
    }

    /// See [`Supervisor::restart_child`].
    pub fn restart_child(&self, id: &str) -> Result<i32, SupervisorError> {
        self.ask(|r| SupervisorMsg::RestartChild(id.to_owned(), r))?
    }

    /// See [`Supervisor::delete_child`].
    pub fn delete_child(&self, id: &str) -> Result<(), SupervisorError> {
        self.ask(|r| SupervisorMsg::DeleteChild(id.to_owned(), r))?
    }

    /// Asks it to stop (one-way); its children are stopped in reverse start order and its
    /// `run()` returns `Ok`.
    pub fn stop(&self) -> Result<(), SupervisorError> {
        self.addr
            .send(&SupervisorMsg::Stop)
            .map_err(|e| SupervisorError::Unreachable(e.to_string()))
    }
}
