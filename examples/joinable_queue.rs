//! Port of seed `001_7d625fca41ae7592.txt`, the JoinableQueue examples:
//! 1. three producers and two *daemon* consumers; each producer `join()`s the queue after its
//!    last put, so it ends only when every item has been eaten (`task_done`); the main process
//!    joins the producers, and the daemon consumers are terminated when it exits;
//! 2. the "any number of producers and consumers" model: 10 producers, 5 daemon consumers.
//!
//! Sleeps are scaled from seconds to tens of milliseconds, and the item counts down a little.

use std::time::Duration;

use multiproc::{JoinableQueue, Process};

fn jitter(lo: u64, hi: u64) -> Duration {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let x = (t.subsec_nanos() as u64 ^ std::process::id() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    Duration::from_millis(lo + x % (hi - lo + 1))
}

#[multiproc::worker]
fn producer(name: String, food: String, q: JoinableQueue<Option<String>>, n: u32) {
    for i in 0..n {
        std::thread::sleep(jitter(10, 20));
        q.put(Some(format!("{name}生产的{i}号{food}"))).unwrap();
        println!("{name}生产了{i}号{food}");
    }
    q.join().unwrap(); // until every item in the queue has been processed
}

#[multiproc::worker]
fn consumer(name: String, q: JoinableQueue<Option<String>>) {
    loop {
        let Some(food) = q.get().unwrap() else {
            println!("{name}获取到了一个空");
            break;
        };
        println!("\x1b[31m{name}消费了{food}\x1b[0m");
        std::thread::sleep(jitter(10, 30));
        q.task_done().unwrap();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("== 3 producers, 2 daemon consumers ==");
    let queue = JoinableQueue::new()?;
    let mut producers = Vec::new();
    for (name, food) in [("吉祥", "包子"), ("红宝石", "蛋糕"), ("五芳斋", "粽子")] {
        producers.push(Process::new(producer(name.into(), food.into(), queue.clone(), 5)).start()?);
    }
    let mut consumers = Vec::new();
    for name in ["Jenny", "Cony"] {
        consumers.push(
            Process::new(consumer(name.into(), queue.clone()))
                .daemon(true)
                .start()?,
        );
    }
    for p in &mut producers {
        p.join()?;
    }
    println!("all producers done: every item was eaten");
    for c in &consumers {
        c.terminate()?; // what exiting does to daemonic children; done here to run part 2
    }

    println!("== any number of producers and consumers: 10 producers, 5 consumers ==");
    let queue = JoinableQueue::new()?;
    let mut producers = Vec::new();
    for i in 0..10 {
        producers.push(Process::new(producer(i.to_string(), "包子".into(), queue.clone(), 3)).start()?);
    }
    for j in 0..5 {
        Process::new(consumer(j.to_string(), queue.clone()))
            .daemon(true)
            .start()?;
    }
    for p in &mut producers {
        p.join()?;
    }
    println!("all 30 items produced and consumed");
    Ok(())
}
