//! Errors of the synchronisation primitives: one family per primitive.
//!
//! A timeout is not an error: `try_`/`_timeout` forms return `Ok(None)` or `Ok(false)`.

use crate::error::CallError;

/// Implements `From<CallError>`: an interrupt becomes `Interrupted`, anything else `Call`.
macro_rules! from_call_error {
    ($t:ident) => {
        impl From<CallError> for $t {
            fn from(e: CallError) -> Self {
                if e.is_interrupted() {
                    $t::Interrupted
                } else {
                    $t::Call(e)
                }
            }
        }
    };
}

/// Why a [`Lock`](crate::sync::Lock) operation failed.
///
/// # Example
/// ```
/// use multiproc::sync::{Lock, LockError};
///
/// let lock = Lock::new()?;
/// assert!(matches!(lock.release(), Err(LockError::NotHeld)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// `release()` of a lock that is not held (Python's `ValueError`). Nothing changed.
    #[error("release of an unlocked lock; acquire it first")]
    NotHeld,
    /// Interrupted by Ctrl-C (interrupt mode); the lock was not acquired.
    #[error("interrupted by Ctrl-C; the lock was not acquired")]
    Interrupted,
    /// The hub could not be reached, or refused the call (for example, the handle names an
    /// object that no longer exists, or that is not a lock).
    #[error(transparent)]
    Call(CallError),
}
from_call_error!(LockError);

/// Why an [`RLock`](crate::sync::RLock) operation failed.
///
/// # Example
/// ```
/// use multiproc::sync::{RLock, RLockError};
///
/// let lock = RLock::new()?;
/// assert!(matches!(lock.release(), Err(RLockError::NotOwner)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum RLockError {
    /// `release()` by a (process, thread) that does not own the lock, or of an unlocked lock
    /// (Python's `RuntimeError`/`AssertionError`). Nothing changed.
    #[error("this thread does not own the RLock, so it cannot release it")]
    NotOwner,
    /// The owner acquired the lock recursively `u32::MAX` times.
    #[error("the RLock's recursion count would overflow")]
    RecursionLimit,
    /// Interrupted by Ctrl-C (interrupt mode); the lock was not acquired.
    #[error("interrupted by Ctrl-C; the lock was not acquired")]
    Interrupted,
    /// The hub could not be reached, or refused the call.
    #[error(transparent)]
    Call(CallError),
}
from_call_error!(RLockError);

/// Why a [`Semaphore`](crate::sync::Semaphore) or
/// [`BoundedSemaphore`](crate::sync::BoundedSemaphore) operation failed.
///
/// # Example
/// ```
/// use multiproc::sync::{BoundedSemaphore, SemaphoreError};
///
/// let sem = BoundedSemaphore::new(1)?;
/// assert!(matches!(sem.release(), Err(SemaphoreError::TooManyReleases { .. })));
/// assert_eq!(sem.get_value()?, 1); // unchanged
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum SemaphoreError {
    /// A BoundedSemaphore release would raise the value above its bound (Python's
    /// `ValueError`). The value is unchanged.
    #[error("semaphore released too many times: value {value} + {released} would exceed the bound {bound}")]
    TooManyReleases {
        /// The value before the refused release.
        value: u32,
        /// How many permits the refused release tried to add.
        released: u32,
        /// The bound (the initial value).
        bound: u32,
    },
    /// Interrupted by Ctrl-C (interrupt mode); no permit was taken.
    #[error("interrupted by Ctrl-C; no permit was taken")]
    Interrupted,
    /// The hub could not be reached, or refused the call.
    #[error(transparent)]
    Call(CallError),
}
from_call_error!(SemaphoreError);

/// Why an [`Event`](crate::sync::Event) operation failed.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use multiproc::sync::{Event, EventError};
///
/// let ev = Event::new()?;
/// let set: Result<bool, EventError> = ev.wait_timeout(Duration::from_millis(10));
/// assert!(!set?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Interrupted by Ctrl-C (interrupt mode).
    #[error("interrupted by Ctrl-C while waiting for the event")]
    Interrupted,
    /// The hub could not be reached, or refused the call.
    #[error(transparent)]
    Call(CallError),
}
from_call_error!(EventError);

/// Why a [`Condition`](crate::sync::Condition) operation failed.
///
/// # Example
/// ```
/// use multiproc::sync::{Condition, ConditionError};
///
/// let cond = Condition::new()?;
/// assert!(matches!(cond.notify(), Err(ConditionError::NotOwner | ConditionError::NotHeld)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ConditionError {
    /// `wait`/`notify`/`release` by a thread that does not hold the condition's lock (Python's
    /// `RuntimeError`, "cannot wait on un-acquired lock"). Nothing changed.
    #[error("the condition's lock is not held by this thread; acquire it before wait, notify or release")]
    NotOwner,
    /// `release()` of a condition whose lock is not held at all.
    #[error("release of an unlocked condition; acquire it first")]
    NotHeld,
    /// The wait ended **and the lock is held again**, but while this thread waited a process
    /// died holding the lock (the hub released it). The state the lock protects may be
    /// inconsistent: check it. (Like `EOWNERDEAD` from `pthread_cond_wait` on a robust mutex.)
    #[error("the condition's lock was released by the death of its previous owner; the lock is held again, but the state it protects may be inconsistent")]
    PreviousOwnerDied,
    /// Interrupted by Ctrl-C (interrupt mode). After an interrupted `wait` the lock is **not**
    /// held any more.
    #[error("interrupted by Ctrl-C")]
    Interrupted,
    /// The hub could not be reached, or refused the call.
    #[error(transparent)]
    Call(CallError),
}
from_call_error!(ConditionError);

/// Why a [`Barrier`](crate::sync::Barrier) operation failed.
///
/// # Example
/// ```
/// use multiproc::sync::{Barrier, BarrierError};
///
/// let barrier = Barrier::new(2)?;
/// barrier.abort()?;
/// assert!(matches!(barrier.wait(), Err(BarrierError::Broken)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum BarrierError {
    /// The barrier is broken: it was aborted or reset while this party waited, a party timed
    /// out (this one included) or was interrupted, the action failed, or a party died. Python's
    /// `BrokenBarrierError`. A broken barrier stays broken until [`reset`](crate::sync::Barrier::reset).
    #[error("the barrier is broken (aborted, reset, timed out, its action failed, or a party died)")]
    Broken,
    /// This party ran the barrier's action and it failed (panicked). The barrier is broken and
    /// the other parties got [`BarrierError::Broken`].
    #[error("the barrier's action failed in this process: {0}; the barrier is broken")]
    ActionFailed(String),
    /// The barrier cannot be built (no parties, or an action that cannot be sent).
    #[error("invalid barrier: {0}")]
    Invalid(String),
    /// Interrupted by Ctrl-C (interrupt mode); the barrier is broken for the other parties.
    #[error("interrupted by Ctrl-C")]
    Interrupted,
    /// The hub could not be reached, or refused the call.
    #[error(transparent)]
    Call(CallError),
}
from_call_error!(BarrierError);
