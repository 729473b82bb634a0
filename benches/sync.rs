//! Benchmarks of the synchronisation primitives (issue 3).
//!
//! - `floor/is_set_rt`: the hub round-trip floor for this placement (a call the hub answers
//!   without doing anything: `Event::is_set`), and `floor/socketpair_rt`: a bare socketpair
//!   round trip between two threads.
//! - `lock/uncontended`: `drop(lock.acquire())` (one round trip plus a one-way release).
//! - `semaphore/acquire_release`: the same for a Semaphore(1) guard.
//! - `lock/contended_{2,4}procs`: N worker processes each do `with lock: counter += 1`; the
//!   time is per lock operation over all processes (throughput = total ops/s).
//! - `event/pingpong`: Python's `event_pingpong`: parent `ping.set(); pong.wait(); pong.clear()`,
//!   child `ping.wait(); ping.clear(); pong.set()`; one round = one iteration.
//!
//! Run: `cargo bench -p multiproc-benches --bench sync -- --warm-up-time 1 --measurement-time 3`
//! (prefix with `taskset -c 0` for the same-CPU placement).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use multiproc::sync::{Barrier, Event, Lock, Semaphore};
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
    let ev = Event::new().unwrap();
    g.bench_function("is_set_rt", |b| b.iter(|| ev.is_set().unwrap()));

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

criterion_group!(benches, floors, uncontended, contended, pingpong);
criterion_main!(benches);
