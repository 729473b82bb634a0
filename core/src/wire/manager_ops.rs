//! Wire operations of the Manager's shared containers (dict, list, value, namespace).
//!
//! Keys and values travel as opaque MessagePack bodies ([`ByteBuf`]); the hub compares keys by
//! their bytes and never decodes a value, except for [`ManagerOp::FetchAdd`], which decodes a
//! number. The state machines live in `hub/objects/manager/`; the user-facing proxies in
//! `crate::manager`.
//!
//! A Manager is a *group*: a hub object of kind [`ManagerKind::Group`] named by a
//! [`GroupKey`], and every container created through it carries that key. Shutting the group
//! down marks every container of the group dead at once (they share one flag in the hub); a
//! dead container answers every operation with [`ManagerFault::Gone`].

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// Names a Manager (a group of containers): the creating process and a sequence number local
/// to it, unique for the program's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupKey {
    /// The creating process.
    pub proc: u64,
    /// Its sequence number in that process.
    pub seq: u64,
}

/// Kinds of Manager objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ManagerKind {
    /// The Manager itself: owns the group's shutdown flag.
    Group(GroupKey),
    /// An insertion-ordered map (also used for namespaces, with string keys).
    Dict(GroupKey),
    /// A sequence.
    List(GroupKey),
    /// A single value.
    Value {
        /// Its group.
        group: GroupKey,
        /// The initial value.
        init: ByteBuf,
    },
}

/// A number to add, as the hub applies it to a stored MessagePack number.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Delta {
    /// An integer `(-1)^neg * mag`, applied exactly; the result must stay in `min..=max`.
    Int {
        /// Negative?
        neg: bool,
        /// Magnitude.
        mag: u64,
        /// The smallest value the stored type can hold.
        min: i64,
        /// The largest value the stored type can hold.
        max: u64,
    },
    /// A float, added in `f64` (the stored value must be a float).
    Float(f64),
}

/// Operations on Manager objects. `key: None` addresses a Value object's single slot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ManagerOp {
    /// Group: mark the group and all its containers dead. Replies `Unit` (idempotent).
    Shutdown,
    /// Group: has it been shut down? Replies `Bool`.
    IsShutdown,
    /// Any container: the number of entries. Replies `U64`.
    Len,
    /// Dict/List: remove every entry. Replies `Unit`.
    Clear,
    /// Dict: the value for a key. Replies `Manager(Opt)`.
    Get(ByteBuf),
    /// Dict: insert or overwrite (keeps the key's position). Replies `Manager(Opt)`: the old
    /// value.
    Insert {
        /// The key.
        key: ByteBuf,
        /// The value.
        value: ByteBuf,
    },
    /// Dict: remove a key. Replies `Manager(Opt)`: its value.
    Remove(ByteBuf),
    /// Dict: is the key there? Replies `Bool`.
    Contains(ByteBuf),
    /// Dict: insert or overwrite every pair, in order. Replies `Unit`.
    Extend(Vec<(ByteBuf, ByteBuf)>),
    /// Dict: the value for `key`, inserting `value` first if absent. Replies `Manager(Opt)`
    /// (always `Some`).
    SetDefault {
        /// The key.
        key: ByteBuf,
        /// The default.
        value: ByteBuf,
    },
    /// Dict: remove and return the most recently inserted pair. Replies `Manager(Pair)`.
    PopItem,
    /// Dict: every key, in order. Replies `Batch`.
    Keys,
    /// Dict/List: every value, in order. Replies `Batch`.
    Values,
    /// Dict: every pair, in order. Replies `Manager(Items)`.
    Items,
    /// List: append. Replies `Unit`.
    Push(ByteBuf),
    /// List: append every item. Replies `Unit`.
    ExtendList(Vec<ByteBuf>),
    /// List: insert before `index` (`index == len` appends). Replies `Unit` or `OutOfRange`.
    InsertAt {
        /// Where.
        index: u64,
        /// What.
        value: ByteBuf,
    },
    /// List: the item at `index`. Replies `Bytes` or `OutOfRange`.
    GetAt(u64),
    /// List: overwrite the item at `index`. Replies `Bytes` (the old item) or `OutOfRange`.
    SetAt {
        /// Where.
        index: u64,
        /// What.
        value: ByteBuf,
    },
    /// List: remove and return the item at `index` (`None`: the last). Replies `Bytes`, or
    /// `OutOfRange` (an empty list for `None`).
    RemoveAt(Option<u64>),
    /// List: reverse in place. Replies `Unit`.
    Reverse,
    /// Value: read. Replies `Bytes`.
    Load,
    /// Value: overwrite. Replies `Bytes` (the old value).
    Store(ByteBuf),
    /// Dict (key) or Value (`None`): add `delta` to the stored number atomically. Replies
    /// `Manager(Number)` (the previous and the new value), or `Missing`/`NotANumber`/`Overflow`.
    FetchAdd {
        /// The key (dict), or `None` (value).
        key: Option<ByteBuf>,
        /// What to add.
        delta: Delta,
    },
    /// Dict (key) or Value (`None`): store `new` if the current bytes equal `current`
    /// (`None`: the key is absent). Replies `Manager(Cas)`.
    CompareAndSwap {
        /// The key (dict), or `None` (value).
        key: Option<ByteBuf>,
        /// The expected current value (`None`: absent).
        current: Option<ByteBuf>,
        /// The replacement.
        new: ByteBuf,
    },
}

/// Replies of Manager objects (inside `Value::Manager`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ManagerReply {
    /// A value that may be absent.
    Opt(Option<ByteBuf>),
    /// A pair that may be absent.
    Pair(Option<(ByteBuf, ByteBuf)>),
    /// Every pair.
    Items(Vec<(ByteBuf, ByteBuf)>),
    /// The result of a `FetchAdd`, MessagePack-encoded.
    Number {
        /// The value before the addition.
        previous: ByteBuf,
        /// The value stored now.
        new: ByteBuf,
    },
    /// The result of a `CompareAndSwap`.
    Cas {
        /// Was `new` stored?
        swapped: bool,
        /// The value before the operation (`None`: absent).
        previous: Option<ByteBuf>,
    },
    /// The operation was refused.
    Fault(ManagerFault),
}

/// Why a Manager operation was refused (nothing changed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ManagerFault {
    /// The Manager was shut down.
    Gone,
    /// A list index out of range.
    OutOfRange {
        /// The index.
        index: u64,
        /// The list's length.
        len: u64,
    },
    /// `FetchAdd` on a key that is absent.
    Missing,
    /// `FetchAdd` on a value that is not a number of a compatible kind.
    NotANumber(String),
    /// `FetchAdd` would leave the type's range.
    Overflow,
}
