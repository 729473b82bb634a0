//! Port of seed `003_5936a0b074e251a5.txt`, the connection pool: a Semaphore(5) limits 20
//! workers to 5 "connections" at a time. Each holds its connection for 100-200 ms (the seed:
//! 1-2 s).
//!
//! Run: `cargo run --example connection_semaphore`

use std::time::Duration;

use multiproc::sync::Semaphore;
use multiproc::{current_process, Process};

#[multiproc::worker]
fn get_connections(s: Semaphore) {
    let _connection = s.acquire().unwrap(); // released when dropped, even on panic (`finally`)
    println!("{} acqiure a connection", current_process().name());
    let ms = 100 + u64::from(std::process::id() % 2) * 100; // random.randint(1, 2), scaled
    std::thread::sleep(Duration::from_millis(ms));
    println!(
        "{} finishes its job and return the connection",
        current_process().name()
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let connections = Semaphore::new(5)?;
    let mut workers = Vec::new();
    for i in 0..20 {
        workers.push(
            Process::new(get_connections(connections.clone()))
                .name(format!("worker:{}", i + 1))
                .start()?,
        );
    }
    for p in &mut workers {
        p.join()?;
    }
    println!("all workers exit");
    Ok(())
}
