//! Queues served by the hub: [`Queue`], [`JoinableQueue`], [`SimpleQueue`].
//!
//! A queue is an object in the hub; a handle is its id plus this thread's hub connection, so
//! handles are `Clone + Serialize + Deserialize`: pass them to children as worker arguments, or
//! inside messages. Many producers and many consumers may use one queue from any processes.
//! Items are MessagePack-encoded `T`s; the hub never decodes them.
//!
//! # Guarantees
//! - **Durability.** Once [`Queue::put`] returns `Ok`, the item is in the hub (for an unbounded
//!   queue the put is one write of a one-way frame; for a bounded one, the hub has answered).
//!   It survives the producer exiting or being SIGKILLed on the very next line.
//! - **Order.** The items of one producer thread come out in the order they were put, for
//!   every consumer: each consumer thread, in any process, sees them in put order, also when
//!   several threads share one handle's prefetch buffer (one thread fetches from the hub at a
//!   time; the others take from the buffer first).
//! - **Delivery.** The hub never hands an item to a consumer whose connection has closed; the
//!   item goes to the next consumer in line.
//! - **Prefetch.** To cut round trips, a get may fetch several items when several are queued,
//!   keeping the extras in the handle (shared by its clones in this process; each process has
//!   its own). A consumer prefetches at most about 1 ms of its own measured processing time
//!   (and at most 256 items, 1 MiB), so a slow consumer takes one item at a time and never sits
//!   on work others could do. Prefetched items that a handle drops unused are given back to the
//!   front of the queue. If a consumer *dies* holding prefetched items: a [`JoinableQueue`]
//!   delivers them again (they were never `task_done`), a plain [`Queue`] loses them, together
//!   with the item the consumer was working on, as Python's would.
//! - **Redelivery** ([`JoinableQueue`]): items taken by a process that ends before calling
//!   `task_done` for them go back to the front of the queue: at-least-once. See
//!   [`JoinableQueue::task_done`] for the exact rules.
//! - **Close** is global: after [`Queue::close`] every put and get, in every process, is an
//!   error, and parked callers are woken with `Closed`. A process learns of the close on its
//!   next call to the hub; a one-way put (unbounded queue) from a process that has not learned
//!   it yet is dropped by the hub.

mod error;
mod raw;

use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

pub use error::{GetError, PutError, QueueError};
use raw::{Flavour, PutFail, RawQueue};

use crate::runtime::fdpass;
use crate::wire::proto::Wait;

/// Encodes an item; a `Connection` or shared memory inside attaches its descriptor, which
/// travels with the item through the hub (see [`raw::Encoded`]).
///
/// The item is encoded in this thread's scratch buffer, whose pages stay mapped from one put
/// to the next: a small item is then copied out at its exact size (one allocation, not a
/// vector grown by doubling), and a big one takes the buffer with it, which the put hands back
/// once the item is in its memory object (`raw::recycle`). A fresh buffer for each 1 MiB item
/// cost its 256 page faults, and freeing it a `munmap`, on every put.
fn encode<T: Serialize>(item: &T) -> Result<raw::Encoded, String> {
    let mut buf = raw::take_scratch();
    let (res, fds) = fdpass::collect(|| rmp_serde::encode::write(&mut buf, item));
    if let Err(e) = res {
        raw::recycle(buf);
        return Err(e.to_string());
    }
    let bytes = if raw::is_big(buf.len()) {
        ByteBuf::from(buf)
    } else {
        let exact = ByteBuf::from(buf.as_slice().to_vec());
        raw::recycle(buf);
        exact
    };
    Ok(raw::Encoded { bytes, fds })
}

/// Decodes an item with the descriptors that came with it (unclaimed ones are closed).
fn decode<T: DeserializeOwned>(item: raw::Encoded) -> Result<T, GetError> {
    let raw::Encoded { bytes, fds } = item;
    let decode = || rmp_serde::from_slice(&bytes).map_err(|e| GetError::Decode(e.to_string()));
    let value = if fds.is_empty() {
        decode()
    } else {
        fdpass::with_incoming(fds, decode)
    };
    // A big item was read into this thread's scratch buffer: it goes back for the next one.
    if raw::is_big(bytes.len()) {
        raw::recycle(bytes.into_vec());
    }
    value
}

fn fail<T>(f: PutFail, item: T) -> PutError<T> {
    match f {
        PutFail::Full => PutError::Full(item),
        PutFail::Closed => PutError::Closed(item),
        PutFail::Encode(m) => PutError::Encode(item, m),
        PutFail::Interrupted => PutError::Interrupted(item),
        PutFail::Call(e) => PutError::Call(item, e),
    }
}

/// A FIFO queue shared by processes (Python's `multiprocessing.Queue`).
///
/// Unbounded ([`Queue::new`]) or bounded ([`Queue::bounded`]). Blocking, `try_` and `_timeout`
/// forms of put and get; a put that fails hands the item back. See the [module
/// docs](crate::queue) for durability, ordering, delivery and prefetching.
///
/// # Example
/// ```
/// use multiproc::{Process, Queue};
///
/// #[multiproc::worker]
/// fn producer(q: Queue<String>) {
///     for i in 0..3 {
///         q.put(format!("item {i}")).unwrap();
///     }
/// }
///
/// let q = Queue::new()?;
/// let mut p = Process::new(producer(q.clone())).start()?;
/// for i in 0..3 {
///     assert_eq!(q.get()?, format!("item {i}"));
/// }
/// p.join()?;
/// assert!(q.try_get().unwrap_err().is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Queue<T> {
    raw: RawQueue,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    /// Another handle to the same queue. Clones in one process share the prefetch buffer.
    fn clone(&self) -> Self {
        Queue {
            raw: self.raw.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.raw.fmt(f)
    }
}

impl<T> Serialize for Queue<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for Queue<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Queue {
            raw: RawQueue::deserialize(d)?,
            _t: PhantomData,
        })
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// The hub object's id, as [`multiproc::snapshot()`](crate::snapshot) names it
    /// (`#N` in its tables is the low 32 bits).
    pub fn id(&self) -> crate::observe::ObjId {
        self.raw.id()
    }

    /// An unbounded queue.
    pub fn new() -> Result<Self, QueueError> {
        Self::with(Flavour::Queue, 0)
    }

    /// A queue holding at most `maxsize` items; `put` waits for room. `bounded(0)` is
    /// unbounded, as Python's `Queue(0)`.
    pub fn bounded(maxsize: usize) -> Result<Self, QueueError> {
        Self::with(Flavour::Queue, maxsize)
    }

    fn with(flavour: Flavour, maxsize: usize) -> Result<Self, QueueError> {
        Ok(Queue {
            raw: RawQueue::create(flavour, maxsize)?,
            _t: PhantomData,
        })
    }

    /// The capacity (0: unbounded).
    pub fn maxsize(&self) -> usize {
        self.raw.maxsize()
    }

    fn put_wait(&self, item: T, wait: Wait) -> Result<(), PutError<T>> {
        let bytes = match encode(&item) {
            Ok(b) => b,
            Err(e) => return Err(PutError::Encode(item, e)),
        };
        self.raw.put(vec![bytes], wait).map_err(|(_, f)| fail(f, item))
    }

    /// Puts an item, waiting for room if the queue is bounded and full. When it returns `Ok`,
    /// the item is in the hub (durable even if this process dies at once).
    ///
    /// An item may hold pipe [`Connection`](crate::pipe::Connection)s or shared memory
    /// ([`crate::shm`]): their descriptors travel with it, the hub keeps them with the queued
    /// item, and the consumer gets working handles (Python's `reduction`). Such an item is one
    /// round trip to put and one to get (never prefetched), and the put fails with
    /// [`PutError::Call`] (the item handed back) when the hub already holds
    /// [`HubLimits::max_held_fds`](crate::HubLimits) descriptors.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_wait(item, Wait::Forever)
    }

    /// Puts an item if there is room now, else [`PutError::Full`] (Python's `put_nowait`).
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_wait(item, Wait::Never)
    }

    /// Puts an item, waiting at most `timeout` for room ([`PutError::Full`] after that, as
    /// Python's `put(timeout=...)`). A zero timeout does not wait.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_wait(item, Wait::from_timeout(Some(timeout)))
    }

    /// Puts several items in order. On an unbounded queue they go in one write (one system
    /// call for the batch, durable when it returns); on a bounded one each waits for room in
    /// turn. If an item cannot be encoded nothing is put; on any error, the items not put are
    /// handed back (the first of them is the one that failed).
    pub fn put_many(&self, items: impl IntoIterator<Item = T>) -> Result<(), PutError<Vec<T>>> {
        let items: Vec<T> = items.into_iter().collect();
        let mut encoded = Vec::with_capacity(items.len());
        for it in &items {
            match encode(it) {
                Ok(b) => encoded.push(b),
                Err(e) => return Err(PutError::Encode(items, e)),
            }
        }
        self.raw.put(encoded, Wait::Forever).map_err(|(done, f)| {
            let rest: Vec<T> = items.into_iter().skip(done).collect();
            fail(f, rest)
        })
    }

    fn get_wait(&self, wait: Wait) -> Result<T, GetError> {
        let item = self.raw.get(wait)?;
        decode(item)
    }

    /// Takes the next item, waiting until one is there.
    pub fn get(&self) -> Result<T, GetError> {
        self.get_wait(Wait::Forever)
    }

    /// Takes an item if one is there, else [`GetError::Empty`] (Python's `get_nowait`).
    pub fn try_get(&self) -> Result<T, GetError> {
        self.get_wait(Wait::Never)
    }

    /// Takes the next item, waiting at most `timeout` ([`GetError::Empty`] after that, as
    /// Python's `get(timeout=...)`). A zero timeout does not wait, and reports the same error.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_wait(Wait::from_timeout(Some(timeout)))
    }

    /// The number of items in the queue (those waiting in the hub, plus any this handle has
    /// prefetched). Like Python's, it can be stale by the time it is read.
    pub fn qsize(&self) -> Result<usize, QueueError> {
        self.raw.qsize()
    }

    /// Is the queue empty? (`qsize() == 0`.)
    pub fn empty(&self) -> Result<bool, QueueError> {
        self.qsize().map(|n| n == 0)
    }

    /// Is a bounded queue at capacity? Always false for an unbounded queue.
    pub fn full(&self) -> Result<bool, QueueError> {
        self.raw.full()
    }

    /// Closes the queue, for every process: later puts fail with `Closed` (handing the item
    /// back), later gets with [`GetError::Closed`], and callers waiting in `put` or `get` are
    /// woken with the same errors. Items still queued stay counted by `qsize`.
    pub fn close(&self) -> Result<(), QueueError> {
        self.raw.close()
    }
}

/// The `.await` forms (feature `tokio`). They never block a runtime thread: each pending call
/// waits on its own pooled hub connection through tokio's reactor, so thousands can be pending
/// on one runtime (current-thread or multi-thread).
#[cfg(feature = "tokio")]
impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// [`get`](Self::get) as a future.
    ///
    /// **Cancel-safe:** dropping the future (a `tokio::time::timeout` or a `select!` branch
    /// that lost) loses no item. If the hub had not handed an item out yet, it forgets the
    /// waiter; if it had, the item goes back to the *front* of the queue.
    ///
    /// # Example
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let q = multiproc::Queue::<u32>::new()?;
    /// q.put_async(7).await?;
    /// assert_eq!(q.get_async().await?, 7);
    /// // With a deadline: the item (if any comes later) stays in the queue.
    /// let r = tokio::time::timeout(std::time::Duration::from_millis(10), q.get_async()).await;
    /// assert!(r.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn get_async(&self) -> Result<T, GetError> {
        decode(self.raw.get_async().await?)
    }

    /// [`put`](Self::put) as a future: waits for room in a bounded queue without blocking. On
    /// an unbounded queue it is one write, as `put`.
    ///
    /// Dropping the future while it waits for room withdraws the put; the item is then either
    /// in the queue (the hub had taken it just before) or not, never twice.
    ///
    /// # Example
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let q = multiproc::Queue::bounded(1)?;
    /// q.put_async("a".to_string()).await?;
    /// assert_eq!(q.get_async().await?, "a");
    /// # Ok(()) }
    /// ```
    pub async fn put_async(&self, item: T) -> Result<(), PutError<T>> {
        let bytes = match encode(&item) {
            Ok(b) => b,
            Err(e) => return Err(PutError::Encode(item, e)),
        };
        self.raw.put_async(bytes).await.map_err(|f| fail(f, item))
    }
}

#[cfg(feature = "tokio")]
impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// [`join`](Self::join) as a future (cancel-safe: dropping it only stops waiting).
    ///
    /// # Example
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let q = multiproc::JoinableQueue::<u32>::new()?;
    /// q.put(1)?;
    /// let _n = q.get_async().await?;
    /// q.task_done()?;
    /// q.join_async().await?;
    /// # Ok(()) }
    /// ```
    pub async fn join_async(&self) -> Result<(), QueueError> {
        self.q.raw.join_async().await
    }
}

/// A [`Queue`] that counts unfinished work (Python's `multiprocessing.JoinableQueue`).
///
/// Every `put` adds an unfinished item; consumers call [`task_done`](Self::task_done) when they
/// have finished one; [`join`](Self::join) waits until none is unfinished. All of [`Queue`]'s
/// methods are available (through `Deref`).
///
/// **Beyond Python: redelivery.** If a process takes items and ends (exits, panics, is
/// SIGKILLed) before calling `task_done` for them, they go back to the front of the queue and are
/// delivered again. Delivery is therefore at-least-once, and `join` still completes once the
/// work is really done.
///
/// # Example
/// ```
/// use multiproc::{JoinableQueue, Process};
///
/// #[multiproc::worker]
/// fn worker(q: JoinableQueue<u32>) {
///     while let Ok(n) = q.get() {
///         let _ = n * 2; // the work
///         q.task_done().unwrap();
///     }
/// }
///
/// let q = JoinableQueue::new()?;
/// let _w = Process::new(worker(q.clone())).daemon(true).start()?;
/// for n in 0..10 {
///     q.put(n)?;
/// }
/// q.join()?; // every item was taken and finished
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JoinableQueue<T> {
    q: Queue<T>,
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue { q: self.q.clone() }
    }
}

impl<T> std::fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.q.fmt(f)
    }
}

impl<T> Serialize for JoinableQueue<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.q.serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for JoinableQueue<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let q = Queue::<T>::deserialize(d)?;
        Ok(JoinableQueue { q })
    }
}

impl<T> std::ops::Deref for JoinableQueue<T> {
    type Target = Queue<T>;
    fn deref(&self) -> &Queue<T> {
        &self.q
    }
}

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// The hub object's id, as [`multiproc::snapshot()`](crate::snapshot) names it
    /// (`#N` in its tables is the low 32 bits).
    pub fn id(&self) -> crate::observe::ObjId {
        self.q.raw.id()
    }

    /// An unbounded joinable queue.
    pub fn new() -> Result<Self, QueueError> {
        Ok(JoinableQueue {
            q: Queue::with(Flavour::Joinable, 0)?,
        })
    }

    /// A joinable queue holding at most `maxsize` items (0: unbounded).
    pub fn bounded(maxsize: usize) -> Result<Self, QueueError> {
        Ok(JoinableQueue {
            q: Queue::with(Flavour::Joinable, maxsize)?,
        })
    }

    /// Marks one taken item as finished.
    ///
    /// The hub keeps track, per process, of the items it handed out and that are not finished:
    /// - a `task_done` from process P finishes the oldest item P took and has not finished;
    /// - if P has none, it finishes the oldest unfinished item taken by any process (work
    ///   passed on from one process to another);
    /// - if no taken item is unfinished anywhere, it fails with
    ///   [`QueueError::TooManyTaskDone`] and nothing changes (items still queued cannot be
    ///   finished before someone takes them).
    ///
    /// When this handle has handed out items it has not seen `task_done` for, `task_done` is a
    /// single one-way write (no round trip): the hub holds an item of this process, so it cannot
    /// be an over-call. Otherwise it asks the hub, which answers the over-call error. One
    /// consequence: if *another* process finished this process's items (the second rule) and
    /// this process then calls `task_done` once too often, its handle still believes it holds
    /// an item, so the surplus call is ignored by the hub rather than reported. The count never
    /// goes wrong either way.
    pub fn task_done(&self) -> Result<(), QueueError> {
        self.q.raw.task_done()
    }

    /// Waits until every item put has been taken and finished.
    pub fn join(&self) -> Result<(), QueueError> {
        self.q.raw.join(Wait::Forever)
    }

    /// [`join`](Self::join), giving up with [`QueueError::Timeout`] after `timeout`.
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), QueueError> {
        self.q.raw.join(Wait::from_timeout(Some(timeout)))
    }

    /// The plain [`Queue`] view of this queue (a clone of the handle).
    pub fn as_queue(&self) -> Queue<T> {
        self.q.clone()
    }
}

/// An unbounded queue with the small API of Python's `multiprocessing.SimpleQueue`: `put`,
/// `get`, `empty`, `close` (plus `try_get` and `get_timeout`).
///
/// # Example
/// ```
/// use multiproc::SimpleQueue;
///
/// let q = SimpleQueue::new()?;
/// assert!(q.empty()?);
/// q.put(5)?;
/// assert!(!q.empty()?);
/// assert_eq!(q.get()?, 5);
/// q.close()?;
/// assert!(q.put(6).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SimpleQueue<T> {
    q: Queue<T>,
}

impl<T> Clone for SimpleQueue<T> {
    fn clone(&self) -> Self {
        SimpleQueue { q: self.q.clone() }
    }
}

impl<T> std::fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.q.fmt(f)
    }
}

impl<T> Serialize for SimpleQueue<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.q.serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for SimpleQueue<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let q = Queue::<T>::deserialize(d)?;
        Ok(SimpleQueue { q })
    }
}

impl<T: Serialize + DeserializeOwned> SimpleQueue<T> {
    /// A new, empty queue.
    pub fn new() -> Result<Self, QueueError> {
        Ok(SimpleQueue {
            q: Queue::with(Flavour::Simple, 0)?,
        })
    }

    /// Puts an item (one write; durable when it returns).
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.q.put(item)
    }

    /// Takes the next item, waiting until one is there.
    pub fn get(&self) -> Result<T, GetError> {
        self.q.get()
    }

    /// Takes an item if one is there, else [`GetError::Empty`].
    pub fn try_get(&self) -> Result<T, GetError> {
        self.q.try_get()
    }

    /// Takes the next item, waiting at most `timeout`.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.q.get_timeout(timeout)
    }

    /// Is the queue empty?
    pub fn empty(&self) -> Result<bool, QueueError> {
        self.q.empty()
    }

    /// Closes the queue (see [`Queue::close`]).
    pub fn close(&self) -> Result<(), QueueError> {
        self.q.close()
    }
}
