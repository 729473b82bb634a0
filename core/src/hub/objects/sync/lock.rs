//! Lock and RLock, and the condition variables built on them.
//!
//! # State
//! - `owner`: who holds the lock: the process, its thread id (sent by the client), the
//!   recursion count (always 1 for a Lock) and the **ticket** of this ownership.
//! - `acquirers`: a FIFO of parked acquirers. Invariant: **`owner == None` ⇒ no live
//!   acquirer**. A release hands the lock straight to the first live acquirer, so it is never
//!   free while someone waits, and a newcomer cannot overtake.
//! - `conds`: one FIFO of parked condition waiters per [`CondKey`]. A condition is not an
//!   object of its own: its waiters live here, next to the lock they release and re-acquire.
//!
//! # Protocol
//! - `Acquire { thread, wait }`: granted at once if free (or, for an RLock, if the caller's
//!   (process, thread) owns it: the count goes up); else parked until `wait` passes.
//!   The reply carries the ticket and the `owner_died` flag.
//! - `Release { ticket: None }` (explicit `release()`): a Lock may be released by anyone, as in
//!   Python, but not when unlocked (`NotHeld`); an RLock only by its owning (process, thread)
//!   (`NotOwner`), one recursion level at a time.
//! - `Release { ticket: Some(t) }` (a guard's drop, sent one-way): releases one level of the
//!   ownership named `t`, and is ignored when `t` is not the current ownership (stale: the hub
//!   already took the lock back from a dead process, or a condition wait was interrupted).
//! - `CondWait { cond, thread, wait }`: the caller must own the lock. In one step the hub saves
//!   the recursion count and ticket, frees the lock (handing it to the next acquirer) and parks
//!   the caller on `cond` with the deadline `wait`. On `CondNotify`, or when the deadline
//!   passes, the waiter moves to the back of `acquirers` *without* a deadline (re-acquiring is
//!   not limited by the timeout, as in Python); when it gets the lock, its saved count and
//!   ticket are restored (an RLock held 3 levels deep is again held 3 levels deep, and the
//!   caller's guard stays valid) and it is answered `Woken { notified }`.
//!   `wait == Never` (Python's `wait(0)`) frees the lock and queues for it again at once.
//! - `CondNotify { cond, n }`: the caller must own the lock; moves up to `n` live waiters of
//!   `cond`, oldest first, to the acquirers. They get the lock after the notifier releases it.
//!
//! # Death
//! - A dead process's parked acquirers and condition waiters are dropped.
//! - If it owned the lock (whatever the count), the lock is freed and `owner_died` is set: the
//!   next grant, to a queued acquirer or a later one, reports it once (`Acquired.owner_died`,
//!   or `Woken.owner_died` for a condition waiter re-acquiring) and clears it.
//! - A Lock is owned by the process that acquired it even if another process is expected to
//!   release it (Python's signalling style): if the acquirer dies first, the hub releases it.
//! - A thread that exits while its process lives keeps its locks, as in Python.
//! - A waiter answered `Interrupted` (interrupt mode) does not re-acquire the lock.

use std::collections::HashMap;

use super::{fault, ok};
use crate::hub::objects::{Answer, Caller, Cx, Object, WaitQueue, Waiter};
use crate::hub::Token;
use crate::wire::proto::{HubError, ObjOp, ProcId, ReqId, Value, Wait};
use crate::wire::sync_ops::{CondKey, LockOwner, SyncFault, SyncOp, SyncReply};

#[derive(Debug, Clone, Copy)]
struct Owner {
    proc: ProcId,
    pid: i32,
    thread: u64,
    count: u32,
    ticket: u64,
}

/// What a condition waiter gets back when it re-acquires the lock.
#[derive(Debug, Clone, Copy)]
struct Saved {
    pid: i32,
    thread: u64,
    count: u32,
    ticket: u64,
}

#[derive(Debug)]
struct Acq {
    pid: i32,
    thread: u64,
    /// A condition waiter re-acquiring: its saved state and whether it was notified.
    resume: Option<(Saved, bool)>,
}

pub(crate) struct LockObj {
    recursive: bool,
    owner: Option<Owner>,
    acquirers: WaitQueue<Acq>,
    conds: HashMap<CondKey, WaitQueue<Saved>>,
    owner_died: bool,
    next_ticket: u64,
}

impl LockObj {
    pub fn new(recursive: bool) -> Self {
        LockObj {
            recursive,
            owner: None,
            acquirers: WaitQueue::default(),
            conds: HashMap::new(),
            owner_died: false,
            next_ticket: 0,
        }
    }

    fn owned_by(&self, proc: ProcId, thread: u64) -> Option<Owner> {
        self.owner.filter(|o| o.proc == proc && o.thread == thread)
    }

    /// Makes `proc`/`thread` the owner (the lock must be free) and builds its reply.
    fn grant(&mut self, proc: ProcId, pid: i32, thread: u64, resume: Option<(Saved, bool)>) -> Result<Value, HubError> {
        debug_assert!(self.owner.is_none());
        let owner_died = std::mem::take(&mut self.owner_died);
        match resume {
            None => {
                self.next_ticket += 1;
                let ticket = self.next_ticket;
                self.owner = Some(Owner {
                    proc,
                    pid,
                    thread,
                    count: 1,
                    ticket,
                });
                ok(SyncReply::Acquired { ticket, owner_died })
            }
            Some((saved, notified)) => {
                self.owner = Some(Owner {
                    proc,
                    pid,
                    thread,
                    count: saved.count,
                    ticket: saved.ticket,
                });
                ok(SyncReply::Woken { notified, owner_died })
            }
        }
    }

    /// The lock was just freed: hand it to the first live acquirer, if any.
    fn hand_over(&mut self, cx: &mut Cx<'_>) {
        self.owner = None;
        if let Some((w, acq)) = self.acquirers.pop_live(cx) {
            let r = self.grant(w.who.proc, acq.pid, acq.thread, acq.resume);
            cx.reply(&w, r);
        }
    }

    /// A condition waiter (no longer time-limited) queues to re-acquire the lock.
    fn reacquire(&mut self, cx: &mut Cx<'_>, w: Waiter, saved: Saved, notified: bool) {
        if self.owner.is_none() {
            let r = self.grant(w.who.proc, saved.pid, saved.thread, Some((saved, notified)));
            cx.reply(&w, r);
        } else {
            self.acquirers.push(
                w,
                Acq {
                    pid: saved.pid,
                    thread: saved.thread,
                    resume: Some((saved, notified)),
                },
            );
        }
    }

    fn acquire(&mut self, cx: &mut Cx<'_>, who: Caller, thread: u64, pid: i32, wait: Wait) -> Answer {
        match self.owner.as_mut() {
            None => Answer::Now(self.grant(who.proc, pid, thread, None)),
            Some(o) if self.recursive && o.proc == who.proc && o.thread == thread => match o.count.checked_add(1) {
                Some(c) => {
                    o.count = c;
                    Answer::Now(ok(SyncReply::Acquired {
                        ticket: o.ticket,
                        owner_died: false,
                    }))
                }
                None => Answer::Now(fault(SyncFault::Overflow)),
            },
            Some(_) => match cx.park(who, wait) {
                Some(w) => {
                    self.acquirers.push(
                        w,
                        Acq {
                            pid,
                            thread,
                            resume: None,
                        },
                    );
                    Answer::Parked
                }
                None => Answer::Now(Err(HubError::Timeout)),
            },
        }
    }

    fn release(&mut self, cx: &mut Cx<'_>, who: Caller, thread: u64, ticket: Option<u64>) -> Result<Value, HubError> {
        let Some(o) = self.owner.as_mut() else {
            return match ticket {
                Some(_) => Ok(Value::Unit),
                None if self.recursive => fault(SyncFault::NotOwner),
                None => fault(SyncFault::NotHeld),
            };
        };
        match ticket {
            Some(t) if t != o.ticket => return Ok(Value::Unit),
            Some(_) => {}
            None if self.recursive && (o.proc != who.proc || o.thread != thread) => return fault(SyncFault::NotOwner),
            None => {}
        }
        if self.recursive && o.count > 1 {
            o.count -= 1;
            return Ok(Value::Unit);
        }
        self.hand_over(cx);
        Ok(Value::Unit)
    }

    fn cond_wait(&mut self, cx: &mut Cx<'_>, who: Caller, cond: CondKey, thread: u64, pid: i32, wait: Wait) -> Answer {
        let Some(o) = self.owned_by(who.proc, thread) else {
            return Answer::Now(fault(SyncFault::NotOwner));
        };
        let saved = Saved {
            pid,
            thread,
            count: o.count,
            ticket: o.ticket,
        };
        self.hand_over(cx);
        match cx.park(who, wait) {
            Some(w) => self.conds.entry(cond).or_default().push(w, saved),
            // `wait(0)`: nothing can notify it in between; queue for the lock again now.
            None => self.reacquire(cx, Waiter { who, timer: None }, saved, false),
        }
        Answer::Parked
    }

    fn cond_notify(
        &mut self,
        cx: &mut Cx<'_>,
        who: Caller,
        cond: CondKey,
        thread: u64,
        n: u32,
    ) -> Result<Value, HubError> {
        if self.owned_by(who.proc, thread).is_none() {
            return fault(SyncFault::NotOwner);
        }
        let mut moved = Vec::new();
        if let Some(q) = self.conds.get_mut(&cond) {
            while moved.len() < n as usize {
                let Some((mut w, saved)) = q.pop_live(cx) else { break };
                cx.timers.cancel(w.timer.take());
                moved.push((w, saved));
            }
            if q.is_empty() {
                self.conds.remove(&cond);
            }
        }
        let woken = moved.len() as u64;
        for (w, saved) in moved {
            self.reacquire(cx, w, saved, true);
        }
        Ok(Value::U64(woken))
    }
}

impl Object for LockObj {
    fn awaited_from(&self, holder: ProcId) -> Vec<ProcId> {
        match self.owner {
            Some(o) if o.proc == holder => self.acquirers.iter().map(|(w, _)| w.who.proc).collect(),
            _ => Vec::new(),
        }
    }

    fn call(&mut self, cx: &mut Cx<'_>, who: Caller, op: ObjOp) -> Answer {
        let ObjOp::Sync(op) = op else {
            return Answer::Now(Err(HubError::WrongKind));
        };
        match op {
            SyncOp::Acquire { thread, pid, wait } => self.acquire(cx, who, thread, pid, wait),
            SyncOp::Release { thread, ticket } => Answer::Now(self.release(cx, who, thread, ticket)),
            SyncOp::Locked => Answer::Now(Ok(Value::Bool(self.owner.is_some()))),
            SyncOp::LockState => Answer::Now(ok(SyncReply::LockState {
                owner: self.owner.map(|o| LockOwner {
                    proc: o.proc,
                    pid: o.pid,
                    thread: o.thread,
                }),
                count: self.owner.map_or(0, |o| o.count),
            })),
            SyncOp::CondWait {
                cond,
                thread,
                pid,
                wait,
            } => self.cond_wait(cx, who, cond, thread, pid, wait),
            SyncOp::CondNotify { cond, thread, n } => Answer::Now(self.cond_notify(cx, who, cond, thread, n)),
            _ => Answer::Now(Err(HubError::WrongKind)),
        }
    }

    fn expire(&mut self, cx: &mut Cx<'_>, conn: Token, id: ReqId) -> bool {
        if self.acquirers.remove(conn, id).is_some() {
            return true;
        }
        let mut found = None;
        for (key, q) in self.conds.iter_mut() {
            if let Some((w, saved)) = q.remove(conn, id) {
                found = Some((*key, w, saved));
                break;
            }
        }
        let Some((key, mut w, saved)) = found else { return false };
        if self.conds.get(&key).is_some_and(|q| q.is_empty()) {
            self.conds.remove(&key);
        }
        // The deadline has fired (its timer is gone); the wait now ends by re-acquiring the
        // lock, and the answer (`notified: false`) is sent then, not `Timeout` now.
        w.timer = None;
        self.reacquire(cx, w, saved, false);
        false
    }

    fn cancel(&mut self, cx: &mut Cx<'_>, pred: &dyn Fn(&Waiter) -> bool, why: Option<&HubError>) {
        self.acquirers.cancel(cx, pred, why);
        for q in self.conds.values_mut() {
            q.cancel(cx, pred, why);
        }
        self.conds.retain(|_, q| !q.is_empty());
    }

    fn proc_gone(&mut self, cx: &mut Cx<'_>, proc: ProcId) {
        // Its waiters may sit on connections the hub has not seen close yet: drop them first,
        // so the lock is never handed to a dead process.
        self.cancel(cx, &|w: &Waiter| w.who.proc == proc, None);
        if self.owner.is_some_and(|o| o.proc == proc) {
            self.owner_died = true;
            self.hand_over(cx);
        }
    }
}
