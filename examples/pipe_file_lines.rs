//! Port of seed `003_5936a0b074e251a5.txt`, the Pipe example: a sender process sends the lines
//! of a text file (which this example writes first, as `po.txt` in a temporary directory) and a
//! receiver process prints them until end of file. The main process keeps no copy of either
//! end (they are moved into the children), so there is nothing to close. Sleeps are scaled from
//! 1–3 s to 10–30 ms.

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
