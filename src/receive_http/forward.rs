//! Handing a profile to every `forward_to` receiver, and turning their
//! failures into one answer.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::time::Instant;

use crate::codec::Code;
use crate::pipeline::tap::{self, Tap};
use crate::pipeline::{AppendError, Labels, Profile, Receiver, fan_out};

/// Alloy's `ensureServiceName`: without `service_name`, set it from
/// `__name__`; with it, set `app_name` from `__name__`. Setting an empty
/// value deletes, as Prometheus' `labels.Builder` does, so without
/// `__name__` an existing `app_name` is removed when `service_name` is set.
pub(super) fn ensure_service_name(labels: &mut Labels) {
    let name = labels.get("__name__").unwrap_or_default().to_owned();
    if labels.get("service_name").is_none() {
        labels.set("service_name", name);
    } else {
        labels.set("app_name", name);
    }
}

/// The receivers that failed, by their index in `forward_to`.
#[derive(Debug)]
pub(super) struct Failures {
    pub errors: Vec<(usize, AppendError)>,
    /// The deadline passed before every receiver answered.
    pub timed_out: bool,
}

/// The values of the `names` headers, in the order received, to copy onto
/// downstream requests.
pub(super) fn forwarded_headers(
    headers: &HeaderMap,
    names: &[HeaderName],
) -> Arc<[(HeaderName, HeaderValue)]> {
    names
        .iter()
        .flat_map(|name| {
            headers
                .get_all(name)
                .iter()
                .map(move |value| (name.clone(), value.clone()))
        })
        .collect()
}

/// Sends `profile` to every receiver in parallel and waits for all, or
/// until `deadline`: then the work still running is dropped and every
/// receiver that had not answered counts as `deadline_exceeded`. The
/// component's live tap sees the request with each receiver's answer.
pub(super) async fn deliver(
    tap: &Tap,
    receivers: &[Receiver],
    profile: Profile,
    deadline: Option<Instant>,
) -> Result<(), Failures> {
    let mut failures = None;
    let observed = tap.observe(profile, |profile| async {
        let result = deliver_untapped(receivers, profile, deadline).await;
        note_answers(receivers, result.as_ref().err());
        result.map_err(|f| {
            let summary = f.summary(receivers);
            failures = Some(f);
            summary
        })
    });
    match (observed.await, failures) {
        (Err(_), Some(failures)) => Err(failures),
        _ => Ok(()),
    }
}

/// One tap note per receiver: its id and answer.
fn note_answers(receivers: &[Receiver], failures: Option<&Failures>) {
    for (i, receiver) in receivers.iter().enumerate() {
        tap::note(|| {
            let error = failures.and_then(|f| f.errors.iter().find(|(at, _)| *at == i));
            tap::Note::Answer {
                to: receiver.tap().component_id().clone(),
                error: error.map(|(_, e)| e.clone()),
            }
        });
    }
}

async fn deliver_untapped(
    receivers: &[Receiver],
    profile: Profile,
    deadline: Option<Instant>,
) -> Result<(), Failures> {
    if receivers.is_empty() {
        return Ok(());
    }
    let results = match deadline {
        Some(deadline) => {
            match tokio::time::timeout_at(deadline, fan_out(receivers, profile)).await {
                Ok(results) => results,
                Err(_) => {
                    let failures = (0..receivers.len())
                        .map(|i| {
                            let message = "deadline exceeded before the receiver answered";
                            (i, AppendError::deadline_exceeded(message))
                        })
                        .collect();
                    return Err(Failures {
                        errors: failures,
                        timed_out: true,
                    });
                }
            }
        }
        None => fan_out(receivers, profile).await,
    };
    let failures: Vec<_> = results
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| r.err().map(|e| (i, e)))
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Failures {
            errors: failures,
            timed_out: false,
        })
    }
}

impl Failures {
    /// The most meaningful failure, its message naming every failed receiver.
    fn summary(&self, receivers: &[Receiver]) -> AppendError {
        let mut error = self.most_meaningful().1.clone();
        error.message = self
            .errors
            .iter()
            .map(|(i, e)| {
                let id = receivers.get(*i).map_or("?", Receiver::component_id);
                format!("{id}: {}", e.message)
            })
            .collect::<Vec<_>>()
            .join("; ");
        error
    }

    /// The failure to report when several receivers failed: the lowest
    /// [`rank`], then the lowest receiver index.
    pub fn most_meaningful(&self) -> &(usize, AppendError) {
        self.pick(|_| true).expect("Failures is never empty")
    }

    /// Like [`Failures::most_meaningful`], among failures with a downstream
    /// HTTP status.
    pub fn most_meaningful_with_status(&self) -> Option<(u16, &AppendError)> {
        let (_, err) = self.pick(|e| e.http_status.is_some())?;
        Some((err.http_status?, err))
    }

    fn pick(&self, keep: impl Fn(&AppendError) -> bool) -> Option<&(usize, AppendError)> {
        self.errors
            .iter()
            .filter(|(_, e)| keep(e))
            .min_by_key(|(i, e)| (rank(e.code), *i))
    }
}

/// Which failure a client is told about when receivers disagree; lower
/// wins. See the module docs, "Errors".
///
/// 1. Authentication and permission: an operator must fix a credential.
/// 2. `resource_exhausted`: the client must back off, then retry.
/// 3. `unavailable`, `deadline_exceeded`, `aborted`: retryable. They win
///    over permanent errors so that a receiver that could still take the
///    profile is not denied it because another one refused it.
/// 4. Permanent rejections of the request (`invalid_argument`, ...).
/// 5. The least specific codes (`internal`, `unknown`, ...).
pub(super) fn rank(code: Code) -> u8 {
    match code {
        Code::Unauthenticated | Code::PermissionDenied => 1,
        Code::ResourceExhausted => 2,
        Code::Unavailable | Code::DeadlineExceeded | Code::Aborted => 3,
        Code::InvalidArgument
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::NotFound
        | Code::AlreadyExists
        | Code::Unimplemented => 4,
        Code::Canceled | Code::DataLoss | Code::Internal | Code::Unknown => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_name_follows_alloy() {
        let mut l = Labels::from_pairs([("__name__", "app")]);
        ensure_service_name(&mut l);
        assert_eq!(l.get("service_name"), Some("app"));
        assert_eq!(l.get("app_name"), None);

        let mut l = Labels::from_pairs([("__name__", "app"), ("service_name", "svc")]);
        ensure_service_name(&mut l);
        assert_eq!(l.get("service_name"), Some("svc"));
        assert_eq!(l.get("app_name"), Some("app"));

        let mut l = Labels::from_pairs([("service_name", "svc"), ("app_name", "old")]);
        ensure_service_name(&mut l);
        assert_eq!(l.get("app_name"), None);

        let mut l = Labels::from_pairs([("app", "app-0")]);
        ensure_service_name(&mut l);
        assert_eq!(l.to_string(), r#"{app="app-0"}"#);
    }

    fn failures(errors: Vec<(usize, AppendError)>) -> Failures {
        Failures {
            errors,
            timed_out: false,
        }
    }

    #[test]
    fn forwarded_headers_keep_every_value_in_order() {
        let mut headers = HeaderMap::new();
        headers.append("x-scope-orgid", HeaderValue::from_static("a"));
        headers.append("x-other", HeaderValue::from_static("b"));
        headers.append("x-scope-orgid", HeaderValue::from_static("c"));
        let names = [
            HeaderName::from_static("x-scope-orgid"),
            HeaderName::from_static("x-none"),
        ];
        let forwarded = forwarded_headers(&headers, &names);
        let values: Vec<_> = forwarded.iter().map(|(_, v)| v.to_str().unwrap()).collect();
        assert_eq!(values, ["a", "c"]);
    }

    #[test]
    fn most_meaningful_failure() {
        let internal = AppendError::new(Code::Internal, "boom");
        let limited = AppendError::from_http_status(429, "slow down");
        let down = AppendError::unavailable("down");
        let bad = AppendError::from_http_status(400, "bad");
        let f = failures(vec![
            (0, internal.clone()),
            (1, down.clone()),
            (2, limited.clone()),
        ]);
        assert_eq!(f.most_meaningful().0, 2);
        let f = failures(vec![(0, bad.clone()), (1, down.clone())]);
        assert_eq!(f.most_meaningful().0, 1);
        assert_eq!(f.most_meaningful_with_status().unwrap().0, 400);
        let f = failures(vec![(0, down.clone()), (1, down)]);
        assert_eq!(f.most_meaningful().0, 0);
        assert!(f.most_meaningful_with_status().is_none());
    }
}
