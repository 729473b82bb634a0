//! "Restart the counter from its last saved state": the counter actor keeps its value in
//! shared memory (a `shm::Value`, which outlives any one process), saves it after every
//! update and loads it in `init`. Its supervisor restarts it after each SIGKILL, and the new
//! incarnation goes on from where the last one stopped: no update acknowledged to a client
//! is lost.
//!
//! ```sh
//! cargo run --release --example counter_restart
//! ```

use std::time::Duration;

use multiproc::actor::{ActorContext, Flow};
use multiproc::shm::Value;
use multiproc::supervisor::{ChildSpec, Supervisor};
use multiproc::{whereis, Addr, AskError, ReplyTo};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
enum Msg {
    /// Adds one; answers the new value once it is saved.
    Bump(ReplyTo<u64>),
}

#[derive(Debug, Serialize, Deserialize)]
struct Counter {
    /// Where the value is saved (the same shared memory for every incarnation).
    saved: Value<u64>,
    /// The working copy.
    #[serde(skip)]
    n: u64,
}

#[multiproc::worker]
impl Counter {
    fn init(&mut self, cx: &mut ActorContext<Msg>) {
        self.n = self.saved.get().expect("read the saved value");
        println!("counter (pid {}): starting from {}", cx.me().pid(), self.n);
    }

    fn handle(&mut self, msg: Msg) -> Flow {
        let Msg::Bump(reply) = msg;
        self.n += 1;
        // Save before answering: an answered bump is never lost.
        self.saved.set(self.n).expect("save");
        let _ = reply.send(&self.n);
        Flow::Continue
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let saved = Value::new(0u64)?;
    let s = saved.clone();
    let sup = Supervisor::builder()
        .intensity(10, Duration::from_secs(10))
        .child(ChildSpec::new("counter", move || Counter { saved: s.clone(), n: 0 }).name("saved-counter"))
        .start()?;
    let counter = Addr::<Msg>::named("saved-counter");
    let mut acknowledged = 0;
    for round in 0..3 {
        // Ten acknowledged bumps per incarnation (retrying while it is being restarted).
        let mut done = 0;
        while done < 10 {
            match counter.ask_timeout(Msg::Bump, Duration::from_secs(5)) {
                Ok(n) => {
                    acknowledged += 1;
                    done += 1;
                    assert_eq!(n, acknowledged, "a restart lost an acknowledged bump");
                }
                Err(AskError::NoProc(_)) | Err(AskError::Gone) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => return Err(e.into()),
            }
        }
        if round < 2 {
            let pid = whereis("saved-counter")?.map(|p| p.pid()).ok_or("not registered")?;
            println!("main: {acknowledged} bumps acknowledged; SIGKILL the counter (pid {pid})");
            // What `kill -9 <pid>` does (through the crate's OS layer, `internals` feature).
            multiproc::sys::proc::send_signal(pid, multiproc::sys::signal::SIGKILL)?;
        }
    }
    println!(
        "main: {acknowledged} bumps acknowledged across 3 incarnations; saved value {}",
        saved.get()?
    );
    sup.stop()?;
    Ok(())
}
