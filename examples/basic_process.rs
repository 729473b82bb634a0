//! Port of a Python tutorial program (below), "创建进程" (creating a process): the basic
//! `Process(target=worker_function, args=(1,))`, `start()`, `join()`.
//!
//! What to observe: the child prints `线程 1 正在工作。` ("worker 1 is working" — the original says
//! 线程, "thread", though it is a process), and `join()` blocks the parent until the child has
//! finished, so the parent's last line comes after it.
//!
//! Run: `cargo run --release --example basic_process`
//!
//! The Python original:
//!
//! ```python
//! from multiprocessing import Process
//! def worker_function(number):
//!     print(f"线程 {number} 正在工作。")
//! if __name__ == "__main__":
//!     p = Process(target=worker_function, args=(1,))
//!     p.start()
//!     p.join()
//! ```

use multiproc::Process;

#[multiproc::worker]
fn worker_function(number: u32) {
    println!("线程 {number} 正在工作。");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut p = Process::new(worker_function(1)).start()?;
    p.join()?;
    println!("joined {} (pid {}): exitcode {:?}", p.name(), p.pid(), p.exitcode());
    Ok(())
}
