//! Synchronisation primitives: [`Lock`], [`RLock`], [`Semaphore`], [`BoundedSemaphore`],
//! [`Event`], [`Condition`] and [`Barrier`], with shared-memory fast paths and the hub as the
//! arbiter of everything else.
//!
//! Each is a handle to a state machine inside the hub (see the hub's `objects/sync` module for
//! the protocols) whose state word lives in a shared *sync arena* that every process maps
//! (`wire::sync_slot` has the layout). Handles are `Clone + Serialize + Deserialize`: pass them
//! to a child as a worker argument or inside a message, and they work in any process of the
//! program. An uncontended acquire or release is one atomic operation in that memory, with no
//! system call and no message; waiting (contention, an unset event, a condition, a barrier),
//! timeouts, fair hand-over and death are the hub's, one request/reply on the calling thread's
//! own connection, so threads never delay each other.
//!
//! # Python's semantics, Rust's manners
//! - Every blocking operation has a blocking, a `try_` and a `_timeout` form. As in Python, a
//!   zero timeout does not wait.
//! - Acquiring returns a `#[must_use]` guard; dropping the guard releases (in any process, even
//!   while unwinding from a panic). Python's free-standing style (`acquire()` … `release()`,
//!   possibly from another process) is `lock.acquire()?.forget()` … `lock.release()?`.
//! - Waiters are served in FIFO order: nobody starves.
//!
//! # Guarantees beyond Python
//! - **A dead owner does not leave a lock held.** When a process dies (even by SIGKILL) while
//!   it holds a [`Lock`], an [`RLock`] or a [`Condition`]'s lock, the hub releases the lock, and
//!   the next acquirer is told: its guard's `previous_owner_died()` returns `true` (for a
//!   condition waiter that re-acquires the lock, its wait returns
//!   [`ConditionError::PreviousOwnerDied`] while holding the lock again, like `EOWNERDEAD` from
//!   a robust pthread mutex). The flag is reported once, to the very next owner.
//! - **Dead waiters are dropped**: a process that dies while blocked is never granted a lock or
//!   a permit.
//! - **Semaphore permits held through a guard** by a process that dies are returned. Permits
//!   taken raw (a guard turned into a raw permit with [`SemaphoreGuard::forget`]) are not
//!   tracked: in signalling use another process releases them.
//! - **A dead Barrier party breaks the barrier**: the other parties get
//!   [`BarrierError::Broken`] instead of waiting forever.
//!
//! # Costs
//! Uncontended `acquire`+`release` of a Lock, RLock or Semaphore, `Event::set`/`clear`/`is_set`
//! and `wait` on a set event stay in user space (tens of nanoseconds, like Python's
//! shared-memory primitives). A caller that has to wait parks in the hub (a few microseconds
//! per wake-up); while a Lock is contended every acquisition goes through the hub in FIFO order,
//! which is what makes it fair. Barrier waits and Condition waits and notifies are hub round
//! trips. Setting `MULTIPROC_SYNC_FASTPATH=0` makes every operation a hub round trip (the
//! behaviour is the same).
//!
//! # Trust
//! Any process of the program can write the arena. A process that scribbles on it can break
//! the primitives whose slots it overwrites, but it cannot crash or hang the hub (which only
//! does bounded atomic operations on it) nor touch any other state.

mod arena;
mod barrier;
mod condition;
mod error;
mod event;
mod lock;
mod semaphore;

pub use barrier::{Barrier, BarrierBuilder};
#[cfg(feature = "tokio")]
pub use condition::AsyncConditionGuard;
pub use condition::{Condition, ConditionGuard};
pub use error::{BarrierError, ConditionError, EventError, LockError, RLockError, SemaphoreError};
pub use event::Event;
pub use lock::{Lock, LockGuard, RLock, RLockGuard, RLockOwner};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphoreGuard};

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::CallError;
use crate::runtime::{self, handle::ObjRef};
use crate::wire::proto::{ObjOp, Value, Wait};
use crate::wire::sync_ops::{SyncOp, SyncReply};

static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);
static NEXT_COND: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static THREAD_ID: u64 = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
}

/// The calling thread's id as the synchronisation primitives know it (unique within its
/// process; an [`RLock`] is owned by a (process, thread) pair). Compare with
/// [`RLockOwner::thread`].
pub fn current_thread_id() -> u64 {
    // During thread teardown the thread-local may be gone; 0 is never a live thread's id.
    THREAD_ID.try_with(|t| *t).unwrap_or(0)
}

/// Does this process use the shared-memory fast paths (it has mapped the sync arena)? `false`
/// when the program runs with `MULTIPROC_SYNC_FASTPATH=0` or the arena is unavailable; the
/// primitives then work through the hub's message protocol alone, with the same behaviour.
#[doc(hidden)]
pub fn fastpath_active() -> bool {
    arena::available()
}

/// The memory the sync arena really uses, in bytes (its allocated pages), or `None` without
/// the fast paths. For tests and benchmarks.
#[doc(hidden)]
pub fn arena_used_bytes() -> Option<u64> {
    arena::used_bytes()
}

/// Makes this process use the message protocol only (as with `MULTIPROC_SYNC_FASTPATH=0`),
/// if it has not used a fast path yet; returns whether it took effect. For tests that mix
/// processes with and without the fast paths on the same primitives.
#[doc(hidden)]
pub fn use_messages_only() -> bool {
    arena::messages_only()
}

/// How many Lock/RLock/Condition-lock/Event operations of this process have needed the hub (a
/// contended acquire, a release with waiters, a wait on an unset event, any operation without
/// the fast paths). For tests
/// that check an operation took the fast path.
#[doc(hidden)]
pub fn slow_path_calls() -> u64 {
    arena::slow_calls()
}

/// Overwrites the shared state word of a Lock's slot with `word`, as a misbehaving process
/// could. For the fault tests of the trust model (the hub must stay up); returns false without
/// the fast paths.
#[doc(hidden)]
pub fn scribble_lock_word(lock: &Lock, word: u64) -> bool {
    match arena::slot(lock.obj(), crate::wire::sync_slot::KIND_LOCK) {
        Some(s) => {
            s.word.store(word, Ordering::SeqCst);
            true
        }
        None => false,
    }
}

/// Overwrites the condition seat of a Condition's lock slot (`cwait`, the two companion words
/// and `aux`), as a misbehaving process could. For the fault tests of the trust model (the hub
/// must stay up); returns false without the fast paths.
#[doc(hidden)]
pub fn scribble_condition_seat(cond: &Condition, cwait: u32, companions: [u64; 2], aux: u32) -> bool {
    let (obj, recursive) = cond.lock_ref();
    let kind = if recursive {
        crate::wire::sync_slot::KIND_RLOCK
    } else {
        crate::wire::sync_slot::KIND_LOCK
    };
    match arena::slot(obj, kind) {
        Some(s) => {
            s.holders[0].store(companions[0], Ordering::SeqCst);
            s.holders[1].store(companions[1], Ordering::SeqCst);
            s.aux.store(aux, Ordering::SeqCst);
            s.cwait.store(cwait, Ordering::SeqCst);
            true
        }
        None => false,
    }
}

/// A fresh owner id, from the same space as thread ids, so it never names a live thread of this
/// process: for one async acquisition, or for a relayed caller of another MPI rank.
#[cfg(any(feature = "tokio", feature = "mpi"))]
pub(crate) fn fresh_owner_id() -> u64 {
    NEXT_THREAD.fetch_add(1, Ordering::Relaxed)
}

/// This process's OS pid (0 if the runtime cannot start).
fn my_pid() -> i32 {
    runtime::rt().map(|rt| rt.me.pid).unwrap_or(0)
}

/// A fresh condition key, unique in the program's run.
fn new_cond_key() -> Result<crate::wire::sync_ops::CondKey, CallError> {
    Ok(crate::wire::sync_ops::CondKey {
        proc: runtime::rt()?.me.proc.0,
        seq: NEXT_COND.fetch_add(1, Ordering::Relaxed),
    })
}

/// A blocking operation. `client_deadline` is the safety net for an unresponsive hub (the
/// hub itself enforces the operation's deadline).
fn call(obj: &ObjRef, op: SyncOp, wait: Wait) -> Result<Value, CallError> {
    obj.call(ObjOp::Sync(op), runtime::deadline_of(wait))
}

/// A blocking operation whose answer may come long after its own deadline (a condition wait
/// must still re-acquire its lock; a barrier latecomer waits for the action to finish).
fn call_unbounded(obj: &ObjRef, op: SyncOp) -> Result<Value, CallError> {
    obj.call(ObjOp::Sync(op), None)
}

/// A one-way operation (guards' releases).
fn cast(obj: &ObjRef, op: SyncOp) {
    // If the hub is gone, so is everything the release would have mattered to.
    let _ = obj.cast(ObjOp::Sync(op));
}

/// Turns a `Timeout` into `Ok(None)`.
fn timeout_to_none(r: Result<Value, CallError>) -> Result<Option<Value>, CallError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_timeout() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Expects a `Value::Sync` reply.
fn sync_reply(v: Value) -> Result<SyncReply, CallError> {
    match v {
        Value::Sync(r) => Ok(r),
        other => Err(unexpected(other)),
    }
}

fn unexpected(v: impl std::fmt::Debug) -> CallError {
    CallError::Protocol(format!("unexpected reply from a synchronisation object: {v:?}"))
}

fn expect_bool(v: Value) -> Result<bool, CallError> {
    match v {
        Value::Bool(b) => Ok(b),
        other => Err(unexpected(other)),
    }
}

fn expect_u64(v: Value) -> Result<u64, CallError> {
    match v {
        Value::U64(n) => Ok(n),
        other => Err(unexpected(other)),
    }
}

fn expect_unit(v: Value) -> Result<(), CallError> {
    match v {
        Value::Unit => Ok(()),
        other => Err(unexpected(other)),
    }
}
