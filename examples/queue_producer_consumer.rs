//! Port of a Python tutorial program (below), a Queue example: three producers and two
//! consumers. A consumer stops on a `None` sentinel (the main process puts one after the
//! producers finish) or, failing that, when `get` times out. Sleeps are scaled from 1–2 s to
//! 20–40 ms and the timeout from 5 s to 0.5 s.
//!
//! The Python original:
//!
//! ```python
//! import time,random
//! from multiprocessing import Process
//! from multiprocessing import Queue
//!
//! def producer(name,food, q):
//!     for i in range(10):
//!         time.sleep(random.randint(1,2))
//!         f = '{}生产的{}号{}'.format(name,i, food)
//!         q.put(f)
//!         print('{}生产了{}号{}'.format(name,i, food))
//!
//! def consumer(name,q):
//!     while True:
//!         try:
//!             k = q.get(timeout=5)
//!             if k is not None:
//!                 print('  {}吃了{}'.format(name,k))
//!                 time.sleep(2)
//!             else:
//!                 print('{}没东西吃了'.format(name))
//!                 break
//!         except Exception:
//!             print('  {}等了这么久也没东西吃,看来是没了'.format(name))
//!             break
//! if __name__ == '__main__':
//!     queue = Queue()
//!     p1 = Process(target=producer, args=('吉祥', '包子',queue,))
//!     p2 = Process(target=producer, args=('红宝石', '蛋糕',queue,))
//!     p3 = Process(target=producer, args=('五芳斋', '粽子',queue,))
//!     p1.start()
//!     p2.start()
//!     p3.start()
//!     c1 = Process(target=consumer,args=('Jenny',queue,))
//!     c2 = Process(target=consumer,args=('Cony',queue,))
//!     c1.start()
//!     c2.start()
//!     p1.join()
//!     p2.join()
//!     queue.put(None)
//! ```

use std::time::Duration;

use multiproc::{Process, Queue};

fn jitter(lo: u64, hi: u64) -> Duration {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let x = (t.subsec_nanos() as u64 ^ std::process::id() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    Duration::from_millis(lo + x % (hi - lo + 1))
}

#[multiproc::worker]
fn producer(name: String, food: String, q: Queue<Option<String>>) {
    for i in 0..10 {
        std::thread::sleep(jitter(20, 40));
        q.put(Some(format!("{name}生产的{i}号{food}"))).unwrap();
        println!("{name}生产了{i}号{food}");
    }
}

#[multiproc::worker]
fn consumer(name: String, q: Queue<Option<String>>) {
    loop {
        match q.get_timeout(Duration::from_millis(500)) {
            Ok(Some(k)) => {
                println!("  {name}吃了{k}");
                std::thread::sleep(Duration::from_millis(40));
            }
            Ok(None) => {
                println!("{name}没东西吃了");
                break;
            }
            Err(_) => {
                println!("  {name}等了这么久也没东西吃,看来是没了");
                break;
            }
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let queue = Queue::new()?;
    let mut producers = Vec::new();
    for (name, food) in [("吉祥", "包子"), ("红宝石", "蛋糕"), ("五芳斋", "粽子")] {
        producers.push(Process::new(producer(name.into(), food.into(), queue.clone())).start()?);
    }
    let mut consumers = Vec::new();
    for name in ["Jenny", "Cony"] {
        consumers.push(Process::new(consumer(name.into(), queue.clone())).start()?);
    }
    for p in &mut producers {
        p.join()?;
    }
    queue.put(None)?; // one sentinel: one consumer stops on it, the other on the timeout
    for c in &mut consumers {
        c.join()?;
    }
    Ok(())
}
