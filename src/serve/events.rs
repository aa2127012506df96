//! The journal as a live feed: one follower polls the journal port for the events after the
//! last one it saw (`Store::events_since`, which a DynamoDB journal serves as well as SQLite),
//! and hands each to the metrics and to every subscriber. Runs of any process writing the
//! journal show up, the CLI's included.
//!
//! A subscriber (a server-sent-event stream) first reads what it missed from the journal, then
//! follows the feed; one that falls behind the feed reads the journal again, so no event is
//! lost or repeated. A run's stream ends shortly after the run's `run_finished` event.

use super::metrics::Metrics;
use crate::store::{Event, Store};
use crate::types::RunId;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::Stream;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// Events read from the journal, as they are written.
pub struct Feed {
    tx: broadcast::Sender<Arc<Event>>,
    /// The last sequence number handed on.
    last: AtomicI64,
    store: Arc<dyn Store>,
}

/// How long a run's stream stays open after its `run_finished` event, for the events written
/// just after it (leases released, the run's call counts).
const END_GRACE: Duration = Duration::from_millis(1500);

impl Feed {
    /// A feed starting after the journal's current head.
    pub async fn new(store: Arc<dyn Store>) -> Result<Arc<Feed>, crate::store::StoreError> {
        let head = store.head().await?.map(|h| h.seq).unwrap_or(0);
        let (tx, _) = broadcast::channel(4096);
        Ok(Arc::new(Feed {
            tx,
            last: AtomicI64::new(head),
            store,
        }))
    }

    pub fn last_seq(&self) -> i64 {
        self.last.load(Ordering::SeqCst)
    }

    /// Poll the journal every `every` until `shutdown`; each new event goes to the metrics,
    /// then to the subscribers.
    pub async fn follow(
        self: Arc<Self>,
        every: Duration,
        metrics: Arc<Metrics>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let next = self.last_seq() + 1;
            match self.store.events_since(next, 1000).await {
                Ok(page) if !page.is_empty() => {
                    for e in page {
                        metrics.observe_event(&e, self.store.as_ref()).await;
                        self.last.store(e.seq, Ordering::SeqCst);
                        let _ = self.tx.send(Arc::new(e));
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("following the journal: {e}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Every event after `since` (all of them, or one run's), from the journal.
    async fn backlog(&self, since: i64, run: Option<&RunId>) -> Vec<Arc<Event>> {
        let read = match run {
            Some(r) => self
                .store
                .events(r)
                .await
                .map(|es| es.into_iter().filter(|e| e.seq > since).collect::<Vec<_>>()),
            None => self.store.events_since(since + 1, 1000).await,
        };
        match read {
            Ok(es) => es.into_iter().map(Arc::new).collect(),
            Err(e) => {
                tracing::warn!("reading the journal for a stream: {e}");
                vec![]
            }
        }
    }
}

/// What a stream is following.
pub struct Follow {
    /// One run's events (from its first, or after `since`), or every run's (after `since`, by
    /// default from now on).
    pub run: Option<RunId>,
    pub since: i64,
}

struct State {
    feed: Arc<Feed>,
    rx: broadcast::Receiver<Arc<Event>>,
    follow: Follow,
    /// The last sequence number sent.
    sent: i64,
    queue: VecDeque<Arc<Event>>,
    /// When the run's stream closes (set by its `run_finished`).
    closing: Option<tokio::time::Instant>,
    done: bool,
    shutdown: watch::Receiver<bool>,
}

impl State {
    fn wants(&self, e: &Event) -> bool {
        e.seq > self.sent && self.follow.run.as_ref().is_none_or(|r| &e.run_id == r)
    }

    /// Queue `e` if it is for this stream; a run's end starts the grace before closing.
    fn take(&mut self, e: Arc<Event>) {
        if !self.wants(&e) {
            return;
        }
        self.sent = e.seq;
        // A run's end (or any event of it after its end) (re)starts the grace.
        if self.follow.run.is_some() && (e.kind == "run_finished" || self.closing.is_some()) {
            self.closing = Some(tokio::time::Instant::now() + END_GRACE);
        }
        self.queue.push_back(e);
    }

    async fn catch_up(&mut self) {
        let run = self.follow.run.clone();
        loop {
            let page = self.feed.backlog(self.sent, run.as_ref()).await;
            let last = page.last().map(|e| e.seq);
            for e in page {
                self.take(e);
            }
            // A run's events come in one read; the whole journal in pages.
            if run.is_some() || last.is_none_or(|l| l >= self.feed.last_seq()) {
                return;
            }
        }
    }

    /// The next event to send; None: the stream ends.
    async fn next(&mut self) -> Option<Arc<Event>> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(e);
            }
            if self.done || *self.shutdown.borrow() {
                return None;
            }
            let until = self.closing;
            tokio::select! {
                r = self.rx.recv() => match r {
                    Ok(e) => self.take(e),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up().await,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = sleep_until(until) => self.done = true,
                _ = self.shutdown.changed() => return None,
            }
        }
    }
}

async fn sleep_until(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// The stream of `follow` as server-sent events: `id` is the event's sequence number (a
/// client reconnects with `Last-Event-ID` and misses nothing), `event` its kind, `data` the
/// event as JSON; a run's stream ends with an `end` event.
pub async fn stream(
    feed: Arc<Feed>,
    follow: Follow,
    shutdown: watch::Receiver<bool>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let run_stream = follow.run.is_some();
    let rx = feed.tx.subscribe();
    let mut st = State {
        sent: follow.since,
        feed,
        rx,
        follow,
        queue: VecDeque::new(),
        closing: None,
        done: false,
        shutdown,
    };
    st.catch_up().await;
    let s = futures_util::stream::unfold(Some(st), move |st| async move {
        let mut st = st?;
        match st.next().await {
            Some(e) => {
                let ev = SseEvent::default()
                    .id(e.seq.to_string())
                    .event(e.kind.clone())
                    .data(serde_json::to_string(e.as_ref()).unwrap_or_default());
                Some((Ok(ev), Some(st)))
            }
            None if run_stream && st.done => {
                let end = SseEvent::default()
                    .event("end")
                    .data(serde_json::json!({"last_seq": st.sent}).to_string());
                Some((Ok(end), None))
            }
            None => None,
        }
    });
    Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
