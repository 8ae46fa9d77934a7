//! What the data path captures for a watcher: cheap, owned pieces (labels
//! copied into one buffer, sizes, outcome codes, shared ids). Turning them
//! into text is the reader's work ([`Note`]'s `Display`, the UI's JSON), done
//! on the stream's task, never on the request's.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use super::super::{AppendError, Labels, Payload, Profile};

/// What a watcher is shown of one append (or one request, for a receiver).
#[derive(Debug, Clone)]
pub struct TapEvent {
    pub component_id: Arc<str>,
    pub time: SystemTime,
    /// `/ingest`, `connect`, `grpc`, `grpc_web`, or `push` when the RPC
    /// flavour is not known.
    pub protocol: &'static str,
    /// One entry per profile carried: its labels and size in bytes.
    pub profiles: Vec<(CapturedLabels, usize)>,
    /// `None` when the append succeeded.
    pub error: Option<AppendError>,
    /// What the component and everything behind it did, in order.
    pub notes: Vec<Note>,
}

impl TapEvent {
    /// An event describing `profile`, before it is handed on.
    pub fn describe(component_id: Arc<str>, profile: &Profile) -> Self {
        let profiles = match &profile.payload {
            Payload::Push(series) => series
                .iter()
                .flat_map(|s| {
                    let labels = CapturedLabels::of(&s.labels);
                    s.samples
                        .iter()
                        .map(move |p| (labels.clone(), p.raw_profile.len()))
                })
                .collect(),
            Payload::Ingest(ingest) => {
                vec![(CapturedLabels::of(&ingest.labels), ingest.body.len())]
            }
        };
        Self {
            component_id,
            time: SystemTime::now(),
            protocol: profile.protocol,
            profiles,
            error: None,
            notes: Vec::new(),
        }
    }

    /// The archive ids of the [`Note::Stored`] notes, in order.
    pub fn archived(&self) -> impl Iterator<Item = ArchivedId<'_>> {
        self.notes.iter().flat_map(|note| match note {
            Note::Stored { archive, ids } => ids
                .iter()
                .map(|&id| ArchivedId { archive, id })
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        })
    }
}

/// A label set as the data path saw it, copied into one shared buffer:
/// two allocations whatever the number of labels, and cloning is a
/// reference count.
#[derive(Clone, PartialEq, Eq)]
pub struct CapturedLabels(Arc<Captured>);

#[derive(PartialEq, Eq)]
struct Captured {
    /// Every name and value back to back.
    text: String,
    /// For each label, where its name and its value end in `text`.
    ends: Vec<(usize, usize)>,
}

impl CapturedLabels {
    pub fn of(labels: &Labels) -> Self {
        let len = labels.iter().map(|l| l.name.len() + l.value.len()).sum();
        let mut text = String::with_capacity(len);
        let mut ends = Vec::with_capacity(labels.len());
        for l in labels.iter() {
            text.push_str(&l.name);
            let name_end = text.len();
            text.push_str(&l.value);
            ends.push((name_end, text.len()));
        }
        Self(Arc::new(Captured { text, ends }))
    }

    /// Name and value of each label, sorted by name as [`Labels`] keeps them.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        let c = &*self.0;
        let mut start = 0;
        c.ends.iter().map(move |&(name_end, value_end)| {
            let pair = (&c.text[start..name_end], &c.text[name_end..value_end]);
            start = value_end;
            pair
        })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

/// Renders as [`Labels`] does: `{a="1", b="2"}`.
impl fmt::Display for CapturedLabels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (name, value)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}={value:?}")?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for CapturedLabels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A detail a component adds to the event of the append it serves (see
/// [`super::note`]). Shown as text by its `Display`.
#[derive(Clone)]
pub enum Note {
    /// A destination's answer (a `forward_to` receiver, a write endpoint):
    /// `<to>: ok` or `<to>: <code> [<HTTP status>] <message>`.
    Answer {
        to: Arc<str>,
        error: Option<AppendError>,
    },
    /// A write with a `queue` took the request (`queued: ok`) or refused it.
    Queued { accepted: bool },
    /// Relabeling kept the profile with these labels.
    Relabeled(CapturedLabels),
    /// An archive stored the profiles: `stored as local-1, local-2`, the
    /// archive's label and record ids (the archive's qualified ids).
    Stored { archive: Arc<str>, ids: Vec<u64> },
    /// Anything else, written out only when a reader shows it.
    Deferred(Arc<dyn Fn() -> String + Send + Sync>),
}

impl Note {
    pub fn deferred(describe: impl Fn() -> String + Send + Sync + 'static) -> Self {
        Note::Deferred(Arc::new(describe))
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Answer { to, error: None } => write!(f, "{to}: ok"),
            Note::Answer { to, error: Some(e) } => match e.http_status {
                Some(status) => write!(f, "{to}: {} {status} {}", e.code.name(), e.message),
                None => write!(f, "{to}: {} {}", e.code.name(), e.message),
            },
            Note::Queued { accepted: true } => f.write_str("queued: ok"),
            Note::Queued { accepted: false } => f.write_str("queued: refused"),
            Note::Relabeled(labels) => write!(f, "relabeled to {labels}"),
            Note::Stored { archive, ids } => {
                f.write_str("stored as ")?;
                for (i, &id) in ids.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", ArchivedId { archive, id })?;
                }
                Ok(())
            }
            Note::Deferred(describe) => f.write_str(&describe()),
        }
    }
}

impl fmt::Debug for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Note({self})")
    }
}

/// One archived profile's id: `local-42`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchivedId<'a> {
    pub archive: &'a str,
    pub id: u64,
}

impl fmt::Display for ArchivedId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.archive, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Code;

    #[test]
    fn captured_labels_read_back_as_given() {
        let labels = Labels::from_pairs([("service_name", "checkout"), ("env", "prod"), ("e", "")]);
        let captured = CapturedLabels::of(&labels);
        let pairs: Vec<_> = captured.iter().collect();
        assert_eq!(pairs, [("env", "prod"), ("service_name", "checkout")]);
        assert_eq!(captured.get("env"), Some("prod"));
        assert_eq!(captured.get("missing"), None);
        assert_eq!(captured.to_string(), labels.to_string());
        assert_eq!(CapturedLabels::of(&Labels::new()).iter().len(), 0);
    }

    #[test]
    fn notes_read_as_before() {
        let answer = |error| Note::Answer {
            to: "http://b".into(),
            error,
        };
        assert_eq!(answer(None).to_string(), "http://b: ok");
        let refused = AppendError::from_http_status(429, "slow down");
        assert_eq!(
            answer(Some(refused)).to_string(),
            "http://b: resource_exhausted 429 slow down"
        );
        let down = AppendError::new(Code::Unavailable, "down");
        assert_eq!(answer(Some(down)).to_string(), "http://b: unavailable down");
        let stored = Note::Stored {
            archive: "local".into(),
            ids: vec![1, 2],
        };
        assert_eq!(stored.to_string(), "stored as local-1, local-2");
        let id = crate::archive::RecordId(2);
        let qualified = crate::archive::qualified_id("pyroscope.archive.local", id);
        assert!(
            stored.to_string().ends_with(&qualified),
            "as the archive names it"
        );
        assert_eq!(Note::deferred(|| "later".into()).to_string(), "later");
    }
}
