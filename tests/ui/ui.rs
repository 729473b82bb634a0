//! Compile-fail tests (trybuild): `#[worker]` misuse, the `ProcessBuilder` typestate, things
//! that are not tasks, and arguments that cannot be serialised. Each `fail/*.rs` has the
//! compiler's expected output next to it (`fail/*.stderr`).
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("fail/*.rs");
}
