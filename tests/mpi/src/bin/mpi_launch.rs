//! Builds an MPI pool and maps once; prints the error and exits 2 if the pool cannot be built.
//! The launch tests run it outside MPI, with a wrong launcher's environment, and with 1 rank.

use multiproc::pool::Pool;
use multiproc_mpi_tests::square;

fn main() {
    match Pool::builder().mpi().build() {
        Ok(pool) => {
            let v = pool.map(square, 0..100u64).expect("map");
            println!("mapped {}", v.len());
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
