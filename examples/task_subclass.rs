//! Port of a Python tutorial program (below), "创建实例" (creating instances): the `Task`
//! subclass of `Process` with its own `name` and a `run()` that changes the global `n`.
//!
//! Four `Task`s (`process-1` .. `process-4`) are started, then joined one by one (started all
//! first, so they run in parallel, as the original's comment insists). Each prints its name and pid,
//! sets the global `N` to a random number, allocates a vector whose size depends on it (the original
//! does this "to observe the different memory use"), sleeps, and ends.
//!
//! What to observe: four different pids; each child sees its own `n`; and the parent, after
//! joining them all, still has `n=0` — a process has its own memory, so a global changed in a
//! child does not change in the parent. (Sleeps scaled from 20-50 s to 0.2-0.5 s, and the
//! allocation from up to 10^8 to up to 10^6 elements.)
//!
//! Run: `cargo run --release --example task_subclass`
//!
//! The Python original:
//!
//! ```python
//! import time
//! import random
//! from multiprocessing import Process
//!
//! n=0
//!
//! def task(name):
//!     print("task of {} starts".format(name))
//!     time.sleep(random.randrange(50,100))
//!     print("task of {} ends".format(name))
//!
//! class Task(Process):
//!     def __init__(self,name):
//!         super().__init__()#不能忘了
//!         self._name=name
//!
//!     @property
//!     def name(self):
//!         return self._name
//!
//!     def run(self):#不能忘了
//!         print('task {} starts with pid {}...'.format(self.name,self.pid))
//!         global n
//!         n=random.random()
//!         print("n={} in process {}".format(n,self.name))
//!         #mem
//!         l=list(range(int(n*100000000)))#观察内存的不同
//!         time.sleep(random.randrange(20,50))
//!         print('task {} ends with pid {}...'.format(self.name,self.pid))
//!
//! if __name__=='__main__':
//!     '''for i in range(0,4):
//!         p=Process(target=task,args=('task {}'.format(i),))
//!         p.start()
//!         print('pid:{}'.format(p.pid))'''
//!     plist=[]
//!     for i in range(0,4):
//!         p=Task('process-{}'.format(i+1))
//!         plist.append(p)
//!     for p in plist:
//!         p.start()
//!     for p in plist:
//!         #注意一定是先子进程都启动后，再一一join，否则启动后马上join会变成“串行”
//!         #1. 是的，这样写join仍然会卡着等p1运行结束，但其他进程如p2, p3等仍在运行，等p1运行结束后，循环继续，p2,p3等可能也运行结束了，会迅速完成join的检验
//!         #2. join花费的总时间仍然是耗费时间最长的那个进程运行的时间，这样跟我们的目的是一致的。
//!         pass
//!         p.join()
//!     print('main')
//!     print("n={} in main".format(n))
//! ```

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use multiproc::{current_process, Process};
use serde::{Deserialize, Serialize};

/// The global `n` (an `f64` stored as its bits), 0.0 at start in every process.
static N: AtomicU64 = AtomicU64::new(0);

fn n() -> f64 {
    f64::from_bits(N.load(Ordering::SeqCst))
}

/// `random.random()`: a float in [0, 1), from std's randomly seeded hasher.
fn random() -> f64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// The "subclass": its fields are what the child receives.
#[derive(Serialize, Deserialize)]
struct Task {
    name: String,
}

#[multiproc::worker]
impl Task {
    fn run(self) {
        let me = current_process();
        let pid = std::process::id();
        // `me.name()` is the name the parent gave the process: the same as `self.name`.
        println!("task {} starts with pid {pid}...", me.name());
        N.store(random().to_bits(), Ordering::SeqCst);
        println!("n={} in process {}", n(), self.name);
        // Memory use differs from child to child (watch it in `top` with larger sizes).
        let l: Vec<u64> = (0..(n() * 1_000_000.0) as u64).collect();
        std::thread::sleep(Duration::from_millis(200 + (random() * 300.0) as u64));
        println!("task {} ends with pid {pid}... ({} elements)", self.name, l.len());
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut plist = Vec::new();
    for i in 0..4 {
        let name = format!("process-{}", i + 1);
        // The builder's name is what current_process().name() reports in the child.
        plist.push(Process::new(Task { name: name.clone() }).name(name));
    }
    // Start them all first, then join: joining right after each start would run them serially.
    let mut started = Vec::new();
    for p in plist {
        started.push(p.start()?);
    }
    for p in &mut started {
        p.join()?;
    }
    println!("main");
    println!("n={} in main", n());
    Ok(())
}
