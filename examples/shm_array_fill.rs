//! Showcase (issues 6 and 15): a shared-memory `Array<f64>` filled in parallel by a `Pool`,
//! summed by the parent.
//!
//! A `Pool` of `WORKERS` processes runs one task per contiguous chunk; each task gets the
//! array as an argument (its descriptor travels with the task on the worker's pipe, as a
//! Python `Array` passed to `pool.starmap` does). The array lives in anonymous shared memory
//! (memfd): each worker maps the same pages, computes its chunk, and copies it in with one
//! bulk `write` under the array's lock (a single lock round trip per task; the chunks do not
//! overlap, so `a.get_obj().write(..)` without the lock would be correct too), and the parent
//! reads the whole array back.
//!
//! The Python original (Python can pass the array only through the initializer: as a task
//! argument it raises "SynchronizedArray objects should only be shared between processes
//! through inheritance"; here both ways work, see `tests/pool_descriptors.rs`):
//!
//! ```python
//! from multiprocessing import Array, Pool
//! import math
//!
//! def init(arr):
//!     global a
//!     a = arr
//!
//! def fill(start, end):
//!     a[start:end] = [math.sin(i) ** 2 for i in range(start, end)]
//!
//! if __name__ == "__main__":
//!     a = Array("d", N)
//!     with Pool(WORKERS, initializer=init, initargs=(a,)) as pool:
//!         pool.starmap(fill, chunks)
//!     print(sum(a[:]))
//! ```
//!
//! Run: `cargo run --release --example shm_array_fill`

use std::time::Instant;

use multiproc::pool::Pool;
use multiproc::shm::Array;

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
    let chunks: Vec<(usize, usize)> = (0..WORKERS).map(|w| (w * per, ((w + 1) * per).min(N))).collect();
    let pool = Pool::new(WORKERS)?;
    // One task per chunk, each with the array as an argument (chunksize 1: one per worker).
    let pids = pool.starmap_chunked(fill, chunks.iter().map(|&(s, e)| (a.clone(), s, e)), 1)?;
    for ((start, end), pid) in chunks.iter().zip(&pids) {
        println!("process {pid} filled [{start}, {end})");
    }
    pool.close();
    pool.join()?;
    let total: f64 = a.to_vec()?.iter().sum();
    let expect: f64 = (0..N).map(|i| (i as f64).sin().powi(2)).sum();
    println!("sum of {N} elements = {total:.6} (computed in one process: {expect:.6})");
    assert!((total - expect).abs() < 1e-6 * expect);
    println!("elapsed: {:.3} s", t.elapsed().as_secs_f64());
    Ok(())
}
