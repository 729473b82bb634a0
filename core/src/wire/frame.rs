use serde::de::DeserializeOwned;
use serde::Serialize;

/// Bytes in a frame header.
pub const HEADER_LEN: usize = 4;

/// The default maximum frame body: 64 MiB.
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;

/// Why bytes could not be turned into a message, or a message into bytes.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix exceeds the configured maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes (raise the limit with multiproc::set_max_frame_size before the library's first use, or pass large data through shared memory (multiproc::shm::Array) and send a small value)")]
    Oversized {
        /// The announced length.
        len: usize,
        /// The maximum in force.
        max: usize,
    },
    /// The body is not a valid MessagePack encoding of the expected message.
    #[error("malformed frame body: {0}")]
    Malformed(String),
    /// The value could not be encoded.
    #[error("could not encode message: {0}")]
    Encode(String),
}

/// Encodes `msg` as one frame (header included).
pub fn encode<T: Serialize + ?Sized>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::with_capacity(64);
    encode_into(&mut out, msg, usize::MAX)?;
    Ok(out)
}

/// Appends one frame encoding `msg` to `out`. On error `out` is left as it was.
pub fn encode_into<T: Serialize + ?Sized>(out: &mut Vec<u8>, msg: &T, max: usize) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    if let Err(e) = rmp_serde::encode::write(out, msg) {
        out.truncate(start);
        return Err(FrameError::Encode(e.to_string()));
    }
    let len = out.len() - start - HEADER_LEN;
    if len > max || len > u32::MAX as usize {
        out.truncate(start);
        return Err(FrameError::Oversized { len, max });
    }
    out[start..start + HEADER_LEN].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(())
}

/// Decodes one frame body (no header).
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    rmp_serde::from_slice(body).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Reassembles frames from a byte stream.
///
/// Read into [`spare`](Self::spare), [`commit`](Self::commit) what was read, then take frames
/// with [`next_frame`](Self::next_frame) until it returns `Ok(None)`.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max: usize,
    /// The header's top bit is [`FD_FLAG`] (pipe connections), not part of the length.
    fd_flag: bool,
}

/// In a pipe connection's frames (not the hub's), the header's top bit says that descriptors
/// travel with the frame (`SCM_RIGHTS` on its first byte): the body then starts with their
/// number (`u32` LE), before the message itself. Lengths are below 2^31.
pub const FD_FLAG: u32 = 1 << 31;

impl FrameDecoder {
    /// A decoder that rejects bodies longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameDecoder {
            // 16 KiB, the least a client reads at once: a new process makes two decoders
            // before its worker runs, and each page zeroed here is a page fault (the hub's and
            // pipes' readers grow theirs to 64 KiB on their first read).
            buf: vec![0; 16 * 1024],
            start: 0,
            end: 0,
            max,
            fd_flag: false,
        }
    }

    /// A decoder for pipe connections: the header's top bit is [`FD_FLAG`] (see
    /// [`next_frame_flagged`](Self::next_frame_flagged)).
    pub fn with_fd_flag(max: usize) -> Self {
        FrameDecoder {
            fd_flag: true,
            ..FrameDecoder::new(max)
        }
    }

    /// A writable region of at least `min` bytes at the end of the buffer (the buffer grows or
    /// compacts as needed; a frame being assembled is never larger than the maximum).
    pub fn spare(&mut self, min: usize) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end < min {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < min {
                let want = (self.end + min).next_power_of_two();
                self.buf.resize(want, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// Marks `n` bytes of the spare region as filled.
    pub fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Feeds bytes (a convenience over `spare` + `commit`).
    pub fn push(&mut self, bytes: &[u8]) {
        let s = self.spare(bytes.len());
        s[..bytes.len()].copy_from_slice(bytes);
        self.commit(bytes.len());
    }

    /// Bytes buffered but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// How many bytes the frame in progress still needs (0 if a whole frame is ready, or
    /// nothing is buffered). Lets a reader size its next read for a large frame.
    pub fn wanted(&self) -> usize {
        let avail = self.end - self.start;
        if avail < HEADER_LEN {
            return if avail == 0 { 0 } else { HEADER_LEN - avail };
        }
        let len = self.peek_len();
        (HEADER_LEN + len).saturating_sub(avail)
    }

    fn peek_header(&self) -> u32 {
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(&self.buf[self.start..self.start + HEADER_LEN]);
        u32::from_le_bytes(h)
    }

    fn peek_len(&self) -> usize {
        let h = self.peek_header();
        (if self.fd_flag { h & !FD_FLAG } else { h }) as usize
    }

    /// The next complete frame body, `Ok(None)` if more bytes are needed, or an error if the
    /// stream announced a frame larger than the maximum (the stream cannot be resynchronised).
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        Ok(self.next_frame_flagged()?.map(|(body, _)| body))
    }

    /// [`next_frame`](Self::next_frame), with whether the header carried [`FD_FLAG`] (always
    /// false for a decoder made by [`new`](Self::new)).
    pub fn next_frame_flagged(&mut self) -> Result<Option<(&[u8], bool)>, FrameError> {
        let avail = self.end - self.start;
        if avail < HEADER_LEN {
            return Ok(None);
        }
        let flagged = self.fd_flag && self.peek_header() & FD_FLAG != 0;
        let len = self.peek_len();
        if len > self.max {
            return Err(FrameError::Oversized { len, max: self.max });
        }
        if avail < HEADER_LEN + len {
            return Ok(None);
        }
        let body_start = self.start + HEADER_LEN;
        self.start = body_start + len;
        Ok(Some((&self.buf[body_start..body_start + len], flagged)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::proto::{FromHub, ToHub};

    #[test]
    fn round_trip_and_split_reads() {
        let msgs: Vec<Vec<u8>> = (0..50).map(|i| vec![i as u8; i * 37]).collect();
        let mut stream = Vec::new();
        for m in &msgs {
            encode_into(&mut stream, &serde_bytes::Bytes::new(m), usize::MAX).unwrap();
        }
        for chunk in [1usize, 3, 7, 1000, stream.len()] {
            let mut d = FrameDecoder::new(1 << 20);
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                d.push(piece);
                while let Some(f) = d.next_frame().unwrap() {
                    let b: serde_bytes::ByteBuf = decode(f).unwrap();
                    got.push(b.into_vec());
                }
            }
            assert_eq!(got, msgs, "chunk size {chunk}");
        }
    }

    #[test]
    fn oversized_length_is_an_error() {
        let mut d = FrameDecoder::new(1024);
        d.push(&u32::MAX.to_le_bytes());
        assert!(matches!(d.next_frame(), Err(FrameError::Oversized { .. })));
    }

    #[test]
    fn encode_respects_max() {
        let big = serde_bytes::ByteBuf::from(vec![0u8; 2048]);
        let mut out = vec![9];
        assert!(encode_into(&mut out, &big, 1024).is_err());
        assert_eq!(out, vec![9]);
    }

    /// The decoder and the message decoders never panic on arbitrary input.
    #[test]
    fn garbage_never_panics() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..20_000 {
            let n = (next() % 96) as usize;
            let mut bytes: Vec<u8> = (0..n).map(|_| next() as u8).collect();
            if round % 3 == 0 && bytes.len() >= 4 {
                // plausible lengths, so that bodies get decoded
                let len = (bytes.len() - 4) as u32;
                bytes[..4].copy_from_slice(&len.to_le_bytes());
            }
            let mut d = FrameDecoder::new(1 << 16);
            d.push(&bytes);
            while let Ok(Some(f)) = d.next_frame() {
                let f = f.to_vec();
                let _ = decode::<ToHub>(&f);
                let _ = decode::<FromHub>(&f);
            }
        }
    }
}
