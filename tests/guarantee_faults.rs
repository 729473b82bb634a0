//! The guarantees Python lacks: no orphans when the root is SIGKILLed, Ctrl-C in both modes,
//! garbage on a socket costs only that connection.
//!
//! Root-level scenarios run in a *helper root*: this test binary re-executed to run one of the
//! `#[ignore]`d helper tests below, in a process group of its own.

mod common;

use std::io::{BufReader, Read, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use common::{ctrl_c_helper_root, eventually, helper_root, is_helper, pid_exists, read_line_with, CtrlC, KillOnDrop};
use multiproc::{JoinError, Process, StartMethod};

#[multiproc::worker]
fn sleep_forever() {
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[multiproc::worker]
fn parent_of_sleepers(method: StartMethod) {
    let a = Process::new(sleep_forever()).start_method(method).start().unwrap();
    let b = Process::new(sleep_forever()).start_method(method).start().unwrap();
    println!("GRANDCHILDREN {} {}", a.pid(), b.pid());
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Helper root: starts children (each with two grandchildren) with every start method, prints
/// all pids, then waits to be killed.
#[test]
#[ignore = "helper root for no_orphans_when_the_root_is_sigkilled"]
fn helper_orphans() {
    if !is_helper("helper_orphans") {
        return;
    }
    let mut pids = Vec::new();
    for m in [StartMethod::ForkServer, StartMethod::Spawn, StartMethod::Fork] {
        let p = Process::new(parent_of_sleepers(m)).start_method(m).start().unwrap();
        pids.push(p.pid());
        std::mem::forget(p);
    }
    println!(
        "CHILDREN {}",
        pids.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" ")
    );
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn parse_pids(s: &str) -> Vec<i32> {
    s.split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

#[test]
fn no_orphans_when_the_root_is_sigkilled() {
    let mut root = helper_root("helper_orphans");
    let mut guard = KillOnDrop::default();
    guard.add(root.id() as i32);
    let mut out = BufReader::new(root.stdout.take().unwrap());
    let mut all = Vec::new();
    let mut grandchildren = 0;
    // 3 lines of grandchildren and one line of children, in any order, among libtest's own.
    let mut seen = 0;
    while seen < 4 {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut out, &mut line).unwrap() == 0 {
            panic!("the helper root ended early");
        }
        if let Some(at) = line.find("GRANDCHILDREN ") {
            grandchildren += 1;
            seen += 1;
            all.extend(parse_pids(&line[at + "GRANDCHILDREN ".len()..]));
        } else if let Some(at) = line.find("CHILDREN ") {
            seen += 1;
            all.extend(parse_pids(&line[at + "CHILDREN ".len()..]));
        }
    }
    assert_eq!(grandchildren, 3);
    assert_eq!(all.len(), 9);
    for &p in &all {
        guard.add(p);
        assert!(pid_exists(p));
    }
    let killed = Instant::now();
    root.kill().unwrap();
    root.wait().unwrap();
    // Generous: on a loaded 2-core machine the kernel may take a while to run the signals.
    let gone = eventually(Duration::from_secs(10), || all.iter().all(|&p| !pid_exists(p)));
    let alive: Vec<i32> = all.iter().copied().filter(|&p| pid_exists(p)).collect();
    assert!(
        gone,
        "still alive {:?} after the root's SIGKILL: {alive:?}",
        killed.elapsed()
    );
}

/// Helper root for Ctrl-C: children block, the root blocks in `join`. With `catch` it opts in
/// to interrupt mode and cleans up.
fn ctrl_c_helper(catch: bool) {
    if catch {
        multiproc::catch_interrupts().unwrap();
    }
    let mut kids = Vec::new();
    for m in [StartMethod::ForkServer, StartMethod::Spawn, StartMethod::Fork] {
        kids.push(Process::new(sleep_forever()).start_method(m).start().unwrap());
    }
    let pids: Vec<String> = kids.iter().map(|k| k.pid().to_string()).collect();
    println!("READY {}", pids.join(" "));
    std::io::stdout().flush().unwrap();
    match kids[0].join() {
        Err(JoinError::Interrupted) => {
            println!("INTERRUPTED");
            for k in &kids {
                let _ = k.kill();
            }
            for k in &mut kids {
                let _ = k.join();
            }
            println!("CLEANED");
        }
        other => println!("JOIN RETURNED {other:?}"),
    }
}

#[test]
#[ignore = "helper root for ctrl_c_default_mode"]
fn helper_ctrl_c_default() {
    if is_helper("helper_ctrl_c_default") {
        ctrl_c_helper(false);
    }
}

#[test]
#[ignore = "helper root for ctrl_c_interrupt_mode"]
fn helper_ctrl_c_catch() {
    if is_helper("helper_ctrl_c_catch") {
        ctrl_c_helper(true);
    }
}

#[test]
fn ctrl_c_default_mode_ends_everything_quietly() {
    let CtrlC {
        status,
        stdout: out,
        stderr: err,
        pids,
        took,
    } = ctrl_c_helper_root("helper_ctrl_c_default", Duration::from_millis(200));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(2),
        "the root should die of SIGINT; stdout {out:?}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        eventually(Duration::from_secs(2), || pids.iter().all(|&p| !pid_exists(p))),
        "children left behind"
    );
    // Nothing from the workers: no panic messages, no tracebacks.
    assert!(!err.contains("panicked"), "stderr: {err}");
}

#[test]
fn ctrl_c_interrupt_mode_lets_the_root_clean_up() {
    let CtrlC {
        status,
        stdout: out,
        stderr: err,
        pids,
        took,
    } = ctrl_c_helper_root("helper_ctrl_c_catch", Duration::from_millis(200));
    assert!(status.success(), "status {status:?}, stdout {out:?}, stderr {err:?}");
    assert!(out.contains("INTERRUPTED") && out.contains("CLEANED"), "stdout {out:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        eventually(Duration::from_secs(2), || pids.iter().all(|&p| !pid_exists(p))),
        "children left behind"
    );
    assert!(!err.contains("panicked"), "stderr: {err}");
}

#[multiproc::worker]
fn double(x: u64) -> u64 {
    x * 2
}

#[multiproc::worker]
fn garbage_then_work(kind: u8) -> u64 {
    let conn = multiproc::runtime::raw_hub_connection().unwrap();
    let bytes: Vec<u8> = match kind {
        0 => vec![0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0xff],
        1 => u32::MAX.to_le_bytes().to_vec(),
        _ => {
            let mut v = 5u32.to_le_bytes().to_vec();
            v.extend_from_slice(&[0xc1, 0xc1, 0xc1, 0xc1, 0xc1]);
            v
        }
    };
    multiproc::sys::io::send_all(conn.as_fd(), &bytes, &[]).unwrap();
    // The hub drops that connection: we read EOF on it.
    let mut buf = [0u8; 16];
    let mut f = std::fs::File::from(conn);
    let n = f.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the hub should have closed the garbage connection");
    // This process's own connections still work.
    let mut p = Process::new(double(21)).start().unwrap();
    p.join().unwrap()
}

#[test]
fn garbage_costs_only_that_connection() {
    for kind in 0..3u8 {
        let mut p = Process::new(garbage_then_work(kind)).start().unwrap();
        assert_eq!(p.join().unwrap(), 42, "kind {kind}");
    }
    // And from the root itself.
    let conn = multiproc::runtime::raw_hub_connection().unwrap();
    multiproc::sys::io::send_all(conn.as_fd(), &u32::MAX.to_le_bytes(), &[]).unwrap();
    let mut f = std::fs::File::from(conn);
    let mut buf = [0u8; 4];
    assert_eq!(f.read(&mut buf).unwrap_or(0), 0);
    multiproc::runtime::ping_hub().unwrap();
    let mut p = Process::new(double(5)).start().unwrap();
    assert_eq!(p.join().unwrap(), 10);
}

#[multiproc::worker]
fn finish_later(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
    println!("NONDAEMON DONE");
}

/// Helper root: a daemonic child that would run forever and a non-daemonic one that finishes
/// after a while; then the root returns from its test (and the test binary exits normally).
#[test]
#[ignore = "helper root for root_exit_terminates_daemons_and_joins_the_rest"]
fn helper_root_exit() {
    if !is_helper("helper_root_exit") {
        return;
    }
    let d = Process::new(sleep_forever()).daemon(true).start().unwrap();
    let n = Process::new(finish_later(500)).start().unwrap();
    println!("PIDS {} {}", d.pid(), n.pid());
    std::io::stdout().flush().unwrap();
}

#[test]
fn root_exit_terminates_daemons_and_joins_the_rest() {
    let mut root = helper_root("helper_root_exit");
    let mut guard = KillOnDrop::default();
    guard.add(root.id() as i32);
    let mut out = BufReader::new(root.stdout.take().unwrap());
    let pids = parse_pids(&read_line_with(&mut out, "PIDS ").expect("helper did not start its children"));
    for &p in &pids {
        guard.add(p);
    }
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let status = root.wait().unwrap();
    assert!(status.success(), "{status:?}");
    // The non-daemonic child was joined: its output came before the root's exit.
    assert!(rest.contains("NONDAEMON DONE"), "stdout after PIDS: {rest:?}");
    // The daemonic one was terminated.
    assert!(
        eventually(Duration::from_secs(2), || !pid_exists(pids[0])),
        "daemon {} still alive",
        pids[0]
    );
}
