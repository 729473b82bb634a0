//! Port of a Python tutorial program (below), "管理员Manager" (the Manager): CPU-bound work —
//! `sum(sqrt(n * tanh(n) / log2(n) / log10(n)))` over eight ranges `task1` .. `task8` — whose
//! results are saved in a Manager dict under a Manager lock ("把结果保存在字典中，而不是直接返回":
//! keep the results in the dict instead of returning them).
//!
//! The original runs the tasks with `Pool(num_cores).apply_async`; multiproc's Pool is a separate
//! piece of work, so here `cpu_count()` plain processes each take every `cpu_count()`-th task.
//! The ranges are scaled down (the original's are 30 million numbers per task) so that the whole
//! run takes about a second.
//!
//! Run: `cargo run --release --example manager_cpu_bound`
//!
//! The Python original:
//!
//! ```python
//! import math
//! import datetime
//! import multiprocessing as mp
//!
//! def train_on_parameter(name, param, result_dict, result_lock):
//!     result = 0
//!     for num in param:
//!         result += math.sqrt(num * math.tanh(num) / math.log2(num) / math.log10(num))
//!     with result_lock:
//!         result_dict[name] = result # 把结果保存在字典中，而不是直接返回
//!     return
//!
//! if __name__ == '__main__':
//!     start_t = datetime.datetime.now()
//!     num_cores = int(mp.cpu_count())
//!     print("本地计算机有: " + str(num_cores) + " 核心")
//!     pool = mp.Pool(num_cores)
//!     param_dict = {'task1': list(range(10, 30000000)),
//!                   'task2': list(range(30000000, 60000000)),
//!                   'task3': list(range(60000000, 90000000)),
//!                   'task4': list(range(90000000, 120000000)),
//!                   'task5': list(range(120000000, 150000000)),
//!                   'task6': list(range(150000000, 180000000)),
//!                   'task7': list(range(180000000, 210000000)),
//!                   'task8': list(range(210000000, 240000000))}
//!     manager = mp.Manager()
//!     managed_locker = manager.Lock() # 创建Lock
//!     managed_dict = manager.dict()
//!     results = [pool.apply_async(train_on_parameter, args=(name, param, managed_dict, managed_locker)) for name, param in param_dict.items()]
//!     results = [p.get() for p in results]
//!     print(managed_dict)
//!     end_t = datetime.datetime.now()
//!     elapsed_sec = (end_t - start_t).total_seconds()
//!     print("多线程计算 共消耗: " + "{:.2f}".format(elapsed_sec) + " 秒")
//! ```

use std::time::Instant;

use multiproc::manager::{Dict, Manager};
use multiproc::sync::Lock;
use multiproc::{cpu_count, Process};

/// The original's `train_on_parameter(name, param, result_dict, result_lock)`.
fn train_on_parameter(name: &str, start: u64, end: u64, result_dict: &Dict<String, f64>, result_lock: &Lock) {
    let mut result = 0.0;
    for num in start..end {
        let x = num as f64;
        result += (x * x.tanh() / x.log2() / x.log10()).sqrt();
    }
    let _guard = result_lock.acquire().expect("lock");
    result_dict.insert(name.to_string(), result).expect("dict"); // saved in the dict, not returned
}

#[multiproc::worker]
fn worker(tasks: Vec<(String, u64, u64)>, result_dict: Dict<String, f64>, result_lock: Lock) {
    for (name, start, end) in tasks {
        train_on_parameter(&name, start, end, &result_dict, &result_lock);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start_t = Instant::now();
    let num_cores = cpu_count();
    println!("本地计算机有: {num_cores} 核心");
    let size = if cfg!(debug_assertions) { 600_000 } else { 4_000_000 };
    let param_dict: Vec<(String, u64, u64)> = (0..8u64)
        .map(|i| (format!("task{}", i + 1), (i * size).max(10), (i + 1) * size))
        .collect();
    let manager = Manager::new()?;
    let managed_locker = manager.lock()?; // 创建Lock
    let managed_dict = manager.dict::<String, f64>()?;
    let mut procs = Vec::new();
    for k in 0..num_cores {
        let share: Vec<_> = param_dict.iter().skip(k).step_by(num_cores).cloned().collect();
        procs.push(Process::new(worker(share, managed_dict.clone(), managed_locker.clone())).start()?);
    }
    for p in &mut procs {
        p.join()?;
    }
    // Printed in completion order, like the original's `print(managed_dict)`.
    let items = managed_dict.items()?;
    let body: Vec<String> = items.iter().map(|(k, v)| format!("'{k}': {v}")).collect();
    println!("{{{}}}", body.join(", "));
    assert_eq!(items.len(), 8);
    let elapsed_sec = start_t.elapsed().as_secs_f64();
    println!("多进程计算 共消耗: {elapsed_sec:.2} 秒");
    manager.shutdown()?;
    Ok(())
}
