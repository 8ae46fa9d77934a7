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
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::matcher::Matcher;
use super::{UiBody, json_error, query_param};
use crate::pipeline::tap::{ArchivedId, CapturedLabels, Note, TapEvent, Watcher};
use crate::runtime::Runtime;

/// Events one reader may fall behind by before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 1024;
/// How long events gather before they are written, so that a busy stream
/// costs one write for many events (a half-full queue is written at once).
const GATHER: Duration = Duration::from_millis(20);
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
        Ok(m) if m.is_empty() => None,
        Ok(m) => Some(Arc::new(m)),
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
    let filter = matcher
        .clone()
        .map(|m| Box::new(move |labels: &crate::pipeline::Labels| m.matches(labels)) as _);
    let watcher = match info.tap.watch(QUEUE_CAPACITY, filter) {
        Ok(watcher) => watcher,
        Err(e) => return json_error(StatusCode::TOO_MANY_REQUESTS, &e.to_string()),
    };
    let state = Stream {
        watcher,
        matcher,
        reported_dropped: 0,
        quiet_for: Duration::ZERO,
        started: false,
        clock: TimeText::default(),
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
    /// `None`: every profile (no matching work at all).
    matcher: Option<Arc<Matcher>>,
    reported_dropped: u64,
    quiet_for: Duration,
    started: bool,
    clock: TimeText,
}

impl Stream {
    async fn next_chunk(&mut self) -> Bytes {
        if !self.started {
            self.started = true;
            // Sent at once so that the client sees the stream open.
            return Bytes::from_static(b": watching\n\n");
        }
        loop {
            let mut out = Vec::new();
            if tokio::time::timeout(STATS_EVERY, self.watcher.ready())
                .await
                .is_ok()
            {
                self.watcher.gather(GATHER).await;
                let events = self.watcher.take();
                out.reserve(events.len() * 512);
                for event in events {
                    self.write_event(&mut out, &event);
                }
            }
            let dropped = self.watcher.dropped();
            if dropped != self.reported_dropped {
                self.reported_dropped = dropped;
                out.extend_from_slice(
                    format!("event: stats\ndata: {{\"dropped\":{dropped}}}\n\n").as_bytes(),
                );
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

    fn write_event(&mut self, out: &mut Vec<u8>, event: &TapEvent) {
        let archived: Vec<ArchivedId> = event.archived().collect();
        let shares_ids = archived.len() == event.profiles.len();
        let time = self.clock.format(event.time);
        for (i, (labels, size)) in event.profiles.iter().enumerate() {
            if let Some(matcher) = &self.matcher
                && !matcher.matches_by(|name| labels.get(name))
            {
                continue;
            }
            let archived = match shares_ids {
                true => &archived[i..=i],
                false => &archived[..],
            };
            let json = ProfileEvent {
                time,
                component: &event.component_id,
                protocol: event.protocol,
                labels: LabelsJson(labels),
                profile_type: profile_type(event.protocol, labels),
                size: *size,
                outcome: if event.error.is_some() { "error" } else { "ok" },
                error: event.error.as_ref().map(|e| ErrorJson {
                    code: e.code.name(),
                    http_status: e.http_status,
                    message: &e.message,
                }),
                notes: Shown(&event.notes),
                archived: Shown(archived),
            };
            let mark = out.len();
            out.extend_from_slice(b"event: profile\ndata: ");
            match serde_json::to_writer(&mut *out, &json) {
                Ok(()) => out.extend_from_slice(b"\n\n"),
                Err(_) => out.truncate(mark),
            }
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProfileEvent<'a> {
    time: &'a str,
    component: &'a str,
    protocol: &'a str,
    labels: LabelsJson<'a>,
    profile_type: &'a str,
    size: usize,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorJson<'a>>,
    notes: Shown<'a, Note>,
    archived: Shown<'a, ArchivedId<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorJson<'a> {
    code: &'static str,
    http_status: Option<u16>,
    message: &'a str,
}

/// Labels as a JSON object, written straight from the captured buffer.
struct LabelsJson<'a>(&'a CapturedLabels);

impl Serialize for LabelsJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.iter().len()))?;
        for (name, value) in self.0.iter() {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// A list of JSON strings, each written from its `Display`.
struct Shown<'a, T>(&'a [T]);

impl<T: std::fmt::Display> Serialize for Shown<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for item in self.0 {
            seq.serialize_element(&DisplayString(item))?;
        }
        seq.end()
    }
}

struct DisplayString<'a, T>(&'a T);

impl<T: std::fmt::Display> Serialize for DisplayString<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

/// As the archive names it: push's `__name__` (`process_cpu`), or the part
/// of an `/ingest` application name after its last `.` (`app.cpu` → `cpu`).
fn profile_type<'a>(protocol: &str, labels: &'a CapturedLabels) -> &'a str {
    let name = labels.get("__name__").unwrap_or("");
    if protocol == "/ingest" {
        return match name.rsplit_once('.') {
            Some((_, suffix)) if !suffix.is_empty() => suffix,
            _ => "unknown",
        };
    }
    if name.is_empty() { "unknown" } else { name }
}

/// RFC 3339 times with nanoseconds, as `archive::format_rfc3339` writes
/// them, with the date and time of day kept from one second to the next:
/// a busy stream formats the calendar once a second, not once an event.
#[derive(Default)]
struct TimeText {
    second: Option<u64>,
    /// `2025-01-02T03:04:05` for `second`.
    prefix: String,
    text: String,
}

impl TimeText {
    fn format(&mut self, time: SystemTime) -> &str {
        let Ok(since_epoch) = time.duration_since(UNIX_EPOCH) else {
            self.second = None;
            self.text = crate::archive::format_rfc3339(time, true);
            return &self.text;
        };
        let second = since_epoch.as_secs();
        if self.second != Some(second) {
            let whole = UNIX_EPOCH + Duration::from_secs(second);
            let text = crate::archive::format_rfc3339(whole, false);
            self.prefix = text.trim_end_matches('Z').to_owned();
            self.second = Some(second);
        }
        self.text.clear();
        let nanos = since_epoch.subsec_nanos();
        let _ = write!(self.text, "{}.{nanos:09}Z", self.prefix);
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_the_archive_writes_them() {
        let mut clock = TimeText::default();
        for nanos in [
            1_700_000_000_123_456_789u64,
            1_700_000_000_999_999_999,
            1_700_000_001_000_000_001,
            1_700_000_001_500_000_000,
            0,
        ] {
            let t = UNIX_EPOCH + Duration::from_nanos(nanos);
            assert_eq!(clock.format(t), crate::archive::format_rfc3339(t, true));
        }
        let before_epoch = UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(
            clock.format(before_epoch),
            crate::archive::format_rfc3339(before_epoch, true)
        );
    }
}
