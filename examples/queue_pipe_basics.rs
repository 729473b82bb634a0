//! Ports of the Queue and Pipe examples of two Python tutorials (below):
//! - the Queue snippet: `writer_proc` puts with `block=False` (`try_put`), the main process
//!   reads it;
//! - the Pipe example: `proc1` sends 0..5 over a pipe and `proc2` prints what it receives (the
//!   original loops forever; here each side does five rounds, with 1 s sleeps scaled to 20 ms);
//! - the second tutorial: a worker sends one message through a Pipe, another through a Queue.
//!
//! The Python originals:
//!
//! The Queue snippet (`block = False`):
//!
//! ```python
//! def writer_proc(q):
//!     q.put(1, block = False)
//!     ...
//!
//! if __name__ == "__main__":
//!     q = multiprocessing.Queue()
//!     writer = multiprocessing.Process(target=writer_proc, args=(q,))
//!     writer.start()
//!     writer.join()
//!     ...
//! ```
//!
//! The Pipe example:
//!
//! ```python
//! import multiprocessing
//! import time
//!
//! def proc1(pipe):
//!     while True:
//!         for i in xrange(5):
//!             print "send: %s" %(i)
//!             pipe.send(i)
//!             time.sleep(1)
//!
//! def proc2(pipe):
//!     while True:
//!         print "proc2 rev:", pipe.recv()
//!         time.sleep(1)
//!
//! if __name__ == "__main__":
//!     pipe = multiprocessing.Pipe()
//!     p1 = multiprocessing.Process(target=proc1, args=(pipe[0],))
//!     p2 = multiprocessing.Process(target=proc2, args=(pipe[1],))
//!
//!     p1.start()
//!     p2.start()
//!
//!     p1.join()
//!     p2.join()
//! ```
//!
//! A Pipe, then a Queue, one message each:
//!
//! ```python
//! from multiprocessing import Process, Pipe
//! def worker(conn):
//!     conn.send("工作进程发送的数据")
//!     conn.close()
//! parent_conn, child_conn = Pipe()
//! p = Process(target=worker, args=(child_conn,))
//! p.start()
//! print(parent_conn.recv()) # 输出: "工作进程发送的数据"
//! p.join()
//! ```
//!
//! ```python
//! from multiprocessing import Process, Queue
//! def worker(q):
//!     q.put("工作进程发送的数据")
//! q = Queue()
//! p = Process(target=worker, args=(q,))
//! p.start()
//! print(q.get()) # 输出: "工作进程发送的数据"
//! p.join()
//! ```

use std::time::Duration;

use multiproc::{pipe, Connection, Process, Queue};

#[multiproc::worker]
fn writer_proc(q: Queue<i32>) {
    q.try_put(1).unwrap();
}

#[multiproc::worker]
fn proc1(pipe: Connection<i32>) {
    for i in 0..5 {
        println!("send: {i}");
        pipe.send(&i).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[multiproc::worker]
fn proc2(pipe: Connection<i32>) {
    for _ in 0..5 {
        println!("proc2 rev: {}", pipe.recv().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[multiproc::worker]
fn pipe_worker(conn: Connection<String>) {
    conn.send(&"工作进程发送的数据".to_string()).unwrap();
}

#[multiproc::worker]
fn queue_worker(q: Queue<String>) {
    q.put("工作进程发送的数据".to_string()).unwrap();
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The Queue snippet
    let q = Queue::new()?;
    let mut writer = Process::new(writer_proc(q.clone())).start()?;
    writer.join()?;
    println!("queue got: {}", q.get()?);

    // The Pipe example
    let (a, b) = pipe::<i32>()?;
    let mut p1 = Process::new(proc1(a)).start()?;
    let mut p2 = Process::new(proc2(b)).start()?;
    p1.join()?;
    p2.join()?;

    // The second tutorial: one message through a Pipe, another through a Queue
    let (parent_conn, child_conn) = pipe::<String>()?;
    let mut p = Process::new(pipe_worker(child_conn)).start()?;
    println!("{}", parent_conn.recv()?);
    p.join()?;
    let q = Queue::new()?;
    let mut p = Process::new(queue_worker(q.clone())).start()?;
    println!("{}", q.get()?);
    p.join()?;
    Ok(())
}
