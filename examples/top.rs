//! A live view of a running multiproc program, like `top`: every second it reads the
//! program's snapshot and redraws the tables (processes, objects, pools, waits).
//!
//! The program opts in by serving snapshots on a Unix socket: set
//! `MULTIPROC_SNAPSHOT_SOCKET=/path` in its environment, or call
//! `multiproc::observe::serve_snapshots(path)`. Only the same user can connect (the socket is
//! mode 0600 and the peer's uid is checked).
//!
//! ```sh
//! # terminal 1: a demo workload that serves its snapshots
//! cargo run --example top -- --demo /tmp/demo.snap
//! # terminal 2: the live view (Ctrl-C to quit; --once prints one frame)
//! cargo run --example top -- /tmp/demo.snap
//! ```

use std::io::Write;
use std::time::Duration;

use multiproc::observe::{read_served_snapshot, serve_snapshots};
use multiproc::sync::{Event, Lock};
use multiproc::{Pool, Process, Queue};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--demo", path] => demo(path),
        ["--once", path] => {
            print!("{}", read_served_snapshot(path)?);
            Ok(())
        }
        [path] => view(path),
        _ => {
            eprintln!("usage: top PATH | top --once PATH | top --demo PATH");
            std::process::exit(2)
        }
    }
}

/// Redraws the snapshot every second until Ctrl-C.
fn view(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut out = std::io::stdout();
    loop {
        let frame = match read_served_snapshot(path) {
            Ok(snap) => format!("multiproc top - {path} (every 1 s, Ctrl-C to quit)\n{snap}"),
            Err(e) => format!("multiproc top - {path}\n{e}\n(retrying every second)\n"),
        };
        // Home, clear the screen, draw.
        write!(out, "\x1b[H\x1b[2J{frame}")?;
        out.flush()?;
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Holds `lock` for a while, again and again, so that others queue up behind it.
#[multiproc::worker]
fn lock_holder(lock: Lock, stop: Event) {
    while !stop.is_set().unwrap_or(true) {
        let _g = lock.acquire().unwrap();
        std::thread::sleep(Duration::from_millis(1500));
    }
}

/// Takes `lock` briefly, again and again.
#[multiproc::worker]
fn lock_taker(lock: Lock, stop: Event) {
    while !stop.is_set().unwrap_or(true) {
        drop(lock.acquire().unwrap());
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Puts an item every 100 ms.
#[multiproc::worker]
fn producer(q: Queue<u64>, stop: Event) {
    let mut i = 0;
    while !stop.is_set().unwrap_or(true) {
        q.put(i).unwrap();
        i += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A slow pool task.
#[multiproc::worker]
fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(400));
    x * x
}

/// A workload to look at: a lock with waiters, a growing queue, a busy pool.
fn demo(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let _ = std::fs::remove_file(path);
    let server = serve_snapshots(path)?;
    println!(
        "serving snapshots on {}; run: cargo run --example top -- {path}",
        server.path().display()
    );
    let lock = Lock::new()?;
    let stop = Event::new()?;
    let q: Queue<u64> = Queue::new()?;
    let mut kids = vec![
        Process::new(lock_holder(lock.clone(), stop.clone()))
            .name("holder")
            .start()?,
        Process::new(lock_taker(lock.clone(), stop.clone()))
            .name("taker-1")
            .start()?,
        Process::new(lock_taker(lock.clone(), stop.clone()))
            .name("taker-2")
            .start()?,
        Process::new(producer(q.clone(), stop.clone()))
            .name("producer")
            .start()?,
    ];
    let pool = Pool::new(2)?;
    for round in 0.. {
        let r: u64 = pool
            .imap_unordered(slow_square, 0..20u64)?
            .map(|r| r.unwrap_or(0))
            .sum();
        println!("round {round}: {r}");
        if round == 1_000 {
            break;
        }
    }
    stop.set()?;
    for k in &mut kids {
        let _ = k.join();
    }
    Ok(())
}
