//! Bootstrap trust (issue 11, item 13): a program started with a `__MULTIPROC_BOOT` marker
//! that no multiproc root set up says what is wrong on stderr and runs its `main`, instead of
//! exiting silently or running a worker for a fake hub.
//!
//! The "programs" here are this test binary, re-executed to run one ignored test.

mod common;

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};

use common::is_helper;
use multiproc::wire::proto::{ChildInit, FromHub, ProcId, ProcInfo, TaskSpec};
use serde_bytes::ByteBuf;

const BOOT: &str = "__MULTIPROC_BOOT";

/// The "main" of the re-executed program: prints a marker.
#[test]
#[ignore = "helper for the bootstrap tests"]
fn helper_main_ran() {
    if is_helper("helper_main_ran") {
        println!("MAIN RAN");
    }
}

/// A worker a fake hub names; it must never run.
#[multiproc::worker]
fn fake_worker(x: u32) -> u32 {
    println!("WORKER RAN {x}");
    x
}

/// Runs this binary's `helper_main_ran` with `marker` in its environment and, if given, `fd3`
/// at descriptor 3.
fn run_marked(marker: &str, fd3: Option<&OwnedFd>) -> Output {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "helper_main_ran",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("MULTIPROC_TEST_HELPER", "helper_main_ran")
    .env(BOOT, marker)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if let Some(fd) = fd3 {
        let raw = fd.as_raw_fd();
        // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec; `raw` stays open in
        // the parent until the child has been spawned.
        unsafe {
            cmd.pre_exec(move || {
                // dup2 onto itself would keep close-on-exec: clear the flag instead.
                let rc = if raw == 3 {
                    nix::libc::fcntl(3, nix::libc::F_SETFD, 0)
                } else {
                    nix::libc::dup2(raw, 3)
                };
                if rc < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd.output().unwrap()
}

fn check_ran_main(out: &Output, why: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    assert!(
        stdout.contains("MAIN RAN"),
        "main did not run; stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(!stdout.contains("WORKER RAN"), "a worker ran for a fake hub: {stdout}");
    assert!(
        stderr.contains("ignoring __MULTIPROC_BOOT") && stderr.contains(why),
        "stderr does not say what is wrong ({why}): {stderr}"
    );
}

/// A marker with a wrong root pid (before the fix: exit 1, silently, before `main`).
#[test]
fn a_marker_with_a_wrong_pid_runs_main_and_says_why() {
    // No descriptor 3 at all.
    check_ran_main(&run_marked("spawn:1", None), "descriptor 3 is not open");
    // A socket at 3 whose peer (this test process) is not the pid named.
    let (a, _b) = multiproc::sys::fd::socketpair().unwrap();
    check_ran_main(&run_marked("spawn:1", Some(&a)), "not to the root pid 1");
}

/// Descriptor 3 is not a socket.
#[test]
fn a_marker_with_a_pipe_at_fd_3_runs_main_and_says_why() {
    let (r, _w) = multiproc::sys::fd::pipe().unwrap();
    let me = std::process::id();
    check_ran_main(&run_marked(&format!("spawn:{me}"), Some(&r)), "not a Unix socket");
}

/// The fake hub: a process that never starts multiproc (no hub thread), puts a valid
/// `ChildInit` on a socket at descriptor 3 of a re-executed copy of this binary, with a marker
/// naming itself. Prints the copy's output.
#[test]
#[ignore = "helper for a_fake_hub_on_fd_3_does_not_run_a_worker"]
fn helper_fake_hub() {
    if !is_helper("helper_fake_hub") {
        return;
    }
    let (hub_end, child_end) = multiproc::sys::fd::socketpair().unwrap();
    let me = std::process::id() as i32;
    let info = |proc, pid, name: &str| ProcInfo {
        proc: ProcId(proc),
        pid,
        name: name.into(),
        daemon: false,
    };
    let init = ChildInit {
        me: info(1, 0, "Fake-1"),
        parent: info(0, me, "MainProcess"),
        root_pid: me,
        task: Some(TaskSpec {
            worker: "hardening_boot::fake_worker".into(),
            args: ByteBuf::from(rmp_serde::to_vec(&(7u32,)).unwrap()),
            nfds: 0,
        }),
        max_frame: 1 << 20,
        ignore_sigint: false,
        ident: vec![1],
        authkey: ByteBuf::new(),
        ring: 0,
    };
    let frame = multiproc::wire::encode(&FromHub::Init(Box::new(init))).unwrap();
    multiproc::sys::io::send_all(std::os::fd::AsFd::as_fd(&hub_end), &frame, &[]).unwrap();
    let out = run_marked(&format!("spawn:{me}"), Some(&child_end));
    println!("CHILD STATUS {:?}", out.status.code());
    std::io::stdout().write_all(&out.stdout).unwrap();
    println!(
        "CHILD STDERR {}",
        String::from_utf8_lossy(&out.stderr).replace('\n', " | ")
    );
    std::io::stdout().flush().unwrap();
}

/// A fake hub on descriptor 3, set up by a process that runs no multiproc hub (before the fix:
/// the copy ran the worker the fake named instead of `main`).
#[test]
fn a_fake_hub_on_fd_3_does_not_run_a_worker() {
    let mut root = common::helper_root("helper_fake_hub");
    let mut guard = common::KillOnDrop::default();
    guard.add(-(root.id() as i32));
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut root.stdout.take().unwrap(), &mut stdout).unwrap();
    let _ = root.wait();
    assert!(stdout.contains("CHILD STATUS Some(0)"), "{stdout}");
    assert!(stdout.contains("MAIN RAN"), "main did not run: {stdout}");
    assert!(!stdout.contains("WORKER RAN"), "a worker ran for a fake hub: {stdout}");
    assert!(stdout.contains("runs no multiproc hub"), "{stdout}");
}
