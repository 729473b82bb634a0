//! [`Lock`] and [`RLock`].

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use std::sync::atomic::Ordering;

use super::arena;
use super::error::{LockError, RLockError};
use super::{call, cast, current_thread_id, my_pid, sync_reply, timeout_to_none, unexpected};
use crate::error::CallError;
use crate::runtime::{self, handle::ObjRef};
use crate::wire::proto::{ObjectKind, ProcId, Value, Wait};
use crate::wire::sync_ops::{SyncFault, SyncKind, SyncOp, SyncReply};
use crate::wire::sync_slot::{
    barge_free, claim_seat_wake, held, owner_of, owner_token, token, token_thread, SyncSlot, CW_STATE, CW_WOKEN, DIED,
    FAIR, KIND_LOCK, KIND_RLOCK, LOCK_FLAGS, NOTIFIED, WAITERS,
};

/// An ownership as its guard remembers it: the acquiring thread and the ownership's sequence
/// number (its ticket), so that a stale guard releases nothing.
#[derive(Debug, Clone, Copy)]
pub(super) struct Held {
    thread: u64,
    seq: u64,
}

/// What an acquire got.
pub(super) enum Acq {
    /// The lock (or permit): its ownership, and whether the previous owner died.
    Got(Held, bool),
    /// The deadline passed (or `Wait::Never` would have had to wait).
    TimedOut,
    /// Refused.
    Refused(SyncFault),
}

fn kind(recursive: bool) -> u32 {
    if recursive {
        KIND_RLOCK
    } else {
        KIND_LOCK
    }
}

/// This process's id and pid (the fast path needs both; `None` if the runtime cannot start).
fn me() -> Option<(u64, i32)> {
    runtime::rt().ok().map(|rt| (rt.me.proc.0, rt.me.pid))
}

/// The fast path's slot for a lock, with this process's identity.
fn fast(obj: &ObjRef, recursive: bool) -> Option<(&'static SyncSlot, u64, i32)> {
    let s = arena::slot(obj, kind(recursive))?;
    let (proc, pid) = me()?;
    Some((s, proc, pid))
}

enum Fast {
    Got(Held, bool),
    Busy,
    Overflow,
}

/// One attempt at taking the lock in shared memory: a re-entry for an RLock's owner, else one
/// compare-and-swap of a free word to our token. A word that is free while callers are parked
/// (`WAITERS` alone) is taken too, keeping `WAITERS` (barging; the hub's `FAIR` bit forbids it).
fn try_fast(s: &SyncSlot, proc: u64, pid: i32, thread: u64, recursive: bool) -> Fast {
    let tok = token(proc, thread);
    let w = s.word.load(Ordering::Relaxed);
    if held(w) && !barge_free(w) {
        if recursive && owner_token(w) == tok {
            // We own it: only this thread writes `count` now.
            return match s.count.load(Ordering::Relaxed).checked_add(1) {
                Some(c) => {
                    s.count.store(c, Ordering::Relaxed);
                    let seq = u64::from(s.seq.load(Ordering::Relaxed));
                    Fast::Got(Held { thread, seq }, false)
                }
                None => Fast::Overflow,
            };
        }
        return Fast::Busy;
    }
    let new = tok | (w & (WAITERS | NOTIFIED));
    match s.word.compare_exchange(w, new, Ordering::Acquire, Ordering::Relaxed) {
        Ok(_) => {
            // Ours now: write the companions (only the owner writes them).
            let seq = s.seq.load(Ordering::Relaxed).wrapping_add(1);
            s.seq.store(seq, Ordering::Relaxed);
            s.count.store(1, Ordering::Relaxed);
            s.pid.store(pid, Ordering::Relaxed);
            Fast::Got(
                Held {
                    thread,
                    seq: u64::from(seq),
                },
                w == DIED,
            )
        }
        Err(_) => Fast::Busy,
    }
}

/// Waits in user space for a lock held by another process before parking in the hub: first
/// a short busy spin (the owner is running and about to release), then, until `budget`
/// passes, looks again after each `sched_yield`. Parking costs two cross-process wake-ups per
/// hand-over, and a parked process is not runnable, so it loses its turns to the processes
/// that keep running; a yielding waiter stays runnable, gives its CPU to whoever needs it
/// (the preempted owner, or any other process), and takes the lock as soon as it is free.
/// Stops as soon as the hub says that a parked caller has waited too long (`FAIR`): that one
/// is served first.
#[cold]
#[inline(never)]
fn spin_fast(s: &SyncSlot, proc: u64, pid: i32, thread: u64, recursive: bool, budget: Duration) -> Option<Fast> {
    let look = || {
        if s.word.load(Ordering::Relaxed) & FAIR != 0 {
            return Some(None);
        }
        match try_fast(s, proc, pid, thread, recursive) {
            Fast::Busy => None,
            got => Some(Some(got)),
        }
    };
    for _ in 0..SPIN_ROUNDS {
        for _ in 0..32 {
            std::hint::spin_loop();
        }
        if let Some(r) = look() {
            return r;
        }
    }
    let end = Instant::now() + budget;
    while Instant::now() < end {
        std::thread::yield_now();
        if let Some(r) = look() {
            return r;
        }
    }
    None
}

/// Sets `WAITERS` on a held word (a caller is about to park in the hub). A word that turned free
/// meanwhile is left alone: the hub grants it to the caller.
fn announce(s: &SyncSlot) {
    for _ in 0..8 {
        let w = s.word.load(Ordering::Relaxed);
        if !held(w) || w & WAITERS != 0 {
            return;
        }
        if s.word
            .compare_exchange(w, w | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
    }
}

/// How many times a contended acquirer looks again (busy) before it starts yielding.
const SPIN_ROUNDS: u32 = 32;

/// How long a contended acquirer keeps yielding and looking before it parks in the hub (the
/// operation's own timeout bounds it too). Long enough to outlast an owner's preemption on a
/// machine with more runnable processes than CPUs; see `spin_fast`.
const YIELD_FOR: Duration = Duration::from_millis(2);

#[inline]
pub(super) fn acquire_on(obj: &ObjRef, recursive: bool, wait: Wait) -> Result<Acq, CallError> {
    let thread = current_thread_id();
    if let Some((s, proc, pid)) = fast(obj, recursive) {
        // The uncontended path: two atomics, inlined into the handle's `acquire`; everything
        // else is out of line.
        match try_fast(s, proc, pid, thread, recursive) {
            Fast::Got(h, died) => return Ok(Acq::Got(h, died)),
            Fast::Overflow => return Ok(Acq::Refused(SyncFault::Overflow)),
            Fast::Busy => return acquire_contended(obj, s, (proc, pid, thread), recursive, wait),
        }
    }
    acquire_in_hub(obj, thread, wait)
}

/// A fast-path acquire that found the lock held: spin and yield for a while (bounded by the
/// caller's timeout), then park in the hub.
#[cold]
#[inline(never)]
fn acquire_contended(
    obj: &ObjRef,
    s: &'static SyncSlot,
    (proc, pid, thread): (u64, i32, u64),
    recursive: bool,
    mut wait: Wait,
) -> Result<Acq, CallError> {
    // Only a contended acquire reads the clock (the uncontended path is two atomics).
    let started = Instant::now();
    let budget = match wait {
        Wait::Micros(us) => YIELD_FOR.min(Duration::from_micros(us)),
        _ => YIELD_FOR,
    };
    let r = if wait == Wait::Never {
        // A fair hand-over in progress (`WAITERS | FAIR` alone) is the hub's to settle first.
        if owner_of(s.word.load(Ordering::Relaxed)).is_some() {
            return Ok(Acq::TimedOut);
        }
        None
    } else {
        spin_fast(s, proc, pid, thread, recursive, budget)
    };
    match r {
        Some(Fast::Got(h, died)) => return Ok(Acq::Got(h, died)),
        Some(Fast::Overflow) => return Ok(Acq::Refused(SyncFault::Overflow)),
        // Contended: park in the hub, which hands the lock over. Announce it first (set
        // WAITERS), so that the owner's next release goes to the hub instead of letting
        // the owner take the lock back while this acquire is on its way.
        Some(Fast::Busy) | None => {
            // The spin took part of the caller's timeout.
            if let Wait::Micros(us) = wait {
                let spent = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                if spent >= us {
                    return Ok(Acq::TimedOut);
                }
                wait = Wait::Micros(us - spent);
            }
            if wait != Wait::Never {
                announce(s);
            }
        }
    }
    acquire_in_hub(obj, thread, wait)
}

/// An acquire through the hub (no fast path, or contended after the spin).
#[inline(never)]
fn acquire_in_hub(obj: &ObjRef, thread: u64, wait: Wait) -> Result<Acq, CallError> {
    arena::count_slow();
    let op = SyncOp::Acquire {
        thread,
        pid: my_pid(),
        wait,
    };
    match timeout_to_none(call(obj, op, wait))? {
        None => Ok(Acq::TimedOut),
        Some(v) => match sync_reply(v)? {
            SyncReply::Acquired { ticket, owner_died } => Ok(Acq::Got(Held { thread, seq: ticket }, owner_died)),
            SyncReply::Fault(f) => Ok(Acq::Refused(f)),
            other => Err(unexpected(other)),
        },
    }
}

/// Gives up a word owned by `tok` (Release ordering): one CAS to 0 when nobody waits; else
/// one CAS to its flags alone (`WAITERS`, perhaps `FAIR`) plus `NOTIFIED`, and a `HandOff` to
/// the hub unless one is already pending there (`NOTIFIED` was set). A guard's `HandOff` is
/// one-way; an explicit release's is a call, always sent, so that the release has been settled
/// by the hub when it returns. Returns false if the word no longer named `tok`.
#[inline(never)]
fn unlock_word(obj: &ObjRef, s: &SyncSlot, tok: u64, sync: bool) -> Result<bool, CallError> {
    let mut pending = false;
    for _ in 0..64 {
        let w = s.word.load(Ordering::Relaxed);
        if !held(w) || owner_token(w) != tok {
            return Ok(false);
        }
        if w & WAITERS == 0 {
            if s.word
                .compare_exchange(w, 0, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                wake_notified(s);
                return Ok(true);
            }
            continue;
        }
        if s.word
            .compare_exchange(w, (w & LOCK_FLAGS) | NOTIFIED, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            wake_notified(s);
            pending = w & NOTIFIED != 0;
            break;
        }
    }
    if sync {
        arena::count_slow();
        super::expect_unit(call(obj, SyncOp::HandOff, Wait::Forever)?)?;
    } else if !pending {
        arena::count_slow();
        cast(obj, SyncOp::HandOff);
    }
    Ok(true)
}

/// Wakes the condition seat's sleeper if a notify ended its wait while the lock was held
/// (`g|WOKEN → g|FREE`, then `futex_wake`; see `wire::sync_slot`). Called after every release
/// in shared memory; the hub does the same after the releases it makes.
#[cold]
#[inline(never)]
pub(super) fn wake_notified(s: &SyncSlot) {
    if claim_seat_wake(s, 8, || false) {
        crate::sys::futex::wake(&s.cwait, u32::MAX);
    }
}

/// An explicit release; `Ok(Some(fault))` when it is refused.
pub(super) fn release_on(obj: &ObjRef, recursive: bool) -> Result<Option<SyncFault>, CallError> {
    let thread = current_thread_id();
    if let Some((s, proc, _)) = fast(obj, recursive) {
        let w = s.word.load(Ordering::Relaxed);
        // Flags alone (free with callers parked, or a fair hand-over in progress) are left to
        // the hub below, which settles the hand-over first.
        if let Some((op, ot)) = owner_of(w) {
            let tok = token(op, ot);
            if recursive {
                if tok != token(proc, thread) {
                    return Ok(Some(SyncFault::NotOwner));
                }
                let c = s.count.load(Ordering::Relaxed);
                if c > 1 {
                    s.count.store(c - 1, Ordering::Relaxed);
                    return Ok(None);
                }
            }
            if unlock_word(obj, s, tok, true)? {
                return Ok(None);
            }
        } else if !held(w) {
            return Ok(Some(if recursive {
                SyncFault::NotOwner
            } else {
                SyncFault::NotHeld
            }));
        }
    }
    arena::count_slow();
    let op = SyncOp::Release { thread, ticket: None };
    match call(obj, op, Wait::Forever)? {
        Value::Unit => Ok(None),
        Value::Sync(SyncReply::Fault(f)) => Ok(Some(f)),
        other => Err(unexpected(other)),
    }
}

/// A guard's release: releases only the ownership the guard names (one level of an RLock);
/// one-way when it needs the hub.
#[inline]
pub(super) fn release_held(obj: &ObjRef, recursive: bool, h: Held) {
    if let Some((s, proc, _)) = fast(obj, recursive) {
        let tok = token(proc, h.thread);
        let w = s.word.load(Ordering::Relaxed);
        if !held(w) || owner_token(w) != tok || u64::from(s.seq.load(Ordering::Relaxed)) != h.seq {
            return; // stale: this ownership ended already
        }
        if recursive {
            let c = s.count.load(Ordering::Relaxed);
            if c > 1 {
                s.count.store(c - 1, Ordering::Relaxed);
                return;
            }
        }
        // The uncontended release: our token alone (no flags) back to free, in one CAS.
        if w == tok
            && s.word
                .compare_exchange(w, 0, Ordering::Release, Ordering::Relaxed)
                .is_ok()
        {
            // A condition waiter notified while we held the lock is woken now that it is free.
            if s.cwait.load(Ordering::SeqCst) & CW_STATE == CW_WOKEN {
                wake_notified(s);
            }
            return;
        }
        // If the hub is gone, so is everything the release would have mattered to.
        let _ = unlock_word(obj, s, tok, false);
        return;
    }
    release_held_in_hub(obj, h);
}

#[cold]
#[inline(never)]
fn release_held_in_hub(obj: &ObjRef, h: Held) {
    arena::count_slow();
    cast(
        obj,
        SyncOp::Release {
            thread: h.thread,
            ticket: Some(h.seq),
        },
    );
}

/// The fast-path slot of a lock that the shared word says the calling thread owns, with the
/// owner's token (for a condition's seat; `None` without the fast path or when not the owner).
pub(super) fn owned_slot(obj: &ObjRef, recursive: bool) -> Option<(&'static SyncSlot, u64)> {
    let (s, proc, _) = fast(obj, recursive)?;
    let tok = token(proc, current_thread_id());
    (owner_of(s.word.load(Ordering::Acquire)) == owner_of(tok)).then_some((s, tok))
}

/// An ownership given up for a condition wait in shared memory, to be restored after it.
#[derive(Debug, Clone, Copy)]
pub(super) struct WaitHold {
    count: u32,
    seq: u32,
    pid: i32,
}

/// Releases the lock owned by `tok` fully (every level of an RLock) for a condition wait in
/// shared memory; `None` if the word no longer names `tok` (nothing changed).
pub(super) fn release_for_wait(obj: &ObjRef, s: &SyncSlot, tok: u64) -> Option<WaitHold> {
    let hold = WaitHold {
        count: s.count.load(Ordering::Relaxed).max(1),
        seq: s.seq.load(Ordering::Relaxed),
        pid: s.pid.load(Ordering::Relaxed),
    };
    s.count.store(1, Ordering::Relaxed);
    match unlock_word(obj, s, tok, false) {
        Ok(true) => Some(hold),
        _ => {
            s.count.store(hold.count, Ordering::Relaxed);
            None
        }
    }
}

/// Takes the lock back after a condition wait in shared memory and restores the ownership
/// given up (an RLock's depth, the guard's ticket). Returns whether the previous owner died.
pub(super) fn reacquire_after_wait(
    obj: &ObjRef,
    recursive: bool,
    s: &SyncSlot,
    hold: WaitHold,
) -> Result<Result<bool, SyncFault>, CallError> {
    match acquire_on(obj, recursive, Wait::Forever)? {
        Acq::Got(_, died) => {
            // Ours again: only this thread writes the companions now.
            s.count.store(hold.count, Ordering::Relaxed);
            s.seq.store(hold.seq, Ordering::Relaxed);
            s.pid.store(hold.pid, Ordering::Relaxed);
            Ok(Ok(died))
        }
        Acq::Refused(f) => Ok(Err(f)),
        Acq::TimedOut => Err(unexpected("Timeout without a deadline")),
    }
}

/// Does the shared word say that the calling thread owns the lock? `false` without the fast
/// path (then only the hub knows).
pub(super) fn owned_by_me(obj: &ObjRef, recursive: bool) -> bool {
    let Some((s, proc, _)) = fast(obj, recursive) else {
        return false;
    };
    owner_of(s.word.load(Ordering::Acquire)) == Some((proc, token_thread(current_thread_id())))
}

fn locked_on(obj: &ObjRef, recursive: bool) -> Result<bool, CallError> {
    if let Some(s) = arena::slot(obj, kind(recursive)) {
        let w = s.word.load(Ordering::Acquire);
        // Flags alone: a hand-over may be in progress; the hub knows whether anyone gets it.
        if owner_of(w).is_some() || !held(w) {
            return Ok(held(w));
        }
    }
    super::expect_bool(call(obj, SyncOp::Locked, Wait::Forever)?)
}

/// A lock shared by every process of the program (Python's `multiprocessing.Lock`).
///
/// Not recursive: a second `acquire` by the holder blocks (or times out), as in Python. Any
/// process may [`release`](Lock::release) it, as in Python. If the process that acquired it
/// dies while it is held, the hub releases it, and the next acquirer's guard says so
/// ([`LockGuard::previous_owner_died`]).
///
/// # Example
/// ```
/// use multiproc::sync::Lock;
/// use multiproc::Process;
///
/// #[multiproc::worker]
/// fn locked_in_child(lock: Lock) -> bool {
///     let held = lock.locked().unwrap();
///     held
/// }
///
/// let lock = Lock::new()?;
/// {
///     let guard = lock.acquire()?;
///     assert!(!guard.previous_owner_died());
///     assert!(lock.try_acquire()?.is_none()); // not recursive
///     let mut child = Process::new(locked_in_child(lock.clone())).start()?;
///     assert!(child.join()?);
/// } // dropping the guard releases
/// assert!(!lock.locked()?);
///
/// // Python's free-standing style: acquire here, release anywhere.
/// lock.acquire()?.forget();
/// lock.release()?;
/// assert!(lock.release().is_err()); // releasing an unlocked lock is an error
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lock {
    obj: ObjRef,
}

impl Lock {
    /// The hub object's id, as [`multiproc::snapshot()`](crate::snapshot) names it
    /// (`#N` in its tables is the low 32 bits).
    pub fn id(&self) -> crate::observe::ObjId {
        self.obj.id()
    }

    /// Creates an unlocked lock.
    pub fn new() -> Result<Lock, LockError> {
        Ok(Lock {
            obj: ObjRef::create(ObjectKind::Sync(SyncKind::Lock))?,
        })
    }

    pub(super) fn obj(&self) -> &ObjRef {
        &self.obj
    }

    #[inline]
    fn acquire_wait(&self, wait: Wait) -> Result<Option<LockGuard<'_>>, LockError> {
        match acquire_on(&self.obj, false, wait)? {
            Acq::Got(held, owner_died) => Ok(Some(LockGuard {
                lock: self,
                held,
                owner_died,
            })),
            Acq::TimedOut => Ok(None),
            Acq::Refused(f) => Err(LockError::Call(unexpected(f))),
        }
    }

    /// Waits until the lock is free and takes it. Waiters are served in FIFO order.
    pub fn acquire(&self) -> Result<LockGuard<'_>, LockError> {
        self.acquire_wait(Wait::Forever)?
            .ok_or_else(|| LockError::Call(unexpected("Timeout without a deadline")))
    }

    /// Takes the lock if it is free now; `Ok(None)` if it is held.
    pub fn try_acquire(&self) -> Result<Option<LockGuard<'_>>, LockError> {
        self.acquire_wait(Wait::Never)
    }

    /// Waits at most `timeout` for the lock; `Ok(None)` if it stayed held. A zero timeout does
    /// not wait (Python's semantics).
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Option<LockGuard<'_>>, LockError> {
        self.acquire_wait(Wait::from_timeout(Some(timeout)))
    }

    /// Releases the lock, whoever acquired it (Python's `release()`), and hands it to the
    /// first waiter. [`LockError::NotHeld`] if it is not locked. Synchronous: when it returns,
    /// the hub has released the lock.
    pub fn release(&self) -> Result<(), LockError> {
        match release_on(&self.obj, false)? {
            None => Ok(()),
            Some(SyncFault::NotHeld) => Err(LockError::NotHeld),
            Some(f) => Err(LockError::Call(unexpected(f))),
        }
    }

    /// Is the lock held (by anyone)?
    pub fn locked(&self) -> Result<bool, LockError> {
        Ok(locked_on(&self.obj, false)?)
    }
}

/// The `.await` form (feature `tokio`).
#[cfg(feature = "tokio")]
impl Lock {
    /// [`acquire`](Self::acquire) as a future. The uncontended case is the same single
    /// compare-and-swap in shared memory as the blocking form (the future is ready at its first
    /// poll); a held lock parks the call in the hub without blocking the runtime thread.
    ///
    /// The guard is owned by this *acquisition*, not by a thread: it may be dropped on another
    /// worker thread of a multi-thread runtime.
    ///
    /// **Cancel-safe:** dropping the future leaves the lock as it was. A waiter still parked is
    /// forgotten by the hub; a lock the hub granted just before it learned of the drop is
    /// released again at once (FIFO order is kept for the other waiters).
    ///
    /// # Example
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let lock = multiproc::sync::Lock::new()?;
    /// let guard = lock.acquire_async().await?;
    /// // Held: a second acquire with a deadline gives up, and leaves nothing behind.
    /// let again = tokio::time::timeout(std::time::Duration::from_millis(50), lock.acquire_async()).await;
    /// assert!(again.is_err());
    /// drop(guard);
    /// assert!(!lock.locked()?);
    /// # Ok(()) }
    /// ```
    pub async fn acquire_async(&self) -> Result<LockGuard<'_>, LockError> {
        // Each async acquisition is an owner of its own (a task is not a thread).
        let thread = super::fresh_owner_id();
        match acquire_async_on(&self.obj, false, thread).await? {
            Ok((held, owner_died)) => Ok(LockGuard {
                lock: self,
                held,
                owner_died,
            }),
            Err(f) => Err(LockError::Call(unexpected(f))),
        }
    }
}

/// The `.await` form of `acquire_on(obj, recursive, Wait::Forever)` for the owner `thread`:
/// one CAS in shared memory when free; else parked in the hub, with a grant that reaches a
/// dropped future released again.
#[cfg(feature = "tokio")]
pub(super) async fn acquire_async_on(
    obj: &ObjRef,
    recursive: bool,
    thread: u64,
) -> Result<Result<(Held, bool), SyncFault>, CallError> {
    if let Some((s, proc, pid)) = fast(obj, recursive) {
        match try_fast(s, proc, pid, thread, recursive) {
            Fast::Got(held, owner_died) => return Ok(Ok((held, owner_died))),
            Fast::Overflow => return Ok(Err(SyncFault::Overflow)),
            Fast::Busy => announce(s),
        }
    }
    arena::count_slow();
    let back = obj.clone();
    let undo: runtime::aio::Undo = Box::new(move |v| {
        if let Value::Sync(SyncReply::Acquired { ticket, .. }) = v {
            release_held(&back, recursive, Held { thread, seq: ticket });
        }
    });
    let op = SyncOp::Acquire {
        thread,
        pid: my_pid(),
        wait: Wait::Forever,
    };
    match sync_reply(obj.call_async(crate::wire::proto::ObjOp::Sync(op), Some(undo)).await?)? {
        SyncReply::Acquired { ticket, owner_died } => Ok(Ok((Held { thread, seq: ticket }, owner_died))),
        SyncReply::Fault(f) => Ok(Err(f)),
        other => Err(unexpected(other)),
    }
}

/// Proof that a [`Lock`] is held; dropping it releases the lock.
///
/// The release on drop is one compare-and-swap in shared memory when nobody waits; with
/// waiters it frees the word and tells the hub one-way (the message is in the hub's socket
/// before `drop` returns, so the hand-over happens even if the process dies on the next line),
/// and it takes effect before anything this thread asks afterwards. A guard that outlives its
/// ownership (the hub took the lock back because its process was declared dead, or another
/// process released it) releases nothing.
///
/// # Example
/// ```
/// let lock = multiproc::sync::Lock::new()?;
/// let guard = lock.acquire()?;
/// assert!(lock.locked()?);
/// drop(guard);
/// assert!(!lock.locked()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct LockGuard<'a> {
    lock: &'a Lock,
    held: Held,
    owner_died: bool,
}

impl LockGuard<'_> {
    /// `true` if the previous owner died holding the lock and the hub released it: the data
    /// the lock protects may be half-updated. Reported to the next owner only.
    pub fn previous_owner_died(&self) -> bool {
        self.owner_died
    }

    /// Keeps the lock held without a guard (Python's free-standing style): release it later
    /// with [`Lock::release`], from this or any other process. The hub still releases it if
    /// this process dies first.
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        release_held(&self.lock.obj, false, self.held);
    }
}

/// The owner of an [`RLock`].
///
/// # Example
/// ```
/// use multiproc::sync::RLock;
///
/// let lock = RLock::new()?;
/// let _g = lock.acquire()?;
/// let owner = lock.owner()?.expect("held");
/// assert!(owner.is_current_thread());
/// assert_eq!(owner.pid, std::process::id() as i32);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RLockOwner {
    proc: ProcId,
    /// The owning process's OS pid.
    pub pid: i32,
    /// The owning thread's id in that process (see [`current_thread_id`](super::current_thread_id)).
    pub thread: u64,
}

impl RLockOwner {
    /// Is the owner the calling thread of the calling process?
    pub fn is_current_thread(&self) -> bool {
        runtime::rt().is_ok_and(|rt| rt.me.proc == self.proc) && self.thread == token_thread(current_thread_id())
    }
}

/// A recursive lock owned by one thread of one process (Python's `multiprocessing.RLock`).
///
/// The owning (process, thread) may acquire it again; each acquire needs one release. Only the
/// owner may release it ([`RLockError::NotOwner`] otherwise). If the owning process dies, the
/// hub releases it whatever the count, and the next acquirer's guard says so.
///
/// # Example
/// ```
/// use multiproc::sync::RLock;
///
/// let lock = RLock::new()?;
/// let outer = lock.acquire()?;
/// let inner = lock.acquire()?; // the owner may re-enter
/// assert_eq!(lock.count()?, 2);
/// assert!(lock.owner()?.is_some_and(|o| o.is_current_thread()));
/// drop(inner);
/// drop(outer);
/// assert!(!lock.locked()?);
/// assert!(lock.release().is_err()); // not owned
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RLock {
    obj: ObjRef,
}

impl RLock {
    /// The hub object's id, as [`multiproc::snapshot()`](crate::snapshot) names it
    /// (`#N` in its tables is the low 32 bits).
    pub fn id(&self) -> crate::observe::ObjId {
        self.obj.id()
    }

    /// Creates an unlocked recursive lock.
    pub fn new() -> Result<RLock, RLockError> {
        Ok(RLock {
            obj: ObjRef::create(ObjectKind::Sync(SyncKind::RLock))?,
        })
    }

    pub(super) fn obj(&self) -> &ObjRef {
        &self.obj
    }

    #[inline]
    fn acquire_wait(&self, wait: Wait) -> Result<Option<RLockGuard<'_>>, RLockError> {
        match acquire_on(&self.obj, true, wait)? {
            Acq::Got(held, owner_died) => Ok(Some(RLockGuard {
                lock: self,
                held,
                owner_died,
                _not_send: PhantomData,
            })),
            Acq::TimedOut => Ok(None),
            Acq::Refused(SyncFault::Overflow) => Err(RLockError::RecursionLimit),
            Acq::Refused(f) => Err(RLockError::Call(unexpected(f))),
        }
    }

    /// Acquires the lock: at once if this thread owns it (the count goes up), else waits in
    /// FIFO order until it is free.
    pub fn acquire(&self) -> Result<RLockGuard<'_>, RLockError> {
        self.acquire_wait(Wait::Forever)?
            .ok_or_else(|| RLockError::Call(unexpected("Timeout without a deadline")))
    }

    /// Acquires the lock if that needs no waiting; `Ok(None)` otherwise.
    pub fn try_acquire(&self) -> Result<Option<RLockGuard<'_>>, RLockError> {
        self.acquire_wait(Wait::Never)
    }

    /// Waits at most `timeout`; `Ok(None)` if the lock stayed held by someone else. A zero
    /// timeout does not wait.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Option<RLockGuard<'_>>, RLockError> {
        self.acquire_wait(Wait::from_timeout(Some(timeout)))
    }

    /// Releases one level of recursion (Python's `release()`); at zero the lock is free.
    /// [`RLockError::NotOwner`] unless the calling thread owns it.
    pub fn release(&self) -> Result<(), RLockError> {
        match release_on(&self.obj, true)? {
            None => Ok(()),
            Some(SyncFault::NotOwner | SyncFault::NotHeld) => Err(RLockError::NotOwner),
            Some(f) => Err(RLockError::Call(unexpected(f))),
        }
    }

    /// Is the lock held (by anyone)?
    pub fn locked(&self) -> Result<bool, RLockError> {
        Ok(locked_on(&self.obj, true)?)
    }

    fn state(&self) -> Result<(Option<RLockOwner>, u32), RLockError> {
        if let Some(s) = arena::slot(&self.obj, KIND_RLOCK) {
            let w = s.word.load(Ordering::Acquire);
            // Flags alone: a hand-over may be in progress; the hub settles it first.
            if owner_of(w).is_some() || !held(w) {
                return Ok(match owner_of(w) {
                    // Read without a lock: the pid and count are the owner's latest writes.
                    Some((proc, thread)) => (
                        Some(RLockOwner {
                            proc: ProcId(proc),
                            pid: s.pid.load(Ordering::Relaxed),
                            thread,
                        }),
                        s.count.load(Ordering::Relaxed).max(1),
                    ),
                    None => (None, 0),
                });
            }
        }
        match sync_reply(call(&self.obj, SyncOp::LockState, Wait::Forever)?)? {
            SyncReply::LockState { owner, count } => Ok((
                owner.map(|o| RLockOwner {
                    proc: o.proc,
                    pid: o.pid,
                    thread: o.thread,
                }),
                count,
            )),
            other => Err(RLockError::Call(unexpected(other))),
        }
    }

    /// The owner, or `None` if the lock is free.
    pub fn owner(&self) -> Result<Option<RLockOwner>, RLockError> {
        Ok(self.state()?.0)
    }

    /// The recursion count (0 when free).
    pub fn count(&self) -> Result<u32, RLockError> {
        Ok(self.state()?.1)
    }

    /// Does the calling thread own the lock?
    pub fn is_owned(&self) -> Result<bool, RLockError> {
        Ok(self.owner()?.is_some_and(|o| o.is_current_thread()))
    }
}

/// Proof that the calling thread holds one level of an [`RLock`]; dropping it releases that
/// level. Not `Send`: the lock belongs to this thread. See [`LockGuard`] for how the release
/// travels.
///
/// # Example
/// ```
/// let lock = multiproc::sync::RLock::new()?;
/// let guard = lock.acquire()?;
/// assert!(!guard.previous_owner_died());
/// assert!(lock.is_owned()?);
/// drop(guard);
/// assert!(!lock.is_owned()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    held: Held,
    owner_died: bool,
    _not_send: PhantomData<*const ()>,
}

impl RLockGuard<'_> {
    /// `true` if the previous owner died holding the lock and the hub released it. Reported to
    /// the next owner only.
    pub fn previous_owner_died(&self) -> bool {
        self.owner_died
    }

    /// Keeps this level held without a guard: release it later with [`RLock::release`] from
    /// this same thread.
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        release_held(&self.lock.obj, true, self.held);
    }
}
