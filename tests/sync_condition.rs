//! Condition: CPython's `_TestCondition` (notify, notify_all, notify(n), timeout, wait_for,
//! wait_for with a timeout, wait result), RLock depth across waits, misuse errors, and a dead
//! owner of the condition's lock.

mod common;

use std::time::{Duration, Instant};

use common::{count, eventually, notify_and_hang, take, Kids};
use multiproc::sync::{Condition, ConditionError, Lock, RLock, Semaphore};
use multiproc::Process;

const LONG: Duration = Duration::from_secs(20);
const DELTA: Duration = Duration::from_millis(100);

/// CPython's `f`: acquire, signal sleeping, wait, signal woken, release.
fn f(cond: &Condition, sleeping: &Semaphore, woken: &Semaphore, timeout: Option<Duration>) {
    let g = cond.acquire().unwrap();
    sleeping.release().unwrap();
    match timeout {
        Some(t) => {
            cond.wait_timeout(t).unwrap();
        }
        None => cond.wait().unwrap(),
    }
    woken.release().unwrap();
    drop(g);
}

#[multiproc::worker]
fn f_proc(cond: Condition, sleeping: Semaphore, woken: Semaphore, timeout_ms: Option<u64>) {
    f(&cond, &sleeping, &woken, timeout_ms.map(Duration::from_millis));
}

fn f_thread(
    cond: &Condition,
    sleeping: &Semaphore,
    woken: &Semaphore,
    timeout: Option<Duration>,
) -> std::thread::JoinHandle<()> {
    let (c, s, w) = (cond.clone(), sleeping.clone(), woken.clone());
    std::thread::spawn(move || f(&c, &s, &w, timeout))
}

fn notify_n(cond: &Condition, n: u32) {
    let _g = cond.acquire().unwrap();
    cond.notify_n(n).unwrap();
}

#[test]
fn test_notify() {
    let cond = Condition::new().unwrap();
    let sleeping = Semaphore::new(0).unwrap();
    let woken = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    kids.push(
        Process::new(f_proc(cond.clone(), sleeping.clone(), woken.clone(), None))
            .start()
            .unwrap(),
    );
    let t = f_thread(&cond, &sleeping, &woken, None);
    take(&sleeping, LONG);
    take(&sleeping, LONG);

    std::thread::sleep(DELTA);
    assert_eq!(count(&woken), 0);

    notify_n(&cond, 1);
    assert!(eventually(LONG, || count(&woken) == 1));
    std::thread::sleep(DELTA);
    assert_eq!(count(&woken), 1);

    notify_n(&cond, 1);
    assert!(eventually(LONG, || count(&woken) == 2));
    kids.join_all();
    t.join().unwrap();
}

#[test]
fn test_notify_all() {
    let cond = Condition::new().unwrap();
    let sleeping = Semaphore::new(0).unwrap();
    let woken = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    let mut threads = Vec::new();
    // Some that time out.
    for _ in 0..3 {
        kids.push(
            Process::new(f_proc(cond.clone(), sleeping.clone(), woken.clone(), Some(100)))
                .start()
                .unwrap(),
        );
        threads.push(f_thread(&cond, &sleeping, &woken, Some(Duration::from_millis(100))));
    }
    for _ in 0..6 {
        take(&sleeping, LONG);
    }
    for _ in 0..6 {
        take(&woken, LONG);
    }
    assert_eq!(count(&woken), 0);

    // Some that wait for good.
    for _ in 0..3 {
        kids.push(
            Process::new(f_proc(cond.clone(), sleeping.clone(), woken.clone(), None))
                .start()
                .unwrap(),
        );
        threads.push(f_thread(&cond, &sleeping, &woken, None));
    }
    for _ in 0..6 {
        take(&sleeping, LONG);
    }
    std::thread::sleep(DELTA);
    assert_eq!(count(&woken), 0);
    {
        let _g = cond.acquire().unwrap();
        cond.notify_all().unwrap();
    }
    assert!(eventually(LONG, || count(&woken) == 6));
    kids.join_all();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn test_notify_n() {
    let cond = Condition::new().unwrap();
    let sleeping = Semaphore::new(0).unwrap();
    let woken = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    let mut threads = Vec::new();
    for _ in 0..3 {
        kids.push(
            Process::new(f_proc(cond.clone(), sleeping.clone(), woken.clone(), None))
                .start()
                .unwrap(),
        );
        threads.push(f_thread(&cond, &sleeping, &woken, None));
    }
    for _ in 0..6 {
        take(&sleeping, LONG);
    }
    std::thread::sleep(DELTA);
    assert_eq!(count(&woken), 0);

    notify_n(&cond, 3);
    assert!(eventually(LONG, || count(&woken) == 3));
    std::thread::sleep(DELTA);
    assert_eq!(count(&woken), 3, "notify_n(3) woke more than 3");

    notify_n(&cond, 5); // more than are left
    assert!(eventually(LONG, || count(&woken) == 6));

    notify_n(&cond, 5); // nobody left: a no-op
    kids.join_all();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn test_timeout() {
    let cond = Condition::new().unwrap();
    let _g = cond.acquire().unwrap();
    let t = Instant::now();
    assert!(!cond.wait_timeout(Duration::from_millis(100)).unwrap());
    let el = t.elapsed();
    assert!(el >= Duration::from_millis(100), "{el:?}");
    assert!(el < Duration::from_secs(4), "{el:?}");
}

#[multiproc::worker]
fn waitfor_child(cond: Condition, state: Semaphore) -> bool {
    let _g = cond.acquire().unwrap();
    // state starts at 0 (CPython sets it to 0 here); notify the parent.
    cond.notify().unwrap();
    cond.wait_for(|| count(&state) == 4).unwrap();
    count(&state) == 4
}

#[test]
fn test_waitfor() {
    let cond = Condition::new().unwrap();
    let state = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    {
        // Hold the lock so that the child's notify comes while we wait.
        let _g = cond.acquire().unwrap();
        kids.push(
            Process::new(waitfor_child(cond.clone(), state.clone()))
                .start()
                .unwrap(),
        );
        assert!(cond.wait_for_timeout(|| count(&state) == 0, LONG).unwrap());
        cond.wait_timeout(LONG).unwrap(); // the child's notify
    }
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(10));
        let _g = cond.acquire().unwrap();
        state.release().unwrap();
        cond.notify().unwrap();
    }
    assert_eq!(kids.join_all(), vec![true]);
}

#[multiproc::worker]
fn waitfor_timeout_child(cond: Condition, state: Semaphore, started: Semaphore) -> bool {
    started.release().unwrap();
    let _g = cond.acquire().unwrap();
    let expected = Duration::from_millis(100);
    let t = Instant::now();
    let result = cond.wait_for_timeout(|| count(&state) == 4, expected).unwrap();
    let dt = t.elapsed();
    !result && dt >= expected && dt < expected * 40
}

#[test]
fn test_waitfor_timeout() {
    let cond = Condition::new().unwrap();
    let state = Semaphore::new(0).unwrap();
    let started = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    kids.push(
        Process::new(waitfor_timeout_child(cond.clone(), state.clone(), started.clone()))
            .start()
            .unwrap(),
    );
    take(&started, LONG);
    // Only 3 increments: state == 4 is never reached.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(10));
        let _g = cond.acquire().unwrap();
        state.release().unwrap();
        cond.notify().unwrap();
    }
    assert_eq!(kids.join_all(), vec![true]);
}

#[multiproc::worker]
fn notify_once(cond: Condition) {
    let _g = cond.acquire().unwrap();
    cond.notify().unwrap();
}

#[test]
fn test_wait_result() {
    let cond = Condition::new().unwrap();
    let _g = cond.acquire().unwrap();
    assert!(!cond.wait_timeout(Duration::ZERO).unwrap());
    assert!(!cond.wait_timeout(Duration::from_millis(100)).unwrap());
    let mut kids = Kids::new();
    kids.push(Process::new(notify_once(cond.clone())).start().unwrap());
    assert!(cond.wait_timeout(Duration::from_secs(10)).unwrap());
    kids.join_all();
}

// ----- beyond the CPython port ----------------------------------------------------------------

#[test]
fn an_rlock_keeps_its_depth_across_a_wait() {
    let rlock = RLock::new().unwrap();
    let cond = Condition::with_rlock(&rlock).unwrap();
    let a = cond.acquire().unwrap();
    let b = cond.acquire().unwrap();
    let c = cond.acquire().unwrap();
    assert_eq!(rlock.count().unwrap(), 3);
    assert!(!cond.wait_timeout(Duration::from_millis(20)).unwrap());
    assert_eq!(rlock.count().unwrap(), 3);
    assert!(rlock.is_owned().unwrap());
    drop((c, b, a));
    assert!(!rlock.locked().unwrap());
}

#[test]
fn wait_and_notify_without_the_lock_are_errors() {
    let lock = Lock::new().unwrap();
    let cond = Condition::with_lock(&lock).unwrap();
    assert!(matches!(cond.wait(), Err(ConditionError::NotOwner)));
    assert!(matches!(cond.notify(), Err(ConditionError::NotOwner)));
    assert!(matches!(cond.notify_all(), Err(ConditionError::NotOwner)));
    assert!(matches!(cond.release(), Err(ConditionError::NotHeld)));
    // Held by another thread: still not ours.
    let g = cond.acquire().unwrap();
    let c2 = cond.clone();
    let r = std::thread::spawn(move || matches!(c2.wait(), Err(ConditionError::NotOwner)))
        .join()
        .unwrap();
    assert!(r);
    drop(g);
    // Two conditions on one lock do not wake each other.
    let other = Condition::with_lock(&lock).unwrap();
    let _g = cond.acquire().unwrap();
    other.notify_all().unwrap();
    assert!(!cond.wait_timeout(Duration::from_millis(50)).unwrap());
}

#[multiproc::worker]
fn hold_cond_forever(cond: Condition, acquired: Semaphore) {
    let _g = cond.acquire().unwrap();
    acquired.release().unwrap();
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn dead_owner_of_a_conditions_lock() {
    let cond = Condition::new().unwrap();
    let acquired = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    kids.push(
        Process::new(hold_cond_forever(cond.clone(), acquired.clone()))
            .start()
            .unwrap(),
    );
    take(&acquired, LONG);
    kids.0[0].kill().unwrap();
    let killed = Instant::now();
    let g = cond
        .acquire_timeout(Duration::from_secs(5))
        .unwrap()
        .expect("the dead owner's lock was not released");
    assert!(killed.elapsed() < Duration::from_secs(1), "took {:?}", killed.elapsed());
    assert!(g.previous_owner_died());
}

#[test]
fn a_waiter_that_reacquires_after_the_owner_died_is_told() {
    let cond = Condition::new().unwrap();
    let acquired = Semaphore::new(0).unwrap();
    let g = cond.acquire().unwrap();
    let mut child = Process::new(notify_and_hang(cond.clone(), acquired.clone()))
        .start()
        .unwrap();
    // The child can take the lock only while we wait; it notifies us and keeps the lock, so
    // our wait is queued to re-acquire it. Its death hands the lock back to us, flagged.
    let killer = std::thread::spawn(move || {
        take(&acquired, LONG);
        std::thread::sleep(Duration::from_millis(50));
        child.kill().unwrap();
        child.join_timeout(LONG).unwrap_err();
    });
    let r = cond.wait();
    killer.join().unwrap();
    assert!(matches!(r, Err(ConditionError::PreviousOwnerDied)), "{r:?}");
    // The lock is held again, by us.
    cond.notify().unwrap();
    drop(g);
}
