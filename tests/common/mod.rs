//! Helpers shared by the integration tests. Each test binary includes this module and uses
//! only part of it.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};

use multiproc::sync::Semaphore;
use multiproc::Process;
use serde::de::DeserializeOwned;
use std::time::{Duration, Instant};

/// A started child that is killed and reaped when dropped, so a failing test leaves nothing
/// behind. The process is `.0`.
pub struct Reap<T: DeserializeOwned>(pub Process<T>);

impl<T: DeserializeOwned> Drop for Reap<T> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.join_timeout(Duration::from_secs(5));
    }
}

/// Kills the listed pids (SIGKILL) when dropped, so a failing test leaves nothing behind.
#[derive(Default)]
pub struct KillOnDrop(pub Vec<i32>);

impl KillOnDrop {
    pub fn add(&mut self, pid: i32) {
        self.0.push(pid);
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for &pid in &self.0 {
            let _ = multiproc::sys::proc::send_signal(pid, multiproc::sys::signal::SIGKILL);
        }
    }
}

/// Polls `f` until it is true or `limit` passes; returns whether it became true.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Is a process with this pid still there (running, or a zombie)?
pub fn pid_exists(pid: i32) -> bool {
    multiproc::sys::proc::pid_exists(pid)
}

/// Is this pid a zombie (Linux)?
pub fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// A helper root program: this test binary re-run to execute the ignored test `name` with
/// `MULTIPROC_TEST_HELPER=name` in its environment, in a process group of its own.
pub fn helper_root(name: &str) -> Child {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", name, "--ignored", "--nocapture", "--test-threads=1"])
        .env("MULTIPROC_TEST_HELPER", name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.spawn().expect("spawn helper root")
}

/// Is this process running as the helper named `name`? If so, it also arms a watchdog that
/// ends the helper after 60 s, so that a failing test can never leave it (and, through the
/// parent-death signal, its children) running.
pub fn is_helper(name: &str) -> bool {
    let yes = std::env::var("MULTIPROC_TEST_HELPER").as_deref() == Ok(name);
    if yes {
        // The Ctrl-C tests send SIGINT to the helper as a terminal would. A test run started in
        // the background by a non-interactive shell has SIGINT ignored (POSIX), and an ignored
        // signal stays ignored across exec: undo that, as a program started at a terminal has it.
        let _ = multiproc::sys::signal::default(multiproc::sys::signal::SIGINT);
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_secs(60));
            std::process::exit(3);
        });
    }
    yes
}

/// Reads lines from a child's stdout until one starts with `prefix`; returns the rest.
pub fn read_line_with(reader: &mut impl std::io::BufRead, prefix: &str) -> Option<String> {
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        // libtest prints `test name ... ` without a newline, so the marker may not start the line.
        if let Some(at) = line.find(prefix) {
            return Some(line[at + prefix.len()..].trim_end().to_string());
        }
    }
}

/// Child processes that are killed and reaped when the test ends, even if it fails.
pub struct Kids<T: DeserializeOwned>(pub Vec<Process<T>>);

impl<T: DeserializeOwned> Kids<T> {
    pub fn new() -> Self {
        Kids(Vec::new())
    }

    pub fn push(&mut self, p: Process<T>) -> usize {
        self.0.push(p);
        self.0.len() - 1
    }

    /// Joins every child, panicking with the child's error if one failed.
    pub fn join_all(&mut self) -> Vec<T> {
        self.0
            .iter_mut()
            .map(|p| p.join_timeout(Duration::from_secs(60)).expect("child failed"))
            .collect()
    }
}

impl<T: DeserializeOwned> Drop for Kids<T> {
    fn drop(&mut self) {
        for p in &mut self.0 {
            if p.exitcode().is_none() {
                let _ = p.kill();
            }
            let _ = p.join_timeout(Duration::from_secs(10));
        }
    }
}

/// Takes one permit of a signalling semaphore (a raw permit: it is consumed).
pub fn take(sem: &Semaphore, limit: Duration) {
    sem.acquire_timeout(limit)
        .expect("semaphore")
        .expect("timed out waiting for a signal")
        .forget();
}

/// A shared counter: CPython's tests use a semaphore's value the same way.
pub fn count(sem: &Semaphore) -> u64 {
    sem.get_value().expect("get_value")
}

/// What a helper root did after a Ctrl-C to its process group.
pub struct CtrlC {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// The pids the helper printed after `READY `.
    pub pids: Vec<i32>,
    /// From the SIGINT to the helper's exit.
    pub took: Duration,
}

/// Starts the helper root `name`, waits for its `READY <pids>` line, gives it `settle` to block,
/// sends SIGINT to its whole process group (as a terminal's Ctrl-C does), and collects what
/// happened. Everything it started is SIGKILLed at the end whatever the outcome.
pub fn ctrl_c_helper_root(name: &str, settle: Duration) -> CtrlC {
    use std::io::Read;
    let mut root = helper_root(name);
    let mut guard = KillOnDrop::default();
    let pgid = root.id() as i32;
    guard.add(pgid);
    let mut out = std::io::BufReader::new(root.stdout.take().expect("piped stdout"));
    let ready = read_line_with(&mut out, "READY ").expect("the helper root did not get ready");
    let pids: Vec<i32> = ready.split_whitespace().filter_map(|p| p.parse().ok()).collect();
    for &p in &pids {
        guard.add(p);
    }
    std::thread::sleep(settle);
    let t = Instant::now();
    multiproc::sys::proc::send_signal(-pgid, multiproc::sys::signal::SIGINT).expect("kill(-pgid, SIGINT)");
    let status = root.wait().expect("wait for the helper root");
    let took = t.elapsed();
    let mut stdout = String::new();
    let _ = out.read_to_string(&mut stdout);
    let mut stderr = String::new();
    if let Some(mut e) = root.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    CtrlC {
        status,
        stdout,
        stderr,
        pids,
        took,
    }
}

/// A generous deadline for operations that are expected to finish (the machine is loaded).
pub const LONG: Duration = Duration::from_secs(60);

/// Is this run on the socket-only transport (`MULTIPROC_TRANSPORT=socket`)?
pub fn socket_only() -> bool {
    std::env::var(multiproc::wire::ring::TRANSPORT_ENV).as_deref() == Ok("socket")
}

/// SIGKILLs the calling process at once (no exit handlers, no flush).
pub fn die_now() -> ! {
    let _ = multiproc::sys::proc::send_signal(std::process::id() as i32, multiproc::sys::signal::SIGKILL);
    std::thread::sleep(Duration::from_secs(30));
    std::process::exit(3)
}

/// Takes `cond`'s lock, notifies once, says so on `acquired`, and keeps the lock until it is
/// killed (the notifier that dies holding the lock, for the Condition tests).
#[multiproc::worker]
pub fn notify_and_hang(cond: multiproc::sync::Condition, acquired: multiproc::sync::Semaphore) {
    let _g = cond.acquire().unwrap();
    cond.notify().unwrap();
    acquired.release().unwrap();
    std::thread::sleep(Duration::from_secs(600));
}
