//! The messages of the hub protocol.
//!
//! Every process talks to the hub over Unix stream sockets: one *main* connection per process
//! (its identity: when it closes, the process is dead to the hub) and one connection per thread
//! that makes blocking calls. Clients send [`ToHub`]; the hub sends [`FromHub`].
//!
//! A blocking call is `ToHub::Call { id, op }` and is answered by exactly one
//! `FromHub::Reply { id, .. }` on the same connection. The hub never blocks: it parks the caller
//! and answers later (or at the call's deadline). One-way operations are `ToHub::Cast`.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// Identifies a request on one connection.
pub type ReqId = u64;

/// A process known to the hub. Never reused within one program run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProcId(pub u64);

/// The root process (the one that runs the hub).
pub const ROOT_PROC: ProcId = ProcId(0);

/// An object in the hub: slab index in the low 32 bits, a generation in the high 32, so a stale
/// id is recognised as unknown instead of reaching a newer object in the same slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjId(pub u64);

/// How long a blocking operation may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Wait {
    /// Until it succeeds.
    Forever,
    /// Not at all: succeed now or fail (`try_` forms).
    Never,
    /// At most this many microseconds.
    Micros(u64),
}

impl Wait {
    /// Python's convention: `None` blocks, and zero or a negative timeout does not wait.
    pub fn from_timeout(t: Option<std::time::Duration>) -> Wait {
        match t {
            None => Wait::Forever,
            Some(d) if d.is_zero() => Wait::Never,
            Some(d) => Wait::Micros(d.as_micros().min(u64::MAX as u128) as u64),
        }
    }
}

/// How a start method creates a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    /// Re-execute the current binary.
    Spawn,
    /// Ask the fork server.
    ForkServer,
}

/// What a child runs: a registered worker and its encoded arguments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskSpec {
    /// The worker's registered name.
    pub worker: String,
    /// MessagePack of the argument tuple (or of the worker struct).
    pub args: ByteBuf,
    /// Descriptors that belong to the arguments, carried with the frame.
    pub nfds: u32,
}

/// A request to start a child process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpawnReq {
    /// The task to run.
    pub task: TaskSpec,
    /// The child's name (`Process-N` when the user gave none).
    pub name: String,
    /// Daemonic children are terminated when their parent exits normally.
    pub daemon: bool,
    /// How to create it.
    pub method: Method,
    /// Ignore SIGINT in the child (pool workers).
    pub ignore_sigint: bool,
    /// The child's identity path (Python's `_identity`): the parent's path plus a counter.
    pub ident: Vec<u32>,
    /// How long to wait for the child to be created (`ProcessBuilder::start_timeout`). Only a
    /// `ForkServer` start can wait (for the fork server); on timeout the hub answers `Timeout`
    /// and kills the child if the fork server creates it later.
    pub wait: Wait,
    /// The requester's authentication key, which the child inherits (see `crate::authkey`).
    #[serde(default)]
    pub authkey: ByteBuf,
}

/// The description of a process, as `current_process()` and friends report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcInfo {
    /// The hub's id.
    pub proc: ProcId,
    /// The OS pid (0 until known).
    pub pid: i32,
    /// The name.
    pub name: String,
    /// Daemonic?
    pub daemon: bool,
}

/// The first frame on a new child's main connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildInit {
    /// Who the child is.
    pub me: ProcInfo,
    /// Its logical parent.
    pub parent: ProcInfo,
    /// The root's pid (for the parent-death check).
    pub root_pid: i32,
    /// What to run; `None` for a process created by the fork start method.
    pub task: Option<TaskSpec>,
    /// The largest frame body accepted.
    pub max_frame: u64,
    /// Ignore SIGINT (pool workers).
    pub ignore_sigint: bool,
    /// The identity path (see [`SpawnReq::ident`]).
    pub ident: Vec<u32>,
    /// The authentication key to adopt (empty: keep this process's own, as a forked child).
    #[serde(default)]
    pub authkey: ByteBuf,
}

/// A panic, as the child reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanicReport {
    /// The panic message.
    pub message: String,
    /// `file:line:column`, when known.
    pub location: Option<String>,
}

/// What a worker produced, sent just before the child exits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Outcome {
    /// The encoded return value.
    Returned(ByteBuf),
    /// The worker panicked.
    Panicked(PanicReport),
    /// The worker's arguments or result could not be decoded/encoded, or the worker name is
    /// unknown in this binary.
    Failed(String),
    /// The worker returned, but its encoded value (`bytes`) is over the maximum frame size
    /// (`max`), so it could not be sent.
    TooLarge {
        /// The size the outcome frame would have had.
        bytes: u64,
        /// The maximum frame size in force.
        max: u64,
    },
}

/// How a process ended, with the hub's knowledge of why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitInfo {
    /// `exit(code)`.
    Exited(i32),
    /// Killed by a signal.
    Signaled(i32),
}

/// The answer to a join.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Joined {
    /// How the OS says it ended.
    pub exit: ExitInfo,
    /// What the worker reported, if it got that far.
    pub outcome: Option<Outcome>,
}

/// Kinds of hub objects that can be created with [`Op::NewObject`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ObjectKind {
    /// A one-shot reply slot (used by `ask`). Fails with `Gone` if `watch` dies first.
    Oneshot {
        /// The process expected to answer.
        watch: Option<ProcId>,
        /// A secret the answer must present (the asker chooses it and puts it only in the
        /// question): the slot is the one object a process may use without holding it.
        token: u64,
        /// A slot that an [`Op::Ask`] re-arms for each question (a process keeps a few and
        /// reuses them), instead of one that is reclaimed once its answer is taken.
        #[serde(default)]
        reusable: bool,
    },
    /// A synchronisation primitive.
    Sync(crate::wire::sync_ops::SyncKind),
    /// A queue.
    Queue(crate::wire::queue_ops::QueueKind),
    /// A Manager or one of its shared containers.
    Manager(crate::wire::manager_ops::ManagerKind),
}

/// The receiver of an [`Op::Ask`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum AskTo {
    /// A process.
    Proc(ProcId),
    /// The live holder of a registered name.
    Name(String),
}

/// Operations on hub objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ObjOp {
    /// Oneshot: fill the slot (one-way or call), presenting the slot's secret.
    OneshotPut {
        /// The secret given at creation ([`ObjectKind::Oneshot`]).
        token: u64,
        /// The encoded answer.
        value: ByteBuf,
    },
    /// Oneshot: wait for the value.
    OneshotTake(Wait),
    /// A synchronisation primitive's operation.
    Sync(crate::wire::sync_ops::SyncOp),
    /// A queue's operation.
    Queue(crate::wire::queue_ops::QueueOp),
    /// A Manager container's operation.
    Manager(crate::wire::manager_ops::ManagerOp),
}

/// A blocking (request/reply) operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Op {
    /// Start a child. Replies `Value::Proc`.
    Spawn(SpawnReq),
    /// Reserve a process entry for a child that the caller will fork itself. The reply carries
    /// the child's main connection (1 descriptor) and its `ChildInit`.
    PrepareFork {
        /// The child's name.
        name: String,
        /// Daemonic?
        daemon: bool,
        /// The identity path.
        ident: Vec<u32>,
    },
    /// Wait for a process to end. Replies `Value::Joined`.
    Join {
        /// Which process.
        proc: ProcId,
        /// How long.
        wait: Wait,
    },
    /// Send a signal to a process. Replies `Value::Unit`.
    Signal {
        /// Which process.
        proc: ProcId,
        /// The signal number.
        sig: i32,
    },
    /// The caller's live children. Replies `Value::Procs`.
    ActiveChildren,
    /// The processes parked on a Lock or RLock that the caller holds (the exit-time wait names
    /// them, issue 11 item 18). Replies `Value::Procs`.
    LocksAwaited,
    /// A process's description and state. Replies `Value::State`.
    ProcState(ProcId),
    /// Messages waiting in the hub for the caller's mailbox (those not yet pushed to it).
    /// Replies `Value::U64`.
    MailboxLen,
    /// Create an object. Replies `Value::Obj`.
    NewObject {
        /// What to create.
        kind: ObjectKind,
        /// The object's secret, chosen by the creator: a handle's serialised form carries it,
        /// and `Retain` must present it (see [`Cast::Retain`]).
        secret: u64,
    },
    /// Operate on an object.
    Object {
        /// Which object.
        obj: ObjId,
        /// What to do.
        op: ObjOp,
    },
    /// Does nothing; replies `Value::Unit`. For measuring the floor and for tests.
    Ping,
    /// Mail that waits for room: delivered (reply `Value::Unit`) once the receiver's mailbox
    /// holds no more than its limit, or `Timeout` at the deadline (`Wait::Never`: `Limit` at
    /// once if it is full).
    SendWait {
        /// To whom.
        to: ProcId,
        /// The encoded messages, in order.
        payloads: Vec<ByteBuf>,
        /// How long to wait for room.
        wait: Wait,
        /// Descriptors attached to the frame, per payload (empty: none at all). Mail that
        /// carries descriptors is always sent this way.
        #[serde(default)]
        nfds: Vec<u32>,
    },
    /// An `ask` in one round trip: re-arm the caller's reusable reply slot `slot` with a fresh
    /// `token`, watching the receiver; deliver `payload` (which carries that slot and token) to
    /// `to` as mail; then wait on the slot as `ObjOp::OneshotTake(wait)` would. The receiver
    /// cannot answer before the slot is armed, because the hub does all three in one step.
    Ask {
        /// To whom: a process, or a registered name resolved by the hub at this moment (the
        /// question goes to that incarnation only).
        to: AskTo,
        /// The encoded question.
        payload: ByteBuf,
        /// Descriptors attached to the frame (they travel with the question).
        nfds: u32,
        /// The caller's reusable reply slot (`ObjectKind::Oneshot { reusable: true, .. }`).
        slot: ObjId,
        /// The slot's new answer secret (the one inside `payload`'s `ReplyTo`).
        token: u64,
        /// How long to wait for the answer.
        wait: Wait,
    },
    /// A new connection for a thread of the calling process (1 descriptor attached), sent on
    /// the process's main connection. Replies `Value::Unit` once the hub serves it, or an
    /// error (the root out of descriptors, or the per-process connection limit).
    NewConn,
    /// A connection from another program (a remote manager's client, already authenticated),
    /// served on behalf of the calling process: it may only operate on objects that the caller
    /// holds (1 descriptor attached, on the main connection). Replies `Value::Unit`.
    NewRemoteConn,
    /// The synchronisation arena (see `wire::sync_slot`): replies `Value::SyncArena` (its size
    /// in bytes, 1 descriptor attached), or an error if the hub runs without it.
    SyncArena,
    /// The names family: registry, mail by name, monitors, links (see `wire::names_ops`).
    Names(crate::wire::names_ops::NamesOp),
    /// `Cast::SubscribeMailbox` as a call: the mail and signals already waiting are pushed
    /// on this connection *before* the reply (`Value::Unit`), so the subscriber has them all
    /// once it is answered.
    SubscribeMailbox,

    /// The hub's whole state, taken in one loop turn (`multiproc::snapshot()`). Replies
    /// `Value::Snapshot`.
    Snapshot,
}

/// A one-way message to the hub.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Cast {
    /// Put a message in a process's mailbox. Dropped if that process has ended.
    Send {
        /// To whom.
        to: ProcId,
        /// The encoded message.
        payload: ByteBuf,
    },
    /// Several messages to one mailbox, in order.
    SendBatch {
        /// To whom.
        to: ProcId,
        /// The encoded messages.
        payloads: Vec<ByteBuf>,
    },
    /// The worker's outcome; the process is about to exit.
    Outcome(Outcome),
    /// The sender forked process `proc`; its pid is `pid`.
    Forked {
        /// The entry from `PrepareFork`.
        proc: ProcId,
        /// Its OS pid.
        pid: i32,
    },
    /// The sender reaped a process it forked (or the fork server reaped one of its children).
    Reaped {
        /// The OS pid.
        pid: i32,
        /// How it ended.
        exit: ExitInfo,
    },
    /// This process holds at least one handle to `obj` (sent on the main connection only).
    /// Ignored unless `secret` is the object's: a process cannot become a holder of an object
    /// from its id alone.
    Retain {
        /// The object.
        obj: ObjId,
        /// Its secret (from the handle's serialised form).
        secret: u64,
    },
    /// This process holds no more handles to `obj` (main connection only).
    Release(ObjId),
    /// A handle to `obj` was serialised and is in flight to another process.
    InflightAdd(ObjId),
    /// A handle in flight was received (main connection only).
    InflightDone(ObjId),
    /// The sender dropped its `Process` handle to its child `proc` without learning how it
    /// ended: the hub may forget the child once it has ended (issue 11 item 19).
    ProcDropped(ProcId),
    /// Operate on an object without waiting for an answer.
    Object {
        /// Which object.
        obj: ObjId,
        /// What to do.
        op: ObjOp,
    },
    /// From now on, push the sender's mailbox messages on *this* connection as
    /// `FromHub::Mail`, starting with those already waiting.
    SubscribeMailbox,
    /// A pool's manager thread publishes its counters (`Some`), or says the pool is gone
    /// (`None`), for `Op::Snapshot`. `pool` is the pool's number in the sending process.
    PoolStats {
        /// The pool's number in the sender.
        pool: u64,
        /// Its counters, or `None` once it has shut down.
        stats: Option<crate::wire::snapshot::PoolStats>,
    },

    /// The caller gave up its call `id` on *this* connection (an `.await` form's future was
    /// dropped). If that call is still parked, the hub forgets it and answers it
    /// `HubError::Cancelled`; if it was answered already, nothing happens. Either way the call
    /// gets exactly one reply, so the client reads until that reply and undoes a success (see
    /// the "Async" section of ARCHITECTURE.md).
    Cancel(ReqId),
}

/// Client → hub.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToHub {
    /// A blocking call.
    Call {
        /// Echoed in the reply.
        id: ReqId,
        /// The operation.
        op: Op,
    },
    /// A one-way message.
    Cast(Cast),
}

/// The live state of a process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcState {
    /// Its description.
    pub info: ProcInfo,
    /// Has it ended?
    pub exit: Option<ExitInfo>,
}

/// A successful reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Value {
    /// Nothing to say.
    Unit,
    /// A flag.
    Bool(bool),
    /// A number.
    U64(u64),
    /// Bytes.
    Bytes(ByteBuf),
    /// A batch of encoded messages.
    Batch(Vec<ByteBuf>),
    /// One encoded value with `nfds` descriptors attached (a queue item that carries a
    /// `Connection` or shared memory).
    WithFds {
        /// The encoded value.
        bytes: ByteBuf,
        /// How many descriptors came with the reply.
        nfds: u32,
    },
    /// A process was started (or prepared).
    Proc(ProcInfo),
    /// A prepared fork: the child's init; 1 descriptor (its main connection) attached.
    Prepared(Box<ChildInit>),
    /// A process ended.
    Joined(Joined),
    /// Processes.
    Procs(Vec<ProcInfo>),
    /// A process's state.
    State(ProcState),
    /// A new object.
    Obj(ObjId),
    /// The sync arena (`Op::SyncArena`): its size in bytes; 1 descriptor attached.
    SyncArena(u64),
    /// A synchronisation primitive's reply.
    Sync(crate::wire::sync_ops::SyncReply),
    /// A Manager container's reply.
    Manager(crate::wire::manager_ops::ManagerReply),
    /// A reply of the names family.
    Names(crate::wire::names_ops::NamesReply),

    /// The hub's state (`Op::Snapshot`).
    Snapshot(Box<crate::wire::snapshot::Snapshot>),
}

/// Named in every `HubError::Limit` that refuses descriptors past `HubLimits::max_held_fds`
/// (so that callers can tell it from a full mailbox).
pub const HELD_FDS_LIMIT: &str = "HubLimits::max_held_fds";

/// Why the hub refused or could not complete a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum HubError {
    /// The deadline passed (or, for `Wait::Never`, the operation would have had to wait).
    #[error("timed out")]
    Timeout,
    /// Interrupted by Ctrl-C (interrupt mode only).
    #[error("interrupted")]
    Interrupted,
    /// No such object (never existed, or already reclaimed).
    #[error("no such object")]
    UnknownObject,
    /// The object exists but does not support this operation.
    #[error("wrong kind of object for this operation")]
    WrongKind,
    /// No such process.
    #[error("no such process")]
    UnknownProcess,
    /// The process or object that was needed has gone away.
    #[error("{0}")]
    Gone(String),
    /// The OS refused (spawn, signal, ...).
    #[error("{0}")]
    Os(String),
    /// The request was not valid.
    #[error("{0}")]
    Invalid(String),
    /// A limit of the hub was reached (see `HubLimits`); the message names it.
    #[error("{0}")]
    Limit(String),
    /// No process is registered under the name, or the process named does not exist.
    #[error("{0}")]
    NoProc(String),

    /// The caller cancelled the call (`Cast::Cancel`: its `.await` future was dropped).
    #[error("cancelled by the caller")]
    Cancelled,
}

/// Hub → client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FromHub {
    /// The answer to `ToHub::Call { id, .. }`.
    Reply {
        /// The call's id.
        id: ReqId,
        /// The result.
        result: Result<Value, HubError>,
    },
    /// First frame on a child's main connection; `init.task.nfds` descriptors attached.
    Init(Box<ChildInit>),
    /// Mailbox messages, in order, on the connection that subscribed.
    Mail(Vec<ByteBuf>),
    /// One mailbox message with `nfds` descriptors attached, in order with `Mail` frames.
    MailFds {
        /// The encoded message.
        mail: ByteBuf,
        /// How many descriptors came with the frame.
        nfds: u32,
    },
    /// The hub cannot go on (for this reason) and is closing every connection.
    Stopped(String),
    /// A monitor or link signal, on the mailbox connection, in order with `Mail`.
    Signal(crate::wire::names_ops::SignalMsg),
}

/// Hub → fork server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToForkServer {
    /// Fork a child for `proc`; its main connection is attached (1 descriptor). The child reads
    /// its `ChildInit` from that connection.
    Fork {
        /// The child's entry.
        proc: ProcId,
    },
}
