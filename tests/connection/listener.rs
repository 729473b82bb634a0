//! `Listener` / `Client` between separately started programs, with the authkey handshake:
//! exchanges over Unix sockets and TCP, refusals (wrong key, garbage, silence, another uid)
//! within the deadline while good clients go on being served, limits, the inherited authkey,
//! and "nothing listens unless asked".

#[path = "../common/mod.rs"]
mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::KillOnDrop;
use multiproc::connection::{Address, Client, ClientError, HandshakeError, Listener, ListenerError, RefusedReason};
use multiproc::{Pool, Process, Queue};

/// Runs this test binary again as a separate program (a plain `std::process::Command`, not a
/// multiproc child) executing the ignored test `name`, with `env` set.
fn program(name: &str, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args(["--exact", name, "--ignored", "--nocapture", "--test-threads=1"])
        .env("MULTIPROC_TEST_HELPER", name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn env_addr() -> Address {
    std::env::var("MP_ADDR").expect("MP_ADDR").parse().expect("address")
}

/// The client program: connects with the key in `MP_KEY`, sends `MP_MSG`, prints the reply.
#[test]
#[ignore]
fn client_program() {
    if !common::is_helper("client_program") {
        return;
    }
    let key = std::env::var("MP_KEY").expect("MP_KEY");
    let res = Client::builder()
        .authkey(key.as_str())
        .connect::<String>(&env_addr())
        .map(|c| {
            c.send(&std::env::var("MP_MSG").unwrap_or_default()).expect("send");
            c.recv().expect("recv")
        });
    match res {
        Ok(reply) => println!("REPLY {reply}"),
        Err(e) => println!("ERROR {e:?}"),
    }
}

fn run_two_programs(address: Address) {
    let listener = Listener::builder()
        .authkey("shared secret")
        .bind(address)
        .expect("bind");
    let addr = listener.address().to_string();
    let mut kids = KillOnDrop::default();
    let mut children = Vec::new();
    for i in 0..2 {
        let c = program(
            "client_program",
            &[
                ("MP_ADDR", addr.clone()),
                ("MP_KEY", "shared secret".into()),
                ("MP_MSG", format!("client {i}")),
            ],
        )
        .spawn()
        .expect("spawn the client program");
        kids.add(c.id() as i32);
        children.push(c);
    }
    for _ in 0..2 {
        let conn = listener
            .accept_timeout::<String>(Duration::from_secs(30))
            .expect("accept");
        let got = conn.recv_timeout(Duration::from_secs(30)).expect("recv");
        conn.send(&format!("hello, {got}")).expect("send");
    }
    for c in children {
        let out = c.wait_with_output().expect("client output");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "client failed: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("REPLY hello, client "), "client said: {stdout}");
    }
}

#[test]
fn two_programs_talk_over_a_unix_socket() {
    run_two_programs(Address::unix_temp().expect("temp address"));
}

#[test]
fn two_programs_talk_over_tcp_on_loopback() {
    run_two_programs(Address::tcp_loopback());
}

#[test]
fn the_unix_socket_lives_in_a_private_directory_and_goes_with_the_listener() {
    use std::os::unix::fs::PermissionsExt;
    let addr = Address::unix_temp().expect("temp address");
    let Address::Unix(path) = addr.clone() else {
        unreachable!()
    };
    let listener = Listener::bind(addr).expect("bind");
    let dir_mode = std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777;
    let sock_mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    assert_eq!(sock_mode, 0o600);
    drop(listener);
    assert!(!path.exists(), "the socket file outlived its listener");
    assert!(
        !path.parent().unwrap().exists(),
        "the private directory outlived its listener"
    );
}

#[test]
fn a_wrong_authkey_is_refused_on_both_sides_and_the_listener_goes_on() {
    let listener = Listener::builder()
        .authkey("right")
        .bind(Address::tcp_loopback())
        .unwrap();
    let addr = listener.address().clone();
    let t = std::thread::spawn(move || {
        let bad = Client::builder().authkey("wrong").connect::<u32>(&addr);
        let good = Client::builder()
            .authkey("right")
            .connect::<u32>(&addr)
            .expect("the right key");
        good.send(&7).unwrap();
        bad.map(|_| ())
    });
    match listener.accept_timeout::<u32>(Duration::from_secs(10)) {
        Err(ListenerError::Refused {
            reason: RefusedReason::Handshake(HandshakeError::WrongKey),
            ..
        }) => {}
        other => panic!("expected a WrongKey refusal, got {other:?}"),
    }
    let conn = listener
        .accept_timeout::<u32>(Duration::from_secs(10))
        .expect("the good client");
    assert_eq!(conn.recv_timeout(Duration::from_secs(10)).unwrap(), 7);
    match t.join().unwrap() {
        Err(ClientError::Handshake(HandshakeError::PeerRefusedUs)) => {}
        other => panic!("the client with the wrong key should be told it was refused, got {other:?}"),
    }
}

#[test]
fn a_server_with_the_wrong_key_is_refused_by_the_client() {
    // Mutual authentication: a client does not talk to an impostor that merely accepts.
    let listener = Listener::builder()
        .authkey("impostor")
        .bind(Address::unix_temp().unwrap())
        .unwrap();
    let addr = listener.address().clone();
    let t = std::thread::spawn(move || Client::builder().authkey("real").connect::<u32>(&addr).map(|_| ()));
    let server_side = listener.accept_timeout::<u32>(Duration::from_secs(10));
    assert!(matches!(
        server_side,
        Err(ListenerError::Refused {
            reason: RefusedReason::Handshake(HandshakeError::WrongKey),
            ..
        })
    ));
    assert!(matches!(
        t.join().unwrap(),
        Err(ClientError::Handshake(HandshakeError::PeerRefusedUs))
    ));
}

#[test]
fn garbage_during_the_handshake_is_refused_and_good_clients_are_served() {
    // Handshakes progress while somebody is in `accept` (as in Python), so the clients here
    // never wait for the server between two accepts.
    let listener = Listener::builder().authkey("k").bind(Address::tcp_loopback()).unwrap();
    let Address::Tcp(sa) = *listener.address() else {
        unreachable!()
    };
    let addr = listener.address().clone();
    // A length of 4 GiB, then junk.
    let mut raw = std::net::TcpStream::connect(sa).unwrap();
    raw.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]).unwrap();
    // A well-formed frame with a body that is not an answer.
    let mut raw2 = std::net::TcpStream::connect(sa).unwrap();
    raw2.write_all(&[5, 0, 0, 0, b'h', b'e', b'l', b'l', b'o']).unwrap();
    let t = std::thread::spawn(move || {
        let good = Client::builder().authkey("k").connect::<String>(&addr).unwrap();
        good.send(&"fine".to_string()).unwrap();
        good
    });
    let mut refused = 0;
    let mut served = None;
    while refused < 2 || served.is_none() {
        match listener.accept_timeout::<String>(Duration::from_secs(20)) {
            Ok(c) => served = Some(c),
            Err(ListenerError::Refused {
                reason: RefusedReason::Handshake(HandshakeError::Garbage(_)),
                peer,
            }) => {
                assert!(peer.starts_with("127.0.0.1:"), "{peer}");
                refused += 1
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    let conn = served.unwrap();
    assert_eq!(conn.recv_timeout(Duration::from_secs(10)).unwrap(), "fine");
    let _good = t.join().unwrap();
    // The server closed the garbage connections (an end of stream, or a reset when it closed
    // with our junk unread), rather than leaving them open until our timeout.
    for r in [&mut raw, &mut raw2] {
        r.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut sink = Vec::new();
        match r.read_to_end(&mut sink) {
            Ok(_) => {}
            Err(e) => assert_eq!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset,
                "a garbage connection was left open: {e}"
            ),
        }
    }
}

#[test]
fn a_silent_client_is_refused_at_the_deadline_and_delays_nobody() {
    let timeout = Duration::from_millis(1500);
    let listener = Listener::builder()
        .authkey("k")
        .handshake_timeout(timeout)
        .bind(Address::unix_temp().unwrap())
        .unwrap();
    let Address::Unix(path) = listener.address().clone() else {
        unreachable!()
    };
    let silent = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let silent_at = Instant::now();
    let addr = listener.address().clone();
    let t = std::thread::spawn(move || {
        let c = Client::builder().authkey("k").connect::<u8>(&addr).unwrap();
        c.send(&1).unwrap();
        c
    });
    // The good client comes out first, long before the silent one's deadline.
    let conn = listener
        .accept_timeout::<u8>(Duration::from_secs(20))
        .expect("the good client");
    assert_eq!(conn.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
    let _c = t.join().unwrap();
    match listener.accept_timeout::<u8>(Duration::from_secs(20)) {
        Err(ListenerError::Refused {
            reason: RefusedReason::Handshake(HandshakeError::Timeout),
            ..
        }) => {}
        other => panic!("expected the silent client's timeout, got {other:?}"),
    }
    let waited = silent_at.elapsed();
    assert!(waited >= timeout, "refused before its deadline: {waited:?}");
    assert!(
        waited < timeout + Duration::from_secs(10),
        "refused far too late: {waited:?}"
    );
    // The silent client's socket was closed by the listener.
    let mut s = silent;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut sink = Vec::new();
    assert!(
        s.read_to_end(&mut sink).is_ok(),
        "the listener should have closed the silent client"
    );
}

#[test]
fn a_client_that_gives_up_is_told_in_time() {
    // A listener that never accepts: the client's handshake times out at its own deadline.
    let listener = Listener::bind(Address::unix_temp().unwrap()).unwrap();
    let t = Instant::now();
    let res = Client::builder()
        .timeout(Duration::from_millis(500))
        .connect::<u8>(listener.address());
    let took = t.elapsed();
    assert!(
        matches!(res, Err(ClientError::Handshake(HandshakeError::Timeout))),
        "{res:?}"
    );
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(10),
        "{took:?}"
    );
}

#[test]
fn connecting_where_nothing_listens_is_a_clear_error() {
    let res = Client::connect::<u8>(&"unix:/nonexistent/multiproc.sock".parse().unwrap());
    let err = res.expect_err("nothing listens there");
    assert!(matches!(err, ClientError::Connect { .. }));
    assert!(err.to_string().contains("is the listener running"), "{err}");
}

#[test]
fn max_connections_is_enforced_until_one_is_dropped() {
    let listener = Listener::builder()
        .authkey("k")
        .max_connections(1)
        .bind(Address::tcp_loopback())
        .unwrap();
    let addr = listener.address().clone();
    let t = std::thread::spawn(move || {
        let a = Client::builder().authkey("k").connect::<u8>(&addr).unwrap();
        let b = Client::builder().authkey("k").connect::<u8>(&addr);
        (a, b)
    });
    let first = listener.accept_timeout::<u8>(Duration::from_secs(10)).unwrap();
    assert_eq!(listener.live_connections(), 1);
    assert!(matches!(
        listener.accept_timeout::<u8>(Duration::from_secs(1)),
        Err(ListenerError::TooManyConnections { max: 1 })
    ));
    drop(first);
    assert_eq!(listener.live_connections(), 0);
    let _second = listener.accept_timeout::<u8>(Duration::from_secs(10)).unwrap();
    let (_a, b) = t.join().unwrap();
    assert!(b.is_ok());
}

/// A client program run as another user (uid 65534).
#[test]
#[ignore]
fn other_user_program() {
    if !common::is_helper("other_user_program") {
        return;
    }
    match Client::builder().authkey("k").connect::<u8>(&env_addr()) {
        Ok(_) => println!("RESULT connected"),
        Err(e) => println!("RESULT refused {e}"),
    }
}

#[test]
fn a_unix_client_of_another_uid_is_refused() {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) != 0 {
        eprintln!("skipped: switching to another uid needs root");
        return;
    }
    // A directory and socket file anyone may reach, so that only the peer-credential check
    // stands between the other user and the listener.
    let dir = std::env::temp_dir().join(format!("multiproc-uidtest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.join("s.sock");
    let listener = Listener::builder()
        .authkey("k")
        .bind(Address::Unix(path.clone()))
        .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut cmd = program("other_user_program", &[("MP_ADDR", format!("unix:{}", path.display()))]);
    cmd.uid(65534).gid(65534);
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skipped: cannot run the test binary as uid 65534: {e}");
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
    };
    let mut kill = KillOnDrop::default();
    kill.add(child.id() as i32);
    let res = listener.accept_timeout::<u8>(Duration::from_secs(20));
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let _ = std::fs::remove_dir_all(&dir);
    if !stdout.contains("RESULT") {
        // The binary could not run as that user (its directory is not readable, say).
        eprintln!(
            "skipped: the other-user program did not run: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    match res {
        Err(ListenerError::Refused {
            reason: RefusedReason::OtherUser { uid: 65534, ours: 0 },
            ..
        }) => {}
        other => panic!("expected the other user's refusal, got {other:?}"),
    }
    assert!(stdout.contains("RESULT refused"), "the other user got in: {stdout}");
}

#[multiproc::worker]
fn report_authkey(depth: u32) -> Vec<u8> {
    if depth == 0 {
        multiproc::authkey().as_bytes().to_vec()
    } else {
        let mut p = Process::new(report_authkey(depth - 1)).start().unwrap();
        p.join().unwrap()
    }
}

#[test]
fn children_inherit_the_authkey_and_a_new_key_reaches_later_children() {
    let before = multiproc::authkey();
    assert_eq!(before.as_bytes().len(), 32, "the root's key is 32 random bytes");
    let mut p = Process::new(report_authkey(1)).start().unwrap();
    assert_eq!(p.join().unwrap(), before.as_bytes(), "a grandchild has the root's key");
    // Other tests in this binary may run at the same time; they all set their keys through the
    // builders, never through `set_authkey`, except this one.
    multiproc::set_authkey("a new key");
    let mut q = Process::new(report_authkey(0)).start().unwrap();
    assert_eq!(q.join().unwrap(), b"a new key");
    multiproc::set_authkey(before.as_bytes());
}

/// Socket inodes of the listening Unix and TCP sockets on this machine.
fn listening_inodes() -> HashSet<u64> {
    let mut set = HashSet::new();
    if let Ok(s) = std::fs::read_to_string("/proc/net/unix") {
        for line in s.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // Num RefCount Protocol Flags Type St Inode [Path]; Flags 00010000 = listening.
            if f.len() >= 7 && u32::from_str_radix(f[3], 16).is_ok_and(|x| x & 0x10000 != 0) {
                if let Ok(i) = f[6].parse() {
                    set.insert(i);
                }
            }
        }
    }
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(s) = std::fs::read_to_string(file) {
            for line in s.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                // sl local rem st ... inode (field 9); st 0A = LISTEN.
                if f.len() >= 10 && f[3] == "0A" {
                    if let Ok(i) = f[9].parse() {
                        set.insert(i);
                    }
                }
            }
        }
    }
    set
}

/// The socket inodes a process holds.
fn socket_inodes(pid: u32) -> Vec<u64> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in rd.flatten() {
            if let Ok(t) = std::fs::read_link(e.path()) {
                let t = t.to_string_lossy().to_string();
                if let Some(n) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                    if let Ok(i) = n.parse() {
                        v.push(i);
                    }
                }
            }
        }
    }
    v
}

#[multiproc::worker]
fn sleepy_pid() -> u32 {
    std::process::id()
}

#[multiproc::worker]
fn hold_and_report(q: Queue<u32>) {
    q.put(std::process::id()).unwrap();
    std::thread::sleep(Duration::from_secs(3));
}

#[multiproc::worker]
fn square(x: u64) -> u64 {
    x * x
}

/// A program that uses processes, a queue, a lock, a pool and a manager, and never a Listener,
/// then checks that neither it nor its children listen on anything.
#[test]
#[ignore]
fn no_listener_program() {
    if !common::is_helper("no_listener_program") {
        return;
    }
    let q: Queue<u32> = Queue::new().unwrap();
    let lock = multiproc::Lock::new().unwrap();
    let _g = lock.acquire().unwrap();
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.map(square, 0..10u64).unwrap()[3], 9);
    let m = multiproc::Manager::new().unwrap();
    let d = m.dict::<String, u32>().unwrap();
    d.insert("a".into(), 1).unwrap();
    let mut holder = Process::new(hold_and_report(q.clone())).start().unwrap();
    let child_pid = q.get_timeout(Duration::from_secs(20)).unwrap();
    let mut p = Process::new(sleepy_pid()).start().unwrap();
    p.join().unwrap();
    let listening = listening_inodes();
    let mut pids = vec![std::process::id(), child_pid];
    // The fork server and pool workers are our children too.
    if let Ok(s) = std::fs::read_to_string(format!(
        "/proc/{}/task/{}/children",
        std::process::id(),
        std::process::id()
    )) {
        pids.extend(s.split_whitespace().filter_map(|x| x.parse::<u32>().ok()));
    }
    let mut checked = 0;
    for pid in &pids {
        for ino in socket_inodes(*pid) {
            checked += 1;
            assert!(!listening.contains(&ino), "process {pid} listens on socket inode {ino}");
        }
    }
    assert!(checked > 3, "expected to see the hub's sockets, saw {checked}");
    // The check itself works: a Listener is seen.
    for addr in [Address::unix_temp().unwrap(), Address::tcp_loopback()] {
        let l = Listener::bind(addr).unwrap();
        let now = listening_inodes();
        assert!(
            socket_inodes(std::process::id()).iter().any(|i| now.contains(i)),
            "a Listener on {} was not seen as listening",
            l.address()
        );
    }
    holder.join().unwrap();
    println!("CHECKED {checked} sockets in {} processes", pids.len());
}

#[test]
fn a_program_that_never_creates_a_listener_listens_on_nothing() {
    let out = program("no_listener_program", &[])
        .output()
        .expect("run the helper program");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHECKED "),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn address_parsing() {
    assert_eq!(
        "tcp:127.0.0.1:80".parse::<Address>().unwrap(),
        Address::Tcp("127.0.0.1:80".parse().unwrap())
    );
    assert_eq!(
        "127.0.0.1:80".parse::<Address>().unwrap(),
        Address::Tcp("127.0.0.1:80".parse().unwrap())
    );
    assert_eq!(
        "unix:/tmp/x".parse::<Address>().unwrap(),
        Address::Unix("/tmp/x".into())
    );
    assert_eq!("/tmp/x".parse::<Address>().unwrap(), Address::Unix("/tmp/x".into()));
    assert!("nonsense".parse::<Address>().is_err());
    // Display and parse agree.
    let a = Address::Unix("/tmp/y".into());
    assert_eq!(a.to_string().parse::<Address>().unwrap(), a);
}

/// A `Connection` sent inside a message travels with its descriptor on a Unix-socket
/// connection, and is refused with a clear error on TCP (which cannot carry descriptors);
/// either way the connection goes on.
#[test]
fn descriptors_travel_on_unix_connections_and_are_refused_on_tcp() {
    for addr in [Address::unix_temp().unwrap(), Address::tcp_loopback()] {
        let tcp = matches!(addr, Address::Tcp(_));
        let listener = Listener::builder().authkey("k").bind(addr).unwrap();
        let at = listener.address().clone();
        let t = std::thread::spawn(move || {
            Client::builder()
                .authkey("k")
                .connect::<(String, Option<multiproc::Connection<u8>>)>(&at)
                .unwrap()
        });
        let server = listener
            .accept_timeout::<(String, Option<multiproc::Connection<u8>>)>(Duration::from_secs(20))
            .unwrap();
        let client = t.join().unwrap();
        let (mine, theirs) = multiproc::pipe::<u8>().unwrap();
        match client.send(&("with an end".into(), Some(theirs))) {
            Ok(()) => {
                assert!(!tcp, "a descriptor went over TCP");
                let (_, end) = server.recv_timeout(Duration::from_secs(10)).unwrap();
                end.unwrap().send(&7).unwrap();
                assert_eq!(mine.recv_timeout(Duration::from_secs(10)).unwrap(), 7);
            }
            Err(e) => {
                assert!(tcp, "refused on a Unix socket: {e}");
                assert!(e.to_string().contains("not TCP"), "{e}");
            }
        }
        client.send(&("plain".into(), None)).unwrap();
        let (m, none) = server.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!((m.as_str(), none.is_none()), ("plain", true));
    }
}

/// The `tr` (timer) and `tm->when` (clock ticks) columns of the `/proc/net/tcp` rows whose
/// local or remote port is `port`, as `(local port, timer, when)`.
fn tcp_timers(port: u16) -> Vec<(u16, u32, u64)> {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let port_of = |a: &str| a.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
    let mut rows = Vec::new();
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 6 || cols[3] != "01" {
            continue; // not ESTABLISHED
        }
        let (Some(local), Some(remote)) = (port_of(cols[1]), port_of(cols[2])) else {
            continue;
        };
        if local != port && remote != port {
            continue;
        }
        let mut timer = cols[5].split(':');
        let tr = timer.next().and_then(|t| u32::from_str_radix(t, 16).ok()).unwrap_or(99);
        let when = timer
            .next()
            .and_then(|t| u64::from_str_radix(t, 16).ok())
            .unwrap_or(u64::MAX);
        rows.push((local, tr, when));
    }
    rows
}

/// A TCP connection whose peer host vanishes without closing would otherwise stay open
/// forever while nothing is sent (and a blocked `recv` with it). Both ends turn keep-alive
/// on by default: the kernel's keep-alive timer (`tr` 2 in `/proc/net/tcp`) runs on each,
/// set to the configured idle time; `keepalive(None)` turns it off.
#[cfg(target_os = "linux")]
#[test]
fn tcp_connections_keep_alive_on_both_ends_unless_turned_off() {
    for idle in [Some(Duration::from_secs(3)), None] {
        let listener = Listener::builder()
            .authkey("k")
            .keepalive(idle)
            .bind(Address::tcp_loopback())
            .unwrap();
        let addr = listener.address().clone();
        let Address::Tcp(sa) = addr else {
            panic!("not TCP: {addr}")
        };
        let t = std::thread::spawn(move || {
            Client::builder()
                .authkey("k")
                .keepalive(idle)
                .connect::<u8>(&addr)
                .unwrap()
        });
        let server = listener.accept_timeout::<u8>(Duration::from_secs(10)).unwrap();
        let client = t.join().unwrap();
        client.send(&7).unwrap();
        assert_eq!(server.recv_timeout(Duration::from_secs(10)).unwrap(), 7);
        // Poll: the kernel re-arms the timer lazily after traffic.
        let deadline = Instant::now() + Duration::from_secs(10);
        let rows = loop {
            let rows = tcp_timers(sa.port());
            let settled = rows.len() == 2 && rows.iter().all(|&(_, tr, _)| (tr == 2) == idle.is_some());
            if settled || Instant::now() > deadline {
                break rows;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(
            rows.len(),
            2,
            "both ends of the connection on port {}: {rows:?}",
            sa.port()
        );
        for &(local, tr, when) in &rows {
            match idle {
                // `when` is in clock ticks (USER_HZ, 100 on Linux): at most the 3 s idle time.
                Some(_) => assert!(tr == 2 && when <= 3 * 100, "end {local}: timer {tr}, in {when} ticks"),
                None => assert_eq!(tr, 0, "end {local}: a timer runs with keep-alive off"),
            }
        }
        drop((server, client));
    }
}
