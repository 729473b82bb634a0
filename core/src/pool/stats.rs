//! The counters a pool's manager thread publishes to the hub, for `multiproc::snapshot()`.
//!
//! One one-way message (`Cast::PoolStats`) whenever the counters changed, at most every
//! [`EVERY`]: a pool running 100,000 tiny tasks sends about 20 messages a second, not 100,000.
//! A change not yet published shortens the manager's wait so that it goes out within
//! [`EVERY`]. (The one place where the Pool uses more than the public API: the hub holds the
//! numbers so that any process can see them.)

use std::time::{Duration, Instant};

use crate::wire::proto::Cast;
use crate::wire::snapshot::PoolStats;

/// The shortest time between two publications.
pub(crate) const EVERY: Duration = Duration::from_millis(50);

static NEXT_POOL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

pub(crate) struct Publisher {
    pool: u64,
    sent: Option<PoolStats>,
    last: Instant,
    /// Tasks finished so far.
    pub done: u64,
    /// Workers started to replace ended ones.
    pub replaced: u64,
}

impl Publisher {
    pub fn new() -> Self {
        Publisher {
            pool: NEXT_POOL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            sent: None,
            last: Instant::now() - EVERY,
            done: 0,
            replaced: 0,
        }
    }

    /// Publishes `stats` (with this publisher's `done` and `replaced`) if they changed and the
    /// last publication is old enough. Returns how long the caller may wait at most before
    /// calling again (a change is pending), or `None`.
    pub fn offer(&mut self, mut stats: PoolStats) -> Option<Duration> {
        stats.done = self.done;
        stats.replaced = self.replaced;
        if self.sent.as_ref() == Some(&stats) {
            return None;
        }
        let since = self.last.elapsed();
        if since < EVERY {
            return Some(EVERY - since);
        }
        // Best effort: a hub that cannot be reached has nobody to show the numbers to.
        let _ = crate::runtime::cast(Cast::PoolStats {
            pool: self.pool,
            stats: Some(stats.clone()),
        });
        self.sent = Some(stats);
        self.last = Instant::now();
        None
    }

    /// The pool has shut down: the hub forgets it.
    pub fn gone(&mut self) {
        let _ = crate::runtime::cast(Cast::PoolStats {
            pool: self.pool,
            stats: None,
        });
    }
}
