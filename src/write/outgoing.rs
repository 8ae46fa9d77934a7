//! A downstream request built once from an incoming profile, before any
//! endpoint is chosen: what the synchronous path sends at once and what
//! the queue stores. Labels are validated and rewritten when it is built,
//! so whatever can be refused is refused before anything is acknowledged.

use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue};

use super::endpoint::Endpoint;
use super::headers;
use super::send::{Kind, Prepared};
use crate::codec::Code;
use crate::pipeline::AppendError;

const CONNECT_PROTO: HeaderValue = HeaderValue::from_static("application/proto");
const CONNECT_PROTOCOL_VERSION: &str = "connect-protocol-version";

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Request {
    pub target: Target,
    /// Client headers named in receive_http's `forward_headers`.
    pub forwarded: Arc<[(HeaderName, HeaderValue)]>,
    /// An encoded `PushRequest`, or the `/ingest` body as received.
    pub body: Bytes,
    /// Profiles and profile bytes carried, for the counters.
    pub profiles: usize,
    pub bytes: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Target {
    /// `push.v1.PusherService/Push` as a Connect unary call.
    Push,
    /// `/ingest` with `name` already rebuilt in `query`.
    Ingest {
        path: String,
        query: String,
        content_types: Vec<HeaderValue>,
    },
}

impl Request {
    pub fn kind(&self) -> Kind {
        match self.target {
            Target::Push => Kind::Push,
            Target::Ingest { .. } => Kind::Ingest,
        }
    }

    /// The request as `ep` sends it: its URL and headers around the body.
    pub fn for_endpoint(&self, ep: &Endpoint) -> Result<Prepared, AppendError> {
        let mut headers = headers::assemble(&ep.configured_headers, &self.forwarded);
        let uri = match &self.target {
            Target::Push => {
                headers.insert(CONTENT_TYPE, CONNECT_PROTO);
                headers.insert(CONNECT_PROTOCOL_VERSION, HeaderValue::from_static("1"));
                ep.push_uri.clone()
            }
            Target::Ingest {
                path,
                query,
                content_types,
            } => {
                for (i, ct) in content_types.iter().enumerate() {
                    if i == 0 {
                        headers.insert(CONTENT_TYPE, ct.clone());
                    } else {
                        headers.append(CONTENT_TYPE, ct.clone());
                    }
                }
                ep.ingest_uri(path, query).map_err(|e| {
                    AppendError::new(
                        Code::InvalidArgument,
                        format!("cannot build the backend URL: {e}"),
                    )
                })?
            }
        };
        Ok(Prepared {
            uri,
            headers,
            body: self.body.clone(),
            bytes: self.bytes,
            profiles: self.profiles,
        })
    }

    /// Whether `other` can share one downstream request with this one:
    /// two pushes with the same forwarded headers (so tenants never mix).
    pub fn can_merge(&self, other: &Request) -> bool {
        self.target == Target::Push
            && other.target == Target::Push
            && self.forwarded == other.forwarded
    }

    /// Appends `other`'s series: encoded `PushRequest`s concatenate into
    /// one whose `series` holds both (protobuf repeated fields merge).
    pub fn merge(&mut self, other: Request) {
        let mut body = Vec::with_capacity(self.body.len() + other.body.len());
        body.extend_from_slice(&self.body);
        body.extend_from_slice(&other.body);
        self.body = Bytes::from(body);
        self.profiles += other.profiles;
        self.bytes += other.bytes;
    }
}
