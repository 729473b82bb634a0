//! Port of a Python tutorial program (below), the Pipe example: a sender process sends the lines
//! of a text file (which this example writes first, as `po.txt` in a temporary directory) and a
//! receiver process prints them until end of file. The main process keeps no copy of either
//! end (they are moved into the children), so there is nothing to close. Sleeps are scaled from
//! 1–3 s to 10–30 ms.
//!
//! The Python original:
//!
//! ```python
//! from multiprocessing import Process, Pipe
//! import time
//! import os
//! import random
//!
//! def receiver(conn,name):
//!     #recv_c, send_c=conn
//!     #send_c.close()#只用读端，关闭写端，注意windows有可能不能提前关闭
//!     while True:
//!         try:
//!             message=conn.recv()
//!             print("{} receives a message: {}".format(name,message))
//!         except EOFError as eof:
//!             conn.close()
//!             break
//!
//! def send(conn,name,messages):
//!     #recv_c,send_c=conn
//!     #recv_c.close() #只用写端，关闭读端，注意windows有可能不能提前关闭
//!     for message in messages:
//!         conn.send(message)
//!         time.sleep(random.randint(1,3))
//!     conn.close()
//!
//! if __name__=='__main__':
//!     messages=[]
//!     with open('po.txt') as f:
//!         for line in f:
//!             messages.append(line.strip())
//!
//!     recv_con,send_con=Pipe()#在主进程中建立管道
//!
//!     printer=Process(target=receiver,args=(recv_con,'printer'))
//!     printer.start()
//!
//!     sender=Process(target=send,args=(send_con,'sender',messages))
//!     sender.start()
//!
//!     #注意windows建议仅在此处关闭
//!     recv_con.close()
//!     send_con.close()
//!
//!     sender.join()
//!     print("所有消息发送完成...")
//!     printer.join()
//!     print('所有消息接收完成...')
//! ```

use std::time::Duration;

use multiproc::{pipe, Connection, PipeRecvError, Process};

#[multiproc::worker]
fn receiver(conn: Connection<String>, name: String) {
    loop {
        match conn.recv() {
            Ok(message) => println!("{name} receives a message: {message}"),
            Err(PipeRecvError::Eof) => break,
            Err(e) => panic!("{e}"),
        }
    }
}

#[multiproc::worker]
fn send(conn: Connection<String>, _name: String, messages: Vec<String>) {
    for (i, message) in messages.iter().enumerate() {
        conn.send(message).unwrap();
        std::thread::sleep(Duration::from_millis(10 * (1 + i as u64 % 3)));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("multiproc-po-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("po.txt");
    std::fs::write(&path, "床前明月光\n疑是地上霜\n举头望明月\n低头思故乡\n")?;
    let messages: Vec<String> = std::fs::read_to_string(&path)?
        .lines()
        .map(|l| l.trim().to_string())
        .collect();

    let (recv_con, send_con) = pipe::<String>()?;
    let mut printer = Process::new(receiver(recv_con, "printer".into())).start()?;
    let mut sender = Process::new(send(send_con, "sender".into(), messages)).start()?;
    sender.join()?;
    println!("所有消息发送完成...");
    printer.join()?;
    println!("所有消息接收完成...");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
