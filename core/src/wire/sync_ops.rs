//! Wire operations of the synchronisation primitives (Lock, RLock, Semaphore,
//! BoundedSemaphore, Event, Condition, Barrier).
//!
//! The state machines that serve these operations live in `hub/objects/sync/`; their module
//! docs describe the protocols. The user-facing handles are in `crate::sync`.
//!
//! A Condition is not an object of its own: its waiters live *in the lock object* it is built
//! on (identified by a [`CondKey`]), so that "release the lock and park" and "re-acquire the
//! lock before replying" are single steps of one state machine, and several conditions can
//! share one lock, as in Python.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::wire::proto::{ProcId, Wait};

/// Kinds of synchronisation objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SyncKind {
    /// A non-recursive lock (any process may release it).
    Lock,
    /// A recursive lock owned by one (process, thread).
    RLock,
    /// A counting semaphore; `bound` makes it a BoundedSemaphore.
    Semaphore {
        /// The initial number of permits.
        value: u32,
        /// The largest value a release may reach (BoundedSemaphore), if any.
        bound: Option<u32>,
    },
    /// A flag that parties wait for.
    Event,
    /// A barrier for `parties` parties, with an optional action (a `#[worker]` call).
    Barrier {
        /// How many parties must arrive.
        parties: u32,
        /// Runs once per generation in the last party to arrive, before any party is released.
        action: Option<BarrierAction>,
    },
}

/// A barrier's action: a registered worker and its encoded arguments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BarrierAction {
    /// The worker's registered name.
    pub worker: String,
    /// MessagePack of its arguments.
    pub args: ByteBuf,
}

/// Identifies one condition variable among those built on a lock: the process that created
/// the `Condition` and a sequence number local to that process (unique for the program's run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CondKey {
    /// The creating process.
    pub proc: u64,
    /// Its sequence number in that process.
    pub seq: u64,
}

/// Operations on synchronisation objects.
///
/// `thread` is the caller's thread id (unique within its process); together with the calling
/// process (known to the hub) it identifies the owner of a lock.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SyncOp {
    /// Lock/RLock: acquire. Replies [`SyncReply::Acquired`].
    Acquire {
        /// The calling thread.
        thread: u64,
        /// The caller's OS pid (informational, reported by `LockState`).
        pid: i32,
        /// How long to wait.
        wait: Wait,
    },
    /// Lock/RLock: release. With `ticket: None` (explicit `release()`, a call) an unheld Lock or
    /// a non-owned RLock is refused. With `Some(ticket)` (a guard's drop, usually a cast) it
    /// releases only the ownership that ticket names, and is otherwise ignored.
    Release {
        /// The calling thread.
        thread: u64,
        /// The guard's ticket, if released by a guard.
        ticket: Option<u64>,
    },
    /// Lock/RLock with a shared slot: its word was released while callers were parked
    /// (`WAITERS` alone, see `wire::sync_slot`); hand the lock to the first of them. Replies
    /// `Value::Unit`; usually sent one-way.
    HandOff,
    /// Lock/RLock: is it held? Replies `Value::Bool`.
    Locked,
    /// Lock/RLock: owner and recursion count. Replies [`SyncReply::LockState`].
    LockState,
    /// Condition (on a Lock/RLock object): release the lock fully, park until notified (or
    /// `wait` passes), then re-acquire it before replying [`SyncReply::Woken`].
    CondWait {
        /// Which condition.
        cond: CondKey,
        /// The calling thread (must own the lock).
        thread: u64,
        /// The caller's OS pid.
        pid: i32,
        /// How long to wait for a notification (re-acquiring the lock is not limited).
        wait: Wait,
    },
    /// Condition: wake up to `n` waiters (`u32::MAX`: all). The caller must own the lock.
    /// Replies `Value::U64` (how many were woken).
    CondNotify {
        /// Which condition.
        cond: CondKey,
        /// The calling thread (must own the lock).
        thread: u64,
        /// How many.
        n: u32,
    },
    /// Semaphore: take one permit. `guard`: the permit is tracked (returned if this process
    /// dies while holding it). Replies [`SyncReply::Acquired`] (`ticket` 0 if untracked).
    SemAcquire {
        /// Track the permit?
        guard: bool,
        /// How long to wait.
        wait: Wait,
    },
    /// Semaphore: add `n` permits. Replies `Value::Unit` or a fault.
    SemRelease {
        /// How many.
        n: u32,
    },
    /// Semaphore: a guard returns its tracked permit (ignored if already returned).
    SemGuardRelease {
        /// The guard's ticket.
        ticket: u64,
    },
    /// Semaphore: stop tracking a guard's permit (it becomes a raw permit).
    SemGuardForget {
        /// The guard's ticket.
        ticket: u64,
    },
    /// Semaphore: the current value. Replies `Value::U64`.
    SemValue,
    /// Event: set the flag, waking every waiter.
    EventSet,
    /// Event: clear the flag.
    EventClear,
    /// Event: the flag. Replies `Value::Bool`.
    EventIsSet,
    /// Event: wait for the flag. Replies `Value::Bool(true)`, or `Timeout`.
    EventWait {
        /// How long to wait.
        wait: Wait,
    },
    /// Barrier: arrive and wait. Replies [`SyncReply::Passed`], [`SyncReply::RunAction`] (to
    /// the party that must run the action), or a fault.
    BarrierWait {
        /// How long to wait.
        wait: Wait,
    },
    /// Barrier: the party told to run the action reports that it finished (`failure`: its
    /// panic message). Replies [`SyncReply::Passed`] or a fault.
    BarrierActionDone {
        /// The generation named in `RunAction`.
        generation: u64,
        /// Why the action failed, if it did.
        failure: Option<String>,
    },
    /// Barrier: break the waiting parties out and return to the initial state.
    BarrierReset,
    /// Barrier: put it in the broken state.
    BarrierAbort,
    /// Barrier: its state. Replies [`SyncReply::BarrierState`].
    BarrierState,
    /// Condition, one-way: wake up to `n` waiters. Sent by a thread that saw itself as the
    /// lock's owner in the shared word, *without* a reply and without an ownership check in the
    /// hub: its release (a plain CAS) may reach the word before the hub serves this. Misuse
    /// can only wake waiters early (a spurious wake-up), which condition waits allow.
    CondSignal {
        /// Which condition.
        cond: CondKey,
        /// How many.
        n: u32,
    },
}

/// The owner of a lock, as the hub knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOwner {
    /// The owning process.
    pub proc: ProcId,
    /// Its OS pid.
    pub pid: i32,
    /// The owning thread (ids are per process).
    pub thread: u64,
}

/// Replies of synchronisation objects (inside `Value::Sync`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SyncReply {
    /// A lock or a permit was granted.
    Acquired {
        /// Names this ownership (guards send it back when they release).
        ticket: u64,
        /// The previous owner died holding the lock (reported to the next acquirer only).
        owner_died: bool,
    },
    /// A condition wait ended and the lock is held again.
    Woken {
        /// Notified (true) or timed out (false).
        notified: bool,
        /// The lock was released by the death of its owner meanwhile.
        owner_died: bool,
    },
    /// A lock's owner and recursion count.
    LockState {
        /// The owner, if held.
        owner: Option<LockOwner>,
        /// The recursion count (0 when not held).
        count: u32,
    },
    /// A barrier was passed with this arrival index.
    Passed {
        /// `0..parties`; exactly one party per generation gets 0.
        index: u32,
    },
    /// The caller is the last party: run the action, then send `BarrierActionDone`.
    RunAction {
        /// The caller's arrival index (returned once the action is done).
        index: u32,
        /// The generation (echoed in `BarrierActionDone`).
        generation: u64,
        /// The action.
        action: BarrierAction,
    },
    /// A barrier's state.
    BarrierState {
        /// Parties per generation.
        parties: u32,
        /// Parties parked in the current generation.
        n_waiting: u32,
        /// Broken?
        broken: bool,
    },
    /// The operation was refused.
    Fault(SyncFault),
}

/// Why a synchronisation operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncFault {
    /// Release of a lock that is not held.
    NotHeld,
    /// The caller (process, thread) does not own the lock.
    NotOwner,
    /// A BoundedSemaphore release would exceed the bound; the value is unchanged.
    OverRelease {
        /// The value before the refused release.
        value: u32,
        /// The bound.
        bound: u32,
    },
    /// The barrier is broken (aborted, reset, timed out, or a party died).
    BrokenBarrier,
    /// A counter would overflow.
    Overflow,
}
