//! The runs API: start (plan or run), list, read, approve, reject, abort, resume, roll back,
//! and a run's event stream. Each handler checks the caller's role, reads its JSON body, calls
//! one use case of `app` (the same the CLI calls) and returns what it returned, as JSON.

use super::auth::{Caller, StreamCaller};
use super::config::Role;
use super::error::ApiError;
use super::events::{self, Follow};
use super::service::Service;
use crate::app::{self, App};
use crate::diag::Diagnostic;
use crate::engine::{Stop, StopKind};
use crate::types::RunId;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

type Svc = State<Arc<Service>>;

/// The body as `T`; an empty body is `{}`. Bad JSON: a 400 with `request body:LINE:COL`.
pub fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(text).map_err(|e| {
        let full = e.to_string();
        let message = full
            .rsplit_once(" at line ")
            .map_or(full.as_str(), |(m, _)| m)
            .to_string();
        ApiError::bad_request(Diagnostic {
            file: "request body".into(),
            line: e.line(),
            col: e.column(),
            message: format!("invalid JSON: {message}"),
            hint: Some(
                "the body is a JSON object; /v1/openapi.json describes every request".into(),
            ),
        })
    })
}

/// Run a use case that may block its thread (a simulated environment runs on a runtime of
/// its own) away from the service's workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce(tokio::runtime::Handle) -> Result<T, app::AppError> + Send + 'static,
) -> Result<T, ApiError> {
    let h = tokio::runtime::Handle::current();
    match tokio::task::spawn_blocking(move || f(h)).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => Err(app::AppError::Runtime(format!("the task failed: {e}")).into()),
    }
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Mode {
    #[default]
    Plan,
    Run,
    /// `failover drill`: pre-check, the run, verification, failback (unless `no_failback`).
    Drill,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartRun {
    runbook: String,
    env: String,
    #[serde(default)]
    params: BTreeMap<String, Value>,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    require_approval: bool,
    /// Drill only: leave the environment as the runbook left it.
    #[serde(default)]
    no_failback: bool,
    /// Drill only: stop the run and fail back when it has taken this long (e.g. "30m").
    #[serde(default)]
    max_duration: Option<String>,
    /// Drill only: `[health]` probes whose failure stops the run and fails back.
    #[serde(default)]
    stop_on: Vec<String>,
}

/// Parameters as the CLI's `-p name=value`: strings as they are, lists joined with commas.
fn params_of(p: &BTreeMap<String, Value>) -> Vec<(String, String)> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    p.iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
                v => text(v),
            };
            (k.clone(), v)
        })
        .collect()
}

/// `POST /v1/runs`: `mode = "plan"` answers the dry run; `mode = "run"` starts the run in the
/// service and answers 202 once it is recorded (its leases taken); `mode = "drill"` starts a
/// drill (its phases are notes of the drill run; its failback is a run of its own).
pub async fn start(State(s): Svc, caller: Caller, bytes: Bytes) -> Result<Response, ApiError> {
    let req: StartRun = body(&bytes)?;
    caller.require(if req.mode == Mode::Plan {
        Role::Viewer
    } else {
        Role::Operator
    })?;
    if req.mode != Mode::Drill
        && (req.no_failback || req.max_duration.is_some() || !req.stop_on.is_empty())
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            "no_failback, max_duration and stop_on are drill settings: send them with mode = \"drill\"",
        ));
    }
    let path = s.catalog.resolve(&req.runbook)?;
    known_env(&s.app, &req.env)?;
    let params = params_of(&req.params);
    if req.mode == Mode::Plan {
        let (app, env) = (s.app.clone(), req.env.clone());
        let p = blocking(move |h| h.block_on(app::run::plan(&app, &path, &env, &params))).await?;
        let text = crate::report::render_plan(&p.plan, &p.params);
        let v = json!({"plan": p.plan, "params": p.params, "mutating_calls": p.plan.mutating_calls(), "problems": p.plan.problems(), "calls": p.calls, "text": text});
        return Ok(Json(v).into_response());
    }
    s.refuse_if_stopping()?;
    let stop = Stop::default();
    if req.mode == Mode::Drill {
        let max_duration = match &req.max_duration {
            None => None,
            Some(d) => Some(humantime::parse_duration(d).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    format!("max_duration: `{d}` is not a duration ({e}); e.g. 30m, 1h30m"),
                )
            })?),
        };
        if max_duration.is_some_and(|d| d > crate::limits::MAX_DURATION || d.is_zero()) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                "max_duration must be more than 0 and at most 7 days",
            ));
        }
        let order = app::drill::DrillOrder {
            runbook: path,
            env: req.env,
            params,
            by: Some(caller.name),
            no_failback: req.no_failback,
            max_duration,
            stop_on: req.stop_on,
            stop: stop.clone(),
            run_id: None,
            on_phase: None,
        };
        let prepared = app::drill::prepare_drill(&s.app, order)?;
        let id = prepared.run_id().clone();
        let app = s.app.clone();
        let work = move |h: tokio::runtime::Handle, rep| {
            h.block_on(app::drill::drill(&app, prepared, rep))
        };
        s.runs.launch(id.clone(), stop, Box::new(work)).await?;
        return accepted(&s.app, &id, json!({})).await;
    }
    let order = app::run::RunOrder {
        runbook: path,
        env: req.env,
        params,
        by: Some(caller.name),
        require_approval: req.require_approval,
        run_id: None,
        stop: stop.clone(),
    };
    let prepared = app::run::prepare_run(&s.app, order)?;
    let id = prepared.run_id().clone();
    let app = s.app.clone();
    let work = move |h: tokio::runtime::Handle, rep| h.block_on(app::run::run(&app, prepared, rep));
    s.runs.launch(id.clone(), stop, Box::new(work)).await?;
    accepted(&s.app, &id, json!({})).await
}

/// The environment is one of the config directory's files (a request never names a path):
/// else the CLI's own diagnostic for an environment that does not exist.
pub fn known_env(app: &App, name: &str) -> Result<(), ApiError> {
    let known = crate::env::Environment::list(&app.config_dir);
    if known.iter().any(|k| k == name) {
        return Ok(());
    }
    let hint = match crate::diag::did_you_mean(name, known.iter().map(|s| s.as_str())) {
        Some(s) => format!(
            "did you mean `{s}`? known environments: {}",
            known.join(", ")
        ),
        None => format!("known environments: {}", known.join(", ")),
    };
    Err(ApiError::bad_request(Diagnostic {
        file: crate::env::Environment::path_for(&app.config_dir, name)
            .display()
            .to_string(),
        line: 0,
        col: 0,
        message: format!("environment `{name}` does not exist"),
        hint: Some(hint),
    }))
}

/// 202 with where to follow the run.
async fn accepted(app: &App, id: &RunId, extra: Value) -> Result<Response, ApiError> {
    let status = app
        .open_journal()?
        .run_exact(id)
        .await
        .map(|r| r.status.to_string())
        .unwrap_or_else(|_| "running".into());
    let mut v = json!({
        "run_id": id,
        "status": status,
        "run": format!("/v1/runs/{id}"),
        "events": format!("/v1/runs/{id}/events"),
    });
    if let (Some(o), Value::Object(more)) = (v.as_object_mut(), extra) {
        o.extend(more);
    }
    Ok((StatusCode::ACCEPTED, Json(v)).into_response())
}

#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<usize>,
}

/// `GET /v1/runs`: the newest runs, each with whether its process is alive.
pub async fn list(
    State(s): Svc,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let here = s.runs.ids();
    let runs = app::inspect::runs(&s.app, q.limit.unwrap_or(50).min(1000)).await?;
    let v: Vec<Value> = runs
        .into_iter()
        .map(|(r, l)| {
            json!({"id": r.id, "runbook": r.runbook, "environment": r.environment, "mode": r.mode,
                "initiator": r.initiator, "params": r.params, "status": r.status, "started_at": r.started_at,
                "ended_at": r.ended_at, "error": r.error, "holder": r.holder, "liveness": l,
                "in_this_service": here.contains(&r.id)})
        })
        .collect();
    Ok(Json(json!({ "runs": v })))
}

/// `GET /v1/runs/{id}`: the run, its steps, its timeline (every event), its calls with their
/// outcomes, the calls in doubt, and `text`: what `failover show` prints for it.
pub async fn read(
    State(s): Svc,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let d = app::inspect::show(&s.app, &id).await?;
    let here = s.runs.ids().contains(&d.run.id);
    let text = crate::report::render_show(&d.run, d.liveness, &d.steps, &d.events, &d.open_intents);
    Ok(Json(json!({
        "run": d.run, "liveness": d.liveness, "in_this_service": here, "steps": d.steps,
        "calls": d.calls(), "in_doubt": d.in_doubt(), "timeline": d.events, "text": text,
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Verdict {
    step: Option<String>,
    comment: Option<String>,
}

/// `POST /v1/runs/{id}/approve`: approve the gate the run waits on (or `step`) as the caller.
pub async fn approve(
    State(s): Svc,
    caller: Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Approver)?;
    let v: Verdict = body(&bytes)?;
    let a = app::approve::approve(&s.app, &id, v.step.as_deref(), caller.name.clone()).await?;
    if let Some(c) = v.comment.as_deref().filter(|c| !c.trim().is_empty()) {
        app::approve::comment(&s.app, &a.run_id, &a.step_id, &a.by, "approved", c).await?;
    }
    Ok(Json(json!({
        "run_id": a.run_id, "step": a.step_id, "by": a.by, "approvals": a.count,
        "required": a.required, "released": a.released(),
    })))
}

/// `POST /v1/runs/{id}/reject`: reject the gate with a comment: the run is aborted.
pub async fn reject(
    State(s): Svc,
    caller: Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Approver)?;
    let v: Verdict = body(&bytes)?;
    let comment = v.comment.unwrap_or_default();
    let r = app::approve::reject(&s.app, &id, v.step.as_deref(), caller.name, comment).await?;
    s.runs
        .stop(&r.run_id, StopKind::Fenced, "rejected at its approval gate");
    Ok(Json(json!({
        "run_id": r.run_id, "step": r.step_id, "by": r.by, "status": "aborted",
        "in_doubt": r.aborted.in_doubt,
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AbortBody {
    reason: Option<String>,
}

/// `POST /v1/runs/{id}/abort`: end the run for good (its process stops at its next call).
pub async fn abort(
    State(s): Svc,
    caller: Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Operator)?;
    let b: AbortBody = body(&bytes)?;
    let a = app::resume::abort(&s.app, &id, caller.name, b.reason).await?;
    let here = s.runs.stop(&a.run_id, StopKind::Fenced, "aborted");
    Ok(Json(json!({
        "run_id": a.run_id, "status": "aborted", "live_on": a.live_on,
        "stopped_in_this_service": here, "in_doubt": a.in_doubt,
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ResumeBody {
    #[serde(default)]
    allow_changed_runbook: bool,
}

/// `POST /v1/runs/{id}/resume`: continue a run that stopped, in the service (202).
pub async fn resume(
    State(s): Svc,
    caller: Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    caller.require(Role::Operator)?;
    let b: ResumeBody = body(&bytes)?;
    s.refuse_if_stopping()?;
    let stop = Stop::default();
    let order = app::resume::ResumeOrder {
        run_id: id,
        by: caller.name,
        allow_changed_runbook: b.allow_changed_runbook,
        stop: stop.clone(),
    };
    let prepared = app::resume::prepare_resume(&s.app, order).await?;
    let (warnings, finished) = (prepared.warnings.clone(), prepared.finished_steps());
    let rid = prepared.run_id().clone();
    let app = s.app.clone();
    let work =
        move |h: tokio::runtime::Handle, rep| h.block_on(app::resume::resume(&app, prepared, rep));
    s.runs.launch(rid.clone(), stop, Box::new(work)).await?;
    accepted(
        &s.app,
        &rid,
        json!({"warnings": warnings, "finished_steps": finished}),
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    force: bool,
}

/// `POST /v1/runs/{id}/rollback`: restore what the run changed (a new run, 202), or with
/// `dry_run` the plan of it (200).
pub async fn rollback(
    State(s): Svc,
    caller: Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    caller.require(Role::Operator)?;
    let b: RollbackBody = body(&bytes)?;
    let stop = Stop::default();
    let order = app::rollback::RollbackOrder {
        run_id: id,
        by: caller.name,
        force: b.force,
        stop: stop.clone(),
    };
    let prepared = app::rollback::prepare_rollback(&s.app, order).await?;
    let warnings = prepared.warnings.clone();
    if b.dry_run {
        let plan = blocking(move |h| h.block_on(app::rollback::plan_rollback(&prepared))).await?;
        let v = json!({"plan": plan, "mutating_calls": plan.mutating_calls(), "problems": plan.problems(), "warnings": warnings});
        return Ok(Json(v).into_response());
    }
    s.refuse_if_stopping()?;
    let rid = prepared.run_id().clone();
    let app = s.app.clone();
    let work = move |h: tokio::runtime::Handle, rep| {
        h.block_on(app::rollback::rollback(&app, prepared, rep))
    };
    s.runs.launch(rid.clone(), stop, Box::new(work)).await?;
    accepted(&s.app, &rid, json!({"warnings": warnings})).await
}

#[derive(Deserialize)]
pub struct EventsQuery {
    since: Option<i64>,
}

/// Where a stream starts: `?since=SEQ`, else `Last-Event-ID` (a reconnecting client), else
/// `default`.
fn since(q: &EventsQuery, headers: &HeaderMap, default: i64) -> i64 {
    q.since
        .or_else(|| {
            headers
                .get("last-event-id")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(default)
}

/// `GET /v1/runs/{id}/events`: the run's events from its first (or after `since`) as they
/// are written; ends after the run ends.
pub async fn run_events(
    State(s): Svc,
    StreamCaller(caller): StreamCaller,
    Path(id): Path<String>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    let run = s
        .app
        .open_journal()?
        .run(&id)
        .await
        .map_err(app::AppError::from)?;
    let follow = Follow {
        run: Some(run.id),
        since: since(&q, &headers, 0),
    };
    Ok(events::stream(s.feed.clone(), follow, s.shutdown.clone())
        .await
        .into_response())
}

/// `GET /v1/events`: every run's events as they are written (from now, or after `since`).
pub async fn all_events(
    State(s): Svc,
    StreamCaller(caller): StreamCaller,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    let follow = Follow {
        run: None,
        since: since(&q, &headers, s.feed.last_seq()),
    };
    Ok(events::stream(s.feed.clone(), follow, s.shutdown.clone())
        .await
        .into_response())
}
