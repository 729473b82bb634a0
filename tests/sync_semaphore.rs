//! Semaphore and BoundedSemaphore: CPython's `_TestSemaphore` (with its timeout table), plus
//! permits returned on death and dead waiters dropped.

mod common;

use std::time::{Duration, Instant};

use common::{eventually, take, Kids};
use multiproc::sync::{BoundedSemaphore, Semaphore, SemaphoreError};
use multiproc::Process;

const LONG: Duration = Duration::from_secs(20);

// ----- CPython _TestSemaphore --------------------------------------------------------------

fn check_semaphore(
    acquire: impl Fn() -> bool,
    try_acquire: impl Fn() -> bool,
    release: impl Fn(),
    value: impl Fn() -> u64,
) {
    assert_eq!(value(), 2);
    assert!(acquire());
    assert_eq!(value(), 1);
    assert!(acquire());
    assert_eq!(value(), 0);
    assert!(!try_acquire());
    assert_eq!(value(), 0);
    release();
    assert_eq!(value(), 1);
    release();
    assert_eq!(value(), 2);
}

#[test]
fn test_semaphore() {
    let sem = Semaphore::new(2).unwrap();
    check_semaphore(
        || sem.acquire().map(|g| g.forget()).is_ok(),
        || sem.try_acquire().unwrap().map(|g| g.forget()).is_some(),
        || sem.release().unwrap(),
        || sem.get_value().unwrap(),
    );
    sem.release().unwrap();
    assert_eq!(sem.get_value().unwrap(), 3);
    sem.release().unwrap();
    assert_eq!(sem.get_value().unwrap(), 4);
    sem.release_n(3).unwrap();
    assert_eq!(sem.get_value().unwrap(), 7);
    assert!(!sem.locked().unwrap());
}

#[test]
fn test_bounded_semaphore() {
    let sem = BoundedSemaphore::new(2).unwrap();
    check_semaphore(
        || sem.acquire().map(|g| g.forget()).is_ok(),
        || sem.try_acquire().unwrap().map(|g| g.forget()).is_some(),
        || sem.release().unwrap(),
        || sem.get_value().unwrap(),
    );
    // Over-release: an error, and the value is unchanged (the check CPython leaves disabled).
    match sem.release() {
        Err(SemaphoreError::TooManyReleases { value, released, bound }) => {
            assert_eq!((value, released, bound), (2, 1, 2))
        }
        other => panic!("expected TooManyReleases, got {other:?}"),
    }
    assert_eq!(sem.get_value().unwrap(), 2);
    sem.acquire().unwrap().forget();
    assert!(matches!(sem.release_n(2), Err(SemaphoreError::TooManyReleases { .. })));
    assert_eq!(sem.get_value().unwrap(), 1);
    sem.release_n(1).unwrap();
    assert_eq!(sem.get_value().unwrap(), 2);
    assert_eq!(sem.bound(), 2);
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

#[test]
fn test_timeout_table() {
    // CPython: acquire(False), acquire(False, None), acquire(False, TIMEOUT1) do not wait;
    // acquire(True, TIMEOUT2) and acquire(timeout=TIMEOUT3) wait that long and fail.
    let sem = Semaphore::new(0).unwrap();
    let soon = Duration::from_secs(3);
    for (r, el) in [
        timed(|| sem.try_acquire().unwrap().is_some()),
        timed(|| sem.acquire_timeout(Duration::ZERO).unwrap().is_some()),
    ] {
        assert!(!r);
        assert!(el < soon, "{el:?}");
    }
    for t in [Duration::from_millis(100), Duration::from_millis(300)] {
        let (r, el) = timed(|| sem.acquire_timeout(t).unwrap().is_some());
        assert!(!r);
        assert!(el >= t, "returned early: {el:?} < {t:?}");
        assert!(el < t + soon, "{el:?}");
    }
}

// ----- across processes --------------------------------------------------------------------

#[multiproc::worker]
fn worker_with_permit(sem: Semaphore, inside: Semaphore, overfull: Semaphore) {
    let _permit = sem.acquire().unwrap();
    inside.release().unwrap();
    if inside.get_value().unwrap() > 2 {
        overfull.release().unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    inside.acquire().unwrap().forget();
}

#[test]
fn a_semaphore_bounds_concurrency_across_processes() {
    let sem = Semaphore::new(2).unwrap();
    let inside = Semaphore::new(0).unwrap();
    let overfull = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    for _ in 0..5 {
        kids.push(
            Process::new(worker_with_permit(sem.clone(), inside.clone(), overfull.clone()))
                .start()
                .unwrap(),
        );
    }
    kids.join_all();
    assert_eq!(
        overfull.get_value().unwrap(),
        0,
        "more than 2 workers held a permit at once"
    );
    assert_eq!(sem.get_value().unwrap(), 2);
}

#[multiproc::worker]
fn release_n_later(sem: Semaphore, n: u32) {
    std::thread::sleep(Duration::from_millis(100));
    sem.release_n(n).unwrap();
}

#[multiproc::worker]
fn acquire_one(sem: Semaphore, woken: Semaphore) {
    sem.acquire().unwrap().forget();
    woken.release().unwrap();
}

#[test]
fn release_n_wakes_n_waiters() {
    let sem = Semaphore::new(0).unwrap();
    let woken = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    for _ in 0..3 {
        kids.push(Process::new(acquire_one(sem.clone(), woken.clone())).start().unwrap());
    }
    let mut releaser = Kids::new();
    releaser.push(Process::new(release_n_later(sem.clone(), 2)).start().unwrap());
    releaser.join_all();
    assert!(eventually(LONG, || woken.get_value().unwrap() == 2));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(woken.get_value().unwrap(), 2);
    sem.release().unwrap();
    kids.join_all();
    assert_eq!(woken.get_value().unwrap(), 3);
    assert_eq!(sem.get_value().unwrap(), 0);
}

// ----- death ---------------------------------------------------------------------------------

#[multiproc::worker]
fn hold_permits(sem: BoundedSemaphore, raw: Semaphore, acquired: Semaphore) {
    let _a = sem.acquire().unwrap();
    let _b = sem.acquire().unwrap();
    raw.acquire().unwrap().forget(); // a raw permit: not tracked
    acquired.release().unwrap();
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn guard_permits_of_a_dead_process_are_returned_raw_ones_are_not() {
    let sem = BoundedSemaphore::new(3).unwrap();
    let raw = Semaphore::new(1).unwrap();
    let acquired = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    kids.push(
        Process::new(hold_permits(sem.clone(), raw.clone(), acquired.clone()))
            .start()
            .unwrap(),
    );
    take(&acquired, LONG);
    assert_eq!(sem.get_value().unwrap(), 1);
    assert_eq!(raw.get_value().unwrap(), 0);
    kids.0[0].kill().unwrap();
    assert!(
        eventually(Duration::from_secs(5), || sem.get_value().unwrap() == 3),
        "permits not returned"
    );
    kids.0[0].join_timeout(LONG).unwrap_err();
    assert_eq!(raw.get_value().unwrap(), 0, "a raw permit must not be returned");
    // Still bounded.
    assert!(sem.release().is_err());
}

#[multiproc::worker]
fn park_on(sem: Semaphore, ready: Semaphore) {
    ready.release().unwrap();
    let _p = sem.acquire().unwrap();
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn dead_waiters_are_never_granted_a_permit() {
    let sem = Semaphore::new(0).unwrap();
    let ready = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    for _ in 0..3 {
        kids.push(Process::new(park_on(sem.clone(), ready.clone())).start().unwrap());
        take(&ready, LONG);
    }
    std::thread::sleep(Duration::from_millis(300));
    for k in &mut kids.0 {
        k.kill().unwrap();
        k.join_timeout(LONG).unwrap_err();
    }
    sem.release_n(2).unwrap();
    assert_eq!(sem.get_value().unwrap(), 2, "a permit went to a dead waiter");
}
