//! Process lifecycle, exit codes and start methods (ports of CPython's `_TestProcess`).

mod common;

use std::time::{Duration, Instant};

use common::{eventually, KillOnDrop};
use multiproc::{current_process, ExitStatus, JoinError, Process, StartMethod};

#[multiproc::worker]
fn square(x: u64) -> u64 {
    x * x
}

#[multiproc::worker]
fn sleeper(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[multiproc::worker]
fn exit_with(code: i32) {
    std::process::exit(code);
}

#[multiproc::worker]
fn panicker(msg: String) -> u32 {
    panic!("{}", msg);
}

#[multiproc::worker]
fn whoami() -> (String, i32, bool, Option<String>) {
    let me = current_process();
    let parent = multiproc::parent_process().map(|p| p.name().to_string());
    (me.name().to_string(), me.pid(), me.daemon(), parent)
}

const METHODS: [StartMethod; 3] = [StartMethod::ForkServer, StartMethod::Spawn, StartMethod::Fork];

#[test]
fn value_reaches_parent_with_every_start_method() {
    for m in METHODS {
        let mut p = Process::new(square(9)).start_method(m).start().unwrap();
        assert_eq!(p.join().unwrap(), 81, "{m:?}");
        assert_eq!(p.exit_status(), Some(ExitStatus::Exited(0)), "{m:?}");
    }
}

#[test]
fn states_before_and_after_join() {
    let mut guard = KillOnDrop::default();
    let mut p = Process::new(sleeper(300)).start().unwrap();
    guard.add(p.pid());
    assert!(p.pid() > 0);
    assert!(p.is_alive());
    assert_eq!(p.exitcode(), None);
    assert_eq!(p.exit_status(), None);
    assert!(matches!(p.try_join(), Err(JoinError::Running)));
    p.join().unwrap();
    assert!(!p.is_alive());
    assert_eq!(p.exitcode(), Some(0));
    // A second join reports that the value was taken; the status stays available.
    assert!(matches!(p.join(), Err(JoinError::ResultTaken)));
    assert_eq!(p.exitcode(), Some(0));
}

#[test]
fn join_timeout_on_a_live_child() {
    let mut guard = KillOnDrop::default();
    let mut p = Process::new(sleeper(10_000)).start().unwrap();
    guard.add(p.pid());
    let t = Instant::now();
    assert!(matches!(
        p.join_timeout(Duration::from_millis(300)),
        Err(JoinError::Timeout)
    ));
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(300), "returned early: {waited:?}");
    assert!(waited < Duration::from_secs(5), "returned late: {waited:?}");
    assert!(p.is_alive());
    // A zero timeout does not wait.
    assert!(matches!(p.join_timeout(Duration::ZERO), Err(JoinError::Timeout)));
    p.kill().unwrap();
    assert!(matches!(p.join(), Err(JoinError::Signaled(9))));
}

#[test]
fn exit_code_table() {
    for (code, expected) in [(0, 0), (1, 1), (2, 2), (8, 8), (255, 255)] {
        let mut p = Process::new(exit_with(code)).start().unwrap();
        let r = p.join();
        assert_eq!(p.exitcode(), Some(expected), "exit({code})");
        assert_eq!(p.exit_status(), Some(ExitStatus::Exited(expected)));
        if code == 0 {
            // exit(0) from a worker that returns (): nothing was lost.
            r.unwrap();
        } else {
            assert!(matches!(r, Err(JoinError::Exited(c)) if c == expected), "{r:?}");
        }
    }
}

#[test]
fn terminate_kill_and_interrupt_give_negative_codes() {
    for (sig, name) in [(15, "terminate"), (9, "kill"), (2, "interrupt")] {
        let mut guard = KillOnDrop::default();
        let mut p = Process::new(sleeper(20_000)).start().unwrap();
        guard.add(p.pid());
        assert!(p.is_alive());
        match sig {
            15 => p.terminate().unwrap(),
            9 => p.kill().unwrap(),
            _ => p.interrupt().unwrap(),
        }
        let t = Instant::now();
        assert!(matches!(p.join(), Err(JoinError::Signaled(s)) if s == sig), "{name}");
        assert!(t.elapsed() < Duration::from_secs(5));
        assert_eq!(p.exitcode(), Some(-sig), "{name}");
        assert_eq!(p.exit_status(), Some(ExitStatus::Signaled(sig)));
        // Signalling a finished process is harmless.
        p.terminate().unwrap();
    }
}

#[test]
fn panic_message_and_location_reach_the_parent() {
    for m in METHODS {
        let mut p = Process::new(panicker("it broke".into()))
            .start_method(m)
            .start()
            .unwrap();
        match p.join() {
            Err(JoinError::Panicked { message, location }) => {
                assert_eq!(message, "it broke");
                let loc = location.expect("location");
                assert!(loc.contains("process_lifecycle.rs"), "{loc}");
            }
            other => panic!("{m:?}: {other:?}"),
        }
        assert_eq!(p.exitcode(), Some(1));
        assert!(matches!(p.exit_status(), Some(ExitStatus::Panicked { .. })));
    }
}

#[test]
fn names_and_identity() {
    let me = current_process();
    assert_eq!(me.name(), "MainProcess");
    assert!(multiproc::parent_process().is_none());

    let mut p = Process::new(whoami()).name("custom").start().unwrap();
    let pid = p.pid();
    let (name, child_pid, daemon, parent) = p.join().unwrap();
    assert_eq!(name, "custom");
    assert_eq!(child_pid, pid);
    assert!(!daemon);
    assert_eq!(parent.as_deref(), Some("MainProcess"));

    let mut d = Process::new(whoami()).daemon(true).start().unwrap();
    assert!(d.daemon());
    let (name, _, daemon, _) = d.join().unwrap();
    assert!(name.starts_with("Process-"), "{name}");
    assert!(daemon);
}

#[test]
fn default_names_count_up() {
    let mut a = Process::new(square(1)).start().unwrap();
    let mut b = Process::new(square(2)).start().unwrap();
    let na: u32 = a.name().strip_prefix("Process-").unwrap().parse().unwrap();
    let nb: u32 = b.name().strip_prefix("Process-").unwrap().parse().unwrap();
    assert!(nb > na);
    a.join().unwrap();
    b.join().unwrap();
}

#[test]
fn hundred_children() {
    let mut guard = KillOnDrop::default();
    let mut procs = Vec::new();
    for i in 0..100u64 {
        let p = Process::new(square(i)).start().unwrap();
        guard.add(p.pid());
        procs.push(p);
    }
    for (i, p) in procs.iter_mut().enumerate() {
        assert_eq!(p.join().unwrap(), (i * i) as u64);
    }
    assert!(eventually(Duration::from_secs(5), || multiproc::active_children()
        .unwrap()
        .is_empty()));
}

#[test]
fn fork_runs_a_closure_that_cannot_be_serialised() {
    let shared = std::sync::Arc::new(std::sync::Mutex::new(vec![1u32, 2, 3]));
    let captured = shared.clone();
    let mut p = Process::fork(move || {
        let v = captured.lock().unwrap();
        v.iter().sum::<u32>()
    })
    .start()
    .unwrap();
    assert_eq!(p.join().unwrap(), 6);
    // A closure cannot use another start method.
    let err = Process::fork(|| 1u8)
        .start_method(StartMethod::Spawn)
        .start()
        .unwrap_err();
    assert!(err.to_string().contains("Fork"), "{err}");
}

#[test]
fn unserialisable_argument_is_an_error_before_anything_starts() {
    struct Fails;
    impl serde::Serialize for Fails {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("refusing to serialise"))
        }
    }
    let task: multiproc::Task<()> = multiproc::__private::make_task("no::such::worker", &(Fails,));
    // Other tests of this binary start children at the same time: look for this one by name.
    let err = Process::new(task).name("unserialisable-probe").start().unwrap_err();
    assert!(matches!(err, multiproc::ProcessError::Encode(_)), "{err}");
    assert!(err.to_string().contains("refusing to serialise"));
    assert!(
        !multiproc::active_children()
            .unwrap()
            .iter()
            .any(|c| c.name() == "unserialisable-probe"),
        "a process was started although its argument could not be encoded"
    );
}

#[test]
fn unknown_worker_fails_in_the_child_with_a_clear_error() {
    let task: multiproc::Task<()> = multiproc::__private::make_task("no::such::worker", &());
    let mut p = Process::new(task).start().unwrap();
    match p.join() {
        Err(JoinError::Failed(m)) => assert!(m.contains("no::such::worker"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(p.exitcode(), Some(1));
}

/// Regression: a `Fork` child that exits at once is reaped by its fork thread, whose report can
/// reach the hub before the starting thread's; the join must still complete.
#[test]
fn fork_children_that_exit_at_once_are_joined() {
    #[multiproc::worker]
    fn nothing() {}
    for _ in 0..200 {
        let mut p = Process::new(nothing()).start_method(StartMethod::Fork).start().unwrap();
        p.join_timeout(Duration::from_secs(10)).unwrap();
    }
}
