//! The drill schedules (`[[drills]]`) run by `failover serve`: when it starts, then once a
//! minute,
//! `app::drills::run_due` (the same function as `failover drills run-due`); a slot is claimed
//! in the journal, so several services (or a cron job beside them) start each drill once. On
//! shutdown no new drill starts and a drill in progress stops between calls.

use crate::app::{drills, App};
use crate::engine::{Stop, StopKind};
use std::time::Duration;
use tokio::sync::watch;

/// How often the schedules are looked at.
pub const EVERY: Duration = Duration::from_secs(60);

/// Start the timer; it ends when `shutdown` turns true.
pub fn start(app: &App, mut shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    let app = app.clone();
    tokio::spawn(async move {
        let stop = Stop::default();
        let mut first = true;
        loop {
            // A slot due now is started at once by a service that (re)starts: not up to a
            // minute later (a missed one is reported at once too).
            if !std::mem::take(&mut first) {
                tokio::select! {
                    _ = tokio::time::sleep(EVERY) => {}
                    _ = shutdown.changed() => return,
                }
            }
            let now = crate::journal::now_ms();
            let mut say = |o: &drills::DueOutcome| {
                tracing::info!(environment = %o.environment, schedule = %o.schedule, slot = %o.slot_local, what = %o.what, run = ?o.drill_run, "drill slot");
            };
            let due = drills::run_due(&app, None, now, &stop, &mut say);
            tokio::pin!(due);
            let r = tokio::select! {
                r = &mut due => r,
                _ = shutdown.changed() => {
                    stop.request(StopKind::Interrupted, "the service is shutting down");
                    due.await
                }
            };
            if let Err(e) = r {
                tracing::warn!("drill schedules: {e}");
            }
            if stop.requested().is_some() {
                return;
            }
        }
    })
}
