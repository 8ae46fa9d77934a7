//! `pyroscope.archive` metrics. Every family is registered here, once; each
//! component takes its own handles with [`Metrics::component`].

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::telemetry::ComponentLabels;

/// The metric families of every `pyroscope.archive` component.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    stored_profiles: Family<ComponentLabels, Counter>,
    stored_bytes: Family<ComponentLabels, Counter>,
    evicted_profiles: Family<ComponentLabels, Counter>,
    disk_bytes: Family<ComponentLabels, Gauge>,
    profiles: Family<ComponentLabels, Gauge>,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "pyroscope_archive_stored_profiles",
            "Profiles written to the archive.",
            m.stored_profiles.clone(),
        );
        registry.register(
            "pyroscope_archive_stored_bytes",
            "Profile bytes (bodies) written to the archive.",
            m.stored_bytes.clone(),
        );
        registry.register(
            "pyroscope_archive_evicted_profiles",
            "Profiles deleted by retention or max_size.",
            m.evicted_profiles.clone(),
        );
        registry.register(
            "pyroscope_archive_disk_bytes",
            "Bytes the archive's segment files take on disk.",
            m.disk_bytes.clone(),
        );
        registry.register(
            "pyroscope_archive_profiles",
            "Profiles currently kept in the archive.",
            m.profiles.clone(),
        );
        m
    }

    /// The handles of one component.
    pub fn component(&self, component_id: &str) -> ComponentMetrics {
        let l = ComponentLabels::new(component_id);
        ComponentMetrics {
            stored_profiles: self.stored_profiles.get_or_create(&l).clone(),
            stored_bytes: self.stored_bytes.get_or_create(&l).clone(),
            evicted_profiles: self.evicted_profiles.get_or_create(&l).clone(),
            disk_bytes: self.disk_bytes.get_or_create(&l).clone(),
            profiles: self.profiles.get_or_create(&l).clone(),
        }
    }

    /// Takes a stopped component's series out of the output.
    pub fn remove(&self, component_id: &str) {
        let l = ComponentLabels::new(component_id);
        self.stored_profiles.remove(&l);
        self.stored_bytes.remove(&l);
        self.evicted_profiles.remove(&l);
        self.disk_bytes.remove(&l);
        self.profiles.remove(&l);
    }
}

/// One component's metric handles, updated by its store.
#[derive(Debug, Clone, Default)]
pub struct ComponentMetrics {
    pub stored_profiles: Counter,
    pub stored_bytes: Counter,
    pub evicted_profiles: Counter,
    pub disk_bytes: Gauge,
    pub profiles: Gauge,
}

impl ComponentMetrics {
    pub(crate) fn set_usage(&self, profiles: usize, disk_bytes: u64) {
        self.profiles.set(profiles as i64);
        self.disk_bytes
            .set(i64::try_from(disk_bytes).unwrap_or(i64::MAX));
    }
}
