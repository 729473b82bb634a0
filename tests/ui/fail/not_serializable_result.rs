pub struct Report {
    pub lines: usize,
}

#[multiproc::worker]
pub fn report(lines: usize) -> Report {
    Report { lines }
}

fn main() {}
