//! One endpoint's sender: reads the queue in order from its position,
//! keeps up to `max_in_flight` requests going, and moves the position past
//! what was delivered or given up on.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};

use super::metrics::DropReason;
use super::progress::Progress;
use super::{Shared, entry};
use crate::codec::Code;
use crate::pipeline::AppendError;
use crate::storage::{Log, Next, RecordBytes};
use crate::telemetry::civil_time::unix_nanos;
use crate::write::outgoing::{Request, Target};
use crate::write::send::send;

/// How often an idle sender looks again (max_age, a settings change).
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// A sender started by [`start`].
pub(super) struct Running {
    done: oneshot::Receiver<()>,
}

impl Running {
    /// Returns once the sender has returned (after its stop signal).
    pub async fn stopped(self) {
        let _ = self.done.await;
    }
}

/// Starts an endpoint's sender on a thread of its own (`queue-send`) with a
/// current-thread runtime, where its requests and their connections run
/// too: on the process's multi-thread runtime the wake-ups between the
/// sender and its connections' tasks crossed threads, and a backlog drained
/// at 68 k profiles/s instead of 103 k (docs/performance.md, "The durable
/// queue"). If no runtime or thread can be had it runs on the current
/// runtime instead.
pub(super) fn start(
    shared: Arc<Shared>,
    log: Arc<Log>,
    progress: Arc<Progress>,
    stop: watch::Receiver<bool>,
) -> Running {
    let (finished, done) = oneshot::channel();
    let sender: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
        run(shared, log, progress, stop).await;
        let _ = finished.send(());
    });
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => {
            // The future goes over a channel rather than into the closure so
            // that it is still ours if the thread cannot be started.
            let (hand, handed) = std::sync::mpsc::sync_channel(1);
            let thread = std::thread::Builder::new()
                .name("queue-send".into())
                .spawn(move || {
                    if let Ok(sender) = handed.recv() {
                        runtime.block_on(sender);
                    }
                });
            match thread {
                Ok(_) => {
                    let _ = hand.send(sender);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start a queue sender thread; sending from the main runtime");
                    tokio::spawn(sender);
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot start a runtime for a queue sender; sending from the main runtime");
            tokio::spawn(sender);
        }
    }
    Running { done }
}

/// Records that go out as one downstream request.
struct Unit {
    first_id: u64,
    arrival_nanos: i64,
    request: Request,
    /// Profiles and bytes, for the pending counters.
    counts: (u64, u64),
}

pub(super) async fn run(
    shared: Arc<Shared>,
    log: Arc<Log>,
    progress: Arc<Progress>,
    mut stop: watch::Receiver<bool>,
) {
    let mut written = log.watch();
    let mut in_flight = FuturesUnordered::new();
    // First id of each unit in flight -> its arrival.
    let mut outstanding: BTreeMap<u64, i64> = BTreeMap::new();
    // One timer for the whole loop: a fresh `sleep` per pass put a timer
    // in and out of the wheel, with a clock read, for every request.
    let mut idle_check = tokio::time::interval(IDLE_CHECK);
    idle_check.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let settings = shared.settings.load_full();
        while in_flight.len() < settings.max_in_flight.max(1) {
            let Some(unit) = next_unit(&shared, &log, &progress) else {
                break;
            };
            outstanding.insert(unit.first_id, unit.arrival_nanos);
            in_flight.push(deliver(Arc::clone(&shared), Arc::clone(&progress), unit));
        }
        publish(&progress, &outstanding);
        tokio::select! {
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                outstanding.remove(&done);
                // Every other finished one too, before the next pass.
                while let Some(Some(done)) = in_flight.next().now_or_never() {
                    outstanding.remove(&done);
                }
            }
            changed = written.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = idle_check.tick() => {}
            _ = stop.changed() => return,
        }
    }
}

/// Moves the checkpointable position and the oldest-pending time.
fn publish(progress: &Progress, outstanding: &BTreeMap<u64, i64>) {
    let read_next = progress.lock_read().next_id;
    match outstanding.first_key_value() {
        Some((&id, &arrival)) => {
            progress.set_position(id);
            progress.oldest_arrival.store(arrival, Ordering::Relaxed);
        }
        None => {
            progress.set_position(read_next);
            if progress.pending().0 == 0 {
                progress.oldest_arrival.store(i64::MAX, Ordering::Relaxed);
            }
        }
    }
}

/// Reads the next record(s) to send. Records older than `max_age` and
/// damaged ones are skipped and counted here; with `max_batch_bytes`,
/// consecutive pushes with the same forwarded headers are merged.
fn next_unit(shared: &Shared, log: &Log, progress: &Progress) -> Option<Unit> {
    let settings = shared.settings.load();
    let mut read = progress.lock_read();
    let mut unit: Option<Unit> = None;
    loop {
        let before = read.cursor;
        let next = {
            let read = &mut *read;
            log.read_next(&mut read.cursor, &mut read.ahead)
        };
        let record = match next {
            Ok(Next::Record(r)) => r,
            Ok(Next::CaughtUp) => return unit,
            Ok(Next::Corrupt(why)) => {
                shared.metrics.corrupt.inc();
                progress.metrics.dropped(DropReason::Corrupt, 1);
                tracing::warn!(component_id = %shared.component_id, endpoint = %progress.key, reason = %why, "skipping a damaged queue record");
                continue;
            }
            Err(e) => {
                tracing::warn!(component_id = %shared.component_id, endpoint = %progress.key, error = %e, "cannot read the queue");
                return unit;
            }
        };
        let head = record.head();
        if head.id < read.next_id {
            // Before the position (a cursor placed at a segment start).
            continue;
        }
        let Some((request, counts)) = decode(shared, progress, &record) else {
            read.next_id = head.id + 1;
            continue;
        };
        let max_age_nanos = i64::try_from(settings.max_age.as_nanos()).unwrap_or(i64::MAX);
        if unix_nanos(SystemTime::now()).saturating_sub(head.arrival_nanos) > max_age_nanos {
            read.next_id = head.id + 1;
            progress.remove_pending(counts);
            progress.metrics.dropped(DropReason::MaxAge, counts.0);
            continue;
        }
        match &mut unit {
            None => {
                read.next_id = head.id + 1;
                unit = Some(Unit {
                    first_id: head.id,
                    arrival_nanos: head.arrival_nanos,
                    request,
                    counts,
                });
            }
            Some(u)
                if settings.max_batch_bytes > 0
                    && u.request.can_merge(&request)
                    && (u.request.body.len() + request.body.len()) as u64
                        <= settings.max_batch_bytes =>
            {
                read.next_id = head.id + 1;
                u.request.merge(request);
                u.counts.0 += counts.0;
                u.counts.1 += counts.1;
            }
            Some(_) => {
                read.cursor = before;
                return unit;
            }
        }
        let mergeable = settings.max_batch_bytes > 0
            && unit
                .as_ref()
                .is_some_and(|u| u.request.target == Target::Push);
        if !mergeable {
            return unit;
        }
    }
}

fn decode(
    shared: &Shared,
    progress: &Progress,
    record: &RecordBytes,
) -> Option<(Request, (u64, u64))> {
    let head = record.head();
    match entry::decode(head.meta, record.body()) {
        Ok(request) => {
            let counts = (request.profiles as u64, request.bytes as u64);
            Some((request, counts))
        }
        Err(e) => {
            let counts = entry::counts(head.meta).unwrap_or((1, 0));
            shared.metrics.corrupt.inc();
            progress.remove_pending(counts);
            progress.metrics.dropped(DropReason::Corrupt, counts.0);
            tracing::warn!(component_id = %shared.component_id, endpoint = %progress.key, id = head.id, error = %e, "skipping an unreadable queue record");
            None
        }
    }
}

/// Sends one unit with retries until its `max_age`; returns its first id.
async fn deliver(shared: Arc<Shared>, progress: Arc<Progress>, unit: Unit) -> u64 {
    let max_age = shared.settings.load().max_age;
    let age = Duration::from_nanos(
        unix_nanos(SystemTime::now())
            .saturating_sub(unit.arrival_nanos)
            .max(0) as u64,
    );
    let deadline = Instant::now() + max_age.saturating_sub(age);
    let result = match progress.endpoint.load_full() {
        Some(ep) => match unit.request.for_endpoint(&ep) {
            Ok(prepared) => send(&ep, unit.request.kind(), prepared, Some(deadline), true).await,
            Err(e) => Err(e),
        },
        None => Err(AppendError::new(Code::Internal, "endpoint not set")),
    };
    progress.remove_pending(unit.counts);
    if let Err(e) = result {
        if Instant::now() >= deadline {
            progress.metrics.dropped(DropReason::MaxAge, unit.counts.0);
        }
        tracing::warn!(component_id = %shared.component_id, endpoint = %progress.key, error = %e.message, "queued profiles dropped");
    }
    unit.first_id
}
