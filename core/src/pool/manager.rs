//! The pool's manager thread: it owns the workers and their pipes, hands out chunks, collects
//! outcomes, notices dead workers and replaces them, enforces task deadlines, and carries out
//! close and terminate.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_bytes::ByteBuf;

use super::error::PoolError;
use super::stats::Publisher;
use super::worker::{parse_from_worker, pool_worker, FromWorker, PassFd};
use super::{Chunk, Shared};
use crate::pipe::{wait, Connection, Pipe, WaitError, Waitable};
use crate::process::{ExitStatus, Process, StartMethod};
use crate::trace::mp_warn;
use crate::wire::snapshot::PoolStats;

/// Chunks given to one worker at a time: normally two (the running one and the next, so a
/// worker never waits for the parent between chunks), up to `MAX_WINDOW` while its chunks take
/// under `FAST` each (tiny tasks, where the round trip through the parent dominates). A worker
/// runs its chunks strictly in order, so the parent always knows which one was running when it
/// died; the others had not started and are requeued.
const WINDOW: usize = 2;
const MAX_WINDOW: usize = 16;
const FAST: Duration = Duration::from_millis(1);

/// At most this many bytes of chunks are queued in a worker's pipe behind the chunk it is
/// running. The manager's sends then always fit in the socket buffer and never block: a worker
/// blocked writing its results (which the manager reads only between sends) can never
/// deadlock with a manager blocked writing chunks.
const MAX_QUEUED_BYTES: usize = 64 * 1024;

/// The initializer: worker name, encoded arguments, and the descriptors they carry.
pub(crate) type Init = (String, ByteBuf, Arc<Vec<OwnedFd>>);

/// The settings the manager needs.
pub(crate) struct Config {
    pub processes: usize,
    /// The initializer: worker name, encoded arguments, and the descriptors they carry
    /// (duplicated for each worker).
    pub init: Option<Init>,
    pub maxtasks: u64,
    pub method: StartMethod,
    pub grace: Duration,
    /// An MPI rank's task server, through which the workers' handles are relayed (`None`
    /// everywhere else).
    pub relay: Option<crate::Addr<()>>,
}

struct Sent {
    chunk: Chunk,
    sent: bool,
    /// The worker said it started this chunk (see `worker.rs`): only such a chunk fails when
    /// the worker dies; the others are run elsewhere.
    started: bool,
}

pub(crate) struct Worker {
    proc: Process<()>,
    conn: Connection<()>,
    pid: i32,
    in_flight: VecDeque<Sent>,
    /// Chunks given to this worker so far (for maxtasksperchild).
    given: u64,
    /// When the front chunk started running (as far as the parent can tell).
    front_since: Instant,
    /// Why the parent killed this worker (a deadline), reported instead of `WorkerDied`.
    killed: Option<PoolError>,
    /// The pipe reached end of file: the worker is gone or going.
    eof: bool,
    /// How many chunks it may hold (see `WINDOW`).
    window: usize,
}

impl Worker {
    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }
}

/// Starts one worker process with its pipe.
pub(crate) fn start_worker(cfg: &Config) -> Result<Worker, PoolError> {
    let (mine, theirs) = Pipe::duplex::<()>().map_err(|e| PoolError::Start(e.to_string()))?;
    let init = match &cfg.init {
        None => None,
        Some((name, args, fds)) => {
            let mut dups = Vec::with_capacity(fds.len());
            for f in fds.iter() {
                let d = f
                    .try_clone()
                    .map_err(|e| PoolError::Start(format!("cannot duplicate an initializer descriptor: {e}")))?;
                dups.push(PassFd(d));
            }
            Some((name.clone(), args.clone(), dups))
        }
    };
    let proc = Process::new(pool_worker(theirs, init, cfg.maxtasks, cfg.relay.clone()))
        .name("PoolWorker")
        .daemon(true)
        .ignore_sigint(true)
        .start_method(cfg.method)
        .start()
        .map_err(|e| PoolError::Start(e.to_string()))?;
    let pid = proc.pid();
    Ok(Worker {
        proc,
        conn: mine,
        pid,
        in_flight: VecDeque::new(),
        given: 0,
        front_since: Instant::now(),
        killed: None,
        eof: false,
        window: WINDOW,
    })
}

fn fail_chunk(chunk: &Chunk, err: &PoolError) {
    chunk.fail(err);
}

/// Waits (bounded) for a worker process to end and says how it ended.
fn reap(w: &mut Worker, limit: Duration) -> Option<ExitStatus> {
    let _ = w.proc.join_timeout(limit);
    if let Some(s) = w.proc.exit_status() {
        return Some(s);
    }
    let _ = w.proc.kill();
    let _ = w.proc.join_timeout(Duration::from_secs(5));
    w.proc.exit_status()
}

pub(crate) fn run(shared: Arc<Shared>, wake_rx: Connection<()>, workers: Vec<Worker>, cfg: Config) {
    let mut publ = Publisher::new();
    run_loop(&shared, &wake_rx, workers, &cfg, &mut publ);
    publ.gone();
}

fn run_loop(
    shared: &Arc<Shared>,
    wake_rx: &Connection<()>,
    mut workers: Vec<Worker>,
    cfg: &Config,
    publ: &mut Publisher,
) {
    // Workers that ended, to name in the event of their replacement: (pid, why).
    let mut ended: Vec<(i32, String)> = Vec::new();
    loop {
        while wake_rx.try_recv_bytes().is_ok() {}
        let mut st = shared.lock();
        st.woken = false;
        if st.terminating {
            drop(st);
            terminate_all(shared, workers, cfg.grace);
            return;
        }
        // A broken pool (failed initializer, no worker can start) fails whatever is queued.
        let failed: Vec<Chunk> = match &st.broken {
            Some(_) => st.queue.drain(..).collect(),
            None => Vec::new(),
        };
        let broken = st.broken.clone();
        // Hand out chunks: first slots first, so that work spreads over the workers.
        if broken.is_none() {
            for slot in 0..MAX_WINDOW {
                for w in workers.iter_mut() {
                    if st.queue.is_empty() {
                        break;
                    }
                    let can_take = w.killed.is_none()
                        && !w.eof
                        && w.in_flight.len() == slot
                        && slot < w.window
                        && (cfg.maxtasks == 0 || w.given < cfg.maxtasks);
                    let queued: usize = w.in_flight.iter().skip(1).map(|s| s.chunk.body.len()).sum();
                    let fits = w.in_flight.is_empty()
                        || st
                            .queue
                            .front()
                            .is_some_and(|c| queued + c.body.len() <= MAX_QUEUED_BYTES);
                    if can_take && fits {
                        if let Some(chunk) = st.queue.pop_front() {
                            if w.in_flight.is_empty() {
                                w.front_since = Instant::now();
                            }
                            w.given += 1;
                            w.in_flight.push_back(Sent {
                                chunk,
                                sent: false,
                                started: false,
                            });
                        }
                    }
                }
            }
        }
        let idle = st.queue.is_empty() && workers.iter().all(|w| w.in_flight.is_empty());
        let queued_tasks: u64 = st.queue.iter().map(|c| c.count as u64).sum();
        let shutting_down = st.closed && idle;
        drop(st);
        if let Some(err) = &broken {
            for c in &failed {
                fail_chunk(c, err);
                publ.done += c.count as u64;
            }
        }
        for w in workers.iter_mut() {
            for s in w.in_flight.iter_mut().filter(|s| !s.sent) {
                // A failed send means the worker is gone: end of file will follow, and the
                // unsent chunk is requeued then.
                let fds: Vec<BorrowedFd<'_>> = s.chunk.fds.iter().map(|f| f.as_fd()).collect();
                if w.conn.send_bytes_with_fds(&s.chunk.body, &fds).is_err() {
                    break;
                }
                s.sent = true;
            }
        }
        if shutting_down {
            close_all(shared, workers);
            return;
        }
        // Replace retired or dead workers (not while closing with nothing left to do).
        if broken.is_none() && workers.len() < cfg.processes {
            let mut start_error = None;
            let before = workers.len();
            while workers.len() < cfg.processes {
                match start_worker(cfg) {
                    Ok(w) => {
                        let (old_pid, why) = ended.pop().unwrap_or((0, "retired".to_owned()));
                        mp_warn!(old_pid, new_pid = w.pid, reason = %why, "pool worker replaced");
                        let _ = (old_pid, &why);
                        publ.replaced += 1;
                        workers.push(w)
                    }
                    Err(e) => {
                        start_error = Some(e);
                        break;
                    }
                }
            }
            let started = workers.len() > before;
            match start_error {
                Some(e) if workers.is_empty() => {
                    shared.lock().broken = Some(e);
                    continue;
                }
                _ => {}
            }
            shared.lock().pids = workers.iter().map(|w| w.pid).collect();
            if started {
                continue;
            }
        }

        // Wait for a message, a wake-up, or the next deadline.
        let now = Instant::now();
        let next_deadline = workers
            .iter()
            .filter(|w| w.killed.is_none())
            .filter_map(|w| {
                let front = w.in_flight.front()?;
                Some(w.front_since + front.chunk.deadline?)
            })
            .min();
        let mut timeout = next_deadline.map(|d| d.saturating_duration_since(now));
        // Running: the chunks workers said they started; the others given to them wait in
        // their pipes and count as queued.
        let (running_tasks, waiting_tasks) =
            workers
                .iter()
                .flat_map(|w| w.in_flight.iter())
                .fold((0u64, 0u64), |(r, q), s| {
                    let n = s.chunk.count as u64;
                    if s.started {
                        (r + n, q)
                    } else {
                        (r, q + n)
                    }
                });
        let stats = PoolStats {
            workers: workers.iter().map(|w| w.pid).collect(),
            queued: queued_tasks + waiting_tasks,
            running: running_tasks,
            ..PoolStats::default()
        };
        if let Some(cap) = publ.offer(stats) {
            timeout = Some(timeout.map_or(cap, |t| t.min(cap)));
        }
        let ready = {
            let mut objs: Vec<&dyn Waitable> = Vec::with_capacity(workers.len() + 1);
            objs.push(wake_rx);
            for w in &workers {
                objs.push(&w.conn);
            }
            match wait(&objs, timeout) {
                Ok(r) => r,
                // Ctrl-C in interrupt mode: blocked callers handle it; the manager carries on.
                Err(WaitError::Interrupted) => Vec::new(),
                Err(WaitError::Io(_)) => {
                    std::thread::sleep(Duration::from_millis(10));
                    Vec::new()
                }
            }
        };
        for &i in &ready {
            if i == 0 {
                continue;
            }
            let w = &mut workers[i - 1];
            read_worker(shared, w, publ);
        }
        // Deadlines.
        let now = Instant::now();
        for w in workers.iter_mut() {
            if w.killed.is_some() || w.eof {
                continue;
            }
            let Some(front) = w.in_flight.front() else { continue };
            let Some(d) = front.chunk.deadline else { continue };
            if front.started && now >= w.front_since + d {
                w.killed = Some(PoolError::TimedOut {
                    pid: w.pid,
                    deadline: d,
                });
                let _ = w.proc.kill();
            }
        }
        // Dead or retired workers.
        let mut i = 0;
        while i < workers.len() {
            if workers[i].eof {
                let w = workers.swap_remove(i);
                ended.push(bury(shared, w, publ));
            } else {
                i += 1;
            }
        }
        let pids: Vec<i32> = workers.iter().map(|w| w.pid).collect();
        shared.lock().pids = pids;
    }
}

/// Reads every complete message from a worker; marks it at end of file.
fn read_worker(shared: &Shared, w: &mut Worker, publ: &mut Publisher) {
    loop {
        match w.conn.try_recv_bytes() {
            Ok(bytes) => match parse_from_worker(&bytes) {
                Some(FromWorker::Started) => {
                    if let Some(front) = w.in_flight.front_mut() {
                        front.started = true;
                    }
                    w.front_since = Instant::now();
                }
                Some(FromWorker::Done(mut outcomes, next_started)) => {
                    publ.done += outcomes.len() as u64;
                    #[cfg(feature = "tracing")]
                    for e in outcomes.clone().filter_map(Result::err) {
                        mp_warn!(pid = w.pid, error = %e, "pool task failed");
                    }
                    if let Some(mut s) = w.in_flight.pop_front() {
                        s.chunk.sink.deliver(s.chunk.seq, s.chunk.start, &mut outcomes);
                        shared.spares.give(std::mem::take(&mut s.chunk.body));
                    }
                    if let Some(front) = w.in_flight.front_mut() {
                        front.started |= next_started;
                    }
                    let now = Instant::now();
                    w.window = if now.duration_since(w.front_since) < FAST {
                        (w.window * 2).min(MAX_WINDOW)
                    } else {
                        WINDOW
                    };
                    w.front_since = now;
                }
                Some(FromWorker::InitFailed(msg)) => {
                    let err = PoolError::InitializerFailed(msg);
                    // A chunk sent before this arrived fails with the initializer's error.
                    w.killed = Some(err.clone());
                    let mut st = shared.lock();
                    if st.broken.is_none() {
                        st.broken = Some(err);
                    }
                }
                None => {
                    // Garbage from our own worker: treat it as dead.
                    let _ = w.proc.kill();
                    w.eof = true;
                    return;
                }
            },
            Err(crate::pipe::PipeRecvError::Empty) => return,
            Err(_) => {
                w.eof = true;
                return;
            }
        }
    }
}

/// A worker's pipe reached end of file: collect its exit status, fail the chunk it was
/// running, and requeue the ones it had not started.
fn bury(shared: &Shared, mut w: Worker, publ: &mut Publisher) -> (i32, String) {
    let status = reap(&mut w, Duration::from_secs(2));
    let err = w.killed.take().unwrap_or(PoolError::WorkerDied {
        pid: w.pid,
        signal: match status {
            Some(ExitStatus::Signaled(s)) => Some(s),
            _ => None,
        },
    });
    let mut in_flight = std::mem::take(&mut w.in_flight);
    // The first chunk, if the worker said it started it, is the one that was running.
    let running = match in_flight.front() {
        Some(s) if s.started => in_flight.pop_front(),
        _ => None,
    };
    if !in_flight.is_empty() {
        let mut st = shared.lock();
        for s in in_flight.into_iter().rev() {
            st.queue.push_front(s.chunk);
        }
    }
    if let Some(s) = running {
        mp_warn!(pid = w.pid, error = %err, tasks = s.chunk.count, "pool task failed");
        fail_chunk(&s.chunk, &err);
        publ.done += s.chunk.count as u64;
    }
    let why = match status {
        Some(s) => format!("{s:?}"),
        None => err.to_string(),
    };
    (w.pid, why)
}

/// `close()` finished its work: close every pipe (workers exit at end of file) and wait.
fn close_all(shared: &Shared, workers: Vec<Worker>) {
    let mut procs = Vec::new();
    for w in workers {
        let Worker { proc, conn, .. } = w;
        drop(conn);
        procs.push(proc);
    }
    for mut p in procs {
        let _ = p.join_timeout(Duration::from_secs(10));
        if p.exit_status().is_none() {
            let _ = p.kill();
            let _ = p.join_timeout(Duration::from_secs(5));
        }
    }
    let mut st = shared.lock();
    st.pids.clear();
    st.finished = true;
}

/// `terminate()`: SIGTERM every worker, wait `grace`, SIGKILL what is left; fail everything.
fn terminate_all(shared: &Shared, workers: Vec<Worker>, grace: Duration) {
    let mut procs = Vec::new();
    for w in workers {
        let _ = w.proc.terminate();
        for s in &w.in_flight {
            fail_chunk(&s.chunk, &PoolError::Terminated);
        }
        let Worker { proc, conn, .. } = w;
        drop(conn);
        procs.push(proc);
    }
    let queued: Vec<Chunk> = shared.lock().queue.drain(..).collect();
    for c in &queued {
        fail_chunk(c, &PoolError::Terminated);
    }
    let end = Instant::now() + grace;
    for p in procs.iter_mut() {
        let left = end.saturating_duration_since(Instant::now());
        let _ = p.join_timeout(left);
    }
    for mut p in procs {
        if p.exit_status().is_none() {
            let _ = p.kill();
            let _ = p.join_timeout(Duration::from_secs(5));
        }
    }
    let mut st = shared.lock();
    st.pids.clear();
    st.finished = true;
}
