//! A reference-counted handle to a hub object.
//!
//! Each process counts its own handles to an object; the hub knows which processes hold at
//! least one. The first handle in a process sends `Retain`, the last one dropped sends
//! `Release`, both on the process's main connection so that they are ordered. A handle that
//! is serialised (to go to another process) adds an *in-flight* reference first; the receiver
//! retains and then clears it. The hub reclaims an object when no process holds it and nothing
//! is in flight, so a handle in transit is never left pointing at a freed object. A process that
//! dies has its holds dropped by the hub. A handle serialised into a message that is never
//! received keeps its object alive (a bounded leak, documented in ARCHITECTURE.md).

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{rt, Runtime};
use crate::error::CallError;
use crate::wire::proto::{Cast, ObjId, ObjOp, ObjectKind, Op, Value};

/// Where the calls of a handle to an object of *another program's* hub go (a remote manager's
/// session, see `crate::connection`). Such handles are not reference counted here: the server
/// holds the objects for as long as it serves them.
pub(crate) trait RemoteRoute: Send + Sync + std::fmt::Debug {
    /// A blocking call (an `Op::Object` on one of the served objects).
    fn call(&self, op: Op, deadline: Option<Instant>) -> Result<Value, CallError>;
    /// One-way messages, in one write, on this thread's connection to the server.
    fn cast_many(&self, casts: Vec<Cast>) -> Result<(), CallError>;
}

/// The route of a handle: `None` for this program's own hub.
pub(crate) type Route = Option<Arc<dyn RemoteRoute>>;

/// An object id with its secret: what a handle's serialised form carries.
pub(crate) type Capability = (ObjId, u64);

/// How handles are (de)serialised on this thread right now.
#[cfg_attr(not(feature = "connection"), allow(dead_code))]
enum Mode {
    /// Between processes of this program: the in-flight protocol.
    Normal,
    /// Describing served handles to a remote client: ids only, collected.
    Export(Vec<Capability>),
    /// Decoding handles a remote server described: routed to it.
    Import(Arc<dyn RemoteRoute>),
}

thread_local! {
    static DECODING_COPY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static MODE: RefCell<Mode> = const { RefCell::new(Mode::Normal) };
}

/// Registers this thread's handle-mode state (its destructor) without changing it (see
/// `bootstrap::warm`).
pub(crate) fn warm() {
    MODE.with(|_| ());
    DECODING_COPY.with(|_| ());
}

#[cfg_attr(not(feature = "connection"), allow(dead_code))]
fn with_mode<R>(mode: Mode, f: impl FnOnce() -> R) -> (R, Mode) {
    let prev = MODE.with(|m| std::mem::replace(&mut *m.borrow_mut(), mode));
    let r = f();
    let mode = MODE.with(|m| std::mem::replace(&mut *m.borrow_mut(), prev));
    (r, mode)
}

/// Encodes `v` for a remote client: its handles become bare ids (no in-flight reference: the
/// server keeps holding them), and the ids are returned with the bytes.
#[cfg_attr(not(feature = "connection"), allow(dead_code))]
pub(crate) fn export<T: Serialize>(v: &T) -> Result<(Vec<u8>, Vec<Capability>), String> {
    let (res, mode) = with_mode(Mode::Export(Vec::new()), || rmp_serde::to_vec(v));
    let ids = match mode {
        Mode::Export(ids) => ids,
        _ => Vec::new(),
    };
    res.map(|b| (b, ids)).map_err(|e| e.to_string())
}

/// Decodes what [`export`] made, in a client: every handle in it is routed to `route`.
#[cfg_attr(not(feature = "connection"), allow(dead_code))]
pub(crate) fn import<T: serde::de::DeserializeOwned>(bytes: &[u8], route: Arc<dyn RemoteRoute>) -> Result<T, String> {
    with_mode(Mode::Import(route), || rmp_serde::from_slice(bytes))
        .0
        .map_err(|e| e.to_string())
}

/// Runs `f` with every handle decoded in it routed to `route` (the MPI backend's task servers
/// decode task arguments this way: the objects live in rank 0's hub).
#[cfg(feature = "mpi")]
pub(crate) fn with_route<R>(route: Arc<dyn RemoteRoute>, f: impl FnOnce() -> R) -> R {
    with_mode(Mode::Import(route), f).0
}

/// One-way messages for an object, along a handle's route.
pub(crate) fn cast_via(route: &Route, casts: Vec<Cast>) -> Result<(), CallError> {
    match route {
        Some(r) => r.cast_many(casts),
        None if casts.len() == 1 => casts.into_iter().try_for_each(super::cast),
        None => super::cast_many(casts),
    }
}

/// Runs `f`, in which handles are decoded from a *copy* of a serialised value that may be
/// decoded many times (a barrier action's arguments, decoded once per generation). Such
/// decodes retain their objects but do not settle the value's in-flight reference, which
/// therefore stays for the life of the program (a bounded leak: the objects named in the
/// value are never reclaimed).
pub(crate) fn decoding_copy<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            DECODING_COPY.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(DECODING_COPY.with(|c| c.replace(true)));
    f()
}

/// An owned, counted reference to a hub object.
///
/// Its serialised form is `(id, secret)`. The secret is what makes it a capability: the hub
/// lets a process become a holder (`Retain`) only with it, and serves only holders, so a
/// process cannot use an object whose id it merely guessed.
pub struct ObjRef {
    id: ObjId,
    secret: u64,
    route: Route,
}

/// A fresh 64-bit secret: std's SipHash, keyed with the OS-random keys of a new `RandomState`,
/// over a per-process counter and the pid. No other process sees the keys, so it cannot
/// predict the output (no hand-written cryptography: SipHash is a keyed PRF).
pub(crate) fn new_secret() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.finish()
}

impl std::fmt::Debug for ObjRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("ObjRef");
        d.field("id", &self.id);
        if let Some(r) = &self.route {
            d.field("remote", r);
        }
        d.finish()
    }
}

impl PartialEq for ObjRef {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && match (&self.route, &other.route) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

impl Eq for ObjRef {}

impl std::hash::Hash for ObjRef {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.id.hash(h)
    }
}

impl ObjRef {
    /// Creates an object in the hub; this process holds the first handle.
    pub fn create(kind: ObjectKind) -> Result<ObjRef, CallError> {
        let secret = new_secret();
        match super::call(Op::NewObject { kind, secret }, None)? {
            Value::Obj(id) => {
                rt()?.local_retain(id);
                Ok(ObjRef {
                    id,
                    secret,
                    route: None,
                })
            }
            other => Err(CallError::Protocol(format!("unexpected reply to NewObject: {other:?}"))),
        }
    }

    /// The reply slot of an `ask` by name: the hub resolves `name` and creates a one-shot
    /// slot watching that process, in one round trip. Returns the slot and whom to ask.
    pub(crate) fn create_named_slot(
        name: &str,
        token: u64,
    ) -> Result<(ObjRef, crate::wire::proto::ProcInfo), CallError> {
        use crate::wire::names_ops::{NamesOp, NamesReply};
        let secret = new_secret();
        let op = Op::Names(NamesOp::AskSlot {
            name: name.to_owned(),
            token,
            secret,
        });
        match super::call(op, None)? {
            Value::Names(NamesReply::Slot { obj, proc }) => {
                rt()?.local_retain(obj);
                Ok((
                    ObjRef {
                        id: obj,
                        secret,
                        route: None,
                    },
                    proc,
                ))
            }
            other => Err(CallError::Protocol(format!("unexpected reply to AskSlot: {other:?}"))),
        }
    }

    /// The object's id.
    pub fn id(&self) -> ObjId {
        self.id
    }

    /// The object's secret (the capability; see the type's docs).
    pub(crate) fn secret(&self) -> u64 {
        self.secret
    }

    /// Another handle to an object this process already holds (a served object, for the relay
    /// of a remote client); `None` if it holds none.
    #[cfg_attr(not(feature = "connection"), allow(dead_code))]
    pub(crate) fn from_held(id: ObjId, secret: u64) -> Option<ObjRef> {
        let rt = super::rt_if_started()?;
        if !rt.holds(id) {
            return None;
        }
        rt.local_retain(id);
        Some(ObjRef {
            id,
            secret,
            route: None,
        })
    }

    /// A blocking operation on the object.
    pub fn call(&self, op: ObjOp, deadline: Option<Instant>) -> Result<Value, CallError> {
        let op = Op::Object { obj: self.id, op };
        match &self.route {
            None => super::call(op, deadline),
            Some(r) => r.call(op, deadline),
        }
    }

    /// A one-way operation on the object, sent on this thread's connection.
    pub fn cast(&self, op: ObjOp) -> Result<(), CallError> {
        cast_via(&self.route, vec![Cast::Object { obj: self.id, op }])
    }

    /// Where this handle's calls go.
    pub(crate) fn route(&self) -> &Route {
        &self.route
    }

    /// Is this a handle to an object of another program (a remote manager's)? Such handles
    /// take no shared-memory fast path: the memory is the other program's.
    pub(crate) fn is_remote(&self) -> bool {
        self.route.is_some()
    }

    fn rt(&self) -> Option<&'static Runtime> {
        super::rt_if_started()
    }
}

#[cfg(feature = "tokio")]
impl ObjRef {
    /// [`create`](Self::create) without blocking the calling thread. If the future is dropped
    /// after the hub created the object, the object is released again.
    pub(crate) async fn create_async(kind: ObjectKind) -> Result<ObjRef, CallError> {
        let secret = new_secret();
        let undo: super::aio::Undo = Box::new(|v| {
            if let (Value::Obj(id), Some(rt)) = (v, super::rt_if_started()) {
                let _ = rt.cast_main(Cast::Release(id));
            }
        });
        match super::aio::call(Op::NewObject { kind, secret }, Some(undo)).await? {
            Value::Obj(id) => {
                rt()?.local_retain(id);
                Ok(ObjRef {
                    id,
                    secret,
                    route: None,
                })
            }
            other => Err(CallError::Protocol(format!("unexpected reply to NewObject: {other:?}"))),
        }
    }

    /// [`call`](Self::call) without blocking the calling thread (see `runtime::aio`): `undo`
    /// runs if the future is dropped and the call succeeded anyway.
    pub(crate) async fn call_async(&self, op: ObjOp, undo: Option<super::aio::Undo>) -> Result<Value, CallError> {
        self.call_fds_async(op, undo).await.map(|(v, _)| v)
    }

    /// [`call_async`](Self::call_async) that also returns the descriptors attached to the
    /// reply (a queue item that carries them).
    pub(crate) async fn call_fds_async(
        &self,
        op: ObjOp,
        undo: Option<super::aio::Undo>,
    ) -> Result<(Value, Vec<std::os::fd::OwnedFd>), CallError> {
        if self.route.is_some() {
            return Err(CallError::Unsupported(
                "the .await forms are not available for handles from a remote manager; call the \
                 blocking form (for example inside tokio::task::spawn_blocking)",
            ));
        }
        super::aio::call_fds(Op::Object { obj: self.id, op }, undo).await
    }
}

impl Clone for ObjRef {
    fn clone(&self) -> Self {
        if self.route.is_none() {
            if let Some(rt) = self.rt() {
                rt.local_retain(self.id);
            }
        }
        ObjRef {
            id: self.id,
            secret: self.secret,
            route: self.route.clone(),
        }
    }
}

impl Drop for ObjRef {
    fn drop(&mut self) {
        if self.route.is_some() {
            return;
        }
        if let Some(rt) = self.rt() {
            if rt.local_release(self.id) {
                let _ = rt.cast_main(Cast::Release(self.id));
            }
        }
    }
}

impl Serialize for ObjRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.route.is_some() {
            return Err(serde::ser::Error::custom(
                "a handle from a remote manager cannot be sent on: give the other process the server's address and let it connect",
            ));
        }
        let exported = MODE.with(|m| match &mut *m.borrow_mut() {
            Mode::Export(ids) => {
                ids.push((self.id, self.secret));
                true
            }
            _ => false,
        });
        if exported {
            return (self.id.0, self.secret).serialize(s);
        }
        let rt = rt().map_err(serde::ser::Error::custom)?;
        rt.cast_main(Cast::InflightAdd(self.id))
            .map_err(serde::ser::Error::custom)?;
        (self.id.0, self.secret).serialize(s)
    }
}

impl<'de> Deserialize<'de> for ObjRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (raw, secret) = <(u64, u64)>::deserialize(d)?;
        let id = ObjId(raw);
        let route = MODE.with(|m| match &*m.borrow() {
            Mode::Import(r) => Some(r.clone()),
            _ => None,
        });
        if route.is_some() {
            return Ok(ObjRef { id, secret, route });
        }
        let rt = rt().map_err(serde::de::Error::custom)?;
        if rt.local_retain(id) {
            rt.cast_main(Cast::Retain { obj: id, secret })
                .map_err(serde::de::Error::custom)?;
        }
        if !DECODING_COPY.with(|c| c.get()) {
            rt.cast_main(Cast::InflightDone(id)).map_err(serde::de::Error::custom)?;
        }
        Ok(ObjRef {
            id,
            secret,
            route: None,
        })
    }
}
