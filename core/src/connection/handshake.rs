//! The authkey handshake: a challenge each way, answered with HMAC-SHA256 of the challenge
//! under the shared key, compared in constant time (the `hmac` crate's `verify_slice`).
//!
//! It follows Python's `multiprocessing.connection` (`deliver_challenge` / `answer_challenge`)
//! in spirit; the bytes differ, so it does not interoperate with Python.
//!
//! ```text
//!   server                                   client
//!   #CHALLENGE#{sha256}<40 random bytes>  →
//!                                         ←  {sha256}<HMAC(key, "{sha256}"+random)>
//!   #WELCOME#  (or #FAILURE#, and close)  →
//!                                         ←  #CHALLENGE#{sha256}<40 random bytes>
//!   {sha256}<HMAC(key, ...)>              →
//!                                         ←  #WELCOME#  (or #FAILURE#)
//! ```
//!
//! Every message is one frame in the pipe format (`u32` little-endian length + body), at most
//! [`MAX_MSG`] bytes. Both sides read byte-exact, so the first application message that follows
//! the handshake stays in the socket for the `Connection`.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::error::HandshakeError;
use crate::sys::{self, Errno};

const CHALLENGE: &[u8] = b"#CHALLENGE#";
const WELCOME: &[u8] = b"#WELCOME#";
const FAILURE: &[u8] = b"#FAILURE#";
const TAG: &[u8] = b"{sha256}";
const NONCE_LEN: usize = 40;
/// The largest handshake message accepted; anything longer is garbage.
pub(crate) const MAX_MSG: usize = 256;

fn mac(key: &[u8], msg: &[u8]) -> Result<Hmac<Sha256>, HandshakeError> {
    if key.is_empty() {
        return Err(HandshakeError::EmptyKey);
    }
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| HandshakeError::EmptyKey)?;
    m.update(msg);
    Ok(m)
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + body.len());
    v.extend_from_slice(&(body.len() as u32).to_le_bytes());
    v.extend_from_slice(body);
    v
}

fn send(sock: &OwnedFd, body: &[u8]) -> Result<(), HandshakeError> {
    sys::io::send_all(sock.as_fd(), &frame(body), &[]).map_err(HandshakeError::Io)
}

fn new_challenge() -> Result<Vec<u8>, HandshakeError> {
    let mut nonce = [0u8; NONCE_LEN];
    sys::net::random_bytes(&mut nonce).map_err(HandshakeError::Io)?;
    let mut msg = Vec::with_capacity(CHALLENGE.len() + TAG.len() + NONCE_LEN);
    msg.extend_from_slice(CHALLENGE);
    msg.extend_from_slice(TAG);
    msg.extend_from_slice(&nonce);
    Ok(msg)
}

/// The answer to a challenge message (which starts with `#CHALLENGE#`).
fn answer(key: &[u8], challenge: &[u8]) -> Result<Vec<u8>, HandshakeError> {
    let Some(rest) = challenge.strip_prefix(CHALLENGE) else {
        return Err(HandshakeError::Garbage("expected a challenge"));
    };
    if !rest.starts_with(TAG) || rest.len() < TAG.len() + 16 {
        return Err(HandshakeError::Garbage(
            "a challenge without the {sha256} tag and a nonce",
        ));
    }
    let digest = mac(key, rest)?.finalize().into_bytes();
    let mut out = TAG.to_vec();
    out.extend_from_slice(&digest);
    Ok(out)
}

/// Checks a response to our `challenge`, in constant time.
fn verify(key: &[u8], challenge: &[u8], response: &[u8]) -> Result<(), HandshakeError> {
    let signed = &challenge[CHALLENGE.len()..];
    let Some(digest) = response.strip_prefix(TAG) else {
        return Err(HandshakeError::Garbage("a response without the {sha256} tag"));
    };
    mac(key, signed)?
        .verify_slice(digest)
        .map_err(|_| HandshakeError::WrongKey)
}

/// Reads frames of at most [`MAX_MSG`] bytes, byte-exact, from a socket.
#[derive(Default)]
struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    /// How many more bytes the frame being read needs.
    fn want(&self) -> usize {
        if self.buf.len() < 4 {
            4 - self.buf.len()
        } else {
            let len = u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
            4 + len - self.buf.len()
        }
    }

    /// Reads a frame: without waiting when `deadline` is `None` (`Ok(None)` when more is
    /// needed and none is available), else waiting until the deadline at most, however slowly
    /// the peer trickles its bytes. `Ok(Some(body))` once a whole frame has arrived.
    fn read(&mut self, sock: &OwnedFd, deadline: Option<Instant>) -> Result<Option<Vec<u8>>, HandshakeError> {
        loop {
            if self.buf.len() == 4 {
                let len = self.want();
                if len > MAX_MSG {
                    return Err(HandshakeError::Garbage("a handshake message longer than 256 bytes"));
                }
            }
            let want = self.want();
            if want == 0 {
                let body = self.buf.split_off(4);
                self.buf.clear();
                return Ok(Some(body));
            }
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(HandshakeError::Timeout);
                }
                sys::io::set_recv_timeout(sock.as_fd(), Some(left)).map_err(HandshakeError::Io)?;
            }
            let mut chunk = [0u8; MAX_MSG + 4];
            match sys::io::recv_into(sock.as_fd(), &mut chunk[..want], deadline.is_none()) {
                Ok(0) => return Err(HandshakeError::Closed),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(Errno::EAGAIN) => {
                    return if deadline.is_none() {
                        Ok(None)
                    } else {
                        Err(HandshakeError::Timeout)
                    }
                }
                Err(e) => return Err(HandshakeError::Io(e)),
            }
        }
    }
}

/// Where the server side stands.
enum Stage {
    /// Our challenge is sent; waiting for its answer.
    Answer,
    /// We welcomed the client; waiting for its challenge.
    Challenge,
    /// We answered the client's challenge; waiting for its verdict.
    Verdict,
}

/// The server side of one handshake, driven without blocking by the `Listener`: feed it
/// readiness with [`ServerHandshake::advance`].
pub(crate) struct ServerHandshake {
    sock: OwnedFd,
    key: Vec<u8>,
    challenge: Vec<u8>,
    stage: Stage,
    rd: FrameReader,
    /// When the client must have finished.
    pub deadline: Instant,
}

/// What [`ServerHandshake::advance`] found.
pub(crate) enum Progress {
    /// Needs more from the client.
    Pending(ServerHandshake),
    /// The client is authenticated, and it authenticated us; the socket is ready for use.
    Done(OwnedFd),
}

impl ServerHandshake {
    /// Sends the first challenge on a freshly accepted socket.
    pub fn start(sock: OwnedFd, key: &[u8], timeout: Duration) -> Result<ServerHandshake, HandshakeError> {
        if key.is_empty() {
            return Err(HandshakeError::EmptyKey);
        }
        let challenge = new_challenge()?;
        send(&sock, &challenge)?;
        Ok(ServerHandshake {
            sock,
            key: key.to_vec(),
            challenge,
            stage: Stage::Answer,
            rd: FrameReader::default(),
            deadline: Instant::now() + timeout,
        })
    }

    /// The socket, for polling.
    pub fn sock(&self) -> &OwnedFd {
        &self.sock
    }

    /// Reads what the client sent, without waiting, and answers it.
    pub fn advance(mut self) -> Result<Progress, HandshakeError> {
        loop {
            let Some(msg) = self.rd.read(&self.sock, None)? else {
                return Ok(Progress::Pending(self));
            };
            match self.stage {
                Stage::Answer => match verify(&self.key, &self.challenge, &msg) {
                    Ok(()) => {
                        send(&self.sock, WELCOME)?;
                        self.stage = Stage::Challenge;
                    }
                    Err(e) => {
                        let _ = send(&self.sock, FAILURE);
                        return Err(e);
                    }
                },
                Stage::Challenge => {
                    let reply = answer(&self.key, &msg)?;
                    send(&self.sock, &reply)?;
                    self.stage = Stage::Verdict;
                }
                Stage::Verdict => {
                    return if msg == WELCOME {
                        Ok(Progress::Done(self.sock))
                    } else if msg == FAILURE {
                        Err(HandshakeError::PeerRefusedUs)
                    } else {
                        Err(HandshakeError::Garbage("expected #WELCOME# or #FAILURE#"))
                    };
                }
            }
        }
    }
}

/// The client side: answers the server's challenge, then challenges it, all before `deadline`.
pub(crate) fn client(sock: &OwnedFd, key: &[u8], deadline: Instant) -> Result<(), HandshakeError> {
    if key.is_empty() {
        return Err(HandshakeError::EmptyKey);
    }
    let mut rd = FrameReader::default();
    let recv = |rd: &mut FrameReader| -> Result<Vec<u8>, HandshakeError> {
        match rd.read(sock, Some(deadline))? {
            Some(m) => Ok(m),
            None => Err(HandshakeError::Timeout),
        }
    };
    let result = (|| {
        let challenge = recv(&mut rd)?;
        send(sock, &answer(key, &challenge)?)?;
        let verdict = recv(&mut rd)?;
        if verdict == FAILURE {
            return Err(HandshakeError::PeerRefusedUs);
        }
        if verdict != WELCOME {
            return Err(HandshakeError::Garbage("expected #WELCOME# or #FAILURE#"));
        }
        let ours = new_challenge()?;
        send(sock, &ours)?;
        let response = recv(&mut rd)?;
        match verify(key, &ours, &response) {
            Ok(()) => send(sock, WELCOME),
            Err(e) => {
                let _ = send(sock, FAILURE);
                Err(e)
            }
        }
    })();
    // The Connection sets its own receive timeouts; leave none behind.
    let _ = sys::io::set_recv_timeout(sock.as_fd(), None);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_verify_only_under_the_same_key() {
        let c = new_challenge().unwrap();
        let a = answer(b"k1", &c).unwrap();
        assert!(verify(b"k1", &c, &a).is_ok());
        assert!(matches!(verify(b"k2", &c, &a), Err(HandshakeError::WrongKey)));
        assert!(matches!(verify(b"k1", &c, b"junk"), Err(HandshakeError::Garbage(_))));
        assert!(matches!(answer(b"k1", b"hello"), Err(HandshakeError::Garbage(_))));
        assert!(matches!(answer(b"", &c), Err(HandshakeError::EmptyKey)));
    }
}
