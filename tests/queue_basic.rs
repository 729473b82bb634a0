//! Queue through real processes: a port of CPython's `_TestQueue`
//! (`Lib/test/_test_multiprocessing.py`): the put and get tables with their timings, Full and
//! Empty, `qsize`, FIFO across a child, closed-queue errors, and a failed serialisation that
//! leaves the queue usable.

mod common;
use common::Reap;

use std::time::{Duration, Instant};

use multiproc::{pipe, Connection, GetError, Process, PutError, Queue};
use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};

const T1: Duration = Duration::from_millis(100);
const T2: Duration = Duration::from_millis(200);
const T3: Duration = Duration::from_millis(300);
const SLACK: Duration = Duration::from_secs(3);

/// Runs `f`, checks that it took about `expected` (never less; at most `expected + SLACK`).
fn timed<R>(expected: Duration, f: impl FnOnce() -> R) -> R {
    let t = Instant::now();
    let r = f();
    let el = t.elapsed();
    assert!(el >= expected, "returned after {el:?}, before {expected:?}");
    assert!(el < expected + SLACK, "took {el:?}, expected about {expected:?}");
    r
}

/// CPython's `_test_put`: waits for the go, then empties the queue, then says so.
#[multiproc::worker]
fn take_six(q: Queue<u32>, go: Connection<()>) {
    go.recv().unwrap();
    for _ in 0..6 {
        q.get().unwrap();
    }
    go.send(&()).unwrap();
}

#[test]
fn put_table() {
    const MAXSIZE: usize = 6;
    let q = Queue::<u32>::bounded(MAXSIZE).unwrap();
    let (go, child_go) = pipe::<()>().unwrap();
    let mut p = Reap(
        Process::new(take_six(q.clone(), child_go))
            .daemon(true)
            .start()
            .unwrap(),
    );

    assert!(q.empty().unwrap());
    assert!(!q.full().unwrap());
    q.put(1).unwrap();
    q.put(2).unwrap();
    q.put_timeout(3, Duration::from_secs(10)).unwrap();
    q.try_put(4).unwrap();
    q.put_timeout(5, Duration::ZERO).unwrap();
    q.try_put(6).unwrap();
    assert!(!q.empty().unwrap());
    assert!(q.full().unwrap());
    assert_eq!(q.qsize().unwrap(), 6);

    let full = |r: Result<(), PutError<u32>>| match r {
        Err(PutError::Full(7)) => {}
        other => panic!("expected Full(7), got {other:?}"),
    };
    full(timed(Duration::ZERO, || q.try_put(7)));
    full(timed(Duration::ZERO, || q.put_timeout(7, Duration::ZERO)));
    full(timed(T1, || q.put_timeout(7, T1)));
    full(timed(T3, || q.put_timeout(7, T3)));
    assert_eq!(q.try_put(7).unwrap_err().into_inner(), 7);

    go.send(&()).unwrap();
    go.recv().unwrap();
    assert!(q.empty().unwrap());
    assert!(!q.full().unwrap());
    p.0.join().unwrap();
}

/// CPython's `_test_get`: waits for the go, puts 2..=5, then says so.
#[multiproc::worker]
fn put_four(q: Queue<u32>, go: Connection<()>) {
    go.recv().unwrap();
    for i in 2..=5 {
        q.put(i).unwrap();
    }
    go.send(&()).unwrap();
}

#[test]
fn get_table() {
    let q = Queue::<u32>::new().unwrap();
    let (go, child_go) = pipe::<()>().unwrap();
    let mut p = Reap(Process::new(put_four(q.clone(), child_go)).start().unwrap());
    assert!(q.empty().unwrap());
    go.send(&()).unwrap();
    go.recv().unwrap();
    // The child's puts are in the hub's socket buffer, but the pipe overtakes them: as CPython's
    // test sleeps DELTA here, wait (with a deadline) until the hub has read them.
    wait_for_size(&q, 4);
    assert!(!q.empty().unwrap());
    assert_eq!(q.get().unwrap(), 2);
    assert_eq!(q.get_timeout(Duration::from_secs(10)).unwrap(), 3);
    assert_eq!(q.get_timeout(Duration::from_secs(1)).unwrap(), 4);
    assert_eq!(q.try_get().unwrap(), 5);
    assert!(q.empty().unwrap());

    assert!(matches!(timed(Duration::ZERO, || q.try_get()), Err(GetError::Empty)));
    assert!(matches!(
        timed(Duration::ZERO, || q.get_timeout(Duration::ZERO)),
        Err(GetError::Empty)
    ));
    // Python raises queue.Empty for all three; so does every form here, whatever the timeout.
    assert!(matches!(timed(T1, || q.get_timeout(T1)), Err(GetError::Empty)));
    assert!(matches!(timed(T2, || q.get_timeout(T2)), Err(GetError::Empty)));
    assert!(q.get_timeout(T1).unwrap_err().is_empty());
    assert_eq!(
        q.get_timeout(Duration::ZERO).unwrap_err().to_string(),
        q.get_timeout(T1).unwrap_err().to_string()
    );
    p.0.join().unwrap();
}

#[multiproc::worker]
fn put_ten_more(q: Queue<u32>) {
    for i in 10..20 {
        q.put(i).unwrap();
    }
}

fn wait_for_size<T: Serialize + DeserializeOwned>(q: &Queue<T>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while q.qsize().unwrap() < n {
        assert!(Instant::now() < deadline, "the queue never reached {n} items");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// CPython's `test_fork`: items put before and by a child come out in order.
#[test]
fn fifo_across_a_child() {
    let q = Queue::<u32>::new().unwrap();
    for i in 0..10 {
        q.put(i).unwrap();
    }
    let mut p = Reap(Process::new(put_ten_more(q.clone())).daemon(true).start().unwrap());
    for i in 0..20 {
        assert_eq!(q.get_timeout(Duration::from_secs(20)).unwrap(), i);
    }
    assert!(matches!(q.try_get(), Err(GetError::Empty)));
    p.0.join().unwrap();
}

#[test]
fn qsize() {
    let q = Queue::<u32>::new().unwrap();
    assert_eq!(q.qsize().unwrap(), 0);
    q.put(1).unwrap();
    assert_eq!(q.qsize().unwrap(), 1);
    q.put(5).unwrap();
    assert_eq!(q.qsize().unwrap(), 2);
    q.get().unwrap();
    assert_eq!(q.qsize().unwrap(), 1);
    q.get().unwrap();
    assert_eq!(q.qsize().unwrap(), 0);
    assert!(!q.full().unwrap(), "an unbounded queue is never full");
    assert_eq!(q.maxsize(), 0);
}

#[multiproc::worker]
fn blocked_getter(q: Queue<u32>) -> String {
    match q.get() {
        Err(GetError::Closed) => "closed".into(),
        other => format!("{other:?}"),
    }
}

/// CPython's `test_closed_queue_put_get_exceptions`, and close seen by other processes.
#[test]
fn closed_queue_errors() {
    let q = Queue::<String>::new().unwrap();
    q.put("foo".into()).unwrap();
    q.close().unwrap();
    match q.put("foo".into()) {
        Err(PutError::Closed(s)) => assert_eq!(s, "foo"),
        other => panic!("expected Closed, got {other:?}"),
    }
    assert!(matches!(q.get(), Err(GetError::Closed)));

    // A consumer parked in another process is woken by the close; a bounded producer too.
    let q = Queue::<u32>::bounded(1).unwrap();
    let mut p = Reap(Process::new(blocked_getter(q.clone())).start().unwrap());
    std::thread::sleep(Duration::from_millis(200));
    q.close().unwrap();
    assert_eq!(p.0.join().unwrap(), "closed");
    // A fresh handle (another process's view) learns of the close from the hub.
    let other: Queue<u32> = q.clone();
    assert!(matches!(other.try_put(1), Err(PutError::Closed(1))));
}

/// An item whose serialisation fails (CPython's unpicklable object).
#[derive(Debug, PartialEq, serde::Deserialize)]
enum Item {
    Good(u32),
    Bad,
}

impl Serialize for Item {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Item::Good(n) => s.serialize_newtype_variant("Item", 0, "Good", n),
            Item::Bad => Err(serde::ser::Error::custom("this item refuses to be serialised")),
        }
    }
}

#[test]
fn failed_serialisation_leaves_the_queue_usable() {
    for q in [Queue::<Item>::new().unwrap(), Queue::<Item>::bounded(2).unwrap()] {
        match q.put(Item::Bad) {
            Err(PutError::Encode(Item::Bad, msg)) => assert!(msg.contains("refuses"), "{msg}"),
            other => panic!("expected Encode, got {other:?}"),
        }
        q.put(Item::Good(1)).unwrap();
        assert_eq!(q.get().unwrap(), Item::Good(1));
        match q.put_many([Item::Good(2), Item::Bad]) {
            Err(PutError::Encode(items, _)) => assert_eq!(items.len(), 2),
            other => panic!("expected Encode, got {other:?}"),
        }
        assert!(q.empty().unwrap(), "nothing of a failed batch was put");
    }
}

#[test]
fn put_many_and_a_wrong_type() {
    let q = Queue::<u64>::new().unwrap();
    q.put_many(0..1000).unwrap();
    assert_eq!(q.qsize().unwrap(), 1000);
    for i in 0..1000 {
        assert_eq!(q.get().unwrap(), i);
    }
    // An item of another type is a decode error, and the next item is fine.
    let s: Queue<String> = Queue::new().unwrap();
    let as_u64: Queue<u64> = serde_roundtrip(&s);
    s.put("not a number".into()).unwrap();
    s.put("x".into()).unwrap();
    assert!(matches!(as_u64.get(), Err(GetError::Decode(_))));
    assert_eq!(s.get().unwrap(), "x");
}

/// Rebinds a handle as another item type by serialising it (as a child would receive it).
fn serde_roundtrip<A: Serialize, B: DeserializeOwned>(a: &A) -> B {
    rmp_serde::from_slice(&rmp_serde::to_vec(a).unwrap()).unwrap()
}

#[test]
fn bounded_put_waits_for_room() {
    let q = Queue::<u32>::bounded(2).unwrap();
    q.put(1).unwrap();
    q.put(2).unwrap();
    let q2 = q.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        q2.get().unwrap()
    });
    let start = Instant::now();
    q.put(3).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert_eq!(t.join().unwrap(), 1);
    assert_eq!(q.get().unwrap(), 2);
    assert_eq!(q.get().unwrap(), 3);
}
