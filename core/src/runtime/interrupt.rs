//! Interrupt mode, the process side: one counter that every blocking call of the root compares
//! before and after it waits, and the two requests (`catch`, `interrupt_all`) that `lib.rs`
//! exposes.
//!
//! The *epoch* is the number of interrupts so far: Ctrl-C deliveries counted by the SIGINT
//! handler itself (installed by the hub in interrupt mode, see `sys::signal::notify_on`) plus
//! the calls of [`crate::interrupt_blocked_calls`]. The hub never writes it: it only answers
//! the root's parked calls `Interrupted`. A call that waits anywhere else (a mailbox receive, a
//! pipe, a pool result, a queue's local buffer) watches the epoch with an [`InterruptWatch`],
//! so *every* root thread blocked in a multiproc call sees every interrupt, whatever it is
//! blocked in.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use crate::error::CallError;
use crate::hub::Cmd;
use crate::sys;

/// Interrupts requested by [`interrupt_all`] (the SIGINT handler counts Ctrl-C itself).
static REQUESTED: AtomicU64 = AtomicU64::new(0);
/// Ctrl-C deliveries already reported to the program as `Interrupted`.
static SIGINT_REPORTED: AtomicI32 = AtomicI32::new(0);

/// The number of interrupts so far (Ctrl-C in interrupt mode, and `interrupt_blocked_calls`).
fn epoch() -> u64 {
    let sigints = sys::signal::delivered(sys::signal::SIGINT).max(0) as u64;
    sigints + REQUESTED.load(Ordering::SeqCst)
}

/// Watches for an interrupt during one blocking wait (interrupt mode, root process).
///
/// Take one when the wait begins; [`fired`](Self::fired) is true once an interrupt (Ctrl-C in
/// interrupt mode, or [`crate::interrupt_blocked_calls`]) has arrived since. For code that
/// blocks on something of its own (a condition variable, a socket) and wants to end with
/// `Interrupted` as multiproc's own blocking calls do: wait in short slices and look.
///
/// ```
/// let watch = multiproc::InterruptWatch::new();
/// assert!(!watch.fired());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct InterruptWatch {
    start: u64,
}

impl InterruptWatch {
    /// Starts watching now.
    pub fn new() -> InterruptWatch {
        InterruptWatch { start: epoch() }
    }

    /// Has an interrupt arrived since [`new`](Self::new)? Always false outside the root.
    pub fn fired(&self) -> bool {
        let fired = epoch() != self.start;
        if fired {
            reported();
        }
        fired
    }
}

impl Default for InterruptWatch {
    fn default() -> Self {
        InterruptWatch::new()
    }
}

/// In interrupt mode, reports (once) a Ctrl-C that arrived while no call was blocked, as
/// Python raises `KeyboardInterrupt` once: the first blocking call after it returns
/// `Interrupted`. The count comes from the signal handler, so it is up to date before the hub
/// reacts. A Ctrl-C that arrives *during* a call is seen by every blocked call through its
/// [`InterruptWatch`] (or the hub's answer), not through this.
pub(crate) fn take_pending() -> bool {
    let delivered = sys::signal::delivered(sys::signal::SIGINT);
    SIGINT_REPORTED.swap(delivered, Ordering::SeqCst) != delivered
}

/// Marks every Ctrl-C so far as reported (a blocked call returned `Interrupted`).
pub(crate) fn reported() {
    SIGINT_REPORTED.store(sys::signal::delivered(sys::signal::SIGINT), Ordering::SeqCst);
}

/// Has this process asked for interrupt mode?
static CATCHING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Turns interrupt mode on (root only; a no-op elsewhere): the hub installs the SIGINT handler.
pub(crate) fn catch() -> Result<(), CallError> {
    let rt = super::rt()?;
    if rt.is_root() {
        CATCHING.store(true, Ordering::SeqCst);
    }
    rt.hub_cmd(Cmd::CatchInterrupts)
}

/// Is this the root in interrupt mode?
pub(crate) fn catching() -> bool {
    CATCHING.load(Ordering::SeqCst)
}

/// Interrupts every blocked call of the root now (root only; a no-op elsewhere).
pub(crate) fn interrupt_all() -> Result<(), CallError> {
    let rt = super::rt()?;
    if !rt.is_root() {
        return Ok(());
    }
    REQUESTED.fetch_add(1, Ordering::SeqCst);
    rt.hub_cmd(Cmd::Interrupt)
}
