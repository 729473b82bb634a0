//! Atomic integers in shared memory.
//!
//! Each is a `std::sync::atomic` integer placed at the start of its own anonymous shared
//! segment. Lock-free atomics are address-free (they operate on the memory, not on anything
//! process-local), so they synchronise processes exactly as they synchronise threads: no hub
//! round trip, no lock, tens of millions of operations per second.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Segment, ShmError};

macro_rules! shm_atomic {
    ($name:ident, $std:ident, $int:ty, $doc_ty:literal) => {
        #[doc = concat!("An atomic `", $doc_ty, "` in shared memory, usable from every process it is passed to.")]
        ///
        /// The methods are those of the `std` atomic of the same name, with the same memory
        /// orderings; they are sound across processes because the atomic is lock-free
        /// (address-free). It starts at the value given to `new` (zero for `zeroed`).
        ///
        /// # Example
        /// ```
        /// use std::sync::atomic::Ordering;
        #[doc = concat!("use multiproc::shm::", stringify!($name), ";")]
        /// use multiproc::Process;
        ///
        /// #[multiproc::worker]
        #[doc = concat!("fn bump(c: ", stringify!($name), ", n: u32) {")]
        ///     for _ in 0..n {
        ///         c.fetch_add(1, Ordering::Relaxed);
        ///     }
        /// }
        ///
        #[doc = concat!("let c = ", stringify!($name), "::new(5)?;")]
        /// let mut kids = Vec::new();
        /// for _ in 0..2 {
        ///     kids.push(Process::new(bump(c.clone(), 1000)).start()?);
        /// }
        /// for mut k in kids {
        ///     k.join()?;
        /// }
        /// assert_eq!(c.load(Ordering::SeqCst), 2005);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        #[derive(Clone)]
        pub struct $name {
            seg: Arc<Segment>,
        }

        impl $name {
            /// A new atomic in fresh shared memory, set to `v`.
            pub fn new(v: $int) -> Result<Self, ShmError> {
                let a = $name {
                    seg: Segment::new::<std::sync::atomic::$std>("atomic", 1)?,
                };
                a.get().store(v, Ordering::SeqCst);
                Ok(a)
            }

            /// A new atomic set to zero.
            pub fn zeroed() -> Result<Self, ShmError> {
                Ok($name {
                    seg: Segment::new::<std::sync::atomic::$std>("atomic", 1)?,
                })
            }

            /// The `std` atomic in the shared mapping. The reference lives as long as `self`.
            fn get(&self) -> &std::sync::atomic::$std {
                // SAFETY: the segment holds one atomic (checked at creation and on receipt),
                // page-aligned, mapped read/write for as long as `self.seg` (and hence `self`)
                // lives. A shared `&Atomic` may alias freely: every access through it is
                // atomic, in this process and in every other process mapping the memory (the
                // atomic is lock-free, so its operations act on the memory itself). Zero-filled
                // memory is a valid atomic integer (0).
                unsafe { &*self.seg.base::<std::sync::atomic::$std>() }
            }

            /// Loads the value.
            pub fn load(&self, order: Ordering) -> $int {
                self.get().load(order)
            }

            /// Stores a value.
            pub fn store(&self, v: $int, order: Ordering) {
                self.get().store(v, order)
            }

            /// Stores a value, returning the previous one.
            pub fn swap(&self, v: $int, order: Ordering) -> $int {
                self.get().swap(v, order)
            }

            /// Adds (wrapping on overflow), returning the previous value.
            pub fn fetch_add(&self, v: $int, order: Ordering) -> $int {
                self.get().fetch_add(v, order)
            }

            /// Subtracts (wrapping on overflow), returning the previous value.
            pub fn fetch_sub(&self, v: $int, order: Ordering) -> $int {
                self.get().fetch_sub(v, order)
            }

            /// Bitwise and, returning the previous value.
            pub fn fetch_and(&self, v: $int, order: Ordering) -> $int {
                self.get().fetch_and(v, order)
            }

            /// Bitwise or, returning the previous value.
            pub fn fetch_or(&self, v: $int, order: Ordering) -> $int {
                self.get().fetch_or(v, order)
            }

            /// Bitwise xor, returning the previous value.
            pub fn fetch_xor(&self, v: $int, order: Ordering) -> $int {
                self.get().fetch_xor(v, order)
            }

            /// Maximum, returning the previous value.
            pub fn fetch_max(&self, v: $int, order: Ordering) -> $int {
                self.get().fetch_max(v, order)
            }

            /// Minimum, returning the previous value.
            pub fn fetch_min(&self, v: $int, order: Ordering) -> $int {
                self.get().fetch_min(v, order)
            }

            /// Stores `new` if the value is `current`; returns the previous value, `Ok` if it
            /// was `current`.
            pub fn compare_exchange(
                &self,
                current: $int,
                new: $int,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$int, $int> {
                self.get().compare_exchange(current, new, success, failure)
            }

            /// Applies `f` until it succeeds without interference (a CAS loop), or `f`
            /// returns `None`; returns the previous value (`Err` if `f` declined).
            pub fn fetch_update(
                &self,
                set_order: Ordering,
                fetch_order: Ordering,
                f: impl FnMut($int) -> Option<$int>,
            ) -> Result<$int, $int> {
                self.get().fetch_update(set_order, fetch_order, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name))
                    .field(&self.load(Ordering::SeqCst))
                    .finish()
            }
        }

        impl Serialize for $name {
            /// Attaches a duplicate of the descriptor (worker arguments only; see
            /// [`crate::shm`]).
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.seg.serialize(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok($name {
                    seg: Segment::deserialize(d, Some(std::mem::size_of::<std::sync::atomic::$std>()))?,
                })
            }
        }
    };
}

shm_atomic!(AtomicU32, AtomicU32, u32, "u32");
shm_atomic!(AtomicI32, AtomicI32, i32, "i32");
#[cfg(target_has_atomic = "64")]
shm_atomic!(AtomicU64, AtomicU64, u64, "u64");
#[cfg(target_has_atomic = "64")]
shm_atomic!(AtomicI64, AtomicI64, i64, "i64");
