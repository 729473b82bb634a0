//! Deadlines of parked waiters. The earliest one becomes the poll timeout.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::wire::proto::{ObjId, ProcId, ReqId, Wait};

use super::Token;

/// What to wake when a deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A waiter parked in an object.
    Object(ObjId),
    /// A join on a process.
    Join(ProcId),
    /// A start waiting for the fork server (`ProcessBuilder::start_timeout`).
    Spawn(ProcId),
    /// A `send_timeout` waiting for room in a process's mailbox.
    Mail(ProcId),
}

/// The key of one deadline (to cancel it).
pub(crate) type TimerKey = (Instant, u64);

#[derive(Default)]
pub(crate) struct Timers {
    map: BTreeMap<TimerKey, (Target, Token, ReqId)>,
    seq: u64,
}

impl Timers {
    /// Arms a deadline for `wait` (none for `Forever`).
    pub fn arm(&mut self, now: Instant, wait: Wait, target: Target, conn: Token, id: ReqId) -> Option<TimerKey> {
        let Wait::Micros(us) = wait else { return None };
        self.seq += 1;
        let at = now
            .checked_add(Duration::from_micros(us))
            .unwrap_or(now + Duration::from_secs(86400 * 365));
        let key = (at, self.seq);
        self.map.insert(key, (target, conn, id));
        Some(key)
    }

    pub fn cancel(&mut self, key: Option<TimerKey>) {
        if let Some(k) = key {
            self.map.remove(&k);
        }
    }

    /// How long until the earliest deadline.
    pub fn next_timeout(&self, now: Instant) -> Option<Duration> {
        self.map.keys().next().map(|(at, _)| at.saturating_duration_since(now))
    }

    /// Removes and returns every deadline that has passed.
    pub fn expired(&mut self, now: Instant) -> Vec<(Target, Token, ReqId)> {
        let mut out = Vec::new();
        while let Some(entry) = self.map.first_entry() {
            if entry.key().0 > now {
                break;
            }
            out.push(entry.remove());
        }
        out
    }
}
