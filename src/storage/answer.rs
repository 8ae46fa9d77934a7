//! How the writer thread answers an append: through the runtime the
//! appending task runs on, with one wake-up per runtime per batch.
//!
//! A task woken from a thread outside its runtime is scheduled with a write
//! to that runtime's eventfd, every time. Answering each append directly
//! cost the writer one system call per acknowledgement (73,210 eventfd
//! writes for 70,700 appends; docs/performance.md, "The durable queue").
//! An append made on a current-thread runtime (a receiving thread) instead
//! leaves its answer in that runtime's inbox: the writer queues a batch's
//! answers there, which wakes the inbox's task once, and that task hands
//! them out from inside the runtime, where waking a task is a push onto a
//! local queue. Appends from anywhere else are answered directly.

use std::cell::RefCell;
use std::ops::Range;

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::{mpsc, oneshot};

use super::StorageError;

pub(crate) type Answer = Result<Range<u64>, StorageError>;

/// The writer's side of one append.
pub(crate) struct Reply {
    tx: oneshot::Sender<Answer>,
    inbox: Option<Inbox>,
}

/// What the appending task awaits.
pub(crate) type Pending = oneshot::Receiver<Answer>;

impl Reply {
    /// A reply for an append made here: through this runtime's inbox when
    /// this is a current-thread runtime.
    pub fn new() -> (Reply, Pending) {
        let (tx, rx) = oneshot::channel();
        let reply = Reply {
            tx,
            inbox: current_inbox(),
        };
        (reply, rx)
    }

    /// Answers the append. When the inbox's runtime has stopped, directly:
    /// the answer is never lost on the way.
    pub fn send(self, answer: Answer) {
        let (tx, answer) = match self.inbox {
            Some(inbox) => match inbox.0.send((self.tx, answer)) {
                Ok(()) => return,
                Err(mpsc::error::SendError(back)) => back,
            },
            None => (self.tx, answer),
        };
        let _ = tx.send(answer);
    }
}

/// A runtime's queue of answers, emptied by a task on that runtime.
#[derive(Clone)]
struct Inbox(mpsc::UnboundedSender<(oneshot::Sender<Answer>, Answer)>);

thread_local! {
    /// This thread's inbox and the runtime whose task empties it.
    static INBOX: RefCell<Option<(tokio::runtime::Id, Inbox)>> = const { RefCell::new(None) };
}

/// This current-thread runtime's inbox, started on first use (and again
/// when the runtime it was started on has gone); `None` on a multi-thread
/// runtime, whose tasks move between threads, or outside a runtime.
fn current_inbox() -> Option<Inbox> {
    let handle = Handle::try_current().ok()?;
    if handle.runtime_flavor() != RuntimeFlavor::CurrentThread {
        return None;
    }
    let id = handle.id();
    INBOX.with(|cell| {
        let mut cell = cell.borrow_mut();
        if let Some((of, inbox)) = cell.as_ref()
            && *of == id
            && !inbox.0.is_closed()
        {
            return Some(inbox.clone());
        }
        let (tx, rx) = mpsc::unbounded_channel();
        handle.spawn(hand_out(rx));
        let inbox = Inbox(tx);
        *cell = Some((id, inbox.clone()));
        Some(inbox)
    })
}

/// Up to how many answers are handed out per pass.
const HAND_OUT_BATCH: usize = 256;

async fn hand_out(mut rx: mpsc::UnboundedReceiver<(oneshot::Sender<Answer>, Answer)>) {
    let mut answers = Vec::with_capacity(HAND_OUT_BATCH);
    while rx.recv_many(&mut answers, HAND_OUT_BATCH).await > 0 {
        for (tx, answer) in answers.drain(..) {
            let _ = tx.send(answer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current_thread_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    fn answer_from_another_thread(reply: Reply, n: u64) {
        std::thread::spawn(move || reply.send(Ok(n..n + 1)))
            .join()
            .unwrap();
    }

    #[test]
    fn a_current_thread_runtime_gets_its_answers_through_its_inbox() {
        let runtime = current_thread_runtime();
        runtime.block_on(async {
            let mut pending = Vec::new();
            for n in 0..10 {
                let (reply, rx) = Reply::new();
                assert!(reply.inbox.is_some());
                answer_from_another_thread(reply, n);
                pending.push(rx);
            }
            for (n, rx) in pending.into_iter().enumerate() {
                assert_eq!(rx.await.unwrap().unwrap(), n as u64..n as u64 + 1);
            }
        });
    }

    #[test]
    fn a_stopped_runtime_inbox_is_replaced_and_answers_still_arrive() {
        let first = current_thread_runtime();
        let (stale, stale_rx) = first.block_on(async { Reply::new() });
        drop(first);
        // The inbox's task went with its runtime: the answer comes directly.
        stale.send(Ok(7..8));
        assert_eq!(stale_rx.blocking_recv().unwrap().unwrap(), 7..8);

        let second = current_thread_runtime();
        second.block_on(async {
            let (reply, rx) = Reply::new();
            assert!(reply.inbox.is_some());
            answer_from_another_thread(reply, 3);
            assert_eq!(rx.await.unwrap().unwrap(), 3..4);
        });
    }

    #[test]
    fn a_multi_thread_runtime_or_no_runtime_is_answered_directly() {
        let (reply, rx) = Reply::new();
        assert!(reply.inbox.is_none());
        reply.send(Ok(1..2));
        assert_eq!(rx.blocking_recv().unwrap().unwrap(), 1..2);

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        runtime.block_on(async {
            let (reply, rx) = Reply::new();
            assert!(reply.inbox.is_none());
            answer_from_another_thread(reply, 5);
            assert_eq!(rx.await.unwrap().unwrap(), 5..6);
        });
    }
}
