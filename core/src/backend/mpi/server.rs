//! The task server: what every rank other than 0 runs instead of `main`.
//!
//! It waits for rank 0's messages, in order (`MPI_Improbe` from rank 0 with any tag, which MPI
//! matches in sending order), and polls with the backoff of [`Backoff`]:
//!
//! - `Open`: a pool starts. Without a process count the rank runs the tasks itself, in this
//!   process, one chunk at a time; with one (`PoolBuilder::processes(k)`), it starts a local
//!   [`Pool`] of `k` worker processes (so N ranks × k processes use a whole cluster) and relays
//!   chunks to it, and relays the handle calls of those processes to rank 0 (`relay.rs`). Answers `Opened` (with an error if the initializer failed or the local pool
//!   could not start).
//! - `Chunk`: runs it (or hands it to the local pool) and answers `Done` with the same id and
//!   the report in the local pool's layout. A panicking task fails only itself.
//! - `Close`: drops the chunks not yet started, ends the local pool, answers `Closed`.
//! - `Stop`: as `Close`, answers `Stopped`, finalises MPI and exits 0.
//!
//! Everything that arrived is read before the next chunk runs, so a `Close` (terminate) or `Stop`
//! skips the chunks queued before it. A panic outside a task (a bug here) prints a line and
//! calls `MPI_Abort`, which ends the whole job instead of hanging it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::relay::{self, MpiRoute};
use super::{split_chunk_message, sys, with_id, Backoff, Tag};
use crate::pool::worker::{encode_report, parse_chunk, run_chunk};
use crate::pool::{Chunk, Pool, PoolError};
use crate::process::{StartMethod, Task};
use crate::runtime::handle::{with_route, RemoteRoute};

/// The `Open` message.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Open {
    /// Local worker processes per rank; `None`: run tasks in the rank itself.
    pub procs: Option<u32>,
    /// The initializer: worker name and encoded arguments.
    pub init: Option<(String, ByteBuf)>,
    /// `maxtasksperchild` of the local workers (0: none).
    pub maxtasks: u64,
    /// How the local workers start.
    pub method: Option<StartMethod>,
}

/// The `Opened` answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Opened {
    /// Why the pool could not start on this rank.
    pub error: Option<String>,
    /// The pids of the processes that run tasks on this rank.
    pub pids: Vec<i32>,
}

/// Reports of the local pool, waiting to be sent to rank 0: (chunk id, report).
type Outbox = Arc<Mutex<VecDeque<(u64, Vec<u8>)>>>;

/// A chunk of the local pool: its outcomes go to the outbox as a report.
struct Relay {
    id: u64,
    rank: i32,
    out: Outbox,
}

impl crate::pool::job::Sink for Relay {
    fn deliver(
        &self,
        _seq: usize,
        _start: usize,
        outcomes: &mut dyn ExactSizeIterator<Item = Result<&[u8], PoolError>>,
    ) {
        let report = encode_report(outcomes, &format!(" (on MPI rank {})", self.rank));
        self.out
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back((self.id, report));
    }
}

struct Active {
    local: Option<Pool>,
    out: Outbox,
}

/// Serves rank 0 until it says `Stop`; never returns.
pub(crate) fn run(rank: i32) -> ! {
    crate::runtime::bootstrap::install_panic_hook();
    // Task panics are reported to rank 0, not printed here (as in local pool workers).
    crate::runtime::QUIET_PANICS.store(true, std::sync::atomic::Ordering::Relaxed);
    match crate::runtime::bootstrap::catch(|| serve(rank)) {
        Ok(Ok(())) => {
            sys::finalize();
            std::process::exit(0)
        }
        Ok(Err(e)) => {
            crate::sys::io::write_stderr(&format!("multiproc (mpi): rank {rank}: {e}; ending the job\n"));
            sys::abort(1)
        }
        Err(report) => {
            crate::sys::io::write_stderr(&format!(
                "multiproc (mpi): rank {rank} panicked at {}: {}; ending the job\n",
                report.location.as_deref().unwrap_or("an unknown location"),
                report.message
            ));
            sys::abort(101)
        }
    }
}

fn send(tag: Tag, bytes: &[u8]) -> Result<(), sys::MpiSysError> {
    sys::send(0, tag as i32, bytes)
}

fn serve(rank: i32) -> Result<(), sys::MpiSysError> {
    let mut inbox: VecDeque<sys::Received> = VecDeque::new();
    let mut active: Option<Active> = None;
    let mut backoff = Backoff::new();
    let mut out = Vec::new();
    // Handles in task arguments reach rank 0's objects through this route (see `relay.rs`).
    let route: Arc<dyn RemoteRoute> = Arc::new(MpiRoute::default());
    loop {
        let mut busy = false;
        while let Some(m) = sys::try_recv(Some(0))? {
            if relay::is_reply(m.tag) {
                // An answer to a local worker's relayed call (see `relay.rs`).
                relay::keep_reply(m);
            } else {
                inbox.push_back(m);
            }
        }
        // A `Close` or `Stop` drops the chunks queued before it.
        if let Some(last) = inbox
            .iter()
            .rposition(|m| m.tag == Tag::Close as i32 || m.tag == Tag::Stop as i32)
        {
            let mut i = 0;
            inbox.retain(|m| {
                let keep = i >= last || m.tag != Tag::Chunk as i32;
                i += 1;
                keep
            });
        }
        if let Some(m) = inbox.pop_front() {
            busy = true;
            match Tag::from_i32(m.tag) {
                Some(Tag::Open) => {
                    let opened = match rmp_serde::from_slice::<Open>(&m.bytes) {
                        Ok(open) => match open_pool(rank, open, &route) {
                            Ok((a, pids)) => {
                                active = Some(a);
                                Opened { error: None, pids }
                            }
                            Err(error) => Opened {
                                error: Some(error),
                                pids: Vec::new(),
                            },
                        },
                        Err(e) => Opened {
                            error: Some(format!("an unreadable Open message: {e}")),
                            pids: Vec::new(),
                        },
                    };
                    let bytes = rmp_serde::to_vec(&opened).unwrap_or_default();
                    send(Tag::Opened, &bytes)?;
                }
                Some(Tag::Chunk) => {
                    let Some((id, deadline, body)) = split_chunk_message(&m.bytes) else {
                        continue;
                    };
                    match &active {
                        Some(Active {
                            local: Some(pool), out, ..
                        }) => {
                            let count = parse_chunk(body).map_or(0, |(_, t)| t.len());
                            let chunk = Chunk {
                                sink: Arc::new(Relay {
                                    id,
                                    rank,
                                    out: out.clone(),
                                }),
                                seq: 0,
                                start: 0,
                                count,
                                body: body.to_vec(),
                                fds: Vec::new(),
                                // Counted from when the local worker starts the task.
                                deadline,
                            };
                            if let Err((e, chunks)) = pool.submit_chunks(vec![chunk]) {
                                for c in &chunks {
                                    c.fail(&e);
                                }
                            }
                        }
                        _ => {
                            match parse_chunk(body) {
                                Some((name, args)) => {
                                    with_route(route.clone(), || run_chunk(name, &args, Vec::new(), &mut out))
                                }
                                None => {
                                    out = encode_report(
                                        &mut std::iter::once(Err(PoolError::Failed("an unreadable chunk".into()))),
                                        "",
                                    )
                                }
                            }
                            send(Tag::Done, &with_id(id, &out))?;
                            if out.capacity() > 1 << 20 {
                                out = Vec::new();
                            }
                        }
                    }
                }
                Some(Tag::Close) => {
                    end(active.take());
                    send(Tag::Closed, &[])?;
                }
                Some(Tag::Stop) => {
                    end(active.take());
                    send(Tag::Stopped, &[])?;
                    return Ok(());
                }
                _ => {}
            }
        }
        if let Some(a) = &active {
            let ready: Vec<(u64, Vec<u8>)> = a.out.lock().unwrap_or_else(|p| p.into_inner()).drain(..).collect();
            for (id, report) in ready {
                busy = true;
                send(Tag::Done, &with_id(id, &report))?;
            }
        }
        if busy {
            backoff.reset();
        } else {
            backoff.snooze();
        }
    }
}

/// Ends a pool on this rank: its local workers are terminated; reports not yet sent are dropped.
fn end(active: Option<Active>) {
    if let Some(a) = active {
        drop(a.local);
        a.out.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

fn open_pool(rank: i32, open: Open, route: &Arc<dyn RemoteRoute>) -> Result<(Active, Vec<i32>), String> {
    let out: Outbox = Arc::new(Mutex::new(VecDeque::new()));
    let Some(k) = open.procs else {
        if let Some((name, args)) = &open.init {
            let mut report = Vec::new();
            with_route(route.clone(), || run_chunk(name, &[(args, 0)], Vec::new(), &mut report));
            if let Some(crate::pool::worker::FromWorker::Done(v, _)) = crate::pool::worker::parse_from_worker(&report) {
                if let Some(Err(e)) = v.into_iter().next() {
                    return Err(format!("on MPI rank {rank}: {e}"));
                }
            }
        }
        return Ok((Active { local: None, out }, vec![crate::sys::proc::getpid()]));
    };
    // Handles decoded in the local workers go through this process (see `relay.rs`).
    let server = relay::serve_local_workers().map_err(|e| format!("on MPI rank {rank}: {e}"))?;
    let mut b = Pool::builder().processes(k.max(1) as usize).relay_handles_to(server);
    if open.maxtasks > 0 {
        b = b.maxtasksperchild(open.maxtasks as usize);
    }
    if let Some(m) = open.method {
        b = b.start_method(m);
    }
    if let Some((name, args)) = open.init {
        let entry = crate::runtime::registry::find(&name).map_err(|e| format!("on MPI rank {rank}: {e}"))?;
        b = b.initializer(Task::<()>::from_encoded(entry.name, args.into_vec()));
    }
    let pool = b
        .build()
        .map_err(|e| format!("the local pool of MPI rank {rank} could not start: {e}"))?;
    let pids = pool.pids();
    Ok((Active { local: Some(pool), out }, pids))
}
