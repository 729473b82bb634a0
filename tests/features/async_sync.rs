//! `.await` forms of the synchronisation primitives (feature `tokio`) across real processes:
//! a cancelled `acquire_async` leaves the lock free (also when the drop races the hub's grant),
//! Event, Semaphore and Barrier waits, on both runtime flavours.

#[path = "../common/mod.rs"]
mod common;
use common::Reap;

use std::time::{Duration, Instant};

use multiproc::sync::{Barrier, Event, Lock, Semaphore};
use multiproc::{BarrierError, Process};

/// Kills and reaps a child when the test ends, even if it fails.
#[multiproc::worker]
fn hold_lock(lock: Lock, held: Event, release: Event) {
    let g = lock.acquire().unwrap();
    held.set().unwrap();
    release.wait().unwrap();
    drop(g);
}

/// Can this process take the lock within `ms`?
#[multiproc::worker]
fn try_take(lock: Lock, ms: u64) -> bool {
    lock.acquire_timeout(Duration::from_millis(ms)).unwrap().is_some()
}

async fn cancelled_acquire_leaves_the_lock_free() {
    let lock = Lock::new().unwrap();
    let (held, release) = (Event::new().unwrap(), Event::new().unwrap());
    let mut holder = Reap(
        Process::new(hold_lock(lock.clone(), held.clone(), release.clone()))
            .start()
            .unwrap(),
    );
    tokio::time::timeout(Duration::from_secs(30), held.wait_async())
        .await
        .unwrap()
        .unwrap();
    let t0 = Instant::now();
    let r = tokio::time::timeout(Duration::from_millis(200), lock.acquire_async()).await;
    assert!(r.is_err(), "the lock is held by the child");
    assert!(t0.elapsed() >= Duration::from_millis(200));
    // The child releases: the cancelled waiter must not be granted the lock.
    release.set().unwrap();
    holder.0.join_async().await.unwrap();
    let mut other = Reap(Process::new(try_take(lock.clone(), 5000)).start().unwrap());
    assert!(other.0.join_async().await.unwrap(), "another process takes it at once");
    assert!(!lock.locked().unwrap());
    // And this process can take it without waiting.
    let g = lock.try_acquire().unwrap();
    assert!(g.is_some());
}

#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_acquire_leaves_the_lock_free_current_thread() {
    cancelled_acquire_leaves_the_lock_free().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_acquire_leaves_the_lock_free_multi_thread() {
    cancelled_acquire_leaves_the_lock_free().await;
}

/// Takes and releases the lock as fast as it can for `ms`.
#[multiproc::worker]
fn hammer(lock: Lock, ms: u64) -> u64 {
    let end = Instant::now() + Duration::from_millis(ms);
    let mut n = 0;
    while Instant::now() < end {
        let g = lock.acquire().unwrap();
        std::thread::sleep(Duration::from_micros(200));
        drop(g);
        n += 1;
    }
    n
}

/// Acquires with tiny deadlines race a child that hands the lock over and over: a grant that
/// reached a dropped future is released again, so the lock ends free and the child never
/// starves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_acquires_racing_grants_never_leak_the_lock() {
    let lock = Lock::new().unwrap();
    let mut child = Reap(Process::new(hammer(lock.clone(), 3000)).start().unwrap());
    let mut got = 0;
    let mut cancelled = 0;
    let end = Instant::now() + Duration::from_millis(2500);
    let mut i = 0u64;
    while Instant::now() < end {
        i += 1;
        let d = Duration::from_micros((i * 53) % 600);
        match tokio::time::timeout(d, lock.acquire_async()).await {
            Ok(g) => {
                drop(g.unwrap());
                got += 1;
            }
            Err(_) => cancelled += 1,
        }
    }
    let n = tokio::time::timeout(Duration::from_secs(60), child.0.join_async())
        .await
        .expect("the child is never blocked by a leaked grant")
        .unwrap();
    eprintln!(
        "root: {got} acquired, {cancelled} cancelled ({} late grants released); child: {n}",
        multiproc::runtime::async_calls_undone()
    );
    assert!(cancelled > 0 && n > 0);
    // Every grant that reached a dropped future has been given back.
    let end = Instant::now() + Duration::from_secs(10);
    while lock.locked().unwrap() && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!lock.locked().unwrap(), "the lock ends free");
    let mut other = Reap(Process::new(try_take(lock.clone(), 5000)).start().unwrap());
    assert!(other.0.join_async().await.unwrap());
}

#[multiproc::worker]
fn set_after(ev: Event, ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
    ev.set().unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn event_wait_async_is_woken_by_a_child() {
    let ev = Event::new().unwrap();
    let _c = Reap(Process::new(set_after(ev.clone(), 200)).start().unwrap());
    // The runtime keeps running other tasks meanwhile.
    let ticker = tokio::spawn(async {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    tokio::time::timeout(Duration::from_secs(30), ev.wait_async())
        .await
        .unwrap()
        .unwrap();
    assert!(ticker.is_finished(), "other tasks ran while the wait was parked");
    // Set: ready at once, from shared memory.
    ev.wait_async().await.unwrap();
    // A cancelled wait on a cleared event leaves nothing behind.
    ev.clear().unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(50), ev.wait_async())
        .await
        .is_err());
    ev.set().unwrap();
    ev.wait_async().await.unwrap();
}

#[multiproc::worker]
fn hold_permit(sem: Semaphore, held: Event, ms: u64) {
    let p = sem.acquire().unwrap();
    held.set().unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    drop(p);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semaphore_acquire_async_waits_for_a_child_and_cancels_cleanly() {
    let sem = Semaphore::new(1).unwrap();
    let held = Event::new().unwrap();
    let _c = Reap(
        Process::new(hold_permit(sem.clone(), held.clone(), 400))
            .start()
            .unwrap(),
    );
    held.wait_async().await.unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(100), sem.acquire_async())
        .await
        .is_err());
    let p = tokio::time::timeout(Duration::from_secs(30), sem.acquire_async())
        .await
        .expect("the child gives its permit back")
        .unwrap();
    assert_eq!(sem.get_value().unwrap(), 0);
    drop(p);
    // The cancelled acquire took nothing: the one permit is back.
    let end = Instant::now() + Duration::from_secs(10);
    while sem.get_value().unwrap() != 1 && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sem.get_value().unwrap(), 1);
}

#[multiproc::worker]
fn barrier_party(b: Barrier) -> Result<usize, String> {
    b.wait_timeout(Duration::from_secs(30)).map_err(|e| e.to_string())
}

#[tokio::test(flavor = "current_thread")]
async fn barrier_wait_async_meets_two_children_and_a_dropped_wait_breaks_it() {
    let b = Barrier::new(3).unwrap();
    let mut kids: Vec<_> = (0..2)
        .map(|_| Reap(Process::new(barrier_party(b.clone())).start().unwrap()))
        .collect();
    let mine = tokio::time::timeout(Duration::from_secs(30), b.wait_async())
        .await
        .unwrap()
        .unwrap();
    let mut idx = vec![mine];
    for k in &mut kids {
        idx.push(k.0.join_async().await.unwrap().unwrap());
    }
    idx.sort();
    assert_eq!(idx, vec![0, 1, 2]);

    // A party that stops waiting breaks the barrier for the others (Python's timeout rule).
    let b2 = Barrier::new(2).unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(100), b2.wait_async())
        .await
        .is_err());
    let end = Instant::now() + Duration::from_secs(10);
    while !b2.broken().unwrap() && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(b2.broken().unwrap());
    assert!(matches!(b2.wait_async().await, Err(BarrierError::Broken)));
}

#[multiproc::worker]
fn notify_later(cond: multiproc::sync::Condition, flag: multiproc::Value<u32>, ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
    let g = cond.acquire().unwrap();
    flag.set(1).unwrap();
    cond.notify_all().unwrap();
    drop(g);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn condition_wait_async_is_notified_by_a_child_and_a_dropped_wait_frees_the_lock() {
    let cond = multiproc::sync::Condition::new().unwrap();
    let flag = multiproc::Value::new(0u32).unwrap();
    let _c = Reap(
        Process::new(notify_later(cond.clone(), flag.clone(), 200))
            .start()
            .unwrap(),
    );
    let mut g = cond.acquire_async().await.unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    while flag.get().unwrap() == 0 && Instant::now() < end {
        // The guard moves into the wait and comes back with the lock held again; it may be
        // dropped on another worker thread.
        g = tokio::time::timeout(Duration::from_secs(30), g.wait_async())
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(flag.get().unwrap(), 1);
    drop(g);

    // A wait dropped by its deadline leaves the lock free, for this process and others.
    let g = cond.acquire_async().await.unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(100), g.wait_async())
        .await
        .is_err());
    let g2 = tokio::time::timeout(Duration::from_secs(10), cond.acquire_async())
        .await
        .expect("the lock is free again")
        .unwrap();
    g2.notify_async().await.unwrap();
}
