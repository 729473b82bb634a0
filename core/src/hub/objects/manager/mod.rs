//! Hub state machines of the Manager: groups and their shared containers.
//!
//! # Where the Manager lives
//! In the hub. Python's `Manager()` starts a server process that holds the shared objects and
//! answers proxies over a socket; here the hub already is such a server (an event loop in the
//! root process that every process is connected to), so each shared dict, list and value is
//! simply a hub object, and a proxy call is one request/reply on the calling thread's own hub
//! connection, like a lock operation. Consequences:
//! - "The process that serves the Manager" is the root process. If it dies, every proxy call
//!   fails with `HubGone` (mapped to `ManagerGone`) — and, by the no-orphans guarantee, every
//!   other process of the program is killed too.
//! - No extra process, no extra socket, no pickling of method names.
//! - Remote clients (Python's `BaseManager(address, authkey)`, from another program or
//!   machine) are not supported. To add them: the hub would listen on a Unix socket in a
//!   `0700` directory (or TCP), check the peer with `SO_PEERCRED` and an HMAC challenge on an
//!   authkey before accepting the connection as a client, and then serve the same ops; the
//!   object table and these state machines need no change.
//!
//! # Objects
//! - A **group** ([`ManagerKind::Group`]) is the Manager itself: it registers its
//!   [`GroupKey`] with a shutdown flag. Every container is created with its group's key and
//!   shares that flag, so `Shutdown` kills every container of the group in one step, with no
//!   list of members to maintain. A dead container frees its contents on its next operation
//!   and answers every operation with [`ManagerFault::Gone`].
//! - **Containers** hold encoded MessagePack: a dict is an [`ordered::OrderedMap`] (keys
//!   compared by their encoded bytes, insertion order kept), a list a `Vec`, a value one
//!   body. Every operation is applied whole within one turn of the hub's loop, so it is atomic:
//!   a process killed between two operations can never leave a container half-updated.
//! - **`FetchAdd`** decodes the stored number (an integer, or a float) and adds a
//!   [`Delta`]: integer results are checked against the caller's type range (refused with
//!   `Overflow`, nothing changed), floats keep their width. **`CompareAndSwap`** compares
//!   encoded bytes.
//! - No container operation waits, so nothing is ever parked; a dead process holds nothing.
//!
//! Every object is reference counted ([`Lifetime::Counted`]): a container lives while some
//! process holds a proxy to it (or one is in flight, including inside a stored value).

mod ordered;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use serde::Deserialize;
use serde_bytes::ByteBuf;

use super::{Answer, Caller, Cx, Lifetime, Object, Waiter};
use crate::hub::Token;
use crate::wire::manager_ops::{Delta, GroupKey, ManagerFault, ManagerKind, ManagerOp, ManagerReply};
use crate::wire::proto::{HubError, ObjOp, ProcId, ReqId, Value};
use ordered::OrderedMap;

/// The shutdown flags of the live groups. The hub is one thread; the mutex only makes the
/// static sound.
static GROUPS: LazyLock<Mutex<HashMap<GroupKey, Arc<AtomicBool>>>> = LazyLock::new(Default::default);

fn groups() -> std::sync::MutexGuard<'static, HashMap<GroupKey, Arc<AtomicBool>>> {
    GROUPS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Builds a Manager object.
pub(crate) fn create(kind: ManagerKind, creator: ProcId) -> Result<(Box<dyn Object>, Lifetime), HubError> {
    let obj: Box<dyn Object> = match kind {
        // A process names its Managers after itself: it cannot take (or squat) another
        // process's keys.
        ManagerKind::Group(key) if key.proc != creator.0 => {
            return Err(HubError::Invalid(
                "a Manager's key must name the process that creates it".into(),
            ))
        }
        ManagerKind::Group(key) => {
            let mut g = groups();
            if g.contains_key(&key) {
                return Err(HubError::Invalid("a Manager with this key already exists".into()));
            }
            let dead = Arc::new(AtomicBool::new(false));
            g.insert(key, dead.clone());
            Box::new(Group { key, dead })
        }
        ManagerKind::Dict(group) => Box::new(Container::new(group, Data::Dict(OrderedMap::default()))?),
        ManagerKind::List(group) => Box::new(Container::new(group, Data::List(Vec::new()))?),
        ManagerKind::Value { group, init } => Box::new(Container::new(group, Data::Value(init))?),
    };
    Ok((obj, Lifetime::Counted))
}

fn reply(r: ManagerReply) -> Answer {
    Answer::Now(Ok(Value::Manager(r)))
}

fn fault(f: ManagerFault) -> Answer {
    reply(ManagerReply::Fault(f))
}

fn now(v: Value) -> Answer {
    Answer::Now(Ok(v))
}

/// A Manager: the owner of its group's shutdown flag.
struct Group {
    key: GroupKey,
    dead: Arc<AtomicBool>,
}

impl Drop for Group {
    fn drop(&mut self) {
        // Containers keep their own clone of the flag; only new containers can no longer be
        // created for this key (nobody can ask: creating one needs a Manager handle).
        groups().remove(&self.key);
    }
}

impl Object for Group {
    fn describe(&self, _now: std::time::Instant) -> super::ObjDesc {
        super::ObjDesc::kind("Manager")
    }

    fn call(&mut self, _cx: &mut Cx<'_>, _who: Caller, op: ObjOp) -> Answer {
        match op {
            ObjOp::Manager(ManagerOp::Shutdown) => {
                self.dead.store(true, Ordering::Relaxed);
                now(Value::Unit)
            }
            ObjOp::Manager(ManagerOp::IsShutdown) => now(Value::Bool(self.dead.load(Ordering::Relaxed))),
            _ => Answer::Now(Err(HubError::WrongKind)),
        }
    }
    fn expire(&mut self, _cx: &mut Cx<'_>, _conn: Token, _id: ReqId) -> bool {
        false
    }
    fn cancel(&mut self, _cx: &mut Cx<'_>, _pred: &dyn Fn(&Waiter) -> bool, _why: Option<&HubError>) {}
}

enum Data {
    Dict(OrderedMap),
    List(Vec<ByteBuf>),
    Value(ByteBuf),
}

/// A shared dict, list or value.
struct Container {
    dead: Arc<AtomicBool>,
    data: Data,
}

impl Container {
    fn new(group: GroupKey, data: Data) -> Result<Container, HubError> {
        let dead = groups()
            .get(&group)
            .cloned()
            .ok_or_else(|| HubError::Gone("the Manager has been shut down".into()))?;
        if dead.load(Ordering::Relaxed) {
            return Err(HubError::Gone("the Manager has been shut down".into()));
        }
        Ok(Container { dead, data })
    }
}

fn out_of_range(index: u64, len: usize) -> Answer {
    fault(ManagerFault::OutOfRange { index, len: len as u64 })
}

fn index_in(index: u64, len: usize) -> Option<usize> {
    usize::try_from(index).ok().filter(|&i| i < len)
}

impl Object for Container {
    fn describe(&self, _now: std::time::Instant) -> super::ObjDesc {
        let (kind, len) = match &self.data {
            Data::Dict(m) => ("Dict", Some(m.len() as u64)),
            Data::List(l) => ("List", Some(l.len() as u64)),
            Data::Value(_) => ("Value", None),
        };
        super::ObjDesc {
            kind: kind.to_owned(),
            depth: len,
            note: if self.dead.load(Ordering::Relaxed) {
                "its Manager has shut down".to_owned()
            } else {
                String::new()
            },
            ..super::ObjDesc::default()
        }
    }

    fn call(&mut self, _cx: &mut Cx<'_>, _who: Caller, op: ObjOp) -> Answer {
        let ObjOp::Manager(op) = op else {
            return Answer::Now(Err(HubError::WrongKind));
        };
        if self.dead.load(Ordering::Relaxed) {
            // Free the contents now; the object itself goes when its last proxy does.
            self.data = Data::Value(ByteBuf::new());
            return fault(ManagerFault::Gone);
        }
        use ManagerOp as O;
        match (&mut self.data, op) {
            (Data::Dict(m), O::Len) => now(Value::U64(m.len() as u64)),
            (Data::List(l), O::Len) => now(Value::U64(l.len() as u64)),
            (Data::Value(_), O::Len) => now(Value::U64(1)),
            (Data::Dict(m), O::Clear) => {
                m.clear();
                now(Value::Unit)
            }
            (Data::List(l), O::Clear) => {
                *l = Vec::new();
                now(Value::Unit)
            }
            (Data::Dict(m), O::Get(k)) => reply(ManagerReply::Opt(m.get(&k).cloned())),
            (Data::Dict(m), O::Insert { key, value }) => reply(ManagerReply::Opt(m.insert(key, value))),
            (Data::Dict(m), O::Remove(k)) => reply(ManagerReply::Opt(m.remove(&k))),
            (Data::Dict(m), O::Contains(k)) => now(Value::Bool(m.contains(&k))),
            (Data::Dict(m), O::Extend(pairs)) => {
                for (k, v) in pairs {
                    m.insert(k, v);
                }
                now(Value::Unit)
            }
            (Data::Dict(m), O::SetDefault { key, value }) => {
                if let Some(v) = m.get(&key) {
                    return reply(ManagerReply::Opt(Some(v.clone())));
                }
                m.insert(key, value.clone());
                reply(ManagerReply::Opt(Some(value)))
            }
            (Data::Dict(m), O::PopItem) => reply(ManagerReply::Pair(m.pop_last())),
            (Data::Dict(m), O::Keys) => now(Value::Batch(m.iter().map(|(k, _)| k.clone()).collect())),
            (Data::Dict(m), O::Values) => now(Value::Batch(m.iter().map(|(_, v)| v.clone()).collect())),
            (Data::Dict(m), O::Items) => reply(ManagerReply::Items(m.iter().cloned().collect())),
            (Data::List(l), O::Values) => now(Value::Batch(l.clone())),
            (Data::List(l), O::Push(v)) => {
                l.push(v);
                now(Value::Unit)
            }
            (Data::List(l), O::ExtendList(vs)) => {
                l.extend(vs);
                now(Value::Unit)
            }
            (Data::List(l), O::InsertAt { index, value }) => {
                match usize::try_from(index).ok().filter(|&i| i <= l.len()) {
                    Some(i) => {
                        l.insert(i, value);
                        now(Value::Unit)
                    }
                    None => out_of_range(index, l.len()),
                }
            }
            (Data::List(l), O::GetAt(index)) => match index_in(index, l.len()) {
                Some(i) => now(Value::Bytes(l[i].clone())),
                None => out_of_range(index, l.len()),
            },
            (Data::List(l), O::SetAt { index, value }) => match index_in(index, l.len()) {
                Some(i) => now(Value::Bytes(std::mem::replace(&mut l[i], value))),
                None => out_of_range(index, l.len()),
            },
            (Data::List(l), O::RemoveAt(None)) => match l.pop() {
                Some(v) => now(Value::Bytes(v)),
                None => out_of_range(0, 0),
            },
            (Data::List(l), O::RemoveAt(Some(index))) => match index_in(index, l.len()) {
                Some(i) => now(Value::Bytes(l.remove(i))),
                None => out_of_range(index, l.len()),
            },
            (Data::List(l), O::Reverse) => {
                l.reverse();
                now(Value::Unit)
            }
            (Data::Value(v), O::Load) => now(Value::Bytes(v.clone())),
            (Data::Value(v), O::Store(new)) => now(Value::Bytes(std::mem::replace(v, new))),
            (Data::Value(v), O::FetchAdd { key: None, delta }) => match add(v, delta) {
                Ok(new) => {
                    let previous = std::mem::replace(v, new.clone());
                    reply(ManagerReply::Number { previous, new })
                }
                Err(f) => fault(f),
            },
            (Data::Dict(m), O::FetchAdd { key: Some(k), delta }) => match m.get_mut(&k) {
                // A missing key counts as zero (a counter's first `d[k] += 1`): the result is
                // inserted, and the previous value reported is zero. Nothing is inserted if the
                // result does not fit (an unsigned `fetch_sub` on a missing key).
                None => {
                    let previous = zero_like(delta);
                    match add(&previous, delta) {
                        Ok(new) => {
                            m.insert(k, new.clone());
                            reply(ManagerReply::Number { previous, new })
                        }
                        Err(f) => fault(f),
                    }
                }
                Some(v) => match add(v, delta) {
                    Ok(new) => {
                        let previous = std::mem::replace(v, new.clone());
                        reply(ManagerReply::Number { previous, new })
                    }
                    Err(f) => fault(f),
                },
            },
            (
                Data::Value(v),
                O::CompareAndSwap {
                    key: None,
                    current,
                    new,
                },
            ) => {
                let swapped = current.as_deref().map(|c| c.as_slice()) == Some(v.as_slice());
                let previous = if swapped { std::mem::replace(v, new) } else { v.clone() };
                reply(ManagerReply::Cas {
                    swapped,
                    previous: Some(previous),
                })
            }
            (
                Data::Dict(m),
                O::CompareAndSwap {
                    key: Some(k),
                    current,
                    new,
                },
            ) => {
                let previous = m.get(&k).cloned();
                let swapped = previous.as_deref().map(|p| p.as_slice()) == current.as_deref().map(|c| c.as_slice());
                if swapped {
                    m.insert(k, new);
                }
                reply(ManagerReply::Cas { swapped, previous })
            }
            _ => Answer::Now(Err(HubError::WrongKind)),
        }
    }

    fn expire(&mut self, _cx: &mut Cx<'_>, _conn: Token, _id: ReqId) -> bool {
        false
    }

    fn cancel(&mut self, _cx: &mut Cx<'_>, _pred: &dyn Fn(&Waiter) -> bool, _why: Option<&HubError>) {}
}

/// A stored MessagePack number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Num {
    U(u64),
    I(i64),
    F(f64),
}

/// Zero of the kind `delta` adds to: MessagePack `0` (positive fixint) for an integer, `0.0`
/// (float64: `0xcb` and eight zero bytes) for a float.
fn zero_like(delta: Delta) -> ByteBuf {
    ByteBuf::from(match delta {
        Delta::Int { .. } => vec![0x00],
        Delta::Float(_) => vec![0xcb, 0, 0, 0, 0, 0, 0, 0, 0],
    })
}

/// Adds `delta` to the MessagePack number `stored`; returns the new encoding.
fn add(stored: &[u8], delta: Delta) -> Result<ByteBuf, ManagerFault> {
    let num: Num = rmp_serde::from_slice(stored)
        .map_err(|_| ManagerFault::NotANumber("the stored value is not a number".into()))?;
    let enc = |r: Result<Vec<u8>, rmp_serde::encode::Error>| {
        r.map(ByteBuf::from)
            .map_err(|e| ManagerFault::NotANumber(format!("cannot encode the result: {e}")))
    };
    match (num, delta) {
        (Num::F(x), Delta::Float(d)) => {
            // Keep the stored width: MessagePack marks float32 with 0xca.
            if stored.first() == Some(&0xca) {
                enc(rmp_serde::to_vec(&((x + d) as f32)))
            } else {
                enc(rmp_serde::to_vec(&(x + d)))
            }
        }
        (Num::U(_) | Num::I(_), Delta::Float(_)) => Err(ManagerFault::NotANumber(
            "the stored value is an integer; add an integer".into(),
        )),
        (Num::F(_), Delta::Int { .. }) => Err(ManagerFault::NotANumber(
            "the stored value is a float; add a float".into(),
        )),
        (n, Delta::Int { neg, mag, min, max }) => {
            let cur: i128 = match n {
                Num::U(u) => i128::from(u),
                Num::I(i) => i128::from(i),
                Num::F(_) => unreachable!("handled above"),
            };
            let d = if neg { -i128::from(mag) } else { i128::from(mag) };
            let r = cur + d;
            if r < i128::from(min) || r > i128::from(max) {
                return Err(ManagerFault::Overflow);
            }
            if r >= 0 {
                enc(rmp_serde::to_vec(&(r as u64)))
            } else {
                enc(rmp_serde::to_vec(&(r as i64)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(neg: bool, mag: u64) -> Delta {
        Delta::Int {
            neg,
            mag,
            min: i64::MIN,
            max: u64::MAX,
        }
    }

    #[test]
    fn fetch_add_numbers() {
        let v = rmp_serde::to_vec(&100i32).unwrap();
        let r = add(&v, int(true, 101)).unwrap();
        assert_eq!(rmp_serde::from_slice::<i32>(&r).unwrap(), -1);
        let r = add(&r, int(false, 1)).unwrap();
        assert_eq!(rmp_serde::from_slice::<u8>(&r).unwrap(), 0);
        let u8max = Delta::Int {
            neg: false,
            mag: 256,
            min: 0,
            max: 255,
        };
        assert_eq!(add(&r, u8max), Err(ManagerFault::Overflow));
        let f = rmp_serde::to_vec(&1.5f64).unwrap();
        let r = add(&f, Delta::Float(-0.25)).unwrap();
        assert_eq!(rmp_serde::from_slice::<f64>(&r).unwrap(), 1.25);
        let f = rmp_serde::to_vec(&1.5f32).unwrap();
        let r = add(&f, Delta::Float(1.0)).unwrap();
        assert_eq!(rmp_serde::from_slice::<f32>(&r).unwrap(), 2.5);
        assert!(matches!(add(&f, int(false, 1)), Err(ManagerFault::NotANumber(_))));
        let s = rmp_serde::to_vec("x").unwrap();
        assert!(matches!(add(&s, int(false, 1)), Err(ManagerFault::NotANumber(_))));
        let zero = zero_like(int(true, 3));
        assert_eq!(rmp_serde::from_slice::<i64>(&zero).unwrap(), 0);
        assert_eq!(
            rmp_serde::from_slice::<i64>(&add(&zero, int(true, 3)).unwrap()).unwrap(),
            -3
        );
        let zero = zero_like(Delta::Float(0.5));
        assert_eq!(
            rmp_serde::from_slice::<f32>(&add(&zero, Delta::Float(0.5)).unwrap()).unwrap(),
            0.5
        );
        let big = rmp_serde::to_vec(&u64::MAX).unwrap();
        assert_eq!(add(&big, int(false, 1)), Err(ManagerFault::Overflow));
    }
}
