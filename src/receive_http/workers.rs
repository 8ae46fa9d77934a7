//! The receiving threads: one current-thread tokio runtime per thread,
//! shared by every `pyroscope.receive_http` of the process.
//!
//! Each server puts one listener (`SO_REUSEPORT`, see `server::bind`) and
//! its accept loop on every thread, so the kernel spreads connections over
//! the threads and a request is read, decoded, appended downstream (the
//! `pyroscope.write` sync path sends to the backend from inside its append)
//! and answered on the thread that accepted its connection: no task
//! hand-off between threads, no cross-thread wake-up on the hot path
//! (docs/architecture.md, "Receiving threads"). Everything else (queue
//! senders, reloads, metrics, the admin server, the archive's writer)
//! stays on the main multi-thread runtime.
//!
//! The threads live as long as the process's `Runtime`, across reloads, so
//! a task a handler spawns (an HTTP/2 stream, an upstream connection of the
//! writer's pool) never loses its runtime under it while the relay runs.

use std::future::Future;
use std::io;
use std::thread::{self, JoinHandle, ThreadId};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// How long a stopping thread waits for blocking work (a large gunzip) it
/// started; the threads stop only once every server has drained.
const STOP_TIMEOUT: Duration = Duration::from_secs(1);

/// The receiving threads, `receive-http-0` … `receive-http-{n-1}`.
#[derive(Debug)]
pub struct Workers {
    threads: Vec<Worker>,
}

#[derive(Debug)]
struct Worker {
    handle: Handle,
    id: ThreadId,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Workers {
    /// The number of threads when none is configured: the cores this
    /// process may run on (affinity and cgroup quota included).
    pub fn default_count() -> usize {
        thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// Starts `count` threads (at least one), each running its own
    /// current-thread runtime until the `Workers` is dropped.
    pub fn start(count: usize) -> io::Result<Workers> {
        let mut threads = Vec::with_capacity(count.max(1));
        for index in 0..count.max(1) {
            threads.push(Worker::start(index)?);
        }
        Ok(Workers { threads })
    }

    /// How many threads there are.
    pub fn len(&self) -> usize {
        self.threads.len()
    }

    /// Never true: there is always at least one thread.
    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }

    /// Runs `future` on thread `index`.
    pub(super) fn spawn<F>(&self, index: usize, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.threads[index].handle.spawn(future)
    }
}

impl Worker {
    fn start(index: usize) -> io::Result<Worker> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = thread::Builder::new()
            .name(format!("receive-http-{index}"))
            .spawn(move || {
                // A current-thread runtime runs its tasks only while a
                // thread is inside `block_on`: this thread, until stopped.
                let _ = runtime.block_on(stopped);
                runtime.shutdown_timeout(STOP_TIMEOUT);
            })?;
        Ok(Worker {
            handle,
            id: thread.thread().id(),
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for worker in &mut self.threads {
            drop(worker.stop.take());
        }
        let me = thread::current().id();
        for worker in &mut self.threads {
            // Joining itself would never return; that thread stops anyway.
            if worker.id != me
                && let Some(thread) = worker.thread.take()
            {
                let _ = thread.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_run_on_their_named_thread_and_stop_with_the_workers() {
        let workers = Workers::start(2).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        for index in 0..workers.len() {
            let tx = tx.clone();
            workers.spawn(index, async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                tx.send(thread::current().name().map(str::to_owned))
                    .unwrap();
            });
        }
        let mut names: Vec<_> = (0..2).map(|_| rx.recv().unwrap().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["receive-http-0", "receive-http-1"]);

        // A task still pending when the workers go is dropped, not leaked.
        let (held, released) = oneshot::channel::<()>();
        workers.spawn(0, async move {
            let _held = held;
            std::future::pending::<()>().await
        });
        drop(workers);
        assert!(released.blocking_recv().is_err());
    }

    #[test]
    fn at_least_one_thread() {
        assert_eq!(Workers::start(0).unwrap().len(), 1);
    }
}
