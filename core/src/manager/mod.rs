//! Python's `multiprocessing.Manager`: shared dicts, lists, values and namespaces reached
//! through proxies from every process.
//!
//! ```
//! use multiproc::manager::{Dict, Manager};
//! use multiproc::Process;
//!
//! #[multiproc::worker]
//! fn count_down(d: Dict<String, i64>) {
//!     // Python's `d['count'] -= 1` is a race; this is one atomic step in the Manager.
//!     d.fetch_sub(&"count".to_string(), 1).unwrap();
//! }
//!
//! let m = Manager::new()?;
//! let d = m.dict::<String, i64>()?;
//! d.insert("count".to_string(), 10)?;
//! let mut kids = Vec::new();
//! for _ in 0..3 {
//!     kids.push(Process::new(count_down(d.clone())).start()?);
//! }
//! for mut k in kids {
//!     k.join()?;
//! }
//! assert_eq!(d.get(&"count".to_string())?, Some(7));
//! m.shutdown()?;
//! assert!(d.len().unwrap_err().is_gone());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Where the Manager lives
//! **In the hub** (the event loop in the root process that every process is connected to).
//! Python starts a server process per Manager; multiproc already has one server that every
//! process talks to, so each shared container is a hub object and each proxy call is one
//! request/reply on the calling thread's own connection (a few microseconds, no pickling of
//! method names, no extra process). Consequences:
//! - The process that serves the Manager is the **root** process. If it dies, every proxy call
//!   fails with [`ManagerError::ManagerGone`] — and the program's other processes are killed
//!   anyway (no orphans).
//! - **Remote clients** (Python's `BaseManager(address, authkey)`, from another program) are
//!   not supported. Adding them would not change the containers: the hub would listen on a
//!   Unix socket in a `0700` directory (or TCP), authenticate each peer (`SO_PEERCRED` for the
//!   uid, then an HMAC challenge on the authkey, as Python's `Client`/`Listener` do), and then
//!   accept the same operations.
//!
//! # Proxies
//! [`Dict`], [`List`], [`ValueProxy`] and [`Namespace`] are typed handles: `Clone +
//! Serialize + Deserialize` (pass them to children as worker arguments, in queues, in mailbox
//! messages, or inside another container's values). Keys and values are stored as MessagePack;
//! the hub compares **keys by their encoded bytes**, so a key type must serialise
//! deterministically (integers, strings, tuples and structs of them do; a `HashMap` does not).
//! Insertion order is kept, as in Python's dict.
//!
//! Every operation is atomic in the hub: a process killed between two operations (even by
//! SIGKILL) never leaves a container half-updated. For read-modify-write without a lock,
//! use [`Dict::fetch_add`]/[`Dict::fetch_sub`] (integers and floats, decoded by the hub) or
//! [`Dict::compare_and_swap`]/[`ValueProxy::update`] (any type; compares encoded bytes). For
//! several operations that must appear as one, use [`Manager::lock`].
//!
//! # Nesting and lifetimes
//! A container lives while some process holds a proxy to it. A proxy stored inside another
//! container's value (a dict of lists, say) keeps its container alive while it is stored
//! (the stored copy counts as a reference *in flight*), and works as a proxy when read back:
//! - reading a value (`get`, `values`, `items`, `to_vec`, ...) returns a **copy**: the stored
//!   reference stays;
//! - taking a value out (`remove`, `pop`, `popitem`, the old value returned by `insert`/`set`
//!   /`replace`, a swapped-out `compare_and_swap` value) **moves** the stored reference to the
//!   caller;
//! - a value dropped inside the hub (`clear`, an overwrite by `extend` or by the one-way
//!   [`Dict::set`], the Manager's shutdown, or the container itself being reclaimed) keeps the
//!   proxies it contained alive until the program ends (a bounded leak).
//!
//! Keys must not contain proxies or other handles (each lookup would serialise them again).
//!
//! # Shutdown
//! [`Manager::shutdown`] (idempotent, from any process holding the Manager) marks every
//! container of the Manager dead in one step (a container frees its contents at its next
//! operation, or when its last proxy is dropped); from then on every proxy call returns
//! [`ManagerError::ManagerGone`] at once, in every process. Dropping the last
//! `Manager` handle does **not** shut it down: the containers live on while proxies exist.
//! Primitives from [`Manager::lock`] and friends are the hub's ordinary primitives; they keep
//! working after a shutdown (only creating new ones is refused).

mod array;
mod dict;
mod error;
mod list;
mod namespace;
mod set;
mod shared;
mod value;

pub use array::ArrayProxy;
pub use dict::Dict;
pub use error::ManagerError;
pub use list::List;
pub use namespace::Namespace;
pub use set::SetProxy;
#[doc(hidden)]
pub use shared::{make_shared, ErasedShared, MakeShared, SharedEntry, SHARED_TYPES};
pub use shared::{Proxy, ProxyError, Registered, SharedObject};
pub use value::ValueProxy;

use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::error::CallError;
use crate::queue::{JoinableQueue, Queue};
use crate::runtime::handle::{decoding_copy, ObjRef};
use crate::runtime::{self};
use crate::sync::{Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore};
use crate::wire::manager_ops::{Delta, GroupKey, ManagerFault, ManagerKind, ManagerOp, ManagerReply};
use crate::wire::proto::{ObjOp, ObjectKind, Value, Wait};

static NEXT_GROUP: AtomicU64 = AtomicU64::new(1);

/// A Manager: creates shared containers and primitives, and shuts them down together.
///
/// `Clone + Serialize + Deserialize`: a child given the Manager can create containers and
/// shut it down too.
///
/// # Example
/// ```
/// use multiproc::manager::Manager;
///
/// let m = Manager::start()?;
/// let l = m.list::<String>()?;
/// l.push("a".into())?;
/// let v = m.value(1.5f64)?;
/// assert_eq!(v.get()?, 1.5);
/// let lock = m.lock()?;
/// drop(lock.acquire()?);
/// m.shutdown()?;
/// m.shutdown()?; // idempotent
/// assert!(m.is_shutdown()?);
/// assert!(l.len().unwrap_err().is_gone());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Manager {
    group: ObjRef,
    key: GroupKey,
}

impl Manager {
    /// Starts a Manager (in the hub: no process is started; see the module docs).
    pub fn new() -> Result<Manager, ManagerError> {
        let key = GroupKey {
            proc: runtime::rt()?.me.proc.0,
            seq: NEXT_GROUP.fetch_add(1, Ordering::Relaxed),
        };
        let group = ObjRef::create(ObjectKind::Manager(ManagerKind::Group(key)))?;
        Ok(Manager { group, key })
    }

    /// The same as [`Manager::new`] (Python's `SyncManager().start()`).
    ///
    /// Python's `start(initializer, initargs)` runs a function in the manager's server process
    /// when it starts. Here the server is the hub thread of the root process, which runs no
    /// user code, so there is no initializer: run setup code in the root before calling this.
    pub fn start() -> Result<Manager, ManagerError> {
        Manager::new()
    }

    /// Marks every container of this Manager dead (each frees its contents at its next
    /// operation, or when its last proxy goes). Every later call
    /// on their proxies, in any process, returns [`ManagerError::ManagerGone`]. Calling it
    /// again does nothing. Fails with `ManagerGone` only if the hub itself is gone.
    pub fn shutdown(&self) -> Result<(), ManagerError> {
        match self.group.call(ObjOp::Manager(ManagerOp::Shutdown), None)? {
            Value::Unit => {
                // A server of shared objects started here ends now (one started by another
                // process sees the shutdown at its next call, or within a moment when idle).
                shared::stop_server(self);
                Ok(())
            }
            other => Err(unexpected(other)),
        }
    }

    /// Places `obj` in this Manager's server process and returns a typed proxy to it
    /// (Python's `BaseManager.register(typeid, callable)` then `manager.typeid(...)`). See
    /// [`SharedObject`] for how calls are served.
    ///
    /// **The server** is a daemonic child of the calling process, started on the first
    /// `shared` call made through this Manager in this process; later objects join it. Calls
    /// are served one at a time, in arrival order. The server ends when the Manager is shut
    /// down, or when the process that started it ends; calls on its objects then fail with
    /// [`ProxyError::ManagerGone`] or [`ProxyError::ServerGone`] (never a hang: each call is a
    /// reply slot in the hub that fails when the server dies). Objects live as long as their
    /// server (they are not reference counted).
    ///
    /// The type must be registered ([`register_shared!`](crate::register_shared)); an
    /// unregistered type does not compile.
    ///
    /// # Example
    /// ```
    /// use multiproc::manager::{Manager, ProxyError, SharedObject};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Stack(Vec<u32>);
    ///
    /// #[derive(Serialize, Deserialize)]
    /// enum Op {
    ///     Push(u32),
    ///     Pop,
    /// }
    ///
    /// impl SharedObject for Stack {
    ///     type Call = Op;
    ///     type Reply = Option<u32>;
    ///     fn call(&mut self, op: Op) -> Option<u32> {
    ///         match op {
    ///             Op::Push(x) => {
    ///                 self.0.push(x);
    ///                 None
    ///             }
    ///             Op::Pop => Some(self.0.pop().expect("pop from an empty stack")),
    ///         }
    ///     }
    /// }
    /// multiproc::register_shared!(Stack);
    ///
    /// let m = Manager::new()?;
    /// let s = m.shared(Stack(Vec::new()))?;
    /// s.call(Op::Push(1))?;
    /// assert_eq!(s.call(Op::Pop)?, Some(1));
    /// // A panic fails that call only, with its message.
    /// assert!(matches!(s.call(Op::Pop), Err(ProxyError::Panicked(m)) if m.contains("empty stack")));
    /// m.shutdown()?;
    /// assert!(matches!(s.call(Op::Pop), Err(ProxyError::ManagerGone)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shared<T: Registered>(&self, obj: T) -> Result<Proxy<T>, ProxyError> {
        Proxy::create(self, obj)
    }

    /// Has [`shutdown`](Manager::shutdown) been called (by any process)?
    pub fn is_shutdown(&self) -> Result<bool, ManagerError> {
        match self.group.call(ObjOp::Manager(ManagerOp::IsShutdown), None)? {
            Value::Bool(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }

    fn create(&self, kind: ManagerKind) -> Result<ObjRef, ManagerError> {
        Ok(ObjRef::create(ObjectKind::Manager(kind))?)
    }

    /// A new, empty shared dict (Python's `manager.dict()`).
    pub fn dict<K, V>(&self) -> Result<Dict<K, V>, ManagerError>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        Ok(Dict::from_obj(self.create(ManagerKind::Dict(self.key))?))
    }

    /// A new shared dict holding `items` in order (Python's `manager.dict({...})`).
    pub fn dict_from<K, V>(&self, items: impl IntoIterator<Item = (K, V)>) -> Result<Dict<K, V>, ManagerError>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        let d = self.dict()?;
        d.extend(items)?;
        Ok(d)
    }

    /// A new, empty shared list (Python's `manager.list()`).
    pub fn list<T: Serialize + DeserializeOwned>(&self) -> Result<List<T>, ManagerError> {
        Ok(List::from_obj(self.create(ManagerKind::List(self.key))?))
    }

    /// A new shared list holding `items` (Python's `manager.list([...])`).
    pub fn list_from<T: Serialize + DeserializeOwned>(
        &self,
        items: impl IntoIterator<Item = T>,
    ) -> Result<List<T>, ManagerError> {
        let l = self.list()?;
        l.extend(items)?;
        Ok(l)
    }

    /// A new shared value set to `init` (Python's `manager.Value(typecode, init)`).
    pub fn value<T: Serialize + DeserializeOwned>(&self, init: T) -> Result<ValueProxy<T>, ManagerError> {
        let init = encode(&init)?;
        Ok(ValueProxy::from_obj(
            self.create(ManagerKind::Value { group: self.key, init })?,
        ))
    }

    /// A new shared fixed-length array holding `items` (Python's `manager.Array(typecode,
    /// sequence)`; the item type plays the typecode's part).
    pub fn array<T: Serialize + DeserializeOwned>(
        &self,
        items: impl IntoIterator<Item = T>,
    ) -> Result<ArrayProxy<T>, ManagerError> {
        Ok(ArrayProxy::from_list(self.list_from(items)?))
    }

    /// A new, empty shared set (Python 3.14's `manager.set()`).
    pub fn set<T: Serialize + DeserializeOwned>(&self) -> Result<SetProxy<T>, ManagerError> {
        Ok(SetProxy::from_dict(self.dict()?))
    }

    /// A new shared set holding `items` (Python's `manager.set(iterable)`).
    pub fn set_from<T: Serialize + DeserializeOwned>(
        &self,
        items: impl IntoIterator<Item = T>,
    ) -> Result<SetProxy<T>, ManagerError> {
        let s = self.set()?;
        s.extend(items)?;
        Ok(s)
    }

    /// A new, empty namespace (Python's `manager.Namespace()`).
    pub fn namespace(&self) -> Result<Namespace, ManagerError> {
        Ok(Namespace::from_obj(self.create(ManagerKind::Dict(self.key))?))
    }

    fn alive(&self) -> Result<(), ManagerError> {
        if self.is_shutdown()? {
            Err(ManagerError::ManagerGone)
        } else {
            Ok(())
        }
    }

    /// A new [`Lock`] (Python's `manager.Lock()`): the hub's own lock. It keeps working after
    /// a shutdown; creating one after a shutdown is refused.
    pub fn lock(&self) -> Result<Lock, ManagerError> {
        self.alive()?;
        Lock::new().map_err(primitive)
    }

    /// A new [`RLock`] (Python's `manager.RLock()`).
    pub fn rlock(&self) -> Result<RLock, ManagerError> {
        self.alive()?;
        RLock::new().map_err(primitive)
    }

    /// A new [`Semaphore`] (Python's `manager.Semaphore(value)`).
    pub fn semaphore(&self, value: u32) -> Result<Semaphore, ManagerError> {
        self.alive()?;
        Semaphore::new(value).map_err(primitive)
    }

    /// A new [`BoundedSemaphore`] (Python's `manager.BoundedSemaphore(value)`).
    pub fn bounded_semaphore(&self, value: u32) -> Result<BoundedSemaphore, ManagerError> {
        self.alive()?;
        BoundedSemaphore::new(value).map_err(primitive)
    }

    /// A new [`Event`] (Python's `manager.Event()`).
    pub fn event(&self) -> Result<Event, ManagerError> {
        self.alive()?;
        Event::new().map_err(primitive)
    }

    /// A new [`Condition`] on a new lock (Python's `manager.Condition()`).
    pub fn condition(&self) -> Result<Condition, ManagerError> {
        self.alive()?;
        Condition::new().map_err(primitive)
    }

    /// A new [`Barrier`] for `parties` parties (Python's `manager.Barrier(parties)`).
    pub fn barrier(&self, parties: usize) -> Result<Barrier, ManagerError> {
        self.alive()?;
        Barrier::new(parties).map_err(primitive)
    }

    /// A new unbounded [`Queue`] (Python's `manager.Queue()`).
    pub fn queue<T: Serialize + DeserializeOwned>(&self) -> Result<Queue<T>, ManagerError> {
        self.alive()?;
        Queue::new().map_err(primitive)
    }

    /// A new [`Queue`] holding at most `maxsize` items (Python's `manager.Queue(maxsize)`).
    pub fn queue_bounded<T: Serialize + DeserializeOwned>(&self, maxsize: usize) -> Result<Queue<T>, ManagerError> {
        self.alive()?;
        Queue::bounded(maxsize).map_err(primitive)
    }

    /// A new [`JoinableQueue`] holding at most `maxsize` items (Python's
    /// `manager.JoinableQueue(maxsize)`).
    pub fn joinable_queue_bounded<T: Serialize + DeserializeOwned>(
        &self,
        maxsize: usize,
    ) -> Result<JoinableQueue<T>, ManagerError> {
        self.alive()?;
        JoinableQueue::bounded(maxsize).map_err(primitive)
    }

    /// A new unbounded [`JoinableQueue`] (Python's `manager.JoinableQueue()`).
    pub fn joinable_queue<T: Serialize + DeserializeOwned>(&self) -> Result<JoinableQueue<T>, ManagerError> {
        self.alive()?;
        JoinableQueue::new().map_err(primitive)
    }
}

fn primitive(e: impl std::fmt::Display) -> ManagerError {
    ManagerError::Primitive(e.to_string())
}

fn unexpected(v: impl std::fmt::Debug) -> ManagerError {
    ManagerError::Call(CallError::Protocol(format!(
        "unexpected reply from a Manager object: {v:?}"
    )))
}

/// Encodes a key or value.
fn encode<T: Serialize + ?Sized>(v: &T) -> Result<ByteBuf, ManagerError> {
    rmp_serde::to_vec(v)
        .map(ByteBuf::from)
        .map_err(|e| ManagerError::Encode(e.to_string()))
}

/// A key as text, for error messages: the encoded key read back as plain data (`"WARN"`, `42`,
/// `["a", 1]`), so that no `Debug` bound is needed; its bytes in hex if that fails. Reading it
/// this way builds no handle, so it has no effect on reference counts.
pub(crate) fn show_key(bytes: &[u8]) -> String {
    use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
    use std::fmt::Write;

    struct Shown(String);
    impl<'de> Deserialize<'de> for Shown {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(Show)
        }
    }
    struct Show;
    impl<'de> Visitor<'de> for Show {
        type Value = Shown;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("any value")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Shown, E> {
            Ok(Shown(v.to_string()))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Shown, E> {
            Ok(Shown(v.to_string()))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Shown, E> {
            Ok(Shown(v.to_string()))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Shown, E> {
            Ok(Shown(format!("{v:?}")))
        }
        fn visit_str<E>(self, v: &str) -> Result<Shown, E> {
            Ok(Shown(format!("{v:?}")))
        }
        fn visit_bytes<E>(self, v: &[u8]) -> Result<Shown, E> {
            Ok(Shown(format!("{v:?}")))
        }
        fn visit_none<E>(self) -> Result<Shown, E> {
            Ok(Shown("None".into()))
        }
        fn visit_unit<E>(self) -> Result<Shown, E> {
            Ok(Shown("()".into()))
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Shown, D::Error> {
            Shown::deserialize(d)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shown, A::Error> {
            let mut out = String::from("[");
            while let Some(Shown(item)) = seq.next_element()? {
                if out.len() > 1 {
                    out.push_str(", ");
                }
                out.push_str(&item);
            }
            out.push(']');
            Ok(Shown(out))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shown, A::Error> {
            let mut out = String::from("{");
            while let Some((Shown(k), Shown(v))) = map.next_entry()? {
                if out.len() > 1 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{k}: {v}");
            }
            out.push('}');
            Ok(Shown(out))
        }
    }
    match rmp_serde::from_slice::<Shown>(bytes) {
        Ok(Shown(s)) => s,
        Err(_) => bytes.iter().fold(String::from("0x"), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        }),
    }
}

/// Decodes a value that stays stored (a copy: handles inside it do not settle the stored
/// value's in-flight references).
fn decode_copy<T: DeserializeOwned>(b: &[u8]) -> Result<T, ManagerError> {
    decoding_copy(|| rmp_serde::from_slice(b)).map_err(|e| ManagerError::Decode(e.to_string()))
}

/// Decodes a value taken out of the container (handles inside it take over its references).
fn decode_moved<T: DeserializeOwned>(b: &[u8]) -> Result<T, ManagerError> {
    rmp_serde::from_slice(b).map_err(|e| ManagerError::Decode(e.to_string()))
}

/// The untyped core of every proxy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct RawProxy {
    obj: ObjRef,
}

impl RawProxy {
    /// One operation; a refusal becomes its error.
    fn op(&self, op: ManagerOp) -> Result<Value, ManagerError> {
        let v = self.obj.call(ObjOp::Manager(op), runtime::deadline_of(Wait::Forever))?;
        match v {
            Value::Manager(ManagerReply::Fault(f)) => Err(match f {
                ManagerFault::Gone => ManagerError::ManagerGone,
                ManagerFault::OutOfRange { index, len } => ManagerError::IndexOutOfRange { index, len },
                // No operation of this version answers `Missing` (`FetchAdd` inserts a
                // missing key); a hub that does is not this hub.
                ManagerFault::Missing => ManagerError::Call(CallError::Protocol(
                    "the hub answered `Missing` to an operation that inserts".into(),
                )),
                ManagerFault::NotANumber(m) => ManagerError::NotANumber(m),
                ManagerFault::Overflow => ManagerError::Overflow { key: None },
            }),
            v => Ok(v),
        }
    }

    fn unit(&self, op: ManagerOp) -> Result<(), ManagerError> {
        match self.op(op)? {
            Value::Unit => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    fn u64(&self, op: ManagerOp) -> Result<u64, ManagerError> {
        match self.op(op)? {
            Value::U64(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    fn bool(&self, op: ManagerOp) -> Result<bool, ManagerError> {
        match self.op(op)? {
            Value::Bool(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }

    fn bytes(&self, op: ManagerOp) -> Result<ByteBuf, ManagerError> {
        match self.op(op)? {
            Value::Bytes(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }

    fn opt(&self, op: ManagerOp) -> Result<Option<ByteBuf>, ManagerError> {
        match self.op(op)? {
            Value::Manager(ManagerReply::Opt(o)) => Ok(o),
            other => Err(unexpected(other)),
        }
    }

    fn batch(&self, op: ManagerOp) -> Result<Vec<ByteBuf>, ManagerError> {
        match self.op(op)? {
            Value::Batch(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }

    /// `FetchAdd`: returns the previous value.
    fn fetch_add<N: Number>(&self, key: Option<ByteBuf>, delta: Delta) -> Result<N, ManagerError> {
        match self.op(ManagerOp::FetchAdd { key, delta })? {
            Value::Manager(ManagerReply::Number { previous, .. }) => decode_moved(&previous),
            other => Err(unexpected(other)),
        }
    }

    /// `CompareAndSwap` on raw bytes: `(swapped, previous bytes)`. If not swapped, the
    /// handles serialised into `new` are settled here (it was never stored).
    fn cas_raw<T: DeserializeOwned>(
        &self,
        key: Option<ByteBuf>,
        current: Option<ByteBuf>,
        new: ByteBuf,
    ) -> Result<(bool, Option<ByteBuf>), ManagerError> {
        let unstored = new.clone();
        match self.op(ManagerOp::CompareAndSwap { key, current, new })? {
            Value::Manager(ManagerReply::Cas { swapped, previous }) => {
                if !swapped {
                    settle::<T>(&unstored);
                }
                Ok((swapped, previous))
            }
            other => Err(unexpected(other)),
        }
    }

    /// `CompareAndSwap`: `Ok(previous)` if swapped (moved out), else `Err(actual)` (a copy).
    fn cas<T: DeserializeOwned>(
        &self,
        key: Option<ByteBuf>,
        current: Option<ByteBuf>,
        new: ByteBuf,
    ) -> Result<Result<Option<T>, Option<T>>, ManagerError> {
        let (swapped, previous) = self.cas_raw::<T>(key, current, new)?;
        if swapped {
            Ok(Ok(previous.map(|p| decode_moved(&p)).transpose()?))
        } else {
            Ok(Err(previous.map(|p| decode_copy(&p)).transpose()?))
        }
    }
}

/// Settles the in-flight references of handles serialised into `bytes` that were *not*
/// stored (decoding takes them over; dropping the result releases them).
fn settle<T: DeserializeOwned>(bytes: &[u8]) {
    let _ = decode_moved::<T>(bytes);
}

mod sealed {
    pub trait Sealed {}
}

/// A number the Manager can add to atomically ([`Dict::fetch_add`], [`ValueProxy::fetch_add`]):
/// the primitive integers and floats.
///
/// # Example
/// ```
/// use multiproc::manager::Manager;
///
/// let m = Manager::new()?;
/// let v = m.value(250u8)?;
/// assert_eq!(v.fetch_add(5)?, 250);
/// assert!(v.fetch_add(1).is_err()); // would overflow u8: refused, value unchanged
/// assert_eq!(v.get()?, 255);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Number: Serialize + DeserializeOwned + Copy + sealed::Sealed {
    /// The wire form of `self` (negated if `negate`).
    #[doc(hidden)]
    fn delta(self, negate: bool) -> Delta;
}

macro_rules! number_int {
    ($($t:ty),*) => {
        $(
            impl sealed::Sealed for $t {}
            impl Number for $t {
                #[allow(unused_comparisons)]
                fn delta(self, negate: bool) -> Delta {
                    let neg = (self < 0) != negate;
                    Delta::Int {
                        neg,
                        mag: (self as i128).unsigned_abs() as u64,
                        min: (<$t>::MIN as i128).max(i64::MIN as i128) as i64,
                        max: (<$t>::MAX as i128).min(u64::MAX as i128) as u64,
                    }
                }
            }
        )*
    };
}
number_int!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

macro_rules! number_float {
    ($($t:ty),*) => {
        $(
            impl sealed::Sealed for $t {}
            impl Number for $t {
                fn delta(self, negate: bool) -> Delta {
                    let d = f64::from(self);
                    Delta::Float(if negate { -d } else { d })
                }
            }
        )*
    };
}
number_float!(f32, f64);
