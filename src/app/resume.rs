//! `resume RUN` and `abort RUN`: continue a run that stopped (crashed, interrupted, failed, or
//! whose process is gone), or end one for good.
//!
//! A resume never executes what the journal stored: it re-reads the runbook file (refusing,
//! with the difference, if it changed since the run started, unless told to go on), binds it
//! again with the run's parameters, takes over the run's leases with new fencing tokens (the
//! old process, if it is only paused, is fenced off), skips the steps that finished, and goes
//! through the one run lifecycle. Calls the old process may have made are in the journal as
//! calls in doubt: the steps hold back the same calls until their effect shows or their grace
//! passes.

use super::lifecycle::{gate_with_approval, start_run, Resume, RunRequest, RunResult};
use super::load::{load_bound, Bound};
use super::record::RunHeader;
use super::run::MakeReporter;
use super::{App, AppError};
use crate::engine::Stop;
use crate::runbook::bind::RunContext;
use crate::status::{RunMode, RunStatus, StepStatus};
use crate::store::{Liveness, RunRecord, Store, StoreError};
use crate::timefmt::format_ts;
use crate::types::{RunId, StepId};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// What `failover resume` is asked to do.
pub struct ResumeOrder {
    /// The run's whole id.
    pub run_id: String,
    pub by: String,
    /// Go on even though the runbook file changed since the run started.
    pub allow_changed_runbook: bool,
    pub stop: Stop,
}

/// A resume whose steps are bound again: nothing has been called yet.
pub struct PreparedResume {
    bound: Bound,
    record: RunRecord,
    finished: BTreeMap<StepId, (StepStatus, Option<String>)>,
    by: String,
    stop: Stop,
    /// Said before anything happens.
    pub warnings: Vec<String>,
}

impl PreparedResume {
    pub fn run_id(&self) -> &RunId {
        &self.record.id
    }
    /// Steps that finished before the run stopped (not run again).
    pub fn finished_steps(&self) -> Vec<String> {
        self.finished.keys().map(|s| s.to_string()).collect()
    }
}

async fn exact_run(j: &Arc<dyn Store>, run_id: &str, verb: &str) -> Result<RunRecord, AppError> {
    j.run_exact(&RunId::new(run_id)).await.map_err(|e| match e {
        StoreError::UnknownRun(_) => AppError::NotFound(format!("run `{run_id}` is not in the journal\n  hint: {verb} takes the run's whole id (`failover runs` lists them)")),
        other => other.into(),
    })
}

/// Check the run may be resumed, re-read and re-bind its runbook, find its finished steps.
pub async fn prepare_resume(app: &App, order: ResumeOrder) -> Result<PreparedResume, AppError> {
    let j = app.open_journal()?;
    let r = exact_run(&j, &order.run_id, "resume").await?;
    resumable(&r)?;
    let mut warnings = vec![];
    check_runbook(&j, &r, order.allow_changed_runbook, &mut warnings).await?;
    let params: Vec<(String, String)> = r
        .params
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), String::from),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let ctx = RunContext {
        run_id: r.id.clone(),
        initiator: r.initiator.clone(),
        mode: RunMode::Run,
    };
    let mut bound = load_bound(
        &app.config_dir,
        Path::new(&r.runbook_path),
        &r.environment,
        &params,
        &ctx,
    )?;
    if had_approval_gate(&r) {
        let message = format!(
            "approve run {} of `{}` on {}?",
            r.id, bound.runbook.name, r.environment
        );
        let approvers = bound.loaded.env.settings.approvers.clone();
        gate_with_approval(&mut bound.steps, message, approvers);
    }
    let finished = j
        .steps(&r.id)
        .await?
        .into_iter()
        .filter(|s| matches!(s.status, StepStatus::Succeeded | StepStatus::Skipped))
        .map(|s| (StepId::new(s.step_id), (s.status, s.message)))
        .collect();
    Ok(PreparedResume {
        bound,
        record: r,
        finished,
        by: order.by,
        stop: order.stop,
        warnings,
    })
}

/// Continue the run through the one lifecycle.
pub async fn resume(
    app: &App,
    p: PreparedResume,
    reporter: MakeReporter,
) -> Result<RunResult, AppError> {
    let journal = app.open_journal()?;
    let r = &p.record;
    let env = &p.bound.loaded.env;
    let header = RunHeader {
        id: r.id.clone(),
        runbook: r.runbook.clone(),
        runbook_path: r.runbook_path.clone(),
        runbook_sha256: r.runbook_sha256.clone(),
        environment: r.environment.clone(),
        mode: r.mode,
        initiator: r.initiator.clone(),
        params: r.params.clone(),
        of_run: None,
    };
    let req = RunRequest {
        stop: p.stop.clone(),
        on_crash: Some(app.crash_marker()),
        resume: Some(Resume {
            by: p.by.clone(),
            finished: p.finished.clone(),
        }),
        ..RunRequest::new(header, p.bound.steps.clone(), env)
    };
    let approvals = Some((journal.clone(), r.id.clone()));
    p.bound
        .loaded
        .with_ports(approvals, |ports| async move {
            let reporter = reporter(ports.clock.clone());
            start_run(&ports, &journal, reporter, req).await
        })
        .await?
}

/// A run that stopped before its end, or whose process is gone.
fn resumable(r: &RunRecord) -> Result<(), AppError> {
    if r.mode != RunMode::Run {
        return Err(AppError::Refused(match r.mode {
            RunMode::Rollback => format!("run {} is a rollback; roll back again instead (`failover rollback {}`): it restores what is left", r.id, r.of_run_hint()),
            m => format!("run {} is a `{m}`, not a run; only runs are resumed", r.id),
        }));
    }
    if r.status.is_resumable() {
        return Ok(());
    }
    if r.status.is_finished() {
        return Err(AppError::Refused(format!(
            "run {} has ended ({}); there is nothing to resume",
            r.id, r.status
        )));
    }
    match super::lifecycle::liveness(r, crate::journal::now_ms()) {
        Liveness::Stale { .. } | Liveness::Ended => Ok(()),
        Liveness::Live => Err(AppError::Refused(format!(
            "run {} is still running on {} (last heartbeat {}); there is nothing to resume\n  hint: wait for it (`failover show {}`), or end it with `failover abort {} --by <you>`",
            r.id,
            r.holder.as_deref().unwrap_or("?"),
            r.heartbeat_at.map(format_ts).unwrap_or_else(|| "-".into()),
            r.id,
            r.id
        ))),
    }
}

trait OfRun {
    fn of_run_hint(&self) -> String;
}

impl OfRun for RunRecord {
    fn of_run_hint(&self) -> String {
        self.params
            .get("of_run")
            .and_then(|v| v.as_str())
            .unwrap_or("RUN")
            .to_string()
    }
}

/// The run was started with `--require-approval` (its stored steps have the gate).
fn had_approval_gate(r: &RunRecord) -> bool {
    r.steps.as_array().is_some_and(|s| {
        s.iter()
            .any(|st| st.get("id").and_then(|i| i.as_str()) == Some("require-approval"))
    })
}

/// The runbook file must be the one the run started from, unless told otherwise; the
/// difference is shown either way.
async fn check_runbook(
    j: &Arc<dyn Store>,
    r: &RunRecord,
    allow_changed: bool,
    warnings: &mut Vec<String>,
) -> Result<(), AppError> {
    let now = std::fs::read_to_string(&r.runbook_path).map_err(|e| {
        AppError::Refused(format!(
            "the runbook of run {} ({}) cannot be read: {e}\n  hint: resume from the directory the run was started in, or restore the file",
            r.id, r.runbook_path
        ))
    })?;
    if crate::journal::sha256_hex(now.as_bytes()) == r.runbook_sha256 {
        return Ok(());
    }
    let before = j
        .events(&r.id)
        .await?
        .into_iter()
        .find(|e| e.kind == "runbook")
        .and_then(|e| {
            e.data
                .get("text")
                .and_then(|t| t.as_str())
                .map(String::from)
        });
    let diff = match &before {
        Some(b) => line_diff(b, &now),
        None => {
            "(the run did not keep its runbook's text, so the difference cannot be shown)".into()
        }
    };
    let what = format!(
        "the runbook {} changed since run {} started:\n{diff}",
        r.runbook_path, r.id
    );
    if allow_changed {
        warnings.push(format!(
            "{what}\ngoing on with the file as it is now (--allow-changed-runbook)"
        ));
        Ok(())
    } else {
        Err(AppError::Refused(format!(
            "{what}\n  hint: put the runbook back as it was, or resume with --allow-changed-runbook to run the changed steps"
        )))
    }
}

/// Lines removed (`-`) and added (`+`), in order: enough to see what changed in a runbook.
pub fn line_diff(before: &str, after: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (before.lines().collect(), after.lines().collect());
    // Longest common subsequence table, then walk it.
    let mut l = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for k in (0..b.len()).rev() {
            l[i][k] = if a[i] == b[k] {
                l[i + 1][k + 1] + 1
            } else {
                l[i + 1][k].max(l[i][k + 1])
            };
        }
    }
    let (mut i, mut k, mut out) = (0, 0, vec![]);
    while i < a.len() || k < b.len() {
        if i < a.len() && k < b.len() && a[i] == b[k] {
            i += 1;
            k += 1;
        } else if i < a.len() && (k == b.len() || l[i + 1][k] >= l[i][k + 1]) {
            out.push(format!("  - {}: {}", i + 1, a[i]));
            i += 1;
        } else {
            out.push(format!("  + {}: {}", k + 1, b[k]));
            k += 1;
        }
    }
    out.join("\n")
}

/// What `abort` did.
pub struct Aborted {
    pub run_id: RunId,
    /// `host:pid` of its process if it was still alive (it stops at its next call: fenced).
    pub live_on: Option<String>,
    /// Calls it may have made whose outcome is unknown.
    pub in_doubt: usize,
}

/// End a run for good: status `aborted`, its leases released. A live process of it makes no
/// further call (its intents are fenced) and stops.
pub async fn abort(
    app: &App,
    run_id: &str,
    by: String,
    reason: Option<String>,
) -> Result<Aborted, AppError> {
    let j = app.open_journal()?;
    let r = exact_run(&j, run_id, "abort").await?;
    if r.ended_at.is_some() || r.status.is_finished() && r.status != RunStatus::Failed {
        return Err(AppError::Refused(format!(
            "run {} has already ended ({}); there is nothing to abort",
            r.id, r.status
        )));
    }
    let live_on = match super::lifecycle::liveness(&r, crate::journal::now_ms()) {
        Liveness::Live => r.holder.clone(),
        _ => None,
    };
    let why = format!(
        "aborted by {by}{}",
        reason.map(|r| format!(": {r}")).unwrap_or_default()
    );
    j.set_run_status(&r.id, RunStatus::Aborted, Some(&why), true)
        .await?;
    j.release(&r.id).await?;
    // Calls whose doubt was settled (their effect observed, or made again) are no longer in
    // doubt.
    let settled: Vec<i64> = j
        .events(&r.id)
        .await?
        .iter()
        .filter(|e| e.kind == "settled")
        .filter_map(|e| e.intent_seq)
        .collect();
    let in_doubt = j
        .open_intents(&r.id)
        .await?
        .iter()
        .filter(|e| !settled.contains(&e.seq))
        .count();
    Ok(Aborted {
        in_doubt,
        run_id: r.id,
        live_on,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_show_removed_and_added_lines() {
        let d = line_diff("a\nb\nc\n", "a\nx\nc\nd\n");
        assert_eq!(d, "  - 2: b\n  + 2: x\n  + 4: d");
        assert_eq!(line_diff("same", "same"), "");
    }
}
