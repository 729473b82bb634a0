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

use std::time::Instant;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{rt, Runtime};
use crate::error::CallError;
use crate::wire::proto::{Cast, ObjId, ObjOp, ObjectKind, Op, Value};

thread_local! {
    static DECODING_COPY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
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
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ObjRef {
    id: ObjId,
    secret: u64,
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

impl ObjRef {
    /// Creates an object in the hub; this process holds the first handle.
    pub fn create(kind: ObjectKind) -> Result<ObjRef, CallError> {
        let secret = new_secret();
        match super::call(Op::NewObject { kind, secret }, None)? {
            Value::Obj(id) => {
                rt()?.local_retain(id);
                Ok(ObjRef { id, secret })
            }
            other => Err(CallError::Protocol(format!("unexpected reply to NewObject: {other:?}"))),
        }
    }

    /// The object's id.
    pub fn id(&self) -> ObjId {
        self.id
    }

    /// A blocking operation on the object.
    pub fn call(&self, op: ObjOp, deadline: Option<Instant>) -> Result<Value, CallError> {
        super::call(Op::Object { obj: self.id, op }, deadline)
    }

    /// A one-way operation on the object, sent on this thread's connection.
    pub fn cast(&self, op: ObjOp) -> Result<(), CallError> {
        super::cast(Cast::Object { obj: self.id, op })
    }

    fn rt(&self) -> Option<&'static Runtime> {
        super::rt_if_started()
    }
}

impl Clone for ObjRef {
    fn clone(&self) -> Self {
        if let Some(rt) = self.rt() {
            rt.local_retain(self.id);
        }
        ObjRef {
            id: self.id,
            secret: self.secret,
        }
    }
}

impl Drop for ObjRef {
    fn drop(&mut self) {
        if let Some(rt) = self.rt() {
            if rt.local_release(self.id) {
                let _ = rt.cast_main(Cast::Release(self.id));
            }
        }
    }
}

impl Serialize for ObjRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
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
        let rt = rt().map_err(serde::de::Error::custom)?;
        if rt.local_retain(id) {
            rt.cast_main(Cast::Retain { obj: id, secret })
                .map_err(serde::de::Error::custom)?;
        }
        if !DECODING_COPY.with(|c| c.get()) {
            rt.cast_main(Cast::InflightDone(id)).map_err(serde::de::Error::custom)?;
        }
        Ok(ObjRef { id, secret })
    }
}
