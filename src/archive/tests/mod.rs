//! Tests of the archive across its files.

mod api;
mod cli;
mod component;
mod eviction;
mod store;

use bytes::Bytes;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

use super::time::from_unix_nanos;
use super::{Clock, Limits, NewRecord, Origin, Store, StoreOptions};
use crate::pipeline::Labels;

/// A captured agent payload from `tests/fixtures` (see its README).
pub(super) fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub(super) fn push(service: &str, profile_type: &str, body: &[u8]) -> NewRecord {
    NewRecord {
        origin: Origin::Push {
            sample_id: format!("sample-{}", body.len()),
        },
        labels: Labels::from_pairs([("service_name", service), ("__name__", profile_type)]),
        body: Bytes::copy_from_slice(body),
    }
}

pub(super) fn ingest(name: &str, query: &str, body: &[u8]) -> NewRecord {
    NewRecord {
        origin: Origin::Ingest {
            content_types: vec!["application/octet-stream".into()],
            path: "/ingest".into(),
            query: query.into(),
        },
        labels: Labels::from_pairs([("__name__", name)]),
        body: Bytes::copy_from_slice(body),
    }
}

/// A clock the test moves by hand, starting at 2023-11-14T22:13:20Z.
#[derive(Clone)]
pub(super) struct FakeClock(Arc<AtomicI64>);

pub(super) const T0: i64 = 1_700_000_000_000_000_000;

impl FakeClock {
    pub fn new() -> Self {
        Self(Arc::new(AtomicI64::new(T0)))
    }

    pub fn clock(&self) -> Clock {
        let now = Arc::clone(&self.0);
        Arc::new(move || from_unix_nanos(now.load(Ordering::SeqCst)))
    }

    pub fn set_secs(&self, secs_after_t0: u64) {
        self.0
            .store(T0 + secs_after_t0 as i64 * 1_000_000_000, Ordering::SeqCst);
    }

    pub fn at(secs_after_t0: u64) -> SystemTime {
        from_unix_nanos(T0 + secs_after_t0 as i64 * 1_000_000_000)
    }
}

pub(super) fn open_with_clock(dir: &Path, limits: Limits, clock: &FakeClock) -> Store {
    let options = StoreOptions {
        clock: Some(clock.clock()),
        metrics: None,
        on_failure: None,
    };
    Store::open_with(dir, limits, options).unwrap()
}

pub(super) fn big_limits() -> Limits {
    Limits::new(Duration::from_secs(24 * 3600), 1 << 30)
}

/// The segment files of `dir`, oldest first.
pub(super) fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    crate::storage::list_segments(dir)
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

/// The series of a binary `push.v1.PushRequest`: labels and samples
/// (id, raw_profile). Just enough protobuf to read the fixture.
pub(super) fn decode_push_request(buf: &[u8]) -> Vec<(Labels, Vec<(String, Bytes)>)> {
    fn fields(mut b: &[u8]) -> Vec<(u64, &[u8])> {
        let mut out = Vec::new();
        let varint = |b: &mut &[u8]| {
            let mut v = 0u64;
            for shift in (0..64).step_by(7) {
                let byte = b[0];
                *b = &b[1..];
                v |= u64::from(byte & 0x7f) << shift;
                if byte < 0x80 {
                    break;
                }
            }
            v
        };
        while !b.is_empty() {
            let key = varint(&mut b);
            match key & 7 {
                0 => {
                    varint(&mut b);
                }
                2 => {
                    let n = varint(&mut b) as usize;
                    out.push((key >> 3, &b[..n]));
                    b = &b[n..];
                }
                w => panic!("unexpected wire type {w}"),
            }
        }
        out
    }
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
    fields(buf)
        .into_iter()
        .filter(|(f, _)| *f == 1)
        .map(|(_, series)| {
            let mut labels = Vec::new();
            let mut samples = Vec::new();
            for (f, v) in fields(series) {
                match f {
                    1 => {
                        let kv = fields(v);
                        let get = |n| {
                            kv.iter()
                                .find(|(f, _)| *f == n)
                                .map_or(String::new(), |(_, v)| text(v))
                        };
                        labels.push((get(1), get(2)));
                    }
                    2 => {
                        let s = fields(v);
                        let get = |n| {
                            s.iter()
                                .find(|(f, _)| *f == n)
                                .map(|(_, v)| *v)
                                .unwrap_or_default()
                        };
                        samples.push((text(get(2)), Bytes::copy_from_slice(get(1))));
                    }
                    _ => {}
                }
            }
            (Labels::from_pairs_unsorted(labels), samples)
        })
        .collect()
}
