//! What compiled-in `tracing` costs when no subscriber is installed, counted in instructions
//! rather than seconds (this machine's timings spread 2-3x; instruction counts repeat).
//!
//! One process, no children: the root puts `N` single items into a Queue and gets them back,
//! and makes `N` Lock-free hub round trips (`ping_hub`), so every frame passes the hub's
//! per-frame `trace` event site. Run it under callgrind, once per build:
//!
//! ```text
//! cargo bench -p multiproc-benches --bench trace_cost --no-run
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/off.cg target/release/deps/trace_cost-<hash> 20000
//! cargo bench -p multiproc-benches --bench trace_cost --features tracing --no-run
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/on.cg  target/release/deps/trace_cost-<hash> 20000
//! ```
//!
//! and compare the totals (`callgrind_annotate /tmp/off.cg | head`). Without valgrind it just
//! runs and prints the wall time.

use std::time::Instant;

use multiproc::Queue;

fn main() {
    // `cargo bench` passes `--bench`; the count is the first numeric argument.
    let n: u64 = std::env::args().filter_map(|a| a.parse().ok()).next().unwrap_or(20_000);
    let q: Queue<u64> = Queue::new().unwrap();
    // Warm-up: the hub thread, this thread's connection, the first allocations.
    for i in 0..100 {
        q.put(i).unwrap();
        q.get().unwrap();
    }
    let t0 = Instant::now();
    for i in 0..n {
        q.put(i).unwrap();
        assert_eq!(q.get().unwrap(), i);
    }
    for _ in 0..n {
        multiproc::runtime::ping_hub().unwrap();
    }
    let dt = t0.elapsed();
    println!(
        "{n} put+get and {n} hub round trips in {dt:?} (tracing feature: {})",
        cfg!(feature = "tracing")
    );
}
