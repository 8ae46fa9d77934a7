//! Retention and max_size delete whole segments, oldest first.

use std::time::Duration;

use super::*;
use crate::archive::{ComponentMetrics, Filter, RecordId};

fn kept_ids(store: &Store) -> Vec<u64> {
    let mut ids: Vec<u64> = store
        .list(&Filter::default())
        .iter()
        .map(|m| m.id.0)
        .collect();
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn max_size_evicts_the_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = ComponentMetrics::default();
    let limits = Limits {
        retention: Duration::from_secs(3600),
        max_size: 4000,
        segment_size: 1000,
    };
    let options = StoreOptions {
        clock: None,
        metrics: Some(metrics.clone()),
        on_failure: None,
    };
    let store = Store::open_with(dir.path(), limits, options).unwrap();
    for i in 1..=40u32 {
        store
            .append(vec![push("svc", "t", &[i as u8; 300])])
            .await
            .unwrap();
        let stats = store.stats();
        assert!(stats.disk_bytes <= 4000, "after {i}: {stats:?}");
        let on_disk: u64 = segment_files(dir.path())
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum();
        assert_eq!(on_disk, stats.disk_bytes);
        let kept = kept_ids(&store);
        let oldest = kept[0];
        assert_eq!(
            kept,
            (oldest..=u64::from(i)).collect::<Vec<_>>(),
            "a contiguous newest run"
        );
    }
    let stats = store.stats();
    assert!(stats.disk_bytes > 4000 - 1000, "{stats:?}");
    let evicted = 40 - stats.profiles as u64;
    assert!(evicted > 20);
    assert_eq!(metrics.evicted_profiles.get(), evicted);
    assert_eq!(metrics.stored_profiles.get(), 40);
    assert_eq!(metrics.stored_bytes.get(), 40 * 300);
    assert_eq!(metrics.profiles.get(), stats.profiles as i64);
    assert_eq!(metrics.disk_bytes.get(), stats.disk_bytes as i64);
    // The oldest kept record is readable, the evicted ones are gone.
    let oldest = kept_ids(&store)[0];
    assert!(store.read(RecordId(oldest)).unwrap().is_some());
    assert!(store.read(RecordId(oldest - 1)).unwrap().is_none());
}

#[tokio::test]
async fn retention_evicts_by_arrival_and_ids_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new();
    let limits = Limits {
        retention: Duration::from_secs(25),
        max_size: 1 << 20,
        segment_size: 1,
    };
    let store = open_with_clock(dir.path(), limits, &clock);
    for secs in [0, 10, 20] {
        clock.set_secs(secs);
        store
            .append(vec![push("svc", "t", b"profile")])
            .await
            .unwrap();
    }
    assert_eq!(kept_ids(&store), vec![1, 2, 3]);
    clock.set_secs(30);
    store.enforce().await;
    assert_eq!(kept_ids(&store), vec![2, 3], "older than 25s: id 1 (t=0)");
    // The active segment goes too once it is all older than retention.
    clock.set_secs(100);
    store.enforce().await;
    assert_eq!(kept_ids(&store), Vec::<u64>::new());
    assert_eq!(
        segment_files(dir.path()).len(),
        1,
        "an empty active segment remains"
    );
    drop(store);
    let store = open_with_clock(dir.path(), limits, &clock);
    assert_eq!(
        store.append(vec![push("svc", "t", b"x")]).await.unwrap(),
        vec![RecordId(4)]
    );
}

#[tokio::test]
async fn retention_keeps_a_segment_until_its_newest_record_expires() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new();
    let limits = Limits {
        retention: Duration::from_secs(15),
        max_size: 1 << 20,
        segment_size: 1 << 20,
    };
    let store = open_with_clock(dir.path(), limits, &clock);
    for secs in [0, 10] {
        clock.set_secs(secs);
        store
            .append(vec![push("svc", "t", b"profile")])
            .await
            .unwrap();
    }
    clock.set_secs(20);
    store.enforce().await;
    assert_eq!(
        kept_ids(&store),
        vec![1, 2],
        "one segment, its newest record is 10s old"
    );
    clock.set_secs(26);
    store.enforce().await;
    assert_eq!(kept_ids(&store), Vec::<u64>::new());
}

#[tokio::test]
async fn new_limits_apply_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        retention: Duration::from_secs(3600),
        max_size: 1 << 20,
        segment_size: 500,
    };
    let store = Store::open(dir.path(), limits).unwrap();
    for i in 0..20u8 {
        store
            .append(vec![push("svc", "t", &[i; 200])])
            .await
            .unwrap();
    }
    assert_eq!(store.stats().profiles, 20);
    store.set_limits(Limits {
        max_size: 1000,
        ..limits
    });
    store.enforce().await;
    let stats = store.stats();
    assert!(stats.disk_bytes <= 1000 && stats.profiles >= 2, "{stats:?}");
    assert_eq!(*kept_ids(&store).last().unwrap(), 20);
}
