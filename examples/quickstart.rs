//! The main demo (the first command of the README): processes, a mailbox exchange, and every
//! way a process can end.
//!
//! 1. Two named processes start; each has a pid and a mailbox.
//! 2. Mailboxes: the root sends `greeter` a name and `greeter` replies to the root's own
//!    mailbox; then the root *asks* `counter` (request/reply) after sending it some numbers.
//! 3. Exit statuses: a normal return (its value comes back through `join()`), a panic (its
//!    message and location reach the parent), `std::process::exit(8)`, and a SIGKILL (-9).
//!
//! The panicking child also prints the usual Rust panic message on its stderr.
//!
//! Run: `cargo run --release --example quickstart`

use std::time::Duration;

use multiproc::{current_process, mailbox, Addr, Process, ReplyTo};
use serde::{Deserialize, Serialize};

/// Replies to one greeting, to the address it was given.
#[multiproc::worker]
fn greeter(reply_to: Addr<String>) {
    let name: String = mailbox().recv().expect("a name");
    let me = current_process();
    reply_to
        .send(&format!(
            "hello, {name}! (from {}, pid {})",
            me.name(),
            std::process::id()
        ))
        .expect("reply");
}

/// What the counter understands.
#[derive(Serialize, Deserialize)]
enum Count {
    Add(u64),
    Total(ReplyTo<u64>),
    Stop,
}

/// A small stateful actor; returns its total when stopped.
#[multiproc::worker]
fn counter() -> u64 {
    let mut total = 0;
    loop {
        match mailbox::<Count>().recv().expect("a message") {
            Count::Add(n) => total += n,
            Count::Total(reply) => reply.send(&total).expect("reply"),
            Count::Stop => return total,
        }
    }
}

#[multiproc::worker]
fn panicker() {
    panic!("the answer was not 42");
}

#[multiproc::worker]
fn exiter() {
    std::process::exit(8);
}

#[multiproc::worker]
fn sleeper() {
    std::thread::sleep(Duration::from_secs(30));
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = current_process();
    println!("root: {} (pid {})", root.name(), root.pid());

    // 1. Processes.
    let mut g = Process::new(greeter(root.addr())).name("greeter").start()?;
    let mut c = Process::new(counter()).name("counter").start()?;
    println!(
        "\n1. started {} (pid {}) and {} (pid {})",
        g.name(),
        g.pid(),
        c.name(),
        c.pid()
    );

    // 2. Mailboxes.
    println!("\n2. mailboxes");
    g.send(&"world".to_string())?;
    println!("   root -> greeter: \"world\"");
    let answer: String = mailbox().recv()?;
    println!("   greeter -> root: {answer:?}");
    let counter: Addr<Count> = c.addr();
    for n in [10, 20, 12] {
        counter.send(&Count::Add(n))?;
    }
    println!("   root -> counter: Add(10), Add(20), Add(12)");
    let total = counter.ask(Count::Total)?;
    println!("   root asks counter for its total -> {total}");
    counter.send(&Count::Stop)?;

    // 3. Exit statuses.
    println!("\n3. how each process ended");
    g.join()?;
    let total = c.join()?;
    report(&g, "returned ()");
    report(&c, &format!("returned {total}"));
    let mut p = Process::new(panicker()).name("panicker").start()?;
    let _ = p.join(); // Err(JoinError::Panicked { message, location })
    report(&p, "panicked");
    let mut e = Process::new(exiter()).name("exiter").start()?;
    let _ = e.join(); // Err(JoinError::Exited(8))
    report(&e, "called exit(8)");
    let mut k = Process::new(sleeper()).name("sleeper").start()?;
    k.kill()?;
    let _ = k.join(); // Err(JoinError::Signaled(9))
    report(&k, "was sent kill()");
    Ok(())
}

/// One line per ended process: what it did, Python's `exitcode`, and the `ExitStatus`.
fn report<T>(p: &Process<T>, what: &str) {
    let code = p.exitcode().map_or("-".into(), |c| c.to_string());
    let status = p.exit_status().map_or("still running".into(), |s| s.to_string());
    println!("   {:<9} {what:<16} exitcode {code:>2}   {status}", p.name());
}
