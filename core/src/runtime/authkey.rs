//! The process's authentication key (Python's `current_process().authkey`).
//!
//! The root gets 32 random bytes from the kernel the first time anything asks for the key.
//! Every child starts with the key its parent had when it started it (the key travels in the
//! spawn request and the child's init frame; a forked child has it in its copied memory).
//! [`set_authkey`] changes it for this process and for the children it starts afterwards.
//! [`crate::connection::Listener`] and [`crate::connection::Client`] use it by default.

use std::sync::{Arc, Mutex};

use crate::sys;

/// A secret shared by the processes that may talk to each other through a
/// `Listener`/`Client` pair. Its `Debug` form never shows the bytes.
///
/// # Example
/// ```
/// use multiproc::AuthKey;
///
/// let key = AuthKey::from("a shared secret");
/// assert_eq!(key.as_bytes(), b"a shared secret");
/// assert_eq!(format!("{key:?}"), "AuthKey(15 bytes)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct AuthKey(Arc<[u8]>);

impl AuthKey {
    /// 32 random bytes from the kernel.
    pub fn random() -> AuthKey {
        let mut b = [0u8; 32];
        if sys::net::random_bytes(&mut b).is_err() {
            // No /dev/urandom: refuse to invent a weak key silently. The key is then empty, and
            // every handshake that uses it fails with a clear error (see `connection`).
            return AuthKey(Arc::from(Vec::new()));
        }
        AuthKey(Arc::from(b.to_vec()))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Is the key empty (an empty key is refused by every handshake)?
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuthKey({} bytes)", self.0.len())
    }
}

impl From<&[u8]> for AuthKey {
    fn from(b: &[u8]) -> Self {
        AuthKey(Arc::from(b.to_vec()))
    }
}

impl<const N: usize> From<&[u8; N]> for AuthKey {
    fn from(b: &[u8; N]) -> Self {
        AuthKey(Arc::from(b.to_vec()))
    }
}

impl From<Vec<u8>> for AuthKey {
    fn from(b: Vec<u8>) -> Self {
        AuthKey(Arc::from(b))
    }
}

impl From<&str> for AuthKey {
    fn from(s: &str) -> Self {
        AuthKey(Arc::from(s.as_bytes().to_vec()))
    }
}

impl From<String> for AuthKey {
    fn from(s: String) -> Self {
        AuthKey(Arc::from(s.into_bytes()))
    }
}

static KEY: Mutex<Option<AuthKey>> = Mutex::new(None);

fn lock() -> std::sync::MutexGuard<'static, Option<AuthKey>> {
    KEY.lock().unwrap_or_else(|p| p.into_inner())
}

/// This process's authentication key (Python's `current_process().authkey`): random in the
/// root, inherited by children.
///
/// # Example
/// ```
/// let key = multiproc::authkey();
/// assert!(!key.is_empty());
/// assert_eq!(key, multiproc::authkey()); // the same key every time
/// ```
pub fn authkey() -> AuthKey {
    lock().get_or_insert_with(AuthKey::random).clone()
}

/// Sets this process's authentication key. Children started afterwards inherit it; children
/// already running keep the key they had.
///
/// # Example
/// ```
/// multiproc::set_authkey("secret");
/// assert_eq!(multiproc::authkey().as_bytes(), b"secret");
/// ```
pub fn set_authkey(key: impl Into<AuthKey>) {
    *lock() = Some(key.into());
}

/// Installs the key a child got in its init frame (empty: keep what this process has, as a
/// forked child does).
pub(crate) fn inherit(bytes: &[u8]) {
    if !bytes.is_empty() {
        *lock() = Some(AuthKey::from(bytes));
    }
}
