//! Cost of `pyroscope.relabel` per profile: one `/ingest` profile through
//! the component's receiver into a downstream that discards it, with the
//! result cache hit, off, or missed on every call (unique label sets), plus
//! the rules alone.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use prometheus_client::registry::Registry;
use std::hint::black_box;
use std::sync::Arc;

use pyroscope_relay::pipeline::{
    AppendError, Appender, IngestProfile, Labels, Payload, Profile, Receiver,
};
use pyroscope_relay::relabel::{Arguments, Metrics, Relabel, Rule, RuleConfig, apply};

struct Discard;

impl Appender for Discard {
    fn append(&self, _profile: Profile) -> BoxFuture<'_, Result<(), AppendError>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

fn rule(
    action: &str,
    sources: &[&str],
    regex: &str,
    target: &str,
    replacement: &str,
) -> RuleConfig {
    RuleConfig {
        action: action.to_owned(),
        source_labels: sources.iter().map(|s| s.to_string()).collect(),
        regex: regex.to_owned(),
        target_label: target.to_owned(),
        replacement: replacement.to_owned(),
        ..RuleConfig::default()
    }
}

/// A typical chain: rename, derive, shard, filter, clean up.
fn rules() -> Vec<RuleConfig> {
    vec![
        rule("replace", &["env"], "(.*)", "environment", "$1"),
        rule("labeldrop", &[], "env", "", "$1"),
        rule("replace", &["region"], "us-(.+)", "zone", "zone-$1"),
        RuleConfig {
            modulus: 8,
            ..rule("hashmod", &["service_name"], "(.*)", "__tmp_shard", "$1")
        },
        rule("drop", &["environment"], "dev|test", "", "$1"),
        rule("labeldrop", &[], "__tmp_.*", "", "$1"),
    ]
}

fn labels(i: u64) -> Labels {
    Labels::from_pairs([
        ("__name__", "process_cpu".to_owned()),
        ("env", "prod".to_owned()),
        ("namespace", "checkout".to_owned()),
        ("pod", format!("checkout-{i}")),
        ("region", "us-east-1".to_owned()),
        ("service_name", format!("checkout-{}", i % 16)),
    ])
}

fn ingest(labels: Labels) -> Profile {
    Profile::new(Payload::Ingest(IngestProfile {
        body: bytes::Bytes::from_static(b"foo;bar 1\n"),
        content_types: Vec::new(),
        path: "/ingest".to_owned(),
        query: "name=checkout.cpu".to_owned(),
        labels,
    }))
}

fn component(max_cache_size: usize) -> Relabel {
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let target = Receiver::new("pyroscope.write.discard");
    target.install(Discard);
    let args = Arguments {
        forward_to: vec![target],
        rules: rules(),
        max_cache_size,
    };
    let id = "pyroscope.relabel.bench";
    Relabel::start(id, Receiver::new(id), args, metrics).expect("valid rules")
}

/// The downstream is always ready, so the append completes at once.
fn send(relabel: &Relabel, profile: Profile) {
    let result = relabel.receiver().append(profile).now_or_never();
    result.expect("completes synchronously").expect("accepted");
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("relabel_per_profile");
    let same = labels(1);

    let cached = component(10_000);
    group.bench_function("cache_hit", |b| {
        b.iter_batched(
            || ingest(same.clone()),
            |p| send(&cached, p),
            BatchSize::SmallInput,
        )
    });

    let uncached = component(0);
    group.bench_function("cache_off", |b| {
        b.iter_batched(
            || ingest(same.clone()),
            |p| send(&uncached, p),
            BatchSize::SmallInput,
        )
    });

    let evicting = component(10_000);
    let mut i = 0u64;
    group.bench_function("cache_miss_unique_sets", |b| {
        b.iter_batched(
            || {
                i += 1;
                ingest(labels(i))
            },
            |p| send(&evicting, p),
            BatchSize::SmallInput,
        )
    });

    let compiled = Rule::compile_all(&rules()).expect("valid rules");
    group.bench_function("rules_only", |b| {
        b.iter(|| black_box(apply(&compiled, black_box(&same))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
