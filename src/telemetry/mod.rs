//! The relay's own logs and metrics plumbing. Component metric families live
//! in their components (`write/metrics.rs`, ...); this module adds process
//! and build metrics and renders the registry.

mod logging;
mod process;

pub use logging::{LogFormat, LogHandle, LogLevel, init as init_logging};
pub use process::{ProcessCollector, ProcessStats};

use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// The label set every component metric carries, as Alloy adds it.
pub fn component_labels(component_id: &str) -> Vec<(String, String)> {
    vec![
        ("component_id".to_string(), component_id.to_string()),
        ("component_path".to_string(), "/".to_string()),
    ]
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
