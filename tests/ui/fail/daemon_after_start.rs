// `daemon` is set on the builder; a started process cannot change it.
#[multiproc::worker]
fn work() {}

fn main() -> Result<(), multiproc::ProcessError> {
    let p = multiproc::Process::new(work()).start()?;
    let _ = p.daemon(true);
    Ok(())
}
