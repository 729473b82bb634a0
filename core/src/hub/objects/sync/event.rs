//! Event: a flag and the callers waiting for it.
//!
//! The flag is the slot's word (`wire::sync_slot`: `EV_SET`, plus `EV_WAITERS` while callers
//! are parked here), in the shared arena when the object has a slot there, else in a private
//! slot only the hub touches.
//!
//! - Fast path (in the client): `is_set` and a `wait` on a set flag read the word; `clear`
//!   clears the bit; `set` sets it, and tells the hub (`EventSet`, one-way) only if the word
//!   says callers are parked.
//! - `EventSet` sets the flag, clears `EV_WAITERS` and answers every parked waiter `true` in one
//!   go (1,000 waiters are 1,000 replies queued in one loop turn, flushed per connection).
//! - `EventClear` clears it; `EventIsSet` reads it.
//! - `EventWait { wait }` answers `true` at once if the flag is set; else it sets `EV_WAITERS`
//!   (one compare-and-swap with the unset flag, so a concurrent fast `set` either is seen now
//!   or sees the waiters bit and sends `EventSet`) and parks until a set or the deadline
//!   (`Timeout`, which the client reports as `false`).
//!
//! Death: a dead process's waiters are dropped. The flag belongs to nobody, so nothing else
//! changes. Every loop over the shared word is bounded.

use std::sync::atomic::Ordering;

use super::arena::SlotHome;
use crate::hub::objects::{Answer, Caller, Cx, ObjDesc, Object, WaitQueue, Waiter};
use crate::hub::Token;
use crate::wire::proto::{HubError, ObjId, ObjOp, ProcId, ReqId, Value};
use crate::wire::sync_ops::SyncOp;
use crate::wire::sync_slot::{EV_SET, EV_WAITERS, KIND_EVENT};

const TRIES: usize = 64;

pub(crate) struct EventObj {
    slot: SlotHome,
    waiters: WaitQueue<()>,
}

impl Default for EventObj {
    fn default() -> Self {
        EventObj {
            slot: SlotHome::private(),
            waiters: WaitQueue::default(),
        }
    }
}

impl EventObj {
    fn word(&self) -> u64 {
        self.slot.get().word.load(Ordering::SeqCst)
    }

    /// Nobody parked any more (timeouts, deaths): clear `EV_WAITERS`, so the next `set` stays in
    /// user space. Only the hub parks callers, so this cannot hide a waiter.
    fn tidy(&self) {
        if self.waiters.is_empty() {
            self.slot.get().word.fetch_and(!EV_WAITERS, Ordering::SeqCst);
        }
    }

    fn set(&mut self, cx: &mut Cx<'_>) {
        let s = self.slot.get();
        for _ in 0..TRIES {
            let w = s.word.load(Ordering::SeqCst);
            let new = (w | EV_SET) & !EV_WAITERS;
            if w == new
                || s.word
                    .compare_exchange(w, new, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                break;
            }
        }
        for (w, ()) in self.waiters.drain_all() {
            if cx.alive(&w) {
                cx.reply(&w, Ok(Value::Bool(true)));
            } else {
                cx.timers.cancel(w.timer);
            }
        }
    }

    fn wait(&mut self, cx: &mut Cx<'_>, who: Caller, wait: crate::wire::proto::Wait) -> Answer {
        let s = self.slot.get();
        for _ in 0..TRIES {
            let w = s.word.load(Ordering::SeqCst);
            if w & EV_SET != 0 {
                return Answer::Now(Ok(Value::Bool(true)));
            }
            if wait == crate::wire::proto::Wait::Never {
                return Answer::Now(Err(HubError::Timeout));
            }
            if w & EV_WAITERS != 0
                || s.word
                    .compare_exchange(w, w | EV_WAITERS, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                return match cx.park(who, wait) {
                    Some(w) => {
                        self.waiters.push(w, ());
                        Answer::Parked
                    }
                    None => Answer::Now(Err(HubError::Timeout)),
                };
            }
        }
        Answer::Now(Err(HubError::Invalid(
            "the event's shared word kept changing (is a process scribbling on the sync arena?)".into(),
        )))
    }
}

impl Object for EventObj {
    fn call(&mut self, cx: &mut Cx<'_>, who: Caller, op: ObjOp) -> Answer {
        let ObjOp::Sync(op) = op else {
            return Answer::Now(Err(HubError::WrongKind));
        };
        match op {
            SyncOp::EventSet => {
                self.set(cx);
                Answer::Now(Ok(Value::Unit))
            }
            SyncOp::EventClear => {
                self.slot.get().word.fetch_and(!EV_SET, Ordering::SeqCst);
                Answer::Now(Ok(Value::Unit))
            }
            SyncOp::EventIsSet => Answer::Now(Ok(Value::Bool(self.word() & EV_SET != 0))),
            SyncOp::EventWait { wait } => self.wait(cx, who, wait),
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
        let set = self.word() & EV_SET != 0;
        ObjDesc {
            kind: "Event".to_owned(),
            depth: Some(u64::from(set)),
            waiters: self.waiters.rows("wait", now),
            note: if set { "set" } else { "clear" }.to_owned(),
            ..ObjDesc::default()
        }
    }

    fn proc_gone(&mut self, cx: &mut Cx<'_>, proc: ProcId) {
        self.waiters.cancel(cx, &|w: &Waiter| w.who.proc == proc, None);
        self.tidy();
    }

    fn attach(&mut self, id: ObjId, secret: u64) {
        self.slot.attach(id, secret, KIND_EVENT);
    }
}
