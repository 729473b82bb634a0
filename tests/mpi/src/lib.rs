//! Workers shared by the MPI test programs (every rank runs the same binary, so each finds
//! them by name).

use std::time::Duration;

/// `x * x`.
#[multiproc::worker]
pub fn square(x: u64) -> u64 {
    x * x
}

/// `a + b`.
#[multiproc::worker]
pub fn add(a: u64, b: u64) -> u64 {
    a + b
}

/// Panics for 7, otherwise `x`.
#[multiproc::worker]
pub fn boom(x: u64) -> u64 {
    if x == 7 {
        panic!("seven is not allowed");
    }
    x
}

/// The MPI rank and the pid of the process that ran the task.
#[multiproc::worker]
pub fn whoami() -> (i32, u32) {
    (multiproc::mpi::rank(), std::process::id())
}

/// Sleeps `ms`, returns `x`.
#[multiproc::worker]
pub fn slow(x: u64, ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    x
}

/// Does nothing (benchmarks).
#[multiproc::worker]
pub fn noop(x: u64) -> u64 {
    x
}

/// Initializer that fails.
#[multiproc::worker]
pub fn bad_init() {
    panic!("initializer refuses");
}

/// The pid of the MPI rank running this task: the rank itself, or the parent of the rank's local
/// worker process.
#[multiproc::worker]
pub fn rank_pid(local: bool) -> u32 {
    if local {
        std::os::unix::process::parent_id()
    } else {
        std::process::id()
    }
}

/// Puts `(rank, x)` on `q` (a Queue created in rank 0).
#[multiproc::worker]
pub fn put_rank(q: multiproc::Queue<(i32, u64)>, x: u64) {
    q.put((multiproc::mpi::rank(), x)).expect("put");
}

/// Increments `counter` `n` times, each time read-modify-write under `lock`; returns the rank.
#[multiproc::worker]
pub fn count_under_lock(lock: multiproc::Lock, counter: multiproc::ValueProxy<u64>, n: u64) -> i32 {
    for _ in 0..n {
        let _g = lock.acquire().expect("acquire");
        let v = counter.get().expect("get");
        counter.set(v + 1).expect("set");
    }
    multiproc::mpi::rank()
}

/// Waits (at most 60 s) for `ev`; returns the rank and whether it was set.
#[multiproc::worker]
pub fn wait_event(ev: multiproc::Event, _i: u64) -> (i32, bool) {
    (
        multiproc::mpi::rank(),
        ev.wait_timeout(Duration::from_secs(60)).expect("wait"),
    )
}

/// `n` lock acquire+release pairs; returns the mean time of one pair in ns (benchmarks).
#[multiproc::worker]
pub fn lock_pairs(lock: multiproc::Lock, n: u64) -> u64 {
    let t = std::time::Instant::now();
    for _ in 0..n {
        drop(lock.acquire().expect("acquire"));
    }
    (t.elapsed().as_nanos() / n.max(1) as u128) as u64
}

/// Records `x → rank` in a Manager dict and puts `x` on a bounded JoinableQueue (both created
/// in rank 0).
#[multiproc::worker]
pub fn record(d: multiproc::Dict<u64, i32>, q: multiproc::JoinableQueue<u64>, x: u64) {
    d.set(x, multiproc::mpi::rank()).expect("dict set");
    q.put(x).expect("put");
}

/// Puts `(pid, x)` on `q` (a Queue created in rank 0), from whichever process runs the task.
#[multiproc::worker]
pub fn put_pid(q: multiproc::Queue<(u32, u64)>, x: u64) {
    q.put((std::process::id(), x)).expect("put");
}

/// Holds `lock` (an RLock created in rank 0, taken twice: re-entered) for `ms` milliseconds;
/// returns (pid, start, end) of the hold, in µs of the system clock (the tests' ranks share one
/// machine, so one clock).
#[multiproc::worker]
pub fn hold_rlock(lock: multiproc::RLock, ms: u64) -> (u32, u64, u64) {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0)
    };
    let outer = lock.acquire().expect("acquire");
    let inner = lock.acquire().expect("re-enter");
    let start = now();
    std::thread::sleep(Duration::from_millis(ms));
    let end = now();
    drop(inner);
    drop(outer);
    (std::process::id(), start, end)
}
