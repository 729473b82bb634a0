//! Lock and RLock, and the condition variables built on them.
//!
//! # State
//! - The **lock word** and its companions (`count`, `seq`, `pid`) live in the object's slot
//!   (`wire::sync_slot`): in the shared arena, where clients take and release an uncontended
//!   lock with one compare-and-swap each and no message, or, when the object has no arena slot,
//!   in a private slot only the hub touches (then every operation is a message). The hub reads
//!   the word on every operation; it never caches who owns the lock.
//! - `acquirers`: a FIFO of parked acquirers. Invariant: **acquirers parked ⇒ `WAITERS` set in
//!   the word**, so the owner's release comes to the hub (a `HandOff`), which hands the lock to
//!   the first live acquirer if it is still free then.
//! - **Eventual fairness** (parking_lot's scheme). A running process may take a word that is
//!   free while callers are parked (*barging*, see `wire::sync_slot`): that is what makes a
//!   contended lock fast, since a hand-over through the hub costs two cross-process wake-ups
//!   and a barging acquire none. To bound how long a parked caller can be overtaken, the hub
//!   sets `FAIR` in the word once the first parked caller has waited [`FAIR_AFTER`]: nobody
//!   barges then, the next release hands the lock to that caller, and `FAIR` stays only while
//!   the next one in line is overdue as well. The hub looks at every release that finds
//!   callers parked (each sends a `HandOff`, at most one in flight: `NOTIFIED`).
//! - `conds`: one FIFO of parked condition waiters per [`CondKey`]. A condition is not an
//!   object of its own: its waiters live here, next to the lock they release and re-acquire.
//!
//! # Protocol
//! - Fast path (in the client, `crate::sync`): acquire = CAS free → own token (an RLock owner
//!   re-entering bumps `count`); release = CAS own token → 0. A word with `WAITERS` set is
//!   released by CAS token|flags → flags|NOTIFIED followed by a one-way `HandOff` (unless
//!   `NOTIFIED` was set already); a word free with callers parked may be taken by barging
//!   unless `FAIR` is set; a held word makes the client spin briefly, then send `Acquire` (the
//!   hub parks it and sets `WAITERS`).
//! - `Acquire { thread, wait }`: granted at once if free (or, for an RLock, if the caller's
//!   (process, thread) owns it: the count goes up); else `WAITERS` is set and the caller parked
//!   until `wait` passes. The reply carries the ticket (`seq`) and the `owner_died` flag.
//! - `Release { ticket: None }` (explicit `release()`): a Lock may be released by anyone, as in
//!   Python, but not when unlocked (`NotHeld`); an RLock only by its owning (process, thread)
//!   (`NotOwner`), one recursion level at a time.
//! - `Release { ticket: Some(t) }` (a guard's drop, sent one-way): releases one level of the
//!   ownership named (thread, `t`), and is ignored when that is not the current ownership
//!   (stale: the hub already took the lock back from a dead process, or a condition wait was
//!   interrupted).
//! - `HandOff`: the word was released with waiters parked (flags alone): hand it over if no
//!   barging process took it meanwhile (then that one's release sends the next `HandOff`).
//!   Every operation (and every death) first settles such a word, so a releaser that dies
//!   between its CAS and its message leaves nothing stuck.
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
//! - `CondSignal { cond, n }` (one-way): the same without the ownership check, from a client
//!   that saw itself as the owner in the shared word; its release may have happened already.
//!
//! # Death
//! - A dead process's parked acquirers and condition waiters are dropped.
//! - If the word names it as the owner (whatever the count, taken through the fast path or
//!   not), the lock is handed to the first live acquirer with `owner_died`, or set to `DIED`:
//!   the next owner, by the fast path or through the hub, is told once
//!   (`Acquired.owner_died`, or `Woken.owner_died` for a condition waiter re-acquiring).
//! - A Lock is owned by the process that acquired it even if another process is expected to
//!   release it (Python's signalling style): if the acquirer dies first, the hub releases it.
//! - A thread that exits while its process lives keeps its locks, as in Python.
//! - A waiter answered `Interrupted` (interrupt mode) does not re-acquire the lock.
//!
//! # Untrusted memory
//! Any process can write the arena. Every loop over the word here is bounded ([`TRIES`]); a
//! word that keeps changing under the hub gets the caller an error, never a hung hub.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::arena::SlotHome;
use super::{fault, ok};
use crate::hub::objects::{Answer, Caller, Cx, ObjDesc, Object, WaitQueue, Waiter};
use crate::hub::Token;
use crate::wire::proto::{HubError, ObjId, ObjOp, ProcId, ReqId, Value, Wait};
use crate::wire::snapshot::WaiterRow;
use crate::wire::sync_ops::{CondKey, LockOwner, SyncFault, SyncOp, SyncReply};
use crate::wire::sync_slot::{
    claim_seat_wake, cond_tag, cw_next, end_seat_wait, held, owner_of, owner_token, token, SyncSlot, COND_PARKED,
    CW_STATE, CW_WAITING, DIED, FAIR, KIND_LOCK, KIND_RLOCK, NOTIFIED, WAITERS,
};

/// Attempts at a compare-and-swap on the word before giving up (the word is shared memory that
/// only a misbehaving process would change this often).
const TRIES: usize = 64;

/// How long the first parked acquirer may be overtaken by barging processes before the hub
/// forbids barging (`FAIR`) and hands the lock to it at the next release.
const FAIR_AFTER: Duration = Duration::from_micros(100);

fn contended() -> HubError {
    HubError::Invalid("the lock's shared word kept changing (is a process scribbling on the sync arena?)".into())
}

/// What a condition waiter gets back when it re-acquires the lock.
#[derive(Debug, Clone, Copy)]
struct Saved {
    pid: i32,
    thread: u64,
    count: u32,
    ticket: u32,
}

#[derive(Debug)]
struct Acq {
    pid: i32,
    thread: u64,
    /// When it was parked (for `FAIR_AFTER`).
    since: Instant,
    /// A condition waiter re-acquiring: its saved state and whether it was notified.
    resume: Option<(Saved, bool)>,
}

pub(crate) struct LockObj {
    recursive: bool,
    slot: SlotHome,
    acquirers: WaitQueue<Acq>,
    conds: HashMap<CondKey, WaitQueue<Saved>>,
}

impl LockObj {
    pub fn new(recursive: bool) -> Self {
        LockObj {
            recursive,
            slot: SlotHome::private(),
            acquirers: WaitQueue::default(),
            conds: HashMap::new(),
        }
    }

    fn s(&self) -> &SyncSlot {
        self.slot.get()
    }

    /// Publishes in the slot whether condition waiters are parked here (`COND_PARKED`): while
    /// they are, no new waiter takes the condition seat, and a notifier that has `n` left after
    /// the seat tells the hub.
    fn publish_parked(&self) {
        let v = if self.conds.is_empty() { 0 } else { COND_PARKED };
        self.s().aux.store(v, Ordering::SeqCst);
    }

    /// Ends the wait of the condition seat's waiter if it waits on `cond` (a notify from a
    /// process without the fast path, or the rest of a fast notify): one CAS, one futex wake.
    fn notify_seat(&self, cond: CondKey) -> bool {
        let s = self.s();
        if !end_seat_wait(s, cond_tag(cond.proc, cond.seq), cw_next) {
            return false;
        }
        crate::sys::futex::wake(&s.cwait, u32::MAX);
        true
    }

    /// Wakes the seat's sleeper if a notify ended its wait and nobody has woken it yet
    /// (`g|WOKEN → g|FREE`, then `futex_wake`): after every operation and death the hub
    /// handles, in case the lock was released here (a process without the arena, or the death
    /// of the notifier holding the lock).
    fn wake_notified(&self) {
        // Not while the lock is held: its owner's release does it.
        if claim_seat_wake(self.s(), TRIES as u32, || owner_of(self.word()).is_some()) {
            crate::sys::futex::wake(&self.s().cwait, u32::MAX);
        }
    }

    /// The seat's waiter, if one waits (for snapshots; read, never trusted).
    fn seat_waiter(&self) -> Option<ProcId> {
        let s = self.s();
        if s.cwait.load(Ordering::SeqCst) & CW_STATE != CW_WAITING {
            return None;
        }
        owner_of(s.holders[0].load(Ordering::SeqCst)).map(|(p, _)| ProcId(p))
    }

    /// Has the first parked acquirer waited longer than [`FAIR_AFTER`]?
    fn overdue(&self, now: Instant) -> bool {
        self.acquirers
            .iter()
            .next()
            .is_some_and(|(_, a)| now.saturating_duration_since(a.since) >= FAIR_AFTER)
    }

    /// The flags a word must carry for the acquirers parked now.
    fn flags(&self, now: Instant) -> u64 {
        match (self.acquirers.is_empty(), self.overdue(now)) {
            (true, _) => 0,
            (false, false) => WAITERS,
            (false, true) => WAITERS | FAIR,
        }
    }

    /// Forbids barging (`FAIR`) once the first parked acquirer is overdue, so that the next
    /// release hands the lock to it.
    fn enforce_fairness(&self, now: Instant) {
        if !self.overdue(now) {
            return;
        }
        for _ in 0..TRIES {
            let w = self.word();
            if w & WAITERS == 0 || w & FAIR != 0 {
                return;
            }
            if self
                .s()
                .word
                .compare_exchange(w, w | FAIR, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                return;
            }
        }
    }

    fn word(&self) -> u64 {
        self.s().word.load(Ordering::SeqCst)
    }

    /// Does the word name (proc, thread) as the owner?
    fn is_owner(w: u64, proc: ProcId, thread: u64) -> bool {
        held(w) && owner_token(w) == token(proc.0, thread)
    }

    /// Swaps the word from `from` to the token of (proc, thread) with `flags`, and writes the
    /// owner's companions on its behalf (it is parked: it writes nothing until answered).
    /// Returns its reply, or `None` if the word was no longer `from`.
    #[allow(clippy::too_many_arguments)]
    fn install(
        &self,
        from: u64,
        proc: ProcId,
        pid: i32,
        thread: u64,
        resume: Option<(Saved, bool)>,
        flags: u64,
        owner_died: bool,
    ) -> Option<Result<Value, HubError>> {
        let s = self.s();
        let new = token(proc.0, thread) | flags;
        s.word
            .compare_exchange(from, new, Ordering::SeqCst, Ordering::SeqCst)
            .ok()?;
        Some(match resume {
            None => {
                let seq = s.seq.load(Ordering::Relaxed).wrapping_add(1);
                s.seq.store(seq, Ordering::Relaxed);
                s.count.store(1, Ordering::Relaxed);
                s.pid.store(pid, Ordering::Relaxed);
                ok(SyncReply::Acquired {
                    ticket: u64::from(seq),
                    owner_died,
                })
            }
            Some((saved, notified)) => {
                s.seq.store(saved.ticket, Ordering::Relaxed);
                s.count.store(saved.count, Ordering::Relaxed);
                s.pid.store(saved.pid, Ordering::Relaxed);
                ok(SyncReply::Woken { notified, owner_died })
            }
        })
    }

    /// The word `from` is being given up (by its owner, by its owner's death, or it was left
    /// as `WAITERS` alone): hand the lock to the first live acquirer, or free it (`DIED` if
    /// `died`). False if the word was no longer `from` (nothing changed).
    fn hand_over(&mut self, cx: &mut Cx<'_>, from: u64, died: bool) -> bool {
        match self.acquirers.pop_live(cx) {
            Some((w, acq)) => {
                // `WAITERS` (and `FAIR`) stay set while others are parked behind it.
                let flags = self.flags(cx.now);
                match self.install(from, w.who.proc, acq.pid, acq.thread, acq.resume, flags, died) {
                    Some(r) => {
                        cx.reply(&w, r);
                        true
                    }
                    None => {
                        self.acquirers.push_front(w, acq);
                        false
                    }
                }
            }
            None => {
                let free = if died { DIED } else { 0 };
                from == free
                    || self
                        .s()
                        .word
                        .compare_exchange(from, free, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
            }
        }
    }

    /// Brings the word and the queue back in line: a word released while callers are parked
    /// (flags without an owner), or a free word while acquirers are parked (only a scribbled
    /// word does that), goes to the first live acquirer. Takes note of a pending `HandOff`
    /// (clears `NOTIFIED`: the next release sends another) and enforces fairness.
    fn settle(&mut self, cx: &mut Cx<'_>) {
        for _ in 0..TRIES {
            let mut w = self.word();
            if w & NOTIFIED != 0 {
                if self
                    .s()
                    .word
                    .compare_exchange(w, w & !NOTIFIED, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
                {
                    continue;
                }
                w &= !NOTIFIED;
            }
            let ownerless = owner_of(w).is_none();
            let stuck = ownerless && (w & WAITERS != 0 || !self.acquirers.is_empty());
            if !stuck || self.hand_over(cx, w, owner_token(w) == DIED) {
                break;
            }
        }
        self.enforce_fairness(cx.now);
    }

    /// Queues a waiter (a condition waiter re-acquiring, no deadline) for the lock, or grants
    /// it at once if the lock is free.
    fn enqueue(&mut self, cx: &mut Cx<'_>, w: Waiter, acq: Acq) {
        for _ in 0..TRIES {
            let cur = self.word();
            if owner_of(cur).is_none() && self.acquirers.is_empty() {
                if let Some(r) = self.install(
                    cur,
                    w.who.proc,
                    acq.pid,
                    acq.thread,
                    acq.resume,
                    0,
                    owner_token(cur) == DIED,
                ) {
                    cx.reply(&w, r);
                    return;
                }
                continue;
            }
            if cur & WAITERS != 0
                || self
                    .s()
                    .word
                    .compare_exchange(cur, cur | WAITERS, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                break;
            }
        }
        self.acquirers.push(w, acq);
        self.settle(cx);
    }

    fn acquire(&mut self, cx: &mut Cx<'_>, who: Caller, thread: u64, pid: i32, wait: Wait) -> Answer {
        self.settle(cx);
        let tok = token(who.proc.0, thread);
        for _ in 0..TRIES {
            let w = self.word();
            // Free (`settle` left flags alone only if nobody is parked).
            if owner_of(w).is_none() && (!held(w) || self.acquirers.is_empty()) {
                let flags = self.flags(cx.now);
                match self.install(w, who.proc, pid, thread, None, flags, owner_token(w) == DIED) {
                    Some(r) => return Answer::Now(r),
                    None => continue,
                }
            }
            if self.recursive && owner_token(w) == tok {
                let s = self.s();
                return match s.count.load(Ordering::Relaxed).checked_add(1) {
                    Some(c) => {
                        s.count.store(c, Ordering::Relaxed);
                        Answer::Now(ok(SyncReply::Acquired {
                            ticket: u64::from(s.seq.load(Ordering::Relaxed)),
                            owner_died: false,
                        }))
                    }
                    None => Answer::Now(fault(SyncFault::Overflow)),
                };
            }
            if wait == Wait::Never {
                return Answer::Now(Err(HubError::Timeout));
            }
            // Held: make sure the release comes here, then park.
            if w & WAITERS == 0
                && self
                    .s()
                    .word
                    .compare_exchange(w, w | WAITERS, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
            {
                continue;
            }
            return match cx.park(who, wait) {
                Some(wt) => {
                    self.acquirers.push(
                        wt,
                        Acq {
                            pid,
                            thread,
                            since: cx.now,
                            resume: None,
                        },
                    );
                    Answer::Parked
                }
                None => Answer::Now(Err(HubError::Timeout)),
            };
        }
        Answer::Now(Err(contended()))
    }

    fn release(&mut self, cx: &mut Cx<'_>, who: Caller, thread: u64, ticket: Option<u64>) -> Result<Value, HubError> {
        self.settle(cx);
        for _ in 0..TRIES {
            let w = self.word();
            if owner_of(w).is_none() {
                return match ticket {
                    Some(_) => Ok(Value::Unit),
                    None if self.recursive => fault(SyncFault::NotOwner),
                    None => fault(SyncFault::NotHeld),
                };
            }
            let mine = Self::is_owner(w, who.proc, thread);
            let s = self.s();
            match ticket {
                Some(t) if !mine || t != u64::from(s.seq.load(Ordering::Relaxed)) => return Ok(Value::Unit),
                Some(_) => {}
                None if self.recursive && !mine => return fault(SyncFault::NotOwner),
                None => {}
            }
            if self.recursive {
                let c = s.count.load(Ordering::Relaxed);
                if c > 1 {
                    s.count.store(c - 1, Ordering::Relaxed);
                    return Ok(Value::Unit);
                }
            }
            if self.hand_over(cx, w, false) {
                return Ok(Value::Unit);
            }
        }
        Err(contended())
    }

    fn cond_wait(&mut self, cx: &mut Cx<'_>, who: Caller, cond: CondKey, thread: u64, pid: i32, wait: Wait) -> Answer {
        self.settle(cx);
        for _ in 0..TRIES {
            let w = self.word();
            if !Self::is_owner(w, who.proc, thread) {
                return Answer::Now(fault(SyncFault::NotOwner));
            }
            let s = self.s();
            let saved = Saved {
                pid,
                thread,
                count: s.count.load(Ordering::Relaxed).max(1),
                ticket: s.seq.load(Ordering::Relaxed),
            };
            // Before the lock is free: a waiter that takes it next must not take the seat
            // ahead of this older one.
            self.s().aux.store(COND_PARKED, Ordering::SeqCst);
            if !self.hand_over(cx, w, false) {
                self.publish_parked();
                continue;
            }
            match cx.park(who, wait) {
                Some(wt) => self.conds.entry(cond).or_default().push(wt, saved),
                // `wait(0)`: nothing can notify it in between; queue for the lock again now.
                None => self.reacquire(
                    cx,
                    Waiter {
                        who,
                        timer: None,
                        since: cx.now,
                    },
                    saved,
                    false,
                ),
            }
            self.publish_parked();
            return Answer::Parked;
        }
        self.publish_parked();
        Answer::Now(Err(contended()))
    }

    /// A condition waiter (no longer time-limited) queues to re-acquire the lock.
    fn reacquire(&mut self, cx: &mut Cx<'_>, w: Waiter, saved: Saved, notified: bool) {
        let acq = Acq {
            pid: saved.pid,
            thread: saved.thread,
            since: cx.now,
            resume: Some((saved, notified)),
        };
        self.enqueue(cx, w, acq);
    }

    fn cond_notify(
        &mut self,
        cx: &mut Cx<'_>,
        who: Caller,
        cond: CondKey,
        thread: u64,
        n: u32,
    ) -> Result<Value, HubError> {
        self.settle(cx);
        if !Self::is_owner(self.word(), who.proc, thread) {
            return fault(SyncFault::NotOwner);
        }
        Ok(Value::U64(self.wake_cond(cx, cond, n)))
    }

    /// Wakes the condition seat's waiter of `cond` (the oldest, if any), then moves live
    /// waiters of `cond`, oldest first, to the acquirers, up to `n` in all; how many.
    fn wake_cond(&mut self, cx: &mut Cx<'_>, cond: CondKey, n: u32) -> u64 {
        let mut moved = Vec::new();
        let seat = u64::from(n > 0 && self.notify_seat(cond));
        let n = n as usize - seat as usize;
        if let Some(q) = self.conds.get_mut(&cond) {
            while moved.len() < n {
                let Some((mut w, saved)) = q.pop_live(cx) else { break };
                cx.timers.cancel(w.timer.take());
                moved.push((w, saved));
            }
            if q.is_empty() {
                self.conds.remove(&cond);
            }
        }
        self.publish_parked();
        let woken = moved.len() as u64 + seat;
        for (w, saved) in moved {
            self.reacquire(cx, w, saved, true);
        }
        woken
    }

    fn state(&self) -> SyncReply {
        let w = self.word();
        let s = self.s();
        let owner = owner_of(w).map(|(p, t)| LockOwner {
            proc: ProcId(p),
            pid: s.pid.load(Ordering::Relaxed),
            thread: t,
        });
        SyncReply::LockState {
            count: if owner.is_some() {
                s.count.load(Ordering::Relaxed).max(1)
            } else {
                0
            },
            owner,
        }
    }
}

impl Object for LockObj {
    fn describe(&self, now: Instant) -> ObjDesc {
        // The owner is read from the shared word: a lock taken through the fast path (no
        // message) is shown held too.
        let w = self.word();
        let owner = owner_of(w);
        let mut waiters = self.acquirers.rows("acquire", now);
        for q in self.conds.values() {
            waiters.extend(q.rows("condition wait", now));
        }
        // The seat's waiter sleeps in shared memory: the hub knows who, not since when.
        if let Some(proc) = self.seat_waiter() {
            waiters.push(WaiterRow {
                proc,
                op: "condition wait (shared memory)".to_owned(),
                waited_us: 0,
            });
        }
        waiters.sort_by_key(|w| std::cmp::Reverse(w.waited_us));
        let note = if w == DIED {
            "free; its last owner died holding it".to_owned()
        } else if owner.is_none() {
            "free".to_owned()
        } else {
            String::new()
        };
        ObjDesc {
            kind: if self.recursive { "RLock" } else { "Lock" }.to_owned(),
            held_by: owner.map(|(p, _)| ProcId(p)).into_iter().collect(),
            depth: (self.recursive && owner.is_some())
                .then(|| u64::from(self.s().count.load(Ordering::Relaxed).max(1))),
            unfinished: None,
            waiters,
            note,
        }
    }

    fn awaited_from(&self, holder: ProcId) -> Vec<ProcId> {
        // The owner is in the shared word (the fast path takes the lock without telling us).
        match owner_of(self.word()) {
            Some((p, _)) if ProcId(p) == holder => self.acquirers.iter().map(|(w, _)| w.who.proc).collect(),
            _ => Vec::new(),
        }
    }

    fn call(&mut self, cx: &mut Cx<'_>, who: Caller, op: ObjOp) -> Answer {
        let ObjOp::Sync(op) = op else {
            return Answer::Now(Err(HubError::WrongKind));
        };
        // A hand-over announced by a `HandOff` still in flight is done first, so what a
        // client reads after its own release is what the release left.
        self.settle(cx);
        let answer = match op {
            SyncOp::Acquire { thread, pid, wait } => self.acquire(cx, who, thread, pid, wait),
            SyncOp::Release { thread, ticket } => Answer::Now(self.release(cx, who, thread, ticket)),
            SyncOp::HandOff => {
                self.settle(cx);
                Answer::Now(Ok(Value::Unit))
            }
            SyncOp::Locked => Answer::Now(Ok(Value::Bool(owner_of(self.word()).is_some()))),
            SyncOp::LockState => Answer::Now(ok(self.state())),
            SyncOp::CondWait {
                cond,
                thread,
                pid,
                wait,
            } => self.cond_wait(cx, who, cond, thread, pid, wait),
            SyncOp::CondNotify { cond, thread, n } => Answer::Now(self.cond_notify(cx, who, cond, thread, n)),
            SyncOp::CondSignal { cond, n } => Answer::Now(Ok(Value::U64(self.wake_cond(cx, cond, n)))),
            _ => Answer::Now(Err(HubError::WrongKind)),
        };
        self.wake_notified();
        answer
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
        self.publish_parked();
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
        self.publish_parked();
    }

    fn proc_gone(&mut self, cx: &mut Cx<'_>, proc: ProcId) {
        // Its waiters may sit on connections the hub has not seen close yet: drop them first,
        // so the lock is never handed to a dead process.
        self.cancel(cx, &|w: &Waiter| w.who.proc == proc, None);
        // A waiter of the condition seat that died frees the seat (one CAS; a notify that won
        // the race was lost with it, as it would be with a waiter killed just after waking).
        let s = self.s();
        let cw = s.cwait.load(Ordering::SeqCst);
        if cw & CW_STATE == CW_WAITING && self.seat_waiter() == Some(proc) {
            let _ = s
                .cwait
                .compare_exchange(cw, cw_next(cw), Ordering::SeqCst, Ordering::SeqCst);
        }
        let dead = token(proc.0, 0) >> 32;
        for _ in 0..TRIES {
            let w = self.word();
            if w >> 32 != dead {
                break;
            }
            // It owned the lock, through the fast path or not, at whatever depth.
            if self.hand_over(cx, w, true) {
                let new_owner = owner_of(self.word()).map_or(-1, |(p, _)| p as i64);
                crate::trace::mp_warn!(
                    lock = cx.obj.0 & 0xffff_ffff,
                    dead_proc = proc.0,
                    new_owner,
                    "lock recovered from a dead owner (the next owner is told)"
                );
                let _ = new_owner;
                break;
            }
        }
        // A release it made just before dying may still need its hand-over.
        self.settle(cx);
        self.wake_notified();
    }

    fn attach(&mut self, id: ObjId, secret: u64) {
        self.slot
            .attach(id, secret, if self.recursive { KIND_RLOCK } else { KIND_LOCK });
    }
}
