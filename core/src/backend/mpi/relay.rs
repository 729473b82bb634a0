//! Objects across ranks: a `Queue`, `Lock`, `Event`, Manager container ... created in rank 0
//! and passed to a task works on every rank, because the task server decodes task arguments
//! with every handle *routed* ([`MpiRoute`], the same mechanism as a remote manager's handles):
//! the handle's hub calls go as MPI messages to rank 0, where a relay thread per rank makes them
//! on its own hub connection and sends the answer back.
//!
//! - Rank side: [`MpiRoute`] sends `RelayCall` and waits (polling with the backoff) for the
//!   `RelayReply` tag only, so it never takes the server's other messages; `RelayCast` needs no
//!   answer. One call at a time per rank (a mutex): a task's threads take turns.
//! - Rank 0 side: whoever receives MPI messages (the pool's manager thread) hands relay
//!   messages to [`Relays`], which keeps one thread per rank. Each thread runs its rank's calls
//!   in order, so a rank's `acquire`, its one-way `release` and its next call stay in order,
//!   and a rank blocked in `acquire` delays no other rank.
//! - The hub sees the calls as rank 0's (its relay threads): capabilities hold because rank 0
//!   holds the handles it sent. Handles are not reference counted on the ranks: each handle
//!   sent to a rank keeps its object alive for the rest of the program (the in-flight reference
//!   is never settled), a bounded leak, as for a value decoded many times.
//! - No shared-memory fast path on a rank (routed handles never take one): every lock operation
//!   is a message to rank 0. Handles decoded in a rank's *local* worker processes
//!   (`processes(k)`) are not routed: objects across ranks need tasks run in the rank itself.

use std::collections::HashMap;
use std::sync::mpsc::{channel, Sender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{sys, Backoff, Tag};
use crate::error::CallError;
use crate::runtime::handle::RemoteRoute;
use crate::wire::proto::{Cast, HubError, Op, Value};

/// A failed relayed call, as it travels back to the rank.
#[derive(Debug, Serialize, Deserialize)]
enum RelayError {
    Hub(HubError),
    Other(String),
}

impl From<CallError> for RelayError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Hub(h) => RelayError::Hub(h),
            other => RelayError::Other(other.to_string()),
        }
    }
}

/// The route of handles decoded on a task-serving rank: to rank 0's hub, over MPI.
#[derive(Debug, Default)]
pub(crate) struct MpiRoute {
    one_call: Mutex<()>,
}

fn mpi_call_err(e: sys::MpiSysError) -> CallError {
    CallError::Protocol(format!("MPI relay to rank 0: {e}"))
}

impl RemoteRoute for MpiRoute {
    fn call(&self, op: Op, deadline: Option<Instant>) -> Result<Value, CallError> {
        let _one = self.one_call.lock().unwrap_or_else(|p| p.into_inner());
        let wait = deadline.map(|d| d.saturating_duration_since(Instant::now()).as_micros() as u64);
        let bytes = rmp_serde::to_vec(&(op, wait)).map_err(|e| CallError::Protocol(e.to_string()))?;
        sys::send(0, Tag::RelayCall as i32, &bytes).map_err(mpi_call_err)?;
        let mut backoff = Backoff::new();
        loop {
            match sys::try_recv_tag(Some(0), Some(Tag::RelayReply as i32)).map_err(mpi_call_err)? {
                Some(m) => {
                    return match rmp_serde::from_slice::<Result<Value, RelayError>>(&m.bytes) {
                        Ok(Ok(v)) => Ok(v),
                        Ok(Err(RelayError::Hub(h))) => Err(CallError::Hub(h)),
                        Ok(Err(RelayError::Other(s))) => Err(CallError::Protocol(format!("in rank 0: {s}"))),
                        Err(e) => Err(CallError::Protocol(format!("an unreadable relay answer: {e}"))),
                    }
                }
                None => backoff.snooze(),
            }
        }
    }

    fn cast_many(&self, casts: Vec<Cast>) -> Result<(), CallError> {
        let _one = self.one_call.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = rmp_serde::to_vec(&casts).map_err(|e| CallError::Protocol(e.to_string()))?;
        sys::send(0, Tag::RelayCast as i32, &bytes).map_err(mpi_call_err)
    }
}

/// Rank 0's relay threads, one per rank that has used an object.
#[derive(Default)]
pub(crate) struct Relays {
    threads: HashMap<i32, Sender<(i32, Vec<u8>)>>,
}

impl Relays {
    /// Takes a relay message (`RelayCall` or `RelayCast`) from `rank`; false for other tags.
    pub(crate) fn take(&mut self, m: &mut sys::Received) -> bool {
        if m.tag != Tag::RelayCall as i32 && m.tag != Tag::RelayCast as i32 {
            return false;
        }
        let rank = m.source;
        let msg = (m.tag, std::mem::take(&mut m.bytes));
        let tx = self.threads.entry(rank).or_insert_with(|| spawn(rank));
        if let Err(back) = tx.send(msg) {
            // The thread could not start: answer the call here, with an error.
            let (tag, _) = back.0;
            if tag == Tag::RelayCall as i32 {
                answer(
                    rank,
                    Err(RelayError::Other("rank 0 could not start a relay thread".into())),
                );
            }
        }
        true
    }
}

fn answer(rank: i32, r: Result<Value, RelayError>) {
    let bytes = rmp_serde::to_vec(&r).unwrap_or_else(|e| {
        rmp_serde::to_vec(&Err::<Value, _>(RelayError::Other(format!(
            "the answer could not be encoded: {e}"
        ))))
        .unwrap_or_default()
    });
    let _ = sys::send(rank, Tag::RelayReply as i32, &bytes);
}

fn spawn(rank: i32) -> Sender<(i32, Vec<u8>)> {
    let (tx, rx) = channel::<(i32, Vec<u8>)>();
    let started = std::thread::Builder::new()
        .name(format!("multiproc-mpi-relay-{rank}"))
        .spawn(move || {
            while let Ok((tag, bytes)) = rx.recv() {
                if tag == Tag::RelayCall as i32 {
                    let r = match rmp_serde::from_slice::<(Op, Option<u64>)>(&bytes) {
                        Ok((op, wait)) => {
                            crate::runtime::call(op, wait.map(|us| Instant::now() + Duration::from_micros(us)))
                                .map_err(RelayError::from)
                        }
                        Err(e) => Err(RelayError::Other(format!("an unreadable relayed call: {e}"))),
                    };
                    answer(rank, r);
                } else if let Ok(casts) = rmp_serde::from_slice::<Vec<Cast>>(&bytes) {
                    let _ = crate::runtime::cast_many(casts);
                }
            }
        });
    match started {
        Ok(_) => tx,
        // A sender whose receiver is gone: `take` answers the call itself.
        Err(_) => channel().0,
    }
}
