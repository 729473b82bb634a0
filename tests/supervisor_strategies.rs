//! Supervisors with real child processes: each strategy restarts exactly the right children,
//! in the right order, with new pids; restart policies; intensity; shutdown order and
//! policies; the run-time requests.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{eventually, pid_exists};
use multiproc::supervisor::{
    ChildExit, ChildInfo, ChildSpec, Restart, Shutdown, Strategy, Supervisor, SupervisorError,
};
use multiproc::sys::{proc::send_signal, signal};
use multiproc::{ExitStatus, Queue};

const LIMIT: Duration = Duration::from_secs(30);

/// Logs `start <id>`, then sleeps until SIGTERM (logged as `stop <id>`, then a normal exit).
#[multiproc::worker]
fn member(id: String, log: Queue<String>) {
    signal::notify_on(signal::SIGTERM).map(std::mem::forget).unwrap();
    log.put(format!("start {id}")).unwrap();
    while signal::delivered(signal::SIGTERM) == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    log.put(format!("stop {id}")).unwrap();
}

/// Returns at once with code 0.
#[multiproc::worker]
fn quick(log: Queue<String>) {
    log.put("quick".into()).unwrap();
}

/// Ignores SIGTERM and sleeps.
#[multiproc::worker]
fn stubborn(log: Queue<String>) {
    signal::ignore(signal::SIGTERM).unwrap();
    log.put("stubborn".into()).unwrap();
    std::thread::sleep(Duration::from_secs(3600));
}

fn spec(id: &str, log: &Queue<String>) -> ChildSpec {
    let (id2, log) = (id.to_string(), log.clone());
    ChildSpec::new(id, move || member(id2.clone(), log.clone())).shutdown(Shutdown::Timeout(LIMIT))
}

/// The next `n` log lines.
fn lines(log: &Queue<String>, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| log.get_timeout(LIMIT).expect("a child did not report"))
        .collect()
}

fn pids(children: &[ChildInfo]) -> HashMap<String, Option<i32>> {
    children.iter().map(|c| (c.id.clone(), c.pid)).collect()
}

/// The ids in the order the supervisor last started them.
fn start_order(sup: &Supervisor) -> Vec<String> {
    let mut kids = sup.which_children().unwrap();
    kids.sort_by_key(|c| c.start_seq);
    kids.into_iter().map(|c| c.id).collect()
}

/// The next `n` log lines, sorted (processes started in order may run in any order).
fn sorted_lines(log: &Queue<String>, n: usize) -> Vec<String> {
    let mut l = lines(log, n);
    l.sort();
    l
}

fn kill(pid: i32) {
    send_signal(pid, signal::SIGKILL).unwrap();
}

/// Waits until `which_children` shows `id` running with a pid other than `old`.
fn new_pid(sup: &Supervisor, id: &str, old: i32) -> i32 {
    let end = Instant::now() + LIMIT;
    loop {
        let kids = sup.which_children().unwrap();
        if let Some(pid) = kids.iter().find(|c| c.id == id).and_then(|c| c.pid) {
            if pid != old {
                return pid;
            }
        }
        assert!(Instant::now() < end, "{id} was not restarted");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn three(strategy: Strategy) -> (Supervisor, Queue<String>, HashMap<String, Option<i32>>) {
    let log = Queue::new().unwrap();
    let sup = Supervisor::builder()
        .strategy(strategy)
        .intensity(10, Duration::from_secs(60))
        .child(spec("a", &log))
        .child(spec("b", &log))
        .child(spec("c", &log))
        .start()
        .unwrap();
    assert_eq!(sorted_lines(&log, 3), ["start a", "start b", "start c"]);
    assert_eq!(start_order(&sup), ["a", "b", "c"]);
    let before = pids(&sup.which_children().unwrap());
    assert!(before.values().all(Option::is_some));
    (sup, log, before)
}

#[test]
fn one_for_one_restarts_only_the_killed_child() {
    let (sup, log, before) = three(Strategy::OneForOne);
    let b = before["b"].unwrap();
    kill(b);
    assert_eq!(lines(&log, 1), ["start b"]);
    let nb = new_pid(&sup, "b", b);
    let after = pids(&sup.which_children().unwrap());
    assert_eq!(after["a"], before["a"]);
    assert_eq!(after["c"], before["c"]);
    assert_ne!(nb, b);
    let info = sup.which_children().unwrap();
    let bi = info.iter().find(|c| c.id == "b").unwrap();
    assert_eq!(bi.starts, 2);
    assert_eq!(bi.last_exit, Some(ChildExit::Status(ExitStatus::Signaled(9))));
    sup.stop().unwrap();
    // Stopped in reverse start order.
    assert_eq!(lines(&log, 3), ["stop c", "stop b", "stop a"]);
    assert!(log.try_get().is_err(), "nothing else happened");
}

#[test]
fn one_for_all_restarts_every_child_in_order() {
    let (sup, log, before) = three(Strategy::OneForAll);
    let b = before["b"].unwrap();
    kill(b);
    // The others are stopped in reverse start order (each waited for), then all start
    // again in order.
    assert_eq!(lines(&log, 2), ["stop c", "stop a"]);
    assert_eq!(sorted_lines(&log, 3), ["start a", "start b", "start c"]);
    let seq = |s: &Supervisor| {
        let k = s.which_children().unwrap();
        k.iter().map(|c| c.start_seq).collect::<Vec<_>>()
    };
    // Starts 1-3 were the first ones; 4-6 the restart of a, b, c in that order.
    assert_eq!(seq(&sup), [4, 5, 6]);
    let after = pids(&sup.which_children().unwrap());
    for id in ["a", "b", "c"] {
        assert!(after[id].is_some());
        assert_ne!(after[id], before[id], "{id} has a new pid");
    }
    sup.stop().unwrap();
    assert_eq!(lines(&log, 3), ["stop c", "stop b", "stop a"]);
}

#[test]
fn rest_for_one_restarts_the_child_and_those_after_it() {
    let (sup, log, before) = three(Strategy::RestForOne);
    let b = before["b"].unwrap();
    kill(b);
    assert_eq!(lines(&log, 1), ["stop c"]);
    assert_eq!(sorted_lines(&log, 2), ["start b", "start c"]);
    assert_eq!(start_order(&sup), ["a", "b", "c"]);
    let seqs: Vec<u64> = sup.which_children().unwrap().iter().map(|c| c.start_seq).collect();
    assert_eq!(seqs, [1, 4, 5], "a kept its start; b then c were started again");
    let after = pids(&sup.which_children().unwrap());
    assert_eq!(after["a"], before["a"], "a keeps its pid");
    assert_ne!(after["b"], before["b"]);
    assert_ne!(after["c"], before["c"]);
    sup.stop().unwrap();
    assert_eq!(lines(&log, 3), ["stop c", "stop b", "stop a"]);
}

#[test]
fn transient_normal_exit_is_not_restarted_and_temporary_never_is() {
    let log = Queue::new().unwrap();
    let l2 = log.clone();
    let sup = Supervisor::builder()
        .intensity(10, Duration::from_secs(60))
        .child(ChildSpec::new("quick", move || quick(l2.clone())).restart(Restart::Transient))
        .child(spec("trans", &log).restart(Restart::Transient))
        .child(spec("temp", &log).restart(Restart::Temporary))
        .start()
        .unwrap();
    let mut first = lines(&log, 3);
    first.sort();
    assert_eq!(first, ["quick", "start temp", "start trans"]);
    // The quick one ended normally: listed, not running, not restarted.
    assert!(eventually(LIMIT, || {
        let kids = sup.which_children().unwrap();
        let q = kids.iter().find(|c| c.id == "quick").unwrap();
        q.pid.is_none() && q.last_exit == Some(ChildExit::Status(ExitStatus::Exited(0)))
    }));
    // A transient child that is killed (abnormal) is restarted.
    let before = pids(&sup.which_children().unwrap());
    kill(before["trans"].unwrap());
    assert_eq!(lines(&log, 1), ["start trans"]);
    // A temporary child is never restarted: it is removed.
    kill(before["temp"].unwrap());
    assert!(eventually(LIMIT, || sup
        .which_children()
        .unwrap()
        .iter()
        .all(|c| c.id != "temp")));
    std::thread::sleep(Duration::from_millis(300));
    assert!(log.try_get().is_err(), "nothing else was started");
    let kids = sup.which_children().unwrap();
    assert_eq!(kids.iter().find(|c| c.id == "quick").unwrap().starts, 1);
    // restart_child starts the ended transient child again.
    let pid = sup.restart_child("quick").unwrap();
    assert!(pid > 0);
    assert_eq!(lines(&log, 1), ["quick"]);
    assert!(matches!(sup.restart_child("trans"), Err(SupervisorError::Running(_))));
    assert!(matches!(sup.restart_child("nope"), Err(SupervisorError::NoChild(_))));
    sup.stop().unwrap();
}

#[test]
fn four_crashes_with_max_restarts_3_make_it_give_up_and_stop_everything() {
    let log = Queue::new().unwrap();
    let sup = Supervisor::builder()
        .intensity(3, Duration::from_secs(60))
        .child(spec("a", &log))
        .child(spec("crashy", &log))
        .child(spec("c", &log))
        .start()
        .unwrap();
    assert_eq!(sorted_lines(&log, 3), ["start a", "start c", "start crashy"]);
    let kids = pids(&sup.which_children().unwrap());
    let all: Vec<i32> = kids.values().flatten().copied().collect();
    let mut pid = kids["crashy"].unwrap();
    for round in 0..3 {
        kill(pid);
        assert_eq!(lines(&log, 1), ["start crashy"], "restart {round}");
        pid = new_pid(&sup, "crashy", pid);
    }
    assert!(matches!(sup.try_join(), Err(SupervisorError::Timeout)), "still running");
    kill(pid);
    match sup.join_timeout(LIMIT) {
        Err(SupervisorError::GaveUp {
            id,
            max_restarts: 3,
            period,
        }) => {
            assert_eq!(id, "crashy");
            assert_eq!(period, Duration::from_secs(60));
        }
        other => panic!("expected GaveUp, got {other:?}"),
    }
    // The others were stopped in reverse start order; nobody was restarted.
    assert_eq!(lines(&log, 2), ["stop c", "stop a"]);
    for p in all.iter().chain([pid].iter()) {
        assert!(eventually(LIMIT, || !pid_exists(*p)), "pid {p} is gone");
    }
    assert!(matches!(sup.which_children(), Err(SupervisorError::Stopped)));
    // The reason stays.
    assert!(matches!(sup.stop(), Err(SupervisorError::GaveUp { .. })));
}

#[test]
fn shutdown_timeout_kills_a_child_that_ignores_sigterm_and_brutal_kills_at_once() {
    let log = Queue::new().unwrap();
    let (l1, l2) = (log.clone(), log.clone());
    let grace = Duration::from_millis(500);
    let sup = Supervisor::builder()
        .child(ChildSpec::new("stubborn", move || stubborn(l1.clone())).shutdown(Shutdown::Timeout(grace)))
        .child(ChildSpec::new("brutal", move || stubborn(l2.clone())).shutdown(Shutdown::Brutal))
        .start()
        .unwrap();
    assert_eq!(sorted_lines(&log, 2), ["stubborn", "stubborn"]);
    let t = Instant::now();
    sup.terminate_child("brutal").unwrap();
    let took_brutal = t.elapsed();
    let t = Instant::now();
    sup.terminate_child("stubborn").unwrap();
    let took = t.elapsed();
    assert!(took >= grace, "SIGKILL not before the grace period: {took:?}");
    assert!(took < grace + LIMIT, "{took:?}");
    assert!(took_brutal < LIMIT);
    let kids = sup.which_children().unwrap();
    for c in &kids {
        assert_eq!(c.pid, None);
        assert_eq!(c.last_exit, Some(ChildExit::Status(ExitStatus::Signaled(9))), "{c:?}");
    }
    // Terminated children are not restarted.
    std::thread::sleep(Duration::from_millis(200));
    assert!(log.try_get().is_err());
    // start_child adds one at run time; a duplicate id is refused and the spec handed back.
    let l3 = log.clone();
    let pid = sup
        .start_child(ChildSpec::new("late", move || quick(l3.clone())).restart(Restart::Temporary))
        .unwrap();
    assert!(pid > 0);
    assert_eq!(lines(&log, 1), ["quick"]);
    let l4 = log.clone();
    match sup.start_child(ChildSpec::new("brutal", move || quick(l4.clone()))) {
        Err((SupervisorError::DuplicateId(id), Some(spec))) => {
            assert_eq!(id, "brutal");
            assert_eq!(spec.id(), "brutal");
        }
        other => panic!("expected DuplicateId, got {:?}", other.map_err(|e| e.0)),
    }
    sup.delete_child("brutal").unwrap();
    assert!(sup.which_children().unwrap().iter().all(|c| c.id != "brutal"));
    sup.stop().unwrap();
}
