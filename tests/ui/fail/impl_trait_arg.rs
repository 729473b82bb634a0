#[multiproc::worker]
pub fn show(value: impl std::fmt::Display) -> String {
    value.to_string()
}

#[multiproc::worker]
pub fn numbers(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

fn main() {}
