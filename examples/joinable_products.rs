//! Port of a Python tutorial program (below), the JoinableQueue example with `Product` objects:
//! 100 daemon consumers each take one product, 2 producers each make one, put it and `join()`
//! the queue, so a producer ends only once its product has been consumed (`task_done`). The
//! remaining consumers are daemonic and end with the main process. Sleeps are scaled from
//! 1–5 s to 10–50 ms.
//!
//! The Python original:
//!
//! ```python
//! from multiprocessing import Process
//! from multiprocessing import JoinableQueue
//! import time
//! import random
//! import os
//!
//! class Product:
//!     def __init__(self,name,volume):
//!         self._name=name
//!         self._volume=volume
//!     def __str__(self):
//!         return "Name:{}\tVolume:{}".format(self._name,self._volume)
//!
//! def consume(q):
//!     print(f"consumer {os.getpid()} started...")
//!     prod=q.get()
//!     time.sleep(random.randint(1,5))
//!     print("{} consumes {}".format(os.getpid(),prod))
//!     q.task_done()#发送信号，表明数据获取成功
//!
//! def produce(q):
//!     print(f"producer {os.getpid()} started...")
//!     prod=Product(str(os.getpid())+"_pro",random.randint(10,100))
//!     time.sleep(random.randint(1,5))
//!     q.put(prod)
//!     print("{} produces {}".format(os.getpid(),prod))
//!     q.join()
//!
//! if __name__=='__main__':
//!     q=JoinableQueue()
//!     producers=[]
//!     consumers=[]
//!     for i in range(0,2):
//!         p=Process(target=produce,args=(q,))
//!         producers.append(p)
//!     for i in range(0,100):
//!         c=Process(target=consume,args=(q,))
//!         c.daemon=True #必要，否则部分消费者进程并不退出
//!         consumers.append(c)
//!     for c in consumers:
//!         c.start()
//!     for p in producers:
//!         p.start()
//!     for p in producers:
//!         p.join()
//!     print('main')
//! ```

use std::fmt;
use std::time::Duration;

use multiproc::{JoinableQueue, Process};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Product {
    name: String,
    volume: u32,
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name:{}\tVolume:{}", self.name, self.volume)
    }
}

fn rand(lo: u64, hi: u64) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let x = (t.subsec_nanos() as u64 ^ std::process::id() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    lo + x % (hi - lo + 1)
}

#[multiproc::worker]
fn consume(q: JoinableQueue<Product>) {
    let pid = std::process::id();
    println!("consumer {pid} started...");
    let prod = q.get().unwrap();
    std::thread::sleep(Duration::from_millis(rand(1, 5) * 10));
    println!("{pid} consumes {prod}");
    q.task_done().unwrap(); // the product has been dealt with
}

#[multiproc::worker]
fn produce(q: JoinableQueue<Product>) {
    let pid = std::process::id();
    println!("producer {pid} started...");
    let prod = Product {
        name: format!("{pid}_pro"),
        volume: rand(10, 100) as u32,
    };
    std::thread::sleep(Duration::from_millis(rand(1, 5) * 10));
    println!("{pid} produces {prod}");
    q.put(prod).unwrap();
    q.join().unwrap();
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let q = JoinableQueue::new()?;
    for _ in 0..100 {
        Process::new(consume(q.clone())).daemon(true).start()?; // needed, else they never exit
    }
    let mut producers = Vec::new();
    for _ in 0..2 {
        producers.push(Process::new(produce(q.clone())).start()?);
    }
    for p in &mut producers {
        p.join()?;
    }
    println!("main");
    Ok(())
}
