//! Semaphore and BoundedSemaphore.
//!
//! # State
//! - The **semaphore word** in the object's slot (`wire::sync_slot`): the free permits and
//!   `SEM_WAITERS`; in the shared arena, where clients take and give back permits with one
//!   compare-and-swap while nobody waits, or in a private slot only the hub touches.
//! - A FIFO of parked acquirers. Invariant: **acquirers parked ⇒ value 0 and `SEM_WAITERS`
//!   set**, so every release comes here and freed permits go to the first live waiters before
//!   they become free: nobody is overtaken.
//! - The permits held by guards granted *here*: ticket → holding process. Guards taken through
//!   the fast path are counted in the slot's `holders` entries instead.
//!
//! # Protocol
//! - `SemAcquire { guard, wait }`: a free permit is taken at once, else the caller parks
//!   (setting `SEM_WAITERS`). With `guard`, the grant gets a ticket recorded against the
//!   caller's process; without (a raw acquire), the permit is not tracked.
//! - `SemRelease { n }`: adds `n` permits, each going to the first live waiter. For a
//!   BoundedSemaphore, a release that would take the value above the bound is refused
//!   (`OverRelease`) and changes nothing (Python's `ValueError`).
//! - `SemGuardRelease { ticket }` (a guard's drop, one-way): returns the permit if the ticket
//!   is still outstanding, and is ignored otherwise (already returned at its holder's death).
//! - `SemGuardForget { ticket }`: the guard's permit becomes a raw one (no longer tracked).
//!
//! # Death
//! - A dead process's parked acquirers are dropped (never granted a permit).
//! - Permits it held **through guards** are returned, up to the bound: those granted here
//!   (tickets) and those its `holders` entry in the slot counts (fast path).
//! - Raw permits (a raw acquire, or a forgotten guard) are not tracked: in the signalling use
//!   of a semaphore, one process acquires and *another* releases, so the hub cannot know that
//!   the acquirer's death should give a permit back.
//!
//! Every loop over the shared word is bounded.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use super::arena::SlotHome;
use super::{fault, ok};
use crate::hub::objects::{Answer, Caller, Cx, ObjDesc, Object, WaitQueue, Waiter};
use crate::hub::Token;
use crate::wire::proto::{HubError, ObjId, ObjOp, ProcId, ReqId, Value};
use crate::wire::sync_ops::{SyncFault, SyncOp, SyncReply};
use crate::wire::sync_slot::{holder_tag, KIND_SEM, SEM_VALUE, SEM_WAITERS};

const TRIES: usize = 64;

fn scribbled() -> HubError {
    HubError::Invalid("the semaphore's shared word kept changing (is a process scribbling on the sync arena?)".into())
}

pub(crate) struct SemaphoreObj {
    slot: SlotHome,
    bound: Option<u32>,
    waiters: WaitQueue<bool>,
    guards: HashMap<u64, ProcId>,
    next_ticket: u64,
}

impl SemaphoreObj {
    pub fn new(value: u32, bound: Option<u32>) -> Self {
        let slot = SlotHome::private();
        slot.get().word.store(u64::from(value), Ordering::SeqCst);
        slot.get()
            .aux
            .store(bound.map_or(0, |b| b.saturating_add(1)), Ordering::SeqCst);
        SemaphoreObj {
            slot,
            bound,
            waiters: WaitQueue::default(),
            guards: HashMap::new(),
            next_ticket: 0,
        }
    }

    fn value(&self) -> u64 {
        self.slot.get().word.load(Ordering::SeqCst) & SEM_VALUE
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

    /// Adds `n` permits: each goes to the first live waiter, the rest become free (one CAS).
    fn add(&mut self, cx: &mut Cx<'_>, n: u64) -> Result<(), HubError> {
        let s = self.slot.get();
        for _ in 0..TRIES {
            let w = s.word.load(Ordering::SeqCst);
            let mut v = (w & SEM_VALUE).saturating_add(n);
            let mut served = Vec::new();
            while v > 0 {
                let Some(next) = self.waiters.pop_live(cx) else { break };
                v -= 1;
                served.push(next);
            }
            let new = v.min(SEM_VALUE) | if self.waiters.is_empty() { 0 } else { SEM_WAITERS };
            if s.word
                .compare_exchange(w, new, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                for (w, guard) in served {
                    let r = self.granted(w.who.proc, guard);
                    cx.reply(&w, r);
                }
                return Ok(());
            }
            for (w, guard) in served.into_iter().rev() {
                self.waiters.push_front(w, guard);
            }
        }
        Err(scribbled())
    }

    /// Returns permits that guards held, never above the bound (a raw release may already
    /// have given back a permit that a guard held, if the user mixed the two).
    fn give_back(&mut self, cx: &mut Cx<'_>, n: u64) {
        let n = match self.bound {
            Some(b) => n.min(u64::from(b).saturating_sub(self.value())),
            None => n,
        };
        if n > 0 {
            let _ = self.add(cx, n);
        }
    }

    fn acquire(&mut self, cx: &mut Cx<'_>, who: Caller, guard: bool, wait: crate::wire::proto::Wait) -> Answer {
        let s = self.slot.get();
        for _ in 0..TRIES {
            let w = s.word.load(Ordering::SeqCst);
            if w & SEM_VALUE > 0 {
                if s.word
                    .compare_exchange(w, w - 1, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    return Answer::Now(self.granted(who.proc, guard));
                }
                continue;
            }
            if wait == crate::wire::proto::Wait::Never {
                return Answer::Now(Err(HubError::Timeout));
            }
            if w & SEM_WAITERS == 0
                && s.word
                    .compare_exchange(w, w | SEM_WAITERS, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
            {
                continue;
            }
            return match cx.park(who, wait) {
                Some(w) => {
                    self.waiters.push(w, guard);
                    Answer::Parked
                }
                None => Answer::Now(Err(HubError::Timeout)),
            };
        }
        Answer::Now(Err(scribbled()))
    }

    /// Nobody parked any more: clear `SEM_WAITERS` so releases stay in user space.
    fn tidy(&self) {
        if self.waiters.is_empty() {
            self.slot.get().word.fetch_and(!SEM_WAITERS, Ordering::SeqCst);
        }
    }
}

impl Object for SemaphoreObj {
    fn call(&mut self, cx: &mut Cx<'_>, who: Caller, op: ObjOp) -> Answer {
        let ObjOp::Sync(op) = op else {
            return Answer::Now(Err(HubError::WrongKind));
        };
        match op {
            SyncOp::SemAcquire { guard, wait } => self.acquire(cx, who, guard, wait),
            SyncOp::SemRelease { n } => {
                let value = self.value();
                if let Some(bound) = self.bound {
                    if value + u64::from(n) > u64::from(bound) {
                        return Answer::Now(fault(SyncFault::OverRelease {
                            value: value.min(u64::from(u32::MAX)) as u32,
                            bound,
                        }));
                    }
                }
                Answer::Now(self.add(cx, u64::from(n)).map(|()| Value::Unit))
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
            SyncOp::SemValue => Answer::Now(Ok(Value::U64(self.value()))),
            _ => Answer::Now(Err(HubError::WrongKind)),
        }
    }

    fn expire(&mut self, _cx: &mut Cx<'_>, conn: Token, id: ReqId) -> bool {
        let found = self.waiters.remove(conn, id).is_some();
        self.tidy();
        found
    }

    fn cancel(&mut self, cx: &mut Cx<'_>, pred: &dyn Fn(&Waiter) -> bool, why: Option<&HubError>) {
        self.waiters.cancel(cx, pred, why);
        self.tidy();
    }

    fn describe(&self, now: std::time::Instant) -> ObjDesc {
        let mut held_by: Vec<ProcId> = self.guards.values().copied().collect();
        for h in &self.slot.get().holders {
            let e = h.load(Ordering::SeqCst);
            if e & SEM_VALUE > 0 && e >> 32 > 0 {
                held_by.push(ProcId((e >> 32) - 1));
            }
        }
        held_by.sort_unstable();
        held_by.dedup();
        ObjDesc {
            kind: if self.bound.is_some() {
                "BoundedSemaphore"
            } else {
                "Semaphore"
            }
            .to_owned(),
            held_by,
            depth: Some(self.value()),
            unfinished: None,
            waiters: self.waiters.rows("acquire", now),
            note: match self.bound {
                Some(b) => format!("{} free of {b}", self.value()),
                None => format!("{} free", self.value()),
            },
        }
    }

    fn proc_gone(&mut self, cx: &mut Cx<'_>, proc: ProcId) {
        self.waiters.cancel(cx, &|w: &Waiter| w.who.proc == proc, None);
        self.tidy();
        let before = self.guards.len();
        self.guards.retain(|_, p| *p != proc);
        let mut held = (before - self.guards.len()) as u64;
        // Its fast-path guards, as its entry in the slot counts them.
        let tag = holder_tag(proc.0);
        for h in &self.slot.get().holders {
            let e = h.load(Ordering::SeqCst);
            if e & !SEM_VALUE == tag && h.compare_exchange(e, 0, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                held += e & SEM_VALUE;
            }
        }
        if held > 0 {
            self.give_back(cx, held);
        }
    }

    fn attach(&mut self, id: ObjId, secret: u64) {
        self.slot.attach(id, secret, KIND_SEM);
    }
}
