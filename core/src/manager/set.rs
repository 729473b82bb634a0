//! `SetProxy`: a shared set (Python 3.14's `manager.set()`).

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{encode, show_key, Dict, ManagerError};

/// A proxy to a set in the Manager (Python's `manager.set()`): members are kept in insertion
/// order and compared by their encoded bytes (so a member type must serialise
/// deterministically, as a dict key). Every operation is atomic in the hub.
///
/// # Example
/// ```
/// use multiproc::manager::{Manager, ManagerError};
///
/// let m = Manager::new()?;
/// let seen = m.set::<String>()?;
/// assert!(seen.add("a".into())?);
/// assert!(!seen.add("a".into())?); // already there
/// assert!(seen.contains(&"a".into())?);
/// assert_eq!(seen.len()?, 1);
/// // Python's `s.remove(x)` raises KeyError for a missing member; the error names it:
/// let err = seen.remove(&"b".into()).unwrap_err();
/// assert!(matches!(&err, ManagerError::KeyNotFound { key } if key == "\"b\""));
/// assert!(!seen.discard(&"b".into())?);
/// # Ok::<(), ManagerError>(())
/// ```
pub struct SetProxy<T> {
    d: Dict<T, ()>,
}

impl<T> SetProxy<T> {
    pub(super) fn from_dict(d: Dict<T, ()>) -> Self {
        SetProxy { d }
    }
}

impl<T> Clone for SetProxy<T> {
    /// Another proxy to the same set.
    fn clone(&self) -> Self {
        SetProxy { d: self.d.clone() }
    }
}

impl<T> PartialEq for SetProxy<T> {
    /// Do both proxies name the same shared set?
    fn eq(&self, other: &Self) -> bool {
        self.d == other.d
    }
}

impl<T> fmt::Debug for SetProxy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SetProxy").field(&self.d).finish()
    }
}

impl<T> Serialize for SetProxy<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.d.serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for SetProxy<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(SetProxy {
            d: Dict::deserialize(d)?,
        })
    }
}

impl<T: Serialize + DeserializeOwned> SetProxy<T> {
    /// Adds `item`; returns whether it was new (Python's `s.add(x)`).
    pub fn add(&self, item: T) -> Result<bool, ManagerError> {
        Ok(self.d.insert(item, ())?.is_none())
    }

    /// Removes `item` if it is there; returns whether it was (Python's `s.discard(x)`).
    pub fn discard(&self, item: &T) -> Result<bool, ManagerError> {
        Ok(self.d.remove(item)?.is_some())
    }

    /// Removes `item`, or fails with [`ManagerError::KeyNotFound`] naming it if it is not there
    /// (Python's `s.remove(x)` and its `KeyError`).
    pub fn remove(&self, item: &T) -> Result<(), ManagerError> {
        if self.discard(item)? {
            Ok(())
        } else {
            Err(ManagerError::KeyNotFound {
                key: show_key(&encode(item)?),
            })
        }
    }

    /// Is `item` in the set (Python's `x in s`)?
    pub fn contains(&self, item: &T) -> Result<bool, ManagerError> {
        self.d.contains_key(item)
    }

    /// The number of members (Python's `len(s)`).
    pub fn len(&self) -> Result<usize, ManagerError> {
        self.d.len()
    }

    /// Is it empty?
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        self.d.is_empty()
    }

    /// Removes and returns the most recently added member, or `None` if the set is empty
    /// (Python's `s.pop()` takes an arbitrary one).
    pub fn pop(&self) -> Result<Option<T>, ManagerError> {
        Ok(self.d.popitem()?.map(|(k, ())| k))
    }

    /// Adds every item, as one atomic operation (Python's `s.update(...)`).
    pub fn extend(&self, items: impl IntoIterator<Item = T>) -> Result<(), ManagerError> {
        self.d.extend(items.into_iter().map(|i| (i, ())))
    }

    /// Removes every member.
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.d.clear()
    }

    /// A snapshot of the members, in insertion order (Python's `list(s)`).
    pub fn to_vec(&self) -> Result<Vec<T>, ManagerError> {
        self.d.keys()
    }
}
