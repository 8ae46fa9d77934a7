//! The `pyroscope_write_queue_*` families (docs/components.md lists them).

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

const COMPONENT_PATH: &str = "/";
/// fsync latency, 50 µs to 10 s.
const FSYNC_BUCKETS: [f64; 14] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 10.0,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabels {
    component_id: String,
    component_path: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
    component_id: String,
    component_path: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    endpoint: String,
    reason: &'static str,
    component_id: String,
    component_path: String,
}

/// Why queued profiles were dropped for an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    MaxAge,
    DropOldest,
    EndpointRemoved,
    Corrupt,
}

impl DropReason {
    const ALL: [DropReason; 4] = [
        DropReason::MaxAge,
        DropReason::DropOldest,
        DropReason::EndpointRemoved,
        DropReason::Corrupt,
    ];

    fn label(self) -> &'static str {
        match self {
            DropReason::MaxAge => "max_age",
            DropReason::DropOldest => "drop_oldest",
            DropReason::EndpointRemoved => "endpoint_removed",
            DropReason::Corrupt => "corrupt",
        }
    }
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The queue families shared by every `pyroscope.write` of a process.
pub struct QueueFamilies {
    pending_profiles: Family<EndpointLabels, Gauge>,
    pending_bytes: Family<EndpointLabels, Gauge>,
    oldest_pending: Family<EndpointLabels, FloatGauge>,
    size_bytes: Family<ComponentLabels, Gauge>,
    max_size_bytes: Family<ComponentLabels, Gauge>,
    rejected: Family<ComponentLabels, Counter>,
    dropped: Family<DropLabels, Counter>,
    corrupt: Family<ComponentLabels, Counter>,
    fsync: Family<ComponentLabels, Histogram, fn() -> Histogram>,
}

fn fsync_histogram() -> Histogram {
    Histogram::new(FSYNC_BUCKETS)
}

impl QueueFamilies {
    pub fn register(registry: &mut Registry) -> Self {
        let f = Self {
            pending_profiles: Family::default(),
            pending_bytes: Family::default(),
            oldest_pending: Family::default(),
            size_bytes: Family::default(),
            max_size_bytes: Family::default(),
            rejected: Family::default(),
            dropped: Family::default(),
            corrupt: Family::default(),
            fsync: Family::new_with_constructor(fsync_histogram),
        };
        registry.register(
            "pyroscope_write_queue_pending_profiles",
            "Profiles on disk not yet delivered to the endpoint (or given up on).",
            f.pending_profiles.clone(),
        );
        registry.register(
            "pyroscope_write_queue_pending_bytes",
            "Profile bytes on disk not yet delivered to the endpoint.",
            f.pending_bytes.clone(),
        );
        registry.register(
            "pyroscope_write_queue_oldest_pending_seconds",
            "Age of the oldest profile not yet delivered to the endpoint (0 when none).",
            f.oldest_pending.clone(),
        );
        registry.register(
            "pyroscope_write_queue_size_bytes",
            "Disk bytes the queue's segment files take.",
            f.size_bytes.clone(),
        );
        registry.register(
            "pyroscope_write_queue_max_size_bytes",
            "The queue's max_size.",
            f.max_size_bytes.clone(),
        );
        registry.register(
            "pyroscope_write_queue_rejected_profiles",
            "Profiles refused because the queue was full or its disk failed.",
            f.rejected.clone(),
        );
        registry.register(
            "pyroscope_write_queue_dropped_profiles",
            "Queued profiles dropped for an endpoint without delivery, by reason.",
            f.dropped.clone(),
        );
        registry.register(
            "pyroscope_write_queue_corrupt_records",
            "Queue records skipped because their checksum or framing was damaged.",
            f.corrupt.clone(),
        );
        registry.register(
            "pyroscope_write_queue_fsync_duration_seconds",
            "Duration of the queue's fdatasync calls.",
            f.fsync.clone(),
        );
        f
    }

    pub(crate) fn component(&self, component_id: &str) -> ComponentQueueMetrics {
        let labels = component_labels(component_id);
        ComponentQueueMetrics {
            size_bytes: self.size_bytes.get_or_create_owned(&labels),
            max_size_bytes: self.max_size_bytes.get_or_create_owned(&labels),
            rejected: self.rejected.get_or_create_owned(&labels),
            corrupt: self.corrupt.get_or_create_owned(&labels),
            fsync: self.fsync.get_or_create_owned(&labels),
        }
    }

    pub(crate) fn endpoint(&self, component_id: &str, endpoint: &str) -> EndpointQueueMetrics {
        let labels = endpoint_labels(component_id, endpoint);
        let dropped = DropReason::ALL.map(|reason| {
            self.dropped.get_or_create_owned(&DropLabels {
                endpoint: endpoint.to_owned(),
                reason: reason.label(),
                component_id: component_id.to_owned(),
                component_path: COMPONENT_PATH.to_owned(),
            })
        });
        EndpointQueueMetrics {
            pending_profiles: self.pending_profiles.get_or_create_owned(&labels),
            pending_bytes: self.pending_bytes.get_or_create_owned(&labels),
            oldest_pending: self.oldest_pending.get_or_create_owned(&labels),
            dropped,
        }
    }

    /// Removes an endpoint's series (the endpoint left the config).
    pub(crate) fn remove_endpoint(&self, component_id: &str, endpoint: &str) {
        let labels = endpoint_labels(component_id, endpoint);
        self.pending_profiles.remove(&labels);
        self.pending_bytes.remove(&labels);
        self.oldest_pending.remove(&labels);
    }

    /// Removes the component's gauges (the queue was removed or the
    /// component stopped); counters stay until the component is deleted.
    pub(crate) fn remove_component(&self, component_id: &str) {
        let labels = component_labels(component_id);
        self.size_bytes.remove(&labels);
        self.max_size_bytes.remove(&labels);
    }
}

fn component_labels(component_id: &str) -> ComponentLabels {
    ComponentLabels {
        component_id: component_id.to_owned(),
        component_path: COMPONENT_PATH.to_owned(),
    }
}

fn endpoint_labels(component_id: &str, endpoint: &str) -> EndpointLabels {
    EndpointLabels {
        endpoint: endpoint.to_owned(),
        component_id: component_id.to_owned(),
        component_path: COMPONENT_PATH.to_owned(),
    }
}

#[derive(Clone)]
pub(crate) struct ComponentQueueMetrics {
    pub size_bytes: Gauge,
    pub max_size_bytes: Gauge,
    pub rejected: Counter,
    pub corrupt: Counter,
    pub fsync: Histogram,
}

impl ComponentQueueMetrics {
    pub fn observe_fsync(&self, took: Duration) {
        self.fsync.observe(took.as_secs_f64());
    }
}

#[derive(Clone)]
pub(crate) struct EndpointQueueMetrics {
    pub pending_profiles: Gauge,
    pub pending_bytes: Gauge,
    pub oldest_pending: FloatGauge,
    dropped: [Counter; 4],
}

impl EndpointQueueMetrics {
    pub fn dropped(&self, reason: DropReason, profiles: u64) {
        let i = DropReason::ALL
            .iter()
            .position(|r| *r == reason)
            .expect("every reason");
        self.dropped[i].inc_by(profiles);
    }
}
