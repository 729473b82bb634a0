//! A long map on MPI ranks; prints `pids <pid> ...` (the processes running tasks) first, so that
//! a test can SIGKILL one of them mid-map.

use std::io::Write;

use multiproc::pool::Pool;
use multiproc_mpi_tests::slow;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::builder().mpi().build()?;
    let pids: Vec<String> = pool.pids().iter().map(|p| p.to_string()).collect();
    println!("pids {}", pids.join(" "));
    std::io::stdout().flush()?;
    // 100 s of work: the test kills a rank long before the end.
    let r = pool.map_chunked(|x: u64| slow(x, 20), 0..10_000u64, 1);
    println!("map returned {:?}", r.map(|v| v.len()));
    Ok(())
}
