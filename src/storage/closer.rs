//! Deleted segments, released off the writer thread.

use std::fs::File;
use std::sync::{Arc, mpsc};
use std::time::Duration;

/// Releases deleted segments on a thread of its own. The last close of an
/// unlinked file is when the file system frees its blocks and the kernel
/// drops its cached pages: 5-20 ms for a 64 MiB segment on ext4, which on
/// the writer thread held every acknowledgement waiting (docs/performance.md,
/// "The durable queue"); see `release`. While the disk is failing,
/// segments are closed at once instead, so their space is free before the
/// next write.
#[derive(Default)]
pub(super) struct Closer {
    to_close: Option<mpsc::Sender<Arc<File>>>,
}

impl Closer {
    pub fn close(&mut self, file: Arc<File>) {
        if self.to_close.is_none() {
            let (tx, rx) = mpsc::channel::<Arc<File>>();
            let spawned = std::thread::Builder::new()
                .name("log-closer".into())
                .spawn(move || rx.into_iter().for_each(release));
            if spawned.is_ok() {
                self.to_close = Some(tx);
            }
        }
        // Without a thread, or with one that is gone, the file is closed
        // here when the send hands it back.
        if let Some(tx) = &self.to_close {
            let _ = tx.send(file);
        }
    }
}

/// Frees a deleted segment's blocks a few MiB at a time before closing it.
/// Freed blocks are discarded (TRIM) in the next journal commit on a file
/// system mounted with `discard`, and that commit is the one the writer's
/// next `fdatasync` waits for: freeing 64 MiB at once held it 10-20 ms.
/// (RocksDB's file deletion truncates in chunks, rate-limited, for the
/// same reason.) A handle opened read-only cannot truncate; it is closed.
fn release(file: Arc<File>) {
    const CHUNK: u64 = 2 << 20;
    const PAUSE: Duration = Duration::from_millis(2);
    if let Ok(mut len) = file.metadata().map(|m| m.len()) {
        while len > CHUNK {
            len -= CHUNK;
            if file.set_len(len).is_err() {
                break;
            }
            std::thread::sleep(PAUSE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_released_file_is_cut_down_in_chunks_then_closed() {
        // Unlinked already, as a deleted segment is.
        let file = tempfile::tempfile().unwrap();
        file.set_len(9 << 20).unwrap();
        let file = Arc::new(file);
        let watcher = Arc::clone(&file);
        let mut closer = Closer::default();
        closer.close(file);
        // The closer's thread holds it until it is done.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&watcher) > 1 {
            assert!(std::time::Instant::now() < deadline, "not released");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(watcher.metadata().unwrap().len() <= 2 << 20);
    }
}
