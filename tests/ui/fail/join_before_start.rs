// Only a started process can be joined: the builder has no `join`.
#[multiproc::worker]
fn work() {}

fn main() {
    let mut builder = multiproc::Process::new(work());
    let _ = builder.join();
}
