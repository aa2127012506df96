//! The executors of a run's DAG: `plan_run` (dry run: observe once, plan) and `execute` (live:
//! independent steps concurrently, a blocked or aborted step's dependents not run).

use super::ctx::{Ctx, Observed, RunOutcome, RunSpec};
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
use std::collections::{BTreeMap, BTreeSet};
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
    Ok(plan_observed(ports, runbook, environment, run_id, steps)
        .await?
        .0)
}

/// Observe once (read-only) and plan; also hands back the observation, which a live run's
/// steps may decide on while it is fresh (`RunSpec::observed`).
pub async fn plan_observed(
    ports: &Ports,
    runbook: &str,
    environment: &str,
    run_id: &RunId,
    steps: &[BoundStep],
) -> Result<(Plan, Observed), CloudError> {
    let mut needs = crate::world::Needs::default();
    for s in steps.iter().filter(|s| s.enabled) {
        needs.merge(steps::needs(s, run_id));
    }
    let (world, at) = observe::observe_timed(ports, &needs).await?;
    let plan = crate::plan::plan(runbook, environment, run_id, steps, &world);
    let observed = Observed {
        world: Arc::new(world),
        needs,
        at,
    };
    Ok((plan, observed))
}

/// Live run of the DAG. The run record must already exist in the journal.
pub async fn execute(
    ports: Ports,
    journal: Arc<dyn Store>,
    spec: RunSpec,
    reporter: Arc<dyn Reporter>,
) -> RunOutcome {
    let ctx = Arc::new(Ctx::new(ports, journal, spec, reporter));
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
            Some(Ok((id, st, msg))) => {
                ctx.finished
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id.clone(), st);
                dag.finished(id, st, msg)
            }
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

/// Where the steps of a live run stand. Steps are known by their index in `steps`; a step's
/// end costs as much as the steps that wait for it (`plan::Graph`), never a rescan of them all.
struct Dag {
    steps: Vec<BoundStep>,
    graph: crate::plan::Graph,
    /// By step index: how a finished step ended.
    status: Vec<Option<StepStatus>>,
    messages: Vec<Option<String>>,
    started: Vec<bool>,
    /// Steps whose dependencies have all finished and that have not started, in file order.
    ready: BTreeSet<usize>,
    /// A step with `on_failure = abort` failed: no new step starts.
    aborting: bool,
}

impl Dag {
    /// `finished`: steps a resumed run already finished; they count as done.
    fn new(
        steps: Vec<BoundStep>,
        finished: &BTreeMap<StepId, (StepStatus, Option<String>)>,
    ) -> Self {
        let n = steps.len();
        let graph = crate::plan::Graph::new(&steps);
        let mut dag = Self {
            steps,
            graph,
            status: vec![None; n],
            messages: vec![None; n],
            started: vec![false; n],
            ready: BTreeSet::new(),
            aborting: false,
        };
        for (id, (st, msg)) in finished {
            if let Some(i) = dag.graph.index_of(id) {
                dag.started[i] = true;
                dag.status[i] = Some(*st);
                dag.messages[i] = msg.clone();
                dag.graph.finish(i);
            }
        }
        dag.ready = (0..n)
            .filter(|&i| !dag.started[i] && dag.graph.is_ready(i))
            .collect();
        dag
    }

    /// Start every ready step within the concurrency limit, in file order; end at once the
    /// ones that will not run (blocked, cancelled, `when` false), which may make others ready:
    /// one made ready further on is taken in the same pass, one earlier on in the next.
    async fn start_ready(
        &mut self,
        ctx: &Arc<Ctx>,
        running: &mut JoinSet<(StepId, StepStatus, Option<String>)>,
    ) {
        let mut progressed = true;
        while progressed {
            progressed = false;
            let mut from = 0;
            while let Some(&i) = self.ready.range(from..).next() {
                from = i + 1;
                if let Some((st, msg)) = self.not_run(i, ctx) {
                    self.ready.remove(&i);
                    self.end_without_running(ctx, i, st, msg).await;
                    progressed = true;
                    continue;
                }
                if running.len() >= ctx.spec.max_concurrency.max(1) {
                    break;
                }
                self.ready.remove(&i);
                self.started[i] = true;
                let c = ctx.clone();
                let step = self.steps[i].clone();
                // The step's id on every log line of the step (`--log-format json`).
                let span = tracing::info_span!(target: "failover_run", "step", step_id = %step.id);
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

    /// Why ready step `i` will not run, if it will not.
    fn not_run(&self, i: usize, ctx: &Ctx) -> Option<(StepStatus, String)> {
        let s = &self.steps[i];
        let dep = |id: &StepId| {
            let j = self.graph.index_of(id)?;
            Some((self.status[j]?, self.steps[j].on_failure))
        };
        if let Some(b) = crate::plan::blocked_by(s, dep) {
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

    async fn end_without_running(&mut self, ctx: &Ctx, i: usize, st: StepStatus, msg: String) {
        self.started[i] = true;
        let id = &self.steps[i].id;
        ctx.finished
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), st);
        let _ = ctx
            .journal
            .step_finished(&ctx.spec.run_id, id.as_str(), st, Some(&msg))
            .await;
        ctx.reporter.report(Progress::StepFinished {
            step: id.to_string(),
            status: st,
            message: Some(msg.clone()),
        });
        self.end(i, st, Some(msg));
    }

    /// A step the scheduler started has ended.
    fn finished(&mut self, id: StepId, st: StepStatus, msg: Option<String>) {
        let Some(i) = self.graph.index_of(&id) else {
            return;
        };
        if st == StepStatus::Failed && self.steps[i].on_failure == OnFailure::Abort {
            self.aborting = true;
        }
        self.end(i, st, msg);
    }

    /// Record how step `i` ended; the steps waiting only for it become ready.
    fn end(&mut self, i: usize, st: StepStatus, msg: Option<String>) {
        self.status[i] = Some(st);
        self.messages[i] = msg;
        for j in self.graph.finish(i) {
            if !self.started[j] {
                self.ready.insert(j);
            }
        }
    }

    /// Every step's status; the run succeeded unless a step failed that may not fail, or was
    /// blocked or cancelled.
    fn outcome(self, run_id: RunId) -> RunOutcome {
        let mut out = vec![];
        let mut ok = true;
        for (i, s) in self.steps.iter().enumerate() {
            let st = self.status[i].unwrap_or(StepStatus::Cancelled);
            let tolerated = st == StepStatus::Failed && s.on_failure == OnFailure::Continue;
            if matches!(
                st,
                StepStatus::Failed | StepStatus::Blocked | StepStatus::Cancelled
            ) && !tolerated
            {
                ok = false;
            }
            out.push((s.id.clone(), st, self.messages[i].clone()));
        }
        RunOutcome {
            run_id,
            succeeded: ok,
            steps: out,
        }
    }
}
