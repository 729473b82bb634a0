//! Port of a Python tutorial program (below), 例1.1 ("create a function and run it as a single
//! process"): one worker that prints the time three times, and a parent that prints the child's
//! pid, name and `is_alive()` right after starting it.
//!
//! What to observe: the parent's three lines come first (`p.is_alive: true`), then the child's
//! three clock lines, 0.2 s apart. As in Python, the parent does not call `join()`: a
//! non-daemonic child is joined automatically when the root process exits, so the program still
//! waits for all three lines. (Sleeps are scaled by 1/10: Python's 2 s interval is 0.2 s here.)
//!
//! Run: `cargo run --release --example single_process`
//!
//! The Python original:
//!
//! ```python
//! import multiprocessing
//! import time
//!
//! def worker(interval):
//!     n = 3
//!     while n > 0:
//!         print("The time is {0}".format(time.ctime()))
//!         time.sleep(interval)
//!         n -= 1
//!
//! if __name__ == "__main__":
//!     p = multiprocessing.Process(target = worker, args = (2,))
//!     p.start()
//!     print "p.pid:", p.pid
//!     print "p.name:", p.name
//!     print "p.is_alive:", p.is_alive()
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
    let mut n = 3;
    while n > 0 {
        println!("The time is {}", ctime());
        std::thread::sleep(Duration::from_millis(interval_ms));
        n -= 1;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let p = Process::new(worker(200)).start()?;
    println!("p.pid: {}", p.pid());
    println!("p.name: {}", p.name());
    println!("p.is_alive: {}", p.is_alive());
    // No join, as in the Python: the root joins its non-daemonic children when it exits.
    Ok(())
}
