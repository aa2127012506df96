//! What every handler of the service shares: the use cases' input (`App`), the tokens, the
//! runbooks, the runs of this process, the event feed, the metrics, the probes' reports.

use super::catalog::Catalog;
use super::config::ServeConfig;
use super::error::ApiError;
use super::events;
use super::health;
use super::metrics;
use super::readiness;
use super::runs;
use crate::app::App;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// What every handler shares.
pub struct Service {
    pub app: App,
    pub config: ServeConfig,
    pub catalog: Catalog,
    pub runs: runs::Runs,
    pub feed: Arc<events::Feed>,
    pub metrics: Arc<metrics::Metrics>,
    pub health: Arc<health::Health>,
    pub readiness: Arc<readiness::Readiness>,
    /// Becomes true when the service shuts down (streams end).
    pub shutdown: watch::Receiver<bool>,
    pub(super) stopping: AtomicBool,
}

impl Service {
    /// No new run starts once the service is shutting down.
    pub fn refuse_if_stopping(&self) -> Result<(), ApiError> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(ApiError::unavailable(
                "error: the service is shutting down; no run is started\n  hint: retry against the service once it is back",
            ));
        }
        Ok(())
    }
}
