//! JoinableQueue and SimpleQueue through real processes: CPython's `test_task_done` (4
//! workers), the `task_done` over-call, `join_timeout`, and `TestSimpleQueue`.

mod common;
use common::Reap;

use std::time::{Duration, Instant};

use multiproc::{pipe, Connection, GetError, JoinableQueue, Process, QueueError, SimpleQueue};

/// CPython's `_test_task_done`: `for obj in iter(queue.get, None): queue.task_done()`.
#[multiproc::worker]
fn task_worker(q: JoinableQueue<Option<u32>>) -> u32 {
    let mut n = 0;
    while let Some(_item) = q.get().unwrap() {
        std::thread::sleep(Duration::from_millis(5));
        q.task_done().unwrap();
        n += 1;
    }
    q.task_done().unwrap(); // the sentinel is finished too
    n
}

#[test]
fn task_done_with_four_workers() {
    let q = JoinableQueue::<Option<u32>>::new().unwrap();
    let mut workers: Vec<_> = (0..4)
        .map(|_| Reap(Process::new(task_worker(q.clone())).daemon(true).start().unwrap()))
        .collect();
    for i in 0..10 {
        q.put(Some(i)).unwrap();
    }
    q.join_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(q.qsize().unwrap(), 0);
    for _ in &workers {
        q.put(None).unwrap();
    }
    let done: u32 = workers.iter_mut().map(|w| w.0.join().unwrap()).sum();
    assert_eq!(done, 10);
    q.join_timeout(Duration::from_secs(10)).unwrap();
}

#[multiproc::worker]
fn over_call(q: JoinableQueue<u32>) -> String {
    match q.task_done() {
        Err(QueueError::TooManyTaskDone) => "too many".into(),
        other => format!("{other:?}"),
    }
}

#[test]
fn task_done_over_call_from_any_process() {
    let q = JoinableQueue::<u32>::new().unwrap();
    assert!(matches!(q.task_done(), Err(QueueError::TooManyTaskDone)));
    q.put(1).unwrap();
    // A queued item cannot be finished before it is taken.
    assert!(matches!(q.task_done(), Err(QueueError::TooManyTaskDone)));
    let mut p = Reap(Process::new(over_call(q.clone())).start().unwrap());
    assert_eq!(p.0.join().unwrap(), "too many");
    assert!(matches!(q.join_timeout(Duration::ZERO), Err(QueueError::Timeout)));
    assert_eq!(q.get().unwrap(), 1);
    q.task_done().unwrap();
    q.join_timeout(Duration::ZERO).unwrap();
    // The count did not move below zero: one more is still an over-call.
    assert!(matches!(q.task_done(), Err(QueueError::TooManyTaskDone)));
    q.put(2).unwrap();
    q.join_timeout(Duration::ZERO).unwrap_err();
}

#[multiproc::worker]
fn finish_for_someone_else(q: JoinableQueue<u32>) {
    q.task_done().unwrap();
}

#[test]
fn task_done_from_another_process_finishes_handed_off_work() {
    let q = JoinableQueue::<u32>::new().unwrap();
    q.put(7).unwrap();
    assert_eq!(q.get().unwrap(), 7);
    let mut p = Reap(Process::new(finish_for_someone_else(q.clone())).start().unwrap());
    p.0.join().unwrap();
    q.join_timeout(Duration::from_secs(5)).unwrap();
    // This process's own extra task_done now has nothing to finish. It is a one-way write
    // here (this handle believes it still holds an item), so the hub ignores it: the count
    // must be unchanged, never negative.
    let _ = q.task_done();
    q.put(8).unwrap();
    assert!(matches!(q.join_timeout(Duration::ZERO), Err(QueueError::Timeout)));
    assert_eq!(q.get().unwrap(), 8);
    q.task_done().unwrap();
    q.join_timeout(Duration::from_secs(5)).unwrap();
    // A handle that took nothing asks the hub, and gets the over-call error.
    let fresh: JoinableQueue<u32> = rmp_serde::from_slice(&rmp_serde::to_vec(&q).unwrap()).unwrap();
    assert!(matches!(fresh.task_done(), Err(QueueError::TooManyTaskDone)));
}

#[test]
fn join_timeout_timing() {
    let q = JoinableQueue::<u32>::new().unwrap();
    q.put(1).unwrap();
    let t = Instant::now();
    assert!(matches!(
        q.join_timeout(Duration::from_millis(200)),
        Err(QueueError::Timeout)
    ));
    assert!(t.elapsed() >= Duration::from_millis(200));
    assert!(t.elapsed() < Duration::from_secs(3));
    // A joiner in another thread is woken by the last task_done.
    let q2 = q.clone();
    let joiner = std::thread::spawn(move || q2.join_timeout(Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(100));
    q.get().unwrap();
    q.task_done().unwrap();
    joiner.join().unwrap().unwrap();
}

#[test]
fn bounded_joinable() {
    let q = JoinableQueue::<u32>::bounded(1).unwrap();
    q.put(1).unwrap();
    assert!(q.try_put(2).unwrap_err().is_full());
    assert!(q.full().unwrap());
    assert_eq!(q.get().unwrap(), 1);
    q.task_done().unwrap();
    q.join().unwrap();
}

/// CPython's `TestSimpleQueue._test_empty`: the child reports emptiness, puts, and signals.
#[multiproc::worker]
fn simple_child(q: SimpleQueue<String>, child_can_start: Connection<()>) -> bool {
    child_can_start.recv().unwrap();
    let was_empty = q.empty().unwrap();
    q.put("spam".into()).unwrap();
    child_can_start.send(&()).unwrap();
    was_empty
}

#[test]
fn simple_queue_empty() {
    let q = SimpleQueue::<String>::new().unwrap();
    let (go, child_go) = pipe::<()>().unwrap();
    let mut p = Reap(Process::new(simple_child(q.clone(), child_go)).start().unwrap());
    assert!(q.empty().unwrap());
    go.send(&()).unwrap();
    go.recv().unwrap();
    // The pipe can overtake the child's put on its way to the hub (CPython sleeps DELTA here).
    let deadline = Instant::now() + Duration::from_secs(10);
    while q.empty().unwrap() {
        assert!(Instant::now() < deadline, "the child's item never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(q.get().unwrap(), "spam");
    assert!(q.empty().unwrap());
    assert!(p.0.join().unwrap(), "the child saw an empty queue first");
    assert!(matches!(q.try_get(), Err(GetError::Empty)));
    assert!(matches!(q.get_timeout(Duration::from_millis(50)), Err(GetError::Empty)));
}

#[test]
fn simple_queue_close() {
    let q = SimpleQueue::<u8>::new().unwrap();
    q.put(1).unwrap();
    q.close().unwrap();
    assert!(q.put(2).unwrap_err().is_closed());
    assert!(matches!(q.get(), Err(GetError::Closed)));
}
