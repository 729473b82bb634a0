//! A one-shot reply slot: the asker waits on it; the answerer fills it once.

use serde_bytes::ByteBuf;

use super::{Answer, Caller, Cx, ObjDesc, Object, WaitQueue, Waiter};
use crate::hub::Token;
use crate::wire::proto::{HubError, ObjOp, ProcId, ReqId, Value};

pub(crate) struct Oneshot {
    value: Option<ByteBuf>,
    taken: bool,
    watch: Option<ProcId>,
    token: u64,
    gone: bool,
    waiters: WaitQueue<()>,
}

impl Oneshot {
    /// A slot for the answer of `watch`; `gone` when that process has already ended (or never
    /// existed), so that the asker is told at once instead of waiting forever.
    pub fn new(watch: Option<ProcId>, token: u64, gone: bool) -> Self {
        Oneshot {
            value: None,
            taken: false,
            watch,
            token,
            gone,
            waiters: WaitQueue::default(),
        }
    }
}

impl Object for Oneshot {
    fn call(&mut self, cx: &mut Cx<'_>, who: Caller, op: ObjOp) -> Answer {
        match op {
            ObjOp::OneshotPut { token, value: v } => {
                // Anyone may answer, but only with the secret that was in the question; a
                // wrong one looks like no object at all.
                if token != self.token {
                    return Answer::Now(Err(HubError::UnknownObject));
                }
                if self.value.is_some() || self.taken {
                    return Answer::Now(Err(HubError::Invalid("this reply was already sent".into())));
                }
                if let Some((w, ())) = self.waiters.pop_live(cx) {
                    self.taken = true;
                    cx.reply(&w, Ok(Value::Bytes(v)));
                } else {
                    self.value = Some(v);
                }
                Answer::Now(Ok(Value::Unit))
            }
            ObjOp::OneshotTake(wait) => {
                if let Some(v) = self.value.take() {
                    self.taken = true;
                    return Answer::Now(Ok(Value::Bytes(v)));
                }
                if self.gone {
                    return Answer::Now(Err(HubError::Gone(
                        "the process that was asked ended without replying".into(),
                    )));
                }
                match cx.park(who, wait) {
                    Some(w) => {
                        self.waiters.push(w, ());
                        Answer::Parked
                    }
                    None => Answer::Now(Err(HubError::Timeout)),
                }
            }
            #[allow(unreachable_patterns)]
            _ => Answer::Now(Err(HubError::WrongKind)),
        }
    }

    fn expire(&mut self, _cx: &mut Cx<'_>, conn: Token, id: ReqId) -> bool {
        self.waiters.remove(conn, id).is_some()
    }

    fn cancel(&mut self, cx: &mut Cx<'_>, pred: &dyn Fn(&Waiter) -> bool, why: Option<&HubError>) {
        self.waiters.cancel(cx, pred, why);
    }

    fn describe(&self, now: std::time::Instant) -> ObjDesc {
        ObjDesc {
            kind: "Reply".to_owned(),
            held_by: self.watch.into_iter().collect(),
            waiters: self.waiters.rows("ask", now),
            note: if self.value.is_some() {
                "answered"
            } else if self.gone {
                "its answerer is gone"
            } else {
                "waiting for the answer"
            }
            .to_owned(),
            ..ObjDesc::default()
        }
    }

    fn proc_gone(&mut self, cx: &mut Cx<'_>, proc: ProcId) {
        if self.watch == Some(proc) && self.value.is_none() && !self.taken {
            self.gone = true;
            let err = HubError::Gone("the process that was asked ended without replying".into());
            for (w, ()) in self.waiters.drain_all() {
                cx.reply(&w, Err(err.clone()));
            }
        }
    }

    fn finished(&self) -> bool {
        self.taken
    }
}
