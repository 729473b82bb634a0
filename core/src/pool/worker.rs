//! The worker side of a pool: the messages on a worker's pipe and the loop a worker runs.
//!
//! Parent → worker: one [`Run`] per chunk (a worker name and the encoded arguments of each
//! task). Worker → parent: one [`FromWorker::Done`] per chunk, with an [`Outcome`] per task, in
//! order; or [`FromWorker::InitFailed`] once if the initializer failed. A worker handles one
//! chunk at a time, strictly in order, so the parent always knows which chunk is running.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::pipe::Connection;

/// A chunk of tasks for one registered worker function (decoded by the worker).
#[derive(Debug, Deserialize)]
pub(crate) struct Run {
    pub worker: String,
    pub args: Vec<ByteBuf>,
}

/// The same shape as [`Run`], borrowed, for encoding in the parent without copying.
#[derive(Serialize)]
pub(crate) struct RunRef<'a> {
    pub worker: &'a str,
    pub args: &'a [ByteBuf],
}

/// How one task ended in the worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Outcome {
    /// The encoded result.
    Ok(ByteBuf),
    /// The task panicked.
    Panicked { message: String, location: Option<String> },
    /// The task could not run or its result could not be serialised.
    Failed(String),
}

/// A message from a worker to the pool.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    /// The outcomes of the chunk that was running, one per task.
    Done(Vec<Outcome>),
    /// The initializer failed; the worker exits.
    InitFailed(String),
}

/// Runs `args` through the registered worker `name`, catching panics.
fn run_chunk(run: &Run) -> Vec<Outcome> {
    let entry = match crate::__private::find_worker(&run.worker) {
        Ok(e) => e,
        Err(e) => return run.args.iter().map(|_| Outcome::Failed(e.0.clone())).collect(),
    };
    run.args
        .iter()
        .map(|a| match crate::__private::run_caught(entry, a) {
            Ok(Ok(bytes)) => Outcome::Ok(ByteBuf::from(bytes)),
            Ok(Err(e)) => Outcome::Failed(e.0),
            Err((message, location)) => Outcome::Panicked { message, location },
        })
        .collect()
}

fn send(conn: &Connection<()>, msg: &FromWorker) -> bool {
    match rmp_serde::to_vec(msg) {
        Ok(bytes) => conn.send_bytes(&bytes).is_ok(),
        Err(_) => false,
    }
}

/// The life of a pool worker: run the initializer, then chunks until the pool closes the pipe
/// (end of file) or `maxtasks` chunks have run. Started with SIGINT ignored and panics
/// reported rather than printed.
#[crate::worker]
pub(crate) fn pool_worker(conn: Connection<()>, init: Option<(String, ByteBuf)>, maxtasks: u64) {
    if let Some((worker, args)) = init {
        let run = Run {
            worker,
            args: vec![args],
        };
        let failure = match run_chunk(&run).pop() {
            Some(Outcome::Ok(_)) => None,
            Some(Outcome::Panicked { message, location }) => Some(format!(
                "panicked at {}: {message}",
                location.as_deref().unwrap_or("an unknown location")
            )),
            Some(Outcome::Failed(m)) => Some(m),
            None => Some("the initializer did not run".into()),
        };
        if let Some(f) = failure {
            send(&conn, &FromWorker::InitFailed(f));
            return;
        }
    }
    let mut buf = Vec::new();
    let mut done = 0u64;
    loop {
        if conn.recv_bytes_into(&mut buf).is_err() {
            // End of file: the pool closed our pipe (close, terminate, or the parent died).
            return;
        }
        let outcomes = match rmp_serde::from_slice::<Run>(&buf) {
            Ok(run) => run_chunk(&run),
            // Cannot happen with our own parent; fail loudly rather than guess a task count.
            Err(_) => return,
        };
        if !send(&conn, &FromWorker::Done(outcomes)) {
            return;
        }
        done += 1;
        if maxtasks > 0 && done >= maxtasks {
            return;
        }
    }
}
