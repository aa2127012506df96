//! The application layer: every use case of the tool, once, as library functions. The CLI (and
//! the HTTP API to come) parse their input, call one of these, and render what it returns; they
//! hold no logic of their own.
//!
//! - [`load`]: environment (AWS or simulated target), runbook, parameters, bound steps;
//! - [`wiring`]: the one place that chooses AWS or simulated ports;
//! - [`record`]: the one place a run record is built and redacted;
//! - [`lifecycle`]: the one run lifecycle (plan, record, execute, finish) every run goes through;
//! - [`run`]: `plan` and `run`; [`resume`] (resume, abort); [`rollback`]; [`approve`]; [`watch`];
//!   [`inspect`] (runs, show, locks, verify, traffic state, health, validate, local peer);
//!   [`simulate`] (simulate, demo); [`sim_actors`] (several runs, kills and resumes at once in one
//!   simulated world, each run's process behind the kill switch of [`sim_process`]).

pub mod approve;
pub mod discover;
pub mod drill;
pub mod drills;
pub mod error;
pub mod iam;
pub mod inspect;
pub mod lifecycle;
pub mod lint;
pub mod load;
pub mod readiness;
pub mod record;
pub mod report;
pub mod resume;
pub mod rollback;
pub mod run;
pub mod sim_actors;
pub mod sim_process;
pub mod simulate;
pub use simulate::sim_watch;
pub mod watch;
pub mod watch_lead;
pub mod wiring;

pub use error::{AppError, FailureClass};

use crate::journal::Journal;
use crate::store::Store;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a use case finds its input and keeps its record.
#[derive(Clone, Debug)]
pub struct App {
    /// Directory of environment files (`<env>.toml`).
    pub config_dir: PathBuf,
    /// The journal (SQLite file).
    pub journal_path: PathBuf,
}

impl App {
    pub fn new(config_dir: impl Into<PathBuf>, journal_path: impl Into<PathBuf>) -> Self {
        Self {
            config_dir: config_dir.into(),
            journal_path: journal_path.into(),
        }
    }

    /// The journal (SQLite, the embedded default) behind the `Store` port.
    pub fn open_journal(&self) -> Result<Arc<dyn Store>, AppError> {
        Ok(Arc::new(Journal::open(&self.journal_path)?))
    }
}
