//! Group commit: callers that arrive while a commit is in progress wait in a queue, and the
//! next commit takes all of them at once (one transaction, one fsync).
//!
//! The first caller to find no commit in progress starts a committer on tokio's blocking pool;
//! the committer takes everything waiting as one group, commits it, answers each caller, and
//! goes on with whatever arrived meanwhile until the queue is empty. Every caller, the one who
//! started the committer included, only awaits its own answer (a oneshot): no runtime worker
//! thread blocks while the group is written and synced, so the other calls of the same task
//! (`buffered`) join the queue meanwhile.
//!
//! An answer is sent only after `commit` has returned for the caller's group, so a caller never
//! hears of its item before its group's commit is done (for intents: on disk).
//!
//! This module knows nothing of SQLite: what an item is and how a group is committed are the
//! journal's (`records.rs`: `Journal::commit_intents`).

use crate::store::{Fence, Result};
use crate::types::RunId;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// An intent waiting for its group's commit. Owned: it crosses to the committer's thread.
pub(super) struct PendingIntent {
    pub run_id: RunId,
    pub step_id: String,
    pub operation: String,
    pub resource: String,
    pub call: Value,
    pub fence: Fence,
}

/// The journal's queue of intents; each answer is the intent's sequence number, or why it was
/// not written (its own fence, or the group's transaction failing).
pub(super) type IntentQueue = Queue<PendingIntent, Result<i64>>;

/// Items waiting for a commit, and whether a committer is running.
pub(super) struct Queue<T, R> {
    state: Mutex<State<T, R>>,
}

struct State<T, R> {
    waiting: Vec<(T, oneshot::Sender<R>)>,
    committing: bool,
    /// Items ever queued (the tests wait for theirs).
    #[cfg(test)]
    joined: usize,
}

impl<T, R> Default for Queue<T, R> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                waiting: vec![],
                committing: false,
                #[cfg(test)]
                joined: 0,
            }),
        }
    }
}

impl<T, R> Queue<T, R> {
    fn state(&self) -> std::sync::MutexGuard<'_, State<T, R>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue `item`; also says whether the caller must start a committer (none is running).
    fn join(&self, item: T) -> (oneshot::Receiver<R>, bool) {
        let (tx, rx) = oneshot::channel();
        let mut st = self.state();
        st.waiting.push((item, tx));
        #[cfg(test)]
        {
            st.joined += 1;
        }
        let start = !st.committing;
        st.committing = true;
        (rx, start)
    }

    /// The next group, in arrival order: everything waiting whose caller still waits (a caller
    /// that gave up, its future dropped, has nothing committed). `None` when nothing waits:
    /// the committer stops, and the next caller starts another (decided under the same lock,
    /// so an item is never left in the queue without a committer).
    fn next_group(&self) -> Option<Vec<(T, oneshot::Sender<R>)>> {
        let mut st = self.state();
        st.waiting.retain(|(_, tx)| !tx.is_closed());
        if st.waiting.is_empty() {
            st.committing = false;
            return None;
        }
        Some(std::mem::take(&mut st.waiting))
    }

    /// How many items were ever queued.
    #[cfg(test)]
    pub(super) fn joined(&self) -> usize {
        self.state().joined
    }
}

/// The loop that commits a queue's groups until it is empty, on a blocking thread.
///
/// Dropped without having emptied the queue (`commit` panicked, or the runtime shut down
/// before it ran), it stops for good: every waiting caller's sender is dropped, so each gets
/// an error instead of waiting forever, and the next caller starts a new committer.
struct Committer<T, R> {
    queue: Arc<Queue<T, R>>,
    finished: bool,
}

impl<T, R> Committer<T, R> {
    fn run(mut self, mut commit: impl FnMut(Vec<T>) -> Vec<R>) {
        while let Some(group) = self.queue.next_group() {
            let (items, senders): (Vec<T>, Vec<_>) = group.into_iter().unzip();
            // The whole group is committed (and, for intents, synced) before any answer.
            let answers = commit(items);
            for (tx, a) in senders.into_iter().zip(answers) {
                // A caller that stopped waiting meanwhile: its item is written all the same
                // (for an intent: a call in doubt that was never made, which is safe).
                let _ = tx.send(a);
            }
        }
        self.finished = true;
    }
}

impl<T, R> Drop for Committer<T, R> {
    fn drop(&mut self) {
        if !self.finished {
            let mut st = self.queue.state();
            st.waiting.clear();
            st.committing = false;
        }
    }
}

/// Commit `item` with whatever else is waiting on `queue`; `None` if its committer stopped
/// without answering (the caller must then act as if it failed).
///
/// `committer` is called only by the caller who starts a committer: it makes the function
/// that commits one group (items in arrival order; one answer per item, in the same order).
pub(super) async fn submit<T, R, C>(
    queue: &Arc<Queue<T, R>>,
    item: T,
    committer: impl FnOnce() -> C,
) -> Option<R>
where
    T: Send + 'static,
    R: Send + 'static,
    C: FnMut(Vec<T>) -> Vec<R> + Send + 'static,
{
    let (answer, start) = queue.join(item);
    if start {
        let commit = committer();
        let c = Committer {
            queue: queue.clone(),
            finished: false,
        };
        // Not awaited: the committer answers through the oneshots. A closure that never runs
        // (the runtime shut down) is dropped with its committer, which releases the queue.
        drop(tokio::task::spawn_blocking(move || c.run(commit)));
    }
    answer.await.ok()
}
