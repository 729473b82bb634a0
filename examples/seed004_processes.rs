//! Port of seed `004_35c9031a2395673c.txt`, "编写多进程" (writing multi-process code): the
//! process half of its threads-versus-processes comparison. CPU-bound work —
//! `sum(sqrt(n * tanh(n) / log2(n) / log10(n)))` over eight ranges `task1` .. `task8` — is
//! split across `cpu_count()` processes (the seed uses `Pool(num_cores)` with `apply_async`;
//! here each of `cpu_count()` processes takes every `cpu_count()`-th task and returns its
//! `{name: result}` pairs through `join()`).
//!
//! What to observe: the core count, the per-task results, and the elapsed time, next to the same
//! work done in one process: with N cores the processes take about 1/N of the time, because
//! each runs on its own core (no GIL, no shared memory). The range size is calibrated at start
//! so that the sequential run takes about 1 s whatever the build profile (the seed's ranges are
//! 30 million numbers per task).
//!
//! Run: `cargo run --release --example seed004_processes`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use multiproc::{cpu_count, Process};

/// The seed's `train_on_parameter`, over the numbers `start..end`.
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
    // task1: 10..size, task2: size..2*size, ... as in the seed's param_dict.
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
