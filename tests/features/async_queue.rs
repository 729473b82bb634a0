//! `.await` forms of the queues (feature `tokio`): many concurrent gets on one runtime served by
//! real producer processes, cancel-safety of `get_async` (no item lost, also when the drop races
//! the hub's answer), bounded `put_async`, `JoinableQueue::join_async`, on both runtime flavours.

#[path = "../common/mod.rs"]
mod common;
use common::Reap;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use multiproc::{JoinableQueue, Process, Queue};

/// Kills and reaps a child when the test ends, even if it fails.
#[multiproc::worker]
fn produce(q: Queue<u32>, from: u32, to: u32) {
    for i in from..to {
        q.put(i).unwrap();
    }
}

/// Puts `n` items, one every `gap_us` microseconds.
#[multiproc::worker]
fn trickle(q: Queue<u32>, n: u32, gap_us: u64) {
    for i in 0..n {
        q.put(i).unwrap();
        std::thread::sleep(Duration::from_micros(gap_us));
    }
}

async fn thousand_gets(q: Queue<u32>) {
    const N: u32 = 1000;
    let mut tasks = Vec::new();
    for _ in 0..N {
        let q = q.clone();
        tasks.push(tokio::spawn(async move { q.get_async().await.unwrap() }));
    }
    // Let every get wait (one fetch parked in the hub, the others behind it) before the
    // producers start.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cuts = [0, 333, 667, N];
    let _producers: Vec<_> = (0..3)
        .map(|k| Reap(Process::new(produce(q.clone(), cuts[k], cuts[k + 1])).start().unwrap()))
        .collect();
    let mut seen = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    for t in tasks {
        let left = deadline.saturating_duration_since(Instant::now());
        let v = tokio::time::timeout(left, t)
            .await
            .expect("every get is served")
            .unwrap();
        assert!(seen.insert(v), "item {v} received twice");
    }
    assert_eq!(seen.len(), N as usize);
    assert!(seen.iter().all(|&v| v < N));
    assert!(q.try_get().is_err(), "nothing left over");
    // The pool keeps the connections: another round opens none.
    let before = multiproc::runtime::async_connections_opened();
    q.put(5).unwrap();
    assert_eq!(q.get_async().await.unwrap(), 5);
    assert_eq!(multiproc::runtime::async_connections_opened(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_gets_served_by_three_producers_multi_thread() {
    thousand_gets(Queue::new().unwrap()).await;
}

#[tokio::test(flavor = "current_thread")]
async fn thousand_concurrent_gets_served_by_three_producers_current_thread() {
    thousand_gets(Queue::new().unwrap()).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_get_leaves_no_waiter_behind() {
    let q = Queue::<u32>::new().unwrap();
    let t0 = Instant::now();
    let r = tokio::time::timeout(Duration::from_millis(100), q.get_async()).await;
    assert!(r.is_err(), "nothing to get");
    assert!(t0.elapsed() >= Duration::from_millis(100));
    // The hub forgot the cancelled waiter: an item put now goes to the next get, not to it.
    let _p = Reap(Process::new(produce(q.clone(), 0, 1)).start().unwrap());
    assert_eq!(q.get_timeout(Duration::from_secs(30)).unwrap(), 0);
}

/// Gets with tiny deadlines race the hub's answers: every item put is received exactly once,
/// by a get that completed or by the final drain (an item handed to a dropped future went back).
async fn cancelled_gets_lose_nothing(q: Queue<u32>) {
    const N: u32 = 300;
    let _p = Reap(Process::new(trickle(q.clone(), N, 300)).start().unwrap());
    let mut got = Vec::new();
    let mut cancelled = 0u32;
    let end = Instant::now() + Duration::from_secs(60);
    let mut i = 0u64;
    while (got.len() as u32) < N && Instant::now() < end {
        i += 1;
        // 0..400 µs deadlines: some expire before the item arrives, some exactly as it does.
        // Every third is zero, so that gets are cancelled even when every item comes in time
        // (tokio's timer rounds the others up to 1 ms): the request is sent, then dropped.
        let d = if i % 3 == 0 {
            Duration::ZERO
        } else {
            Duration::from_micros((i * 37) % 400)
        };
        match tokio::time::timeout(d, q.get_async()).await {
            Ok(v) => got.push(v.unwrap()),
            Err(_) => cancelled += 1,
        }
    }
    // Items handed to dropped futures are requeued by the canceller: give it a moment.
    let drain_end = Instant::now() + Duration::from_secs(30);
    while (got.len() as u32) < N && Instant::now() < drain_end {
        if let Ok(Ok(v)) = tokio::time::timeout(Duration::from_millis(200), q.get_async()).await {
            got.push(v);
        }
    }
    eprintln!(
        "{cancelled} gets cancelled, {} answers undone (requeued) after a cancel",
        multiproc::runtime::async_calls_undone()
    );
    assert!(cancelled > 0, "some gets were cancelled");
    let set: HashSet<u32> = got.iter().copied().collect();
    assert_eq!(set.len(), got.len(), "no item twice");
    assert_eq!(got.len() as u32, N, "no item lost ({cancelled} gets cancelled)");
}

#[tokio::test(flavor = "current_thread")]
async fn cancelled_gets_lose_no_item_current_thread() {
    cancelled_gets_lose_nothing(Queue::new().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_gets_lose_no_item_multi_thread() {
    cancelled_gets_lose_nothing(Queue::new().unwrap()).await;
}

#[multiproc::worker]
fn take_after(q: Queue<u32>, ms: u64, n: u32) -> Vec<u32> {
    std::thread::sleep(Duration::from_millis(ms));
    (0..n)
        .map(|_| q.get_timeout(Duration::from_secs(30)).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_put_async_waits_for_room_without_blocking_the_runtime() {
    let q = Queue::<u32>::bounded(2).unwrap();
    q.put_async(1).await.unwrap();
    q.put_async(2).await.unwrap();
    // Full: a put with a deadline gives up; its item is not in the queue.
    let r = tokio::time::timeout(Duration::from_millis(100), q.put_async(99)).await;
    assert!(r.is_err());
    assert_eq!(q.qsize().unwrap(), 2);
    // A consumer in a child makes room after 300 ms; meanwhile the runtime keeps running.
    let mut c = Reap(Process::new(take_after(q.clone(), 300, 3)).start().unwrap());
    let ticks = tokio::spawn(async {
        let mut n = 0;
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            n += 1;
        }
        n
    });
    q.put_async(3).await.unwrap();
    assert_eq!(ticks.await.unwrap(), 10);
    assert_eq!(c.0.join_async().await.unwrap(), vec![1, 2, 3]);
}

#[multiproc::worker]
fn finish_all(q: JoinableQueue<u32>, ms: u64) {
    while let Ok(_n) = q.get_timeout(Duration::from_millis(500)) {
        std::thread::sleep(Duration::from_millis(ms));
        q.task_done().unwrap();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn joinable_join_async_waits_for_task_done_in_a_child() {
    let q = JoinableQueue::<u32>::new().unwrap();
    for i in 0..5 {
        q.put_async(i).await.unwrap();
    }
    let t0 = Instant::now();
    let mut c = Reap(Process::new(finish_all(q.clone(), 50)).start().unwrap());
    tokio::time::timeout(Duration::from_secs(60), q.join_async())
        .await
        .expect("joined in time")
        .unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(250), "not before 5 items x 50 ms");
    c.0.join_async().await.unwrap();
    // A cancelled join leaves nothing behind: the next one still works.
    q.put(9).unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(50), q.join_async())
        .await
        .is_err());
    assert_eq!(q.get_async().await.unwrap(), 9);
    q.task_done().unwrap();
    q.join_async().await.unwrap();
}

/// Four tasks and one blocking thread take from one producer at once: each of them sees the
/// producer's items in put order (one fetch from the hub at a time per process, prefetched
/// items handed out first), and together they see every item once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_async_and_blocking_consumers_each_see_put_order() {
    const N: u32 = 4000;
    let q = Queue::<u32>::new().unwrap();
    let _p = Reap(Process::new(produce(q.clone(), 0, N)).start().unwrap());
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (q, seen) = (q.clone(), seen.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while seen.load(std::sync::atomic::Ordering::SeqCst) < N {
                if let Ok(Ok(v)) = tokio::time::timeout(Duration::from_millis(100), q.get_async()).await {
                    seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    mine.push(v);
                }
            }
            mine
        }));
    }
    let (q2, seen2) = (q.clone(), seen.clone());
    let blocking = std::thread::spawn(move || {
        let mut mine = Vec::new();
        while seen2.load(std::sync::atomic::Ordering::SeqCst) < N {
            if let Ok(v) = q2.get_timeout(Duration::from_millis(100)) {
                seen2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                mine.push(v);
            }
        }
        mine
    });
    let mut all = Vec::new();
    for t in tasks {
        let mine = tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .unwrap()
            .unwrap();
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "a task saw items out of put order"
        );
        all.extend(mine);
    }
    let mine = blocking.join().unwrap();
    assert!(
        mine.windows(2).all(|w| w[0] < w[1]),
        "the thread saw items out of put order"
    );
    all.extend(mine);
    all.sort();
    assert_eq!(all, (0..N).collect::<Vec<_>>());
}
