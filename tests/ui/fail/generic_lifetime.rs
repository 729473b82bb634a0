#[multiproc::worker]
pub fn first<'a>(words: Vec<String>) -> usize {
    words.len()
}

#[multiproc::worker]
pub fn bounded(n: u64) -> u64
where
    u64: Copy,
{
    n
}

fn main() {}
