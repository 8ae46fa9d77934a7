//! The in-memory index of a store and how it is rebuilt from the segment
//! files on open.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwapOption;

use super::meta::{profile_type_of, service_of};
use super::record::{Header, MAGIC, Prefix};
use super::segment::{self, Scan};
use super::store::{Limits, Stats};
use super::{ArchiveError, ComponentMetrics};
use crate::pipeline::Labels;

/// One record in the index: where it is and what lists filter on.
pub(crate) struct Entry {
    pub id: u64,
    pub arrival_nanos: i64,
    pub segment: u64,
    pub offset: u64,
    pub prefix: Prefix,
    pub labels: Arc<Labels>,
    pub service: Arc<str>,
    pub profile_type: Arc<str>,
}

pub(crate) struct Segment {
    pub path: PathBuf,
    pub file: Arc<File>,
    pub size: u64,
    pub count: u64,
    /// Arrival of the newest record (`i64::MIN` when empty).
    pub max_arrival: i64,
}

pub(crate) struct State {
    pub entries: VecDeque<Entry>,
    /// By first id, oldest first; the last one is the active segment.
    pub segments: BTreeMap<u64, Segment>,
    pub disk_bytes: u64,
    pub limits: Limits,
    labels: HashSet<Arc<Labels>>,
    strings: HashSet<Arc<str>>,
}

impl State {
    pub fn new(limits: Limits) -> Self {
        Self {
            entries: VecDeque::new(),
            segments: BTreeMap::new(),
            disk_bytes: 0,
            limits,
            labels: HashSet::new(),
            strings: HashSet::new(),
        }
    }

    fn intern_str(&mut self, s: String) -> Arc<str> {
        if let Some(a) = self.strings.get(s.as_str()) {
            return Arc::clone(a);
        }
        let a: Arc<str> = Arc::from(s);
        self.strings.insert(Arc::clone(&a));
        a
    }

    /// Indexes a record of `segment` (which must be in `segments`).
    pub fn add(&mut self, segment: u64, offset: u64, prefix: Prefix, header: Header) {
        let service = self.intern_str(service_of(&header.labels, &header.origin));
        let profile_type = self.intern_str(profile_type_of(&header.labels, &header.origin));
        let labels = match self.labels.get(&header.labels) {
            Some(l) => Arc::clone(l),
            None => {
                let l = Arc::new(header.labels);
                self.labels.insert(Arc::clone(&l));
                l
            }
        };
        if let Some(seg) = self.segments.get_mut(&segment) {
            seg.count += 1;
            seg.max_arrival = seg.max_arrival.max(header.arrival_nanos);
        }
        self.entries.push_back(Entry {
            id: header.id,
            arrival_nanos: header.arrival_nanos,
            segment,
            offset,
            prefix,
            labels,
            service,
            profile_type,
        });
    }

    /// Drops the oldest segment from the index; the caller deletes the file.
    pub fn remove_oldest(&mut self) -> Option<Segment> {
        let (first, seg) = self.segments.pop_first()?;
        while self.entries.front().is_some_and(|e| e.segment == first) {
            self.entries.pop_front();
        }
        self.disk_bytes -= seg.size;
        Some(seg)
    }

    /// Forgets interned labels and strings no record uses any more.
    pub fn prune_interned(&mut self) {
        self.labels.retain(|l| Arc::strong_count(l) > 1);
        self.strings.retain(|s| Arc::strong_count(s) > 1);
    }

    pub fn find(&self, id: u64) -> Option<&Entry> {
        let i = self.entries.binary_search_by_key(&id, |e| e.id).ok()?;
        self.entries.get(i)
    }

    pub fn stats(&self) -> Stats {
        Stats {
            profiles: self.entries.len(),
            segments: self.segments.len(),
            disk_bytes: self.disk_bytes,
        }
    }
}

pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub metrics: ArcSwapOption<ComponentMetrics>,
    /// Told once when the writer stops accepting writes.
    pub on_failure: Option<FailureHook>,
    /// Makes the next `fdatasync` fail: a failing disk cannot be had on
    /// demand in a test, and what matters is what follows the failure.
    #[cfg(test)]
    pub fail_next_sync: std::sync::atomic::AtomicBool,
}

/// Called with the reason when the archive stops accepting writes.
pub type FailureHook = Arc<dyn Fn(&str) + Send + Sync>;

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), ArchiveError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ArchiveError::io("syncing", dir, e))
}

/// Creates an empty segment, durably; returns its write handle.
pub(crate) fn create_segment(dir: &Path, first_id: u64) -> Result<(File, Segment), ArchiveError> {
    let path = dir.join(segment::file_name(first_id));
    let err = |e| ArchiveError::io("creating", &path, e);
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(err)?;
    f.write_all(MAGIC)
        .and_then(|()| f.sync_all())
        .map_err(err)?;
    sync_dir(dir)?;
    let read = f.try_clone().map_err(err)?;
    let seg = Segment {
        path,
        file: Arc::new(read),
        size: MAGIC.len() as u64,
        count: 0,
        max_arrival: i64::MIN,
    };
    Ok((f, seg))
}

/// Scans every segment into a new index. When `repair`, the last segment's
/// torn tail is cut off and its write handle returned.
pub(crate) fn load(
    dir: &Path,
    limits: Limits,
    repair: bool,
) -> Result<(State, Option<(u64, File)>), ArchiveError> {
    let segments = segment::list(dir)?;
    let mut state = State::new(limits);
    let mut active = None;
    let count = segments.len();
    for (i, (first, path)) in segments.into_iter().enumerate() {
        let last = i + 1 == count;
        let scan = match segment::scan(&path, last) {
            Err(ArchiveError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                continue;
            }
            r => r?,
        };
        let (file, size) = if last && repair {
            let (f, size) = repair_tail(&path, &scan)?;
            let read = f
                .try_clone()
                .map_err(|e| ArchiveError::io("opening", &path, e))?;
            active = Some((first, f));
            (read, size)
        } else {
            if let Some(why) = &scan.stopped {
                let kept = scan.records.len();
                tracing::warn!(segment = %path.display(), reason = %why, kept, "archive segment is damaged; the records after the damage are skipped");
            }
            let f = File::open(&path).map_err(|e| ArchiveError::io("opening", &path, e))?;
            (f, scan.file_len)
        };
        state.disk_bytes += size;
        state.segments.insert(
            first,
            Segment {
                path,
                file: Arc::new(file),
                size,
                count: 0,
                max_arrival: i64::MIN,
            },
        );
        for r in scan.records {
            state.add(first, r.offset, r.prefix, r.header);
        }
    }
    Ok((state, active))
}

/// Cuts the last segment back to its intact part and returns it opened
/// for writing, with its size. A torn tail (a write that was interrupted,
/// so never acknowledged) is dropped; anything else, damage followed by
/// more data, is first saved beside the segment as
/// `<segment>.dat.damaged-<offset>`.
fn repair_tail(path: &Path, scan: &Scan) -> Result<(File, u64), ArchiveError> {
    let err = |e| ArchiveError::io("repairing", path, e);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(err)?;
    let keep = if scan.magic_ok { scan.valid_len } else { 0 };
    if keep < scan.file_len {
        let mut tail = vec![0; (scan.file_len - keep) as usize];
        f.read_exact_at(&mut tail, keep).map_err(err)?;
        let reason = scan.stopped.as_deref().unwrap_or("");
        if scan.torn || tail.iter().all(|&b| b == 0) {
            tracing::warn!(segment = %path.display(), reason, bytes = tail.len(), kept = scan.records.len(), "cutting a torn record off the end of the archive");
        } else {
            let aside = path.with_extension(format!("dat.damaged-{keep}"));
            File::create(&aside)
                .and_then(|mut a| a.write_all(&tail).and_then(|()| a.sync_all()))
                .map_err(|e| {
                    ArchiveError::io("saving the damaged part of a segment to", &aside, e)
                })?;
            tracing::warn!(segment = %path.display(), reason, bytes = tail.len(), kept = scan.records.len(), saved_to = %aside.display(), "archive segment is damaged; cut off the damaged part and saved it aside");
        }
        f.set_len(keep).map_err(err)?;
    }
    if !scan.magic_ok {
        f.write_all_at(MAGIC, 0).map_err(err)?;
    }
    f.sync_all().map_err(err)?;
    Ok((f, keep.max(MAGIC.len() as u64)))
}
