//! `ArrayProxy`: a shared fixed-length array (Python's `manager.Array(typecode, sequence)`).

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{List, ManagerError};

/// A proxy to a fixed-length array in the Manager (Python's `manager.Array(typecode,
/// sequence)`): read and write items by index; its length never changes. Every operation is
/// atomic in the hub. (For an array of plain numbers in shared memory, without a round trip
/// per access, see [`shm::Array`](crate::shm::Array).)
///
/// # Example
/// ```
/// use multiproc::manager::{Manager, ManagerError};
///
/// let m = Manager::new()?;
/// let a = m.array([0.0f64; 4])?;
/// a.set(2, 1.5)?;
/// assert_eq!(a.get(2)?, 1.5);
/// assert_eq!(a.len()?, 4);
/// assert!(matches!(a.get(4), Err(ManagerError::IndexOutOfRange { index: 4, len: 4 })));
/// assert_eq!(a.to_vec()?, [0.0, 0.0, 1.5, 0.0]);
/// # Ok::<(), ManagerError>(())
/// ```
pub struct ArrayProxy<T> {
    l: List<T>,
}

impl<T> ArrayProxy<T> {
    pub(super) fn from_list(l: List<T>) -> Self {
        ArrayProxy { l }
    }
}

impl<T> Clone for ArrayProxy<T> {
    /// Another proxy to the same array.
    fn clone(&self) -> Self {
        ArrayProxy { l: self.l.clone() }
    }
}

impl<T> PartialEq for ArrayProxy<T> {
    /// Do both proxies name the same shared array?
    fn eq(&self, other: &Self) -> bool {
        self.l == other.l
    }
}

impl<T> fmt::Debug for ArrayProxy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ArrayProxy").field(&self.l).finish()
    }
}

impl<T> Serialize for ArrayProxy<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.l.serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for ArrayProxy<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ArrayProxy {
            l: List::deserialize(d)?,
        })
    }
}

impl<T: Serialize + DeserializeOwned> ArrayProxy<T> {
    /// The length (Python's `len(a)`), fixed at creation.
    pub fn len(&self) -> Result<usize, ManagerError> {
        self.l.len()
    }

    /// Is it empty (created from an empty sequence)?
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        self.l.is_empty()
    }

    /// A copy of item `index` (Python's `a[i]`), or [`ManagerError::IndexOutOfRange`].
    pub fn get(&self, index: usize) -> Result<T, ManagerError> {
        self.l.get(index)
    }

    /// Replaces item `index` (Python's `a[i] = x`); returns the old item.
    pub fn set(&self, index: usize, item: T) -> Result<T, ManagerError> {
        self.l.set(index, item)
    }

    /// A snapshot of every item (Python's `a[:]`).
    pub fn to_vec(&self) -> Result<Vec<T>, ManagerError> {
        self.l.to_vec()
    }
}
