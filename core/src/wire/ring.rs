//! The shared-memory layout of a connection's byte rings (issue 10), and the single-producer
//! single-consumer protocol on them.
//!
//! A connection in *ring mode* has one shared memory object (created by the hub, sealed
//! against resizing where the platform can, see `sys::mem::sealed_shared_memory`) holding two
//! byte rings: [`C2H`] (the client writes, the hub reads) and [`H2C`] (the hub writes, the client
//! reads). The rings replace the socket's *data stream*: the frames (`wire::frame`) are written
//! into them byte for byte, and the reader feeds what it finds to its `FrameDecoder`, so a
//! partial frame is just partial bytes. The socket stays as the lifeline (end of file = death),
//! the descriptor carrier and the doorbell: its data bytes are never frames.
//!
//! # Layout
//! | offset | size | what |
//! |---|---|---|
//! | 0 | 8 | [`MAGIC`] (the hub, at creation) |
//! | 8 | 8 | capacity of each ring in bytes, a power of two (the hub, at creation) |
//! | `64 + 256·d` | 8 | ring `d`'s **tail**: bytes ever written (its writer only; release store) |
//! | `128 + 256·d` | 8 | ring `d`'s **head**: bytes ever read (its reader only; release store) |
//! | `192 + 256·d` | 4 | ring `d`'s **armed** word: 1 = its reader is going to sleep (set by the reader, swapped to 0 by the writer, which then rings the doorbell) |
//! | `256 + 256·d` | 4 | ring `d`'s **waiting** word: 1 = its writer waits for room (set by the writer, swapped to 0 by the reader after it freed room, which then rings the doorbell) |
//! | [`HEADER_BYTES`] `+ cap·d` | cap | ring `d`'s bytes: byte `i` of the stream is at `i mod cap` |
//!
//! Each counter and each flag sits on a cache line of its own. Head and tail are free-running
//! `u64` counters that start at 0 (at 10 GB/s they would wrap after 58 years), so
//! `head <= tail <= head + cap` always holds; a counter that breaks it is corruption.
//!
//! # Waking only a sleeping reader
//! The reader drains, sets *armed*, issues a `SeqCst` fence and looks at the tail again: still
//! nothing → it sleeps (poll on the socket). The writer publishes its tail, issues a `SeqCst`
//! fence, and sends one doorbell byte on the socket only if it swaps *armed* from 1 to 0. One
//! of the two always sees the other's store (Dekker), so a frame is never left unseen, and a
//! reader that is awake costs the writer no system call. *waiting* is the same protocol in the
//! other direction, for a writer that found its ring full.
//!
//! # Trust
//! The hub trusts nothing it reads here. It keeps its own copy of the counters it writes (the
//! hub's head of [`C2H`], its tail of [`H2C`]) and never reads them back; a counter written by
//! the client is accepted only if it is consistent (`tail - head <= cap`), otherwise that
//! connection is dropped as bad input. Offsets are always `counter & (cap - 1)`, never a shared
//! word used as an index. Bytes are only copied out (never referenced in place), and the copy
//! goes through the frame decoder, which accepts any byte sequence. The object is sealed
//! against shrinking, so the client cannot make the hub's mapping raise `SIGBUS`.

use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crate::sys::mem::Mapping;
use crate::wire::FrameDecoder;

/// The first word of a ring object.
pub const MAGIC: u64 = 0x6d70_7269_6e67_3031; // "mpring01"
/// Bytes before the first ring's data (one page).
pub const HEADER_BYTES: usize = 4096;
/// The client→hub ring.
pub const C2H: usize = 0;
/// The hub→client ring.
pub const H2C: usize = 1;
/// The smallest ring (per direction) the hub accepts in `HubLimits::ring_bytes`.
pub const MIN_RING: usize = 4096;
/// The largest ring (per direction).
pub const MAX_RING: usize = 1 << 30;
/// The environment variable that selects the transport: `socket` keeps every connection on
/// the socket alone (the path before issue 10); anything else (or nothing) uses rings.
pub const TRANSPORT_ENV: &str = "MULTIPROC_TRANSPORT";

/// Does this process use rings (not turned off by [`TRANSPORT_ENV`]`=socket`)?
pub fn rings_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        !matches!(
            std::env::var(TRANSPORT_ENV).as_deref().map(str::trim),
            Ok("socket") | Ok("sockets") | Ok("SOCKET")
        )
    })
}

/// The size of the shared object for rings of `cap` bytes each.
pub fn object_bytes(cap: usize) -> usize {
    HEADER_BYTES + 2 * cap
}

/// Is `cap` a usable ring capacity (a power of two within [`MIN_RING`]..=[`MAX_RING`])?
pub fn valid_cap(cap: usize) -> bool {
    cap.is_power_of_two() && (MIN_RING..=MAX_RING).contains(&cap)
}

/// The ring capacity to use for a configured size: rounded down to a power of two, clamped.
pub fn cap_for(configured: usize) -> usize {
    let c = configured.clamp(MIN_RING, MAX_RING);
    if c.is_power_of_two() {
        c
    } else {
        c.next_power_of_two() / 2
    }
}

/// A counter read from the other side that cannot be right: the ring is corrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the shared ring is corrupt (head {head}, tail {tail}, capacity {cap}): the peer wrote garbage into its counters"
)]
pub struct RingCorrupt {
    /// The head seen.
    pub head: u64,
    /// The tail seen.
    pub tail: u64,
    /// The capacity.
    pub cap: usize,
}

/// Why a mapping cannot hold rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RingSetupError {
    /// The capacity is not a power of two in range, or the mapping is too small for it.
    #[error("bad ring capacity {0} for its mapping")]
    BadSize(usize),
    /// The object does not start with [`MAGIC`].
    #[error("the memory object is not a ring object")]
    BadMagic,
}

/// One ring pair's memory, mapped.
#[derive(Debug)]
pub struct RingMem {
    map: Mapping,
    cap: usize,
}

impl RingMem {
    /// Formats a fresh (zero-filled) mapping as a ring object with rings of `cap` bytes.
    pub fn format(map: Mapping, cap: usize) -> Result<Arc<RingMem>, RingSetupError> {
        if !valid_cap(cap) || map.len() < object_bytes(cap) {
            return Err(RingSetupError::BadSize(cap));
        }
        let m = RingMem { map, cap };
        m.word64(8).store(cap as u64, Ordering::Relaxed);
        m.word64(0).store(MAGIC, Ordering::Release);
        Ok(Arc::new(m))
    }

    /// Opens a ring object made by [`format`](Self::format) (in another process): checks the
    /// magic and that the capacity fits the mapping.
    pub fn open(map: Mapping) -> Result<Arc<RingMem>, RingSetupError> {
        if map.len() < HEADER_BYTES {
            return Err(RingSetupError::BadSize(0));
        }
        let probe = RingMem { map, cap: 0 };
        if probe.word64(0).load(Ordering::Acquire) != MAGIC {
            return Err(RingSetupError::BadMagic);
        }
        let cap = usize::try_from(probe.word64(8).load(Ordering::Relaxed)).unwrap_or(0);
        if !valid_cap(cap) || probe.map.len() < object_bytes(cap) {
            return Err(RingSetupError::BadSize(cap));
        }
        Ok(Arc::new(RingMem { map: probe.map, cap }))
    }

    /// The capacity of each ring.
    pub fn cap(&self) -> usize {
        self.cap
    }

    fn word64(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off + 8 <= HEADER_BYTES && off % 8 == 0);
        // SAFETY: every offset passed is a constant below HEADER_BYTES and 8-aligned; the
        // mapping is page-aligned and at least HEADER_BYTES long (checked by format/open), so
        // the word lies inside it, aligned. AtomicU64 is valid for every bit pattern and
        // address-free, so other processes writing the same memory is fine. The reference
        // borrows self, which owns the mapping.
        unsafe { &*(self.map.as_ptr().add(off) as *const AtomicU64) }
    }

    fn word32(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off + 4 <= HEADER_BYTES && off % 4 == 0);
        // SAFETY: as in `word64`, for a 4-aligned u32 word.
        unsafe { &*(self.map.as_ptr().add(off) as *const AtomicU32) }
    }

    fn tail(&self, d: usize) -> &AtomicU64 {
        self.word64(64 + 256 * d)
    }
    fn head(&self, d: usize) -> &AtomicU64 {
        self.word64(128 + 256 * d)
    }
    fn armed(&self, d: usize) -> &AtomicU32 {
        self.word32(192 + 256 * d)
    }
    fn waiting(&self, d: usize) -> &AtomicU32 {
        self.word32(256 + 256 * d)
    }
    fn data(&self, d: usize) -> *mut u8 {
        // SAFETY: HEADER_BYTES + cap·d + cap <= object_bytes(cap) <= map.len() (checked at
        // format/open), so the ring's bytes are inside the mapping.
        unsafe { self.map.as_ptr().add(HEADER_BYTES + self.cap * d) }
    }
}

/// The writing end of one ring.
#[derive(Debug)]
pub struct RingWriter {
    mem: Arc<RingMem>,
    d: usize,
    /// Our own tail (authoritative: never read back from shared memory).
    tail: u64,
}

/// The reading end of one ring.
#[derive(Debug)]
pub struct RingReader {
    mem: Arc<RingMem>,
    d: usize,
    /// Our own head (authoritative: never read back from shared memory).
    head: u64,
}

/// The two ends one side of a connection holds.
#[derive(Debug)]
pub struct RingEnds {
    /// Where this side writes.
    pub tx: RingWriter,
    /// Where this side reads.
    pub rx: RingReader,
}

impl RingEnds {
    /// The hub's ends: reads [`C2H`], writes [`H2C`].
    pub fn hub(mem: Arc<RingMem>) -> RingEnds {
        RingEnds {
            tx: RingWriter::new(mem.clone(), H2C),
            rx: RingReader::new(mem, C2H),
        }
    }

    /// The capacity of each ring.
    pub fn cap(&self) -> usize {
        self.rx.mem.cap
    }

    /// The client's ends: writes [`C2H`], reads [`H2C`].
    pub fn client(mem: Arc<RingMem>) -> RingEnds {
        RingEnds {
            tx: RingWriter::new(mem.clone(), C2H),
            rx: RingReader::new(mem, H2C),
        }
    }
}

impl RingWriter {
    fn new(mem: Arc<RingMem>, d: usize) -> Self {
        let tail = mem.tail(d).load(Ordering::Acquire);
        RingWriter { mem, d, tail }
    }

    /// Bytes that can be written now.
    pub fn free(&self) -> Result<usize, RingCorrupt> {
        let head = self.mem.head(self.d).load(Ordering::Acquire);
        let cap = self.mem.cap;
        let used = self.tail.checked_sub(head).unwrap_or(u64::MAX);
        if used > cap as u64 {
            return Err(RingCorrupt {
                head,
                tail: self.tail,
                cap,
            });
        }
        Ok(cap - used as usize)
    }

    /// Copies as much of `bytes` as fits and publishes it (release store of the tail).
    /// Returns how many bytes were written (0 if the ring is full).
    pub fn write(&mut self, bytes: &[u8]) -> Result<usize, RingCorrupt> {
        let n = self.free()?.min(bytes.len());
        if n == 0 {
            return Ok(0);
        }
        let cap = self.mem.cap;
        let at = (self.tail as usize) & (cap - 1);
        let first = n.min(cap - at);
        let base = self.mem.data(self.d);
        // SAFETY: `at + first <= cap` and `n - first <= cap`, so both copies stay inside this
        // ring's bytes (see `RingMem::data`). The region [tail, tail + n) is free (the reader
        // has read past it: `n <= free`), so the reader does not copy from it now; a peer that
        // breaks the protocol can only corrupt bytes, which readers validate. `bytes` is
        // private memory and cannot overlap the mapping's ring area.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), base.add(at), first);
            std::ptr::copy_nonoverlapping(bytes.as_ptr().add(first), base, n - first);
        }
        self.tail += n as u64;
        self.mem.tail(self.d).store(self.tail, Ordering::Release);
        Ok(n)
    }

    /// After publishing: does the reader sleep and need the doorbell? (Swaps its *armed* word
    /// to 0: exactly one writer pass rings for one arming.)
    pub fn reader_needs_wake(&self) -> bool {
        fence(Ordering::SeqCst);
        let a = self.mem.armed(self.d);
        a.load(Ordering::Relaxed) != 0 && a.swap(0, Ordering::SeqCst) != 0
    }

    /// The ring is full: announce that this writer waits for room. Returns `Ok(true)` if room
    /// appeared meanwhile (then the announcement is withdrawn, and the caller writes again);
    /// `Ok(false)`: sleep until the doorbell.
    pub fn announce_waiting(&self) -> Result<bool, RingCorrupt> {
        self.announce_waiting_for(1)
    }

    /// [`announce_waiting`](Self::announce_waiting) for `need` bytes of room (a pipe's
    /// `send_timeout` waits for room for its whole message before writing any of it).
    pub fn announce_waiting_for(&self, need: usize) -> Result<bool, RingCorrupt> {
        let w = self.mem.waiting(self.d);
        w.store(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.free()? >= need.max(1) {
            w.store(0, Ordering::SeqCst);
            return Ok(true);
        }
        Ok(false)
    }

    /// Tests only: writes `tail` into the shared tail word as a misbehaving peer would
    /// (the hub must drop the connection, not trust it).
    #[doc(hidden)]
    pub fn scribble_tail(&self, tail: u64) {
        self.mem.tail(self.d).store(tail, Ordering::SeqCst);
    }

    /// Withdraws a waiting announcement (the writer gave up).
    pub fn withdraw_waiting(&self) {
        self.mem.waiting(self.d).store(0, Ordering::SeqCst);
    }

    /// Bytes written and not yet read (as the reader last published).
    pub fn unread(&self) -> usize {
        let cap = self.mem.cap;
        self.free().map_or(cap, |f| cap - f)
    }
}

impl RingReader {
    fn new(mem: Arc<RingMem>, d: usize) -> Self {
        let head = mem.head(d).load(Ordering::Acquire);
        RingReader { mem, d, head }
    }

    /// Bytes waiting to be read.
    pub fn available(&self) -> Result<usize, RingCorrupt> {
        let tail = self.mem.tail(self.d).load(Ordering::Acquire);
        let n = tail.checked_sub(self.head).unwrap_or(u64::MAX);
        let cap = self.mem.cap;
        if n > cap as u64 {
            return Err(RingCorrupt {
                head: self.head,
                tail,
                cap,
            });
        }
        Ok(n as usize)
    }

    /// Moves up to `max` waiting bytes into `dec` and frees their room (release store of the
    /// head). Returns how many bytes moved.
    pub fn read_into(&mut self, dec: &mut FrameDecoder, max: usize) -> Result<usize, RingCorrupt> {
        let n = self.available()?.min(max);
        if n == 0 {
            return Ok(0);
        }
        let cap = self.mem.cap;
        let at = (self.head as usize) & (cap - 1);
        let first = n.min(cap - at);
        let base = self.mem.data(self.d);
        let dst = dec.spare(n);
        // SAFETY: `at + first <= cap` and `n - first <= cap` keep both copies inside this
        // ring's bytes; `dst` is at least `n` bytes of private memory (FrameDecoder::spare).
        // The bytes in [head, head + n) were published by the writer's release store of the
        // tail, which our acquire load saw. They are copied, never referenced in place; a peer
        // that rewrites them concurrently can only make them garbage, which the decoder rejects.
        unsafe {
            std::ptr::copy_nonoverlapping(base.add(at), dst.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(base, dst.as_mut_ptr().add(first), n - first);
        }
        dec.commit(n);
        self.head += n as u64;
        self.mem.head(self.d).store(self.head, Ordering::Release);
        Ok(n)
    }

    /// After freeing room: does the writer wait for it and need the doorbell?
    pub fn writer_needs_wake(&self) -> bool {
        fence(Ordering::SeqCst);
        let w = self.mem.waiting(self.d);
        w.load(Ordering::Relaxed) != 0 && w.swap(0, Ordering::SeqCst) != 0
    }

    /// The reader is going away (its end is being closed): sets *armed* unconditionally, so
    /// that the writer's next publish rings the doorbell and learns from the socket that
    /// nobody reads any more (pipes, issue 10 stage 3). Harmless if someone still reads: one
    /// doorbell byte more.
    pub fn arm_for_close(&self) {
        self.mem.armed(self.d).store(1, Ordering::SeqCst);
    }

    /// The reader is about to sleep: sets *armed* and looks again. `Ok(true)`: still empty,
    /// sleep (the writer will ring); `Ok(false)`: bytes arrived meanwhile (the arming is
    /// withdrawn; read them).
    pub fn arm(&self) -> Result<bool, RingCorrupt> {
        let a = self.mem.armed(self.d);
        a.store(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.available()? > 0 {
            a.store(0, Ordering::SeqCst);
            return Ok(false);
        }
        Ok(true)
    }
}

/// The environment variable that sets how long a client spins on its ring, in µs, before it
/// arms it and sleeps ([`DEFAULT_CLIENT_SPIN_US`] if unset; `0` turns spinning off).
pub const CLIENT_SPIN_ENV: &str = "MULTIPROC_SPIN_US";
/// The same for the hub, which spins on the rings it has just served
/// ([`DEFAULT_HUB_SPIN_US`] if unset; `0` turns it off).
pub const HUB_SPIN_ENV: &str = "MULTIPROC_HUB_SPIN_US";
/// A client's spin: about one wake-up of an idle vCPU on a VM that does not poll when it
/// idles (20–40 µs measured here), so that a call to a hub that was asleep finds its reply
/// while the caller is still awake (see [`Spin`]).
pub const DEFAULT_CLIENT_SPIN_US: u64 = 50;
/// The hub's spin: long enough for a client that has just been answered to send its next
/// request (one decode and one encode), short enough to cost nothing when it does not.
pub const DEFAULT_HUB_SPIN_US: u64 = 5;

fn spin_from_env(var: &str, default: u64) -> std::time::Duration {
    let us = std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(default)
        .min(1_000);
    std::time::Duration::from_micros(us)
}

/// How long a client spins before sleeping ([`CLIENT_SPIN_ENV`]; read once).
pub fn client_spin() -> std::time::Duration {
    static D: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();
    *D.get_or_init(|| spin_from_env(CLIENT_SPIN_ENV, DEFAULT_CLIENT_SPIN_US))
}

/// How long the hub spins before sleeping ([`HUB_SPIN_ENV`]; read once).
pub fn hub_spin() -> std::time::Duration {
    static D: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();
    *D.get_or_init(|| spin_from_env(HUB_SPIN_ENV, DEFAULT_HUB_SPIN_US))
}

/// A bounded, adaptive spin before a reader arms its ring and sleeps.
///
/// Waking an idle vCPU costs tens of µs here, on each side of a round trip; a reader that is
/// still awake when the frame lands costs nothing. So a reader polls its ring for at most
/// `limit` before it arms it. When two sides talk back and forth (a call, then the next
/// call), both stay awake and a round trip costs a few µs instead of two wake-ups.
///
/// A spin that finds nothing is wasted CPU time, so misses back off exponentially: after the
/// `k`-th miss in a row the next `2^k - 1` waits (at most 63) sleep at once, without spinning.
/// A hit resets the count. A reader whose peer is slow, busy or idle therefore spins on
/// about one wait in 64, and a process blocked for seconds spins once, for `limit`, in all.
/// With more runnable processes than CPUs a spinner is preempted by the process it waits for
/// (that one has just woken, so the scheduler favours it), and misses back off the same way.
#[derive(Debug, Default)]
pub struct Spin {
    misses: u32,
    skip: u32,
}

impl Spin {
    /// Polls `ready` until it says `true` (returns `Ok(true)`) or `limit` passes
    /// (`Ok(false)`: arm and sleep). Returns `Ok(false)` at once while backing off.
    pub fn wait<E>(
        &mut self,
        limit: std::time::Duration,
        mut ready: impl FnMut() -> Result<bool, E>,
    ) -> Result<bool, E> {
        if limit.is_zero() {
            return Ok(false);
        }
        if self.skip > 0 {
            self.skip -= 1;
            return Ok(false);
        }
        let start = std::time::Instant::now();
        loop {
            for _ in 0..8 {
                if ready()? {
                    self.misses = 0;
                    return Ok(true);
                }
                std::hint::spin_loop();
            }
            if start.elapsed() >= limit {
                break;
            }
        }
        self.misses = (self.misses + 1).min(6);
        self.skip = (1 << self.misses) - 1;
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn pair(cap: usize) -> (RingEnds, RingEnds) {
        let fd = crate::sys::mem::sealed_shared_memory("t", object_bytes(cap)).unwrap();
        let m = Mapping::new(fd.as_fd(), object_bytes(cap)).unwrap();
        let mem = RingMem::format(m, cap).unwrap();
        let m2 = Mapping::new(fd.as_fd(), object_bytes(cap)).unwrap();
        let mem2 = RingMem::open(m2).unwrap();
        (RingEnds::hub(mem), RingEnds::client(mem2))
    }

    #[test]
    fn bytes_cross_and_wrap() {
        let (mut hub, mut cl) = pair(4096);
        let mut dec = FrameDecoder::new(1 << 20);
        let mut sent = Vec::new();
        let mut got = 0usize;
        for i in 0..200u32 {
            let msg = serde_bytes::ByteBuf::from(vec![i as u8; (i as usize * 13) % 1500]);
            let mut frame = Vec::new();
            crate::wire::encode_into(&mut frame, &msg, usize::MAX).unwrap();
            let mut off = 0;
            while off < frame.len() {
                off += cl.tx.write(&frame[off..]).unwrap();
                hub.rx.read_into(&mut dec, usize::MAX).unwrap();
                while let Some(f) = dec.next_frame().unwrap() {
                    let b: serde_bytes::ByteBuf = crate::wire::decode(f).unwrap();
                    assert_eq!(b.len(), (got * 13) % 1500);
                    got += 1;
                }
            }
            sent.push(msg);
        }
        assert_eq!(got, 200);
        assert_eq!(hub.tx.free().unwrap(), 4096);
    }

    #[test]
    fn armed_reader_is_woken_once() {
        let (hub, mut cl) = pair(4096);
        assert!(hub.rx.arm().unwrap());
        cl.tx.write(b"abc").unwrap();
        assert!(cl.tx.reader_needs_wake());
        assert!(!cl.tx.reader_needs_wake());
        assert!(!hub.rx.arm().unwrap(), "data is waiting");
    }

    #[test]
    fn corrupt_counters_are_reported_not_trusted() {
        let (mut hub, cl) = pair(4096);
        // The client scribbles its tail far ahead.
        cl.tx.mem.tail(C2H).store(1 << 40, Ordering::SeqCst);
        let mut dec = FrameDecoder::new(1 << 20);
        assert!(hub.rx.read_into(&mut dec, usize::MAX).is_err());
        // And the head of the hub's ring beyond the hub's tail.
        cl.rx.mem.head(H2C).store(u64::MAX - 5, Ordering::SeqCst);
        assert!(hub.tx.write(b"x").is_err());
    }

    #[test]
    fn a_full_ring_announces_its_writer() {
        let (mut hub, mut cl) = pair(4096);
        assert_eq!(cl.tx.write(&[7u8; 5000]).unwrap(), 4096);
        assert!(!cl.tx.announce_waiting().unwrap());
        let mut dec = FrameDecoder::new(1 << 20);
        assert_eq!(hub.rx.read_into(&mut dec, 100).unwrap(), 100);
        assert!(hub.rx.writer_needs_wake());
        assert!(!hub.rx.writer_needs_wake());
    }

    #[test]
    fn sizes() {
        assert_eq!(cap_for(256 << 10), 256 << 10);
        assert_eq!(cap_for(300 << 10), 256 << 10);
        assert_eq!(cap_for(1), MIN_RING);
        assert!(valid_cap(cap_for(usize::MAX)));
    }
}
