//! The runs this service is running: each in a task of the service's process (a blocking
//! thread driving the one run lifecycle of `app`, since a simulated environment runs on a
//! runtime of its own), with its stop handle. A run outlives the HTTP request that started
//! it; on shutdown every run is asked to stop between calls and ends `interrupted`, resumable.

use crate::app::lifecycle::RunResult;
use crate::app::run::MakeReporter;
use crate::app::AppError;
use crate::cloud::Clock;
use crate::engine::{Stop, StopKind};
use crate::progress::{Progress, Reporter};
use crate::types::RunId;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{oneshot, Notify};

/// A run to start: given the runtime and the run's reporter, it runs to its end (blocking).
pub type Work<T = RunResult> =
    Box<dyn FnOnce(tokio::runtime::Handle, MakeReporter) -> Result<T, AppError> + Send>;

/// How a run of this process ended (a run, a resume, a rollback, a drill).
pub struct Ended {
    pub run_id: RunId,
    pub status: crate::status::RunStatus,
}

impl From<RunResult> for Ended {
    fn from(r: RunResult) -> Self {
        Ended {
            run_id: r.run_id,
            status: r.status,
        }
    }
}

impl From<crate::app::drill::DrillResult> for Ended {
    fn from(r: crate::app::drill::DrillResult) -> Self {
        Ended {
            run_id: r.run_id,
            status: r.status,
        }
    }
}

/// The runs of this process.
#[derive(Clone, Default)]
pub struct Runs {
    active: Arc<Mutex<BTreeMap<RunId, Stop>>>,
    ended: Arc<Notify>,
}

/// Tells the request that started a run the moment the run is recorded (its leases taken).
struct Started(Mutex<Option<oneshot::Sender<()>>>);

impl Reporter for Started {
    fn report(&self, p: Progress) {
        if matches!(p, Progress::RunStarted { .. }) {
            if let Some(tx) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = tx.send(());
            }
        }
    }
}

impl Runs {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<RunId, Stop>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Start `work` as run `id` and wait until it is recorded (Ok) or refused before that
    /// (a lease held by another run, bad input, AWS unreadable: the error). The run goes on
    /// after this returns, whatever happens to the caller.
    pub async fn launch<T: Into<Ended> + 'static>(
        &self,
        id: RunId,
        stop: Stop,
        work: Work<T>,
    ) -> Result<(), AppError> {
        let (started_tx, started_rx) = oneshot::channel();
        let (ended_tx, ended_rx) = oneshot::channel();
        let started = Arc::new(Started(Mutex::new(Some(started_tx))));
        let reporter: MakeReporter =
            Box::new(move |_clock: Arc<dyn Clock>| started as Arc<dyn Reporter>);
        self.lock().insert(id.clone(), stop);
        let handle = tokio::runtime::Handle::current();
        let task = tokio::task::spawn_blocking(move || work(handle, reporter).map(Into::into));
        let me = self.clone();
        tokio::spawn(async move {
            let r = task
                .await
                .unwrap_or_else(|e| Err(AppError::Runtime(format!("the run's task failed: {e}"))));
            match &r {
                Ok(res) => tracing::info!(run = %res.run_id, status = %res.status, "run ended"),
                Err(e) => tracing::warn!(run = %id, "run not started: {e}"),
            }
            me.lock().remove(&id);
            me.ended.notify_waiters();
            let _ = ended_tx.send(r);
        });
        tokio::select! {
            biased;
            Ok(()) = started_rx => Ok(()),
            r = ended_rx => match r {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(AppError::Runtime("the run's task ended without a word".into())),
            },
        }
    }

    /// Ask a run of this process to stop between calls; whether it was one of ours.
    pub fn stop(&self, id: &RunId, kind: StopKind, why: &str) -> bool {
        match self.lock().get(id) {
            Some(s) => {
                s.request(kind, why);
                true
            }
            None => false,
        }
    }

    /// The runs of this process now.
    pub fn ids(&self) -> Vec<RunId> {
        self.lock().keys().cloned().collect()
    }

    /// Ask every run to stop between calls (they end `interrupted`, resumable).
    pub fn stop_all(&self, why: &str) {
        for s in self.lock().values() {
            s.request(StopKind::Interrupted, why);
        }
    }

    /// Wait until no run of this process is left.
    pub async fn drained(&self) {
        loop {
            let notified = self.ended.notified();
            if self.lock().is_empty() {
                return;
            }
            notified.await;
        }
    }
}
