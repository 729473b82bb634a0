//! The floor for the Lock benchmark: an 8-byte blocking MPI ping-pong between ranks 0 and 1
//! through rsmpi, in a program that does not link multiproc (both ranks run `main`).
//!
//! ```text
//! mpirun --oversubscribe --allow-run-as-root -n 2 target/release/mpi_pingpong
//! ```

use std::time::Instant;

use mpi::traits::*;

fn main() {
    let universe = mpi::initialize().expect("MPI_Init");
    let world = universe.world();
    let rank = world.rank();
    let other = world.process_at_rank(1 - rank);
    let msg = [0u8; 8];
    let mut medians = Vec::new();
    for _ in 0..7 {
        let n = 20_000;
        let t = Instant::now();
        for _ in 0..n {
            if rank == 0 {
                other.send(&msg[..]);
                let _ = other.receive_vec::<u8>();
            } else {
                let _ = other.receive_vec::<u8>();
                other.send(&msg[..]);
            }
        }
        medians.push(t.elapsed().as_secs_f64() / n as f64);
    }
    medians.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if rank == 0 {
        println!(
            "MPI ping-pong 8 B round trip (busy-polling receive): {:.2} us",
            medians[3] * 1e6
        );
    }
}
