//! The process table: entries, mailboxes, joiners; and how the hub starts children.

use std::collections::{HashMap, VecDeque};
use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::time::Instant;

use serde_bytes::ByteBuf;

use super::held::Item;
use super::objects::{Answer, Caller, Outgoing, Waiter};
use super::timers::{Target, Timers};
use super::{Hub, Role, Token};
use crate::sys;
use crate::wire::names_ops::{Reason, SignalMsg};
use crate::wire::proto::{
    ChildInit, ExitInfo, FromHub, HubError, Joined, Method, Outcome, ProcId, ProcInfo, ProcState, SpawnReq, TaskSpec,
    ToForkServer, Value, Wait, ROOT_PROC,
};
use crate::wire::snapshot::{JoinWait, ProcessRow, RunState, StartedBy};
use crate::wire::FrameError;

/// The environment variable that tells a re-executed binary to become a child.
pub(crate) const BOOT_ENV: &str = "__MULTIPROC_BOOT";

pub(crate) fn exit_info(raw: sys::proc::RawExit) -> ExitInfo {
    match raw {
        sys::proc::RawExit::Exited(c) => ExitInfo::Exited(c),
        sys::proc::RawExit::Signaled(s) => ExitInfo::Signaled(s),
    }
}

/// Who collects a process's exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reaper {
    /// Nobody (the root).
    Nobody,
    /// The hub (pidfd or SIGCHLD).
    Hub,
    /// The fork server with this entry.
    ForkServer(ProcId),
    /// The process that forked it.
    Forker(ProcId),
    /// Its reaper died; it dies by the parent-death signal.
    Lost,
}

struct Entry {
    info: ProcInfo,
    parent: ProcId,
    hidden: bool,
    reaper: Reaper,
    exit: Option<ExitInfo>,
    outcome: Option<Outcome>,
    gone: bool,
    joiners: Vec<Waiter>,
    spawn_waiters: Vec<Waiter>,
    /// (issue 11, start_timeout) Its starter stopped waiting (timeout, interrupt) before the
    /// child was forked: it is hidden, and killed as soon as its pid is known.
    abandoned: bool,
    /// (issue 12) A link killed it before the hub knew its pid: killed when the pid is known.
    kill_on_pid: bool,
    /// (issue 11 item 19) Its starter dropped its handle: forget it once it has ended.
    unowned: bool,
    /// `send_timeout`s waiting for room in this mailbox, in order, with their mail.
    send_waiters: VecDeque<(Waiter, Vec<Item>)>,
    mailbox: VecDeque<Item>,
    /// Bytes in `mailbox`.
    mailbox_bytes: usize,
    /// The connection that receives this process's mail as it arrives.
    mailbox_sub: Option<Token>,
    /// Monitor and link signals held until the process subscribes (bounded by its monitors
    /// and links, see `objects::registry`).
    signals: VecDeque<SignalMsg>,

    /// How it was started (for snapshots).
    started_by: StartedBy,
}

impl Entry {
    fn new(info: ProcInfo, parent: ProcId, reaper: Reaper) -> Self {
        Entry {
            info,
            parent,
            hidden: false,
            reaper,
            exit: None,
            outcome: None,
            gone: false,
            joiners: Vec::new(),
            spawn_waiters: Vec::new(),
            abandoned: false,
            kill_on_pid: false,
            unowned: false,
            send_waiters: VecDeque::new(),
            mailbox: VecDeque::new(),
            mailbox_bytes: 0,
            mailbox_sub: None,
            signals: VecDeque::new(),

            started_by: match reaper {
                Reaper::Nobody => StartedBy::Root,
                Reaper::ForkServer(_) => StartedBy::ForkServer,
                Reaper::Forker(_) => StartedBy::Fork,
                Reaper::Hub | Reaper::Lost => StartedBy::Spawn,
            },
        }
    }
}

pub(crate) struct ProcTable {
    map: HashMap<ProcId, Entry>,
    by_pid: HashMap<i32, ProcId>,
    next: u64,
    forkserver: Option<(ProcId, Token)>,
    /// A fork-server child forked ahead of time, waiting for its `ChildInit` (pid known), and
    /// its main connection. A `ForkServer` start hands it its task and replies at once.
    spare: Option<(ProcId, Token)>,
    /// A spare being forked (pid not known yet).
    spare_pending: Option<(ProcId, Token)>,
    root_pid: i32,
}

impl ProcTable {
    pub fn new(root_pid: i32) -> Self {
        let mut map = HashMap::new();
        let info = ProcInfo {
            proc: ROOT_PROC,
            pid: root_pid,
            name: "MainProcess".into(),
            daemon: false,
        };
        map.insert(ROOT_PROC, Entry::new(info, ROOT_PROC, Reaper::Nobody));
        let mut by_pid = HashMap::new();
        by_pid.insert(root_pid, ROOT_PROC);
        ProcTable {
            map,
            by_pid,
            next: 1,
            forkserver: None,
            spare: None,
            spare_pending: None,
            root_pid,
        }
    }

    fn alloc(&mut self) -> ProcId {
        let p = ProcId(self.next);
        self.next += 1;
        p
    }

    pub fn describe(&self, p: ProcId) -> String {
        match self.map.get(&p) {
            Some(e) => format!("{} (pid {})", e.info.name, e.info.pid),
            None => format!("process #{}", p.0),
        }
    }

    pub fn pid_of(&self, p: ProcId) -> Option<i32> {
        self.map.get(&p).map(|e| e.info.pid).filter(|&pid| pid > 0)
    }

    pub fn by_pid(&self, pid: i32) -> Option<ProcId> {
        self.by_pid.get(&pid).copied()
    }

    /// Has `p` ended, or was it never known (a process that cannot answer anything)?
    pub fn has_ended(&self, p: ProcId) -> bool {
        self.map.get(&p).is_none_or(|e| e.gone || e.exit.is_some())
    }

    pub fn is_gone(&self, p: ProcId) -> bool {
        self.map.get(&p).is_none_or(|e| e.gone)
    }

    /// A spare that was being forked now has its pid: it is ready for a task.
    pub fn spare_forked(&mut self, p: ProcId) {
        if self.spare_pending.is_some_and(|(q, _)| q == p) {
            self.spare = self.spare_pending.take();
        }
    }

    /// Takes the ready spare, if it is still alive.
    fn take_spare(&mut self) -> Option<(ProcId, Token)> {
        let (p, t) = self.spare.take()?;
        let e = self.map.get(&p)?;
        (e.info.pid > 0 && !e.gone && e.exit.is_none()).then_some((p, t))
    }

    /// Marks `p` gone; true the first time.
    pub fn mark_gone(&mut self, p: ProcId) -> bool {
        if self.spare.is_some_and(|(q, _)| q == p) {
            self.spare = None;
        }
        if self.spare_pending.is_some_and(|(q, _)| q == p) {
            self.spare_pending = None;
        }
        match self.map.get_mut(&p) {
            Some(e) if !e.gone => {
                e.gone = true;
                e.mailbox.clear();
                e.mailbox_bytes = 0;
                e.signals.clear();
                true
            }
            _ => false,
        }
    }

    pub fn is_lost(&self, p: ProcId) -> bool {
        self.map
            .get(&p)
            .is_some_and(|e| e.reaper == Reaper::Lost && e.exit.is_none())
    }

    pub fn mark_lost(&mut self, p: ProcId) {
        if let Some(e) = self.map.get_mut(&p) {
            e.reaper = Reaper::Lost;
        }
    }

    /// Running children whose reaper was `p`.
    pub fn orphaned_by(&self, p: ProcId) -> Vec<ProcId> {
        self.map
            .iter()
            .filter(|(_, e)| {
                e.exit.is_none() && matches!(e.reaper, Reaper::Forker(r) | Reaper::ForkServer(r) if r == p)
            })
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn hub_reaped_running(&self) -> Vec<(ProcId, i32)> {
        self.map
            .iter()
            .filter(|(_, e)| e.reaper == Reaper::Hub && e.exit.is_none() && e.info.pid > 0)
            .map(|(id, e)| (*id, e.info.pid))
            .collect()
    }

    pub fn set_outcome(&mut self, p: ProcId, o: Outcome) {
        if let Some(e) = self.map.get_mut(&p) {
            e.outcome = Some(o);
        }
    }

    /// Records how `p` ended and answers its joiners. Returns its pid and the reason the
    /// first time (for monitors and links).
    pub fn exited(
        &mut self,
        p: ProcId,
        exit: ExitInfo,
        timers: &mut Timers,
        replies: &mut Vec<Outgoing>,
    ) -> Option<(i32, Reason)> {
        let e = self.map.get_mut(&p)?;
        if e.exit.is_some() {
            return None;
        }
        e.exit = Some(exit.clone());
        let ended = (e.info.pid, reason_of(&exit, e.outcome.as_ref()));

        if cfg!(feature = "tracing") && !e.hidden {
            trace_exit(&e.info, &exit, e.outcome.as_ref());
        }
        let joined = Joined {
            exit,
            outcome: e.outcome.clone(),
        };
        let had_joiners = !e.joiners.is_empty();
        for w in e.joiners.drain(..) {
            timers.cancel(w.timer);
            replies.push((w.who.conn, w.who.id, Ok(Value::Joined(joined.clone())), Vec::new()));
        }
        for w in e.spawn_waiters.drain(..) {
            timers.cancel(w.timer);
            replies.push((
                w.who.conn,
                w.who.id,
                Err(HubError::Gone("the child died before it started".into())),
                Vec::new(),
            ));
        }
        // Mail to a process that has ended is dropped, as `send` does.
        for (w, _) in e.send_waiters.drain(..) {
            timers.cancel(w.timer);
            replies.push((w.who.conn, w.who.id, Ok(Value::Unit), Vec::new()));
        }
        if e.info.pid > 0 {
            self.by_pid.remove(&e.info.pid);
        }
        if had_joiners || self.map.get(&p).is_some_and(|e| e.hidden || e.unowned) {
            self.forget_if_done(p);
        }
        Some(ended)
    }

    /// The description of `p`, if the hub still knows it.
    pub fn info(&self, p: ProcId) -> Option<&ProcInfo> {
        self.map.get(&p).map(|e| &e.info)
    }

    /// The logical parent of `p`.
    pub fn parent_of(&self, p: ProcId) -> Option<ProcId> {
        self.map.get(&p).map(|e| e.parent)
    }

    /// How `p` ended, if it has and the hub still remembers.
    pub fn ended_reason(&self, p: ProcId) -> Option<Reason> {
        let e = self.map.get(&p)?;
        e.exit.as_ref().map(|x| reason_of(x, e.outcome.as_ref()))
    }

    /// A process the hub remembers with this pid, live or ended (the live one first).
    pub fn any_by_pid(&self, pid: i32) -> Option<ProcId> {
        if pid <= 0 {
            return None;
        }
        self.by_pid(pid).or_else(|| {
            self.map
                .iter()
                .filter(|(_, e)| e.info.pid == pid)
                .map(|(p, _)| *p)
                .max()
        })
    }

    /// Can `p` still take part in a link or take a name (not dead to the hub, not ended)? A
    /// fork-server child may run (and register itself) a moment before the hub learns its
    /// pid from the fork server: it is live all the same.
    pub fn is_live(&self, p: ProcId) -> bool {
        self.map.get(&p).is_some_and(|e| !e.gone && e.exit.is_none())
    }

    /// The fork server's connection, if one runs.
    pub fn forkserver_conn(&self) -> Option<Token> {
        self.forkserver.map(|(_, t)| t)
    }

    /// A signal for `to`: the connection to push it on now, or `None` if it was held for the
    /// process's first receive (or dropped: `to` has ended).
    pub fn signal_for(&mut self, to: ProcId, sig: SignalMsg) -> Option<(Token, SignalMsg)> {
        let e = self.map.get_mut(&to)?;
        if e.gone || e.exit.is_some() {
            return None;
        }
        match e.mailbox_sub {
            Some(t) => Some((t, sig)),
            None => {
                e.signals.push_back(sig);
                None
            }
        }
    }

    /// How many signals are held for `p` (it has not received yet).
    pub fn held_signals(&self, p: ProcId) -> usize {
        self.map.get(&p).map_or(0, |e| e.signals.len())
    }

    /// Signals held for `p` (taken at its subscription, after its mail).
    pub fn take_signals(&mut self, p: ProcId) -> Vec<SignalMsg> {
        self.map
            .get_mut(&p)
            .map(|e| e.signals.drain(..).collect())
            .unwrap_or_default()
    }

    pub fn join(&mut self, who: Caller, p: ProcId, wait: Wait, now: Instant, timers: &mut Timers) -> Answer {
        let Some(e) = self.map.get_mut(&p) else {
            return Answer::Now(Err(HubError::UnknownProcess));
        };
        if p == ROOT_PROC || p == who.proc {
            return Answer::Now(Err(HubError::Invalid("a process cannot join itself".into())));
        }
        if let Some(exit) = &e.exit {
            let joined = Joined {
                exit: exit.clone(),
                outcome: e.outcome.clone(),
            };
            self.forget_if_done(p);
            return Answer::Now(Ok(Value::Joined(joined)));
        }
        if wait == Wait::Never {
            return Answer::Now(Err(HubError::Timeout));
        }
        let timer = timers.arm(now, wait, Target::Join(p), who.conn, who.id);
        e.joiners.push(Waiter { who, timer, since: now });
        Answer::Parked
    }

    /// SIGKILL for `p` now, or as soon as its pid is known (a fork-server child that runs
    /// before the fork server's report of its pid is read): a link's kill is never lost.
    pub fn kill_now_or_at_pid(&mut self, p: ProcId) -> Result<Value, HubError> {
        if let Some(e) = self.map.get_mut(&p) {
            if e.info.pid <= 0 && e.exit.is_none() {
                e.kill_on_pid = true;
                return Ok(Value::Unit);
            }
        }
        self.signal(p, sys::signal::SIGKILL)
    }

    pub fn signal(&mut self, p: ProcId, sig: i32) -> Result<Value, HubError> {
        let e = self.map.get(&p).ok_or(HubError::UnknownProcess)?;
        if p == ROOT_PROC {
            return Err(HubError::Invalid("refusing to signal the root process".into()));
        }
        if e.exit.is_some() || e.info.pid <= 0 {
            return Ok(Value::Unit);
        }
        sys::proc::send_signal(e.info.pid, sig)
            .map_err(|err| HubError::Os(format!("kill({}, {sig}): {err}", e.info.pid)))?;
        Ok(Value::Unit)
    }

    pub fn active_children(&self, p: ProcId) -> Vec<ProcInfo> {
        let mut v: Vec<ProcInfo> = self
            .map
            .iter()
            .filter(|(id, e)| e.parent == p && **id != p && !e.hidden && e.exit.is_none() && !e.gone && e.info.pid > 0)
            .map(|(_, e)| e.info.clone())
            .collect();
        v.sort_by_key(|i| i.proc);
        v
    }

    pub fn state(&self, p: ProcId) -> Result<Value, HubError> {
        let e = self.map.get(&p).ok_or(HubError::UnknownProcess)?;
        Ok(Value::State(ProcState {
            info: e.info.clone(),
            exit: e.exit.clone(),
        }))
    }

    /// Delivers mail: pushed at once to a subscribed connection, else kept until the process
    /// subscribes. Mail to a process that has ended is dropped.
    pub fn deliver(&mut self, to: ProcId, payloads: Vec<Item>, pushes: &mut Vec<(Token, Vec<Item>)>) {
        let Some(e) = self.map.get_mut(&to) else { return };
        if e.gone || e.exit.is_some() {
            return;
        }
        match e.mailbox_sub {
            Some(t) => pushes.push((t, payloads)),
            None => {
                e.mailbox_bytes += payloads.iter().map(|m| m.len()).sum::<usize>();
                e.mailbox.extend(payloads);
            }
        }
    }

    /// Parks a `send_timeout` until `to` has room; false for `Wait::Never` (answer at once).
    pub fn park_send(
        &mut self,
        to: ProcId,
        who: Caller,
        wait: Wait,
        now: Instant,
        timers: &mut Timers,
        payloads: Vec<Item>,
    ) -> bool {
        let Some(e) = self.map.get_mut(&to) else { return false };
        if wait == Wait::Never {
            return false;
        }
        let timer = timers.arm(now, wait, Target::Mail(to), who.conn, who.id);
        e.send_waiters.push_back((Waiter { who, timer, since: now }, payloads));
        true
    }

    /// The first `send_timeout` waiting for room in `to`'s mailbox.
    pub fn pop_send_waiter(&mut self, to: ProcId) -> Option<(Waiter, Vec<Item>)> {
        self.map.get_mut(&to)?.send_waiters.pop_front()
    }

    /// Does anything wait for room in `to`'s mailbox?
    pub fn has_send_waiters(&self, to: ProcId) -> bool {
        self.map.get(&to).is_some_and(|e| !e.send_waiters.is_empty())
    }

    /// Mail for `p` held in the hub and not yet pushed (see also its mailbox connection's
    /// queued output), and that connection.
    pub fn mailbox_backlog(&self, p: ProcId) -> Option<(usize, Option<Token>)> {
        let e = self.map.get(&p)?;
        if e.gone || e.exit.is_some() {
            return None;
        }
        Some((e.mailbox_bytes, e.mailbox_sub))
    }

    /// Makes `t` the connection that receives `p`'s mail; returns the mail already waiting.
    pub fn subscribe(&mut self, p: ProcId, t: Token) -> Vec<Item> {
        match self.map.get_mut(&p) {
            Some(e) => {
                e.mailbox_sub = Some(t);
                e.mailbox_bytes = 0;
                e.mailbox.drain(..).collect()
            }
            None => Vec::new(),
        }
    }

    /// A connection closed: it no longer receives mail.
    pub fn unsubscribe(&mut self, p: ProcId, t: Token) {
        if let Some(e) = self.map.get_mut(&p) {
            if e.mailbox_sub == Some(t) {
                e.mailbox_sub = None;
            }
        }
    }

    /// Snapshot rows of every visible process (root first, then by id), and the joins waiting.
    /// `queued(p)` is the mail bytes written to `p`'s mailbox connection and not yet read.
    pub fn rows(&self, now: Instant, queued: &dyn Fn(Option<Token>) -> usize) -> (Vec<ProcessRow>, Vec<JoinWait>) {
        let mut rows: Vec<ProcessRow> = self
            .map
            .iter()
            .filter(|(_, e)| !e.hidden)
            .map(|(id, e)| ProcessRow {
                proc: *id,
                pid: e.info.pid,
                name: e.info.name.clone(),
                parent: e.parent,
                state: match (&e.exit, e.gone, e.info.pid) {
                    (Some(x), _, _) => RunState::Ended(x.clone()),
                    (None, true, _) => RunState::Exiting,
                    (None, false, 0) => RunState::Starting,
                    (None, false, _) => RunState::Running,
                },
                started_by: e.started_by,
                daemon: e.info.daemon,
                mailbox: e.mailbox.len() as u64,
                mailbox_bytes: (e.mailbox_bytes + queued(e.mailbox_sub)) as u64,
            })
            .collect();
        rows.sort_by_key(|r| r.proc);
        let mut joins: Vec<JoinWait> = self
            .map
            .iter()
            .flat_map(|(target, e)| {
                e.joiners.iter().map(move |w| JoinWait {
                    waiter: w.who.proc,
                    target: *target,
                    waited_us: w.row("join", now).waited_us,
                })
            })
            .collect();
        joins.sort_by_key(|j| (j.waiter, j.target));
        (rows, joins)
    }

    pub fn mailbox_len(&self, p: ProcId) -> u64 {
        self.map.get(&p).map_or(0, |e| e.mailbox.len() as u64)
    }

    pub fn forked(
        &mut self,
        child: ProcId,
        pid: i32,
        reporter: ProcId,
        from_forkserver: bool,
        timers: &mut Timers,
        replies: &mut Vec<Outgoing>,
    ) {
        let Some(e) = self.map.get_mut(&child) else { return };
        // Only the process that was asked to fork it may say so.
        let expected = match e.reaper {
            Reaper::ForkServer(fs) => from_forkserver && fs == reporter,
            Reaper::Forker(f) => f == reporter,
            _ => false,
        };
        if !expected || e.info.pid > 0 {
            return;
        }
        e.info.pid = pid;
        if cfg!(feature = "tracing") && !e.hidden {
            let parent = e.parent;
            let (info, method) = (e.info.clone(), e.started_by);
            trace_start(&info, method, &self.describe(parent));
        }
        let Some(e) = self.map.get_mut(&child) else { return };
        self.by_pid.insert(pid, child);
        if (e.abandoned && e.spawn_waiters.is_empty()) || e.kill_on_pid {
            // Nobody holds a handle to it: it must not run (its end is reported as usual).
            let _ = sys::proc::send_signal(pid, sys::signal::SIGKILL);
        }
        for w in e.spawn_waiters.drain(..) {
            timers.cancel(w.timer);
            replies.push((w.who.conn, w.who.id, Ok(Value::Proc(e.info.clone())), Vec::new()));
        }
    }

    /// May `reporter` (speaking on its fork-server connection or not) report how `p` ended?
    /// Only its reaper may: the fork server for its children, a forking process for its own.
    pub fn reaped_by(&self, p: ProcId, reporter: ProcId, from_forkserver: bool) -> bool {
        self.map.get(&p).is_some_and(|e| match e.reaper {
            Reaper::ForkServer(fs) => from_forkserver && fs == reporter,
            Reaper::Forker(f) => f == reporter,
            Reaper::Nobody | Reaper::Hub | Reaper::Lost => false,
        })
    }

    pub fn expire(&mut self, target: Target, p: ProcId, conn: Token, id: u64) -> bool {
        let Some(e) = self.map.get_mut(&p) else { return false };
        let is_it = |w: &Waiter| w.who.conn == conn && w.who.id == id;
        match target {
            Target::Join(_) => remove_where(&mut e.joiners, is_it),
            Target::Spawn(_) => {
                let found = remove_where(&mut e.spawn_waiters, is_it);
                abandon_if_unclaimed(e);
                found
            }
            Target::Mail(_) => {
                let before = e.send_waiters.len();
                e.send_waiters.retain(|(w, _)| !is_it(w));
                before != e.send_waiters.len()
            }
            Target::Object(_) => false,
        }
    }

    pub fn cancel_waiters(
        &mut self,
        pred: &dyn Fn(&Waiter) -> bool,
        why: Option<&HubError>,
        timers: &mut Timers,
        replies: &mut Vec<Outgoing>,
    ) {
        let mut answer = |w: Waiter| {
            timers.cancel(w.timer);
            if let Some(e) = why {
                replies.push((w.who.conn, w.who.id, Err(e.clone()), Vec::new()));
            }
        };
        for e in self.map.values_mut() {
            for list in [&mut e.joiners, &mut e.spawn_waiters] {
                let (hit, keep): (Vec<Waiter>, Vec<Waiter>) = list.drain(..).partition(|w| pred(w));
                *list = keep;
                hit.into_iter().for_each(&mut answer);
            }
            let (hit, keep): (VecDeque<_>, VecDeque<_>) = e.send_waiters.drain(..).partition(|(w, _)| pred(w));
            e.send_waiters = keep;
            hit.into_iter().for_each(|(w, _)| answer(w));
            abandon_if_unclaimed(e);
        }
    }

    /// (issue 11 item 8) The fork server reported the pid of `child`, a sibling (see
    /// `sys::proc::fork_sibling`): the hub reaps it from now on. True if it was adopted.
    pub fn adopt_forked(&mut self, child: ProcId, pid: i32) -> bool {
        match self.map.get_mut(&child) {
            Some(e) if matches!(e.reaper, Reaper::ForkServer(_)) && e.info.pid == pid && e.exit.is_none() => {
                e.reaper = Reaper::Hub;
                true
            }
            _ => false,
        }
    }

    /// The ready spare of fork server `fs`, if any.
    pub fn spare_of(&self, fs: ProcId) -> Option<(ProcId, Token)> {
        if self.forkserver.is_some_and(|(p, _)| p == fs) {
            self.spare
        } else {
            None
        }
    }

    pub fn forkserver_gone(&mut self, fs: ProcId) {
        if self.forkserver.is_some_and(|(p, _)| p == fs) {
            self.forkserver = None;
            self.spare = None;
            self.spare_pending = None;
        }
    }

    pub fn take_spawn_waiters_of_forkserver(&mut self) -> Vec<Waiter> {
        let mut out = Vec::new();
        for e in self.map.values_mut() {
            if e.reaper == Reaper::Lost && e.info.pid == 0 {
                out.append(&mut e.spawn_waiters);
            }
        }
        out
    }

    /// (issue 11 item 19) The starter of `child` dropped its handle without joining: nobody
    /// can ask how it ended, so its entry goes as soon as it has ended (now, if it has).
    pub fn handle_dropped(&mut self, child: ProcId, by: ProcId) {
        let Some(e) = self.map.get_mut(&child) else { return };
        if e.parent != by || child == ROOT_PROC {
            return;
        }
        e.unowned = true;
        self.forget_if_done(child);
    }

    /// Forgets a process that has ended and whose end was reported to a joiner.
    pub fn forget_if_done(&mut self, p: ProcId) {
        if p != ROOT_PROC && self.map.get(&p).is_some_and(|e| e.exit.is_some() && e.gone) {
            self.map.remove(&p);
        }
    }
}

/// The reason a monitor or link reports, from what the hub knows: a panic if the worker
/// reported one, else the OS's status.
fn reason_of(exit: &ExitInfo, outcome: Option<&Outcome>) -> Reason {
    match (outcome, exit) {
        (Some(Outcome::Panicked(r)), _) => Reason::Panicked(r.clone()),
        (_, ExitInfo::Exited(c)) => Reason::Exited(*c),
        (_, ExitInfo::Signaled(s)) => Reason::Signaled(*s),
    }
}

/// The `tracing` event of a process's start (nothing without the feature).
pub(crate) fn trace_start(info: &ProcInfo, method: StartedBy, parent: &str) {
    crate::trace::mp_info!(
        pid = info.pid,
        name = %info.name,
        method = ?method,
        parent = %parent,
        "process started"
    );
    let _ = (info, method, parent);
}

/// The `tracing` event of a process's end, with its exact status (nothing without the feature).
fn trace_exit(info: &ProcInfo, exit: &ExitInfo, outcome: Option<&Outcome>) {
    let status = match exit {
        ExitInfo::Exited(c) => format!("exit code {c}"),
        ExitInfo::Signaled(s) => format!("killed by signal {s}"),
    };
    let outcome = match outcome {
        None => "no outcome reported".to_owned(),
        Some(Outcome::Returned(_)) => "returned".to_owned(),
        Some(Outcome::Panicked(p)) => format!(
            "panicked at {}: {}",
            p.location.as_deref().unwrap_or("an unknown location"),
            p.message
        ),
        Some(Outcome::Failed(why)) => format!("failed: {why}"),
        Some(Outcome::TooLarge { bytes, max }) => format!("result too large ({bytes} > {max} bytes)"),
    };
    if matches!(exit, ExitInfo::Exited(0)) {
        crate::trace::mp_info!(pid = info.pid, name = %info.name, status = %status, outcome = %outcome, "process ended");
    } else {
        crate::trace::mp_warn!(pid = info.pid, name = %info.name, status = %status, outcome = %outcome, "process ended");
    }
    let _ = (info, status, outcome);
}

/// A fork-server child whose every starter stopped waiting before it was forked is abandoned
/// (see `Entry::abandoned`).
fn abandon_if_unclaimed(e: &mut Entry) {
    if e.info.pid == 0 && e.spawn_waiters.is_empty() && matches!(e.reaper, Reaper::ForkServer(_)) && !e.hidden {
        e.abandoned = true;
        e.hidden = true;
    }
}

/// The hub could not make a connection for a new child: say plainly when the root is out of
/// descriptors (the request fails; nothing else does).
fn socketpair_failed(e: sys::Errno) -> HubError {
    match e {
        sys::Errno::EMFILE | sys::Errno::ENFILE => HubError::Os(format!(
            "too many open files in the root process ({e}): cannot make a connection for a new child; \
             raise the root's descriptor limit (`ulimit -n`, RLIMIT_NOFILE) or have it close files"
        )),
        e => HubError::Os(format!("socketpair: {e}")),
    }
}

fn remove_where(v: &mut Vec<Waiter>, f: impl Fn(&Waiter) -> bool) -> bool {
    let before = v.len();
    v.retain(|w| !f(w));
    before != v.len()
}

impl Hub {
    fn check_may_start(&self, caller: ProcId) -> Result<ProcInfo, HubError> {
        let parent = self.procs.map.get(&caller).ok_or(HubError::UnknownProcess)?;
        if parent.info.daemon {
            return Err(HubError::Invalid(format!(
                "{} is daemonic, and daemonic processes are not allowed to have children",
                parent.info.name
            )));
        }
        Ok(parent.info.clone())
    }

    /// The first frame a new child reads: who it is, what to run, and the hub's settings.
    fn child_init(
        &self,
        me: ProcInfo,
        parent: ProcInfo,
        task: Option<TaskSpec>,
        ignore_sigint: bool,
        ident: Vec<u32>,
        authkey: ByteBuf,
    ) -> ChildInit {
        ChildInit {
            me,
            parent,
            root_pid: self.procs.root_pid,
            task,
            max_frame: self.cfg.max_frame as u64,
            ignore_sigint,
            ident,
            authkey,
            ring: 0,
        }
    }

    fn spawn_env(mode: &str, root_pid: i32) -> Vec<CString> {
        let mut env: Vec<CString> = std::env::vars_os()
            .filter(|(k, _)| k != BOOT_ENV)
            .filter_map(|(k, v)| {
                use std::os::unix::ffi::OsStrExt;
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).ok()
            })
            .collect();
        if let Ok(marker) = CString::new(format!("{BOOT_ENV}={mode}:{root_pid}")) {
            env.push(marker);
        }
        env
    }

    fn argv0() -> CString {
        let a = std::env::args_os().next().unwrap_or_default();
        use std::os::unix::ffi::OsStrExt;
        CString::new(a.as_bytes()).unwrap_or_else(|_| c"multiproc-child".to_owned())
    }

    /// Re-executes this binary as `mode` with `conn` as its hub connection.
    fn exec_self(&mut self, mode: &str, conn: OwnedFd) -> Result<i32, HubError> {
        let env = Self::spawn_env(mode, self.procs.root_pid);
        let pid = sys::proc::spawn_self(&Self::argv0(), &env, std::os::fd::AsFd::as_fd(&conn))
            .map_err(|e| HubError::Os(format!("cannot start a child process: {e}")))?;
        Ok(pid)
    }

    pub(super) fn spawn(&mut self, caller: Caller, req: SpawnReq, fds: Vec<OwnedFd>) -> Answer {
        let parent = match self.check_may_start(caller.proc) {
            Ok(p) => p,
            Err(e) => return Answer::Now(Err(e)),
        };
        if req.method == Method::ForkServer {
            if let Some((proc, t)) = self.procs.take_spare() {
                return self.start_spare(caller, proc, t, parent, req, fds);
            }
        }
        let (hub_end, child_end) = match sys::fd::socketpair() {
            Ok(p) => p,
            Err(e) => return Answer::Now(Err(socketpair_failed(e))),
        };
        let proc = self.procs.alloc();
        let info = ProcInfo {
            proc,
            pid: 0,
            name: req.name.clone(),
            daemon: req.daemon,
        };
        let init = self.child_init(
            info.clone(),
            parent,
            Some(req.task),
            req.ignore_sigint,
            req.ident,
            req.authkey,
        );
        let Some(t) = self.add_conn(hub_end, proc, Role::Main) else {
            return Answer::Now(Err(HubError::Os("cannot register the child's connection".into())));
        };
        if let Err(e) = self.send_init(t, init, fds) {
            self.conns.try_remove(t);
            return Answer::Now(Err(HubError::Invalid(format!(
                "the task's arguments cannot be sent: {e}"
            ))));
        }
        match req.method {
            Method::Spawn => {
                let mut entry = Entry::new(info, caller.proc, Reaper::Hub);
                match self.exec_self("spawn", child_end) {
                    Ok(pid) => {
                        entry.info.pid = pid;
                        let reply = entry.info.clone();
                        if cfg!(feature = "tracing") {
                            trace_start(&reply, StartedBy::Spawn, &self.procs.describe(caller.proc));
                        }
                        self.procs.by_pid.insert(pid, proc);
                        self.procs.map.insert(proc, entry);
                        self.watch_child(proc, pid);
                        Answer::Now(Ok(Value::Proc(reply)))
                    }
                    Err(e) => {
                        self.close_conn_silently(t);
                        Answer::Now(Err(e))
                    }
                }
            }
            Method::ForkServer => {
                let (fs, fs_conn) = match self.ensure_forkserver() {
                    Ok(x) => x,
                    Err(e) => {
                        self.close_conn_silently(t);
                        return Answer::Now(Err(e));
                    }
                };
                let mut entry = Entry::new(info, caller.proc, Reaper::ForkServer(fs));
                let timer = self
                    .timers
                    .arm(Instant::now(), req.wait, Target::Spawn(proc), caller.conn, caller.id);
                entry.spawn_waiters.push(Waiter {
                    who: caller,
                    timer,
                    since: Instant::now(),
                });
                self.procs.map.insert(proc, entry);
                if let Err(e) = self.send_to(fs_conn, &ToForkServer::Fork { proc }, vec![child_end]) {
                    return Answer::Now(Err(HubError::Os(format!("cannot reach the fork server: {e}"))));
                }
                self.ensure_spare();
                Answer::Parked
            }
        }
    }

    /// Gives a task to the spare fork-server child: its `ChildInit` goes on its connection and
    /// the caller is answered at once (the pid is already known). The next spare is forked
    /// in the background.
    fn start_spare(
        &mut self,
        caller: Caller,
        proc: ProcId,
        t: Token,
        parent: ProcInfo,
        req: SpawnReq,
        fds: Vec<OwnedFd>,
    ) -> Answer {
        let Some(e) = self.procs.map.get(&proc) else {
            return Answer::Now(Err(HubError::Gone("the spare child vanished".into())));
        };
        let info = ProcInfo {
            proc,
            pid: e.info.pid,
            name: req.name,
            daemon: req.daemon,
        };
        let init = self.child_init(
            info.clone(),
            parent,
            Some(req.task),
            req.ignore_sigint,
            req.ident,
            req.authkey,
        );
        if let Err(err) = self.send_init(t, init, fds) {
            // Too big to send: the spare stays a spare.
            self.procs.spare = Some((proc, t));
            return Answer::Now(Err(HubError::Invalid(format!(
                "the task's arguments cannot be sent: {err}"
            ))));
        }
        if let Some(e) = self.procs.map.get_mut(&proc) {
            e.info = info.clone();
            e.parent = caller.proc;
            e.hidden = false;
        }
        if cfg!(feature = "tracing") {
            trace_start(&info, StartedBy::ForkServer, &self.procs.describe(caller.proc));
        }
        self.ensure_spare();
        Answer::Now(Ok(Value::Proc(info)))
    }

    /// Makes sure a spare fork-server child is ready or on its way.
    fn ensure_spare(&mut self) {
        if self.procs.spare.is_some() || self.procs.spare_pending.is_some() {
            return;
        }
        let Ok((fs, fs_conn)) = self.ensure_forkserver() else {
            return;
        };
        let Ok((hub_end, child_end)) = sys::fd::socketpair() else {
            return;
        };
        let proc = self.procs.alloc();
        let Some(t) = self.add_conn(hub_end, proc, Role::Main) else {
            return;
        };
        let info = ProcInfo {
            proc,
            pid: 0,
            name: "(spare)".into(),
            daemon: false,
        };
        let mut entry = Entry::new(info, ROOT_PROC, Reaper::ForkServer(fs));
        entry.hidden = true;
        self.procs.map.insert(proc, entry);
        if self
            .send_to(fs_conn, &ToForkServer::Fork { proc }, vec![child_end])
            .is_err()
        {
            self.close_conn_silently(t);
            self.procs.map.remove(&proc);
            return;
        }
        self.procs.spare_pending = Some((proc, t));
    }

    /// Queues a child's `ChildInit` on its main connection, on the socket, and puts the
    /// connection in ring mode right after it (the rings' memory object travels as the init's
    /// last descriptor) unless the transport is sockets only or the rings cannot be made.
    fn send_init(&mut self, t: Token, mut init: ChildInit, mut fds: Vec<OwnedFd>) -> Result<(), FrameError> {
        let ring = match self.new_ring() {
            Ok(r) => r,
            Err(e) => {
                diag!("{e}; this child's main connection stays a plain socket");
                None
            }
        };
        // The ring's descriptor rides with the init frame's, unless they are as many as one
        // message may carry: then it follows in a message of its own (one byte), which the
        // child reads before it uses the connection.
        let mut alone = None;
        let mem = ring.map(|(fd, mem)| {
            init.ring = mem.cap() as u64;
            if fds.len() < sys::io::MAX_FDS_PER_MSG {
                fds.push(fd);
            } else {
                alone = Some(fd);
            }
            mem
        });
        let Some(c) = self.conns.get_mut(t) else { return Ok(()) };
        c.queue_via_socket(&FromHub::Init(Box::new(init)), fds)?;
        if let Some(fd) = alone {
            c.queue_raw_via_socket(vec![0u8], vec![fd]);
        }
        self.mark_dirty(t);
        if let Some(mem) = mem {
            self.attach_ring(t, mem);
        }
        Ok(())
    }

    fn close_conn_silently(&mut self, t: Token) {
        if let Some(c) = self.conns.try_remove(t) {
            use std::os::fd::AsRawFd;
            let raw = c.fd.as_raw_fd();
            let _ = self.poll.registry().deregister(&mut mio::unix::SourceFd(&raw));
        }
    }

    fn ensure_forkserver(&mut self) -> Result<(ProcId, Token), HubError> {
        if let Some(fs) = self.procs.forkserver {
            return Ok(fs);
        }
        let (hub_end, child_end) = sys::fd::socketpair().map_err(socketpair_failed)?;
        let proc = self.procs.alloc();
        let t = self
            .add_conn(hub_end, proc, Role::ForkServer)
            .ok_or_else(|| HubError::Os("cannot register the fork server's connection".into()))?;
        let pid = match self.exec_self("forkserver", child_end) {
            Ok(pid) => pid,
            Err(e) => {
                self.close_conn_silently(t);
                return Err(e);
            }
        };
        let info = ProcInfo {
            proc,
            pid,
            name: "ForkServer".into(),
            daemon: true,
        };
        let mut entry = Entry::new(info, ROOT_PROC, Reaper::Hub);
        entry.hidden = true;
        self.procs.map.insert(proc, entry);
        self.procs.by_pid.insert(pid, proc);
        self.watch_child(proc, pid);
        self.procs.forkserver = Some((proc, t));
        Ok((proc, t))
    }

    pub(super) fn prepare_fork(
        &mut self,
        caller: Caller,
        name: String,
        daemon: bool,
        ident: Vec<u32>,
    ) -> Result<(ChildInit, OwnedFd), HubError> {
        let parent = self.check_may_start(caller.proc)?;
        let (hub_end, child_end) = sys::fd::socketpair().map_err(socketpair_failed)?;
        let proc = self.procs.alloc();
        let info = ProcInfo {
            proc,
            pid: 0,
            name,
            daemon,
        };
        self.add_conn(hub_end, proc, Role::Main)
            .ok_or_else(|| HubError::Os("cannot register the child's connection".into()))?;
        self.procs
            .map
            .insert(proc, Entry::new(info.clone(), caller.proc, Reaper::Forker(caller.proc)));
        // The forked child's memory holds copies of its parent's handles.
        self.objects.copy_holds(caller.proc, proc);
        let init = self.child_init(info, parent, None, false, ident, ByteBuf::new());
        Ok((init, child_end))
    }
}
