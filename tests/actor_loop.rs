//! The actor type: `#[worker]` on an `impl` with `fn handle`, its hooks, its loop and its exit
//! reasons (normal, panic with message and location, killed by a signal).

mod common;

use std::time::Duration;

use common::Kids;
use multiproc::actor::{ActorContext, Flow, StopReason};
use multiproc::{AskError, ExitStatus, JoinError, Process, Queue, ReplyTo};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
enum Msg {
    Add(u64),
    Get(ReplyTo<u64>),
    Handled(ReplyTo<u64>),
    Boom,
    Stop,
}

/// A counter that reports its hooks on a queue.
#[derive(Debug, Serialize, Deserialize)]
struct Counter {
    n: u64,
    log: Queue<String>,
}

#[multiproc::worker]
impl Counter {
    fn init(&mut self, cx: &mut ActorContext<Msg>) {
        self.log.put(format!("init {}", cx.me().pid())).unwrap();
    }

    fn handle(&mut self, msg: Msg, cx: &mut ActorContext<Msg>) -> Flow {
        match msg {
            Msg::Add(k) => self.n += k,
            Msg::Get(r) => {
                let _ = r.send(&self.n);
            }
            Msg::Handled(r) => {
                let _ = r.send(&cx.handled());
            }
            Msg::Boom => panic!("boom at {}", self.n),
            Msg::Stop => return Flow::Stop,
        }
        Flow::Continue
    }

    fn terminate(&mut self, reason: &StopReason, _cx: &mut ActorContext<Msg>) {
        self.log.put(format!("terminate {reason:?}")).unwrap();
    }
}

/// An actor whose handler takes no context and returns nothing; it stops through the
/// context's `stop` in no case, so it ends only by a signal.
#[derive(Debug, Serialize, Deserialize)]
struct Echo;

#[multiproc::worker]
impl Echo {
    fn handle(&mut self, msg: (String, ReplyTo<String>)) {
        let _ = msg.1.send(&format!("echo {}", msg.0));
    }
}

fn log_line(q: &Queue<String>) -> String {
    q.get_timeout(Duration::from_secs(30)).expect("a hook did not report")
}

#[test]
fn init_handle_ask_and_a_normal_stop_return_the_state() {
    let log = Queue::<String>::new().unwrap();
    let mut kids = Kids::new();
    let i = kids.push(Process::new(Counter { n: 1, log: log.clone() }).start().unwrap());
    let p = &kids.0[i];
    assert_eq!(log_line(&log), format!("init {}", p.pid()));
    let addr = p.addr::<Msg>();
    addr.send(&Msg::Add(2)).unwrap();
    addr.send(&Msg::Add(3)).unwrap();
    assert_eq!(addr.ask_timeout(Msg::Get, Duration::from_secs(30)).unwrap(), 6);
    assert_eq!(addr.ask_timeout(Msg::Handled, Duration::from_secs(30)).unwrap(), 4);
    // A message of another type is skipped; the actor goes on.
    p.addr::<String>().send(&"not a Msg".to_string()).unwrap();
    assert_eq!(addr.ask_timeout(Msg::Get, Duration::from_secs(30)).unwrap(), 6);
    addr.send(&Msg::Stop).unwrap();
    let end = kids.0[i].join_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(end.n, 6);
    assert_eq!(log_line(&log), "terminate Normal");
    assert_eq!(kids.0[i].exit_status(), Some(ExitStatus::Exited(0)));
}

#[test]
fn a_panicking_handler_runs_terminate_and_the_process_reports_the_panic() {
    let log = Queue::<String>::new().unwrap();
    let mut kids = Kids::new();
    let i = kids.push(Process::new(Counter { n: 7, log: log.clone() }).start().unwrap());
    assert!(log_line(&log).starts_with("init "));
    kids.0[i].send(&Msg::Boom).unwrap();
    let line = log_line(&log);
    assert!(line.starts_with("terminate Panicked"), "{line}");
    assert!(line.contains("boom at 7"), "{line}");
    assert!(line.contains("actor_loop.rs"), "the location is reported: {line}");
    match kids.0[i].join_timeout(Duration::from_secs(30)) {
        Err(JoinError::Panicked { message, location }) => {
            assert_eq!(message, "boom at 7");
            assert!(location.is_some_and(|l| l.contains("actor_loop.rs")));
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    assert!(matches!(kids.0[i].exit_status(), Some(ExitStatus::Panicked { .. })));
}

#[test]
fn a_killed_actor_reports_the_signal_and_asks_are_gone() {
    let mut kids = Kids::new();
    let i = kids.push(Process::new(Echo).start().unwrap());
    let addr = kids.0[i].addr::<(String, ReplyTo<String>)>();
    let got = addr
        .ask_timeout(|r| ("hi".to_string(), r), Duration::from_secs(30))
        .unwrap();
    assert_eq!(got, "echo hi");
    kids.0[i].kill().unwrap();
    match kids.0[i].join_timeout(Duration::from_secs(30)) {
        Err(JoinError::Signaled(9)) => {}
        other => panic!("expected SIGKILL, got {other:?}"),
    }
    assert_eq!(kids.0[i].exit_status(), Some(ExitStatus::Signaled(9)));
    let err = addr
        .ask_timeout(|r| ("again".to_string(), r), Duration::from_secs(30))
        .unwrap_err();
    assert!(matches!(err, AskError::Gone), "{err:?}");
}

/// Sleeps until killed.
#[multiproc::worker]
fn sleeper() {
    std::thread::sleep(Duration::from_secs(3600));
}

/// Watches a process from `init` and stops when its `Down` arrives.
#[derive(Debug, Serialize, Deserialize)]
struct Watcher {
    target: i32,
    log: Queue<String>,
}

#[multiproc::worker]
impl Watcher {
    fn init(&mut self) {
        multiproc::monitor(self.target).unwrap();
        self.log.put("watching".into()).unwrap();
    }

    fn handle(&mut self, _msg: ()) {}

    fn signal(&mut self, sig: multiproc::Signal) -> Flow {
        if let multiproc::Signal::Down(d) = sig {
            self.log.put(format!("down {} {:?}", d.pid, d.reason)).unwrap();
        }
        Flow::Stop
    }
}

#[test]
fn monitor_signals_reach_the_signal_hook() {
    let log = Queue::<String>::new().unwrap();
    let mut kids = Kids::new();
    let target = kids.push(Process::new(sleeper()).start().unwrap());
    let target_pid = kids.0[target].pid();
    let mut watchers = Kids::new();
    let w = watchers.push(
        Process::new(Watcher {
            target: target_pid,
            log: log.clone(),
        })
        .start()
        .unwrap(),
    );
    assert_eq!(log_line(&log), "watching");
    kids.0[target].kill().unwrap();
    let line = log_line(&log);
    assert_eq!(line, format!("down {target_pid} Ended(Signaled(9))"));
    let end = watchers.0[w].join_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(end.target, target_pid);
}
