//! Port of seed `000_f3a3d9fdef9d0ce7.txt`, example 7.1 "使用进程池" (using a process pool):
//! `Pool(3)`, four `apply_async` calls, then `close` and `join`.
//!
//! What to observe: "Mark~" is printed at once (apply_async does not wait); three tasks start
//! together, and the fourth starts only when one of the three ends, because the pool has three
//! workers. The seed sleeps 3 s per task; here 0.5 s.
//!
//! Run: `cargo run --example pool_apply_async`

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
