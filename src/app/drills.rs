//! `failover drills`: the drill schedules of the environments (`[[drills]]`), their last
//! results and next slots; [`run_due`] runs the drills that are due (called by `drills run-due`
//! and on a timer by `failover serve`), records missed ones, and notifies missed and failed
//! drills.
//!
//! Each slot is claimed once, atomically, in the journal: a run of mode `drill_slot` whose id
//! names the schedule and the slot (`slot-ENV-NAME-YYYYMMDDTHHMMSSZ`). The journal refuses a
//! second run with the same id, so two `run-due` at once start one drill. The decision of
//! what is due is the pure `schedule::decide`.

use super::drill::{drill, prepare_drill, DrillOrder};
use super::load::load_env;
use super::record::{session_record, RunHeader};
use super::run::MakeReporter;
use super::{App, AppError};
use crate::cloud::{HttpClient, HttpRequest};
use crate::engine::Stop;
use crate::env::Environment;
use crate::progress::{Reporter, Silent};
use crate::schedule::{self, decide, DrillSchedule, Due};
use crate::status::{RunMode, RunStatus};
use crate::store::{RunRecord, Store};
use crate::types::RunId;
use serde::Serialize;
use std::sync::Arc;

/// One schedule as `failover drills` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ScheduleStatus {
    pub environment: String,
    pub schedule: DrillSchedule,
    /// The most recent slots handled, newest first (at most 5).
    pub last: Vec<SlotResult>,
    /// The next slot (epoch ms) and in the schedule's zone.
    pub next: Option<i64>,
    pub next_local: Option<String>,
    /// The blackout now is in, if any.
    pub blackout_now: Option<String>,
}

/// A handled slot, from the journal.
#[derive(Clone, Debug, Serialize)]
pub struct SlotResult {
    pub slot: i64,
    pub slot_local: String,
    /// `succeeded`, `failed`, `aborted`, `interrupted`, `running` or `missed`.
    pub outcome: String,
    pub drill_run: Option<String>,
    pub why: Option<String>,
}

/// What `run_due` did about one slot.
#[derive(Clone, Debug, Serialize)]
pub struct DueOutcome {
    pub environment: String,
    pub schedule: String,
    pub slot: i64,
    pub slot_local: String,
    /// `ran`, `missed`, `claimed_elsewhere` or `failed_to_start`.
    pub what: String,
    pub drill_run: Option<String>,
    pub status: Option<RunStatus>,
    pub why: Option<String>,
    /// The notification could not be sent (why).
    pub notify_error: Option<String>,
}

/// The environments to look at: one, or every file of the config directory that has drills.
fn environments(app: &App, only: Option<&str>) -> Result<Vec<Environment>, AppError> {
    if let Some(e) = only {
        return Ok(vec![load_env(&app.config_dir, e)?.env]);
    }
    let mut out = vec![];
    for name in Environment::list(&app.config_dir) {
        // Files that are not environments (serve.toml) or do not parse have no schedule to run
        // here; `failover validate` reports what is wrong with them.
        if let Ok(l) = load_env(&app.config_dir, &name) {
            if !l.env.drills.is_empty() {
                out.push(l.env);
            }
        }
    }
    Ok(out)
}

fn slot_id(env: &str, name: &str, slot: i64) -> RunId {
    let (y, mo, d, h, mi, s) = crate::timefmt::civil(slot.div_euclid(1000));
    RunId::new(format!(
        "slot-{env}-{name}-{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z"
    ))
}

/// The slot records of one schedule, newest first.
async fn slots_of(j: &Arc<dyn Store>, env: &str, name: &str) -> Result<Vec<RunRecord>, AppError> {
    Ok(j.runs(5000)
        .await?
        .into_iter()
        .filter(|r| r.mode == RunMode::DrillSlot && r.environment == env)
        .filter(|r| r.params.get("schedule").and_then(|v| v.as_str()) == Some(name))
        .collect())
}

fn slot_of(r: &RunRecord) -> i64 {
    r.params.get("slot").and_then(|v| v.as_i64()).unwrap_or(0)
}

fn result_of(s: &DrillSchedule, r: &RunRecord) -> SlotResult {
    let missed = r.params.get("missed").and_then(|v| v.as_bool()) == Some(true);
    SlotResult {
        slot: slot_of(r),
        slot_local: schedule::local(s, slot_of(r)),
        outcome: if missed {
            "missed".into()
        } else {
            r.status.to_string()
        },
        drill_run: r
            .params
            .get("drill_run")
            .and_then(|v| v.as_str())
            .map(String::from),
        why: r
            .error
            .as_deref()
            .map(|e| e.strip_prefix("missed: ").unwrap_or(e).to_string()),
    }
}

/// Every schedule, its last results and its next slot.
pub async fn list(
    app: &App,
    only: Option<&str>,
    now: i64,
) -> Result<Vec<ScheduleStatus>, AppError> {
    let j = app.open_journal()?;
    let mut out = vec![];
    for env in environments(app, only)? {
        for s in &env.drills {
            let mut last: Vec<SlotResult> = vec![];
            for r in slots_of(&j, &env.name, &s.name).await?.iter().take(5) {
                let mut res = result_of(s, r);
                if let Some(id) = &res.drill_run {
                    // The slot follows the drill; the drill run has the last word.
                    if let Ok(d) = j.run_exact(&RunId::new(id.clone())).await {
                        res.outcome = d.status.to_string();
                        res.why = d.error.or(res.why);
                    }
                }
                last.push(res);
            }
            let next = s.next_after(now);
            out.push(ScheduleStatus {
                environment: env.name.clone(),
                schedule: s.clone(),
                last,
                next,
                next_local: next.map(|n| schedule::local(s, n)),
                blackout_now: s.blackout_at(now),
            });
        }
    }
    Ok(out)
}

/// Run the drills due at `now` (epoch ms) in one environment or all, one after the other;
/// record missed slots; notify missed and failed drills. `on` is told each outcome as it comes.
pub async fn run_due(
    app: &App,
    only: Option<&str>,
    now: i64,
    stop: &Stop,
    on: &mut (dyn FnMut(&DueOutcome) + Send),
) -> Result<Vec<DueOutcome>, AppError> {
    let j = app.open_journal()?;
    let mut out = vec![];
    for env in environments(app, only)? {
        for s in &env.drills {
            let handled: Vec<i64> = slots_of(&j, &env.name, &s.name)
                .await?
                .iter()
                .map(slot_of)
                .collect();
            for due in decide(s, &handled, now) {
                if stop.requested().is_some() {
                    return Ok(out);
                }
                let o = handle(app, &j, (&env, s), due, stop).await?;
                on(&o);
                out.push(o);
            }
        }
    }
    Ok(out)
}

/// Claim the slot (or learn another process did), then run or record it.
async fn handle(
    app: &App,
    j: &Arc<dyn Store>,
    (env, s): (&Environment, &DrillSchedule),
    due: Due,
    stop: &Stop,
) -> Result<DueOutcome, AppError> {
    let (slot, missed) = match &due {
        Due::Run { slot } => (*slot, None),
        Due::Missed { slot, why } => (*slot, Some(why.clone())),
    };
    let id = slot_id(&env.name, &s.name, slot);
    let mut o = DueOutcome {
        environment: env.name.clone(),
        schedule: s.name.clone(),
        slot,
        slot_local: schedule::local(s, slot),
        what: String::new(),
        drill_run: None,
        status: None,
        why: missed.clone(),
        notify_error: None,
    };
    let header = RunHeader {
        id: id.clone(),
        runbook: format!("drill slot {}/{}", env.name, s.name),
        runbook_path: s.runbook.clone(),
        runbook_sha256: "-".into(),
        environment: env.name.clone(),
        mode: RunMode::DrillSlot,
        initiator: format!("schedule:{}/{}", env.name, s.name),
        params: serde_json::json!({"schedule": s.name, "slot": slot, "slot_local": o.slot_local, "cron": s.cron, "missed": missed.is_some()}),
        of_run: None,
    };
    let mut rec = session_record(&header, j.now_ms());
    rec.status = RunStatus::Running;
    if let Err(e) = j.create_run(&rec).await {
        if j.run_exact(&id).await.is_ok() {
            o.what = "claimed_elsewhere".into();
            return Ok(o);
        }
        return Err(e.into());
    }
    if let Some(why) = missed {
        o.what = "missed".into();
        j.set_run_status(
            &id,
            RunStatus::Failed,
            Some(&format!("missed: {why}")),
            true,
        )
        .await?;
        o.notify_error = notify(
            env,
            s,
            &format!(
                "failover: drill `{}` on `{}` was missed (slot {}): {why}",
                s.name, env.name, o.slot_local
            ),
        )
        .await;
        return Ok(o);
    }
    run_slot(app, j, (env, s), (&id, stop), o).await
}

async fn run_slot(
    app: &App,
    j: &Arc<dyn Store>,
    (env, s): (&Environment, &DrillSchedule),
    (slot_run, stop): (&RunId, &Stop),
    mut o: DueOutcome,
) -> Result<DueOutcome, AppError> {
    let order = DrillOrder {
        runbook: s.runbook.clone().into(),
        env: env.name.clone(),
        params: s.params.clone().into_iter().collect(),
        by: Some(format!("schedule:{}/{}", env.name, s.name)),
        no_failback: s.no_failback,
        max_duration: s.max_duration,
        stop_on: s.stop_on.clone(),
        stop: stop.clone(),
        run_id: None,
        on_phase: None,
    };
    let silent: MakeReporter = Box::new(|_| Arc::new(Silent) as Arc<dyn Reporter>);
    let result = match prepare_drill(app, order) {
        Ok(p) => {
            let _ = j
                .note(
                    slot_run,
                    None,
                    "drill_started",
                    serde_json::json!({"run": p.run_id()}),
                )
                .await;
            o.drill_run = Some(p.run_id().to_string());
            drill(app, p, silent).await.map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    let (status, why) = match &result {
        Ok(r) => (r.status, r.error.clone()),
        Err(e) => (
            RunStatus::Failed,
            Some(format!("the drill did not start: {e}")),
        ),
    };
    o.what = if result.is_ok() {
        "ran"
    } else {
        "failed_to_start"
    }
    .into();
    o.status = Some(status);
    o.why = why.clone();
    let _ = j
        .note(
            slot_run,
            None,
            "drill_result",
            serde_json::json!({"run": o.drill_run, "status": status, "error": why}),
        )
        .await;
    j.set_run_status(slot_run, status, why.as_deref(), true)
        .await?;
    if status != RunStatus::Succeeded {
        let run = o
            .drill_run
            .as_deref()
            .map(|r| format!(" (failover report {r})"))
            .unwrap_or_default();
        let text = format!(
            "failover: drill `{}` on `{}` (slot {}) ended {status}{run}: {}",
            s.name,
            env.name,
            o.slot_local,
            why.as_deref().unwrap_or("-")
        );
        o.notify_error = notify(env, s, &text).await;
    }
    Ok(o)
}

/// Tell the drill's endpoint (else `[audit] notify`); why it could not, if it could not.
async fn notify(env: &Environment, s: &DrillSchedule, text: &str) -> Option<String> {
    tracing::warn!("{text}");
    let name = s.notify.as_ref().or(env.audit.notify.as_ref())?;
    let ep = env.endpoints.get(name)?;
    let resolve = crate::runbook::template::resolve_secrets;
    let mut req = HttpRequest {
        method: ep.method.clone(),
        url: resolve(&ep.url).ok()?,
        headers: vec![],
        body: Some(serde_json::json!({"text": text}).to_string()),
        timeout: ep.timeout,
    };
    for (k, v) in &ep.headers {
        req.headers.push((k.clone(), resolve(v).ok()?));
    }
    let http = match crate::cloud::http::ReqwestHttp::new() {
        Ok(h) => h,
        Err(e) => return Some(e.to_string()),
    };
    match http.send(&req).await {
        Ok(r) if (200..300).contains(&r.status) => None,
        Ok(r) => Some(format!("endpoint `{name}` answered HTTP {}", r.status)),
        Err(e) => Some(format!("endpoint `{name}`: {e}")),
    }
}
