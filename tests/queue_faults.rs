//! Fault tests: durability of `put` across a SIGKILL, redelivery of unfinished JoinableQueue
//! items, items never handed to dead consumers, and a big item from a child that exits at once.

mod common;
use common::Reap;

use std::time::{Duration, Instant};

use multiproc::{pipe, Connection, JoinableQueue, Process, Queue};

const N: u32 = 10_000;

/// Puts N items one by one and SIGKILLs itself right after the last `put()` returned.
#[multiproc::worker]
fn put_then_die(q: Queue<u32>) {
    for i in 0..N {
        q.put(i).unwrap();
    }
    let _ = multiproc::sys::proc::send_signal(std::process::id() as i32, multiproc::sys::signal::SIGKILL);
    std::thread::sleep(Duration::from_secs(30));
}

#[test]
fn producer_killed_after_its_last_put_loses_nothing() {
    let q = Queue::<u32>::new().unwrap();
    let mut p = Reap(Process::new(put_then_die(q.clone())).start().unwrap());
    for i in 0..N {
        assert_eq!(q.get_timeout(Duration::from_secs(30)).unwrap(), i);
    }
    assert!(q.try_get().is_err(), "exactly {N} items");
    assert!(p.0.join().is_err());
    assert_eq!(p.0.exitcode(), Some(-multiproc::sys::signal::SIGKILL));
}

/// Takes one item, reports it, and hangs "mid-task" (no task_done) until killed.
#[multiproc::worker]
fn take_and_hang(q: JoinableQueue<u32>, report: Connection<u32>) {
    let item = q.get().unwrap();
    report.send(&item).unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn consumer_killed_before_task_done_gets_its_items_redelivered() {
    let q = JoinableQueue::<u32>::new().unwrap();
    q.put_many(0..5).unwrap();
    let (mine, theirs) = pipe::<u32>().unwrap();
    let p = Reap(Process::new(take_and_hang(q.clone(), theirs)).start().unwrap());
    assert_eq!(mine.recv_timeout(Duration::from_secs(20)).unwrap(), 0);
    assert!(matches!(
        q.join_timeout(Duration::from_millis(100)),
        Err(multiproc::QueueError::Timeout)
    ));
    p.0.kill().unwrap();
    drop(p);
    // Item 0 (and anything the consumer prefetched) comes back, at the front, in order.
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < 5 {
        assert!(Instant::now() < deadline, "only got {got:?}");
        if let Ok(x) = q.get_timeout(Duration::from_millis(200)) {
            got.push(x);
            q.task_done().unwrap();
        }
    }
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
    q.join_timeout(Duration::from_secs(10)).unwrap();
}

#[multiproc::worker]
fn redelivery_worker(q: JoinableQueue<Option<u32>>, out: Queue<u32>) {
    while let Some(x) = q.get().unwrap() {
        out.put(x).unwrap();
        q.task_done().unwrap();
    }
    q.task_done().unwrap();
}

/// Like `take_and_hang`, for a queue of `Option<u32>`.
#[multiproc::worker]
fn take_opt_and_hang(q: JoinableQueue<Option<u32>>, report: Connection<Option<u32>>) {
    let item = q.get().unwrap();
    report.send(&item).unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn join_completes_after_a_worker_is_killed_mid_task() {
    let q = JoinableQueue::<Option<u32>>::new().unwrap();
    let out = Queue::<u32>::new().unwrap();
    let (mine, theirs) = pipe::<Option<u32>>().unwrap();
    let victim = Reap(Process::new(take_opt_and_hang(q.clone(), theirs)).start().unwrap());
    q.put(Some(7)).unwrap();
    assert_eq!(mine.recv_timeout(Duration::from_secs(20)).unwrap(), Some(7));
    let mut worker = Reap(
        Process::new(redelivery_worker(q.clone(), out.clone()))
            .daemon(true)
            .start()
            .unwrap(),
    );
    q.put(Some(8)).unwrap();
    victim.0.kill().unwrap();
    // Item 7 is redelivered to the healthy worker; join completes once both are finished.
    q.join_timeout(Duration::from_secs(20)).unwrap();
    let mut got = vec![out.get().unwrap(), out.get().unwrap()];
    got.sort();
    assert_eq!(got, vec![7, 8]);
    q.put(None).unwrap();
    worker.0.join().unwrap();
}

#[multiproc::worker]
fn parked_getter(q: Queue<u32>, ready: Connection<()>) {
    ready.send(&()).unwrap();
    let _ = q.get();
    std::process::exit(3);
}

#[test]
fn items_never_go_to_a_dead_consumer() {
    let q = Queue::<u32>::new().unwrap();
    let (mine, theirs) = pipe::<()>().unwrap();
    let mut p = Reap(Process::new(parked_getter(q.clone(), theirs)).start().unwrap());
    mine.recv().unwrap();
    std::thread::sleep(Duration::from_millis(100)); // let it park in the hub
    p.0.kill().unwrap();
    let _ = p.0.join();
    q.put(42).unwrap();
    assert_eq!(q.get_timeout(Duration::from_secs(5)).unwrap(), 42);
}

#[multiproc::worker]
fn put_big_and_exit(q: Queue<serde_bytes::ByteBuf>) {
    let item: Vec<u8> = (0..1u32 << 20).map(|i| (i % 253) as u8).collect();
    q.put(serde_bytes::ByteBuf::from(item)).unwrap();
}

/// gh-73983: in Python, a child that puts a big item and exits cannot be joined until the item
/// is read. Here the item is in the hub when `put` returns.
#[test]
fn child_putting_one_mib_then_exiting_joins_without_a_reader() {
    let q = Queue::<serde_bytes::ByteBuf>::new().unwrap();
    let mut p = Reap(Process::new(put_big_and_exit(q.clone())).start().unwrap());
    let t = Instant::now();
    p.0.join_timeout(Duration::from_secs(20)).unwrap();
    assert!(t.elapsed() < Duration::from_secs(20));
    let item = q.get_timeout(Duration::from_secs(5)).unwrap();
    let want: Vec<u8> = (0..1u32 << 20).map(|i| (i % 253) as u8).collect();
    assert!(item.into_vec() == want, "the 1 MiB item changed");
}
