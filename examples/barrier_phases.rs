//! Showcase for Barrier: four worker processes run three phases in lockstep. Nobody starts a
//! phase before everybody has finished the previous one, and the barrier's action (a
//! `#[worker]` call) runs exactly once per phase, in the last worker to arrive, before anyone
//! is released.
//!
//! Run: `cargo run --example barrier_phases`

use std::time::Duration;

use multiproc::sync::{Barrier, Semaphore};
use multiproc::{current_process, Process};

const WORKERS: usize = 4;
const PHASES: u64 = 3;

/// The barrier's action: counts finished phases and announces each one.
#[multiproc::worker]
fn phase_done(phases: Semaphore) {
    phases.release().unwrap();
    let n = phases.get_value().unwrap();
    println!(
        "--- phase {n} complete (action run by {}) ---",
        current_process().name()
    );
}

#[multiproc::worker]
fn worker(barrier: Barrier, phases: Semaphore, id: u64) {
    for phase in 1..=PHASES {
        // Work of uneven length: the barrier waits for the slowest.
        std::thread::sleep(Duration::from_millis(20 + 30 * ((id + phase) % WORKERS as u64)));
        println!("{} finished phase {phase}", current_process().name());
        let index = barrier.wait().unwrap();
        // Everyone sees the action's effect: the phase is counted before anyone is released.
        assert_eq!(phases.get_value().unwrap(), phase);
        if index == 0 {
            println!("{} arrived first at phase {phase}'s barrier", current_process().name());
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let phases = Semaphore::new(0)?;
    let barrier = Barrier::builder(WORKERS)
        .action(phase_done(phases.clone()))
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut workers = Vec::new();
    for id in 0..WORKERS as u64 {
        workers.push(
            Process::new(worker(barrier.clone(), phases.clone(), id))
                .name(format!("worker-{id}"))
                .start()?,
        );
    }
    for w in &mut workers {
        w.join()?;
    }
    println!("{} phases done in lockstep", phases.get_value()?);
    Ok(())
}
