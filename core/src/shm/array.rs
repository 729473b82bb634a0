//! [`Array`] and [`RawArray`]: a fixed-length array of `Pod` in shared memory.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{fence, read_at, write_at, Pod, Segment, ShmError};
use crate::sync::Lock;

/// A fixed-length array of plain-old-data values in shared memory, with no lock (Python's
/// `RawArray`).
///
/// Every access is a volatile copy of whole elements; there is never a reference into the
/// shared memory. Elements wider than the machine's atomic width, and ranges, may be seen
/// torn while another process writes them (see [`crate::shm`]).
///
/// # Example
/// ```
/// use multiproc::shm::RawArray;
/// use multiproc::Process;
///
/// #[multiproc::worker]
/// fn squares(a: RawArray<u32>) {
///     for i in 0..a.len() {
///         a.set(i, (i * i) as u32).unwrap();
///     }
/// }
///
/// let a = RawArray::<u32>::zeroed(5)?;
/// Process::new(squares(a.clone())).start()?.join()?;
/// assert_eq!(a.to_vec(), [0, 1, 4, 9, 16]);
/// assert!(a.get(5).is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RawArray<T: Pod> {
    seg: Arc<Segment>,
    len: usize,
    _t: PhantomData<T>,
}

impl<T: Pod> RawArray<T> {
    /// A zero-filled array of `len` elements in fresh shared memory.
    pub fn zeroed(len: usize) -> Result<Self, ShmError> {
        Ok(RawArray {
            seg: Segment::new::<T>("array", len)?,
            len,
            _t: PhantomData,
        })
    }

    /// An array holding a copy of `items`.
    pub fn from_slice(items: &[T]) -> Result<Self, ShmError> {
        let a = Self::zeroed(items.len())?;
        a.write(0, items)?;
        Ok(a)
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Has it no elements?
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A copy of element `i`, or `None` if `i >= len()`.
    pub fn get(&self, i: usize) -> Option<T> {
        // SAFETY: i < len, the number of T the segment holds.
        (i < self.len).then(|| unsafe { read_at(&self.seg, i) })
    }

    /// Overwrites element `i`; an index out of range is an error and changes nothing.
    pub fn set(&self, i: usize, v: T) -> Result<(), ShmError> {
        if i >= self.len {
            return Err(ShmError::IndexOutOfRange {
                index: i,
                len: self.len,
            });
        }
        // SAFETY: i < len.
        unsafe { write_at(&self.seg, i, v) };
        Ok(())
    }

    fn check(&self, r: &Range<usize>) -> Result<(), ShmError> {
        if r.start > r.end || r.end > self.len {
            return Err(ShmError::IndexOutOfRange {
                index: r.end.max(r.start),
                len: self.len,
            });
        }
        Ok(())
    }

    /// A copy of the elements in `range`.
    pub fn read(&self, range: Range<usize>) -> Result<Vec<T>, ShmError> {
        self.check(&range)?;
        // SAFETY: every index of the range is < len (checked).
        Ok(range.map(|i| unsafe { read_at(&self.seg, i) }).collect())
    }

    /// Copies `items` into the array starting at element `start` (Python's slice
    /// assignment). Out of range: an error, and nothing is written.
    pub fn write(&self, start: usize, items: &[T]) -> Result<(), ShmError> {
        let end = start.saturating_add(items.len());
        self.check(&(start..end))?;
        for (k, v) in items.iter().enumerate() {
            // SAFETY: start + k < end <= len (checked).
            unsafe { write_at(&self.seg, start + k, *v) };
        }
        Ok(())
    }

    /// A copy of the whole array.
    pub fn to_vec(&self) -> Vec<T> {
        // SAFETY: every i < len.
        (0..self.len).map(|i| unsafe { read_at(&self.seg, i) }).collect()
    }
}

impl<T: Pod> Clone for RawArray<T> {
    /// Another handle to the same memory.
    fn clone(&self) -> Self {
        RawArray {
            seg: self.seg.clone(),
            len: self.len,
            _t: PhantomData,
        }
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for RawArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RawArray").field(&self.to_vec()).finish()
    }
}

impl<T: Pod> Serialize for RawArray<T> {
    /// Attaches a duplicate of the descriptor (worker arguments only; see [`crate::shm`]).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (SegSer(&self.seg), self.len as u64).serialize(s)
    }
}

struct SegSer<'a>(&'a Segment);
impl Serialize for SegSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: Pod> Deserialize<'de> for RawArray<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, SeqAccess, Visitor};
        struct V<T>(PhantomData<T>);
        impl<'de, T: Pod> Visitor<'de> for V<T> {
            type Value = RawArray<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a shared array (segment, length)")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawArray<T>, A::Error> {
                let seg: SegDe = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let len: u64 = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(1, &self))?;
                let len = usize::try_from(len).map_err(|_| A::Error::custom("shared array too long"))?;
                let want = len.checked_mul(std::mem::size_of::<T>());
                if want != Some(seg.0.bytes) {
                    return Err(A::Error::custom(format!(
                        "a shared array of {len} elements of {} bytes cannot live in a segment of {} bytes \
                         (a different element type?)",
                        std::mem::size_of::<T>(),
                        seg.0.bytes
                    )));
                }
                Ok(RawArray {
                    seg: seg.0,
                    len,
                    _t: PhantomData,
                })
            }
        }
        d.deserialize_tuple(2, V(PhantomData))
    }
}

struct SegDe(Arc<Segment>);
impl<'de> Deserialize<'de> for SegDe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(SegDe(Segment::deserialize(d, None)?))
    }
}

/// A fixed-length array of plain-old-data values in shared memory, guarded by a multiproc
/// [`Lock`] (Python's `Array`).
///
/// Every method takes the lock for its duration. [`with_lock`](Array::with_lock) runs a
/// closure on a private copy of the whole array under the lock and writes it back, which is
/// how to update several elements consistently (Python's `with arr.get_lock(): ...`); it
/// costs two copies of the array, so for large arrays prefer [`read`](Array::read) /
/// [`write`](Array::write) on ranges while holding [`get_lock`](Array::get_lock) and using
/// [`get_obj`](Array::get_obj).
///
/// # Example
/// ```
/// use multiproc::shm::Array;
/// use multiproc::Process;
///
/// #[multiproc::worker]
/// fn running_sum(a: Array<i64>) {
///     a.with_lock(|xs| {
///         for i in 1..xs.len() {
///             xs[i] += xs[i - 1];
///         }
///     })
///     .unwrap();
/// }
///
/// let a = Array::from_slice(&[1i64, 2, 3, 4])?;
/// Process::new(running_sum(a.clone())).start()?.join()?;
/// assert_eq!(a.to_vec()?, [1, 3, 6, 10]);
/// assert!(a.get(4).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Array<T: Pod> {
    raw: RawArray<T>,
    lock: Lock,
}

impl<T: Pod> Array<T> {
    /// A zero-filled array of `len` elements, with a new lock.
    pub fn zeroed(len: usize) -> Result<Self, ShmError> {
        Ok(Array {
            raw: RawArray::zeroed(len)?,
            lock: Lock::new()?,
        })
    }

    /// An array holding a copy of `items`, with a new lock.
    pub fn from_slice(items: &[T]) -> Result<Self, ShmError> {
        Ok(Array {
            raw: RawArray::from_slice(items)?,
            lock: Lock::new()?,
        })
    }

    /// A zero-filled array guarded by an existing lock (Python's `lock=` argument).
    pub fn zeroed_with_lock_of(len: usize, lock: Lock) -> Result<Self, ShmError> {
        Ok(Array {
            raw: RawArray::zeroed(len)?,
            lock,
        })
    }

    /// The lock that guards the array (Python's `get_lock()`).
    pub fn get_lock(&self) -> &Lock {
        &self.lock
    }

    /// The array without its lock (Python's `get_obj()`).
    pub fn get_obj(&self) -> &RawArray<T> {
        &self.raw
    }

    /// The number of elements (fixed; no lock needed).
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Has it no elements?
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    fn locked<R>(&self, f: impl FnOnce(&RawArray<T>) -> R) -> Result<R, ShmError> {
        let guard = self.lock.acquire()?;
        fence();
        let r = f(&self.raw);
        fence();
        drop(guard);
        Ok(r)
    }

    /// A copy of element `i`; out of range is an error.
    pub fn get(&self, i: usize) -> Result<T, ShmError> {
        if i >= self.len() {
            return Err(ShmError::IndexOutOfRange {
                index: i,
                len: self.len(),
            });
        }
        self.locked(|a| a.get(i))?.ok_or(ShmError::IndexOutOfRange {
            index: i,
            len: self.len(),
        })
    }

    /// Overwrites element `i`; out of range is an error and changes nothing.
    pub fn set(&self, i: usize, v: T) -> Result<(), ShmError> {
        if i >= self.len() {
            return Err(ShmError::IndexOutOfRange {
                index: i,
                len: self.len(),
            });
        }
        self.locked(|a| a.set(i, v))?
    }

    /// A copy of the elements in `range`, read under the lock.
    pub fn read(&self, range: Range<usize>) -> Result<Vec<T>, ShmError> {
        self.raw.check(&range)?;
        self.locked(|a| a.read(range))?
    }

    /// Copies `items` in starting at `start`, under the lock.
    pub fn write(&self, start: usize, items: &[T]) -> Result<(), ShmError> {
        self.locked(|a| a.write(start, items))?
    }

    /// A copy of the whole array, read under the lock.
    pub fn to_vec(&self) -> Result<Vec<T>, ShmError> {
        self.locked(|a| a.to_vec())
    }

    /// Runs `f` on a private copy of the whole array while holding the lock, then writes the
    /// copy back (unless `f` panics: then nothing changes) and releases the lock.
    pub fn with_lock<R>(&self, f: impl FnOnce(&mut [T]) -> R) -> Result<R, ShmError> {
        self.locked(|a| {
            let mut copy = a.to_vec();
            let r = f(&mut copy);
            // Same length: cannot fail.
            let _ = a.write(0, &copy);
            r
        })
    }
}

impl<T: Pod> Clone for Array<T> {
    /// Another handle to the same memory and the same lock.
    fn clone(&self) -> Self {
        Array {
            raw: self.raw.clone(),
            lock: self.lock.clone(),
        }
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array")
            .field("len", &self.len())
            .field("lock", &self.lock)
            .finish()
    }
}
