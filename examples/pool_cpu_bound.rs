//! Port of a Python tutorial program (below), "编写多进程" (writing multi-process code): the
//! CPU-bound `train_on_parameter` (sum of `sqrt(n * tanh(n) / log2(n) / log10(n))`) over eight
//! ranges `task1` .. `task8`, submitted with `apply_async` to `Pool(cpu_count())` and collected
//! with `get()`.
//!
//! What to observe: the core count, the per-task results, the parallel time, the serial time of
//! the same work in this process, and the speedup (close to the number of cores: each worker
//! runs on its own core). The original's ranges are 30 million numbers each; here the range size is
//! calibrated so that the serial run takes about 1.5 s whatever the build profile.
//!
//! Run: `cargo run --release --example pool_cpu_bound`
//!
//! The Python original:
//!
//! ```python
//! import math
//! import datetime
//! import multiprocessing as mp
//!
//! def train_on_parameter(name, param):
//!     result = 0
//!     for num in param:
//!         result += math.sqrt(num * math.tanh(num) / math.log2(num) / math.log10(num))
//!     return {name: result}
//!
//! if __name__ == '__main__':
//!     start_t = datetime.datetime.now()
//!     num_cores = int(mp.cpu_count())
//!     print("本地计算机有: " + str(num_cores) + " 核心")
//!     pool = mp.Pool(num_cores) # 最大可允许多少个进程
//!     param_dict = {'task1': list(range(10, 30000000)),
//!                   'task2': list(range(30000000, 60000000)),
//!                   'task3': list(range(60000000, 90000000)),
//!                   'task4': list(range(90000000, 120000000)),
//!                   'task5': list(range(120000000, 150000000)),
//!                   'task6': list(range(150000000, 180000000)),
//!                   'task7': list(range(180000000, 210000000)),
//!                   'task8': list(range(210000000, 240000000))}
//!     results = [pool.apply_async(train_on_parameter, args=(name, param)) for name, param in param_dict.items()]
//!     results = [p.get() for p in results]
//!
//!     end_t = datetime.datetime.now()
//!     elapsed_sec = (end_t - start_t).total_seconds()
//!     print("多进程计算 共消耗: " + "{:.2f}".format(elapsed_sec) + " 秒")
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use multiproc::cpu_count;
use multiproc::pool::Pool;

/// The original's `train_on_parameter`, over the numbers `start..end`.
fn train(start: u64, end: u64) -> f64 {
    let mut result = 0.0;
    for num in start..end {
        let x = num as f64;
        result += (x * x.tanh() / x.log2() / x.log10()).sqrt();
    }
    result
}

#[multiproc::worker]
fn train_on_parameter(name: String, start: u64, end: u64) -> BTreeMap<String, f64> {
    BTreeMap::from([(name, train(start, end))])
}

/// How many numbers per task make the serial run take about `target` (8 tasks).
fn calibrate(target: Duration) -> u64 {
    let n = 200_000u64;
    let t = Instant::now();
    std::hint::black_box(train(10, 10 + n));
    let per = t.elapsed().as_secs_f64().max(1e-6) / n as f64;
    ((target.as_secs_f64() / 8.0 / per) as u64).clamp(10_000, 30_000_000)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let num_cores = cpu_count();
    println!("本地计算机有: {num_cores} 核心 (this computer has {num_cores} cores)");
    let per_task = calibrate(Duration::from_millis(1500));
    let params: Vec<(String, u64, u64)> = (0..8u64)
        .map(|i| (format!("task{}", i + 1), 10 + i * per_task, 10 + (i + 1) * per_task))
        .collect();

    let start_t = Instant::now();
    let pool = Pool::new(num_cores)?;
    let results: Vec<_> = params
        .iter()
        .map(|(name, s, e)| pool.apply_async(train_on_parameter(name.clone(), *s, *e)))
        .collect::<Result<_, _>>()?;
    let mut merged = BTreeMap::new();
    for r in &results {
        merged.extend(r.get()?);
    }
    let parallel = start_t.elapsed();
    pool.close();
    pool.join()?;
    for (name, v) in &merged {
        println!("{name}: {v:.2}");
    }
    println!("多进程计算 共消耗 (parallel): {:.2} 秒", parallel.as_secs_f64());

    let start_t = Instant::now();
    let mut serial = BTreeMap::new();
    for (name, s, e) in &params {
        serial.insert(name.clone(), train(*s, *e));
    }
    let serial_t = start_t.elapsed();
    println!("单进程计算 共消耗 (serial): {:.2} 秒", serial_t.as_secs_f64());
    for (name, v) in &serial {
        assert!((v - merged[name]).abs() <= 1e-6 * v.abs().max(1.0), "{name} differs");
    }
    println!(
        "speedup: {:.2}x on {num_cores} cores",
        serial_t.as_secs_f64() / parallel.as_secs_f64()
    );
    Ok(())
}
