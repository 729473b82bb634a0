//! Port of a Python tutorial program (below), on `Semaphore`: a Semaphore(2) lets at
//! most two of three workers in at once. Worker `i` holds its permit for `i * 0.2 s` (the original
//! sleeps `i * 2 s`).
//!
//! Run: `cargo run --example semaphore_workers`
//!
//! The Python original:
//!
//! ```python
//! import multiprocessing
//! import time
//!
//! def worker(s, i):
//!     s.acquire()
//!     print(multiprocessing.current_process().name + "acquire");
//!     time.sleep(i)
//!     print(multiprocessing.current_process().name + "release\n");
//!     s.release()
//!
//! if __name__ == "__main__":
//!     s = multiprocessing.Semaphore(2)
//!     for i in range(3):
//!         p = multiprocessing.Process(target = worker, args=(s, i*2))
//!         p.start()
//! ```

use std::time::Duration;

use multiproc::sync::Semaphore;
use multiproc::{current_process, Process};

#[multiproc::worker]
fn worker(s: Semaphore, i: u64) {
    s.acquire().unwrap().forget(); // s.acquire()
    println!("{}acquire", current_process().name());
    std::thread::sleep(Duration::from_millis(i * 200));
    println!("{}release\n", current_process().name());
    s.release().unwrap(); // s.release()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let s = Semaphore::new(2)?;
    let mut procs = Vec::new();
    for i in 0..3 {
        procs.push(Process::new(worker(s.clone(), i)).start()?);
    }
    for p in &mut procs {
        p.join()?;
    }
    Ok(())
}
