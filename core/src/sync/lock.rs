//! [`Lock`] and [`RLock`].

use std::marker::PhantomData;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{LockError, RLockError};
use super::{call, cast, current_thread_id, my_pid, sync_reply, timeout_to_none, unexpected};
use crate::error::CallError;
use crate::runtime::{self, handle::ObjRef};
use crate::wire::proto::{ObjectKind, ProcId, Value, Wait};
use crate::wire::sync_ops::{SyncFault, SyncKind, SyncOp, SyncReply};

/// What an acquire got.
pub(super) enum Acq {
    /// The lock (or permit): its ticket, and whether the previous owner died.
    Got(u64, bool),
    /// The deadline passed (or `Wait::Never` would have had to wait).
    TimedOut,
    /// Refused.
    Refused(SyncFault),
}

pub(super) fn acquire_on(obj: &ObjRef, wait: Wait) -> Result<Acq, CallError> {
    let op = SyncOp::Acquire {
        thread: current_thread_id(),
        pid: my_pid(),
        wait,
    };
    match timeout_to_none(call(obj, op, wait))? {
        None => Ok(Acq::TimedOut),
        Some(v) => match sync_reply(v)? {
            SyncReply::Acquired { ticket, owner_died } => Ok(Acq::Got(ticket, owner_died)),
            SyncReply::Fault(f) => Ok(Acq::Refused(f)),
            other => Err(unexpected(other)),
        },
    }
}

/// An explicit release; `Ok(Some(fault))` when the hub refused it.
pub(super) fn release_on(obj: &ObjRef) -> Result<Option<SyncFault>, CallError> {
    let op = SyncOp::Release {
        thread: current_thread_id(),
        ticket: None,
    };
    match call(obj, op, Wait::Forever)? {
        Value::Unit => Ok(None),
        Value::Sync(SyncReply::Fault(f)) => Ok(Some(f)),
        other => Err(unexpected(other)),
    }
}

/// A guard's release: one-way, names the guard's ownership.
pub(super) fn release_ticket(obj: &ObjRef, ticket: u64) {
    cast(
        obj,
        SyncOp::Release {
            thread: current_thread_id(),
            ticket: Some(ticket),
        },
    );
}

fn locked_on(obj: &ObjRef) -> Result<bool, CallError> {
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
    /// Creates an unlocked lock.
    pub fn new() -> Result<Lock, LockError> {
        Ok(Lock {
            obj: ObjRef::create(ObjectKind::Sync(SyncKind::Lock))?,
        })
    }

    pub(super) fn obj(&self) -> &ObjRef {
        &self.obj
    }

    fn acquire_wait(&self, wait: Wait) -> Result<Option<LockGuard<'_>>, LockError> {
        match acquire_on(&self.obj, wait)? {
            Acq::Got(ticket, owner_died) => Ok(Some(LockGuard {
                lock: self,
                ticket,
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
        match release_on(&self.obj)? {
            None => Ok(()),
            Some(SyncFault::NotHeld) => Err(LockError::NotHeld),
            Some(f) => Err(LockError::Call(unexpected(f))),
        }
    }

    /// Is the lock held (by anyone)?
    pub fn locked(&self) -> Result<bool, LockError> {
        Ok(locked_on(&self.obj)?)
    }
}

/// Proof that a [`Lock`] is held; dropping it releases the lock.
///
/// The release on drop is one-way: it is in the hub's socket before `drop` returns (so it
/// happens even if the process dies on the next line), and it takes effect before anything
/// this thread sends to the hub afterwards. A guard that outlives its ownership (the hub took
/// the lock back because its process was declared dead) releases nothing.
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
    ticket: u64,
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
        release_ticket(&self.lock.obj, self.ticket);
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
        runtime::rt().is_ok_and(|rt| rt.me.proc == self.proc) && self.thread == current_thread_id()
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
    /// Creates an unlocked recursive lock.
    pub fn new() -> Result<RLock, RLockError> {
        Ok(RLock {
            obj: ObjRef::create(ObjectKind::Sync(SyncKind::RLock))?,
        })
    }

    pub(super) fn obj(&self) -> &ObjRef {
        &self.obj
    }

    fn acquire_wait(&self, wait: Wait) -> Result<Option<RLockGuard<'_>>, RLockError> {
        match acquire_on(&self.obj, wait)? {
            Acq::Got(ticket, owner_died) => Ok(Some(RLockGuard {
                lock: self,
                ticket,
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
        match release_on(&self.obj)? {
            None => Ok(()),
            Some(SyncFault::NotOwner | SyncFault::NotHeld) => Err(RLockError::NotOwner),
            Some(f) => Err(RLockError::Call(unexpected(f))),
        }
    }

    /// Is the lock held (by anyone)?
    pub fn locked(&self) -> Result<bool, RLockError> {
        Ok(locked_on(&self.obj)?)
    }

    fn state(&self) -> Result<(Option<RLockOwner>, u32), RLockError> {
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
    ticket: u64,
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
        release_ticket(&self.lock.obj, self.ticket);
    }
}
