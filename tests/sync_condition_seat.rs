//! Condition `wait`/`notify` in shared memory (the *condition seat*, issue 9): FIFO order
//! between the seat's waiter and the waiters parked in the hub, notify_all, timeouts, a notify
//! racing a timeout, SIGKILL of a waiter blocked in the seat and of a notifier holding the
//! lock, notifiers and waiters without the fast path, `wait_for`, interrupt mode, and garbage
//! written into the seat (the trust model).
//!
//! Run with `MULTIPROC_SYNC_FASTPATH=0` too: every test then checks the message protocol (the
//! assertions about where a waiter waits are skipped).
//!
//! Every test knows that a waiter is registered because the parent takes the condition's lock
//! after the waiter said "ready" while holding it: the lock is free only once the waiter has
//! released it inside `wait`. No test assumes which process runs first.

mod common;

use std::time::{Duration, Instant};

use common::{count, eventually, notify_and_hang, take, Kids, LONG};
use multiproc::observe::ProcId;
use multiproc::sync::{slow_path_calls, use_messages_only, Condition, ConditionError, Lock, RLock, Semaphore};
use multiproc::Process;

/// Did the environment turn the fast path off for this run?
fn fast_expected() -> bool {
    !matches!(
        std::env::var("MULTIPROC_SYNC_FASTPATH").as_deref(),
        Ok("0") | Ok("off") | Ok("false") | Ok("no")
    )
}

const SEAT_OP: &str = "condition wait (shared memory)";

/// Waits once on `cond` (saying `ready` while it holds the lock), then releases `woken`.
/// Returns whether it was notified, or the error's name.
#[multiproc::worker]
fn waiter(cond: Condition, ready: Semaphore, woken: Semaphore, timeout_ms: Option<u64>, messages_only: bool) -> String {
    if messages_only {
        assert!(use_messages_only());
    }
    let g = cond.acquire().unwrap();
    ready.release().unwrap();
    let r = match timeout_ms {
        Some(ms) => cond.wait_timeout(Duration::from_millis(ms)),
        None => cond.wait().map(|()| true),
    };
    woken.release().unwrap();
    let out = match r {
        Ok(b) => b.to_string(),
        Err(ConditionError::PreviousOwnerDied) => "PreviousOwnerDied".to_string(),
        Err(e) => format!("error: {e}"),
    };
    // The lock is held again after every ending but an interrupt.
    cond.notify_n(0).unwrap();
    drop(g);
    out
}

/// Starts a waiter and returns once it waits (the parent got the lock it released in `wait`).
fn start_waiter(
    kids: &mut Kids<String>,
    cond: &Condition,
    woken: &Semaphore,
    timeout_ms: Option<u64>,
    messages_only: bool,
) -> ProcId {
    let ready = Semaphore::new(0).unwrap();
    let p = Process::new(waiter(
        cond.clone(),
        ready.clone(),
        woken.clone(),
        timeout_ms,
        messages_only,
    ))
    .start()
    .unwrap();
    let id = p.proc_id();
    kids.push(p);
    take(&ready, LONG);
    drop(
        cond.acquire_timeout(LONG)
            .unwrap()
            .expect("the waiter never released the lock"),
    );
    id
}

/// The condition waiters of `lock` in a snapshot: (process, op).
fn cond_waiters(lock: &Lock) -> Vec<(ProcId, String)> {
    let s = multiproc::snapshot().unwrap();
    s.object(lock.id())
        .map(|o| {
            o.waiters
                .iter()
                .filter(|w| w.op.starts_with("condition wait"))
                .map(|w| (w.proc, w.op.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn notify_n(cond: &Condition, n: u32) {
    let _g = cond.acquire_timeout(LONG).unwrap().expect("lock");
    cond.notify_n(n).unwrap();
}

/// Nobody else gets woken within a while (the exactness of notify(n)).
fn stays_unwoken(sem: &Semaphore) {
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(count(sem), 0, "a waiter was woken without a notify");
}

fn fifo_one_of_three(messages_only_middle: bool) {
    let lock = Lock::new().unwrap();
    let cond = Condition::with_lock(&lock).unwrap();
    let woken: Vec<Semaphore> = (0..3).map(|_| Semaphore::new(0).unwrap()).collect();
    let mut kids = Kids::new();
    let ids: Vec<ProcId> = (0..3)
        .map(|i| start_waiter(&mut kids, &cond, &woken[i], None, i == 1 && messages_only_middle))
        .collect();
    // Where they wait: the first in the seat, the others in the hub.
    let rows = cond_waiters(&lock);
    assert_eq!(rows.len(), 3, "{rows:?}");
    if fast_expected() {
        assert!(rows.contains(&(ids[0], SEAT_OP.to_string())), "{rows:?}");
        assert!(rows.iter().filter(|r| r.1 == SEAT_OP).count() == 1, "{rows:?}");
    }
    // notify(1) wakes exactly the oldest, then the next.
    notify_n(&cond, 1);
    take(&woken[0], LONG);
    stays_unwoken(&woken[1]);
    stays_unwoken(&woken[2]);
    notify_n(&cond, 1);
    take(&woken[1], LONG);
    stays_unwoken(&woken[2]);
    notify_n(&cond, 1);
    take(&woken[2], LONG);
    assert_eq!(kids.join_all(), vec!["true"; 3]);
    assert!(cond_waiters(&lock).is_empty());
}

#[test]
fn notify_one_of_three_wakes_the_oldest() {
    fifo_one_of_three(false);
}

#[test]
fn fifo_holds_with_a_waiter_without_the_fast_path() {
    fifo_one_of_three(true);
}

#[test]
fn notify_all_wakes_the_seat_and_the_hub_waiters() {
    let cond = Condition::new().unwrap();
    let woken = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    for _ in 0..4 {
        start_waiter(&mut kids, &cond, &woken, None, false);
    }
    notify_n(&cond, u32::MAX);
    for _ in 0..4 {
        take(&woken, LONG);
    }
    assert_eq!(kids.join_all(), vec!["true"; 4]);
    // The seat is free again: the next wait and notify work as the first.
    start_waiter(&mut kids, &cond, &woken, None, false);
    let g = cond.acquire().unwrap();
    cond.notify_all().unwrap();
    drop(g);
    take(&woken, LONG);
}

#[test]
fn wait_timeout_is_not_early_and_returns_false() {
    let lock = RLock::new().unwrap();
    let cond = Condition::with_rlock(&lock).unwrap();
    let g1 = cond.acquire().unwrap();
    let g2 = cond.acquire().unwrap();
    for ms in [0u64, 1, 50, 300] {
        let t = Instant::now();
        assert!(!cond.wait_timeout(Duration::from_millis(ms)).unwrap());
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(ms), "{ms} ms took {took:?}");
        assert!(took < Duration::from_millis(ms) + LONG, "{ms} ms took {took:?}");
        // Held again, at the same depth.
        cond.notify().unwrap();
        assert!(lock.owner().unwrap().is_some());
    }
    drop(g2);
    // The depth was kept: one level is still held.
    assert!(lock.locked().unwrap());
    drop(g1);
    assert!(!lock.locked().unwrap());
    // A child's timed wait behind a seat waiter (so in the hub) times out too.
    let woken = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    start_waiter(&mut kids, &cond, &woken, None, false);
    start_waiter(&mut kids, &cond, &woken, Some(100), false);
    take(&woken, LONG);
    notify_n(&cond, 1);
    take(&woken, LONG);
    let out = kids.join_all();
    assert_eq!(out, vec!["true".to_string(), "false".to_string()]);
}

/// A notify(1) while one waiter times out and another waits: one of them gets it.
#[test]
fn a_notify_racing_a_timeout_is_never_lost() {
    let cond = Condition::new().unwrap();
    for round in 0..8u64 {
        let timed_first = round % 2 == 0;
        let t_woken = Semaphore::new(0).unwrap();
        let w_woken = Semaphore::new(0).unwrap();
        let mut kids = Kids::new();
        let timeout = 60 + 10 * (round / 2);
        if timed_first {
            start_waiter(&mut kids, &cond, &t_woken, Some(timeout), false);
            start_waiter(&mut kids, &cond, &w_woken, None, false);
        } else {
            start_waiter(&mut kids, &cond, &w_woken, None, false);
            start_waiter(&mut kids, &cond, &t_woken, Some(timeout), false);
        }
        std::thread::sleep(Duration::from_millis(70));
        notify_n(&cond, 1);
        take(&t_woken, LONG);
        let (t, w) = if timed_first { (0, 1) } else { (1, 0) };
        let t_out = kids.0[t].join_timeout(LONG).unwrap();
        if t_out == "false" {
            // The timed waiter did not get the notification: the other one must.
            take(&w_woken, LONG);
        } else {
            assert_eq!(t_out, "true");
            assert!(timed_first, "notify(1) skipped the oldest waiter");
            stays_unwoken(&w_woken);
            notify_n(&cond, 1);
            take(&w_woken, LONG);
        }
        assert_eq!(kids.0[w].join_timeout(LONG).unwrap(), "true");
    }
}

#[test]
fn sigkill_of_a_seat_waiter_leaves_no_stale_waiter() {
    let lock = Lock::new().unwrap();
    let cond = Condition::with_lock(&lock).unwrap();
    let dead_woken = Semaphore::new(0).unwrap();
    let woken = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    let k = start_waiter(&mut kids, &cond, &dead_woken, None, false);
    let w = start_waiter(&mut kids, &cond, &woken, None, false);
    if fast_expected() {
        assert!(cond_waiters(&lock).contains(&(k, SEAT_OP.to_string())));
    }
    kids.0[0].kill().unwrap();
    kids.0[0].join_timeout(LONG).unwrap_err();
    assert!(
        eventually(LONG, || cond_waiters(&lock).iter().all(|r| r.0 != k)),
        "the dead waiter stays listed"
    );
    assert_eq!(cond_waiters(&lock), vec![(w, "condition wait".to_string())]);
    // A later notify(1) wakes the live waiter.
    notify_n(&cond, 1);
    take(&woken, LONG);
    assert_eq!(kids.0[1].join_timeout(LONG).unwrap(), "true");
    // And the seat is usable again.
    let x = start_waiter(&mut kids, &cond, &woken, None, false);
    if fast_expected() {
        assert_eq!(cond_waiters(&lock), vec![(x, SEAT_OP.to_string())]);
    }
    notify_n(&cond, 1);
    take(&woken, LONG);
    assert_eq!(kids.0[2].join_timeout(LONG).unwrap(), "true");
    assert_eq!(count(&dead_woken), 0);
}

#[test]
fn sigkill_of_a_notifier_holding_the_lock_tells_the_waiter() {
    let cond = Condition::new().unwrap();
    let woken = Semaphore::new(0).unwrap();
    let acquired = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    start_waiter(&mut kids, &cond, &woken, None, false);
    let mut notifier = Process::new(notify_and_hang(cond.clone(), acquired.clone()))
        .start()
        .unwrap();
    take(&acquired, LONG);
    // Notified, but the notifier keeps the lock: the waiter cannot return yet.
    stays_unwoken(&woken);
    notifier.kill().unwrap();
    notifier.join_timeout(LONG).unwrap_err();
    take(&woken, LONG);
    assert_eq!(kids.join_all(), vec!["PreviousOwnerDied"]);
    // Told once: the next acquirer is not.
    let g = cond.acquire().unwrap();
    assert!(!g.previous_owner_died());
}

#[multiproc::worker]
fn notify_without_the_fast_path(cond: Condition, n: u32) {
    assert!(use_messages_only());
    let _g = cond.acquire().unwrap();
    cond.notify_n(n).unwrap();
}

#[test]
fn a_notifier_without_the_fast_path_wakes_the_seat() {
    let cond = Condition::new().unwrap();
    let woken = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    start_waiter(&mut kids, &cond, &woken, None, false);
    start_waiter(&mut kids, &cond, &woken, None, false);
    let mut n = Process::new(notify_without_the_fast_path(cond.clone(), 1))
        .start()
        .unwrap();
    n.join_timeout(LONG).unwrap();
    take(&woken, LONG);
    stays_unwoken(&woken);
    let mut n = Process::new(notify_without_the_fast_path(cond.clone(), u32::MAX))
        .start()
        .unwrap();
    n.join_timeout(LONG).unwrap();
    take(&woken, LONG);
    assert_eq!(kids.join_all(), vec!["true"; 2]);
}

#[test]
fn a_notify_without_waiters_sends_nothing() {
    let cond = Condition::new().unwrap();
    let g = cond.acquire().unwrap();
    let before = slow_path_calls();
    for _ in 0..100 {
        cond.notify().unwrap();
        cond.notify_all().unwrap();
    }
    drop(g);
    if fast_expected() {
        assert_eq!(slow_path_calls(), before);
    }
}

#[multiproc::worker]
fn bump_and_notify(cond: Condition, state: Semaphore, rounds: u32) {
    for _ in 0..rounds {
        let _g = cond.acquire().unwrap();
        state.release().unwrap();
        cond.notify().unwrap();
    }
}

#[test]
fn wait_for_a_predicate_across_processes() {
    let cond = Condition::new().unwrap();
    let state = Semaphore::new(0).unwrap();
    let g = cond.acquire().unwrap();
    let mut p = Process::new(bump_and_notify(cond.clone(), state.clone(), 5))
        .start()
        .unwrap();
    cond.wait_for(|| count(&state) >= 5).unwrap();
    assert!(count(&state) >= 5);
    assert!(!cond
        .wait_for_timeout(|| count(&state) >= 6, Duration::from_millis(100))
        .unwrap());
    drop(g);
    p.join_timeout(LONG).unwrap();
}

// ----- interrupt mode -----------------------------------------------------------------------

#[test]
#[ignore = "helper root for a_blocked_condition_wait_is_interrupted"]
fn helper_cond_interrupt() {
    if !common::is_helper("helper_cond_interrupt") {
        return;
    }
    multiproc::catch_interrupts().unwrap();
    let cond = Condition::new().unwrap();
    let c2 = cond.clone();
    let t = std::thread::spawn(move || {
        let g = c2.acquire().unwrap();
        let r = match c2.wait() {
            Err(ConditionError::Interrupted) => "INTERRUPTED".to_string(),
            Err(e) => format!("ERROR {e}"),
            Ok(()) => "NOTIFIED".to_string(),
        };
        // After an interrupted wait the lock is not held.
        g.forget();
        r
    });
    // The waiter holds the lock until it waits.
    std::thread::sleep(Duration::from_millis(100));
    drop(cond.acquire_timeout(LONG).unwrap().expect("the waiter never waited"));
    println!("READY {}", std::process::id());
    println!("wait {}", t.join().unwrap());
    // The lock is free and the next wait works as before.
    let g = cond.acquire_timeout(LONG).unwrap().expect("the lock stayed held");
    println!("again {}", cond.wait_timeout(Duration::from_millis(20)).unwrap());
    drop(g);
}

#[test]
fn a_blocked_condition_wait_is_interrupted() {
    let out = common::ctrl_c_helper_root("helper_cond_interrupt", Duration::from_millis(300));
    assert!(
        out.stdout.contains("wait INTERRUPTED") && out.stdout.contains("again false"),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
}

// ----- trust model --------------------------------------------------------------------------

/// Garbage in a condition seat (as a child that writes the arena could leave) breaks at most
/// that condition: every call on it still answers, within its timeout, the hub keeps
/// answering, and a condition on another lock works as before, waiter in a child included.
#[test]
fn scribbling_on_the_seat_breaks_that_condition_only() {
    let victim = Condition::new().unwrap();
    if !multiproc::sync::scribble_condition_seat(&victim, 0, [0, 0], 0) {
        assert!(!fast_expected());
        return;
    }
    let bystander = Condition::new().unwrap();
    let cwaits = [u32::MAX, 1, 2, 3, 5, 6, 0x7fff_fffd, 0xffff_fffe];
    let companions = [[0, 0], [u64::MAX, u64::MAX], [1 << 32, 1], [0x7777_0000_0000_0001, 42]];
    let mut calls = 0;
    for (i, &cw) in cwaits.iter().enumerate() {
        let comp = companions[i % companions.len()];
        let aux = [0, 1, u32::MAX][i % 3];
        assert!(multiproc::sync::scribble_condition_seat(&victim, cw, comp, aux));
        let t = Instant::now();
        if let Ok(Some(g)) = victim.acquire_timeout(Duration::from_millis(200)) {
            // Whatever these answer, they answer, and within their timeouts.
            let _ = victim.wait_timeout(Duration::from_millis(20));
            let _ = victim.notify();
            let _ = victim.notify_all();
            g.forget();
            let _ = victim.release();
            calls += 1;
        }
        assert!(
            t.elapsed() < LONG,
            "a call on the scribbled seat hung: {:?}",
            t.elapsed()
        );
        multiproc::runtime::ping_hub().expect("the hub stopped answering");
        let g = bystander.acquire().unwrap();
        assert!(!bystander.wait_timeout(Duration::from_millis(1)).unwrap());
        drop(g);
    }
    assert!(calls > 0, "the scribbled condition's lock could never be taken");
    // A thread scribbling as fast as it can while this one waits and notifies on it.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (v2, st) = (victim.clone(), stop.clone());
    let scribbler = std::thread::spawn(move || {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        while !st.load(std::sync::atomic::Ordering::Relaxed) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            multiproc::sync::scribble_condition_seat(&v2, x as u32, [x, x.rotate_left(32)], (x >> 40) as u32 & 1);
        }
    });
    let end = Instant::now() + Duration::from_millis(500);
    while Instant::now() < end {
        if let Ok(Some(g)) = victim.acquire_timeout(Duration::from_millis(50)) {
            let _ = victim.wait_timeout(Duration::from_millis(2));
            let _ = victim.notify();
            g.forget();
            let _ = victim.release();
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    scribbler.join().unwrap();
    multiproc::runtime::ping_hub().expect("the hub stopped answering");
    // The bystander, with a waiter in a child (in its own lock's seat), is untouched.
    let woken = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    start_waiter(&mut kids, &bystander, &woken, None, false);
    notify_n(&bystander, 1);
    take(&woken, LONG);
    assert_eq!(kids.join_all(), vec!["true"]);
}
