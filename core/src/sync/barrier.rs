//! [`Barrier`].

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::error::BarrierError;
use super::{call, call_unbounded, expect_unit, sync_reply, timeout_to_none, unexpected};
use crate::runtime::handle::{self, ObjRef};
use crate::runtime::registry;
use crate::wire::proto::{ObjectKind, Wait};
use crate::wire::sync_ops::{BarrierAction, SyncFault, SyncKind, SyncOp, SyncReply};
use crate::Task;

/// A barrier for a fixed number of parties (Python's `multiprocessing.Barrier`).
///
/// Each party calls [`wait`](Barrier::wait); when the last one arrives, all are released at
/// once and the barrier is ready for the next generation. `wait` returns the party's arrival
/// index in `0..parties` (0 for the first to arrive): exactly one party per generation gets 0,
/// which makes it a convenient "one of us does the bookkeeping" choice.
///
/// # The action
/// An optional action ([`BarrierBuilder::action`]) is a `#[worker]` call (a [`Task`]), so that
/// any party's process can run it. It runs **exactly once per generation, in the last party to
/// arrive, before any party is released**: the hub tells that party to run it, keeps the
/// others parked, and releases them only when the runner reports that the action returned. If
/// the action panics, the barrier breaks: the runner's `wait` returns
/// [`BarrierError::ActionFailed`], the others [`BarrierError::Broken`]. Handles passed in the
/// action's arguments are decoded afresh in each runner; the objects they name are kept alive
/// for the rest of the program.
///
/// # Breaking
/// As in Python, [`abort`](Barrier::abort), [`reset`](Barrier::reset) (for the parties caught
/// in it), a party's timeout and a failed action break the barrier: the parties waiting in it
/// get [`BarrierError::Broken`], and so do later arrivals until a `reset`. **Beyond Python**, a
/// party that dies while the others wait (even by SIGKILL) breaks the barrier too, instead of
/// leaving them waiting forever.
///
/// # Example
/// ```
/// use multiproc::sync::Barrier;
/// use multiproc::Process;
///
/// #[multiproc::worker]
/// fn party(b: Barrier) -> usize {
///     b.wait().unwrap()
/// }
///
/// let barrier = Barrier::new(3)?;
/// let mut kids: Vec<_> = (0..2)
///     .map(|_| Process::new(party(barrier.clone())).start())
///     .collect::<Result<_, _>>()?;
/// let mut indices = vec![barrier.wait()?];
/// for k in &mut kids {
///     indices.push(k.join()?);
/// }
/// indices.sort();
/// assert_eq!(indices, vec![0, 1, 2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Barrier {
    obj: ObjRef,
    parties: u32,
    timeout: Option<Duration>,
}

/// Builds a [`Barrier`] with an action and/or a default timeout.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use multiproc::sync::{Barrier, Semaphore};
///
/// #[multiproc::worker]
/// fn count_generation(generations: Semaphore) {
///     generations.release().unwrap();
/// }
///
/// let generations = Semaphore::new(0)?;
/// let barrier = Barrier::builder(1)
///     .action(count_generation(generations.clone()))
///     .timeout(Duration::from_secs(5))
///     .build()?;
/// barrier.wait()?;
/// barrier.wait()?;
/// assert_eq!(generations.get_value()?, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until build() is called"]
pub struct BarrierBuilder {
    parties: usize,
    action: Option<Result<BarrierAction, String>>,
    timeout: Option<Duration>,
}

impl BarrierBuilder {
    /// Runs `task` once per generation in the last party to arrive, before any party is
    /// released. The task's value is ignored.
    pub fn action<R>(mut self, task: Task<R>) -> Self {
        let (name, args, fds) = task.into_parts();
        self.action = Some(match args {
            Err(e) => Err(format!("the action's arguments could not be serialised: {e}")),
            Ok(_) if !fds.is_empty() => Err("a barrier action's arguments cannot carry descriptors (Pipe ends)".into()),
            Ok(args) => Ok(BarrierAction {
                worker: name.to_string(),
                args: ByteBuf::from(args),
            }),
        });
        self
    }

    /// The timeout that [`Barrier::wait`] uses (Python's `timeout=` argument).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Creates the barrier.
    pub fn build(self) -> Result<Barrier, BarrierError> {
        let parties = u32::try_from(self.parties)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| BarrierError::Invalid(format!("{} parties (need 1 to {})", self.parties, u32::MAX)))?;
        let action = self.action.transpose().map_err(BarrierError::Invalid)?;
        Ok(Barrier {
            obj: ObjRef::create(ObjectKind::Sync(SyncKind::Barrier { parties, action }))?,
            parties,
            timeout: self.timeout,
        })
    }
}

/// Runs a barrier action here; `Some(why)` if it failed.
fn run_action(action: &BarrierAction) -> Option<String> {
    let entry = match registry::find(&action.worker) {
        Ok(e) => e,
        Err(e) => return Some(e.0),
    };
    let mut value = Vec::new();
    let res = handle::decoding_copy(|| catch_unwind(AssertUnwindSafe(|| (entry.run)(&action.args, &mut value))));
    match res {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.0),
        Err(panic) => Some(
            panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "the action panicked".into()),
        ),
    }
}

/// The `.await` form (feature `tokio`).
#[cfg(feature = "tokio")]
impl Barrier {
    /// [`wait`](Self::wait) as a future (with the barrier's default timeout, if it has one).
    ///
    /// Dropping the future while this party waits is like its timeout in Python: the barrier
    /// breaks, and the other parties get [`BarrierError::Broken`]. If this party was the one
    /// chosen to run the action when the future was dropped, the action is reported failed, so
    /// nobody waits for it forever.
    ///
    /// # Example
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let b = multiproc::sync::Barrier::new(1)?;
    /// assert_eq!(b.wait_async().await?, 0);
    /// # Ok(()) }
    /// ```
    pub async fn wait_async(&self) -> Result<usize, BarrierError> {
        let back = self.obj.clone();
        let undo: crate::runtime::aio::Undo = Box::new(move |v| {
            if let crate::wire::proto::Value::Sync(SyncReply::RunAction { generation, .. }) = v {
                let done = SyncOp::BarrierActionDone {
                    generation,
                    failure: Some("the party chosen to run the action stopped waiting (its future was dropped)".into()),
                };
                let _ = call_unbounded(&back, done);
            }
        });
        let op = crate::wire::proto::ObjOp::Sync(SyncOp::BarrierWait {
            wait: Wait::from_timeout(self.timeout),
        });
        let reply = match self.obj.call_async(op, Some(undo)).await {
            Err(e) if e.is_timeout() => return Err(BarrierError::Broken),
            r => sync_reply(r?)?,
        };
        match reply {
            SyncReply::Passed { index } => Ok(index as usize),
            SyncReply::Fault(SyncFault::BrokenBarrier) => Err(BarrierError::Broken),
            SyncReply::RunAction { generation, action, .. } => {
                // The action is the user's synchronous code: it runs here, as in `wait`.
                let failure = run_action(&action);
                let done = crate::wire::proto::ObjOp::Sync(SyncOp::BarrierActionDone {
                    generation,
                    failure: failure.clone(),
                });
                match sync_reply(self.obj.call_async(done, None).await?)? {
                    SyncReply::Passed { index } => Ok(index as usize),
                    SyncReply::Fault(SyncFault::BrokenBarrier) => match failure {
                        Some(why) => Err(BarrierError::ActionFailed(why)),
                        None => Err(BarrierError::Broken),
                    },
                    other => Err(BarrierError::Call(unexpected(other))),
                }
            }
            other => Err(BarrierError::Call(unexpected(other))),
        }
    }
}

impl Barrier {
    /// A barrier for `parties` parties, without action or default timeout.
    pub fn new(parties: usize) -> Result<Barrier, BarrierError> {
        Barrier::builder(parties).build()
    }

    /// A builder, for an action or a default timeout.
    pub fn builder(parties: usize) -> BarrierBuilder {
        BarrierBuilder {
            parties,
            action: None,
            timeout: None,
        }
    }

    fn wait_inner(&self, wait: Wait) -> Result<usize, BarrierError> {
        // A party that arrives while an action runs is answered only after it finishes, which
        // may be later than its own deadline: no client-side deadline.
        let reply = match timeout_to_none(call_unbounded(&self.obj, SyncOp::BarrierWait { wait }))? {
            None => return Err(BarrierError::Broken),
            Some(v) => sync_reply(v)?,
        };
        match reply {
            SyncReply::Passed { index } => Ok(index as usize),
            SyncReply::Fault(SyncFault::BrokenBarrier) => Err(BarrierError::Broken),
            SyncReply::RunAction { generation, action, .. } => {
                let failure = run_action(&action);
                let done = SyncOp::BarrierActionDone {
                    generation,
                    failure: failure.clone(),
                };
                match sync_reply(call_unbounded(&self.obj, done)?)? {
                    SyncReply::Passed { index } => Ok(index as usize),
                    SyncReply::Fault(SyncFault::BrokenBarrier) => match failure {
                        Some(why) => Err(BarrierError::ActionFailed(why)),
                        None => Err(BarrierError::Broken),
                    },
                    other => Err(BarrierError::Call(unexpected(other))),
                }
            }
            other => Err(BarrierError::Call(unexpected(other))),
        }
    }

    /// Waits for the other parties, using the barrier's default timeout if it has one. Returns
    /// this party's arrival index (`0..parties`).
    pub fn wait(&self) -> Result<usize, BarrierError> {
        self.wait_inner(Wait::from_timeout(self.timeout))
    }

    /// Waits at most `timeout` for the other parties; after that the barrier breaks and every
    /// party, this one included, gets [`BarrierError::Broken`] (Python's semantics).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BarrierError> {
        self.wait_inner(Wait::from_timeout(Some(timeout)))
    }

    /// The number of parties per generation.
    pub fn parties(&self) -> usize {
        self.parties as usize
    }

    /// The default timeout of [`wait`](Self::wait), if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    fn state(&self) -> Result<(u32, bool), BarrierError> {
        match sync_reply(call(&self.obj, SyncOp::BarrierState, Wait::Forever)?)? {
            SyncReply::BarrierState { n_waiting, broken, .. } => Ok((n_waiting, broken)),
            other => Err(BarrierError::Call(unexpected(other))),
        }
    }

    /// How many parties are waiting in the current generation.
    pub fn n_waiting(&self) -> Result<usize, BarrierError> {
        Ok(self.state()?.0 as usize)
    }

    /// Is the barrier broken?
    pub fn broken(&self) -> Result<bool, BarrierError> {
        Ok(self.state()?.1)
    }

    /// Returns the barrier to its initial state. Parties waiting in it get
    /// [`BarrierError::Broken`].
    pub fn reset(&self) -> Result<(), BarrierError> {
        Ok(expect_unit(call(&self.obj, SyncOp::BarrierReset, Wait::Forever)?)?)
    }

    /// Breaks the barrier: current and future waiters get [`BarrierError::Broken`] until a
    /// [`reset`](Self::reset).
    pub fn abort(&self) -> Result<(), BarrierError> {
        Ok(expect_unit(call(&self.obj, SyncOp::BarrierAbort, Wait::Forever)?)?)
    }
}
