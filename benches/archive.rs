//! Archive write throughput: durable (fsynced) appends of one profile, from
//! 1 writer and from 32 concurrent writers, with 2 KB and 20 KB profiles.
//! After each case it prints the bytes the archive takes on disk per
//! profile. `cargo bench --bench archive`.

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::future::join_all;
use std::sync::Arc;
use std::time::Duration;

use pyroscope_relay::archive::{Limits, NewRecord, Origin, Store};
use pyroscope_relay::pipeline::Labels;

fn record(body: &Bytes, n: usize) -> NewRecord {
    NewRecord {
        origin: Origin::Push {
            sample_id: format!("{n:016x}"),
        },
        labels: Labels::from_pairs([
            ("__name__", "process_cpu"),
            ("service_name", "checkout"),
            ("env", "prod"),
            ("pod", "checkout-5d9f7c6b8-x2x7q"),
        ]),
        body: body.clone(),
    }
}

fn bench_writes(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group("archive_write");
    group.measurement_time(Duration::from_secs(5));
    group.sample_size(20);
    for size in [2_000usize, 20_000] {
        // Incompressible enough to stand for a gzipped pprof.
        let body: Bytes = (0..size)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for writers in [1usize, 32] {
            let dir = tempfile::tempdir().unwrap();
            let store = Arc::new(
                Store::open(dir.path(), Limits::new(Duration::from_secs(3600), 1 << 30)).unwrap(),
            );
            group.throughput(Throughput::Elements(writers as u64));
            let id = BenchmarkId::new(format!("{writers}_writers"), format!("{}KB", size / 1000));
            group.bench_function(id, |b| {
                b.iter(|| {
                    rt.block_on(join_all((0..writers).map(|n| {
                        let store = Arc::clone(&store);
                        let rec = record(&body, n);
                        async move { store.append(vec![rec]).await.unwrap() }
                    })))
                })
            });
            let stats = store.stats();
            eprintln!(
                "archive_write {writers} writers {size} B: {} profiles, {:.1} bytes on disk per profile ({} B body + {:.1} B overhead)",
                stats.profiles,
                stats.disk_bytes as f64 / stats.profiles as f64,
                size,
                stats.disk_bytes as f64 / stats.profiles as f64 - size as f64,
            );
        }
    }
    group.finish();
}

criterion_group!(benches, bench_writes);
criterion_main!(benches);
