//! The component: profiles from a `Receiver` land in the store byte for
//! byte; updates move the store or change its limits.

use bytes::Bytes;
use http::HeaderValue;
use prometheus_client::registry::Registry;
use std::time::Duration;

use super::*;
use crate::archive::{Archive, Arguments, Filter, Metrics, RecordId};
use crate::pipeline::{IngestProfile, Payload, Profile, Receiver, Sample, Series};
use crate::runtime::{Health, HealthState};

fn start(data_dir: &Path, args: Arguments) -> (Archive, Receiver, Registry) {
    let (archive, receiver, registry, _) = start_with_health(data_dir, args);
    (archive, receiver, registry)
}

fn start_with_health(data_dir: &Path, args: Arguments) -> (Archive, Receiver, Registry, Health) {
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let receiver = Receiver::new("pyroscope.archive.local");
    let health = Health::new();
    let archive = Archive::start(
        "pyroscope.archive.local",
        data_dir.to_owned(),
        receiver.clone(),
        args,
        metrics,
        health.clone(),
    )
    .unwrap();
    (archive, receiver, registry, health)
}

#[tokio::test]
async fn a_failed_fsync_fails_its_batch_shows_in_health_and_writing_resumes_in_a_new_segment() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("a");
    let (archive, receiver, _registry, health) = start_with_health(&dir, Arguments::default());
    receiver.append(node_ingest()).await.unwrap();
    assert_eq!(health.state(), HealthState::Healthy);
    let segments_before = segment_files(&dir).len();

    archive.store().fail_next_sync();
    let err = receiver.append(node_ingest()).await.unwrap_err();
    assert!(err.message.contains("fsync"), "{}", err.message);
    let HealthState::Unhealthy(reason) = health.state() else {
        panic!("expected unhealthy, got {:?}", health.state())
    };
    assert!(
        reason.contains("writes to the archive are failing (fsync: "),
        "{reason}"
    );

    // The failed segment is never synced again: the next append goes to a
    // new segment, succeeds, and health recovers.
    receiver.append(node_ingest()).await.unwrap();
    assert_eq!(health.state(), HealthState::Healthy);
    assert_eq!(segment_files(&dir).len(), segments_before + 1);
    let ids: Vec<u64> = archive
        .store()
        .list(&Default::default())
        .iter()
        .map(|m| m.id.0)
        .collect();
    // The record whose sync failed is not in the index of this run.
    assert_eq!(ids, vec![3, 1]);
}

pub(super) fn node_ingest() -> Profile {
    Profile::new(Payload::Ingest(IngestProfile {
        body: Bytes::from(fixture("node_wall_cpu.pb.gz")),
        content_types: vec![HeaderValue::from_static("application/octet-stream")],
        path: "/ingest".into(),
        query: "name=node-app.wall%7Benv%3Dprod%7D&from=1700000000&until=1700000010&format=pprof"
            .into(),
        labels: Labels::from_pairs([("__name__", "node-app.wall"), ("env", "prod")]),
    }))
}

pub(super) fn fixture_push() -> Profile {
    let series = decode_push_request(&fixture("push_request.bin"))
        .into_iter()
        .map(|(labels, samples)| Series {
            labels,
            samples: samples
                .into_iter()
                .map(|(id, raw_profile)| Sample { id, raw_profile })
                .collect(),
        })
        .collect();
    Profile::new(Payload::Push(series))
}

#[tokio::test]
async fn fixtures_round_trip_byte_exact() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("pyroscope.archive.local");
    let (archive, receiver, registry) = start(&dir, Arguments::default());

    let push = fixture_push();
    let Payload::Push(series) = &push.payload else {
        unreachable!()
    };
    assert_eq!(series.len(), 1);
    let sample = series[0].samples[0].clone();
    let push_labels = series[0].labels.clone();
    assert!(sample.raw_profile.len() > 1000);
    receiver.append(push).await.unwrap();
    receiver.append(node_ingest()).await.unwrap();

    let store = archive.store();
    assert_eq!(store.dir(), dir);
    let (meta, body) = store.read(RecordId(1)).unwrap().unwrap();
    assert_eq!(body, sample.raw_profile);
    assert_eq!(meta.labels, push_labels);
    assert_eq!(
        meta.origin,
        Origin::Push {
            sample_id: sample.id.clone()
        }
    );
    assert_eq!(meta.service, push_labels.get("service_name").unwrap_or(""));

    let (meta, body) = store.read(RecordId(2)).unwrap().unwrap();
    assert_eq!(&body[..], &fixture("node_wall_cpu.pb.gz")[..]);
    assert_eq!(
        (meta.service.as_str(), meta.profile_type.as_str()),
        ("node-app", "wall")
    );
    let Origin::Ingest {
        content_types,
        query,
        ..
    } = &meta.origin
    else {
        panic!()
    };
    assert_eq!(content_types, &["application/octet-stream"]);
    assert!(query.starts_with("name=node-app.wall%7Benv%3Dprod%7D&from="));

    // Byte exact across a restart too.
    drop(store);
    archive.stop();
    let store = Store::open(&dir, big_limits()).unwrap();
    assert_eq!(
        store.read(RecordId(1)).unwrap().unwrap().1,
        sample.raw_profile
    );
    assert_eq!(
        &store.read(RecordId(2)).unwrap().unwrap().1[..],
        &fixture("node_wall_cpu.pb.gz")[..]
    );
    let text = crate::telemetry::encode_text(&registry);
    assert!(
        !text.contains("component_id=\"pyroscope.archive.local\""),
        "stop removes the series:\n{text}"
    );
}

#[tokio::test]
async fn metrics_count_what_is_stored() {
    let data = tempfile::tempdir().unwrap();
    let (_archive, receiver, registry) = start(data.path(), Arguments::default());
    receiver.append(node_ingest()).await.unwrap();
    let text = crate::telemetry::encode_text(&registry);
    let labels = r#"{component_id="pyroscope.archive.local",component_path="/"}"#;
    let size = fixture("node_wall_cpu.pb.gz").len();
    for line in [
        format!("pyroscope_archive_stored_profiles_total{labels} 1"),
        format!("pyroscope_archive_stored_bytes_total{labels} {size}"),
        format!("pyroscope_archive_evicted_profiles_total{labels} 0"),
        format!("pyroscope_archive_profiles{labels} 1"),
    ] {
        assert!(text.contains(&line), "missing {line} in\n{text}");
    }
    assert!(
        text.contains(&format!("pyroscope_archive_disk_bytes{labels} ")),
        "{text}"
    );
}

#[tokio::test]
async fn update_moves_the_store_and_applies_limits() {
    let data = tempfile::tempdir().unwrap();
    let (archive, receiver, _registry) = start(data.path(), Arguments::default());
    receiver.append(node_ingest()).await.unwrap();
    let elsewhere = data.path().join("elsewhere");
    archive
        .update(Arguments {
            path: Some(elsewhere.clone()),
            ..Arguments::default()
        })
        .unwrap();
    assert_eq!(archive.store().dir(), elsewhere);
    assert_eq!(archive.store().stats().profiles, 0);
    receiver.append(node_ingest()).await.unwrap();
    assert_eq!(archive.store().stats().profiles, 1);
    assert_eq!(
        Store::open_read_only(data.path()).unwrap().stats().profiles,
        1
    );

    // Limits only: same store, eviction at once.
    let before = Arc::as_ptr(&archive.store());
    archive
        .update(Arguments {
            path: Some(elsewhere.clone()),
            retention: Duration::ZERO,
            max_size: 1 << 30,
        })
        .unwrap();
    assert_eq!(Arc::as_ptr(&archive.store()), before);
    archive.store().enforce().await;
    assert_eq!(archive.store().list(&Filter::default()).len(), 0);

    // An empty path means the data dir.
    archive.update(Arguments::default()).unwrap();
    assert_eq!(archive.store().dir(), data.path());
    assert_eq!(archive.store().stats().profiles, 1);
}

#[tokio::test]
async fn an_oversized_profile_is_refused_as_resource_exhausted() {
    let data = tempfile::tempdir().unwrap();
    let args = Arguments {
        max_size: 100,
        ..Arguments::default()
    };
    let (_archive, receiver, _registry) = start(data.path(), args);
    let err = receiver.append(node_ingest()).await.unwrap_err();
    assert_eq!(err.code, crate::codec::Code::ResourceExhausted);
    assert!(err.message.starts_with("archive: "), "{}", err.message);
}

#[tokio::test]
async fn the_cli_names_records_as_the_api_does_with_a_custom_path() {
    let data = tempfile::tempdir().unwrap();
    let custom = data.path().join("elsewhere");
    let args = Arguments {
        path: Some(custom.clone()),
        ..Arguments::default()
    };
    let (archive, receiver, _registry) = start(data.path(), args);
    receiver.append(node_ingest()).await.unwrap();
    let api_id = crate::archive::qualified_id(archive.component_id(), RecordId(1));
    assert_eq!(api_id, "local-1");
    // The CLI pointed at the custom directory sees the same id.
    let opened = crate::archive::cli::open_all(&custom).unwrap();
    assert_eq!(opened[0].0, "pyroscope.archive.local");
    let mut out = Vec::new();
    crate::archive::cli::list(&custom, Filter::default(), true, &mut out).unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(listed["profiles"][0]["id"], "local-1");
}
