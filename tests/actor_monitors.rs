//! Monitors and links (issue 12) between real child processes.
//!
//! The root's signals are shared by every test thread of this binary, so the watchers here
//! are child processes that report what they received as their result.

mod common;

use std::time::{Duration, Instant};

use common::{eventually, pid_exists, KillOnDrop};
use multiproc::{
    demonitor, link, mailbox, monitor, signals, trap_exits, unlink, Event, ExitReason, ExitStatus, Incoming, NameError,
    Process, RecvError, Signal,
};
use serde::{Deserialize, Serialize};

const LONG: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize, Deserialize)]
enum How {
    Exit(i32),
    Panic,
    Sleep,
}

/// Waits for `go`, then ends the way it is told.
#[multiproc::worker]
fn target(go: Event, how: How) {
    go.wait().unwrap();
    match how {
        How::Exit(c) => std::process::exit(c),
        How::Panic => panic!("the target panics on purpose"),
        How::Sleep => std::thread::sleep(LONG),
    }
}

/// Every signal that arrives within `quiet_ms` of the previous one (or of the start, at
/// most `first_ms`), in order.
fn collect(first_ms: u64, quiet_ms: u64) -> Vec<Signal> {
    let mut out = Vec::new();
    let mut wait = Duration::from_millis(first_ms);
    while let Ok(s) = signals().recv_timeout(wait) {
        out.push(s);
        wait = Duration::from_millis(quiet_ms);
    }
    out
}

/// Monitors `pid`, says so on `ready`, and returns what it received.
#[multiproc::worker]
fn watcher(pid: i32, ready: Event, first_ms: u64) -> Vec<Signal> {
    let _m = monitor(pid).unwrap();
    ready.set().unwrap();
    collect(first_ms, 700)
}

fn start_target(how: How) -> (Process<()>, Event) {
    let go = Event::new().unwrap();
    let p = Process::new(target(go.clone(), how)).start().unwrap();
    (p, go)
}

fn one_down(sigs: &[Signal]) -> &multiproc::Down {
    assert_eq!(sigs.len(), 1, "exactly one signal: {sigs:?}");
    match &sigs[0] {
        Signal::Down(d) => d,
        other => panic!("expected a Down, got {other:?}"),
    }
}

/// Runs a live-monitor case: the watcher monitors, then the target ends by `end`.
fn live_case(how: How, end: impl FnOnce(&Process<()>, &Event)) -> (i32, multiproc::Down) {
    let mut guard = KillOnDrop::default();
    let (mut t, go) = start_target(how);
    guard.add(t.pid());
    let ready = Event::new().unwrap();
    let mut w = Process::new(watcher(t.pid(), ready.clone(), 30_000)).start().unwrap();
    guard.add(w.pid());
    assert!(ready.wait_timeout(LONG).unwrap(), "the watcher did not start");
    end(&t, &go);
    let sigs = w.join_timeout(LONG).unwrap();
    let _ = t.join_timeout(LONG);
    (t.pid(), one_down(&sigs).clone())
}

#[test]
fn a_live_process_gives_exactly_one_down_with_its_exit_code() {
    let (pid, d) = live_case(How::Exit(7), |_, go| go.set().unwrap());
    assert_eq!(d.pid, pid);
    assert_eq!(d.reason, ExitReason::Ended(ExitStatus::Exited(7)));
    assert!(!d.reason.is_normal());
}

#[test]
fn a_normal_exit_is_reported_as_normal() {
    let (_, d) = live_case(How::Exit(0), |_, go| go.set().unwrap());
    assert!(d.reason.is_normal(), "{:?}", d.reason);
}

#[test]
fn a_panic_gives_its_message_and_location() {
    let (_, d) = live_case(How::Panic, |_, go| go.set().unwrap());
    match &d.reason {
        ExitReason::Ended(ExitStatus::Panicked { message, location }) => {
            assert_eq!(message, "the target panics on purpose");
            let loc = location.as_deref().unwrap_or_default();
            assert!(loc.contains("actor_monitors.rs:"), "location {loc:?}");
        }
        other => panic!("expected a panic, got {other:?}"),
    }
}

#[test]
fn sigkill_gives_signal_9() {
    let (_, d) = live_case(How::Sleep, |t, _| t.kill().unwrap());
    assert_eq!(d.reason, ExitReason::Ended(ExitStatus::Signaled(9)));
    assert_eq!(d.reason.status().map(|s| s.code()), Some(-9));
}

#[test]
fn monitoring_an_ended_process_gives_down_at_once_with_its_recorded_status() {
    let mut guard = KillOnDrop::default();
    let (t, go) = start_target(How::Exit(5));
    guard.add(t.pid());
    go.set().unwrap();
    // Not joined (a join would let the hub forget it): the hub remembers how it ended. Its
    // pid is gone once the hub has reaped it, which it does as it records the status.
    assert!(eventually(LONG, || !pid_exists(t.pid())));
    let ready = Event::new().unwrap();
    let started = Instant::now();
    let mut w = Process::new(watcher(t.pid(), ready, 30_000)).start().unwrap();
    guard.add(w.pid());
    let sigs = w.join_timeout(LONG).unwrap();
    let d = one_down(&sigs);
    assert_eq!(d.pid, t.pid());
    assert_eq!(d.reason, ExitReason::Ended(ExitStatus::Exited(5)));
    // "At once": well before the watcher's 30 s wait for a first signal.
    assert!(started.elapsed() < Duration::from_secs(25));
}

#[test]
fn monitoring_a_pid_nobody_has_gives_noproc_at_once() {
    let ready = Event::new().unwrap();
    let mut w = Process::new(watcher(999_999_999, ready, 30_000)).start().unwrap();
    let started = Instant::now();
    let sigs = w.join_timeout(LONG).unwrap();
    let d = one_down(&sigs);
    assert_eq!(d.reason, ExitReason::NoProc);
    assert_eq!(d.pid, 999_999_999);
    assert!(started.elapsed() < Duration::from_secs(25));
}

/// Monitors `pid`, demonitors, says so, and returns what arrives within `ms` after `done`.
#[multiproc::worker]
fn demonitoring_watcher(pid: i32, ready: Event, done: Event) -> (bool, Vec<Signal>) {
    let m = monitor(pid).unwrap();
    let active = demonitor(m).unwrap();
    ready.set().unwrap();
    done.wait().unwrap();
    (active, collect(1000, 500))
}

#[test]
fn demonitor_means_no_down() {
    let mut guard = KillOnDrop::default();
    let (mut t, _go) = start_target(How::Sleep);
    guard.add(t.pid());
    let (ready, done) = (Event::new().unwrap(), Event::new().unwrap());
    let mut w = Process::new(demonitoring_watcher(t.pid(), ready.clone(), done.clone()))
        .start()
        .unwrap();
    guard.add(w.pid());
    assert!(ready.wait_timeout(LONG).unwrap());
    t.kill().unwrap();
    let _ = t.join_timeout(LONG);
    done.set().unwrap();
    let (active, sigs) = w.join_timeout(LONG).unwrap();
    assert!(active, "the monitor was active when it was removed");
    assert!(sigs.is_empty(), "no Down after demonitor: {sigs:?}");
}

/// Monitors an ended process (its Down is sent at once), then demonitors before receiving:
/// the Down already on its way is dropped.
#[multiproc::worker]
fn late_demonitor() -> (bool, Vec<Signal>) {
    let m = monitor(999_999_998).unwrap();
    let active = demonitor(m).unwrap();
    (active, collect(1000, 500))
}

#[test]
fn a_down_already_sent_is_dropped_by_demonitor() {
    let (active, sigs) = Process::new(late_demonitor())
        .start()
        .unwrap()
        .join_timeout(LONG)
        .unwrap();
    assert!(!active, "the monitor had fired");
    assert!(sigs.is_empty(), "{sigs:?}");
}

/// One loop over mail and signals: receives mail until its monitored target ends.
#[multiproc::worker]
fn actor_loop(pid: i32, ready: Event) -> (Vec<u32>, Option<ExitReason>) {
    let _m = monitor(pid).unwrap();
    ready.set().unwrap();
    let inbox = mailbox::<u32>();
    let mut got = Vec::new();
    loop {
        match inbox.recv_event_timeout(Duration::from_secs(30)) {
            Ok(Incoming::Message(n)) => got.push(n),
            Ok(Incoming::Signal(Signal::Down(d))) => return (got, Some(d.reason)),
            Ok(Incoming::Signal(other)) => panic!("unexpected {other:?}"),
            Err(RecvError::Timeout) => return (got, None),
            Err(e) => panic!("{e}"),
        }
    }
}

/// Sends 1..=n to `to`, then exits with code 3.
#[multiproc::worker]
fn sender(to: multiproc::Addr<u32>, n: u32, go: Event) {
    go.wait().unwrap();
    for i in 1..=n {
        to.send(&i).unwrap();
    }
    std::process::exit(3);
}

#[test]
fn recv_event_takes_mail_and_signals_in_order_and_down_comes_after_the_dead_senders_mail() {
    let mut guard = KillOnDrop::default();
    let go = Event::new().unwrap();
    let ready = Event::new().unwrap();
    // The actor monitors `t`, and gets mail from a sender; the Down of `t` ends its loop.
    let (t, _tgo) = start_target(How::Sleep);
    guard.add(t.pid());
    let mut a = Process::new(actor_loop(t.pid(), ready.clone())).start().unwrap();
    guard.add(a.pid());
    assert!(ready.wait_timeout(LONG).unwrap());
    let mut snd = Process::new(sender(a.addr::<u32>(), 50, go.clone())).start().unwrap();
    guard.add(snd.pid());
    go.set().unwrap();
    let _ = snd.join_timeout(LONG);
    t.kill().unwrap();
    let (got, reason) = a.join_timeout(LONG).unwrap();
    assert_eq!(got, (1..=50).collect::<Vec<_>>());
    assert_eq!(reason, Some(ExitReason::Ended(ExitStatus::Signaled(9))));
}

// ----- links --------------------------------------------------------------------------------

/// Links to `pid`, optionally trapping exits, says so, and then either sleeps (a process
/// that a link should kill) or returns the signals it receives (trapping).
#[multiproc::worker]
fn linker(pids: Vec<i32>, trap: bool, ready: Event, first_ms: u64) -> Vec<Signal> {
    if trap {
        trap_exits(true).unwrap();
    }
    for &p in &pids {
        link(p).unwrap();
    }
    ready.set().unwrap();
    if trap {
        let mut out = Vec::new();
        while out.len() < pids.len() {
            match signals().recv_timeout(Duration::from_millis(first_ms)) {
                Ok(s) => out.push(s),
                Err(_) => break,
            }
        }
        out
    } else {
        std::thread::sleep(Duration::from_millis(first_ms));
        Vec::new()
    }
}

fn start_linker(pids: Vec<i32>, trap: bool, ms: u64) -> Process<Vec<Signal>> {
    let ready = Event::new().unwrap();
    let p = Process::new(linker(pids, trap, ready.clone(), ms)).start().unwrap();
    assert!(ready.wait_timeout(LONG).unwrap(), "the linker did not start");
    p
}

#[test]
fn killing_one_of_two_linked_children_ends_the_other_both_ways() {
    let mut guard = KillOnDrop::default();
    // The linked-to side is killed: the linker dies.
    let (b, _go) = start_target(How::Sleep);
    guard.add(b.pid());
    let mut a = start_linker(vec![b.pid()], false, 60_000);
    guard.add(a.pid());
    b.kill().unwrap();
    assert!(a.join_timeout(Duration::from_secs(30)).is_err());
    assert_eq!(a.exit_status(), Some(ExitStatus::Signaled(9)));

    // The linker is killed: the linked-to side dies (links are symmetric).
    let (mut b, _go2) = start_target(How::Sleep);
    guard.add(b.pid());
    let mut a = start_linker(vec![b.pid()], false, 60_000);
    guard.add(a.pid());
    a.kill().unwrap();
    let _ = a.join_timeout(LONG);
    assert!(b.join_timeout(Duration::from_secs(30)).is_err());
    assert_eq!(b.exit_status(), Some(ExitStatus::Signaled(9)));
}

#[test]
fn a_panic_kills_the_linked_partner() {
    let mut guard = KillOnDrop::default();
    let (mut b, go) = start_target(How::Panic);
    guard.add(b.pid());
    let mut a = start_linker(vec![b.pid()], false, 60_000);
    guard.add(a.pid());
    go.set().unwrap();
    let _ = b.join_timeout(LONG);
    assert!(a.join_timeout(Duration::from_secs(30)).is_err());
    assert_eq!(a.exit_status(), Some(ExitStatus::Signaled(9)));
}

#[test]
fn a_trapping_process_gets_exit_signals_and_keeps_running() {
    let mut guard = KillOnDrop::default();
    let (mut killed, _go1) = start_target(How::Sleep);
    let (mut normal, go2) = start_target(How::Exit(0));
    guard.add(killed.pid());
    guard.add(normal.pid());
    let mut a = start_linker(vec![killed.pid(), normal.pid()], true, 30_000);
    guard.add(a.pid());
    killed.kill().unwrap();
    let _ = killed.join_timeout(LONG);
    go2.set().unwrap();
    let _ = normal.join_timeout(LONG);
    let sigs = a
        .join_timeout(LONG)
        .expect("the trapping process keeps running and returns");
    let exits: Vec<_> = sigs
        .iter()
        .map(|s| match s {
            Signal::Exit(e) => (e.pid, e.reason.clone()),
            other => panic!("expected Exit, got {other:?}"),
        })
        .collect();
    assert_eq!(
        exits,
        vec![
            (killed.pid(), ExitReason::Ended(ExitStatus::Signaled(9))),
            (normal.pid(), ExitReason::Ended(ExitStatus::Exited(0))),
        ]
    );
}

#[test]
fn a_normal_exit_does_not_kill_the_partner_and_unlink_undoes_a_link() {
    let mut guard = KillOnDrop::default();
    let (mut b, go) = start_target(How::Exit(0));
    guard.add(b.pid());
    let mut a = start_linker(vec![b.pid()], false, 1_500);
    guard.add(a.pid());
    go.set().unwrap();
    b.join_timeout(LONG).unwrap();
    // The partner sleeps out its time and returns normally.
    assert_eq!(a.join_timeout(LONG).unwrap(), Vec::<Signal>::new());

    // unlink: killing the former partner leaves the process alone.
    let (mut c, _go) = start_target(How::Sleep);
    guard.add(c.pid());
    let ready = Event::new().unwrap();
    let mut u = Process::new(link_then_unlink(c.pid(), ready.clone(), 1_500))
        .start()
        .unwrap();
    guard.add(u.pid());
    assert!(ready.wait_timeout(LONG).unwrap());
    c.kill().unwrap();
    let _ = c.join_timeout(LONG);
    assert!(u.join_timeout(LONG).is_ok(), "{:?}", u.exit_status());
}

#[multiproc::worker]
fn link_then_unlink(pid: i32, ready: Event, ms: u64) {
    link(pid).unwrap();
    unlink(pid).unwrap();
    ready.set().unwrap();
    std::thread::sleep(Duration::from_millis(ms));
}

#[multiproc::worker]
fn link_errors() -> Vec<String> {
    let mut out = Vec::new();
    for pid in [999_999_997, 0, -1] {
        match link(pid) {
            Err(NameError::NoProc(_)) => out.push("noproc".to_string()),
            other => out.push(format!("{other:?}")),
        }
    }
    out
}

#[test]
fn linking_to_a_process_that_is_not_there_is_noproc() {
    let errs = Process::new(link_errors()).start().unwrap().join_timeout(LONG).unwrap();
    assert_eq!(errs, vec!["noproc"; 3]);
    assert!(!pid_exists(999_999_997));
}

/// Holds many monitors and links, then waits to be killed.
#[multiproc::worker]
fn hoarder(pid: i32, ready: Event) {
    for _ in 0..2000 {
        monitor(pid).unwrap();
    }
    trap_exits(true).unwrap();
    link(pid).unwrap();
    ready.set().unwrap();
    std::thread::sleep(LONG);
}

#[test]
fn a_watcher_killed_holding_2000_monitors_and_a_link_kills_its_partner_and_the_other_watcher_gets_one_down() {
    let mut guard = KillOnDrop::default();
    let (mut t, go) = start_target(How::Exit(0));
    guard.add(t.pid());
    let ready = Event::new().unwrap();
    let mut h = Process::new(hoarder(t.pid(), ready.clone())).start().unwrap();
    guard.add(h.pid());
    assert!(ready.wait_timeout(LONG).unwrap());
    // A second watcher, still alive when the target ends, gets its one Down.
    let ready2 = Event::new().unwrap();
    let mut w = Process::new(watcher(t.pid(), ready2.clone(), 30_000)).start().unwrap();
    guard.add(w.pid());
    assert!(ready2.wait_timeout(LONG).unwrap());
    h.kill().unwrap();
    let _ = h.join_timeout(LONG);
    // The hoarder traps exits, but its own end (SIGKILL) is abnormal: through the symmetric
    // link, its partner, which does not trap, is killed too. Its 2,000 monitors are dropped
    // (no Down goes to a dead watcher), and the other watcher gets exactly one Down.
    let sigs = w.join_timeout(LONG).unwrap();
    assert_eq!(one_down(&sigs).reason, ExitReason::Ended(ExitStatus::Signaled(9)));
    go.set().unwrap();
    let _ = t.join_timeout(LONG);
    assert_eq!(t.exit_status(), Some(ExitStatus::Signaled(9)));
}
