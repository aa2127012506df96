//! The read-only API: runbooks, validation, environments, health, the traffic ladder, leases,
//! the OpenAPI document, `/metrics` and the service's own liveness.

use super::api::body;
use super::auth::Caller;
use super::config::Role;
use super::error::ApiError;
use super::service::Service;
use crate::app::{self, load::load_env};
use crate::env::Environment;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

type Svc = State<Arc<Service>>;

/// `GET /v1/runbooks`: every runbook of the service's directory, its parameters, or why it
/// does not load.
pub async fn runbooks(State(s): Svc, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let v: Vec<Value> = s
        .catalog
        .entries()
        .into_iter()
        .map(|e| match e.runbook {
            Ok(rb) => json!({
                "id": e.stem, "name": rb.name, "file": e.file, "description": rb.description,
                "params": rb.params.iter().map(|p| json!({"name": p.name, "type": p.kind,
                    "description": p.description, "default": p.default, "required": p.required}))
                    .collect::<Vec<_>>(),
                "steps": rb.steps.len(), "loads": true,
            }),
            Err(d) => json!({"id": e.stem, "file": e.file, "loads": false, "diagnostics": d.0}),
        })
        .collect();
    Ok(Json(json!({"dir": s.catalog.dir, "runbooks": v})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ValidateBody {
    /// Runbook names (default: every runbook of the directory).
    runbooks: Option<Vec<String>>,
    /// Only against this environment (default: every one).
    env: Option<String>,
}

/// `POST /v1/validate`: what `failover validate` says, as JSON (200 whether or not it is valid).
pub async fn validate(
    State(s): Svc,
    caller: Caller,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let b: ValidateBody = body(&bytes)?;
    let files = match &b.runbooks {
        Some(names) => names
            .iter()
            .map(|n| s.catalog.resolve(n))
            .collect::<Result<Vec<_>, _>>()?,
        None => s.catalog.entries().into_iter().map(|e| e.file).collect(),
    };
    if let Some(env) = &b.env {
        super::api::known_env(&s.app, env)?;
    }
    let v = app::inspect::validate(&s.app, &files, b.env.as_deref());
    let text = if v.diagnostics.is_empty() {
        String::new()
    } else {
        v.diagnostics.to_string()
    };
    Ok(Json(json!({
        "ok": v.diagnostics.is_empty(), "runbooks": v.runbooks, "valid": v.valid,
        "drills": v.drills, "broken_drills": v.broken_drills, "triggers": v.triggers,
        "broken_triggers": v.broken_triggers, "environments": v.environments, "not_applicable": v.not_applicable,
        "diagnostics": v.diagnostics.0, "text": text,
    })))
}

/// What the API says of an environment (no secret: endpoints and groups by name only).
fn environment_doc(name: &str, app: &app::App) -> Value {
    match load_env(&app.config_dir, name) {
        Ok(l) => {
            let e = &l.env;
            json!({
                "name": name, "loads": true, "description": e.description, "region": e.region,
                "zones": e.zones, "simulated": l.target.simulated().is_some(),
                "health": e.health.is_some(), "traffic": e.traffic.is_some(),
                "groups": e.groups.keys().collect::<Vec<_>>(),
                "endpoints": e.endpoints.keys().collect::<Vec<_>>(),
            })
        }
        Err(d) => json!({"name": name, "loads": false, "diagnostics": d.0, "text": d.to_string()}),
    }
}

/// `GET /v1/environments`.
pub async fn environments(State(s): Svc, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let v: Vec<Value> = Environment::list(&s.app.config_dir)
        .iter()
        .map(|n| environment_doc(n, &s.app))
        .collect();
    Ok(Json(json!({"environments": v})))
}

fn known_env(s: &Service, name: &str) -> Result<(), ApiError> {
    if Environment::list(&s.app.config_dir)
        .iter()
        .any(|n| n == name)
    {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "error: environment `{name}` does not exist\n  hint: GET /v1/environments lists them"
        )))
    }
}

/// `GET /v1/environments/{env}`: the environment, or its diagnostics.
pub async fn environment(
    State(s): Svc,
    caller: Caller,
    Path(env): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    known_env(&s, &env)?;
    Ok(Json(environment_doc(&env, &s.app)))
}

/// `GET /v1/environments/{env}/health`: zones, probes and their states, from the service's
/// own probes (or one round now, when the service does not probe that environment), and what
/// its watch loop decided (`watch`: null when the environment has no `[health.trigger]`).
pub async fn health(
    State(s): Svc,
    caller: Caller,
    Path(env): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    known_env(&s, &env)?;
    let watch = s.health.watch_state(&env);
    match s.health.latest(&env) {
        Some(Some(r)) => {
            let v = json!({"source": "service", "report": r, "watch": watch});
            return Ok(Json(v).into_response());
        }
        Some(None) => {
            return Err(ApiError::unavailable(format!(
                "error: the service's first probe round of `{env}` has not finished yet\n  hint: try again in a few seconds"
            )))
        }
        None => {}
    }
    let mut last = None;
    let mut on = |_: u32, r: &crate::health::HealthReport| last = Some(r.clone());
    app::inspect::health(&s.app, &env, 1, false, &mut on).await?;
    Ok(Json(json!({"source": "one round now", "report": last, "watch": watch})).into_response())
}

/// `GET /v1/environments/{env}/traffic`: the ladder and which tiers are shed, since when, by
/// which run.
pub async fn traffic(
    State(s): Svc,
    caller: Caller,
    Path(env): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    known_env(&s, &env)?;
    let t = app::inspect::traffic_state(&s.app, &env).await?;
    Ok(Json(crate::report::traffic::state_document(&t)))
}

#[derive(Deserialize)]
pub struct LeasesQuery {
    #[serde(default)]
    all: bool,
}

/// `GET /v1/leases`: live leases (with `all`, released and expired ones too).
pub async fn leases(
    State(s): Svc,
    caller: Caller,
    Query(q): Query<LeasesQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let (leases, now) = app::inspect::locks(&s.app).await?;
    let v: Vec<Value> = leases
        .into_iter()
        .filter(|l| q.all || l.live_at(now))
        .map(|l| {
            let live = l.live_at(now);
            let mut v = serde_json::to_value(&l).unwrap_or_default();
            v["live"] = json!(live);
            v
        })
        .collect();
    Ok(Json(json!({"now": now, "leases": v})))
}

/// `GET /v1/readiness`: would each runbook succeed today if a zone failed, and why not.
pub async fn readiness(State(s): Svc, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(s.readiness.document(None)))
}

/// `GET /v1/readiness/{env}`: the same, for one environment.
pub async fn readiness_of(
    State(s): Svc,
    caller: Caller,
    Path(env): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    known_env(&s, &env)?;
    Ok(Json(s.readiness.document(Some(&env))))
}

/// `GET /v1/whoami`: the caller the token names, and its roles.
pub async fn whoami(caller: Caller) -> Json<Value> {
    Json(json!({"name": caller.name, "roles": caller.roles}))
}

/// `GET /v1/openapi.json` (no token needed).
pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::openapi::DOCUMENT,
    )
        .into_response()
}

/// `GET /metrics` (no token needed: bind the service to an address only the scraper reaches).
pub async fn metrics(State(s): Svc) -> Response {
    let mut shed = vec![];
    for name in Environment::list(&s.app.config_dir) {
        if let Ok(t) = app::inspect::traffic_state(&s.app, &name).await {
            for tier in &t.ladder.tiers {
                let on = t.shed.iter().any(|(n, _, _)| n == &tier.name);
                shed.push((name.clone(), tier.name.clone(), on));
            }
        }
    }
    let text = s.metrics.render(&shed, s.runs.ids().len());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `GET /healthz`: the service answers (no token needed).
pub async fn healthz(State(s): Svc) -> Json<Value> {
    Json(
        json!({"ok": true, "runs_in_progress": s.runs.ids().len(), "journal_seq": s.feed.last_seq()}),
    )
}
