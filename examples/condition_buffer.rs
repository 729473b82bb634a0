//! Showcase for Condition: a bounded buffer shared by processes. Two producers and two
//! consumers pass 20 items through a buffer of capacity 3, kept in a file. Two conditions,
//! `not_full` and `not_empty`, share one Lock (as in Python's `Condition(lock)`), and each side
//! waits with `wait_for` on its predicate.
//!
//! Run: `cargo run --example condition_buffer`

use std::time::Duration;

use multiproc::sync::{Condition, Lock};
use multiproc::{current_process, Process};

const CAPACITY: usize = 3;
const PER_PRODUCER: u32 = 10;

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Buffer {
    not_full: Condition,
    not_empty: Condition,
    path: String,
}

impl Buffer {
    /// Only called with the lock held.
    fn items(&self) -> Vec<i64> {
        let text = std::fs::read_to_string(&self.path).unwrap();
        text.split_whitespace().map(|w| w.parse().unwrap()).collect()
    }
    fn store(&self, items: &[i64]) {
        let text: Vec<String> = items.iter().map(i64::to_string).collect();
        std::fs::write(&self.path, text.join(" ")).unwrap();
    }

    fn put(&self, item: i64) {
        let _g = self.not_full.acquire().unwrap();
        self.not_full.wait_for(|| self.items().len() < CAPACITY).unwrap();
        let mut items = self.items();
        items.push(item);
        self.store(&items);
        println!("{} put {item:>3}   buffer {items:?}", current_process().name());
        self.not_empty.notify().unwrap();
    }

    fn get(&self) -> i64 {
        let _g = self.not_empty.acquire().unwrap();
        self.not_empty.wait_for(|| !self.items().is_empty()).unwrap();
        let mut items = self.items();
        let item = items.remove(0);
        self.store(&items);
        println!("{} got {item:>3}   buffer {items:?}", current_process().name());
        self.not_full.notify().unwrap();
        item
    }
}

#[multiproc::worker]
fn producer(buf: Buffer, base: i64) {
    for i in 0..i64::from(PER_PRODUCER) {
        buf.put(base + i);
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[multiproc::worker]
fn consumer(buf: Buffer, n: u32) -> Vec<i64> {
    (0..n)
        .map(|_| {
            let item = buf.get();
            std::thread::sleep(Duration::from_millis(15)); // slower than the producers
            item
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lock = Lock::new()?;
    let path = std::env::temp_dir().join(format!("multiproc-buffer-{}.txt", std::process::id()));
    let buf = Buffer {
        not_full: Condition::with_lock(&lock)?,
        not_empty: Condition::with_lock(&lock)?,
        path: path.to_string_lossy().into_owned(),
    };
    buf.store(&[]);
    let mut producers = vec![
        Process::new(producer(buf.clone(), 100)).name("producer-A").start()?,
        Process::new(producer(buf.clone(), 200)).name("producer-B").start()?,
    ];
    let mut consumers = vec![
        Process::new(consumer(buf.clone(), PER_PRODUCER))
            .name("consumer-1")
            .start()?,
        Process::new(consumer(buf.clone(), PER_PRODUCER))
            .name("consumer-2")
            .start()?,
    ];
    for p in &mut producers {
        p.join()?;
    }
    let mut all: Vec<i64> = Vec::new();
    for c in &mut consumers {
        all.extend(c.join()?);
    }
    all.sort();
    let expected: Vec<i64> = (100..110).chain(200..210).collect();
    assert_eq!(all, expected);
    println!(
        "all {} items went through a buffer of {CAPACITY}, none lost or duplicated",
        all.len()
    );
    std::fs::remove_file(&path)?;
    Ok(())
}
