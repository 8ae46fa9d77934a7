//! `pyroscope.relabel` metrics, with Alloy's names and labels.
//!
//! Alloy's counters have no `_total` suffix (`pyroscope_relabel_cache_hits`).
//! prometheus-client cannot expose a *counter* under such a name: both its
//! text encoders append `_total` to every sample of a counter family (the
//! Prometheus 0.0.4 encoder even to the `# HELP`/`# TYPE` names), and 0.26
//! panics in debug builds when a counter is registered with a name already
//! ending in `_total`. So these counters are [`UnsuffixedCounter`]s: an
//! ordinary atomic counter that declares itself `unknown` (`untyped` in the
//! 0.0.4 format) and writes its value as a plain sample. The sample names
//! and values are then exactly Alloy's in both encoders and both stay valid;
//! only the `# TYPE` line differs (`unknown`/`untyped` instead of `counter`),
//! which PromQL does not care about (`rate()` works on any type).

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

/// A monotonic counter exposed under its registered name, without the
/// `_total` suffix, typed `unknown`. See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct UnsuffixedCounter(Counter<u64>);

impl UnsuffixedCounter {
    pub fn inc(&self) {
        self.0.inc();
    }

    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

impl TypedMetric for UnsuffixedCounter {
    const TYPE: MetricType = MetricType::Unknown;
}

impl EncodeMetric for UnsuffixedCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // A gauge sample is a bare `name{labels} value` line.
        encoder.encode_gauge(&self.0.get())
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

use crate::telemetry::ComponentLabels;

type CounterFamily = Family<ComponentLabels, UnsuffixedCounter>;

/// The metric families of every `pyroscope.relabel` component, registered
/// once; each component takes its own handles with [`Metrics::component`].
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    processed: CounterFamily,
    written: CounterFamily,
    dropped: CounterFamily,
    cache_hits: CounterFamily,
    cache_misses: CounterFamily,
    cache_size: Family<ComponentLabels, Gauge>,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let counters = [
            (
                "pyroscope_relabel_profiles_processed",
                "Total number of profiles processed",
                &m.processed,
            ),
            (
                "pyroscope_relabel_profiles_written",
                "Total number of profiles forwarded after relabeling",
                &m.written,
            ),
            (
                "pyroscope_relabel_profiles_dropped",
                "Total number of profiles dropped by relabeling rules",
                &m.dropped,
            ),
            (
                "pyroscope_relabel_cache_hits",
                "Total number of relabel cache hits",
                &m.cache_hits,
            ),
            (
                "pyroscope_relabel_cache_misses",
                "Total number of relabel cache misses",
                &m.cache_misses,
            ),
        ];
        for (name, help, family) in counters {
            registry.register(name, help, family.clone());
        }
        registry.register(
            "pyroscope_relabel_cache_size",
            "Number of label sets in the relabel cache",
            m.cache_size.clone(),
        );
        m
    }

    /// The handles of one component; they appear in the output from now on.
    pub fn component(&self, component_id: &str) -> ComponentMetrics {
        let labels = ComponentLabels::new(component_id);
        ComponentMetrics {
            processed: self.processed.get_or_create_owned(&labels),
            written: self.written.get_or_create_owned(&labels),
            dropped: self.dropped.get_or_create_owned(&labels),
            cache_hits: self.cache_hits.get_or_create_owned(&labels),
            cache_misses: self.cache_misses.get_or_create_owned(&labels),
            cache_size: self.cache_size.get_or_create_owned(&labels),
        }
    }

    /// Removes a deleted component's series from the output.
    pub fn remove(&self, component_id: &str) {
        let labels = ComponentLabels::new(component_id);
        for family in [
            &self.processed,
            &self.written,
            &self.dropped,
            &self.cache_hits,
            &self.cache_misses,
        ] {
            family.remove(&labels);
        }
        self.cache_size.remove(&labels);
    }
}

/// One component's metric handles.
#[derive(Debug, Clone)]
pub struct ComponentMetrics {
    pub processed: UnsuffixedCounter,
    pub written: UnsuffixedCounter,
    pub dropped: UnsuffixedCounter,
    pub cache_hits: UnsuffixedCounter,
    pub cache_misses: UnsuffixedCounter,
    pub cache_size: Gauge,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(registry: &Registry) -> (String, String) {
        let mut open_metrics = String::new();
        prometheus_client::encoding::text::encode(&mut open_metrics, registry).unwrap();
        let mut prometheus = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut prometheus, registry).unwrap();
        (open_metrics, prometheus)
    }

    #[test]
    fn counters_have_no_total_suffix_in_either_format() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let c = metrics.component("pyroscope.relabel.a");
        c.cache_hits.inc();
        c.cache_hits.inc();
        c.cache_size.set(7);
        let labels = r#"{component_id="pyroscope.relabel.a",component_path="/"}"#;
        let hits = format!("pyroscope_relabel_cache_hits{labels} 2");
        let size = format!("pyroscope_relabel_cache_size{labels} 7");
        let (open_metrics, prometheus) = encoded(&registry);
        for text in [&open_metrics, &prometheus] {
            assert!(text.lines().any(|l| l == hits), "{text}");
            assert!(text.lines().any(|l| l == size), "{text}");
            assert!(!text.contains("_total"), "{text}");
        }
        assert!(open_metrics.contains("# TYPE pyroscope_relabel_cache_hits unknown\n"));
        assert!(prometheus.contains("# TYPE pyroscope_relabel_cache_hits untyped\n"));
        assert!(prometheus.contains("# TYPE pyroscope_relabel_cache_size gauge\n"));
    }

    #[test]
    fn remove_drops_only_that_component() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        metrics.component("pyroscope.relabel.a").processed.inc();
        metrics.component("pyroscope.relabel.b").processed.inc();
        metrics.remove("pyroscope.relabel.a");
        let (text, _) = encoded(&registry);
        assert!(
            !text.contains(r#"component_id="pyroscope.relabel.a""#),
            "{text}"
        );
        assert!(
            text.contains(r#"component_id="pyroscope.relabel.b""#),
            "{text}"
        );
    }
}
