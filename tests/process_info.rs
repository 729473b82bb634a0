//! `Process::close`, `ProcessInfo::{is_alive, exitcode}`, and a child watching its parent
//! (`parent_process().is_alive()`, and a `ProcessInfo` as a `wait` source). Ported from
//! CPython's `_test_multiprocessing.py`: `test_close`, `test_parent_process`,
//! `test_parent_process_attributes`.

mod common;

use std::time::{Duration, Instant};

use common::{eventually, KillOnDrop};
use multiproc::{
    current_process, parent_process, pipe, wait, CloseError, Connection, ExitStatus, Process, ProcessInfo, Queue,
    StartMethod, Waitable,
};

const LONG: Duration = Duration::from_secs(60);

#[multiproc::worker]
fn wait_for_item(q: Queue<u32>) -> u32 {
    q.get().unwrap()
}

/// CPython's `test_close`: a running process cannot be closed; once joined it can, and the hub
/// forgets it. Using the handle afterwards is a compile error (tests/ui/fail/use_after_close.rs).
#[test]
fn close_refuses_a_running_process_and_frees_an_ended_one() {
    let q = Queue::<u32>::new().unwrap();
    let p = Process::new(wait_for_item(q.clone())).daemon(true).start().unwrap();
    let _guard = KillOnDrop(vec![p.pid()]);
    assert!(p.is_alive());
    let id = p.proc_id();
    // Still alive: cannot close; the handle comes back whole.
    let mut p = match p.close() {
        Err(CloseError::Running(p)) => p,
        other => panic!("closing a running process: {other:?}"),
    };
    assert!(p.is_alive());
    let err = match p.close() {
        Err(e) => e,
        Ok(s) => panic!("closed a running process: {s:?}"),
    };
    assert!(err.to_string().contains("still running"), "{err}");
    p = err.into_process();

    q.put(7).unwrap();
    assert_eq!(p.join_timeout(LONG).unwrap(), 7);
    assert!(!p.is_alive());
    assert_eq!(p.exitcode(), Some(0));
    assert_eq!(p.close().unwrap(), ExitStatus::Exited(0));
    // The hub's record is gone.
    assert!(!multiproc::runtime::hub_knows_process(id).unwrap());
}

#[multiproc::worker]
fn sleep_long() {
    std::thread::sleep(Duration::from_secs(300));
}

/// Fault: a child killed with SIGKILL can be closed without a join once its death is known;
/// close never waits (a close right after the kill may hand the handle back).
#[test]
fn close_after_sigkill_reports_the_signal_without_join() {
    let mut p = Process::new(sleep_long()).start().unwrap();
    let _guard = KillOnDrop(vec![p.pid()]);
    let id = p.proc_id();
    p.kill().unwrap();
    let deadline = Instant::now() + LONG;
    let status = loop {
        let t = Instant::now();
        match p.close() {
            Ok(s) => break s,
            Err(CloseError::Running(back)) => {
                // close() did not wait for the death.
                assert!(t.elapsed() < Duration::from_secs(10));
                assert!(Instant::now() < deadline, "the killed child never ended");
                p = back;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(status, ExitStatus::Signaled(9));
    assert!(!multiproc::runtime::hub_knows_process(id).unwrap());
}

#[multiproc::worker]
fn exit_with(code: i32, wait_for: Queue<()>) {
    wait_for.get().unwrap();
    std::process::exit(code);
}

/// `ProcessInfo::is_alive` and `exitcode` ask the hub: they follow a process whose handle is
/// elsewhere, for a normal exit and a SIGKILL.
#[test]
fn process_info_follows_the_process() {
    let go = Queue::<()>::new().unwrap();
    let p = Process::new(exit_with(3, go.clone())).start().unwrap();
    let mut victim = Process::new(sleep_long()).start().unwrap();
    let _guard = KillOnDrop(vec![p.pid(), victim.pid()]);
    let info = p.info();
    let vinfo = victim.info();
    assert!(info.is_alive());
    assert_eq!(info.exitcode(), None);
    go.put(()).unwrap();
    assert!(eventually(LONG, || !info.is_alive()), "the child did not end");
    assert_eq!(info.exitcode(), Some(3));

    victim.kill().unwrap();
    assert!(eventually(LONG, || !vinfo.is_alive()), "the killed child did not end");
    assert_eq!(vinfo.exitcode(), Some(-9));
    // Once joined, the hub forgets the process: the description says "not alive", no code.
    let _ = victim.join_timeout(LONG);
    assert!(!vinfo.is_alive());
    assert_eq!(vinfo.exitcode(), None);
    drop(p);

    // The calling process is alive to itself, root or not.
    assert!(current_process().is_alive());
    assert_eq!(current_process().exitcode(), None);
}

#[multiproc::worker]
fn ask_about(other: ProcessInfo) -> (bool, Option<i32>, bool) {
    (other.is_alive(), other.exitcode(), current_process().is_alive())
}

/// A `ProcessInfo` is a value: a child asks about its sibling through it.
#[test]
fn a_child_asks_about_a_sibling() {
    let sib = Process::new(sleep_long()).start().unwrap();
    let _guard = KillOnDrop(vec![sib.pid()]);
    let mut asker = Process::new(ask_about(sib.info())).start().unwrap();
    assert_eq!(asker.join_timeout(LONG).unwrap(), (true, None, true));
    sib.kill().unwrap();
    assert!(eventually(LONG, || !sib.info().is_alive()));
    let mut asker = Process::new(ask_about(sib.info())).start().unwrap();
    assert_eq!(asker.join_timeout(LONG).unwrap(), (false, Some(-9), true));
}

// ----- the parent --------------------------------------------------------------------------

#[multiproc::worker]
fn report_parent_status(w: Connection<String>) {
    let parent = parent_process().unwrap();
    w.send(&format!("pid {}", current_process().pid())).unwrap();
    w.send(&if parent.is_alive() { "alive" } else { "not alive" }.to_string())
        .unwrap();
    // Python: parent_process().join(timeout); here: wait on the parent.
    let objs: [&dyn Waitable; 1] = [&parent];
    let _ = wait(&objs, Some(Duration::from_secs(60)));
    w.send(&if parent.is_alive() { "alive" } else { "not alive" }.to_string())
        .unwrap();
}

#[multiproc::worker]
fn create_grandchild(w: Connection<String>) {
    let _p = Process::new(report_parent_status(w)).start().unwrap();
    std::thread::sleep(Duration::from_secs(300));
}

fn recv_within(c: &Connection<String>, limit: Duration) -> String {
    c.recv_timeout(limit).expect("no word from the grandchild")
}

/// CPython's `test_parent_process`: a grandchild sees its parent alive, and not alive once the
/// parent is terminated; a wait on the parent returns when it dies.
#[test]
fn grandchild_notices_the_death_of_its_parent() {
    for method in [StartMethod::ForkServer, StartMethod::Spawn] {
        let (r, w) = pipe::<String>().unwrap();
        let mut p = Process::new(create_grandchild(w)).start_method(method).start().unwrap();
        let mut guard = KillOnDrop(vec![p.pid()]);
        let gpid: i32 = recv_within(&r, LONG)
            .strip_prefix("pid ")
            .and_then(|s| s.parse().ok())
            .expect("a pid");
        guard.add(gpid);
        assert_eq!(recv_within(&r, LONG), "alive");
        let t = Instant::now();
        p.terminate().unwrap();
        let _ = p.join_timeout(LONG);
        assert_eq!(recv_within(&r, LONG), "not alive", "{method:?}");
        // The wait on the parent ended with it, not at its 60 s limit.
        assert!(t.elapsed() < Duration::from_secs(50), "{method:?}: {:?}", t.elapsed());
    }
}

#[multiproc::worker]
fn parent_attributes() -> (String, i32, bool) {
    let p = parent_process().unwrap();
    (p.name().to_string(), p.pid(), p.is_alive())
}

#[multiproc::worker]
fn middle_reports_attributes() -> ((String, i32, bool), String, i32) {
    let mut c = Process::new(parent_attributes()).start().unwrap();
    let me = current_process();
    (c.join().unwrap(), me.name().to_string(), me.pid())
}

/// CPython's `test_parent_process_attributes`: no parent in the root; in a child, the
/// parent's name and pid; a grandchild's parent is the child.
#[test]
fn parent_process_attributes() {
    assert!(parent_process().is_none());
    let mut c = Process::new(parent_attributes()).start().unwrap();
    let (name, pid, alive) = c.join_timeout(LONG).unwrap();
    assert_eq!(name, "MainProcess");
    assert_eq!(pid, std::process::id() as i32);
    assert!(alive);
    let mut m = Process::new(middle_reports_attributes()).start().unwrap();
    let ((pname, ppid, palive), mname, mpid) = m.join_timeout(LONG).unwrap();
    assert_eq!((pname, ppid, palive), (mname, mpid, true));
}

#[multiproc::worker]
fn serve_until_parent_dies(conn: Connection<String>) {
    let parent = parent_process().unwrap();
    conn.send(&format!("pid {}", current_process().pid())).unwrap();
    loop {
        let objs: [&dyn Waitable; 2] = [&conn, &parent];
        let ready = wait(&objs, Some(Duration::from_secs(120))).unwrap();
        if ready.is_empty() {
            let _ = conn.send(&"timeout".to_string());
            return;
        }
        if ready.contains(&1) {
            let _ = conn.send(&"parent died".to_string());
            return;
        }
        match conn.recv() {
            Ok(m) => conn.send(&format!("got {m}")).unwrap(),
            Err(_) => return,
        }
    }
}

#[multiproc::worker]
fn middle_starts_server(conn: Connection<String>) {
    let _p = Process::new(serve_until_parent_dies(conn)).start().unwrap();
    std::thread::sleep(Duration::from_secs(300));
}

/// A child blocks on "a message or my parent died" (Python's
/// `wait([conn, parent_process().sentinel])`): messages are served, and a SIGKILL of the
/// parent wakes the wait.
#[test]
fn wait_on_a_message_or_the_parents_death() {
    let (mine, theirs) = pipe::<String>().unwrap();
    let mut middle = Process::new(middle_starts_server(theirs)).start().unwrap();
    let mut guard = KillOnDrop(vec![middle.pid()]);
    let gpid: i32 = recv_within(&mine, LONG)
        .strip_prefix("pid ")
        .and_then(|s| s.parse().ok())
        .expect("a pid");
    guard.add(gpid);
    mine.send(&"one".to_string()).unwrap();
    assert_eq!(recv_within(&mine, LONG), "got one");
    mine.send(&"two".to_string()).unwrap();
    assert_eq!(recv_within(&mine, LONG), "got two");
    let t = Instant::now();
    middle.kill().unwrap();
    assert_eq!(recv_within(&mine, LONG), "parent died");
    assert!(t.elapsed() < Duration::from_secs(50), "{:?}", t.elapsed());
    let _ = middle.join_timeout(LONG);
    assert!(eventually(LONG, || !common::pid_exists(gpid) || common::is_zombie(gpid)));
}
