//! What travels from a receiver to the senders.

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use std::sync::Arc;
use tokio::time::Instant;

use super::Labels;

/// One received request's profiles, with what every sender needs to send
/// them on. Cloning is cheap: bodies are reference-counted [`Bytes`].
#[derive(Debug, Clone)]
pub struct Profile {
    pub payload: Payload,
    /// Client headers named in receive_http's `forward_headers`, in the
    /// order received. Shared by every receiver of a fan-out.
    pub forwarded_headers: Arc<[(HeaderName, HeaderValue)]>,
    /// The caller's deadline (Connect-Timeout-Ms, grpc-timeout); senders stop
    /// retrying when it passes.
    pub deadline: Option<Instant>,
    /// How it arrived: `/ingest`, `connect`, `grpc`, `grpc_web`, or `push`
    /// when not told. Shown by the live tap.
    pub protocol: &'static str,
}

#[derive(Debug, Clone)]
pub enum Payload {
    /// Series that arrived through `push.v1.PusherService/Push`.
    Push(Vec<Series>),
    /// A body that arrived on `/ingest`, forwarded byte for byte.
    Ingest(IngestProfile),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub id: String,
    /// A serialized pprof, gzipped or not, never decoded here.
    pub raw_profile: Bytes,
}

#[derive(Debug, Clone)]
pub struct IngestProfile {
    /// The request body exactly as received.
    pub body: Bytes,
    /// Every `Content-Type` value of the request, in order.
    pub content_types: Vec<HeaderValue>,
    /// The request path, `/ingest`.
    pub path: String,
    /// The raw query string, as received (without `?`).
    pub query: String,
    /// Labels parsed from the `name` parameter.
    pub labels: Labels,
}

impl Profile {
    pub fn new(payload: Payload) -> Self {
        let protocol = match payload {
            Payload::Push(_) => "push",
            Payload::Ingest(_) => "/ingest",
        };
        Self {
            protocol,
            payload,
            forwarded_headers: Arc::from(Vec::new()),
            deadline: None,
        }
    }

    /// Number of profiles carried (samples for push, one for ingest).
    pub fn profile_count(&self) -> usize {
        match &self.payload {
            Payload::Push(series) => series.iter().map(|s| s.samples.len()).sum(),
            Payload::Ingest(_) => 1,
        }
    }

    /// Bytes of profile data carried (raw profiles or the ingest body).
    pub fn byte_count(&self) -> usize {
        match &self.payload {
            Payload::Push(series) => series
                .iter()
                .flat_map(|s| s.samples.iter())
                .map(|s| s.raw_profile.len())
                .sum(),
            Payload::Ingest(p) => p.body.len(),
        }
    }
}
