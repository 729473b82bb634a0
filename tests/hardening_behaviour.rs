//! Issue 11, behaviour a user expects and guarantees under odd conditions: Ctrl-C reaches
//! every blocked root thread, queue order across threads, pool tasks that never ran are run
//! elsewhere, worker outcomes (`Err` exits 1, exit handlers, oversized results), the
//! `_timeout` forms, the exit-time wait, and slow leaks.
//!
//! Root-level scenarios run in a *helper root* (this binary re-executed, see `tests/common`).

mod common;

use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;

use common::{ctrl_c_helper_root, eventually, is_helper, pid_exists, CtrlC};
use multiproc::{mailbox, pipe, wait, Barrier, Condition, Event, JoinableQueue, Lock, Pool, Process, Queue, Semaphore};

#[multiproc::worker]
fn sleep_forever() {
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Helper root: twelve threads, each blocked in a different multiproc call, in interrupt mode.
/// Each prints what its call returned after the Ctrl-C.
#[test]
#[ignore = "helper root for ctrl_c_interrupts_every_blocked_root_thread"]
fn helper_twelve_blocked_threads() {
    if !is_helper("helper_twelve_blocked_threads") {
        return;
    }
    multiproc::catch_interrupts().unwrap();
    let child = Process::new(sleep_forever()).start().unwrap();
    let lock = Lock::new().unwrap();
    let sem = Semaphore::new(0).unwrap();
    let ev = Event::new().unwrap();
    let q: Queue<u64> = Queue::new().unwrap();
    let jq: JoinableQueue<u64> = JoinableQueue::new().unwrap();
    jq.put(1).unwrap();
    let (keep_a, pipe_a) = pipe::<u64>().unwrap();
    let (keep_b, pipe_b) = pipe::<u64>().unwrap();
    let pool = Pool::new(1).unwrap();
    let pending = pool.apply_async(sleep_forever()).unwrap();
    let barrier = Barrier::new(3).unwrap();
    let cond = Condition::new().unwrap();
    let pids = format!(
        "{} {}",
        child.pid(),
        pool.pids().iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" ")
    );

    // Everything is leaked: the helper ends with `exit` whatever is still blocked.
    fn leak<T>(t: T) -> &'static T {
        Box::leak(Box::new(t))
    }
    let (lock, sem, ev, q, jq, barrier, cond) = (
        leak(lock),
        leak(sem),
        leak(ev),
        leak(q),
        leak(jq),
        leak(barrier),
        leak(cond),
    );
    let held = lock.acquire().unwrap();
    let (tx, rx) = mpsc::channel::<(&'static str, String)>();
    let spawn = |name: &'static str, f: Box<dyn FnOnce() -> String + Send>| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let r = f();
            let _ = tx.send((name, r));
        });
    };
    let mut child = child;
    spawn("join", Box::new(move || format!("{:?}", child.join())));
    spawn("recv", Box::new(|| format!("{:?}", mailbox::<u64>().recv())));
    spawn("lock", Box::new(|| format!("{:?}", lock.acquire().map(|_| ()))));
    spawn("semaphore", Box::new(|| format!("{:?}", sem.acquire().map(|_| ()))));
    spawn("event", Box::new(|| format!("{:?}", ev.wait())));
    spawn("queue_get", Box::new(|| format!("{:?}", q.get())));
    spawn("joinable_join", Box::new(|| format!("{:?}", jq.join())));
    spawn("pipe_recv", Box::new(move || format!("{:?}", pipe_a.recv())));
    spawn(
        "wait",
        Box::new(move || format!("{:?}", wait(&[&pipe_b], None).map(|_| ()))),
    );
    spawn("pool_get", Box::new(move || format!("{:?}", pending.get())));
    spawn("barrier", Box::new(|| format!("{:?}", barrier.wait())));
    spawn(
        "condition",
        Box::new(|| {
            let g = cond.acquire();
            let r = format!("{:?}", cond.wait());
            drop(g);
            r
        }),
    );
    drop(tx);
    println!("READY {pids}");
    std::io::stdout().flush().unwrap();
    let mut n = 0;
    while let Ok((name, r)) = rx.recv_timeout(Duration::from_secs(30)) {
        println!("OUT {name} {r}");
        n += 1;
        if n == 12 {
            break;
        }
    }
    println!("DONE {n}");
    std::io::stdout().flush().unwrap();
    drop((held, keep_a, keep_b, pool));
    // Whatever is still blocked must not keep the helper alive.
    std::process::exit(0);
}

#[test]
fn ctrl_c_interrupts_every_blocked_root_thread() {
    let CtrlC {
        status,
        stdout: out,
        stderr: err,
        pids,
        ..
    } = ctrl_c_helper_root("helper_twelve_blocked_threads", Duration::from_secs(2));
    assert!(status.success(), "status {status:?}, stdout {out:?}, stderr {err:?}");
    assert!(out.contains("DONE 12"), "not every thread returned: stdout {out:?}");
    let outs: Vec<&str> = out.lines().filter(|l| l.contains("OUT ")).collect();
    assert_eq!(outs.len(), 12, "stdout {out:?}");
    for l in outs {
        assert!(l.contains("Interrupted"), "a call was not interrupted: {l}");
    }
    assert!(
        eventually(Duration::from_secs(5), || pids.iter().all(|&p| !pid_exists(p))),
        "children left behind"
    );
}

// ----- item 6: queue order across threads ------------------------------------------------------

#[multiproc::worker]
fn produce_numbers(q: Queue<u64>, n: u64, sentinels: u64) {
    for i in 0..n {
        q.put(i).unwrap();
    }
    for _ in 0..sentinels {
        q.put(u64::MAX).unwrap();
    }
}

/// Four threads of the root read through clones of one handle, fed by one producer process:
/// each sees the producer's items in put order, and together they see each item exactly once.
#[test]
fn queue_clones_in_several_threads_keep_put_order() {
    const N: u64 = 20_000;
    const THREADS: u64 = 4;
    let q: Queue<u64> = Queue::new().unwrap();
    let mut producer = Process::new(produce_numbers(q.clone(), N, THREADS)).start().unwrap();
    let seen: Vec<Vec<u64>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..THREADS)
            .map(|_| {
                let q = q.clone();
                s.spawn(move || {
                    let mut got = Vec::new();
                    loop {
                        match q.get_timeout(Duration::from_secs(60)) {
                            Ok(u64::MAX) => return got,
                            Ok(x) => got.push(x),
                            Err(e) => panic!("get failed after {} items: {e:?}", got.len()),
                        }
                    }
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    producer.join_timeout(Duration::from_secs(60)).unwrap();
    let mut all = Vec::new();
    for (t, got) in seen.iter().enumerate() {
        let disorder = got.windows(2).filter(|w| w[0] >= w[1]).count();
        assert_eq!(disorder, 0, "thread {t} saw {disorder} items out of put order");
        all.extend_from_slice(got);
    }
    all.sort_unstable();
    assert_eq!(all, (0..N).collect::<Vec<_>>(), "items lost or duplicated");
}

// ----- item 9: a pool task that never ran is run elsewhere ---------------------------------------

#[multiproc::worker]
fn double(x: u64) -> u64 {
    x * 2
}

/// Both idle workers of a Pool(2) are SIGKILLed, then a task is submitted at once: the task
/// had not started on a dead worker, so it runs on a replacement and succeeds, every round.
#[test]
fn task_sent_to_a_killed_idle_worker_runs_elsewhere() {
    let pool = Pool::new(2).unwrap();
    let _guard = common::KillOnDrop(pool.pids());
    for round in 0..6u64 {
        let mut pids = Vec::new();
        assert!(
            eventually(Duration::from_secs(30), || {
                pids = pool.pids();
                pids.len() == 2 && pids.iter().all(|&p| pid_exists(p))
            }),
            "the pool did not get two workers"
        );
        // A task has run on each, so both are idle and waiting for work.
        assert_eq!(pool.map(double, [1, 2, 3, 4]).unwrap(), vec![2, 4, 6, 8]);
        for &p in &pids {
            multiproc::sys::proc::send_signal(p, multiproc::sys::signal::SIGKILL).unwrap();
        }
        let r = pool.apply_async(double(round)).unwrap();
        assert_eq!(
            r.get_timeout(Duration::from_secs(60)).unwrap(),
            round * 2,
            "round {round}: the task never ran, yet it failed"
        );
    }
    pool.terminate();
}

// ----- items 14, 15, 16: the worker's outcome -----------------------------------------------------

#[multiproc::worker]
fn checked(ok: bool) -> Result<u32, String> {
    if ok {
        Ok(7)
    } else {
        Err("bad input".into())
    }
}

/// A worker returning `Err` exits with code 1 (as `fn main() -> Result` does), and `join()`
/// still hands the `Err` back; `Ok` exits 0.
#[test]
fn worker_returning_err_exits_1_and_join_hands_back_the_err() {
    for m in [multiproc::StartMethod::Spawn, multiproc::StartMethod::ForkServer] {
        let mut p = Process::new(checked(false)).start_method(m).start().unwrap();
        assert_eq!(p.join().unwrap(), Err("bad input".to_string()), "{m:?}");
        assert_eq!(p.exitcode(), Some(1), "{m:?}");
        let mut p = Process::new(checked(true)).start_method(m).start().unwrap();
        assert_eq!(p.join().unwrap(), Ok(7), "{m:?}");
        assert_eq!(p.exitcode(), Some(0), "{m:?}");
    }
}

static MARK: std::sync::OnceLock<String> = std::sync::OnceLock::new();

extern "C" fn write_mark() {
    if let Some(p) = MARK.get() {
        let _ = std::fs::write(p, b"the exit handler ran");
    }
}

#[multiproc::worker]
fn with_exit_handler(path: String, then_hang: bool) {
    let _ = MARK.set(path);
    multiproc::sys::proc::at_exit(write_mark);
    if then_hang {
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

/// A child that ends normally runs its exit handlers (libc `atexit`); a killed one does not.
#[test]
fn normal_end_runs_exit_handlers_and_a_kill_does_not() {
    let dir = TempDir(std::env::temp_dir().join(format!("multiproc-exit-handlers-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(dir.path());
    std::fs::create_dir_all(dir.path()).unwrap();
    for m in [multiproc::StartMethod::Spawn, multiproc::StartMethod::ForkServer] {
        let ran = dir.path().join(format!("ran-{m:?}"));
        let mut p = Process::new(with_exit_handler(ran.display().to_string(), false))
            .start_method(m)
            .start()
            .unwrap();
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(0));
        assert_eq!(
            std::fs::read_to_string(&ran).ok().as_deref(),
            Some("the exit handler ran"),
            "{m:?}: the exit handler did not run"
        );

        let killed = dir.path().join(format!("killed-{m:?}"));
        let mut p = Process::new(with_exit_handler(killed.display().to_string(), true))
            .start_method(m)
            .start()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        p.kill().unwrap();
        let _ = p.join_timeout(Duration::from_secs(30));
        assert_eq!(p.exitcode(), Some(-9));
        assert!(!killed.exists(), "{m:?}: a killed child ran its exit handlers");
    }
}

#[multiproc::worker]
fn huge(n: u64) -> serde_bytes::ByteBuf {
    serde_bytes::ByteBuf::from(vec![7u8; n as usize])
}

/// A result over the frame limit is `ResultTooLarge { bytes, max }`, naming the ways out, for
/// `join()` and for a pool task (whose worker survives).
#[test]
fn oversized_results_say_result_too_large() {
    let max = multiproc::runtime::max_frame_size() as u64;
    let mut p = Process::new(huge(max + 1)).start().unwrap();
    match p.join() {
        Err(e @ multiproc::JoinError::ResultTooLarge { bytes, max: m }) => {
            assert!(bytes > max && m == max, "{e:?}");
            let msg = e.to_string();
            assert!(
                msg.contains("set_max_frame_size") && msg.contains("shared memory"),
                "{msg}"
            );
        }
        other => panic!("expected ResultTooLarge, got {:?}", other.map(|b| b.len())),
    }
    assert_eq!(p.exitcode(), Some(1));

    let pool = Pool::new(1).unwrap();
    let _guard = common::KillOnDrop(pool.pids());
    let before = pool.pids();
    match pool.apply(huge(max + 1)) {
        Err(e @ multiproc::PoolError::ResultTooLarge { bytes, max: m }) => {
            assert!(bytes > max && m == max, "{e:?}");
            assert!(e.to_string().contains("set_max_frame_size"), "{e}");
        }
        other => panic!("expected ResultTooLarge, got {:?}", other.map(|b| b.len())),
    }
    assert_eq!(pool.apply(double(4)).unwrap(), 8);
    assert_eq!(pool.pids(), before, "the worker should survive an oversized result");
    pool.terminate();
}

// ----- item 17: the `_timeout` forms ----------------------------------------------------------------

/// The fork server among the children of this process (its boot marker is in its environment).
fn find_forkserver() -> Option<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|d| {
        let pid: i32 = d.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let ppid: i32 = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
        let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        let marker = b"__MULTIPROC_BOOT=forkserver:";
        (ppid == me && env.windows(marker.len()).any(|w| w == marker)).then_some(pid)
    })
}

#[multiproc::worker]
fn answer() -> u64 {
    42
}

/// Helper root: stops the fork server, then `start_timeout` gives `Timeout` in time; once the
/// fork server runs again, starts work and the late child was not left running.
#[test]
#[ignore = "helper root for start_timeout_returns_when_the_fork_server_is_stopped"]
fn helper_stopped_forkserver() {
    if !is_helper("helper_stopped_forkserver") {
        return;
    }
    use multiproc::{ProcessError, StartMethod};
    let fs = Process::new(answer()).start_method(StartMethod::ForkServer);
    assert_eq!(fs.start().unwrap().join().unwrap(), 42);
    let server = find_forkserver().expect("no fork server found");
    multiproc::sys::proc::send_signal(server, multiproc::sys::signal::SIGSTOP).unwrap();
    // Let the spare be forked first (the fork server was asked before it stopped).
    std::thread::sleep(Duration::from_millis(300));
    let mut started = Vec::new();
    let mut timed_out = None;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        match Process::new(answer())
            .start_method(StartMethod::ForkServer)
            .start_timeout(Duration::from_secs(1))
        {
            Ok(p) => started.push(p),
            Err(ProcessError::Timeout) => {
                timed_out = Some(t.elapsed());
                break;
            }
            Err(e) => panic!("unexpected start error: {e}"),
        }
    }
    multiproc::sys::proc::send_signal(server, multiproc::sys::signal::SIGCONT).unwrap();
    let took = timed_out.expect("start_timeout never timed out with the fork server stopped");
    println!("TIMEOUT_AFTER_MS {}", took.as_millis());
    for mut p in started {
        assert_eq!(p.join_timeout(Duration::from_secs(30)).unwrap(), 42);
    }
    // The fork server works again; the abandoned child is not among the children.
    let mut p = Process::new(answer())
        .start_method(StartMethod::ForkServer)
        .start_timeout(Duration::from_secs(30))
        .unwrap();
    assert_eq!(p.join().unwrap(), 42);
    std::thread::sleep(Duration::from_millis(500));
    println!("ACTIVE {}", multiproc::active_children().unwrap().len());
    println!("HELPER_OK");
}

#[test]
fn start_timeout_returns_when_the_fork_server_is_stopped() {
    let out = common::helper_root("helper_stopped_forkserver")
        .wait_with_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("HELPER_OK"), "stdout {stdout}\nstderr {stderr}");
    let ms: u64 = common::read_line_with(&mut stdout.as_bytes(), "TIMEOUT_AFTER_MS ")
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!((1000..20_000).contains(&ms), "timed out after {ms} ms");
    assert!(stdout.contains("ACTIVE 0"), "stdout {stdout}");
}

#[multiproc::worker]
fn nap_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// `Pool::join_timeout` gives `Timeout` while a task runs (not before the timeout), then
/// succeeds once the work is done.
#[test]
fn pool_join_timeout_waits_no_longer_than_asked() {
    let pool = Pool::new(1).unwrap();
    let _guard = common::KillOnDrop(pool.pids());
    let r = pool.apply_async(nap_ms(3000)).unwrap();
    pool.close();
    let t = std::time::Instant::now();
    assert!(matches!(
        pool.join_timeout(Duration::from_millis(300)),
        Err(multiproc::PoolError::Timeout)
    ));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(20),
        "{took:?}"
    );
    pool.join_timeout(Duration::from_secs(60)).unwrap();
    assert!(r.ready());
    r.get().unwrap();
}

/// `Connection::send_timeout` to a peer that does not read gives `Timeout` in time, and the
/// connection stays usable when nothing of the message was written: once the peer reads, it
/// gets exactly the messages that were sent, whole.
#[test]
fn send_timeout_gives_up_on_a_peer_that_does_not_read() {
    let (a, b) = pipe::<Vec<u8>>().unwrap();
    let go = Event::new().unwrap();
    let mut child = Process::new(read_after(b, go.clone())).start().unwrap();
    let msg = vec![1u8; 1024];
    let t = std::time::Instant::now();
    let mut sent = 0u64;
    let err = loop {
        let s = std::time::Instant::now();
        match a.send_timeout(&msg, Duration::from_millis(200)) {
            Ok(()) => sent += 1,
            Err(e) => {
                assert!(s.elapsed() >= Duration::from_millis(200), "gave up early");
                break e;
            }
        }
        assert!(t.elapsed() < Duration::from_secs(60), "the socket never filled up");
    };
    assert!(matches!(err, multiproc::PipeSendError::Timeout), "{err:?}");
    go.set().unwrap();
    a.send(&Vec::new()).unwrap();
    assert_eq!(child.join_timeout(Duration::from_secs(60)).unwrap(), sent);
}

#[multiproc::worker]
fn read_after(conn: multiproc::Connection<Vec<u8>>, go: Event) -> u64 {
    go.wait().unwrap();
    let mut n = 0;
    loop {
        let m = conn.recv().unwrap();
        if m.is_empty() {
            return n;
        }
        assert_eq!(m.len(), 1024);
        n += 1;
    }
}

// ----- item 18: the exit-time wait says who it waits for ---------------------------------------------

#[multiproc::worker]
fn finish_after(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// Helper root: a child that ends quickly and one that ends after a few seconds; then the root
/// returns from its test, and the test binary exits normally.
#[test]
#[ignore = "helper root for exit_wait_names_the_children_it_waits_for"]
fn helper_exit_wait() {
    if !is_helper("helper_exit_wait") {
        return;
    }
    let quick = Process::new(finish_after(100)).name("quick").start().unwrap();
    let slow = Process::new(finish_after(3000)).name("slow").start().unwrap();
    println!("PIDS {} {}", quick.pid(), slow.pid());
    std::io::stdout().flush().unwrap();
}

#[test]
fn exit_wait_names_the_children_it_waits_for() {
    let t = std::time::Instant::now();
    let out = common::helper_root("helper_exit_wait").wait_with_output().unwrap();
    let took = t.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?} {stderr}", out.status);
    let pids: Vec<i32> = common::read_line_with(&mut stdout.as_bytes(), "PIDS ")
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(took >= Duration::from_secs(3), "the root did not wait: {took:?}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("non-daemonic")).collect();
    assert_eq!(lines.len(), 1, "stderr: {stderr}");
    let line = lines[0];
    assert!(line.contains(&format!("slow (pid {})", pids[1])), "{line}");
    assert!(!line.contains("quick"), "{line}");
    assert!(line.contains("Ctrl-C"), "{line}");
}

// ----- item 8: killing the fork server spares its running children --------------------------------

#[multiproc::worker]
fn slow_answer(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    42
}

/// Helper root: a fork-server child and a fork-server pool are busy; the fork server is
/// SIGKILLed. The child and the pool's workers survive and finish; a new fork server starts on
/// demand.
#[test]
#[ignore = "helper root for killing_the_fork_server_spares_its_children"]
fn helper_kill_forkserver() {
    if !is_helper("helper_kill_forkserver") {
        return;
    }
    use multiproc::StartMethod;
    let mut child = Process::new(slow_answer(1500))
        .start_method(StartMethod::ForkServer)
        .start()
        .unwrap();
    let pool = Pool::builder()
        .processes(2)
        .start_method(StartMethod::ForkServer)
        .build()
        .unwrap();
    let workers = pool.pids();
    let pending = pool.map_async(slow_answer, vec![800u64; 4]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let server = find_forkserver().expect("no fork server found");
    println!(
        "PIDS {} {} {}",
        child.pid(),
        workers.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" "),
        server
    );
    std::io::stdout().flush().unwrap();
    multiproc::sys::proc::send_signal(server, multiproc::sys::signal::SIGKILL).unwrap();
    assert_eq!(
        child.join_timeout(Duration::from_secs(30)).unwrap(),
        42,
        "the child died with the fork server"
    );
    assert_eq!(child.exitcode(), Some(0));
    assert_eq!(pending.get_timeout(Duration::from_secs(60)).unwrap(), vec![42; 4]);
    assert_eq!(
        pool.pids(),
        workers,
        "pool workers were replaced: they died with the fork server"
    );
    // A new fork server serves the next start.
    let mut again = Process::new(slow_answer(0))
        .start_method(StartMethod::ForkServer)
        .start_timeout(Duration::from_secs(30))
        .unwrap();
    assert_eq!(again.join().unwrap(), 42);
    let new_server = find_forkserver().expect("no new fork server");
    assert_ne!(new_server, server);
    pool.close();
    pool.join_timeout(Duration::from_secs(30)).unwrap();
    println!("HELPER_OK");
}

#[test]
fn killing_the_fork_server_spares_its_children() {
    let out = common::helper_root("helper_kill_forkserver")
        .wait_with_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Some(pids) = common::read_line_with(&mut stdout.as_bytes(), "PIDS ") {
        for p in pids.split_whitespace().filter_map(|p| p.parse().ok()) {
            let _ = multiproc::sys::proc::send_signal(p, multiproc::sys::signal::SIGKILL);
        }
    }
    assert!(
        out.status.success() && stdout.contains("HELPER_OK"),
        "stdout {stdout}\nstderr {stderr}"
    );
}

// ----- item 19: slow leaks ----------------------------------------------------------------------------

/// A process started and dropped without a join is forgotten by the hub once it has ended
/// (before the fix its entry stayed forever).
#[test]
fn dropped_unjoined_processes_are_forgotten_once_ended() {
    let mut ids = Vec::new();
    let mut pids = Vec::new();
    for m in [
        multiproc::StartMethod::Spawn,
        multiproc::StartMethod::ForkServer,
        multiproc::StartMethod::Fork,
    ] {
        let p = Process::new(finish_after(0)).start_method(m).start().unwrap();
        ids.push(p.proc_id());
        pids.push(p.pid());
        drop(p);
    }
    // A running one that is dropped is forgotten when it ends, not before.
    let slow = Process::new(finish_after(1500)).start().unwrap();
    let slow_id = slow.proc_id();
    drop(slow);
    assert!(multiproc::runtime::hub_knows_process(slow_id).unwrap());
    assert!(
        eventually(Duration::from_secs(30), || ids
            .iter()
            .all(|&id| !multiproc::runtime::hub_knows_process(id).unwrap())),
        "ended, dropped processes are still in the hub's table"
    );
    assert!(
        eventually(Duration::from_secs(30), || !multiproc::runtime::hub_knows_process(
            slow_id
        )
        .unwrap()),
        "the slow one was not forgotten after it ended"
    );
    // A joined one is forgotten too (it always was).
    let mut p = Process::new(finish_after(0)).start().unwrap();
    let id = p.proc_id();
    p.join().unwrap();
    assert!(!multiproc::runtime::hub_knows_process(id).unwrap());
    assert!(pids
        .iter()
        .all(|&p| eventually(Duration::from_secs(10), || !pid_exists(p))));
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// Helper root: fills a queue with two million items, drains it, and prints the resident
/// memory before, when full, and after.
#[test]
#[ignore = "helper root for a_drained_queue_gives_its_memory_back"]
fn helper_queue_memory() {
    if !is_helper("helper_queue_memory") {
        return;
    }
    let q: Queue<u64> = Queue::new().unwrap();
    q.put(0).unwrap();
    q.get().unwrap();
    let before = rss_kib();
    const N: u64 = 2_000_000;
    for chunk in (0..N).collect::<Vec<_>>().chunks(10_000) {
        q.put_many(chunk.to_vec()).unwrap();
    }
    assert_eq!(q.qsize().unwrap() as u64, N);
    let full = rss_kib();
    for i in 0..N {
        assert_eq!(q.get().unwrap(), i);
    }
    multiproc::runtime::ping_hub().unwrap();
    let after = rss_kib();
    println!("RSS_KIB {before} {full} {after}");
}

#[test]
fn a_drained_queue_gives_its_memory_back() {
    let out = common::helper_root("helper_queue_memory").wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rss: Vec<u64> = common::read_line_with(&mut stdout.as_bytes(), "RSS_KIB ")
        .unwrap_or_else(|| panic!("stdout {stdout} stderr {}", String::from_utf8_lossy(&out.stderr)))
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let (before, full, after) = (rss[0], rss[1], rss[2]);
    assert!(full > before + 50_000, "the full queue should hold memory: {rss:?}");
    // Back near the baseline: well under a quarter of what the full queue held.
    assert!(
        after < before + (full - before) / 4,
        "memory kept after the drain (KiB): {rss:?}"
    );
}

#[multiproc::worker]
fn wait_for_lock(lock: Lock) {
    let _g = lock.acquire().unwrap();
}

/// Helper root: holds a Lock that its non-daemonic child waits for, and returns from its test
/// without releasing it.
#[test]
#[ignore = "helper root for exit_wait_names_a_lock_the_root_holds"]
fn helper_exit_wait_lock() {
    if !is_helper("helper_exit_wait_lock") {
        return;
    }
    let lock = Lock::new().unwrap();
    let guard = lock.acquire().unwrap();
    let child = Process::new(wait_for_lock(lock.clone()))
        .name("locked-out")
        .start()
        .unwrap();
    println!("PIDS {}", child.pid());
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // The guard is never dropped: the child can never get the lock.
    std::mem::forget(guard);
    std::mem::forget(lock);
}

#[test]
fn exit_wait_names_a_lock_the_root_holds() {
    use std::io::BufRead;
    let mut root = common::helper_root("helper_exit_wait_lock");
    let mut guard = common::KillOnDrop::default();
    guard.add(root.id() as i32);
    let mut err = std::io::BufReader::new(root.stderr.take().unwrap());
    let mut line = String::new();
    let found = loop {
        line.clear();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            break None;
        }
        if line.contains("non-daemonic") {
            break Some(line.clone());
        }
    };
    let _ = multiproc::sys::proc::send_signal(root.id() as i32, multiproc::sys::signal::SIGKILL);
    let _ = root.wait();
    let line = found.expect("no exit-wait line on stderr");
    assert!(line.contains("locked-out"), "{line}");
    assert!(line.contains("holds a Lock that locked-out waits for"), "{line}");
}

/// A directory removed when the test ends.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
