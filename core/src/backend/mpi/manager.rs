//! Rank 0's side of an MPI pool: the pool's manager thread, handing chunks to the ranks.
//!
//! It replaces the local pool's manager (`pool/manager.rs`) and keeps everything in front of
//! it: the pool handle, chunking, result handles, callbacks (run on this thread, in rank 0),
//! ordering. Chunks are handed out dynamically: each rank holds a small window of chunks (two
//! per worker process, growing to sixteen while chunks take under 1 ms), and the next chunk
//! goes to whichever rank answers first. Sends are non-blocking (`MPI_Isend`), so rank 0 never
//! waits for a rank that is itself sending a large report.
//!
//! Only one MPI pool uses the ranks at a time (a second one is [`PoolError::Mpi`] until the
//! first is joined or dropped).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::relay::Relays;
use super::server::{Open, Opened};
use super::{chunk_message, split_id, sys, Backoff, Tag};
use crate::pipe::{wait, Connection, Waitable};
use crate::pool::worker::{parse_from_worker, FromWorker};
use crate::pool::{Chunk, PoolError, Shared};

static IN_USE: AtomicBool = AtomicBool::new(false);
/// Chunk ids are unique over the job, so a late report of a terminated pool is never taken for
/// a chunk of the next one.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

const FAST: Duration = Duration::from_millis(1);

/// The ranks an MPI pool uses, reserved by [`open`].
pub(crate) struct Ranks {
    ranks: Vec<RankState>,
    /// Chunks each rank holds normally, and at most.
    window: usize,
    max_window: usize,
    /// Rank 0's side of the objects used by tasks (see `relay.rs`).
    relays: Relays,
    /// The ranks run their chunks in local worker processes (`PoolBuilder::processes(k)`),
    /// which can enforce task deadlines.
    local_workers: bool,
}

struct RankState {
    rank: i32,
    in_flight: VecDeque<(u64, Chunk)>,
    window: usize,
    last: Instant,
}

impl Drop for Ranks {
    fn drop(&mut self) {
        IN_USE.store(false, Ordering::SeqCst);
    }
}

fn mpi_err(e: sys::MpiSysError) -> PoolError {
    PoolError::Mpi(e.to_string())
}

/// Reserves the ranks and opens a pool on each: `Open` to every rank, then waits for every
/// `Opened`. Returns the ranks and the pids that run tasks; an initializer that failed on a rank
/// is `Err(InitializerFailed)` in the second value (the pool is then broken, as a local one).
pub(crate) fn open(open: &Open) -> Result<(Ranks, Vec<i32>, Option<PoolError>), PoolError> {
    let size = super::check_rank0().map_err(PoolError::Mpi)?;
    if IN_USE.swap(true, Ordering::SeqCst) {
        return Err(PoolError::Mpi(
            "another MPI pool is using the ranks; close() and join() it (or drop it) first".into(),
        ));
    }
    let per_rank = open.procs.map_or(1, |k| k.max(1) as usize);
    let ranks = Ranks {
        ranks: (1..size)
            .map(|rank| RankState {
                rank,
                in_flight: VecDeque::new(),
                window: 2 * per_rank,
                last: Instant::now(),
            })
            .collect(),
        window: 2 * per_rank,
        max_window: 16 * per_rank,
        relays: Relays::default(),
        local_workers: open.procs.is_some(),
    };
    let bytes = rmp_serde::to_vec(open).map_err(|e| PoolError::Encode(e.to_string()))?;
    for r in &ranks.ranks {
        sys::send(r.rank, Tag::Open as i32, &bytes).map_err(mpi_err)?;
    }
    let mut pids = Vec::new();
    let mut broken = None;
    let mut left = ranks.ranks.len();
    let mut backoff = Backoff::new();
    while left > 0 {
        match super::recv_any().map_err(mpi_err)? {
            Some(m) if m.tag == Tag::Opened as i32 => {
                left -= 1;
                match rmp_serde::from_slice::<Opened>(&m.bytes) {
                    Ok(o) => {
                        pids.extend(o.pids);
                        if let Some(e) = o.error {
                            broken.get_or_insert(PoolError::InitializerFailed(e));
                        }
                    }
                    Err(e) => {
                        broken.get_or_insert(PoolError::Mpi(format!(
                            "rank {} answered with an unreadable message: {e}",
                            m.source
                        )));
                    }
                }
                backoff.reset();
            }
            Some(_) => backoff.reset(),
            None => backoff.snooze(),
        }
    }
    Ok((ranks, pids, broken))
}

/// The manager thread of an MPI pool.
pub(crate) fn run(shared: Arc<Shared>, wake_rx: Connection<()>, mut ranks: Ranks) {
    let mut pending: Vec<sys::PendingSend> = Vec::new();
    let mut backoff = Backoff::new();
    loop {
        while wake_rx.try_recv_bytes().is_ok() {}
        let mut st = shared.lock();
        st.woken = false;
        if st.terminating {
            drop(st);
            finish(&shared, ranks, pending, Some(PoolError::Terminated));
            return;
        }
        let failed: Vec<Chunk> = match &st.broken {
            Some(_) => st.queue.drain(..).collect(),
            None => Vec::new(),
        };
        let broken = st.broken.clone();
        let mut handed = Vec::new();
        if broken.is_none() {
            for slot in 0..ranks.max_window {
                for (i, r) in ranks.ranks.iter().enumerate() {
                    if st.queue.is_empty() {
                        break;
                    }
                    let have = r.in_flight.len() + handed.iter().filter(|(j, _)| *j == i).count();
                    if have == slot && slot < r.window {
                        if let Some(c) = st.queue.pop_front() {
                            handed.push((i, c));
                        }
                    }
                }
            }
        }
        let idle = st.queue.is_empty() && handed.is_empty() && ranks.ranks.iter().all(|r| r.in_flight.is_empty());
        let shutting_down = st.closed && idle;
        drop(st);
        if let Some(err) = &broken {
            for c in &failed {
                c.fail(err);
            }
        }
        let mut busy = !handed.is_empty();
        for (i, chunk) in handed {
            if !chunk.fds.is_empty() {
                chunk.fail(&PoolError::Mpi(
                    "a task argument carries descriptors (a Connection, a shared-memory Array or Value), which cannot be sent to another rank".into(),
                ));
                continue;
            }
            if chunk.deadline.is_some() && !ranks.local_workers {
                chunk.fail(&PoolError::Mpi(
                    "a task deadline (apply_async_with_deadline) needs local worker processes on the \
                     ranks (PoolBuilder::processes(k)): a rank cannot kill a task that it runs itself"
                        .into(),
                ));
                continue;
            }
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            let r = &mut ranks.ranks[i];
            match sys::isend(
                r.rank,
                Tag::Chunk as i32,
                chunk_message(id, chunk.deadline, &chunk.body),
            ) {
                Ok(p) => {
                    if r.in_flight.is_empty() {
                        r.last = Instant::now();
                    }
                    r.in_flight.push_back((id, chunk));
                    pending.push(p);
                }
                Err(e) => {
                    chunk.fail(&mpi_err(e.clone()));
                    shared.lock().broken.get_or_insert(mpi_err(e));
                }
            }
        }
        if shutting_down {
            finish(&shared, ranks, pending, None);
            return;
        }
        // Reports.
        for _ in 0..256 {
            match super::recv_any() {
                Ok(Some(mut m)) => {
                    busy = true;
                    if m.tag == Tag::Done as i32 {
                        deliver(&shared, &mut ranks, m);
                    } else {
                        ranks.relays.take(&mut m);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // MPI is finalised (rank 0 is exiting) or broken: nothing more will come.
                    let err = mpi_err(e);
                    shared.lock().broken.get_or_insert(err.clone());
                    for r in ranks.ranks.iter_mut() {
                        for (_, c) in r.in_flight.drain(..) {
                            c.fail(&err);
                        }
                    }
                    finish(&shared, ranks, Vec::new(), Some(err));
                    return;
                }
            }
        }
        pending.retain_mut(|p| !p.test());
        if busy {
            backoff.reset();
        } else {
            let d = backoff.next();
            if d.is_zero() {
                std::thread::yield_now();
            } else {
                let objs: [&dyn Waitable; 1] = [&wake_rx];
                let _ = wait(&objs, Some(d));
            }
        }
    }
}

fn deliver(shared: &Shared, ranks: &mut Ranks, m: sys::Received) {
    let Some((id, report)) = split_id(&m.bytes) else { return };
    let (window, max_window) = (ranks.window, ranks.max_window);
    let Some(r) = ranks.ranks.iter_mut().find(|r| r.rank == m.source) else {
        return;
    };
    let Some(pos) = r.in_flight.iter().position(|(i, _)| *i == id) else {
        // A late report of a terminated pool's chunk.
        return;
    };
    let Some((_, chunk)) = r.in_flight.remove(pos) else {
        return;
    };
    match parse_from_worker(report) {
        Some(FromWorker::Done(mut outcomes, _)) if outcomes.len() == chunk.count => {
            // A rank's local pool broken by the initializer breaks this pool, as locally.
            if let Some(Err(e @ PoolError::InitializerFailed(_))) = outcomes.clone().find(|o| o.is_err()) {
                shared.lock().broken.get_or_insert(e);
            }
            chunk.sink.deliver(chunk.seq, chunk.start, &mut outcomes);
        }
        _ => chunk.fail(&PoolError::Mpi(format!(
            "rank {} sent an unreadable report for a chunk",
            m.source
        ))),
    }
    let now = Instant::now();
    r.window = if now.duration_since(r.last) < FAST {
        (r.window * 2).min(max_window)
    } else {
        window
    };
    r.last = now;
}

/// Ends the pool: fails what is left with `err` (terminate) or nothing (close, all done), sends
/// `Close` to every rank and waits for every `Closed`, then marks the pool finished.
fn finish(shared: &Shared, mut ranks: Ranks, pending: Vec<sys::PendingSend>, err: Option<PoolError>) {
    if let Some(err) = &err {
        let queued: Vec<Chunk> = shared.lock().queue.drain(..).collect();
        for c in &queued {
            c.fail(err);
        }
        for r in ranks.ranks.iter_mut() {
            for (_, c) in r.in_flight.drain(..) {
                c.fail(err);
            }
        }
    }
    let mut left = 0;
    for r in &ranks.ranks {
        if sys::send(r.rank, Tag::Close as i32, &[]).is_ok() {
            left += 1;
        }
    }
    let mut backoff = Backoff::new();
    while left > 0 {
        match super::recv_any() {
            Ok(Some(mut m)) => {
                if m.tag == Tag::Closed as i32 {
                    left -= 1;
                } else {
                    // A task still running (terminate) may wait for an object's answer.
                    ranks.relays.take(&mut m);
                }
                backoff.reset();
            }
            Ok(None) => backoff.snooze(),
            Err(_) => break,
        }
    }
    // Every chunk sent was received before `Closed` came back: the sends are complete.
    drop(pending);
    drop(ranks);
    let mut st = shared.lock();
    st.pids.clear();
    st.finished = true;
}
