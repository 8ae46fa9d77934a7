//! The component end to end: Alloy's `relabel_test.go` cases, the cache,
//! the metrics, forwarding and updates.

use http::{HeaderName, HeaderValue};
use prometheus_client::registry::Registry;
use std::sync::Arc;

use super::{Harness, ID, Recorder, ingest, ls, push, rule, strings};
use crate::codec::Code;
use crate::pipeline::{AppendError, Labels, Payload, Receiver};
use crate::relabel::{Arguments, DEFAULT_MAX_CACHE_SIZE, Metrics, Relabel, RuleConfig};

fn replace(source: &str, regex: &str, target: &str, replacement: &str) -> RuleConfig {
    RuleConfig {
        source_labels: strings(&[source]),
        regex: regex.to_owned(),
        target_label: target.to_owned(),
        replacement: replacement.to_owned(),
        ..rule("replace")
    }
}

fn matching(action: &str, source: &str, regex: &str) -> RuleConfig {
    RuleConfig {
        source_labels: strings(&[source]),
        regex: regex.to_owned(),
        ..rule(action)
    }
}

fn labeldrop(regex: &str) -> RuleConfig {
    RuleConfig {
        regex: regex.to_owned(),
        ..rule("labeldrop")
    }
}

fn drop_dev() -> Vec<RuleConfig> {
    vec![matching("drop", "env", "dev")]
}

/// Alloy's `TestRelabeling`, on the ingest path: `None` = dropped.
#[tokio::test]
async fn relabeling_table() {
    let env_prod_us = ls(&[("env", "prod"), ("region", "us-1")]);
    let hashmod = RuleConfig {
        source_labels: strings(&["env"]),
        target_label: "__tmp_hash".to_owned(),
        modulus: 2,
        ..rule("hashmod")
    };
    let table: Vec<(&str, Vec<RuleConfig>, Labels, Option<Labels>)> = vec![
        (
            "empty labels",
            vec![replace("foo", "(.*)", "bar", "$1")],
            Labels::new(),
            Some(Labels::new()),
        ),
        (
            "rename",
            vec![replace("foo", "(.*)", "bar", "$1"), labeldrop("foo")],
            ls(&[("foo", "hello")]),
            Some(ls(&[("bar", "hello")])),
        ),
        (
            "drop dev",
            vec![matching("drop", "env", "dev")],
            ls(&[("env", "dev"), ("region", "us-1")]),
            None,
        ),
        (
            "keep prod",
            vec![matching("keep", "env", "prod")],
            env_prod_us.clone(),
            Some(env_prod_us.clone()),
        ),
        (
            "keep drops dev",
            vec![matching("keep", "env", "prod")],
            ls(&[("env", "dev")]),
            None,
        ),
        (
            "every label dropped",
            vec![labeldrop("env|region")],
            env_prod_us.clone(),
            Some(Labels::new()),
        ),
        (
            "drop on empty labels",
            vec![matching("drop", "env", "dev")],
            Labels::new(),
            Some(Labels::new()),
        ),
        (
            "hashmod then drop shard 1",
            vec![hashmod, matching("drop", "__tmp_hash", "^1$")],
            env_prod_us.clone(),
            None,
        ),
        (
            "several rules",
            vec![
                replace("env", "(.*)", "environment", "$1"),
                labeldrop("^env$"),
                replace("region", "us-(.+)", "zone", "zone-$1"),
            ],
            env_prod_us.clone(),
            Some(ls(&[
                ("environment", "prod"),
                ("region", "us-1"),
                ("zone", "zone-1"),
            ])),
        ),
    ];
    for (name, rules, input, want) in table {
        let h = Harness::new(rules, DEFAULT_MAX_CACHE_SIZE);
        h.append(ingest(input)).await.unwrap();
        let got = h.downstream.label_sets();
        assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "{name}");
    }
}

#[tokio::test]
async fn ingest_keeps_body_and_request_details() {
    let h = Harness::new(vec![replace("env", "(.*)", "stage", "$1")], 10);
    h.append(ingest(ls(&[("env", "prod")]))).await.unwrap();
    let Payload::Ingest(got) = &h.downstream.profiles()[0].payload else {
        panic!("expected ingest");
    };
    assert_eq!(got.labels, ls(&[("env", "prod"), ("stage", "prod")]));
    assert_eq!(&got.body[..], b"foo;bar 1\n");
    assert_eq!(got.query, "name=app.cpu&format=folded");
}

#[tokio::test]
async fn push_relabels_each_series_and_removes_dropped_ones() {
    let h = Harness::new(
        vec![
            matching("drop", "env", "dev"),
            replace("env", "(.*)", "tier", "t-$1"),
        ],
        10,
    );
    let mut profile = push(vec![
        ls(&[("env", "dev")]),
        ls(&[("env", "prod")]),
        Labels::new(),
    ]);
    let header = (
        HeaderName::from_static("x-scope-orgid"),
        HeaderValue::from_static("t1"),
    );
    profile.forwarded_headers = Arc::from(vec![header.clone()]);
    h.append(profile).await.unwrap();

    let received = h.downstream.profiles();
    assert_eq!(received.len(), 1);
    assert_eq!(&received[0].forwarded_headers[..], &[header]);
    let Payload::Push(series) = &received[0].payload else {
        panic!("expected push");
    };
    let got: Vec<_> = series
        .iter()
        .map(|s| (s.labels.clone(), s.samples[0].id.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                ls(&[("env", "prod"), ("tier", "t-prod")]),
                "sample-1".to_owned()
            ),
            (Labels::new(), "sample-2".to_owned()),
        ]
    );
    assert_eq!(h.metric("pyroscope_relabel_profiles_processed"), 3);
    assert_eq!(h.metric("pyroscope_relabel_profiles_written"), 2);
    assert_eq!(h.metric("pyroscope_relabel_profiles_dropped"), 1);
}

#[tokio::test]
async fn fully_dropped_request_succeeds_without_forwarding() {
    let h = Harness::new(drop_dev(), 10);
    let dev = ls(&[("env", "dev")]);
    h.append(push(vec![dev.clone(), dev.clone()]))
        .await
        .unwrap();
    h.append(ingest(dev)).await.unwrap();
    assert!(h.downstream.profiles().is_empty());
    assert_eq!(h.metric("pyroscope_relabel_profiles_dropped"), 3);
}

#[tokio::test]
async fn emptied_label_set_is_forwarded_on_every_call() {
    let h = Harness::new(vec![labeldrop(".*")], 10);
    for _ in 0..3 {
        h.append(ingest(ls(&[("env", "prod")]))).await.unwrap();
    }
    h.append(push(vec![ls(&[("env", "prod")])])).await.unwrap();
    assert_eq!(h.downstream.label_sets(), vec![Labels::new(); 4]);
    assert_eq!(h.metric("pyroscope_relabel_cache_hits"), 3);
    assert_eq!(h.metric("pyroscope_relabel_cache_misses"), 1);
    assert_eq!(h.metric("pyroscope_relabel_profiles_dropped"), 0);
    assert_eq!(h.metric("pyroscope_relabel_profiles_written"), 4);
}

/// Alloy's `TestCache`.
#[tokio::test]
async fn same_set_is_cached_once() {
    let h = Harness::new(drop_dev(), 10);
    h.append(ingest(ls(&[("env", "prod")]))).await.unwrap();
    h.append(ingest(ls(&[("env", "prod")]))).await.unwrap();
    assert_eq!(h.cache_len(), 1);
    assert_eq!(h.metric("pyroscope_relabel_cache_hits"), 1);
}

/// Alloy's `TestCacheCollisions`: these two sets share a Prometheus
/// fingerprint; here they are distinct keys with their own results.
#[tokio::test]
async fn fingerprint_colliding_sets_keep_their_own_results() {
    let kept = ls(&[("A", "K6sjsNNczPl"), ("__name__", "app.cpu")]);
    let dropped = ls(&[("A", "cswpLMIZpwt"), ("__name__", "app.cpu")]);
    let h = Harness::new(vec![matching("keep", "A", "K6sjsNNczPl")], 10);
    for _ in 0..2 {
        h.append(ingest(kept.clone())).await.unwrap();
        h.append(ingest(dropped.clone())).await.unwrap();
    }
    assert_eq!(h.cache_len(), 2);
    assert_eq!(h.downstream.label_sets(), vec![kept.clone(), kept]);
    assert_eq!(h.metric("pyroscope_relabel_cache_hits"), 2);
    assert_eq!(h.metric("pyroscope_relabel_profiles_dropped"), 2);
}

/// Alloy's `TestCacheLRU`.
#[tokio::test]
async fn least_recently_used_set_is_evicted() {
    let h = Harness::new(drop_dev(), 2);
    for env in ["prod", "dev", "stage"] {
        h.append(ingest(ls(&[("env", env)]))).await.unwrap();
    }
    assert_eq!(h.cache_len(), 2);
    assert_eq!(h.metric("pyroscope_relabel_cache_size"), 2);
    h.append(ingest(ls(&[("env", "dev")]))).await.unwrap();
    assert_eq!(
        h.metric("pyroscope_relabel_cache_hits"),
        1,
        "dev still cached"
    );
    h.append(ingest(ls(&[("env", "prod")]))).await.unwrap();
    assert_eq!(
        h.metric("pyroscope_relabel_cache_misses"),
        4,
        "prod was evicted"
    );
}

/// Alloy's `TestCachePurge`, plus: a forward_to-only change keeps the cache
/// and a size change resizes it.
#[tokio::test]
async fn cache_follows_updates() {
    let h = Harness::new(drop_dev(), 10);
    for env in ["prod", "dev", "stage"] {
        h.append(ingest(ls(&[("env", env)]))).await.unwrap();
    }
    let (other, other_downstream) = Recorder::install("pyroscope.write.other", None);
    let mut args = h.args(drop_dev(), 10);
    args.forward_to.push(other);
    h.relabel.update(args.clone()).unwrap();
    assert_eq!(h.cache_len(), 3, "same rules keep the cache");

    args.max_cache_size = 1;
    h.relabel.update(args.clone()).unwrap();
    assert_eq!(
        (h.cache_len(), h.metric("pyroscope_relabel_cache_size")),
        (1, 1)
    );

    args.rules = vec![matching("drop", "env", "prod")];
    h.relabel.update(args).unwrap();
    assert_eq!(
        (h.cache_len(), h.metric("pyroscope_relabel_cache_size")),
        (0, 0)
    );

    h.append(ingest(ls(&[("env", "dev")]))).await.unwrap();
    h.append(ingest(ls(&[("env", "prod")]))).await.unwrap();
    assert_eq!(other_downstream.label_sets(), vec![ls(&[("env", "dev")])]);
}

#[tokio::test]
async fn zero_cache_size_disables_caching() {
    let h = Harness::new(drop_dev(), 0);
    for _ in 0..3 {
        h.append(ingest(ls(&[("env", "prod")]))).await.unwrap();
    }
    assert_eq!(h.cache_len(), 0);
    assert_eq!(h.metric("pyroscope_relabel_cache_misses"), 3);
    assert_eq!(h.metric("pyroscope_relabel_cache_hits"), 0);
    assert_eq!(h.downstream.label_sets().len(), 3);
}

/// Alloy's `TestMetricsWithRelabeling`.
#[tokio::test]
async fn metrics_with_relabeling() {
    let h = Harness::new(drop_dev(), DEFAULT_MAX_CACHE_SIZE);
    h.append(push(vec![Labels::new()])).await.unwrap();
    h.append(push(vec![ls(&[("env", "prod")])])).await.unwrap();
    h.append(push(vec![ls(&[("env", "dev")])])).await.unwrap();
    h.append(ingest(ls(&[("env", "prod")]))).await.unwrap();
    h.append(ingest(ls(&[("env", "stage")]))).await.unwrap();
    let expected = [
        ("pyroscope_relabel_profiles_processed", 5),
        ("pyroscope_relabel_profiles_written", 4),
        ("pyroscope_relabel_profiles_dropped", 1),
        ("pyroscope_relabel_cache_hits", 1),
        ("pyroscope_relabel_cache_misses", 3),
        ("pyroscope_relabel_cache_size", 3),
    ];
    for (name, value) in expected {
        assert_eq!(h.metric(name), value, "{name}");
    }
}

#[tokio::test]
async fn forwards_to_all_and_combines_failures() {
    let (ok, ok_rec) = Recorder::install("pyroscope.write.ok", None);
    let limited = AppendError::from_http_status(429, "rate limited");
    let (busy, busy_rec) = Recorder::install("pyroscope.write.busy", Some(limited));
    let (down, down_rec) = Recorder::install(
        "pyroscope.write.down",
        Some(AppendError::unavailable("refused")),
    );
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let args = Arguments {
        forward_to: vec![ok, busy, down],
        rules: Vec::new(),
        max_cache_size: 10,
    };
    let relabel = Relabel::start(ID, Receiver::new(ID), args, metrics).unwrap();
    let err = relabel
        .receiver()
        .append(ingest(ls(&[("a", "1")])))
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        "failed to forward to pyroscope.write.busy: rate limited; \
         failed to forward to pyroscope.write.down: refused"
    );
    assert_eq!(
        (err.code, err.http_status),
        (Code::ResourceExhausted, Some(429))
    );
    for rec in [ok_rec, busy_rec, down_rec] {
        assert_eq!(rec.label_sets(), vec![ls(&[("a", "1")])]);
    }
}

#[tokio::test]
async fn no_targets_is_success() {
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let args = Arguments {
        forward_to: Vec::new(),
        rules: Vec::new(),
        max_cache_size: 10,
    };
    let relabel = Relabel::start(ID, Receiver::new(ID), args, metrics).unwrap();
    relabel
        .receiver()
        .append(ingest(ls(&[("a", "1")])))
        .await
        .unwrap();
}

#[tokio::test]
async fn invalid_rules_fail_start_and_leave_update_untouched() {
    let bad = vec![rule("keep"), rule("bogus")];
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let receiver = Receiver::new(ID);
    let args = Arguments {
        forward_to: Vec::new(),
        rules: bad.clone(),
        max_cache_size: 10,
    };
    let err = Relabel::start(ID, receiver.clone(), args, metrics)
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .starts_with("rule 2 of pyroscope.relabel: unrecognized")
    );
    assert!(
        receiver.append(ingest(Labels::new())).await.is_err(),
        "not installed"
    );

    let h = Harness::new(drop_dev(), 10);
    h.append(ingest(ls(&[("env", "prod")]))).await.unwrap();
    assert!(h.relabel.update(h.args(bad, 10)).is_err());
    assert_eq!(h.relabel.rules(), drop_dev());
    assert_eq!(h.cache_len(), 1);
    h.append(ingest(ls(&[("env", "dev")]))).await.unwrap();
    assert_eq!(h.downstream.label_sets(), vec![ls(&[("env", "prod")])]);
}

#[tokio::test]
async fn update_swaps_targets_and_exports_rules() {
    let h = Harness::new(drop_dev(), 10);
    assert_eq!(h.relabel.component_id(), ID);
    let (next, next_rec) = Recorder::install("pyroscope.write.next", None);
    let rules = vec![matching("keep", "env", "prod")];
    h.relabel
        .update(Arguments {
            forward_to: vec![next],
            rules: rules.clone(),
            max_cache_size: 10,
        })
        .unwrap();
    assert_eq!(h.relabel.rules(), rules);
    h.append(ingest(ls(&[("env", "prod")]))).await.unwrap();
    h.append(ingest(ls(&[("env", "stage")]))).await.unwrap();
    assert!(h.downstream.profiles().is_empty());
    assert_eq!(next_rec.label_sets(), vec![ls(&[("env", "prod")])]);
}

#[tokio::test]
async fn stop_takes_receiver_and_metrics_down() {
    let h = Harness::new(drop_dev(), 10);
    h.append(ingest(ls(&[("env", "prod")]))).await.unwrap();
    let receiver = h.relabel.receiver().clone();
    h.relabel.stop();
    let err = receiver
        .append(ingest(ls(&[("env", "prod")])))
        .await
        .unwrap_err();
    assert!(err.message.contains("not running"), "{}", err.message);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &h.registry).unwrap();
    assert!(!text.contains(ID), "{text}");
}
