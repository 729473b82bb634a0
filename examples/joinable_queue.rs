//! Port of two Python tutorial programs (below), the JoinableQueue examples:
//! 1. three producers and two *daemon* consumers; each producer `join()`s the queue after its
//!    last put, so it ends only when every item has been eaten (`task_done`); the main process
//!    joins the producers, and the daemon consumers are terminated when it exits;
//! 2. the "any number of producers and consumers" model: 10 producers, 5 daemon consumers.
//!
//! Sleeps are scaled from seconds to tens of milliseconds, and the item counts down a little.
//!
//! The Python originals:
//!
//! Three producers, two daemonic consumers:
//!
//! ```python
//! import time,random
//! from multiprocessing import Process
//! from multiprocessing import JoinableQueue
//!
//! def producer(name,food, q):
//!     for i in range(10):
//!         time.sleep(random.randint(1,2))
//!         f = '{}生产的{}号{}'.format(name,i, food)
//!         q.put(f)
//!         print('{}生产了{}号{}'.format(name,i, food))
//!     q.join()  # 阻塞,直到一个队列中的所有数据全部处理完毕,等于一直在等着消费者拿了包子吃完才结束
//!
//! def consumer(name,q):
//!     while True:
//!         food = q.get()
//!         if food is None:
//!             print('%s获取到了一个空' %name)
//!             break
//!         print('\033[31m%s消费了%s\033[0m' %(name,food))
//!         time.sleep(random.randint(1,3))
//!         q.task_done()  # 减少一个计数,get方法并不减少计数,put方法会增加计数.这样就会和生产者进程最后同步,大家一起结束.
//!
//! if __name__ == '__main__':
//!     queue = JoinableQueue()
//!     p1 = Process(target=producer, args=('吉祥', '包子',queue,))
//!     p2 = Process(target=producer, args=('红宝石', '蛋糕',queue,))
//!     p3 = Process(target=producer, args=('五芳斋', '粽子',queue,))
//!     p1.start()
//!     p2.start()
//!     p3.start()
//!     c1 = Process(target=consumer,args=('Jenny',queue,))
//!     c2 = Process(target=consumer,args=('Cony',queue,))
//!     c1.daemon = True  # 设置为守护进程,主进程代码执行完毕就结束
//!     c2.daemon = True  # 设置为守护进程,主进程代码执行完毕就结束
//!     c1.start()
//!     c2.start()
//!     p1.join()
//!     p2.join()
//! ```
//!
//! Any number of producers and consumers:
//!
//! ```python
//! # 任意多个生产者消费者的模型
//! import time, random
//! from multiprocessing import Process
//! from multiprocessing import JoinableQueue
//!
//! def producer(name, food, q):
//!     for k in range(10):
//!         time.sleep(random.randint(1, 2))
//!         f = '{}生产的{}号{}'.format(name, k, food)
//!         q.put(f)
//!         print('{}生产了{}号{}'.format(name, k, food))
//!     q.join()  # 阻塞,直到一个队列中的所有数据全部处理完毕,等于一直在等着消费者拿了包子吃完才结束
//!
//! def consumer(name, q):
//!     while True:
//!         food = q.get()
//!         print('\033[31m%s消费了%s\033[0m' % (name, food))
//!         time.sleep(random.randint(1, 3))
//!         q.task_done()  # 减少一个计数,get方法并不减少计数,put方法会增加计数.这样就会和生产者进程最后同步,大家一起结束.
//!
//! if __name__ == '__main__':
//!     queue = JoinableQueue()
//!     p_list = []
//!     for i in range(10):
//!         p = Process(target=producer, args=(str(i), '包子', queue,))
//!         p_list.append(p)
//!         p.start()
//!     for j in range(5):
//!         c = Process(target=consumer, args=(str(j), queue,))
//!         c.daemon = True
//!         c.start()
//!
//!     [i.join() for i in p_list]
//! ```

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
