//! Port of the Ctrl-C notes of a Python tutorial (below: a main thread that is
//! blocked does not respond to Ctrl-C, so the tutorial's workaround is a `while True` loop in the
//! main thread). With multiproc the parent can simply block in `join()`: after
//! `multiproc::catch_interrupts()`, Ctrl-C makes the blocked `join()` return
//! `Err(JoinError::Interrupted)` promptly, and the parent cleans up: it terminates and joins its
//! children, then exits with code 0.
//!
//! Two long-running children (10 s each): `obedient` dies of the terminal's SIGINT like any
//! program; `stubborn` ignores SIGINT, so only the parent's `terminate()` ends it.
//!
//! What to observe: if you press Ctrl-C, the parent reports the interrupt at once; if you do not,
//! the example presses it for you after 0.5 s (it sends SIGINT to its own process group, as the
//! terminal does, when it leads that group; otherwise to itself and to each child). Then:
//! `obedient` ended by signal 2 (SIGINT), `stubborn` by signal 15 (the parent's SIGTERM), and
//! the program exits 0 well before the children's 10 s are up.
//!
//! Run: `cargo run --release --example ctrl_c`
//!
//! The notes it ports (in the original: "the main thread does not respond to Ctrl-C when it
//! has finished its code or is blocked; solution: `while True` in the main thread"):
//!
//! ```text
//! 主线程对 CTRL-C signal的响应
//!   1. 无论主线程是否等待其他线程结束执行,如果主线程执行完了所有代码,将不会响应 CTRL-C
//!   2. 主线程 block 住的情况下,也不会响应 CTRL-C
//!   3. solution : while True in main thread.
//! ```

use std::time::{Duration, Instant};

use multiproc::{JoinError, Process};
use nix::sys::signal::{kill, signal, SigHandler, Signal::SIGINT};
use nix::unistd::Pid;

#[multiproc::worker]
fn long_task(secs: u64, ignore_ctrl_c: bool) {
    if ignore_ctrl_c {
        // This child only stops when its parent tells it to (SIGTERM).
        // SAFETY: SIG_IGN runs no code of ours in signal context.
        let _ = unsafe { signal(SIGINT, SigHandler::SigIgn) };
    }
    let me = multiproc::current_process();
    println!("{} (pid {}) working for {secs} s...", me.name(), std::process::id());
    std::thread::sleep(Duration::from_secs(secs));
    println!("{} finished its work", me.name());
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    multiproc::catch_interrupts()?;
    let t0 = Instant::now();

    let mut children = vec![
        Process::new(long_task(10, true)).name("stubborn").start()?,
        Process::new(long_task(10, false)).name("obedient").start()?,
    ];
    let pids: Vec<i32> = children.iter().map(|p| p.pid()).collect();

    // Press Ctrl-C for the user after 0.5 s, so the example ends by itself.
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        let me = std::process::id() as i32;
        if nix::unistd::getpgrp().as_raw() == me {
            println!("(no Ctrl-C yet: sending SIGINT to the process group, as the terminal would)");
            let _ = kill(Pid::from_raw(-me), SIGINT);
        } else {
            println!("(no Ctrl-C yet: sending SIGINT to the parent and to each child, as the terminal would)");
            for pid in pids.into_iter().chain([me]) {
                let _ = kill(Pid::from_raw(pid), SIGINT);
            }
        }
    });

    println!("parent: blocked in join() on {} children; press Ctrl-C", children.len());
    let mut interrupted = false;
    for p in &mut children {
        match p.join() {
            Ok(()) => println!("parent: {} finished", p.name()),
            Err(JoinError::Interrupted) => {
                interrupted = true;
                break;
            }
            Err(e) => println!("parent: {} ended: {e}", p.name()),
        }
    }

    if interrupted {
        println!(
            "parent: interrupted by Ctrl-C after {:.1} s; terminating the children",
            t0.elapsed().as_secs_f64()
        );
        for p in &children {
            p.terminate()?;
        }
    }
    for p in &mut children {
        let _ = p.join();
        let status = p.exit_status().map_or("still running?".to_string(), |s| s.to_string());
        println!(
            "parent: {} (pid {}): {status}, exitcode {:?}",
            p.name(),
            p.pid(),
            p.exitcode()
        );
    }
    println!("parent: clean exit after {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}
