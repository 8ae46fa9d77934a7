//! The live tap: lets the admin UI watch the profiles passing a component
//! without ever slowing them down.
//!
//! Every component has one [`Tap`], shared through its `Receiver` so that it
//! survives reloads. With nobody watching, the data path pays one relaxed
//! atomic load per append. A watcher has a bounded queue: an event that
//! does not fit is counted in [`Watcher::dropped`] and thrown away, never
//! waited for.
//!
//! Components add detail to the event of the append they are serving with
//! [`note`] ("dropped by the rules", "http://backend: ok", "stored as
//! local-7"); a watched component's event holds the notes of everything
//! its append went through.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::Notify;

use super::{AppendError, Labels, Payload, Profile};

/// How many recent errors a component keeps for its UI page.
pub const RECENT_ERRORS: usize = 20;
/// How many watchers one component may have at once.
pub const MAX_WATCHERS: usize = 16;

#[derive(Debug, thiserror::Error)]
#[error("{component_id} already has {MAX_WATCHERS} live tap watchers; close one and retry")]
pub struct TooManyWatchers {
    pub component_id: Arc<str>,
}

/// What a watcher is shown of one append (or one request, for a receiver).
#[derive(Debug, Clone)]
pub struct TapEvent {
    pub component_id: Arc<str>,
    pub time: SystemTime,
    /// `/ingest`, `connect`, `grpc`, `grpc_web`, or `push` when the RPC
    /// flavour is not known.
    pub protocol: &'static str,
    /// One entry per profile carried: its labels and size in bytes.
    pub profiles: Vec<(Labels, usize)>,
    /// `None` when the append succeeded.
    pub error: Option<AppendError>,
    /// Details added by the component with [`note`].
    pub notes: Vec<String>,
}

impl TapEvent {
    /// An event describing `profile`, before it is handed on.
    pub fn describe(component_id: Arc<str>, profile: &Profile) -> Self {
        let profiles = match &profile.payload {
            Payload::Push(series) => series
                .iter()
                .flat_map(|s| {
                    s.samples
                        .iter()
                        .map(|p| (s.labels.clone(), p.raw_profile.len()))
                })
                .collect(),
            Payload::Ingest(ingest) => vec![(ingest.labels.clone(), ingest.body.len())],
        };
        Self {
            component_id,
            time: SystemTime::now(),
            protocol: profile.protocol,
            profiles,
            error: None,
            notes: Vec::new(),
        }
    }
}

/// An error a component answered with, kept for its UI page.
#[derive(Debug, Clone)]
pub struct RecentError {
    pub time: SystemTime,
    pub message: String,
}

/// A filter a watcher applies to events before they take queue space.
pub type EventFilter = Box<dyn Fn(&TapEvent) -> bool + Send + Sync>;

/// One component's tap point.
pub struct Tap {
    component_id: Arc<str>,
    watching: AtomicUsize,
    state: Mutex<TapState>,
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tap({})", self.component_id)
    }
}

#[derive(Default)]
struct TapState {
    watchers: Vec<Arc<WatchQueue>>,
    recent_errors: VecDeque<RecentError>,
}

struct WatchQueue {
    filter: EventFilter,
    capacity: usize,
    events: Mutex<VecDeque<TapEvent>>,
    dropped: AtomicU64,
    ready: Notify,
}

impl Tap {
    pub fn new(component_id: &str) -> Self {
        Self {
            component_id: Arc::from(component_id),
            watching: AtomicUsize::new(0),
            state: Mutex::new(TapState::default()),
        }
    }

    pub fn component_id(&self) -> &Arc<str> {
        &self.component_id
    }

    /// True while someone watches; the data path checks this first.
    pub fn is_watched(&self) -> bool {
        self.watching.load(Ordering::Relaxed) > 0
    }

    /// Starts watching: events that pass `filter` are queued, at most
    /// `capacity` of them; the rest are counted as dropped.
    pub fn watch(
        self: &Arc<Self>,
        capacity: usize,
        filter: EventFilter,
    ) -> Result<Watcher, TooManyWatchers> {
        let queue = Arc::new(WatchQueue {
            filter,
            capacity: capacity.max(1),
            events: Mutex::new(VecDeque::new()),
            dropped: AtomicU64::new(0),
            ready: Notify::new(),
        });
        let mut state = lock(&self.state);
        if state.watchers.len() >= MAX_WATCHERS {
            return Err(TooManyWatchers {
                component_id: self.component_id.clone(),
            });
        }
        state.watchers.push(queue.clone());
        self.watching.fetch_add(1, Ordering::Relaxed);
        Ok(Watcher {
            tap: self.clone(),
            queue,
        })
    }

    /// Hands `event` to every watcher whose filter takes it. Never waits
    /// beyond the short locks that guard the queues.
    pub fn emit(&self, event: TapEvent) {
        // Filters run outside the tap's lock: appends watched at once only
        // meet at each watcher's queue.
        let watchers = lock(&self.state).watchers.clone();
        for watcher in &watchers {
            if !(watcher.filter)(&event) {
                continue;
            }
            let mut events = lock(&watcher.events);
            if events.len() >= watcher.capacity {
                watcher.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            events.push_back(event.clone());
            drop(events);
            watcher.ready.notify_one();
        }
    }

    /// Keeps `error` among the component's recent errors (the oldest goes).
    pub fn remember_error(&self, message: &str) {
        let mut state = lock(&self.state);
        if state.recent_errors.len() >= RECENT_ERRORS {
            state.recent_errors.pop_front();
        }
        state.recent_errors.push_back(RecentError {
            time: SystemTime::now(),
            message: message.to_owned(),
        });
    }

    /// The component's recent errors, oldest first.
    pub fn recent_errors(&self) -> Vec<RecentError> {
        lock(&self.state).recent_errors.iter().cloned().collect()
    }

    /// Runs `append` for `profile`, reporting it to watchers with its
    /// outcome and the notes the component made, and remembering a failure.
    pub async fn observe<F, Fut>(&self, profile: Profile, append: F) -> Result<(), AppendError>
    where
        F: FnOnce(Profile) -> Fut,
        Fut: Future<Output = Result<(), AppendError>>,
    {
        let result = if self.is_watched() {
            let mut event = TapEvent::describe(self.component_id.clone(), &profile);
            let append = append(profile);
            let (result, notes) = NOTES
                .scope(RefCell::new(Vec::new()), async {
                    let result = append.await;
                    (result, NOTES.with(RefCell::take))
                })
                .await;
            // An outer watched component sees what happened further down.
            for n in &notes {
                note(|| n.clone());
            }
            event.notes = notes;
            event.error = result.as_ref().err().cloned();
            self.emit(event);
            result
        } else {
            append(profile).await
        };
        if let Err(e) = &result {
            self.remember_error(&e.message);
        }
        result
    }
}

tokio::task_local! {
    /// The notes of the innermost watched append.
    static NOTES: RefCell<Vec<String>>;
}

/// Adds a detail to the tap event of the append being served, if someone
/// watches it. `describe` runs only then.
pub fn note(describe: impl FnOnce() -> String) {
    let _ = NOTES.try_with(|notes| notes.borrow_mut().push(describe()));
}

/// A note for one destination's answer: `<name>: ok` or
/// `<name>: <code> [<HTTP status>] <message>`.
pub fn describe_answer(name: &str, result: &Result<(), AppendError>) -> String {
    match result {
        Ok(()) => format!("{name}: ok"),
        Err(e) => match e.http_status {
            Some(status) => format!("{name}: {} {status} {}", e.code.name(), e.message),
            None => format!("{name}: {} {}", e.code.name(), e.message),
        },
    }
}

/// A subscription to one component's tap; dropping it stops watching.
pub struct Watcher {
    tap: Arc<Tap>,
    queue: Arc<WatchQueue>,
}

impl Watcher {
    /// Waits for events and takes every queued one.
    pub async fn next_batch(&self) -> Vec<TapEvent> {
        loop {
            let notified = self.queue.ready.notified();
            {
                let mut events = lock(&self.queue.events);
                if !events.is_empty() {
                    return events.drain(..).collect();
                }
            }
            notified.await;
        }
    }

    /// Events that did not fit the queue since watching began.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let mut state = lock(&self.tap.state);
        state.watchers.retain(|w| !Arc::ptr_eq(w, &self.queue));
        self.tap.watching.fetch_sub(1, Ordering::Relaxed);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing here can panic while holding a lock and leave the data
    // half-written.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::IngestProfile;
    use bytes::Bytes;

    fn profile(service: &str) -> Profile {
        Profile::new(Payload::Ingest(IngestProfile {
            body: Bytes::from_static(b"abc"),
            content_types: vec![],
            path: "/ingest".into(),
            query: String::new(),
            labels: Labels::from_pairs([("service_name", service)]),
        }))
    }

    async fn ok(_: Profile) -> Result<(), AppendError> {
        Ok(())
    }

    #[tokio::test]
    async fn a_full_queue_counts_and_never_waits() {
        let tap = Arc::new(Tap::new("c"));
        let watcher = tap.watch(2, Box::new(|_| true)).unwrap();
        for _ in 0..5 {
            tap.observe(profile("a"), ok).await.unwrap();
        }
        assert_eq!(watcher.next_batch().await.len(), 2);
        assert_eq!(watcher.dropped(), 3);
        drop(watcher);
        assert!(!tap.is_watched());
    }

    #[tokio::test]
    async fn notes_reach_every_watched_append_they_pass() {
        let outer = Arc::new(Tap::new("outer"));
        let inner = Arc::new(Tap::new("inner"));
        let watcher = outer.watch(8, Box::new(|_| true)).unwrap();
        outer
            .observe(profile("a"), |p| async {
                note(|| "outer note".into());
                inner
                    .observe(p, |_| async {
                        note(|| "inner note".into());
                        Err(AppendError::unavailable("down"))
                    })
                    .await
            })
            .await
            .unwrap_err();
        let events = watcher.next_batch().await;
        assert_eq!(events[0].notes, ["outer note", "inner note"]);
        assert_eq!(events[0].error.as_ref().unwrap().message, "down");
        assert_eq!(inner.recent_errors()[0].message, "down");
    }

    #[test]
    fn watchers_per_component_are_limited() {
        let tap = Arc::new(Tap::new("c"));
        let watchers: Vec<_> = (0..MAX_WATCHERS)
            .map(|_| tap.watch(1, Box::new(|_| true)).unwrap())
            .collect();
        let err = tap.watch(1, Box::new(|_| true)).err().unwrap();
        assert!(err.to_string().contains("close one"), "{err}");
        drop(watchers);
        assert!(tap.watch(1, Box::new(|_| true)).is_ok());
    }

    #[tokio::test]
    async fn filters_apply_before_the_queue() {
        let tap = Arc::new(Tap::new("c"));
        let watcher = tap
            .watch(
                1,
                Box::new(|e| e.profiles[0].0.get("service_name") == Some("b")),
            )
            .unwrap();
        tap.observe(profile("a"), ok).await.unwrap();
        tap.observe(profile("b"), ok).await.unwrap();
        let events = watcher.next_batch().await;
        assert_eq!(events.len(), 1);
        assert_eq!(watcher.dropped(), 0);
    }
}
