//! A counter in one program, incremented by others started separately, through a remote
//! manager: a `Dict` with atomic `fetch_add`, and a read-modify-write under a remote `Lock`.
//!
//! Python would write (server):
//!
//! ```python
//! from multiprocessing.managers import SyncManager
//! m = SyncManager(address=('127.0.0.1', 50001), authkey=b'counter')
//! m.start()
//! counts, lock = m.dict({'hits': 0, 'locked': 0}), m.Lock()
//! ```
//!
//! and in each client, `with lock: counts['locked'] += 1` (Python's `counts['hits'] += 1` without
//! the lock loses updates).
//!
//! `cargo run --example remote_counter` serves on a port the system picks, runs 4 client
//! programs (separate `std::process::Command`s) that each add 250 both ways, and checks the
//! totals: exactly 1000 each.

use multiproc::connection::{Address, ManagerServer, RemoteManager};
use multiproc::{Dict, Lock, Manager};

const KEY: &str = "counter";
const CLIENTS: usize = 4;
const EACH: i64 = 250;

fn client(addr: &str) -> Result<(), Box<dyn std::error::Error>> {
    let m = RemoteManager::builder().authkey(KEY).connect(&addr.parse()?)?;
    let counts: Dict<String, i64> = m.get("counts")?;
    let lock: Lock = m.get("lock")?;
    for _ in 0..EACH {
        counts.fetch_add(&"hits".to_string(), 1)?;
        let _g = lock.acquire()?;
        let n = counts.get(&"locked".to_string())?.unwrap_or(0);
        counts.insert("locked".to_string(), n + 1)?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("client") {
        return client(&args[1]);
    }
    let manager = Manager::new()?;
    let counts = manager.dict::<String, i64>()?;
    counts.insert("hits".to_string(), 0)?;
    counts.insert("locked".to_string(), 0)?;
    let lock = Lock::new()?;
    let server = ManagerServer::builder()
        .authkey(KEY)
        .register("counts", &counts)
        .register("lock", &lock)
        .bind(Address::tcp_loopback())?;
    println!("serving a counter on {}", server.address());
    let me = std::env::current_exe()?;
    let t = std::time::Instant::now();
    let kids: Vec<_> = (0..CLIENTS)
        .map(|_| {
            std::process::Command::new(&me)
                .args(["client", &server.address().to_string()])
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    for mut k in kids {
        assert!(k.wait()?.success(), "a client failed");
    }
    let hits = counts.get(&"hits".to_string())?.unwrap_or(0);
    let locked = counts.get(&"locked".to_string())?.unwrap_or(0);
    println!(
        "{CLIENTS} client programs x {EACH}: hits = {hits} (fetch_add), locked = {locked} (under the remote lock), in {:.2?}",
        t.elapsed()
    );
    assert_eq!(hits, CLIENTS as i64 * EACH);
    assert_eq!(locked, CLIENTS as i64 * EACH);
    Ok(())
}
