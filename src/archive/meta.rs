//! What the archive knows about each stored profile, and how it is
//! selected.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use std::fmt;
use std::time::SystemTime;

use crate::pipeline::Labels;

/// A record's id within one archive: assigned in append order, never
/// reused, shown in decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RecordId(pub u64);

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How a profile arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// One `raw_profile` of a `push.v1` request.
    Push { sample_id: String },
    /// An `/ingest` request body.
    Ingest {
        content_types: Vec<String>,
        path: String,
        /// The raw query string, without `?`.
        query: String,
    },
}

/// A profile to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord {
    pub origin: Origin,
    pub labels: Labels,
    pub body: bytes::Bytes,
}

/// A stored profile, without its body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordMeta {
    #[serde(rename = "seq")]
    pub id: RecordId,
    #[serde(rename = "time", serialize_with = "ser_time")]
    pub arrival: SystemTime,
    pub service: String,
    pub profile_type: String,
    #[serde(serialize_with = "ser_labels")]
    pub labels: Labels,
    /// Body bytes.
    pub size: u64,
    pub origin: Origin,
}

/// Which records [`Store::list`](super::Store::list) returns: all
/// conditions must hold. `limit` keeps the newest matches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub service: Option<String>,
    pub since: Option<SystemTime>,
    pub labels: Vec<(String, String)>,
    pub limit: Option<usize>,
}

impl Filter {
    pub(crate) fn matches(&self, service: &str, arrival: SystemTime, labels: &Labels) -> bool {
        self.service.as_deref().is_none_or(|s| s == service)
            && self.since.is_none_or(|t| arrival >= t)
            && self
                .labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v.as_str()))
    }
}

/// The service a profile belongs to: its `service_name` label; for
/// `/ingest`, else the application name (`__name__` without the type
/// suffix: `app.cpu` → `app`); else empty.
pub fn service_of(labels: &Labels, origin: &Origin) -> String {
    if let Some(s) = labels.get("service_name") {
        return s.to_owned();
    }
    match (origin, labels.get("__name__")) {
        (Origin::Ingest { .. }, Some(name)) => match name.rsplit_once('.') {
            Some((app, _)) if !app.is_empty() => app.to_owned(),
            _ => name.to_owned(),
        },
        _ => String::new(),
    }
}

/// The profile type: for push the `__name__` label (`process_cpu`,
/// `memory`); for `/ingest` the suffix after the last `.` of the
/// application name (`app.cpu` → `cpu`), else the `format` query
/// parameter (`pprof`, `jfr`, `folded`, ...), else `unknown`.
pub fn profile_type_of(labels: &Labels, origin: &Origin) -> String {
    match origin {
        Origin::Push { .. } => labels.get("__name__").unwrap_or("unknown").to_owned(),
        Origin::Ingest { query, .. } => {
            if let Some((_, suffix)) = labels.get("__name__").and_then(|n| n.rsplit_once('.'))
                && !suffix.is_empty()
            {
                return suffix.to_owned();
            }
            query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, v)| *k == "format" && !v.is_empty())
                .map(|(_, v)| v.to_owned())
                .unwrap_or_else(|| "unknown".to_owned())
        }
    }
}

fn ser_time<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&super::time::format_rfc3339(*t, true))
}

pub(crate) fn ser_labels<S: Serializer>(labels: &Labels, s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(labels.len()))?;
    for l in labels.iter() {
        map.serialize_entry(&l.name, &l.value)?;
    }
    map.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingest(query: &str) -> Origin {
        Origin::Ingest {
            content_types: vec![],
            path: "/ingest".into(),
            query: query.into(),
        }
    }

    #[test]
    fn derives_service_and_type() {
        let push = Origin::Push {
            sample_id: String::new(),
        };
        let l = Labels::from_pairs([("service_name", "api"), ("__name__", "process_cpu")]);
        assert_eq!(service_of(&l, &push), "api");
        assert_eq!(profile_type_of(&l, &push), "process_cpu");
        assert_eq!(profile_type_of(&Labels::new(), &push), "unknown");
        assert_eq!(service_of(&Labels::new(), &push), "");

        let l = Labels::from_pairs([("__name__", "my.app.cpu")]);
        assert_eq!(service_of(&l, &ingest("")), "my.app");
        assert_eq!(profile_type_of(&l, &ingest("")), "cpu");
        let l = Labels::from_pairs([("__name__", "app")]);
        assert_eq!(service_of(&l, &ingest("")), "app");
        assert_eq!(profile_type_of(&l, &ingest("name=app&format=jfr")), "jfr");
        assert_eq!(profile_type_of(&l, &ingest("name=app")), "unknown");
    }

    #[test]
    fn filter_matches_all_conditions() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(100);
        let l = Labels::from_pairs([("env", "prod"), ("service_name", "api")]);
        let mut f = Filter::default();
        assert!(f.matches("api", t, &l));
        f.service = Some("api".into());
        f.labels = vec![("env".into(), "prod".into())];
        f.since = Some(t);
        assert!(f.matches("api", t, &l));
        assert!(!f.matches("web", t, &l));
        f.since = Some(t + std::time::Duration::from_secs(1));
        assert!(!f.matches("api", t, &l));
        f.since = None;
        f.labels.push(("region".into(), "eu".into()));
        assert!(!f.matches("api", t, &l));
    }
}
