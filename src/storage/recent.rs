//! The log's most recent batches, kept in memory for readers that keep up.
//!
//! A queue sender that keeps up reads each record moments after the writer
//! had it in memory. From the file that costs two `pread`s, a checksum and
//! a fresh buffer per record; from here it is a slice of the batch the
//! writer wrote (docs/performance.md, "The durable queue"). Only batches
//! that were written (and synced, when the policy says so) are kept, so a
//! reader never sees from memory what the file does not hold; after a
//! restart everything is read from the files.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

use super::RecordBytes;
use super::record::{PREFIX, Prefix};

/// Bytes of recent batches kept.
const KEEP_BYTES: usize = 2 << 20;
/// A larger batch is not kept: a record sliced from it keeps all of it in
/// memory while the record is being sent.
const MAX_BATCH_BYTES: usize = 512 << 10;

#[derive(Default)]
pub(crate) struct RecentBatches {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// In log order: by segment, then offset.
    batches: VecDeque<Batch>,
    bytes: usize,
}

struct Batch {
    segment: u64,
    offset: u64,
    data: Bytes,
}

impl RecentBatches {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A batch of whole records now readable at `offset` of `segment`.
    pub fn push(&self, segment: u64, offset: u64, data: Bytes) {
        if data.is_empty() || data.len() > MAX_BATCH_BYTES {
            return;
        }
        let mut inner = self.lock();
        inner.bytes += data.len();
        inner.batches.push_back(Batch {
            segment,
            offset,
            data,
        });
        while inner.bytes > KEEP_BYTES {
            let Some(old) = inner.batches.pop_front() else {
                break;
            };
            inner.bytes -= old.data.len();
        }
    }

    /// The record at `offset` of `segment`, when a kept batch holds it.
    pub fn record_at(&self, segment: u64, offset: u64) -> Option<RecordBytes> {
        let inner = self.lock();
        let after = inner
            .batches
            .partition_point(|b| (b.segment, b.offset) <= (segment, offset));
        let batch = inner.batches.get(after.checked_sub(1)?)?;
        if batch.segment != segment {
            return None;
        }
        let start = usize::try_from(offset - batch.offset).ok()?;
        let prefix = Prefix::parse(batch.data.get(start..start + PREFIX)?.try_into().ok()?).ok()?;
        let end = start.checked_add(usize::try_from(prefix.record_len()).ok()?)?;
        if end > batch.data.len() {
            return None;
        }
        Some(RecordBytes {
            prefix,
            bytes: batch.data.slice(start..end),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::record;

    /// A batch of `n` records with bodies of `body_len` bytes, first id
    /// `first`, and each record's offset in it.
    fn batch(first: u64, n: u64, body_len: usize) -> (Bytes, Vec<usize>) {
        let mut buf = Vec::new();
        let mut offsets = Vec::new();
        for id in first..first + n {
            offsets.push(buf.len());
            let body = vec![id as u8; body_len];
            record::encode(id, 7, b"meta", &body, &mut buf).unwrap();
        }
        (Bytes::from(buf), offsets)
    }

    #[test]
    fn finds_records_of_kept_batches_only() {
        let recent = RecentBatches::default();
        let (a, a_at) = batch(1, 3, 100);
        let (b, b_at) = batch(4, 2, 50);
        let a_len = a.len() as u64;
        recent.push(1, 8, a.clone());
        recent.push(1, 8 + a_len, b);
        for (i, at) in a_at.iter().enumerate() {
            let r = recent.record_at(1, 8 + *at as u64).expect("kept");
            assert_eq!(r.head().id, 1 + i as u64);
            assert_eq!(r.body(), vec![1 + i as u8; 100]);
            assert_eq!(record::verify(&r.bytes).unwrap(), r.prefix);
        }
        let r = recent.record_at(1, 8 + a_len + b_at[1] as u64).unwrap();
        assert_eq!(r.head().id, 5);
        // Not a record boundary, another segment, before and after the
        // kept batches.
        assert!(recent.record_at(1, 9).is_none());
        assert!(recent.record_at(2, 8).is_none());
        assert!(recent.record_at(1, 0).is_none());
        assert!(recent.record_at(1, 8 + a_len * 3).is_none());
    }

    #[test]
    fn keeps_a_bounded_amount_and_skips_large_batches() {
        let recent = RecentBatches::default();
        let (big, _) = batch(1, 2, MAX_BATCH_BYTES);
        recent.push(1, 8, big);
        assert!(recent.record_at(1, 8).is_none());
        let (one, _) = batch(3, 1, 128 << 10);
        let len = one.len() as u64;
        let n = (KEEP_BYTES as u64 / len) + 4;
        for i in 0..n {
            recent.push(2, 8 + i * len, one.clone());
        }
        assert!(recent.lock().bytes <= KEEP_BYTES);
        assert!(recent.record_at(2, 8).is_none(), "the oldest was let go");
        assert!(recent.record_at(2, 8 + (n - 1) * len).is_some());
    }
}
