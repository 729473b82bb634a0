//! The MPI backend (feature `mpi`): the same `#[worker]` code on an MPI cluster.
//!
//! The job is one binary started N times by the launcher (`mpirun -n N ./app`, `srun`).
//! Rank 0 runs `main`; every other rank diverts before `main`, in the bootstrap's pre-main hook,
//! into a task server ([`server`]) that runs registered `#[worker]` entry points by name.
//! [`Pool::builder().mpi()`](crate::PoolBuilder::mpi) in rank 0 gives a [`Pool`](crate::Pool)
//! whose chunks go to the ranks instead of local processes ([`manager`]).
//!
//! - [`sys`] is the only module that calls MPI (its "sys" layer); it documents the thread level.
//! - The messages reuse the local pool's chunk and report layouts (`pool/worker.rs`), behind an
//!   MPI tag and a chunk id (see [`Tag`]).
//! - Launch errors are loud: a launcher whose environment says the job has N > 1 processes while
//!   MPI says 1 (a binary built for another MPI) ends every process before `main` with a message
//!   naming the MPI the binary was built for; a pool asked for outside MPI is
//!   [`PoolError::Mpi`](crate::PoolError::Mpi).
//! - A panic outside a task on a rank calls `MPI_Abort`: the launcher ends the job (MPI
//!   semantics; one rank's death ends the job, and `mpirun` names the rank).

pub(crate) mod manager;
pub(crate) mod relay;
pub(crate) mod server;
pub(crate) mod sys;

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// The message kinds between rank 0 and a task server, as MPI tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub(crate) enum Tag {
    /// 0 → r: a pool opens (MessagePack [`server::Open`]).
    Open = 101,
    /// r → 0: the pool is ready on this rank (MessagePack [`server::Opened`]).
    Opened = 102,
    /// 0 → r: chunk id (u64 LE), the task deadline in µs (u64 LE; 0: none; only to ranks with
    /// local workers), then a chunk in the layout of `pool/worker.rs`.
    Chunk = 103,
    /// r → 0: chunk id (u64 LE), then its report in the layout of `pool/worker.rs`.
    Done = 104,
    /// 0 → r: the pool is over; drop what is queued, stop the local workers.
    Close = 105,
    /// r → 0: the rank is idle again (after `Close`).
    Closed = 106,
    /// 0 → r: the job ends (rank 0 is exiting): finalise and exit.
    Stop = 107,
    /// r → 0: stopped; nothing else will come from this rank.
    Stopped = 108,
    /// r → 0: a blocking hub call of a task on the objects of rank 0 (MessagePack
    /// `(Op, Option<micros>)`), answered by `RelayReply`.
    RelayCall = 109,
    /// r → 0: one-way hub messages of a task (MessagePack `Vec<Cast>`).
    RelayCast = 110,
    /// 0 → r: the answer to a `RelayCall` (MessagePack `Result<Value, RelayError>`).
    RelayReply = 111,
}

impl Tag {
    pub(crate) fn from_i32(t: i32) -> Option<Tag> {
        Some(match t {
            101 => Tag::Open,
            102 => Tag::Opened,
            103 => Tag::Chunk,
            104 => Tag::Done,
            105 => Tag::Close,
            106 => Tag::Closed,
            107 => Tag::Stop,
            108 => Tag::Stopped,
            109 => Tag::RelayCall,
            110 => Tag::RelayCast,
            111 => Tag::RelayReply,
            _ => return None,
        })
    }
}

/// MPI was initialised by the pre-main hook in this process.
static INITIALIZED: AtomicBool = AtomicBool::new(false);
static RANK: AtomicI32 = AtomicI32::new(0);
static SIZE: AtomicI32 = AtomicI32::new(0);

/// The environment variables by which launchers announce the job's size.
const SIZE_VARS: [&str; 3] = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"];
/// Variables that mean "started by an MPI launcher" even when no size is given.
const LAUNCHED_VARS: [&str; 3] = ["PMIX_RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK"];

/// What the environment says about the launcher: launched at all, and the size it announces
/// (the variable and its value).
fn launcher_env() -> Option<Option<(&'static str, i32)>> {
    for var in SIZE_VARS {
        if let Some(n) = std::env::var(var).ok().and_then(|v| v.trim().parse::<i32>().ok()) {
            return Some(Some((var, n)));
        }
    }
    if LAUNCHED_VARS.iter().any(|v| std::env::var_os(v).is_some()) {
        return Some(None);
    }
    None
}

/// The pre-main hook of the MPI backend, called by the bootstrap when this process is not a
/// multiproc child. Not under an MPI launcher: returns at once (MPI is never initialised).
/// Otherwise initialises MPI; rank 0 returns (its `main` runs), every other rank serves tasks
/// and exits without returning.
pub(crate) fn boot() {
    let Some(announced) = launcher_env() else {
        return;
    };
    let fail = |msg: String| -> ! {
        crate::sys::io::write_stderr(&format!("multiproc (mpi): {msg}\n"));
        std::process::exit(1)
    };
    match sys::init() {
        Ok(level) if level >= sys::serialized() => {}
        Ok(level) => fail(format!(
            "{} provides MPI thread level {level}; multiproc needs MPI_THREAD_SERIALIZED or higher",
            sys::library_version()
        )),
        Err(e) => fail(format!("MPI_Init_thread failed: {e}")),
    }
    let (rank, size) = match (sys::rank(), sys::size()) {
        (Ok(r), Ok(s)) => (r, s),
        (Err(e), _) | (_, Err(e)) => fail(format!("cannot read the MPI rank and size: {e}")),
    };
    if let Some((var, n)) = announced {
        if n != size {
            let built_for = sys::library_version();
            fail(format!(
                "wrong MPI launcher: {var}={n} says this job has {n} processes, but MPI says it has {size} \
                 (each process is a singleton). This binary was built for {built_for}; start it with that \
                 MPI's mpirun/mpiexec (or srun with its PMI), or rebuild it against the MPI whose launcher \
                 you use (mpicc on the PATH, or MPICC=... at build time)."
            ));
        }
    }
    RANK.store(rank, Ordering::SeqCst);
    SIZE.store(size, Ordering::SeqCst);
    INITIALIZED.store(true, Ordering::SeqCst);
    if rank == 0 {
        crate::sys::proc::at_exit(rank0_exit);
        return;
    }
    server::run(rank)
}

/// Rank 0's exit hook: tells every task server to stop, waits until each has said it stopped
/// (discarding any report still on its way), and finalises MPI. Ranks run what they were sent
/// before they see `Stop`, so this can wait for a running task.
extern "C" fn rank0_exit() {
    let size = SIZE.load(Ordering::SeqCst);
    for r in 1..size {
        let _ = sys::send(r, Tag::Stop as i32, &[]);
    }
    let mut backoff = Backoff::new();
    while STOPPED.load(Ordering::SeqCst) < size - 1 {
        match recv_any() {
            Ok(Some(_)) => backoff.reset(),
            Ok(None) => backoff.snooze(),
            Err(_) => break,
        }
    }
    sys::finalize();
}

/// `Stopped` answers received so far, by whichever thread of rank 0 received them (the exit
/// hook, or a pool's manager still running).
static STOPPED: AtomicI32 = AtomicI32::new(0);

/// Receives one message for rank 0 from any rank, if one is waiting; counts `Stopped`.
pub(crate) fn recv_any() -> Result<Option<sys::Received>, sys::MpiSysError> {
    let m = sys::try_recv(None)?;
    if let Some(m) = &m {
        if m.tag == Tag::Stopped as i32 {
            STOPPED.fetch_add(1, Ordering::SeqCst);
        }
    }
    Ok(m)
}

/// Is this process rank 0 of an MPI job with at least one task server? The error says why not,
/// and what to do.
pub(crate) fn check_rank0() -> Result<i32, String> {
    if !INITIALIZED.load(Ordering::SeqCst) {
        return Err(format!(
            "this program was not started by an MPI launcher (no {} in the environment); \
             start it with `mpirun -n N {}` (N >= 2: rank 0 runs main, the other ranks run the tasks)",
            SIZE_VARS.join(" / "),
            std::env::args().next().unwrap_or_else(|| "./app".into())
        ));
    }
    let size = SIZE.load(Ordering::SeqCst);
    if size < 2 {
        return Err(format!(
            "the MPI job has {size} rank; a pool needs at least 2 (rank 0 runs main, the others run the tasks): \
             start with mpirun -n 2 or more"
        ));
    }
    Ok(size)
}

/// Was this process started by an MPI launcher (and MPI initialised)?
///
/// ```
/// // Not under mpirun (as here), nothing about MPI is initialised.
/// assert!(!multiproc::mpi::launched());
/// ```
pub fn launched() -> bool {
    INITIALIZED.load(Ordering::SeqCst)
}

/// This process's rank in the MPI job (0 outside MPI; `main` only ever runs on rank 0).
pub fn rank() -> i32 {
    RANK.load(Ordering::SeqCst)
}

/// The number of ranks in the MPI job (0 outside MPI).
pub fn world_size() -> i32 {
    SIZE.load(Ordering::SeqCst)
}

/// The MPI library this binary is linked with (first line of `MPI_Get_library_version`).
pub fn library_version() -> String {
    sys::library_version()
}

/// The adaptive wait of every polling loop: spin (yielding) for the first rounds, then sleep
/// for doubling intervals, up to 50 µs while the last message is under 100 ms old (a busy pool:
/// latency matters) and up to 1 ms after that (an idle rank then costs ~1 % of a core instead
/// of the whole core that MPI's blocking receive busy-polls).
pub(crate) struct Backoff {
    round: u32,
    last_activity: Instant,
}

impl Backoff {
    const SPINS: u32 = 64;
    const BUSY_MAX: Duration = Duration::from_micros(50);
    const IDLE_AFTER: Duration = Duration::from_millis(100);
    const IDLE_MAX: Duration = Duration::from_millis(1);

    pub(crate) fn new() -> Backoff {
        Backoff {
            round: 0,
            last_activity: Instant::now(),
        }
    }

    /// Something happened: wait briefly again.
    pub(crate) fn reset(&mut self) {
        self.round = 0;
        self.last_activity = Instant::now();
    }

    /// How long the next wait should be (zero: just yield).
    pub(crate) fn next(&mut self) -> Duration {
        self.round = self.round.saturating_add(1);
        if self.round <= Self::SPINS {
            return Duration::ZERO;
        }
        let exp = (self.round - Self::SPINS).min(10);
        let cap = if self.last_activity.elapsed() < Self::IDLE_AFTER {
            Self::BUSY_MAX
        } else {
            Self::IDLE_MAX
        };
        Duration::from_micros(1 << exp).min(cap)
    }

    pub(crate) fn snooze(&mut self) {
        let d = self.next();
        if d.is_zero() {
            std::thread::yield_now();
        } else {
            std::thread::sleep(d);
        }
    }
}

/// Prefixes a chunk id (u64 LE) to a chunk or a report.
pub(crate) fn with_id(id: u64, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + body.len());
    v.extend_from_slice(&id.to_le_bytes());
    v.extend_from_slice(body);
    v
}

/// A `Chunk` message: the chunk id, the deadline (see [`Tag::Chunk`]), the chunk.
pub(crate) fn chunk_message(id: u64, deadline: Option<Duration>, body: &[u8]) -> Vec<u8> {
    let micros = deadline.map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1));
    let mut v = Vec::with_capacity(16 + body.len());
    v.extend_from_slice(&id.to_le_bytes());
    v.extend_from_slice(&micros.to_le_bytes());
    v.extend_from_slice(body);
    v
}

/// Splits a `Chunk` message into its id, deadline and chunk; `None` if it is too short.
pub(crate) fn split_chunk_message(b: &[u8]) -> Option<(u64, Option<Duration>, &[u8])> {
    let (id, rest) = split_id(b)?;
    let (micros, body) = split_id(rest)?;
    Some((id, (micros != 0).then(|| Duration::from_micros(micros)), body))
}

/// Splits a chunk id from its message.
pub(crate) fn split_id(b: &[u8]) -> Option<(u64, &[u8])> {
    if b.len() < 8 {
        return None;
    }
    let (id, rest) = b.split_at(8);
    Some((u64::from_le_bytes(id.try_into().ok()?), rest))
}
