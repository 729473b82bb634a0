//! [`ValueProxy`]: a single shared value.

use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{decode_copy, decode_moved, encode, ManagerError, Number, RawProxy};
use crate::runtime::handle::ObjRef;
use crate::wire::manager_ops::ManagerOp;

/// A proxy to a single shared value in a [`Manager`](super::Manager) (Python's
/// `manager.Value(typecode, value)`), of any serialisable type.
///
/// `get`/`set` are single atomic operations; [`fetch_add`](ValueProxy::fetch_add) (numbers)
/// and [`update`](ValueProxy::update) (any type, a compare-and-swap loop) are atomic
/// read-modify-writes that need no lock.
///
/// # Example
/// ```
/// use multiproc::manager::{Manager, ValueProxy};
/// use multiproc::Process;
///
/// #[multiproc::worker]
/// fn shout(v: ValueProxy<String>) {
///     v.update(|s| s.to_uppercase()).unwrap();
/// }
///
/// let m = Manager::new()?;
/// let v = m.value("hello".to_string())?;
/// Process::new(shout(v.clone())).start()?.join()?;
/// assert_eq!(v.get()?, "HELLO");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ValueProxy<T> {
    p: RawProxy,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> ValueProxy<T> {
    pub(super) fn from_obj(obj: ObjRef) -> Self {
        ValueProxy {
            p: RawProxy { obj },
            _t: PhantomData,
        }
    }
}

impl<T> Clone for ValueProxy<T> {
    /// Another proxy to the same value.
    fn clone(&self) -> Self {
        ValueProxy {
            p: self.p.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> PartialEq for ValueProxy<T> {
    /// Do both proxies name the same shared value?
    fn eq(&self, other: &Self) -> bool {
        self.p == other.p
    }
}

impl<T> fmt::Debug for ValueProxy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueProxy").field("obj", &self.p.obj.id()).finish()
    }
}

impl<T> Serialize for ValueProxy<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.p.serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for ValueProxy<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ValueProxy {
            p: RawProxy::deserialize(d)?,
            _t: PhantomData,
        })
    }
}

impl<T: Serialize + DeserializeOwned> ValueProxy<T> {
    /// A copy of the value (Python's `v.value`).
    pub fn get(&self) -> Result<T, ManagerError> {
        decode_copy(&self.p.bytes(ManagerOp::Load)?)
    }

    /// Overwrites the value (Python's `v.value = x`).
    pub fn set(&self, value: T) -> Result<(), ManagerError> {
        self.replace(value).map(drop)
    }

    /// Overwrites the value; returns the old one.
    pub fn replace(&self, value: T) -> Result<T, ManagerError> {
        decode_moved(&self.p.bytes(ManagerOp::Store(encode(&value)?))?)
    }

    /// Stores `new` if the value is `current`; `Ok(previous)` if it stored, `Err(actual)` if
    /// not. Values are compared by their encoded bytes, so `T` must serialise
    /// deterministically (no `HashMap` inside).
    pub fn compare_and_swap(&self, current: &T, new: T) -> Result<Result<T, T>, ManagerError> {
        let r = self.p.cas::<T>(None, Some(encode(current)?), encode(&new)?)?;
        match r {
            Ok(Some(prev)) => Ok(Ok(prev)),
            Err(Some(actual)) => Ok(Err(actual)),
            Ok(None) | Err(None) => Err(super::unexpected("a value object has no value")),
        }
    }

    /// Applies `f` atomically, without a lock: reads the value, computes `f(&value)`, and
    /// stores the result only if the value has not changed meanwhile (compared as the exact
    /// bytes read, so any serialisable `T` works); otherwise retries with the newer value.
    /// Under contention `f` may run more than once, so it should have no side effects.
    /// Returns the new value.
    pub fn update(&self, mut f: impl FnMut(&T) -> T) -> Result<T, ManagerError> {
        let mut raw = self.p.bytes(ManagerOp::Load)?;
        loop {
            let cur: T = decode_copy(&raw)?;
            let new = f(&cur);
            let bytes = encode(&new)?;
            match self.p.cas_raw::<T>(None, Some(raw), bytes)? {
                (true, previous) => {
                    // The replaced value is moved out: settle the handles it held.
                    if let Some(p) = previous {
                        super::settle::<T>(&p);
                    }
                    return Ok(new);
                }
                (false, Some(actual)) => raw = actual,
                (false, None) => return Err(super::unexpected("a value object has no value")),
            }
        }
    }

    /// Atomically adds `delta`; returns the previous value. Refused with
    /// [`ManagerError::Overflow`] (value unchanged) if the result would not fit `T`.
    pub fn fetch_add(&self, delta: T) -> Result<T, ManagerError>
    where
        T: Number,
    {
        self.p.fetch_add(None, delta.delta(false))
    }

    /// Atomically subtracts `delta`; returns the previous value.
    pub fn fetch_sub(&self, delta: T) -> Result<T, ManagerError>
    where
        T: Number,
    {
        self.p.fetch_add(None, delta.delta(true))
    }
}
