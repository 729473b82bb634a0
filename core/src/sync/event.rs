//! [`Event`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::EventError;
use super::{call, expect_bool, expect_unit, timeout_to_none};
use crate::runtime::handle::ObjRef;
use crate::wire::proto::{ObjectKind, Wait};
use crate::wire::sync_ops::{SyncKind, SyncOp};

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
    /// Creates an event whose flag is clear.
    pub fn new() -> Result<Event, EventError> {
        Ok(Event {
            obj: ObjRef::create(ObjectKind::Sync(SyncKind::Event))?,
        })
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) -> Result<(), EventError> {
        Ok(expect_unit(call(&self.obj, SyncOp::EventSet, Wait::Forever)?)?)
    }

    /// Clears the flag.
    pub fn clear(&self) -> Result<(), EventError> {
        Ok(expect_unit(call(&self.obj, SyncOp::EventClear, Wait::Forever)?)?)
    }

    /// Is the flag set?
    pub fn is_set(&self) -> Result<bool, EventError> {
        Ok(expect_bool(call(&self.obj, SyncOp::EventIsSet, Wait::Forever)?)?)
    }

    fn wait_for(&self, wait: Wait) -> Result<bool, EventError> {
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
