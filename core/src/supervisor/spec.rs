//! Child specifications, restart and shutdown policies, strategies, and what
//! `which_children()` reports.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SupervisorError;
use crate::process::{ExitStatus, IntoTask, StartMethod, Task};

/// When a child that ended is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Restart {
    /// Always (the default).
    Permanent,
    /// Only if it ended abnormally: anything but exit code 0 (a panic, a signal, an `Err`).
    Transient,
    /// Never; it is removed from the supervisor when it ends.
    Temporary,
}

/// How a child is stopped (when the supervisor stops, restarts it with its siblings, or is
/// asked to terminate it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Shutdown {
    /// SIGTERM, then SIGKILL if it has not ended after this long. A child that is itself a
    /// supervisor is asked to stop by a message instead of SIGTERM (so that it stops its own
    /// children first), then killed after this long.
    Timeout(Duration),
    /// SIGKILL at once.
    Brutal,
}

/// Which children are restarted when one of them ends and is to be restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Strategy {
    /// Only that child.
    OneForOne,
    /// Every child: the others are stopped in reverse start order, then all are started
    /// again in start order.
    OneForAll,
    /// That child and the ones started after it: those are stopped in reverse start order,
    /// then started again in order.
    RestForOne,
}

/// Is a child a worker or a supervisor of its own (a subtree in a child process)?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChildKind {
    /// Any task (a `#[worker]` call or an actor).
    Worker,
    /// A task that runs [`SupervisorBuilder::run`](super::SupervisorBuilder::run).
    Supervisor,
}

pub(crate) type Factory = Box<dyn Fn() -> Task<serde::de::IgnoredAny> + Send>;

/// One child of a supervisor: an id, how to make its task (called at every start), and its
/// policies.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use multiproc::supervisor::{ChildSpec, Restart, Shutdown};
///
/// #[multiproc::worker]
/// fn serve(port: u16) {
///     let _ = port;
/// }
///
/// let spec = ChildSpec::new("server", || serve(8080))
///     .restart(Restart::Transient)
///     .shutdown(Shutdown::Timeout(Duration::from_secs(1)));
/// assert_eq!(spec.id(), "server");
/// ```
pub struct ChildSpec {
    pub(crate) id: String,
    pub(crate) factory: Factory,
    pub(crate) restart: Restart,
    pub(crate) shutdown: Shutdown,
    pub(crate) kind: ChildKind,
    pub(crate) method: Option<StartMethod>,
    pub(crate) name: Option<String>,
}

impl std::fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ChildSpec {
    /// A worker child: `factory` makes its task (a `#[worker]` call, or an actor's initial
    /// state) each time it is started. Permanent, stopped with SIGTERM and 5 s of grace.
    pub fn new<K, F>(id: impl Into<String>, factory: F) -> Self
    where
        K: IntoTask,
        F: Fn() -> K + Send + 'static,
    {
        ChildSpec {
            id: id.into(),
            factory: Box::new(move || factory().into_task().retype()),
            restart: Restart::Permanent,
            shutdown: Shutdown::Timeout(Duration::from_secs(5)),
            kind: ChildKind::Worker,
            method: None,
            name: None,
        }
    }

    /// A child that is a supervisor in a process of its own, so that a tree spans processes:
    /// `factory` makes a task whose worker builds a supervisor and calls
    /// [`SupervisorBuilder::run`](super::SupervisorBuilder::run), returning its result.
    /// Permanent, stopped by a message and 10 s of grace (then SIGKILL). The reason it gave
    /// up is kept in [`ChildInfo::last_exit`].
    pub fn supervisor<F>(id: impl Into<String>, factory: F) -> Self
    where
        F: Fn() -> Task<Result<(), SupervisorError>> + Send + 'static,
    {
        ChildSpec {
            kind: ChildKind::Supervisor,
            shutdown: Shutdown::Timeout(Duration::from_secs(10)),
            ..ChildSpec::new(id, factory)
        }
    }

    /// The restart policy.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// The shutdown policy.
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// The start method of the child's processes (the program's default otherwise).
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// Registers each incarnation under `name` (with [`register_pid`](crate::register_pid),
    /// right after it starts), so that clients using [`Addr::named`](crate::Addr::named)
    /// reach whichever incarnation is running. While it is down (between a death and the
    /// restart), sends and asks by name fail at once with `NoProc`. If the name is taken
    /// by another live process, the start fails (and counts as a crash).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// How a child's last incarnation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChildExit {
    /// The process ended this way.
    Status(ExitStatus),
    /// A child supervisor ended with this error (it gave up, or could not start its children).
    Supervisor(SupervisorError),
}

impl ChildExit {
    /// Did it end normally (exit code 0)?
    pub fn is_normal(&self) -> bool {
        matches!(self, ChildExit::Status(s) if s.success())
    }
}

/// One child as [`which_children`](super::Supervisor::which_children) reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildInfo {
    /// The child's id.
    pub id: String,
    /// The pid of the running incarnation, `None` if it is not running.
    pub pid: Option<i32>,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Its restart policy.
    pub restart: Restart,
    /// How many times it has been started (1 after the first start).
    pub starts: u64,
    /// When the running (or last) incarnation was started, counted in this supervisor's
    /// starts: 1 for its first start of any child, 2 for the next... Start order is the
    /// order of these numbers (a process may run its first line later than one started
    /// after it).
    pub start_seq: u64,
    /// How the last incarnation ended, if one has.
    pub last_exit: Option<ChildExit>,
    /// The name it is registered under, if any.
    pub name: Option<String>,
    pub(crate) proc: Option<crate::wire::proto::ProcId>,
}

impl ChildInfo {
    /// The running incarnation's address, for messages of type `M` (`None` if not running).
    /// For a child supervisor, `SupervisorRef::new(info.addr().unwrap())` reaches it.
    pub fn addr<M>(&self) -> Option<crate::Addr<M>> {
        match (self.proc, self.pid) {
            (Some(proc), Some(pid)) => Some(crate::Addr::new(proc, pid)),
            _ => None,
        }
    }
}
