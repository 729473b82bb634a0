//! Objects across ranks: a `Queue`, `Lock`, `Event`, Manager container ... created in rank 0
//! and passed to a task works on every rank, because the task server decodes task arguments
//! with every handle *routed* ([`MpiRoute`], the same mechanism as a remote manager's handles):
//! the handle's hub calls go as MPI messages to rank 0, where a relay thread per rank makes them
//! on its own hub connection and sends the answer back.
//!
//! - Rank side: [`MpiRoute`] sends `RelayCall` and waits (polling with the backoff) for its
//!   lane's reply tag only, so it never takes the server's other messages; `RelayCast` needs no
//!   answer. One call at a time per lane (a mutex): a task's threads take turns.
//! - Rank 0 side: whoever receives MPI messages (the pool's manager thread) hands relay
//!   messages to [`Relays`], which keeps one thread per (rank, lane). Each thread runs its
//!   lane's calls in order, so an `acquire`, its one-way `release` and the next call stay in
//!   order, and a caller blocked in `acquire` delays no other rank or lane.
//! - The hub sees the calls as rank 0's (its relay threads): capabilities hold because rank 0
//!   holds the handles it sent. Lock owners are told apart by [`Owners`]. Handles are not reference counted on the ranks: each handle
//!   sent to a rank keeps its object alive for the rest of the program (the in-flight reference
//!   is never settled), a bounded leak, as for a value decoded many times.
//! - No shared-memory fast path on a rank (routed handles never take one): every lock operation
//!   is a message to rank 0.
//!
//! # Lanes
//! A lock's owner is the rank 0 thread that made the call, so each caller that must be its own
//! owner needs its own relay thread there: a *lane*. Lane 0 is the rank's own tasks (run in the
//! task server). A rank with local worker processes (`processes(k)`) gives each of them a lane
//! (1, 2, ...): the worker decodes its tasks' handles routed by [`LocalRoute`], which asks the
//! task server through its mailbox ([`FromLocal`]); one thread per lane there forwards the
//! calls over MPI with the lane's own reply tag ([`reply_tag`]), so one worker blocked in
//! `acquire` delays no other. Rank 0 keeps one relay thread per (rank, lane).
//!
//! - Lanes are reused: a lane whose worker has exited goes to the next new worker (so the
//!   number of relay threads is bounded by the most workers a rank ever had at once).
//! - A local worker killed while it holds a `Lock` taken through the relay leaves that lock
//!   held by its lane (rank 0 sees one live owner, its relay thread): a known limitation.
//! - The task server receives every MPI message from rank 0 while a local pool runs, so
//!   replies it receives for a lane are kept ([`keep_reply`]) until that lane takes them.

use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{sys, Backoff, Tag};
use crate::error::CallError;
use crate::mailbox::{Addr, ReplyTo};
use crate::runtime::handle::RemoteRoute;
use crate::wire::proto::{Cast, HubError, ObjOp, Op, Value};
use crate::wire::sync_ops::SyncOp;

/// A lane: who on a rank makes relayed calls (see the module docs). 0: the rank's own tasks.
pub(crate) type Lane = u32;

/// The first reply tag of the local workers' lanes (lane `l` is answered with tag
/// `LANE_TAGS + l`).
const LANE_TAGS: i32 = 1000;
/// The most lanes a rank may use at once (MPI guarantees tags up to 32767).
const MAX_LANES: Lane = 30_000;

/// The MPI tag by which rank 0 answers `lane`'s calls.
pub(crate) fn reply_tag(lane: Lane) -> i32 {
    if lane == 0 {
        Tag::RelayReply as i32
    } else {
        LANE_TAGS + lane as i32
    }
}

/// Is `tag` a relay answer (of any lane)?
pub(crate) fn is_reply(tag: i32) -> bool {
    tag == Tag::RelayReply as i32 || (LANE_TAGS < tag && tag <= LANE_TAGS + MAX_LANES as i32)
}

/// Answers received by the task server's loop for a lane that was not receiving at that moment.
static KEPT: Mutex<Vec<sys::Received>> = Mutex::new(Vec::new());

/// Keeps an answer the task server received (see the module docs) for its lane.
pub(crate) fn keep_reply(m: sys::Received) {
    KEPT.lock().unwrap_or_else(|p| p.into_inner()).push(m);
}

fn take_kept(tag: i32) -> Option<sys::Received> {
    let mut kept = KEPT.lock().unwrap_or_else(|p| p.into_inner());
    let i = kept.iter().position(|m| m.tag == tag)?;
    Some(kept.remove(i))
}

/// A failed relayed call, as it travels back to the rank (and from the task server to a local
/// worker).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RelayError {
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

fn from_relay(r: Result<Value, RelayError>) -> Result<Value, CallError> {
    match r {
        Ok(v) => Ok(v),
        Err(RelayError::Hub(h)) => Err(CallError::Hub(h)),
        Err(RelayError::Other(s)) => Err(CallError::Protocol(format!("in rank 0: {s}"))),
    }
}

/// The route of handles decoded on a task-serving rank: to rank 0's hub, over MPI, on one lane.
#[derive(Debug)]
pub(crate) struct MpiRoute {
    lane: Lane,
    one_call: Mutex<()>,
}

impl Default for MpiRoute {
    fn default() -> Self {
        MpiRoute::new(0)
    }
}

fn mpi_call_err(e: sys::MpiSysError) -> CallError {
    CallError::Protocol(format!("MPI relay to rank 0: {e}"))
}

impl MpiRoute {
    pub(crate) fn new(lane: Lane) -> MpiRoute {
        MpiRoute {
            lane,
            one_call: Mutex::new(()),
        }
    }
}

impl RemoteRoute for MpiRoute {
    fn call(&self, op: Op, deadline: Option<Instant>) -> Result<Value, CallError> {
        let _one = self.one_call.lock().unwrap_or_else(|p| p.into_inner());
        let wait = deadline.map(|d| d.saturating_duration_since(Instant::now()).as_micros() as u64);
        let bytes = rmp_serde::to_vec(&(self.lane, op, wait)).map_err(|e| CallError::Protocol(e.to_string()))?;
        sys::send(0, Tag::RelayCall as i32, &bytes).map_err(mpi_call_err)?;
        let tag = reply_tag(self.lane);
        let mut backoff = Backoff::new();
        loop {
            let m = match take_kept(tag) {
                Some(m) => Some(m),
                None => sys::try_recv_tag(Some(0), Some(tag)).map_err(mpi_call_err)?,
            };
            match m {
                Some(m) => {
                    return match rmp_serde::from_slice::<Result<Value, RelayError>>(&m.bytes) {
                        Ok(r) => from_relay(r),
                        Err(e) => Err(CallError::Protocol(format!("an unreadable relay answer: {e}"))),
                    }
                }
                None => backoff.snooze(),
            }
        }
    }

    fn cast_many(&self, casts: Vec<Cast>) -> Result<(), CallError> {
        let _one = self.one_call.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = rmp_serde::to_vec(&(self.lane, casts)).map_err(|e| CallError::Protocol(e.to_string()))?;
        sys::send(0, Tag::RelayCast as i32, &bytes).map_err(mpi_call_err)
    }
}

/// What a local worker process of a rank sends to its task server's mailbox.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromLocal {
    /// A blocking call; the answer goes to `reply`.
    Call {
        pid: i32,
        op: Op,
        /// How long rank 0 may wait, in µs.
        wait: Option<u64>,
        reply: ReplyTo<Result<Value, RelayError>>,
    },
    /// One-way messages.
    Casts { pid: i32, casts: Vec<Cast> },
}

/// The route of handles decoded in a rank's local worker process: to the task server (its
/// parent), which relays over MPI on this process's lane.
#[derive(Debug)]
pub(crate) struct LocalRoute {
    to: Addr<FromLocal>,
    pid: i32,
}

/// The route for a local worker whose task server is `server` (its mailbox address).
pub(crate) fn local_route(server: Addr<()>) -> std::sync::Arc<dyn RemoteRoute> {
    std::sync::Arc::new(LocalRoute {
        to: server.cast(),
        pid: crate::sys::proc::getpid(),
    })
}

fn local_err(e: impl std::fmt::Display) -> CallError {
    CallError::Protocol(format!("the MPI relay of this rank's task server: {e}"))
}

impl RemoteRoute for LocalRoute {
    fn call(&self, op: Op, deadline: Option<Instant>) -> Result<Value, CallError> {
        let wait = deadline.map(|d| d.saturating_duration_since(Instant::now()).as_micros() as u64);
        let pid = self.pid;
        let r = self
            .to
            .ask(|reply| FromLocal::Call { pid, op, wait, reply })
            .map_err(local_err)?;
        from_relay(r)
    }

    fn cast_many(&self, casts: Vec<Cast>) -> Result<(), CallError> {
        self.to
            .send(&FromLocal::Casts { pid: self.pid, casts })
            .map_err(local_err)
    }
}

/// A lane's work in the task server.
enum LaneJob {
    Call(Op, Option<u64>, ReplyTo<Result<Value, RelayError>>),
    Casts(Vec<Cast>),
}

/// Starts (once per process) the task server's thread that relays its local workers' calls,
/// and returns the mailbox address to give them.
pub(crate) fn serve_local_workers() -> Result<Addr<()>, String> {
    static STARTED: Mutex<Option<Addr<()>>> = Mutex::new(None);
    let mut started = STARTED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(a) = &*started {
        return Ok(a.clone());
    }
    let me = crate::process::current_process().addr::<()>();
    std::thread::Builder::new()
        .name("multiproc-mpi-local-relay".into())
        .spawn(local_relay_loop)
        .map_err(|e| format!("cannot start the thread that relays the local workers' calls: {e}"))?;
    *started = Some(me.clone());
    Ok(me)
}

/// Takes the local workers' messages from this process's mailbox and hands each to its
/// worker's lane thread.
fn local_relay_loop() {
    let inbox = crate::mailbox::mailbox::<FromLocal>();
    // pid -> (lane, its thread); lanes of exited workers, to reuse.
    let mut lanes: HashMap<i32, (Lane, Sender<LaneJob>)> = HashMap::new();
    let mut free: Vec<(Lane, Sender<LaneJob>)> = Vec::new();
    let mut next: Lane = 1;
    loop {
        let msg = match inbox.recv() {
            Ok(m) => m,
            // A message that is not a `FromLocal` (nobody else sends here): dropped.
            Err(crate::RecvError::Decode(_)) => continue,
            Err(_) => return,
        };
        let (pid, job) = match msg {
            FromLocal::Call { pid, op, wait, reply } => (pid, LaneJob::Call(op, wait, reply)),
            FromLocal::Casts { pid, casts } => (pid, LaneJob::Casts(casts)),
        };
        if !lanes.contains_key(&pid) {
            // Lanes whose worker is gone are free again (their thread stays; a call it still
            // runs is answered to nobody).
            let gone: Vec<i32> = lanes
                .keys()
                .copied()
                .filter(|p| !crate::sys::proc::pid_exists(*p))
                .collect();
            for p in gone {
                if let Some(l) = lanes.remove(&p) {
                    free.push(l);
                }
            }
            let lane = match free.pop() {
                Some(l) => Some(l),
                None if next <= MAX_LANES => {
                    let l = next;
                    next += 1;
                    spawn_lane(l).map(|tx| (l, tx))
                }
                None => None,
            };
            match lane {
                Some(l) => {
                    lanes.insert(pid, l);
                }
                None => {
                    if let LaneJob::Call(_, _, reply) = job {
                        let _ = reply.send(&Err(RelayError::Other(format!(
                            "no relay lane for process {pid} (a rank may use at most {MAX_LANES} at once)"
                        ))));
                    }
                    continue;
                }
            }
        }
        if let Some((_, tx)) = lanes.get(&pid) {
            if let Err(back) = tx.send(job) {
                if let LaneJob::Call(_, _, reply) = back.0 {
                    let _ = reply.send(&Err(RelayError::Other("the relay lane has stopped".into())));
                }
                lanes.remove(&pid);
            }
        }
    }
}

/// Starts the thread of lane `lane` in the task server.
fn spawn_lane(lane: Lane) -> Option<Sender<LaneJob>> {
    let (tx, rx): (Sender<LaneJob>, Receiver<LaneJob>) = channel();
    std::thread::Builder::new()
        .name(format!("multiproc-mpi-lane-{lane}"))
        .spawn(move || {
            let route = MpiRoute::new(lane);
            while let Ok(job) = rx.recv() {
                match job {
                    LaneJob::Call(op, wait, reply) => {
                        let deadline = wait.map(|us| Instant::now() + Duration::from_micros(us));
                        let r = route.call(op, deadline).map_err(RelayError::from);
                        // The worker may be gone (killed mid-call): nobody to tell.
                        let _ = reply.send(&r);
                    }
                    LaneJob::Casts(casts) => {
                        let _ = route.cast_many(casts);
                    }
                }
            }
        })
        .ok()?;
    Some(tx)
}

/// Rank 0's relay threads, one per (rank, lane) that has used an object.
#[derive(Default)]
pub(crate) struct Relays {
    threads: HashMap<(i32, Lane), Sender<Relayed>>,
}

/// A relay message, decoded: a call (with its wait in µs) or casts.
enum Relayed {
    Call(Op, Option<u64>),
    Casts(Vec<Cast>),
}

impl Relays {
    /// Takes a relay message (`RelayCall` or `RelayCast`) from `rank`; false for other tags.
    pub(crate) fn take(&mut self, m: &mut sys::Received) -> bool {
        let rank = m.source;
        let (lane, msg) = if m.tag == Tag::RelayCall as i32 {
            match rmp_serde::from_slice::<(Lane, Op, Option<u64>)>(&m.bytes) {
                Ok((lane, op, wait)) => (lane, Relayed::Call(op, wait)),
                Err(e) => {
                    // Which lane waits is unknown; a rank's calls come from its own code,
                    // so this is a version mismatch: lane 0 is told.
                    answer(
                        rank,
                        0,
                        Err(RelayError::Other(format!("an unreadable relayed call: {e}"))),
                    );
                    return true;
                }
            }
        } else if m.tag == Tag::RelayCast as i32 {
            match rmp_serde::from_slice::<(Lane, Vec<Cast>)>(&m.bytes) {
                Ok((lane, casts)) => (lane, Relayed::Casts(casts)),
                Err(_) => return true,
            }
        } else {
            return false;
        };
        if lane > MAX_LANES {
            if matches!(msg, Relayed::Call(..)) {
                answer(rank, 0, Err(RelayError::Other(format!("lane {lane} is out of range"))));
            }
            return true;
        }
        let tx = self.threads.entry((rank, lane)).or_insert_with(|| spawn(rank, lane));
        if let Err(back) = tx.send(msg) {
            // The thread could not start: answer the call here, with an error.
            if matches!(back.0, Relayed::Call(..)) {
                answer(
                    rank,
                    lane,
                    Err(RelayError::Other("rank 0 could not start a relay thread".into())),
                );
            }
        }
        true
    }
}

fn answer(rank: i32, lane: Lane, r: Result<Value, RelayError>) {
    let bytes = rmp_serde::to_vec(&r).unwrap_or_else(|e| {
        rmp_serde::to_vec(&Err::<Value, _>(RelayError::Other(format!(
            "the answer could not be encoded: {e}"
        ))))
        .unwrap_or_default()
    });
    let _ = sys::send(rank, reply_tag(lane), &bytes);
}

/// Gives the callers of one lane owner ids of rank 0's own: the `thread` of a lock operation
/// names a thread of the *calling* process, and every relayed call is made by rank 0, so
/// thread 1 of rank 1 and thread 1 of rank 2 must not be the same owner of an `RLock`.
#[derive(Default)]
struct Owners(HashMap<u64, u64>);

impl Owners {
    fn id(&mut self, theirs: u64) -> u64 {
        *self.0.entry(theirs).or_insert_with(crate::sync::fresh_owner_id)
    }

    fn map_obj(&mut self, op: &mut ObjOp) {
        if let ObjOp::Sync(
            SyncOp::Acquire { thread, .. }
            | SyncOp::Release { thread, .. }
            | SyncOp::CondWait { thread, .. }
            | SyncOp::CondNotify { thread, .. },
        ) = op
        {
            *thread = self.id(*thread);
        }
    }

    fn map_op(&mut self, op: &mut Op) {
        if let Op::Object { op, .. } = op {
            self.map_obj(op);
        }
    }

    fn map_cast(&mut self, c: &mut Cast) {
        if let Cast::Object { op, .. } = c {
            self.map_obj(op);
        }
    }
}

fn spawn(rank: i32, lane: Lane) -> Sender<Relayed> {
    let (tx, rx) = channel::<Relayed>();
    let started = std::thread::Builder::new()
        .name(format!("multiproc-mpi-relay-{rank}.{lane}"))
        .spawn(move || {
            let mut owners = Owners::default();
            while let Ok(msg) = rx.recv() {
                match msg {
                    Relayed::Call(mut op, wait) => {
                        owners.map_op(&mut op);
                        let r = crate::runtime::call(op, wait.map(|us| Instant::now() + Duration::from_micros(us)))
                            .map_err(RelayError::from);
                        answer(rank, lane, r);
                    }
                    Relayed::Casts(mut casts) => {
                        casts.iter_mut().for_each(|c| owners.map_cast(c));
                        let _ = crate::runtime::cast_many(casts);
                    }
                }
            }
        });
    match started {
        Ok(_) => tx,
        // A sender whose receiver is gone: `take` answers the call itself.
        Err(_) => channel().0,
    }
}
