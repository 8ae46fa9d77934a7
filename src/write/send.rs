//! The one send-with-retry loop, shared by push and ingest.
//!
//! Attempts are made until one succeeds, the classifier gives up, the
//! attempt budget (`max_backoff_retries`, counting the first attempt; 0 is
//! unbounded) is spent, or the caller's deadline would pass. Each attempt
//! is bounded by `remote_timeout` and by the deadline. Between attempts the
//! jittered backoff applies; a `Retry-After` on 429/503 raises the wait to
//! at least its value, and is given up on at once when it does not fit in
//! the deadline (or, without one, in `max_backoff_period`).

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{AUTHORIZATION, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, Uri};
use tokio::time::Instant;

use super::auth::AuthFailure;
use super::backoff::Backoff;
use super::endpoint::Endpoint;
use super::metrics::{KindLatency, observe};
use super::retry::{Decision, Outcome, classify, parse_retry_after};
use super::transport::{Outgoing, ResponseBody, read_bounded};
use crate::codec::timeout::encode_connect_timeout_ms;
use crate::codec::{Code, connect_error};
use crate::pipeline::AppendError;

/// How many bytes of an error body are quoted in the error message.
const ERROR_EXCERPT: usize = 2048;
/// How many bytes of any response body are read (enough for a Connect
/// error; the rest is discarded with the connection).
const MAX_RESPONSE: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Push,
    Ingest,
}

/// One downstream request, reusable across attempts.
pub(super) struct Prepared {
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Profile bytes and profiles it carries, for the sent/dropped counters.
    pub bytes: usize,
    pub profiles: usize,
}

/// Sends `req` to `ep` with retries; counts sent or dropped. `queued`:
/// the queue's sender, for which `max_backoff_retries` does not apply
/// (attempts go on until `deadline`, the record's `max_age`), and whose
/// backoff ends early once another request to `ep` succeeds
/// ([`Endpoint::recovered`]).
pub(super) async fn send(
    ep: &Endpoint,
    kind: Kind,
    req: Prepared,
    deadline: Option<Instant>,
    queued: bool,
) -> Result<(), AppendError> {
    let latency = match kind {
        Kind::Push => &ep.metrics.push,
        Kind::Ingest => &ep.metrics.ingest,
    };
    let started = Instant::now();
    let result = retry_loop(ep, kind, &req, started, deadline, latency, queued).await;
    let finished = match &result {
        Ok(finished) => *finished,
        Err(_) => Instant::now(),
    };
    observe(&latency.endpoint, finished - started);
    match result {
        Ok(_) => {
            ep.metrics.sent(req.bytes, req.profiles);
            Ok(())
        }
        Err((retries, err)) => {
            ep.metrics.dropped(req.bytes, req.profiles);
            let verb = match kind {
                Kind::Push => "push",
                Kind::Ingest => "ingest",
            };
            let err = err.context(format!(
                "failed to {verb} to endpoint {} ({retries} retries)",
                ep.label
            ));
            tracing::warn!(endpoint = %ep.label, retries, error = %err.message, "dropping profiles");
            Err(err)
        }
    }
}

/// Returns when the successful attempt ended. `started`: now, read by
/// the caller (one clock read fewer per request).
async fn retry_loop(
    ep: &Endpoint,
    kind: Kind,
    req: &Prepared,
    started: Instant,
    deadline: Option<Instant>,
    latency: &KindLatency,
    queued: bool,
) -> Result<Instant, (u32, AppendError)> {
    let policy = &ep.policy;
    let mut backoff = Backoff::new(policy.backoff);
    // Seeded only when a retry needs it.
    let mut rng: Option<fastrand::Rng> = None;
    let mut retries: u32 = 0;
    let mut last: Option<AppendError> = None;
    let mut now = started;
    loop {
        let timeout = match deadline {
            Some(d) if d <= now => return Err((retries, deadline_error(last))),
            Some(d) => policy.remote_timeout.min(d - now),
            None => policy.remote_timeout,
        };
        let (outcome, err) = attempt(ep, kind, req, timeout).await;
        let ended = Instant::now();
        observe(&latency.downstream, ended - now);
        let Some(err) = err else {
            if queued {
                ep.recovered.succeeded();
            }
            return Ok(ended);
        };
        let decision = classify(&outcome, policy.retry_on_http_429);
        let spent = !queued && policy.max_attempts != 0 && retries + 1 >= policy.max_attempts;
        if decision == Decision::GiveUp || spent {
            return Err((retries, err));
        }
        let mut delay = backoff.next_delay(rng.get_or_insert_with(fastrand::Rng::new));
        now = ended;
        if let Decision::RetryAfter(after) = decision {
            let room = deadline.map_or(policy.backoff.max(), |d| d.saturating_duration_since(now));
            if after >= room {
                let why =
                    format!("the backend asked to retry after {after:?}, beyond what is left");
                return Err((retries, err.context(why)));
            }
            delay = delay.max(after);
        }
        if deadline.is_some_and(|d| now + delay >= d) {
            return Err((retries, deadline_error(Some(err))));
        }
        tracing::debug!(endpoint = %ep.label, ?delay, error = %err.message, "retrying");
        if queued {
            ep.recovered.sleep(delay).await;
        } else {
            tokio::time::sleep(delay).await;
        }
        now = Instant::now();
        retries += 1;
        ep.metrics.retries.inc();
        last = Some(err);
    }
}

/// Giving up at the deadline keeps the last attempt's HTTP status: an
/// `/ingest` agent whose backend answered 503 is told 503, not 500. RPC
/// callers get `deadline_exceeded`, which is what ran out.
fn deadline_error(last: Option<AppendError>) -> AppendError {
    match last {
        Some(e) => AppendError {
            http_status: e.http_status,
            ..AppendError::deadline_exceeded(format!(
                "deadline exceeded before the next attempt; last error: {}",
                e.message
            ))
        },
        None => AppendError::deadline_exceeded("deadline exceeded before the first attempt"),
    }
}

/// One attempt: the outcome and, unless it succeeded, the error it means.
async fn attempt(
    ep: &Endpoint,
    kind: Kind,
    req: &Prepared,
    timeout: Duration,
) -> (Outcome, Option<AppendError>) {
    let run = async {
        // At most two: `Authorization`, `connect-timeout-ms`.
        let mut extra = Vec::new();
        match ep.auth.header().await {
            Ok(Some(v)) if !ep.configured_headers.contains_key(AUTHORIZATION) => {
                extra.push((AUTHORIZATION, v));
            }
            Ok(_) => {}
            Err(AuthFailure::Local(m)) => {
                return (Outcome::Local, Some(AppendError::new(Code::Internal, m)));
            }
            Err(AuthFailure::Remote(m)) => {
                return (Outcome::Transport, Some(AppendError::unavailable(m)));
            }
        }
        if kind == Kind::Push {
            let ms = encode_connect_timeout_ms(timeout.max(Duration::from_millis(1)));
            let value = HeaderValue::try_from(ms).expect("digits");
            extra.push((HeaderName::from_static("connect-timeout-ms"), value));
        }
        let sent = ep
            .transport
            .send(Outgoing {
                method: Method::POST,
                uri: req.uri.clone(),
                headers: &req.headers,
                extra: &extra,
                body: req.body.clone(),
            })
            .await;
        match sent {
            Ok(resp) => interpret(ep, kind, resp).await,
            Err(e) => (
                Outcome::Transport,
                Some(AppendError::unavailable(e.to_string())),
            ),
        }
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(result) => result,
        Err(_) => (
            Outcome::TimedOut,
            Some(AppendError::deadline_exceeded(format!(
                "request timed out after {timeout:?}"
            ))),
        ),
    }
}

async fn interpret(
    ep: &Endpoint,
    kind: Kind,
    resp: Response<ResponseBody>,
) -> (Outcome, Option<AppendError>) {
    let status = resp.status().as_u16();
    if resp.status().is_success() {
        read_bounded(resp, MAX_RESPONSE).await;
        return (Outcome::Delivered, None);
    }
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let body = read_bounded(resp, MAX_RESPONSE).await;
    if status == 401 {
        ep.auth.rejected();
    }
    let connect = match kind {
        Kind::Push => connect_error::decode(&body),
        Kind::Ingest => None,
    };
    let outcome = Outcome::Status {
        status,
        connect: connect.as_ref().map(|(code, _)| *code),
        retry_after,
    };
    let err = match connect {
        Some((code, message)) => AppendError {
            http_status: Some(status),
            ..AppendError::new(code, format!("{}: {message}", code.name()))
        },
        None => {
            let excerpt = String::from_utf8_lossy(&body[..body.len().min(ERROR_EXCERPT)]);
            let message =
                format!("remote error: pyroscope write error: status={status} msg={excerpt}");
            let mut err = AppendError::from_http_status(status, message);
            if kind == Kind::Push {
                err.code = Code::from_http_status(status);
            }
            err
        }
    };
    (outcome, Some(err))
}

/// An error and its causes, `a: b: c`.
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
