//! Port of a Python tutorial program (below), 例1.4 ("daemon programs compared"): a daemonic
//! worker prints `work start`, sleeps, and prints `work end`.
//!
//! The original describes both cases; this example runs them one after the other:
//! 1. **daemon + `join()`** (the original's code): the parent waits, so the output is
//!    `work start`, `work end`, `end!`.
//! 2. **daemon without `join()`** (the original's rule 2: "if the main process ends, its daemonic
//!    processes end with it"): the parent prints `end!` and returns from `main`; the root then
//!    terminates its daemonic child, so that child's `work end` line is **never printed**.
//!
//! Sleeps scaled by 1/10 (Python's 3 s is 0.3 s).
//!
//! Run: `cargo run --release --example daemon_join`
//!
//! The Python original:
//!
//! ```python
//! import multiprocessing
//! import time
//!
//! def worker(interval):
//!     print("work start:{0}".format(time.ctime()));
//!     time.sleep(interval)
//!     print("work end:{0}".format(time.ctime()));
//!
//! if __name__ == "__main__":
//!     p = multiprocessing.Process(target = worker, args = (3,))
//!     p.daemon = True
//!     p.start()
//!     p.join()
//!     print "end!"
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use multiproc::Process;

/// Wall-clock time of day, `HH:MM:SS.mmm UTC` (the Python prints `time.ctime()`).
fn ctime() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let s = d.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03} UTC",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_millis()
    )
}

#[multiproc::worker]
fn worker(interval_ms: u64) {
    println!("work start:{}", ctime());
    std::thread::sleep(Duration::from_millis(interval_ms));
    println!("work end:{}", ctime());
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("-- 1. daemon = true, then join(): the parent waits for the worker");
    let mut p = Process::new(worker(300)).daemon(true).start()?;
    p.join()?;
    println!("end!");

    println!("-- 2. daemon = true, no join(): the worker is terminated when the parent ends");
    let p = Process::new(worker(300)).daemon(true).start()?;
    // Give the worker a moment to print `work start` (in Python it may not even get that far).
    std::thread::sleep(Duration::from_millis(100));
    println!(
        "end! (parent exits now; {} (pid {}) never prints `work end`)",
        p.name(),
        p.pid()
    );
    Ok(())
}
