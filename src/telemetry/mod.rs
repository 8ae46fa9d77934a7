//! The relay's own logs and metrics plumbing. Component metric families live
//! in their components (`write/metrics.rs`, ...); this module adds process
//! and build metrics and renders the registry.

pub mod civil_time;
mod logging;
mod process;
mod throttle;

pub use logging::{LogFormat, LogHandle, LogLevel, init as init_logging};
pub use process::{ProcessCollector, ProcessStats};
pub use throttle::Throttle;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// The labels every component metric carries, as Alloy adds them;
/// `component_path` is always `/` (there are no modules).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComponentLabels {
    pub component_id: String,
    pub component_path: String,
}

impl ComponentLabels {
    pub fn new(component_id: &str) -> Self {
        Self {
            component_id: component_id.to_owned(),
            component_path: "/".to_owned(),
        }
    }
}

/// Registers process metrics and `pyroscope_relay_build_info`.
pub fn register_process_metrics(registry: &mut Registry) {
    registry.register_collector(Box::new(ProcessCollector::new()));
    registry.register(
        "pyroscope_relay_build",
        "Build information of the running pyroscope-relay.",
        Info::new(vec![
            ("version", env!("CARGO_PKG_VERSION")),
            ("goos", std::env::consts::OS),
            ("goarch", std::env::consts::ARCH),
        ]),
    );
}

/// Content type of [`encode_text`]'s output.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders the registry in the Prometheus text format.
pub fn encode_text(registry: &Registry) -> String {
    let mut out = String::with_capacity(16 * 1024);
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_process_and_build_metrics() {
        let mut registry = Registry::default();
        register_process_metrics(&mut registry);
        let text = encode_text(&registry);
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
        assert!(text.contains("process_cpu_seconds_total "), "{text}");
        assert!(
            text.contains("pyroscope_relay_build_info{version=\""),
            "{text}"
        );
    }
}
