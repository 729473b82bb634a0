//! A supervision tree: a named counter actor and a worker pool under one supervisor with the
//! one-for-all strategy. A client keeps asking the counter by name while the counter is
//! SIGKILLed three times: each kill restarts both children (the counter from zero, and the
//! pool), the client's asks either succeed or fail clearly (`NoProc` while nobody holds the
//! name, `Gone` when the incarnation asked died before answering), and none hangs.
//!
//! ```sh
//! cargo run --release --example supervision_tree
//! ```
//! It ends on its own within a few seconds.

use std::time::{Duration, Instant};

use multiproc::actor::Flow;
use multiproc::supervisor::{ChildSpec, Strategy, Supervisor};
use multiproc::{whereis, Addr, AskError, Pool, Queue, ReplyTo};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
enum CounterMsg {
    /// Adds one and answers the new value.
    Bump(ReplyTo<u64>),
}

/// The counter actor: its state is just a number, lost at each restart.
#[derive(Debug, Serialize, Deserialize)]
struct Counter {
    n: u64,
}

#[multiproc::worker]
impl Counter {
    fn handle(&mut self, msg: CounterMsg) -> Flow {
        let CounterMsg::Bump(reply) = msg;
        self.n += 1;
        let _ = reply.send(&self.n);
        Flow::Continue
    }
}

#[multiproc::worker]
fn square(x: u64) -> u64 {
    x * x
}

/// The pool child: a `Pool` of 2 worker processes that squares every job it is given.
#[multiproc::worker]
fn pool_server(jobs: Queue<u64>, results: Queue<u64>) {
    let pool = Pool::new(2).expect("pool");
    while let Ok(x) = jobs.get() {
        let y = pool.apply(square(x)).expect("square");
        results.put(y).expect("results");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (jobs, results) = (Queue::<u64>::new()?, Queue::<u64>::new()?);
    let (j, r) = (jobs.clone(), results.clone());
    let sup = Supervisor::builder()
        .strategy(Strategy::OneForAll)
        .intensity(10, Duration::from_secs(10))
        .child(ChildSpec::new("counter", || Counter { n: 0 }).name("counter"))
        .child(ChildSpec::new("pool", move || pool_server(j.clone(), r.clone())))
        .start()?;

    // The client: asks by name, through every restart.
    let client = std::thread::spawn(|| {
        let counter = Addr::<CounterMsg>::named("counter");
        let (mut ok, mut noproc, mut gone, mut last) = (0u32, 0u32, 0u32, 0u64);
        let end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < end {
            match counter.ask_timeout(CounterMsg::Bump, Duration::from_secs(5)) {
                Ok(n) => {
                    if n < last {
                        println!("client: the counter restarted (was at {last}, now {n})");
                    }
                    last = n;
                    ok += 1;
                }
                Err(AskError::NoProc(_)) => {
                    noproc += 1;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(AskError::Gone) => gone += 1,
                Err(e) => panic!("unexpected: {e}"),
            }
        }
        println!("client: {ok} answers, {noproc} NoProc (between incarnations), {gone} Gone");
    });

    for round in 1..=3 {
        std::thread::sleep(Duration::from_millis(400));
        let pid = whereis("counter")?
            .map(|p| p.pid())
            .ok_or("the counter is not registered")?;
        let pool_pid = sup.which_children()?[1].pid;
        println!("main: SIGKILL the counter (pid {pid}), round {round}; the pool is pid {pool_pid:?}");
        // What `kill -9 <pid>` does (through the crate's OS layer, `internals` feature).
        multiproc::sys::proc::send_signal(pid, multiproc::sys::signal::SIGKILL)?;
    }
    client.join().map_err(|_| "the client panicked")?;

    // The pool still works after the restarts (it is a new incarnation).
    jobs.put(12)?;
    println!("pool: 12 squared is {}", results.get_timeout(Duration::from_secs(10))?);
    for c in sup.which_children()? {
        println!(
            "child {}: pid {:?}, started {} times, last exit {:?}",
            c.id, c.pid, c.starts, c.last_exit
        );
    }
    sup.stop()?;
    Ok(())
}
