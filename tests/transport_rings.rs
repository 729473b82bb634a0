//! The shared-memory transport (issue 10): hub connections whose frames travel in rings.
//! Durability across SIGKILL (puts, mailbox sends, 1 MiB items), full rings (a consumer that
//! stops reading), a process killed in the middle of writing a frame into its ring, garbage and
//! scribbled counters in a ring, and the idle cost of a blocked receiver.
//!
//! Every test here also runs on the socket-only path: `the_socket_transport_passes_these_tests`
//! re-runs this binary with `MULTIPROC_TRANSPORT=socket` (the whole suite can be run that way
//! too).

mod common;
use common::{die_now, socket_only, Reap, LONG};

use std::time::{Duration, Instant};

use multiproc::wire::ring::TRANSPORT_ENV;
use multiproc::{Addr, Process, Queue};

#[multiproc::worker]
fn transport_of_child() -> bool {
    multiproc::runtime::hub_transport_is_ring().unwrap()
}

#[test]
fn rings_are_used_unless_switched_off() {
    assert_eq!(multiproc::runtime::hub_transport_is_ring().unwrap(), !socket_only());
    let mut p = Process::new(transport_of_child()).start().unwrap();
    assert_eq!(p.join().unwrap(), !socket_only());
}

const N: u32 = 10_000;

#[multiproc::worker]
fn send_then_die(to: Addr<u32>) {
    for i in 0..N {
        to.send(&i).unwrap();
    }
    die_now()
}

/// Receives `n` messages (checking their order) after sleeping `pause_ms` with its mailbox
/// already subscribed, then checks that nothing more comes. Returns how many came in order.
#[multiproc::worker]
fn receive_in_order(n: u64, pause_ms: u64) -> u64 {
    let mb = multiproc::mailbox::<u64>();
    // The first call opens the mailbox's connection, so mail is pushed to it from now on. The
    // sender may have started first, so the first message can already be here.
    let first = match mb.try_recv() {
        Ok(0) => 1,
        Ok(_) => return 0,
        Err(_) => 0,
    };
    std::thread::sleep(Duration::from_millis(pause_ms));
    for i in first..n {
        match mb.recv_timeout(LONG) {
            Ok(v) if v == i => {}
            _ => return i,
        }
    }
    if mb.recv_timeout(Duration::from_millis(200)).is_ok() {
        return u64::MAX;
    }
    n
}

#[test]
fn sender_killed_after_its_last_send_loses_nothing() {
    let mut r = Reap(Process::new(receive_in_order(N as u64, 0)).start().unwrap());
    let to = r.0.addr::<u32>();
    let mut p = Reap(Process::new(send_then_die(to)).start().unwrap());
    assert!(p.0.join_timeout(LONG).is_err());
    assert_eq!(p.0.exitcode(), Some(-multiproc::sys::signal::SIGKILL));
    assert_eq!(
        r.0.join_timeout(LONG).unwrap(),
        N as u64,
        "exactly {N} messages, in order"
    );
}

const BIG: usize = 1 << 20;
const BIG_N: u32 = 24;

#[multiproc::worker]
fn put_big_then_die(q: Queue<serde_bytes::ByteBuf>) {
    for i in 0..BIG_N {
        q.put(serde_bytes::ByteBuf::from(vec![i as u8; BIG])).unwrap();
    }
    die_now()
}

#[test]
fn producer_of_one_mib_items_killed_after_its_last_put_loses_nothing() {
    let q = Queue::<serde_bytes::ByteBuf>::new().unwrap();
    let mut p = Reap(Process::new(put_big_then_die(q.clone())).start().unwrap());
    for i in 0..BIG_N {
        let item = q.get_timeout(LONG).unwrap();
        assert_eq!(item.len(), BIG);
        assert!(item.iter().all(|b| *b == i as u8), "item {i} intact and in order");
    }
    assert!(q.try_get().is_err(), "exactly {BIG_N} items");
    assert!(p.0.join().is_err());
}

#[multiproc::worker]
fn put_many_small(q: Queue<u64>, n: u64) {
    for i in 0..n {
        q.put(i).unwrap();
    }
}

#[multiproc::worker]
fn send_many_small(to: Addr<u64>, n: u64) {
    for i in 0..n {
        to.send(&i).unwrap();
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// A consumer that stops reading for 2 s while producers keep going: a bounded queue makes
/// its producer wait (no deadlock), a mailbox holds the mail in the hub; nothing is lost, the
/// order holds, and the root's memory stays within the documented bound (the mail itself plus
/// the rings and `max_buffered_per_connection`).
#[test]
fn a_consumer_that_stops_reading_loses_nothing_and_deadlocks_nobody() {
    const M: u64 = 100_000;
    let before = rss_kib();
    let q = Queue::<u64>::bounded(1000).unwrap();
    // The mailbox reader subscribes, then does not read for 2 s while mail is pushed towards
    // it (into its ring, then the hub's queue for it).
    let mut r = Reap(Process::new(receive_in_order(M, 2000)).start().unwrap());
    let to = r.0.addr::<u64>();
    let mut a = Reap(Process::new(put_many_small(q.clone(), M)).start().unwrap());
    let mut b = Reap(Process::new(send_many_small(to, M)).start().unwrap());
    std::thread::sleep(Duration::from_secs(2));
    for i in 0..M {
        assert_eq!(q.get_timeout(LONG).unwrap(), i);
    }
    a.0.join_timeout(LONG).unwrap();
    b.0.join_timeout(LONG).unwrap();
    assert_eq!(r.0.join_timeout(LONG).unwrap(), M, "every message, in order");
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    // 100,000 small messages are a few MiB; the transport adds at most its rings per
    // connection and the replies it buffers (`max_buffered_per_connection`, 64 MiB).
    assert!(grown_mib < 96, "the root grew by {grown_mib} MiB");
}

fn half_frame() -> Vec<u8> {
    // A frame announcing 100 bytes of body, of which only 10 arrive.
    let mut f = 100u32.to_le_bytes().to_vec();
    f.extend_from_slice(&[0x92; 10]);
    f
}

/// Writes half a frame into a raw ring connection of its own, then dies.
#[multiproc::worker]
fn half_frame_then_die() {
    let (sock, ring) = multiproc::runtime::raw_hub_ring_connection().unwrap();
    match ring {
        Some(mut ends) => {
            assert_eq!(ends.tx.write(&half_frame()).unwrap(), 14);
            if ends.tx.reader_needs_wake() {
                multiproc::sys::io::ring_doorbell(std::os::fd::AsFd::as_fd(&sock));
            }
        }
        None => {
            multiproc::sys::io::send_all(std::os::fd::AsFd::as_fd(&sock), &half_frame(), &[]).unwrap();
        }
    }
    std::thread::sleep(Duration::from_millis(50));
    die_now()
}

#[multiproc::worker]
fn double(x: u32) -> u32 {
    x * 2
}

#[test]
fn a_process_killed_mid_frame_costs_nobody_else() {
    let q = Queue::<u32>::new().unwrap();
    let mut p = Reap(Process::new(half_frame_then_die()).start().unwrap());
    assert!(p.0.join_timeout(LONG).is_err());
    assert_eq!(p.0.exitcode(), Some(-multiproc::sys::signal::SIGKILL));
    // The hub discarded the partial frame with the process; everyone else carries on.
    q.put(7).unwrap();
    assert_eq!(q.get_timeout(LONG).unwrap(), 7);
    let mut d = Process::new(double(21)).start().unwrap();
    assert_eq!(d.join().unwrap(), 42);
    multiproc::runtime::ping_hub().unwrap();
}

/// Reads the socket until end of file (the hub dropped the connection) or `limit`.
fn dropped_within(sock: &std::os::fd::OwnedFd, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    let mut buf = [0u8; 64];
    while Instant::now() < end {
        match multiproc::sys::io::wait_readable(&[std::os::fd::AsFd::as_fd(sock)], Some(end)) {
            Ok(multiproc::sys::io::Ready::Index(_)) => {}
            _ => return false,
        }
        match multiproc::sys::io::recv_into(std::os::fd::AsFd::as_fd(sock), &mut buf, true) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(multiproc::sys::Errno::EAGAIN) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn garbage_in_a_ring_costs_only_that_connection() {
    if socket_only() {
        return; // hardening tests cover garbage on the socket
    }
    // A body that is not a message.
    let (sock, ring) = multiproc::runtime::raw_hub_ring_connection().unwrap();
    let mut ends = ring.expect("ring mode");
    let mut junk = 6u32.to_le_bytes().to_vec();
    junk.extend_from_slice(&[0xc1, 0xc1, 0xff, 0x00, 0x13, 0x37]);
    ends.tx.write(&junk).unwrap();
    if ends.tx.reader_needs_wake() {
        multiproc::sys::io::ring_doorbell(std::os::fd::AsFd::as_fd(&sock));
    }
    assert!(dropped_within(&sock, LONG), "garbage frame: connection not dropped");
    // An oversized length.
    let (sock, ring) = multiproc::runtime::raw_hub_ring_connection().unwrap();
    let mut ends = ring.expect("ring mode");
    ends.tx.write(&u32::MAX.to_le_bytes()).unwrap();
    multiproc::sys::io::ring_doorbell(std::os::fd::AsFd::as_fd(&sock));
    assert!(dropped_within(&sock, LONG), "oversized frame: connection not dropped");
    // A scribbled tail (more bytes announced than the ring holds).
    let (sock, ring) = multiproc::runtime::raw_hub_ring_connection().unwrap();
    let ends = ring.expect("ring mode");
    ends.tx.scribble_tail(1 << 40);
    multiproc::sys::io::ring_doorbell(std::os::fd::AsFd::as_fd(&sock));
    assert!(dropped_within(&sock, LONG), "scribbled tail: connection not dropped");
    // Everyone else is fine.
    multiproc::runtime::ping_hub().unwrap();
    let mut d = Process::new(double(5)).start().unwrap();
    assert_eq!(d.join().unwrap(), 10);
}

#[multiproc::worker]
fn block_in_recv() {
    let _ = multiproc::mailbox::<u32>().recv();
}

/// CPU time a process has used, in nanoseconds (`schedstat`: exact; `stat`: clock ticks).
fn cpu_ns(pid: i32) -> u64 {
    if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/schedstat")) {
        if let Some(ns) = s.split_whitespace().next().and_then(|n| n.parse().ok()) {
            return ns;
        }
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = s.rsplit_once(')').unwrap().1;
    let f: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // Fields after the state: utime is field 14 of the line, stime 15 (ticks of 10 ms).
    (f[10] + f[11]) * 10_000_000
}

#[test]
fn an_idle_child_blocked_in_recv_costs_no_cpu() {
    let p = Reap(Process::new(block_in_recv()).start().unwrap());
    let pid = p.0.pid();
    // Let it reach its receive.
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_ns(pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ns(pid) - before;
    assert!(used < 2_000_000, "an idle child used {} µs of CPU in 2 s", used / 1000);
}

#[multiproc::worker]
fn ping_then_idle(n: u32, done: Queue<u32>) {
    for _ in 0..n {
        multiproc::runtime::ping_hub().unwrap();
    }
    done.put(n).unwrap();
    let _ = multiproc::mailbox::<u32>().recv();
}

/// CPU time of this process's hub thread, in nanoseconds.
fn hub_thread_cpu_ns() -> u64 {
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let dir = task.path();
        if std::fs::read_to_string(dir.join("comm")).is_ok_and(|c| c.trim() == "multiproc-hub") {
            let s = std::fs::read_to_string(dir.join("schedstat")).unwrap();
            return s.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap();
        }
    }
    panic!("no multiproc-hub thread in this process");
}

/// Helper root: a child makes 5,000 back-to-back hub calls (both sides spin between them),
/// then blocks; the hub thread's and the child's CPU time over the next 2 s are printed.
#[test]
#[ignore = "helper root for the_hub_and_a_child_idle_after_a_burst_of_calls"]
fn helper_idle_after_burst() {
    if !common::is_helper("helper_idle_after_burst") {
        return;
    }
    let done = Queue::new().unwrap();
    let p = Reap(Process::new(ping_then_idle(5000, done.clone())).start().unwrap());
    assert_eq!(done.get_timeout(LONG).unwrap(), 5000);
    std::thread::sleep(Duration::from_millis(300));
    let (hub, child) = (hub_thread_cpu_ns(), cpu_ns(p.0.pid()));
    std::thread::sleep(Duration::from_secs(2));
    let (hub, child) = (hub_thread_cpu_ns() - hub, cpu_ns(p.0.pid()) - child);
    println!("IDLE hub={hub} child={child}");
}

/// The spins before sleeping (on rings, or on the socket with `MULTIPROC_TRANSPORT=socket`)
/// end with the traffic: after a burst of round trips, the child uses under 2 ms of CPU in 2 s
/// (the bound) and the hub under 4 ms (it also runs its timers; a CI run measured
/// 2.1 ms against the old 2 ms bound). Run in a helper root so that no other test keeps its
/// hub busy.
#[test]
fn the_hub_and_a_child_idle_after_a_burst_of_calls() {
    let root = common::helper_root("helper_idle_after_burst");
    let out = root.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find_map(|l| l.split_once("IDLE ").map(|(_, rest)| rest));
    let Some(line) = line.filter(|_| out.status.success()) else {
        panic!("{text}\n{}", String::from_utf8_lossy(&out.stderr));
    };
    let used: Vec<u64> = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('=').and_then(|(_, v)| v.parse().ok()))
        .collect();
    assert_eq!(used.len(), 2, "{line}");
    assert!(
        used[0] < 4_000_000,
        "the hub used {} µs of CPU in 2 s of idling",
        used[0] / 1000
    );
    assert!(
        used[1] < 2_000_000,
        "the child used {} µs of CPU in 2 s of idling",
        used[1] / 1000
    );
}

/// Re-runs this binary's tests on the socket-only path.
#[test]
fn the_socket_transport_passes_these_tests() {
    if socket_only() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--skip", "the_socket_transport_passes_these_tests", "--test-threads=2"])
        .env(TRANSPORT_ENV, "socket")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("test result: ok"), "{text}");
}

// ----- large payloads (stage 2): items ≥ 64 KiB travel in a memory object of their own ------

fn big_item(i: u32, len: usize) -> serde_bytes::ByteBuf {
    serde_bytes::ByteBuf::from(
        (0..len)
            .map(|k| (k as u32).wrapping_mul(31).wrapping_add(i) as u8)
            .collect::<Vec<u8>>(),
    )
}

/// Big and small items of varying sizes, alternately: each thread encodes (and reads big
/// items) in one scratch buffer it keeps, so every item must come back as it was, whatever
/// went through the buffer before it.
fn mixed_item(i: u32) -> serde_bytes::ByteBuf {
    let len = match i % 4 {
        0 => 300_000 - i as usize * 1000,
        1 => 17,
        2 => 64 << 10,
        _ => 70_000 + i as usize * 5000,
    };
    big_item(i, len)
}

#[multiproc::worker]
fn put_mixed(q: Queue<serde_bytes::ByteBuf>, n: u32) {
    for i in 0..n {
        q.put(mixed_item(i)).unwrap();
    }
}

#[test]
fn big_and_small_items_through_reused_buffers_come_back_exact() {
    const N: u32 = 40;
    let q = Queue::<serde_bytes::ByteBuf>::new().unwrap();
    let mut p = Reap(Process::new(put_mixed(q.clone(), N)).start().unwrap());
    for i in 0..N {
        assert_eq!(q.get_timeout(LONG).unwrap(), mixed_item(i), "item {i} from the child");
    }
    p.0.join_timeout(LONG).unwrap();
    // One thread that puts and gets in turn, with items larger than any before (the buffer
    // grows) and smaller (its tail holds stale bytes).
    for i in (0..N).rev() {
        q.put(mixed_item(i)).unwrap();
        if i % 3 == 0 {
            q.put(mixed_item(i + 100)).unwrap();
            assert_eq!(q.get_timeout(LONG).unwrap(), mixed_item(i), "item {i}");
            assert_eq!(q.get_timeout(LONG).unwrap(), mixed_item(i + 100), "item {}", i + 100);
        } else {
            assert_eq!(q.get_timeout(LONG).unwrap(), mixed_item(i), "item {i}");
        }
    }
    assert!(q.try_get().is_err());
}

/// Helper root: with room for only 4 held descriptors, 10 big items without a consumer: the
/// first go by descriptor, the rest fall back to inline; all 10 come back whole, in order.
#[test]
#[ignore = "helper root for big_items_fall_back_to_inline_past_the_descriptor_budget"]
fn helper_big_items_budget() {
    if !common::is_helper("helper_big_items_budget") {
        return;
    }
    multiproc::set_hub_limits(multiproc::runtime::HubLimits {
        max_held_fds: 4,
        ..multiproc::runtime::HubLimits::default()
    });
    let q = Queue::<serde_bytes::ByteBuf>::new().unwrap();
    for i in 0..10 {
        q.put(big_item(i, 200_000)).unwrap();
    }
    for i in 0..10 {
        assert_eq!(q.get_timeout(LONG).unwrap(), big_item(i, 200_000), "item {i}");
    }
    println!("BIG OK");
}

#[test]
fn big_items_fall_back_to_inline_past_the_descriptor_budget() {
    let root = common::helper_root("helper_big_items_budget");
    let out = root.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("BIG OK"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[multiproc::worker]
fn take_big_and_hang(q: multiproc::JoinableQueue<serde_bytes::ByteBuf>, report: multiproc::Connection<u64>) {
    let item = q.get().unwrap();
    report.send(&(item.len() as u64)).unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_big_item_of_a_killed_consumer_is_redelivered_whole() {
    let q = multiproc::JoinableQueue::<serde_bytes::ByteBuf>::new().unwrap();
    q.put(big_item(9, 1 << 20)).unwrap();
    let (mine, theirs) = multiproc::pipe::<u64>().unwrap();
    let mut p = Reap(Process::new(take_big_and_hang(q.clone(), theirs)).start().unwrap());
    assert_eq!(mine.recv_timeout(LONG).unwrap(), 1 << 20);
    p.0.kill().unwrap();
    let _ = p.0.join_timeout(LONG);
    assert_eq!(q.get_timeout(LONG).unwrap(), big_item(9, 1 << 20));
    q.task_done().unwrap();
    q.join_timeout(LONG).unwrap();
}
