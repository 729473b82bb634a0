// A process is started by consuming its builder: it cannot be started twice.
#[multiproc::worker]
fn work() {}

fn main() {
    let builder = multiproc::Process::new(work());
    let _first = builder.start();
    let _second = builder.start();
}
