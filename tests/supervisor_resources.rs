//! 1,000 restarts of one child: the root's descriptors and memory return to their baseline.

mod common;

use std::time::{Duration, Instant};

use common::eventually;
use multiproc::supervisor::{ChildSpec, Supervisor};

/// Dies at once (exit code 2), so the supervisor restarts it as fast as it can.
#[multiproc::worker]
fn crasher() {
    std::process::exit(2);
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Runs one supervisor whose crashing child is restarted `n` times, then stops it.
fn restart(n: u64) -> Duration {
    let t = Instant::now();
    let sup = Supervisor::builder()
        .intensity(u32::MAX, Duration::from_secs(3600))
        .child(ChildSpec::new("crasher", crasher))
        .start()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(600);
    loop {
        let starts = sup.which_children().unwrap()[0].starts;
        if starts > n {
            break;
        }
        assert!(Instant::now() < end, "only {starts} starts");
        std::thread::sleep(Duration::from_millis(20));
    }
    sup.stop().unwrap();
    t.elapsed()
}

#[test]
fn a_thousand_restarts_leave_the_roots_fds_and_memory_at_baseline() {
    // Warm up: the hub's tables, the fork server and its spare, thread connections.
    restart(100);
    let (fds, rss) = (fd_count(), rss_kib());
    let took = restart(1000);
    eprintln!("1000 restarts in {took:?}");
    // Descriptors: exactly back (a dying child's connection and pidfd are closed once it is
    // reaped, which may take a moment after `stop`).
    assert!(
        eventually(Duration::from_secs(30), || fd_count() <= fds),
        "fds: {fds} before, {} after",
        fd_count()
    );
    // Memory: allow the allocator some slack (4 MiB), far below what 1,000 leaked
    // processes' records and connections would cost.
    let after = rss_kib();
    eprintln!("fds {fds} -> {}, RSS {rss} KiB -> {after} KiB", fd_count());
    assert!(
        after <= rss + 4096,
        "RSS grew from {rss} KiB to {after} KiB over 1000 restarts"
    );
}
