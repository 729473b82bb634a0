//! The link-time registry of `#[worker]` entry points.

/// Why a worker could not run in the child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError(pub String);

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunError {}

/// One registered worker: its stable name and a function that decodes the arguments, runs the
/// body and encodes the result.
#[derive(Debug)]
pub struct WorkerEntry {
    /// `module::path::name`.
    pub name: &'static str,
    /// Runs the worker on encoded arguments and appends its encoded value to the vector (on
    /// an error, the vector may hold part of the value: cut it back).
    pub run: fn(&[u8], &mut Vec<u8>) -> Result<(), RunError>,
}

/// Every `#[worker]` in the binary.
#[linkme::distributed_slice]
pub static WORKERS: [WorkerEntry];

/// Finds a worker by name. An error if it is unknown or registered twice.
pub(crate) fn find(name: &str) -> Result<&'static WorkerEntry, RunError> {
    let mut found = WORKERS.iter().filter(|w| w.name == name);
    match (found.next(), found.next()) {
        (Some(w), None) => Ok(w),
        (None, _) => Err(RunError(format!(
            "no worker named `{name}` in this binary ({} workers are registered); was the binary rebuilt while running?",
            WORKERS.len()
        ))),
        (Some(_), Some(_)) => Err(RunError(format!(
            "two workers are named `{name}`; give local #[worker] functions distinct names"
        ))),
    }
}
