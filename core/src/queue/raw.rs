//! The untyped engine behind every queue handle: the hub object, and the process-local prefetch
//! buffer shared by clones of a handle.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::error::{GetError, QueueError};
use crate::error::CallError;
use crate::runtime::handle::{cast_via, ObjRef, Route};
use crate::runtime::{self};
use crate::sys;
use crate::wire::proto::{Cast, ObjId, ObjOp, ObjectKind, Value, Wait};
use crate::wire::queue_ops::{QueueKind, QueueOp, QueueStatus};

/// A consumer holds at most about this much of its own processing time in prefetched items, so
/// that prefetching never starves other consumers for longer than this.
const PREFETCH_BUDGET: Duration = Duration::from_millis(1);
/// The most items one get fetches.
const PREFETCH_MAX: u32 = 256;
/// One-way put frames are cut at about this size (a batch spans several frames in one write).
const PUT_FRAME_BYTES: usize = 1 << 20;

/// Items at least this big (encoded) travel in a sealed memory object of their own (issue 10,
/// large payloads): the producer writes them once (`pwrite`), the hub holds only the
/// descriptor (like a `Connection` in an item, within `HubLimits::max_held_fds`: past it the
/// item goes inline), and the consumer reads them once (`pread`). Not with
/// `MULTIPROC_TRANSPORT=socket`, not for remote queues, and not where memfd seals are missing.
const BIG_ITEM: usize = 64 << 10;
/// The item bytes that stand for a big item: `0xc1` (never used by MessagePack, so no encoded
/// value starts with it), `mpB`, then the length (`u64` LE); the object is the item's last
/// descriptor.
const BIG_MARK: [u8; 4] = [0xc1, b'm', b'p', b'B'];

fn big_enabled() -> bool {
    crate::wire::ring::rings_enabled()
}

/// Whether an encoded item of `len` bytes is big (see [`BIG_ITEM`]).
pub(crate) fn is_big(len: usize) -> bool {
    len >= BIG_ITEM
}

/// A thread keeps at most this much scratch capacity for encoding items (see `take_scratch`).
const SCRATCH_MAX: usize = 8 << 20;

thread_local! {
    /// This thread's buffer to encode items in, between puts.
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// This thread's scratch buffer, empty (a new one if it is in use or was never made).
pub(crate) fn take_scratch() -> Vec<u8> {
    let mut b = SCRATCH.try_with(std::cell::Cell::take).unwrap_or_default();
    b.clear();
    b
}

/// Keeps `buf` as this thread's scratch buffer if it is larger than the one kept (and at most
/// [`SCRATCH_MAX`]); frees it otherwise.
pub(crate) fn recycle(buf: Vec<u8>) {
    if buf.capacity() > SCRATCH_MAX {
        return;
    }
    let _ = SCRATCH.try_with(|s| {
        let kept = s.take();
        s.set(if kept.capacity() >= buf.capacity() { kept } else { buf });
    });
}

/// The marker and object for a big item, if it can go that way.
fn to_big(bytes: &[u8]) -> Option<(ByteBuf, OwnedFd)> {
    let fd = sys::mem::sealed_copy_of("multiproc-item", bytes).ok()?;
    let mut mark = BIG_MARK.to_vec();
    mark.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    Some((ByteBuf::from(mark), fd))
}

/// Undoes [`to_big`] on a received item: the content of its last descriptor replaces the
/// marker. Items that are not big are returned as they are.
fn from_big(item: Encoded) -> Result<Encoded, CallError> {
    let b = &item.bytes;
    if b.len() != 12 || b[..4] != BIG_MARK || item.fds.is_empty() {
        return Ok(item);
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&b[4..12]);
    let len =
        usize::try_from(u64::from_le_bytes(len)).map_err(|_| CallError::Protocol("a big item's length".into()))?;
    let mut fds = item.fds;
    let Some(fd) = fds.pop() else {
        return Err(CallError::Protocol("a big item without its memory".into()));
    };
    // Read into this thread's scratch buffer, which the typed get hands back once the item
    // is decoded (`recycle`).
    let mut bytes = take_scratch();
    if let Err(e) = sys::mem::read_whole_into(fd.as_fd(), len, &mut bytes) {
        recycle(bytes);
        return Err(CallError::Protocol(format!("a big item's memory cannot be read: {e}")));
    }
    Ok(Encoded {
        bytes: ByteBuf::from(bytes),
        fds,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Flavour {
    Queue,
    Joinable,
    Simple,
}

/// What a process knows about a queue locally, shared by the clones of a handle.
struct Local {
    obj: ObjId,
    /// Where the object lives (a remote manager's queue is served by another program's hub).
    route: Route,
    /// The process that owns the buffer (a `Fork` child inherits a copy it must not use).
    pid: i32,
    st: Mutex<LocalState>,
    /// Signalled when a fetch from the hub ends (see `LocalState::fetching`).
    fetched: Condvar,
}

#[derive(Default)]
struct LocalState {
    /// Items fetched from the hub and not handed out yet, in order.
    buf: VecDeque<ByteBuf>,
    /// A thread of this process is fetching from the hub. Only one at a time may: two batches
    /// fetched by two threads would be handed out interleaved (an item of the second batch
    /// before the rest of the first), breaking a producer's FIFO order for the threads that
    /// see both. The others wait for the fetch to end and take from `buf` first.
    fetching: bool,
    /// This process closed the queue, or the hub said it is closed.
    closed: bool,
    /// JoinableQueue: items handed out through this handle and not `task_done`d yet.
    taken: usize,
    /// When the last get returned (to measure the consumer's processing time per item).
    last_return: Option<Instant>,
    /// Smoothed processing time per item, in nanoseconds.
    gap_ns: Option<f64>,
    /// Async gets waiting for another fetch to end (feature `tokio`), woken with `fetched`.
    #[cfg(feature = "tokio")]
    fetch_wakers: Vec<std::task::Waker>,
}

impl LocalState {
    fn prefetch(&self) -> u32 {
        match self.gap_ns {
            None => 1,
            Some(g) => {
                let n = PREFETCH_BUDGET.as_nanos() as f64 / g.max(1.0);
                n.clamp(1.0, PREFETCH_MAX as f64) as u32
            }
        }
    }

    fn note_get_start(&mut self, now: Instant) {
        if let Some(last) = self.last_return {
            let gap = now.saturating_duration_since(last).as_nanos() as f64;
            self.gap_ns = Some(match self.gap_ns {
                None => gap,
                Some(g) => 0.75 * g + 0.25 * gap,
            });
        }
    }
}

impl Local {
    fn lock(&self) -> MutexGuard<'_, LocalState> {
        let mut st = self.st.lock().unwrap_or_else(|p| p.into_inner());
        if self.pid != sys::proc::getpid() {
            // A forked copy: the buffered items belong to the parent.
            st.buf.clear();
            st.taken = 0;
            st.fetching = false;
        }
        st
    }
}

/// Ends a fetch from the hub, however it ends, and wakes the threads waiting for it.
struct FetchGuard<'a>(&'a Local);

impl Drop for FetchGuard<'_> {
    fn drop(&mut self) {
        #[cfg_attr(not(feature = "tokio"), allow(unused_mut))]
        let mut st = self.0.lock();
        st.fetching = false;
        #[cfg(feature = "tokio")]
        let wakers = std::mem::take(&mut st.fetch_wakers);
        drop(st);
        self.0.fetched.notify_all();
        #[cfg(feature = "tokio")]
        wakers.into_iter().for_each(std::task::Waker::wake);
    }
}

/// How often a thread waiting for another thread's fetch looks at its deadline and at Ctrl-C.
const FETCH_SLICE: Duration = Duration::from_millis(50);

impl Drop for Local {
    fn drop(&mut self) {
        if self.pid != sys::proc::getpid() {
            return;
        }
        let st = self.st.get_mut().unwrap_or_else(|p| p.into_inner());
        if !st.buf.is_empty() {
            let items: Vec<ByteBuf> = st.buf.drain(..).collect();
            let _ = cast_via(
                &self.route,
                vec![Cast::Object {
                    obj: self.obj,
                    op: ObjOp::Queue(QueueOp::Requeue(items)),
                }],
            );
        }
    }
}

/// An untyped queue handle.
pub(crate) struct RawQueue {
    local: Arc<Local>,
    obj: ObjRef,
    maxsize: usize,
    flavour: Flavour,
}

impl Clone for RawQueue {
    fn clone(&self) -> Self {
        RawQueue {
            local: self.local.clone(),
            obj: self.obj.clone(),
            maxsize: self.maxsize,
            flavour: self.flavour,
        }
    }
}

fn new_local(obj: &ObjRef) -> Arc<Local> {
    Arc::new(Local {
        obj: obj.id(),
        route: obj.route().clone(),
        pid: sys::proc::getpid(),
        st: Mutex::new(LocalState::default()),
        fetched: Condvar::new(),
    })
}

/// An encoded item and the descriptors its handles attached (usually none). Items with
/// descriptors are put one call each (`PutWait` with the descriptors on the frame) and come
/// back one per get, never prefetched.
pub(crate) struct Encoded {
    pub bytes: ByteBuf,
    pub fds: Vec<OwnedFd>,
}

impl Encoded {
    fn plain(bytes: ByteBuf) -> Encoded {
        Encoded { bytes, fds: Vec::new() }
    }
}

/// A failed put, before the typed layer gives the item back.
pub(crate) enum PutFail {
    Full,
    Closed,
    Encode(String),
    Interrupted,
    Call(CallError),
}

fn put_fail(e: CallError) -> PutFail {
    match e {
        e if e.is_interrupted() => PutFail::Interrupted,
        e if e.is_timeout() => PutFail::Full,
        CallError::Encode(f) => PutFail::Encode(f.to_string()),
        e => PutFail::Call(e),
    }
}

fn unexpected(v: Value) -> CallError {
    CallError::Protocol(format!("unexpected reply from a queue: {v:?}"))
}

impl RawQueue {
    pub(crate) fn id(&self) -> crate::wire::proto::ObjId {
        self.obj.id()
    }

    pub fn create(flavour: Flavour, maxsize: usize) -> Result<RawQueue, QueueError> {
        let kind = match flavour {
            Flavour::Queue => QueueKind::Queue {
                maxsize: maxsize as u64,
            },
            Flavour::Joinable => QueueKind::Joinable {
                maxsize: maxsize as u64,
            },
            Flavour::Simple => QueueKind::Simple,
        };
        let obj = ObjRef::create(ObjectKind::Queue(kind))?;
        Ok(RawQueue {
            local: new_local(&obj),
            obj,
            maxsize,
            flavour,
        })
    }

    pub fn maxsize(&self) -> usize {
        self.maxsize
    }

    fn op(&self, op: QueueOp, wait: Wait) -> Result<Value, CallError> {
        self.obj.call(ObjOp::Queue(op), runtime::deadline_of(wait))
    }

    /// A call that may carry descriptors both ways (local queues only: a remote manager's
    /// queue never holds items with descriptors).
    fn op_fds(&self, op: QueueOp, fds: &[BorrowedFd<'_>], wait: Wait) -> Result<(Value, Vec<OwnedFd>), CallError> {
        if self.obj.is_remote() {
            return self.op(op, wait).map(|v| (v, Vec::new()));
        }
        let op = crate::wire::proto::Op::Object {
            obj: self.obj.id(),
            op: ObjOp::Queue(op),
        };
        runtime::call_fds(op, fds, runtime::deadline_of(wait))
    }

    /// Puts encoded items: one write for an unbounded queue (durable once it returns); one
    /// call per item, waiting as `wait` says, for a bounded one. On failure, returns how many
    /// items went in.
    pub fn put(&self, items: Vec<Encoded>, wait: Wait) -> Result<(), (usize, PutFail)> {
        if self.local.lock().closed {
            return Err((0, PutFail::Closed));
        }
        let big = big_enabled() && !self.obj.is_remote() && items.iter().any(|it| it.bytes.len() >= BIG_ITEM);
        let with_fds = big || items.iter().any(|it| !it.fds.is_empty());
        if with_fds && !big && self.obj.is_remote() {
            return Err((
                0,
                PutFail::Encode(
                    "a Connection or shared memory cannot be put in a remote manager's queue (the descriptor \
                     cannot cross to another program's hub); send it on a pipe Connection instead"
                        .into(),
                ),
            ));
        }
        if self.maxsize == 0 && !with_fds {
            let mut casts = Vec::new();
            let mut frame = Vec::new();
            let mut bytes = 0;
            for it in items.into_iter().map(|it| it.bytes) {
                bytes += it.len();
                frame.push(it);
                if bytes >= PUT_FRAME_BYTES {
                    casts.push(self.put_cast(std::mem::take(&mut frame)));
                    bytes = 0;
                }
            }
            if !frame.is_empty() {
                casts.push(self.put_cast(frame));
            }
            let res = cast_via(self.obj.route(), casts);
            return res.map_err(|e| (0, put_fail(e)));
        }
        for (i, mut item) in items.into_iter().enumerate() {
            let as_big = (big && item.bytes.len() >= BIG_ITEM)
                .then(|| to_big(&item.bytes))
                .flatten();
            let res = if let Some((mark, mem)) = as_big {
                let mut fds: Vec<BorrowedFd<'_>> = item.fds.iter().map(|f| f.as_fd()).collect();
                fds.push(mem.as_fd());
                let op = QueueOp::PutWait {
                    item: mark,
                    wait,
                    nfds: fds.len() as u32,
                };
                let res = match self.op_fds(op, &fds, wait).map(|(v, _)| v) {
                    // The hub holds too many descriptors: send this one inline.
                    Err(CallError::Hub(crate::wire::proto::HubError::Limit(m)))
                        if m.contains(crate::wire::proto::HELD_FDS_LIMIT) && item.fds.is_empty() =>
                    {
                        self.op(
                            QueueOp::PutWait {
                                item: std::mem::take(&mut item.bytes),
                                wait,
                                nfds: 0,
                            },
                            wait,
                        )
                    }
                    other => other,
                };
                // The bytes are in the memory object (or were sent inline): the encoding
                // buffer goes back to this thread for the next put.
                recycle(std::mem::take(&mut item.bytes).into_vec());
                res
            } else if item.fds.is_empty() {
                self.op(
                    QueueOp::PutWait {
                        item: item.bytes,
                        wait,
                        nfds: 0,
                    },
                    wait,
                )
            } else {
                // Durable once the hub answers: it holds the item and its descriptors (our
                // copies are closed when `item.fds` drops).
                let op = QueueOp::PutWait {
                    item: item.bytes,
                    wait,
                    nfds: item.fds.len() as u32,
                };
                let fds: Vec<BorrowedFd<'_>> = item.fds.iter().map(|f| f.as_fd()).collect();
                self.op_fds(op, &fds, wait).map(|(v, _)| v)
            };
            match res {
                Ok(Value::Unit) => {}
                Ok(Value::U64(c)) if QueueStatus::from_code(c) == Some(QueueStatus::Closed) => {
                    self.local.lock().closed = true;
                    return Err((i, PutFail::Closed));
                }
                Ok(v) => return Err((i, PutFail::Call(unexpected(v)))),
                Err(e) => return Err((i, put_fail(e))),
            }
        }
        Ok(())
    }

    fn put_cast(&self, items: Vec<ByteBuf>) -> Cast {
        Cast::Object {
            obj: self.obj.id(),
            op: ObjOp::Queue(QueueOp::Put(items)),
        }
    }

    /// Takes one encoded item, from the local buffer or the hub.
    ///
    /// Items leave this process's buffer in the order the hub handed them out, whichever
    /// thread fetched them, so every thread sees each producer's items in put order.
    pub fn get(&self, wait: Wait) -> Result<Encoded, GetError> {
        let joinable = self.flavour == Flavour::Joinable;
        let watch = crate::InterruptWatch::new();
        let deadline = runtime::deadline_of(wait);
        let max = {
            let mut st = self.local.lock();
            let start = Instant::now();
            st.note_get_start(start);
            let mut waited = false;
            loop {
                if st.closed {
                    return Err(GetError::Closed);
                }
                if let Some(b) = st.buf.pop_front() {
                    if joinable {
                        st.taken += 1;
                    }
                    // A pop from the buffer takes nanoseconds: unless it waited for another
                    // thread's fetch, its start is its end (one clock read saved per get).
                    st.last_return = Some(if waited { Instant::now() } else { start });
                    return Ok(Encoded::plain(b));
                }
                if !st.fetching {
                    st.fetching = true;
                    break st.prefetch();
                }
                // Another thread is fetching: wait for its batch rather than fetch past it.
                if wait == Wait::Never {
                    return Err(GetError::Empty);
                }
                if watch.fired() {
                    return Err(GetError::Interrupted);
                }
                let mut slice = FETCH_SLICE;
                if let Some(d) = deadline {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(GetError::Empty);
                    }
                    slice = slice.min(left);
                }
                st = self
                    .local
                    .fetched
                    .wait_timeout(st, slice)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                waited = true;
            }
        };
        let _fetch = FetchGuard(&self.local);
        // The time spent waiting for another thread's fetch counts against the deadline.
        let wait = match (wait, deadline) {
            (Wait::Micros(_), Some(d)) => Wait::Micros(d.saturating_duration_since(Instant::now()).as_micros() as u64),
            (w, _) => w,
        };
        self.take_reply(joinable, self.op_fds(QueueOp::Get { max, wait }, &[], wait))
    }

    /// What a `Get` answered: an item with its descriptors (alone), or a batch (the first is
    /// returned, the rest prefetched here), or the queue's closing; the blocking and `.await`
    /// gets share it.
    fn take_reply(&self, joinable: bool, r: Result<(Value, Vec<OwnedFd>), CallError>) -> Result<Encoded, GetError> {
        match r {
            Ok((Value::WithFds { bytes, .. }, fds)) => {
                let item = from_big(Encoded { bytes, fds });
                let mut st = self.local.lock();
                if joinable {
                    st.taken += 1;
                }
                st.last_return = Some(Instant::now());
                drop(st);
                item.map_err(GetError::Call)
            }
            Ok((Value::Batch(batch), _)) => {
                let mut it = batch.into_iter();
                let first = it
                    .next()
                    .ok_or_else(|| GetError::Call(CallError::Protocol("a queue sent an empty batch".into())))?;
                let mut st = self.local.lock();
                st.buf.extend(it);
                if joinable {
                    st.taken += 1;
                }
                st.last_return = Some(Instant::now());
                Ok(Encoded::plain(first))
            }
            Ok((Value::U64(c), _)) if QueueStatus::from_code(c) == Some(QueueStatus::Closed) => {
                self.local.lock().closed = true;
                Err(GetError::Closed)
            }
            Ok((v, _)) => Err(GetError::Call(unexpected(v))),
            Err(e) if e.is_interrupted() => Err(GetError::Interrupted),
            // Empty whatever the wait (`try_get`, `get_timeout(0)` and `get_timeout(d)` alike),
            // as Python's `queue.Empty` and as `put`'s `Full`.
            Err(e) if e.is_timeout() => Err(GetError::Empty),
            Err(e) => Err(GetError::Call(e)),
        }
    }

    /// Items queued in the hub plus those prefetched here.
    pub fn qsize(&self) -> Result<usize, QueueError> {
        let local = self.local.lock().buf.len();
        match self.op(QueueOp::Len, Wait::Forever)? {
            Value::U64(n) => Ok(n as usize + local),
            v => Err(QueueError::Call(unexpected(v))),
        }
    }

    /// Is the bounded queue at capacity (in the hub)?
    pub fn full(&self) -> Result<bool, QueueError> {
        if self.maxsize == 0 {
            return Ok(false);
        }
        match self.op(QueueOp::Len, Wait::Forever)? {
            Value::U64(n) => Ok(n as usize >= self.maxsize),
            v => Err(QueueError::Call(unexpected(v))),
        }
    }

    /// Closes the queue for everyone. Prefetched items go back to the hub first.
    pub fn close(&self) -> Result<(), QueueError> {
        let items: Vec<ByteBuf> = {
            let mut st = self.local.lock();
            st.closed = true;
            st.buf.drain(..).collect()
        };
        if !items.is_empty() {
            self.obj.cast(ObjOp::Queue(QueueOp::Requeue(items)))?;
        }
        match self.op(QueueOp::Close, Wait::Forever)? {
            Value::Unit => Ok(()),
            v => Err(QueueError::Call(unexpected(v))),
        }
    }

    /// JoinableQueue: one taken item is finished.
    pub fn task_done(&self) -> Result<(), QueueError> {
        let known = {
            let mut st = self.local.lock();
            if st.taken > 0 {
                st.taken -= 1;
                true
            } else {
                false
            }
        };
        if known {
            // The hub holds an item this process took: it cannot be an over-call, so no answer
            // is needed (one write, no round trip).
            return Ok(self.obj.cast(ObjOp::Queue(QueueOp::TaskDone))?);
        }
        match self.op(QueueOp::TaskDone, Wait::Forever)? {
            Value::Unit => Ok(()),
            Value::U64(c) if QueueStatus::from_code(c) == Some(QueueStatus::TooManyTaskDone) => {
                Err(QueueError::TooManyTaskDone)
            }
            v => Err(QueueError::Call(unexpected(v))),
        }
    }

    /// JoinableQueue: waits until every item put has been finished.
    pub fn join(&self, wait: Wait) -> Result<(), QueueError> {
        match self.op(QueueOp::Join(wait), wait) {
            Ok(Value::Unit) => Ok(()),
            Ok(v) => Err(QueueError::Call(unexpected(v))),
            Err(e) => Err(e.into()),
        }
    }
}

/// The `.await` forms (feature `tokio`): one hub call each, on a pooled non-blocking connection
/// (see `runtime::aio`), never a blocked runtime thread. A get takes one item at a time (no
/// prefetch, so concurrent tasks do not queue behind one fetch); items already prefetched here
/// by a blocking get come first.
#[cfg(feature = "tokio")]
impl RawQueue {
    /// Takes one encoded item. Cancel-safe: if the future is dropped after the hub handed the
    /// item out, the item goes back to the front of the queue (`Requeue`; a prefetched batch
    /// goes back whole).
    ///
    /// It keeps the blocking get's rules: one fetch from the hub at a time per process (the
    /// others wait for it, without blocking, and take from the buffer first), so every task
    /// sees each producer's items in put order, and the same adaptive prefetch.
    pub async fn get_async(&self) -> Result<Encoded, GetError> {
        let joinable = self.flavour == Flavour::Joinable;
        let step = std::future::poll_fn(|cx| {
            let mut st = self.local.lock();
            if st.closed {
                return std::task::Poll::Ready(Err(GetError::Closed));
            }
            if let Some(b) = st.buf.pop_front() {
                if joinable {
                    st.taken += 1;
                }
                st.last_return = Some(Instant::now());
                return std::task::Poll::Ready(Ok(Some(b)));
            }
            if !st.fetching {
                st.fetching = true;
                st.note_get_start(Instant::now());
                return std::task::Poll::Ready(Ok(None));
            }
            // Another thread or task is fetching: wait for its batch.
            st.fetch_wakers.push(cx.waker().clone());
            std::task::Poll::Pending
        })
        .await?;
        let max = match step {
            Some(b) => return Ok(Encoded::plain(b)),
            None => self.local.lock().prefetch(),
        };
        let _fetch = FetchGuard(&self.local);
        let back = self.obj.clone();
        let undo: runtime::aio::Undo = Box::new(move |v| {
            if let Value::Batch(items) = v {
                let _ = back.cast(ObjOp::Queue(QueueOp::Requeue(items)));
            }
        });
        let op = ObjOp::Queue(QueueOp::Get {
            max,
            wait: Wait::Forever,
        });
        self.take_reply(joinable, self.obj.call_fds_async(op, Some(undo)).await)
    }

    /// Puts one encoded item, waiting for room in a bounded queue without blocking (an
    /// unbounded queue's put is one write and never waits).
    pub async fn put_async(&self, item: Encoded) -> Result<(), PutFail> {
        if self.local.lock().closed {
            return Err(PutFail::Closed);
        }
        if !item.fds.is_empty() {
            return Err(PutFail::Encode(
                "the .await form of put cannot carry descriptors (a Connection, shared memory) \
                 yet; use the blocking put (for example inside tokio::task::spawn_blocking)"
                    .into(),
            ));
        }
        let item = item.bytes;
        if self.maxsize == 0 {
            return cast_via(self.obj.route(), vec![self.put_cast(vec![item])]).map_err(put_fail);
        }
        let op = ObjOp::Queue(QueueOp::PutWait {
            item,
            wait: Wait::Forever,
            nfds: 0,
        });
        match self.obj.call_async(op, None).await {
            Ok(Value::Unit) => Ok(()),
            Ok(Value::U64(c)) if QueueStatus::from_code(c) == Some(QueueStatus::Closed) => {
                self.local.lock().closed = true;
                Err(PutFail::Closed)
            }
            Ok(v) => Err(PutFail::Call(unexpected(v))),
            Err(e) => Err(put_fail(e)),
        }
    }

    /// JoinableQueue: waits until every item put has been finished.
    pub async fn join_async(&self) -> Result<(), QueueError> {
        match self
            .obj
            .call_async(ObjOp::Queue(QueueOp::Join(Wait::Forever)), None)
            .await
        {
            Ok(Value::Unit) => Ok(()),
            Ok(v) => Err(QueueError::Call(unexpected(v))),
            Err(e) => Err(e.into()),
        }
    }
}

impl Serialize for RawQueue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&self.obj, self.maxsize as u64, self.flavour).serialize(s)
    }
}

impl<'de> Deserialize<'de> for RawQueue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (obj, maxsize, flavour) = <(ObjRef, u64, Flavour)>::deserialize(d)?;
        Ok(RawQueue {
            local: new_local(&obj),
            obj,
            maxsize: usize::try_from(maxsize).unwrap_or(usize::MAX),
            flavour,
        })
    }
}

impl std::fmt::Debug for RawQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("id", &self.obj.id().0)
            .field("maxsize", &self.maxsize)
            .field("kind", &self.flavour)
            .finish()
    }
}
