//! The random steps of the model test.

use proptest::prelude::*;
use std::time::Duration;

use super::super::SyncPolicy;
use super::super::disk::{Fault, Op as DiskOp};

#[derive(Debug, Clone)]
pub(super) enum Tail {
    /// Cut the last segment this many thousandths of the way from its
    /// durable end to its end.
    Cut(u16),
    /// Bytes of zeros past the end (the size grew, the data never came).
    Zeros(usize),
    /// Random bytes past the end.
    Garbage(Vec<u8>),
}

#[derive(Debug, Clone)]
pub(super) enum Step {
    /// Concurrent appends of one record each (they share group commits).
    Append(Vec<usize>),
    /// One append of several records.
    AppendMany(Vec<usize>),
    /// The next call of this disk operation fails.
    Fail(DiskOp, Fault),
    /// The reader reads up to this many records.
    Deliver(usize),
    /// The reader's position is saved to POSITIONS.
    Checkpoint,
    /// The process dies, optionally in the middle of a write (part of a
    /// batch reaches the file and cutting it off fails), and the last
    /// segment's undurable tail is damaged; then the log is reopened,
    /// first once on a failing disk when `reopen_fault` says so.
    Crash {
        mid_write: Option<(u16, Vec<usize>)>,
        tail: Option<Tail>,
        reopen_fault: Option<(DiskOp, Fault)>,
    },
}

fn body_size() -> impl Strategy<Value = usize> {
    prop_oneof![8 => 0usize..1200, 1 => 3000usize..6000]
}

fn fault() -> impl Strategy<Value = (DiskOp, Fault)> {
    let errno = prop_oneof![Just(libc::EIO), Just(libc::ENOSPC)].prop_map(Fault::Errno);
    prop_oneof![
        3 => errno.clone().prop_map(|f| (DiskOp::Write, f)),
        2 => (0u16..1000).prop_map(|permille| (DiskOp::Write, Fault::Short { permille })),
        3 => Just((DiskOp::SyncData, Fault::Errno(libc::EIO))),
        1 => errno.clone().prop_map(|f| (DiskOp::Create, f)),
        1 => Just((DiskOp::SyncAll, Fault::Errno(libc::EIO))),
        1 => Just((DiskOp::SyncDir, Fault::Errno(libc::EIO))),
        1 => Just((DiskOp::SetLen, Fault::Errno(libc::EIO))),
        1 => Just((DiskOp::Rename, Fault::Errno(libc::EIO))),
        1 => Just((DiskOp::Remove, Fault::Errno(libc::EIO))),
        1 => Just((DiskOp::Allocate, Fault::Errno(libc::ENOSPC))),
    ]
}

fn tail() -> impl Strategy<Value = Tail> {
    prop_oneof![
        (0u16..=1000).prop_map(Tail::Cut),
        (1usize..200).prop_map(Tail::Zeros),
        proptest::collection::vec(any::<u8>(), 1..200).prop_map(Tail::Garbage),
    ]
}

fn step(always: bool) -> impl Strategy<Value = Step> {
    // Under `Every` an acknowledged record is not durable yet, so only a
    // process crash is modelled, not a torn write.
    let (mid_write, tail) = if always {
        let mid_write = (0u16..1000, proptest::collection::vec(body_size(), 1..4));
        (
            proptest::option::weighted(0.3, mid_write).boxed(),
            proptest::option::weighted(0.6, tail()).boxed(),
        )
    } else {
        (Just(None).boxed(), Just(None).boxed())
    };
    let crash = (mid_write, tail, proptest::option::weighted(0.2, fault())).prop_map(
        |(mid_write, tail, reopen_fault)| Step::Crash {
            mid_write,
            tail,
            reopen_fault,
        },
    );
    prop_oneof![
        8 => proptest::collection::vec(body_size(), 1..5).prop_map(Step::Append),
        1 => proptest::collection::vec(body_size(), 2..5).prop_map(Step::AppendMany),
        3 => fault().prop_map(|(op, f)| Step::Fail(op, f)),
        3 => (1usize..8).prop_map(Step::Deliver),
        1 => Just(Step::Checkpoint),
        1 => crash,
    ]
}

pub(super) fn case() -> impl Strategy<Value = (SyncPolicy, Vec<Step>)> {
    prop_oneof![
        4 => Just(SyncPolicy::Always),
        1 => Just(SyncPolicy::Every(Duration::from_millis(5))),
    ]
    .prop_flat_map(|sync| {
        let steps = proptest::collection::vec(step(sync == SyncPolicy::Always), 1..40);
        (Just(sync), steps)
    })
}
