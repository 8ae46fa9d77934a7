//! The admin API handler.

use http::{Method, StatusCode};

use super::*;
use crate::archive::api::{handle, parse_query};

async fn two_archives(root: &Path) -> Vec<(String, Arc<Store>)> {
    let clock = FakeClock::new();
    let local = open_with_clock(&root.join("pyroscope.archive.local"), big_limits(), &clock);
    let other = open_with_clock(&root.join("pyroscope.archive.other"), big_limits(), &clock);
    local
        .append(vec![push("api", "process_cpu", b"push-body")])
        .await
        .unwrap();
    clock.set_secs(10);
    other
        .append(vec![ingest(
            "web.cpu",
            "name=web.cpu&format=folded",
            b"a;b 1",
        )])
        .await
        .unwrap();
    clock.set_secs(20);
    local
        .append(vec![NewRecord {
            origin: Origin::Ingest {
                content_types: vec!["multipart/form-data; boundary=x".into()],
                path: "/ingest".into(),
                query: "name=api.cpu".into(),
            },
            labels: Labels::from_pairs([("__name__", "api.cpu")]),
            body: Bytes::from_static(b"--x--"),
        }])
        .await
        .unwrap();
    vec![
        ("pyroscope.archive.local".to_string(), Arc::new(local)),
        ("pyroscope.archive.other".to_string(), Arc::new(other)),
    ]
}

fn json(r: &http::Response<Bytes>) -> serde_json::Value {
    assert_eq!(r.headers()["content-type"], "application/json");
    serde_json::from_slice(r.body()).unwrap()
}

#[tokio::test]
async fn lists_every_archive_newest_first() {
    let root = tempfile::tempdir().unwrap();
    let stores = two_archives(root.path()).await;
    let r = handle(&stores, &Method::GET, "/api/v1/profiles", None)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v = json(&r);
    let ids: Vec<&str> = v["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["local-2", "other-1", "local-1"]);
    let p = &v["profiles"][1];
    assert_eq!(p["component_id"], "pyroscope.archive.other");
    assert_eq!(p["service"], "web");
    assert_eq!(p["profile_type"], "cpu");
    assert_eq!(p["size"], 5);
    assert_eq!(p["time"], "2023-11-14T22:13:30.000000000Z");
    assert_eq!(p["origin"]["query"], "name=web.cpu&format=folded");

    let r = handle(
        &stores,
        &Method::GET,
        "/api/v1/profiles/",
        Some("service=api&limit=1"),
    )
    .await
    .unwrap();
    let v = json(&r);
    assert_eq!(v["profiles"].as_array().unwrap().len(), 1);
    assert_eq!(v["profiles"][0]["id"], "local-2");
    let r = handle(
        &stores,
        &Method::GET,
        "/api/v1/profiles",
        Some("label=__name__%3Dweb.cpu&since=2023-11-14T22:13:35Z"),
    )
    .await
    .unwrap();
    assert_eq!(json(&r)["profiles"].as_array().unwrap().len(), 0);
    let r = handle(
        &stores,
        &Method::GET,
        "/api/v1/profiles",
        Some("label=__name__=web.cpu"),
    )
    .await
    .unwrap();
    assert_eq!(json(&r)["profiles"][0]["id"], "other-1");
}

#[tokio::test]
async fn serves_the_bytes_with_their_content_type() {
    let root = tempfile::tempdir().unwrap();
    let stores = two_archives(root.path()).await;
    let get = |path: &'static str| {
        let stores = stores.clone();
        async move { handle(&stores, &Method::GET, path, None).await.unwrap() }
    };
    let r = get("/api/v1/profiles/local-1").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"local-1.pb\""
    );
    assert_eq!(&r.body()[..], b"push-body");
    let r = get("/api/v1/profiles/local-2").await;
    assert_eq!(
        r.headers()["content-type"],
        "multipart/form-data; boundary=x"
    );
    assert_eq!(&r.body()[..], b"--x--");
    assert_eq!(&get("/api/v1/profiles/other-1").await.body()[..], b"a;b 1");
    // A bare id is fine when only one archive has it.
    assert_eq!(&get("/api/v1/profiles/2").await.body()[..], b"--x--");
    let r = get("/api/v1/profiles/1").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "in both archives");
    assert!(
        json(&r)["error"]
            .as_str()
            .unwrap()
            .contains("local-1, other-1")
    );
    assert_eq!(
        get("/api/v1/profiles/local-9").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get("/api/v1/profiles/nope-1").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get("/api/v1/profiles/xyz").await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn rejects_bad_requests_and_ignores_other_paths() {
    let root = tempfile::tempdir().unwrap();
    let stores = two_archives(root.path()).await;
    for query in [
        "since=yesterday",
        "limit=-1",
        "label=novalue",
        "service=%zz",
    ] {
        let r = handle(&stores, &Method::GET, "/api/v1/profiles", Some(query))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        assert!(json(&r)["error"].is_string());
    }
    let r = handle(&stores, &Method::POST, "/api/v1/profiles", None)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "GET");
    for other in ["/metrics", "/api/v1/profilesx", "/api/v1/other"] {
        assert!(
            handle(&stores, &Method::GET, other, None).await.is_none(),
            "{other}"
        );
    }
    assert_eq!(parse_query("").unwrap().limit, Some(100));
    assert_eq!(
        parse_query("service=a+b").unwrap().service.as_deref(),
        Some("a b")
    );
}
