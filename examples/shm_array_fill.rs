//! Showcase (issue 6): a shared-memory `Array<f64>` filled in parallel, summed by the parent.
//!
//! The issue asks for a Pool; multiproc's Pool is a separate piece of work not merged yet, so
//! `WORKERS` plain processes each fill a contiguous chunk. The array lives in anonymous shared
//! memory (memfd): each child maps the same pages, computes its chunk, and copies it in with
//! one bulk `write` under the array's lock (a single lock round trip per child; the chunks do
//! not overlap, so `a.get_obj().write(..)` without the lock would be correct too), and the
//! parent reads the whole array back.
//!
//! Run: `cargo run --release --example shm_array_fill`

use std::time::Instant;

use multiproc::shm::Array;
use multiproc::Process;

const N: usize = 1_000_000;
const WORKERS: usize = 4;

/// Fills `a[start..end]` with `f(i) = sin(i)^2` — a value whose sum is easy to check.
#[multiproc::worker]
fn fill(a: Array<f64>, start: usize, end: usize) -> usize {
    let chunk: Vec<f64> = (start..end).map(|i| (i as f64).sin().powi(2)).collect();
    a.write(start, &chunk).expect("chunk in range");
    std::process::id() as usize
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t = Instant::now();
    let a = Array::<f64>::zeroed(N)?;
    let per = N.div_ceil(WORKERS);
    let mut procs = Vec::new();
    for w in 0..WORKERS {
        let (start, end) = (w * per, ((w + 1) * per).min(N));
        procs.push((start, end, Process::new(fill(a.clone(), start, end)).start()?));
    }
    for (start, end, p) in &mut procs {
        let pid = p.join()?;
        println!("process {pid} filled [{start}, {end})");
    }
    let total: f64 = a.to_vec()?.iter().sum();
    let expect: f64 = (0..N).map(|i| (i as f64).sin().powi(2)).sum();
    println!("sum of {N} elements = {total:.6} (computed in one process: {expect:.6})");
    assert!((total - expect).abs() < 1e-6 * expect);
    println!("elapsed: {:.3} s", t.elapsed().as_secs_f64());
    Ok(())
}
