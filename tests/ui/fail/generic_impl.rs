#[derive(serde::Serialize, serde::Deserialize)]
pub struct Wrapper<T> {
    value: T,
}

#[multiproc::worker]
impl<T> Wrapper<T> {
    fn run(self) -> T {
        self.value
    }
}

fn main() {}
