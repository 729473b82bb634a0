//! [`Event`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use std::sync::atomic::Ordering;

use super::error::EventError;
use super::{arena, call, cast, expect_bool, expect_unit, timeout_to_none};
use crate::runtime::handle::ObjRef;
use crate::wire::proto::{ObjectKind, Wait};
use crate::wire::sync_ops::{SyncKind, SyncOp};
use crate::wire::sync_slot::{SyncSlot, EV_SET, EV_WAITERS, KIND_EVENT};

/// How many times a waiter looks at an unset flag again before parking in the hub.
const EVENT_SPIN_ROUNDS: u32 = 64;

/// A flag that processes wait for (Python's `multiprocessing.Event`).
///
/// `set` wakes every waiter at once (a thousand waiters are a thousand replies from the hub);
/// waiters that arrive while the flag is set return at once.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use multiproc::sync::Event;
/// use multiproc::Process;
///
/// #[multiproc::worker]
/// fn waiter(ev: Event) -> bool {
///     ev.wait_timeout(Duration::from_secs(10)).unwrap()
/// }
///
/// let ev = Event::new()?;
/// assert!(!ev.wait_timeout(Duration::from_millis(10))?);
/// let mut child = Process::new(waiter(ev.clone())).start()?;
/// ev.set()?;
/// assert!(child.join()?);
/// assert!(ev.is_set()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Event {
    obj: ObjRef,
}

impl Event {
    /// The hub object's id, as [`multiproc::snapshot()`](crate::snapshot) names it
    /// (`#N` in its tables is the low 32 bits).
    pub fn id(&self) -> crate::observe::ObjId {
        self.obj.id()
    }

    /// Creates an event whose flag is clear.
    pub fn new() -> Result<Event, EventError> {
        Ok(Event {
            obj: ObjRef::create(ObjectKind::Sync(SyncKind::Event))?,
        })
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) -> Result<(), EventError> {
        if let Some(s) = self.slot() {
            // Visible to every process from here on; parked waiters need the hub.
            if s.word.fetch_or(EV_SET, Ordering::SeqCst) & EV_WAITERS != 0 {
                arena::count_slow();
                cast(&self.obj, SyncOp::EventSet);
            }
            return Ok(());
        }
        arena::count_slow();
        Ok(expect_unit(call(&self.obj, SyncOp::EventSet, Wait::Forever)?)?)
    }

    /// Clears the flag.
    pub fn clear(&self) -> Result<(), EventError> {
        if let Some(s) = self.slot() {
            s.word.fetch_and(!EV_SET, Ordering::SeqCst);
            return Ok(());
        }
        arena::count_slow();
        Ok(expect_unit(call(&self.obj, SyncOp::EventClear, Wait::Forever)?)?)
    }

    /// Is the flag set?
    pub fn is_set(&self) -> Result<bool, EventError> {
        if let Some(s) = self.slot() {
            return Ok(s.word.load(Ordering::SeqCst) & EV_SET != 0);
        }
        arena::count_slow();
        Ok(expect_bool(call(&self.obj, SyncOp::EventIsSet, Wait::Forever)?)?)
    }

    fn slot(&self) -> Option<&'static SyncSlot> {
        arena::slot(&self.obj, KIND_EVENT)
    }

    fn wait_for(&self, wait: Wait) -> Result<bool, EventError> {
        if let Some(s) = self.slot() {
            // A set flag never leaves user space; an unset one is looked at a little longer
            // (spinning for a setter on another CPU, yielding to one on this CPU) before
            // parking in the hub.
            for round in 0..=EVENT_SPIN_ROUNDS {
                if s.word.load(Ordering::SeqCst) & EV_SET != 0 {
                    return Ok(true);
                }
                if wait == Wait::Never {
                    return Ok(false);
                }
                if round < EVENT_SPIN_ROUNDS {
                    for _ in 0..16 {
                        std::hint::spin_loop();
                    }
                    // Let a setter that shares this CPU run (ping-pong on one CPU stays in
                    // user space).
                    std::thread::yield_now();
                }
            }
        }
        arena::count_slow();
        match timeout_to_none(call(&self.obj, SyncOp::EventWait { wait }, wait))? {
            None => Ok(false),
            Some(v) => Ok(expect_bool(v)?),
        }
    }

    /// Waits until the flag is set.
    pub fn wait(&self) -> Result<(), EventError> {
        self.wait_for(Wait::Forever).map(|_| ())
    }

    /// Waits at most `timeout` for the flag; returns it (`false`: timed out). A zero timeout
    /// does not wait.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, EventError> {
        self.wait_for(Wait::from_timeout(Some(timeout)))
    }

    /// The flag, without waiting (Python's `wait(0)`).
    pub fn try_wait(&self) -> Result<bool, EventError> {
        self.wait_for(Wait::Never)
    }
}

/// The `.await` form (feature `tokio`).
#[cfg(feature = "tokio")]
impl Event {
    /// [`wait`](Self::wait) as a future. A set event is one load in shared memory (ready at
    /// the first poll); an unset one parks in the hub without blocking the runtime thread.
    /// Cancel-safe: dropping the future only stops waiting.
    ///
    /// # Example
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let ev = multiproc::sync::Event::new()?;
    /// ev.set()?;
    /// ev.wait_async().await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait_async(&self) -> Result<(), EventError> {
        if let Some(s) = self.slot() {
            if s.word.load(Ordering::SeqCst) & EV_SET != 0 {
                return Ok(());
            }
        }
        arena::count_slow();
        let op = crate::wire::proto::ObjOp::Sync(SyncOp::EventWait { wait: Wait::Forever });
        expect_bool(self.obj.call_async(op, None).await?)?;
        Ok(())
    }
}
