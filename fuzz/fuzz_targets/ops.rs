//! Every message and op decoder of the protocol on one body: nothing may panic, and whatever
//! decodes must encode again and decode to the same message.
#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use multiproc::wire::manager_ops::{ManagerOp, ManagerReply};
use multiproc::wire::proto::{Cast, ChildInit, FromHub, HubError, ObjOp, ObjectKind, Op, ToForkServer, ToHub, Value};
use multiproc::wire::queue_ops::QueueOp;
use multiproc::wire::sync_ops::{SyncOp, SyncReply};
use multiproc::wire::{decode, encode, HEADER_LEN};
use serde::de::DeserializeOwned;
use serde::Serialize;

fn check<T: Serialize + DeserializeOwned + Debug>(body: &[u8]) {
    if let Ok(msg) = decode::<T>(body) {
        let again = encode(&msg).expect("a decoded message must encode");
        let back: T = decode(&again[HEADER_LEN..]).expect("a re-encoded message must decode");
        assert_eq!(format!("{msg:?}"), format!("{back:?}"));
    }
}

fuzz_target!(|body: &[u8]| {
    check::<ToHub>(body);
    check::<FromHub>(body);
    check::<ToForkServer>(body);
    check::<Op>(body);
    check::<Cast>(body);
    check::<ObjOp>(body);
    check::<ObjectKind>(body);
    check::<SyncOp>(body);
    check::<QueueOp>(body);
    check::<ManagerOp>(body);
    check::<SyncReply>(body);
    check::<ManagerReply>(body);
    check::<Value>(body);
    check::<HubError>(body);
    check::<ChildInit>(body);
});
