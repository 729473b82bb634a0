//! Event: CPython's `_TestEvent`, waking 1,000 waiters, and dead waiters.

mod common;

use std::time::{Duration, Instant};

use common::{take, Kids};
use multiproc::sync::{Event, Semaphore};
use multiproc::Process;

const LONG: Duration = Duration::from_secs(20);

#[multiproc::worker]
fn set_later(event: Event, ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
    event.set().unwrap();
}

#[test]
fn test_event() {
    let event = Event::new().unwrap();
    assert!(!event.is_set().unwrap());

    let t = Instant::now();
    assert!(!event.wait_timeout(Duration::ZERO).unwrap());
    assert!(!event.try_wait().unwrap());
    assert!(t.elapsed() < Duration::from_secs(3));

    let t = Instant::now();
    assert!(!event.wait_timeout(Duration::from_millis(100)).unwrap());
    assert!(t.elapsed() >= Duration::from_millis(100));
    assert!(t.elapsed() < Duration::from_secs(4));

    event.set().unwrap();
    assert!(event.is_set().unwrap());
    let t = Instant::now();
    event.wait().unwrap();
    assert!(event.wait_timeout(Duration::from_millis(100)).unwrap());
    assert!(event.try_wait().unwrap());
    assert!(t.elapsed() < Duration::from_secs(3));

    event.clear().unwrap();
    assert!(!event.is_set().unwrap());

    let mut kids = Kids::new();
    kids.push(Process::new(set_later(event.clone(), 200)).start().unwrap());
    event.wait().unwrap();
    assert!(event.is_set().unwrap());
    kids.join_all();
}

#[multiproc::worker]
fn many_waiters(event: Event, threads: u32, ready: Semaphore) -> u32 {
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let ev = event.clone();
            std::thread::spawn(move || {
                // A first call gives this thread its own hub connection; then it parks.
                ev.is_set().unwrap();
                ev.wait_timeout(Duration::from_secs(30)).unwrap()
            })
        })
        .collect();
    ready.release().unwrap();
    handles.into_iter().map(|h| u32::from(h.join().unwrap())).sum()
}

#[test]
fn one_set_wakes_1000_waiters() {
    let event = Event::new().unwrap();
    let ready = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    for _ in 0..4 {
        kids.push(
            Process::new(many_waiters(event.clone(), 250, ready.clone()))
                .start()
                .unwrap(),
        );
    }
    for _ in 0..4 {
        take(&ready, LONG);
    }
    // Every thread has spawned; give the last ones a moment to park.
    std::thread::sleep(Duration::from_millis(300));
    event.set().unwrap();
    let woken: u32 = kids.join_all().into_iter().sum();
    assert_eq!(woken, 1000);
}

#[multiproc::worker]
fn wait_forever(event: Event, ready: Semaphore) {
    ready.release().unwrap();
    event.wait().unwrap();
}

#[test]
fn dead_waiters_do_not_disturb_the_event() {
    let event = Event::new().unwrap();
    let ready = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    for _ in 0..2 {
        kids.push(
            Process::new(wait_forever(event.clone(), ready.clone()))
                .start()
                .unwrap(),
        );
        take(&ready, LONG);
    }
    let mut killed = kids.0.remove(0);
    killed.kill().unwrap();
    killed.join_timeout(LONG).unwrap_err();
    event.set().unwrap();
    kids.join_all();
    assert!(event.is_set().unwrap());
}
