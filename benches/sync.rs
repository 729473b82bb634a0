//! Benchmarks of the synchronisation primitives (issue 3).
//!
//! - `floor/hub_rt`: the hub round-trip floor for this placement (a call the hub answers
//!   without doing anything: `Ping`; `Event::is_set` no longer goes to the hub), and `floor/socketpair_rt`: a bare socketpair
//!   round trip between two threads.
//! - `lock/uncontended`: `drop(lock.acquire())` (one round trip plus a one-way release).
//! - `semaphore/acquire_release`: the same for a Semaphore(1) guard.
//! - `lock/contended_{2,4}procs`: N worker processes each do `with lock: counter += 1`; the
//!   time is per lock operation over all processes (throughput = total ops/s).
//! - `event/pingpong`: Python's `event_pingpong`: parent `ping.set(); pong.wait(); pong.clear()`,
//!   child `ping.wait(); ping.clear(); pong.set()`; one round = one iteration.
//!
//! - Issue 9 (the shared-memory fast paths): `rlock/uncontended`,
//!   `bounded_semaphore/acquire_release`, `event/set_wait_set` (a `wait` on a set event: user
//!   space only), `condition/pingpong` (parent `notify(); wait()`, child `wait(); notify()`
//!   under one lock: one iteration = two notify → waiter-wakes hops, as Python's
//!   `condition_rt`), `barrier/4parties` (time per generation, parent + 3 children), and
//!   `lock/owner_death_recovery` (SIGKILL of a child holding the lock → the parent's pending
//!   `acquire` returns; one iteration = one kill, the child's start is not timed).
//!
//! Run: `cargo bench -p multiproc-benches --bench sync -- --warm-up-time 1 --measurement-time 3`
//! (prefix with `taskset -c 0` for the same-CPU placement).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use multiproc::sync::{Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore};
use multiproc::{mailbox, Process};

#[multiproc::worker]
fn contender(lock: Lock, start: Barrier, end: Barrier) -> u64 {
    let inbox = mailbox::<u64>();
    let mut counter = 0u64;
    loop {
        let k = inbox.recv().unwrap();
        if k == 0 {
            return counter;
        }
        start.wait().unwrap();
        for _ in 0..k {
            let _g = lock.acquire().unwrap();
            counter += 1;
        }
        end.wait().unwrap();
    }
}

#[multiproc::worker]
fn cond_side(cond: Condition, stop: Event, ready: Semaphore) {
    let _g = cond.acquire().unwrap();
    ready.release().unwrap();
    loop {
        cond.wait().unwrap();
        if stop.is_set().unwrap() {
            cond.notify().unwrap();
            return;
        }
        cond.notify().unwrap();
    }
}

#[multiproc::worker]
fn barrier_party(b: Barrier) {
    let inbox = mailbox::<u64>();
    loop {
        let k = inbox.recv().unwrap();
        if k == 0 {
            return;
        }
        for _ in 0..k {
            b.wait().unwrap();
        }
    }
}

#[multiproc::worker]
fn hold_until_killed(lock: Lock, held: Semaphore) {
    let _g = lock.acquire().unwrap();
    held.release().unwrap();
    std::thread::sleep(Duration::from_secs(600));
}

#[multiproc::worker]
fn pong_side(ping: Event, pong: Event, stop: Event) {
    loop {
        ping.wait().unwrap();
        if stop.is_set().unwrap() {
            return;
        }
        ping.clear().unwrap();
        pong.set().unwrap();
    }
}

fn floors(c: &mut Criterion) {
    let mut g = c.benchmark_group("floor");
    g.bench_function("hub_rt", |b| b.iter(|| multiproc::runtime::ping_hub().unwrap()));

    let (mut a, mut bsock) = UnixStream::pair().unwrap();
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 16];
        while bsock.read_exact(&mut buf).is_ok() {
            if buf[0] == 0xff || bsock.write_all(&buf).is_err() {
                break;
            }
        }
    });
    g.bench_function("socketpair_rt", |b| {
        let mut buf = [1u8; 16];
        b.iter(|| {
            a.write_all(&buf).unwrap();
            a.read_exact(&mut buf).unwrap();
        })
    });
    a.write_all(&[0xff; 16]).unwrap();
    echo.join().unwrap();
    g.finish();
}

fn uncontended(c: &mut Criterion) {
    let lock = Lock::new().unwrap();
    c.bench_function("lock/uncontended", |b| b.iter(|| drop(lock.acquire().unwrap())));
    let sem = Semaphore::new(1).unwrap();
    c.bench_function("semaphore/acquire_release", |b| b.iter(|| drop(sem.acquire().unwrap())));
    let rlock = RLock::new().unwrap();
    c.bench_function("rlock/uncontended", |b| b.iter(|| drop(rlock.acquire().unwrap())));
    let bsem = BoundedSemaphore::new(1).unwrap();
    c.bench_function("bounded_semaphore/acquire_release", |b| {
        b.iter(|| drop(bsem.acquire().unwrap()))
    });
    let ev = Event::new().unwrap();
    ev.set().unwrap();
    c.bench_function("event/set_wait_set", |b| b.iter(|| ev.wait().unwrap()));
}

fn condition(c: &mut Criterion) {
    let cond = Condition::new().unwrap();
    let stop = Event::new().unwrap();
    let ready = Semaphore::new(0).unwrap();
    let mut child = Process::new(cond_side(cond.clone(), stop.clone(), ready.clone()))
        .start()
        .unwrap();
    ready.acquire().unwrap().forget();
    let g = cond.acquire().unwrap();
    c.bench_function("condition/pingpong", |b| {
        b.iter(|| {
            cond.notify().unwrap();
            cond.wait().unwrap();
        })
    });
    stop.set().unwrap();
    cond.notify().unwrap();
    let _ = cond.wait_timeout(Duration::from_secs(10));
    drop(g);
    child.join_timeout(Duration::from_secs(10)).unwrap();
}

fn barrier(c: &mut Criterion) {
    let mut g = c.benchmark_group("barrier");
    g.sample_size(10);
    let b4 = Barrier::new(4).unwrap();
    let mut kids: Vec<_> = (0..3)
        .map(|_| Process::new(barrier_party(b4.clone())).start().unwrap())
        .collect();
    g.bench_function("4parties", |b| {
        b.iter_custom(|iters| {
            for k in &kids {
                k.send(&(iters + 1)).unwrap();
            }
            b4.wait().unwrap(); // everyone is running
            let t = Instant::now();
            for _ in 0..iters {
                b4.wait().unwrap();
            }
            t.elapsed()
        })
    });
    for k in &kids {
        k.send(&0u64).unwrap();
    }
    for k in &mut kids {
        k.join().unwrap();
    }
    g.finish();
}

fn owner_death(c: &mut Criterion) {
    let mut g = c.benchmark_group("lock");
    g.sample_size(10);
    g.sampling_mode(criterion::SamplingMode::Flat);
    g.bench_function("owner_death_recovery", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let lock = Lock::new().unwrap();
                let held = Semaphore::new(0).unwrap();
                let mut child = Process::new(hold_until_killed(lock.clone(), held.clone()))
                    .start()
                    .unwrap();
                held.acquire().unwrap().forget();
                let t = Instant::now();
                child.kill().unwrap();
                let g = lock.acquire().unwrap();
                total += t.elapsed();
                assert!(g.previous_owner_died());
                drop(g);
                let _ = child.join_timeout(Duration::from_secs(10));
            }
            total
        })
    });
    g.finish();
}

fn contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("lock");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    for n in [2usize, 4] {
        let lock = Lock::new().unwrap();
        let start = Barrier::new(n + 1).unwrap();
        let end = Barrier::new(n + 1).unwrap();
        let mut kids: Vec<_> = (0..n)
            .map(|_| {
                Process::new(contender(lock.clone(), start.clone(), end.clone()))
                    .start()
                    .unwrap()
            })
            .collect();
        g.bench_function(format!("contended_{n}procs"), |b| {
            b.iter_custom(|iters| {
                let per = iters.div_ceil(n as u64).max(1);
                for k in &kids {
                    k.send(&per).unwrap();
                }
                start.wait().unwrap();
                let t = Instant::now();
                end.wait().unwrap();
                let el = t.elapsed();
                // Scale to exactly `iters` operations.
                el.mul_f64(iters as f64 / (per * n as u64) as f64)
            })
        });
        for k in &kids {
            k.send(&0u64).unwrap();
        }
        for k in &mut kids {
            k.join().unwrap();
        }
    }
    g.finish();
}

fn pingpong(c: &mut Criterion) {
    let (ping, pong, stop) = (Event::new().unwrap(), Event::new().unwrap(), Event::new().unwrap());
    let mut child = Process::new(pong_side(ping.clone(), pong.clone(), stop.clone()))
        .start()
        .unwrap();
    c.bench_function("event/pingpong", |b| {
        b.iter(|| {
            ping.set().unwrap();
            pong.wait().unwrap();
            pong.clear().unwrap();
        })
    });
    stop.set().unwrap();
    ping.set().unwrap();
    child.join_timeout(Duration::from_secs(10)).unwrap();
}

criterion_group!(
    benches,
    floors,
    uncontended,
    contended,
    pingpong,
    condition,
    barrier,
    owner_death
);
criterion_main!(benches);
