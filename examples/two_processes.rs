//! Port of a Python tutorial program (below), 例1.2 ("create functions and run them as several
//! processes"): two workers that sleep for different times, `cpu_count()`, and
//! `active_children()` listing each running child's name and pid.
//!
//! What to observe: `worker_1`/`worker_2` start, the parent prints the CPU count, both children
//! (they are still running) and `END!!!!!!!!!!!!!!!!!`, and only then `end worker_1` and
//! `end worker_2`: the root's `main` has returned, and as in Python the root joins its
//! non-daemonic children before the program exits. As the original notes, the order of the parent's
//! and the children's lines may vary. (Sleeps scaled by 1/10: 2 s and 3 s become 0.2 s and 0.3 s.)
//!
//! Run: `cargo run --release --example two_processes`
//!
//! The Python original:
//!
//! ```python
//! import multiprocessing
//! import time
//!
//! def worker_1(interval):
//!     print "worker_1"
//!     time.sleep(interval)
//!     print "end worker_1"
//!
//! def worker_2(interval):
//!     print "worker_2"
//!     time.sleep(interval)
//!     print "end worker_2"
//!
//! if __name__ == "__main__":
//!     p1 = multiprocessing.Process(target = worker_1, args = (2,))
//!     p2 = multiprocessing.Process(target = worker_2, args = (3,))
//!
//!     p1.start()
//!     p2.start()
//!
//!     print("The number of CPU is:" + str(multiprocessing.cpu_count()))
//!     for p in multiprocessing.active_children():
//!         print("child   p.name:" + p.name + "\tp.id" + str(p.pid))
//!     print "END!!!!!!!!!!!!!!!!!"
//! ```

use std::time::Duration;

use multiproc::{active_children, cpu_count, Process};

#[multiproc::worker]
fn worker_1(interval_ms: u64) {
    println!("worker_1");
    std::thread::sleep(Duration::from_millis(interval_ms));
    println!("end worker_1");
}

#[multiproc::worker]
fn worker_2(interval_ms: u64) {
    println!("worker_2");
    std::thread::sleep(Duration::from_millis(interval_ms));
    println!("end worker_2");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _p1 = Process::new(worker_1(200)).start()?;
    let _p2 = Process::new(worker_2(300)).start()?;

    println!("The number of CPU is:{}", cpu_count());
    for p in active_children()? {
        println!("child   p.name:{}\tp.id{}", p.name(), p.pid());
    }
    println!("END!!!!!!!!!!!!!!!!!");
    // No join, as in the Python: both children are joined when the root exits.
    Ok(())
}
