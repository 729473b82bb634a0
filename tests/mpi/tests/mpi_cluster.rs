//! The MPI backend under a real launcher: each test starts one of this package's programs with
//! `mpirun --oversubscribe --allow-run-as-root -n 3` (or without a launcher) and checks what it
//! prints and how it ends. Jobs run one at a time (a 2-core machine; and the rank-death test
//! looks for leftover processes by name).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_JOB: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_JOB.lock().unwrap_or_else(|p| p.into_inner())
}

fn mpirun(n: u32, bin: &str) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["--oversubscribe", "--allow-run-as-root", "-n", &n.to_string(), bin]);
    c
}

/// A child that is killed (with its job) if the test fails before it ends.
struct Job(Child);

impl Drop for Job {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs to completion, at most `limit`.
fn run(mut cmd: Command, limit: Duration) -> Output {
    let mut job = Job(cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start"));
    let mut out = job.0.stdout.take().unwrap();
    let mut err = job.0.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = job.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the job did not end within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: o.join().unwrap(),
        stderr: e.join().unwrap(),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn every_pool_feature_works_on_three_ranks() {
    let _g = serial();
    let o = run(mpirun(3, env!("CARGO_BIN_EXE_mpi_pool")), Duration::from_secs(300));
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("world size 3"), "{out}");
    assert!(out.contains("all ok"), "{out}");
    // A task's panic is reported to rank 0, not printed by the rank.
    assert!(!err.contains("seven is not allowed"), "{err}");
}

#[test]
fn outside_mpi_the_pool_says_how_to_launch() {
    let _g = serial();
    let mut c = Command::new(env!("CARGO_BIN_EXE_mpi_launch"));
    for v in [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "MV2_COMM_WORLD_SIZE",
        "PMIX_RANK",
        "PMI_RANK",
        "OMPI_COMM_WORLD_RANK",
    ] {
        c.env_remove(v);
    }
    let o = run(c, Duration::from_secs(60));
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("not started by an MPI launcher") && err.contains("mpirun -n N"),
        "{err}"
    );
}

#[test]
fn a_wrong_launcher_is_an_error_naming_the_mpi_built_for() {
    let _g = serial();
    // What MPICH's mpiexec gives a binary built for Open MPI: MPICH's variables, and an Open MPI
    // that starts as a singleton.
    let mut c = Command::new(env!("CARGO_BIN_EXE_mpi_launch"));
    c.env("PMI_SIZE", "3").env("PMI_RANK", "1");
    let o = run(c, Duration::from_secs(60));
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("wrong MPI launcher"), "{err}");
    assert!(err.contains("PMI_SIZE=3"), "{err}");
    assert!(
        err.contains("built for Open MPI") || err.contains("built for MPICH"),
        "{err}"
    );
    // It fails before main: the program printed nothing.
    assert!(out.is_empty(), "{out}");
}

/// The real thing, not a faked environment: MPICH's own `mpiexec` (Hydra, which sets
/// `PMI_SIZE`) starting this binary built for Open MPI. Each of the 3 processes is an Open MPI
/// singleton; each must refuse before `main`, naming the MPI it was built for, and the job must
/// end at once. Skipped where MPICH is not installed, unless `MULTIPROC_REQUIRE_MPICH=1` (CI
/// installs it and sets that).
#[test]
fn mpich_mpiexec_starting_an_open_mpi_binary_is_refused_by_every_process() {
    let _g = serial();
    let hydra = "mpiexec.mpich";
    if Command::new(hydra).arg("--version").output().is_err() {
        assert!(
            std::env::var("MULTIPROC_REQUIRE_MPICH").as_deref() != Ok("1"),
            "{hydra} is not installed, and MULTIPROC_REQUIRE_MPICH=1"
        );
        eprintln!("skipped: {hydra} is not installed");
        return;
    }
    let mut c = Command::new(hydra);
    c.args(["-n", "3", env!("CARGO_BIN_EXE_mpi_launch")]);
    let t = Instant::now();
    let o = run(c, Duration::from_secs(60));
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(!o.status.success(), "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(
        err.matches("wrong MPI launcher: PMI_SIZE=3").count(),
        3,
        "each of the 3 processes refuses:\n{err}"
    );
    assert!(err.contains("built for Open MPI"), "{err}");
    assert!(out.is_empty(), "main ran: {out}");
    assert!(t.elapsed() < Duration::from_secs(30), "took {:?}", t.elapsed());
}

#[test]
fn a_single_rank_job_is_an_error() {
    let _g = serial();
    let o = run(mpirun(1, env!("CARGO_BIN_EXE_mpi_launch")), Duration::from_secs(60));
    let err = text(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("needs at least 2"), "{err}");
}

#[test]
fn three_ranks_map_through_mpi_launch() {
    let _g = serial();
    let o = run(mpirun(3, env!("CARGO_BIN_EXE_mpi_launch")), Duration::from_secs(60));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), "mapped 100");
}

/// Live (not zombie) processes whose command line names `bin`.
fn live_processes_named(bin: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if !text(&cmd).contains(bin) {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit(')').next().and_then(|s| s.split_whitespace().next());
        if state.is_some_and(|s| s != "Z" && s != "X") {
            found.push(pid);
        }
    }
    found
}

#[test]
fn a_rank_killed_mid_map_ends_the_job_within_10_s_and_leaves_nothing() {
    kill_a_rank_mid_map(false);
}

#[test]
fn a_rank_with_local_workers_killed_mid_map_leaves_nothing_either() {
    kill_a_rank_mid_map(true);
}

fn kill_a_rank_mid_map(local: bool) {
    let _g = serial();
    let bin = env!("CARGO_BIN_EXE_mpi_rankdeath");
    let mut cmd = mpirun(3, bin);
    if local {
        cmd.arg("local");
    }
    let mut job = Job(cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mpirun"));
    let mut lines = BufReader::new(job.0.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line").expect("readable");
    let pids: Vec<i32> = first
        .strip_prefix("pids ")
        .expect("pids line")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{first}");
    let mut err = job.0.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    // Mid-map: the ranks are running tasks.
    std::thread::sleep(Duration::from_millis(500));
    let victim = pids[0];
    let killed = Command::new("kill").args(["-9", &victim.to_string()]).status().unwrap();
    assert!(killed.success());
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = job.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the job did not end within 10 s of the rank's death"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = text(&err_reader.join().unwrap());
    assert!(!status.success());
    assert!(
        stderr.contains("process rank") && stderr.contains("signal 9"),
        "the launcher names the rank and the reason:\n{stderr}"
    );
    // Nothing is left (processes that have ended but are not yet reaped by init are allowed).
    let t1 = Instant::now();
    loop {
        let left = live_processes_named("mpi_rankdeath");
        if left.is_empty() {
            break;
        }
        assert!(t1.elapsed() < Duration::from_secs(10), "left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
