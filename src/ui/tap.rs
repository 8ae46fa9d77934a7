//! `GET /api/v1/tap?component=ID&match={...}`: the profiles passing a
//! component, as Server-Sent Events.
//!
//! - `event: profile`, one per profile: `time`, `component`, `protocol`,
//!   `labels`, `profileType`, `size`, `outcome` (`ok` or `error`), `error`
//!   (`code`, `httpStatus`, `message`), `notes` (what each stage did:
//!   relabeling, each endpoint's answer, archive ids) and `archived` (the
//!   archive ids this profile is stored under, if any);
//! - `event: stats`, `{"dropped": N}`, when events were dropped because
//!   this reader fell behind ([`QUEUE_CAPACITY`] events wait at most).
//!
//! The watcher is dropped, and costs the data path nothing again, when the
//! client goes away.

use bytes::Bytes;
use futures_util::stream;
use http::{HeaderValue, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde::Serialize;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use super::matcher::Matcher;
use super::{UiBody, json_error, query_param};
use crate::pipeline::Labels;
use crate::pipeline::tap::{TapEvent, Watcher};
use crate::runtime::Runtime;

/// Events one reader may fall behind by before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 1024;
/// How often a quiet stream sends a comment, so proxies keep it open.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// How often the dropped count is checked.
const STATS_EVERY: Duration = Duration::from_secs(1);

pub(super) async fn stream(runtime: &Runtime, query: &str) -> Response<UiBody> {
    let Some(component) = query_param(query, "component").filter(|c| !c.is_empty()) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "the component parameter is required, e.g. ?component=pyroscope.receive_http.default",
        );
    };
    let matcher = match Matcher::parse(&query_param(query, "match").unwrap_or_default()) {
        Ok(m) => Arc::new(m),
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let components = runtime.components().await;
    let Some(info) = components.iter().find(|c| c.id == component) else {
        let known: Vec<&str> = components.iter().map(|c| c.id.as_str()).collect();
        return json_error(
            StatusCode::NOT_FOUND,
            &format!("no component {component:?}; running: {}", known.join(", ")),
        );
    };
    let filter = matcher.clone();
    let watcher = match info.tap.watch(
        QUEUE_CAPACITY,
        Box::new(move |e: &TapEvent| e.profiles.iter().any(|(l, _)| filter.matches(l))),
    ) {
        Ok(watcher) => watcher,
        Err(e) => return json_error(StatusCode::TOO_MANY_REQUESTS, &e.to_string()),
    };
    let state = Stream {
        watcher,
        matcher,
        reported_dropped: 0,
        quiet_for: Duration::ZERO,
        started: false,
    };
    let body = StreamBody::new(stream::unfold(state, |mut s| async move {
        let chunk = s.next_chunk().await;
        Some((Ok::<_, Infallible>(Frame::data(chunk)), s))
    }));
    let mut response = Response::new(BodyExt::boxed(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

struct Stream {
    watcher: Watcher,
    matcher: Arc<Matcher>,
    reported_dropped: u64,
    quiet_for: Duration,
    started: bool,
}

impl Stream {
    async fn next_chunk(&mut self) -> Bytes {
        if !self.started {
            self.started = true;
            // Sent at once so that the client sees the stream open.
            return Bytes::from_static(b": watching\n\n");
        }
        loop {
            let batch = tokio::time::timeout(STATS_EVERY, self.watcher.next_batch()).await;
            let mut out = String::new();
            if let Ok(events) = batch {
                for event in &events {
                    self.write_event(&mut out, event);
                }
            }
            let dropped = self.watcher.dropped();
            if dropped != self.reported_dropped {
                self.reported_dropped = dropped;
                out.push_str(&format!(
                    "event: stats\ndata: {{\"dropped\":{dropped}}}\n\n"
                ));
            }
            if !out.is_empty() {
                self.quiet_for = Duration::ZERO;
                return Bytes::from(out);
            }
            self.quiet_for += STATS_EVERY;
            if self.quiet_for >= KEEPALIVE {
                self.quiet_for = Duration::ZERO;
                return Bytes::from_static(b": keepalive\n\n");
            }
        }
    }

    fn write_event(&self, out: &mut String, event: &TapEvent) {
        let archived = archived_ids(&event.notes);
        let shares_ids = archived.len() == event.profiles.len();
        for (i, (labels, size)) in event.profiles.iter().enumerate() {
            if !self.matcher.matches(labels) {
                continue;
            }
            let archived = match shares_ids {
                true => vec![archived[i].clone()],
                false => archived.clone(),
            };
            let json = ProfileEvent::of(event, labels, *size, archived);
            if let Ok(json) = serde_json::to_string(&json) {
                out.push_str("event: profile\ndata: ");
                out.push_str(&json);
                out.push_str("\n\n");
            }
        }
    }
}

/// The ids in the archive's `stored as local-1, local-2` notes.
fn archived_ids(notes: &[String]) -> Vec<String> {
    notes
        .iter()
        .filter_map(|n| n.strip_prefix("stored as "))
        .flat_map(|ids| ids.split(", ").map(str::to_owned))
        .collect()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProfileEvent<'a> {
    time: String,
    component: &'a str,
    protocol: &'a str,
    labels: BTreeMap<&'a str, &'a str>,
    profile_type: String,
    size: usize,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorJson<'a>>,
    notes: &'a [String],
    archived: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorJson<'a> {
    code: &'static str,
    http_status: Option<u16>,
    message: &'a str,
}

impl<'a> ProfileEvent<'a> {
    fn of(event: &'a TapEvent, labels: &'a Labels, size: usize, archived: Vec<String>) -> Self {
        ProfileEvent {
            time: crate::archive::format_rfc3339(event.time, true),
            component: &event.component_id,
            protocol: event.protocol,
            labels: labels
                .iter()
                .map(|l| (l.name.as_str(), l.value.as_str()))
                .collect(),
            profile_type: profile_type(event.protocol, labels),
            size,
            outcome: if event.error.is_some() { "error" } else { "ok" },
            error: event.error.as_ref().map(|e| ErrorJson {
                code: e.code.name(),
                http_status: e.http_status,
                message: &e.message,
            }),
            notes: &event.notes,
            archived,
        }
    }
}

/// As the archive names it: push's `__name__` (`process_cpu`), or the part
/// of an `/ingest` application name after its last `.` (`app.cpu` → `cpu`).
fn profile_type(protocol: &str, labels: &Labels) -> String {
    let name = labels.get("__name__").unwrap_or("");
    if protocol == "/ingest" {
        return match name.rsplit_once('.') {
            Some((_, suffix)) if !suffix.is_empty() => suffix.to_owned(),
            _ => "unknown".to_owned(),
        };
    }
    if name.is_empty() { "unknown" } else { name }.to_owned()
}
