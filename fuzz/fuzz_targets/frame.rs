//! The frame decoder and the three top-level message decoders, on an arbitrary byte stream cut
//! into two reads at a point chosen by the input: nothing may panic, an oversized length is
//! refused, and every body is tried as each message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use multiproc::wire::proto::{FromHub, ToForkServer, ToHub};
use multiproc::wire::{decode, FrameDecoder, FrameError};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let cut = (cut as usize * stream.len()) / 255;
    let mut d = FrameDecoder::new(1 << 16);
    d.push(&stream[..cut]);
    let mut pushed_rest = false;
    loop {
        match d.next_frame() {
            Ok(Some(body)) => {
                let body = body.to_vec();
                let _ = decode::<ToHub>(&body);
                let _ = decode::<FromHub>(&body);
                let _ = decode::<ToForkServer>(&body);
            }
            Ok(None) if !pushed_rest => {
                pushed_rest = true;
                d.push(&stream[cut..]);
            }
            Ok(None) => break,
            Err(FrameError::Oversized { len, max }) => {
                assert!(len > max);
                break;
            }
            Err(e) => panic!("unexpected frame error: {e}"),
        }
    }
});
