//! [`Semaphore`] and [`BoundedSemaphore`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use std::sync::atomic::Ordering;

use super::error::SemaphoreError;
use super::{arena, call, cast, expect_u64, sync_reply, timeout_to_none, unexpected};
use crate::runtime::{self, handle::ObjRef};
use crate::wire::proto::{ObjectKind, Value, Wait};
use crate::wire::sync_ops::{SyncFault, SyncKind, SyncOp, SyncReply};
use crate::wire::sync_slot::{holder_tag, SyncSlot, KIND_SEM, SEM_VALUE, SEM_WAITERS};

fn create(value: u32, bound: Option<u32>) -> Result<ObjRef, SemaphoreError> {
    Ok(ObjRef::create(ObjectKind::Sync(SyncKind::Semaphore { value, bound }))?)
}

/// The fast path's slot for a semaphore.
fn slot(obj: &ObjRef) -> Option<&'static SyncSlot> {
    arena::slot(obj, KIND_SEM)
}

/// This process's `holders` entry in the slot (claimed on first use), if one is free.
fn my_entry(s: &SyncSlot) -> Option<usize> {
    let tag = holder_tag(runtime::rt().ok()?.me.proc.0);
    if let Some(i) = s
        .holders
        .iter()
        .position(|h| h.load(Ordering::Relaxed) & !SEM_VALUE == tag)
    {
        return Some(i);
    }
    s.holders.iter().position(|h| {
        h.load(Ordering::Relaxed) == 0 && h.compare_exchange(0, tag, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    })
}

/// Takes a free permit in shared memory; false if none is free (or callers are parked).
fn take_fast(s: &SyncSlot) -> bool {
    for _ in 0..64 {
        let w = s.word.load(Ordering::Relaxed);
        if w & SEM_VALUE == 0 {
            return false;
        }
        if s.word
            .compare_exchange(w, w - 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return true;
        }
    }
    false
}

/// Gives back `n` permits in shared memory. `Ok(false)`: callers are parked, the hub must
/// hand the permits over. `Err((value, bound))`: a BoundedSemaphore would exceed its bound.
fn give_fast(s: &SyncSlot, n: u32) -> Result<bool, (u32, u32)> {
    let bound = s.aux.load(Ordering::Relaxed).checked_sub(1);
    for _ in 0..64 {
        let w = s.word.load(Ordering::Relaxed);
        if w & SEM_WAITERS != 0 {
            return Ok(false);
        }
        let v = w & SEM_VALUE;
        if let Some(b) = bound {
            if v + u64::from(n) > u64::from(b) {
                return Err((v as u32, b));
            }
        }
        let new = (v + u64::from(n)).min(SEM_VALUE);
        if s.word
            .compare_exchange(w, new, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Waits in user space for a permit before parking in the hub, as a contended `Lock` does
/// (see `lock::spin_fast`): a short busy spin, then a look after each `sched_yield` until
/// `budget` passes. A parked caller costs two cross-process wake-ups per hand-over and is not
/// runnable meanwhile; on a loaded machine that made `Semaphore(1)` under contention ten
/// times slower than a `Lock`. Parked callers are not starved by this: a release that sees
/// them hands its permit to the hub, never to the word.
#[cold]
#[inline(never)]
fn spin_take(s: &SyncSlot, budget: Duration) -> bool {
    for _ in 0..32 {
        for _ in 0..32 {
            std::hint::spin_loop();
        }
        if take_fast(s) {
            return true;
        }
    }
    let end = std::time::Instant::now() + budget;
    while std::time::Instant::now() < end {
        std::thread::yield_now();
        if take_fast(s) {
            return true;
        }
    }
    false
}

/// How long a contended acquire keeps looking for a permit before it parks (the operation's
/// own timeout bounds it too).
const YIELD_FOR: Duration = Duration::from_millis(2);

fn acquire_on(obj: &ObjRef, mut wait: Wait) -> Result<Option<SemaphoreGuard<'_>>, SemaphoreError> {
    if let Some(s) = slot(obj) {
        if let Some(e) = my_entry(s) {
            // The permit first, then the entry: the entry never counts a permit not held.
            let got = take_fast(s) || {
                let started = std::time::Instant::now();
                let got = match wait {
                    Wait::Never => false,
                    Wait::Micros(us) => spin_take(s, YIELD_FOR.min(Duration::from_micros(us))),
                    Wait::Forever => spin_take(s, YIELD_FOR),
                };
                // The spin took part of the caller's timeout.
                if let (false, Wait::Micros(us)) = (got, wait) {
                    let spent = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                    if spent >= us {
                        return Ok(None);
                    }
                    wait = Wait::Micros(us - spent);
                }
                got
            };
            if got {
                s.holders[e].fetch_add(1, Ordering::Relaxed);
                return Ok(Some(SemaphoreGuard {
                    obj,
                    held: Held::Fast(e),
                }));
            }
            if wait == Wait::Never && s.word.load(Ordering::Relaxed) & SEM_VALUE == 0 {
                return Ok(None);
            }
        }
    }
    arena::count_slow();
    let op = SyncOp::SemAcquire { guard: true, wait };
    match timeout_to_none(call(obj, op, wait))? {
        None => Ok(None),
        Some(v) => match sync_reply(v)? {
            SyncReply::Acquired { ticket, .. } => Ok(Some(SemaphoreGuard {
                obj,
                held: Held::Hub(ticket),
            })),
            other => Err(SemaphoreError::Call(unexpected(other))),
        },
    }
}

/// The `.await` form of `acquire_on(obj, Wait::Forever)`: the fast path first; a permit the
/// hub grants after the future was dropped is given back (`SemGuardRelease`).
#[cfg(feature = "tokio")]
async fn acquire_async_on(obj: &ObjRef) -> Result<SemaphoreGuard<'_>, SemaphoreError> {
    if let Some(s) = slot(obj) {
        if let Some(e) = my_entry(s) {
            if take_fast(s) {
                s.holders[e].fetch_add(1, Ordering::Relaxed);
                return Ok(SemaphoreGuard {
                    obj,
                    held: Held::Fast(e),
                });
            }
        }
    }
    arena::count_slow();
    let back = obj.clone();
    let undo: runtime::aio::Undo = Box::new(move |v| {
        if let Value::Sync(SyncReply::Acquired { ticket, .. }) = v {
            let _ = call(&back, SyncOp::SemGuardRelease { ticket }, Wait::Forever);
        }
    });
    let op = crate::wire::proto::ObjOp::Sync(SyncOp::SemAcquire {
        guard: true,
        wait: Wait::Forever,
    });
    match sync_reply(obj.call_async(op, Some(undo)).await?)? {
        SyncReply::Acquired { ticket, .. } => Ok(SemaphoreGuard {
            obj,
            held: Held::Hub(ticket),
        }),
        other => Err(SemaphoreError::Call(unexpected(other))),
    }
}

fn forever<T>(r: Result<Option<T>, SemaphoreError>) -> Result<T, SemaphoreError> {
    r?.ok_or_else(|| SemaphoreError::Call(unexpected("Timeout without a deadline")))
}

fn release_on(obj: &ObjRef, n: u32) -> Result<(), SemaphoreError> {
    if let Some(s) = slot(obj) {
        match give_fast(s, n) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err((value, bound)) => {
                return Err(SemaphoreError::TooManyReleases {
                    value,
                    released: n,
                    bound,
                })
            }
        }
    }
    arena::count_slow();
    match call(obj, SyncOp::SemRelease { n }, Wait::Forever)? {
        Value::Unit => Ok(()),
        Value::Sync(SyncReply::Fault(SyncFault::OverRelease { value, bound })) => {
            Err(SemaphoreError::TooManyReleases {
                value,
                released: n,
                bound,
            })
        }
        other => Err(SemaphoreError::Call(unexpected(other))),
    }
}

fn value_on(obj: &ObjRef) -> Result<u64, SemaphoreError> {
    if let Some(s) = slot(obj) {
        return Ok(s.word.load(Ordering::Acquire) & SEM_VALUE);
    }
    arena::count_slow();
    Ok(expect_u64(call(obj, SyncOp::SemValue, Wait::Forever)?)?)
}

/// A counting semaphore shared by every process (Python's `multiprocessing.Semaphore`).
///
/// `acquire` takes a permit (waiting in FIFO order while there is none) and returns a guard
/// that gives it back when dropped. `release`/`release_n` add permits from any process; there
/// is no upper bound (see [`BoundedSemaphore`]).
///
/// Permits held through a guard by a process that dies are returned by the hub. A permit
/// turned raw with [`SemaphoreGuard::forget`] is not: that is the signalling use, where another
/// process releases it.
///
/// # Example
/// ```
/// use multiproc::sync::Semaphore;
/// use multiproc::Process;
///
/// #[multiproc::worker]
/// fn signal(done: Semaphore) {
///     done.release().unwrap();
/// }
///
/// let sem = Semaphore::new(2)?;
/// let a = sem.acquire()?;
/// let b = sem.acquire()?;
/// assert!(sem.try_acquire()?.is_none());
/// assert_eq!(sem.get_value()?, 0);
/// drop((a, b));
/// assert_eq!(sem.get_value()?, 2);
///
/// // Signalling: the child releases a permit that the parent consumes.
/// let done = Semaphore::new(0)?;
/// let mut child = Process::new(signal(done.clone())).start()?;
/// done.acquire()?.forget();
/// child.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Semaphore {
    obj: ObjRef,
}

impl Semaphore {
    /// The hub object's id, as [`multiproc::snapshot()`](crate::snapshot) names it
    /// (`#N` in its tables is the low 32 bits).
    pub fn id(&self) -> crate::observe::ObjId {
        self.obj.id()
    }

    /// Creates a semaphore with `value` permits.
    pub fn new(value: u32) -> Result<Semaphore, SemaphoreError> {
        Ok(Semaphore {
            obj: create(value, None)?,
        })
    }

    /// Takes a permit, waiting (FIFO) until one is free.
    pub fn acquire(&self) -> Result<SemaphoreGuard<'_>, SemaphoreError> {
        forever(acquire_on(&self.obj, Wait::Forever))
    }

    /// Takes a permit if one is free now; `Ok(None)` otherwise.
    pub fn try_acquire(&self) -> Result<Option<SemaphoreGuard<'_>>, SemaphoreError> {
        acquire_on(&self.obj, Wait::Never)
    }

    /// Waits at most `timeout` for a permit; `Ok(None)` if none came. A zero timeout does not
    /// wait.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Option<SemaphoreGuard<'_>>, SemaphoreError> {
        acquire_on(&self.obj, Wait::from_timeout(Some(timeout)))
    }

    /// Adds one permit (from any process), waking the first waiter.
    pub fn release(&self) -> Result<(), SemaphoreError> {
        release_on(&self.obj, 1)
    }

    /// Adds `n` permits, waking up to `n` waiters in FIFO order.
    pub fn release_n(&self, n: u32) -> Result<(), SemaphoreError> {
        release_on(&self.obj, n)
    }

    /// The number of free permits.
    pub fn get_value(&self) -> Result<u64, SemaphoreError> {
        value_on(&self.obj)
    }

    /// `true` if an acquire would have to wait (no free permit).
    pub fn locked(&self) -> Result<bool, SemaphoreError> {
        Ok(self.get_value()? == 0)
    }
}

/// A semaphore whose value may never exceed its initial value (Python's
/// `multiprocessing.BoundedSemaphore`): a release above it is an error, and changes nothing.
///
/// # Example
/// ```
/// use multiproc::sync::{BoundedSemaphore, SemaphoreError};
///
/// let sem = BoundedSemaphore::new(1)?;
/// let permit = sem.acquire()?;
/// drop(permit);
/// assert!(matches!(sem.release(), Err(SemaphoreError::TooManyReleases { .. })));
/// assert_eq!(sem.get_value()?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BoundedSemaphore {
    obj: ObjRef,
    bound: u32,
}

impl BoundedSemaphore {
    /// The hub object's id, as [`multiproc::snapshot()`](crate::snapshot) names it
    /// (`#N` in its tables is the low 32 bits).
    pub fn id(&self) -> crate::observe::ObjId {
        self.obj.id()
    }

    /// Creates a bounded semaphore with `value` permits, which is also its bound.
    pub fn new(value: u32) -> Result<BoundedSemaphore, SemaphoreError> {
        Ok(BoundedSemaphore {
            obj: create(value, Some(value))?,
            bound: value,
        })
    }

    /// The bound (the initial value).
    pub fn bound(&self) -> u32 {
        self.bound
    }

    /// Takes a permit, waiting (FIFO) until one is free.
    pub fn acquire(&self) -> Result<SemaphoreGuard<'_>, SemaphoreError> {
        forever(acquire_on(&self.obj, Wait::Forever))
    }

    /// Takes a permit if one is free now; `Ok(None)` otherwise.
    pub fn try_acquire(&self) -> Result<Option<SemaphoreGuard<'_>>, SemaphoreError> {
        acquire_on(&self.obj, Wait::Never)
    }

    /// Waits at most `timeout` for a permit; `Ok(None)` if none came. A zero timeout does not
    /// wait.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Option<SemaphoreGuard<'_>>, SemaphoreError> {
        acquire_on(&self.obj, Wait::from_timeout(Some(timeout)))
    }

    /// Adds one permit; [`SemaphoreError::TooManyReleases`] (value unchanged) if that would
    /// exceed the bound.
    pub fn release(&self) -> Result<(), SemaphoreError> {
        release_on(&self.obj, 1)
    }

    /// Adds `n` permits, all or none: [`SemaphoreError::TooManyReleases`] (value unchanged) if
    /// that would exceed the bound.
    pub fn release_n(&self, n: u32) -> Result<(), SemaphoreError> {
        release_on(&self.obj, n)
    }

    /// The number of free permits.
    pub fn get_value(&self) -> Result<u64, SemaphoreError> {
        value_on(&self.obj)
    }

    /// `true` if an acquire would have to wait (no free permit).
    pub fn locked(&self) -> Result<bool, SemaphoreError> {
        Ok(self.get_value()? == 0)
    }
}

/// One permit of a [`Semaphore`] or [`BoundedSemaphore`]; dropping it gives the permit back
/// (one-way, like [`LockGuard`](super::LockGuard)). The hub also gives it back if this process
/// dies while holding it.
///
/// # Example
/// ```
/// let sem = multiproc::sync::Semaphore::new(1)?;
/// {
///     let _permit = sem.acquire()?;
///     assert!(sem.locked()?);
/// }
/// assert!(!sem.locked()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "the permit is given back as soon as the guard is dropped"]
#[derive(Debug)]
pub struct SemaphoreGuard<'a> {
    obj: &'a ObjRef,
    held: Held,
}

/// Where a guard's permit is tracked.
#[derive(Debug, Clone, Copy)]
enum Held {
    /// By the hub, under this ticket.
    Hub(u64),
    /// In this process's `holders` entry of the slot.
    Fast(usize),
}

/// The `.await` forms (feature `tokio`).
#[cfg(feature = "tokio")]
impl Semaphore {
    /// [`acquire`](Self::acquire) as a future: a free permit is taken in shared memory; else
    /// the call parks in the hub without blocking the runtime thread. Cancel-safe: a permit
    /// granted after the future was dropped is given back at once.
    ///
    /// # Example
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let sem = multiproc::sync::Semaphore::new(1)?;
    /// let permit = sem.acquire_async().await?;
    /// drop(permit);
    /// # Ok(()) }
    /// ```
    pub async fn acquire_async(&self) -> Result<SemaphoreGuard<'_>, SemaphoreError> {
        acquire_async_on(&self.obj).await
    }
}

#[cfg(feature = "tokio")]
impl BoundedSemaphore {
    /// [`acquire`](Self::acquire) as a future (see [`Semaphore::acquire_async`]).
    ///
    /// # Example
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let sem = multiproc::sync::BoundedSemaphore::new(2)?;
    /// let _permit = sem.acquire_async().await?;
    /// # Ok(()) }
    /// ```
    pub async fn acquire_async(&self) -> Result<SemaphoreGuard<'_>, SemaphoreError> {
        acquire_async_on(&self.obj).await
    }
}

impl SemaphoreGuard<'_> {
    /// Keeps the permit without a guard (a raw permit, Python's free-standing `acquire()`):
    /// someone calls `release()` later, possibly another process. The hub stops tracking it,
    /// so it is **not** returned if this process dies.
    pub fn forget(self) {
        match self.held {
            Held::Hub(ticket) => cast(self.obj, SyncOp::SemGuardForget { ticket }),
            Held::Fast(e) => {
                if let Some(s) = slot(self.obj) {
                    s.holders[e].fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        std::mem::forget(self);
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        match self.held {
            // A permit granted by the hub (after waiting) goes back through it, synchronously
            // when the other operations read shared memory: a `get_value` right after the
            // drop must see it. (If the hub is gone, so is everything it would matter to.)
            Held::Hub(ticket) => match slot(self.obj) {
                Some(_) => {
                    let _ = call(self.obj, SyncOp::SemGuardRelease { ticket }, Wait::Forever);
                }
                None => cast(self.obj, SyncOp::SemGuardRelease { ticket }),
            },
            Held::Fast(e) => {
                let Some(s) = slot(self.obj) else { return };
                // The entry first, then the permit: the entry never counts a permit not held.
                s.holders[e].fetch_sub(1, Ordering::Relaxed);
                match give_fast(s, 1) {
                    Ok(true) => {}
                    // Callers are parked: the hub hands the permit over. (A bound already
                    // reached means raw releases gave this permit back meanwhile: drop it,
                    // as the hub does.)
                    Ok(false) => {
                        arena::count_slow();
                        cast(self.obj, SyncOp::SemRelease { n: 1 });
                    }
                    Err(_) => {}
                }
            }
        }
    }
}
