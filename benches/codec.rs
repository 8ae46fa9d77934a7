//! Cost of the wire formats on the request path: the Pyroscope labelset
//! grammar (`/ingest?name=`), its normalised rendering, and decoding a push
//! request from Connect (proto, JSON) and gRPC (5-byte envelope) bodies.
//! The push request is ~11 KB: 6 series of `examples/cpu.pprof` (1.7 KB
//! each) with agent-like labels.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

use pyroscope_relay::codec::proto::{LabelPair, PushRequest, RawProfileSeries, RawSample};
use pyroscope_relay::codec::{Codec, decode_push, encode_push, envelope, labelset};

const SHORT: &str = "myapp.cpu";
const TYPICAL: &str =
    "ride-sharing-app.cpu{env=production,region=eu-north,hostname=node-7f9c4,version=1.42.0}";

fn long_name() -> String {
    let labels: Vec<String> = (0..32)
        .map(|i| format!("label_{i:02}=value-number-{i}"))
        .collect();
    format!("service.with.many.labels.cpu{{{}}}", labels.join(","))
}

fn push_request() -> PushRequest {
    let pprof = Bytes::from_static(include_bytes!("../examples/cpu.pprof"));
    let series = (0..6)
        .map(|i| RawProfileSeries {
            labels: [
                ("__name__", "process_cpu".to_string()),
                ("service_name", "ride-sharing-app".to_string()),
                ("env", "production".to_string()),
                ("hostname", format!("node-{i}")),
                ("__delta__", "false".to_string()),
            ]
            .into_iter()
            .map(|(name, value)| LabelPair {
                name: name.to_string(),
                value,
            })
            .collect(),
            samples: vec![RawSample {
                raw_profile: pprof.clone(),
                id: format!("id-{i}"),
            }],
            ..Default::default()
        })
        .collect();
    PushRequest { series }
}

fn labelset_benches(c: &mut Criterion) {
    let long = long_name();
    let mut g = c.benchmark_group("labelset");
    for (name, input) in [
        ("parse/short", SHORT),
        ("parse/typical", TYPICAL),
        ("parse/32_labels", long.as_str()),
    ] {
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| labelset::parse(black_box(input)).unwrap())
        });
    }
    for (name, input) in [
        ("normalized/typical", TYPICAL),
        ("normalized/32_labels", long.as_str()),
    ] {
        let labels = labelset::parse(input).unwrap();
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| labelset::normalized(black_box(&labels)))
        });
    }
    g.finish();
}

fn push_benches(c: &mut Criterion) {
    let request = push_request();
    let proto = encode_push(&request, Codec::Proto);
    let json = encode_push(&request, Codec::Json);
    let grpc = envelope::encode(0, &proto).unwrap();
    let mut g = c.benchmark_group("push");
    g.throughput(Throughput::Bytes(proto.len() as u64));
    g.bench_function("decode/connect_proto", |b| {
        b.iter(|| decode_push(black_box(proto.clone()), Codec::Proto).unwrap())
    });
    g.bench_function("decode/grpc_proto", |b| {
        b.iter(|| {
            let env = envelope::parse_single_message(black_box(&grpc), usize::MAX).unwrap();
            decode_push(env.message, Codec::Proto).unwrap()
        })
    });
    g.bench_function("envelope/parse_single_message", |b| {
        b.iter(|| envelope::parse_single_message(black_box(&grpc), usize::MAX).unwrap())
    });
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function("decode/connect_json", |b| {
        b.iter(|| decode_push(black_box(json.clone()), Codec::Json).unwrap())
    });
    g.finish();
}

criterion_group!(benches, labelset_benches, push_benches);
criterion_main!(benches);
