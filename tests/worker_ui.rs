//! Compile-fail tests for #[worker] misuse (trybuild).
#[test]
fn worker_ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
