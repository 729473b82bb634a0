//! Hardening of the hub itself (issue 11, items 2, 3, 4 and 10): its own resource exhaustion
//! fails one request and declares nobody dead; it never panics on its diagnostics; a failed
//! `poll` gives callers a reason; too many descriptors are refused before anything is sent;
//! and only a process's reaper may report its death.

mod common;

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use common::{helper_root, is_helper, take, KillOnDrop};
use multiproc::pipe::{pipe, Connection};
use multiproc::sync::{Lock, RLock, Semaphore};
use multiproc::wire::proto::{Cast, ExitInfo, ToHub};
use multiproc::Process;

// ----- item 2: the root out of descriptors ------------------------------------------------

/// Holds `lock`, then (once told) opens a connection on a new thread (the root is out of
/// descriptors by then) and reports what that thread's call said, still holding the lock until
/// told again.
#[multiproc::worker]
fn hold_then_new_thread(
    lock: Lock,
    lock2: Lock,
    held: Semaphore,
    go: Semaphore,
    failed: Semaphore,
    go2: Semaphore,
) -> String {
    let guard = lock.acquire().unwrap();
    held.release().unwrap();
    take(&go, Duration::from_secs(30));
    // A call that must reach the hub (a lock may be taken in shared memory without one).
    let why = std::thread::spawn(move || match multiproc::active_children() {
        Ok(_) => "the new thread's call succeeded".to_string(),
        Err(e) => format!("{e}"),
    })
    .join()
    .unwrap();
    failed.release().unwrap();
    take(&go2, Duration::from_secs(30));
    // Once the root has descriptors again, a new thread works, and so does the second lock.
    let l2 = lock2.clone();
    let later = std::thread::spawn(move || l2.acquire_timeout(Duration::from_secs(10)).map(|g| g.is_some()))
        .join()
        .unwrap();
    assert!(matches!(later, Ok(true)), "after the root recovered: {later:?}");
    drop(guard);
    why
}

/// Opens `/dev/null` until the process is out of descriptors; returns them.
fn exhaust_descriptors() -> Vec<std::fs::File> {
    let mut held = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => held.push(f),
            Err(e) if e.raw_os_error() == Some(nix::libc::EMFILE) => return held,
            Err(e) => panic!("open: {e}"),
        }
        assert!(held.len() < 100_000, "RLIMIT_NOFILE was not lowered");
    }
}

#[test]
#[ignore = "helper root for the_root_out_of_descriptors_fails_one_request_and_kills_nobody"]
fn helper_emfile() {
    if !is_helper("helper_emfile") {
        return;
    }
    let lim = nix::libc::rlimit {
        rlim_cur: 256,
        rlim_max: 256,
    };
    // SAFETY: setrlimit reads the struct we pass; lowering our own limit is always allowed.
    assert_eq!(unsafe { nix::libc::setrlimit(nix::libc::RLIMIT_NOFILE, &lim) }, 0);
    let (lock, lock2) = (Lock::new().unwrap(), Lock::new().unwrap());
    let sems: Vec<Semaphore> = (0..4).map(|_| Semaphore::new(0).unwrap()).collect();
    let mut child = Process::new(hold_then_new_thread(
        lock.clone(),
        lock2.clone(),
        sems[0].clone(),
        sems[1].clone(),
        sems[2].clone(),
        sems[3].clone(),
    ))
    .start()
    .unwrap();
    take(&sems[0], Duration::from_secs(30));
    let files = exhaust_descriptors();
    // Keep the root out of descriptors: one freed by the runtime meanwhile (a connection or a
    // pidfd closing) is taken again at once, so the child's request meets EMFILE.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let grabber = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut more = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                while let Ok(f) = std::fs::File::open("/dev/null") {
                    more.push(f);
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            more
        })
    };
    sems[1].release().unwrap();
    take(&sems[2], Duration::from_secs(30));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let more = grabber.join().unwrap();
    // The child's new connection failed, but the child is alive and still holds the lock.
    assert!(child.is_alive(), "the child was declared dead");
    assert!(
        lock.try_acquire().unwrap().is_none(),
        "the lock was handed over while its holder runs"
    );
    drop(files);
    drop(more);
    sems[3].release().unwrap();
    let why = child
        .join_timeout(Duration::from_secs(60))
        .expect("the child's result was lost");
    let g = lock.acquire_timeout(Duration::from_secs(10)).unwrap().expect("lock");
    assert!(!g.previous_owner_died(), "the holder was treated as dead");
    println!("WHY {why}");
    println!("HELPER OK");
}

/// Item 2: under `RLIMIT_NOFILE = 256` the root runs out of descriptors while a child that
/// holds a Lock opens a connection on a new thread. That one request fails with a clear error;
/// the child is not declared dead, its lock is not handed over, and its result arrives. (Before
/// the fix the hub dropped the child's main connection and ran the death path.)
#[test]
fn the_root_out_of_descriptors_fails_one_request_and_kills_nobody() {
    let mut root = helper_root("helper_emfile");
    let mut guard = KillOnDrop::default();
    guard.add(-(root.id() as i32));
    let mut out = String::new();
    root.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let mut err = String::new();
    root.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = root.wait().unwrap();
    assert!(
        status.success() && out.contains("HELPER OK"),
        "{status:?}\nstdout: {out}\nstderr: {err}"
    );
    let why = out
        .lines()
        .find_map(|l| l.split_once("WHY ").map(|(_, w)| w.to_string()))
        .unwrap_or_default();
    assert!(
        why.contains("too many open files in the root"),
        "the thread's call said: {why}"
    );
}

// ----- item 3: the hub's own diagnostics and a failed poll -------------------------------

#[multiproc::worker]
fn write_garbage() -> u64 {
    let conn = multiproc::runtime::raw_hub_connection().unwrap();
    // A frame announcing 4 GiB: the hub drops this connection and says so on stderr.
    multiproc::sys::io::send_all(conn.as_fd(), &u32::MAX.to_le_bytes(), &[]).unwrap();
    let mut f = std::fs::File::from(conn);
    let mut buf = [0u8; 4];
    let _ = f.read(&mut buf);
    42
}

#[test]
#[ignore = "helper root for a_closed_stderr_does_not_stop_the_hub"]
fn helper_closed_stderr() {
    if !is_helper("helper_closed_stderr") {
        return;
    }
    for _ in 0..3 {
        let mut p = Process::new(write_garbage()).start().unwrap();
        assert_eq!(p.join_timeout(Duration::from_secs(30)).unwrap(), 42);
    }
    multiproc::runtime::ping_hub().unwrap();
    let mut p = Process::new(write_garbage()).start().unwrap();
    assert_eq!(p.join_timeout(Duration::from_secs(30)).unwrap(), 42);
    println!("HELPER OK");
    std::io::stdout().flush().unwrap();
}

/// Item 3: with stderr a pipe whose reader has gone, the hub's log line about a bad frame must
/// not panic the hub (before the fix `eprintln!` panicked, the hub thread died, and every
/// later call failed with `HubGone`).
#[test]
fn a_closed_stderr_does_not_stop_the_hub() {
    let mut root = helper_root("helper_closed_stderr");
    let mut guard = KillOnDrop::default();
    guard.add(-(root.id() as i32));
    drop(root.stderr.take());
    let mut out = String::new();
    root.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let status = root.wait().unwrap();
    assert!(
        status.success() && out.contains("HELPER OK"),
        "{status:?}\nstdout: {out}"
    );
}

#[test]
#[ignore = "helper root for a_failed_poll_gives_callers_the_reason"]
fn helper_poll_failure() {
    if !is_helper("helper_poll_failure") {
        return;
    }
    let lock = Lock::new().unwrap();
    let guard = lock.acquire().unwrap();
    let l = lock.clone();
    let blocked = std::thread::spawn(move || l.acquire().map(|_| ()).map_err(|e| e.to_string()));
    // Let the thread park in the hub.
    std::thread::sleep(Duration::from_millis(300));
    multiproc::runtime::fail_hub_poll_for_tests("injected by the test").unwrap();
    let parked = blocked.join().unwrap();
    let later = multiproc::runtime::ping_hub().map_err(|e| e.to_string());
    drop(guard);
    println!("PARKED {parked:?}");
    println!("LATER {later:?}");
    println!("HELPER DONE");
    std::io::stdout().flush().unwrap();
}

/// Item 3: a failed `poll` ends the hub with a reason, and callers get it: a call parked in
/// the hub and every later call fail with `HubStopped` naming the failure (before the fix the
/// hub returned silently, so the parked call waited forever).
#[test]
fn a_failed_poll_gives_callers_the_reason() {
    let mut root = helper_root("helper_poll_failure");
    let mut guard = KillOnDrop::default();
    guard.add(-(root.id() as i32));
    let mut out = String::new();
    root.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let mut err = String::new();
    root.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let _ = root.wait();
    assert!(out.contains("HELPER DONE"), "stdout: {out}\nstderr: {err}");
    for key in ["PARKED ", "LATER "] {
        let line = out.lines().find(|l| l.contains(key)).unwrap_or_default();
        assert!(
            line.contains("Err") && line.contains("hub stopped") && line.contains("injected by the test"),
            "{key}: {line}\nstdout: {out}"
        );
    }
    assert!(
        err.contains("injected by the test"),
        "the hub did not say why on stderr: {err}"
    );
}

// ----- item 4: too many descriptors in one message ------------------------------------------

#[multiproc::worker]
fn count_ends(ends: Vec<Connection<u8>>) -> usize {
    ends.len()
}

fn pipe_ends(n: usize) -> Vec<Connection<u8>> {
    let mut v = Vec::new();
    while v.len() < n {
        let (a, b) = pipe::<u8>().unwrap();
        v.push(a);
        v.push(b);
    }
    v.truncate(n);
    v
}

/// Item 4: a worker argument carrying 65 descriptors is refused with a clear error before
/// anything is sent, and the same thread keeps working (before the fix: `HubGone`, and every
/// later call from that thread failed).
#[test]
fn too_many_descriptors_are_refused_and_the_thread_keeps_working() {
    std::thread::spawn(|| {
        // A pipe end is one descriptor, two on shared-memory rings (its socket and its rings).
        let per = if pipe::<u8>().unwrap().0.uses_ring() { 2 } else { 1 };
        let over = 64 / per + 1;
        let r = Process::new(count_ends(pipe_ends(over))).start();
        let e = r.expect_err("65 descriptors were accepted");
        let msg = e.to_string();
        let want = format!("{} descriptors", over * per);
        assert!(msg.contains(&want) && msg.contains("64"), "{msg}");
        multiproc::runtime::ping_hub().expect("the thread's connection is broken");
        let mut p = Process::new(count_ends(pipe_ends(64 / per))).start().unwrap();
        assert_eq!(p.join_timeout(Duration::from_secs(60)).unwrap(), 64 / per);
    })
    .join()
    .unwrap();
}

// ----- item 10: forged bookkeeping ----------------------------------------------------------

#[multiproc::worker]
fn sleeper() {
    std::thread::sleep(Duration::from_secs(60));
}

/// Writes `Reaped` reports for pids it did not start (a sibling, the root) on its own hub
/// connection, and waits until the hub has read them.
#[multiproc::worker]
fn forge_reaped(pids: Vec<i32>) {
    let conn = multiproc::runtime::raw_hub_connection().unwrap();
    let mut bytes = Vec::new();
    for pid in pids {
        let msg = ToHub::Cast(Cast::Reaped {
            pid,
            exit: ExitInfo::Exited(0),
        });
        bytes.extend(multiproc::wire::encode(&msg).unwrap());
    }
    multiproc::sys::io::send_all(conn.as_fd(), &bytes, &[]).unwrap();
}

#[multiproc::worker]
fn try_rlock(l: RLock) -> bool {
    l.try_acquire().unwrap().map(|g| g.forget()).is_some()
}

/// Item 10: a child that writes `Reaped` frames for a sibling and for the root changes
/// nothing: the sibling is still running and its join gives its real status, and the root's
/// RLock is not handed to another process (before the fix the sibling's join returned a fake
/// status and the root's RLock was released).
#[test]
fn forged_reaped_reports_are_ignored() {
    let rlock = RLock::new().unwrap();
    let held = rlock.acquire().unwrap();
    let mut sib = Process::new(sleeper()).start().unwrap();
    let mut kids = KillOnDrop::default();
    kids.add(sib.pid());
    let me = multiproc::current_process().pid();
    let mut forger = Process::new(forge_reaped(vec![sib.pid(), me])).start().unwrap();
    // The hub reads everything a dead process wrote before it reports the exit.
    forger.join_timeout(Duration::from_secs(30)).unwrap();
    assert!(sib.is_alive(), "the sibling was recorded as dead");
    assert!(matches!(sib.try_join(), Err(multiproc::JoinError::Running)));
    let mut other = Process::new(try_rlock(rlock.clone())).start().unwrap();
    assert!(
        !other.join_timeout(Duration::from_secs(30)).unwrap(),
        "the root's RLock was handed over"
    );
    let t = Instant::now();
    sib.kill().unwrap();
    let r = sib.join_timeout(Duration::from_secs(30));
    assert!(
        matches!(r, Err(multiproc::JoinError::Signaled(9))),
        "{r:?} after {:?}",
        t.elapsed()
    );
    drop(held);
}
