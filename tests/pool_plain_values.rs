//! Workers whose arguments or results are plain values (integers, floats, bools, `()`, and
//! tuples of up to four of them) take a direct encoder (`wire::plain`) instead of `rmp_serde`.
//! These tests run such workers, at every type's edge values, through the Pool and a single
//! Process, next to workers with one non-plain argument (which take the general path), and
//! check that both give the same values.

use multiproc::pool::{Pool, PoolError};
use multiproc::Process;

#[multiproc::worker]
fn widen(a: i8, b: u16, c: i32, d: u64) -> (i64, u64) {
    (i64::from(a) + i64::from(c), u64::from(b).wrapping_add(d))
}

#[multiproc::worker]
fn float_parts(x: f64, y: f32, neg: bool) -> f64 {
    let v = x + f64::from(y);
    if neg {
        -v
    } else {
        v
    }
}

#[multiproc::worker]
fn answer() -> u8 {
    42
}

#[multiproc::worker]
fn is_even(x: isize) -> bool {
    x % 2 == 0
}

#[multiproc::worker]
fn nothing(_x: usize) {}

/// The same computation as `widen`, with a non-plain argument: the general path.
#[multiproc::worker]
fn widen_general(v: Vec<i64>) -> (i64, u64) {
    (v[0] + v[2], (v[1] as u64).wrapping_add(v[3] as u64))
}

#[multiproc::worker]
fn checked_div(a: i64, b: i64) -> i64 {
    a.checked_div(b).expect("division by zero")
}

const I8: [i8; 6] = [i8::MIN, -33, -32, -1, 0, i8::MAX];
const U16: [u16; 5] = [0, 127, 128, 255, u16::MAX];
const I32: [i32; 6] = [i32::MIN, -32769, -129, 0, 65536, i32::MAX];
const U64: [u64; 6] = [0, 255, 65535, 1 << 32, u64::MAX - 1, u64::MAX];

fn edge_tuples() -> Vec<(i8, u16, i32, u64)> {
    let mut v = Vec::new();
    for (i, &a) in I8.iter().enumerate() {
        for (j, &b) in U16.iter().enumerate() {
            v.push((a, b, I32[(i + j) % I32.len()], U64[(i * 5 + j) % U64.len()]));
        }
    }
    v
}

#[test]
fn plain_arguments_at_every_edge_give_what_the_general_path_gives() {
    let pool = Pool::new(2).unwrap();
    let items = edge_tuples();
    let plain = pool.starmap(widen, items.clone()).unwrap();
    let general = pool
        .map(
            |(a, b, c, d): (i8, u16, i32, u64)| widen_general(vec![a.into(), b.into(), c.into(), d as i64]),
            items.clone(),
        )
        .unwrap();
    let local: Vec<(i64, u64)> = items
        .iter()
        .map(|&(a, b, c, d)| (i64::from(a) + i64::from(c), u64::from(b).wrapping_add(d)))
        .collect();
    assert_eq!(plain, local);
    assert_eq!(general, local);
}

#[test]
fn plain_floats_bools_unit_and_no_arguments_round_trip() {
    let pool = Pool::new(2).unwrap();
    for (x, y, neg) in [
        (0.0, 0.0f32, false),
        (1.5, -2.25, true),
        (f64::MAX, 0.0, false),
        (-0.0, 1e-3, true),
    ] {
        let got = pool.apply(float_parts(x, y, neg)).unwrap();
        let want = if neg { -(x + f64::from(y)) } else { x + f64::from(y) };
        assert_eq!(got.to_bits(), want.to_bits(), "{x} {y} {neg}");
    }
    let nan = pool.apply(float_parts(f64::NAN, 0.0, false)).unwrap();
    assert!(nan.is_nan());
    assert_eq!(pool.apply(answer()).unwrap(), 42);
    let evens = pool.map(is_even, [isize::MIN, -3, 0, 7, isize::MAX - 1]).unwrap();
    assert_eq!(evens, [true, false, true, false, true]);
    let units = pool.map(nothing, 0..1000usize).unwrap();
    assert_eq!(units.len(), 1000);
}

#[test]
fn a_plain_task_in_a_single_process_returns_its_value() {
    let mut p = Process::new(widen(-128, 65535, i32::MIN, u64::MAX)).start().unwrap();
    assert_eq!(
        p.join().unwrap(),
        (-128 + i64::from(i32::MIN), 65535u64.wrapping_add(u64::MAX))
    );
    let mut p = Process::new(answer()).start().unwrap();
    assert_eq!(p.join().unwrap(), 42);
}

#[test]
fn a_plain_task_that_panics_fails_only_itself() {
    let pool = Pool::new(2).unwrap();
    let all = pool
        .map_results(|x: i64| checked_div(100, x), [5, 0, -4, i64::MIN])
        .unwrap();
    assert_eq!(all[0].as_ref().ok(), Some(&20));
    assert!(
        matches!(&all[1], Err(PoolError::Panicked { message, .. }) if message.contains("division by zero")),
        "{:?}",
        all[1]
    );
    assert_eq!(all[2].as_ref().ok(), Some(&-25));
    assert_eq!(all[3].as_ref().ok(), Some(&0));
}

#[test]
fn a_large_plain_map_matches_the_local_result() {
    let pool = Pool::new(2).unwrap();
    let n = 200_000i64;
    let got = pool.map(|x: i64| checked_div(x * 7 - n, 3), 0..n).unwrap();
    let want: Vec<i64> = (0..n).map(|x| (x * 7 - n) / 3).collect();
    assert_eq!(got, want);
}
