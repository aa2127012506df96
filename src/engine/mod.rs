//! The engine: runs bound steps as a DAG against the ports.
//!
//! - [`observe`] reads the world with few calls (filters, pages) and no side effects.
//! - [`dag`]: `plan_run` is the dry-run executor (observe once, then `plan::plan`, pure);
//!   `execute` the live one: independent steps run concurrently.
//! - [`step`]: each step's attempts within its deadline: observe again, call the same
//!   `steps::decide`, act; approval gates, health assertions, waits.
//! - [`act`]: journal the intent, make the call, journal the outcome, wait for the effect.
//! - [`traffic`]: the closed loops of the shedding steps.
//! - [`ctx`]: what a run carries through the engine, and `StepError`.
//! - `ledger`: what the journal says about calls (in doubt, accepted, recent Route 53
//!   changes), folded from the events appended since the last decision.
//!
//! Error classification lives in `cloud::ErrorKind`; the engine only applies it.

pub mod act;
pub mod ctx;
pub mod dag;
mod ledger;
pub mod observe;
pub mod step;
pub mod traffic;

pub use ctx::{Observed, RunOutcome, RunSpec, StepError, Stop, StopKind};
pub use dag::{execute, plan_observed, plan_run};
