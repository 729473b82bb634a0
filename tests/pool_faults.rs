//! Pool faults, where CPython hangs: killed workers, deadlines, panics, Ctrl-C in both modes,
//! parent death.

mod common;

use std::io::{BufReader, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ctrl_c_helper_root, eventually, helper_root, is_helper, pid_exists, read_line_with, CtrlC, KillOnDrop};
use multiproc::pool::{Callbacks, Pool, PoolError};
use multiproc::sys::signal::{SIGINT, SIGKILL};
use multiproc::Queue;

#[multiproc::worker]
fn square(x: u64) -> u64 {
    x * x
}

#[multiproc::worker]
fn report_then_sleep(q: Queue<i32>, secs: u64) -> u64 {
    q.put(std::process::id() as i32).unwrap();
    std::thread::sleep(Duration::from_secs(secs));
    secs
}

#[multiproc::worker]
fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[multiproc::worker]
fn panics(x: u64) -> u64 {
    panic!("task {x} panicked");
}

fn guard(pool: &Pool) -> KillOnDrop {
    KillOnDrop(pool.pids())
}

#[test]
fn sigkilled_worker_fails_its_task_and_is_replaced() {
    let pool = Pool::new(2).unwrap();
    let mut g = guard(&pool);
    let q = Queue::<i32>::new().unwrap();
    let errs = Arc::new(Mutex::new(Vec::new()));
    let e = errs.clone();
    let r = pool
        .apply_async_with(
            report_then_sleep(q.clone(), 30),
            Callbacks::new().on_error(move |err| e.lock().unwrap().push(err.clone())),
        )
        .unwrap();
    let victim = q.get_timeout(Duration::from_secs(20)).unwrap();
    let t = Instant::now();
    multiproc::sys::proc::send_signal(victim, SIGKILL).unwrap();
    let got = r.get_timeout(Duration::from_secs(5));
    let took = t.elapsed();
    assert_eq!(
        got,
        Err(PoolError::WorkerDied {
            pid: victim,
            signal: Some(SIGKILL)
        })
    );
    assert!(took < Duration::from_secs(2), "WorkerDied took {took:?}");
    assert_eq!(errs.lock().unwrap().len(), 1, "the error callback fired");
    // A replacement was started and the pool works.
    let want: Vec<u64> = (0..100).map(|x| x * x).collect();
    assert_eq!(pool.map(square, 0..100).unwrap(), want);
    assert!(eventually(Duration::from_secs(5), || {
        let p = pool.pids();
        p.len() == 2 && !p.contains(&victim)
    }));
    g.0.extend(pool.pids());
    let t = Instant::now();
    pool.close();
    pool.join().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "close+join took {:?}",
        t.elapsed()
    );
}

#[test]
fn killed_worker_in_a_map_fails_only_its_chunk() {
    let pool = Pool::new(2).unwrap();
    let _g = guard(&pool);
    let q = Queue::<i32>::new().unwrap();
    // One long task among short ones: kill its worker; the rest complete.
    let r = pool
        .map_async_each(
            |i: u64| {
                if i == 0 {
                    report_then_sleep(q.clone(), 30)
                } else {
                    sleep_ms(10)
                }
            },
            0..20,
            Some(1),
            Callbacks::new(),
        )
        .unwrap();
    let victim = q.get_timeout(Duration::from_secs(20)).unwrap();
    multiproc::sys::proc::send_signal(victim, SIGKILL).unwrap();
    let all = r.get_results_timeout(Duration::from_secs(20)).unwrap();
    assert!(matches!(all[0], Err(PoolError::WorkerDied { pid, .. }) if pid == victim));
    assert!(all[1..].iter().all(|x| x.is_ok()), "{all:?}");
}

#[test]
fn task_deadline_kills_and_replaces_the_worker() {
    let pool = Pool::new(1).unwrap();
    let mut g = guard(&pool);
    let before = pool.pids();
    let t = Instant::now();
    let r = pool
        .apply_async_with_deadline(sleep_ms(30_000), Duration::from_millis(300))
        .unwrap();
    let got = r.get_timeout(Duration::from_secs(10));
    assert!(
        matches!(got, Err(PoolError::TimedOut { pid, deadline }) if pid == before[0] && deadline == Duration::from_millis(300)),
        "{got:?}"
    );
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert!(t.elapsed() < Duration::from_secs(4), "took {:?}", t.elapsed());
    // A task within its deadline is fine; the pool continues with a new worker.
    let r = pool
        .apply_async_with_deadline(sleep_ms(10), Duration::from_secs(20))
        .unwrap();
    assert_eq!(r.get().unwrap(), 10);
    assert_ne!(pool.pids(), before);
    g.0.extend(pool.pids());
}

#[test]
fn panics_fail_only_their_task_and_print_nothing() {
    let pool = Pool::new(2).unwrap();
    let _g = guard(&pool);
    let pids = pool.pids();
    let all = pool.map_results(panics, 0..10).unwrap();
    for (i, r) in all.iter().enumerate() {
        match r {
            Err(PoolError::Panicked { message, location }) => {
                assert_eq!(message, &format!("task {i} panicked"));
                assert!(location.as_deref().unwrap_or("").contains("pool_faults.rs"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(pool.pids(), pids, "no worker was lost");
    assert_eq!(pool.apply(square(9)).unwrap(), 81);
}

// ----- Ctrl-C and parent death (helper roots) ----------------------------------------------

fn parse_pids(s: &str) -> Vec<i32> {
    s.split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

fn ctrl_c_helper(catch: bool) {
    if catch {
        multiproc::catch_interrupts().unwrap();
    }
    let pool = Pool::new(2).unwrap();
    let pids = pool.pids();
    println!(
        "READY {}",
        pids.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" ")
    );
    std::io::stdout().flush().unwrap();
    let r = pool.map_chunked(sleep_ms, vec![60_000u64; 4], 1);
    println!("MAP RETURNED {r:?}");
    if r == Err(PoolError::Interrupted) {
        println!("INTERRUPTED");
        drop(pool);
        if pids.iter().all(|&p| !pid_exists(p)) {
            println!("CLEANED");
        }
    }
    std::io::stdout().flush().unwrap();
}

#[test]
#[ignore = "helper root for pool_ctrl_c_default_mode"]
fn helper_pool_ctrl_c_default() {
    if is_helper("helper_pool_ctrl_c_default") {
        ctrl_c_helper(false);
    }
}

#[test]
#[ignore = "helper root for pool_ctrl_c_interrupt_mode"]
fn helper_pool_ctrl_c_catch() {
    if is_helper("helper_pool_ctrl_c_catch") {
        ctrl_c_helper(true);
    }
}

#[test]
fn pool_ctrl_c_default_mode_ends_everything_quietly() {
    let CtrlC {
        status,
        stdout: out,
        stderr: err,
        pids,
        took,
    } = ctrl_c_helper_root("helper_pool_ctrl_c_default", Duration::from_millis(300));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(SIGINT),
        "the root should die of SIGINT; stdout {out:?}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        eventually(Duration::from_secs(3), || pids.iter().all(|&p| !pid_exists(p))),
        "workers left behind"
    );
    assert!(!err.contains("panicked"), "stderr: {err}");
    assert!(!err.contains("PoolWorker"), "stderr: {err}");
}

#[test]
fn pool_ctrl_c_interrupt_mode_returns_interrupted_and_terminates() {
    let CtrlC {
        status,
        stdout: out,
        stderr: err,
        pids,
        took,
    } = ctrl_c_helper_root("helper_pool_ctrl_c_catch", Duration::from_millis(300));
    assert!(status.success(), "status {status:?}, stdout {out:?}, stderr {err:?}");
    assert!(out.contains("INTERRUPTED") && out.contains("CLEANED"), "stdout {out:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        eventually(Duration::from_secs(3), || pids.iter().all(|&p| !pid_exists(p))),
        "workers left behind"
    );
    assert!(!err.contains("panicked"), "stderr: {err}");
}

#[test]
#[ignore = "helper root for workers_exit_when_the_parent_dies"]
fn helper_pool_parent_death() {
    if !is_helper("helper_pool_parent_death") {
        return;
    }
    let pool = Pool::new(2).unwrap();
    let r = pool
        .map_async_each(sleep_ms, vec![60_000u64; 4], Some(1), Callbacks::new())
        .unwrap();
    println!(
        "READY {}",
        pool.pids().iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" ")
    );
    std::io::stdout().flush().unwrap();
    let _ = r.get();
}

#[test]
fn workers_exit_when_the_parent_dies() {
    let mut root = helper_root("helper_pool_parent_death");
    let mut guard = KillOnDrop::default();
    guard.add(root.id() as i32);
    let mut out = BufReader::new(root.stdout.take().unwrap());
    let pids = parse_pids(&read_line_with(&mut out, "READY ").expect("helper did not get ready"));
    assert_eq!(pids.len(), 2);
    for &p in &pids {
        guard.add(p);
    }
    multiproc::sys::proc::send_signal(root.id() as i32, SIGKILL).unwrap();
    root.wait().unwrap();
    assert!(
        eventually(Duration::from_secs(5), || pids.iter().all(|&p| !pid_exists(p))),
        "orphaned workers"
    );
}
