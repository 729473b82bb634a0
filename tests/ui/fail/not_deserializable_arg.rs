// Serialize but not Deserialize: the second half of the check, alone.
#[derive(serde::Serialize)]
pub struct Config {
    pub verbose: bool,
}

#[multiproc::worker]
pub fn configure(config: Config) -> bool {
    config.verbose
}

fn main() {}
