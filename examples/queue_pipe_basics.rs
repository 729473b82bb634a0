//! Ports of the Queue and Pipe examples of seeds `000_f3a3d9fdef9d0ce7.txt` and
//! `002_880b0de6a682d14e.txt`:
//! - 000 §5: `writer_proc` puts with `block=False` (`try_put`), the main process reads it;
//! - 000 §6: `proc1` sends 0..5 over a pipe and `proc2` prints what it receives (the seed loops
//!   forever; here each side does five rounds, with 1 s sleeps scaled to 20 ms);
//! - 002: a worker sends one message through a Pipe, another through a Queue.

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
    // 000 §5
    let q = Queue::new()?;
    let mut writer = Process::new(writer_proc(q.clone())).start()?;
    writer.join()?;
    println!("queue got: {}", q.get()?);

    // 000 §6
    let (a, b) = pipe::<i32>()?;
    let mut p1 = Process::new(proc1(a)).start()?;
    let mut p2 = Process::new(proc2(b)).start()?;
    p1.join()?;
    p2.join()?;

    // 002
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
