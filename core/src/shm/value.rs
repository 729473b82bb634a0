//! [`Value`] and [`RawValue`]: one `Pod` in shared memory.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{fence, read_at, write_at, Pod, Segment, ShmError};
use crate::sync::Lock;

/// One plain-old-data value in shared memory, with no lock (Python's `RawValue`).
///
/// Reads and writes are volatile copies. A value wider than the machine's atomic width (a
/// struct) written by one process while another reads it may be seen torn; use [`Value`]
/// (locked) or an atomic (see [`crate::shm`]) when that matters.
///
/// # Example
/// ```
/// use multiproc::shm::RawValue;
/// use multiproc::Process;
///
/// #[multiproc::worker]
/// fn set(v: RawValue<u16>) {
///     v.set(4242);
/// }
///
/// let v = RawValue::<u16>::zeroed()?;
/// assert_eq!(v.get(), 0);
/// Process::new(set(v.clone())).start()?.join()?;
/// assert_eq!(v.get(), 4242);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RawValue<T: Pod> {
    seg: Arc<Segment>,
    _t: PhantomData<T>,
}

impl<T: Pod> RawValue<T> {
    /// A new value in fresh shared memory, set to `init`.
    pub fn new(init: T) -> Result<Self, ShmError> {
        let v = Self::zeroed()?;
        v.set(init);
        Ok(v)
    }

    /// A new value in fresh shared memory, all bytes zero.
    pub fn zeroed() -> Result<Self, ShmError> {
        Ok(RawValue {
            seg: Segment::new::<T>("value", 1)?,
            _t: PhantomData,
        })
    }

    /// A copy of the value.
    pub fn get(&self) -> T {
        // SAFETY: the segment holds exactly one T (checked at creation or on receipt).
        unsafe { read_at(&self.seg, 0) }
    }

    /// Overwrites the value.
    pub fn set(&self, v: T) {
        // SAFETY: the segment holds exactly one T.
        unsafe { write_at(&self.seg, 0, v) }
    }
}

impl<T: Pod> Clone for RawValue<T> {
    /// Another handle to the same memory (the mapping is shared).
    fn clone(&self) -> Self {
        RawValue {
            seg: self.seg.clone(),
            _t: PhantomData,
        }
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for RawValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RawValue").field(&self.get()).finish()
    }
}

impl<T: Pod> Serialize for RawValue<T> {
    /// Attaches a duplicate of the descriptor (worker arguments only; see [`crate::shm`]).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.seg.serialize(s)
    }
}

impl<'de, T: Pod> Deserialize<'de> for RawValue<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(RawValue {
            seg: Segment::deserialize(d, Some(std::mem::size_of::<T>()))?,
            _t: PhantomData,
        })
    }
}

/// One plain-old-data value in shared memory, guarded by a multiproc [`Lock`] (Python's
/// `Value`).
///
/// [`get`](Value::get) and [`set`](Value::set) take the lock for one copy;
/// [`with_lock`](Value::with_lock) runs a read-modify-write under it (Python's
/// `with v.get_lock(): v.value += 1`). The lock is a normal multiproc lock: if a process dies
/// holding it, the hub releases it.
///
/// # Example
/// ```
/// use multiproc::shm::Value;
/// use multiproc::Process;
///
/// #[multiproc::worker]
/// fn add(v: Value<i64>, n: u32) {
///     for _ in 0..n {
///         v.with_lock(|x| *x += 1).unwrap();
///     }
/// }
///
/// let v = Value::new(0i64)?;
/// let mut kids = Vec::new();
/// for _ in 0..2 {
///     kids.push(Process::new(add(v.clone(), 50)).start()?);
/// }
/// for mut k in kids {
///     k.join()?;
/// }
/// assert_eq!(v.get()?, 100);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Value<T: Pod> {
    raw: RawValue<T>,
    lock: Lock,
}

impl<T: Pod> Value<T> {
    /// A new value set to `init`, with a new lock.
    pub fn new(init: T) -> Result<Self, ShmError> {
        Ok(Value {
            raw: RawValue::new(init)?,
            lock: Lock::new()?,
        })
    }

    /// A new zero-filled value, with a new lock.
    pub fn zeroed() -> Result<Self, ShmError> {
        Ok(Value {
            raw: RawValue::zeroed()?,
            lock: Lock::new()?,
        })
    }

    /// A new value guarded by an existing lock (Python's `Value(..., lock=lock)`), so that
    /// several values can be updated together under one lock.
    pub fn with_lock_of(init: T, lock: Lock) -> Result<Self, ShmError> {
        Ok(Value {
            raw: RawValue::new(init)?,
            lock,
        })
    }

    /// The lock that guards the value (Python's `get_lock()`).
    pub fn get_lock(&self) -> &Lock {
        &self.lock
    }

    /// The value without its lock (Python's `get_obj()`): reads and writes through it do not
    /// take the lock. Useful while already holding [`get_lock`](Value::get_lock).
    pub fn get_obj(&self) -> &RawValue<T> {
        &self.raw
    }

    /// A copy of the value, read under the lock.
    pub fn get(&self) -> Result<T, ShmError> {
        self.with_lock(|v| *v)
    }

    /// Overwrites the value under the lock.
    pub fn set(&self, v: T) -> Result<(), ShmError> {
        self.with_lock(|x| *x = v)
    }

    /// Runs `f` on a private copy of the value while holding the lock, then writes the copy
    /// back (unless `f` panics, in which case the value is unchanged) and releases the lock.
    /// `f`'s `&mut T` never points into shared memory (see the module's soundness rules).
    pub fn with_lock<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R, ShmError> {
        let guard = self.lock.acquire()?;
        fence();
        let mut v = self.raw.get();
        let r = f(&mut v);
        self.raw.set(v);
        fence();
        drop(guard);
        Ok(r)
    }
}

impl<T: Pod> Clone for Value<T> {
    /// Another handle to the same memory and the same lock.
    fn clone(&self) -> Self {
        Value {
            raw: self.raw.clone(),
            lock: self.lock.clone(),
        }
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Unlocked read: Debug must not block.
        f.debug_struct("Value")
            .field("value", &self.raw.get())
            .field("lock", &self.lock)
            .finish()
    }
}
