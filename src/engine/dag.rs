//! The executors of a run's DAG: `plan_run` (dry run: observe once, plan) and `execute` (live:
//! independent steps concurrently, a blocked or aborted step's dependents not run).

use super::ctx::{Ctx, RunOutcome, RunSpec};
use super::observe;
use super::step::run_step;
use crate::cloud::CloudError;
use crate::plan::Plan;
use crate::ports::Ports;
use crate::progress::{Progress, Reporter};
use crate::runbook::bind::BoundStep;
use crate::runbook::OnFailure;
use crate::status::StepStatus;
use crate::steps;
use crate::store::Store;
use crate::types::{RunId, StepId};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::task::JoinSet;

/// Dry run: observe once (read-only) and plan.
pub async fn plan_run(
    ports: &Ports,
    runbook: &str,
    environment: &str,
    run_id: &RunId,
    steps: &[BoundStep],
) -> Result<Plan, CloudError> {
    let mut needs = crate::world::Needs::default();
    for s in steps.iter().filter(|s| s.enabled) {
        needs.merge(steps::needs(s, run_id));
    }
    let world = observe::observe(ports, &needs).await?;
    Ok(crate::plan::plan(
        runbook,
        environment,
        run_id,
        steps,
        &world,
    ))
}

/// Live run of the DAG. The run record must already exist in the journal.
pub async fn execute(
    ports: Ports,
    journal: Arc<dyn Store>,
    spec: RunSpec,
    reporter: Arc<dyn Reporter>,
) -> RunOutcome {
    let ctx = Arc::new(Ctx {
        unpromotable: Default::default(),
        ports,
        journal,
        spec,
        reporter,
    });
    let mut dag = Dag::new(ctx.spec.steps.clone(), &ctx.spec.finished);
    for s in &dag.steps {
        let r = ctx
            .journal
            .init_step(
                &ctx.spec.run_id,
                s.id.as_str(),
                s.action.name(),
                StepStatus::Pending,
            )
            .await;
        if let Err(e) = r {
            tracing::error!("journal: {e}");
        }
    }
    let mut running: JoinSet<(StepId, StepStatus, Option<String>)> = JoinSet::new();
    loop {
        dag.start_ready(&ctx, &mut running).await;
        match running.join_next().await {
            None => break,
            Some(Ok((id, st, msg))) => dag.finished(id, st, msg),
            Some(Err(e)) => {
                tracing::error!("a step task panicked: {e}");
                ctx.spec.stop.request(
                    super::ctx::StopKind::Crashed,
                    format!("a step task panicked: {e}"),
                );
                dag.aborting = true;
            }
        }
    }
    dag.outcome(ctx.spec.run_id.clone())
}

/// Where the steps of a live run stand.
struct Dag {
    steps: Vec<BoundStep>,
    status: HashMap<StepId, StepStatus>,
    messages: HashMap<StepId, Option<String>>,
    started: Vec<StepId>,
    /// A step with `on_failure = abort` failed: no new step starts.
    aborting: bool,
}

impl Dag {
    /// `finished`: steps a resumed run already finished; they count as done.
    fn new(
        steps: Vec<BoundStep>,
        finished: &BTreeMap<StepId, (StepStatus, Option<String>)>,
    ) -> Self {
        let mut dag = Self {
            steps,
            status: HashMap::new(),
            messages: HashMap::new(),
            started: vec![],
            aborting: false,
        };
        for (id, (st, msg)) in finished {
            if dag.steps.iter().any(|s| &s.id == id) {
                dag.started.push(id.clone());
                dag.status.insert(id.clone(), *st);
                dag.messages.insert(id.clone(), msg.clone());
            }
        }
        dag
    }

    /// Start every ready step within the concurrency limit; end at once the ones that will
    /// not run (blocked, cancelled, `when` false), which may make others ready.
    async fn start_ready(
        &mut self,
        ctx: &Arc<Ctx>,
        running: &mut JoinSet<(StepId, StepStatus, Option<String>)>,
    ) {
        let mut progressed = true;
        while progressed {
            progressed = false;
            for i in 0..self.steps.len() {
                let s = &self.steps[i];
                if self.started.contains(&s.id)
                    || !s.after.iter().all(|a| self.status.contains_key(a))
                {
                    continue;
                }
                if let Some((st, msg)) = self.not_run(s, ctx) {
                    let id = s.id.clone();
                    self.end_without_running(ctx, id, st, msg).await;
                    progressed = true;
                    continue;
                }
                if running.len() >= ctx.spec.max_concurrency.max(1) {
                    break;
                }
                self.started.push(s.id.clone());
                let c = ctx.clone();
                let step = s.clone();
                // The step's id on every log line of the step (`--log-format json`).
                let span = tracing::info_span!(target: "failover_run", "step", step_id = %s.id);
                running.spawn(tracing::Instrument::instrument(
                    async move {
                        tracing::debug!("step started");
                        let (st, msg) = run_step(&c, &step).await;
                        tracing::debug!(status = st.as_str(), "step ended");
                        (step.id.clone(), st, msg)
                    },
                    span,
                ));
                progressed = true;
            }
        }
    }

    /// Why a ready step will not run, if it will not.
    fn not_run(&self, s: &BoundStep, ctx: &Ctx) -> Option<(StepStatus, String)> {
        if let Some(b) = crate::plan::blocked_by(s, &self.steps, |id| self.status.get(id).copied())
        {
            return Some((
                StepStatus::Blocked,
                format!("not run: step `{b}` did not succeed"),
            ));
        }
        if let Some(why) = ctx.spec.stop.requested() {
            return Some((
                StepStatus::Cancelled,
                format!("not run: the run stopped ({why})"),
            ));
        }
        if self.aborting {
            return Some((
                StepStatus::Cancelled,
                "not run: the run was aborted by a failed step".to_string(),
            ));
        }
        if !s.enabled {
            let when = s.when.clone().unwrap_or_default();
            return Some((StepStatus::Skipped, format!("`when` is false ({when})")));
        }
        None
    }

    async fn end_without_running(&mut self, ctx: &Ctx, id: StepId, st: StepStatus, msg: String) {
        self.started.push(id.clone());
        self.status.insert(id.clone(), st);
        let _ = ctx
            .journal
            .step_finished(&ctx.spec.run_id, id.as_str(), st, Some(&msg))
            .await;
        ctx.reporter.report(Progress::StepFinished {
            step: id.to_string(),
            status: st,
            message: Some(msg.clone()),
        });
        self.messages.insert(id, Some(msg));
    }

    fn finished(&mut self, id: StepId, st: StepStatus, msg: Option<String>) {
        let aborts =
            self.steps.iter().find(|s| s.id == id).map(|s| s.on_failure) == Some(OnFailure::Abort);
        if st == StepStatus::Failed && aborts {
            self.aborting = true;
        }
        self.status.insert(id.clone(), st);
        self.messages.insert(id, msg);
    }

    /// Every step's status; the run succeeded unless a step failed that may not fail, or was
    /// blocked or cancelled.
    fn outcome(self, run_id: RunId) -> RunOutcome {
        let mut out = vec![];
        let mut ok = true;
        for s in &self.steps {
            let st = self
                .status
                .get(&s.id)
                .copied()
                .unwrap_or(StepStatus::Cancelled);
            let tolerated = st == StepStatus::Failed && s.on_failure == OnFailure::Continue;
            if matches!(
                st,
                StepStatus::Failed | StepStatus::Blocked | StepStatus::Cancelled
            ) && !tolerated
            {
                ok = false;
            }
            out.push((
                s.id.clone(),
                st,
                self.messages.get(&s.id).cloned().flatten(),
            ));
        }
        RunOutcome {
            run_id,
            succeeded: ok,
            steps: out,
        }
    }
}
