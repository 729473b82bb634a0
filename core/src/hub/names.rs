//! The hub's side of names, monitors and links (issue 12): the `Op::Names` family, and what a
//! process's end means for its watchers and partners. The state lives in
//! [`objects::registry`](super::objects::registry); this file connects it to the process table
//! and the connections.

use std::time::Instant;

use super::objects::{self, Answer, Caller};
use super::{Hub, Token};
use crate::wire::names_ops::{NamesOp, NamesReply, Reason, SignalMsg, Target};
use crate::wire::proto::{ExitInfo, FromHub, HubError, ObjectKind, ProcId, Value, ROOT_PROC};

pub(super) fn no_name(name: &str) -> HubError {
    HubError::NoProc(format!(
        "no process is registered as {name:?} (it has not registered yet, or it ended and its restart has not registered again)"
    ))
}

impl Hub {
    /// `Op::Names`.
    pub(super) fn names_call(&mut self, caller: Caller, op: NamesOp, now: Instant) -> Answer {
        let limit = self.cfg.limits.max_monitors_per_process;
        let unit = Answer::Now(Ok(Value::Unit));
        match op {
            NamesOp::Register { name, pid } => {
                let target = match pid {
                    None => caller.proc,
                    Some(pid) => match self.procs.by_pid(pid) {
                        Some(p) => p,
                        None => return Answer::Now(Err(HubError::NoProc(format!("no live process has pid {pid}")))),
                    },
                };
                if let Err(e) = self.may_name(caller.proc, target) {
                    return Answer::Now(Err(e));
                }
                self.settle_pid(target);
                if !self.procs.is_live(target) {
                    return Answer::Now(Err(HubError::NoProc(format!(
                        "{} has ended; it cannot take a name",
                        self.procs.describe(target)
                    ))));
                }
                let procs = &self.procs;
                match self.registry.register(&name, target, &|p| procs.describe(p)) {
                    Ok(()) => unit,
                    Err(e) => Answer::Now(Err(e)),
                }
            }
            NamesOp::Unregister { name } => {
                if let Err(e) = objects::registry::check_name(&name) {
                    return Answer::Now(Err(e));
                }
                let Some(holder) = self.registry.whereis(&name) else {
                    return Answer::Now(Err(no_name(&name)));
                };
                if let Err(e) = self.may_name(caller.proc, holder) {
                    return Answer::Now(Err(e));
                }
                self.registry.unregister(&name);
                unit
            }
            NamesOp::WhereIs { name } => {
                let holder = self.registry.whereis(&name).filter(|&p| self.procs.is_live(p));
                if let Some(p) = holder {
                    self.settle_pid(p);
                }
                let info = holder.and_then(|p| self.procs.info(p).cloned());
                Answer::Now(Ok(Value::Names(NamesReply::Where(info))))
            }
            NamesOp::Send { name, payloads, wait } => match self.live_name(&name) {
                Some(to) => {
                    let items = payloads.into_iter().map(crate::hub::held::Item::plain).collect();
                    self.send_wait(caller, to, items, wait, now)
                }
                None => Answer::Now(Err(no_name(&name))),
            },
            NamesOp::AskSlot { name, token, secret } => {
                let Some(to) = self.live_name(&name) else {
                    return Answer::Now(Err(no_name(&name)));
                };
                let Some(info) = self.procs.info(to).cloned() else {
                    return Answer::Now(Err(no_name(&name)));
                };
                let kind = ObjectKind::Oneshot {
                    watch: Some(to),
                    token,
                    reusable: false,
                };
                match objects::create(kind, caller.proc, &|p| self.procs.has_ended(p)) {
                    Ok((obj, lifetime)) => {
                        let obj = self.objects.insert(obj, lifetime, caller.proc, secret);
                        Answer::Now(Ok(Value::Names(NamesReply::Slot { obj, proc: info })))
                    }
                    Err(e) => Answer::Now(Err(e)),
                }
            }
            NamesOp::Monitor(target) => self.monitor(caller, target, limit),
            NamesOp::Demonitor(r) => Answer::Now(Ok(Value::Names(NamesReply::Demonitored(
                self.registry.demonitor(caller.proc, r),
            )))),
            NamesOp::Link(target) => {
                let p = self.resolve(&target).filter(|&p| self.procs.is_live(p));
                let Some(p) = p else {
                    return Answer::Now(Err(HubError::NoProc(format!(
                        "cannot link to {target:?}: no such live process"
                    ))));
                };
                match self.registry.link(caller.proc, p, limit) {
                    Ok(()) => unit,
                    Err(e) => Answer::Now(Err(e)),
                }
            }
            NamesOp::Unlink(target) => {
                if let Some(p) = self.resolve(&target) {
                    self.registry.unlink(caller.proc, p);
                }
                unit
            }
            NamesOp::TrapExits(on) => {
                Answer::Now(Ok(Value::Names(NamesReply::Trap(self.registry.trap(caller.proc, on)))))
            }
        }
    }

    /// A fork-server child can run (and register itself) a moment before the fork server's
    /// report of its pid is read: read that report first, so that answers carry the pid.
    fn settle_pid(&mut self, p: ProcId) {
        if self.procs.info(p).is_some_and(|i| i.pid == 0) {
            if let Some(t) = self.procs.forkserver_conn() {
                self.drain_conn(t);
            }
        }
    }

    /// Who may name (or unname) `target`: itself, the process that started it, or the root.
    fn may_name(&self, caller: ProcId, target: ProcId) -> Result<(), HubError> {
        if caller == target || caller == ROOT_PROC || self.procs.parent_of(target) == Some(caller) {
            return Ok(());
        }
        Err(HubError::Invalid(format!(
            "{} may not name or unname {}: only the process itself, the process that started it, or the root may",
            self.procs.describe(caller),
            self.procs.describe(target)
        )))
    }

    /// The live process registered as `name`.
    pub(super) fn live_name(&self, name: &str) -> Option<ProcId> {
        self.registry.whereis(name).filter(|&p| self.procs.is_live(p))
    }

    /// The process a target means, if the hub knows one (live or remembered as ended).
    fn resolve(&self, target: &Target) -> Option<ProcId> {
        match target {
            Target::Proc(p) => self.procs.info(*p).map(|_| *p),
            Target::Pid(pid) => self.procs.any_by_pid(*pid),
            Target::Name(n) => self.live_name(n),
        }
    }

    fn monitor(&mut self, caller: Caller, target: Target, limit: usize) -> Answer {
        let resolved = self.resolve(&target);
        let live = resolved.filter(|&p| self.procs.ended_reason(p).is_none());
        let r = match live {
            Some(p) => match self.registry.monitor(caller.proc, p, limit) {
                Ok(r) => r,
                Err(e) => return Answer::Now(Err(e)),
            },
            None => {
                // Already ended (or never existed): the `Down` goes out now. Signals waiting
                // unread are bounded like monitors.
                if self.procs.held_signals(caller.proc) >= limit
                    || self.mailbox_pending(caller.proc).unwrap_or(0) > self.cfg.limits.max_mailbox_bytes
                {
                    return Answer::Now(Err(HubError::Limit(format!(
                        "{limit} signals wait unread for this process (HubLimits::max_monitors_per_process); \
                         receive them (multiproc::signals()) before monitoring more"
                    ))));
                }
                let r = self.registry.fired_ref();
                let (proc, pid, reason) = match resolved {
                    Some(p) => (
                        p,
                        self.procs.info(p).map_or(0, |i| i.pid),
                        self.procs.ended_reason(p).unwrap_or(Reason::NoProc),
                    ),
                    None => (
                        ProcId(0),
                        if let Target::Pid(pid) = target { pid } else { 0 },
                        Reason::NoProc,
                    ),
                };
                let name = match &target {
                    Target::Name(n) => Some(n.clone()),
                    _ => None,
                };
                self.deliver_signal(
                    caller.proc,
                    SignalMsg::Down {
                        monitor: r,
                        proc,
                        pid,
                        name,
                        reason,
                    },
                );
                r
            }
        };
        Answer::Now(Ok(Value::Names(NamesReply::Monitor(r))))
    }

    /// Records how `proc` ended (once), then tells its watchers and partners.
    pub(super) fn record_exit(&mut self, proc: ProcId, exit: ExitInfo) {
        let Some((pid, reason)) = self.procs.exited(proc, exit, &mut self.timers, &mut self.replies) else {
            return;
        };
        let ended = self.registry.proc_exited(proc);
        for (w, r) in ended.downs {
            let sig = SignalMsg::Down {
                monitor: r,
                proc,
                pid,
                name: ended.name.clone(),
                reason: reason.clone(),
            };
            self.deliver_signal(w, sig);
        }
        let normal = reason == Reason::Exited(0);
        for (q, traps) in ended.partners {
            // The root runs the hub: killing it would end the whole program, so it always
            // receives the signal instead.
            if traps || q == ROOT_PROC {
                let sig = SignalMsg::Exit {
                    proc,
                    pid,
                    name: ended.name.clone(),
                    reason: reason.clone(),
                };
                self.deliver_signal(q, sig);
            } else if !normal {
                if let Err(e) = self.procs.kill_now_or_at_pid(q) {
                    diag!(
                        "cannot kill {}, linked to {} that ended: {e}",
                        self.procs.describe(q),
                        self.procs.describe(proc)
                    );
                }
            }
        }
    }

    /// Sends `sig` to `to`'s mailbox connection, or holds it until `to` first receives.
    fn deliver_signal(&mut self, to: ProcId, sig: SignalMsg) {
        if let Some((t, sig)) = self.procs.signal_for(to, sig) {
            self.push_signal(t, sig);
        }
    }

    /// Queues a signal on a mailbox connection, after the mail already routed to it this turn.
    pub(super) fn push_signal(&mut self, t: Token, sig: SignalMsg) {
        for (tt, mail) in std::mem::take(&mut self.pushes) {
            self.push_mail(tt, mail);
        }
        if let Err(e) = self.send_to(t, &FromHub::Signal(sig), Vec::new()) {
            diag!("could not push a signal: {e}");
        }
    }
}
