//! Every metric family of `pyroscope.receive_http`, registered in one
//! place. All series carry `component_id` and `component_path="/"`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Request duration buckets, in seconds: Prometheus' defaults (what dskit's
/// `request_duration_seconds` uses) plus 30 and 60 s, the write timeout
/// and a slow chain.
const DURATION_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Labels of the connection gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnLabels {
    pub component_id: String,
    pub component_path: String,
    /// Always `http`: there is no separate gRPC server.
    pub protocol: String,
}

/// Labels of the request histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub component_id: String,
    pub component_path: String,
    /// `ingest`, `push` or `other` (404/405 answers).
    pub route: String,
    /// `http` (ingest, other), `connect`, `grpc` or `grpc_web`.
    pub protocol: String,
    /// The HTTP status for `http`; the RPC code name (`ok`,
    /// `invalid_argument`, ...) for the RPC protocols.
    pub status: String,
}

/// Labels of the received counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub component_id: String,
    pub component_path: String,
    pub route: String,
}

/// The component's metric families, shared by every instance.
#[derive(Debug)]
pub struct Metrics {
    pub tcp_connections: Family<ConnLabels, Gauge>,
    pub tcp_connections_limit: Family<ConnLabels, Gauge>,
    pub request_duration: Family<RequestLabels, Histogram>,
    pub received_bytes: Family<RouteLabels, Counter>,
    pub received_profiles: Family<RouteLabels, Counter>,
}

impl Metrics {
    /// Registers every family of this component in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::unregistered();
        registry.register(
            "pyroscope_receive_http_tcp_connections",
            "Current number of accepted TCP connections.",
            metrics.tcp_connections.clone(),
        );
        registry.register(
            "pyroscope_receive_http_tcp_connections_limit",
            "The maximum number of TCP connections that the component can accept. \
             A value of 0 means no limit.",
            metrics.tcp_connections_limit.clone(),
        );
        registry.register(
            "pyroscope_receive_http_request_duration_seconds",
            "Time from a request's headers to its response, by route, protocol and status.",
            metrics.request_duration.clone(),
        );
        registry.register(
            "pyroscope_receive_http_received_bytes",
            "Request body bytes received on the profile routes, as sent (compressed or not).",
            metrics.received_bytes.clone(),
        );
        registry.register(
            "pyroscope_receive_http_received_profiles",
            "Profiles decoded and handed to forward_to (push samples; one per /ingest body).",
            metrics.received_profiles.clone(),
        );
        metrics
    }

    /// Families that no registry exposes, for tests and tools.
    pub fn unregistered() -> Self {
        Self {
            tcp_connections: Family::default(),
            tcp_connections_limit: Family::default(),
            request_duration: Family::new_with_constructor(|| {
                Histogram::new(DURATION_BUCKETS.iter().copied())
            }),
            received_bytes: Family::default(),
            received_profiles: Family::default(),
        }
    }
}

/// One component's handles into the shared families.
#[derive(Debug, Clone)]
pub(super) struct ComponentMetrics {
    pub component_id: String,
    pub connections: Gauge,
    pub connections_limit: Gauge,
    families: std::sync::Arc<Metrics>,
}

impl ComponentMetrics {
    pub fn new(component_id: &str, families: std::sync::Arc<Metrics>) -> Self {
        let labels = conn_labels(component_id);
        let connections = families.tcp_connections.get_or_create(&labels).clone();
        let connections_limit = families
            .tcp_connections_limit
            .get_or_create(&labels)
            .clone();
        Self {
            component_id: component_id.to_owned(),
            connections,
            connections_limit,
            families,
        }
    }

    pub fn observe_request(&self, route: &str, protocol: &str, status: &str, seconds: f64) {
        let labels = RequestLabels {
            component_id: self.component_id.clone(),
            component_path: "/".to_owned(),
            route: route.to_owned(),
            protocol: protocol.to_owned(),
            status: status.to_owned(),
        };
        self.families
            .request_duration
            .get_or_create(&labels)
            .observe(seconds);
    }

    pub fn received(&self, route: &str, bytes: usize, profiles: usize) {
        let labels = RouteLabels {
            component_id: self.component_id.clone(),
            component_path: "/".to_owned(),
            route: route.to_owned(),
        };
        if bytes > 0 {
            self.families
                .received_bytes
                .get_or_create(&labels)
                .inc_by(bytes as u64);
        }
        if profiles > 0 {
            self.families
                .received_profiles
                .get_or_create(&labels)
                .inc_by(profiles as u64);
        }
    }

    /// Drops this component's connection gauges (the component is gone).
    pub fn remove(&self) {
        let labels = conn_labels(&self.component_id);
        self.families.tcp_connections.remove(&labels);
        self.families.tcp_connections_limit.remove(&labels);
    }
}

fn conn_labels(component_id: &str) -> ConnLabels {
    ConnLabels {
        component_id: component_id.to_owned(),
        component_path: "/".to_owned(),
        protocol: "http".to_owned(),
    }
}
