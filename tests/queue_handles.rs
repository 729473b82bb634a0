//! Queue handles travel: inside a mailbox message and through another queue, to a process
//! that did not exist when the queue was created (the hub keeps the queue alive while a handle
//! is in flight).

use std::time::Duration;

use multiproc::{mailbox, Process, Queue};

#[multiproc::worker]
fn reply_on_queue_from_mailbox() {
    // The reply queue arrives in a message, after this process started.
    let reply: Queue<u32> = mailbox::<Queue<u32>>().recv().unwrap();
    reply.put(7).unwrap();
}

#[multiproc::worker]
fn reply_on_queue_from_queue(jobs: Queue<Queue<u32>>) {
    // Each job is a queue to answer on.
    while let Ok(reply) = jobs.get_timeout(Duration::from_secs(10)) {
        reply.put(42).unwrap();
    }
}

#[test]
fn a_queue_handle_sent_in_a_message_still_works() {
    let mut child = Process::new(reply_on_queue_from_mailbox()).start().unwrap();
    let q: Queue<u32> = Queue::new().unwrap();
    child.addr::<Queue<u32>>().send(&q).unwrap();
    assert_eq!(q.get_timeout(Duration::from_secs(10)).unwrap(), 7);
    child.join().unwrap();
}

#[test]
fn a_queue_handle_sent_through_a_queue_still_works() {
    let jobs: Queue<Queue<u32>> = Queue::new().unwrap();
    let mut child = Process::new(reply_on_queue_from_queue(jobs.clone())).start().unwrap();
    for _ in 0..3 {
        let reply: Queue<u32> = Queue::new().unwrap();
        // The parent drops its own handle right after sending: the in-flight reference keeps
        // the queue alive until the child has it.
        jobs.put(reply.clone()).unwrap();
        assert_eq!(reply.get_timeout(Duration::from_secs(10)).unwrap(), 42);
    }
    jobs.close().unwrap();
    let _ = child.join_timeout(Duration::from_secs(20));
}
