//! Appending, reading, listing and recovering a store.

use std::fs::OpenOptions;
use std::time::Duration;

use super::*;
use crate::archive::{ArchiveError, Filter, RecordId};

#[tokio::test]
async fn appended_records_read_back_with_their_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new();
    let store = open_with_clock(dir.path(), big_limits(), &clock);
    let ids = store
        .append(vec![
            push("api", "process_cpu", b"pprof-1"),
            ingest("web.cpu", "name=web.cpu&from=1", b"body-2"),
        ])
        .await
        .unwrap();
    assert_eq!(ids, vec![RecordId(1), RecordId(2)]);

    let (meta, body) = store.read(RecordId(1)).unwrap().unwrap();
    assert_eq!(&body[..], b"pprof-1");
    assert_eq!(
        (meta.service.as_str(), meta.profile_type.as_str()),
        ("api", "process_cpu")
    );
    assert_eq!(meta.arrival, FakeClock::at(0));
    assert_eq!(meta.size, 7);
    assert_eq!(
        meta.origin,
        Origin::Push {
            sample_id: "sample-7".into()
        }
    );

    let (meta, body) = store.read(RecordId(2)).unwrap().unwrap();
    assert_eq!(&body[..], b"body-2");
    assert_eq!(
        (meta.service.as_str(), meta.profile_type.as_str()),
        ("web", "cpu")
    );
    assert_eq!(meta.labels.get("__name__"), Some("web.cpu"));
    let Origin::Ingest {
        query,
        content_types,
        path,
    } = &meta.origin
    else {
        panic!()
    };
    assert_eq!(
        (query.as_str(), path.as_str()),
        ("name=web.cpu&from=1", "/ingest")
    );
    assert_eq!(content_types, &["application/octet-stream"]);

    assert!(store.read(RecordId(3)).unwrap().is_none());
    let json = serde_json::to_value(&meta).unwrap();
    assert_eq!(json["seq"], 2);
    assert_eq!(json["time"], "2023-11-14T22:13:20.000000000Z");
    assert_eq!(json["origin"]["kind"], "ingest");
    assert_eq!(json["labels"]["__name__"], "web.cpu");
}

#[tokio::test]
async fn ids_continue_after_reopen_and_a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), big_limits()).unwrap();
    store
        .append(vec![push("a", "t", b"1"), push("a", "t", b"2")])
        .await
        .unwrap();
    assert!(matches!(
        Store::open(dir.path(), big_limits()),
        Err(ArchiveError::Locked(_))
    ));
    drop(store);
    let store = Store::open(dir.path(), big_limits()).unwrap();
    assert_eq!(
        store.append(vec![push("a", "t", b"3")]).await.unwrap(),
        vec![RecordId(3)]
    );
    assert_eq!(store.stats().profiles, 3);
}

#[tokio::test]
async fn concurrent_appends_get_distinct_ids_and_all_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), big_limits()).unwrap());
    let tasks: Vec<_> = (0..32)
        .map(|w| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..20 {
                    let body = format!("writer {w} profile {i}");
                    ids.push((
                        store
                            .append(vec![push("svc", "t", body.as_bytes())])
                            .await
                            .unwrap()[0],
                        body,
                    ));
                }
                ids
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let mut ids: Vec<_> = all.iter().map(|(id, _)| id.0).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=640).collect::<Vec<_>>());
    drop(store);
    let store = Store::open(dir.path(), big_limits()).unwrap();
    for (id, body) in all {
        assert_eq!(store.read(id).unwrap().unwrap().1, body.as_bytes());
    }
}

async fn five_records(dir: &Path) -> u64 {
    let store = Store::open(dir, big_limits()).unwrap();
    for i in 1..=5u8 {
        store
            .append(vec![push("svc", "t", &[i; 100])])
            .await
            .unwrap();
    }
    std::fs::metadata(&segment_files(dir)[0]).unwrap().len()
}

#[tokio::test]
async fn a_torn_tail_is_cut_off_and_earlier_records_survive() {
    let dir = tempfile::tempdir().unwrap();
    let len = five_records(dir.path()).await;
    let seg = &segment_files(dir.path())[0];
    OpenOptions::new()
        .write(true)
        .open(seg)
        .unwrap()
        .set_len(len - 7)
        .unwrap();

    let ro = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(ro.stats().profiles, 4);
    assert_eq!(
        std::fs::metadata(seg).unwrap().len(),
        len - 7,
        "read-only open must not truncate"
    );
    assert!(matches!(
        ro.append(vec![push("a", "t", b"x")]).await,
        Err(ArchiveError::ReadOnly(_))
    ));

    let store = Store::open(dir.path(), big_limits()).unwrap();
    let record_len = (len - 8) / 5;
    assert_eq!(std::fs::metadata(seg).unwrap().len(), 8 + 4 * record_len);
    for i in 1..=4u8 {
        assert_eq!(
            store.read(RecordId(i.into())).unwrap().unwrap().1,
            vec![i; 100]
        );
    }
    assert!(store.read(RecordId(5)).unwrap().is_none());
    assert_eq!(
        store.append(vec![push("a", "t", b"new")]).await.unwrap(),
        vec![RecordId(5)]
    );
    drop(store);
    let store = Store::open(dir.path(), big_limits()).unwrap();
    assert_eq!(store.stats().profiles, 5);
    assert_eq!(&store.read(RecordId(5)).unwrap().unwrap().1[..], b"new");
}

#[tokio::test]
async fn trailing_zeros_are_cut_and_a_damaged_record_in_the_middle_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let len = five_records(dir.path()).await;
    let seg = segment_files(dir.path())[0].clone();
    // A crash after the size grew but before the data reached the disk.
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend_from_slice(&[0; 300]);
    std::fs::write(&seg, &bytes).unwrap();
    drop(Store::open(dir.path(), big_limits()).unwrap());
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), len);

    // Flip a body byte of record 3: it is skipped, 1, 2, 4 and 5 stay.
    let record_len = (len - 8) / 5;
    let at = (8 + 2 * record_len + record_len / 2) as usize;
    bytes.truncate(len as usize);
    bytes[at] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let store = Store::open(dir.path(), big_limits()).unwrap();
    let ids: Vec<u64> = store
        .list(&Filter::default())
        .iter()
        .map(|m| m.id.0)
        .collect();
    assert_eq!(ids, vec![5, 4, 2, 1]);
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), len);
    // Damage to a length field: the scan finds the next intact record.
    bytes[(8 + record_len) as usize] ^= 0x7f;
    drop(store);
    std::fs::write(&seg, &bytes).unwrap();
    let store = Store::open(dir.path(), big_limits()).unwrap();
    let ids: Vec<u64> = store
        .list(&Filter::default())
        .iter()
        .map(|m| m.id.0)
        .collect();
    assert_eq!(ids, vec![5, 4, 1]);
    assert_eq!(
        store.append(vec![push("a", "t", b"x")]).await.unwrap(),
        vec![RecordId(6)]
    );
}

#[tokio::test]
async fn a_damaged_sealed_record_fails_its_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        segment_size: 1,
        ..big_limits()
    };
    let store = Store::open(dir.path(), limits).unwrap();
    for i in 1..=3u8 {
        store
            .append(vec![push("svc", "t", &[i; 100])])
            .await
            .unwrap();
    }
    drop(store);
    let first = &segment_files(dir.path())[0];
    let mut bytes = std::fs::read(first).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 1;
    std::fs::write(first, bytes).unwrap();
    let store = Store::open(dir.path(), limits).unwrap();
    assert!(matches!(
        store.read(RecordId(1)),
        Err(ArchiveError::Corrupt(_))
    ));
    assert_eq!(store.read(RecordId(2)).unwrap().unwrap().1, vec![2; 100]);
    assert_eq!(store.list(&Filter::default()).len(), 3);
}

#[tokio::test]
async fn list_filters_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new();
    let store = open_with_clock(dir.path(), big_limits(), &clock);
    let mut with_env = push("api", "memory", b"4");
    with_env.labels.set("env", "prod");
    for (secs, rec) in [
        (0, push("api", "process_cpu", b"1")),
        (10, push("web", "process_cpu", b"2")),
        (20, ingest("api.cpu", "name=api.cpu", b"3")),
        (30, with_env),
    ] {
        clock.set_secs(secs);
        store.append(vec![rec]).await.unwrap();
    }
    let ids = |f: Filter| store.list(&f).iter().map(|m| m.id.0).collect::<Vec<_>>();
    assert_eq!(ids(Filter::default()), vec![4, 3, 2, 1]);
    assert_eq!(
        ids(Filter {
            service: Some("api".into()),
            ..Filter::default()
        }),
        vec![4, 3, 1]
    );
    assert_eq!(
        ids(Filter {
            since: Some(FakeClock::at(10)),
            ..Filter::default()
        }),
        vec![4, 3, 2]
    );
    assert_eq!(
        ids(Filter {
            labels: vec![("env".into(), "prod".into())],
            ..Filter::default()
        }),
        vec![4]
    );
    assert_eq!(
        ids(Filter {
            limit: Some(2),
            ..Filter::default()
        }),
        vec![4, 3]
    );
    let all = store.list(&Filter::default());
    assert_eq!(
        all[1].origin,
        Origin::Ingest {
            content_types: vec!["application/octet-stream".into()],
            path: "/ingest".into(),
            query: "name=api.cpu".into(),
        }
    );
    assert_eq!(all[3].arrival, FakeClock::at(0));
}

#[tokio::test]
async fn a_profile_as_big_as_max_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Limits::new(Duration::from_secs(60), 1000)).unwrap();
    let err = store
        .append(vec![push("a", "t", &[0; 1000])])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::TooLarge {
                size: 1000,
                max: 1000
            }
        ),
        "{err}"
    );
    assert_eq!(
        store.append(vec![push("a", "t", &[0; 10])]).await.unwrap(),
        vec![RecordId(1)]
    );
}
