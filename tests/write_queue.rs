//! The `queue` block of `pyroscope.write`, through the binary: outages,
//! ordering, idle delivery, restarts and the pending gauges.

mod queue_support;

use queue_support::{FlakyBackend, RelayProc, free_port, ingest, metric, seq_of};
use std::collections::BTreeMap;
use std::time::Duration;

const PROFILE: &[u8] = include_bytes!("fixtures/py_cpu.pb");

fn config(receiver_port: u16, endpoints: &[String], queue: &str) -> String {
    let endpoints: String = endpoints
        .iter()
        .map(|url| {
            format!(
                "  endpoint {{\n    url = \"{url}\"\n    min_backoff_period = \"50ms\"\n    max_backoff_period = \"500ms\"\n    remote_timeout = \"2s\"\n  }}\n"
            )
        })
        .collect();
    format!(
        r#"
pyroscope.receive_http "in" {{
  http {{
    listen_address = "127.0.0.1"
    listen_port = {receiver_port}
  }}
  forward_to = [pyroscope.write.out.receiver]
}}
pyroscope.write "out" {{
{endpoints}  queue {{
{queue}
  }}
}}
"#
    )
}

/// Sends `n` profiles, asserting each is acknowledged with 200 within a
/// second; returns the slowest acknowledgement.
fn send_all(port: u16, app: &str, range: std::ops::Range<usize>) -> Duration {
    let mut slowest = Duration::ZERO;
    for seq in range {
        let (r, took) = ingest(port, app, seq, PROFILE);
        let r = r.unwrap();
        assert_eq!(r.status, 200, "seq {seq}: {}", r.body);
        assert!(took < Duration::from_secs(1), "seq {seq} took {took:?}");
        slowest = slowest.max(took);
    }
    slowest
}

/// Counts deliveries per seq.
fn by_seq(delivered: &[queue_support::Delivered]) -> BTreeMap<usize, usize> {
    let mut out = BTreeMap::new();
    for d in delivered {
        *out.entry(seq_of(d).expect("a seq label")).or_default() += 1;
    }
    out
}

#[test]
fn a_503_outage_is_acknowledged_at_once_and_delivered_once_in_order_after() {
    let backend = FlakyBackend::start(503);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProc::start(
        dir.path(),
        &config(port, &[backend.url()], "max_in_flight = 1"),
    );
    let slowest = send_all(port, "outage", 0..40);
    assert!(backend.attempts() > 0, "the relay kept trying");
    assert!(backend.delivered().is_empty());
    let m = relay.metrics();
    assert_eq!(
        metric(&m, "pyroscope_write_queue_pending_profiles", &[]),
        40.0,
        "{m}"
    );
    backend.set_status(200);
    let delivered = backend.wait_delivered(40, Duration::from_secs(30));
    let seqs: Vec<usize> = delivered.iter().filter_map(seq_of).collect();
    assert_eq!(seqs, (0..40).collect::<Vec<_>>(), "in order, exactly once");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(backend.delivered().len(), 40, "nothing sent twice");
    let m = relay.metrics();
    assert_eq!(
        metric(&m, "pyroscope_write_queue_pending_profiles", &[]),
        0.0
    );
    eprintln!("slowest acknowledgement during the outage: {slowest:?}");
}

/// The `fdatasync` calls of the queue's log, from its histogram.
fn fsyncs(relay: &RelayProc) -> f64 {
    let m = relay.metrics();
    metric(
        &m,
        "pyroscope_write_queue_fsync_duration_seconds_count",
        &[],
    )
}

#[test]
fn under_sync_always_every_acknowledgement_waits_for_a_sync_of_its_own() {
    // One profile at a time: no group commit can share a sync, so under
    // "always" there are at least as many syncs as acknowledgements, and
    // under a duration (acknowledged once written) fewer.
    let backend = FlakyBackend::start(200);
    let (always_dir, lazy_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let port = free_port();
    let always = RelayProc::start(always_dir.path(), &config(port, &[backend.url()], ""));
    let before = fsyncs(&always);
    send_all(port, "always", 0..20);
    let synced = fsyncs(&always) - before;
    assert!(synced >= 20.0, "20 acknowledgements, {synced} fsyncs");
    let m = always.metrics();
    assert!(metric(&m, "pyroscope_write_queue_fsync_duration_seconds_sum", &[]) > 0.0);
    let delivered = backend.wait_delivered(20, Duration::from_secs(10));
    assert_eq!(
        by_seq(&delivered).len(),
        20,
        "all delivered under \"always\""
    );
    drop(always);

    let port = free_port();
    let lazy = RelayProc::start(
        lazy_dir.path(),
        &config(port, &[backend.url()], "sync = \"1h\""),
    );
    let before = fsyncs(&lazy);
    send_all(port, "lazy", 0..20);
    let synced = fsyncs(&lazy) - before;
    assert!(
        synced < 20.0,
        "20 acknowledgements under sync = \"1h\", {synced} fsyncs"
    );
    let delivered = backend.wait_delivered(40, Duration::from_secs(10));
    assert_eq!(delivered.len(), 40, "all delivered under \"1h\" too");
}

#[test]
fn a_closed_backend_port_is_ridden_out() {
    let mut backend = FlakyBackend::start(200);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let _relay = RelayProc::start(dir.path(), &config(port, &[backend.url()], ""));
    send_all(port, "closed", 0..5);
    backend.wait_delivered(5, Duration::from_secs(10));
    backend.close();
    send_all(port, "closed", 5..30);
    backend.reopen();
    let delivered = backend.wait_delivered(30, Duration::from_secs(30));
    let counts = by_seq(&delivered);
    assert_eq!(counts.len(), 30, "{counts:?}");
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
}

/// After a long outage every unit in flight has backed off by seconds; the
/// first one through ends the others' wait, so the backlog goes out at once
/// instead of one slot at a time until their timers run out.
#[test]
fn after_an_outage_the_first_success_ends_every_other_backoff() {
    let backend = FlakyBackend::start(503);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let long_backoff =
        config(port, &[backend.url()], "max_in_flight = 4").replace("\"500ms\"", "\"60s\"");
    let _relay = RelayProc::start(dir.path(), &long_backoff);
    send_all(port, "recovery", 0..20);
    // Delays double from 50 ms: after 6 s each unit waits 1.6 s or more.
    std::thread::sleep(Duration::from_secs(6));
    backend.set_status(200);
    let first = loop {
        if !backend.delivered().is_empty() {
            break std::time::Instant::now();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let delivered = backend.wait_delivered(20, Duration::from_secs(60));
    let took = first.elapsed();
    assert_eq!(by_seq(&delivered).len(), 20);
    assert!(
        took < Duration::from_millis(1000),
        "the rest of the backlog took {took:?} after the first delivery"
    );
    eprintln!("the backlog after the first delivery: {took:?}");
}

#[test]
fn one_profile_followed_by_silence_is_delivered() {
    let backend = FlakyBackend::start(200);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let _relay = RelayProc::start(dir.path(), &config(port, &[backend.url()], ""));
    send_all(port, "idle", 0..1);
    let delivered = backend.wait_delivered(1, Duration::from_secs(5));
    assert_eq!(delivered.len(), 1);
    assert_eq!(&delivered[0].body[..], PROFILE);
}

#[test]
fn a_dead_endpoint_does_not_hold_back_a_live_one() {
    let live = FlakyBackend::start(200);
    let dead = FlakyBackend::start(503);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let _relay = RelayProc::start(
        dir.path(),
        &config(port, &[live.url(), dead.url()], "max_in_flight = 2"),
    );
    send_all(port, "two", 0..30);
    let got = live.wait_delivered(30, Duration::from_secs(5));
    assert_eq!(got.len(), 30, "the live endpoint got everything at once");
    assert!(dead.delivered().is_empty());
    dead.set_status(200);
    let caught_up = dead.wait_delivered(30, Duration::from_secs(30));
    assert_eq!(by_seq(&caught_up).len(), 30);
}

#[test]
fn a_restart_resumes_from_the_checkpoint_and_gauges_match_the_disk() {
    let backend = FlakyBackend::start(503);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProc::start(dir.path(), &config(port, &[backend.url()], ""));
    send_all(port, "restart", 0..12);
    relay.stop();
    relay.restart();
    // Published when the queue opens, before the relay is ready.
    let m = relay.metrics();
    assert_eq!(
        metric(&m, "pyroscope_write_queue_pending_profiles", &[]),
        12.0,
        "{m}"
    );
    assert!(metric(&m, "pyroscope_write_queue_pending_bytes", &[]) >= 12.0 * PROFILE.len() as f64);
    assert!(metric(&m, "pyroscope_write_queue_oldest_pending_seconds", &[]) > 0.0);
    backend.set_status(200);
    let delivered = backend.wait_delivered(12, Duration::from_secs(30));
    assert_eq!(by_seq(&delivered).len(), 12);
    std::thread::sleep(Duration::from_millis(1500));
    let m = relay.metrics();
    assert_eq!(
        metric(&m, "pyroscope_write_queue_pending_profiles", &[]),
        0.0
    );
    // Delivered and checkpointed: another restart sends nothing again.
    relay.stop();
    relay.restart();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(backend.delivered().len(), 12);
    let m = relay.metrics();
    assert_eq!(
        metric(&m, "pyroscope_write_queue_pending_profiles", &[]),
        0.0
    );
}

/// Stops on SIGTERM, timing it; returns how long the exit took.
fn stop_timed(relay: &mut RelayProc) -> Duration {
    let started = std::time::Instant::now();
    relay.stop();
    started.elapsed()
}

#[test]
fn on_exit_the_backlog_is_sent_first_within_drain_timeout() {
    // A scale-down: the backend has been down, comes back, and the relay
    // is told to stop before it has caught up.
    let backend = FlakyBackend::start(503);
    backend.set_delay(Duration::from_millis(40));
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProc::start(
        dir.path(),
        &config(
            port,
            &[backend.url()],
            "max_in_flight = 1\n    drain_timeout = \"20s\"",
        ),
    );
    send_all(port, "drain", 0..30);
    backend.set_status(200);
    let took = stop_timed(&mut relay);
    let delivered = by_seq(&backend.delivered());
    assert_eq!(
        delivered.len(),
        30,
        "all sent before the exit: {delivered:?}"
    );
    assert!(took < Duration::from_secs(20), "exit took {took:?}");
    let log = relay.log_text();
    assert!(
        log.contains("sending the queue's backlog before exiting"),
        "{log}"
    );
    assert!(log.contains("queue closed; nothing left to send"), "{log}");
    let v = relay.queue_status();
    assert_eq!(v["queues"][0]["pending_profiles"], 0, "{v}");
}

#[test]
fn a_drain_that_cannot_finish_stops_at_its_timeout_and_says_what_it_left() {
    let backend = FlakyBackend::start(503);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProc::start(
        dir.path(),
        &config(port, &[backend.url()], "drain_timeout = \"1500ms\""),
    );
    send_all(port, "stuck", 0..9);
    let took = stop_timed(&mut relay);
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(6),
        "exit took {took:?}"
    );
    let log = relay.log_text();
    assert!(
        log.contains("queue closed with profiles not yet sent") && log.contains("profiles=9"),
        "{log}"
    );
    // Left on the volume, and sent by the next relay on it.
    backend.set_status(200);
    relay.restart();
    assert_eq!(
        by_seq(&backend.wait_delivered(9, Duration::from_secs(30))).len(),
        9
    );
}

#[test]
fn without_drain_timeout_the_relay_stops_at_once_and_keeps_the_backlog() {
    let backend = FlakyBackend::start(503);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProc::start(dir.path(), &config(port, &[backend.url()], ""));
    send_all(port, "nodrain", 0..5);
    let took = stop_timed(&mut relay);
    assert!(took < Duration::from_secs(2), "exit took {took:?}");
    assert!(
        relay.log_text().contains("profiles=5"),
        "{}",
        relay.log_text()
    );
}
