//! Errors of the Manager and its proxies.

use crate::error::CallError;
use crate::wire::proto::HubError;

/// Why a Manager or proxy operation failed. Nothing changed in the shared object.
///
/// # Example
/// ```
/// use multiproc::manager::{Manager, ManagerError};
///
/// let m = Manager::new()?;
/// let l = m.list_from([1, 2, 3])?;
/// assert!(matches!(l.get(7), Err(ManagerError::IndexOutOfRange { index: 7, len: 3 })));
/// m.shutdown()?;
/// assert!(matches!(l.get(0), Err(ManagerError::ManagerGone)));
/// # Ok::<(), ManagerError>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// The Manager was shut down (by any process), or the root process that serves it is gone.
    /// Every later call on its proxies fails the same way; create a new Manager to go on.
    #[error("the Manager is gone (it was shut down, or the root process that serves it has exited)")]
    ManagerGone,
    /// A list index was out of range (Python's `IndexError`).
    #[error("index {index} is out of range for a shared list of length {len}")]
    IndexOutOfRange {
        /// The index.
        index: u64,
        /// The list's length at the time.
        len: u64,
    },
    /// A member or key that is not there where one is required (Python's `KeyError`), as in
    /// [`SetProxy::remove`](super::SetProxy::remove); `key` is the key as text (`"WARN"`,
    /// `42`, `["host", 8080]`). (`Dict::fetch_add` inserts a missing key instead.)
    #[error("{key} is not in the shared container (Python's KeyError)")]
    KeyNotFound {
        /// The key, as text.
        key: String,
    },
    /// `fetch_add`/`fetch_sub` on a stored value that is not a number of the proxy's kind
    /// (integer or float); it was stored through a proxy of another type. For a dict, the
    /// message names the key.
    #[error("not a number: {0}")]
    NotANumber(String),
    /// `fetch_add`/`fetch_sub` would take the value out of its type's range; nothing changed.
    #[error("the atomic addition{} would overflow the value's type; the value is unchanged", key_part(.key))]
    Overflow {
        /// The dict key, as text (`None` for a [`ValueProxy`](super::ValueProxy)).
        key: Option<String>,
    },
    /// A key or value could not be serialised (or is larger than the maximum frame size).
    /// Handles that carry descriptors (pipes, shared memory) cannot be stored in a Manager.
    #[error("could not serialise a key or value for the Manager: {0}")]
    Encode(String),
    /// A stored value could not be decoded as the proxy's type (it was stored through a proxy
    /// of another type).
    #[error("a value from the Manager could not be decoded: {0}")]
    Decode(String),
    /// Interrupted by Ctrl-C (interrupt mode).
    #[error("interrupted by Ctrl-C")]
    Interrupted,
    /// A primitive (`lock()`, `queue()`, ...) could not be created.
    #[error("could not create the primitive: {0}")]
    Primitive(String),
    /// The hub could not be reached or refused the call for another reason.
    #[error(transparent)]
    Call(CallError),
}

impl From<CallError> for ManagerError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::HubGone | CallError::Hub(HubError::UnknownObject) | CallError::Hub(HubError::Gone(_)) => {
                ManagerError::ManagerGone
            }
            e if e.is_interrupted() => ManagerError::Interrupted,
            CallError::Encode(e) => ManagerError::Encode(e.to_string()),
            e => ManagerError::Call(e),
        }
    }
}

/// `" at key K"`, or nothing.
fn key_part(key: &Option<String>) -> String {
    key.as_ref().map_or_else(String::new, |k| format!(" at key {k}"))
}

impl ManagerError {
    /// The same error, naming the dict key it happened at (`key`: the key as text).
    pub(super) fn at_key(self, key: &str) -> ManagerError {
        match self {
            ManagerError::NotANumber(m) => ManagerError::NotANumber(format!("the value at key {key}: {m}")),
            ManagerError::Overflow { key: None } => ManagerError::Overflow {
                key: Some(key.to_string()),
            },
            ManagerError::Decode(m) => ManagerError::Decode(format!("the value at key {key}: {m}")),
            e => e,
        }
    }

    /// Is this [`ManagerError::ManagerGone`]?
    pub fn is_gone(&self) -> bool {
        matches!(self, ManagerError::ManagerGone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_gone_is_manager_gone() {
        assert!(ManagerError::from(CallError::HubGone).is_gone());
        assert!(ManagerError::from(CallError::Hub(HubError::UnknownObject)).is_gone());
        assert!(ManagerError::from(CallError::Hub(HubError::Gone("x".into()))).is_gone());
        assert!(matches!(
            ManagerError::from(CallError::Hub(HubError::Interrupted)),
            ManagerError::Interrupted
        ));
    }
}
