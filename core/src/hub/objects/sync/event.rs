//! Event: a flag and the callers waiting for it.
//!
//! - `EventSet` sets the flag and answers every parked waiter `true` in one go (1,000 waiters
//!   are 1,000 replies queued in one loop turn, flushed per connection).
//! - `EventClear` clears it; `EventIsSet` reads it.
//! - `EventWait { wait }` answers `true` at once if the flag is set, else parks until a set
//!   or the deadline (`Timeout`, which the client reports as `false`).
//!
//! Death: a dead process's waiters are dropped. The flag belongs to nobody, so nothing else
//! changes.

use crate::hub::objects::{Answer, Caller, Cx, Object, WaitQueue, Waiter};
use crate::hub::Token;
use crate::wire::proto::{HubError, ObjOp, ProcId, ReqId, Value};
use crate::wire::sync_ops::SyncOp;

#[derive(Default)]
pub(crate) struct EventObj {
    flag: bool,
    waiters: WaitQueue<()>,
}

impl Object for EventObj {
    fn call(&mut self, cx: &mut Cx<'_>, who: Caller, op: ObjOp) -> Answer {
        let ObjOp::Sync(op) = op else {
            return Answer::Now(Err(HubError::WrongKind));
        };
        match op {
            SyncOp::EventSet => {
                self.flag = true;
                for (w, ()) in self.waiters.drain_all() {
                    if cx.alive(&w) {
                        cx.reply(&w, Ok(Value::Bool(true)));
                    } else {
                        cx.timers.cancel(w.timer);
                    }
                }
                Answer::Now(Ok(Value::Unit))
            }
            SyncOp::EventClear => {
                self.flag = false;
                Answer::Now(Ok(Value::Unit))
            }
            SyncOp::EventIsSet => Answer::Now(Ok(Value::Bool(self.flag))),
            SyncOp::EventWait { wait } => {
                if self.flag {
                    return Answer::Now(Ok(Value::Bool(true)));
                }
                match cx.park(who, wait) {
                    Some(w) => {
                        self.waiters.push(w, ());
                        Answer::Parked
                    }
                    None => Answer::Now(Err(HubError::Timeout)),
                }
            }
            _ => Answer::Now(Err(HubError::WrongKind)),
        }
    }

    fn expire(&mut self, _cx: &mut Cx<'_>, conn: Token, id: ReqId) -> bool {
        self.waiters.remove(conn, id).is_some()
    }

    fn cancel(&mut self, cx: &mut Cx<'_>, pred: &dyn Fn(&Waiter) -> bool, why: Option<&HubError>) {
        self.waiters.cancel(cx, pred, why);
    }

    fn proc_gone(&mut self, cx: &mut Cx<'_>, proc: ProcId) {
        self.waiters.cancel(cx, &|w: &Waiter| w.who.proc == proc, None);
    }
}
