//! Port of a Python tutorial program (below), "使用进程池" (using a process pool):
//! `Pool(3)`, four `apply_async` calls, then `close` and `join`.
//!
//! What to observe: "Mark~" is printed at once (apply_async does not wait); three tasks start
//! together, and the fourth starts only when one of the three ends, because the pool has three
//! workers. The original sleeps 3 s per task; here 0.5 s.
//!
//! Run: `cargo run --example pool_apply_async`
//!
//! The Python original:
//!
//! ```python
//! #coding: utf-8
//! import multiprocessing
//! import time
//!
//! def func(msg):
//!     print "msg:", msg
//!     time.sleep(3)
//!     print "end"
//!
//! if __name__ == "__main__":
//!     pool = multiprocessing.Pool(processes = 3)
//!     for i in xrange(4):
//!         msg = "hello %d" %(i)
//!         pool.apply_async(func, (msg, ))
//!
//!     print "Mark~ Mark~ Mark~~~~~~~~~~~~~~~~~~~~~~"
//!     pool.close()
//!     pool.join()
//!     #调用join之前,先调用close函数,否则会出错。
//!     #执行完close后不会有新的进程加入到pool,join函数等待所有子进程结束
//!     #join方法要在close或terminate之后使用。
//!     print "Sub-process(es) done."
//! ```

use std::time::Duration;

use multiproc::pool::Pool;

#[multiproc::worker]
fn func(msg: String) {
    println!("msg: {msg}");
    std::thread::sleep(Duration::from_millis(500));
    println!("end");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::new(3)?;
    let mut results = Vec::new();
    for i in 0..4 {
        let msg = format!("hello {i}");
        let r = pool.apply_async(func(msg))?;
        println!("{r:?}");
        results.push(r);
    }
    println!("Mark~ Mark~ Mark~~~~~~~~~~~~~~~~~~~~~~");
    pool.close();
    // join needs close (or terminate) first; otherwise it is an error.
    pool.join()?;
    println!("Sub-process(es) done.");
    Ok(())
}
