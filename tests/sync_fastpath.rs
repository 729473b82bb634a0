//! The shared-memory fast paths of Lock and RLock (and the locks built on them: Condition's,
//! Value's `get_lock()`): mutual exclusion under load, owner death through the fast path,
//! dead waiters, fairness, processes with and without the fast path on the same lock, and the
//! arena's memory. Run with `MULTIPROC_SYNC_FASTPATH=0` too: every test then checks the
//! message protocol (the fast-path-only assertions are skipped).

mod common;

use std::time::{Duration, Instant};

use common::{take, Kids};
use multiproc::shm::{RawValue, Value};
use multiproc::sync::{fastpath_active, slow_path_calls, BoundedSemaphore, Event, Lock, RLock, Semaphore};
use multiproc::Process;

const LONG: Duration = Duration::from_secs(20);

/// Increments per process in the mutual-exclusion tests (4 processes), as the issue asks:
/// 100,000 each. Contended acquisitions barge in shared memory, so a debug build does millions
/// per second even with 4 processes on 2 shared cores. The message-protocol run (every
/// acquisition a hub round trip) does 5,000 each.
/// Did the environment turn the fast path off for this run?
fn fast_expected() -> bool {
    !matches!(
        std::env::var("MULTIPROC_SYNC_FASTPATH").as_deref(),
        Ok("0") | Ok("off") | Ok("false") | Ok("no")
    )
}

fn n() -> u64 {
    if fast_expected() {
        100_000
    } else {
        5_000
    }
}

#[test]
fn the_fast_path_is_on_unless_turned_off() {
    let lock = Lock::new().unwrap();
    drop(lock.acquire().unwrap());
    assert_eq!(fastpath_active(), fast_expected());
    if fastpath_active() {
        // Uncontended acquire, release, re-entry, locked(), owner(): no hub message.
        let before = slow_path_calls();
        for _ in 0..1000 {
            let g = lock.acquire().unwrap();
            assert!(lock.locked().unwrap());
            assert!(lock.try_acquire().unwrap().is_none());
            drop(g);
        }
        let r = RLock::new().unwrap();
        let a = r.acquire().unwrap();
        let b = r.acquire().unwrap();
        assert_eq!(r.count().unwrap(), 2);
        assert!(r.is_owned().unwrap());
        drop(b);
        drop(a);
        assert!(!r.locked().unwrap());
        assert_eq!(slow_path_calls(), before, "an uncontended operation went to the hub");
    }
}

// ----- mutual exclusion under load ----------------------------------------------------------

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
enum Via {
    Lock,
    RLock,
    Sem,
    ValueLock,
}

/// What the incrementers share.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Shared {
    lock: Lock,
    rlock: RLock,
    sem: Semaphore,
    counter: RawValue<u64>,
    value: Value<u64>,
    start: Semaphore,
}

#[multiproc::worker]
fn incrementer(via: Via, sh: Shared, n: u64, messages_only: bool) -> u64 {
    if messages_only {
        assert!(multiproc::sync::use_messages_only());
    }
    take(&sh.start, LONG);
    let counter = &sh.counter;
    for _ in 0..n {
        match via {
            Via::Lock => {
                let _g = sh.lock.acquire().unwrap();
                counter.set(counter.get() + 1); // a read and a write: lost unless exclusive
            }
            Via::RLock => {
                let _g = sh.rlock.acquire().unwrap();
                let _h = sh.rlock.acquire().unwrap();
                counter.set(counter.get() + 1);
            }
            Via::Sem => {
                let _g = sh.sem.acquire().unwrap();
                counter.set(counter.get() + 1);
            }
            Via::ValueLock => {
                let _g = sh.value.get_lock().acquire().unwrap();
                let raw = sh.value.get_obj();
                raw.set(raw.get() + 1);
            }
        }
    }
    n
}

/// The heavy tests run one at a time (4 busy processes each, on 2 shared cores).
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn four_incrementers(via: Via, n: u64, messages_only: [bool; 4]) {
    let _one_at_a_time = HEAVY.lock().unwrap_or_else(|p| p.into_inner());
    let sh = Shared {
        lock: Lock::new().unwrap(),
        rlock: RLock::new().unwrap(),
        sem: Semaphore::new(1).unwrap(),
        counter: RawValue::<u64>::zeroed().unwrap(),
        value: Value::<u64>::zeroed().unwrap(),
        start: Semaphore::new(0).unwrap(),
    };
    let mut kids = Kids::new();
    for mo in messages_only {
        kids.push(Process::new(incrementer(via, sh.clone(), n, mo)).start().unwrap());
    }
    let t = Instant::now();
    sh.start.release_n(4).unwrap();
    assert_eq!(kids.join_all(), vec![n; 4]);
    eprintln!("{via:?}: 4 x {n} increments in {:?}", t.elapsed());
    let total = match via {
        Via::ValueLock => sh.value.get().unwrap(),
        _ => sh.counter.get(),
    };
    assert_eq!(total, 4 * n, "{via:?}: increments were lost");
    assert!(!sh.lock.locked().unwrap() && !sh.rlock.locked().unwrap());
}

#[test]
fn lock_mutual_exclusion_4_processes() {
    four_incrementers(Via::Lock, n(), [false; 4]);
}

#[test]
fn rlock_mutual_exclusion_4_processes() {
    four_incrementers(Via::RLock, n(), [false; 4]);
}

#[test]
fn value_get_lock_mutual_exclusion_4_processes() {
    four_incrementers(Via::ValueLock, n(), [false; 4]);
}

/// A Semaphore(1) as a lock. Three processes track their guard permits in the slot; the
/// fourth finds the slot's table full and goes through the hub: both kinds mix.
#[test]
fn semaphore_1_mutual_exclusion_4_processes() {
    four_incrementers(Via::Sem, n(), [false; 4]);
}

/// Two processes on the fast path and two on the message protocol share one lock.
#[test]
fn fast_and_message_processes_share_a_lock() {
    four_incrementers(Via::Lock, 5_000, [false, true, false, true]);
    four_incrementers(Via::RLock, 5_000, [true, false, true, false]);
}

// ----- owner death through the fast path ----------------------------------------------------

#[multiproc::worker]
fn hold_then_hang(lock: Lock, rlock: RLock, which: u8, fast: RawValue<u32>, acquired: Semaphore) {
    let before = slow_path_calls();
    let _guards = match which {
        0 => (Some(lock.acquire().unwrap()), Vec::new()),
        _ => (None, (0..3).map(|_| rlock.acquire().unwrap()).collect::<Vec<_>>()),
    };
    // 1: it took the lock with no hub message; 2: through the hub.
    fast.set(if slow_path_calls() == before { 1 } else { 2 });
    acquired.release().unwrap();
    std::thread::sleep(Duration::from_secs(600));
}

fn killed_holder(which: u8) {
    let lock = Lock::new().unwrap();
    let rlock = RLock::new().unwrap();
    let fast = RawValue::<u32>::zeroed().unwrap();
    let acquired = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    kids.push(
        Process::new(hold_then_hang(
            lock.clone(),
            rlock.clone(),
            which,
            fast.clone(),
            acquired.clone(),
        ))
        .start()
        .unwrap(),
    );
    take(&acquired, LONG);
    assert_eq!(fast.get(), if fast_expected() { 1 } else { 2 });
    if which == 0 {
        assert!(lock.locked().unwrap());
        assert!(lock.try_acquire().unwrap().is_none());
    } else {
        assert_eq!(rlock.count().unwrap(), 3);
        assert!(rlock.owner().unwrap().is_some_and(|o| o.pid == kids.0[0].pid()));
    }
    kids.0[0].kill().unwrap();
    let killed = Instant::now();
    let died = if which == 0 {
        let g = lock
            .acquire_timeout(Duration::from_secs(5))
            .unwrap()
            .expect("the dead owner's lock was not released");
        g.previous_owner_died()
    } else {
        let g = rlock
            .acquire_timeout(Duration::from_secs(5))
            .unwrap()
            .expect("the dead owner's rlock was not released");
        assert_eq!(rlock.count().unwrap(), 1);
        assert!(rlock.is_owned().unwrap());
        g.previous_owner_died()
    };
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(died, "the next owner was not told");
    // Told once.
    if which == 0 {
        assert!(!lock.acquire().unwrap().previous_owner_died());
    } else {
        assert!(!rlock.acquire().unwrap().previous_owner_died());
    }
}

#[test]
fn sigkill_of_a_fast_path_lock_holder() {
    killed_holder(0);
}

#[test]
fn sigkill_of_a_fast_path_rlock_holder_3_deep() {
    killed_holder(1);
}

/// The dead owner's lock is released even when nobody was waiting: a later fast-path
/// acquirer is the one told.
#[test]
fn a_later_fast_acquirer_is_told_of_the_dead_owner() {
    let lock = Lock::new().unwrap();
    let rlock = RLock::new().unwrap();
    let fast = RawValue::<u32>::zeroed().unwrap();
    let acquired = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    kids.push(
        Process::new(hold_then_hang(
            lock.clone(),
            rlock.clone(),
            0,
            fast.clone(),
            acquired.clone(),
        ))
        .start()
        .unwrap(),
    );
    take(&acquired, LONG);
    kids.0[0].kill().unwrap();
    assert!(kids.0[0].join_timeout(LONG).is_err());
    assert!(common::eventually(LONG, || !lock.locked().unwrap()));
    let before = slow_path_calls();
    let g = lock.try_acquire().unwrap().expect("free");
    assert!(g.previous_owner_died());
    if fast_expected() {
        assert_eq!(slow_path_calls(), before);
    }
}

// ----- a waiter killed while parked ---------------------------------------------------------

#[multiproc::worker]
fn block_on(lock: Lock, ready: Semaphore) {
    ready.release().unwrap();
    let _g = lock.acquire().unwrap();
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn sigkill_of_a_blocked_waiter_leaves_no_stale_waiter() {
    let lock = Lock::new().unwrap();
    let ready = Semaphore::new(0).unwrap();
    let held = lock.acquire().unwrap(); // fast path
    let mut kids = Kids::new();
    for _ in 0..2 {
        kids.push(Process::new(block_on(lock.clone(), ready.clone())).start().unwrap());
        take(&ready, LONG);
    }
    std::thread::sleep(Duration::from_millis(300)); // both are parked by now
    for k in &mut kids.0 {
        k.kill().unwrap();
        assert!(k.join_timeout(LONG).is_err());
    }
    // The release sees the waiters' flag and goes to the hub, which finds nobody alive.
    drop(held);
    assert!(!lock.locked().unwrap(), "the lock went to a dead waiter");
    let g = lock.try_acquire().unwrap().expect("free");
    assert!(!g.previous_owner_died());
    drop(g);
    // And the word is clean again: the next round trip is a fast one.
    if fast_expected() {
        let before = slow_path_calls();
        drop(lock.acquire().unwrap());
        assert_eq!(slow_path_calls(), before);
    }
}

// ----- timeouts with a holder in another process --------------------------------------------

#[multiproc::worker]
fn hold_for(lock: Lock, acquired: Semaphore, ms: u64) {
    let _g = lock.acquire().unwrap();
    acquired.release().unwrap();
    std::thread::sleep(Duration::from_millis(ms));
}

#[test]
fn timeouts_while_another_process_holds_the_lock() {
    let lock = Lock::new().unwrap();
    let acquired = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    kids.push(
        Process::new(hold_for(lock.clone(), acquired.clone(), 1500))
            .start()
            .unwrap(),
    );
    take(&acquired, LONG);
    let t = Instant::now();
    assert!(lock.try_acquire().unwrap().is_none());
    assert!(lock.acquire_timeout(Duration::ZERO).unwrap().is_none());
    assert!(t.elapsed() < Duration::from_secs(3));
    let t = Instant::now();
    assert!(lock.acquire_timeout(Duration::from_millis(200)).unwrap().is_none());
    let el = t.elapsed();
    assert!(el >= Duration::from_millis(200), "returned early: {el:?}");
    // The holder releases after 1.5 s: a long timeout gets it, handed over.
    let g = lock.acquire_timeout(LONG).unwrap().expect("not handed over");
    assert!(!g.previous_owner_died());
    drop(g);
    kids.join_all();
}

// ----- fairness -----------------------------------------------------------------------------

/// Contends until `phase` is 2, counting acquisitions while it is 1 (all four are running).
#[multiproc::worker]
fn contend(lock: Lock, counter: RawValue<u64>, started: Semaphore, phase: RawValue<u32>) -> u64 {
    started.release().unwrap();
    let mut n = 0;
    loop {
        let p = phase.get();
        if p == 2 {
            break;
        }
        let g = lock
            .acquire_timeout(Duration::from_secs(10))
            .unwrap()
            .expect("starved for 10 s");
        counter.set(counter.get() + 1);
        if p == 1 {
            n += 1;
        }
        drop(g);
    }
    n
}

/// One measured round of four contenders for 2 s: their acquisitions, in order.
fn fastpath_contention_round() -> Vec<u64> {
    let lock = Lock::new().unwrap();
    let counter = RawValue::<u64>::zeroed().unwrap();
    let started = Semaphore::new(0).unwrap();
    let phase = RawValue::<u32>::zeroed().unwrap();
    let mut kids = Kids::new();
    for _ in 0..4 {
        kids.push(
            Process::new(contend(lock.clone(), counter.clone(), started.clone(), phase.clone()))
                .start()
                .unwrap(),
        );
    }
    for _ in 0..4 {
        take(&started, LONG);
    }
    std::thread::sleep(Duration::from_millis(200));
    phase.set(1);
    std::thread::sleep(Duration::from_millis(2000));
    phase.set(2);
    let counts = kids.join_all();
    let total: u64 = counts.iter().sum();
    assert!(counter.get() >= total);
    counts
}

/// Each of 4 contenders gets at least 10 % of the acquisitions. A process with none fails at
/// once; the 10 % is given up to 3 rounds (a loaded 2-core machine can keep one process off the
/// CPU for part of a round, which the lock does not control and which does not repeat).
#[test]
fn four_contenders_each_get_at_least_10_percent() {
    let _one_at_a_time = HEAVY.lock().unwrap_or_else(|p| p.into_inner());
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let counts = fastpath_contention_round();
        let total: u64 = counts.iter().sum();
        eprintln!("acquisitions per process: {counts:?}");
        assert!(counts.iter().all(|&c| c > 0), "a process starved: {counts:?}");
        if counts.iter().all(|&c| c * 10 >= total) {
            return;
        }
        rounds.push(counts);
    }
    panic!("a process got less than 10 % in 3 rounds out of 3: {rounds:?}");
}

// ----- interrupt mode -----------------------------------------------------------------------

#[test]
#[ignore = "helper root for blocked_root_calls_are_interrupted_in_interrupt_mode"]
fn helper_lock_interrupt() {
    if !common::is_helper("helper_lock_interrupt") {
        return;
    }
    multiproc::catch_interrupts().unwrap();
    let lock = Lock::new().unwrap();
    let acquired = Semaphore::new(0).unwrap();
    let mut p = Process::new(hold_for(lock.clone(), acquired.clone(), 30_000))
        .ignore_sigint(true)
        .start()
        .unwrap();
    take(&acquired, LONG);
    // Three root threads block on the fast-path primitives: a held Lock, an unset Event, an
    // empty Semaphore. One Ctrl-C answers all three.
    let ev = Event::new().unwrap();
    let sem = Semaphore::new(0).unwrap();
    let (l2, e2, s2) = (lock.clone(), ev.clone(), sem.clone());
    let t_lock = std::thread::spawn(move || match l2.acquire() {
        Err(multiproc::sync::LockError::Interrupted) => "INTERRUPTED".to_string(),
        Err(e) => format!("ERROR {e}"),
        Ok(_) => "ACQUIRED".to_string(),
    });
    let t_ev = std::thread::spawn(move || match e2.wait() {
        Err(multiproc::sync::EventError::Interrupted) => "INTERRUPTED".to_string(),
        Err(e) => format!("ERROR {e}"),
        Ok(()) => "SET".to_string(),
    });
    let t_sem = std::thread::spawn(move || match s2.acquire() {
        Err(multiproc::sync::SemaphoreError::Interrupted) => "INTERRUPTED".to_string(),
        Err(e) => format!("ERROR {e}"),
        Ok(_) => "ACQUIRED".to_string(),
    });
    std::thread::sleep(Duration::from_millis(100));
    println!("READY {}", p.pid());
    for (what, t) in [("lock", t_lock), ("event", t_ev), ("semaphore", t_sem)] {
        println!("{what} {}", t.join().unwrap());
    }
    let _ = p.kill();
    let _ = p.join_timeout(LONG);
}

#[test]
fn blocked_root_calls_are_interrupted_in_interrupt_mode() {
    let out = common::ctrl_c_helper_root("helper_lock_interrupt", Duration::from_millis(300));
    assert!(
        out.stdout.contains("INTERRUPTED"),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
}

// ----- Event ----------------------------------------------------------------------------------

#[multiproc::worker]
fn set_after(ev: Event, ready: Semaphore, ms: u64) -> bool {
    ready.release().unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    let before = slow_path_calls();
    ev.set().unwrap();
    // The root is parked: the set had to tell the hub (unless there is no fast path at all).
    slow_path_calls() > before
}

#[test]
fn event_fast_path_and_a_set_from_another_process() {
    let ev = Event::new().unwrap();
    // Unset: a zero timeout does not wait, a positive one waits at least that long.
    assert!(!ev.try_wait().unwrap());
    assert!(!ev.wait_timeout(Duration::ZERO).unwrap());
    let t = Instant::now();
    assert!(!ev.wait_timeout(Duration::from_millis(200)).unwrap());
    assert!(t.elapsed() >= Duration::from_millis(200));
    // Set: waits, is_set and clear stay in user space.
    let before = slow_path_calls();
    ev.set().unwrap();
    assert!(ev.is_set().unwrap());
    for _ in 0..1000 {
        ev.wait().unwrap();
        assert!(ev.wait_timeout(Duration::from_secs(1)).unwrap());
    }
    ev.clear().unwrap();
    assert!(!ev.is_set().unwrap());
    assert!(!ev.try_wait().unwrap());
    if fast_expected() {
        assert_eq!(slow_path_calls(), before, "a fast event operation went to the hub");
    }
    // Parked in the hub, woken by a fast `set` in another process.
    let ready = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    kids.push(Process::new(set_after(ev.clone(), ready.clone(), 300)).start().unwrap());
    take(&ready, LONG);
    let t = Instant::now();
    assert!(ev.wait_timeout(LONG).unwrap(), "not woken");
    assert!(t.elapsed() < LONG);
    assert_eq!(kids.join_all(), vec![true]);
    assert!(ev.is_set().unwrap());
}

// ----- Semaphore ------------------------------------------------------------------------------

#[test]
fn semaphore_fast_path_round_trips() {
    let sem = Semaphore::new(2).unwrap();
    let bs = BoundedSemaphore::new(1).unwrap();
    drop(sem.acquire().unwrap()); // maps the arena
    let before = slow_path_calls();
    for _ in 0..1000 {
        let a = sem.acquire().unwrap();
        let b = sem.try_acquire().unwrap().expect("a second permit");
        assert!(sem.try_acquire().unwrap().is_none());
        assert!(sem.acquire_timeout(Duration::ZERO).unwrap().is_none());
        assert_eq!(sem.get_value().unwrap(), 0);
        drop(a);
        drop(b);
        let g = bs.acquire().unwrap();
        assert!(bs.locked().unwrap());
        drop(g);
    }
    assert_eq!(sem.get_value().unwrap(), 2);
    // Over-release of a BoundedSemaphore is refused on the fast path too.
    assert!(matches!(
        bs.release(),
        Err(multiproc::sync::SemaphoreError::TooManyReleases { value: 1, bound: 1, .. })
    ));
    // Raw acquire and release (signalling style).
    sem.acquire().unwrap().forget();
    assert_eq!(sem.get_value().unwrap(), 1);
    sem.release().unwrap();
    assert_eq!(sem.get_value().unwrap(), 2);
    if fast_expected() {
        assert_eq!(
            slow_path_calls(),
            before,
            "an uncontended semaphore operation went to the hub"
        );
    }
}

#[multiproc::worker]
fn take_permits_and_hang(sem: Semaphore, bs: BoundedSemaphore, fast: RawValue<u32>, acquired: Semaphore) {
    let before = slow_path_calls();
    let a = sem.acquire().unwrap();
    let b = sem.acquire().unwrap();
    let c = bs.acquire().unwrap();
    fast.set(if slow_path_calls() == before { 1 } else { 2 });
    acquired.release().unwrap();
    std::thread::sleep(Duration::from_secs(600));
    drop((a, b, c));
}

#[test]
fn sigkill_of_a_fast_path_permit_holder_gives_the_permits_back() {
    let sem = Semaphore::new(3).unwrap();
    let bs = BoundedSemaphore::new(1).unwrap();
    let fast = RawValue::<u32>::zeroed().unwrap();
    let acquired = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    kids.push(
        Process::new(take_permits_and_hang(
            sem.clone(),
            bs.clone(),
            fast.clone(),
            acquired.clone(),
        ))
        .start()
        .unwrap(),
    );
    take(&acquired, LONG);
    assert_eq!(fast.get(), if fast_expected() { 1 } else { 2 });
    assert_eq!(sem.get_value().unwrap(), 1);
    assert!(bs.try_acquire().unwrap().is_none());
    // A waiter parked for the BoundedSemaphore's only permit gets it when the holder dies.
    kids.0[0].kill().unwrap();
    let killed = Instant::now();
    let g = bs
        .acquire_timeout(Duration::from_secs(5))
        .unwrap()
        .expect("the dead holder's permit did not come back");
    assert!(killed.elapsed() < Duration::from_secs(1), "took {:?}", killed.elapsed());
    drop(g);
    assert!(common::eventually(LONG, || sem.get_value().unwrap() == 3));
    assert_eq!(bs.get_value().unwrap(), 1);
    // The bound still holds.
    assert!(bs.release().is_err());
}

// ----- a process scribbling on the arena ------------------------------------------------------

#[test]
fn scribbling_on_a_slot_breaks_that_lock_only() {
    let victim = Lock::new().unwrap();
    drop(victim.acquire().unwrap());
    if !multiproc::sync::scribble_lock_word(&victim, 0) {
        assert!(!fast_expected());
        return;
    }
    let bystander = Lock::new().unwrap();
    let patterns = [
        u64::MAX,
        1 << 31,
        (1 << 31) | 1,
        0x7777_0000_0000_0001, // a process that does not exist
        0xffff_ffff,
        2,
    ];
    for &w in &patterns {
        assert!(multiproc::sync::scribble_lock_word(&victim, w));
        // Whatever these answer, they answer, and quickly.
        let _ = victim.try_acquire().map(|g| g.map(|g| g.forget()));
        let _ = victim
            .acquire_timeout(Duration::from_millis(20))
            .map(|g| g.map(|g| g.forget()));
        let _ = victim.release();
        let _ = victim.locked();
        multiproc::runtime::ping_hub().expect("the hub stopped answering");
        drop(bystander.acquire().unwrap());
    }
    // A thread scribbling as fast as it can while this one calls the hub on the same lock.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (v2, st) = (victim.clone(), stop.clone());
    let scribbler = std::thread::spawn(move || {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        while !st.load(std::sync::atomic::Ordering::Relaxed) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            multiproc::sync::scribble_lock_word(&v2, x);
        }
    });
    let end = Instant::now() + Duration::from_millis(500);
    while Instant::now() < end {
        let _ = victim
            .acquire_timeout(Duration::from_millis(5))
            .map(|g| g.map(|g| g.forget()));
        let _ = victim.release();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    scribbler.join().unwrap();
    multiproc::runtime::ping_hub().expect("the hub stopped answering");
    // Everything else is untouched.
    let g = bystander.acquire().unwrap();
    assert!(!g.previous_owner_died());
    drop(g);
    let fresh = Lock::new().unwrap();
    drop(fresh.acquire().unwrap());
}
