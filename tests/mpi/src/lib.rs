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
