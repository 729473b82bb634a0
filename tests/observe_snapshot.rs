//! `multiproc::snapshot()`: a known situation is reported exactly; a two-lock deadlock between
//! two children is reported as a cycle naming both; the tables print; a fast-path lock (taken
//! without any message) is shown held.

mod common;

use std::time::Duration;

use common::{eventually, Kids};
use multiproc::observe::{ProcId, RunState, StartedBy};
use multiproc::sync::{Event, Lock};
use multiproc::{Pool, Process, Queue, Snapshot};

const LONG: Duration = Duration::from_secs(30);

/// Takes `lock`, says so, and holds it until `release` is set.
#[multiproc::worker]
fn hold(lock: Lock, held: Event, release: Event) {
    let _g = lock.acquire().unwrap();
    held.set().unwrap();
    release.wait_timeout(Duration::from_secs(60)).unwrap();
}

/// Waits for `lock`, then lets it go.
#[multiproc::worker]
fn take_lock(lock: Lock) {
    let _g = lock.acquire_timeout(Duration::from_secs(60)).unwrap();
}

/// A pool task that blocks until `gate` is set.
#[multiproc::worker]
fn gated(gate: Event) -> u32 {
    gate.wait_timeout(Duration::from_secs(60)).unwrap();
    7
}

/// Takes `first`, says so, waits for `go`, then takes `second` (deadlocks with its mirror).
#[multiproc::worker]
fn two_locks(first: Lock, second: Lock, held: Event, go: Event) {
    let _a = first.acquire().unwrap();
    held.set().unwrap();
    go.wait_timeout(Duration::from_secs(60)).unwrap();
    let _b = second.acquire().unwrap();
}

fn snap_until(what: &str, mut f: impl FnMut(&Snapshot) -> bool) -> Snapshot {
    let mut last = None;
    let ok = eventually(LONG, || {
        let s = multiproc::snapshot().unwrap();
        let done = f(&s);
        last = Some(s);
        done
    });
    let last = last.unwrap();
    assert!(ok, "never saw {what}; last snapshot:\n{last}");
    last
}

fn proc_of(p: &Process<impl serde::de::DeserializeOwned>) -> ProcId {
    ProcId(p.proc_id().0)
}

#[test]
fn a_known_situation_is_reported_exactly() {
    let lock = Lock::new().unwrap();
    let held = Event::new().unwrap();
    let release = Event::new().unwrap();
    let mut kids = Kids::new();
    let holder = kids.push(
        Process::new(hold(lock.clone(), held.clone(), release.clone()))
            .name("observe-holder")
            .start()
            .unwrap(),
    );
    assert!(held.wait_timeout(LONG).unwrap());
    let w1 = kids.push(
        Process::new(take_lock(lock.clone()))
            .name("observe-waiter-1")
            .start()
            .unwrap(),
    );
    let w2 = kids.push(
        Process::new(take_lock(lock.clone()))
            .name("observe-waiter-2")
            .start()
            .unwrap(),
    );

    let q: Queue<u32> = Queue::new().unwrap();
    for i in 0..5 {
        q.put(i).unwrap();
    }
    let gate = Event::new().unwrap();
    let pool = Pool::new(2).unwrap();
    let results: Vec<_> = (0..3).map(|_| pool.apply_async(gated(gate.clone())).unwrap()).collect();
    let pool_pids = pool.pids();

    let (hp, p1, p2) = (proc_of(&kids.0[holder]), proc_of(&kids.0[w1]), proc_of(&kids.0[w2]));
    let s = snap_until("the lock with two waiters and the pool with 2 running", |s| {
        let lock_ok = s.object(lock.id()).is_some_and(|o| o.waiters.len() == 2);
        let pool_ok = s
            .pools
            .iter()
            .any(|p| p.workers.len() == 2 && p.workers.iter().all(|w| pool_pids.contains(w)) && p.running == 2);
        lock_ok && pool_ok
    });

    // The lock: held by the child (taken through the shared-memory fast path: no message told
    // the hub), two waiters, oldest first, who have waited some time.
    let row = s.object(lock.id()).unwrap();
    assert_eq!(row.kind, "Lock");
    assert_eq!(row.held_by, vec![hp]);
    assert_eq!(row.creator, ProcId(0));
    let waiting: Vec<ProcId> = row.waiters.iter().map(|w| w.proc).collect();
    assert_eq!(waiting.len(), 2);
    assert!(waiting.contains(&p1) && waiting.contains(&p2), "{waiting:?}");
    assert!(row.waiters.iter().all(|w| w.op == "acquire"));
    assert!(row.handles.contains(&ProcId(0)) && row.handles.contains(&hp));

    // The queue: five items, nobody waiting.
    let qrow = s.object(q.id()).unwrap();
    assert_eq!(qrow.kind, "Queue");
    assert_eq!(qrow.depth, Some(5));
    assert!(qrow.waiters.is_empty());
    assert_eq!(qrow.unfinished, None);

    // The processes: names, parents, start method, state.
    let holder_row = s.process(hp).unwrap();
    assert_eq!(holder_row.name, "observe-holder");
    assert_eq!(holder_row.pid, kids.0[holder].pid());
    assert_eq!(holder_row.parent, ProcId(0));
    assert_eq!(holder_row.state, RunState::Running);
    assert_ne!(holder_row.started_by, StartedBy::Root);
    assert_eq!(s.process(ProcId(0)).unwrap().started_by, StartedBy::Root);

    // The pool: two workers, two tasks running, one waiting, none done.
    let prow = s
        .pools
        .iter()
        .find(|p| p.workers.iter().all(|w| pool_pids.contains(w)) && !p.workers.is_empty())
        .unwrap();
    assert_eq!((prow.running, prow.queued, prow.done), (2, 1, 0), "{prow:?}");
    assert_eq!(prow.owner, ProcId(0));

    // The wait-for graph: both waiters wait for the holder; no cycle among them.
    let g = s.waits();
    assert!(g.edge(p1, hp).is_some() && g.edge(p2, hp).is_some(), "{g}");
    assert!(!g.cycles().iter().any(|c| c.contains(&hp)), "{g}");

    // The tables name the holder and both waiters.
    let text = s.to_string();
    assert!(text.contains("observe-holder"), "{text}");
    assert!(
        text.contains("observe-waiter-1") && text.contains("observe-waiter-2"),
        "{text}"
    );
    assert!(
        text.contains("PROCESSES") && text.contains("OBJECTS") && text.contains("POOLS"),
        "{text}"
    );

    // Let everything finish; the pool then reports its tasks done.
    gate.set().unwrap();
    for r in results {
        assert_eq!(r.get_timeout(LONG).unwrap(), 7);
    }
    snap_until("the pool's three tasks done", |s| {
        s.pools
            .iter()
            .any(|p| p.workers.iter().all(|w| pool_pids.contains(w)) && !p.workers.is_empty() && p.done == 3)
    });
    release.set().unwrap();
    kids.join_all();
    let s = multiproc::snapshot().unwrap();
    let row = s.object(lock.id()).unwrap();
    assert!(row.held_by.is_empty() && row.waiters.is_empty(), "{s}");
    pool.terminate();
}

#[test]
fn a_two_lock_deadlock_is_a_cycle_naming_both() {
    let a = Lock::new().unwrap();
    let b = Lock::new().unwrap();
    let (ha, hb, go) = (Event::new().unwrap(), Event::new().unwrap(), Event::new().unwrap());
    let mut kids = Kids::new();
    kids.push(
        Process::new(two_locks(a.clone(), b.clone(), ha.clone(), go.clone()))
            .name("deadlock-left")
            .start()
            .unwrap(),
    );
    kids.push(
        Process::new(two_locks(b.clone(), a.clone(), hb.clone(), go.clone()))
            .name("deadlock-right")
            .start()
            .unwrap(),
    );
    assert!(ha.wait_timeout(LONG).unwrap() && hb.wait_timeout(LONG).unwrap());
    go.set().unwrap();
    let (left, right) = (proc_of(&kids.0[0]), proc_of(&kids.0[1]));
    let s = snap_until("the deadlock", |s| {
        s.waits()
            .cycles()
            .iter()
            .any(|c| c.contains(&left) && c.contains(&right))
    });
    let g = s.waits();
    let cycle = g.cycles().iter().find(|c| c.contains(&left)).unwrap();
    assert_eq!(cycle.len(), 2, "{g}");
    let el = g.edge(left, right).unwrap();
    let er = g.edge(right, left).unwrap();
    assert_eq!((el.object, er.object), (Some(b.id()), Some(a.id())));
    let text = g.to_string();
    assert!(text.contains("DEADLOCK"), "{text}");
    assert!(
        text.contains("deadlock-left") && text.contains("deadlock-right"),
        "{text}"
    );
    // Kids' drop kills both; the locks are then free again.
    drop(kids);
    let s = multiproc::snapshot().unwrap();
    assert!(!s.waits().cycles().iter().any(|c| c.contains(&left)), "{s}");
}

#[test]
fn a_joinable_queue_shows_its_unfinished_items() {
    let q: multiproc::JoinableQueue<u32> = multiproc::JoinableQueue::new().unwrap();
    for i in 0..3 {
        q.put(i).unwrap();
    }
    let _taken = q.get().unwrap(); // taken, not yet task_done
    let s = multiproc::snapshot().unwrap();
    let row = s.object(q.id()).unwrap();
    assert_eq!(row.kind, "JoinableQueue");
    assert_eq!((row.depth, row.unfinished), (Some(2), Some(3)));
}

#[test]
fn dump_snapshot_writes_without_failing() {
    multiproc::dump_snapshot().unwrap();
}

#[test]
fn snapshots_are_served_on_a_socket_to_the_same_user() {
    let dir = std::env::temp_dir().join(format!("multiproc-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("snap.sock");
    let lock = Lock::new().unwrap();
    let _g = lock.acquire().unwrap();
    let server = multiproc::observe::serve_snapshots(&path).unwrap();
    assert_eq!(server.path(), path.as_path());
    let s = multiproc::observe::read_served_snapshot(&path).unwrap();
    assert_eq!(s.object(lock.id()).unwrap().held_by, vec![ProcId(0)]);
    assert!(s.process(ProcId(0)).is_some());
    // A second one: the server answers every connection.
    assert!(multiproc::observe::read_served_snapshot(&path).is_ok());
    // Refused while the path is taken.
    assert!(matches!(
        multiproc::observe::serve_snapshots(&path),
        Err(multiproc::observe::ServeError::Listen { .. })
    ));
    drop(server);
    assert!(!path.exists());
    assert!(matches!(
        multiproc::observe::read_served_snapshot(&path),
        Err(multiproc::observe::ServeError::Connect { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_garbage_answer_is_an_error_not_a_panic() {
    // A socket that answers with garbage (not a snapshot server).
    let dir = std::env::temp_dir().join(format!("multiproc-garbage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("g.sock");
    let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let t = std::thread::spawn(move || {
        use std::io::Write;
        let (mut s, _) = l.accept().unwrap();
        let _ = s.write_all(&[5, 0, 0, 0, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1]);
    });
    assert!(matches!(
        multiproc::observe::read_served_snapshot(&path),
        Err(multiproc::observe::ServeError::BadAnswer(_))
    ));
    t.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// From a child: takes a snapshot and returns the pid its own row shows and the lock's holder.
#[multiproc::worker]
fn snapshot_in_child(lock: Lock) -> (i32, Vec<u64>) {
    let _g = lock.acquire().unwrap();
    let s = multiproc::snapshot().unwrap();
    let me = s.processes.iter().find(|p| p.name == "observer-child").unwrap().pid;
    (me, s.object(lock.id()).unwrap().held_by.iter().map(|p| p.0).collect())
}

#[test]
fn a_child_takes_a_snapshot_too() {
    let lock = Lock::new().unwrap();
    let mut p = Process::new(snapshot_in_child(lock.clone()))
        .name("observer-child")
        .start()
        .unwrap();
    let me = p.proc_id().0;
    let pid = p.pid();
    let (row_pid, held) = p.join_timeout(LONG).unwrap();
    // A fork-server child may run before the hub has heard its pid from the fork server: its
    // row then says 0 (`starting`) for a moment.
    assert!(row_pid == pid || row_pid == 0, "{row_pid} vs {pid}");
    assert_eq!(held, vec![me]);
}

#[test]
fn a_lock_whose_holder_was_killed_shows_free_and_why() {
    let lock = Lock::new().unwrap();
    let (held, release) = (Event::new().unwrap(), Event::new().unwrap());
    let mut kids = Kids::new();
    kids.push(
        Process::new(hold(lock.clone(), held.clone(), release.clone()))
            .start()
            .unwrap(),
    );
    assert!(held.wait_timeout(LONG).unwrap());
    let victim = proc_of(&kids.0[0]);
    assert_eq!(
        multiproc::snapshot().unwrap().object(lock.id()).unwrap().held_by,
        vec![victim]
    );
    kids.0[0].kill().unwrap();
    let _ = kids.0[0].join_timeout(LONG);
    let s = snap_until("the lock freed", |s| {
        s.object(lock.id()).is_some_and(|o| o.held_by.is_empty())
    });
    let row = s.object(lock.id()).unwrap();
    assert!(row.note.contains("died"), "{row:?}");
    // The dead process is reported as ended, or already forgotten once joined.
    assert!(
        s.process(victim).is_none_or(|p| matches!(p.state, RunState::Ended(_))),
        "{s}"
    );
}

#[test]
fn snapshots_during_churn_never_fail() {
    // Children start and are SIGKILLed while snapshots are taken from another thread.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let taker = std::thread::spawn(move || {
        let mut n = 0;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            let s = multiproc::snapshot().unwrap();
            let _ = s.to_string();
            let _ = s.waits();
            n += 1;
        }
        n
    });
    for _ in 0..10 {
        let lock = Lock::new().unwrap();
        let (held, release) = (Event::new().unwrap(), Event::new().unwrap());
        let mut p = Process::new(hold(lock.clone(), held.clone(), release)).start().unwrap();
        let _ = held.wait_timeout(LONG);
        p.kill().unwrap();
        let _ = p.join_timeout(LONG);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(taker.join().unwrap() > 0);
}

/// Floods the hub with pool counters for 10,000 made-up pools, then says it is done and waits.
#[multiproc::worker]
fn flood_pool_stats(done: Event, release: Event) {
    use multiproc::wire::proto::{Cast, ToHub};
    use multiproc::wire::snapshot::PoolStats;
    let conn = multiproc::runtime::raw_hub_connection().unwrap();
    let mut bytes = Vec::new();
    for pool in 0..10_000u64 {
        let st = PoolStats {
            workers: vec![1; 10],
            queued: pool,
            ..PoolStats::default()
        };
        bytes.extend(multiproc::wire::encode(&ToHub::Cast(Cast::PoolStats { pool, stats: Some(st) })).unwrap());
    }
    multiproc::sys::io::send_all(std::os::fd::AsFd::as_fd(&conn), &bytes, &[]).unwrap();
    // A ping on the same connection: once answered, every cast before it was handled.
    let ping = multiproc::wire::encode(&ToHub::Call {
        id: 1,
        op: multiproc::wire::proto::Op::Ping,
    })
    .unwrap();
    multiproc::sys::io::send_all(std::os::fd::AsFd::as_fd(&conn), &ping, &[]).unwrap();
    let mut f = std::fs::File::from(conn);
    let _ = std::io::Read::read(&mut f, &mut [0u8; 64]);
    done.set().unwrap();
    release.wait_timeout(Duration::from_secs(60)).unwrap();
}

#[test]
fn a_process_flooding_pool_counters_is_bounded_and_forgotten_when_it_dies() {
    let (done, release) = (Event::new().unwrap(), Event::new().unwrap());
    let mut kids = Kids::new();
    kids.push(
        Process::new(flood_pool_stats(done.clone(), release.clone()))
            .start()
            .unwrap(),
    );
    assert!(done.wait_timeout(LONG).unwrap());
    let flooder = proc_of(&kids.0[0]);
    let s = multiproc::snapshot().unwrap();
    let n = s.pools.iter().filter(|p| p.owner == flooder).count();
    assert_eq!(n, 256);
    // A real pool still shows up.
    let pool = Pool::new(1).unwrap();
    let pids = pool.pids();
    snap_until("the real pool", |s| s.pools.iter().any(|p| p.workers == pids));
    // The flooder dies: its rows go.
    kids.0[0].kill().unwrap();
    let _ = kids.0[0].join_timeout(LONG);
    snap_until("the flooder's pools gone", |s| {
        !s.pools.iter().any(|p| p.owner == flooder)
    });
    pool.terminate();
}
