//! Port of the process pool snippets of a Python tutorial (below): `Pool(processes=4)`,
//! `pool.map(square, [1, 2, 3, 4])`, the blocking `apply` and the non-blocking `apply_async`
//! with `get`, then `close` and `join`.
//!
//! What to observe: `map` returns `[1, 4, 9, 16]` in input order although the squares are
//! computed in several processes; `apply` blocks until its result is back; `apply_async`
//! returns at once and `get` waits for the value.
//!
//! Run: `cargo run --example pool_basics`
//!
//! The Python original:
//!
//! ```python
//! from multiprocessing import Pool
//! pool = Pool(processes=4) # 创建一个包含4个进程的进程池
//!
//! def square(x):
//!     return x * x
//! results = pool.map(square, [1, 2, 3, 4]) # 输出 [1, 4, 9, 16]
//!
//! result = pool.apply(func, args=(arg1, arg2)) # 阻塞调用
//! async_result = pool.apply_async(func, args=(arg1, arg2)) # 非阻塞调用
//! result = async_result.get() # 从 AsyncResult 对象中获取结果
//!
//! pool.close()
//! pool.join() # 等待所有进程完成
//! ```

use multiproc::pool::Pool;

#[multiproc::worker]
fn square(x: u64) -> u64 {
    x * x
}

#[multiproc::worker]
fn func(arg1: u64, arg2: u64) -> String {
    format!("func({arg1}, {arg2}) ran in process {}", std::process::id())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::new(4)?; // a pool of 4 processes
    let results = pool.map(square, [1, 2, 3, 4])?;
    println!("{results:?}"); // [1, 4, 9, 16]

    let result = pool.apply(func(1, 2))?; // blocking call
    println!("apply: {result}");
    let async_result = pool.apply_async(func(3, 4))?; // non-blocking call
    println!("apply_async returned at once; ready: {}", async_result.ready());
    println!("apply_async get: {}", async_result.get()?);

    pool.close();
    pool.join()?; // wait for every process to finish
    println!("pool closed and joined");
    Ok(())
}
