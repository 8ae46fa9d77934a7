//! The `queue` block of `pyroscope.write`: a durable on-disk queue between
//! the receiver and the endpoints.
//!
//! An append is acknowledged once its downstream request is in the log
//! ([`crate::storage`]; fsynced first under `sync = "always"`), whatever
//! the backends do. Each endpoint has its own sender, on a thread of its
//! own (see [`sender::start`]), and its own position in the log: it reads
//! records in order, keeps up to `max_in_flight` requests going, retries
//! transient failures until the record's `max_age`, and moves its position
//! past every record delivered or given up on. Positions are checkpointed to `POSITIONS` every second,
//! and a segment is deleted once every endpoint's position has passed it.
//! After a crash, records past the last checkpoint are sent again: delivery
//! is at least once.
//!
//! Layout: [`entry`] stores a request, [`owner`] is the queue's side of the
//! log's writer thread (admission when full, accounting, checkpoints,
//! deleting delivered segments), [`sender`] is one endpoint's loop,
//! [`status`] reads a queue directory for `pyroscope-relay queue status`.

mod entry;
pub mod metrics;
mod owner;
mod progress;
mod sender;
pub mod status;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use super::endpoint::Endpoint;
use super::outgoing::Request;
use super::{Metrics, WriteError};
use crate::codec::Code;
use crate::pipeline::AppendError;
use crate::runtime::Health;
use crate::storage::{Log, LogOptions, StorageError, SyncPolicy, load_positions};
use metrics::{ComponentQueueMetrics, DropReason};
use owner::QueueOwner;
use progress::Progress;

/// Holds the id of the component whose queue a directory is.
pub(crate) const MARKER_FILE: &str = "QUEUE";

/// What to do with an append when the queue is at `max_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Refuse it (`429` / `resource_exhausted`).
    Reject,
    /// Delete the oldest queued data to make room, and count it.
    DropOldest,
}

/// The `queue` block.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueArguments {
    pub max_size: u64,
    pub max_age: Duration,
    pub when_full: WhenFull,
    pub sync: SyncPolicy,
    pub max_in_flight: usize,
    /// 0: one queued request per downstream request.
    pub max_batch_bytes: u64,
    /// How long a process that is exiting keeps sending its backlog before
    /// it stops (0: it stops at once; the backlog stays on disk).
    pub drain_timeout: Duration,
}

impl Default for QueueArguments {
    fn default() -> Self {
        Self {
            max_size: 1 << 30,
            max_age: Duration::from_secs(24 * 3600),
            when_full: WhenFull::Reject,
            sync: SyncPolicy::Always,
            max_in_flight: 8,
            max_batch_bytes: 0,
            drain_timeout: Duration::ZERO,
        }
    }
}

/// How long an `/ingest` client is told to wait when the queue is full.
const RETRY_AFTER_FULL: Duration = Duration::from_secs(5);

/// State shared by the queue's appenders, its senders and its writer-thread
/// owner.
pub(super) struct Shared {
    component_id: String,
    dir: PathBuf,
    settings: ArcSwap<QueueArguments>,
    /// The endpoints being sent to, in config order.
    endpoints: Mutex<Vec<Arc<Progress>>>,
    metrics: ComponentQueueMetrics,
    families: Arc<Metrics>,
    health: Health,
    /// The size at which segments are closed.
    segment_size: u64,
}

impl Shared {
    fn endpoints(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Progress>>> {
        self.endpoints.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct SenderTask {
    progress: Arc<Progress>,
    stop: watch::Sender<bool>,
    running: sender::Running,
}

/// A running queue.
pub(in crate::write) struct Queue {
    shared: Arc<Shared>,
    log: Arc<Log>,
    senders: Mutex<Vec<SenderTask>>,
}

impl Queue {
    /// Opens (recovering) the queue in `dir` and starts one sender per
    /// endpoint, each from its checkpointed position.
    pub fn open(
        component_id: &str,
        dir: &Path,
        args: &QueueArguments,
        endpoints: &[Arc<Endpoint>],
        families: Arc<Metrics>,
        health: Health,
    ) -> Result<Queue, WriteError> {
        let fail = |e: StorageError| WriteError::Queue {
            dir: dir.display().to_string(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(StorageError::io("creating", dir, e)))?;
        let metrics = families.queue.component(component_id);
        let checkpoint = load_positions(dir);
        let mut progress: Vec<Arc<Progress>> = Vec::new();
        for key in endpoint_keys(endpoints) {
            let start = checkpoint.get(&key).copied();
            let m = families.queue.endpoint(component_id, &key);
            progress.push(Arc::new(Progress::new(key, start, m)));
        }
        // Endpoints that left the config while the relay was stopped.
        let gone: Vec<Arc<Progress>> = checkpoint
            .iter()
            .filter(|(k, _)| !progress.iter().any(|p| &p.key == *k))
            .map(|(k, &pos)| {
                let m = families.queue.endpoint(component_id, k);
                Arc::new(Progress::new(k.clone(), Some(pos), m))
            })
            .collect();
        let shared = Arc::new(Shared {
            component_id: component_id.to_owned(),
            dir: dir.to_owned(),
            settings: ArcSwap::from_pointee(args.clone()),
            endpoints: Mutex::new(progress.clone()),
            metrics: metrics.clone(),
            families: Arc::clone(&families),
            health,
            segment_size: segment_size(args.max_size),
        });
        let mut options = LogOptions::new(entry::MAGIC, shared.segment_size);
        options.sync = args.sync;
        options.thread_name = "queue-writer";
        let fsync_metrics = metrics.clone();
        options.fsync_observer = Some(Arc::new(move |took| fsync_metrics.observe_fsync(took)));
        let counted: Vec<Arc<Progress>> = progress.iter().chain(&gone).cloned().collect();
        let (log, recovery) = Log::open(
            dir,
            options,
            |w| {
                let counts = entry::counts(w.meta).unwrap_or((1, 0));
                for p in &counted {
                    p.recovered(w.id, w.arrival_nanos, counts);
                }
            },
            Box::new(QueueOwner::new(Arc::clone(&shared))),
        )
        .map_err(fail)?;
        if recovery.corrupt > 0 {
            metrics.corrupt.inc_by(recovery.corrupt);
            tracing::warn!(
                component_id,
                records = recovery.corrupt,
                "queue skipped damaged records"
            );
        }
        for p in &gone {
            let (profiles, _) = p.pending();
            p.metrics.dropped(DropReason::EndpointRemoved, profiles);
            families.queue.remove_endpoint(component_id, &p.key);
            tracing::warn!(component_id, endpoint = %p.key, profiles, "endpoint left the config while stopped; its queued profiles are dropped");
        }
        let marker = dir.join(MARKER_FILE);
        std::fs::write(&marker, component_id)
            .map_err(|e| fail(StorageError::io("writing", &marker, e)))?;
        let log = Arc::new(log);
        // The gauges show the backlog found on disk from the start, not
        // from the writer's first tick.
        let now = crate::telemetry::civil_time::unix_nanos(std::time::SystemTime::now());
        for p in &progress {
            if p.cap_at(log.next_id()) {
                tracing::warn!(component_id, endpoint = %p.key, next_id = log.next_id(), "queue checkpoint was ahead of the log (damage or a power loss at its end); resuming at the log's end");
            }
            p.start_at(&log);
            p.publish_gauges(now);
        }
        let queue = Queue {
            shared,
            log,
            senders: Mutex::new(Vec::new()),
        };
        for (p, ep) in progress.into_iter().zip(endpoints) {
            queue.spawn_sender(p, Arc::clone(ep));
        }
        tracing::info!(component_id, dir = %dir.display(), pending_from = ?checkpoint, "queue opened");
        Ok(queue)
    }

    fn spawn_sender(&self, progress: Arc<Progress>, endpoint: Arc<Endpoint>) {
        progress.endpoint.store(Some(endpoint));
        let (stop, stopped) = watch::channel(false);
        let running = sender::start(
            Arc::clone(&self.shared),
            Arc::clone(&self.log),
            Arc::clone(&progress),
            stopped,
        );
        self.tasks().push(SenderTask {
            progress,
            stop,
            running,
        });
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, Vec<SenderTask>> {
        self.senders.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// New settings and endpoints. A kept endpoint (same URL) keeps its
    /// position and gets the new client; a new one starts at the end of the
    /// queue; a removed one has its pending profiles dropped and counted.
    pub async fn update(&self, args: &QueueArguments, endpoints: &[Arc<Endpoint>]) {
        let old = self.shared.settings.swap(Arc::new(args.clone()));
        if old.sync != args.sync || old.max_size != args.max_size {
            tracing::info!(component_id = %self.shared.component_id, "queue sync and segment size changes apply to new segments");
        }
        self.log.set_sync(args.sync);
        let keys = endpoint_keys(endpoints);
        let removed: Vec<SenderTask> = {
            let mut tasks = self.tasks();
            let (keep, removed) = std::mem::take(&mut *tasks)
                .into_iter()
                .partition(|t| keys.contains(&t.progress.key));
            *tasks = keep;
            removed
        };
        for t in removed {
            let _ = t.stop.send(true);
            t.running.stopped().await;
            self.shared.endpoints().retain(|p| p.key != t.progress.key);
            let (profiles, _) = t.progress.pending();
            t.progress
                .metrics
                .dropped(DropReason::EndpointRemoved, profiles);
            self.shared
                .families
                .queue
                .remove_endpoint(&self.shared.component_id, &t.progress.key);
            tracing::warn!(component_id = %self.shared.component_id, endpoint = %t.progress.key, profiles, "endpoint removed from the config; its queued profiles are dropped");
        }
        for (key, ep) in keys.into_iter().zip(endpoints) {
            let existing = self
                .tasks()
                .iter()
                .find(|t| t.progress.key == key)
                .map(|t| Arc::clone(&t.progress));
            match existing {
                Some(p) => p.endpoint.store(Some(Arc::clone(ep))),
                None => {
                    let m = self
                        .shared
                        .families
                        .queue
                        .endpoint(&self.shared.component_id, &key);
                    let p = {
                        // Under the lock the writer counts new records
                        // with, so none is missed or counted twice.
                        let mut list = self.shared.endpoints();
                        let p = Arc::new(Progress::new(key, Some(self.log.next_id()), m));
                        p.start_at(&self.log);
                        list.push(Arc::clone(&p));
                        p
                    };
                    self.spawn_sender(p, Arc::clone(ep));
                }
            }
        }
        self.log.request_maintenance();
    }

    /// Writes `request` to the queue; returns once it is durable (as `sync`
    /// says). Refusals keep their meaning for the client: full is `429` /
    /// `resource_exhausted`, a failing disk `503` / `unavailable`.
    pub async fn enqueue(&self, request: Request) -> Result<(), AppendError> {
        let profiles = request.profiles as u64;
        let result = self.log.append(vec![entry::encode(&request)]).await;
        result.map(drop).map_err(|e| {
            self.shared.metrics.rejected.inc_by(profiles);
            match e {
                StorageError::Refused(why) => AppendError {
                    retry_after: Some(RETRY_AFTER_FULL),
                    ..AppendError::from_http_status(429, format!("queue: {why}"))
                }
                .with_code(Code::ResourceExhausted),
                other => AppendError::from_http_status(503, format!("queue: {other}"))
                    .with_code(Code::Unavailable),
            }
        })
    }

    /// Pending profiles and bytes over every endpoint.
    fn pending(&self) -> (u64, u64) {
        self.shared
            .endpoints()
            .iter()
            .map(|p| p.pending())
            .fold((0, 0), |(p, b), (p2, b2)| (p + p2, b + b2))
    }

    /// For a process that is exiting: keeps sending until nothing is
    /// pending or `drain_timeout` has passed (a pod being scaled down may
    /// never get its volume back, so it sends what it can first).
    async fn drain(&self) {
        let limit = self.shared.settings.load().drain_timeout;
        let (profiles, bytes) = self.pending();
        if limit.is_zero() || profiles == 0 {
            return;
        }
        let component_id = &self.shared.component_id;
        tracing::info!(component_id, profiles, bytes, limit = ?limit, "sending the queue's backlog before exiting (drain_timeout)");
        let started = tokio::time::Instant::now();
        while self.pending().0 > 0 && started.elapsed() < limit {
            tokio::time::sleep(DRAIN_POLL).await;
        }
        let left = self.pending().0;
        tracing::info!(component_id, sent = profiles.saturating_sub(left), left, took = ?started.elapsed(), "queue drain ended");
    }

    /// Stops the senders (requests in flight are sent again on the next
    /// start), checkpoints every position and closes the log. `exiting`:
    /// the process is stopping, so the backlog is drained first (up to
    /// `drain_timeout`); a component removed by a reload stops at once.
    pub async fn shutdown(self, exiting: bool) {
        if exiting {
            self.drain().await;
        }
        let tasks = std::mem::take(&mut *self.tasks());
        for t in &tasks {
            let _ = t.stop.send(true);
        }
        for t in tasks {
            t.running.stopped().await;
        }
        self.log.maintain().await;
        let component_id = &self.shared.component_id;
        let dir = self.shared.dir.display();
        let left: BTreeMap<String, (u64, u64)> = self
            .shared
            .endpoints()
            .iter()
            .map(|p| (p.key.clone(), p.pending()))
            .filter(|(_, (profiles, _))| *profiles > 0)
            .collect();
        if left.is_empty() {
            tracing::info!(component_id, dir = %dir, "queue closed; nothing left to send");
        } else {
            for (endpoint, (profiles, bytes)) in &left {
                tracing::warn!(component_id, dir = %dir, endpoint, profiles, bytes, "queue closed with profiles not yet sent; they stay on disk and are sent when a relay starts on this storage path");
            }
        }
        self.shared
            .families
            .queue
            .remove_component(&self.shared.component_id);
        // Dropping the last handle joins the writer thread.
        drop(self.log);
    }
}

/// How often a drain checks whether the backlog is empty.
const DRAIN_POLL: Duration = Duration::from_millis(50);

/// Each endpoint's name in the queue: its redacted URL, with `#2`, `#3`
/// ... for repeats.
fn endpoint_keys(endpoints: &[Arc<Endpoint>]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(endpoints.len());
    for ep in endpoints {
        let mut key = ep.label.clone();
        let mut n = 1;
        while out.contains(&key) {
            n += 1;
            key = format!("{}#{n}", ep.label);
        }
        out.push(key);
    }
    out
}

/// Segments of `max_size / 8`, between 64 KiB and 64 MiB.
fn segment_size(max_size: u64) -> u64 {
    (max_size / 8).clamp(64 << 10, 64 << 20)
}
