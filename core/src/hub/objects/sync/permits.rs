//! A fair counting permit pool: the core of the semaphores.
//!
//! `value` permits are free; callers that find none park in one FIFO [`WaitQueue`]. Freed
//! permits go to the first live waiters *before* they become free, which keeps the invariant
//! **`value > 0` ⇒ no live waiter**: a newcomer can take a free permit only when nobody is
//! waiting, so nobody is overtaken (compare tokio's `batch_semaphore`, which keeps the same
//! invariant for multi-permit requests; every request here is for one permit).

use crate::hub::objects::{Cx, WaitQueue, Waiter};

/// A permit pool whose waiters carry a payload `T`.
pub(crate) struct Permits<T> {
    value: u64,
    waiters: WaitQueue<T>,
}

impl<T> Permits<T> {
    pub fn new(value: u64) -> Self {
        Permits {
            value,
            waiters: WaitQueue::default(),
        }
    }

    /// Free permits.
    pub fn value(&self) -> u64 {
        self.value
    }

    /// Takes a free permit if there is one (never overtakes a waiter, by the invariant).
    pub fn try_take(&mut self) -> bool {
        if self.value > 0 {
            self.value -= 1;
            true
        } else {
            false
        }
    }

    /// Parks a caller that found no permit.
    pub fn enqueue(&mut self, w: Waiter, t: T) {
        self.waiters.push(w, t);
    }

    /// Adds `n` permits: each goes to the first live waiter, and what is left becomes free.
    /// Returns the waiters served (each now holds one permit); the caller answers them.
    pub fn add(&mut self, cx: &mut Cx<'_>, n: u64) -> Vec<(Waiter, T)> {
        self.value = self.value.saturating_add(n);
        let mut served = Vec::new();
        while self.value > 0 {
            let Some(next) = self.waiters.pop_live(cx) else { break };
            self.value -= 1;
            served.push(next);
        }
        served
    }

    /// The waiter queue (deadlines, cancellation, death).
    pub fn waiters(&mut self) -> &mut WaitQueue<T> {
        &mut self.waiters
    }
}
