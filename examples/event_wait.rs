//! Port of a Python tutorial program (below), on `Event`: one process blocks on the
//! event, another waits with a timeout (0.2 s; the original uses 2 s) and gives up; the main
//! process sets the event after 0.3 s (the original: 3 s), which releases the blocked one.
//!
//! Run: `cargo run --example event_wait`
//!
//! The Python original:
//!
//! ```python
//! import multiprocessing
//! import time
//!
//! def wait_for_event(e):
//!     print("wait_for_event: starting")
//!     e.wait()
//!     print("wairt_for_event: e.is_set()->" + str(e.is_set()))
//!
//! def wait_for_event_timeout(e, t):
//!     print("wait_for_event_timeout:starting")
//!     e.wait(t)
//!     print("wait_for_event_timeout:e.is_set->" + str(e.is_set()))
//!
//! if __name__ == "__main__":
//!     e = multiprocessing.Event()
//!     w1 = multiprocessing.Process(name = "block",
//!             target = wait_for_event,
//!             args = (e,))
//!     w2 = multiprocessing.Process(name = "non-block",
//!             target = wait_for_event_timeout,
//!             args = (e, 2))
//!     w1.start()
//!     w2.start()
//!     time.sleep(3)
//!     e.set()
//!     print("main: event is set")
//! ```

use std::time::Duration;

use multiproc::sync::Event;
use multiproc::Process;

#[multiproc::worker]
fn wait_for_event(e: Event) {
    println!("wait_for_event: starting");
    e.wait().unwrap();
    println!("wairt_for_event: e.is_set()->{}", e.is_set().unwrap());
}

#[multiproc::worker]
fn wait_for_event_timeout(e: Event, t_ms: u64) {
    println!("wait_for_event_timeout:starting");
    e.wait_timeout(Duration::from_millis(t_ms)).unwrap();
    println!("wait_for_event_timeout:e.is_set->{}", e.is_set().unwrap());
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let e = Event::new()?;
    let mut w1 = Process::new(wait_for_event(e.clone())).name("block").start()?;
    let mut w2 = Process::new(wait_for_event_timeout(e.clone(), 200))
        .name("non-block")
        .start()?;
    std::thread::sleep(Duration::from_millis(300));
    e.set()?;
    println!("main: event is set");
    w1.join()?;
    w2.join()?;
    Ok(())
}
