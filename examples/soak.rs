//! Soak: for `--seconds N` (default 30), kill pool workers, queue consumers and lock holders at
//! random with SIGKILL while they work, and check that nothing is lost or duplicated beyond
//! the documented semantics. Prints its counts and `RESULT: OK`, or exits 1 with what failed.
//!
//! ```sh
//! cargo run --release --example soak -- --seconds 30
//! ```
//!
//! What is checked:
//! - **Pool** (3 workers, one SIGKILLed every 200 ms): every task gets exactly one outcome;
//!   a value is always the right one; `WorkerDied` only for the task that was running on a
//!   killed worker (so at most one per kill); no other error.
//! - **JoinableQueue** (2 consumer processes, one SIGKILLed every 500 ms and replaced): every
//!   item put is processed; an item is processed twice only if its consumer died between
//!   reporting it and `task_done` (so at most one duplicate per kill); `join` returns.
//! - **Lock** (3 holder processes, one SIGKILLed every 300 ms and replaced): never two holders
//!   at once; a holder killed inside is reported to the next owner (`previous_owner_died`).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use multiproc::shm::AtomicU64;
use multiproc::{JoinableQueue, Lock, Pool, PoolError, Process, Queue};

#[multiproc::worker]
fn double(x: u64) -> u64 {
    x * 2
}

#[multiproc::worker]
fn consumer(jobs: JoinableQueue<u64>, done: Queue<u64>) {
    while let Ok(id) = jobs.get() {
        // Report first, then task_done: a kill in between is the one allowed duplicate.
        if done.put(id).is_err() {
            return;
        }
        if jobs.task_done().is_err() {
            return;
        }
    }
}

#[multiproc::worker]
fn lock_holder(lock: Lock, inside: AtomicU64, acquired: AtomicU64, recovered: AtomicU64, violations: AtomicU64) {
    loop {
        let Ok(g) = lock.acquire() else { return };
        if g.previous_owner_died() {
            recovered.fetch_add(1, Ordering::SeqCst);
            inside.store(0, Ordering::SeqCst);
        }
        if inside.swap(1, Ordering::SeqCst) != 0 {
            violations.fetch_add(1, Ordering::SeqCst);
        }
        acquired.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_micros(500));
        inside.store(0, Ordering::SeqCst);
        drop(g);
    }
}

/// A small xorshift generator (no dependency needed for picking victims).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    t | 1
}

fn sigkill(pid: i32) {
    let _ = multiproc::sys::proc::send_signal(pid, multiproc::sys::signal::SIGKILL);
}

#[derive(Default, Debug)]
struct PoolCounts {
    submitted: u64,
    ok: u64,
    died: u64,
    wrong: u64,
    other: u64,
    kills: u64,
}

fn soak_pool(until: Instant) -> PoolCounts {
    let mut c = PoolCounts::default();
    let pool = Pool::new(3).expect("pool");
    let mut rng = Rng(seed());
    let mut next_kill = Instant::now() + Duration::from_millis(200);
    let mut in_flight = VecDeque::new();
    let mut i = 0u64;
    let settle =
        |c: &mut PoolCounts, (x, r): (u64, multiproc::AsyncResult<u64>)| match r.get_timeout(Duration::from_secs(60)) {
            Ok(v) if v == x * 2 => c.ok += 1,
            Ok(v) => {
                eprintln!("pool: task {x} returned {v}");
                c.wrong += 1
            }
            Err(PoolError::WorkerDied { .. }) => c.died += 1,
            Err(e) => {
                eprintln!("pool: task {x} failed: {e}");
                c.other += 1
            }
        };
    while Instant::now() < until {
        while in_flight.len() < 64 {
            match pool.apply_async(double(i)) {
                Ok(r) => in_flight.push_back((i, r)),
                Err(e) => {
                    eprintln!("pool: submit failed: {e}");
                    c.other += 1;
                }
            }
            i += 1;
            c.submitted += 1;
        }
        if let Some(front) = in_flight.pop_front() {
            settle(&mut c, front);
        }
        if Instant::now() >= next_kill {
            let pids = pool.pids();
            if !pids.is_empty() {
                sigkill(pids[rng.pick(pids.len())]);
                c.kills += 1;
            }
            next_kill += Duration::from_millis(200);
        }
    }
    while let Some(front) = in_flight.pop_front() {
        settle(&mut c, front);
    }
    pool.close();
    if let Err(e) = pool.join_timeout(Duration::from_secs(60)) {
        eprintln!("pool: join failed: {e}");
        c.other += 1;
    }
    c
}

#[derive(Default, Debug)]
struct QueueCounts {
    produced: u64,
    processed: u64,
    duplicates: u64,
    lost: u64,
    kills: u64,
    join_failed: bool,
}

fn soak_queue(until: Instant) -> QueueCounts {
    let mut c = QueueCounts::default();
    let jobs: JoinableQueue<u64> = JoinableQueue::new().expect("queue");
    let done: Queue<u64> = Queue::new().expect("queue");
    let start = || {
        Process::new(consumer(jobs.clone(), done.clone()))
            .daemon(true)
            .start()
            .expect("consumer")
    };
    let mut consumers: Vec<Process<()>> = (0..2).map(|_| start()).collect();
    let mut rng = Rng(seed() ^ 0x9e37_79b9);
    let mut seen: HashMap<u64, u64> = HashMap::new();
    let drain = |seen: &mut HashMap<u64, u64>| {
        while let Ok(id) = done.try_get() {
            *seen.entry(id).or_default() += 1;
        }
    };
    let mut next_kill = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        let batch: Vec<u64> = (c.produced..c.produced + 50).collect();
        jobs.put_many(batch).expect("put");
        c.produced += 50;
        std::thread::sleep(Duration::from_millis(5));
        drain(&mut seen);
        if Instant::now() >= next_kill {
            let k = rng.pick(consumers.len());
            let _ = consumers[k].kill();
            let _ = consumers[k].join_timeout(Duration::from_secs(30));
            consumers[k] = start();
            c.kills += 1;
            next_kill += Duration::from_millis(500);
        }
    }
    c.join_failed = jobs.join_timeout(Duration::from_secs(120)).is_err();
    drain(&mut seen);
    for p in &consumers {
        let _ = p.kill();
    }
    for p in &mut consumers {
        let _ = p.join_timeout(Duration::from_secs(30));
    }
    for id in 0..c.produced {
        match seen.get(&id) {
            None => c.lost += 1,
            Some(&n) => {
                c.processed += 1;
                c.duplicates += n - 1;
            }
        }
    }
    c
}

#[derive(Default, Debug)]
struct LockCounts {
    acquisitions: u64,
    kills: u64,
    recovered: u64,
    violations: u64,
}

fn soak_locks(until: Instant) -> LockCounts {
    let lock = Lock::new().expect("lock");
    let zero = || AtomicU64::new(0).expect("shared memory");
    let (inside, acquired, recovered, violations) = (zero(), zero(), zero(), zero());
    let start = || {
        Process::new(lock_holder(
            lock.clone(),
            inside.clone(),
            acquired.clone(),
            recovered.clone(),
            violations.clone(),
        ))
        .daemon(true)
        .start()
        .expect("lock holder")
    };
    let mut holders: Vec<Process<()>> = (0..3).map(|_| start()).collect();
    let mut rng = Rng(seed() ^ 0x5851_f42d);
    let mut kills = 0;
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(300));
        let k = rng.pick(holders.len());
        let _ = holders[k].kill();
        let _ = holders[k].join_timeout(Duration::from_secs(30));
        holders[k] = start();
        kills += 1;
    }
    for p in &holders {
        let _ = p.kill();
    }
    for p in &mut holders {
        let _ = p.join_timeout(Duration::from_secs(30));
    }
    LockCounts {
        acquisitions: acquired.load(Ordering::SeqCst),
        kills,
        recovered: recovered.load(Ordering::SeqCst),
        violations: violations.load(Ordering::SeqCst),
    }
}

fn main() {
    let mut seconds = 30u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => {
                seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
                    eprintln!("--seconds needs a number");
                    std::process::exit(2)
                })
            }
            other => {
                eprintln!("unknown argument {other}; usage: soak [--seconds N]");
                std::process::exit(2);
            }
        }
    }
    let began = Instant::now();
    let until = began + Duration::from_secs(seconds);
    let (p, q, l) = std::thread::scope(|s| {
        let p = s.spawn(|| soak_pool(until));
        let q = s.spawn(|| soak_queue(until));
        let l = s.spawn(|| soak_locks(until));
        (
            p.join().expect("pool thread"),
            q.join().expect("queue thread"),
            l.join().expect("lock thread"),
        )
    });
    println!("soak: {} s (ran {:.1} s)", seconds, began.elapsed().as_secs_f64());
    println!(
        "pool:  submitted {}, ok {}, WorkerDied {}, wrong {}, other errors {}, worker kills {}",
        p.submitted, p.ok, p.died, p.wrong, p.other, p.kills
    );
    println!(
        "queue: produced {}, processed {}, duplicates {}, lost {}, consumer kills {}, join {}",
        q.produced,
        q.processed,
        q.duplicates,
        q.lost,
        q.kills,
        if q.join_failed { "TIMED OUT" } else { "ok" }
    );
    println!(
        "locks: acquisitions {}, holder kills {}, previous-owner-died recoveries {}, mutual-exclusion violations {}",
        l.acquisitions, l.kills, l.recovered, l.violations
    );
    let mut failures = Vec::new();
    if p.ok + p.died != p.submitted || p.wrong > 0 || p.other > 0 {
        failures.push("pool: a task got no outcome, a wrong value, or an unexpected error");
    }
    if p.died > p.kills {
        failures.push("pool: more WorkerDied than worker kills (a task that never ran failed)");
    }
    if q.lost > 0 || q.join_failed {
        failures.push("queue: items lost, or join never returned");
    }
    if q.duplicates > q.kills {
        failures.push("queue: more duplicates than consumer kills");
    }
    if l.violations > 0 {
        failures.push("locks: two holders at once");
    }
    if l.recovered > l.kills {
        failures.push("locks: more previous-owner-died reports than holder kills");
    }
    if failures.is_empty() {
        println!("RESULT: OK");
    } else {
        for f in &failures {
            println!("FAILED: {f}");
        }
        std::process::exit(1);
    }
}
