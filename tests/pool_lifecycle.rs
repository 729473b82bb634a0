//! Pool lifecycle: close/terminate/join and their errors, Drop, maxtasksperchild, nesting.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{eventually, pid_exists, KillOnDrop};
use multiproc::pool::{Pool, PoolError};
use multiproc::Process;

#[multiproc::worker]
fn square(x: u64) -> u64 {
    x * x
}

#[multiproc::worker]
fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[multiproc::worker]
fn my_pid(_i: u64) -> i32 {
    std::process::id() as i32
}

fn guard(pool: &Pool) -> KillOnDrop {
    KillOnDrop(pool.pids())
}

#[test]
fn lifecycle_errors() {
    let pool = Pool::new(2).unwrap();
    let _g = guard(&pool);
    assert_eq!(pool.join(), Err(PoolError::StillRunning));
    assert_eq!(pool.apply(square(3)).unwrap(), 9);
    pool.close();
    pool.close(); // idempotent
    assert!(matches!(pool.apply_async(square(1)), Err(PoolError::Closed)));
    assert!(matches!(pool.map(square, 0..3), Err(PoolError::Closed)));
    assert!(matches!(pool.map(square, Vec::new()), Err(PoolError::Closed)));
    assert!(matches!(pool.imap(square, 0..3), Err(PoolError::Closed)));
    pool.join().unwrap();
    pool.join().unwrap(); // idempotent
    assert!(pool.pids().is_empty());
}

#[test]
fn close_lets_submitted_work_finish() {
    let pool = Pool::new(2).unwrap();
    let _g = guard(&pool);
    let pids = pool.pids();
    let r = pool.map_async(sleep_ms, vec![100; 6]).unwrap();
    pool.close();
    pool.join().unwrap();
    assert_eq!(r.get().unwrap(), vec![100; 6]);
    assert!(pids.iter().all(|&p| !pid_exists(p)));
}

#[test]
fn terminate_fails_pending_work_and_kills_workers() {
    let pool = Pool::new(2).unwrap();
    let _g = guard(&pool);
    let pids = pool.pids();
    let r = pool.map_async(sleep_ms, vec![10_000; 4]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    pool.terminate();
    assert!(t.elapsed() < Duration::from_secs(4), "terminate took {:?}", t.elapsed());
    assert_eq!(r.get(), Err(PoolError::Terminated));
    assert!(pids.iter().all(|&p| !pid_exists(p)), "workers left behind");
    assert!(matches!(pool.apply_async(square(1)), Err(PoolError::Closed)));
    pool.join().unwrap();
}

#[test]
fn terminate_during_a_big_map_async_is_prompt() {
    let pool = Pool::new(2).unwrap();
    let _g = guard(&pool);
    let r = pool
        .map_async_each(sleep_ms, vec![100; 10_000], Some(1), Default::default())
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    pool.terminate();
    assert!(t.elapsed() < Duration::from_secs(4), "terminate took {:?}", t.elapsed());
    let all = r.get_results().unwrap();
    assert_eq!(all.len(), 10_000);
    assert!(all.iter().filter(|x| x.is_ok()).count() < 100);
    assert!(all.iter().any(|x| x == &Err(PoolError::Terminated)));
}

#[test]
fn drop_terminates_and_waits_for_workers() {
    let pids;
    let r;
    {
        let pool = Pool::new(2).unwrap();
        pids = pool.pids();
        r = pool.apply_async(sleep_ms(30_000)).unwrap();
        assert_eq!(pool.apply(square(2)).unwrap(), 4);
        // The context manager's exit: dropping terminates.
    }
    let _g = KillOnDrop(pids.clone());
    assert!(pids.iter().all(|&p| !pid_exists(p)), "workers left behind after drop");
    assert_eq!(r.get(), Err(PoolError::Terminated));
}

#[test]
fn worker_lifetime_maxtasksperchild() {
    let pool = Pool::builder().processes(3).maxtasksperchild(10).build().unwrap();
    let _g = guard(&pool);
    let first = pool.pids();
    let results: Vec<_> = (0..100).map(|i| pool.apply_async(my_pid(i)).unwrap()).collect();
    let pids: Vec<i32> = results.iter().map(|r| r.get().unwrap()).collect();
    let distinct: HashSet<i32> = pids.iter().copied().collect();
    // 100 tasks, at most 10 per worker: at least 10 different workers ran them.
    assert!(distinct.len() >= 10, "only {} workers: {distinct:?}", distinct.len());
    // The original workers have all been replaced.
    assert!(
        eventually(Duration::from_secs(10), || {
            let now: HashSet<i32> = pool.pids().into_iter().collect();
            now.len() == 3 && first.iter().all(|p| !now.contains(p))
        }),
        "first {first:?}, now {:?}",
        pool.pids()
    );
    pool.close();
    pool.join().unwrap();
}

#[test]
fn worker_lifetime_early_close() {
    let pool = Pool::builder().processes(1).maxtasksperchild(1).build().unwrap();
    let _g = guard(&pool);
    let results: Vec<_> = (0..3).map(|_| pool.apply_async(sleep_ms(100)).unwrap()).collect();
    pool.close();
    let t = Instant::now();
    pool.join().unwrap();
    assert!(t.elapsed() < Duration::from_secs(20));
    for r in results {
        assert_eq!(r.get().unwrap(), 100);
    }
}

#[multiproc::worker]
fn nested_pool(n: u64) -> Vec<u64> {
    let pool = Pool::new(2).unwrap();
    let v = pool.map(square, 0..n).unwrap();
    pool.close();
    pool.join().unwrap();
    v
}

#[test]
fn pool_inside_a_child_process() {
    let mut p = Process::new(nested_pool(20)).start().unwrap();
    let _g = KillOnDrop(vec![p.pid()]);
    let v = p.join_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!(v, (0..20).map(|x| x * x).collect::<Vec<_>>());
}

#[test]
fn shared_between_threads() {
    let pool = Pool::new(2).unwrap();
    let _g = guard(&pool);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..4u64)
            .map(|t| {
                let pool = &pool;
                s.spawn(move || pool.map(square, t * 10..t * 10 + 10).unwrap())
            })
            .collect();
        for (t, h) in hs.into_iter().enumerate() {
            let t = t as u64;
            assert_eq!(
                h.join().unwrap(),
                (t * 10..t * 10 + 10).map(|x| x * x).collect::<Vec<_>>()
            );
        }
    });
}
