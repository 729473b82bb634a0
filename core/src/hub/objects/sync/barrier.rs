//! Barrier: `parties` parties meet; each generation releases them all at once.
//!
//! # State
//! - `waiting`: the parked parties of the current generation, each with its arrival index
//!   (`0` for the first to arrive, as in Python, so exactly one party per generation gets 0).
//! - `phase`: `Filling`, `Acting` (the last party is running the action) or `Broken`.
//! - `pending`: parties that arrived while the action ran; they belong to the next generation.
//!
//! # Protocol
//! - `BarrierWait { wait }` in `Filling`: the arrival gets index `waiting.len()`. If it is not
//!   the last, it parks with its deadline. The last party:
//!   - without an action, releases everyone: each parked party is answered `Passed { index }`,
//!     the last one too, and the generation advances;
//!   - with an action, is answered `RunAction { index, generation, action }` and nobody is
//!     released yet (`Acting`). That party runs the action in its own process, then calls
//!     `BarrierActionDone { generation, failure }`. On success the generation is released as
//!     above (the runner's answer is its `Passed`); on failure (the action panicked) the
//!     barrier breaks and the runner's own call reports the failure. So the action runs
//!     exactly once per generation, in one party, and strictly before any party is released.
//! - `BarrierWait` in `Acting` queues in `pending` without a deadline; when the generation is
//!   released, the pending arrivals are processed, in order, as fresh arrivals with their own
//!   `wait` (as in Python, where latecomers block on the barrier's lock while the action runs).
//! - `BarrierWait` in `Broken`: `BrokenBarrier` at once.
//! - `BarrierAbort`: breaks the barrier (see below).
//! - `BarrierReset`: every parked party gets `BrokenBarrier`, a running action's report will
//!   get `BrokenBarrier`, and the barrier starts a fresh generation (then admits `pending`).
//!
//! Breaking answers every parked and pending party `BrokenBarrier`; it lasts until a reset.
//! Causes, as in Python: `abort`, a party's deadline (that party is answered `Timeout`,
//! reported as broken too), a `wait(0)` that would have had to wait, an action that panicked,
//! and a party interrupted (interrupt mode).
//!
//! # Death (beyond Python)
//! A party that dies while parked, or the action runner dying (or closing its connection)
//! before it reports, breaks the barrier: the others get `BrokenBarrier` instead of waiting
//! forever for a party that cannot come. A dead process's pending arrivals are dropped.

use super::{fault, ok};
use crate::hub::objects::{Answer, Caller, Cx, ObjDesc, Object, WaitQueue, Waiter};
use crate::hub::Token;
use crate::wire::proto::{HubError, ObjOp, ProcId, ReqId, Value, Wait};
use crate::wire::sync_ops::{BarrierAction, SyncFault, SyncOp, SyncReply};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Filling,
    Acting { runner: Caller, index: u32 },
    Broken,
}

pub(crate) struct BarrierObj {
    parties: u32,
    action: Option<BarrierAction>,
    generation: u64,
    waiting: WaitQueue<u32>,
    pending: WaitQueue<Wait>,
    phase: Phase,
}

fn broken() -> Result<Value, HubError> {
    fault(SyncFault::BrokenBarrier)
}

impl BarrierObj {
    pub fn new(parties: u32, action: Option<BarrierAction>) -> Self {
        BarrierObj {
            parties,
            action,
            generation: 0,
            waiting: WaitQueue::default(),
            pending: WaitQueue::default(),
            phase: Phase::Filling,
        }
    }

    /// A party arrives in the `Filling` phase.
    fn arrive(&mut self, cx: &mut Cx<'_>, who: Caller, wait: Wait) -> Answer {
        debug_assert_eq!(self.phase, Phase::Filling);
        let index = self.waiting.len() as u32;
        if index + 1 < self.parties {
            return match cx.park(who, wait) {
                Some(w) => {
                    self.waiting.push(w, index);
                    Answer::Parked
                }
                None => {
                    // Python's wait(0) with parties missing: it times out and breaks the barrier.
                    self.break_barrier(cx);
                    Answer::Now(broken())
                }
            };
        }
        match &self.action {
            Some(action) => {
                self.phase = Phase::Acting { runner: who, index };
                Answer::Now(ok(SyncReply::RunAction {
                    index,
                    generation: self.generation,
                    action: action.clone(),
                }))
            }
            None => {
                self.release_all(cx);
                Answer::Now(ok(SyncReply::Passed { index }))
            }
        }
    }

    /// Releases every parked party of this generation and starts the next one.
    fn release_all(&mut self, cx: &mut Cx<'_>) {
        for (w, index) in self.waiting.drain_all() {
            cx.reply(&w, ok(SyncReply::Passed { index }));
        }
        self.next_generation(cx);
    }

    /// Starts a fresh generation and admits the parties that arrived meanwhile.
    fn next_generation(&mut self, cx: &mut Cx<'_>) {
        self.generation += 1;
        self.phase = Phase::Filling;
        while self.phase == Phase::Filling {
            let Some((w, wait)) = self.pending.pop_live(cx) else {
                break;
            };
            cx.timers.cancel(w.timer);
            if let Answer::Now(r) = self.arrive(cx, w.who, wait) {
                cx.reply(
                    &Waiter {
                        who: w.who,
                        timer: None,
                        since: w.since,
                    },
                    r,
                );
            }
        }
    }

    /// Breaks the barrier: every parked and pending party is answered `BrokenBarrier`.
    fn break_barrier(&mut self, cx: &mut Cx<'_>) {
        self.phase = Phase::Broken;
        for (w, _) in self.waiting.drain_all() {
            cx.reply(&w, broken());
        }
        for (w, _) in self.pending.drain_all() {
            cx.reply(&w, broken());
        }
    }

    fn action_done(&mut self, cx: &mut Cx<'_>, who: Caller, generation: u64, failure: Option<String>) -> Answer {
        let Phase::Acting { runner, index } = self.phase else {
            return Answer::Now(broken());
        };
        if generation != self.generation || runner.proc != who.proc {
            return Answer::Now(broken());
        }
        match failure {
            None => {
                self.release_all(cx);
                Answer::Now(ok(SyncReply::Passed { index }))
            }
            Some(_) => {
                self.break_barrier(cx);
                Answer::Now(broken())
            }
        }
    }

    fn reset(&mut self, cx: &mut Cx<'_>) {
        for (w, _) in self.waiting.drain_all() {
            cx.reply(&w, broken());
        }
        self.next_generation(cx);
    }
}

impl Object for BarrierObj {
    fn call(&mut self, cx: &mut Cx<'_>, who: Caller, op: ObjOp) -> Answer {
        let ObjOp::Sync(op) = op else {
            return Answer::Now(Err(HubError::WrongKind));
        };
        match op {
            SyncOp::BarrierWait { wait } => match self.phase {
                Phase::Broken => Answer::Now(broken()),
                Phase::Filling => self.arrive(cx, who, wait),
                Phase::Acting { .. } => match cx.park(who, Wait::Forever) {
                    Some(w) => {
                        self.pending.push(w, wait);
                        Answer::Parked
                    }
                    None => Answer::Now(broken()),
                },
            },
            SyncOp::BarrierActionDone { generation, failure } => self.action_done(cx, who, generation, failure),
            SyncOp::BarrierReset => {
                self.reset(cx);
                Answer::Now(Ok(Value::Unit))
            }
            SyncOp::BarrierAbort => {
                self.break_barrier(cx);
                Answer::Now(Ok(Value::Unit))
            }
            SyncOp::BarrierState => Answer::Now(ok(SyncReply::BarrierState {
                parties: self.parties,
                n_waiting: self.waiting.len() as u32,
                broken: self.phase == Phase::Broken,
            })),
            _ => Answer::Now(Err(HubError::WrongKind)),
        }
    }

    fn expire(&mut self, cx: &mut Cx<'_>, conn: Token, id: ReqId) -> bool {
        if self.waiting.remove(conn, id).is_none() {
            return false;
        }
        // A party gave up: as in Python, the barrier breaks for everyone.
        self.break_barrier(cx);
        true
    }

    fn cancel(&mut self, cx: &mut Cx<'_>, pred: &dyn Fn(&Waiter) -> bool, why: Option<&HubError>) {
        self.pending.cancel(cx, pred, why);
        let party_left = self.waiting.iter().any(|(w, _)| pred(w));
        let runner_left = match self.phase {
            Phase::Acting { runner, .. } => {
                why.is_none()
                    && pred(&Waiter {
                        who: runner,
                        timer: None,
                        since: cx.now,
                    })
            }
            _ => false,
        };
        if party_left || runner_left {
            self.waiting.cancel(cx, pred, why);
            self.break_barrier(cx);
        }
    }

    fn describe(&self, now: std::time::Instant) -> ObjDesc {
        let mut waiters = self.waiting.rows("wait", now);
        waiters.extend(self.pending.rows("wait (next generation)", now));
        ObjDesc {
            kind: "Barrier".to_owned(),
            depth: Some(self.waiting.len() as u64),
            waiters,
            note: match self.phase {
                Phase::Filling => format!("{} of {} parties waiting", self.waiting.len(), self.parties),
                Phase::Acting { .. } => "running its action".to_owned(),
                Phase::Broken => "broken".to_owned(),
            },
            ..ObjDesc::default()
        }
    }

    fn proc_gone(&mut self, cx: &mut Cx<'_>, proc: ProcId) {
        self.pending.cancel(cx, &|w: &Waiter| w.who.proc == proc, None);
        let party_died = self.waiting.iter().any(|(w, _)| w.who.proc == proc);
        let runner_died = matches!(self.phase, Phase::Acting { runner, .. } if runner.proc == proc);
        if party_died || runner_died {
            self.waiting.cancel(cx, &|w: &Waiter| w.who.proc == proc, None);
            self.break_barrier(cx);
        }
    }
}
