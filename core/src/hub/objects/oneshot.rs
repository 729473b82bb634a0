//! A one-shot reply slot: the asker waits on it; the answerer fills it once.
//!
//! A *reusable* slot (`ObjectKind::Oneshot { reusable: true }`) serves one question after
//! another: each `Op::Ask` re-arms it with a fresh secret, so a late answer to an earlier,
//! abandoned question presents a stale secret and is refused like a forged one. It lives until
//! its owner ends.

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
    reusable: bool,
    waiters: WaitQueue<()>,
}

impl Oneshot {
    /// A slot for the answer of `watch`; `gone` when that process has already ended (or never
    /// existed), so that the asker is told at once instead of waiting forever.
    pub fn new(watch: Option<ProcId>, token: u64, gone: bool, reusable: bool) -> Self {
        Oneshot {
            value: None,
            taken: false,
            watch,
            token,
            gone,
            reusable,
            waiters: WaitQueue::default(),
        }
    }
}

impl Oneshot {
    /// A one-time slot whose asker stopped waiting (timeout, interrupt, dropped `.await`) is
    /// finished: nobody will take its answer, so it is reclaimed now rather than when its owner
    /// ends, and a late answer is refused like one to a slot that never existed.
    fn note_abandoned(&mut self, removed: bool) {
        if removed && !self.reusable && self.waiters.is_empty() {
            self.taken = true;
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
        let found = self.waiters.remove(conn, id).is_some();
        self.note_abandoned(found);
        found
    }

    fn cancel(&mut self, cx: &mut Cx<'_>, pred: &dyn Fn(&Waiter) -> bool, why: Option<&HubError>) {
        let before = self.waiters.len();
        self.waiters.cancel(cx, pred, why);
        self.note_abandoned(self.waiters.len() < before);
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
        self.taken && !self.reusable
    }

    fn rearm(&mut self, cx: &mut Cx<'_>, token: u64, watch: ProcId, gone: bool) -> bool {
        if !self.reusable {
            return false;
        }
        // A caller still parked here belongs to an abandoned question (its `.await` was
        // dropped and its `Cancel` is still on the way, or its client gave up): it must not
        // receive the new question's answer.
        for (w, ()) in self.waiters.drain_all() {
            cx.reply(&w, Err(HubError::Cancelled));
        }
        self.value = None;
        self.taken = false;
        self.watch = Some(watch);
        self.token = token;
        self.gone = gone;
        true
    }
}
