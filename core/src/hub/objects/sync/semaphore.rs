//! Semaphore and BoundedSemaphore.
//!
//! # State
//! A [`Permits`] pool (free permits + FIFO of parked acquirers), an optional bound, and the
//! permits held by **guards**: ticket → holding process.
//!
//! # Protocol
//! - `SemAcquire { guard, wait }`: a free permit is taken at once, else the caller parks. With
//!   `guard`, the grant gets a ticket recorded against the caller's process; without (a raw
//!   acquire), the permit is not tracked.
//! - `SemRelease { n }`: adds `n` permits, each going to the first live waiter. For a
//!   BoundedSemaphore, a release that would take the value above the bound is refused
//!   (`OverRelease`) and changes nothing (Python's `ValueError`).
//! - `SemGuardRelease { ticket }` (a guard's drop, one-way): returns the permit if the ticket
//!   is still outstanding, and is ignored otherwise (already returned at its holder's death).
//! - `SemGuardForget { ticket }`: the guard's permit becomes a raw one (no longer tracked).
//!
//! # Death
//! - A dead process's parked acquirers are dropped (never granted a permit).
//! - Permits it held **through guards** are returned, up to the bound.
//! - Raw permits (a raw acquire, or a forgotten guard) are not tracked: in the signalling use
//!   of a semaphore, one process acquires and *another* releases, so the hub cannot know that
//!   the acquirer's death should give a permit back.

use std::collections::HashMap;

use super::permits::Permits;
use super::{fault, ok};
use crate::hub::objects::{Answer, Caller, Cx, Object, Waiter};
use crate::hub::Token;
use crate::wire::proto::{HubError, ObjOp, ProcId, ReqId, Value};
use crate::wire::sync_ops::{SyncFault, SyncOp, SyncReply};

pub(crate) struct SemaphoreObj {
    permits: Permits<bool>,
    bound: Option<u32>,
    guards: HashMap<u64, ProcId>,
    next_ticket: u64,
}

impl SemaphoreObj {
    pub fn new(value: u32, bound: Option<u32>) -> Self {
        SemaphoreObj {
            permits: Permits::new(u64::from(value)),
            bound,
            guards: HashMap::new(),
            next_ticket: 0,
        }
    }

    /// The reply to a grant of one permit to `proc`.
    fn granted(&mut self, proc: ProcId, guard: bool) -> Result<Value, HubError> {
        let ticket = if guard {
            self.next_ticket += 1;
            self.guards.insert(self.next_ticket, proc);
            self.next_ticket
        } else {
            0
        };
        ok(SyncReply::Acquired {
            ticket,
            owner_died: false,
        })
    }

    fn add(&mut self, cx: &mut Cx<'_>, n: u64) {
        for (w, guard) in self.permits.add(cx, n) {
            let r = self.granted(w.who.proc, guard);
            cx.reply(&w, r);
        }
    }

    /// Returns permits that guards held, never above the bound (a raw release may already
    /// have given back a permit that a guard held, if the user mixed the two).
    fn give_back(&mut self, cx: &mut Cx<'_>, n: u64) {
        let n = match self.bound {
            Some(b) => n.min(u64::from(b).saturating_sub(self.permits.value())),
            None => n,
        };
        if n > 0 {
            self.add(cx, n);
        }
    }
}

impl Object for SemaphoreObj {
    fn call(&mut self, cx: &mut Cx<'_>, who: Caller, op: ObjOp) -> Answer {
        let ObjOp::Sync(op) = op else {
            return Answer::Now(Err(HubError::WrongKind));
        };
        match op {
            SyncOp::SemAcquire { guard, wait } => {
                if self.permits.try_take() {
                    return Answer::Now(self.granted(who.proc, guard));
                }
                match cx.park(who, wait) {
                    Some(w) => {
                        self.permits.enqueue(w, guard);
                        Answer::Parked
                    }
                    None => Answer::Now(Err(HubError::Timeout)),
                }
            }
            SyncOp::SemRelease { n } => {
                let value = self.permits.value();
                if let Some(bound) = self.bound {
                    if value + u64::from(n) > u64::from(bound) {
                        return Answer::Now(fault(SyncFault::OverRelease {
                            value: value.min(u64::from(u32::MAX)) as u32,
                            bound,
                        }));
                    }
                }
                self.add(cx, u64::from(n));
                Answer::Now(Ok(Value::Unit))
            }
            SyncOp::SemGuardRelease { ticket } => {
                if self.guards.remove(&ticket).is_some() {
                    self.give_back(cx, 1);
                }
                Answer::Now(Ok(Value::Unit))
            }
            SyncOp::SemGuardForget { ticket } => {
                self.guards.remove(&ticket);
                Answer::Now(Ok(Value::Unit))
            }
            SyncOp::SemValue => Answer::Now(Ok(Value::U64(self.permits.value()))),
            _ => Answer::Now(Err(HubError::WrongKind)),
        }
    }

    fn expire(&mut self, _cx: &mut Cx<'_>, conn: Token, id: ReqId) -> bool {
        self.permits.waiters().remove(conn, id).is_some()
    }

    fn cancel(&mut self, cx: &mut Cx<'_>, pred: &dyn Fn(&Waiter) -> bool, why: Option<&HubError>) {
        self.permits.waiters().cancel(cx, pred, why);
    }

    fn proc_gone(&mut self, cx: &mut Cx<'_>, proc: ProcId) {
        self.permits
            .waiters()
            .cancel(cx, &|w: &Waiter| w.who.proc == proc, None);
        let before = self.guards.len();
        self.guards.retain(|_, p| *p != proc);
        let held = (before - self.guards.len()) as u64;
        if held > 0 {
            self.give_back(cx, held);
        }
    }
}
