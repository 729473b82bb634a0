//! Showcase: a small actor graph. Three processes form a pipeline, each knowing only the next
//! one's address (an `Addr` passed as a worker argument):
//!
//! ```text
//!   root ──Item(x)──▶ doubler ──Item(2x)──▶ incrementer ──Item(2x+1)──▶ collector
//!     ▲                                                                     │
//!     └──────────────── Report answer (ask/reply, via ReplyTo) ◀────────────┘
//! ```
//!
//! The root asks for a report with `Addr::ask`: the question carries a `ReplyTo` that travels
//! down the whole pipeline, each stage adding a line, and the collector answers it. Because
//! messages from one sender arrive in the order sent, the report is only answered after every
//! item sent before it has gone through all three stages. Then `Stop` flows down the pipeline
//! and every stage returns its count, which `join()` hands to the root.
//!
//! What to observe: each item's path through the three pids, the report (one line per stage,
//! with its item count), and the stages' return values and exit statuses.
//!
//! Run: `cargo run --release --example actor_graph`

use multiproc::{current_process, mailbox, Addr, Process, ReplyTo};
use serde::{Deserialize, Serialize};

/// What flows down the pipeline.
#[derive(Debug, Serialize, Deserialize)]
enum Msg {
    /// A number to process.
    Item(u64),
    /// A report request: each stage adds a line; the last stage answers.
    Report(Vec<String>, ReplyTo<Vec<String>>),
    /// Shut down (forwarded, so it reaches every stage after everything sent before it).
    Stop,
}

/// A stage that applies `op` to each item and forwards it to `next`. Returns how many items it
/// handled.
fn stage(next: Addr<Msg>, op: fn(u64) -> u64, what: &str) -> u64 {
    let me = current_process();
    let inbox = mailbox::<Msg>();
    let mut count = 0;
    loop {
        match inbox.recv().expect("mailbox") {
            Msg::Item(x) => {
                let y = op(x);
                println!("  {:<11} (pid {}) {x:>2} {what} -> {y}", me.name(), std::process::id());
                count += 1;
                next.send(&Msg::Item(y)).expect("send");
            }
            Msg::Report(mut lines, reply) => {
                lines.push(format!(
                    "{} (pid {}) handled {count} items",
                    me.name(),
                    std::process::id()
                ));
                next.send(&Msg::Report(lines, reply)).expect("send");
            }
            Msg::Stop => {
                next.send(&Msg::Stop).expect("send");
                return count;
            }
        }
    }
}

#[multiproc::worker]
fn doubler(next: Addr<Msg>) -> u64 {
    stage(next, |x| x * 2, "doubled")
}

#[multiproc::worker]
fn incrementer(next: Addr<Msg>) -> u64 {
    stage(next, |x| x + 1, "plus one")
}

/// The last stage: sums what it receives and answers reports. Returns the sum.
#[multiproc::worker]
fn collector() -> u64 {
    let me = current_process();
    let inbox = mailbox::<Msg>();
    let (mut count, mut sum) = (0, 0);
    loop {
        match inbox.recv().expect("mailbox") {
            Msg::Item(x) => {
                count += 1;
                sum += x;
                println!(
                    "  {:<11} (pid {}) {x:>2} collected, sum = {sum}",
                    me.name(),
                    std::process::id()
                );
            }
            Msg::Report(mut lines, reply) => {
                lines.push(format!(
                    "{} (pid {}) collected {count} items, sum {sum}",
                    me.name(),
                    std::process::id()
                ));
                reply.send(&lines).expect("reply");
            }
            Msg::Stop => return sum,
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Build the graph from its end, handing each stage the address of the next.
    let mut c = Process::new(collector()).name("collector").start()?;
    let mut i = Process::new(incrementer(c.addr())).name("incrementer").start()?;
    let mut d = Process::new(doubler(i.addr())).name("doubler").start()?;
    println!(
        "pipeline: root -> {} ({}) -> {} ({}) -> {} ({})",
        d.name(),
        d.pid(),
        i.name(),
        i.pid(),
        c.name(),
        c.pid()
    );

    let head: Addr<Msg> = d.addr();
    for x in 1..=4 {
        head.send(&Msg::Item(x))?;
    }

    // Ask/reply: the ReplyTo travels through all three stages; the collector answers.
    let report = head.ask(|reply| Msg::Report(Vec::new(), reply))?;
    println!("report (asked of {}, answered by {}):", d.name(), c.name());
    for line in &report {
        println!("  - {line}");
    }

    head.send(&Msg::Stop)?;
    let (nd, ni, sum) = (d.join()?, i.join()?, c.join()?);
    println!("joined: doubler handled {nd}, incrementer handled {ni}, collector's sum = {sum} (expected 24)");
    for p in [&d, &i, &c] {
        println!(
            "  {} exit status: {}",
            p.name(),
            p.exit_status().map(|s| s.to_string()).unwrap_or_default()
        );
    }
    Ok(())
}
