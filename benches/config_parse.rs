//! Parsing speed of a large configuration: 1,000 components mixing
//! `pyroscope.receive_http`, `pyroscope.relabel` and `pyroscope.write`,
//! with nested blocks and references between them.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pyroscope_relay::config::{SourceMap, body_references, parse};

const COMPONENTS: usize = 1_000;

fn generate_config() -> String {
    let mut text = String::from("// Generated for the config_parse benchmark.\n");
    for i in 0..COMPONENTS {
        let (writer, relabel) = (i / 3 * 3 + 2, i / 3 * 3 + 1);
        let written = match i % 3 {
            0 => write!(
                text,
                r#"
pyroscope.receive_http "in_{i}" {{
  http {{
    listen_address = "0.0.0.0"
    listen_port = {port}
    server_read_timeout = "30s"
  }}
  forward_to = [pyroscope.relabel.stage_{relabel}.receiver, pyroscope.write.out_{writer}.receiver]
}}
"#,
                port = 10_000 + i,
            ),
            1 => write!(
                text,
                r#"
pyroscope.relabel "stage_{i}" {{
  forward_to = [pyroscope.write.out_{writer}.receiver]
  rule {{
    source_labels = ["__name__", "service_name"]
    regex = "(.*)-{i}"
    target_label = "app"
    action = "replace"
  }}
  rule {{
    action = "labeldrop"
    regex = "tmp_.*" // comment
  }}
}}
"#
            ),
            _ => write!(
                text,
                r#"
pyroscope.write "out_{i}" {{
  endpoint {{
    url = "http://pyroscope-{i}:4040"
    remote_timeout = "10s"
    headers = {{ "X-Scope-OrgID" = "tenant-{i}", }}
  }}
  external_labels = {{ env = sys.env("ENV"), cluster = format("c-%d", {i} % 7) }}
}}
"#
            ),
        };
        written.expect("writing to a String cannot fail");
    }
    text
}

fn bench_parse(c: &mut Criterion) {
    let text = generate_config();
    let mut map = SourceMap::new();
    let file = map.add("bench.alloy", text.as_str());

    let (parsed, diags) = parse(&map, file);
    assert!(diags.is_empty(), "generated config has errors: {diags:?}");
    assert_eq!(parsed.body.stmts.len(), COMPONENTS);

    c.bench_function("parse 1000 components", |b| {
        b.iter(|| parse(black_box(&map), file))
    });
    c.bench_function("references of 1000 components", |b| {
        b.iter(|| body_references(black_box(&parsed.body)))
    });
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
