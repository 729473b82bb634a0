//! Hub state machines of the synchronisation primitives.
//!
//! | kind | module | state |
//! |---|---|---|
//! | Lock, RLock, and every Condition built on them | [`lock`] | owner, FIFO of acquirers, condition queues |
//! | Semaphore, BoundedSemaphore | [`semaphore`] | the semaphore word, a FIFO of acquirers, the permits held by guards |
//! | Event | [`event`] | a flag and its waiters |
//! | Barrier | [`barrier`] | the parked parties of the current generation, the action runner |
//!
//! # Common rules
//! - **FIFO.** Every blocked caller is parked in a [`WaitQueue`](super::WaitQueue) and served
//!   in arrival order. A resource freed while callers wait is handed to the first live one
//!   directly (it never becomes "free" in between), so a newcomer cannot overtake a waiter and
//!   no waiter starves.
//! - **Deadlines** are the hub's: a parked call's deadline ends in [`Object::expire`]. Where
//!   a deadline must not end the call at once (a condition wait still has to re-acquire its
//!   lock), `expire` moves the waiter on and answers later itself.
//! - **Death.** When a process dies, each object forgets its parked calls (even those on
//!   connections the hub has not yet seen close) and gives back what it held: locks (the next
//!   owner is told), permits held by guards, barrier parties (the barrier breaks).
//! - **Tickets.** A grant carries a ticket; a guard's release names it, so a release that
//!   arrives after the hub has already taken the resource back (its holder was declared dead)
//!   is recognised as stale and ignored instead of releasing someone else's hold.
//! - Refusals that the client must tell apart travel as `Value::Sync(SyncReply::Fault(..))`;
//!   protocol misuse (a wrong op for the kind) is `HubError::WrongKind`.

pub(crate) mod arena;
pub(crate) mod barrier;
pub(crate) mod event;
pub(crate) mod lock;
pub(crate) mod semaphore;

use super::{Lifetime, Object};
use crate::wire::proto::{HubError, ProcId, Value};
use crate::wire::sync_ops::{SyncFault, SyncKind, SyncReply};

/// Builds a synchronisation object.
pub(crate) fn create(kind: SyncKind, _creator: ProcId) -> Result<(Box<dyn Object>, Lifetime), HubError> {
    let obj: Box<dyn Object> = match kind {
        SyncKind::Lock => Box::new(lock::LockObj::new(false)),
        SyncKind::RLock => Box::new(lock::LockObj::new(true)),
        SyncKind::Semaphore { value, bound } => {
            if bound.is_some_and(|b| value > b) {
                return Err(HubError::Invalid(format!(
                    "a BoundedSemaphore's initial value ({value}) cannot exceed its bound ({})",
                    bound.unwrap_or_default()
                )));
            }
            Box::new(semaphore::SemaphoreObj::new(value, bound))
        }
        SyncKind::Event => Box::new(event::EventObj::default()),
        SyncKind::Barrier { parties, action } => {
            if parties == 0 {
                return Err(HubError::Invalid("a Barrier needs at least one party".into()));
            }
            Box::new(barrier::BarrierObj::new(parties, action))
        }
    };
    Ok((obj, Lifetime::Counted))
}

/// A successful reply.
pub(crate) fn ok(r: SyncReply) -> Result<Value, HubError> {
    Ok(Value::Sync(r))
}

/// A refusal the client maps to its own error.
pub(crate) fn fault(f: SyncFault) -> Result<Value, HubError> {
    Ok(Value::Sync(SyncReply::Fault(f)))
}
