//! The queue under faults, through the binary: a full queue, `kill -9`
//! under load, damaged segment files, and a chain of relays whose last
//! backend is slower than the first writer's timeout.

mod queue_support;

use queue_support::{FlakyBackend, RelayProc, free_port, ingest, metric, request, seq_of};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PROFILE: &[u8] = include_bytes!("fixtures/py_cpu.pb");
const PUSH: &[u8] = include_bytes!("fixtures/push_request.bin");

fn write_block(endpoints: &[String], endpoint_extra: &str, queue: Option<&str>) -> String {
    let endpoints: String = endpoints
        .iter()
        .map(|url| {
            format!(
                "  endpoint {{\n    url = \"{url}\"\n    min_backoff_period = \"50ms\"\n    max_backoff_period = \"500ms\"\n{endpoint_extra}\n  }}\n"
            )
        })
        .collect();
    let queue = queue.map_or(String::new(), |q| format!("  queue {{\n{q}\n  }}\n"));
    format!("pyroscope.write \"out\" {{\n{endpoints}{queue}}}\n")
}

fn config(port: u16, write: &str) -> String {
    format!(
        r#"
pyroscope.receive_http "in" {{
  http {{
    listen_address = "127.0.0.1"
    listen_port = {port}
  }}
  forward_to = [pyroscope.write.out.receiver]
}}
{write}"#
    )
}

fn seqs(delivered: &[queue_support::Delivered]) -> BTreeMap<usize, usize> {
    let mut out = BTreeMap::new();
    for d in delivered {
        if let Some(s) = seq_of(d) {
            *out.entry(s).or_default() += 1;
        }
    }
    out
}

fn push(port: u16) -> queue_support::Response {
    request(
        "POST",
        &format!("http://127.0.0.1:{port}/push.v1.PusherService/Push"),
        &[("Content-Type", "application/proto")],
        PUSH,
    )
    .unwrap()
}

#[test]
fn a_full_queue_refuses_with_429_and_retry_after_and_delivers_what_it_acknowledged() {
    let backend = FlakyBackend::start(503);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(
        dir.path(),
        &config(
            port,
            &write_block(&[backend.url()], "", Some("max_size = \"64KiB\"")),
        ),
    );
    let mut acked = BTreeSet::new();
    let mut refused = 0;
    for seq in 0..60 {
        let (r, _) = ingest(port, "full", seq, PROFILE);
        let r = r.unwrap();
        match r.status {
            200 => {
                acked.insert(seq);
            }
            429 => {
                refused += 1;
                let after: u64 = r.headers["retry-after"].parse().unwrap();
                assert!(after >= 1, "{:?}", r.headers);
                assert!(r.body.contains("queue is full"), "{}", r.body);
            }
            other => panic!("seq {seq}: {other} {}", r.body),
        }
    }
    assert!(
        (20..50).contains(&acked.len()),
        "64 KiB holds a few dozen 1.7 KB profiles: {}",
        acked.len()
    );
    assert_eq!(refused, 60 - acked.len());
    let p = push(port);
    assert_eq!(p.status, 429, "{}", p.body);
    assert!(p.body.contains("resource_exhausted"), "{}", p.body);
    let m = relay.metrics();
    assert_eq!(
        metric(&m, "pyroscope_write_queue_rejected_profiles_total", &[]),
        (refused + 1) as f64
    );
    assert!(metric(&m, "pyroscope_write_queue_size_bytes", &[]) <= 65536.0);
    assert_eq!(
        metric(&m, "pyroscope_write_queue_max_size_bytes", &[]),
        65536.0
    );

    backend.set_status(200);
    let delivered = backend.wait_delivered(acked.len(), Duration::from_secs(30));
    let got: BTreeSet<usize> = seqs(&delivered).into_keys().collect();
    assert_eq!(
        got, acked,
        "every acknowledged profile and none of the refused"
    );
    // Delivered data makes room again.
    std::thread::sleep(Duration::from_millis(1500));
    let (r, _) = ingest(port, "full", 1000, PROFILE);
    assert_eq!(r.unwrap().status, 200);
}

#[test]
fn drop_oldest_makes_room_and_counts_what_it_dropped() {
    let backend = FlakyBackend::start(503);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(
        dir.path(),
        &config(
            port,
            &write_block(
                &[backend.url()],
                "",
                Some(
                    "max_size = \"256KiB\"\n    when_full = \"drop_oldest\"\n    max_in_flight = 1",
                ),
            ),
        ),
    );
    for seq in 0..400 {
        let (r, _) = ingest(port, "drop", seq, PROFILE);
        assert_eq!(r.unwrap().status, 200, "drop_oldest never refuses");
    }
    std::thread::sleep(Duration::from_millis(1200));
    let m = relay.metrics();
    let dropped = metric(
        &m,
        "pyroscope_write_queue_dropped_profiles_total",
        &[("reason", "drop_oldest")],
    );
    let pending = metric(&m, "pyroscope_write_queue_pending_profiles", &[]);
    assert!(dropped > 200.0, "{m}");
    assert!(metric(&m, "pyroscope_write_queue_size_bytes", &[]) <= 262144.0);
    backend.set_status(200);
    // What is left is delivered: the newest ones, the in-flight one aside.
    let delivered = backend.wait_delivered(pending as usize, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(1000));
    let delivered_now = backend.delivered().len();
    let got = seqs(&backend.delivered());
    assert!(got.contains_key(&399), "the newest profile survives");
    assert_eq!(
        delivered_now as f64 + dropped,
        400.0,
        "each profile delivered or counted as dropped: delivered {} ({}), dropped {dropped}",
        delivered_now,
        delivered.len()
    );
}

#[test]
fn kill_9_under_load_ten_times_loses_nothing_acknowledged() {
    kill_9_ten_times("max_in_flight = 4");
}

/// Acknowledged once written, synced every 20 ms in the background
/// (`src/storage/writer/syncer.rs`): a killed process loses nothing
/// either, its writes are in the kernel's cache.
#[test]
fn kill_9_ten_times_with_periodic_sync_loses_nothing_acknowledged() {
    kill_9_ten_times("max_in_flight = 4\n    sync = \"20ms\"");
}

fn kill_9_ten_times(queue: &str) {
    let backend = FlakyBackend::start(200);
    backend.set_delay(Duration::from_millis(30));
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProc::start(
        dir.path(),
        &config(port, &write_block(&[backend.url()], "", Some(queue))),
    );
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let next_seq = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for round in 0..10 {
        let stop = Arc::new(AtomicBool::new(false));
        let senders: Vec<_> = (0..4)
            .map(|_| {
                let (acked, next_seq, stop) = (acked.clone(), next_seq.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let seq = next_seq.fetch_add(1, Ordering::SeqCst);
                        if let (Ok(r), _) = ingest(port, "kill", seq, PROFILE)
                            && r.status == 200
                        {
                            acked.lock().unwrap().insert(seq);
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300 + 70 * round));
        relay.kill9();
        stop.store(true, Ordering::SeqCst);
        for s in senders {
            s.join().unwrap();
        }
        relay.restart();
    }
    let acked = acked.lock().unwrap().clone();
    backend.set_delay(Duration::ZERO);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = seqs(&backend.delivered());
    while !acked.iter().all(|s| got.contains_key(s)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        got = seqs(&backend.delivered());
    }
    let missing: Vec<_> = acked.iter().filter(|s| !got.contains_key(s)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    let duplicates: usize = got.values().map(|n| n - 1).sum();
    let unacked_delivered = got.keys().filter(|s| !acked.contains(s)).count();
    eprintln!(
        "kill -9 x10 ({}): {} acknowledged, all delivered; {duplicates} duplicate deliveries; {unacked_delivered} delivered without an acknowledgement (in flight at the kill)",
        queue.replace('\n', ";"),
        acked.len()
    );
    assert!(acked.len() > 100, "the load was real: {}", acked.len());
}

/// Offset of the first occurrence of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The seqs whose records a segment file holds.
fn seqs_in(bytes: &[u8]) -> Vec<usize> {
    let text = String::from_utf8_lossy(bytes);
    text.match_indices("seq%3D")
        .filter_map(|(i, _)| {
            let rest = &text[i + 6..];
            let end = rest.find(|c: char| !c.is_ascii_digit())?;
            rest[..end].parse().ok()
        })
        .collect()
}

#[test]
fn damaged_segments_are_skipped_and_every_intact_record_is_delivered() {
    let backend = FlakyBackend::start(503);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        port,
        &write_block(&[backend.url()], "", Some("max_size = \"1MiB\"")),
    );
    let mut relay = RelayProc::start(dir.path(), &cfg);
    for seq in 0..250 {
        assert_eq!(ingest(port, "dmg", seq, PROFILE).0.unwrap().status, 200);
    }
    relay.stop();
    let qdir = relay.storage().join("pyroscope.write.out");
    let mut segments: Vec<_> = std::fs::read_dir(&qdir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "dat"))
        .collect();
    segments.sort();
    assert!(segments.len() >= 3, "{segments:?}");

    // A flipped byte in the body of one record of the first segment.
    let mut first = std::fs::read(&segments[0]).unwrap();
    let in_first = seqs_in(&first);
    let victim = in_first[in_first.len() / 2];
    let at = find(&first, format!("seq%3D{victim}%").as_bytes()).unwrap() + 300;
    first[at] ^= 0x5a;
    std::fs::write(&segments[0], &first).unwrap();
    // The second segment cut in the middle of a record.
    let second = std::fs::read(&segments[1]).unwrap();
    let in_second = seqs_in(&second);
    let cut_seq = in_second[in_second.len() / 2];
    let cut = find(&second, format!("seq%3D{cut_seq}%").as_bytes()).unwrap() + 100;
    std::fs::write(&segments[1], &second[..cut]).unwrap();
    let lost: BTreeSet<usize> = std::iter::once(victim)
        .chain(in_second.iter().copied().filter(|&s| s >= cut_seq))
        .collect();

    relay.restart();
    backend.set_status(200);
    let expected = 250 - lost.len();
    let delivered = backend.wait_delivered(expected, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(1000));
    let got = seqs(&backend.delivered());
    let want: BTreeSet<usize> = (0..250).filter(|s| !lost.contains(s)).collect();
    assert_eq!(
        got.keys().copied().collect::<BTreeSet<_>>(),
        want,
        "delivered {}",
        delivered.len()
    );
    assert!(got.values().all(|&n| n == 1));
    let m = relay.metrics();
    assert!(
        metric(&m, "pyroscope_write_queue_corrupt_records_total", &[]) >= 2.0,
        "{m}"
    );
    assert_eq!(
        request(
            "GET",
            &format!("http://{}/-/healthy", relay.admin),
            &[],
            b""
        )
        .unwrap()
        .status,
        200
    );
}

#[test]
fn behind_a_queue_the_first_writers_deadline_no_longer_matters() {
    let backend = FlakyBackend::start(200);
    backend.set_delay(Duration::from_secs(12));
    let b_port = free_port();
    let dir_b = tempfile::tempdir().unwrap();
    let _relay_b = RelayProc::start(
        dir_b.path(),
        &config(
            b_port,
            &write_block(&[backend.url()], "    remote_timeout = \"30s\"", Some("")),
        ),
    );
    let a_port = free_port();
    let dir_a = tempfile::tempdir().unwrap();
    let _relay_a = RelayProc::start(
        dir_a.path(),
        &config(
            a_port,
            &write_block(
                &[format!("http://127.0.0.1:{b_port}")],
                "    remote_timeout = \"10s\"",
                None,
            ),
        ),
    );
    for seq in 0..3 {
        let (r, took) = ingest(a_port, "chain", seq, PROFILE);
        assert_eq!(r.unwrap().status, 200);
        assert!(took < Duration::from_secs(1), "seq {seq}: {took:?}");
    }
    let delivered = backend.wait_delivered(3, Duration::from_secs(40));
    assert_eq!(seqs(&delivered).len(), 3);
}
