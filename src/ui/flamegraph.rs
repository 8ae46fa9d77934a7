//! `GET /api/v1/profiles/{id}/flamegraph?sample_type=...`: an archived
//! profile as a flame graph, in Pyroscope's "flamebearer" layout:
//! `names` (every frame name once), `levels` (per depth, four numbers per
//! bar: x offset from the end of the previous bar of that level, total,
//! self, index into `names`), `numTicks` and `maxSelf`; plus the profile's
//! `sampleTypes`, the one shown and its `unit`.
//!
//! Bars narrower than 1/[`MIN_WIDTH_DIVISOR`] of the whole are folded into
//! their parent's self value, so the answer stays small however large the
//! profile.

use http::{Response, StatusCode};
use serde::Serialize;
use std::collections::HashMap;

use super::{UiBody, json, json_error, query_param};
use crate::archive::{ArchiveError, Origin, RecordMeta};
use crate::codec::stacks::{self, SampleType, Stacks, StacksError};
use crate::runtime::Runtime;

pub const MIN_WIDTH_DIVISOR: i64 = 8192;
/// Deeper frames are cut; no real stack comes near.
const MAX_DEPTH: usize = 1024;

pub(super) async fn handle(runtime: &Runtime, id: &str, query: &str) -> Response<UiBody> {
    let stores = runtime.archive_stores().await;
    let id = id.to_owned();
    let sample_type = query_param(query, "sample_type");
    let answer = tokio::task::spawn_blocking(move || {
        let (_, meta, body) =
            crate::archive::find_record(&stores, &id).map_err(Failure::Archive)?;
        let stacks = decode(&meta, &body, sample_type.as_deref())?;
        Ok::<_, Failure>(Flamebearer::build(&stacks, format_of(&meta)))
    })
    .await;
    match answer {
        Ok(Ok(flamegraph)) => json(StatusCode::OK, &flamegraph),
        Ok(Err(Failure::Archive(e))) => {
            let status = match e {
                ArchiveError::NotFound(_) => StatusCode::NOT_FOUND,
                ArchiveError::InvalidArgument(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            json_error(status, &e.to_string())
        }
        Ok(Err(Failure::Stacks(e @ StacksError::UnknownSampleType { .. }))) => {
            json_error(StatusCode::BAD_REQUEST, &e.to_string())
        }
        Ok(Err(Failure::Stacks(e))) => json_error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
        Ok(Err(Failure::Format(format))) => json_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!(
                "profiles in format {format:?} cannot be shown as a flame graph (pprof and folded can); download the original instead"
            ),
        ),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

enum Failure {
    Archive(ArchiveError),
    Stacks(StacksError),
    Format(String),
}

impl From<StacksError> for Failure {
    fn from(e: StacksError) -> Self {
        Failure::Stacks(e)
    }
}

/// `pprof` for push; for `/ingest` the `format` parameter (Pyroscope's
/// default is `folded`).
fn format_of(meta: &RecordMeta) -> String {
    match &meta.origin {
        Origin::Push { .. } => "pprof".to_owned(),
        Origin::Ingest { query, .. } => query_param(query, "format")
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| "folded".to_owned()),
    }
}

fn decode(meta: &RecordMeta, body: &[u8], sample_type: Option<&str>) -> Result<Stacks, Failure> {
    let body = match &meta.origin {
        Origin::Ingest { content_types, .. } => {
            match content_types.first().and_then(|ct| multipart_boundary(ct)) {
                Some(boundary) => multipart_part(body, &boundary, "profile").unwrap_or(body),
                None => body,
            }
        }
        Origin::Push { .. } => body,
    };
    match format_of(meta).as_str() {
        "pprof" => Ok(stacks::from_pprof(body, sample_type)?),
        "folded" | "collapsed" | "lines" => {
            let kind = &meta.profile_type;
            if let Some(wanted) = sample_type.filter(|w| !w.is_empty() && *w != kind) {
                return Err(Failure::Stacks(StacksError::UnknownSampleType {
                    wanted: wanted.to_owned(),
                    available: kind.clone(),
                }));
            }
            Ok(stacks::from_folded(body, kind)?)
        }
        other => Err(Failure::Format(other.to_owned())),
    }
}

fn multipart_boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case("boundary")
            .then(|| v.trim_matches('"').to_owned())
    })
}

/// The content of the form field `name` in a multipart body (how the Go
/// agent sends `/ingest?format=pprof`).
fn multipart_part<'a>(body: &'a [u8], boundary: &str, name: &str) -> Option<&'a [u8]> {
    let delimiter = format!("--{boundary}");
    let wanted = format!("name=\"{name}\"");
    let mut rest = body;
    while let Some(start) = find(rest, delimiter.as_bytes()) {
        rest = &rest[start + delimiter.len()..];
        let headers_end = find(rest, b"\r\n\r\n")?;
        let headers = String::from_utf8_lossy(&rest[..headers_end]);
        let content = &rest[headers_end + 4..];
        let end = find(content, format!("\r\n{delimiter}").as_bytes())?;
        if headers.contains(&wanted) {
            return Some(&content[..end]);
        }
        rest = &content[end..];
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Flamebearer {
    names: Vec<String>,
    levels: Vec<Vec<i64>>,
    num_ticks: i64,
    max_self: i64,
    sample_types: Vec<SampleType>,
    sample_type: String,
    unit: String,
    format: String,
}

struct Node {
    name: usize,
    total: i64,
    children: Vec<usize>,
}

impl Flamebearer {
    fn build(stacks: &Stacks, format: String) -> Flamebearer {
        // names[0] is the root; a frame's name is its index in stacks.names + 1.
        let mut names = Vec::with_capacity(stacks.names.len() + 1);
        names.push("total".to_owned());
        names.extend(stacks.names.iter().cloned());
        let mut nodes = vec![Node {
            name: 0,
            total: 0,
            children: Vec::new(),
        }];
        let mut child_of: HashMap<(usize, usize), usize> = HashMap::new();
        for (frames, value) in &stacks.stacks {
            let value = (*value).max(0);
            nodes[0].total += value;
            let mut at = 0;
            for frame in frames.iter().take(MAX_DEPTH) {
                let name = *frame as usize + 1;
                at = *child_of.entry((at, name)).or_insert_with(|| {
                    nodes.push(Node {
                        name,
                        total: 0,
                        children: Vec::new(),
                    });
                    let child = nodes.len() - 1;
                    nodes[at].children.push(child);
                    child
                });
                nodes[at].total += value;
            }
        }
        let num_ticks = nodes[0].total;
        let min_total = (num_ticks / MIN_WIDTH_DIVISOR).max(1);
        let mut levels: Vec<Vec<i64>> = Vec::new();
        let mut max_self = 0;
        // Depth-first, children in name order, so each level's bars come
        // out left to right.
        let mut work = vec![(0usize, 0usize, 0i64)];
        let mut level_end: Vec<i64> = Vec::new();
        while let Some((node, depth, x)) = work.pop() {
            let n = &nodes[node];
            let mut kept: Vec<usize> = n
                .children
                .iter()
                .copied()
                .filter(|c| nodes[*c].total >= min_total)
                .collect();
            kept.sort_by(|a, b| names[nodes[*a].name].cmp(&names[nodes[*b].name]));
            let children_total: i64 = kept.iter().map(|c| nodes[*c].total).sum();
            let self_value = n.total - children_total;
            max_self = max_self.max(self_value);
            if levels.len() <= depth {
                levels.push(Vec::new());
                level_end.push(0);
            }
            levels[depth].extend([x - level_end[depth], n.total, self_value, n.name as i64]);
            level_end[depth] = x + n.total;
            let mut child_x = x;
            let mut placed = Vec::with_capacity(kept.len());
            for c in kept {
                placed.push((c, depth + 1, child_x));
                child_x += nodes[c].total;
            }
            work.extend(placed.into_iter().rev());
        }
        let selected = stacks.sample_types.get(stacks.selected);
        Flamebearer {
            names,
            levels,
            num_ticks,
            max_self,
            sample_type: selected.map(|t| t.kind.clone()).unwrap_or_default(),
            unit: selected.map(|t| t.unit.clone()).unwrap_or_default(),
            sample_types: stacks.sample_types.clone(),
            format,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 5] = ["main", "a", "b", "hot", "rare"];

    fn id(name: &str) -> u32 {
        NAMES.iter().position(|n| *n == name).unwrap() as u32
    }

    fn stacks(list: &[(&[&str], i64)]) -> Stacks {
        Stacks {
            sample_types: vec![SampleType {
                kind: "cpu".into(),
                unit: "samples".into(),
            }],
            selected: 0,
            names: NAMES.iter().map(|n| n.to_string()).collect(),
            stacks: list
                .iter()
                .map(|(f, v)| (f.iter().map(|s| id(s)).collect(), *v))
                .collect(),
        }
    }

    #[test]
    fn levels_are_flamebearer() {
        let fb = Flamebearer::build(
            &stacks(&[(&["main", "a"], 3), (&["main", "b"], 1), (&["main"], 2)]),
            "folded".into(),
        );
        assert_eq!(&fb.names[..4], ["total", "main", "a", "b"]);
        assert_eq!(fb.num_ticks, 6);
        assert_eq!(fb.levels[0], [0, 6, 0, 0]);
        assert_eq!(fb.levels[1], [0, 6, 2, 1]);
        // a at x=0 (3 wide), then b right after it.
        assert_eq!(fb.levels[2], [0, 3, 3, 2, 0, 1, 1, 3]);
        assert_eq!(fb.max_self, 3);
    }

    #[test]
    fn narrow_bars_fold_into_their_parent() {
        let fb = Flamebearer::build(
            &stacks(&[
                (&["main", "hot"], MIN_WIDTH_DIVISOR * 10),
                (&["main", "rare"], 1),
            ]),
            "folded".into(),
        );
        assert_eq!(fb.levels[2].len(), 4, "rare is folded away");
        assert_eq!(fb.levels[1][2], 1, "its value is main's self");
    }

    #[test]
    fn multipart_field() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"sample_type_config\"\r\n\r\n{}\r\n--XX\r\nContent-Disposition: form-data; name=\"profile\"; filename=\"p\"\r\n\r\nPPROF\r\n--XX--\r\n";
        let boundary = multipart_boundary("multipart/form-data; boundary=XX").unwrap();
        assert_eq!(
            multipart_part(body, &boundary, "profile"),
            Some(&b"PPROF"[..])
        );
        assert_eq!(multipart_part(body, &boundary, "missing"), None);
    }
}
