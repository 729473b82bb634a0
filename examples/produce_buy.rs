//! Port of a Python tutorial program (below), the Queue example: 2 producers each make a car,
//! then 100 consumers try to buy one; the main process puts one `None` per consumer, so the
//! consumers that find no car end ("no car. <pid> ends."). Sleeps are scaled from up to 1 s to
//! up to 50 ms.
//!
//! The Python original:
//!
//! ```python
//! from multiprocessing import Process, Queue
//! import time
//! import random
//! import os
//!
//! def produce(q):
//!     time.sleep(random.random())
//!     q.put('car_by_{}'.format(os.getpid()))
//!     print("{} produces a car...".format(os.getpid()))
//!
//! def buy(q):
//!     car=q.get()
//!     if car is None:
//!         print("no car. {} ends.".format(os.getpid()))
//!         return
//!     else:
//!         time.sleep(random.random())
//!         print("{} buy the car {}".format(os.getpid(),car))
//!
//! if __name__=='__main__':
//!     q=Queue()
//!     procucers=[]
//!     consumers=[]
//!     for i in range(0,2):
//!         p=Process(target=produce,args=(q,))
//!         procucers.append(p)
//!     for i in range(0,100):
//!         c=Process(target=buy,args=(q,))
//!         consumers.append(c)
//!     for p in procucers:
//!         p.start()
//!     for p in procucers:
//!         p.join()
//!     for c in consumers:
//!         c.start()
//!     for c in consumers:
//!         q.put(None)#主进程发信号结束，但要给每一个consumer准备
//!     print('main')
//! ```

use std::time::Duration;

use multiproc::{Process, Queue};

fn jitter(hi: u64) -> Duration {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let x = (t.subsec_nanos() as u64 ^ std::process::id() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    Duration::from_millis(x % (hi + 1))
}

#[multiproc::worker]
fn produce(q: Queue<Option<String>>) {
    std::thread::sleep(jitter(50));
    let pid = std::process::id();
    q.put(Some(format!("car_by_{pid}"))).unwrap();
    println!("{pid} produces a car...");
}

#[multiproc::worker]
fn buy(q: Queue<Option<String>>) {
    let pid = std::process::id();
    match q.get().unwrap() {
        None => println!("no car. {pid} ends."),
        Some(car) => {
            std::thread::sleep(jitter(50));
            println!("{pid} buy the car {car}");
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let q = Queue::new()?;
    let mut producers = Vec::new();
    for _ in 0..2 {
        producers.push(Process::new(produce(q.clone())).start()?);
    }
    for p in &mut producers {
        p.join()?;
    }
    let mut consumers = Vec::new();
    for _ in 0..100 {
        consumers.push(Process::new(buy(q.clone())).start()?);
    }
    for _ in &consumers {
        q.put(None)?; // one end signal for every consumer
    }
    println!("main");
    for c in &mut consumers {
        c.join()?;
    }
    Ok(())
}
