//! One endpoint's place in the queue, shared by its sender task (which
//! moves it) and the log's writer thread (which counts new records for it,
//! checkpoints it, and deletes what every endpoint has passed).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use arc_swap::ArcSwapOption;

use super::metrics::EndpointQueueMetrics;
use crate::storage::{Cursor, Log, ReadAhead};
use crate::write::endpoint::Endpoint;

/// Where the sender reads next.
pub(super) struct ReadState {
    pub cursor: Cursor,
    pub ahead: ReadAhead,
    /// One past the id of the last record read (or skipped).
    pub next_id: u64,
}

pub(in crate::write) struct Progress {
    /// The endpoint's redacted URL: its name in metrics and checkpoints.
    pub key: String,
    pub endpoint: ArcSwapOption<Endpoint>,
    read: Mutex<ReadState>,
    /// Every record below this id was delivered or given up on: what is
    /// checkpointed.
    position: AtomicU64,
    pending_profiles: AtomicI64,
    pending_bytes: AtomicI64,
    /// Arrival of the oldest record not yet delivered (`i64::MAX`: none).
    pub oldest_arrival: AtomicI64,
    /// Set once the reader has been placed in the log.
    started: AtomicBool,
    pub metrics: EndpointQueueMetrics,
}

impl Progress {
    /// `start`: the checkpointed position, or `None` for an endpoint the
    /// queue has not seen (it starts at the oldest record on disk).
    pub fn new(key: String, start: Option<u64>, metrics: EndpointQueueMetrics) -> Self {
        let start = start.unwrap_or(0);
        Self {
            key,
            endpoint: ArcSwapOption::empty(),
            read: Mutex::new(ReadState {
                cursor: Cursor {
                    segment: 0,
                    offset: 0,
                },
                ahead: ReadAhead::default(),
                next_id: start,
            }),
            position: AtomicU64::new(start),
            pending_profiles: AtomicI64::new(0),
            pending_bytes: AtomicI64::new(0),
            oldest_arrival: AtomicI64::new(i64::MAX),
            started: AtomicBool::new(false),
            metrics,
        }
    }

    /// A record found when the log was opened.
    pub fn recovered(&self, id: u64, arrival_nanos: i64, counts: (u64, u64)) {
        if id >= self.position() {
            self.add_pending(counts);
            self.oldest_arrival
                .fetch_min(arrival_nanos, Ordering::Relaxed);
        }
    }

    /// A checkpoint ahead of the log (damage at its end, or a power loss
    /// under a sync period, took ids back): the position moves back to the
    /// log's next id, or the records written from now on would be skipped
    /// as already delivered. Returns whether it moved.
    pub fn cap_at(&self, next_id: u64) -> bool {
        if self.position() <= next_id {
            return false;
        }
        self.set_position(next_id);
        self.lock_read().next_id = next_id;
        true
    }

    /// Places the reader at its position (or the oldest record after it).
    pub fn start_at(&self, log: &Log) {
        let mut read = self.lock_read();
        let position = self.position();
        if let Ok(cursor) = log.seek(position) {
            read.cursor = cursor;
        }
        self.started.store(true, Ordering::Release);
    }

    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    pub fn lock_read(&self) -> MutexGuard<'_, ReadState> {
        self.read.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn position(&self) -> u64 {
        self.position.load(Ordering::Acquire)
    }

    pub fn set_position(&self, id: u64) {
        self.position.store(id, Ordering::Release);
    }

    pub fn add_pending(&self, (profiles, bytes): (u64, u64)) {
        self.pending_profiles
            .fetch_add(profiles as i64, Ordering::Relaxed);
        self.pending_bytes
            .fetch_add(bytes as i64, Ordering::Relaxed);
    }

    pub fn remove_pending(&self, (profiles, bytes): (u64, u64)) {
        self.pending_profiles
            .fetch_sub(profiles as i64, Ordering::Relaxed);
        self.pending_bytes
            .fetch_sub(bytes as i64, Ordering::Relaxed);
    }

    /// Sets the endpoint's pending gauges; `now_nanos` for the oldest age.
    pub fn publish_gauges(&self, now_nanos: i64) {
        let (profiles, bytes) = self.pending();
        self.metrics.pending_profiles.set(profiles as i64);
        self.metrics.pending_bytes.set(bytes as i64);
        let oldest = self.oldest_arrival.load(Ordering::Relaxed);
        let age = if oldest == i64::MAX || profiles == 0 {
            0.0
        } else {
            now_nanos.saturating_sub(oldest).max(0) as f64 / 1e9
        };
        self.metrics.oldest_pending.set(age);
    }

    /// Pending profiles and bytes, never below zero.
    pub fn pending(&self) -> (u64, u64) {
        let p = self.pending_profiles.load(Ordering::Relaxed).max(0) as u64;
        let b = self.pending_bytes.load(Ordering::Relaxed).max(0) as u64;
        (p, b)
    }
}
