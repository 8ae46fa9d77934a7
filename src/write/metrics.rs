//! The `pyroscope_write_*` metric families, registered in one place
//! (Alloy's families, listed in docs/components.md). Every series carries
//! `component_id` and `component_path="/"` as Alloy's controller adds them.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Latency buckets in seconds: Prometheus' default buckets, extended to
/// five minutes because `*_total` and `*_endpoint` include retries.
const LATENCY_BUCKETS: [f64; 15] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// The `endpoint` value of the `*_total` latency types.
const ALL_ENDPOINTS: &str = "-";
const COMPONENT_PATH: &str = "/";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
    component_id: String,
    component_path: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    endpoint: String,
    r#type: &'static str,
    component_id: String,
    component_path: String,
}

const LATENCY_TYPES: [&str; 6] = [
    "push_total",
    "push_endpoint",
    "push_downstream",
    "ingest_total",
    "ingest_endpoint",
    "ingest_downstream",
];

fn new_latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The families shared by every `pyroscope.write` component of a process.
pub struct Metrics {
    sent_bytes: Family<EndpointLabels, Counter>,
    sent_profiles: Family<EndpointLabels, Counter>,
    dropped_bytes: Family<EndpointLabels, Counter>,
    dropped_profiles: Family<EndpointLabels, Counter>,
    retries: Family<EndpointLabels, Counter>,
    latency: Family<LatencyLabels, Histogram, fn() -> Histogram>,
    /// The `queue` block's families.
    pub queue: super::queue::metrics::QueueFamilies,
    /// Endpoint label values created per component, so that a removed
    /// component's series can be dropped.
    created: Mutex<HashMap<String, HashSet<String>>>,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            sent_bytes: Family::default(),
            sent_profiles: Family::default(),
            dropped_bytes: Family::default(),
            dropped_profiles: Family::default(),
            retries: Family::default(),
            latency: Family::new_with_constructor(new_latency_histogram),
            queue: super::queue::metrics::QueueFamilies::register(registry),
            created: Mutex::new(HashMap::new()),
        };
        let counters = [
            (
                "pyroscope_write_sent_bytes",
                "Total number of profile bytes sent to the endpoint.",
                &m.sent_bytes,
            ),
            (
                "pyroscope_write_sent_profiles",
                "Total number of profiles sent to the endpoint.",
                &m.sent_profiles,
            ),
            (
                "pyroscope_write_dropped_bytes",
                "Total number of profile bytes dropped after failing to send them to the endpoint.",
                &m.dropped_bytes,
            ),
            (
                "pyroscope_write_dropped_profiles",
                "Total number of profiles dropped after failing to send them to the endpoint.",
                &m.dropped_profiles,
            ),
            (
                "pyroscope_write_retries",
                "Total number of retried requests to the endpoint.",
                &m.retries,
            ),
        ];
        for (name, help, family) in counters {
            registry.register(name, help, family.clone());
        }
        registry.register(
            "pyroscope_write_latency",
            "Write latency in seconds, by type: whole append (*_total), one endpoint with retries (*_endpoint) and one request (*_downstream).",
            m.latency.clone(),
        );
        m
    }

    /// Removes every series of `component_id` (call when the component is
    /// deleted from the config).
    pub fn remove_component(&self, component_id: &str) {
        let endpoints = self
            .created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(component_id)
            .unwrap_or_default();
        for endpoint in endpoints {
            let labels = endpoint_labels(component_id, &endpoint);
            for family in self.counter_families() {
                family.remove(&labels);
            }
            for ty in LATENCY_TYPES {
                self.latency
                    .remove(&latency_labels(component_id, &endpoint, ty));
            }
        }
    }

    fn counter_families(&self) -> [&Family<EndpointLabels, Counter>; 5] {
        [
            &self.sent_bytes,
            &self.sent_profiles,
            &self.dropped_bytes,
            &self.dropped_profiles,
            &self.retries,
        ]
    }

    fn remember(&self, component_id: &str, endpoint: &str) {
        self.created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(component_id.to_owned())
            .or_default()
            .insert(endpoint.to_owned());
    }

    fn histogram(&self, component_id: &str, endpoint: &str, ty: &'static str) -> Histogram {
        self.latency
            .get_or_create_owned(&latency_labels(component_id, endpoint, ty))
    }

    /// Handles for one endpoint of a component. `endpoint` is the redacted URL.
    pub(super) fn endpoint(&self, component_id: &str, endpoint: &str) -> EndpointMetrics {
        self.remember(component_id, endpoint);
        let labels = endpoint_labels(component_id, endpoint);
        let h = |ty| self.histogram(component_id, endpoint, ty);
        EndpointMetrics {
            sent_bytes: self.sent_bytes.get_or_create_owned(&labels),
            sent_profiles: self.sent_profiles.get_or_create_owned(&labels),
            dropped_bytes: self.dropped_bytes.get_or_create_owned(&labels),
            dropped_profiles: self.dropped_profiles.get_or_create_owned(&labels),
            retries: self.retries.get_or_create_owned(&labels),
            push: KindLatency {
                endpoint: h("push_endpoint"),
                downstream: h("push_downstream"),
            },
            ingest: KindLatency {
                endpoint: h("ingest_endpoint"),
                downstream: h("ingest_downstream"),
            },
        }
    }

    /// The `*_total` histograms of a component (`endpoint="-"`).
    pub(super) fn totals(&self, component_id: &str) -> TotalLatency {
        self.remember(component_id, ALL_ENDPOINTS);
        TotalLatency {
            push: self.histogram(component_id, ALL_ENDPOINTS, "push_total"),
            ingest: self.histogram(component_id, ALL_ENDPOINTS, "ingest_total"),
        }
    }
}

fn endpoint_labels(component_id: &str, endpoint: &str) -> EndpointLabels {
    EndpointLabels {
        endpoint: endpoint.to_owned(),
        component_id: component_id.to_owned(),
        component_path: COMPONENT_PATH.to_owned(),
    }
}

fn latency_labels(component_id: &str, endpoint: &str, ty: &'static str) -> LatencyLabels {
    LatencyLabels {
        endpoint: endpoint.to_owned(),
        r#type: ty,
        component_id: component_id.to_owned(),
        component_path: COMPONENT_PATH.to_owned(),
    }
}

/// Per-endpoint handles, resolved once when the endpoint is built.
#[derive(Clone)]
pub(super) struct EndpointMetrics {
    pub sent_bytes: Counter,
    pub sent_profiles: Counter,
    pub dropped_bytes: Counter,
    pub dropped_profiles: Counter,
    pub retries: Counter,
    pub push: KindLatency,
    pub ingest: KindLatency,
}

#[derive(Clone)]
pub(super) struct KindLatency {
    pub endpoint: Histogram,
    pub downstream: Histogram,
}

#[derive(Clone)]
pub(super) struct TotalLatency {
    pub push: Histogram,
    pub ingest: Histogram,
}

impl EndpointMetrics {
    pub fn sent(&self, bytes: usize, profiles: usize) {
        self.sent_bytes.inc_by(bytes as u64);
        self.sent_profiles.inc_by(profiles as u64);
    }

    pub fn dropped(&self, bytes: usize, profiles: usize) {
        self.dropped_bytes.inc_by(bytes as u64);
        self.dropped_profiles.inc_by(profiles as u64);
    }
}

pub(super) fn observe(histogram: &Histogram, elapsed: Duration) {
    histogram.observe(elapsed.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    fn text(registry: &Registry) -> String {
        let mut s = String::new();
        encode(&mut s, registry).unwrap();
        s
    }

    #[test]
    fn names_labels_and_removal() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let ep = metrics.endpoint("pyroscope.write.a", "http://x:4040");
        ep.sent(10, 2);
        ep.retries.inc();
        observe(
            &metrics.totals("pyroscope.write.a").push,
            Duration::from_millis(3),
        );
        metrics
            .endpoint("pyroscope.write.b", "http://y")
            .dropped(5, 1);

        let out = text(&registry);
        let labels =
            r#"endpoint="http://x:4040",component_id="pyroscope.write.a",component_path="/""#;
        assert!(
            out.contains(&format!("pyroscope_write_sent_bytes_total{{{labels}}} 10")),
            "{out}"
        );
        assert!(out.contains(&format!(
            "pyroscope_write_sent_profiles_total{{{labels}}} 2"
        )));
        assert!(out.contains(&format!("pyroscope_write_retries_total{{{labels}}} 1")));
        assert!(out.contains(
            r#"pyroscope_write_latency_count{endpoint="-",type="push_total",component_id="pyroscope.write.a",component_path="/"} 1"#
        ));
        assert!(out.contains(r#"pyroscope_write_dropped_bytes_total{endpoint="http://y",component_id="pyroscope.write.b",component_path="/"} 5"#));

        metrics.remove_component("pyroscope.write.a");
        let out = text(&registry);
        assert!(!out.contains("pyroscope.write.a"), "{out}");
        assert!(out.contains("pyroscope.write.b"));
    }
}
