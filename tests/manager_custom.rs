//! Custom shared objects (Python's `BaseManager.register`): a user type served by the
//! Manager's server process and called through a typed `Proxy<T>` from any process. Ported
//! from CPython's `_TestMyManager` (`FooBar` with `f`, and `g` raising), plus the fault cases:
//! a panicking method fails only its call; a killed server, a shut-down Manager and a dead
//! creator give every caller a clear error, never a hang.

mod common;

use std::time::{Duration, Instant};

use common::{eventually, pid_exists, KillOnDrop};
use multiproc::manager::{Manager, Proxy, ProxyError, SharedObject};
use multiproc::{active_children, Process};
use serde::{Deserialize, Serialize};

const LONG: Duration = Duration::from_secs(60);

#[derive(Serialize, Deserialize)]
struct FooBar;

#[derive(Debug, Serialize, Deserialize)]
enum FooCall {
    F,
    G,
}

impl SharedObject for FooBar {
    type Call = FooCall;
    type Reply = String;
    fn call(&mut self, c: FooCall) -> String {
        match c {
            FooCall::F => "f()".into(),
            FooCall::G => panic!("g()"),
        }
    }
}
multiproc::register_shared!(FooBar);

/// CPython's `test_mymanager`: `foo.f()` answers, `foo.g()` raises in the caller, and the
/// server goes on serving.
#[test]
fn registered_type_methods_and_a_raising_method() {
    let m = Manager::new().unwrap();
    let foo = m.shared(FooBar).unwrap();
    assert_eq!(foo.call(FooCall::F).unwrap(), "f()");
    match foo.call(FooCall::G) {
        Err(ProxyError::Panicked(msg)) => assert!(msg.contains("g()"), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(foo.call(FooCall::F).unwrap(), "f()");
    m.shutdown().unwrap();
}

#[derive(Default, Serialize, Deserialize)]
struct Counter {
    n: u64,
    calls: u64,
}

#[derive(Debug, Serialize, Deserialize)]
enum CounterCall {
    Add(u64),
    Get,
    Sleep(u64),
}

impl SharedObject for Counter {
    type Call = CounterCall;
    type Reply = (u64, u64);
    fn call(&mut self, c: CounterCall) -> (u64, u64) {
        self.calls += 1;
        match c {
            // A read-modify-write that would lose updates if two calls ran at once.
            CounterCall::Add(k) => {
                let seen = self.n;
                std::thread::yield_now();
                self.n = seen + k;
            }
            CounterCall::Get => {}
            CounterCall::Sleep(ms) => std::thread::sleep(Duration::from_millis(ms)),
        }
        (self.n, self.calls)
    }
}
multiproc::register_shared!(Counter);

#[multiproc::worker]
fn add_many(c: Proxy<Counter>, times: u64) -> u64 {
    for _ in 0..times {
        c.call(CounterCall::Add(1)).unwrap();
    }
    c.call(CounterCall::Get).unwrap().0
}

/// Calls from many processes are served one at a time: no update is lost.
#[test]
fn a_proxy_passed_to_children_serves_them_all() {
    let m = Manager::new().unwrap();
    let c = m.shared(Counter::default()).unwrap();
    let mut kids: Vec<_> = (0..4)
        .map(|_| Process::new(add_many(c.clone(), 100)).start().unwrap())
        .collect();
    for k in &mut kids {
        k.join_timeout(LONG).unwrap();
    }
    assert_eq!(c.call(CounterCall::Get).unwrap(), (400, 405));
    m.shutdown().unwrap();
}

/// Objects of different types of one Manager share its server.
#[test]
fn objects_of_one_manager_share_one_server() {
    let m = Manager::new().unwrap();
    let a = m.shared(Counter::default()).unwrap();
    let b = m.shared(FooBar).unwrap();
    let c = m.shared(Counter { n: 10, calls: 0 }).unwrap();
    assert_eq!(a.server_pid(), b.server_pid());
    assert_eq!(a.server_pid(), c.server_pid());
    a.call(CounterCall::Add(1)).unwrap();
    assert_eq!(c.call(CounterCall::Get).unwrap(), (10, 1));
    assert_eq!(a.call(CounterCall::Get).unwrap(), (1, 2));
    let other = Manager::new().unwrap();
    let d = other.shared(Counter::default()).unwrap();
    assert_ne!(d.server_pid(), a.server_pid());
    m.shutdown().unwrap();
    other.shutdown().unwrap();
}

#[test]
fn call_timeout_gives_up_without_breaking_the_proxy() {
    let m = Manager::new().unwrap();
    let c = m.shared(Counter::default()).unwrap();
    let t = Instant::now();
    let r = c.call_timeout(CounterCall::Sleep(1500), Duration::from_millis(200));
    assert_eq!(r, Err(ProxyError::Timeout));
    assert!(t.elapsed() >= Duration::from_millis(200));
    // The slow call still ran; the next call waits behind it and answers.
    assert_eq!(c.call_timeout(CounterCall::Get, LONG).unwrap(), (0, 2));
    m.shutdown().unwrap();
}

#[multiproc::worker]
fn call_slowly(c: Proxy<Counter>) -> String {
    match c.call(CounterCall::Sleep(300_000)) {
        Ok(v) => format!("answered {v:?}"),
        Err(e) => format!("{e:?}"),
    }
}

/// Fault: the server is SIGKILLed while a child is blocked in a call: the call fails with
/// `ServerGone` (not a hang), and so does every later call, at once.
#[test]
fn a_killed_server_fails_blocked_and_later_calls() {
    let m = Manager::new().unwrap();
    let c = m.shared(Counter::default()).unwrap();
    let server = c.server_pid();
    let _guard = KillOnDrop(vec![server]);
    let mut caller = Process::new(call_slowly(c.clone())).start().unwrap();
    // Wait until the slow call is running in the server (it counts calls).
    std::thread::sleep(Duration::from_millis(200));
    multiproc::sys::proc::send_signal(server, multiproc::sys::signal::SIGKILL).unwrap();
    let got = caller.join_timeout(LONG).unwrap();
    assert!(got.starts_with("ServerGone"), "{got}");
    let t = Instant::now();
    assert!(matches!(c.call(CounterCall::Get), Err(ProxyError::ServerGone(_))));
    assert!(t.elapsed() < Duration::from_secs(10));
    // The Manager starts a new server for new objects.
    let fresh = m.shared(Counter::default()).unwrap();
    assert_ne!(fresh.server_pid(), server);
    assert_eq!(fresh.call(CounterCall::Get).unwrap(), (0, 1));
    m.shutdown().unwrap();
}

#[multiproc::worker]
fn call_once(c: Proxy<Counter>) -> String {
    match c.call(CounterCall::Get) {
        Ok(v) => format!("answered {v:?}"),
        Err(e) => format!("{e:?}"),
    }
}

/// After `shutdown`, calls in every process fail with `ManagerGone`, and the server ends.
#[test]
fn shutdown_ends_the_server_and_every_call_says_so() {
    let m = Manager::new().unwrap();
    let c = m.shared(Counter::default()).unwrap();
    let server = c.server_pid();
    let _guard = KillOnDrop(vec![server]);
    m.shutdown().unwrap();
    assert_eq!(c.call(CounterCall::Get), Err(ProxyError::ManagerGone));
    let mut p = Process::new(call_once(c.clone())).start().unwrap();
    assert_eq!(p.join_timeout(LONG).unwrap(), "ManagerGone");
    assert!(matches!(m.shared(FooBar), Err(ProxyError::ManagerGone)));
    assert!(eventually(LONG, || !pid_exists(server) || common::is_zombie(server)));
}

#[multiproc::worker]
fn make_and_hand_back(m: Manager, back: multiproc::Queue<Proxy<Counter>>) {
    let c = m.shared(Counter { n: 5, calls: 0 }).unwrap();
    back.put(c).unwrap();
    std::thread::sleep(Duration::from_secs(300));
}

/// Fault: a child that created an object (its server is the child's) is SIGKILLed: the server
/// notices its parent's death and ends; the root's proxy then fails with `ServerGone`.
#[test]
fn a_server_ends_with_the_process_that_started_it() {
    let m = Manager::new().unwrap();
    let q = multiproc::Queue::<Proxy<Counter>>::new().unwrap();
    let mut creator = Process::new(make_and_hand_back(m.clone(), q.clone())).start().unwrap();
    let mut guard = KillOnDrop(vec![creator.pid()]);
    let c = q.get_timeout(LONG).unwrap();
    guard.add(c.server_pid());
    assert_eq!(c.call(CounterCall::Get).unwrap(), (5, 1));
    creator.kill().unwrap();
    let _ = creator.join_timeout(LONG);
    assert!(eventually(LONG, || matches!(
        c.call_timeout(CounterCall::Get, Duration::from_secs(5)),
        Err(ProxyError::ServerGone(_))
    )));
    m.shutdown().unwrap();
}

/// Garbage: a message of another type sent to the server's mailbox is skipped; the server
/// goes on serving.
#[test]
fn garbage_in_the_servers_mailbox_is_skipped() {
    let m = Manager::new().unwrap();
    let c = m.shared(Counter::default()).unwrap();
    let server = active_children()
        .unwrap()
        .into_iter()
        .find(|p| p.pid() == c.server_pid())
        .expect("the server is a child of this process");
    server.addr::<String>().send(&"not a request".to_string()).unwrap();
    server.addr::<Vec<u8>>().send(&vec![0xc1; 64]).unwrap();
    assert_eq!(c.call(CounterCall::Add(2)).unwrap(), (2, 1));
    m.shutdown().unwrap();
}

/// The example `examples/manager_custom.rs` runs and prints what its header promises.
/// `cargo test` builds the examples next to the test binaries; when only this test file was
/// built (`cargo test --test manager_custom`) the example is not there and this says so.
#[test]
fn the_manager_custom_example_runs() {
    let exe = std::env::current_exe().unwrap();
    let Some(example) = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("examples").join("manager_custom"))
        .filter(|p| p.exists())
    else {
        eprintln!("examples/manager_custom is not built (run the whole `cargo test`); not run");
        return;
    };
    let out = std::process::Command::new(example).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(&lines[..2], ["7", "56"], "{stdout}");
    assert!(
        stdout.contains("div(1, 0) failed in the server: attempt to divide by zero"),
        "{stdout}"
    );
    assert!(stdout.contains("3 processes recorded 3000 words"), "{stdout}");
    assert!(stdout.contains("after shutdown: ManagerGone"), "{stdout}");
}

#[derive(Serialize, Deserialize)]
struct Blob;

impl SharedObject for Blob {
    type Call = usize;
    type Reply = String;
    fn call(&mut self, n: usize) -> String {
        "x".repeat(n)
    }
}
multiproc::register_shared!(Blob);

/// A reply larger than a frame fails that call with a message that says so (never a caller
/// waiting for an answer that cannot be sent); the server goes on.
#[test]
fn a_reply_over_the_frame_limit_fails_that_call_only() {
    let m = Manager::new().unwrap();
    let b = m.shared(Blob).unwrap();
    let big = multiproc::runtime::max_frame_size() + 1;
    match b.call_timeout(big, LONG) {
        Err(ProxyError::Codec(why)) => assert!(why.contains("maximum frame size"), "{why}"),
        other => panic!("{:?}", other.map(|s| s.len())),
    }
    assert_eq!(b.call(3).unwrap(), "xxx");
    m.shutdown().unwrap();
}
