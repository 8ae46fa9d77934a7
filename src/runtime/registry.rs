//! The component kinds this relay knows, as one closed enum.

use std::sync::Arc;

use crate::config::{BlockDecoder, DecodeBlock};
use crate::pipeline::Receiver;
use crate::runtime::Health;
use crate::{archive, receive_http, relabel, write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    ReceiveHttp,
    Write,
    Relabel,
    Archive,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::ReceiveHttp, Kind::Write, Kind::Relabel, Kind::Archive];

    pub fn name(self) -> &'static str {
        match self {
            Kind::ReceiveHttp => "pyroscope.receive_http",
            Kind::Write => "pyroscope.write",
            Kind::Relabel => "pyroscope.relabel",
            Kind::Archive => "pyroscope.archive",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Position in the data flow: components that feed others come first.
    pub fn feed_rank(self) -> u8 {
        match self {
            Kind::ReceiveHttp => 0,
            Kind::Relabel => 1,
            Kind::Write | Kind::Archive => 2,
        }
    }

    /// The exports other components may reference.
    pub fn exports(self) -> &'static [&'static str] {
        match self {
            Kind::ReceiveHttp => &[],
            Kind::Write => &["receiver"],
            Kind::Relabel => &["receiver", "rules"],
            Kind::Archive => &["receiver"],
        }
    }

    pub fn decode(self, d: &mut BlockDecoder<'_>) -> Args {
        match self {
            Kind::ReceiveHttp => Args::ReceiveHttp(Box::new(receive_http::Arguments::decode(d))),
            Kind::Write => Args::Write(write::Arguments::decode(d)),
            Kind::Relabel => Args::Relabel(relabel::Arguments::decode(d)),
            Kind::Archive => Args::Archive(archive::Arguments::decode(d)),
        }
    }
}

/// Namespaces of Grafana Alloy components that this relay does not run,
/// so a config written for Alloy gets "not supported" rather than "unknown".
const ALLOY_NAMESPACES: &[&str] = &[
    "beyla",
    "database_observability",
    "discovery",
    "faro",
    "import",
    "local",
    "loki",
    "mimir",
    "otelcol",
    "prometheus",
    "remote",
];

/// Alloy's `pyroscope.*` components that this relay does not run.
const ALLOY_PYROSCOPE_COMPONENTS: &[&str] = &[
    "pyroscope.ebpf",
    "pyroscope.enrich",
    "pyroscope.java",
    "pyroscope.scrape",
];

/// Top-level blocks of Alloy that are not components.
const ALLOY_CONFIG_BLOCKS: &[&str] = &[
    "argument",
    "declare",
    "export",
    "foreach",
    "livedebugging",
    "remotecfg",
    "tracing",
];

pub fn is_alloy_only(name: &str) -> bool {
    let namespace = name.split('.').next().unwrap_or(name);
    (ALLOY_NAMESPACES.contains(&namespace) && name.contains('.'))
        || ALLOY_PYROSCOPE_COMPONENTS.contains(&name)
        || ALLOY_CONFIG_BLOCKS.contains(&name)
}

/// Decoded arguments of one component.
#[derive(Debug, Clone, PartialEq)]
pub enum Args {
    ReceiveHttp(Box<receive_http::Arguments>),
    Write(write::Arguments),
    Relabel(relabel::Arguments),
    Archive(archive::Arguments),
}

impl Args {
    /// The files the component reads when it starts or updates; reloads
    /// re-apply a component when one of them changed ([`super::files`]).
    /// Credential files are not listed: they are read on every request.
    pub fn referenced_files(&self) -> Vec<&str> {
        let mut out = Vec::new();
        match self {
            Args::ReceiveHttp(a) => {
                if let Some(tls) = &a.http.tls {
                    out.extend([&tls.cert_file, &tls.key_file, &tls.client_ca_file]);
                }
            }
            Args::Write(a) => {
                for endpoint in &a.endpoints {
                    let http = &endpoint.http_client;
                    let oauth2 = http.oauth2.as_ref().map(|o| &o.tls_config);
                    for tls in std::iter::once(&http.tls_config).chain(oauth2) {
                        out.extend([&tls.ca_file, &tls.cert_file, &tls.key_file]);
                    }
                }
            }
            Args::Relabel(_) | Args::Archive(_) => {}
        }
        out.into_iter()
            .filter(|p| !p.is_empty())
            .map(String::as_str)
            .collect()
    }
}

/// The metric families of every kind, registered once per process.
pub struct Families {
    pub receive_http: Arc<receive_http::Metrics>,
    pub write: Arc<write::Metrics>,
    pub relabel: Arc<relabel::Metrics>,
    pub archive: Arc<archive::Metrics>,
    /// Not a family: the one request memory budget, with its metrics.
    pub request_budget: Arc<receive_http::RequestBudget>,
    /// Not a family: the receiving threads every receive_http serves on.
    pub receive_workers: Arc<receive_http::Workers>,
}

impl Families {
    pub fn register(
        registry: &mut prometheus_client::registry::Registry,
        request_memory_limit: u64,
        receive_workers: Arc<receive_http::Workers>,
    ) -> Self {
        let request_budget = receive_http::RequestBudget::new(request_memory_limit);
        request_budget.register(registry);
        Self {
            request_budget,
            receive_workers,
            receive_http: Arc::new(receive_http::Metrics::register(registry)),
            write: Arc::new(write::Metrics::register(registry)),
            relabel: Arc::new(relabel::Metrics::register(registry)),
            archive: Arc::new(archive::Metrics::register(registry)),
        }
    }
}

/// What the runtime hands a component when starting it.
pub struct StartContext {
    /// The component's `receiver` export, kept across reloads.
    pub receiver: Receiver,
    pub health: Health,
    /// `<storage.path>/<component id>`.
    pub data_dir: std::path::PathBuf,
}

/// A running component.
pub enum Running {
    ReceiveHttp(Box<receive_http::ReceiveHttp>),
    Write(write::Write),
    Relabel(relabel::Relabel),
    Archive(archive::Archive),
}

impl Running {
    pub async fn start(
        id: &str,
        args: Args,
        context: StartContext,
        families: &Families,
    ) -> Result<Running, String> {
        let StartContext {
            receiver,
            health,
            data_dir,
        } = context;
        Ok(match args {
            Args::ReceiveHttp(a) => Running::ReceiveHttp(Box::new(
                receive_http::ReceiveHttp::start(
                    id,
                    *a,
                    families.receive_http.clone(),
                    families.request_budget.clone(),
                    health,
                    receiver.tap().clone(),
                    families.receive_workers.clone(),
                )
                .await,
            )),
            Args::Write(a) => Running::Write(
                write::Write::start(id, receiver, a, families.write.clone(), data_dir, health)
                    .map_err(|e| e.to_string())?,
            ),
            Args::Relabel(a) => Running::Relabel(
                relabel::Relabel::start(id, receiver, a, families.relabel.clone())
                    .map_err(|e| e.to_string())?,
            ),
            Args::Archive(a) => Running::Archive(
                archive::Archive::start(
                    id,
                    data_dir,
                    receiver,
                    a,
                    families.archive.clone(),
                    health,
                )
                .map_err(|e| e.to_string())?,
            ),
        })
    }

    /// Applies new arguments of the same kind.
    pub async fn update(&mut self, args: Args) -> Result<(), String> {
        match (self, args) {
            (Running::ReceiveHttp(c), Args::ReceiveHttp(a)) => {
                c.update(*a).await;
                Ok(())
            }
            (Running::Write(c), Args::Write(a)) => c.update(a).await.map_err(|e| e.to_string()),
            (Running::Relabel(c), Args::Relabel(a)) => c.update(a).map_err(|e| e.to_string()),
            (Running::Archive(c), Args::Archive(a)) => c.update(a).map_err(|e| e.to_string()),
            _ => Err("component kind changed".to_string()),
        }
    }

    /// The archive's store, for the admin API.
    pub fn archive_store(&self) -> Option<Arc<archive::store::Store>> {
        match self {
            Running::Archive(c) => Some(c.store()),
            _ => None,
        }
    }

    /// Stops the component and takes its receiver export down. `exiting`:
    /// the whole process is stopping (a write's queue drains first), not a
    /// reload removing this component.
    pub async fn shutdown(self, exiting: bool) {
        match self {
            Running::ReceiveHttp(c) => (*c).shutdown().await,
            Running::Relabel(c) => c.stop(),
            Running::Write(c) => c.stop(exiting).await,
            Running::Archive(c) => c.stop(),
        }
    }
}
