// The `impl` form: the type itself travels to the child.
pub struct Clock {
    pub ticks: u32,
}

#[multiproc::worker]
impl Clock {
    fn run(self) -> u32 {
        self.ticks
    }
}

fn main() {}
