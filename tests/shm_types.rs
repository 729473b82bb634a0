//! Shared memory Value/Array: CPython's `_TestValue`, `_TestArray` and `_TestSharedCTypes`.

mod common;

use common::Kids;
use multiproc::shm::{Array, Pod, RawArray, RawValue, ShmError, Value};
use multiproc::sync::Lock;
use multiproc::Process;

// ----- _TestValue: the typecode table ------------------------------------------------------

/// One shared value per typecode (Python's 'b', 'B', 'h', 'H', 'i', 'I', 'q', 'Q', 'f', 'd',
/// 'c').
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Typecodes {
    b: Value<i8>,
    bb: Value<u8>,
    h: Value<i16>,
    hh: Value<u16>,
    i: Value<i32>,
    ii: Value<u32>,
    q: Value<i64>,
    qq: Value<u64>,
    f: Value<f32>,
    d: Value<f64>,
    c: RawValue<[u8; 1]>,
}

#[multiproc::worker]
fn set_all(t: Typecodes) {
    t.b.set(-100).unwrap();
    t.bb.set(200).unwrap();
    t.h.set(234).unwrap();
    t.hh.set(60000).unwrap();
    t.i.set(24234).unwrap();
    t.ii.set(4_000_000_000).unwrap();
    t.q.set(1 << 34).unwrap();
    t.qq.set(u64::MAX - 1).unwrap();
    t.f.set(-4.25).unwrap();
    t.d.set(-4.25).unwrap();
    t.c.set(*b"y");
}

#[test]
fn test_value_typecodes() {
    // Python: codes_values = [('i', 4343, 24234), ('d', 3.625, -4.25), ('h', -232, 234),
    // ('q', 2**33, 2**34), ('c', b'x', b'y')], extended to every integer width.
    let t = Typecodes {
        b: Value::new(12i8).unwrap(),
        bb: Value::new(7u8).unwrap(),
        h: Value::new(-232i16).unwrap(),
        hh: Value::new(1u16).unwrap(),
        i: Value::new(4343i32).unwrap(),
        ii: Value::new(3u32).unwrap(),
        q: Value::new(1i64 << 33).unwrap(),
        qq: Value::new(9u64).unwrap(),
        f: Value::new(3.625f32).unwrap(),
        d: Value::new(3.625f64).unwrap(),
        c: RawValue::new(*b"x").unwrap(),
    };
    assert_eq!(t.b.get().unwrap(), 12);
    assert_eq!(t.h.get().unwrap(), -232);
    assert_eq!(t.i.get().unwrap(), 4343);
    assert_eq!(t.q.get().unwrap(), 1 << 33);
    assert_eq!(t.d.get().unwrap(), 3.625);
    assert_eq!(t.c.get(), *b"x");
    let mut kids = Kids::new();
    kids.push(Process::new(set_all(t.clone())).start().unwrap());
    kids.join_all();
    assert_eq!(t.b.get().unwrap(), -100);
    assert_eq!(t.bb.get().unwrap(), 200);
    assert_eq!(t.h.get().unwrap(), 234);
    assert_eq!(t.hh.get().unwrap(), 60000);
    assert_eq!(t.i.get().unwrap(), 24234);
    assert_eq!(t.ii.get().unwrap(), 4_000_000_000);
    assert_eq!(t.q.get().unwrap(), 1 << 34);
    assert_eq!(t.qq.get().unwrap(), u64::MAX - 1);
    assert_eq!(t.f.get().unwrap(), -4.25);
    assert_eq!(t.d.get().unwrap(), -4.25);
    assert_eq!(t.c.get(), *b"y");
}

#[test]
fn test_value_zeroed() {
    assert_eq!(Value::<i64>::zeroed().unwrap().get().unwrap(), 0);
    assert_eq!(Value::<f64>::zeroed().unwrap().get().unwrap(), 0.0);
    assert_eq!(RawValue::<[u16; 4]>::zeroed().unwrap().get(), [0; 4]);
}

#[test]
fn test_getobj_getlock() {
    // Python: Value('i', 5, lock=lock) shares the given lock; get_obj() is the raw value.
    let lock = Lock::new().unwrap();
    let v = Value::with_lock_of(5i32, lock.clone()).unwrap();
    let w = Value::with_lock_of(6i32, lock.clone()).unwrap();
    {
        let _g = v.get_lock().acquire().unwrap();
        // The shared lock is held: w's locked access would block; the raw object does not.
        assert!(w.get_lock().try_acquire().unwrap().is_none());
        assert_eq!(v.get_obj().get(), 5);
        v.get_obj().set(50);
        w.get_obj().set(60);
    }
    assert_eq!(v.get().unwrap(), 50);
    assert_eq!(w.get().unwrap(), 60);
    assert!(!lock.locked().unwrap());
}

#[test]
fn test_with_lock_panic_leaves_value() {
    let v = Value::new(1u32).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        v.with_lock(|x| {
            *x = 99;
            panic!("boom");
        })
    }));
    assert!(r.is_err());
    assert_eq!(v.get().unwrap(), 1, "a panicking update writes nothing back");
    assert!(!v.get_lock().locked().unwrap(), "the lock was released");
}

// ----- _TestArray --------------------------------------------------------------------------

#[multiproc::worker]
fn running_sum(seq: Array<i32>) {
    // Python's f(seq): for i in range(1, len(seq)): seq[i] += seq[i-1]
    for i in 1..seq.len() {
        let prev = seq.get(i - 1).unwrap();
        let cur = seq.get(i).unwrap();
        seq.set(i, cur + prev).unwrap();
    }
}

#[multiproc::worker]
fn running_sum_raw(seq: RawArray<i32>) {
    for i in 1..seq.len() {
        seq.set(i, seq.get(i).unwrap() + seq.get(i - 1).unwrap()).unwrap();
    }
}

fn py_running_sum(seq: &mut [i32]) {
    for i in 1..seq.len() {
        seq[i] += seq[i - 1];
    }
}

#[test]
fn test_array() {
    let seq = [680, 626, 934, 821, 150, 233, 548, 982, 714, 831];
    let arr = Array::from_slice(&seq).unwrap();
    let raw = RawArray::from_slice(&seq).unwrap();
    assert_eq!(arr.len(), seq.len());
    assert_eq!(arr.get(3).unwrap(), seq[3]);
    assert_eq!(arr.read(2..4).unwrap(), seq[2..4]);
    arr.write(2, &[seq[2], seq[3]]).unwrap();
    assert_eq!(arr.to_vec().unwrap(), seq);
    let mut expect = seq;
    py_running_sum(&mut expect);
    let mut kids = Kids::new();
    kids.push(Process::new(running_sum(arr.clone())).start().unwrap());
    kids.join_all();
    assert_eq!(arr.to_vec().unwrap(), expect);
    let mut kids = Kids::new();
    kids.push(Process::new(running_sum_raw(raw.clone())).start().unwrap());
    kids.join_all();
    assert_eq!(raw.to_vec(), expect);
}

#[test]
fn test_array_from_size() {
    // Python: for size in range(10): Array('i', size) has len size and is all zeros.
    for size in 0..10 {
        let a = Array::<i32>::zeroed(size).unwrap();
        assert_eq!(a.len(), size);
        assert_eq!(a.is_empty(), size == 0);
        assert_eq!(a.to_vec().unwrap(), vec![0; size]);
        let r = RawArray::<f64>::zeroed(size).unwrap();
        assert_eq!(r.to_vec(), vec![0.0; size]);
    }
}

#[test]
fn test_array_out_of_range_is_an_error() {
    let a = Array::<u8>::zeroed(4).unwrap();
    assert!(matches!(a.get(4), Err(ShmError::IndexOutOfRange { index: 4, len: 4 })));
    assert!(matches!(
        a.set(9, 1),
        Err(ShmError::IndexOutOfRange { index: 9, len: 4 })
    ));
    assert!(matches!(a.read(2..5), Err(ShmError::IndexOutOfRange { .. })));
    assert!(matches!(a.write(3, &[1, 2]), Err(ShmError::IndexOutOfRange { .. })));
    assert_eq!(a.to_vec().unwrap(), [0; 4], "a refused write changes nothing");
    let r = RawArray::<u8>::zeroed(0).unwrap();
    assert!(r.get(0).is_none());
    assert!(r.set(0, 1).is_err());
}

#[test]
fn test_array_getobj_getlock() {
    let lock = Lock::new().unwrap();
    let a = Array::<i64>::zeroed_with_lock_of(3, lock.clone()).unwrap();
    let _g = lock.acquire().unwrap();
    assert!(a.get_lock().try_acquire().unwrap().is_none());
    a.get_obj().write(0, &[1, 2, 3]).unwrap();
    assert_eq!(a.get_obj().to_vec(), [1, 2, 3]);
}

// ----- _TestSharedCTypes: a struct (and friends) doubled in a child ------------------------

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
struct Foo {
    x: i32,
    y: i32,
}
// SAFETY: repr(C), two i32 fields, no padding; every bit pattern is a valid Foo.
unsafe impl Pod for Foo {}

#[multiproc::worker]
fn double(x: Value<i32>, y: Value<f64>, point: Value<Foo>, arr: Array<f64>, string: Array<u8>) {
    x.with_lock(|v| *v *= 2).unwrap();
    y.with_lock(|v| *v *= 2.0).unwrap();
    point
        .with_lock(|f| {
            f.x *= 2;
            f.y *= 2;
        })
        .unwrap();
    arr.with_lock(|a| a.iter_mut().for_each(|v| *v *= 2.0)).unwrap();
    string
        .with_lock(|s| {
            let doubled: Vec<u8> = s.iter().copied().take_while(|&b| b != 0).flat_map(|b| [b, b]).collect();
            s[..doubled.len()].copy_from_slice(&doubled);
        })
        .unwrap();
}

#[test]
fn test_sharedctypes() {
    let x = Value::new(7i32).unwrap();
    let y = Value::new(1.0f64 / 3.0).unwrap();
    let foo = Value::new(Foo { x: 3, y: 2 }).unwrap();
    let arr = Array::from_slice(&(0..10).map(f64::from).collect::<Vec<_>>()).unwrap();
    let string = Array::<u8>::zeroed(20).unwrap();
    string.write(0, b"hello").unwrap();
    let mut kids = Kids::new();
    kids.push(
        Process::new(double(x.clone(), y.clone(), foo.clone(), arr.clone(), string.clone()))
            .start()
            .unwrap(),
    );
    kids.join_all();
    assert_eq!(x.get().unwrap(), 14);
    assert_eq!(y.get().unwrap(), 2.0 / 3.0);
    assert_eq!(foo.get().unwrap(), Foo { x: 6, y: 4 });
    assert_eq!(
        arr.to_vec().unwrap(),
        (0..10).map(|i| 2.0 * f64::from(i)).collect::<Vec<_>>()
    );
    assert_eq!(&string.read(0..10).unwrap(), b"hheelllloo");
}

// ----- Passing rules -----------------------------------------------------------------------

/// (issue 15) A queue item carries the descriptor: the received value is the same memory.
/// Serialised by anything else (here plain MessagePack), it is refused with the ways that work.
#[test]
fn shared_memory_travels_inside_a_queue_item_and_nowhere_bytes_only() {
    let q = multiproc::Queue::<RawValue<u32>>::new().unwrap();
    let v = RawValue::new(1u32).unwrap();
    q.put(v.clone()).unwrap();
    let got = q.get_timeout(std::time::Duration::from_secs(60)).unwrap();
    got.set(5);
    assert_eq!(v.get(), 5);
    let err = rmp_serde::to_vec(&v).unwrap_err().to_string();
    assert!(err.contains("worker argument") && err.contains("a Queue item"), "{err}");
    assert!(err.contains("cannot go through a Manager"), "{err}");
}
