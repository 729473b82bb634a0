#[multiproc::worker]
pub fn greet(name: &str, times: u32) -> String {
    name.repeat(times as usize)
}

#[multiproc::worker]
pub fn total(values: &[u64]) -> u64 {
    values.iter().sum()
}

#[multiproc::worker]
pub fn lengths(words: Vec<&'static str>) -> Vec<usize> {
    words.iter().map(|w| w.len()).collect()
}

fn main() {}
