//! Shared memory: Python's `Value`, `Array`, `RawValue` and `RawArray`, plus atomics.
//!
//! | type | Python | access |
//! |---|---|---|
//! | [`Value<T>`] | `Value(typecode, x)` | `get`/`set`/`with_lock` under a multiproc [`Lock`](crate::sync::Lock) |
//! | [`RawValue<T>`] | `RawValue(typecode, x)` | `get`/`set`, no lock |
//! | [`Array<T>`] | `Array(typecode, n)` | `get`/`set`/`read`/`write`/`to_vec`/`with_lock` under a lock |
//! | [`RawArray<T>`] | `RawArray(typecode, n)` | the same, no lock |
//! | [`AtomicU64`], [`AtomicI64`], [`AtomicU32`], [`AtomicI32`] | — | `fetch_add`, `compare_exchange`, ... lock-free |
//!
//! # Memory
//! Each value or array is its own anonymous memory object (`memfd_create` on Linux; elsewhere
//! `shm_open` with the name unlinked at once), zero-filled at creation and mapped `MAP_SHARED`.
//! It has no name in any file system: the kernel frees it when the last process that maps it
//! (or holds its descriptor) lets go, so a SIGKILL leaves nothing in `/dev/shm`.
//!
//! A handle is `Clone` (clones in one process share one mapping) and `Serialize +
//! Deserialize`: passed to a child as a worker or Pool task argument, inside a message on a
//! pipe Connection, a Queue item or a mailbox message, its descriptor travels next to the bytes
//! (`SCM_RIGHTS`; the hub keeps it with a queued item or held mail) and the receiver maps the
//! same memory. It cannot travel inside a Manager value or an `ask` reply (serialisation fails
//! with an error that says so).
//!
//! # Soundness rules
//! Memory shared with other processes is memory that can change at any time, behind the
//! compiler's back, so these types never hand out a reference into it, except to atomics:
//! 1. **No references to shared plain data.** There is no `&T`/`&mut T`/`&[T]` into the
//!    mapping. Every read is a `read_volatile` copy out and every write a `write_volatile`
//!    copy in, element by element. `with_lock` gives the closure a `&mut` to a *private copy*
//!    taken under the lock and writes it back before releasing; so no two processes (or
//!    threads) ever alias a `&mut`.
//! 2. **Only plain old data.** `T: `[`Pod`]: every bit pattern is a valid `T` (so a zero-filled
//!    segment, or a value torn by a racing unlocked write, is still a valid `T`), no padding
//!    that could leak, no pointers (an address is meaningless in another process), no `Drop`.
//! 3. **Races are values, not UB.** In the raw forms, concurrent unlocked writes may tear a
//!    value wider than the machine's atomic width (a struct, or an array range): readers see a
//!    mix of old and new bytes, which rule 2 makes a valid `T`. Use the synchronised forms or
//!    the atomics when that matters.
//! 4. **Ordering.** The synchronised forms put a `SeqCst` fence after taking the lock and
//!    before releasing it, so writes made under the lock are visible to the next holder in any
//!    process. Atomics are `std` atomics placed in the mapping; for lock-free sizes they are
//!    address-free and work across processes like they do across threads.
//! 5. **Lifetime.** The mapping is owned by an `Arc` shared by the handle's clones; it is
//!    unmapped when the last clone in that process drops, and never while a method runs.
//!
//! # Example
//! ```
//! use multiproc::shm::{Array, Value};
//! use multiproc::Process;
//!
//! #[multiproc::worker]
//! fn work(n: Value<f64>, a: Array<i32>) {
//!     n.set(3.1415927).unwrap();
//!     a.with_lock(|xs| xs.iter_mut().for_each(|x| *x = -*x)).unwrap();
//! }
//!
//! let num = Value::new(0.0f64)?;
//! let arr = Array::from_slice(&(0..10).collect::<Vec<i32>>())?;
//! Process::new(work(num.clone(), arr.clone())).start()?.join()?;
//! assert_eq!(num.get()?, 3.1415927);
//! assert_eq!(arr.to_vec()?, (0..10).map(|x| -x).collect::<Vec<i32>>());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod array;
mod atomic;
mod error;
mod value;

pub use array::{Array, RawArray};
pub use atomic::{AtomicI32, AtomicU32};
#[cfg(target_has_atomic = "64")]
pub use atomic::{AtomicI64, AtomicU64};
pub use error::ShmError;
pub use value::{RawValue, Value};

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::runtime::fdpass;
use crate::sys;
use crate::sys::mem::Mapping;

/// Plain old data: a type that may live in memory shared between processes.
///
/// # Safety
/// Implement it only for a type that
/// - is `Copy`, has no `Drop`, contains no pointers or references (an address means nothing
///   in another process), and no `UnsafeCell`;
/// - is valid for **every** bit pattern of its size (all zeros included: shared memory starts
///   zero-filled, and a torn racing write can mix two values) — so not `bool`, `char`, enums,
///   `NonZero*`, or references;
/// - has a stable layout: a primitive, an array of `Pod`, or a `#[repr(C)]` (or
///   `#[repr(transparent)]`) struct whose fields are all `Pod` and which has **no padding**
///   (order fields by decreasing alignment, or add explicit padding fields);
/// - has an alignment of at most 4096 bytes.
///
/// # Example
/// ```
/// use multiproc::shm::{Pod, Value};
///
/// #[repr(C)]
/// #[derive(Clone, Copy, Debug, PartialEq)]
/// struct Point {
///     x: f64,
///     y: f64,
/// }
/// // SAFETY: repr(C), two f64 fields, no padding, every bit pattern is a valid Point.
/// unsafe impl Pod for Point {}
///
/// let p = Value::new(Point { x: 1.0, y: 2.0 })?;
/// p.with_lock(|p| p.x *= 10.0)?;
/// assert_eq!(p.get()?, Point { x: 10.0, y: 2.0 });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub unsafe trait Pod: Copy + Send + Sync + 'static {}

macro_rules! pod {
    ($($t:ty),*) => {
        $(
            // SAFETY: a primitive integer or float: no padding, every bit pattern valid.
            unsafe impl Pod for $t {}
        )*
    };
}
pod!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64);

// SAFETY: an array of Pod has no padding between elements and every bit pattern of each
// element is valid, so every bit pattern of the array is.
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}

/// One anonymous memory object and this process's mapping of it.
#[derive(Debug)]
pub(crate) struct Segment {
    fd: OwnedFd,
    map: Mapping,
    /// The bytes in use (the mapping may be larger by rounding, never smaller).
    bytes: usize,
}

impl Segment {
    /// A new zero-filled segment for `len` values of `T`.
    fn new<T>(what: &str, len: usize) -> Result<Arc<Segment>, ShmError> {
        if std::mem::align_of::<T>() > 4096 {
            return Err(ShmError::Alignment(std::mem::align_of::<T>()));
        }
        let bytes = len.checked_mul(std::mem::size_of::<T>()).ok_or(ShmError::TooLarge {
            len,
            elem_size: std::mem::size_of::<T>(),
        })?;
        if bytes > isize::MAX as usize {
            return Err(ShmError::TooLarge {
                len,
                elem_size: std::mem::size_of::<T>(),
            });
        }
        let fd = sys::mem::shared_memory(&format!("multiproc-{what}"), bytes.max(1))?;
        let map = Mapping::new(fd.as_fd(), bytes.max(1))?;
        Ok(Arc::new(Segment { fd, map, bytes }))
    }

    /// The base of the mapping, as a pointer to `T` (page-aligned, so aligned for any `Pod`).
    fn base<T>(&self) -> *mut T {
        self.map.as_ptr().cast()
    }

    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let dup = sys::fd::dup(self.fd.as_fd())
            .map_err(|e| S::Error::custom(format!("cannot duplicate the shared memory descriptor: {e}")))?;
        let index = fdpass::attach(dup).ok_or_else(|| {
            S::Error::custom(
                "shared memory (multiproc::shm) can be sent to another process as a worker argument, a Pool task \
                 argument, inside a message on a pipe Connection, a Queue item or a mailbox message (its descriptor \
                 travels next to the bytes); it cannot go through a Manager, an ask reply, a remote manager's queue \
                 or another format (those carry bytes only)",
            )
        })?;
        (index, self.bytes as u64).serialize(s)
    }

    /// Maps a received segment, checking that it holds `expect` bytes.
    fn deserialize<'de, D: Deserializer<'de>>(d: D, expect: Option<usize>) -> Result<Arc<Segment>, D::Error> {
        use serde::de::Error;
        let (index, bytes) = <(u32, u64)>::deserialize(d)?;
        let bytes = usize::try_from(bytes).map_err(|_| D::Error::custom("shared memory segment too large"))?;
        if let Some(e) = expect {
            if e != bytes {
                return Err(D::Error::custom(format!(
                    "a shared memory segment of {bytes} bytes was received where {e} were expected (a different element type?)"
                )));
            }
        }
        let fd = fdpass::take(index).ok_or_else(|| {
            D::Error::custom(
                "the descriptor of a shared memory segment did not arrive with the value (it was not sent as a \
                 worker or Pool task argument, on a pipe Connection, through a Queue or a mailbox)",
            )
        })?;
        let size = sys::mem::object_size(fd.as_fd())
            .map_err(|e| D::Error::custom(format!("cannot inspect a received shared memory segment: {e}")))?;
        if size < bytes.max(1) {
            return Err(D::Error::custom(format!(
                "a received shared memory segment has {size} bytes, fewer than the {bytes} announced"
            )));
        }
        let map = Mapping::new(fd.as_fd(), bytes.max(1))
            .map_err(|e| D::Error::custom(format!("cannot map a received shared memory segment: {e}")))?;
        Ok(Arc::new(Segment { fd, map, bytes }))
    }
}

/// Reads element `i` of a segment holding `T`s.
///
/// # Safety
/// `i` must be below the number of `T`s the segment holds.
unsafe fn read_at<T: Pod>(seg: &Segment, i: usize) -> T {
    // SAFETY: the caller guarantees `i` is in bounds; the base is page-aligned and `T`'s
    // alignment is at most a page (checked at creation), so the pointer is aligned; the
    // mapping lives as long as `seg`; `T: Pod` makes any bytes found there a valid `T`, even
    // if another process is writing them right now (rule 3 of the module docs). A volatile
    // read copies out without creating a reference into shared memory.
    unsafe { std::ptr::read_volatile(seg.base::<T>().add(i)) }
}

/// Writes element `i` of a segment holding `T`s.
///
/// # Safety
/// `i` must be below the number of `T`s the segment holds.
unsafe fn write_at<T: Pod>(seg: &Segment, i: usize, v: T) {
    // SAFETY: as for read_at: in bounds (caller), aligned, mapped read/write for the lifetime
    // of `seg`; a volatile write copies in without any reference into shared memory, so no
    // `&`/`&mut` aliasing is created; `T: Pod` has no drop glue to skip.
    unsafe { std::ptr::write_volatile(seg.base::<T>().add(i), v) }
}

/// A full fence: used after taking a lock and before releasing it (rule 4).
fn fence() {
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
}
