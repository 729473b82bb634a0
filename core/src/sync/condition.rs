//! [`Condition`].

use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::error::ConditionError;
use super::lock::{acquire_on, owned_by_me, owned_slot, release_held, release_on, Acq, Held};
use super::{call, call_unbounded, cast, current_thread_id, expect_u64, my_pid, new_cond_key, sync_reply, unexpected};
use super::{Lock, RLock};
use crate::runtime::handle::ObjRef;
use crate::wire::proto::Wait;
use crate::wire::sync_ops::{CondKey, SyncFault, SyncOp, SyncReply};
use crate::wire::sync_slot::{
    cond_tag, cw_next, cw_notified, end_seat_wait, COND_PARKED, CW_STATE, CW_WAITING, CW_WOKEN,
};

/// A condition variable (Python's `multiprocessing.Condition`), built on a [`Lock`] or an
/// [`RLock`] (a new RLock by default).
///
/// The hub keeps the condition's waiters next to its lock, so `wait` releases the lock and
/// parks in one step, and a notified waiter re-acquires the lock (restoring an RLock's
/// recursion count) before its `wait` returns. On Linux, with the shared-memory fast path, the
/// oldest waiter of a lock sleeps in the lock's slot instead (the *condition seat*): a `notify`
/// reaches it with no message, and it wakes when the notifier releases the lock. Order, timeouts,
/// owner death and interrupts are the same either way. Several conditions may share
/// one lock ([`Condition::with_lock`]). `wait` and `notify` require the calling thread to hold
/// the lock ([`ConditionError::NotOwner`] otherwise).
///
/// If a process dies holding the lock, the hub releases it: a later `acquire` sees
/// [`ConditionGuard::previous_owner_died`], and a waiter that re-acquires the lock afterwards
/// gets [`ConditionError::PreviousOwnerDied`] (with the lock held).
///
/// # Example
/// ```
/// use std::time::Duration;
/// use multiproc::sync::{Condition, Semaphore};
/// use multiproc::Process;
///
/// #[multiproc::worker]
/// fn notifier(cond: Condition, ready: Semaphore) {
///     ready.acquire().unwrap().forget(); // the parent is waiting
///     let _g = cond.acquire().unwrap();
///     cond.notify().unwrap();
/// }
///
/// let cond = Condition::new()?;
/// let ready = Semaphore::new(0)?;
/// let guard = cond.acquire()?;
/// let mut child = Process::new(notifier(cond.clone(), ready.clone())).start()?;
/// ready.release()?;
/// assert!(cond.wait_timeout(Duration::from_secs(10))?); // notified, and the lock is held again
/// drop(guard);
/// child.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Condition {
    lock: ObjRef,
    recursive: bool,
    key: CondKey,
}

impl Condition {
    /// A condition on a new [`RLock`].
    pub fn new() -> Result<Condition, ConditionError> {
        let lock = RLock::new().map_err(|e| match e {
            super::RLockError::Call(c) => ConditionError::from(c),
            other => ConditionError::Call(unexpected(other)),
        })?;
        Condition::with_rlock(&lock)
    }

    /// A condition on an existing [`Lock`] (shared with every other user of that lock).
    pub fn with_lock(lock: &Lock) -> Result<Condition, ConditionError> {
        Ok(Condition {
            lock: lock.obj().clone(),
            recursive: false,
            key: new_cond_key()?,
        })
    }

    /// A condition on an existing [`RLock`].
    pub fn with_rlock(lock: &RLock) -> Result<Condition, ConditionError> {
        Ok(Condition {
            lock: lock.obj().clone(),
            recursive: true,
            key: new_cond_key()?,
        })
    }

    /// Is the underlying lock an RLock?
    pub fn is_recursive(&self) -> bool {
        self.recursive
    }

    fn acquire_wait(&self, wait: Wait) -> Result<Option<ConditionGuard<'_>>, ConditionError> {
        match acquire_on(&self.lock, self.recursive, wait)? {
            Acq::Got(held, owner_died) => Ok(Some(ConditionGuard {
                cond: self,
                held,
                owner_died,
                _not_send: PhantomData,
            })),
            Acq::TimedOut => Ok(None),
            Acq::Refused(f) => Err(ConditionError::Call(unexpected(f))),
        }
    }

    /// Acquires the underlying lock (waiting in FIFO order).
    pub fn acquire(&self) -> Result<ConditionGuard<'_>, ConditionError> {
        self.acquire_wait(Wait::Forever)?
            .ok_or_else(|| ConditionError::Call(unexpected("Timeout without a deadline")))
    }

    /// Acquires the underlying lock if that needs no waiting.
    pub fn try_acquire(&self) -> Result<Option<ConditionGuard<'_>>, ConditionError> {
        self.acquire_wait(Wait::Never)
    }

    /// Waits at most `timeout` for the underlying lock.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Option<ConditionGuard<'_>>, ConditionError> {
        self.acquire_wait(Wait::from_timeout(Some(timeout)))
    }

    /// Releases the underlying lock (free-standing style, after [`ConditionGuard::forget`]).
    pub fn release(&self) -> Result<(), ConditionError> {
        match release_on(&self.lock, self.recursive)? {
            None => Ok(()),
            Some(SyncFault::NotHeld) => Err(ConditionError::NotHeld),
            Some(SyncFault::NotOwner) => Err(ConditionError::NotOwner),
            Some(f) => Err(ConditionError::Call(unexpected(f))),
        }
    }

    /// The lock's handle and whether it is an RLock (for the fault tests' scribbler).
    pub(super) fn lock_ref(&self) -> (&ObjRef, bool) {
        (&self.lock, self.recursive)
    }

    fn tag(&self) -> u64 {
        cond_tag(self.key.proc, self.key.seq)
    }

    fn wait_inner(&self, wait: Wait) -> Result<bool, ConditionError> {
        if SEAT && wait != Wait::Never {
            if let Some(r) = self.wait_in_seat(wait) {
                return r;
            }
        }
        let op = SyncOp::CondWait {
            cond: self.key,
            thread: current_thread_id(),
            pid: my_pid(),
            wait,
        };
        match sync_reply(call_unbounded(&self.lock, op)?)? {
            SyncReply::Woken { owner_died: true, .. } => Err(ConditionError::PreviousOwnerDied),
            SyncReply::Woken { notified, .. } => Ok(notified),
            SyncReply::Fault(SyncFault::NotOwner) => Err(ConditionError::NotOwner),
            other => Err(ConditionError::Call(unexpected(other))),
        }
    }

    /// Releases the lock, waits for a notification, and re-acquires the lock before returning
    /// (an RLock at its previous recursion depth). The calling thread must hold the lock.
    pub fn wait(&self) -> Result<(), ConditionError> {
        self.wait_inner(Wait::Forever).map(|_| ())
    }

    /// Like [`wait`](Self::wait), but stops waiting for a notification after `timeout`. Returns
    /// `false` if it timed out. Either way the lock is held again on return (re-acquiring it is
    /// not limited by the timeout, as in Python). A zero timeout releases the lock and takes it
    /// back in turn.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, ConditionError> {
        self.wait_inner(Wait::from_timeout(Some(timeout)))
    }

    /// Waits until `predicate` (run in the caller, with the lock held, before the first wait
    /// and after each wake-up) returns `true`.
    pub fn wait_for(&self, mut predicate: impl FnMut() -> bool) -> Result<(), ConditionError> {
        while !predicate() {
            self.wait()?;
        }
        Ok(())
    }

    /// Like [`wait_for`](Self::wait_for), giving up after `timeout` in total. Returns the last
    /// value of the predicate (Python's `wait_for(predicate, timeout)`).
    pub fn wait_for_timeout(
        &self,
        mut predicate: impl FnMut() -> bool,
        timeout: Duration,
    ) -> Result<bool, ConditionError> {
        let end = Instant::now().checked_add(timeout);
        let mut result = predicate();
        while !result {
            let left = match end {
                Some(end) => end.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                break;
            }
            self.wait_timeout(left)?;
            result = predicate();
        }
        Ok(result)
    }

    /// Sends the notification. When the shared word says that this thread owns the lock, it is
    /// one-way (`CondSignal`): this thread's later calls (its `wait`, say) travel on the same
    /// connection behind it, so their order holds, and the hub serves it perhaps just after
    /// the release that follows (a pure CAS): a waiter that starts waiting in between may be
    /// woken by it too. Otherwise it is a call (`CondNotify`), which reports `NotOwner`.
    ///
    /// With the fast path, the seat's waiter (the oldest, if any, see `wire::sync_slot`) is
    /// woken first, in shared memory (one `futex_wake`, no message), and the hub hears of the
    /// notification only if `n` is left and the slot says waiters are parked there. A notify
    /// with no waiters is then a few loads: no system call, no message.
    fn notify_inner(&self, n: u32) -> Result<(), ConditionError> {
        if let Some((s, _)) = owned_slot(&self.lock, self.recursive) {
            let mut left = n;
            // Ends the seat's wait (the sleeper is woken when the lock is released; see
            // `wire::sync_slot`).
            if left > 0 && end_seat_wait(s, self.tag(), cw_notified) {
                left -= 1;
            }
            if left > 0 && s.aux.load(Ordering::SeqCst) & COND_PARKED != 0 {
                cast(
                    &self.lock,
                    SyncOp::CondSignal {
                        cond: self.key,
                        n: left,
                    },
                );
            }
            return Ok(());
        }
        if owned_by_me(&self.lock, self.recursive) {
            cast(&self.lock, SyncOp::CondSignal { cond: self.key, n });
            return Ok(());
        }
        let op = SyncOp::CondNotify {
            cond: self.key,
            thread: current_thread_id(),
            n,
        };
        match call(&self.lock, op, Wait::Forever)? {
            crate::wire::proto::Value::Sync(SyncReply::Fault(SyncFault::NotOwner)) => Err(ConditionError::NotOwner),
            v => expect_u64(v).map(|_| ()).map_err(ConditionError::from),
        }
    }

    /// Wakes the longest-waiting waiter, if any. The calling thread must hold the lock; the
    /// woken waiter gets it after the caller releases it.
    pub fn notify(&self) -> Result<(), ConditionError> {
        self.notify_n(1)
    }

    /// Wakes up to `n` waiters, oldest first.
    pub fn notify_n(&self, n: u32) -> Result<(), ConditionError> {
        self.notify_inner(n)
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) -> Result<(), ConditionError> {
        self.notify_inner(u32::MAX)
    }
}

/// Does this platform wait in the condition seat (a futex)? Elsewhere every wait is the hub's.
const SEAT: bool = cfg!(target_os = "linux");

/// How long one futex sleep lasts in interrupt mode before the waiter looks for a Ctrl-C.
const INTERRUPT_SLICE: Duration = Duration::from_millis(10);

impl Condition {
    /// `wait` in the condition seat (see `wire::sync_slot`): take the seat while holding the
    /// lock, release the lock, sleep on the seat's futex word until a notifier ends the wait
    /// (or the deadline, or an interrupt, which end it themselves), then take the lock back.
    /// `None` (nothing changed) when the seat cannot be used: no fast path, the lock is not the
    /// caller's (the hub answers `NotOwner`), the seat is taken, or waiters are parked in the
    /// hub (they are older: FIFO).
    #[inline(never)]
    fn wait_in_seat(&self, wait: Wait) -> Option<Result<bool, ConditionError>> {
        let (s, tok) = owned_slot(&self.lock, self.recursive)?;
        if s.aux.load(Ordering::SeqCst) & COND_PARKED != 0 {
            return None;
        }
        // Free, or ended by a notify whose sleeper is still to be woken: then we wake it once
        // we have released the lock.
        let free = s.cwait.load(Ordering::SeqCst);
        let take_over = free & CW_STATE == CW_WOKEN;
        if free & CW_STATE != 0 && !take_over {
            return None;
        }
        let deadline = crate::runtime::deadline_of(wait);
        // The seat's companions first, then the word that publishes them.
        s.holders[0].store(tok, Ordering::SeqCst);
        s.holders[1].store(self.tag(), Ordering::SeqCst);
        let mine = (free & !CW_STATE) | CW_WAITING;
        if s.cwait
            .compare_exchange(free, mine, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return None;
        }
        let Some(hold) = super::lock::release_for_wait(&self.lock, s, tok) else {
            // Only a scribbled word gets here: give the seat back, let the hub answer.
            let _ = s
                .cwait
                .compare_exchange(mine, cw_next(mine), Ordering::SeqCst, Ordering::SeqCst);
            if take_over {
                crate::sys::futex::wake(&s.cwait, u32::MAX);
            }
            return None;
        };
        if take_over {
            crate::sys::futex::wake(&s.cwait, u32::MAX);
        }
        let watch = crate::InterruptWatch::new();
        let sliced = crate::runtime::interrupt::catching();
        // End our own wait: true if we did (the seat is free again), false if a notifier (or
        // the hub) ended it first.
        let end_own = || {
            s.cwait
                .compare_exchange(mine, cw_next(mine), Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        };
        let notified = loop {
            if s.cwait.load(Ordering::SeqCst) != mine {
                break true;
            }
            if sliced && watch.fired() {
                // Interrupted: the lock is not taken back (as on the hub's path). A notify that
                // won the race is consumed, as in Python.
                let _ = end_own();
                return Some(Err(ConditionError::Interrupted));
            }
            let left = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        break !end_own();
                    }
                    Some(left)
                }
                None => None,
            };
            let left = if sliced {
                Some(left.map_or(INTERRUPT_SLICE, |l| l.min(INTERRUPT_SLICE)))
            } else {
                left
            };
            crate::sys::futex::wait(&s.cwait, mine, left);
        };
        Some(
            match super::lock::reacquire_after_wait(&self.lock, self.recursive, s, hold) {
                Ok(Ok(false)) => Ok(notified),
                Ok(Ok(true)) => Err(ConditionError::PreviousOwnerDied),
                Ok(Err(f)) => Err(ConditionError::Call(unexpected(f))),
                Err(e) => Err(ConditionError::from(e)),
            },
        )
    }
}

/// Proof that the calling thread holds a [`Condition`]'s lock; dropping it releases the lock
/// (one level of an RLock). Waiting with [`Condition::wait`] while holding it is fine: the
/// lock is held again when the wait returns.
///
/// # Example
/// ```
/// let cond = multiproc::sync::Condition::new()?;
/// let guard = cond.acquire()?;
/// assert!(!guard.previous_owner_died());
/// cond.notify_all()?; // no waiters: nothing happens
/// drop(guard);
/// assert!(cond.notify().is_err()); // not held any more
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct ConditionGuard<'a> {
    cond: &'a Condition,
    held: Held,
    owner_died: bool,
    _not_send: PhantomData<*const ()>,
}

impl ConditionGuard<'_> {
    /// `true` if the previous owner of the lock died holding it and the hub released it.
    pub fn previous_owner_died(&self) -> bool {
        self.owner_died
    }

    /// Keeps the lock held without a guard; release it with [`Condition::release`].
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for ConditionGuard<'_> {
    fn drop(&mut self) {
        release_held(&self.cond.lock, self.cond.recursive, self.held);
    }
}

/// The `.await` forms (feature `tokio`).
#[cfg(feature = "tokio")]
impl Condition {
    /// Takes the condition's lock as a future (see [`Lock::acquire_async`]); the guard is owned
    /// by this acquisition, not by a thread, and is `Send`. Wait and notify through it.
    ///
    /// # Example
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let cond = multiproc::sync::Condition::new()?;
    /// let guard = cond.acquire_async().await?;
    /// guard.notify_all_async().await?;
    /// // Wait at most 10 ms for a notification: dropping the wait frees the lock.
    /// let r = tokio::time::timeout(std::time::Duration::from_millis(10), guard.wait_async()).await;
    /// assert!(r.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn acquire_async(&self) -> Result<AsyncConditionGuard<'_>, ConditionError> {
        let thread = super::fresh_owner_id();
        match super::lock::acquire_async_on(&self.lock, self.recursive, thread).await? {
            Ok((held, owner_died)) => Ok(AsyncConditionGuard {
                cond: self,
                thread,
                held,
                owner_died,
            }),
            Err(f) => Err(ConditionError::Call(unexpected(f))),
        }
    }
}

/// The lock of a [`Condition`] held by an async acquisition ([`Condition::acquire_async`]);
/// dropping it releases the lock. Unlike [`ConditionGuard`] it is `Send` (the owner is the
/// acquisition, not a thread).
#[cfg(feature = "tokio")]
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct AsyncConditionGuard<'a> {
    cond: &'a Condition,
    thread: u64,
    held: Held,
    owner_died: bool,
}

#[cfg(feature = "tokio")]
impl<'a> AsyncConditionGuard<'a> {
    /// `true` if the previous owner of the lock died holding it and the hub released it
    /// (also after a [`wait_async`](Self::wait_async) that re-acquired it so).
    pub fn previous_owner_died(&self) -> bool {
        self.owner_died
    }

    /// Releases the lock, waits for a notification, re-acquires the lock and gives the guard
    /// back ([`Condition::wait`] as a future). The guard is consumed so that a dropped wait
    /// cannot leave a guard behind whose lock is not held: dropping the future stops waiting
    /// and leaves the lock *released* (a re-acquisition the hub granted meanwhile is released
    /// again).
    pub async fn wait_async(self) -> Result<AsyncConditionGuard<'a>, ConditionError> {
        let me = std::mem::ManuallyDrop::new(self);
        let (cond, thread, held) = (me.cond, me.thread, me.held);
        let (back, recursive) = (cond.lock.clone(), cond.recursive);
        let undo: crate::runtime::aio::Undo = Box::new(move |v| {
            if let crate::wire::proto::Value::Sync(SyncReply::Woken { .. }) = v {
                release_held(&back, recursive, held);
            }
        });
        let op = crate::wire::proto::ObjOp::Sync(SyncOp::CondWait {
            cond: cond.key,
            thread,
            pid: my_pid(),
            wait: Wait::Forever,
        });
        match sync_reply(cond.lock.call_async(op, Some(undo)).await?)? {
            SyncReply::Woken { owner_died, .. } => Ok(AsyncConditionGuard {
                cond,
                thread,
                held,
                owner_died,
            }),
            SyncReply::Fault(SyncFault::NotOwner) => Err(ConditionError::NotOwner),
            other => Err(ConditionError::Call(unexpected(other))),
        }
    }

    async fn notify_n_async(&self, n: u32) -> Result<(), ConditionError> {
        let op = crate::wire::proto::ObjOp::Sync(SyncOp::CondNotify {
            cond: self.cond.key,
            thread: self.thread,
            n,
        });
        match self.cond.lock.call_async(op, None).await? {
            crate::wire::proto::Value::Sync(SyncReply::Fault(SyncFault::NotOwner)) => Err(ConditionError::NotOwner),
            v => expect_u64(v).map(|_| ()).map_err(ConditionError::from),
        }
    }

    /// Wakes the longest-waiting waiter ([`Condition::notify`] as a future).
    pub async fn notify_async(&self) -> Result<(), ConditionError> {
        self.notify_n_async(1).await
    }

    /// Wakes every waiter ([`Condition::notify_all`] as a future).
    pub async fn notify_all_async(&self) -> Result<(), ConditionError> {
        self.notify_n_async(u32::MAX).await
    }
}

#[cfg(feature = "tokio")]
impl Drop for AsyncConditionGuard<'_> {
    fn drop(&mut self) {
        release_held(&self.cond.lock, self.cond.recursive, self.held);
    }
}
