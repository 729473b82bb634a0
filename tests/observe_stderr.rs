//! What goes to standard error: a child's panic names its process; `MULTIPROC_DUMP_ON=SIGUSR1`
//! makes the root print a snapshot when the signal comes (and the children, which get the
//! group's signal too, survive it).

mod common;

use std::io::{BufRead, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{is_helper, read_line_with, KillOnDrop};
use multiproc::sync::{Event, Lock};
use multiproc::Process;

#[multiproc::worker]
fn boom() {
    panic!("boom");
}

/// Holds `lock` until `release` is set.
#[multiproc::worker]
fn holder(lock: Lock, held: Event, release: Event) {
    let _g = lock.acquire().unwrap();
    held.set().unwrap();
    release.wait_timeout(Duration::from_secs(60)).unwrap();
}

/// This test binary, re-run as the helper root `name`, in its own process group, with `env`.
fn helper(name: &str, env: &[(&str, &str)]) -> std::process::Child {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", name, "--ignored", "--nocapture", "--test-threads=1"])
        .env("MULTIPROC_TEST_HELPER", name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.spawn().expect("spawn helper root")
}

#[test]
#[ignore = "helper root for a_childs_panic_names_its_process"]
fn helper_panicking_child() {
    if !is_helper("helper_panicking_child") {
        return;
    }
    let mut p = Process::new(boom()).name("worker-2").start().unwrap();
    let pid = p.pid();
    assert!(p.join().is_err());
    println!("PID {pid}");
}

#[test]
fn a_childs_panic_names_its_process() {
    let root = helper("helper_panicking_child", &[]);
    let _guard = KillOnDrop(vec![root.id() as i32]);
    let out = root.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let pid = read_line_with(&mut stdout.as_bytes(), "PID ").expect("the helper printed no pid");
    let want = format!("process 'worker-2' (pid {pid}) panicked at tests/observe_stderr.rs:");
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&want))
        .unwrap_or_else(|| panic!("no line starting {want:?} in:\n{stderr}"));
    assert!(line.ends_with(": boom"), "{line}");
    // `file:line:column`
    let loc = &line[want.len()..line.len() - ": boom".len()];
    let parts: Vec<&str> = loc.split(':').collect();
    assert!(
        parts.len() == 2 && parts.iter().all(|n| n.parse::<u32>().is_ok()),
        "{line}"
    );
    // Rust's own "thread '<unnamed>' panicked" line is not printed.
    assert!(!stderr.contains("thread '<unnamed>' panicked"), "{stderr}");
    assert!(!stderr.contains("thread 'main' panicked"), "{stderr}");
}

#[test]
#[ignore = "helper root for sigusr1_prints_a_snapshot"]
fn helper_dump_on_signal() {
    if !is_helper("helper_dump_on_signal") {
        return;
    }
    let lock = Lock::new().unwrap();
    let (held, release) = (Event::new().unwrap(), Event::new().unwrap());
    let mut p = Process::new(holder(lock.clone(), held.clone(), release.clone()))
        .name("dump-holder")
        .start()
        .unwrap();
    assert!(held.wait_timeout(Duration::from_secs(30)).unwrap());
    println!("READY {}", p.pid());
    // Wait for the test to say it has seen the dump (it creates a marker file).
    let marker = std::env::var("DUMP_MARKER").unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    while !std::path::Path::new(&marker).exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    release.set().unwrap();
    // The child survived the group's SIGUSR1.
    p.join_timeout(Duration::from_secs(30)).unwrap();
    println!("CHILD OK");
}

#[test]
fn sigusr1_prints_a_snapshot() {
    let dir = std::env::temp_dir().join(format!("multiproc-dump-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let marker = dir.join("seen");
    let _ = std::fs::remove_file(&marker);
    let mut root = helper(
        "helper_dump_on_signal",
        &[
            ("MULTIPROC_DUMP_ON", "SIGUSR1"),
            ("DUMP_MARKER", marker.to_str().unwrap()),
        ],
    );
    let pgid = root.id() as i32;
    let mut guard = KillOnDrop(vec![pgid]);
    let mut out = std::io::BufReader::new(root.stdout.take().unwrap());
    let child: i32 = read_line_with(&mut out, "READY ")
        .expect("the helper did not get ready")
        .parse()
        .unwrap();
    guard.add(child);
    // The whole group, as `kill -USR1 -PGID` would: the root dumps, the child ignores it.
    multiproc::sys::proc::send_signal(-pgid, nix::libc::SIGUSR1).unwrap();
    let mut err = std::io::BufReader::new(root.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        line.clear();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        seen.push_str(&line);
        if line.trim_start().starts_with("WAITS") {
            break;
        }
    }
    std::fs::write(&marker, b"1").unwrap();
    assert!(seen.contains("multiproc snapshot"), "{seen}");
    assert!(seen.contains("dump-holder"), "{seen}");
    let lock_line = seen
        .lines()
        .find(|l| l.contains(" Lock "))
        .unwrap_or_else(|| panic!("{seen}"));
    assert!(lock_line.contains(&format!("dump-holder({child})")), "{lock_line}");
    let mut rest = String::new();
    let _ = out.read_to_string(&mut rest);
    let status = root.wait().unwrap();
    assert!(rest.contains("CHILD OK"), "stdout: {rest}\nstderr so far: {seen}");
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "helper root for the_snapshot_socket_env_var_serves_a_running_program"]
fn helper_serving() {
    if !is_helper("helper_serving") {
        return;
    }
    let lock = Lock::new().unwrap();
    let _g = lock.acquire().unwrap();
    println!("READY {}", lock.id().0);
    let marker = std::env::var("DUMP_MARKER").unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    while !std::path::Path::new(&marker).exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_snapshot_socket_env_var_serves_a_running_program() {
    let dir = std::env::temp_dir().join(format!("multiproc-servenv-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let (sock, marker) = (dir.join("s.sock"), dir.join("done"));
    let mut root = helper(
        "helper_serving",
        &[
            ("MULTIPROC_SNAPSHOT_SOCKET", sock.to_str().unwrap()),
            ("DUMP_MARKER", marker.to_str().unwrap()),
        ],
    );
    let _guard = KillOnDrop(vec![root.id() as i32]);
    let mut out = std::io::BufReader::new(root.stdout.take().unwrap());
    let id: u64 = read_line_with(&mut out, "READY ").unwrap().parse().unwrap();
    // Another program (this one) reads the helper's state.
    let mut snap = None;
    let end = Instant::now() + Duration::from_secs(30);
    while snap.is_none() && Instant::now() < end {
        snap = multiproc::observe::read_served_snapshot(&sock).ok();
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(&marker, b"1").unwrap();
    let snap = snap.expect("no snapshot was served");
    assert_eq!(snap.processes[0].pid, root.id() as i32);
    let row = snap.object(multiproc::observe::ObjId(id)).expect("the helper's lock");
    assert_eq!(row.held_by, vec![multiproc::observe::ProcId(0)]);
    assert!(root.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}
