//! Names (issue 12): register / whereis / unregister, `Addr::named` across restarts, and the
//! registry's limits, with real child processes.
//!
//! Every test uses names of its own: the hub (and so the name space) is shared by the test
//! threads of this binary.

mod common;

use std::time::{Duration, Instant};

use common::{eventually, helper_root, is_helper, read_line_with, KillOnDrop};
use multiproc::{
    monitor, register, register_pid, signals, unregister, whereis, Addr, AskError, ExitReason, HubLimits, NameError,
    Process, ReplyTo, SendError, Signal,
};
use serde::{Deserialize, Serialize};

const LONG: Duration = Duration::from_secs(60);

#[derive(Debug, Serialize, Deserialize)]
enum Msg {
    /// Answer with (pid, how many messages this incarnation has seen).
    Who(ReplyTo<(i32, u64)>),
    /// Count one.
    Tick,
    /// End without answering anything more.
    Die,
    /// Exit after receiving this one, leaving the ReplyTo unanswered.
    Ignore(ReplyTo<(i32, u64)>),
}

/// Registers under `name`, then serves until told to die.
#[multiproc::worker]
fn server(name: String) {
    register(&name).unwrap();
    let inbox = multiproc::mailbox::<Msg>();
    let mut seen = 0;
    loop {
        match inbox.recv().unwrap() {
            Msg::Who(r) => {
                seen += 1;
                let _ = r.send(&(std::process::id() as i32, seen));
            }
            Msg::Tick => seen += 1,
            Msg::Die => return,
            Msg::Ignore(_r) => std::process::exit(4),
        }
    }
}

#[multiproc::worker]
fn sleeper(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

fn start_server(name: &str, guard: &mut KillOnDrop) -> Process<()> {
    let p = Process::new(server(name.to_string())).start().unwrap();
    guard.add(p.pid());
    let pid = p.pid();
    assert!(
        eventually(LONG, || whereis(name).unwrap().map(|i| i.pid()) == Some(pid)),
        "{name} was never registered"
    );
    p
}

#[test]
fn register_whereis_unregister_and_duplicates_refused() {
    let mut guard = KillOnDrop::default();
    let mut a = start_server("names-a", &mut guard);
    let info = whereis("names-a").unwrap().unwrap();
    assert_eq!(info.pid(), a.pid());
    // whereis gives an address of that incarnation.
    let (pid, _) = info.addr::<Msg>().ask(Msg::Who).unwrap();
    assert_eq!(pid, a.pid());

    let b = Process::new(sleeper(30_000)).start().unwrap();
    guard.add(b.pid());
    // The name is taken by a live process.
    assert!(matches!(register_pid("names-a", b.pid()), Err(NameError::Taken(_))));
    // A process has at most one name; registering the same one again is fine.
    assert!(matches!(
        register_pid("names-a2", a.pid()),
        Err(NameError::AlreadyNamed(_))
    ));
    register_pid("names-a", a.pid()).unwrap();
    // A name for a child, by its starter.
    register_pid("names-b", b.pid()).unwrap();
    assert_eq!(whereis("names-b").unwrap().map(|i| i.pid()), Some(b.pid()));

    unregister("names-a").unwrap();
    assert!(whereis("names-a").unwrap().is_none());
    assert!(matches!(unregister("names-a"), Err(NameError::NoProc(_))));
    // Free again: another process takes it.
    register_pid("names-a", b.pid()).unwrap_err(); // b already has a name
    unregister("names-b").unwrap();
    register_pid("names-a", b.pid()).unwrap();
    assert_eq!(whereis("names-a").unwrap().map(|i| i.pid()), Some(b.pid()));

    a.addr::<Msg>().send(&Msg::Die).unwrap();
    a.join_timeout(LONG).unwrap();
}

#[test]
fn bad_names_are_refused() {
    for bad in [String::new(), "x".repeat(256), "tab\there".into(), "nl\n".into()] {
        assert!(matches!(register(&bad), Err(NameError::BadName(_))), "{bad:?}");
        assert!(matches!(
            Addr::<Msg>::named(bad.clone()).send(&Msg::Tick),
            Err(SendError::NoProc(_)) | Err(SendError::Call(_))
        ));
    }
    // 255 bytes is fine (registering it for a child, not for the shared root).
    let mut guard = KillOnDrop::default();
    let p = Process::new(sleeper(30_000)).start().unwrap();
    guard.add(p.pid());
    let long = "y".repeat(255);
    register_pid(&long, p.pid()).unwrap();
    assert_eq!(whereis(&long).unwrap().map(|i| i.pid()), Some(p.pid()));
}

#[test]
fn a_name_is_freed_when_its_process_is_killed() {
    let mut guard = KillOnDrop::default();
    let mut a = start_server("names-freed", &mut guard);
    a.kill().unwrap();
    // The hub frees it as soon as the process is dead to it (no join needed).
    assert!(eventually(LONG, || whereis("names-freed").unwrap().is_none()));
    let _ = a.join_timeout(LONG);
    let b = start_server("names-freed", &mut guard);
    assert_eq!(whereis("names-freed").unwrap().map(|i| i.pid()), Some(b.pid()));
    b.kill().unwrap();
}

#[test]
fn addr_named_reaches_the_current_incarnation_across_kill_and_restart() {
    let mut guard = KillOnDrop::default();
    let name = "names-counter";
    let by_name = Addr::<Msg>::named(name);
    assert_eq!(by_name.name(), Some(name));
    assert_eq!(by_name.pid(), 0);

    // Nobody registered yet: every form fails at once with NoProc, nothing is queued.
    let t0 = Instant::now();
    assert!(matches!(by_name.send(&Msg::Tick), Err(SendError::NoProc(_))));
    assert!(matches!(by_name.try_send(&Msg::Tick), Err(SendError::NoProc(_))));
    assert!(matches!(
        by_name.send_timeout(&Msg::Tick, Duration::from_secs(30)),
        Err(SendError::NoProc(_))
    ));
    assert!(matches!(by_name.ask(Msg::Who), Err(AskError::NoProc(_))));
    assert!(matches!(
        by_name.ask_timeout(Msg::Who, Duration::from_secs(30)),
        Err(AskError::NoProc(_))
    ));
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "NoProc is an answer, not a wait"
    );

    let mut last_pid = 0;
    for round in 0..3 {
        let mut p = start_server(name, &mut guard);
        assert_ne!(p.pid(), last_pid);
        // Messages sent by name before the restart are not replayed to the new incarnation:
        // it has seen exactly what was sent to it.
        by_name.send(&Msg::Tick).unwrap();
        by_name.try_send(&Msg::Tick).unwrap();
        by_name.send_timeout(&Msg::Tick, Duration::from_secs(10)).unwrap();
        by_name.send_all(&[Msg::Tick, Msg::Tick]).unwrap();
        let (pid, seen) = by_name.ask_timeout(Msg::Who, Duration::from_secs(30)).unwrap();
        assert_eq!((pid, seen), (p.pid(), 6), "round {round}");
        assert_eq!(by_name.ask(Msg::Who).unwrap(), (p.pid(), 7));
        last_pid = p.pid();
        p.kill().unwrap();
        let _ = p.join_timeout(LONG);
        // After the death (joined: the exit is recorded, the name long freed): NoProc.
        assert!(matches!(by_name.send(&Msg::Tick), Err(SendError::NoProc(_))));
        assert!(matches!(by_name.ask(Msg::Who), Err(AskError::NoProc(_))));
    }
}

#[test]
fn ask_by_name_to_a_process_that_dies_before_replying_is_gone() {
    let mut guard = KillOnDrop::default();
    let mut p = start_server("names-dies", &mut guard);
    let r = Addr::<Msg>::named("names-dies").ask_timeout(Msg::Ignore, Duration::from_secs(30));
    assert!(matches!(r, Err(AskError::Gone)), "{r:?}");
    let _ = p.join_timeout(LONG);
    assert_eq!(p.exitcode(), Some(4));
}

/// Tries to name its sibling, and to unregister the sibling's name.
#[multiproc::worker]
fn meddler(sibling: i32, sibling_name: String) -> (String, String) {
    let a = match register_pid("names-meddled", sibling) {
        Err(NameError::NotAllowed(_)) => "not allowed".to_string(),
        other => format!("{other:?}"),
    };
    let b = match unregister(&sibling_name) {
        Err(NameError::NotAllowed(_)) => "not allowed".to_string(),
        other => format!("{other:?}"),
    };
    (a, b)
}

#[test]
fn a_process_may_not_name_or_unname_a_process_it_did_not_start() {
    let mut guard = KillOnDrop::default();
    let s = start_server("names-sibling", &mut guard);
    let (a, b) = Process::new(meddler(s.pid(), "names-sibling".into()))
        .start()
        .unwrap()
        .join_timeout(LONG)
        .unwrap();
    assert_eq!((a.as_str(), b.as_str()), ("not allowed", "not allowed"));
    assert_eq!(whereis("names-sibling").unwrap().map(|i| i.pid()), Some(s.pid()));
    s.kill().unwrap();
}

/// Monitors the process registered under `name` and returns the Down.
#[multiproc::worker]
fn name_watcher(name: String, ready: multiproc::Event) -> Vec<Signal> {
    let _ = monitor(&Addr::<()>::named(name)).unwrap();
    ready.set().unwrap();
    let mut out = Vec::new();
    while let Ok(s) = signals().recv_timeout(Duration::from_secs(if out.is_empty() { 30 } else { 1 })) {
        out.push(s);
    }
    out
}

#[test]
fn a_monitor_by_name_watches_the_incarnation_registered_then_and_reports_its_name() {
    let mut guard = KillOnDrop::default();
    let s = start_server("names-watched", &mut guard);
    let ready = multiproc::Event::new().unwrap();
    let mut w = Process::new(name_watcher("names-watched".into(), ready.clone()))
        .start()
        .unwrap();
    guard.add(w.pid());
    assert!(ready.wait_timeout(LONG).unwrap());
    s.kill().unwrap();
    let sigs = w.join_timeout(LONG).unwrap();
    assert_eq!(sigs.len(), 1, "{sigs:?}");
    let Signal::Down(d) = &sigs[0] else { panic!("{sigs:?}") };
    assert_eq!(d.pid, s.pid());
    assert_eq!(d.name.as_deref(), Some("names-watched"));
    assert_eq!(d.reason, ExitReason::Ended(multiproc::ExitStatus::Signaled(9)));

    // Nobody under the name: NoProc at once, with the name.
    let ready = multiproc::Event::new().unwrap();
    let sigs = Process::new(name_watcher("names-nobody".into(), ready))
        .start()
        .unwrap()
        .join_timeout(LONG)
        .unwrap();
    let [Signal::Down(d)] = &sigs[..] else {
        panic!("{sigs:?}")
    };
    assert_eq!(
        (d.reason.clone(), d.name.as_deref()),
        (ExitReason::NoProc, Some("names-nobody"))
    );
}

// ----- limits and abuse (a helper root with small limits) ---------------------------------

const MAX_MON: usize = 100;

/// Tries to exhaust the registry: thousands of names, monitors past the limit, `Down`s of
/// dead processes left unread, links past the limit, and garbage targets.
#[multiproc::worker]
fn abuser(live_pids: Vec<i32>) -> Vec<String> {
    let mut report = Vec::new();
    // Names: one per process, whatever is tried.
    register("abuser-0").unwrap();
    let mut refused = 0;
    for i in 1..5000 {
        if matches!(register(&format!("abuser-{i}")), Err(NameError::AlreadyNamed(_))) {
            refused += 1;
        }
    }
    report.push(format!("names refused {refused}"));
    // Names for processes it did not start: refused.
    let others = live_pids
        .iter()
        .filter(|&&p| matches!(register_pid(&format!("other-{p}"), p), Err(NameError::NotAllowed(_))))
        .count();
    report.push(format!("others refused {others}"));
    // Monitors of a live process, up to the limit.
    let target = live_pids[0];
    let mut refs = Vec::new();
    let mut limited = 0;
    for _ in 0..MAX_MON + 50 {
        match monitor(target) {
            Ok(r) => refs.push(r),
            Err(multiproc::CallError::Hub(multiproc::HubError::Limit(_))) => limited += 1,
            Err(e) => panic!("{e}"),
        }
    }
    report.push(format!("monitors {} limited {limited}", refs.len()));
    // One freed place counts again.
    multiproc::demonitor(refs.pop().unwrap()).unwrap();
    report.push(format!("after demonitor {}", monitor(target).is_ok()));
    for r in refs.drain(..) {
        multiproc::demonitor(r).unwrap();
    }
    // Downs of pids nobody has, never received: bounded too.
    let mut ok = 0;
    let mut limited = 0;
    for i in 0..MAX_MON as i32 + 50 {
        match monitor(900_000_000 + i) {
            Ok(_) => ok += 1,
            Err(multiproc::CallError::Hub(multiproc::HubError::Limit(_))) => limited += 1,
            Err(e) => panic!("{e}"),
        }
    }
    report.push(format!("unread downs {ok} limited {limited}"));
    // Receiving them frees the places.
    // The first receive subscribes, and has everything the hub held once it returns: a
    // `try_recv` is enough.
    let mut got = 0;
    while signals().try_recv().is_ok() {
        got += 1;
    }
    report.push(format!("received {got} then {}", monitor(950_000_000).is_ok()));
    // Links beyond the limit (the live pids: fewer than the limit, so all succeed).
    let linked = live_pids.iter().filter(|&&p| multiproc::link(p).is_ok()).count();
    report.push(format!("linked {linked}"));
    for &p in &live_pids {
        multiproc::unlink(p).unwrap();
    }
    // Garbage targets.
    for pid in [0, -1, i32::MIN, i32::MAX] {
        let _ = monitor(pid).unwrap();
        assert!(matches!(multiproc::link(pid), Err(NameError::NoProc(_))));
        multiproc::unlink(pid).unwrap();
    }
    report
}

#[test]
#[ignore = "helper root for the_registry_is_bounded"]
fn helper_registry_limits() {
    if !is_helper("helper_registry_limits") {
        return;
    }
    multiproc::set_hub_limits(HubLimits {
        max_monitors_per_process: MAX_MON,
        ..HubLimits::default()
    });
    let mut guard = KillOnDrop::default();
    let mut live = Vec::new();
    for _ in 0..3 {
        let p = Process::new(sleeper(30_000)).start().unwrap();
        guard.add(p.pid());
        live.push(p);
    }
    let pids: Vec<i32> = live.iter().map(|p| p.pid()).collect();
    let report = Process::new(abuser(pids)).start().unwrap().join_timeout(LONG).unwrap();
    for line in &report {
        println!("REPORT {line}");
    }
    // The hub still answers, and the abuser's name went with it.
    assert!(whereis("abuser-0").unwrap().is_none());
    println!("REPORT done");
}

#[test]
fn the_registry_is_bounded() {
    let mut child = helper_root("helper_registry_limits");
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    while let Some(l) = read_line_with(&mut out, "REPORT ") {
        let done = l == "done";
        lines.push(l);
        if done {
            break;
        }
    }
    let status = child.wait().unwrap();
    assert_eq!(
        lines,
        vec![
            "names refused 4999".to_string(),
            "others refused 3".into(),
            format!("monitors {MAX_MON} limited 50"),
            "after demonitor true".into(),
            format!("unread downs {MAX_MON} limited 50"),
            format!("received {MAX_MON} then true"),
            "linked 3".into(),
            "done".into(),
        ],
        "helper exited with {status:?}"
    );
    assert!(status.success());
}

// ----- the root (the only test of this binary that reads the root's signals) -------------

#[test]
fn the_root_is_never_killed_by_a_link_it_receives_exit_and_down() {
    let mut guard = KillOnDrop::default();
    let mut p = Process::new(sleeper(30_000)).start().unwrap();
    guard.add(p.pid());
    register_pid("names-root-linked", p.pid()).unwrap();
    // Not trapping: the root still gets the signal instead of being killed.
    assert!(!multiproc::trap_exits(false).unwrap());
    multiproc::link(&p).unwrap();
    let m = monitor(&p).unwrap();
    p.kill().unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        got.push(signals().recv_timeout(LONG).expect("a signal for the root"));
    }
    let reason = ExitReason::Ended(multiproc::ExitStatus::Signaled(9));
    assert!(got.iter().any(|s| matches!(s, Signal::Exit(e)
        if e.pid == p.pid() && e.reason == reason && e.name.as_deref() == Some("names-root-linked"))));
    assert!(got
        .iter()
        .any(|s| matches!(s, Signal::Down(d) if d.monitor == m && d.reason == reason)));
    let _ = p.join_timeout(LONG);
    // Exactly once each.
    assert!(signals().recv_timeout(Duration::from_millis(500)).is_err());
}

// ----- faults ------------------------------------------------------------------------------

/// Asks `name` in a loop until `stop` is set; counts the outcomes. Then asks until it gets an
/// answer again (at most 30 s) and returns the pid that answered last.
#[multiproc::worker]
fn asking_client(name: String, stop: multiproc::Event) -> (u64, u64, u64, Vec<String>, i32) {
    let to = Addr::<Msg>::named(name);
    let (mut ok, mut gone, mut noproc, mut other) = (0, 0, 0, Vec::new());
    while !stop.is_set().unwrap() {
        match to.ask_timeout(Msg::Who, Duration::from_secs(20)) {
            Ok(_) => ok += 1,
            Err(AskError::Gone) => gone += 1,
            Err(AskError::NoProc(_)) => {
                noproc += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => other.push(e.to_string()),
        }
    }
    let end = Instant::now() + Duration::from_secs(30);
    let last = loop {
        match to.ask_timeout(Msg::Who, Duration::from_secs(20)) {
            Ok((pid, _)) => break pid,
            Err(_) if Instant::now() < end => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("no answer after the last restart: {e}"),
        }
    };
    (ok, gone, noproc, other, last)
}

#[test]
fn clients_asking_by_name_through_kills_get_answers_or_clear_errors_and_never_hang() {
    let mut guard = KillOnDrop::default();
    let name = "names-kill-loop";
    let mut server = start_server(name, &mut guard);
    let stop = multiproc::Event::new().unwrap();
    let mut clients: Vec<_> = (0..3)
        .map(|_| {
            let c = Process::new(asking_client(name.to_string(), stop.clone()))
                .start()
                .unwrap();
            guard.add(c.pid());
            c
        })
        .collect();
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(150));
        server.kill().unwrap();
        let _ = server.join_timeout(LONG);
        server = start_server(name, &mut guard);
    }
    std::thread::sleep(Duration::from_millis(150));
    stop.set().unwrap();
    for c in &mut clients {
        let (ok, _gone, _noproc, other, last) = c.join_timeout(Duration::from_secs(90)).unwrap();
        assert!(ok > 0, "some asks were answered");
        assert!(other.is_empty(), "only Gone and NoProc are expected errors: {other:?}");
        assert_eq!(last, server.pid(), "after the last restart the clients reach it");
    }
    server.kill().unwrap();
}
