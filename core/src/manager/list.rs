//! [`List`]: a shared sequence.

use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{decode_copy, decode_moved, encode, ManagerError, RawProxy};
use crate::runtime::handle::ObjRef;
use crate::wire::manager_ops::ManagerOp;

/// A proxy to a shared list in a [`Manager`](super::Manager) (Python's `manager.list()`).
///
/// Follows Python's `MutableSequence`; an index out of range is
/// [`ManagerError::IndexOutOfRange`], never a panic. Every method is one atomic operation in
/// the hub; [`index`](List::index) and [`count`](List::count) compare with `T`'s `PartialEq`
/// on a snapshot taken in one operation.
///
/// # Example
/// ```
/// use multiproc::manager::{List, Manager};
/// use multiproc::Process;
///
/// #[multiproc::worker]
/// fn work(l: List<i32>) {
///     l.extend([1, 2, 3]).unwrap();
///     l.insert(0, 0).unwrap();
/// }
///
/// let m = Manager::new()?;
/// let l = m.list::<i32>()?;
/// Process::new(work(l.clone())).start()?.join()?;
/// assert_eq!(l.to_vec()?, [0, 1, 2, 3]);
/// assert_eq!(l.pop()?, Some(3));
/// l.reverse()?;
/// assert_eq!(l.to_vec()?, [2, 1, 0]);
/// assert!(l.get(10).unwrap_err().to_string().contains("out of range"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct List<T> {
    p: RawProxy,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> List<T> {
    pub(super) fn from_obj(obj: ObjRef) -> Self {
        List {
            p: RawProxy { obj },
            _t: PhantomData,
        }
    }
}

impl<T> Clone for List<T> {
    /// Another proxy to the same list.
    fn clone(&self) -> Self {
        List {
            p: self.p.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> PartialEq for List<T> {
    /// Do both proxies name the same shared list?
    fn eq(&self, other: &Self) -> bool {
        self.p == other.p
    }
}

impl<T> fmt::Debug for List<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("List").field("obj", &self.p.obj.id()).finish()
    }
}

impl<T> Serialize for List<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.p.serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(List {
            p: RawProxy::deserialize(d)?,
            _t: PhantomData,
        })
    }
}

fn idx(i: usize) -> u64 {
    i as u64
}

impl<T: Serialize + DeserializeOwned> List<T> {
    /// The number of items.
    pub fn len(&self) -> Result<usize, ManagerError> {
        Ok(self.p.u64(ManagerOp::Len)? as usize)
    }

    /// Is it empty?
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }

    /// Appends an item.
    pub fn push(&self, item: T) -> Result<(), ManagerError> {
        self.p.unit(ManagerOp::Push(encode(&item)?))
    }

    /// The same as [`push`](List::push) (Python's name).
    pub fn append(&self, item: T) -> Result<(), ManagerError> {
        self.push(item)
    }

    /// Appends every item, as one atomic operation.
    pub fn extend(&self, items: impl IntoIterator<Item = T>) -> Result<(), ManagerError> {
        let items = items.into_iter().map(|v| encode(&v)).collect::<Result<Vec<_>, _>>()?;
        if items.is_empty() {
            return Ok(());
        }
        self.p.unit(ManagerOp::ExtendList(items))
    }

    /// Inserts `item` before position `index` (`index == len()` appends); beyond that is an
    /// error (Python clamps; Rust's `Vec::insert` panics).
    pub fn insert(&self, index: usize, item: T) -> Result<(), ManagerError> {
        self.p.unit(ManagerOp::InsertAt {
            index: idx(index),
            value: encode(&item)?,
        })
    }

    /// A copy of the item at `index`.
    pub fn get(&self, index: usize) -> Result<T, ManagerError> {
        decode_copy(&self.p.bytes(ManagerOp::GetAt(idx(index)))?)
    }

    /// Overwrites the item at `index` (Python's `l[i] = v`); returns the old item.
    pub fn set(&self, index: usize, item: T) -> Result<T, ManagerError> {
        let old = self.p.bytes(ManagerOp::SetAt {
            index: idx(index),
            value: encode(&item)?,
        })?;
        decode_moved(&old)
    }

    /// Removes and returns the item at `index` (Python's `l.pop(i)`, `del l[i]`).
    pub fn remove(&self, index: usize) -> Result<T, ManagerError> {
        decode_moved(&self.p.bytes(ManagerOp::RemoveAt(Some(idx(index))))?)
    }

    /// Removes and returns the last item, or `None` if the list is empty (Python's
    /// `l.pop()`).
    pub fn pop(&self) -> Result<Option<T>, ManagerError> {
        match self.p.bytes(ManagerOp::RemoveAt(None)) {
            Ok(b) => Ok(Some(decode_moved(&b)?)),
            Err(ManagerError::IndexOutOfRange { len: 0, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes every item.
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.p.unit(ManagerOp::Clear)
    }

    /// Reverses the list in place.
    pub fn reverse(&self) -> Result<(), ManagerError> {
        self.p.unit(ManagerOp::Reverse)
    }

    /// A snapshot of the items (Python's `l[:]`, and `for x in l`).
    pub fn to_vec(&self) -> Result<Vec<T>, ManagerError> {
        self.p
            .batch(ManagerOp::Values)?
            .iter()
            .map(|b| decode_copy(b))
            .collect()
    }

    /// The position of the first item equal to `item`, or `None` (Python's `l.index(x)`,
    /// which raises instead). Compares with `PartialEq` on a snapshot.
    pub fn index(&self, item: &T) -> Result<Option<usize>, ManagerError>
    where
        T: PartialEq,
    {
        Ok(self.to_vec()?.iter().position(|x| x == item))
    }

    /// How many items equal `item` (Python's `l.count(x)`), on a snapshot.
    pub fn count(&self, item: &T) -> Result<usize, ManagerError>
    where
        T: PartialEq,
    {
        Ok(self.to_vec()?.iter().filter(|x| *x == item).count())
    }
}
