//! `POST /ingest`: the body is forwarded exactly as received, never parsed
//! or decompressed; only the `name` query parameter is read, for labels.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Request, StatusCode};
use http_body::Body;

use super::body::{self, BodyError};
use super::forward;
use super::reply;
use super::router::{App, Deadlines, Outcome};
use crate::codec::{labelset, query};
use crate::pipeline::{IngestProfile, Labels, Payload, Profile};
use crate::telemetry::Throttle;
use std::time::Duration;

pub(super) async fn handle<B>(request: Request<B>, app: &App, deadlines: Deadlines) -> Outcome
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let (response, body_unread) = match serve(request, app, deadlines).await {
        Ok(response) => (response, false),
        Err(response) => (response, true),
    };
    Outcome {
        body_unread,
        ..Outcome::new(response, "ingest", "http")
    }
}

/// The answer; `Err` when the body could not be read to its end.
async fn serve<B>(
    request: Request<B>,
    app: &App,
    deadlines: Deadlines,
) -> Result<reply::HttpResponse, reply::HttpResponse>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let (parts, body) = request.into_parts();
    let settings = app.settings();
    let declared = body::content_length(&parts.headers);
    let limit = settings.body_limit;
    let body = match body::read_limited(body, declared, limit, deadlines.read, &app.budget).await {
        Ok(body) => body,
        Err(err) => return Err(body_error(err)),
    };
    app.metrics.received("ingest", body.len(), 1);
    if settings.forward_to.is_empty() {
        return Ok(reply::plain(StatusCode::OK, Bytes::new()));
    }

    let query = parts.uri.query().unwrap_or_default().to_owned();
    let profile = Profile {
        payload: Payload::Ingest(IngestProfile {
            body,
            content_types: parts
                .headers
                .get_all(CONTENT_TYPE)
                .iter()
                .cloned()
                .collect(),
            path: parts.uri.path().to_owned(),
            labels: labels_from_query(&query),
            query,
        }),
        forwarded_headers: forward::forwarded_headers(&parts.headers, &settings.forward_headers),
        deadline: deadlines.respond,
        protocol: "/ingest",
    };
    let delivered = forward::deliver(&app.tap, &settings.forward_to, profile, deadlines.respond);
    let Err(failures) = delivered.await else {
        return Ok(reply::plain(StatusCode::OK, Bytes::new()));
    };
    static FAILURES: Throttle = Throttle::new(Duration::from_secs(1));
    if let Some(suppressed) = FAILURES.admit() {
        for (i, err) in &failures.errors {
            tracing::warn!(appendable = i, error = %err, suppressed, "failed to ingest profile");
        }
    }
    if failures.timed_out {
        return Ok(reply::plain(
            StatusCode::GATEWAY_TIMEOUT,
            "timed out waiting for the receivers (server_write_timeout)\n",
        ));
    }
    Ok(match failures.most_meaningful_with_status() {
        Some((status, err)) if status >= 400 => match StatusCode::from_u16(status) {
            Ok(status) => {
                let mut reply = reply::plain(status, format!("{}\n", err.message));
                if let Some(after) = err.retry_after {
                    reply.headers_mut().insert(
                        http::header::RETRY_AFTER,
                        http::HeaderValue::from(after.as_secs().max(1)),
                    );
                }
                reply
            }
            Err(_) => failed(),
        },
        _ => failed(),
    })
}

fn failed() -> reply::HttpResponse {
    reply::plain(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Failed to process request\n",
    )
}

/// How long a client refused for lack of request memory should wait.
const OVER_BUDGET_RETRY_AFTER_SECONDS: &str = "1";

fn body_error(err: BodyError) -> reply::HttpResponse {
    let status = match err {
        BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        BodyError::TimedOut => StatusCode::REQUEST_TIMEOUT,
        BodyError::Read(_) => StatusCode::BAD_REQUEST,
        BodyError::OverBudget(_) => StatusCode::TOO_MANY_REQUESTS,
    };
    let mut response = reply::plain(status, format!("{err}\n"));
    if status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static(OVER_BUDGET_RETRY_AFTER_SECONDS),
        );
    }
    response
}

/// Labels from the `name` parameter, as Alloy builds them: parsed with the
/// Pyroscope labelset grammar (a parse error is logged and gives no
/// labels), then `service_name` / `app_name` from `__name__`.
pub(super) fn labels_from_query(query: &str) -> Labels {
    let mut labels = match query::value(query, "name") {
        Some(name) if !name.is_empty() => labelset::parse(&name).unwrap_or_else(|err| {
            tracing::warn!(name = %name, error = %err, "failed to parse the name parameter");
            Labels::new()
        }),
        _ => Labels::new(),
    };
    forward::ensure_service_name(&mut labels);
    labels
}
