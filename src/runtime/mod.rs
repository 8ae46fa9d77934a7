//! Builds the component graph from a config, runs each component, and
//! reloads it.
//!
//! A load first produces a [`Plan`] (parse, resolve references, order,
//! decode); only a plan without diagnostics is applied. Applying starts new
//! components, updates those whose arguments changed, leaves unchanged ones
//! alone and stops removed ones, dependencies first.

mod exports;
mod files;
mod graph;
mod health;
mod loader;
mod registry;

pub use health::{Health, HealthState};
pub use loader::{
    ConfigSource, EMBEDDED_CONFIG, LoadError, LoggingConfig, Plan, plan, read_config, read_sources,
};
pub use registry::{Args, Kind};

use arc_swap::ArcSwap;
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Mutex;

use crate::admin::Guard;
use crate::config::Evaluated;
use crate::pipeline::Receiver;
use crate::pipeline::tap::Tap;
use crate::telemetry::{LogFormat, LogHandle, LogLevel};
use files::Fingerprint;
use registry::{Families, Running, StartContext};

/// Settings from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    pub config: ConfigSource,
    pub storage_path: PathBuf,
    pub log_level: LogLevel,
    pub log_format: LogFormat,
    /// The request memory budget shared by every `pyroscope.receive_http`
    /// (`--request-memory-limit`), in bytes.
    pub request_memory_limit: u64,
    /// How many receiving threads serve every `pyroscope.receive_http`
    /// (`--receive-threads`).
    pub receive_threads: usize,
}

struct Component {
    kind: Kind,
    args: Args,
    evaluated: Vec<Evaluated>,
    references: Vec<String>,
    tap: Arc<Tap>,
    /// The contents of the files `args` refers to, as last applied.
    files: Fingerprint,
    running: Running,
    health: Health,
}

impl Component {
    /// A component whose last update failed is updated again on the next
    /// reload even when its arguments did not change (the failure, say an
    /// unreadable file, may be fixed). receive_http keeps its own health.
    fn retries_on_reload(&self) -> bool {
        self.kind != Kind::ReceiveHttp && self.health.state() != HealthState::Healthy
    }
}

#[derive(Default)]
struct State {
    components: BTreeMap<String, Component>,
    receivers: HashMap<String, Receiver>,
}

/// The running relay: its components, their metrics and health.
pub struct Runtime {
    options: Options,
    registry: Arc<Registry>,
    families: Families,
    state: Mutex<State>,
    ready: AtomicBool,
    log: Option<LogHandle>,
    /// TLS and authentication of the admin server, from the `http` block.
    admin_guard: ArcSwap<Guard>,
}

/// What the admin UI shows of one running component.
#[derive(Debug, Clone)]
pub struct ComponentInfo {
    pub id: String,
    pub kind: Kind,
    pub health: HealthState,
    pub health_updated: std::time::SystemTime,
    pub evaluated: Vec<Evaluated>,
    /// The components this one references, in id order.
    pub references: Vec<String>,
    pub tap: Arc<Tap>,
}

/// What one component's health looks like from outside.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentHealth {
    pub id: String,
    pub state: HealthState,
}

impl Runtime {
    /// Starts the receiving threads; fails only when the system cannot
    /// start a thread.
    pub fn new(options: Options, log: Option<LogHandle>) -> std::io::Result<Self> {
        let mut registry = Registry::default();
        crate::telemetry::register_process_metrics(&mut registry);
        let workers = Arc::new(crate::receive_http::Workers::start(
            options.receive_threads,
        )?);
        let families = Families::register(&mut registry, options.request_memory_limit, workers);
        Ok(Self {
            options,
            registry: Arc::new(registry),
            families,
            state: Mutex::new(State::default()),
            ready: AtomicBool::new(false),
            log,
            admin_guard: ArcSwap::from_pointee(Guard::default()),
        })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn config_source(&self) -> &ConfigSource {
        &self.options.config
    }

    /// `<storage.path>/<component id>`, the directory a component keeps data in.
    pub fn data_dir(&self, component_id: &str) -> PathBuf {
        self.options.storage_path.join(component_id)
    }

    /// What the admin server checks connections and requests against.
    pub fn admin_guard(&self) -> Arc<Guard> {
        self.admin_guard.load_full()
    }

    /// True once a config has been applied.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Reads the config path and applies it. On a validation error nothing
    /// changes. Reloads are serialized.
    pub async fn reload(&self) -> Result<(), LoadError> {
        let mut state = self.state.lock().await;
        let map = read_config(&self.options.config)?;
        let plan = plan(&map, &state.receivers)?;
        self.apply(&mut state, plan).await?;
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    async fn apply(&self, state: &mut State, plan: Plan) -> Result<(), LoadError> {
        self.apply_logging(plan.logging.as_ref());
        // A block that cannot be applied (an unreadable certificate) keeps
        // the admin server as it was and fails the load.
        let mut errors = Vec::new();
        match Guard::build(plan.http.as_ref()) {
            Ok(guard) => self.admin_guard.store(Arc::new(guard)),
            Err(e) => errors.push(e.to_string()),
        }

        let wanted: Vec<&str> = plan.components.iter().map(|c| c.id.as_str()).collect();
        let removed: Vec<String> = state
            .components
            .keys()
            .filter(|id| !wanted.contains(&id.as_str()))
            .cloned()
            .collect();
        // Stop components that feed others first (listeners, then relabel
        // stages), so nothing in flight is sent to a receiver already gone.
        let mut removed = removed;
        removed.sort_by_key(|id| state.components.get(id).map(|c| c.kind.feed_rank()));
        for id in &removed {
            if let Some(component) = state.components.remove(id) {
                component.running.shutdown(false).await;
                tracing::info!(component_id = %id, "stopped component");
            }
            if let Some(receiver) = state.receivers.remove(id) {
                receiver.uninstall();
            }
        }
        state.receivers = plan.receivers;

        for planned in plan.components {
            let id = planned.id;
            let files = Fingerprint::of(&planned.args);
            match state.components.get_mut(&id) {
                Some(existing)
                    if existing.kind == planned.kind
                        && existing.args == planned.args
                        && existing.files == files
                        && !existing.retries_on_reload() =>
                {
                    existing.references = planned.references;
                }
                Some(existing) if existing.kind == planned.kind => {
                    match existing.running.update(planned.args.clone()).await {
                        Ok(()) => {
                            existing.args = planned.args;
                            existing.evaluated = planned.evaluated;
                            existing.references = planned.references;
                            existing.files = files;
                            // receive_http reports its own health (a rebind
                            // can fail after a good update); for the others a
                            // good update clears an earlier failure.
                            if existing.kind != Kind::ReceiveHttp {
                                existing.health.set_healthy();
                            }
                            tracing::info!(component_id = %id, "updated component");
                        }
                        Err(e) => {
                            existing.health.set_unhealthy(e.clone());
                            errors.push(format!("updating {id}: {e}"));
                        }
                    }
                }
                _ => {
                    let health = Health::new();
                    let receiver = state
                        .receivers
                        .get(&id)
                        .cloned()
                        .unwrap_or_else(|| Receiver::new(&id));
                    let tap = receiver.tap().clone();
                    let context = StartContext {
                        receiver,
                        health: health.clone(),
                        data_dir: self.data_dir(&id),
                    };
                    let started =
                        Running::start(&id, planned.args.clone(), context, &self.families).await;
                    match started {
                        Ok(running) => {
                            tracing::info!(component_id = %id, "started component");
                            state.components.insert(
                                id,
                                Component {
                                    kind: planned.kind,
                                    args: planned.args,
                                    evaluated: planned.evaluated,
                                    references: planned.references,
                                    tap,
                                    files,
                                    running,
                                    health,
                                },
                            );
                        }
                        Err(e) => errors.push(format!("starting {id}: {e}")),
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(LoadError::Invalid {
                count: errors.len(),
                rendered: errors.join("\n"),
            })
        }
    }

    fn apply_logging(&self, logging: Option<&LoggingConfig>) {
        let Some(handle) = &self.log else { return };
        let level = logging
            .and_then(|l| l.level)
            .unwrap_or(self.options.log_level);
        let format = logging
            .and_then(|l| l.format)
            .unwrap_or(self.options.log_format);
        handle.apply(level, format);
    }

    /// Health of every component, in id order.
    pub async fn health(&self) -> Vec<ComponentHealth> {
        let state = self.state.lock().await;
        state
            .components
            .iter()
            .map(|(id, c)| ComponentHealth {
                id: id.clone(),
                state: c.health.state(),
            })
            .collect()
    }

    /// Every running component, in id order.
    pub async fn components(&self) -> Vec<ComponentInfo> {
        let state = self.state.lock().await;
        state
            .components
            .iter()
            .map(|(id, c)| ComponentInfo {
                id: id.clone(),
                kind: c.kind,
                health: c.health.state(),
                health_updated: c.health.updated(),
                evaluated: c.evaluated.clone(),
                references: c.references.clone(),
                tap: c.tap.clone(),
            })
            .collect()
    }

    /// The stores of every running archive, with their component ids.
    pub async fn archive_stores(&self) -> Vec<(String, Arc<crate::archive::store::Store>)> {
        let state = self.state.lock().await;
        state
            .components
            .iter()
            .filter_map(|(id, c)| c.running.archive_store().map(|s| (id.clone(), s)))
            .collect()
    }

    /// Stops every component: receivers first (they finish in-flight
    /// requests within their graceful shutdown timeout), then the rest.
    pub async fn shutdown(&self) {
        let mut state = self.state.lock().await;
        let components = std::mem::take(&mut state.components);
        let (receivers, others): (Vec<_>, Vec<_>) = components
            .into_values()
            .partition(|c| c.kind == Kind::ReceiveHttp);
        futures_util::future::join_all(receivers.into_iter().map(|c| c.running.shutdown(true)))
            .await;
        futures_util::future::join_all(others.into_iter().map(|c| c.running.shutdown(true))).await;
        for receiver in state.receivers.values() {
            receiver.uninstall();
        }
    }
}
