//! Supervisor trees that span processes, and named children: a subtree in a child process
//! (its children die with it, even by SIGKILL), a subtree that gives up (its parent sees the
//! reason), a depth-3 tree whose root is SIGKILLed (nothing is left), and a named actor
//! killed 20 times while clients ask it by name.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{eventually, helper_root, is_helper, pid_exists, read_line_with, KillOnDrop};
use multiproc::actor::Flow;
use multiproc::supervisor::{ChildExit, ChildInfo, ChildSpec, Strategy, Supervisor, SupervisorError, SupervisorRef};
use multiproc::sys::{proc::send_signal, signal};
use multiproc::{whereis, Addr, AskError, ReplyTo};
use serde::{Deserialize, Serialize};

const LIMIT: Duration = Duration::from_secs(30);

#[multiproc::worker]
fn sleeper() {
    std::thread::sleep(Duration::from_secs(3600));
}

/// Dies at once (exit code 2).
#[multiproc::worker]
fn crasher() {
    std::process::exit(2);
}

/// Level 3: two sleepers.
#[multiproc::worker]
fn level3() -> Result<(), SupervisorError> {
    Supervisor::builder()
        .child(ChildSpec::new("w3a", sleeper))
        .child(ChildSpec::new("w3b", sleeper))
        .run()
}

/// Level 2: a level-3 subtree and a sleeper.
#[multiproc::worker]
fn level2() -> Result<(), SupervisorError> {
    Supervisor::builder()
        .strategy(Strategy::OneForAll)
        .child(ChildSpec::supervisor("l3", level3))
        .child(ChildSpec::new("w2", sleeper))
        .run()
}

/// A subtree that gives up at once: its child crashes faster than its intensity allows.
#[multiproc::worker]
fn doomed() -> Result<(), SupervisorError> {
    Supervisor::builder()
        .intensity(2, Duration::from_secs(60))
        .child(ChildSpec::new("crasher", crasher))
        .run()
}

/// The children of a supervisor, once all of them run.
fn running_children(get: impl Fn() -> Result<Vec<ChildInfo>, SupervisorError>, n: usize) -> Vec<ChildInfo> {
    let end = Instant::now() + LIMIT;
    loop {
        if let Ok(kids) = get() {
            if kids.len() == n && kids.iter().all(|c| c.pid.is_some()) {
                return kids;
            }
        }
        assert!(Instant::now() < end, "the children did not all start");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every pid of a depth-3 tree under `top`: [l2, l3, w3a, w3b, w2].
fn tree_pids(top: &Supervisor) -> Vec<i32> {
    let l1 = running_children(|| top.which_children(), 1);
    let l2 = SupervisorRef::new(l1[0].addr().unwrap());
    let l2_kids = running_children(|| l2.which_children(), 2);
    let l3 = SupervisorRef::new(l2_kids[0].addr().unwrap());
    let l3_kids = running_children(|| l3.which_children(), 2);
    let mut pids = vec![l1[0].pid.unwrap(), l2_kids[0].pid.unwrap()];
    pids.extend(l3_kids.iter().map(|c| c.pid.unwrap()));
    pids.push(l2_kids[1].pid.unwrap());
    pids
}

#[test]
fn a_subtree_killed_by_sigkill_takes_its_children_and_is_restarted_whole() {
    let top = Supervisor::builder()
        .intensity(5, Duration::from_secs(60))
        .child(ChildSpec::supervisor("l2", level2))
        .start()
        .unwrap();
    let mut guard = KillOnDrop::default();
    let before = tree_pids(&top);
    before.iter().for_each(|&p| guard.add(p));
    eprintln!("tree before: {before:?}");
    // SIGKILL the level-2 supervisor: its children (linked to it) are killed by the hub, and
    // so are theirs (level 3 is linked to its own children).
    send_signal(before[0], signal::SIGKILL).unwrap();
    assert!(
        eventually(LIMIT, || before.iter().all(|&p| !pid_exists(p))),
        "left behind: {:?}",
        before
            .iter()
            .filter(|&&p| pid_exists(p))
            .map(|p| (
                p,
                std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default()
            ))
            .collect::<Vec<_>>()
    );
    let after = tree_pids(&top);
    after.iter().for_each(|&p| guard.add(p));
    assert!(after.iter().all(|p| !before.contains(p)), "a whole new subtree");
    let l2 = &top.which_children().unwrap()[0];
    assert_eq!(l2.starts, 2);
    assert_eq!(
        l2.last_exit,
        Some(ChildExit::Status(multiproc::ExitStatus::Signaled(9)))
    );
    // Stopping the top stops the subtree in order: every process ends.
    top.stop().unwrap();
    assert!(eventually(LIMIT, || after.iter().all(|&p| !pid_exists(p))));
}

#[test]
fn a_subtree_that_gives_up_reports_why_to_its_parent() {
    let top = Supervisor::builder()
        .intensity(0, Duration::from_secs(60))
        .child(ChildSpec::supervisor("doomed", doomed))
        .start()
        .unwrap();
    match top.join_timeout(LIMIT) {
        Err(SupervisorError::GaveUp {
            id, max_restarts: 0, ..
        }) => assert_eq!(id, "doomed"),
        other => panic!("expected the top to give up, got {other:?}"),
    }
    // The top gave up because its child gave up. With room for restarts, the parent keeps
    // the reason its child returned: a transient child that ended abnormally is restarted,
    // and each incarnation gives up again (so leave room for many: each takes milliseconds).
    let top = Supervisor::builder()
        .intensity(100_000, Duration::from_secs(60))
        .child(ChildSpec::supervisor("doomed", doomed).restart(multiproc::supervisor::Restart::Transient))
        .start()
        .unwrap();
    assert!(eventually(LIMIT, || {
        top.which_children().unwrap()[0]
            .last_exit
            .as_ref()
            .is_some_and(|e| matches!(e, ChildExit::Supervisor(SupervisorError::GaveUp { id, .. }) if id == "crasher"))
    }));
    drop(top);
}

/// Helper root: builds a depth-3 tree, prints its pids, and waits to be SIGKILLed.
#[test]
#[ignore]
fn helper_tree() {
    if !is_helper("helper_tree") {
        return;
    }
    let top = Supervisor::builder()
        .child(ChildSpec::supervisor("l2", level2))
        .start()
        .unwrap();
    let pids = tree_pids(&top);
    println!(
        "TREE {}",
        pids.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" ")
    );
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn a_depth_3_tree_leaves_nothing_when_its_root_process_is_sigkilled() {
    let mut root = helper_root("helper_tree");
    let mut guard = KillOnDrop::default();
    guard.add(root.id() as i32);
    let mut out = std::io::BufReader::new(root.stdout.take().unwrap());
    let line = read_line_with(&mut out, "TREE ").expect("the helper root did not print its tree");
    let pids: Vec<i32> = line.split_whitespace().filter_map(|p| p.parse().ok()).collect();
    assert_eq!(pids.len(), 5, "{line}");
    for &p in &pids {
        guard.add(p);
        assert!(pid_exists(p));
    }
    root.kill().unwrap();
    root.wait().unwrap();
    let gone = eventually(Duration::from_secs(10), || pids.iter().all(|&p| !pid_exists(p)));
    assert!(
        gone,
        "still alive after the root's SIGKILL: {:?}",
        pids.iter().filter(|&&p| pid_exists(p)).collect::<Vec<_>>()
    );
}

#[derive(Debug, Serialize, Deserialize)]
enum CounterMsg {
    Get(ReplyTo<u64>),
}

/// A counter actor that answers how many asks this incarnation has served.
#[derive(Debug, Serialize, Deserialize)]
struct Counter {
    served: u64,
}

#[multiproc::worker]
impl Counter {
    fn handle(&mut self, msg: CounterMsg) -> Flow {
        let CounterMsg::Get(r) = msg;
        self.served += 1;
        let _ = r.send(&self.served);
        Flow::Continue
    }
}

#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    gone: u64,
    noproc: u64,
    ok_after_last_restart: u64,
}

#[test]
fn a_named_actor_killed_20_times_keeps_answering_clients_that_ask_by_name() {
    let sup = Supervisor::builder()
        .intensity(100, Duration::from_secs(60))
        .child(ChildSpec::new("counter", || Counter { served: 0 }).name("sup-test-counter"))
        .start()
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let last_restart_done = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let (done, last) = (done.clone(), last_restart_done.clone());
            std::thread::spawn(move || {
                let addr = Addr::<CounterMsg>::named("sup-test-counter");
                let mut t = Tally::default();
                let end = Instant::now() + Duration::from_secs(120);
                while Instant::now() < end {
                    let after = last.load(Ordering::SeqCst);
                    let started = Instant::now();
                    match addr.ask_timeout(CounterMsg::Get, LIMIT) {
                        Ok(_) => {
                            t.ok += 1;
                            if after {
                                t.ok_after_last_restart += 1;
                            }
                        }
                        Err(AskError::Gone) => t.gone += 1,
                        Err(AskError::NoProc(_)) => {
                            t.noproc += 1;
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        Err(e) => panic!("an ask failed with {e:?} after {:?}", started.elapsed()),
                    }
                    if done.load(Ordering::SeqCst) && t.ok_after_last_restart >= 3 {
                        break;
                    }
                }
                t
            })
        })
        .collect();
    let pid_of = || whereis("sup-test-counter").unwrap().map(|p| p.pid());
    let mut kills = 0;
    let mut pid = None;
    assert!(eventually(LIMIT, || {
        pid = pid_of();
        pid.is_some()
    }));
    while kills < 20 {
        let p = pid.unwrap();
        // Let the clients reach this incarnation a few times.
        std::thread::sleep(Duration::from_millis(20));
        send_signal(p, signal::SIGKILL).unwrap();
        kills += 1;
        assert!(
            eventually(LIMIT, || {
                pid = pid_of();
                pid.is_some_and(|n| n != p)
            }),
            "the counter was not restarted and registered again after kill {kills}"
        );
    }
    last_restart_done.store(true, Ordering::SeqCst);
    done.store(true, Ordering::SeqCst);
    let mut total = Tally::default();
    for c in clients {
        let t = c.join().expect("a client failed");
        assert!(
            t.ok_after_last_restart >= 3,
            "a client did not succeed after the last restart: {t:?}"
        );
        total.ok += t.ok;
        total.gone += t.gone;
        total.noproc += t.noproc;
    }
    let kids = sup.which_children().unwrap();
    assert_eq!(kids[0].starts, 21);
    assert!(total.ok > 20, "{total:?}");
    eprintln!("asks through 20 kills: {total:?}");
    sup.stop().unwrap();
    assert!(eventually(LIMIT, || pid_of().is_none()));
}
