//! Manager containers: CPython's `_TestContainers` (list, dict, iteration, nesting, namespace)
//! and `TestSyncManagerTypes` (operations done in a child, seen in the parent).

mod common;

use std::collections::{BTreeMap, HashMap};

use common::Kids;
use multiproc::manager::{ArrayProxy, Dict, List, Manager, ManagerError, Namespace, SetProxy, ValueProxy};
use multiproc::Process;

// ----- _TestContainers ---------------------------------------------------------------------

#[test]
fn test_list() {
    let m = Manager::new().unwrap();
    let a = m.list_from(0..10).unwrap();
    assert_eq!(a.to_vec().unwrap(), (0..10).collect::<Vec<_>>());
    let b = m.list::<i32>().unwrap();
    assert!(b.is_empty().unwrap());
    b.extend(0..5).unwrap();
    assert_eq!(b.to_vec().unwrap(), [0, 1, 2, 3, 4]);
    assert_eq!(b.get(2).unwrap(), 2);
    assert_eq!(b.set(2, 20).unwrap(), 2);
    assert_eq!(b.to_vec().unwrap(), [0, 1, 20, 3, 4]);
    b.push(5).unwrap();
    b.append(5).unwrap();
    assert_eq!(b.count(&5).unwrap(), 2);
    assert_eq!(b.index(&20).unwrap(), Some(2));
    assert_eq!(b.index(&99).unwrap(), None);
    b.insert(0, -1).unwrap();
    b.insert(b.len().unwrap(), 6).unwrap();
    assert_eq!(b.to_vec().unwrap(), [-1, 0, 1, 20, 3, 4, 5, 5, 6]);
    assert_eq!(b.remove(3).unwrap(), 20);
    assert_eq!(b.pop().unwrap(), Some(6));
    b.reverse().unwrap();
    assert_eq!(b.to_vec().unwrap(), [5, 5, 4, 3, 1, 0, -1]);
    assert_eq!(b.len().unwrap(), 7);
    b.clear().unwrap();
    assert_eq!(b.pop().unwrap(), None);
    assert_eq!(b.len().unwrap(), 0);
}

#[test]
fn test_list_out_of_range_is_an_error() {
    let m = Manager::new().unwrap();
    let l = m.list_from(["a".to_string(), "b".to_string()]).unwrap();
    assert!(matches!(
        l.get(2),
        Err(ManagerError::IndexOutOfRange { index: 2, len: 2 })
    ));
    assert!(matches!(
        l.set(5, "x".into()),
        Err(ManagerError::IndexOutOfRange { index: 5, len: 2 })
    ));
    assert!(matches!(l.remove(2), Err(ManagerError::IndexOutOfRange { .. })));
    assert!(matches!(
        l.insert(3, "x".into()),
        Err(ManagerError::IndexOutOfRange { .. })
    ));
    assert!(matches!(l.get(usize::MAX), Err(ManagerError::IndexOutOfRange { .. })));
    assert_eq!(l.to_vec().unwrap(), ["a", "b"], "refused operations change nothing");
}

#[test]
fn test_list_iter() {
    // Python: it = iter(a); list(it) == list(range(10)); list(it) == [] (a snapshot).
    let m = Manager::new().unwrap();
    let a = m.list_from(0..10).unwrap();
    let snapshot = a.to_vec().unwrap();
    a.push(10).unwrap();
    assert_eq!(snapshot.into_iter().collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
    assert_eq!(a.len().unwrap(), 11);
}

#[test]
fn test_list_proxy_in_list() {
    // Python: a = manager.list([manager.list(range(3)) for _ in range(3)]); nested updates
    // through the outer list are seen.
    let m = Manager::new().unwrap();
    let outer = m.list::<List<i32>>().unwrap();
    for _ in 0..3 {
        outer.push(m.list_from(0..3).unwrap()).unwrap();
    }
    let rows = outer.to_vec().unwrap();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert_eq!(row.to_vec().unwrap(), [0, 1, 2]);
    }
    rows[0].set(0, 55).unwrap();
    drop(rows);
    // The inner lists are alive while stored, and the update is visible through a new read.
    assert_eq!(outer.get(0).unwrap().to_vec().unwrap(), [55, 1, 2]);
    // Taken out: the caller now owns that reference.
    let taken = outer.pop().unwrap().unwrap();
    assert_eq!(taken.to_vec().unwrap(), [0, 1, 2]);
    assert_eq!(outer.len().unwrap(), 2);
}

#[test]
fn test_dict() {
    let m = Manager::new().unwrap();
    let d = m.dict::<i32, char>().unwrap();
    let indices: Vec<i32> = (65..70).collect();
    for &i in &indices {
        assert_eq!(d.insert(i, char::from_u32(i as u32).unwrap()).unwrap(), None);
    }
    let want: BTreeMap<i32, char> = indices
        .iter()
        .map(|&i| (i, char::from_u32(i as u32).unwrap()))
        .collect();
    assert_eq!(d.to_map::<BTreeMap<_, _>>().unwrap(), want);
    assert_eq!(d.keys().unwrap(), indices);
    assert_eq!(d.values().unwrap(), ['A', 'B', 'C', 'D', 'E']);
    assert_eq!(d.items().unwrap()[0], (65, 'A'));
    assert_eq!(d.len().unwrap(), 5);
    assert!(d.contains_key(&66).unwrap());
    assert!(!d.contains_key(&1).unwrap());
    assert_eq!(d.get(&67).unwrap(), Some('C'));
    assert_eq!(d.get(&1).unwrap(), None);
    assert_eq!(d.insert(65, 'a').unwrap(), Some('A'));
    assert_eq!(d.keys().unwrap()[0], 65, "an overwritten key keeps its position");
    assert_eq!(d.remove(&66).unwrap(), Some('B'));
    assert_eq!(d.remove(&66).unwrap(), None);
    assert_eq!(d.pop(&1).unwrap(), None);
    assert_eq!(d.setdefault(70, 'F').unwrap(), 'F');
    assert_eq!(d.setdefault(70, 'Z').unwrap(), 'F');
    assert_eq!(d.popitem().unwrap(), Some((70, 'F')), "popitem is LIFO");
    d.update([(1, 'x'), (2, 'y')]).unwrap();
    assert_eq!(d.keys().unwrap(), [65, 67, 68, 69, 1, 2]);
    d.clear().unwrap();
    assert!(d.is_empty().unwrap());
    assert_eq!(d.popitem().unwrap(), None);
}

#[test]
fn test_dict_iter() {
    // Python: it = iter(d); list(it) == indices — keys in insertion order, as a snapshot.
    let m = Manager::new().unwrap();
    let d = m.dict_from((0..10).rev().map(|i| (i, i * i))).unwrap();
    let keys = d.keys().unwrap();
    assert_eq!(keys, (0..10).rev().collect::<Vec<_>>());
    let ordered: Vec<(i32, i32)> = d.to_map().unwrap();
    assert_eq!(ordered[0], (9, 81));
}

#[test]
fn test_dict_proxy_nested() {
    // Python: pets = manager.dict(ferrets=2, hamsters=4); supplies = manager.dict(water=10,
    // feed=3); d = manager.dict(pets=pets, supplies=supplies); d['pets']['ferrets'] == 2, and
    // updates through a nested proxy are seen by the others.
    let m = Manager::new().unwrap();
    let pets = m
        .dict_from([("ferrets".to_string(), 2), ("hamsters".to_string(), 4)])
        .unwrap();
    let supplies = m
        .dict_from([("water".to_string(), 10), ("feed".to_string(), 3)])
        .unwrap();
    let d = m.dict::<String, Dict<String, i32>>().unwrap();
    d.insert("pets".into(), pets.clone()).unwrap();
    d.insert("supplies".into(), supplies).unwrap();
    let got = d.get(&"pets".into()).unwrap().unwrap();
    assert_eq!(got, pets);
    assert_eq!(got.get(&"ferrets".into()).unwrap(), Some(2));
    assert_eq!(d.keys().unwrap(), ["pets", "supplies"]);
    got.insert("hamsters".into(), 9).unwrap();
    assert_eq!(pets.get(&"hamsters".into()).unwrap(), Some(9));
    // The supplies dict has no proxy outside `d` any more, yet it is alive while stored.
    let s = d.get(&"supplies".into()).unwrap().unwrap();
    assert_eq!(s.get(&"water".into()).unwrap(), Some(10));
    drop(s);
    drop((got, pets));
    for _ in 0..3 {
        let s = d.get(&"supplies".into()).unwrap().unwrap();
        assert_eq!(s.len().unwrap(), 2);
    }
    // pets.clear() through the nested proxy; a dict of lists too.
    let lists = m.dict::<u8, List<u8>>().unwrap();
    lists.insert(1, m.list_from([1, 2]).unwrap()).unwrap();
    lists.get(&1).unwrap().unwrap().push(3).unwrap();
    assert_eq!(lists.get(&1).unwrap().unwrap().to_vec().unwrap(), [1, 2, 3]);
}

#[test]
fn test_namespace() {
    let m = Manager::new().unwrap();
    let n = m.namespace().unwrap();
    n.set("name", "Bob").unwrap();
    n.set("job", "Builder").unwrap();
    n.set("_hidden", "hidden").unwrap();
    assert_eq!(n.get::<String>("name").unwrap().as_deref(), Some("Bob"));
    assert_eq!(n.names().unwrap(), ["name", "job", "_hidden"]);
    assert!(n.contains("job").unwrap());
    assert_eq!(n.remove::<String>("job").unwrap().as_deref(), Some("Builder"));
    assert!(!n.contains("job").unwrap());
    assert_eq!(n.get::<i32>("missing").unwrap(), None);
    assert!(matches!(n.get::<u32>("name"), Err(ManagerError::Decode(_))));
}

#[test]
fn test_value_proxy() {
    let m = Manager::new().unwrap();
    let v = m.value(10i64).unwrap();
    assert_eq!(v.get().unwrap(), 10);
    v.set(11).unwrap();
    assert_eq!(v.replace(12).unwrap(), 11);
    assert_eq!(v.fetch_add(3).unwrap(), 12);
    assert_eq!(v.fetch_sub(20).unwrap(), 15);
    assert_eq!(v.get().unwrap(), -5);
    assert_eq!(v.compare_and_swap(&-5, 0).unwrap(), Ok(-5));
    assert_eq!(v.compare_and_swap(&-5, 1).unwrap(), Err(0));
    assert_eq!(v.update(|x| x + 100).unwrap(), 100);
    let f = m.value(0.5f64).unwrap();
    assert_eq!(f.fetch_add(0.25).unwrap(), 0.5);
    assert_eq!(f.get().unwrap(), 0.75);
}

#[test]
fn test_atomic_errors() {
    let m = Manager::new().unwrap();
    let d = m.dict::<String, u8>().unwrap();
    d.insert("x".into(), 255).unwrap();
    assert!(matches!(
        d.fetch_add(&"x".into(), 1),
        Err(ManagerError::Overflow { .. })
    ));
    assert_eq!(
        d.get(&"x".into()).unwrap(),
        Some(255),
        "a refused addition changes nothing"
    );
    assert_eq!(d.fetch_sub(&"x".into(), 255).unwrap(), 255);
    assert!(matches!(
        d.fetch_sub(&"x".into(), 1),
        Err(ManagerError::Overflow { .. })
    ));
    let s = m.dict::<String, String>().unwrap();
    s.insert("x".into(), "text".into()).unwrap();
    let as_num: Dict<String, i64> = retyped(&s);
    assert!(matches!(
        as_num.fetch_add(&"x".into(), 1),
        Err(ManagerError::NotANumber(_))
    ));
    // compare_and_swap on an absent key inserts.
    assert_eq!(s.compare_and_swap(&"y".into(), None, "new".into()).unwrap(), Ok(None));
    assert_eq!(
        s.compare_and_swap(&"y".into(), None, "newer".into()).unwrap(),
        Err(Some("new".to_string()))
    );
}

#[test]
fn fetch_add_on_a_missing_key_inserts_the_delta() {
    let m = Manager::new().unwrap();
    let d = m.dict::<String, i64>().unwrap();
    // Inserted with the delta; the previous value reported is zero.
    assert_eq!(d.fetch_add(&"a".into(), 5).unwrap(), 0);
    assert_eq!(d.get(&"a".into()).unwrap(), Some(5));
    assert_eq!(d.fetch_add(&"a".into(), 5).unwrap(), 5);
    // fetch_sub too (signed: inserted as -delta).
    assert_eq!(d.fetch_sub(&"b".into(), 3).unwrap(), 0);
    assert_eq!(d.get(&"b".into()).unwrap(), Some(-3));
    assert_eq!(d.keys().unwrap(), ["a", "b"], "inserted at the end, in order");
    // Unsigned: 0 - 1 does not fit, so nothing is inserted.
    let u = m.dict::<String, u32>().unwrap();
    let err = u.fetch_sub(&"c".into(), 1).unwrap_err();
    assert!(
        matches!(&err, ManagerError::Overflow { key: Some(k) } if k == "\"c\""),
        "{err:?}"
    );
    assert!(!u.contains_key(&"c".into()).unwrap());
    assert_eq!(u.len().unwrap(), 0);
    // Floats.
    let f = m.dict::<u8, f64>().unwrap();
    assert_eq!(f.fetch_add(&7, 0.5).unwrap(), 0.0);
    assert_eq!(f.fetch_add(&7, 0.25).unwrap(), 0.5);
    assert_eq!(f.get(&7).unwrap(), Some(0.75));
    let f32s = m.dict::<u8, f32>().unwrap();
    assert_eq!(f32s.fetch_add(&1, 1.5).unwrap(), 0.0);
    assert_eq!(f32s.get(&1).unwrap(), Some(1.5));
}

/// The ported log pipeline: consumers count log levels into a shared dict whose keys nobody
/// inserted first.
#[multiproc::worker]
fn count_levels(counts: Dict<String, u64>, lines: Vec<String>) {
    for line in lines {
        let level = line.split(':').next().unwrap_or("").to_string();
        counts.fetch_add(&level, 1).unwrap();
    }
}

#[test]
fn concurrent_first_increments_of_a_missing_key_are_all_counted() {
    let m = Manager::new().unwrap();
    let counts = m.dict::<String, u64>().unwrap();
    let lines: Vec<String> = (0..200)
        .map(|i| format!("{}: line {i}", ["INFO", "WARN", "ERROR", "DEBUG"][i % 4]))
        .collect();
    let mut kids = Kids::new();
    for _ in 0..3 {
        kids.push(
            Process::new(count_levels(counts.clone(), lines.clone()))
                .start()
                .unwrap(),
        );
    }
    kids.join_all();
    let mut got = counts.items().unwrap();
    got.sort();
    assert_eq!(
        got,
        [
            ("DEBUG".to_string(), 150),
            ("ERROR".into(), 150),
            ("INFO".into(), 150),
            ("WARN".into(), 150)
        ]
    );
}

#[test]
fn key_errors_name_the_key() {
    let m = Manager::new().unwrap();
    // A string key, shown as a string.
    let d = m.dict::<String, u8>().unwrap();
    d.insert("requests".into(), 250).unwrap();
    let err = d.fetch_add(&"requests".into(), 10).unwrap_err();
    assert!(
        matches!(&err, ManagerError::Overflow { key: Some(k) } if k == "\"requests\""),
        "{err:?}"
    );
    assert!(err.to_string().contains("at key \"requests\""), "{err}");
    // A tuple key, shown as its parts.
    let t = m.dict::<(String, u32), i64>().unwrap();
    t.insert(("host".into(), 8080), i64::MAX).unwrap();
    let err = t.fetch_add(&("host".into(), 8080), 1).unwrap_err();
    assert!(err.to_string().contains("[\"host\", 8080]"), "{err}");
    // Not a number: the message names the key.
    let s = m.dict::<String, String>().unwrap();
    s.insert("name".into(), "text".into()).unwrap();
    let as_num: Dict<String, i64> = retyped(&s);
    let err = as_num.fetch_add(&"name".into(), 1).unwrap_err();
    assert!(
        matches!(&err, ManagerError::NotANumber(m) if m.contains("\"name\"")),
        "{err:?}"
    );
    // A value that does not decode as the proxy's type: `get` and `remove` name the key.
    let err = as_num.get(&"name".into()).unwrap_err();
    assert!(
        matches!(&err, ManagerError::Decode(m) if m.contains("at key \"name\"")),
        "{err:?}"
    );
    let err = as_num.remove(&"name".into()).unwrap_err();
    assert!(
        matches!(&err, ManagerError::Decode(m) if m.contains("at key \"name\"")),
        "{err:?}"
    );
    // A ValueProxy has no key.
    let v = m.value(u8::MAX).unwrap();
    assert!(matches!(v.fetch_add(1), Err(ManagerError::Overflow { key: None })));
}

/// The same shared dict seen through a proxy of other types (through serialisation, as a
/// program that mixes types by mistake would).
fn retyped<K2, V2>(d: &Dict<String, String>) -> Dict<K2, V2> {
    let bytes = rmp_serde::to_vec(d).unwrap();
    rmp_serde::from_slice(&bytes).unwrap()
}

// ----- TestSyncManagerTypes: operations done in a child, seen in the parent ----------------

#[multiproc::worker]
fn child_list_ops(l: List<i32>) {
    // Python's _test_list: obj[0] == 5; obj.count(5) == 1; obj.index(5) == 0; obj.sort();
    // obj.reverse(); for x in obj: pass; len(obj) == 1; obj.pop(0) == 5.
    assert_eq!(l.get(0).unwrap(), 5);
    assert_eq!(l.count(&5).unwrap(), 1);
    assert_eq!(l.index(&5).unwrap(), Some(0));
    l.reverse().unwrap();
    assert_eq!(l.len().unwrap(), 1);
    assert_eq!(l.remove(0).unwrap(), 5);
    l.extend([7, 8]).unwrap();
}

#[multiproc::worker]
fn child_dict_ops(d: Dict<i32, i32>) {
    // Python's _test_dict: len(obj) == 1; obj[0] == 5; obj.get(0) == 5; list(obj.items()) ==
    // [(0, 5)]; list(obj.keys()) == [0]; list(obj.values()) == [5]; obj.copy() == {0: 5};
    // obj.popitem() == (0, 5).
    assert_eq!(d.len().unwrap(), 1);
    assert_eq!(d.get(&0).unwrap(), Some(5));
    assert_eq!(d.items().unwrap(), [(0, 5)]);
    assert_eq!(d.keys().unwrap(), [0]);
    assert_eq!(d.values().unwrap(), [5]);
    assert_eq!(d.to_map::<HashMap<_, _>>().unwrap(), HashMap::from([(0, 5)]));
    assert_eq!(d.popitem().unwrap(), Some((0, 5)));
    d.insert(1, 10).unwrap();
}

#[multiproc::worker]
fn child_value_ops(v: ValueProxy<i32>, ns: Namespace) {
    assert_eq!(v.get().unwrap(), 1);
    v.set(2).unwrap();
    assert_eq!(ns.get::<i32>("x").unwrap(), Some(1));
    ns.set("x", 2).unwrap();
}

#[test]
fn test_sync_manager_types_in_a_child() {
    let m = Manager::new().unwrap();
    let l = m.list_from([5]).unwrap();
    let d = m.dict_from([(0, 5)]).unwrap();
    let v = m.value(1).unwrap();
    let ns = m.namespace().unwrap();
    ns.set("x", 1).unwrap();
    let mut kids = Kids::new();
    kids.push(Process::new(child_list_ops(l.clone())).start().unwrap());
    kids.push(Process::new(child_dict_ops(d.clone())).start().unwrap());
    kids.push(Process::new(child_value_ops(v.clone(), ns.clone())).start().unwrap());
    kids.join_all();
    assert_eq!(l.to_vec().unwrap(), [7, 8]);
    assert_eq!(d.items().unwrap(), [(1, 10)]);
    assert_eq!(v.get().unwrap(), 2);
    assert_eq!(ns.get::<i32>("x").unwrap(), Some(2));
}

#[multiproc::worker]
fn child_nested(d: Dict<String, List<String>>) {
    // A proxy read back from a dict in another process works too, and a list created in the
    // child and stored outlives the child.
    d.get(&"a".into()).unwrap().unwrap().push("from child".into()).unwrap();
}

#[multiproc::worker]
fn child_stores(m: Manager, d: Dict<String, List<String>>) {
    let l = m.list_from(["made in child".to_string()]).unwrap();
    d.insert("b".into(), l).unwrap();
}

#[test]
fn nested_proxies_cross_processes() {
    let m = Manager::new().unwrap();
    let d = m.dict::<String, List<String>>().unwrap();
    d.insert("a".into(), m.list().unwrap()).unwrap();
    let mut kids = Kids::new();
    kids.push(Process::new(child_nested(d.clone())).start().unwrap());
    kids.join_all();
    let mut kids = Kids::new();
    kids.push(Process::new(child_stores(m.clone(), d.clone())).start().unwrap());
    kids.join_all();
    assert_eq!(d.get(&"a".into()).unwrap().unwrap().to_vec().unwrap(), ["from child"]);
    assert_eq!(
        d.get(&"b".into()).unwrap().unwrap().to_vec().unwrap(),
        ["made in child"]
    );
}

#[test]
fn proxies_travel_in_queues() {
    let m = Manager::new().unwrap();
    let q = m.queue::<Dict<u8, u8>>().unwrap();
    let d = m.dict().unwrap();
    d.insert(1, 2).unwrap();
    q.put(d.clone()).unwrap();
    drop(d);
    let back = q.get().unwrap();
    assert_eq!(back.get(&1).unwrap(), Some(2));
}

#[multiproc::worker]
fn set_then_die(d: Dict<String, u32>) {
    // One-way writes are in the hub's socket before `set` returns: applied even though this
    // process exits at once without another call.
    for i in 0..100 {
        d.set(format!("k{i}"), i).unwrap();
    }
    std::process::exit(0);
}

#[test]
fn one_way_set_is_ordered_and_durable() {
    let m = Manager::new().unwrap();
    let d = m.dict::<String, u32>().unwrap();
    d.set("a".into(), 1).unwrap();
    assert_eq!(
        d.get(&"a".into()).unwrap(),
        Some(1),
        "a later call sees the one-way write"
    );
    let mut kids = Kids::new();
    let k = kids.push(Process::new(set_then_die(d.clone())).start().unwrap());
    let _ = kids.0[k].join_timeout(std::time::Duration::from_secs(20));
    assert_eq!(d.len().unwrap(), 101);
    assert_eq!(d.get(&"k99".into()).unwrap(), Some(99));
    m.shutdown().unwrap();
    // Dropped after the shutdown; the next call reports it.
    d.set("late".into(), 1).unwrap();
    assert!(d.len().unwrap_err().is_gone());
}

#[test]
fn update_works_for_types_without_a_canonical_encoding() {
    // A HashMap's encoding depends on its iteration order; `update` compares the exact bytes
    // it read, so it never loops on a re-encoding that differs.
    let m = Manager::new().unwrap();
    let v = m
        .value((0..20).map(|i| (format!("k{i}"), i)).collect::<HashMap<String, i32>>())
        .unwrap();
    for round in 0..5 {
        let new = v
            .update(|h| {
                let mut h = h.clone();
                h.insert(format!("r{round}"), round);
                h
            })
            .unwrap();
        assert_eq!(new.len(), 21 + round as usize);
    }
    assert_eq!(v.get().unwrap().len(), 25);
}

// ----- set, array, queue(maxsize) (issue 15) -----------------------------------------------

/// In a child: adds to the shared set and fills the shared array (index i = i * 10).
#[multiproc::worker]
fn child_set_and_array(s: SetProxy<u32>, a: ArrayProxy<u64>) {
    assert!(s.add(3).unwrap());
    assert!(!s.add(1).unwrap(), "1 was added by the parent");
    for i in 0..a.len().unwrap() {
        a.set(i, i as u64 * 10).unwrap();
    }
}

// CPython's test_set (3.14, manager.set()): add, remove, discard, `in`, len, pop, clear;
// `remove` of a missing member raises KeyError, which names the member here.
#[test]
fn test_set() {
    let m = Manager::new().unwrap();
    let a = m.set::<u32>().unwrap();
    assert!(a.add(1).unwrap());
    assert!(a.add(2).unwrap());
    assert_eq!(a.to_vec().unwrap(), [1, 2]);
    assert!(!a.add(1).unwrap());
    assert_eq!(a.to_vec().unwrap(), [1, 2]);
    a.remove(&1).unwrap();
    assert_eq!(a.to_vec().unwrap(), [2]);
    assert!(a.discard(&2).unwrap());
    assert!(a.is_empty().unwrap());
    assert!(!a.discard(&3).unwrap(), "discard of a missing member is not an error");
    let err = a.remove(&7).unwrap_err();
    assert!(
        matches!(&err, ManagerError::KeyNotFound { key } if key == "7"),
        "{err:?}"
    );
    assert!(err.to_string().contains('7'), "{err}");
    let b = m.set_from(["x".to_string(), "y".into(), "x".into()]).unwrap();
    assert_eq!(b.len().unwrap(), 2);
    assert!(b.contains(&"y".into()).unwrap());
    assert_eq!(b.pop().unwrap(), Some("y".to_string()));
    b.clear().unwrap();
    assert_eq!(b.pop().unwrap(), None);
    m.shutdown().unwrap();
    assert!(a.len().unwrap_err().is_gone());
}

#[test]
fn set_and_array_are_shared_with_children() {
    let m = Manager::new().unwrap();
    let s = m.set_from([1u32]).unwrap();
    let a = m.array([0u64; 5]).unwrap();
    let mut kids = Kids::new();
    kids.push(Process::new(child_set_and_array(s.clone(), a.clone())).start().unwrap());
    kids.join_all();
    assert_eq!(s.to_vec().unwrap(), [1, 3]);
    assert_eq!(a.to_vec().unwrap(), [0, 10, 20, 30, 40]);
    assert_eq!(a.len().unwrap(), 5, "an array keeps its length");
    assert!(matches!(
        a.set(5, 1),
        Err(ManagerError::IndexOutOfRange { index: 5, len: 5 })
    ));
}

#[multiproc::worker]
fn take_all(q: multiproc::Queue<u32>, n: u32) -> Vec<u32> {
    (0..n).map(|_| q.get().unwrap()).collect()
}

// CPython's _TestQueue.test_put for the manager type: `manager.Queue(maxsize=6)` fills up,
// then a put without blocking raises Full; a consumer in a child drains it in order.
#[test]
fn test_manager_queue_maxsize() {
    let m = Manager::new().unwrap();
    let q = m.queue_bounded::<u32>(6).unwrap();
    for i in 0..6 {
        q.put(i).unwrap();
    }
    assert!(q.full().unwrap());
    assert!(matches!(q.try_put(6), Err(multiproc::PutError::Full(6))));
    assert!(matches!(
        q.put_timeout(6, std::time::Duration::from_millis(50)),
        Err(multiproc::PutError::Full(6))
    ));
    let mut p = Process::new(take_all(q.clone(), 6)).start().unwrap();
    assert_eq!(p.join().unwrap(), [0, 1, 2, 3, 4, 5]);
    let jq = m.joinable_queue_bounded::<u32>(1).unwrap();
    jq.put(1).unwrap();
    assert!(matches!(jq.try_put(2), Err(multiproc::PutError::Full(2))));
    m.shutdown().unwrap();
    assert!(m.queue_bounded::<u32>(1).unwrap_err().is_gone());
}
