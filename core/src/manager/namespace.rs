//! [`Namespace`]: named fields of any serialisable type.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{decode_copy, decode_moved, encode, ManagerError, RawProxy};
use crate::runtime::handle::ObjRef;
use crate::wire::manager_ops::ManagerOp;

/// A proxy to a shared namespace (Python's `manager.Namespace()`): named fields, each of any
/// serialisable type, chosen per access (`ns.x = 1` is `ns.set("x", 1)`, `ns.x` is
/// `ns.get::<i32>("x")`). Reading a field as another type than it was stored with is a
/// [`ManagerError::Decode`] error.
///
/// # Example
/// ```
/// use multiproc::manager::{Manager, Namespace};
/// use multiproc::Process;
///
/// #[multiproc::worker]
/// fn child(ns: Namespace) {
///     let x: i32 = ns.get("x").unwrap().unwrap();
///     ns.set("y", format!("x was {x}")).unwrap();
/// }
///
/// let m = Manager::new()?;
/// let ns = m.namespace()?;
/// ns.set("x", 10)?;
/// Process::new(child(ns.clone())).start()?.join()?;
/// assert_eq!(ns.get::<String>("y")?.as_deref(), Some("x was 10"));
/// assert_eq!(ns.names()?, ["x", "y"]);
/// assert_eq!(ns.get::<i32>("z")?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Namespace {
    p: RawProxy,
}

impl Namespace {
    pub(super) fn from_obj(obj: ObjRef) -> Self {
        Namespace { p: RawProxy { obj } }
    }

    /// A copy of field `name`, or `None` if it is not set.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, ManagerError> {
        self.p
            .opt(ManagerOp::Get(encode(name)?))?
            .map(|b| decode_copy(&b))
            .transpose()
    }

    /// Sets field `name`.
    pub fn set<T: Serialize>(&self, name: &str, value: T) -> Result<(), ManagerError> {
        let op = ManagerOp::Insert {
            key: encode(name)?,
            value: encode(&value)?,
        };
        // The old value, of unknown type, is dropped undecoded: handles inside it stay alive.
        self.p.opt(op).map(drop)
    }

    /// Removes field `name`, returning its value (Python's `del ns.name`).
    pub fn remove<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, ManagerError> {
        self.p
            .opt(ManagerOp::Remove(encode(name)?))?
            .map(|b| decode_moved(&b))
            .transpose()
    }

    /// Is field `name` set (Python's `hasattr(ns, name)`)?
    pub fn contains(&self, name: &str) -> Result<bool, ManagerError> {
        self.p.bool(ManagerOp::Contains(encode(name)?))
    }

    /// The names of the fields, in the order they were first set.
    pub fn names(&self) -> Result<Vec<String>, ManagerError> {
        self.p.batch(ManagerOp::Keys)?.iter().map(|b| decode_copy(b)).collect()
    }
}
