//! The archive's admin API, as a plain function the admin router mounts:
//!
//! - `GET /api/v1/profiles?service=&since=10m&label=k=v&limit=100` →
//!   `{"profiles": [...]}`, newest first (`limit` defaults to 100);
//! - `GET /api/v1/profiles/{id}` → the stored bytes with the Content-Type
//!   they arrived with (push: `application/octet-stream`).
//!
//! Errors are `{"error": "..."}` with 400 (bad query or id), 404 (unknown
//! id), 405 (not GET) or 500.

use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use std::sync::Arc;

use super::time::parse_since;
use super::view::{self, Listed};
use super::{ArchiveError, Filter, Store};

const PREFIX: &str = "/api/v1/profiles";
const DEFAULT_LIMIT: usize = 100;

/// Answers a request under `/api/v1/profiles`, or `None` for other paths.
pub async fn handle(
    stores: &[(String, Arc<Store>)],
    method: &Method,
    path: &str,
    query: Option<&str>,
) -> Option<Response<Bytes>> {
    let rest = path.strip_prefix(PREFIX)?;
    let id = match rest {
        "" | "/" => None,
        r => Some(r.strip_prefix('/')?.to_owned()),
    };
    if method != Method::GET {
        let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "only GET is allowed");
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
        return Some(r);
    }
    let stores = stores.to_vec();
    let response = match id {
        None => match parse_query(query.unwrap_or("")) {
            Ok(filter) => blocking(move || list(&stores, &filter)).await,
            Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
        },
        Some(id) => blocking(move || get(&stores, &id)).await,
    };
    Some(response)
}

async fn blocking(f: impl FnOnce() -> Response<Bytes> + Send + 'static) -> Response<Bytes> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))
}

fn list(stores: &[(String, Arc<Store>)], filter: &Filter) -> Response<Bytes> {
    #[derive(serde::Serialize)]
    struct Body {
        profiles: Vec<Listed>,
    }
    let body = Body {
        profiles: view::list_all(stores, filter),
    };
    match serde_json::to_vec(&body) {
        Ok(json) => response(StatusCode::OK, "application/json", json.into()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn get(stores: &[(String, Arc<Store>)], id: &str) -> Response<Bytes> {
    match view::find(stores, id) {
        Ok((component_id, meta, body)) => {
            let name = view::file_name(&view::qualified_id(&component_id, meta.id), &meta, &body);
            let mut r = response(StatusCode::OK, view::content_type(&meta), body);
            if let Ok(v) =
                header::HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
            {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Err(e @ ArchiveError::NotFound(_)) => error(StatusCode::NOT_FOUND, &e.to_string()),
        Err(e @ ArchiveError::InvalidArgument(_)) => error(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn response(status: StatusCode, content_type: &str, body: Bytes) -> Response<Bytes> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let ct = header::HeaderValue::from_str(content_type)
        .unwrap_or(header::HeaderValue::from_static("application/octet-stream"));
    r.headers_mut().insert(header::CONTENT_TYPE, ct);
    r
}

fn error(status: StatusCode, message: &str) -> Response<Bytes> {
    let body = serde_json::json!({ "error": message }).to_string();
    response(status, "application/json", body.into())
}

/// Parses `service`, `since`, `limit` and repeated `label=k=v`; other
/// parameters are ignored.
pub fn parse_query(query: &str) -> Result<Filter, ArchiveError> {
    let bad = |m: String| ArchiveError::InvalidArgument(m);
    let mut filter = Filter {
        limit: Some(DEFAULT_LIMIT),
        ..Filter::default()
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k).ok_or_else(|| bad(format!("bad escape in {pair:?}")))?;
        let v = percent_decode(v).ok_or_else(|| bad(format!("bad escape in {pair:?}")))?;
        match k.as_str() {
            "service" if !v.is_empty() => filter.service = Some(v),
            "since" if !v.is_empty() => filter.since = Some(parse_since(&v)?),
            "limit" if !v.is_empty() => {
                let n: usize = v
                    .parse()
                    .map_err(|_| bad(format!("invalid limit {v:?}: want a positive number")))?;
                filter.limit = Some(n);
            }
            "label" => {
                let (name, value) = v
                    .split_once('=')
                    .filter(|(n, _)| !n.is_empty())
                    .ok_or_else(|| bad(format!("invalid label {v:?}: want name=value")))?;
                filter.labels.push((name.to_owned(), value.to_owned()));
            }
            _ => {}
        }
    }
    Ok(filter)
}

/// Decodes `%XX` escapes and `+` (a space in query strings).
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}
