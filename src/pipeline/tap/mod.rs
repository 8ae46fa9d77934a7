//! The live tap: lets the admin UI watch the profiles passing a component
//! without ever slowing them down.
//!
//! Every component has one [`Tap`], shared through its `Receiver` so that it
//! survives reloads. With nobody watching, the data path pays one relaxed
//! atomic load per append. A watcher has a bounded queue: an event that
//! does not fit is counted in [`Watcher::dropped`] and thrown away, never
//! waited for; a profile no watcher wants or has room for is not even
//! described.
//!
//! The data path only captures ([`TapEvent`], [`Note`]): labels copied into
//! one buffer, sizes, outcome codes, shared ids. The event is shared by
//! every watcher that takes it, and the reader wakes once per batch (when
//! its queue stops being empty, and again at half capacity), so writing
//! text and JSON is the reader's work, on its own task, many events at once.
//!
//! Components add detail to the event of the append they are serving with
//! [`note`] (relabeling, each endpoint's answer, archive ids); a watched
//! component's event holds the notes of everything its append went through.

mod event;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::Notify;

use super::{AppendError, Labels, Payload, Profile};

pub use event::{ArchivedId, CapturedLabels, Note, TapEvent};

/// How many recent errors a component keeps for its UI page.
pub const RECENT_ERRORS: usize = 20;
/// How many watchers one component may have at once.
pub const MAX_WATCHERS: usize = 16;
// The watchers that take one event are a bit mask.
const _: () = assert!(MAX_WATCHERS <= u32::BITS as usize);

#[derive(Debug, thiserror::Error)]
#[error("{component_id} already has {MAX_WATCHERS} live tap watchers; close one and retry")]
pub struct TooManyWatchers {
    pub component_id: Arc<str>,
}

/// An error a component answered with, kept for its UI page.
#[derive(Debug, Clone)]
pub struct RecentError {
    pub time: SystemTime,
    pub message: String,
}

/// Which profiles a watcher wants, judged on their labels as they arrive
/// and before anything is copied. No filter: every profile.
pub type LabelFilter = Box<dyn Fn(&Labels) -> bool + Send + Sync>;

/// One component's tap point.
pub struct Tap {
    component_id: Arc<str>,
    watching: AtomicUsize,
    /// Read on every watched append without a lock; replaced as watchers
    /// come and go (under `recent_errors`' lock, so changes do not race).
    watchers: ArcSwap<Vec<Arc<WatchQueue>>>,
    recent_errors: Mutex<VecDeque<RecentError>>,
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tap({})", self.component_id)
    }
}

struct WatchQueue {
    filter: Option<LabelFilter>,
    capacity: usize,
    events: Mutex<VecDeque<Arc<TapEvent>>>,
    /// `events.len()`, readable without the lock.
    queued: AtomicUsize,
    dropped: AtomicU64,
    ready: Notify,
}

impl WatchQueue {
    fn wants(&self, profile: &Profile) -> bool {
        let Some(filter) = &self.filter else {
            return true;
        };
        match &profile.payload {
            Payload::Push(series) => series
                .iter()
                .any(|s| !s.samples.is_empty() && filter(&s.labels)),
            Payload::Ingest(ingest) => filter(&ingest.labels),
        }
    }

    fn has_room(&self) -> bool {
        self.queued.load(Ordering::Relaxed) < self.capacity
    }

    fn push(&self, event: &Arc<TapEvent>) {
        let mut events = lock(&self.events);
        if events.len() >= self.capacity {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        events.push_back(event.clone());
        let len = events.len();
        self.queued.store(len, Ordering::Relaxed);
        drop(events);
        if len == 1 || len == self.capacity / 2 {
            self.ready.notify_one();
        }
    }
}

/// The watchers one append's event goes to.
struct Takers {
    watchers: Arc<Vec<Arc<WatchQueue>>>,
    mask: u32,
}

impl Tap {
    pub fn new(component_id: &str) -> Self {
        Self {
            component_id: Arc::from(component_id),
            watching: AtomicUsize::new(0),
            watchers: ArcSwap::from_pointee(Vec::new()),
            recent_errors: Mutex::new(VecDeque::new()),
        }
    }

    pub fn component_id(&self) -> &Arc<str> {
        &self.component_id
    }

    /// True while someone watches; the data path checks this first.
    pub fn is_watched(&self) -> bool {
        self.watching.load(Ordering::Relaxed) > 0
    }

    /// Starts watching: events of profiles that pass `filter` are queued,
    /// at most `capacity` of them; the rest are counted as dropped.
    pub fn watch(
        self: &Arc<Self>,
        capacity: usize,
        filter: Option<LabelFilter>,
    ) -> Result<Watcher, TooManyWatchers> {
        let queue = Arc::new(WatchQueue {
            filter,
            capacity: capacity.max(1),
            events: Mutex::new(VecDeque::new()),
            queued: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            ready: Notify::new(),
        });
        let _changing = lock(&self.recent_errors);
        let mut watchers = Vec::clone(&self.watchers.load());
        if watchers.len() >= MAX_WATCHERS {
            return Err(TooManyWatchers {
                component_id: self.component_id.clone(),
            });
        }
        watchers.push(queue.clone());
        self.watchers.store(Arc::new(watchers));
        self.watching.fetch_add(1, Ordering::Relaxed);
        Ok(Watcher {
            tap: self.clone(),
            queue,
        })
    }

    /// Keeps `error` among the component's recent errors (the oldest goes).
    pub fn remember_error(&self, message: &str) {
        let mut errors = lock(&self.recent_errors);
        if errors.len() >= RECENT_ERRORS {
            errors.pop_front();
        }
        errors.push_back(RecentError {
            time: SystemTime::now(),
            message: message.to_owned(),
        });
    }

    /// The component's recent errors, oldest first.
    pub fn recent_errors(&self) -> Vec<RecentError> {
        lock(&self.recent_errors).iter().cloned().collect()
    }

    /// Runs `append` for `profile`, reporting it to watchers with its
    /// outcome and the notes the component made, and remembering a failure.
    pub async fn observe<F, Fut>(&self, profile: Profile, append: F) -> Result<(), AppendError>
    where
        F: FnOnce(Profile) -> Fut,
        Fut: Future<Output = Result<(), AppendError>>,
    {
        let takers = match self.is_watched() {
            true => self.takers(&profile),
            false => None,
        };
        let result = match takers {
            Some(takers) => self.observe_for(takers, profile, append).await,
            None => append(profile).await,
        };
        if let Err(e) = &result {
            self.remember_error(&e.message);
        }
        result
    }

    /// The watchers that want `profile` and have room for its event; a
    /// watcher that wants it but is full counts it as dropped at once.
    fn takers(&self, profile: &Profile) -> Option<Takers> {
        let watchers = self.watchers.load_full();
        let mut mask = 0;
        for (i, watcher) in watchers.iter().enumerate() {
            if !watcher.wants(profile) {
                continue;
            }
            if watcher.has_room() {
                mask |= 1 << i;
            } else {
                watcher.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        (mask != 0).then_some(Takers { watchers, mask })
    }

    async fn observe_for<F, Fut>(
        &self,
        takers: Takers,
        profile: Profile,
        append: F,
    ) -> Result<(), AppendError>
    where
        F: FnOnce(Profile) -> Fut,
        Fut: Future<Output = Result<(), AppendError>>,
    {
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
        let event = Arc::new(event);
        for (i, watcher) in takers.watchers.iter().enumerate() {
            if takers.mask & (1 << i) != 0 {
                watcher.push(&event);
            }
        }
        result
    }
}

tokio::task_local! {
    /// The notes of the innermost watched append.
    static NOTES: RefCell<Vec<Note>>;
}

/// Adds a detail to the tap event of the append being served, if someone
/// watches it. `describe` runs only then, and should only capture: the
/// reader writes notes out.
pub fn note(describe: impl FnOnce() -> Note) {
    let _ = NOTES.try_with(|notes| notes.borrow_mut().push(describe()));
}

/// A subscription to one component's tap; dropping it stops watching.
pub struct Watcher {
    tap: Arc<Tap>,
    queue: Arc<WatchQueue>,
}

impl Watcher {
    /// Waits until at least one event is queued.
    pub async fn ready(&self) {
        loop {
            let notified = self.queue.ready.notified();
            if self.queue.queued.load(Ordering::Relaxed) > 0 {
                return;
            }
            notified.await;
        }
    }

    /// Waits until the queue is half full, or for `at_most`: lets events
    /// gather so that the reader writes them in one go.
    pub async fn gather(&self, at_most: Duration) {
        let _ = tokio::time::timeout(at_most, self.queue.ready.notified()).await;
    }

    /// Takes every queued event, oldest first.
    pub fn take(&self) -> Vec<Arc<TapEvent>> {
        let mut events = lock(&self.queue.events);
        self.queue.queued.store(0, Ordering::Relaxed);
        events.drain(..).collect()
    }

    /// Waits for events and takes every queued one.
    pub async fn next_batch(&self) -> Vec<Arc<TapEvent>> {
        loop {
            self.ready().await;
            let events = self.take();
            if !events.is_empty() {
                return events;
            }
        }
    }

    /// Events that did not fit the queue since watching began.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _changing = lock(&self.tap.recent_errors);
        let mut watchers = Vec::clone(&self.tap.watchers.load());
        watchers.retain(|w| !Arc::ptr_eq(w, &self.queue));
        self.tap.watchers.store(Arc::new(watchers));
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
        let watcher = tap.watch(2, None).unwrap();
        for _ in 0..5 {
            tap.observe(profile("a"), ok).await.unwrap();
        }
        assert_eq!(watcher.next_batch().await.len(), 2);
        assert_eq!(watcher.dropped(), 3);
        drop(watcher);
        assert!(!tap.is_watched());
    }

    #[tokio::test]
    async fn watchers_share_one_event_and_a_full_one_costs_nothing() {
        let tap = Arc::new(Tap::new("c"));
        let a = tap.watch(8, None).unwrap();
        let b = tap.watch(8, None).unwrap();
        tap.observe(profile("a"), ok).await.unwrap();
        let (from_a, from_b) = (a.next_batch().await, b.next_batch().await);
        assert!(Arc::ptr_eq(&from_a[0], &from_b[0]), "one event, shared");
        drop((a, b));

        // Nobody has room: the profile is not described and nothing is noted.
        let full = tap.watch(1, None).unwrap();
        tap.observe(profile("a"), ok).await.unwrap();
        let noted = std::sync::atomic::AtomicBool::new(false);
        tap.observe(profile("a"), |_| async {
            note(|| {
                noted.store(true, Ordering::Relaxed);
                Note::Queued { accepted: true }
            });
            Ok(())
        })
        .await
        .unwrap();
        assert!(!noted.load(Ordering::Relaxed));
        assert_eq!(full.dropped(), 1);
        assert_eq!(full.take().len(), 1);
    }

    #[tokio::test]
    async fn notes_reach_every_watched_append_they_pass() {
        let outer = Arc::new(Tap::new("outer"));
        let inner = Arc::new(Tap::new("inner"));
        let watcher = outer.watch(8, None).unwrap();
        outer
            .observe(profile("a"), |p| async {
                note(|| Note::deferred(|| "outer note".into()));
                inner
                    .observe(p, |_| async {
                        note(|| Note::Queued { accepted: true });
                        Err(AppendError::unavailable("down"))
                    })
                    .await
            })
            .await
            .unwrap_err();
        let events = watcher.next_batch().await;
        let notes: Vec<_> = events[0].notes.iter().map(Note::to_string).collect();
        assert_eq!(notes, ["outer note", "queued: ok"]);
        assert_eq!(events[0].error.as_ref().unwrap().message, "down");
        assert_eq!(inner.recent_errors()[0].message, "down");
    }

    #[test]
    fn watchers_per_component_are_limited() {
        let tap = Arc::new(Tap::new("c"));
        let watchers: Vec<_> = (0..MAX_WATCHERS)
            .map(|_| tap.watch(1, None).unwrap())
            .collect();
        let err = tap.watch(1, None).err().unwrap();
        assert!(err.to_string().contains("close one"), "{err}");
        drop(watchers);
        assert!(tap.watch(1, None).is_ok());
    }

    #[tokio::test]
    async fn filters_apply_before_the_queue() {
        let tap = Arc::new(Tap::new("c"));
        let watcher = tap
            .watch(1, Some(Box::new(|l| l.get("service_name") == Some("b"))))
            .unwrap();
        tap.observe(profile("a"), ok).await.unwrap();
        tap.observe(profile("b"), ok).await.unwrap();
        let events = watcher.next_batch().await;
        assert_eq!(events.len(), 1);
        assert_eq!(watcher.dropped(), 0);
    }
}
