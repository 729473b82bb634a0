//! Port of a Python tutorial program (below), "使用进程池,并关注结果" (a process pool,
//! with attention to the results): `Pool(4)`, three `apply_async` calls, `close`, `join`, then
//! each result through `get()`.
//!
//! What to observe: the three tasks run at the same time; after `join`, `get()` returns each
//! task's value ("donehello N"), in submission order. The original sleeps 3 s; here 0.5 s.
//!
//! Run: `cargo run --example pool_get_results`
//!
//! The Python original:
//!
//! ```python
//! import multiprocessing
//! import time
//!
//! def func(msg):
//!     print "msg:", msg
//!     time.sleep(3)
//!     print "end"
//!     return "done" + msg
//!
//! if __name__ == "__main__":
//!     pool = multiprocessing.Pool(processes=4)
//!     result = []
//!     for i in xrange(3):
//!         msg = "hello %d" %(i)
//!         result.append(pool.apply_async(func, (msg, )))
//!
//!     pool.close()
//!     pool.join()
//!     for res in result:
//!         print ":::", res.get()
//!
//!     print "Sub-process(es) done."
//! ```

use std::time::Duration;

use multiproc::pool::Pool;

#[multiproc::worker]
fn func(msg: String) -> String {
    println!("msg: {msg}");
    std::thread::sleep(Duration::from_millis(500));
    println!("end");
    format!("done{msg}")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::new(4)?;
    let mut result = Vec::new();
    for i in 0..3 {
        let msg = format!("hello {i}");
        result.push(pool.apply_async(func(msg))?);
    }
    pool.close();
    pool.join()?;
    for res in &result {
        println!("::: {}", res.get()?);
    }
    println!("Sub-process(es) done.");
    Ok(())
}
