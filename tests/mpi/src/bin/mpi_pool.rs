//! Run with `mpirun -n 3 mpi_pool`: every pool feature on MPI ranks, checked in rank 0.
//! Prints one `ok <what>` line per check; exits non-zero on the first failure.

use std::collections::HashSet;
use std::sync::mpsc;
use std::time::Duration;

use multiproc::pool::{Callbacks, Pool, PoolError};
use multiproc_mpi_tests::{
    add, bad_init, boom, count_under_lock, hold_rlock, put_pid, put_rank, record, slow, square, wait_event, whoami,
};

fn check(what: &str, ok: bool) {
    if !ok {
        eprintln!("FAILED: {what}");
        std::process::exit(3);
    }
    println!("ok {what}");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    assert_eq!(multiproc::mpi::rank(), 0, "main runs on rank 0 only");
    let size = multiproc::mpi::world_size();
    println!("world size {size}, {}", multiproc::mpi::library_version());
    let me = std::process::id();

    let pool = Pool::builder().mpi().build()?;
    check(
        "one worker per task-serving rank",
        pool.processes() == (size - 1) as usize,
    );

    // map of 10,000 equals the local result
    let local: Vec<u64> = (0..10_000u64).map(|x| x * x).collect();
    check("map of 10,000 = local result", pool.map(square, 0..10_000u64)? == local);
    check(
        "map chunksize 1",
        pool.map_chunked(square, 0..500u64, 1)? == local[..500],
    );
    check("map of nothing", pool.map(square, Vec::<u64>::new())?.is_empty());

    // tasks really ran on ranks 1..size, not in rank 0
    let who = pool.map_chunked(|_: u64| whoami(), 0..200u64, 1)?;
    let ranks: HashSet<i32> = who.iter().map(|w| w.0).collect();
    check(
        "tasks run on ranks other than 0",
        who.iter().all(|w| w.0 != 0 && w.1 != me),
    );
    check("every task-serving rank got work", ranks.len() == (size - 1) as usize);

    // imap_unordered yields every item once; imap keeps order
    let mut seen: Vec<u64> = pool.imap_unordered(square, 0..1000u64)?.collect::<Result<_, _>>()?;
    seen.sort_unstable();
    check("imap_unordered yields every item once", seen == local[..1000]);
    let ordered: Vec<u64> = pool.imap_chunked(square, 0..1000u64, 7)?.collect::<Result<_, _>>()?;
    check("imap keeps input order", ordered == local[..1000]);

    // starmap
    check(
        "starmap",
        pool.starmap(add, (0..100u64).map(|i| (i, 2 * i)))? == (0..100).map(|i| 3 * i).collect::<Vec<_>>(),
    );

    // a panicking task fails only itself, with its message and location
    let all = pool.map_results(boom, 0..20u64)?;
    let failed: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_err())
        .map(|(i, _)| i)
        .collect();
    check("a panicking task fails only itself", failed == [7]);
    match &all[7] {
        Err(PoolError::Panicked { message, location }) => {
            check("the panic's message arrives", message == "seven is not allowed");
            check(
                "the panic's location arrives",
                location.as_deref().is_some_and(|l| l.contains("src/lib.rs")),
            );
        }
        other => check(&format!("panic reported as Panicked, got {other:?}"), false),
    }
    check(
        "map reports the panic",
        matches!(pool.map(boom, 0..20u64), Err(PoolError::Panicked { .. })),
    );
    check("the pool works after a panic", pool.apply(square(9))? == 81);

    // apply_async callbacks run in rank 0
    let (tx, rx) = mpsc::channel();
    let etx = tx.clone();
    let cbs = Callbacks::new()
        .on_result(move |v: &u64| tx.send((std::process::id(), Ok(*v))).unwrap())
        .on_error(move |e: &PoolError| etx.send((std::process::id(), Err(e.to_string()))).unwrap());
    let r = pool.apply_async_with(square(12), cbs)?;
    check("apply_async result", r.get()? == 144);
    let (pid, v) = rx.recv_timeout(Duration::from_secs(30))?;
    check("apply_async callback runs in rank 0", pid == me && v == Ok(144));
    let (tx, rx) = mpsc::channel();
    let cbs = Callbacks::new().on_error(move |e: &PoolError| tx.send((std::process::id(), e.to_string())).unwrap());
    let r = pool.apply_async_with(boom(7), cbs)?;
    check("apply_async of a panicking task fails", r.get().is_err());
    let (pid, msg) = rx.recv_timeout(Duration::from_secs(30))?;
    check(
        "error callback runs in rank 0 with the message",
        pid == me && msg.contains("seven"),
    );
    let (tx, rx) = mpsc::channel();
    let cbs = Callbacks::new().on_result(move |all: &Vec<u64>| tx.send(all.clone()).unwrap());
    let r = pool.map_async_with(square, 1..=4u64, None, cbs)?;
    check("map_async_with result", r.get()? == [1, 4, 9, 16]);
    check(
        "map_async_with callback once with the list",
        rx.recv_timeout(Duration::from_secs(30))? == [1, 4, 9, 16],
    );

    // deadlines need local processes on the ranks: a rank cannot kill what it runs itself
    let r = pool.apply_async_with_deadline(square(3), Duration::from_secs(5))?;
    check(
        "a deadline without local processes is refused clearly",
        matches!(r.get(), Err(PoolError::Mpi(m)) if m.contains("deadline") && m.contains("processes(k)")),
    );

    // a second MPI pool while this one lives is refused
    check(
        "one MPI pool at a time",
        matches!(Pool::builder().mpi().build(), Err(PoolError::Mpi(m)) if m.contains("another MPI pool")),
    );

    // objects across ranks: a Queue created in rank 0 receives items put on ranks 1 and 2
    let q = multiproc::Queue::<(i32, u64)>::new()?;
    pool.map_chunked(|x: u64| put_rank(q.clone(), x), 0..200u64, 1)?;
    let mut got = Vec::new();
    for _ in 0..200 {
        got.push(q.get_timeout(Duration::from_secs(30))?);
    }
    let from: HashSet<i32> = got.iter().map(|g| g.0).collect();
    let mut xs: Vec<u64> = got.iter().map(|g| g.1).collect();
    xs.sort_unstable();
    check(
        "a Queue in rank 0 gets every item put on the ranks",
        xs == (0..200).collect::<Vec<_>>(),
    );
    check(
        "items came from every task-serving rank",
        from.len() == (size - 1) as usize && !from.contains(&0),
    );

    // a Lock gives mutual exclusion across ranks: 1,000 read-modify-writes per rank are exact
    let manager = multiproc::Manager::new()?;
    let counter = manager.value(0u64)?;
    let lock = multiproc::Lock::new()?;
    let ranks_used = pool.map_chunked(
        |_: u64| count_under_lock(lock.clone(), counter.clone(), 1000),
        0..(size - 1) as u64,
        1,
    )?;
    let used: HashSet<i32> = ranks_used.iter().copied().collect();
    check(
        "the counting tasks ran on different ranks",
        used.len() == (size - 1) as usize,
    );
    check(
        "a Lock gives mutual exclusion across ranks",
        counter.get()? == 1000 * (size - 1) as u64,
    );

    // an RLock's owner is a thread of the calling rank: thread 1 of rank 1 is not thread 1 of
    // rank 2, although rank 0 makes every relayed call
    let rlock = multiproc::RLock::new()?;
    let held = pool.map_chunked(|_: u64| hold_rlock(rlock.clone(), 100), 0..(size - 1) as u64, 1)?;
    let mut spans: Vec<(u64, u64)> = held.iter().map(|h| (h.1, h.2)).collect();
    spans.sort_unstable();
    check(
        "an RLock is held by one rank at a time (no overlapping holds)",
        spans.windows(2).all(|w| w[0].1 <= w[1].0),
    );

    // an Event set in rank 0 releases waiters on every rank
    let ev = multiproc::Event::new()?;
    let waiting = pool.map_async_each(
        |i: u64| wait_event(ev.clone(), i),
        0..(size - 1) as u64,
        Some(1),
        Callbacks::new(),
    )?;
    std::thread::sleep(Duration::from_millis(300));
    check("waiters on the ranks wait for the Event", !waiting.ready());
    ev.set()?;
    let woke = waiting.get()?;
    let woke_ranks: HashSet<i32> = woke.iter().map(|w| w.0).collect();
    check(
        "an Event set in rank 0 releases waiters on every rank",
        woke.iter().all(|w| w.1) && woke_ranks.len() == (size - 1) as usize,
    );

    // a Manager Dict and a bounded JoinableQueue (puts block until rank 0 makes room)
    let dict = manager.dict::<u64, i32>()?;
    let jq = multiproc::JoinableQueue::<u64>::bounded(4)?;
    let rec = pool.map_async_each(
        |x: u64| record(dict.clone(), jq.clone(), x),
        0..50u64,
        Some(1),
        Callbacks::new(),
    )?;
    let mut xs = Vec::new();
    for _ in 0..50 {
        xs.push(jq.get_timeout(Duration::from_secs(30))?);
        jq.task_done()?;
    }
    rec.get()?;
    jq.join()?;
    xs.sort_unstable();
    check(
        "a bounded JoinableQueue in rank 0 gets every item put on the ranks",
        xs == (0..50).collect::<Vec<_>>(),
    );
    check(
        "a Manager Dict sees every rank's writes",
        dict.len()? == 50 && (0..50u64).all(|k| dict.get(&k).ok().flatten().is_some_and(|r| r > 0)),
    );

    // close/join
    let late = pool.apply_async(slow(5, 200))?;
    pool.close();
    check(
        "closed pool refuses work",
        matches!(pool.apply_async(square(1)), Err(PoolError::Closed)),
    );
    pool.join()?;
    check("join waits for the work", late.get()? == 5);
    drop(pool);

    // terminate fails what is pending, and the ranks are usable again afterwards
    let pool = Pool::builder().mpi().build()?;
    let r = pool.map_async(|x: u64| slow(x, 50), 0..100u64)?;
    std::thread::sleep(Duration::from_millis(120));
    pool.terminate();
    check(
        "terminate fails pending tasks",
        matches!(r.get(), Err(PoolError::Terminated)),
    );
    drop(pool);

    // N ranks x k local processes
    let pool = Pool::builder().mpi().processes(2).build()?;
    check(
        "2 local processes per rank",
        pool.processes() == 2 * (size - 1) as usize,
    );
    check("map on ranks x processes", pool.map(square, 0..10_000u64)? == local);
    let who = pool.map_chunked(|_: u64| whoami(), 0..400u64, 1)?;
    let pids: HashSet<u32> = who.iter().map(|w| w.1).collect();
    check(
        "tasks ran in several local processes",
        pids.len() > (size - 1) as usize && !pids.contains(&me),
    );
    // objects across ranks, used from the ranks' local worker processes
    let q = multiproc::Queue::<(u32, u64)>::new()?;
    pool.map_chunked(|x: u64| put_pid(q.clone(), x), 0..200u64, 1)?;
    let mut got = Vec::new();
    for _ in 0..200 {
        got.push(q.get_timeout(Duration::from_secs(30))?);
    }
    let from: HashSet<u32> = got.iter().map(|g| g.0).collect();
    let mut xs: Vec<u64> = got.iter().map(|g| g.1).collect();
    xs.sort_unstable();
    check(
        "local workers: a Queue in rank 0 gets every item, from several local processes",
        xs == (0..200).collect::<Vec<_>>() && from.len() > (size - 1) as usize && !from.contains(&me),
    );
    let counter = manager.value(0u64)?;
    let lock = multiproc::Lock::new()?;
    let tasks = 2 * (size - 1) as u64;
    pool.map_chunked(
        |_: u64| count_under_lock(lock.clone(), counter.clone(), 300),
        0..tasks,
        1,
    )?;
    check(
        "local workers: a Lock gives mutual exclusion across ranks and processes",
        counter.get()? == 300 * tasks,
    );
    // An RLock's owner is the calling process's thread: thread 1 of one worker is not thread 1
    // of another, even though rank 0 makes every relayed call.
    let rlock = multiproc::RLock::new()?;
    let held = pool.map_chunked(|_: u64| hold_rlock(rlock.clone(), 100), 0..tasks, 1)?;
    let mut spans: Vec<(u64, u64)> = held.iter().map(|h| (h.1, h.2)).collect();
    spans.sort_unstable();
    check(
        "local workers: an RLock is held by one worker at a time (no overlapping holds)",
        spans.windows(2).all(|w| w[0].1 <= w[1].0),
    );
    let ev = multiproc::Event::new()?;
    let waiting = pool.map_async_each(|i: u64| wait_event(ev.clone(), i), 0..tasks, Some(1), Callbacks::new())?;
    std::thread::sleep(Duration::from_millis(300));
    check("local workers: waiters wait for the Event", !waiting.ready());
    ev.set()?;
    check(
        "local workers: an Event set in rank 0 releases them",
        waiting.get()?.iter().all(|w| w.1),
    );
    // task deadlines, enforced by the ranks' local pools
    let t = std::time::Instant::now();
    let late = pool.apply_async_with_deadline(slow(1, 30_000), Duration::from_millis(300))?;
    let on_time = pool.apply_async_with_deadline(slow(2, 10), Duration::from_secs(20))?;
    check("a task within its deadline returns", on_time.get()? == 2);
    let r = late.get();
    check(
        "a task past its deadline on a rank is TimedOut, its local worker killed",
        matches!(&r, Err(PoolError::TimedOut { deadline, pid }) if *deadline == Duration::from_millis(300) && *pid > 0),
    );
    check(
        "... not before its deadline, and well before the task's 30 s",
        t.elapsed() >= Duration::from_millis(300) && t.elapsed() < Duration::from_secs(20),
    );
    check(
        "... and the rank's local pool replaced the worker",
        pool.map(square, 0..1_000u64)? == (0..1_000u64).map(|x| x * x).collect::<Vec<_>>(),
    );
    let all = pool.map_results(boom, 0..20u64)?;
    check(
        "panic in a local process of a rank fails only itself",
        all.iter().filter(|r| r.is_err()).count() == 1
            && matches!(&all[7], Err(PoolError::Panicked { message, .. }) if message == "seven is not allowed"),
    );
    pool.close();
    pool.join()?;
    drop(pool);

    // an initializer that fails makes the pool unusable, as locally
    let pool = Pool::builder().mpi().initializer(bad_init()).build()?;
    check(
        "failed initializer",
        matches!(pool.apply(square(2)), Err(PoolError::InitializerFailed(m)) if m.contains("initializer refuses")),
    );
    drop(pool);
    let pool = Pool::builder().mpi().processes(2).initializer(bad_init()).build()?;
    check(
        "failed initializer in the ranks' local processes",
        matches!(pool.apply(square(2)), Err(PoolError::InitializerFailed(m)) if m.contains("initializer refuses")),
    );
    check(
        "... and the pool is broken",
        matches!(pool.apply(square(2)), Err(PoolError::InitializerFailed(_))),
    );
    drop(pool);
    println!("all ok");
    Ok(())
}
