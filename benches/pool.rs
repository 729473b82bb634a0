//! Pool benchmarks (criterion), the Rust side of Python's `multiprocessing.Pool` numbers:
//! - `map` of a trivial function over 100,000 ints with the default chunk size, and with
//!   `chunksize=1` over 10,000 ints (criterion reports time per task and tasks/s);
//! - the `apply_async` round trip, one task at a time;
//! - the CPU-bound example's speedup over serial (printed, and both sides measured).
//!
//! Every case uses `Pool(2)`, started once outside the measured loop.
//!
//! Run: `cargo bench -p multiproc-benches --bench pool -- --warm-up-time 1 --measurement-time 3`

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use multiproc::pool::{Callbacks, Pool};

#[multiproc::worker]
fn trivial(x: u64) -> u64 {
    x + 1
}

fn train(start: u64, end: u64) -> f64 {
    let mut result = 0.0;
    for num in start..end {
        let x = num as f64;
        result += (x * x.tanh() / x.log2() / x.log10()).sqrt();
    }
    result
}

#[multiproc::worker]
fn train_on_parameter(start: u64, end: u64) -> f64 {
    train(start, end)
}

fn map_default(c: &mut Criterion) {
    let pool = Pool::new(2).unwrap();
    let mut g = c.benchmark_group("pool");
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("map_default_chunksize_100k", |b| {
        b.iter(|| {
            let v = pool.map(trivial, 0..100_000u64).unwrap();
            assert_eq!(v.len(), 100_000);
        })
    });
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("map_chunksize1_10k", |b| {
        b.iter(|| {
            let v = pool
                .map_async_each(trivial, 0..10_000u64, Some(1), Callbacks::new())
                .unwrap()
                .get()
                .unwrap();
            assert_eq!(v.len(), 10_000);
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("apply_async_round_trip", |b| {
        b.iter(|| {
            assert_eq!(pool.apply_async(trivial(1)).unwrap().get().unwrap(), 2);
        })
    });
    g.finish();
}

/// Eight ranges sized so the serial run takes about `target`.
fn ranges(target: Duration) -> Vec<(u64, u64)> {
    let n = 200_000u64;
    let t = Instant::now();
    std::hint::black_box(train(10, 10 + n));
    let per = t.elapsed().as_secs_f64().max(1e-9) / n as f64;
    let size = ((target.as_secs_f64() / 8.0 / per) as u64).max(10_000);
    (0..8).map(|i| (10 + i * size, 10 + (i + 1) * size)).collect()
}

fn cpu_bound(c: &mut Criterion) {
    let pool = Pool::new(2).unwrap();
    let rs = ranges(Duration::from_millis(800));
    let parallel = || {
        let hs: Vec<_> = rs
            .iter()
            .map(|&(s, e)| pool.apply_async(train_on_parameter(s, e)).unwrap())
            .collect();
        hs.iter().map(|h| h.get().unwrap()).sum::<f64>()
    };
    let serial = || rs.iter().map(|&(s, e)| train(s, e)).sum::<f64>();
    // A direct measurement of the speedup (medians of 5), printed for the report.
    let median = |f: &dyn Fn() -> f64| {
        let mut ts: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed().as_secs_f64()
            })
            .collect();
        ts.sort_by(|a, b| a.total_cmp(b));
        ts[2]
    };
    let (p, s) = (median(&parallel), median(&serial));
    println!(
        "pool/cpu_bound: parallel {:.3} s, serial {:.3} s, speedup {:.2}x on Pool(2)",
        p,
        s,
        s / p
    );
    let mut g = c.benchmark_group("pool_cpu_bound");
    g.sample_size(10);
    g.bench_function("parallel_pool2", |b| b.iter(parallel));
    g.bench_function("serial", |b| b.iter(serial));
    g.finish();
}

criterion_group!(benches, map_default, cpu_bound);
criterion_main!(benches);
