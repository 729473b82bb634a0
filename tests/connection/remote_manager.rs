//! Remote managers between separately started programs: a server program serves a Queue, a
//! Lock, a Dict and a JoinableQueue; client programs (this test binary re-run as plain
//! `std::process::Command`s) use them over a Unix socket and over TCP. A client killed while it
//! holds the Lock, or an unfinished JoinableQueue item, is cleaned up like a dead child; when the
//! server ends, clients get `ManagerGone`.

#[path = "../common/mod.rs"]
mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{read_line_with, KillOnDrop};
use multiproc::connection::{Address, ManagerServer, RemoteError, RemoteManager};
use multiproc::{Dict, JoinableQueue, Lock, Manager, ManagerError, Queue};

const KEY: &str = "remote manager test key";

fn program(name: &str, addr: &Address) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args(["--exact", name, "--ignored", "--nocapture", "--test-threads=1"])
        .env("MULTIPROC_TEST_HELPER", name)
        .env("MP_ADDR", addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn connect_from_env() -> RemoteManager {
    let addr: Address = std::env::var("MP_ADDR").expect("MP_ADDR").parse().expect("address");
    RemoteManager::builder().authkey(KEY).connect(&addr).expect("connect")
}

/// A client program: 200 increments of `counts["n"]` under the remote lock, from two threads,
/// and 50 items put on the remote queue.
#[test]
#[ignore]
fn counting_client() {
    if !common::is_helper("counting_client") {
        return;
    }
    let rm = connect_from_env();
    let lock: Lock = rm.get("lock").unwrap();
    let counts: Dict<String, i64> = rm.get("counts").unwrap();
    let q: Queue<String> = rm.get("queue").unwrap();
    let pid = std::process::id();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..100 {
                    let _g = lock.acquire().unwrap();
                    // A read-modify-write that races without the lock.
                    let n = counts.get(&"n".to_string()).unwrap().unwrap_or(0);
                    counts.insert("n".to_string(), n + 1).unwrap();
                }
            });
        }
    });
    for i in 0..50 {
        q.put(format!("{pid}:{i}")).unwrap();
    }
    println!("DONE");
}

fn two_clients_share_a_queue_a_lock_and_a_dict(address: Address) {
    let m = Manager::new().unwrap();
    let counts = m.dict::<String, i64>().unwrap();
    let lock = Lock::new().unwrap();
    let q: Queue<String> = Queue::new().unwrap();
    let server = ManagerServer::builder()
        .authkey(KEY)
        .register("counts", &counts)
        .register("lock", &lock)
        .register("queue", &q)
        .bind(address)
        .unwrap();
    let mut kill = KillOnDrop::default();
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let c = program("counting_client", server.address()).spawn().unwrap();
            kill.add(c.id() as i32);
            c
        })
        .collect();
    // The server program uses the same objects at the same time.
    for _ in 0..100 {
        let _g = lock.acquire().unwrap();
        let n = counts.get(&"n".to_string()).unwrap().unwrap_or(0);
        counts.insert("n".to_string(), n + 1).unwrap();
    }
    for c in clients {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("DONE"),
            "client failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        counts.get(&"n".to_string()).unwrap(),
        Some(500),
        "lost updates: the lock did not exclude"
    );
    let mut items = Vec::new();
    while let Ok(it) = q.get_timeout(Duration::from_secs(5)) {
        items.push(it);
        if items.len() == 100 {
            break;
        }
    }
    assert_eq!(items.len(), 100);
    // Per-producer order holds.
    for pid in items
        .iter()
        .map(|s| s.split(':').next().unwrap().to_string())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let seq: Vec<u32> = items
            .iter()
            .filter(|s| s.starts_with(&format!("{pid}:")))
            .map(|s| s.split(':').nth(1).unwrap().parse().unwrap())
            .collect();
        assert_eq!(seq, (0..50).collect::<Vec<_>>());
    }
    assert_eq!(server.refused(), 0, "{:?}", server.last_refusal());
}

#[test]
fn two_programs_share_objects_over_a_unix_socket() {
    two_clients_share_a_queue_a_lock_and_a_dict(Address::unix_temp().unwrap());
}

#[test]
fn two_programs_share_objects_over_tcp() {
    two_clients_share_a_queue_a_lock_and_a_dict(Address::tcp_loopback());
}

/// A client program that takes the lock and a JoinableQueue item, says so, and waits to be
/// killed.
#[test]
#[ignore]
fn holding_client() {
    if !common::is_helper("holding_client") {
        return;
    }
    let rm = connect_from_env();
    let lock: Lock = rm.get("lock").unwrap();
    let jq: JoinableQueue<u32> = rm.get("jobs").unwrap();
    lock.acquire().unwrap().forget();
    let item = jq.get().unwrap();
    println!("HOLDING {item}");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_killed_remote_client_releases_its_lock_and_its_unfinished_items() {
    let lock = Lock::new().unwrap();
    let jq: JoinableQueue<u32> = JoinableQueue::new().unwrap();
    jq.put(42).unwrap();
    let server = ManagerServer::builder()
        .authkey(KEY)
        .register("lock", &lock)
        .register("jobs", &jq)
        .bind(Address::unix_temp().unwrap())
        .unwrap();
    let mut client = program("holding_client", server.address()).spawn().unwrap();
    let mut kill = KillOnDrop::default();
    kill.add(client.id() as i32);
    let mut out = std::io::BufReader::new(client.stdout.take().unwrap());
    let held = read_line_with(&mut out, "HOLDING ").expect("the client did not take the lock");
    assert_eq!(held, "42");
    assert!(
        lock.try_acquire().unwrap().is_none(),
        "the remote client should hold the lock"
    );
    let t = Instant::now();
    multiproc::sys::proc::send_signal(client.id() as i32, multiproc::sys::signal::SIGKILL).unwrap();
    let g = lock
        .acquire_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("the dead client's lock was not released");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "released only after {:?}",
        t.elapsed()
    );
    assert!(g.previous_owner_died(), "the next owner must be told");
    drop(g);
    // The item it took comes back, and join completes once it is done.
    assert_eq!(jq.get_timeout(Duration::from_secs(10)).unwrap(), 42);
    jq.task_done().unwrap();
    jq.join_timeout(Duration::from_secs(10)).unwrap();
    let _ = client.wait();
    let _ = out.lines().count();
}

/// A client program that keeps using a remote dict until it is told the manager is gone.
#[test]
#[ignore]
fn outliving_client() {
    if !common::is_helper("outliving_client") {
        return;
    }
    let rm = connect_from_env();
    let d: Dict<String, u32> = rm.get("d").unwrap();
    d.insert("x".into(), 1).unwrap();
    println!("CONNECTED");
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        match d.get(&"x".to_string()) {
            Ok(_) => std::thread::sleep(Duration::from_millis(20)),
            Err(ManagerError::ManagerGone) => {
                println!("GONE");
                return;
            }
            Err(e) => {
                println!("OTHER {e:?}");
                return;
            }
        }
    }
    println!("STILL THERE");
}

#[test]
fn clients_get_manager_gone_when_the_server_shuts_down() {
    let m = Manager::new().unwrap();
    let d = m.dict::<String, u32>().unwrap();
    let server = ManagerServer::builder()
        .authkey(KEY)
        .register("d", &d)
        .bind(Address::tcp_loopback())
        .unwrap();
    let mut client = program("outliving_client", server.address()).spawn().unwrap();
    let mut kill = KillOnDrop::default();
    kill.add(client.id() as i32);
    let mut out = std::io::BufReader::new(client.stdout.take().unwrap());
    read_line_with(&mut out, "CONNECTED").expect("the client did not connect");
    assert_eq!(
        d.get(&"x".to_string()).unwrap(),
        Some(1),
        "the remote insert reached our dict"
    );
    let t = Instant::now();
    server.shutdown();
    let verdict = read_line_with(&mut out, "").expect("the client said nothing");
    assert!(verdict.contains("GONE"), "the client saw {verdict:?}");
    assert!(t.elapsed() < Duration::from_secs(10));
    let _ = client.wait();
}

#[test]
fn names_kinds_and_keys_are_checked() {
    let lock = Lock::new().unwrap();
    let q: Queue<u32> = Queue::new().unwrap();
    let server = ManagerServer::builder()
        .authkey(KEY)
        .register("lock", &lock)
        .register("q", &q)
        .bind(Address::unix_temp().unwrap())
        .unwrap();
    let rm = RemoteManager::builder().authkey(KEY).connect(server.address()).unwrap();
    let mut names = rm.names();
    names.sort();
    assert_eq!(names[0].0, "lock");
    assert_eq!(names[1].0, "q");
    match rm.get::<Lock>("nothing") {
        Err(RemoteError::UnknownName { served, .. }) => assert!(served.contains("lock") && served.contains("q")),
        other => panic!("{other:?}"),
    }
    match rm.get::<Queue<u32>>("lock") {
        Err(RemoteError::WrongKind { served, asked, .. }) => {
            assert!(served.ends_with("Lock") && asked.ends_with("Queue"), "{served} {asked}")
        }
        other => panic!("{other:?}"),
    }
    // The right kind works, from several threads (each opens its own connection).
    let rq: Queue<u32> = rm.get("q").unwrap();
    std::thread::scope(|s| {
        for i in 0..3 {
            let rq = rq.clone();
            s.spawn(move || rq.put(i).unwrap());
        }
    });
    let mut got: Vec<u32> = (0..3)
        .map(|_| q.get_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    got.sort();
    assert_eq!(got, vec![0, 1, 2]);
    // A remote handle stays in the process that connected.
    let err = multiproc::wire::encode(&rq).expect_err("a remote handle must not be sent on");
    assert!(err.to_string().contains("remote manager"), "{err}");
    // A wrong key is refused, and the server keeps serving.
    match RemoteManager::builder().authkey("wrong").connect(server.address()) {
        Err(RemoteError::Connect(_)) => {}
        other => panic!("{other:?}"),
    }
    assert!(multiproc::sync::Lock::try_acquire(&rm.get::<Lock>("lock").unwrap())
        .unwrap()
        .is_some());
    assert!(server.refused() >= 1);
}

#[test]
fn a_relay_refuses_objects_that_are_not_served_and_survives_garbage() {
    use multiproc::wire::proto::{FromHub, HubError, ObjId, ObjOp, Op, ToHub};
    use multiproc::wire::sync_ops::SyncOp;
    let served = Lock::new().unwrap();
    let secret = Lock::new().unwrap();
    let server = ManagerServer::builder()
        .authkey(KEY)
        .register("lock", &served)
        .bind(Address::unix_temp().unwrap())
        .unwrap();
    // Speak the protocol by hand: greeting, then a call on an object that is not served.
    let conn = multiproc::connection::Client::builder()
        .authkey(KEY)
        .connect::<()>(server.address())
        .unwrap();
    let _hello = conn.recv_bytes_timeout(Duration::from_secs(10)).unwrap();
    let probe = ToHub::Call {
        id: 1,
        op: Op::Object {
            obj: ObjId(multiproc_test_id(&secret)),
            op: ObjOp::Sync(SyncOp::Locked),
        },
    };
    let frame = multiproc::wire::encode(&probe).unwrap();
    conn.send_bytes(&frame[4..]).unwrap();
    let reply: FromHub = multiproc::wire::decode(&conn.recv_bytes_timeout(Duration::from_secs(10)).unwrap()).unwrap();
    match reply {
        FromHub::Reply {
            result: Err(HubError::Invalid(why)),
            ..
        } => assert!(why.contains("registered"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Garbage ends that connection only.
    conn.send_bytes(b"\xc1\xc1 not messagepack").unwrap();
    assert!(conn.recv_bytes_timeout(Duration::from_secs(10)).is_err());
    let rm = RemoteManager::builder().authkey(KEY).connect(server.address()).unwrap();
    let l: Lock = rm.get("lock").unwrap();
    drop(
        l.acquire_timeout(Duration::from_secs(10))
            .unwrap()
            .expect("still served"),
    );
    drop(secret);
}

/// The id of a handle, read from its encoding (a test that probes ids needs it).
fn multiproc_test_id(lock: &Lock) -> u64 {
    // A handle is encoded as a struct of one field: the object reference, `(id, secret)`.
    let bytes = multiproc::wire::encode(lock).unwrap();
    let ((v, _secret),): ((u64, u64),) = multiproc::wire::decode(&bytes[4..]).unwrap();
    v
}

#[test]
fn max_clients_bounds_the_relays_and_a_slot_frees_when_a_client_leaves() {
    let lock = Lock::new().unwrap();
    let server = ManagerServer::builder()
        .authkey(KEY)
        .max_clients(1)
        .register("lock", &lock)
        .bind(Address::unix_temp().unwrap())
        .unwrap();
    let first = RemoteManager::builder().authkey(KEY).connect(server.address()).unwrap();
    assert!(common::eventually(Duration::from_secs(10), || server.clients() == 1));
    // A second client waits in the backlog and gives up at its own timeout.
    let second = RemoteManager::builder()
        .authkey(KEY)
        .timeout(Duration::from_millis(500))
        .connect(server.address());
    assert!(matches!(second, Err(RemoteError::Connect(_))), "{second:?}");
    // When the first leaves, the next one gets in.
    drop(first);
    let third = std::thread::spawn({
        let addr = server.address().clone();
        move || {
            RemoteManager::builder()
                .authkey(KEY)
                .timeout(Duration::from_secs(20))
                .connect(&addr)
                .map(|_| ())
        }
    });
    assert!(third.join().unwrap().is_ok());
}
