//! A long map on MPI ranks; prints `pids <pid> <pid>` (the ranks' pids) first, so that a test
//! can SIGKILL one of them mid-map. With the argument `local`, each rank runs 2 local worker
//! processes (which must not outlive their rank).

use std::collections::BTreeSet;
use std::io::Write;

use multiproc::pool::Pool;
use multiproc_mpi_tests::{rank_pid, slow};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let local = std::env::args().nth(1).as_deref() == Some("local");
    let mut b = Pool::builder().mpi();
    if local {
        b = b.processes(2);
    }
    let pool = b.build()?;
    let ranks = multiproc::mpi::world_size() as usize - 1;
    let mut pids = BTreeSet::new();
    while pids.len() < ranks {
        pids.extend(pool.map_chunked(|_: u64| rank_pid(local), 0..64u64, 1)?);
    }
    let pids: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
    println!("pids {}", pids.join(" "));
    std::io::stdout().flush()?;
    // 100 s of work: the test kills a rank long before the end.
    let r = pool.map_chunked(|x: u64| slow(x, 20), 0..10_000u64, 1);
    println!("map returned {:?}", r.map(|v| v.len()));
    Ok(())
}
