//! Benchmarks of the Manager and shared memory (issue 6), next to `benches/python`'s
//! `manager_dict`, `manager_list_append` and `value_locked_incr`.
//!
//! - `manager/dict_set_get_child`: a child does `d.set(k, i)` (one-way) then `d.get(&k)` over
//!   64 int keys (Python: `d[k] = i; d[k]`); one iteration = one pair = 2 ops (throughput in
//!   ops/s).
//! - `manager/dict_insert_get_child`: the same with `d.insert(k, i)` (a round trip that returns
//!   the old value), so 2 round trips per pair, exactly like Python's proxy.
//! - `manager/list_append_child`: a child does `l.push(i)`; one iteration = one append.
//! - `manager/dict_fetch_add_child`: a child does `d.fetch_add(&k, 1)` (atomic, no lock).
//! - `shm/atomic_incr_2procs`: 2 processes each do `AtomicU64::fetch_add(1)` on one shared
//!   counter; time per increment over both processes (throughput = total ops/s).
//! - `shm/value_locked_incr_2procs`: the same with `Value::with_lock(|x| *x += 1)` (a hub
//!   lock round trip per increment; Python's locked `Value` uses a shared-memory semaphore).
//!
//! Run: `cargo bench -p multiproc-benches --bench manager -- --warm-up-time 1 --measurement-time 3`

use std::sync::atomic::Ordering;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use multiproc::manager::{Dict, List, Manager};
use multiproc::shm::{AtomicU64, Value};
use multiproc::sync::Barrier;
use multiproc::{mailbox, Process};

/// What a bench child runs, `k` times per round.
#[derive(serde::Serialize, serde::Deserialize)]
enum Work {
    DictSetGet(Dict<u64, u64>),
    DictInsertGet(Dict<u64, u64>),
    DictFetchAdd(Dict<u64, u64>),
    ListAppend(List<u64>),
    Atomic(AtomicU64),
    Locked(Value<u64>),
}

#[multiproc::worker]
fn bench_child(work: Work, start: Barrier, end: Barrier) {
    let inbox = mailbox::<u64>();
    loop {
        let k = inbox.recv().unwrap();
        if k == 0 {
            return;
        }
        start.wait().unwrap();
        match &work {
            Work::DictSetGet(d) => {
                for i in 0..k {
                    let key = i % 64;
                    d.set(key, i).unwrap();
                    assert_eq!(d.get(&key).unwrap(), Some(i));
                }
            }
            Work::DictInsertGet(d) => {
                for i in 0..k {
                    let key = i % 64;
                    d.insert(key, i).unwrap();
                    assert_eq!(d.get(&key).unwrap(), Some(i));
                }
            }
            Work::DictFetchAdd(d) => {
                for i in 0..k {
                    d.fetch_add(&(i % 64), 1).unwrap();
                }
            }
            Work::ListAppend(l) => {
                for i in 0..k {
                    l.push(i).unwrap();
                }
            }
            Work::Atomic(a) => {
                for _ in 0..k {
                    a.fetch_add(1, Ordering::Relaxed);
                }
            }
            Work::Locked(v) => {
                for _ in 0..k {
                    v.with_lock(|x| *x += 1).unwrap();
                }
            }
        }
        end.wait().unwrap();
    }
}

/// Runs `work()` in `n` children; one criterion iteration = one unit of work in total.
fn in_children(c: &mut Criterion, group: &str, name: &str, ops_per_iter: u64, n: usize, work: impl Fn() -> Work) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(ops_per_iter));
    g.sample_size(10);
    let start = Barrier::new(n + 1).unwrap();
    let end = Barrier::new(n + 1).unwrap();
    let mut kids: Vec<_> = (0..n)
        .map(|_| {
            Process::new(bench_child(work(), start.clone(), end.clone()))
                .start()
                .unwrap()
        })
        .collect();
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let per = iters.div_ceil(n as u64).max(1);
            for k in &kids {
                k.send(&per).unwrap();
            }
            start.wait().unwrap();
            let t = Instant::now();
            end.wait().unwrap();
            t.elapsed().mul_f64(iters as f64 / (per * n as u64) as f64)
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

fn manager(c: &mut Criterion) {
    let m = Manager::new().unwrap();
    let d = m.dict::<u64, u64>().unwrap();
    in_children(c, "manager", "dict_set_get_child", 2, 1, || Work::DictSetGet(d.clone()));
    in_children(c, "manager", "dict_insert_get_child", 2, 1, || {
        Work::DictInsertGet(d.clone())
    });
    let l = m.list::<u64>().unwrap();
    in_children(c, "manager", "list_append_child", 1, 1, || Work::ListAppend(l.clone()));
    let f = m.dict_from((0..64u64).map(|k| (k, 0u64))).unwrap();
    in_children(c, "manager", "dict_fetch_add_child", 1, 1, || {
        Work::DictFetchAdd(f.clone())
    });
    m.shutdown().unwrap();
}

fn shm(c: &mut Criterion) {
    let a = AtomicU64::zeroed().unwrap();
    in_children(c, "shm", "atomic_incr_2procs", 1, 2, || Work::Atomic(a.clone()));
    let v = Value::new(0u64).unwrap();
    in_children(c, "shm", "value_locked_incr_2procs", 1, 2, || Work::Locked(v.clone()));
}

criterion_group!(benches, manager, shm);
criterion_main!(benches);
