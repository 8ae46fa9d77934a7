//! `profiles list` and `profiles get`.

use std::io::Read;

use super::*;
use crate::archive::{Filter, cli, parse_since};

async fn storage_with_fixtures(root: &Path) {
    let clock = FakeClock::new();
    let store = open_with_clock(&root.join("pyroscope.archive.local"), big_limits(), &clock);
    let push = super::component::fixture_push();
    for rec in crate::archive::records_of(push) {
        store.append(vec![rec]).await.unwrap();
    }
    clock.set_secs(65);
    let mut rec = crate::archive::records_of(super::component::node_ingest()).remove(0);
    rec.labels.set("env", "prod");
    store.append(vec![rec]).await.unwrap();
    // Not an archive: ignored.
    std::fs::create_dir(root.join("something.else")).unwrap();
}

fn list(root: &Path, filter: Filter, json: bool) -> String {
    let mut out = Vec::new();
    cli::list(root, filter, json, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn list_prints_a_table_newest_first() {
    let root = tempfile::tempdir().unwrap();
    storage_with_fixtures(root.path()).await;
    let table = list(root.path(), Filter::default(), false);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    let cells = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        cells(lines[0]),
        ["ID", "TIME", "SERVICE", "TYPE", "LABELS", "SIZE"]
    );
    let size = fixture("node_wall_cpu.pb.gz").len().to_string();
    assert_eq!(
        cells(lines[1]),
        [
            "local-2",
            "2023-11-14T22:14:25Z",
            "node-app",
            "wall",
            "{env=\"prod\"}",
            size.as_str()
        ]
    );
    assert!(lines[2].starts_with("local-1 "), "{table}");
    // Columns line up.
    let col = |l: &str| l.find("2023").unwrap();
    assert_eq!(col(lines[1]), col(lines[2]));
    assert_eq!(lines[0].find("TIME").unwrap(), col(lines[1]));

    let filtered = list(
        root.path(),
        Filter {
            service: Some("node-app".into()),
            ..Filter::default()
        },
        false,
    );
    assert_eq!(filtered.lines().count(), 2);
    let none = list(
        root.path(),
        Filter {
            since: Some(parse_since("1m").unwrap()),
            ..Filter::default()
        },
        false,
    );
    assert_eq!(none.lines().count(), 1, "header only");
}

#[tokio::test]
async fn list_json_matches_the_api() {
    let root = tempfile::tempdir().unwrap();
    storage_with_fixtures(root.path()).await;
    let v: serde_json::Value =
        serde_json::from_str(&list(root.path(), Filter::default(), true)).unwrap();
    assert_eq!(v["profiles"][0]["id"], "local-2");
    assert_eq!(v["profiles"][0]["labels"]["env"], "prod");
    assert_eq!(v["profiles"][1]["origin"]["kind"], "push");
    // The archive directory itself works as the storage path (custom `path`).
    let v: serde_json::Value = serde_json::from_str(&list(
        &root.path().join("pyroscope.archive.local"),
        Filter::default(),
        true,
    ))
    .unwrap();
    assert_eq!(v["profiles"][0]["id"], "local-2");
}

#[tokio::test]
async fn get_writes_the_body_or_the_gunzipped_pprof() {
    let root = tempfile::tempdir().unwrap();
    storage_with_fixtures(root.path()).await;
    let out = root.path().join("out");
    let gz = fixture("node_wall_cpu.pb.gz");
    cli::get(root.path(), "local-2", false, &out).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), gz);
    cli::get(root.path(), "2", true, &out).unwrap();
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), plain);

    let push = decode_push_request(&fixture("push_request.bin"));
    let raw = &push[0].1[0].1;
    cli::get(root.path(), "local-1", false, &out).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), &raw[..]);

    assert!(matches!(
        cli::get(root.path(), "local-3", false, &out),
        Err(crate::archive::ArchiveError::NotFound(_))
    ));
    assert!(cli::get(&root.path().join("missing"), "local-1", false, &out).is_err());
}

#[tokio::test]
async fn cli_reads_while_the_relay_holds_the_store() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("pyroscope.archive.local");
    let store = Store::open(&dir, big_limits()).unwrap();
    store.append(vec![push("svc", "t", b"live")]).await.unwrap();
    let table = list(root.path(), Filter::default(), false);
    assert!(table.contains("local-1"), "{table}");
    store
        .append(vec![push("svc", "t", b"live2")])
        .await
        .unwrap();
    assert_eq!(
        list(root.path(), Filter::default(), false).lines().count(),
        3
    );
}

#[test]
fn parses_label_flags() {
    assert_eq!(
        cli::parse_label("env=prod").unwrap(),
        ("env".to_string(), "prod".to_string())
    );
    assert_eq!(
        cli::parse_label("a==b").unwrap(),
        ("a".to_string(), "=b".to_string())
    );
    assert!(cli::parse_label("env").is_err());
    assert!(cli::parse_label("=x").is_err());
}
