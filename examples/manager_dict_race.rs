//! Port of two Python tutorial programs (below), "进程间数据共享" (sharing data between processes):
//! a Manager dict `{'count': 100}` and 70 processes that each subtract 1.
//!
//! 1. Python's `dic['count'] -= 1` is a read followed by a write — two Manager operations — so
//!    concurrent processes lose updates: the result is often above 30 (the original says "不等于
//!    50/30 的情况": sometimes wrong). Reproduced here with `get` + `insert`; to make the race
//!    visible on any machine, each child waits on a shared Event so that they all start at
//!    once, and yields between the read and the write.
//! 2. With a lock around the read and the write (the original's fix): exactly 30.
//! 3. Beyond Python: `fetch_sub` is one atomic operation in the Manager, so no lock is needed:
//!    exactly 30.
//!
//! Run: `cargo run --example manager_dict_race`
//!
//! The Python originals:
//!
//! The race:
//!
//! ```python
//! from multiprocessing import Process, Manager
//!
//! def minus(dic):
//!     dic['count'] -= 1
//!
//! if __name__ == '__main__':
//!     m = Manager()
//!     dic = m.dict({'count': 100})  # 这个字典会变成可用于数据共享的字典
//!     p_list = []
//!     for i in range(70):
//!         p =Process(target=minus, args=(dic,))
//!         p_list.append(p)
//!         p.start()
//!     [i.join() for i in p_list]
//!     print(dic)
//! ```
//!
//! With a lock:
//!
//! ```python
//! from multiprocessing import Process, Manager,Lock
//!
//! def minus(dic,lock):
//!     lock.acquire()
//!     dic['count'] -= 1
//!     lock.release()
//!
//! if __name__ == '__main__':
//!     m = Manager()
//!     lock = Lock()
//!     dic = m.dict({'count': 100})  # 这个字典会变成可用于数据共享的字典
//!     p_list = []
//!     for i in range(70):
//!         p =Process(target=minus, args=(dic,lock))
//!         p_list.append(p)
//!         p.start()
//!     [i.join() for i in p_list]
//!     print(dic)
//! ```

use multiproc::manager::{Dict, Manager};
use multiproc::sync::{Event, Lock};
use multiproc::Process;

/// The original's `minus(dic)`: `dic['count'] -= 1`, racy.
#[multiproc::worker]
fn minus(dic: Dict<String, i64>, go: Event) {
    go.wait().unwrap();
    let key = "count".to_string();
    let n = dic.get(&key).unwrap().unwrap_or(0);
    std::thread::yield_now();
    dic.insert(key, n - 1).unwrap();
}

/// The original's `minus(dic, lock)`: the same under a lock.
#[multiproc::worker]
fn minus_locked(dic: Dict<String, i64>, lock: Lock, go: Event) {
    go.wait().unwrap();
    let key = "count".to_string();
    let _guard = lock.acquire().unwrap();
    let n = dic.get(&key).unwrap().unwrap_or(0);
    std::thread::yield_now();
    dic.insert(key, n - 1).unwrap();
}

/// No lock: one atomic read-modify-write in the Manager.
#[multiproc::worker]
fn minus_atomic(dic: Dict<String, i64>, go: Event) {
    go.wait().unwrap();
    dic.fetch_sub(&"count".to_string(), 1).unwrap();
}

fn run(
    title: &str,
    start: impl Fn(&Dict<String, i64>, &Event) -> Process<()>,
) -> Result<i64, Box<dyn std::error::Error>> {
    let m = Manager::new()?;
    let dic = m.dict_from([("count".to_string(), 100i64)])?;
    let go = Event::new()?;
    let mut p_list: Vec<Process<()>> = (0..70).map(|_| start(&dic, &go)).collect();
    go.set()?;
    for p in &mut p_list {
        p.join()?;
    }
    let count = dic.get(&"count".to_string())?.unwrap_or_default();
    // Python's print(dic): {'count': N}
    let body: Vec<String> = dic.items()?.iter().map(|(k, v)| format!("'{k}': {v}")).collect();
    println!("{title}: {{{}}}", body.join(", "));
    m.shutdown()?;
    Ok(count)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let racy = run("without a lock (racy)   ", |d, go| {
        Process::new(minus(d.clone(), go.clone())).start().expect("start")
    })?;
    if racy == 30 {
        println!("  (no update was lost this time; run again to see the race)");
    } else {
        println!("  {} of 70 updates were lost", racy - 30);
    }
    let lock = Lock::new()?;
    let locked = run("with a lock             ", |d, go| {
        Process::new(minus_locked(d.clone(), lock.clone(), go.clone()))
            .start()
            .expect("start")
    })?;
    assert_eq!(locked, 30);
    let atomic = run("fetch_sub, no lock      ", |d, go| {
        Process::new(minus_atomic(d.clone(), go.clone()))
            .start()
            .expect("start")
    })?;
    assert_eq!(atomic, 30);
    Ok(())
}
