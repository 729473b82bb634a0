//! `ask` in one round trip: the reusable reply slots (`Op::Ask`). A slot is lent to one ask at
//! a time and re-armed with a fresh secret for each, so an answer that comes after its ask
//! gave up can never be taken by a later ask; a process keeps at most a few slots, and asks
//! beyond that many in flight at once still work (one-time slots).

mod common;

use std::time::{Duration, Instant};

use multiproc::{Addr, AskError, Process, ReplyTo, StartMethod};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
enum Q {
    /// Answer `n` after `ms` milliseconds.
    Echo {
        n: u64,
        ms: u64,
        reply: ReplyTo<u64>,
    },
    /// Never answer (the reply slot's answerer keeps it and drops it).
    Ignore(ReplyTo<u64>),
    Stop,
}

/// Answers each question on a thread of its own, so slow answers do not hold up others.
#[multiproc::worker]
fn echo_server() {
    let inbox = multiproc::mailbox::<Q>();
    loop {
        match inbox.recv().unwrap() {
            Q::Echo { n, ms, reply } => {
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(ms));
                    let _ = reply.send(&n);
                });
            }
            Q::Ignore(_reply) => {}
            Q::Stop => return,
        }
    }
}

/// Kills and reaps the server when the test ends, even if it fails.
struct Server(Process<()>);

impl Server {
    fn start() -> Self {
        Server(Process::new(echo_server()).start().unwrap())
    }
    fn addr(&self) -> Addr<Q> {
        self.0.addr::<Q>()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.addr().send(&Q::Stop);
        if self.0.join_timeout(Duration::from_secs(5)).is_err() {
            let _ = self.0.kill();
            let _ = self.0.join_timeout(Duration::from_secs(5));
        }
    }
}

/// The tests of this binary one at a time (they count this process's reply slots).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn reply_slots_of_this_process() -> usize {
    let snap = multiproc::snapshot().unwrap();
    let pid = multiproc::current_process().pid();
    let me = snap.processes.iter().find(|p| p.pid == pid).unwrap().proc;
    snap.objects
        .iter()
        .filter(|o| o.kind == "Reply" && o.creator == me)
        .count()
}

#[test]
fn a_late_answer_to_an_abandoned_ask_never_lands_in_a_later_one() {
    let _g = serial();
    let s = Server::start();
    let addr = s.addr();
    for round in 0..5u64 {
        // Gives up before the answer (sent 300 ms later) comes.
        let r = addr.ask_timeout(
            |reply| Q::Echo {
                n: 1000 + round,
                ms: 300,
                reply,
            },
            Duration::from_millis(50),
        );
        assert!(matches!(r, Err(AskError::Timeout)), "{r:?}");
        // The next asks reuse that slot; one of them is still in flight when the late answer
        // arrives, and each gets its own answer only.
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(400) {
            let n = 7 + round;
            let got = addr
                .ask_timeout(|reply| Q::Echo { n, ms: 20, reply }, Duration::from_secs(20))
                .unwrap();
            assert_eq!(got, n);
        }
    }
}

#[test]
fn many_asks_reuse_a_few_slots() {
    let _g = serial();
    let s = Server::start();
    let addr = s.addr();
    let before = reply_slots_of_this_process();
    assert!(before <= 64, "{before} reply slots: more than the pool's 64");
    for i in 0..2000u64 {
        assert_eq!(addr.ask(|reply| Q::Echo { n: i, ms: 0, reply }).unwrap(), i);
    }
    // One thread asking in turn uses one slot: no growth (one new slot if it had none).
    let after = reply_slots_of_this_process();
    assert!(
        after <= before.max(1),
        "{before} reply slots before 2000 asks, {after} after"
    );
}

#[test]
fn more_asks_in_flight_than_the_pool_holds_all_get_their_own_answers() {
    let _g = serial();
    let s = Server::start();
    let addr = s.addr();
    let threads: Vec<_> = (0..90u64)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                // Each answer takes 300 ms, so all 90 asks are in flight together.
                addr.ask_timeout(|reply| Q::Echo { n: i, ms: 300, reply }, Duration::from_secs(60))
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        assert_eq!(t.join().unwrap().unwrap(), i as u64);
    }
    // The one-time slots of the asks beyond the pool's 64 are gone once answered.
    let n = reply_slots_of_this_process();
    assert!(n <= 64, "{n} reply slots left after 90 concurrent asks");
    // Abandoned asks beyond the pool (timed out before their answers) leave nothing behind.
    let threads: Vec<_> = (0..90u64)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                addr.ask_timeout(|reply| Q::Echo { n: i, ms: 600, reply }, Duration::from_millis(200))
            })
        })
        .collect();
    for t in threads {
        assert!(matches!(t.join().unwrap(), Err(AskError::Timeout)));
    }
    let n = reply_slots_of_this_process();
    assert!(n <= 64, "{n} reply slots left after 90 abandoned asks");
}

#[test]
fn an_ask_that_is_never_answered_is_gone_when_the_answerer_ends_and_the_slot_serves_again() {
    let _g = serial();
    let s = Server::start();
    let addr = s.addr();
    // The slot's answerer drops the ReplyTo: the ask waits until its deadline.
    let t0 = Instant::now();
    let r: Result<u64, AskError> = addr.ask_timeout(Q::Ignore, Duration::from_millis(200));
    assert!(matches!(r, Err(AskError::Timeout)), "{r:?}");
    assert!(t0.elapsed() >= Duration::from_millis(200));
    assert_eq!(addr.ask(|reply| Q::Echo { n: 5, ms: 0, reply }).unwrap(), 5);
    // Asking a process that has ended: Gone at once, and the slot still serves.
    let mut dead = Process::new(echo_server()).start().unwrap();
    let dead_addr = dead.addr::<Q>();
    dead_addr.send(&Q::Stop).unwrap();
    dead.join_timeout(Duration::from_secs(20)).unwrap();
    let r: Result<u64, AskError> = dead_addr.ask_timeout(Q::Ignore, Duration::from_secs(20));
    assert!(matches!(r, Err(AskError::Gone)), "{r:?}");
    assert_eq!(addr.ask(|reply| Q::Echo { n: 6, ms: 0, reply }).unwrap(), 6);
}

#[multiproc::worker]
fn ask_from_a_child(server: Addr<Q>, rounds: u64) -> u64 {
    (0..rounds)
        .map(|i| server.ask(|reply| Q::Echo { n: i, ms: 0, reply }).unwrap())
        .sum()
}

#[test]
fn a_forked_child_uses_reply_slots_of_its_own() {
    let _g = serial();
    let s = Server::start();
    let addr = s.addr();
    // The parent's pool has slots (one is lent while the child forks, from another thread).
    assert_eq!(addr.ask(|reply| Q::Echo { n: 1, ms: 0, reply }).unwrap(), 1);
    let busy = {
        let addr = addr.clone();
        std::thread::spawn(move || addr.ask(|reply| Q::Echo { n: 2, ms: 500, reply }).unwrap())
    };
    for m in [StartMethod::Fork, StartMethod::ForkServer, StartMethod::Spawn] {
        let mut p = Process::new(ask_from_a_child(addr.clone(), 200))
            .start_method(m)
            .start()
            .unwrap();
        assert_eq!(
            p.join_timeout(Duration::from_secs(60)).unwrap(),
            (0..200).sum::<u64>(),
            "{m:?}"
        );
    }
    assert_eq!(busy.join().unwrap(), 2);
    assert_eq!(addr.ask(|reply| Q::Echo { n: 3, ms: 0, reply }).unwrap(), 3);
}
