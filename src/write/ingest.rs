//! The ingest path: the raw `/ingest` body, forwarded byte for byte with
//! the `name` parameter rebuilt from the (possibly relabeled) labels.

use super::outgoing::{Request, Target};
use super::{labels, query};
use crate::codec::labelset;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};

use crate::pipeline::{AppendError, IngestProfile};

/// The downstream request for an `/ingest` body: `name` rebuilt from the
/// (possibly relabeled) labels plus the external labels. Takes the profile
/// apart: the body, path and content types move into the request.
pub(super) fn request(
    ingest: IngestProfile,
    external: &[(String, String)],
    forwarded: Arc<[(HeaderName, HeaderValue)]>,
) -> Result<Request, AppendError> {
    let merged = labels::for_ingest(&ingest.labels, external)?;
    let query = query::with_name(&ingest.query, labelset::normalized_pieces(&merged));
    Ok(Request {
        target: Target::Ingest {
            path: ingest.path,
            query,
            content_types: ingest.content_types,
        },
        forwarded,
        bytes: ingest.body.len(),
        body: ingest.body,
        profiles: 1,
    })
}
