//! Seeing inside a running program: [`snapshot()`] of the hub's state, the wait-for graph
//! with its cycles ([`Snapshot::waits`]), a dump on a signal (`MULTIPROC_DUMP_ON=SIGUSR1`) or
//! on request ([`dump_snapshot`]), and a snapshot server that `examples/top.rs` attaches to
//! ([`serve_snapshots`]).
//!
//! The hub sees every process, every object and every parked call, so one call answers "who
//! holds lock #12, and who waits for it":
//!
//! ```no_run
//! let snap = multiproc::snapshot()?;
//! println!("{snap}"); // tables: processes, objects, pools, waits
//! for cycle in snap.waits().cycles() {
//!     eprintln!("deadlock between {:?}", cycle);
//! }
//! # Ok::<(), multiproc::CallError>(())
//! ```

mod graph;
mod serve;
mod table;

pub use crate::wire::proto::{ExitInfo, ObjId, ProcId};
pub use crate::wire::snapshot::{JoinWait, ObjectRow, PoolRow, ProcessRow, RunState, Snapshot, StartedBy, WaiterRow};
pub use graph::{WaitEdge, WaitGraph};
pub use serve::{read_served_snapshot, serve_snapshots, ServeError, SnapshotServer, SERVE_ENV};
pub(crate) use serve::{root_started, DUMP_ENV};

use crate::error::CallError;
use crate::wire::proto::{Op, Value};

/// The hub's state, taken in one turn of its loop (so it is consistent: nothing happens
/// between two of its rows). Works from any process of the program; costs one round trip and
/// a walk over every process and object in the hub.
///
/// Locks taken through the shared-memory fast path are shown held: the hub reads each lock's
/// shared word. Pools appear once their manager thread has published its counters (it does
/// so whenever they change, at most every 50 ms).
///
/// # Example
/// ```no_run
/// use multiproc::Lock;
///
/// let lock = Lock::new()?;
/// let _held = lock.acquire()?;
/// let snap = multiproc::snapshot()?;
/// let row = snap.objects.iter().find(|o| o.id == lock.id()).unwrap();
/// assert_eq!(row.held_by, vec![multiproc::observe::ProcId(0)]); // the root holds it
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn snapshot() -> Result<Snapshot, CallError> {
    match crate::runtime::call(Op::Snapshot, None)? {
        Value::Snapshot(s) => Ok(*s),
        other => Err(CallError::Protocol(format!("unexpected reply to Snapshot: {other:?}"))),
    }
}

/// Takes a [`snapshot()`] and writes it (tables, then the waits and any deadlock) to standard
/// error in one write. What `MULTIPROC_DUMP_ON=SIGUSR1` does on the signal.
///
/// # Example
/// ```no_run
/// multiproc::dump_snapshot()?;
/// # Ok::<(), multiproc::CallError>(())
/// ```
pub fn dump_snapshot() -> Result<(), CallError> {
    let snap = snapshot()?;
    crate::sys::io::write_stderr(&format!("{snap}\n"));
    Ok(())
}

/// The span `process{name, pid}` of this process (feature `tracing`). The library's own events
/// in a child are emitted inside such a span; a worker that installs a subscriber enters it to
/// mark its own events the same way, so that a child's events can be told apart.
///
/// # Example
/// ```no_run
/// #[multiproc::worker]
/// fn work() {
///     // (install a subscriber here: a child does not run `main`)
///     let _span = multiproc::observe::process_span().entered();
///     tracing::info!("working"); // inside process{name="Process-1", pid=...}
/// }
/// ```
#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
pub fn process_span() -> tracing::Span {
    let me = crate::current_process();
    crate::trace::process_span(me.name(), me.pid())
}

impl Snapshot {
    /// The row of process `proc`, if it is in the snapshot.
    pub fn process(&self, proc: ProcId) -> Option<&ProcessRow> {
        self.processes.iter().find(|p| p.proc == proc)
    }

    /// The row of the process with OS pid `pid`.
    pub fn process_by_pid(&self, pid: i32) -> Option<&ProcessRow> {
        self.processes.iter().find(|p| p.pid == pid && pid > 0)
    }

    /// The row of the object `id`.
    pub fn object(&self, id: ObjId) -> Option<&ObjectRow> {
        self.objects.iter().find(|o| o.id == id)
    }

    /// `name (pid N)` for a process, or `process #id` if it is not in the snapshot.
    pub fn describe(&self, proc: ProcId) -> String {
        match self.process(proc) {
            Some(p) => format!("{} (pid {})", p.name, p.pid),
            None => format!("process #{}", proc.0),
        }
    }

    /// The wait-for graph: an edge from each process parked on a Lock or RLock to the process
    /// that holds it, and from each process waiting in `join` to the process it joins; with
    /// its cycles (deadlocks). Threads of one process are not told apart, so a process never
    /// waits for itself in this graph.
    pub fn waits(&self) -> WaitGraph {
        graph::build(self)
    }
}
