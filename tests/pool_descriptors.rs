//! Descriptors in Pool tasks (issue 15): a shared-memory `Array`/`Value`, a `Connection` or a
//! `Queue` passed to a task as an argument, or through the initializer, works as in Python
//! (CPython's `test_pool` family passes shared values to pool functions the same way). The
//! descriptors travel with the chunk on the worker's pipe (`SCM_RIGHTS`).

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::KillOnDrop;
use multiproc::pipe::{pipe, Connection, MAX_FDS_PER_MSG};
use multiproc::pool::{Pool, PoolError};
use multiproc::shm::{Array, Value};
use multiproc::Queue;

const LONG: Duration = Duration::from_secs(60);

/// Fills `a[start..end]` with `i * 2` and returns how many it wrote.
#[multiproc::worker]
fn fill(a: Array<u64>, start: usize, end: usize) -> usize {
    let chunk: Vec<u64> = (start..end).map(|i| i as u64 * 2).collect();
    a.write(start, &chunk).unwrap();
    end - start
}

#[test]
fn a_pool_fills_a_shared_array() {
    const N: usize = 100_000;
    let pool = Pool::new(3).unwrap();
    let a = Array::<u64>::zeroed(N).unwrap();
    let per = 1_000;
    let items: Vec<_> = (0..N / per).map(|k| (a.clone(), k * per, (k + 1) * per)).collect();
    // Several tasks per chunk: each chunk carries one descriptor per task.
    let wrote = pool.starmap_chunked(fill, items, 7).unwrap();
    assert_eq!(wrote.iter().sum::<usize>(), N);
    let v = a.to_vec().unwrap();
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64 * 2));
    pool.close();
    pool.join_timeout(LONG).unwrap();
}

#[multiproc::worker]
fn add_to(v: Value<u64>, k: u64) {
    v.with_lock(|x| *x += k).unwrap();
}

/// A `Value` given to many `apply_async` tasks: every increment lands (the lock is shared too).
#[test]
fn a_shared_value_counts_every_task() {
    let pool = Pool::new(2).unwrap();
    let v = Value::new(0u64).unwrap();
    let rs: Vec<_> = (1..=50)
        .map(|k| pool.apply_async(add_to(v.clone(), k)).unwrap())
        .collect();
    for r in rs {
        r.get_timeout(LONG).unwrap();
    }
    assert_eq!(v.get().unwrap(), (1..=50).sum::<u64>());
}

#[multiproc::worker]
fn reply_on(conn: Connection<String>, n: u32, q: Queue<u32>) -> u32 {
    conn.send(&format!("task {n} in {}", std::process::id())).unwrap();
    q.put(n).unwrap();
    n
}

/// A `Connection` and a `Queue` as task arguments: each task answers on its own pipe, and puts
/// on the shared queue.
#[test]
fn connections_and_queues_as_task_arguments() {
    let pool = Pool::new(2).unwrap();
    let q = Queue::<u32>::new().unwrap();
    let mut mine = Vec::new();
    let mut items = Vec::new();
    for n in 0..10 {
        let (a, b) = pipe::<String>().unwrap();
        mine.push(a);
        items.push((b, n, q.clone()));
    }
    // The task's ends were moved into the items: the pool holds them until the tasks finish.
    let got = pool.starmap(reply_on, items).unwrap();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    for (n, a) in mine.iter().enumerate() {
        let m = a.recv_timeout(LONG).unwrap();
        assert!(m.starts_with(&format!("task {n} in ")), "{m}");
    }
    let mut seen: Vec<u32> = (0..10).map(|_| q.get_timeout(LONG).unwrap()).collect();
    seen.sort();
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    // Once the tasks are done and their chunks dropped, the pool keeps no copy of the task
    // ends: each pipe reads end of file (the ends in the workers were dropped with the task).
    for a in &mine {
        let deadline = Instant::now() + LONG;
        loop {
            match a.recv_timeout(Duration::from_millis(100)) {
                Err(multiproc::pipe::PipeRecvError::Eof) => break,
                Err(multiproc::pipe::PipeRecvError::Timeout) if Instant::now() < deadline => {}
                other => panic!("expected end of file, got {other:?}"),
            }
        }
    }
}

static SHARED: OnceLock<Array<u64>> = OnceLock::new();

/// Python's `initializer=init, initargs=(arr,)` storing the array in a global.
#[multiproc::worker]
fn keep_array(a: Array<u64>) {
    let _ = SHARED.set(a);
}

#[multiproc::worker]
fn mark(i: usize) -> u32 {
    SHARED.get().expect("the initializer ran").set(i, 1 + i as u64).unwrap();
    std::process::id()
}

#[test]
fn an_array_through_the_initializer_reaches_every_worker() {
    let a = Array::<u64>::zeroed(64).unwrap();
    let pool = Pool::builder()
        .processes(2)
        .maxtasksperchild(3)
        .initializer(keep_array(a.clone()))
        .build()
        .unwrap();
    // maxtasksperchild: workers are replaced, and each replacement gets the array too.
    let pids = pool.map_chunked(mark, 0..64, 2).unwrap();
    let mut distinct = pids.clone();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() > 2, "workers were not replaced: {distinct:?}");
    assert_eq!(a.to_vec().unwrap(), (1..=64).collect::<Vec<u64>>());
}

#[multiproc::worker]
fn stamp_then_sleep(a: Array<i64>, slot: usize, sleep_ms: u64) -> u32 {
    a.set(slot, std::process::id() as i64).unwrap();
    std::thread::sleep(Duration::from_millis(sleep_ms));
    std::process::id()
}

/// Fault: the worker is SIGKILLed mid-task. Its running task fails with `WorkerDied`; the task
/// queued behind it (with its descriptor) is sent again to the replacement and works.
#[test]
fn a_chunk_requeued_after_a_kill_keeps_its_descriptors() {
    let pool = Pool::new(1).unwrap();
    let a = Array::<i64>::zeroed(2).unwrap();
    let first = pool.apply_async(stamp_then_sleep(a.clone(), 0, 300_000)).unwrap();
    // Wait until the first task runs, then submit the second: it waits in the worker's pipe.
    let deadline = Instant::now() + LONG;
    let victim = loop {
        let pid = a.get(0).unwrap();
        if pid != 0 {
            break pid as i32;
        }
        assert!(Instant::now() < deadline, "the first task never started");
        std::thread::sleep(Duration::from_millis(10));
    };
    let _guard = KillOnDrop(vec![victim]);
    let second = pool.apply_async(stamp_then_sleep(a.clone(), 1, 0)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    multiproc::sys::proc::send_signal(victim, multiproc::sys::signal::SIGKILL).unwrap();
    match first.get_timeout(LONG) {
        Err(PoolError::WorkerDied { pid, .. }) => assert_eq!(pid, victim),
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    let ran_in = second.get_timeout(LONG).unwrap();
    assert_ne!(ran_in as i32, victim);
    assert_eq!(a.get(1).unwrap(), i64::from(ran_in));
}

#[multiproc::worker]
fn count_ends(ends: Vec<Connection<u8>>) -> usize {
    ends.len()
}

/// More descriptors than one message may carry: refused at submission with a clear error,
/// nothing scheduled; the pool goes on. At the limit it works.
#[test]
fn too_many_descriptors_in_one_task_are_refused() {
    let pool = Pool::new(1).unwrap();
    // A Connection is one descriptor, two on shared-memory rings (its socket and its rings).
    let per = if pipe::<u8>().unwrap().0.uses_ring() { 2 } else { 1 };
    let mut ends = Vec::new();
    let mut keep = Vec::new();
    for _ in 0..=MAX_FDS_PER_MSG / per {
        let (a, b) = pipe::<u8>().unwrap();
        ends.push(b);
        keep.push(a);
    }
    let err = pool.apply(count_ends(std::mem::take(&mut ends))).unwrap_err();
    match &err {
        PoolError::TooManyDescriptors { count, max } => {
            assert_eq!((*count, *max), ((MAX_FDS_PER_MSG / per + 1) * per, MAX_FDS_PER_MSG))
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("nothing was scheduled"), "{err}");
    let mut ends = Vec::new();
    for _ in 0..MAX_FDS_PER_MSG / per {
        ends.push(pipe::<u8>().unwrap().1);
    }
    assert_eq!(pool.apply(count_ends(ends)).unwrap(), MAX_FDS_PER_MSG / per);
    // Tasks whose descriptors together pass the limit go in separate chunks.
    let items: Vec<Vec<Connection<u8>>> = (0..4)
        .map(|_| (0..40 / per).map(|_| pipe::<u8>().unwrap().1).collect())
        .collect();
    assert_eq!(pool.map_chunked(count_ends, items, 4).unwrap(), vec![40 / per; 4]);
}

/// The showcase `examples/shm_array_fill.rs` (a Pool filling an Array) runs and checks its sum.
/// `cargo test` builds the examples next to the test binaries; when only this test file was
/// built (`cargo test --test pool_descriptors`) the example is not there and this says so.
#[test]
fn the_shm_array_fill_example_runs() {
    let exe = std::env::current_exe().unwrap();
    let Some(example) = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("examples").join("shm_array_fill"))
        .filter(|p| p.exists())
    else {
        eprintln!("examples/shm_array_fill is not built (run the whole `cargo test`); not run");
        return;
    };
    let out = std::process::Command::new(example).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches(" filled [").count(), 4, "{stdout}");
    assert!(stdout.contains("sum of 1000000 elements"), "{stdout}");
}
