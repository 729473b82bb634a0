//! Port of seed `003_5936a0b074e251a5.txt`, "创建实例" (creating instances): the `Task`
//! subclass of `Process` with its own `name` and a `run()` that changes the global `n`.
//!
//! Four `Task`s (`process-1` .. `process-4`) are started, then joined one by one (started all
//! first, so they run in parallel, as the seed's comment insists). Each prints its name and pid,
//! sets the global `N` to a random number, allocates a vector whose size depends on it (the seed
//! does this "to observe the different memory use"), sleeps, and ends.
//!
//! What to observe: four different pids; each child sees its own `n`; and the parent, after
//! joining them all, still has `n=0` — a process has its own memory, so a global changed in a
//! child does not change in the parent. (Sleeps scaled from 20-50 s to 0.2-0.5 s, and the
//! allocation from up to 10^8 to up to 10^6 elements.)
//!
//! Run: `cargo run --release --example seed003_task_subclass`

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
