pub struct Config {
    pub verbose: bool,
}

#[multiproc::worker]
pub fn configure(config: Config) -> bool {
    config.verbose
}

fn main() {}
