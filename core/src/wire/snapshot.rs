//! The hub's state as one value (`Op::Snapshot`): what `multiproc::snapshot()` returns.
//!
//! The hub builds it in one loop turn, so it is consistent: no operation happens between the
//! rows of two processes or objects. These types are public (re-exported at
//! `multiproc::observe`); their `Display` and the wait-for graph live in `crate::observe`.

use serde::{Deserialize, Serialize};

use super::proto::{ExitInfo, ObjId, ProcId};

/// Everything the hub knows, at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// When the hub took it (microseconds since the Unix epoch).
    pub taken_at_us: u64,
    /// The processes, root first, then by id.
    pub processes: Vec<ProcessRow>,
    /// The hub objects (locks, queues, ...), by id.
    pub objects: Vec<ObjectRow>,
    /// The pools whose manager threads publish their counters (see `PoolRow`).
    pub pools: Vec<PoolRow>,
    /// Processes waiting in `join` for another process.
    pub joins: Vec<JoinWait>,
}

/// How a process was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartedBy {
    /// The root process (the first to use the library).
    Root,
    /// `StartMethod::Spawn`.
    Spawn,
    /// `StartMethod::ForkServer`.
    ForkServer,
    /// `StartMethod::Fork`.
    Fork,
}

/// Where a process is in its life, as the hub sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunState {
    /// Created, its pid not known yet (a fork-server or fork child being forked).
    Starting,
    /// Running (its main connection is open).
    Running,
    /// Its main connection closed; its exit status is not collected yet.
    Exiting,
    /// It ended; nobody has joined it yet.
    Ended(ExitInfo),
}

/// One process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRow {
    /// The hub's id.
    pub proc: ProcId,
    /// The OS pid (0 until known).
    pub pid: i32,
    /// Its name.
    pub name: String,
    /// The process that started it (the root for the root).
    pub parent: ProcId,
    /// Its state.
    pub state: RunState,
    /// How it was started.
    pub started_by: StartedBy,
    /// Daemonic?
    pub daemon: bool,
    /// Messages waiting in the hub for its mailbox (not yet pushed to it).
    pub mailbox: u64,
    /// Bytes of mail waiting for it (in the hub, or written to its mailbox connection and not
    /// yet read).
    pub mailbox_bytes: u64,
}

/// A parked call on an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaiterRow {
    /// The waiting process.
    pub proc: ProcId,
    /// What it waits for (`acquire`, `get`, `put`, `wait`, `join`, ...).
    pub op: String,
    /// How long it has waited, in microseconds.
    pub waited_us: u64,
}

/// One hub object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRow {
    /// Its id.
    pub id: ObjId,
    /// `Lock`, `RLock`, `Semaphore`, `Event`, `Barrier`, `Queue`, `JoinableQueue`, `Dict`, ...
    pub kind: String,
    /// The process that created it.
    pub creator: ProcId,
    /// The processes that hold handles to it.
    pub handles: Vec<ProcId>,
    /// Who holds it, for a lock (read from the shared word, so a lock taken through the
    /// shared-memory fast path is shown too), or the processes holding a semaphore's permits.
    pub held_by: Vec<ProcId>,
    /// Items queued (queues), free permits (semaphores), the flag (events: 0 or 1), the parties
    /// waiting (barriers), the recursion depth (RLock); `None` where it means nothing.
    pub depth: Option<u64>,
    /// A JoinableQueue's unfinished items (queued + taken and not yet `task_done`).
    pub unfinished: Option<u64>,
    /// Parked calls, oldest first.
    pub waiters: Vec<WaiterRow>,
    /// Anything else worth a word (`closed`, `owner died`, a queue's bound, ...).
    pub note: String,
}

/// One pool, as its manager thread last published it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolRow {
    /// The process that owns the pool.
    pub owner: ProcId,
    /// The pool's number in that process.
    pub pool: u64,
    /// The pids of its worker processes.
    pub workers: Vec<i32>,
    /// Tasks waiting to be handed to a worker.
    pub queued: u64,
    /// Tasks given to workers and not yet finished.
    pub running: u64,
    /// Tasks finished (returned, failed or panicked).
    pub done: u64,
    /// Workers started to replace ones that ended.
    pub replaced: u64,
}

/// The counters a pool's manager thread publishes (`Cast::PoolStats`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PoolStats {
    /// The pids of its worker processes.
    pub workers: Vec<i32>,
    /// Tasks waiting to be handed to a worker.
    pub queued: u64,
    /// Tasks given to workers and not yet finished.
    pub running: u64,
    /// Tasks finished.
    pub done: u64,
    /// Workers started to replace ones that ended.
    pub replaced: u64,
}

/// A process waiting in `join` for another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinWait {
    /// The joining process.
    pub waiter: ProcId,
    /// The process it waits for.
    pub target: ProcId,
    /// How long it has waited, in microseconds.
    pub waited_us: u64,
}
