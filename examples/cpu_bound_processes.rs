//! Port of a Python tutorial program (below), "编写多进程" (writing multi-process code): the
//! process half of its threads-versus-processes comparison. CPU-bound work —
//! `sum(sqrt(n * tanh(n) / log2(n) / log10(n)))` over eight ranges `task1` .. `task8` — is
//! split across `cpu_count()` processes (the original uses `Pool(num_cores)` with `apply_async`;
//! here each of `cpu_count()` processes takes every `cpu_count()`-th task and returns its
//! `{name: result}` pairs through `join()`).
//!
//! What to observe: the core count, the per-task results, and the elapsed time, next to the same
//! work done in one process: with N cores the processes take about 1/N of the time, because
//! each runs on its own core (no GIL, no shared memory). The range size is calibrated at start
//! so that the sequential run takes about 1 s whatever the build profile (the original's ranges are
//! 30 million numbers per task).
//!
//! Run: `cargo run --release --example cpu_bound_processes`
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

use multiproc::{cpu_count, Process};

/// The original's `train_on_parameter`, over the numbers `start..end`.
fn train_on_parameter(start: u64, end: u64) -> f64 {
    let mut result = 0.0;
    for num in start..end {
        let x = num as f64;
        result += (x * x.tanh() / x.log2() / x.log10()).sqrt();
    }
    result
}

/// One process's share: several `(name, start, end)` tasks, returned as `(name, result)`.
#[multiproc::worker]
fn worker(tasks: Vec<(String, u64, u64)>) -> Vec<(String, f64)> {
    tasks
        .into_iter()
        .map(|(name, start, end)| {
            let r = train_on_parameter(start, end);
            (name, r)
        })
        .collect()
}

/// How many numbers one task must cover so that eight tasks take about `target` on one core.
fn calibrate(target: Duration) -> u64 {
    let probe = 200_000;
    let t = Instant::now();
    std::hint::black_box(train_on_parameter(10, 10 + probe));
    let per_number = t.elapsed().as_secs_f64() / probe as f64;
    ((target.as_secs_f64() / 8.0 / per_number) as u64).max(1000)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let num_cores = cpu_count();
    println!("本地计算机有: {num_cores} 核心 (this machine has {num_cores} cores)");

    let size = calibrate(Duration::from_secs(1));
    // task1: 10..size, task2: size..2*size, ... as in the original's param_dict.
    let tasks: Vec<(String, u64, u64)> = (0..8u64)
        .map(|i| (format!("task{}", i + 1), (i * size).max(10), (i + 1) * size))
        .collect();
    println!("8 tasks of {size} numbers each");

    // The work in one process, for comparison.
    let start_t = Instant::now();
    let sequential: BTreeMap<String, f64> = tasks
        .iter()
        .map(|(name, s, e)| (name.clone(), train_on_parameter(*s, *e)))
        .collect();
    let seq_sec = start_t.elapsed().as_secs_f64();
    println!("单进程计算 共消耗: {seq_sec:.2} 秒 (one process: {seq_sec:.2} s)");

    // The same work split across num_cores processes.
    let start_t = Instant::now();
    let mut procs = Vec::new();
    for k in 0..num_cores {
        let share: Vec<_> = tasks.iter().skip(k).step_by(num_cores).cloned().collect();
        procs.push(Process::new(worker(share)).start()?);
    }
    let mut results = BTreeMap::new();
    for p in &mut procs {
        results.extend(p.join()?);
    }
    let elapsed_sec = start_t.elapsed().as_secs_f64();
    for (name, r) in &results {
        println!("{{'{name}': {r}}}");
    }
    assert_eq!(results, sequential, "the processes computed the same results");
    println!("多进程计算 共消耗: {elapsed_sec:.2} 秒 ({num_cores} processes: {elapsed_sec:.2} s)");
    println!("speed-up: {:.2}x on {num_cores} cores", seq_sec / elapsed_sec);
    Ok(())
}
