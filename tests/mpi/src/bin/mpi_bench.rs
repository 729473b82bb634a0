//! The MPI backend's benchmark (run from the repository root, under the launcher):
//!
//! ```text
//! cargo build --release --manifest-path tests/mpi/Cargo.toml
//! mpirun --oversubscribe --allow-run-as-root -n 3 target/release/mpi_bench
//! ```
//!
//! Medians of repeated runs (the machine is shared and noisy): `map` with chunksize 1 of trivial
//! tasks on the ranks, the default-chunksize `map` of 100k ints on the ranks, and the same map
//! on a local `Pool` with as many worker processes as there are task-serving ranks. Not
//! criterion: the program must run under `mpirun`, and rank 0's `main` is the benchmark.

use std::time::{Duration, Instant};

use multiproc::pool::Pool;
use multiproc_mpi_tests::{lock_pairs, noop, square};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(reps: usize, mut f: impl FnMut() -> T) -> Duration {
    f(); // warm-up
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let workers = multiproc::mpi::world_size() as usize - 1;
    println!(
        "{} ranks ({workers} serving tasks), {}",
        workers + 1,
        multiproc::mpi::library_version()
    );
    let n1 = 20_000u64;
    let n2 = 100_000u64;
    {
        let pool = Pool::builder().mpi().build()?;
        let t = time(7, || pool.map_chunked(noop, 0..n1, 1).unwrap());
        println!(
            "mpi map chunksize=1, {n1} noop tasks: {:.1} ms = {:.0} tasks/s",
            t.as_secs_f64() * 1e3,
            n1 as f64 / t.as_secs_f64()
        );
        let t = time(15, || pool.map(square, 0..n2).unwrap());
        println!(
            "mpi map default chunksize, {n2} ints: {:.2} ms = {:.0} tasks/s",
            t.as_secs_f64() * 1e3,
            n2 as f64 / t.as_secs_f64()
        );
        let t = time(101, || pool.apply(noop(1)).unwrap());
        println!("mpi apply round trip: {:.1} us", t.as_secs_f64() * 1e6);
        // Lock acquire+release from a rank (every operation relayed to rank 0's hub).
        let lock = multiproc::Lock::new()?;
        let mut per_pair: Vec<u64> = (0..7)
            .map(|_| pool.apply(lock_pairs(lock.clone(), 2000)).unwrap())
            .collect();
        per_pair.sort_unstable();
        println!(
            "mpi Lock acquire+release from a rank: {:.1} us",
            per_pair[3] as f64 / 1e3
        );
        let t = time(7, || {
            for _ in 0..2000 {
                drop(lock.acquire().unwrap());
            }
        });
        println!(
            "Lock acquire+release in rank 0 (local): {:.3} us",
            t.as_secs_f64() * 1e6 / 2000.0
        );
    }
    {
        let pool = Pool::new(workers)?;
        let t = time(15, || pool.map(square, 0..n2).unwrap());
        println!(
            "local Pool({workers}) map default chunksize, {n2} ints: {:.2} ms = {:.0} tasks/s",
            t.as_secs_f64() * 1e3,
            n2 as f64 / t.as_secs_f64()
        );
        let t = time(3, || pool.map_chunked(noop, 0..n1, 1).unwrap());
        println!(
            "local Pool({workers}) map chunksize=1, {n1} noop tasks: {:.1} ms = {:.0} tasks/s",
            t.as_secs_f64() * 1e3,
            n1 as f64 / t.as_secs_f64()
        );
    }
    Ok(())
}
