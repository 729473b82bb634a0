//! Barrier: CPython's `_TestBarrier` (lockstep, return indices, action, abort, reset,
//! abort-and-reset, timeout, default timeout, single party, 5 processes x 1,000 passes in strict
//! order) with real child processes, plus a dead party and a failing action.

mod common;

use std::time::Duration;

use common::{count, eventually, Kids};
use multiproc::sync::{Barrier, BarrierError, Lock, Semaphore};
use multiproc::{mailbox, Addr, Process};

const N: usize = 5;
const LONG: Duration = Duration::from_secs(30);

/// CPython's `run_threads`: N-1 child processes and this one run the same body.
fn run_parties<T: serde::de::DeserializeOwned>(spawn: impl Fn() -> Process<T>, me: impl FnOnce()) -> Vec<T> {
    let mut kids = Kids::new();
    for _ in 0..N - 1 {
        kids.push(spawn());
    }
    me();
    kids.join_all()
}

fn barrier() -> Barrier {
    Barrier::builder(N).timeout(LONG).build().unwrap()
}

fn multipass(barrier: &Barrier, r0: &Semaphore, r1: &Semaphore, passes: u64) {
    let m = barrier.parties() as u64;
    assert_eq!(m, N as u64);
    for i in 0..passes {
        r0.release().unwrap();
        assert_eq!(count(r1), i * m);
        barrier.wait().unwrap();
        r1.release().unwrap();
        assert_eq!(count(r0), (i + 1) * m);
        barrier.wait().unwrap();
    }
    assert_eq!(barrier.n_waiting().unwrap(), 0);
    assert!(!barrier.broken().unwrap());
}

#[multiproc::worker]
fn multipass_w(barrier: Barrier, r0: Semaphore, r1: Semaphore, passes: u64) {
    multipass(&barrier, &r0, &r1, passes);
}

fn lockstep(passes: u64) {
    let b = barrier();
    let (r0, r1) = (Semaphore::new(0).unwrap(), Semaphore::new(0).unwrap());
    run_parties(
        || {
            Process::new(multipass_w(b.clone(), r0.clone(), r1.clone(), passes))
                .start()
                .unwrap()
        },
        || multipass(&b, &r0, &r1, passes),
    );
}

#[test]
fn test_barrier() {
    lockstep(1);
}

#[test]
fn test_barrier_10() {
    lockstep(10);
}

#[multiproc::worker]
fn wait_return_w(barrier: Barrier) -> usize {
    barrier.wait().unwrap()
}

#[test]
fn test_wait_return() {
    let b = barrier();
    let mut mine = None;
    let mut results = run_parties(
        || Process::new(wait_return_w(b.clone())).start().unwrap(),
        || mine = Some(b.wait().unwrap()),
    );
    results.extend(mine);
    assert_eq!(results.iter().filter(|i| **i == 0).count(), 1);
    results.sort();
    assert_eq!(results, (0..N).collect::<Vec<_>>());
}

#[multiproc::worker]
fn append_true(results: Semaphore) {
    results.release().unwrap();
}

#[multiproc::worker]
fn action_w(barrier: Barrier, results: Semaphore) -> bool {
    barrier.wait().unwrap();
    count(&results) == 1
}

#[test]
fn test_action() {
    let results = Semaphore::new(0).unwrap();
    let b = Barrier::builder(N)
        .action(append_true(results.clone()))
        .build()
        .unwrap();
    let mut mine = false;
    let seen = run_parties(
        || Process::new(action_w(b.clone(), results.clone())).start().unwrap(),
        || {
            b.wait().unwrap();
            mine = count(&results) == 1;
        },
    );
    // The action ran exactly once, before anyone was released.
    assert!(mine && seen.iter().all(|s| *s), "{seen:?}");
    assert_eq!(count(&results), 1);
}

fn abort_f(barrier: &Barrier, r1: &Semaphore, r2: &Semaphore) {
    let run = || -> Result<(), BarrierError> {
        let i = barrier.wait()?;
        if i == N / 2 {
            return Err(BarrierError::Invalid("RuntimeError".into()));
        }
        barrier.wait()?;
        r1.release().unwrap();
        Ok(())
    };
    match run() {
        Ok(()) => {}
        Err(BarrierError::Broken) => r2.release().unwrap(),
        Err(BarrierError::Invalid(_)) => barrier.abort().unwrap(),
        Err(e) => panic!("{e}"),
    }
}

#[multiproc::worker]
fn abort_w(barrier: Barrier, r1: Semaphore, r2: Semaphore) {
    abort_f(&barrier, &r1, &r2);
}

#[test]
fn test_abort() {
    let b = barrier();
    let (r1, r2) = (Semaphore::new(0).unwrap(), Semaphore::new(0).unwrap());
    run_parties(
        || {
            Process::new(abort_w(b.clone(), r1.clone(), r2.clone()))
                .start()
                .unwrap()
        },
        || abort_f(&b, &r1, &r2),
    );
    assert_eq!(count(&r1), 0);
    assert_eq!(count(&r2), N as u64 - 1);
    assert!(b.broken().unwrap());
}

fn reset_f(barrier: &Barrier, r1: &Semaphore, r2: &Semaphore, r3: &Semaphore) {
    let i = barrier.wait().unwrap();
    if i == N / 2 {
        // Wait until the other parties are all in the barrier.
        assert!(eventually(LONG, || barrier.n_waiting().unwrap() == N - 1));
        barrier.reset().unwrap();
    } else {
        match barrier.wait() {
            Ok(_) => r1.release().unwrap(),
            Err(BarrierError::Broken) => r2.release().unwrap(),
            Err(e) => panic!("{e}"),
        }
    }
    // Now, pass the barrier again.
    barrier.wait().unwrap();
    r3.release().unwrap();
}

#[multiproc::worker]
fn reset_w(barrier: Barrier, r1: Semaphore, r2: Semaphore, r3: Semaphore) {
    reset_f(&barrier, &r1, &r2, &r3);
}

#[test]
fn test_reset() {
    let b = barrier();
    let r: Vec<Semaphore> = (0..3).map(|_| Semaphore::new(0).unwrap()).collect();
    run_parties(
        || {
            Process::new(reset_w(b.clone(), r[0].clone(), r[1].clone(), r[2].clone()))
                .start()
                .unwrap()
        },
        || reset_f(&b, &r[0], &r[1], &r[2]),
    );
    assert_eq!(count(&r[0]), 0);
    assert_eq!(count(&r[1]), N as u64 - 1);
    assert_eq!(count(&r[2]), N as u64);
}

fn abort_and_reset_f(barrier: &Barrier, barrier2: &Barrier, r1: &Semaphore, r2: &Semaphore, r3: &Semaphore) {
    abort_f(barrier, r1, r2);
    // Synchronise and reset the barrier: everyone has left it when we reset, and nobody
    // enters it before the reset.
    if barrier2.wait().unwrap() == N / 2 {
        barrier.reset().unwrap();
    }
    barrier2.wait().unwrap();
    barrier.wait().unwrap();
    r3.release().unwrap();
}

#[multiproc::worker]
fn abort_and_reset_w(barrier: Barrier, barrier2: Barrier, r1: Semaphore, r2: Semaphore, r3: Semaphore) {
    abort_and_reset_f(&barrier, &barrier2, &r1, &r2, &r3);
}

#[test]
fn test_abort_and_reset() {
    let b = barrier();
    let b2 = Barrier::new(N).unwrap();
    let r: Vec<Semaphore> = (0..3).map(|_| Semaphore::new(0).unwrap()).collect();
    run_parties(
        || {
            Process::new(abort_and_reset_w(
                b.clone(),
                b2.clone(),
                r[0].clone(),
                r[1].clone(),
                r[2].clone(),
            ))
            .start()
            .unwrap()
        },
        || abort_and_reset_f(&b, &b2, &r[0], &r[1], &r[2]),
    );
    assert_eq!(count(&r[0]), 0);
    assert_eq!(count(&r[1]), N as u64 - 1);
    assert_eq!(count(&r[2]), N as u64);
}

fn timeout_f(barrier: &Barrier, results: &Semaphore, use_default: bool) {
    let i = barrier.wait_timeout(LONG).unwrap();
    if i == N / 2 {
        // One party is late.
        std::thread::sleep(Duration::from_millis(1000));
    }
    let r = if use_default {
        barrier.wait()
    } else {
        barrier.wait_timeout(Duration::from_millis(500))
    };
    match r {
        Err(BarrierError::Broken) => results.release().unwrap(),
        other => panic!("expected Broken, got {other:?}"),
    }
}

#[multiproc::worker]
fn timeout_w(barrier: Barrier, results: Semaphore, use_default: bool) {
    timeout_f(&barrier, &results, use_default);
}

#[test]
fn test_timeout() {
    let b = barrier();
    let results = Semaphore::new(0).unwrap();
    run_parties(
        || {
            Process::new(timeout_w(b.clone(), results.clone(), false))
                .start()
                .unwrap()
        },
        || timeout_f(&b, &results, false),
    );
    assert_eq!(count(&results), b.parties() as u64);
}

#[test]
fn test_default_timeout() {
    let b = Barrier::builder(N).timeout(Duration::from_millis(500)).build().unwrap();
    assert_eq!(b.timeout(), Some(Duration::from_millis(500)));
    let results = Semaphore::new(0).unwrap();
    run_parties(
        || {
            Process::new(timeout_w(b.clone(), results.clone(), true))
                .start()
                .unwrap()
        },
        || timeout_f(&b, &results, true),
    );
    assert_eq!(count(&results), b.parties() as u64);
}

#[test]
fn test_single_thread() {
    let b = Barrier::new(1).unwrap();
    assert_eq!(b.wait().unwrap(), 0);
    assert_eq!(b.wait().unwrap(), 0);
}

#[multiproc::worker]
fn thousand_w(barrier: Barrier, passes: u32, to: Addr<u32>, lock: Lock) {
    for i in 0..passes {
        barrier.wait().unwrap();
        let _g = lock.acquire().unwrap();
        to.send(&i).unwrap();
    }
}

/// CPython's `test_thousand`: 5 processes pass the barrier 1,000 times; what they send after
/// each pass arrives in strict pass order.
#[test]
fn test_thousand() {
    let passes = 1000;
    let b = barrier();
    let lock = Lock::new().unwrap();
    // The only test of this file that uses the mailbox (tests run in parallel in one process).
    let me = multiproc::current_process().addr::<u32>();
    let inbox = mailbox::<u32>();
    let mut kids = Kids::new();
    for _ in 0..N {
        kids.push(
            Process::new(thousand_w(b.clone(), passes, me.clone(), lock.clone()))
                .start()
                .unwrap(),
        );
    }
    for i in 0..passes {
        for _ in 0..N {
            assert_eq!(inbox.recv_timeout(LONG).unwrap(), i);
        }
    }
    kids.join_all();
}

// ----- beyond Python ---------------------------------------------------------------------------

#[multiproc::worker]
fn park_in_barrier(barrier: Barrier) -> bool {
    matches!(barrier.wait(), Err(BarrierError::Broken))
}

#[multiproc::worker]
fn park_forever(barrier: Barrier) {
    let _ = barrier.wait();
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn a_dead_party_breaks_the_barrier() {
    let b = Barrier::new(3).unwrap();
    let mut doomed = Kids::new();
    doomed.push(Process::new(park_forever(b.clone())).start().unwrap());
    let mut survivor = Kids::new();
    survivor.push(Process::new(park_in_barrier(b.clone())).start().unwrap());
    assert!(eventually(LONG, || b.n_waiting().unwrap() == 2));
    doomed.0[0].kill().unwrap();
    assert_eq!(survivor.join_all(), vec![true]);
    assert!(b.broken().unwrap());
    assert!(matches!(b.wait(), Err(BarrierError::Broken)));
    b.reset().unwrap();
    assert!(!b.broken().unwrap());
}

#[multiproc::worker]
fn failing_action() {
    panic!("the action failed on purpose");
}

#[test]
fn a_failing_action_breaks_the_barrier() {
    let b = Barrier::builder(2).action(failing_action()).build().unwrap();
    let mut kids = Kids::new();
    kids.push(Process::new(park_in_barrier(b.clone())).start().unwrap());
    assert!(eventually(LONG, || b.n_waiting().unwrap() == 1));
    // We arrive last, so we run the action.
    match b.wait() {
        Err(BarrierError::ActionFailed(why)) => assert!(why.contains("on purpose"), "{why}"),
        other => panic!("expected ActionFailed, got {other:?}"),
    }
    assert_eq!(kids.join_all(), vec![true]);
    assert!(b.broken().unwrap());
}

#[test]
fn wait_zero_with_parties_missing_breaks_the_barrier() {
    let b = Barrier::new(2).unwrap();
    assert!(matches!(b.wait_timeout(Duration::ZERO), Err(BarrierError::Broken)));
    assert!(b.broken().unwrap());
    assert!(matches!(Barrier::new(0), Err(BarrierError::Invalid(_))));
}

#[multiproc::worker]
fn action_counter_w(barrier: Barrier, gens: u32) {
    for _ in 0..gens {
        barrier.wait().unwrap();
    }
}

#[test]
fn the_action_runs_once_per_generation() {
    let runs = Semaphore::new(0).unwrap();
    let b = Barrier::builder(3).action(append_true(runs.clone())).build().unwrap();
    let mut kids = Kids::new();
    for _ in 0..2 {
        kids.push(Process::new(action_counter_w(b.clone(), 20)).start().unwrap());
    }
    for g in 0..20u64 {
        b.wait().unwrap();
        // Everyone was released after this generation's action, and only after it.
        assert_eq!(count(&runs), g + 1);
    }
    kids.join_all();
    assert_eq!(count(&runs), 20);
}
