//! Every metric family of `pyroscope.receive_http`, registered in one
//! place. All series carry `component_id` and `component_path="/"`.

use std::sync::{Arc, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::clock::Cut;

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
    /// `ingest`, `push`, `debuginfo` (the unary calls), `debuginfo_upload`
    /// or `other` (404/405 answers).
    pub route: String,
    /// `http` (ingest, other), `connect`, `grpc` or `grpc_web`.
    pub protocol: String,
    /// The HTTP status for `http`; the RPC code name (`ok`,
    /// `invalid_argument`, ...) for the RPC protocols.
    pub status: String,
}

/// Labels of the timed-out connections counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CutLabels {
    pub component_id: String,
    pub component_path: String,
    /// `read` (no complete request head in time, including connections
    /// that never send), `write` (the client stopped reading) or
    /// `tls_handshake`.
    pub reason: String,
}

/// Labels of the received counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub component_id: String,
    pub component_path: String,
    pub route: String,
}

/// Labels of the debuginfo downstream call counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DebuginfoCallLabels {
    pub component_id: String,
    pub component_path: String,
    /// `ShouldInitiateUpload`, `UploadFinished` or `Upload`.
    pub method: String,
    /// `success` or `failure`.
    pub result: String,
}

/// The component's metric families, shared by every instance.
#[derive(Debug)]
pub struct Metrics {
    pub tcp_connections: Family<ConnLabels, Gauge>,
    pub tcp_connections_limit: Family<ConnLabels, Gauge>,
    pub request_duration: Family<RequestLabels, Histogram>,
    pub received_bytes: Family<RouteLabels, Counter>,
    pub received_profiles: Family<RouteLabels, Counter>,
    pub debuginfo_downstream_calls: Family<DebuginfoCallLabels, Counter>,
    pub connections_timed_out: Family<CutLabels, Counter>,
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
        registry.register(
            "pyroscope_receive_http_debuginfo_downstream_calls",
            "Total number of downstream debuginfo calls made by the receive_http proxy, \
             labeled by method and result.",
            metrics.debuginfo_downstream_calls.clone(),
        );
        registry.register(
            "pyroscope_receive_http_connections_timed_out",
            "Connections closed because a timeout passed: no complete request head within \
             server_read_timeout, no write progress within server_write_timeout, or a TLS \
             handshake not done in time.",
            metrics.connections_timed_out.clone(),
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
            debuginfo_downstream_calls: Family::default(),
            connections_timed_out: Family::default(),
        }
    }
}

/// One component's handles into the shared families.
#[derive(Debug, Clone)]
pub(super) struct ComponentMetrics {
    pub component_id: String,
    pub connections: Gauge,
    pub connections_limit: Gauge,
    /// By [`Cut::ALL`] order.
    cuts: [Counter; 3],
    families: Arc<Metrics>,
    resolved: Arc<Resolved>,
}

/// Metric handles this component has already looked up. A request finds
/// its handle by comparing a few short strings under a read lock, instead
/// of building an owned label set and hashing it in the family.
#[derive(Debug, Default)]
struct Resolved {
    /// (route, protocol, status) → duration histogram.
    durations: RwLock<Vec<([String; 3], Histogram)>>,
    /// route → (bytes, profiles).
    received: RwLock<Vec<(String, Counter, Counter)>>,
}

impl ComponentMetrics {
    pub fn new(component_id: &str, families: Arc<Metrics>) -> Self {
        let labels = conn_labels(component_id);
        let connections = families.tcp_connections.get_or_create(&labels).clone();
        let connections_limit = families
            .tcp_connections_limit
            .get_or_create(&labels)
            .clone();
        let cuts = Cut::ALL.map(|cut| {
            families
                .connections_timed_out
                .get_or_create_owned(&cut_labels(component_id, cut))
        });
        Self {
            component_id: component_id.to_owned(),
            connections,
            connections_limit,
            cuts,
            families,
            resolved: Arc::default(),
        }
    }

    pub fn observe_request(&self, route: &str, protocol: &str, status: &str, seconds: f64) {
        let key = [route, protocol, status];
        let durations = &self.resolved.durations;
        if let Some((_, h)) = read(durations).iter().find(|(k, _)| k == &key) {
            h.observe(seconds);
            return;
        }
        let labels = RequestLabels {
            component_id: self.component_id.clone(),
            component_path: "/".to_owned(),
            route: route.to_owned(),
            protocol: protocol.to_owned(),
            status: status.to_owned(),
        };
        let h = self.families.request_duration.get_or_create_owned(&labels);
        h.observe(seconds);
        // Two requests may have missed at once: keep one entry per key.
        let mut durations = write(durations);
        if !durations.iter().any(|(k, _)| k == &key) {
            durations.push((key.map(str::to_owned), h));
        }
    }

    pub fn received(&self, route: &str, bytes: usize, profiles: usize) {
        let inc = |(_, b, p): &(String, Counter, Counter)| {
            b.inc_by(bytes as u64);
            p.inc_by(profiles as u64);
        };
        let received = &self.resolved.received;
        if let Some(found) = read(received).iter().find(|(r, _, _)| r == route) {
            return inc(found);
        }
        let labels = RouteLabels {
            component_id: self.component_id.clone(),
            component_path: "/".to_owned(),
            route: route.to_owned(),
        };
        let entry = (
            route.to_owned(),
            self.families.received_bytes.get_or_create_owned(&labels),
            self.families.received_profiles.get_or_create_owned(&labels),
        );
        inc(&entry);
        let mut received = write(received);
        if !received.iter().any(|(r, _, _)| r == route) {
            received.push(entry);
        }
    }

    /// Counts one relayed debuginfo call (Alloy counts a call that found
    /// no downstream as a failure too). Rare, so not cached.
    pub fn debuginfo_call(&self, method: &str, success: bool) {
        let labels = DebuginfoCallLabels {
            component_id: self.component_id.clone(),
            component_path: "/".to_owned(),
            method: method.to_owned(),
            result: if success { "success" } else { "failure" }.to_owned(),
        };
        self.families
            .debuginfo_downstream_calls
            .get_or_create(&labels)
            .inc();
    }

    /// Counts a connection closed by a timeout.
    pub fn connection_cut(&self, cut: Cut) {
        if let Some(i) = Cut::ALL.iter().position(|c| *c == cut) {
            self.cuts[i].inc();
        }
    }

    /// Drops this component's connection series (the component is gone).
    pub fn remove(&self) {
        let labels = conn_labels(&self.component_id);
        self.families.tcp_connections.remove(&labels);
        self.families.tcp_connections_limit.remove(&labels);
        for cut in Cut::ALL {
            let labels = cut_labels(&self.component_id, cut);
            self.families.connections_timed_out.remove(&labels);
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

fn cut_labels(component_id: &str, cut: Cut) -> CutLabels {
    CutLabels {
        component_id: component_id.to_owned(),
        component_path: "/".to_owned(),
        reason: cut.label().to_owned(),
    }
}

fn conn_labels(component_id: &str) -> ConnLabels {
    ConnLabels {
        component_id: component_id.to_owned(),
        component_path: "/".to_owned(),
        protocol: "http".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn resolved_handles_feed_the_registered_families() {
        let mut registry = Registry::default();
        let metrics = ComponentMetrics::new("in", Arc::new(Metrics::register(&mut registry)));
        let other = metrics.clone();
        metrics.observe_request("ingest", "http", "200", 0.001);
        other.observe_request("ingest", "http", "200", 0.002);
        metrics.observe_request("ingest", "http", "400", 0.001);
        metrics.received("ingest", 100, 1);
        other.received("ingest", 50, 1);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("{prefix} missing in\n{text}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .to_owned()
        };
        let labels = r#"component_id="in",component_path="/",route="ingest""#;
        assert_eq!(
            line(&format!(
                "pyroscope_receive_http_received_bytes_total{{{labels}}}"
            )),
            "150"
        );
        assert_eq!(
            line(&format!(
                "pyroscope_receive_http_received_profiles_total{{{labels}}}"
            )),
            "2"
        );
        let count = |status: &str| {
            line(&format!(
                r#"pyroscope_receive_http_request_duration_seconds_count{{{labels},protocol="http",status="{status}"}}"#
            ))
        };
        assert_eq!((count("200").as_str(), count("400").as_str()), ("2", "1"));
    }
}
