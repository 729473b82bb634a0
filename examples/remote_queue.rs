//! A queue served to separately started programs (Python's "Using a remote manager" example).
//!
//! The Python original, three programs in three terminals:
//!
//! ```python
//! # server.py
//! from multiprocessing.managers import BaseManager
//! from queue import Queue
//! queue = Queue()
//! class QueueManager(BaseManager): pass
//! QueueManager.register('get_queue', callable=lambda: queue)
//! m = QueueManager(address=('', 50000), authkey=b'abracadabra')
//! s = m.get_server()
//! s.serve_forever()
//!
//! # put.py
//! from multiprocessing.managers import BaseManager
//! class QueueManager(BaseManager): pass
//! QueueManager.register('get_queue')
//! m = QueueManager(address=('foo.bar.org', 50000), authkey=b'abracadabra')
//! m.connect()
//! queue = m.get_queue()
//! queue.put('hello')
//!
//! # get.py
//! ...
//! queue = m.get_queue()
//! queue.get()   # 'hello'
//! ```
//!
//! Here, in three terminals:
//!
//! ```text
//! cargo run --example remote_queue -- serve tcp:127.0.0.1:50000
//! cargo run --example remote_queue -- put   tcp:127.0.0.1:50000 hello
//! cargo run --example remote_queue -- get   tcp:127.0.0.1:50000
//! ```
//!
//! With no arguments it runs the whole story by itself: it serves on a port the system picks and
//! starts the `put` and `get` programs as separate processes (plain `std::process::Command`s,
//! not multiproc children), then stops.

use std::time::Duration;

use multiproc::connection::{Address, ManagerServer, RemoteManager};
use multiproc::Queue;

const KEY: &str = "abracadabra";

fn address(arg: Option<String>) -> Address {
    arg.unwrap_or_else(|| "tcp:127.0.0.1:50000".into())
        .parse()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn serve(addr: Address, forever: bool) -> Result<(), Box<dyn std::error::Error>> {
    let queue: Queue<String> = Queue::new()?;
    let server = ManagerServer::builder()
        .authkey(KEY)
        .register("queue", &queue)
        .bind(addr)?;
    println!("serving the queue on {}", server.address());
    if forever {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    // The whole story: start `put` and `get` as separate programs.
    let me = std::env::current_exe()?;
    let addr = server.address().to_string();
    let put = std::process::Command::new(&me).args(["put", &addr, "hello"]).status()?;
    let get = std::process::Command::new(&me).args(["get", &addr]).output()?;
    print!("{}", String::from_utf8_lossy(&get.stdout));
    assert!(put.success() && get.status.success());
    println!(
        "clients served: put and get ran as separate programs; refused: {}",
        server.refused()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("serve") => serve(address(args.next()), true),
        Some("put") => {
            let m = RemoteManager::builder().authkey(KEY).connect(&address(args.next()))?;
            let queue: Queue<String> = m.get("queue")?;
            let item = args.next().unwrap_or_else(|| "hello".into());
            queue.put(item.clone())?;
            println!("put: {item}");
            Ok(())
        }
        Some("get") => {
            let m = RemoteManager::builder().authkey(KEY).connect(&address(args.next()))?;
            let queue: Queue<String> = m.get("queue")?;
            println!("get: {}", queue.get_timeout(Duration::from_secs(10))?);
            Ok(())
        }
        Some(other) => Err(format!("unknown role {other:?}: use serve, put or get").into()),
        None => serve(Address::tcp_loopback(), false),
    }
}
