//! The appender installed behind the component's `receiver`: the current
//! endpoints and external labels, swapped atomically on update.

use std::future::Future;
use std::sync::Arc;

use arc_swap::ArcSwap;
use futures_util::future::{BoxFuture, join_all};
use tokio::time::Instant;

use super::endpoint::Endpoint;
use super::metrics::{Metrics, TotalLatency, observe};
use super::outgoing::Request;
use super::queue::Queue;
use super::send::send;
use super::{Arguments, WriteError, ingest, push};
use crate::pipeline::{AppendError, Appender, DebuginfoTarget, Payload, Profile, tap};

/// Everything one append needs; immutable once built.
pub(super) struct State {
    /// Sorted by name.
    pub external: Vec<(String, String)>,
    pub endpoints: Vec<Arc<Endpoint>>,
    /// With a `queue` block: appends end when the request is on disk.
    pub queue: Option<Arc<Queue>>,
    totals: TotalLatency,
}

impl State {
    pub fn build(
        component_id: &str,
        args: &Arguments,
        metrics: &Metrics,
    ) -> Result<Self, WriteError> {
        let endpoints = args
            .endpoints
            .iter()
            .map(|cfg| Endpoint::build(component_id, cfg, metrics).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            external: args
                .external_labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            endpoints,
            queue: None,
            totals: metrics.totals(component_id),
        })
    }

    /// No endpoints, no queue: what a stopped component leaves behind.
    pub fn empty(metrics: &Metrics, component_id: &str) -> Self {
        Self {
            external: Vec::new(),
            endpoints: Vec::new(),
            queue: None,
            totals: metrics.totals(component_id),
        }
    }

    async fn append(&self, profile: Profile) -> Result<(), AppendError> {
        let started = Instant::now();
        let total = match &profile.payload {
            Payload::Push(_) => &self.totals.push,
            Payload::Ingest(_) => &self.totals.ingest,
        };
        let result = self.deliver(profile).await;
        observe(total, started.elapsed());
        result
    }

    async fn deliver(&self, profile: Profile) -> Result<(), AppendError> {
        let deadline = profile.deadline;
        let request = match profile.payload {
            Payload::Push(ref series) => push::request(series, &self.external, &profile)?,
            Payload::Ingest(ingest) => Some(ingest::request(
                ingest,
                &self.external,
                profile.forwarded_headers,
            )?),
        };
        let Some(request) = request.filter(|_| !self.endpoints.is_empty()) else {
            return Ok(());
        };
        match &self.queue {
            Some(queue) => {
                let queued = queue.enqueue(request).await;
                tap::note(|| tap::Note::Queued {
                    accepted: queued.is_ok(),
                });
                queued
            }
            None => send_everywhere(self, &request, deadline).await,
        }
    }
}

/// The synchronous path: every endpoint, within the caller's deadline.
async fn send_everywhere(
    state: &State,
    request: &Request,
    deadline: Option<Instant>,
) -> Result<(), AppendError> {
    all_endpoints(state, |ep| async move {
        let prepared = request.for_endpoint(ep)?;
        send(ep, request.kind(), prepared, deadline, false).await
    })
    .await
}

/// Runs `send` for every endpoint in parallel. Succeeds only if all did;
/// otherwise the error of the first failing endpoint (in config order)
/// gives the code and status, and every failure's message is joined.
pub(super) async fn all_endpoints<'a, F, Fut>(state: &'a State, send: F) -> Result<(), AppendError>
where
    F: Fn(&'a Endpoint) -> Fut,
    Fut: Future<Output = Result<(), AppendError>> + 'a,
{
    let results = match state.endpoints.as_slice() {
        [] => return Ok(()),
        [only] => {
            let result = send(only).await;
            tap::note(|| answer_note(only, &result));
            return result;
        }
        many => join_all(many.iter().map(|ep| send(ep))).await,
    };
    for (endpoint, result) in state.endpoints.iter().zip(&results) {
        tap::note(|| answer_note(endpoint, result));
    }
    let mut errors = results.into_iter().filter_map(Result::err);
    let Some(mut first) = errors.next() else {
        return Ok(());
    };
    for other in errors {
        first.message.push_str("; ");
        first.message.push_str(&other.message);
    }
    Err(first)
}

/// What the live tap shows of an endpoint's answer.
fn answer_note(endpoint: &Endpoint, result: &Result<(), AppendError>) -> tap::Note {
    tap::Note::Answer {
        to: Arc::from(endpoint.label.as_str()),
        error: result.as_ref().err().cloned(),
    }
}

/// The appender behind the `receiver` export.
pub(super) struct WriteAppender {
    pub state: Arc<ArcSwap<State>>,
}

impl Appender for WriteAppender {
    fn append(&self, profile: Profile) -> BoxFuture<'_, Result<(), AppendError>> {
        // In-flight appends keep the state they started with.
        let state = self.state.load_full();
        Box::pin(async move { state.append(profile).await })
    }

    fn debuginfo(&self) -> Option<Arc<dyn DebuginfoTarget>> {
        super::debuginfo::target(&self.state.load())
    }
}
