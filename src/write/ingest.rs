//! The ingest path: the raw `/ingest` body, forwarded byte for byte with
//! the `name` parameter rebuilt from the (possibly relabeled) labels.

use super::outgoing::{Request, Target};
use super::{labels, query};
use crate::codec::labelset;
use crate::pipeline::{AppendError, IngestProfile, Profile};

/// The downstream request for an `/ingest` body: `name` rebuilt from the
/// (possibly relabeled) labels plus the external labels.
pub(super) fn request(
    ingest: &IngestProfile,
    external: &[(String, String)],
    profile: &Profile,
) -> Result<Request, AppendError> {
    let named = labels::service_name_as_name(&ingest.labels);
    labels::validate(&named)?;
    let merged = labels::with_external(named, external);
    Ok(Request {
        target: Target::Ingest {
            path: ingest.path.clone(),
            query: query::with_name(&ingest.query, &labelset::normalized(&merged)),
            content_types: ingest.content_types.clone(),
        },
        forwarded: profile.forwarded_headers.clone(),
        body: ingest.body.clone(),
        profiles: 1,
        bytes: ingest.body.len(),
    })
}
