//! A `kill -9` while profiles stream in loses none that were acknowledged.
//!
//! The parent re-runs this test binary as a child (`crash_child`, which
//! does nothing unless `ARCHIVE_CRASH_DIR` is set). The child appends from
//! several tasks and prints `ack <id> <writer> <seq>` after each append
//! returns; the parent SIGKILLs it mid-stream, reopens the store and reads
//! every acknowledged id back. Two rounds, so the second child also writes
//! after a recovery.

use bytes::Bytes;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyroscope_relay::archive::{Limits, NewRecord, Origin, RecordId, Store};
use pyroscope_relay::pipeline::Labels;

const DIR_VAR: &str = "ARCHIVE_CRASH_DIR";

fn limits() -> Limits {
    // Small segments, so that crashes also hit rotations.
    Limits {
        segment_size: 256 << 10,
        ..Limits::new(Duration::from_secs(3600), 1 << 30)
    }
}

/// What writer `w` sends as its `n`th profile: 2-20 KB, recognisable.
fn body(w: u64, n: u64) -> Vec<u8> {
    let len = 2000 + ((w * 7919 + n * 104_729) % 18_000) as usize;
    let tag = format!("w{w}n{n};");
    tag.bytes().cycle().take(len).collect()
}

#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let store = Arc::new(Store::open(Path::new(&dir), limits()).unwrap());
        let writers: Vec<_> = (0..8u64)
            .map(|w| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    for n in 0.. {
                        let record = NewRecord {
                            origin: Origin::Push {
                                sample_id: format!("{w}-{n}"),
                            },
                            labels: Labels::from_pairs([("service_name", "crash")]),
                            body: Bytes::from(body(w, n)),
                        };
                        let id = store.append(vec![record]).await.unwrap()[0];
                        println!("ack {} {w} {n}", id.0);
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
    });
}

/// Runs a child until killed after `run_for`; returns the acknowledged
/// `(id, writer, seq)`s it printed.
fn run_child_and_kill(dir: &Path, run_for: Duration) -> Vec<(u64, u64, u64)> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(DIR_VAR, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut acks = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut parts = line.split(' ');
            if parts.next() != Some("ack") {
                continue;
            }
            let nums: Vec<u64> = parts.filter_map(|p| p.parse().ok()).collect();
            if let [id, w, n] = nums[..] {
                acks.push((id, w, n));
            }
        }
        acks
    });
    let started = Instant::now();
    std::thread::sleep(run_for);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let acks = reader.join().unwrap();
    assert!(
        !acks.is_empty(),
        "the child acknowledged nothing in {:?}",
        started.elapsed()
    );
    acks
}

#[test]
fn kill_9_loses_no_acknowledged_profile() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for round in 0..2 {
        let acks = run_child_and_kill(dir.path(), Duration::from_millis(1000));
        all.extend(acks);
        let store = Store::open(dir.path(), limits()).unwrap();
        for &(id, w, n) in &all {
            let (meta, got) = store
                .read(RecordId(id))
                .unwrap()
                .unwrap_or_else(|| panic!("round {round}: acknowledged id {id} is gone"));
            assert_eq!(got, body(w, n), "round {round}: id {id}");
            assert_eq!(
                meta.origin,
                Origin::Push {
                    sample_id: format!("{w}-{n}")
                }
            );
        }
        eprintln!(
            "round {round}: {} acknowledged, {} kept",
            all.len(),
            store.stats().profiles
        );
    }
    let mut ids: Vec<u64> = all.iter().map(|a| a.0).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "ids are unique across restarts");
}
