//! `plan` (dry run) and `run` (live run) of a runbook against an environment.

use super::lifecycle::{gate_with_approval, start_run, RunRequest, RunResult};
use super::load::{initiator, load_bound, Bound, SimTarget};
use super::record::RunHeader;
use super::{App, AppError};
use crate::cloud::Clock;
use crate::engine;
use crate::engine::Stop;
use crate::journal;
use crate::plan::Plan;
use crate::progress::Reporter;
use crate::runbook::bind::{self, RunContext};
use crate::status::RunMode;
use crate::types::RunId;
use std::path::PathBuf;
use std::sync::Arc;

/// Builds the reporter of a run once its clock is known (virtual time in a simulated environment).
pub type MakeReporter = Box<dyn FnOnce(Arc<dyn Clock>) -> Arc<dyn Reporter> + Send>;

/// A dry run: the exact calls a run would make, from read-only calls.
pub struct Planned {
    pub plan: Plan,
    pub params: bind::Params,
    /// The AWS requests the plan's observation made.
    pub calls: crate::cloud::model::CallCounts,
}

pub async fn plan(
    app: &App,
    runbook: &std::path::Path,
    env: &str,
    params: &[(String, String)],
) -> Result<Planned, AppError> {
    let run = RunContext {
        run_id: RunId::new(format!("plan-{}", journal::new_run_id())),
        initiator: initiator(None),
        mode: RunMode::Plan,
    };
    let b = load_bound(&app.config_dir, runbook, env, params, &run)?;
    let (rb, steps, env_name) = (&b.runbook, &b.steps, &b.loaded.env.name);
    let plan = b
        .loaded
        .with_ports(None, |ports| async move {
            let plan = engine::plan_run(&ports, &rb.name, env_name, &run.run_id, steps).await;
            plan.map(|p| (p, ports.meter.counts()))
        })
        .await?
        .map_err(|e| b.loaded.cloud_error("reading the current state failed", e))?;
    let (plan, calls) = plan;
    Ok(Planned {
        plan,
        params: b.params,
        calls,
    })
}

/// What `failover run` is asked to do.
pub struct RunOrder {
    pub runbook: PathBuf,
    pub env: String,
    pub params: Vec<(String, String)>,
    pub by: Option<String>,
    /// Pause before the first step until another person approves.
    pub require_approval: bool,
    /// Use this run id (set by `failover watch` when it starts a run).
    pub run_id: Option<RunId>,
    /// Ask the run to stop between calls (Ctrl-C).
    pub stop: Stop,
}

/// A run whose input is loaded and checked: nothing has been called yet.
pub struct PreparedRun {
    bound: Bound,
    run: RunContext,
    runbook_path: PathBuf,
    stop: Stop,
}

impl PreparedRun {
    pub fn run_id(&self) -> &RunId {
        &self.run.run_id
    }
    pub fn simulated(&self) -> Option<&SimTarget> {
        self.bound.loaded.target.simulated()
    }
    pub fn environment(&self) -> &str {
        &self.bound.loaded.env.name
    }
}

/// Load and check everything a run needs, every problem at once.
pub fn prepare_run(app: &App, order: RunOrder) -> Result<PreparedRun, AppError> {
    let run = RunContext {
        run_id: order.run_id.unwrap_or_else(journal::new_run_id),
        initiator: initiator(order.by),
        mode: RunMode::Run,
    };
    let mut bound = load_bound(
        &app.config_dir,
        &order.runbook,
        &order.env,
        &order.params,
        &run,
    )?;
    if order.require_approval {
        let message = format!(
            "approve run {} of `{}` on {}?",
            run.run_id, bound.runbook.name, bound.loaded.env.name
        );
        let approvers = bound.loaded.env.settings.approvers.clone();
        gate_with_approval(&mut bound.steps, message, approvers);
    }
    Ok(PreparedRun {
        bound,
        run,
        runbook_path: order.runbook,
        stop: order.stop,
    })
}

/// Run a prepared run live: every mutating call journaled before it is made.
pub async fn run(
    app: &App,
    prepared: PreparedRun,
    reporter: MakeReporter,
) -> Result<RunResult, AppError> {
    let journal = app.open_journal()?;
    let PreparedRun {
        bound,
        run,
        runbook_path,
        stop,
    } = prepared;
    let env = &bound.loaded.env;
    let header = RunHeader {
        id: run.run_id.clone(),
        runbook: bound.runbook.name.clone(),
        runbook_path: runbook_path.display().to_string(),
        runbook_sha256: journal::sha256_hex(bound.runbook.source.text.as_bytes()),
        environment: env.name.clone(),
        mode: run.mode,
        initiator: run.initiator.clone(),
        params: serde_json::to_value(&bound.params).unwrap_or_default(),
        of_run: None,
    };
    let req = RunRequest {
        stop,
        on_crash: Some(app.crash_marker()),
        runbook_text: Some(bound.runbook.source.text.clone()),
        ..RunRequest::new(header, bound.steps.clone(), env)
    };
    let approvals = Some((journal.clone(), run.run_id.clone()));
    bound
        .loaded
        .with_ports(approvals, |ports| async move {
            let reporter = reporter(ports.clock.clone());
            start_run(&ports, &journal, reporter, req).await
        })
        .await?
}
