//! The web UI on the admin server, and the JSON API it is built on:
//!
//! - `GET /` and `/ui/*`: the pages (plain HTML, CSS and JS in
//!   `src/ui/assets/`, compiled into the binary; no build step);
//! - `GET /api/v0/web/components[/{id}]`: Alloy's UI API ([`components`]);
//! - `GET /api/v1/tap?component=ID&match=...`: the live tap as Server-Sent
//!   Events ([`tap`]);
//! - `GET /api/v1/profiles/{id}/flamegraph?sample_type=...`: an archived
//!   profile as a flame graph ([`flamegraph`]).
//!
//! Every answer carries a `Content-Security-Policy` that allows only this
//! origin's scripts and styles: label values come from agents, and even a
//! mistake in escaping could not run a script they send.

mod components;
mod flamegraph;
mod matcher;
mod tap;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use std::convert::Infallible;

use crate::runtime::Runtime;

pub use matcher::{Matcher, MatcherError};

/// The body of every UI answer: whole, or streamed (the tap).
pub type UiBody = BoxBody<Bytes, Infallible>;

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const FLAME_JS: &str = include_str!("assets/flame.js");
const METRICS_JS: &str = include_str!("assets/metrics.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Answers the UI's paths; hands any other request back untouched.
pub async fn route<B>(runtime: &Runtime, req: Request<B>) -> Result<Response<UiBody>, Request<B>> {
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or("");
    let is_ui = path == "/"
        || path.starts_with("/ui/")
        || path.starts_with("/api/v0/web/")
        || path == "/api/v1/tap"
        || (path.starts_with("/api/v1/profiles/") && path.ends_with("/flamegraph"));
    if !is_ui {
        return Err(req);
    }
    let mut response = if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = json_error(StatusCode::METHOD_NOT_ALLOWED, "only GET is allowed");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        r
    } else {
        match path {
            "/" | "/ui/" | "/ui/index.html" => asset("text/html; charset=utf-8", INDEX_HTML),
            "/ui/app.js" => asset("text/javascript; charset=utf-8", APP_JS),
            "/ui/flame.js" => asset("text/javascript; charset=utf-8", FLAME_JS),
            "/ui/metrics.js" => asset("text/javascript; charset=utf-8", METRICS_JS),
            "/ui/app.css" => asset("text/css; charset=utf-8", APP_CSS),
            "/api/v1/tap" => tap::stream(runtime, query).await,
            p if p.starts_with("/api/v0/web/") => components::handle(runtime, p).await,
            p => {
                let id = p
                    .trim_start_matches("/api/v1/profiles/")
                    .trim_end_matches("/flamegraph");
                flamegraph::handle(runtime, id, query).await
            }
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(response)
}

fn asset(content_type: &'static str, text: &'static str) -> Response<UiBody> {
    let mut r = whole(
        StatusCode::OK,
        content_type,
        Bytes::from_static(text.as_bytes()),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn whole(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<UiBody> {
    let mut r = Response::new(Full::new(body).boxed());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<UiBody> {
    match serde_json::to_vec(value) {
        Ok(body) => whole(status, "application/json", body.into()),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn json_error(status: StatusCode, message: &str) -> Response<UiBody> {
    let body = serde_json::json!({ "error": message }).to_string();
    whole(status, "application/json", body.into())
}

/// The value of query parameter `name`, percent-decoded.
fn query_param(query: &str, name: &str) -> Option<String> {
    crate::codec::query::value(query, name).map(|v| v.into_owned())
}
