//! Port of seed `000_f3a3d9fdef9d0ce7.txt`, example 7.3 "使用进程池,并关注结果" (a process pool,
//! with attention to the results): `Pool(4)`, three `apply_async` calls, `close`, `join`, then
//! each result through `get()`.
//!
//! What to observe: the three tasks run at the same time; after `join`, `get()` returns each
//! task's value ("donehello N"), in submission order. The seed sleeps 3 s; here 0.5 s.
//!
//! Run: `cargo run --example pool_get_results`

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
