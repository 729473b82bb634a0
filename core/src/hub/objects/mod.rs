//! Hub objects: one state machine per kind, reached by [`ObjOp`]s.
//!
//! Every object implements [`Object`]. The hub owns the objects in a slab, tracks which
//! processes hold handles to each (`holders`, plus handles in flight between processes), and
//! reclaims an object when nobody holds it. An object never blocks: a call that must wait is
//! *parked* as a [`Waiter`] and answered later through [`Cx::reply`], or by the hub with
//! `Timeout` when its deadline passes, or dropped when its connection closes.
//!
//! Adding a kind: a variant in [`ObjectKind`], its ops in [`ObjOp`], a module here implementing
//! [`Object`], and one line in [`create`].

pub(crate) mod manager;
mod oneshot;
pub(crate) mod queue;
pub(crate) mod registry;
pub(crate) mod sync;

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

use slab::Slab;

use super::timers::{Target, TimerKey, Timers};
use super::Token;
use crate::wire::proto::{HubError, ObjId, ObjOp, ObjectKind, ProcId, ReqId, Value, Wait};
use crate::wire::snapshot::{ObjectRow, WaiterRow};

/// Who made a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caller {
    /// The connection to answer on.
    pub conn: Token,
    /// The request id to answer.
    pub id: ReqId,
    /// The calling process.
    pub proc: ProcId,
}

/// A parked call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Waiter {
    /// Who is waiting.
    pub who: Caller,
    /// Its deadline, if any.
    pub timer: Option<TimerKey>,
    /// When it was parked (for `Op::Snapshot`: how long it has waited).
    pub since: Instant,
}

impl Waiter {
    /// A snapshot row for this waiter, waiting in `op`.
    pub fn row(&self, op: &str, now: Instant) -> WaiterRow {
        WaiterRow {
            proc: self.who.proc,
            op: op.to_owned(),
            waited_us: now
                .saturating_duration_since(self.since)
                .as_micros()
                .min(u128::from(u64::MAX)) as u64,
        }
    }
}

/// What an object says about itself in a snapshot (the hub adds its id, creator and handles).
#[derive(Debug, Clone, Default)]
pub(crate) struct ObjDesc {
    pub kind: String,
    pub held_by: Vec<ProcId>,
    pub depth: Option<u64>,
    pub unfinished: Option<u64>,
    pub waiters: Vec<WaiterRow>,
    pub note: String,
}

impl ObjDesc {
    /// A description with only a kind.
    pub fn kind(kind: &str) -> Self {
        ObjDesc {
            kind: kind.to_owned(),
            ..ObjDesc::default()
        }
    }
}

/// The result of a call on an object.
pub(crate) enum Answer {
    /// Reply now.
    Now(Result<Value, HubError>),
    /// The call was parked (see [`Cx::park`]); it will be answered later.
    Parked,
}

/// A reply waiting to be queued on its connection, with the descriptors it hands over.
pub(crate) type Outgoing = (Token, ReqId, Result<Value, HubError>, Vec<std::os::fd::OwnedFd>);

/// What an object may do to the world while it handles an event.
pub(crate) struct Cx<'a> {
    pub now: Instant,
    pub obj: ObjId,
    pub(crate) replies: &'a mut Vec<Outgoing>,
    pub(crate) timers: &'a mut Timers,
    /// Connections that are closed (their waiters must not be served).
    pub(crate) closed: &'a dyn Fn(Token) -> bool,
    /// The descriptors that came with the request being handled (its op says how many); an
    /// object that keeps them takes them, the rest are closed.
    pub(crate) incoming: Vec<std::os::fd::OwnedFd>,
}

impl Cx<'_> {
    /// Answers a parked waiter (and disarms its deadline).
    pub fn reply(&mut self, w: &Waiter, result: Result<Value, HubError>) {
        self.timers.cancel(w.timer);
        self.replies.push((w.who.conn, w.who.id, result, Vec::new()));
    }

    /// Answers a parked waiter, handing over descriptors with the reply.
    pub fn reply_fds(&mut self, w: &Waiter, result: Result<Value, HubError>, fds: Vec<std::os::fd::OwnedFd>) {
        self.timers.cancel(w.timer);
        self.replies.push((w.who.conn, w.who.id, result, fds));
    }

    /// Answers the caller being handled with descriptors (the object then returns
    /// [`Answer::Parked`]: the reply is already on its way).
    pub fn reply_now_fds(&mut self, who: Caller, result: Result<Value, HubError>, fds: Vec<std::os::fd::OwnedFd>) {
        self.replies.push((who.conn, who.id, result, fds));
    }

    /// Takes the descriptors that came with the request (see [`Cx::incoming`]).
    pub fn take_incoming(&mut self) -> Vec<std::os::fd::OwnedFd> {
        std::mem::take(&mut self.incoming)
    }

    /// Parks a caller with a deadline. Returns `None` for `Wait::Never`: the caller should be
    /// answered `Timeout` right away (a `try_` form that would have had to wait).
    pub fn park(&mut self, who: Caller, wait: Wait) -> Option<Waiter> {
        if wait == Wait::Never {
            return None;
        }
        let timer = self
            .timers
            .arm(self.now, wait, Target::Object(self.obj), who.conn, who.id);
        Some(Waiter {
            who,
            timer,
            since: self.now,
        })
    }

    /// Is this waiter's connection still open (so that it can be served)?
    pub fn alive(&self, w: &Waiter) -> bool {
        !(self.closed)(w.who.conn)
    }
}

/// A FIFO of parked waiters, each with a payload `T` (what it asked for).
#[derive(Debug)]
pub(crate) struct WaitQueue<T> {
    q: VecDeque<(Waiter, T)>,
}

impl<T> Default for WaitQueue<T> {
    fn default() -> Self {
        WaitQueue { q: VecDeque::new() }
    }
}

impl<T> WaitQueue<T> {
    pub fn push(&mut self, w: Waiter, t: T) {
        self.q.push_back((w, t));
    }
    /// Puts a waiter back at the head (it was popped but could not be served).
    pub fn push_front(&mut self, w: Waiter, t: T) {
        self.q.push_front((w, t));
    }
    pub fn len(&self) -> usize {
        self.q.len()
    }
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }
    /// The first waiter whose connection is still open (closed ones are discarded).
    pub fn pop_live(&mut self, cx: &mut Cx<'_>) -> Option<(Waiter, T)> {
        while let Some((w, t)) = self.q.pop_front() {
            if cx.alive(&w) {
                return Some((w, t));
            }
            cx.timers.cancel(w.timer);
        }
        None
    }
    /// Removes the waiter for `(conn, id)`; returns it if it was there.
    pub fn remove(&mut self, conn: Token, id: ReqId) -> Option<(Waiter, T)> {
        let pos = self.q.iter().position(|(w, _)| w.who.conn == conn && w.who.id == id)?;
        self.q.remove(pos)
    }
    /// Removes every waiter matching `pred`, answering each with `why` if given.
    pub fn cancel(&mut self, cx: &mut Cx<'_>, pred: &dyn Fn(&Waiter) -> bool, why: Option<&HubError>) {
        let mut keep = VecDeque::with_capacity(self.q.len());
        for (w, t) in self.q.drain(..) {
            if pred(&w) {
                match why {
                    Some(e) => cx.reply(&w, Err(e.clone())),
                    None => cx.timers.cancel(w.timer),
                }
            } else {
                keep.push_back((w, t));
            }
        }
        self.q = keep;
    }
    /// Drains every waiter (for a reset or a break).
    pub fn drain_all(&mut self) -> Vec<(Waiter, T)> {
        self.q.drain(..).collect()
    }
    /// Iterates over the waiters.
    pub fn iter(&self) -> impl Iterator<Item = &(Waiter, T)> {
        self.q.iter()
    }
    /// Snapshot rows of the waiters (oldest first), waiting in `op`.
    pub fn rows(&self, op: &str, now: Instant) -> Vec<WaiterRow> {
        self.q.iter().map(|(w, _)| w.row(op, now)).collect()
    }
}

/// A hub object's behaviour.
pub(crate) trait Object: Send {
    /// A blocking call.
    fn call(&mut self, cx: &mut Cx<'_>, who: Caller, op: ObjOp) -> Answer;
    /// A one-way operation. The default treats it as a call whose answer is dropped.
    fn cast(&mut self, cx: &mut Cx<'_>, who: Caller, op: ObjOp) {
        let _ = self.call(cx, who, op);
    }
    /// The deadline of the waiter `(conn, id)` passed: forget it and return true (the hub then
    /// answers `Timeout`), or return false if it is no longer parked here.
    fn expire(&mut self, cx: &mut Cx<'_>, conn: Token, id: ReqId) -> bool;
    /// Removes waiters matching `pred`, answering them with `why` if given (connection closed:
    /// `None`; interrupt: `Some(Interrupted)`).
    fn cancel(&mut self, cx: &mut Cx<'_>, pred: &dyn Fn(&Waiter) -> bool, why: Option<&HubError>);
    /// A process ended: release what it held.
    fn proc_gone(&mut self, _cx: &mut Cx<'_>, _proc: ProcId) {}
    /// The object was given its id and secret (synchronisation objects bind their
    /// shared-memory slot).
    fn attach(&mut self, _id: ObjId, _secret: u64) {}
    /// (issue 11 item 18) The processes parked here waiting for something `holder` holds (a
    /// lock's acquirers while `holder` owns it).
    fn awaited_from(&self, _holder: ProcId) -> Vec<ProcId> {
        Vec::new()
    }
    /// What the object says about itself in a snapshot (`Op::Snapshot`).
    fn describe(&self, _now: Instant) -> ObjDesc {
        ObjDesc::kind("object")
    }
    /// The object has nothing more to do and may be reclaimed even if still held.
    fn finished(&self) -> bool {
        false
    }
    /// Re-arms a reusable reply slot for a new question (`Op::Ask`): a fresh secret, the
    /// process expected to answer, and whether it has already ended. `false` (nothing
    /// changes) for every other object.
    fn rearm(&mut self, _cx: &mut Cx<'_>, _token: u64, _watch: ProcId, _gone: bool) -> bool {
        false
    }
}

/// Builds a new object of `kind` for `creator`. `ended` says whether a process has already
/// ended (or never existed): a reply slot watching such a process fails at once.
pub(crate) fn create(
    kind: ObjectKind,
    creator: ProcId,
    ended: &dyn Fn(ProcId) -> bool,
) -> Result<(Box<dyn Object>, Lifetime), HubError> {
    match kind {
        ObjectKind::Oneshot { watch, token, reusable } => {
            let gone = watch.is_some_and(ended);
            Ok((
                Box::new(oneshot::Oneshot::new(watch, token, gone, reusable)),
                Lifetime::Owned(creator),
            ))
        }
        ObjectKind::Sync(k) => sync::create(k, creator),
        ObjectKind::Queue(k) => queue::create(k, creator),
        ObjectKind::Manager(k) => manager::create(k, creator),
    }
}

/// How an object's life ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifetime {
    /// Reclaimed when no process holds a handle (reference counted).
    Counted,
    /// Reclaimed when it is finished or its owner process ends.
    Owned(ProcId),
}

pub(crate) struct Slot {
    gen: u32,
    pub obj: Box<dyn Object>,
    lifetime: Lifetime,
    holders: BTreeSet<ProcId>,
    /// Every live process that has held a handle (the capability check). Unlike `holders`,
    /// a `Release` does not remove it: the process had the handle's secret, so it could
    /// retain again anyway, and a one-way `put` it wrote just before dropping its last handle
    /// (on another connection than the `Release`) must still be served.
    users: BTreeSet<ProcId>,
    inflight: i64,
    /// The creator's secret; `Retain` must present it.
    secret: u64,
    /// The process that created it (for snapshots).
    creator: ProcId,
}

/// The object table.
#[derive(Default)]
pub(crate) struct Objects {
    slab: Slab<Slot>,
    next_gen: u32,
}

fn split(id: ObjId) -> (usize, u32) {
    ((id.0 & 0xffff_ffff) as usize, (id.0 >> 32) as u32)
}

impl Objects {
    /// Adds an object; `creator` holds the first handle.
    pub fn insert(&mut self, obj: Box<dyn Object>, lifetime: Lifetime, creator: ProcId, secret: u64) -> ObjId {
        self.next_gen = self.next_gen.wrapping_add(1).max(1);
        let gen = self.next_gen;
        let mut holders = BTreeSet::new();
        if lifetime == Lifetime::Counted {
            holders.insert(creator);
        }
        let users = holders.clone();
        let idx = self.slab.insert(Slot {
            gen,
            obj,
            lifetime,
            holders,
            users,
            inflight: 0,
            secret,
            creator,
        });
        let id = ObjId((u64::from(gen) << 32) | idx as u64);
        if let Some(s) = self.slab.get_mut(idx) {
            s.obj.attach(id, secret);
        }
        id
    }

    pub fn get_mut(&mut self, id: ObjId) -> Option<&mut Slot> {
        let (idx, gen) = split(id);
        self.slab.get_mut(idx).filter(|s| s.gen == gen)
    }

    fn remove_if_unused(&mut self, id: ObjId) {
        let (idx, _) = split(id);
        let dead = match self.get_mut(id) {
            Some(s) => {
                s.obj.finished()
                    || match s.lifetime {
                        Lifetime::Counted => s.holders.is_empty() && s.inflight == 0,
                        Lifetime::Owned(_) => false,
                    }
            }
            None => false,
        };
        if dead {
            self.slab.remove(idx);
        }
    }

    /// Reclaims `id` if it has nothing left to do.
    pub fn settle(&mut self, id: ObjId) {
        self.remove_if_unused(id);
    }

    /// May `proc` operate on `id`? Only a process that holds (or held) a handle to it, or, for
    /// an owned object, its owner, may; `op` is let through when it carries its own proof (the
    /// secret of a reply slot). `false` also for an object that does not exist.
    pub fn may_use(&mut self, id: ObjId, proc: ProcId, op: &ObjOp) -> bool {
        let Some(s) = self.get_mut(id) else { return false };
        matches!(op, ObjOp::OneshotPut { .. }) || s.users.contains(&proc) || s.lifetime == Lifetime::Owned(proc)
    }

    /// `Retain` with the object's secret (from a handle's serialised form): a process cannot
    /// make itself a holder of an object from its id alone. False (nothing changes) otherwise.
    pub fn retain_with(&mut self, id: ObjId, proc: ProcId, secret: u64) -> bool {
        match self.get_mut(id) {
            Some(s) if s.secret == secret => {
                s.holders.insert(proc);
                s.users.insert(proc);
                true
            }
            _ => false,
        }
    }

    /// Does `proc` hold `id` (so that it may pass handles to it on: `InflightAdd`/`Done`)?
    pub fn holds(&mut self, id: ObjId, proc: ProcId) -> bool {
        self.get_mut(id).is_some_and(|s| s.holders.contains(&proc))
    }

    /// A process forked from `parent` starts with copies of its parent's handles (its memory
    /// is a copy), so it holds what the parent held.
    pub fn copy_holds(&mut self, parent: ProcId, child: ProcId) {
        for (_, s) in self.slab.iter_mut() {
            if s.holders.contains(&parent) {
                s.holders.insert(child);
                s.users.insert(child);
            }
        }
    }

    /// Reference-count bookkeeping (see `Cast::Release` and friends).
    pub fn release(&mut self, id: ObjId, proc: ProcId) {
        if let Some(s) = self.get_mut(id) {
            s.holders.remove(&proc);
        }
        self.remove_if_unused(id);
    }
    pub fn inflight(&mut self, id: ObjId, delta: i64) {
        if let Some(s) = self.get_mut(id) {
            s.inflight += delta;
        }
        self.remove_if_unused(id);
    }

    /// All live ids.
    pub fn ids(&self) -> Vec<ObjId> {
        self.slab
            .iter()
            .map(|(i, s)| ObjId((u64::from(s.gen) << 32) | i as u64))
            .collect()
    }

    /// Snapshot rows of every object, by id.
    pub fn rows(&self, now: Instant) -> Vec<ObjectRow> {
        let mut rows: Vec<ObjectRow> = self
            .slab
            .iter()
            .map(|(i, s)| {
                let d = s.obj.describe(now);
                ObjectRow {
                    id: ObjId((u64::from(s.gen) << 32) | i as u64),
                    kind: d.kind,
                    creator: s.creator,
                    handles: s.holders.iter().copied().collect(),
                    held_by: d.held_by,
                    depth: d.depth,
                    unfinished: d.unfinished,
                    waiters: d.waiters,
                    note: d.note,
                }
            })
            .collect();
        rows.sort_by_key(|r| r.id.0 & 0xffff_ffff);
        rows
    }

    /// A process ended: drop its holds and owned objects.
    pub fn drop_proc(&mut self, proc: ProcId) {
        for id in self.ids() {
            let owned_by_it = self.get_mut(id).is_some_and(|s| {
                s.holders.remove(&proc);
                s.users.remove(&proc);
                s.lifetime == Lifetime::Owned(proc)
            });
            if owned_by_it {
                let (idx, _) = split(id);
                self.slab.remove(idx);
            } else {
                self.remove_if_unused(id);
            }
        }
    }
}
