pub struct Counter {
    start: u64,
}

impl Counter {
    #[multiproc::worker]
    pub fn count(&self, up_to: u64) -> u64 {
        up_to - self.start
    }
}

fn main() {}
