//! Port of a Python tutorial program (below), 例1.3 ("define the process as a class"): Python
//! subclasses `multiprocessing.Process` and overrides `run()`; here `ClockProcess` is a plain
//! struct whose fields are the arguments, and `#[multiproc::worker]` on its `impl` makes its
//! `run(self)` the body of the child process.
//!
//! What to observe: three `the time is ...` lines printed by the child, 0.2 s apart (Python's
//! 2 s scaled by 1/10). As in the Python, the parent only calls `start()`; the root joins the
//! child when it exits.
//!
//! Run: `cargo run --release --example class_process`
//!
//! The Python original:
//!
//! ```python
//! import multiprocessing
//! import time
//!
//! class ClockProcess(multiprocessing.Process):
//!     def __init__(self, interval):
//!         multiprocessing.Process.__init__(self)
//!         self.interval = interval
//!
//!     def run(self):
//!         n = 3
//!         while n > 0:
//!             print("the time is {0}".format(time.ctime()))
//!             time.sleep(self.interval)
//!             n -= 1
//!
//! if __name__ == '__main__':
//!     p = ClockProcess(2)
//!     p.start()
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use multiproc::Process;
use serde::{Deserialize, Serialize};

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

/// The "class": its fields travel to the child, which calls `run(self)`.
#[derive(Serialize, Deserialize)]
struct ClockProcess {
    interval_ms: u64,
}

#[multiproc::worker]
impl ClockProcess {
    fn run(self) {
        let mut n = 3;
        while n > 0 {
            println!("the time is {}", ctime());
            std::thread::sleep(Duration::from_millis(self.interval_ms));
            n -= 1;
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _p = Process::new(ClockProcess { interval_ms: 200 }).start()?;
    Ok(())
}
