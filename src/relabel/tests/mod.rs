//! Tests of the relabel module: rule actions, validation and the component
//! end to end (a recording appender stands in for the downstream writer).

mod actions;
mod component;
mod validation;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};

use super::{Arguments, Metrics, Relabel, RuleConfig};
use crate::pipeline::{
    AppendError, Appender, IngestProfile, Labels, Payload, Profile, Receiver, Sample, Series,
};

fn ls(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

/// A rule with Alloy's defaults and the given action.
fn rule(action: &str) -> RuleConfig {
    RuleConfig {
        action: action.to_owned(),
        ..RuleConfig::default()
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A downstream appender that records what it receives and then answers
/// with `fail` (success when `None`).
#[derive(Clone, Default)]
struct Recorder {
    received: Arc<Mutex<Vec<Profile>>>,
    fail: Option<AppendError>,
}

impl Appender for Recorder {
    fn append(&self, profile: Profile) -> BoxFuture<'_, Result<(), AppendError>> {
        self.received.lock().unwrap().push(profile);
        let result = self.fail.clone().map_or(Ok(()), Err);
        Box::pin(async move { result })
    }
}

impl Recorder {
    fn install(id: &str, fail: Option<AppendError>) -> (Receiver, Recorder) {
        let recorder = Recorder {
            received: Arc::default(),
            fail,
        };
        let receiver = Receiver::new(id);
        receiver.install(recorder.clone());
        (receiver, recorder)
    }

    fn profiles(&self) -> Vec<Profile> {
        self.received.lock().unwrap().clone()
    }

    /// The label sets received, one per series or ingest request.
    fn label_sets(&self) -> Vec<Labels> {
        self.profiles()
            .into_iter()
            .flat_map(|p| match p.payload {
                Payload::Push(series) => series.into_iter().map(|s| s.labels).collect(),
                Payload::Ingest(i) => vec![i.labels],
            })
            .collect()
    }
}

const ID: &str = "pyroscope.relabel.test";

/// A relabel component wired to one recording downstream.
struct Harness {
    relabel: Relabel,
    registry: Registry,
    downstream: Recorder,
    forward_to: Vec<Receiver>,
}

impl Harness {
    fn new(rules: Vec<RuleConfig>, max_cache_size: usize) -> Harness {
        let mut registry = Registry::default();
        let metrics = Arc::new(Metrics::register(&mut registry));
        let (target, downstream) = Recorder::install("pyroscope.write.test", None);
        let args = Arguments {
            forward_to: vec![target.clone()],
            rules,
            max_cache_size,
        };
        let relabel = Relabel::start(ID, Receiver::new(ID), args, metrics).unwrap();
        Harness {
            relabel,
            registry,
            downstream,
            forward_to: vec![target],
        }
    }

    async fn append(&self, profile: Profile) -> Result<(), AppendError> {
        self.relabel.receiver().append(profile).await
    }

    fn args(&self, rules: Vec<RuleConfig>, max_cache_size: usize) -> Arguments {
        Arguments {
            forward_to: self.forward_to.clone(),
            rules,
            max_cache_size,
        }
    }

    fn cache_len(&self) -> usize {
        self.relabel.shared.cache.len()
    }

    /// A metric's value for this component, read from the text exposition.
    fn metric(&self, name: &str) -> u64 {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
        let prefix = format!(r#"{name}{{component_id="{ID}",component_path="/"}} "#);
        let line = text
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("{name} not in:\n{text}"));
        line[prefix.len()..].parse().unwrap()
    }
}

fn ingest(labels: Labels) -> Profile {
    Profile::new(Payload::Ingest(IngestProfile {
        body: Bytes::from_static(b"foo;bar 1\n"),
        content_types: Vec::new(),
        path: "/ingest".to_owned(),
        query: "name=app.cpu&format=folded".to_owned(),
        labels,
    }))
}

fn push(sets: Vec<Labels>) -> Profile {
    let series = sets
        .into_iter()
        .enumerate()
        .map(|(i, labels)| Series {
            labels,
            samples: vec![Sample {
                id: format!("sample-{i}"),
                raw_profile: Bytes::from(format!("pprof-{i}")),
            }],
        })
        .collect();
    Profile::new(Payload::Push(series))
}
