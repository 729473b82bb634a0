//! Hub state machines of the queues: Queue, JoinableQueue and SimpleQueue are one object,
//! [`QueueObj`], with a capacity (0: unbounded) and optional task accounting.
//!
//! # Protocol
//! - **put.** On an unbounded queue, `put` is one-way ([`QueueOp::Put`], a cast): the producer
//!   returns once its frame is in the kernel's socket buffer, and the hub reads every frame a
//!   connection wrote before it acts on that connection closing, so the item is in the queue
//!   even if the producer is SIGKILLed on the next line. Casts from one connection are handled
//!   in order, so one producer's items stay in FIFO order. A bounded queue's put is a call
//!   ([`QueueOp::PutWait`]) parked FIFO until there is room, or until its deadline.
//! - **get.** [`QueueOp::Get`] asks for up to `max` items. If items are queued, the caller gets
//!   up to `max` of them at once (at most ~1 MiB), and when callers are parked the batch leaves
//!   at least one item per other parked caller. Otherwise the caller is parked, FIFO. A parked
//!   caller whose connection has closed is skipped ([`WaitQueue::pop_live`]): the hub never
//!   gives an item to a consumer that is already gone; it goes to the next one in line.
//! - **close.** Later puts and gets are refused with `Closed`; parked callers are answered
//!   `Closed`. One-way puts that arrive after the close are dropped.
//!
//! # Redelivery (JoinableQueue)
//! The hub keeps a copy of every item it hands out, filed under the taking *process*, until that
//! item is retired by a `task_done`:
//! - `task_done` from process P retires the oldest item P took and has not retired.
//! - If P holds none (it passed the work on to another process, say), it retires the oldest
//!   outstanding item of any process.
//! - If no item is outstanding anywhere, it is the over-call: `TooManyTaskDone`, nothing changes.
//!   (Items still *queued* cannot be retired: `task_done` counts work that was taken.)
//! - When P ends (exit, crash, SIGKILL), every item it took and did not retire goes back to the
//!   *front* of the queue, in its original order, and is delivered again: at-least-once.
//!
//! The unfinished count that `join` waits for is `queued + outstanding`, so `join` completes once
//! every item has been taken and retired, redelivered ones included.
//!
//! A plain Queue keeps no copies: items a consumer took are its own, and are lost with it if it
//! dies (as with Python, where they would be lost in the dead process too).

use std::collections::{HashMap, VecDeque};

use super::{Answer, Caller, Cx, Lifetime, ObjDesc, Object, WaitQueue, Waiter};
use crate::hub::held::{HeldFds, Item};
use crate::hub::Token;
use crate::wire::proto::{HubError, ObjOp, ProcId, ReqId, Value};
use crate::wire::queue_ops::{QueueKind, QueueOp, QueueStatus};

/// A batch handed to one consumer stops growing past this many bytes (it always holds at least
/// one item).
const BATCH_BYTES: usize = 1 << 20;

/// Builds a queue object.
pub(crate) fn create(kind: QueueKind, _creator: ProcId) -> Result<(Box<dyn Object>, Lifetime), HubError> {
    let (maxsize, joinable) = match kind {
        QueueKind::Queue { maxsize } => (maxsize, false),
        QueueKind::Joinable { maxsize } => (maxsize, true),
        QueueKind::Simple => (0, false),
    };
    let maxsize = usize::try_from(maxsize).unwrap_or(usize::MAX);
    Ok((Box::new(QueueObj::new(maxsize, joinable)), Lifetime::Counted))
}

/// Task accounting of a JoinableQueue.
#[derive(Default)]
struct Tasks {
    /// Items handed out and not yet retired, per taking process, oldest first, with a global
    /// sequence number (to find the oldest across processes).
    taken: HashMap<ProcId, VecDeque<(u64, Item)>>,
    outstanding: usize,
    next_seq: u64,
    joiners: WaitQueue<()>,
}

impl Tasks {
    /// Retires one item for `proc` (see the module docs); false for the over-call.
    fn retire(&mut self, proc: ProcId) -> bool {
        let from = match self.taken.get(&proc) {
            Some(q) if !q.is_empty() => proc,
            _ => match self
                .taken
                .iter()
                .filter_map(|(p, q)| q.front().map(|(s, _)| (*s, *p)))
                .min()
            {
                Some((_, p)) => p,
                None => return false,
            },
        };
        let Some(q) = self.taken.get_mut(&from) else {
            return false;
        };
        if q.pop_front().is_none() {
            return false;
        }
        if q.is_empty() {
            self.taken.remove(&from);
        } else {
            shrink_drained(q);
        }
        self.outstanding -= 1;
        true
    }
}

/// Below this capacity a drained buffer keeps its memory (no point in shrinking).
const SHRINK_MIN: usize = 4096;
/// A drained buffer at least this large also gives the freed heap back to the OS.
const TRIM_MIN: usize = 1 << 16;

/// (issue 11 item 19) A queue that held millions of items must not keep their memory once
/// drained: when a buffer is down to a quarter of its capacity, it is shrunk to twice its
/// length (so shrinking is amortised: a drain shrinks O(log n) times), and after a large
/// shrink the allocator is asked to return the free pages.
fn shrink_drained<T>(q: &mut VecDeque<T>) {
    let cap = q.capacity();
    if cap >= SHRINK_MIN && q.len() < cap / 4 {
        q.shrink_to((q.len() * 2).max(SHRINK_MIN / 4));
        if cap >= TRIM_MIN {
            crate::sys::mem::release_free_memory();
        }
    }
}

pub(crate) struct QueueObj {
    items: VecDeque<Item>,
    maxsize: usize,
    closed: bool,
    getters: WaitQueue<u32>,
    putters: WaitQueue<Item>,
    tasks: Option<Tasks>,
}

fn closed() -> Result<Value, HubError> {
    Ok(Value::U64(QueueStatus::Closed as u64))
}

impl QueueObj {
    fn new(maxsize: usize, joinable: bool) -> Self {
        QueueObj {
            items: VecDeque::new(),
            maxsize,
            closed: false,
            getters: WaitQueue::default(),
            putters: WaitQueue::default(),
            tasks: joinable.then(Tasks::default),
        }
    }

    fn has_room(&self) -> bool {
        self.maxsize == 0 || self.items.len() < self.maxsize
    }

    /// Takes up to `max` items (at least one, if any) for `proc`, recording them as taken, and
    /// builds the reply. An item with descriptors is handed out alone (`WithFds`, its
    /// descriptors attached) and never inside a batch, so a consumer never prefetches
    /// descriptors. A JoinableQueue keeps a duplicate of those descriptors with its copy; if
    /// the root cannot duplicate them, the item stays first in line and the get fails.
    fn take_batch(&mut self, proc: ProcId, max: usize) -> (Result<Value, HubError>, Vec<std::os::fd::OwnedFd>) {
        if self.items.front().is_some_and(|f| !f.fds.is_empty()) {
            let copy = match (&self.tasks, self.items.front()) {
                (Some(_), Some(front)) => match front.fds.duplicate() {
                    Ok(fds) => Some(Item {
                        bytes: front.bytes.clone(),
                        fds,
                    }),
                    Err(e) => return (Err(e), Vec::new()),
                },
                _ => None,
            };
            let Some(item) = self.items.pop_front() else {
                return (Ok(Value::Batch(Vec::new())), Vec::new());
            };
            if let (Some(t), Some(copy)) = (&mut self.tasks, copy) {
                let seq = t.next_seq;
                t.next_seq += 1;
                t.taken.entry(proc).or_default().push_back((seq, copy));
                t.outstanding += 1;
            }
            shrink_drained(&mut self.items);
            let nfds = item.fds.len() as u32;
            let reply = Value::WithFds {
                bytes: item.bytes,
                nfds,
            };
            return (Ok(reply), item.fds.release());
        }
        let mut out = Vec::new();
        let mut bytes = 0;
        while let Some(front) = self.items.front() {
            if !out.is_empty() && (out.len() >= max || bytes + front.len() > BATCH_BYTES || !front.fds.is_empty()) {
                break;
            }
            let Some(item) = self.items.pop_front() else { break };
            bytes += item.len();
            if let Some(t) = &mut self.tasks {
                let seq = t.next_seq;
                t.next_seq += 1;
                t.taken
                    .entry(proc)
                    .or_default()
                    .push_back((seq, Item::plain(item.bytes.clone())));
                t.outstanding += 1;
            }
            out.push(item.bytes);
        }
        shrink_drained(&mut self.items);
        (Ok(Value::Batch(out)), Vec::new())
    }

    /// Moves items along after any change: admits parked putters while there is room, serves
    /// parked getters while there are items, and wakes joiners when all work is done.
    fn pump(&mut self, cx: &mut Cx<'_>) {
        loop {
            let mut progress = false;
            while self.has_room() {
                let Some((w, item)) = self.putters.pop_live(cx) else {
                    break;
                };
                self.items.push_back(item);
                cx.reply(&w, Ok(Value::Unit));
                progress = true;
            }
            while !self.items.is_empty() {
                let Some((w, max)) = self.getters.pop_live(cx) else {
                    break;
                };
                // Leave one item for each consumer still parked behind this one.
                let share = self.items.len().saturating_sub(self.getters.len()).max(1);
                let (reply, fds) = self.take_batch(w.who.proc, share.min(max.max(1) as usize));
                let failed = reply.is_err();
                cx.reply_fds(&w, reply, fds);
                if failed {
                    // The root is out of descriptors: the next getters would fail the same way.
                    break;
                }
                progress = true;
            }
            if !progress {
                break;
            }
        }
        self.wake_joiners(cx);
    }

    fn unfinished(&self) -> usize {
        self.items.len() + self.tasks.as_ref().map_or(0, |t| t.outstanding)
    }

    fn wake_joiners(&mut self, cx: &mut Cx<'_>) {
        if self.unfinished() > 0 {
            return;
        }
        if let Some(t) = &mut self.tasks {
            while let Some((w, ())) = t.joiners.pop_live(cx) {
                cx.reply(&w, Ok(Value::Unit));
            }
        }
    }

    /// Puts items back at the front, in their order.
    fn requeue_front(&mut self, items: impl DoubleEndedIterator<Item = Item>) {
        for item in items.rev() {
            self.items.push_front(item);
        }
    }

    fn queue_call(&mut self, cx: &mut Cx<'_>, who: Caller, op: QueueOp) -> Answer {
        match op {
            QueueOp::Put(items) => {
                if !self.closed {
                    self.items.extend(items.into_iter().map(Item::plain));
                    self.pump(cx);
                }
                Answer::Now(Ok(Value::Unit))
            }
            QueueOp::PutWait { item, wait, nfds: _ } => {
                if self.closed {
                    return Answer::Now(closed());
                }
                // A JoinableQueue will keep a copy of the descriptors once the item is taken:
                // room for them is kept now, so that handing the item out cannot fail on it.
                let fds = cx.take_incoming();
                let reserve = if self.tasks.is_some() { fds.len() } else { 0 };
                let fds = match HeldFds::adopt(fds, reserve) {
                    Ok(fds) => fds,
                    Err(e) => return Answer::Now(Err(e)),
                };
                let item = Item { bytes: item, fds };
                if self.has_room() && self.putters.is_empty() {
                    self.items.push_back(item);
                    self.pump(cx);
                    return Answer::Now(Ok(Value::Unit));
                }
                match cx.park(who, wait) {
                    Some(w) => {
                        self.putters.push(w, item);
                        Answer::Parked
                    }
                    None => Answer::Now(Err(HubError::Timeout)),
                }
            }
            QueueOp::Get { max, wait } => {
                if self.closed {
                    return Answer::Now(closed());
                }
                if !self.items.is_empty() {
                    let (reply, fds) = self.take_batch(who.proc, max.max(1) as usize);
                    self.pump(cx);
                    if fds.is_empty() {
                        return Answer::Now(reply);
                    }
                    cx.reply_now_fds(who, reply, fds);
                    return Answer::Parked;
                }
                match cx.park(who, wait) {
                    Some(w) => {
                        self.getters.push(w, max);
                        Answer::Parked
                    }
                    None => Answer::Now(Err(HubError::Timeout)),
                }
            }
            QueueOp::Requeue(items) => {
                if let Some(t) = &mut self.tasks {
                    if let Some(q) = t.taken.get_mut(&who.proc) {
                        let n = items.len().min(q.len());
                        q.truncate(q.len() - n);
                        t.outstanding -= n;
                        if q.is_empty() {
                            t.taken.remove(&who.proc);
                        }
                    }
                }
                self.requeue_front(items.into_iter().map(Item::plain));
                self.pump(cx);
                Answer::Now(Ok(Value::Unit))
            }
            QueueOp::Len => Answer::Now(Ok(Value::U64(self.items.len() as u64))),
            QueueOp::Close => {
                if !self.closed {
                    self.closed = true;
                    for (w, _) in self.getters.drain_all() {
                        cx.reply(&w, closed());
                    }
                    for (w, _) in self.putters.drain_all() {
                        cx.reply(&w, closed());
                    }
                }
                Answer::Now(Ok(Value::Unit))
            }
            QueueOp::TaskDone => {
                let Some(t) = &mut self.tasks else {
                    return Answer::Now(Err(HubError::WrongKind));
                };
                if !t.retire(who.proc) {
                    return Answer::Now(Ok(Value::U64(QueueStatus::TooManyTaskDone as u64)));
                }
                self.wake_joiners(cx);
                Answer::Now(Ok(Value::Unit))
            }
            QueueOp::Join(wait) => {
                if self.tasks.is_none() {
                    return Answer::Now(Err(HubError::WrongKind));
                }
                if self.unfinished() == 0 {
                    return Answer::Now(Ok(Value::Unit));
                }
                match cx.park(who, wait) {
                    Some(w) => {
                        if let Some(t) = &mut self.tasks {
                            t.joiners.push(w, ());
                        }
                        Answer::Parked
                    }
                    None => Answer::Now(Err(HubError::Timeout)),
                }
            }
        }
    }
}

impl Object for QueueObj {
    fn call(&mut self, cx: &mut Cx<'_>, who: Caller, op: ObjOp) -> Answer {
        match op {
            ObjOp::Queue(op) => self.queue_call(cx, who, op),
            _ => Answer::Now(Err(HubError::WrongKind)),
        }
    }

    fn expire(&mut self, _cx: &mut Cx<'_>, conn: Token, id: ReqId) -> bool {
        self.getters.remove(conn, id).is_some()
            || self.putters.remove(conn, id).is_some()
            || self
                .tasks
                .as_mut()
                .is_some_and(|t| t.joiners.remove(conn, id).is_some())
    }

    fn cancel(&mut self, cx: &mut Cx<'_>, pred: &dyn Fn(&Waiter) -> bool, why: Option<&HubError>) {
        self.getters.cancel(cx, pred, why);
        self.putters.cancel(cx, pred, why);
        if let Some(t) = &mut self.tasks {
            t.joiners.cancel(cx, pred, why);
        }
        // A cancelled putter may have been first in line: the others may now fit.
        self.pump(cx);
    }

    fn describe(&self, now: std::time::Instant) -> ObjDesc {
        let mut waiters = self.getters.rows("get", now);
        waiters.extend(self.putters.rows("put", now));
        if let Some(t) = &self.tasks {
            waiters.extend(t.joiners.rows("join", now));
        }
        let mut note = Vec::new();
        if self.maxsize > 0 {
            note.push(format!("maxsize {}", self.maxsize));
        }
        if self.closed {
            note.push("closed".to_owned());
        }
        ObjDesc {
            kind: if self.tasks.is_some() { "JoinableQueue" } else { "Queue" }.to_owned(),
            held_by: Vec::new(),
            depth: Some(self.items.len() as u64),
            unfinished: self.tasks.as_ref().map(|t| (self.items.len() + t.outstanding) as u64),
            waiters,
            note: note.join(", "),
        }
    }

    fn proc_gone(&mut self, cx: &mut Cx<'_>, proc: ProcId) {
        let Some(t) = &mut self.tasks else { return };
        let Some(q) = t.taken.remove(&proc) else { return };
        t.outstanding -= q.len();
        if !q.is_empty() {
            crate::trace::mp_warn!(
                queue = cx.obj.0 & 0xffff_ffff,
                dead_proc = proc.0,
                items = q.len(),
                "JoinableQueue items taken by a dead process are delivered again"
            );
        }
        self.requeue_front(q.into_iter().map(|(_, item)| item));
        if !self.closed {
            self.pump(cx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_bytes::ByteBuf;

    #[test]
    fn retire_prefers_own_then_oldest() {
        let mut t = Tasks::default();
        for (p, s) in [(1, 0), (2, 1), (1, 2)] {
            t.taken
                .entry(ProcId(p))
                .or_default()
                .push_back((s, Item::plain(ByteBuf::from(vec![s as u8]))));
            t.outstanding += 1;
        }
        assert!(t.retire(ProcId(2)));
        assert!(t.retire(ProcId(3))); // oldest overall: proc 1's seq 0
        assert_eq!(t.taken[&ProcId(1)].front().map(|x| x.0), Some(2));
        assert!(t.retire(ProcId(1)));
        assert!(!t.retire(ProcId(1)));
        assert_eq!(t.outstanding, 0);
    }
}
