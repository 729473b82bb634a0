//! A progress bar over a long `imap_unordered`: `IMap` knows its length when the input does,
//! so `indicatif`'s `.progress()` works on it directly.
//!
//! ```sh
//! cargo run --release -p multiproc-feature-tests --example progress
//! ```

use std::time::Duration;

use indicatif::{ProgressIterator, ProgressStyle};
use multiproc::Pool;

/// A task that takes a little while.
#[multiproc::worker]
fn collatz_steps(n: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(2));
    let (mut x, mut steps) = (n.max(1), 0);
    while x != 1 {
        x = if x % 2 == 0 { x / 2 } else { 3 * x + 1 };
        steps += 1;
    }
    steps
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::new(multiproc::cpu_count())?;
    let results = pool.imap_unordered_chunked(collatz_steps, 1..=3_000u64, 8)?;
    println!("{} tasks on {} workers", results.len(), pool.processes());
    let style = ProgressStyle::with_template("{bar:40} {pos}/{len} tasks, {per_sec}, eta {eta}")?;
    let mut longest = 0;
    // `progress_with_style` (like `.progress()`) takes the length from `ExactSizeIterator`.
    for r in results.progress_with_style(style) {
        longest = longest.max(r?);
    }
    println!("the longest Collatz sequence below 3,000 takes {longest} steps");
    pool.close();
    pool.join()?;
    Ok(())
}
