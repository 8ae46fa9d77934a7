//! The ingest path: the raw `/ingest` body, forwarded byte for byte with
//! the `name` parameter rebuilt from the (possibly relabeled) labels.

use http::header::CONTENT_TYPE;

use super::appender::{State, all_endpoints};
use super::send::{Kind, Prepared, send};
use super::{headers, labels, query};
use crate::codec::{Code, labelset};
use crate::pipeline::{AppendError, IngestProfile, Profile};

pub(super) async fn append(
    state: &State,
    ingest: &IngestProfile,
    profile: &Profile,
) -> Result<(), AppendError> {
    let named = labels::service_name_as_name(&ingest.labels);
    labels::validate(&named)?;
    let merged = labels::with_external(named, &state.external);
    let query = &query::with_name(&ingest.query, &labelset::normalized(&merged));
    all_endpoints(state, |ep| async move {
        let uri = ep.ingest_uri(&ingest.path, query).map_err(|e| {
            AppendError::new(
                Code::InvalidArgument,
                format!("cannot build the backend URL: {e}"),
            )
        })?;
        let mut headers = headers::assemble(&ep.configured_headers, &profile.forwarded_headers);
        for (i, ct) in ingest.content_types.iter().enumerate() {
            if i == 0 {
                headers.insert(CONTENT_TYPE, ct.clone());
            } else {
                headers.append(CONTENT_TYPE, ct.clone());
            }
        }
        let req = Prepared {
            uri,
            headers,
            body: ingest.body.clone(),
            bytes: ingest.body.len(),
            profiles: 1,
        };
        send(ep, Kind::Ingest, req, profile.deadline).await
    })
    .await
}
