//! Port of a Python tutorial program (below), on `Lock`: two processes append to one
//! file under a shared Lock, one with a guard (Python's `with lock:`) and one with explicit
//! `acquire`/`release` (Python's `worker_no_with`). The lines of the two never interleave.
//!
//! Run: `cargo run --example lock_file`
//!
//! The Python original:
//!
//! ```python
//! import multiprocessing
//! import sys
//!
//! def worker_with(lock, f):
//!     with lock:
//!         fs = open(f, 'a+')
//!         n = 5
//!         while n > 1:
//!             fs.write("Lockd acquired via with\n")
//!             n -= 1
//!         fs.close()
//!
//! def worker_no_with(lock, f):
//!     lock.acquire()
//!     try:
//!         fs = open(f, 'a+')
//!         n = 5
//!         while n > 1:
//!             fs.write("Lock acquired directly\n")
//!             n -= 1
//!         fs.close()
//!     finally:
//!         lock.release()
//!
//! if __name__ == "__main__":
//!     lock = multiprocessing.Lock()
//!     f = "file.txt"
//!     w = multiprocessing.Process(target = worker_with, args=(lock, f))
//!     nw = multiprocessing.Process(target = worker_no_with, args=(lock, f))
//!     w.start()
//!     nw.start()
//!     print "end"
//! ```

use std::fs::OpenOptions;
use std::io::Write;
use std::time::Duration;

use multiproc::sync::Lock;
use multiproc::Process;

#[multiproc::worker]
fn worker_with(lock: Lock, f: String) {
    let _guard = lock.acquire().unwrap(); // `with lock:`
    let mut fs = OpenOptions::new().append(true).create(true).open(&f).unwrap();
    for _ in 1..5 {
        writeln!(fs, "Lockd acquired via with").unwrap();
        std::thread::sleep(Duration::from_millis(10)); // give the other a chance to interleave
    }
}

#[multiproc::worker]
fn worker_no_with(lock: Lock, f: String) {
    lock.acquire().unwrap().forget(); // lock.acquire()
    let result = std::panic::catch_unwind(|| {
        let mut fs = OpenOptions::new().append(true).create(true).open(&f).unwrap();
        for _ in 1..5 {
            writeln!(fs, "Lock acquired directly").unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    lock.release().unwrap(); // finally: lock.release()
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lock = Lock::new()?;
    let f = std::env::temp_dir().join(format!("multiproc-lock-file-{}.txt", std::process::id()));
    let name = f.to_string_lossy().into_owned();
    let mut w = Process::new(worker_with(lock.clone(), name.clone())).start()?;
    let mut nw = Process::new(worker_no_with(lock.clone(), name.clone())).start()?;
    println!("end");
    w.join()?;
    nw.join()?;

    let text = std::fs::read_to_string(&f)?;
    print!("{text}");
    let lines: Vec<&str> = text.lines().collect();
    let switches = lines.windows(2).filter(|w| w[0] != w[1]).count();
    println!(
        "({} lines, {} switch between writers: never interleaved)",
        lines.len(),
        switches
    );
    assert_eq!(switches, 1);
    std::fs::remove_file(&f)?;
    Ok(())
}
