//! [`Dict`]: a shared, insertion-ordered map.

use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{decode_copy, decode_moved, encode, show_key, unexpected, ManagerError, Number, RawProxy};
use crate::runtime::handle::ObjRef;
use crate::wire::manager_ops::{ManagerOp, ManagerReply};
use crate::wire::proto::Value;

/// A proxy to a shared dict in a [`Manager`](super::Manager) (Python's `manager.dict()`).
///
/// Follows Python's `MutableMapping` with Rust's names: `insert`/`get`/`remove` instead of
/// `d[k] = v`/`d[k]`/`del d[k]`. Insertion order is kept (overwriting a key keeps its place).
/// `keys`, `values`, `items` and `to_map` are snapshots. Every method is one atomic operation
/// in the hub.
///
/// # Example
/// ```
/// use std::collections::HashMap;
/// use multiproc::manager::{Dict, Manager};
/// use multiproc::Process;
///
/// #[multiproc::worker]
/// fn fill(d: Dict<u32, String>) {
///     for i in 0..3 {
///         d.insert(i, format!("v{i}")).unwrap();
///     }
/// }
///
/// let m = Manager::new()?;
/// let d = m.dict::<u32, String>()?;
/// Process::new(fill(d.clone())).start()?.join()?;
/// assert_eq!(d.keys()?, [0, 1, 2]);
/// assert_eq!(d.pop(&1)?, Some("v1".to_string()));
/// let copy: HashMap<u32, String> = d.to_map()?;
/// assert_eq!(copy.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Dict<K, V> {
    p: RawProxy,
    _t: PhantomData<Types<K, V>>,
}

/// Marks the key and value types without owning them (the proxy is Send + Sync whatever they
/// are).
type Types<K, V> = fn(K, V) -> (K, V);

impl<K, V> Dict<K, V> {
    pub(super) fn from_obj(obj: ObjRef) -> Self {
        Dict {
            p: RawProxy { obj },
            _t: PhantomData,
        }
    }
}

impl<K, V> Clone for Dict<K, V> {
    /// Another proxy to the same dict.
    fn clone(&self) -> Self {
        Dict {
            p: self.p.clone(),
            _t: PhantomData,
        }
    }
}

impl<K, V> PartialEq for Dict<K, V> {
    /// Do both proxies name the same shared dict?
    fn eq(&self, other: &Self) -> bool {
        self.p == other.p
    }
}

impl<K, V> fmt::Debug for Dict<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dict").field("obj", &self.p.obj.id()).finish()
    }
}

impl<K, V> Serialize for Dict<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.p.serialize(s)
    }
}

impl<'de, K, V> Deserialize<'de> for Dict<K, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Dict {
            p: RawProxy::deserialize(d)?,
            _t: PhantomData,
        })
    }
}

impl<K, V> Dict<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// The number of entries (Python's `len(d)`).
    pub fn len(&self) -> Result<usize, ManagerError> {
        Ok(self.p.u64(ManagerOp::Len)? as usize)
    }

    /// Is it empty?
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }

    /// A copy of the value for `key` (Python's `d.get(k)`).
    pub fn get(&self, key: &K) -> Result<Option<V>, ManagerError> {
        let key = encode(key)?;
        self.p
            .opt(ManagerOp::Get(key.clone()))?
            .map(|b| decode_copy(&b).map_err(|e| e.at_key(&show_key(&key))))
            .transpose()
    }

    /// Inserts or overwrites (Python's `d[k] = v`); returns the old value, like
    /// `HashMap::insert`. An overwritten key keeps its position.
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>, ManagerError> {
        let op = ManagerOp::Insert {
            key: encode(&key)?,
            value: encode(&value)?,
        };
        self.p.opt(op)?.map(|b| decode_moved(&b)).transpose()
    }

    /// Inserts or overwrites **one-way** (Python's `d[k] = v`, without waiting for the
    /// Manager's answer): returns once the request is written to the hub's socket, so it is
    /// applied even if this process dies on the next line, and before anything this thread
    /// asks afterwards (a following `get` sees it). Half the cost of
    /// [`insert`](Dict::insert) in a set-then-get loop.
    ///
    /// Being one-way, it cannot report what the hub would refuse: after a
    /// [shutdown](super::Manager::shutdown) the write is dropped and the *next* call on any
    /// proxy reports [`ManagerError::ManagerGone`] (a gone root is reported at once). The
    /// overwritten value is dropped in the hub (proxies inside it stay alive; see the module
    /// docs).
    pub fn set(&self, key: K, value: V) -> Result<(), ManagerError> {
        let op = ManagerOp::Insert {
            key: encode(&key)?,
            value: encode(&value)?,
        };
        Ok(self.p.obj.cast(crate::wire::proto::ObjOp::Manager(op))?)
    }

    /// Removes `key`; returns its value if it was there (Python's `d.pop(k, None)`; `del d[k]`
    /// ignoring the result).
    pub fn remove(&self, key: &K) -> Result<Option<V>, ManagerError> {
        let key = encode(key)?;
        self.p
            .opt(ManagerOp::Remove(key.clone()))?
            .map(|b| decode_moved(&b).map_err(|e| e.at_key(&show_key(&key))))
            .transpose()
    }

    /// The same as [`remove`](Dict::remove) (Python's name).
    pub fn pop(&self, key: &K) -> Result<Option<V>, ManagerError> {
        self.remove(key)
    }

    /// Is `key` there (Python's `k in d`)?
    pub fn contains_key(&self, key: &K) -> Result<bool, ManagerError> {
        self.p.bool(ManagerOp::Contains(encode(key)?))
    }

    /// Removes every entry.
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.p.unit(ManagerOp::Clear)
    }

    /// Inserts every pair, in order, as one atomic operation (Python's `d.update(...)`).
    pub fn extend(&self, items: impl IntoIterator<Item = (K, V)>) -> Result<(), ManagerError> {
        let pairs = items
            .into_iter()
            .map(|(k, v)| Ok((encode(&k)?, encode(&v)?)))
            .collect::<Result<Vec<_>, ManagerError>>()?;
        if pairs.is_empty() {
            return Ok(());
        }
        self.p.unit(ManagerOp::Extend(pairs))
    }

    /// The same as [`extend`](Dict::extend) (Python's name).
    pub fn update(&self, items: impl IntoIterator<Item = (K, V)>) -> Result<(), ManagerError> {
        self.extend(items)
    }

    /// The value for `key`, after inserting `default` if the key was absent (Python's
    /// `d.setdefault(k, default)`), in one atomic step.
    pub fn setdefault(&self, key: K, default: V) -> Result<V, ManagerError> {
        let default = encode(&default)?;
        let op = ManagerOp::SetDefault {
            key: encode(&key)?,
            value: default.clone(),
        };
        match self.p.opt(op)? {
            Some(b) => {
                if b != default {
                    // The default was not stored: settle the handles serialised into it.
                    super::settle::<V>(&default);
                }
                decode_copy(&b)
            }
            None => Err(unexpected("setdefault returned nothing")),
        }
    }

    /// Removes and returns the most recently inserted pair (Python's `d.popitem()`), or `None`
    /// if the dict is empty.
    pub fn popitem(&self) -> Result<Option<(K, V)>, ManagerError> {
        match self.p.op(ManagerOp::PopItem)? {
            Value::Manager(ManagerReply::Pair(None)) => Ok(None),
            Value::Manager(ManagerReply::Pair(Some((k, v)))) => Ok(Some((decode_moved(&k)?, decode_moved(&v)?))),
            other => Err(unexpected(other)),
        }
    }

    /// A snapshot of the keys, in order (Python's `list(d.keys())`, and `for k in d`).
    pub fn keys(&self) -> Result<Vec<K>, ManagerError> {
        self.p.batch(ManagerOp::Keys)?.iter().map(|b| decode_copy(b)).collect()
    }

    /// A snapshot of the values, in order.
    pub fn values(&self) -> Result<Vec<V>, ManagerError> {
        self.p
            .batch(ManagerOp::Values)?
            .iter()
            .map(|b| decode_copy(b))
            .collect()
    }

    /// A snapshot of the pairs, in order.
    pub fn items(&self) -> Result<Vec<(K, V)>, ManagerError> {
        match self.p.op(ManagerOp::Items)? {
            Value::Manager(ManagerReply::Items(items)) => items
                .iter()
                .map(|(k, v)| Ok((decode_copy(k)?, decode_copy(v)?)))
                .collect(),
            other => Err(unexpected(other)),
        }
    }

    /// A snapshot as any map (Python's `d.copy()`): `HashMap`, `BTreeMap`, or a `Vec` of
    /// pairs to keep the order.
    pub fn to_map<M: FromIterator<(K, V)>>(&self) -> Result<M, ManagerError> {
        Ok(self.items()?.into_iter().collect())
    }

    /// Atomically adds `delta` to the number stored at `key`; returns the previous value
    /// (like `AtomicI64::fetch_add`). Python's `d[k] += delta`, without the race: no lock
    /// needed, 70 processes each adding 1 add exactly 70.
    ///
    /// **A missing key counts as zero**: it is inserted with the value `delta`, and `0` is
    /// returned, in the same atomic step — so a counter needs no setup (Python's
    /// `collections.Counter`, or `defaultdict(int)`). Fails, with the value unchanged and the
    /// key named in the error, with [`ManagerError::Overflow`] if the result would not fit `V`,
    /// and with [`ManagerError::NotANumber`] if the stored value is not a number of `V`'s kind.
    ///
    /// ```
    /// use multiproc::manager::{Manager, ManagerError};
    ///
    /// let m = Manager::new()?;
    /// let levels = m.dict::<String, u64>()?;
    /// for level in ["INFO", "WARN", "INFO"] {
    ///     levels.fetch_add(&level.to_string(), 1)?; // no KeyError on the first "INFO"
    /// }
    /// assert_eq!(levels.get(&"INFO".to_string())?, Some(2));
    /// assert_eq!(levels.get(&"WARN".to_string())?, Some(1));
    /// // Errors name the key:
    /// let err = levels.fetch_sub(&"WARN".to_string(), 5).unwrap_err();
    /// assert!(matches!(&err, ManagerError::Overflow { key: Some(k) } if k == "\"WARN\""));
    /// assert!(err.to_string().contains("\"WARN\""), "{err}");
    /// # Ok::<(), ManagerError>(())
    /// ```
    pub fn fetch_add(&self, key: &K, delta: V) -> Result<V, ManagerError>
    where
        V: Number,
    {
        let key = encode(key)?;
        self.p
            .fetch_add(Some(key.clone()), delta.delta(false))
            .map_err(|e| e.at_key(&show_key(&key)))
    }

    /// Atomically subtracts `delta`; returns the previous value (Python's `d[k] -= delta`,
    /// without the race). As with [`fetch_add`](Dict::fetch_add), a missing key counts as
    /// zero: it is inserted with `-delta` (for an unsigned `V`, that is an
    /// [`Overflow`](ManagerError::Overflow), and nothing is inserted).
    pub fn fetch_sub(&self, key: &K, delta: V) -> Result<V, ManagerError>
    where
        V: Number,
    {
        let key = encode(key)?;
        self.p
            .fetch_add(Some(key.clone()), delta.delta(true))
            .map_err(|e| e.at_key(&show_key(&key)))
    }

    /// Atomically stores `new` at `key` if the current value is `current` (`None`: the key is
    /// absent), comparing encoded bytes (so `V` must serialise deterministically). Returns `Ok(previous)` if it stored, `Err(actual)`
    /// if not — like `AtomicU64::compare_exchange`.
    #[allow(clippy::type_complexity)]
    pub fn compare_and_swap(
        &self,
        key: &K,
        current: Option<&V>,
        new: V,
    ) -> Result<Result<Option<V>, Option<V>>, ManagerError> {
        let current = current.map(|c| encode(c)).transpose()?;
        self.p.cas(Some(encode(key)?), current, encode(&new)?)
    }
}
