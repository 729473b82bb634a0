#[multiproc::worker]
pub const fn double(x: u64) -> u64 {
    x * 2
}

#[multiproc::worker]
pub unsafe fn poke(addr: usize) -> u8 {
    addr as u8
}

#[multiproc::worker]
pub extern "C" fn exported(x: u32) -> u32 {
    x
}

fn main() {}
