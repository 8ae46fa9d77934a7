//! The appender behind a relabel component's `receiver`.

use futures_util::future::BoxFuture;
use std::sync::Arc;

use super::process::{apply, dropping_rule};
use super::{Shared, State};
use crate::pipeline::tap;
use crate::pipeline::{
    AppendError, Appender, DebuginfoTarget, Labels, Payload, Profile, Receiver, fan_out,
    first_debuginfo_target,
};

pub(super) struct RelabelAppender(Arc<Shared>);

impl RelabelAppender {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self(shared)
    }
}

impl Appender for RelabelAppender {
    fn append(&self, profile: Profile) -> BoxFuture<'_, Result<(), AppendError>> {
        Box::pin(self.0.append(profile))
    }

    /// Debug info is not relabelled: it passes to the first target behind.
    fn debuginfo(&self) -> Option<Arc<dyn DebuginfoTarget>> {
        first_debuginfo_target(&self.0.state.load().args.forward_to)
    }
}

impl Shared {
    async fn append(&self, mut profile: Profile) -> Result<(), AppendError> {
        let state = self.state.load_full();
        let any_left = match &mut profile.payload {
            Payload::Push(series) => {
                series.retain_mut(|s| {
                    let kept = self.relabel(&state, &mut s.labels);
                    if !kept {
                        tap::note(|| {
                            let (state, labels) = (state.clone(), s.labels.clone());
                            tap::Note::deferred(move || {
                                format!("{labels}: {}", dropped_by(&state, &labels))
                            })
                        });
                    }
                    kept
                });
                !series.is_empty()
            }
            Payload::Ingest(ingest) => {
                let kept = self.relabel(&state, &mut ingest.labels);
                tap::note(|| match kept {
                    true => tap::Note::Relabeled(tap::CapturedLabels::of(&ingest.labels)),
                    false => {
                        let (state, labels) = (state.clone(), ingest.labels.clone());
                        tap::Note::deferred(move || dropped_by(&state, &labels))
                    }
                });
                kept
            }
        };
        if !any_left {
            // Everything was dropped: the sender is told it succeeded.
            return Ok(());
        }
        forward(&state.args.forward_to, profile).await
    }

    /// Relabels one label set in place; `false` means it was dropped.
    /// Counts it as Alloy does (one profile per series or ingest request).
    fn relabel(&self, state: &State, labels: &mut Labels) -> bool {
        let m = &self.metrics;
        m.processed.inc();
        if labels.is_empty() {
            m.written.inc();
            return true;
        }
        let outcome = match self.cache.get(labels) {
            Some(cached) => {
                m.cache_hits.inc();
                cached
            }
            None => {
                m.cache_misses.inc();
                let outcome = apply(&state.rules, labels);
                self.cache.insert(state.generation, labels, &outcome);
                outcome
            }
        };
        match outcome {
            Some(relabeled) => {
                *labels = relabeled;
                m.written.inc();
                true
            }
            None => {
                m.dropped.inc();
                false
            }
        }
    }
}

/// Which rule dropped `labels` (a dropped set is left as it came), for the
/// live tap: `dropped by rule 2 (action = "drop", source_labels = [...], regex = "...")`.
fn dropped_by(state: &State, labels: &Labels) -> String {
    let Some(i) = dropping_rule(&state.rules, labels) else {
        return "dropped by the rules".to_owned();
    };
    match state.args.rules.get(i) {
        Some(rule) => format!(
            "dropped by rule {} (action = {:?}, source_labels = {:?}, regex = {:?})",
            i + 1,
            rule.action,
            rule.source_labels,
            rule.regex
        ),
        None => format!("dropped by rule {}", i + 1),
    }
}

/// Sends `profile` to every target in parallel. Fails if any target failed,
/// naming each, with the first failure's code and HTTP status.
async fn forward(targets: &[Receiver], profile: Profile) -> Result<(), AppendError> {
    let results = fan_out(targets, profile).await;
    let mut first: Option<AppendError> = None;
    let mut messages = Vec::new();
    for (target, result) in targets.iter().zip(results) {
        if let Err(e) = result {
            messages.push(format!(
                "failed to forward to {}: {}",
                target.component_id(),
                e.message
            ));
            first.get_or_insert(e);
        }
    }
    match first {
        None => Ok(()),
        Some(mut error) => {
            error.message = messages.join("; ");
            Err(error)
        }
    }
}
