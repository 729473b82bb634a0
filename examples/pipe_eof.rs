//! Port of two Python tutorial programs (below), the Pipe examples.
//!
//! 1. **EOF.** The Python version closes the unused end in every process (`recvp.close()` in the
//!    child, `sendp.close()` in the parent) before `EOFError` can ever arrive. In Rust an end
//!    given to a child is *moved* there, so the parent has nothing to close: the child prints 20
//!    messages and sees end of file as soon as the parent drops its end.
//! 2. **Pipe producer/consumer.** The original shares one pipe among a producer and three
//!    consumers, and then warns that pipes are not process-safe. A Rust pipe end cannot be
//!    shared (it is moved), so the producer gets one pipe per consumer and deals the products
//!    out in turn; every consumer ends on EOF when the producer exits.
//!
//! The Python originals:
//!
//! EOF:
//!
//! ```python
//! from multiprocessing import Process, Pipe
//!
//! def senp(sendp, recvp):
//!     recvp.close()
//!     while True:
//!         try:
//!             msg = sendp.recv()
//!             print(msg)
//!         except EOFError:
//!             sendp.close()
//!             break
//!
//! if __name__ == '__main__':
//!     sendp, recvp = Pipe()
//!     Process(target=senp, args=(sendp, recvp,)).start()
//!     sendp.close()
//!     for i in range(20):
//!         recvp.send('hello')
//!     recvp.close()
//! ```
//!
//! A Pipe producer/consumer:
//!
//! ```python
//! from multiprocessing import Process, Pipe
//!
//! def producer(con, pro, name):
//!     con.close()
//!     for i in range(10):
//!         pro.send('{}的{}号产品'.format(name, i))
//!     pro.close()
//!
//! def consumer(con, pro, name):
//!     pro.close()
//!     while True:
//!         try:
//!             msg = con.recv()
//!             print('{}消费了{}'.format(name, msg))
//!
//!         except EOFError:
//!             con.close()
//!             break
//!
//! if __name__ == '__main__':
//!     con_p, pro_p = Pipe()
//!
//!     for j in range(1):
//!         Process(target=producer, args=(con_p, pro_p, '{}'.format(j))).start()
//!
//!     for k in range(3):
//!         Process(target=consumer, args=(con_p, pro_p, '{}'.format(k))).start()
//!     con_p.close()  # 在主进程里创建的管道,分别交给各个子进程,在子进程里都close之后,主进程也需要关闭,所有进程里都需要关闭所使用的管道
//!     pro_p.close()  # 所有进程内关闭管道
//! ```

use multiproc::{pipe, Connection, PipeRecvError, Process};

#[multiproc::worker]
fn senp(sendp: Connection<String>) {
    loop {
        match sendp.recv() {
            Ok(msg) => println!("{msg}"),
            Err(PipeRecvError::Eof) => break, // no close dance needed on either side
            Err(e) => panic!("{e}"),
        }
    }
    println!("child: end of file");
}

#[multiproc::worker]
fn producer(pros: Vec<Connection<String>>, name: String) {
    for i in 0..10 {
        pros[i % pros.len()].send(&format!("{name}的{i}号产品")).unwrap();
    }
}

#[multiproc::worker]
fn consumer(con: Connection<String>, name: String) {
    loop {
        match con.recv() {
            Ok(msg) => println!("{name}消费了{msg}"),
            Err(PipeRecvError::Eof) => break,
            Err(e) => panic!("{e}"),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (sendp, recvp) = pipe::<String>()?;
    let mut child = Process::new(senp(sendp)).start()?;
    for _ in 0..20 {
        recvp.send(&"hello".to_string())?;
    }
    drop(recvp);
    child.join()?;

    let mut pros = Vec::new();
    let mut consumers = Vec::new();
    for k in 0..3 {
        let (con, pro) = pipe::<String>()?;
        pros.push(pro);
        consumers.push(Process::new(consumer(con, k.to_string())).start()?);
    }
    let mut p = Process::new(producer(pros, "0".into())).start()?;
    p.join()?;
    for c in &mut consumers {
        c.join()?;
    }
    Ok(())
}
