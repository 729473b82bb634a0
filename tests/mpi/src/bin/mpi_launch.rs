//! Builds an MPI pool and maps once; prints the error and exits 2 if the pool cannot be built.
//! The launch tests run it outside MPI, with a wrong launcher's environment, and with 1 rank;
//! `mpi_launch idle S` then keeps the pool idle for S seconds.

use multiproc::pool::Pool;
use multiproc_mpi_tests::square;

fn main() {
    match Pool::builder().mpi().build() {
        Ok(pool) => {
            let v = pool.map(square, 0..100u64).expect("map");
            println!("mapped {}", v.len());
            // `mpi_launch idle S`: keep the pool open and idle for S seconds (to measure what
            // idle ranks cost).
            if let Some(s) = std::env::args()
                .nth(2)
                .filter(|_| std::env::args().nth(1).as_deref() == Some("idle"))
            {
                std::thread::sleep(std::time::Duration::from_secs(s.parse().unwrap_or(3)));
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
