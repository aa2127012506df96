//! Readiness checks: for each runbook that takes a zone and binds to an environment, for each
//! zone of that environment, the dry-run plan of the runbook for that zone (`run::plan`, the
//! one planner, read-only calls only) judged by the pure `readiness` verdict; and, for an
//! environment of several regions whose `[health.region_trigger]` names a runbook, the plan of
//! that runbook for its home region failing, with the parameters the watcher would give it.
//! The service runs them on an interval (`serve::readiness`).

use super::load::load_env;
use super::{App, AppError};
use crate::readiness::{self, Cause, Verdict};
use crate::runbook::{bind, ParamKind, Runbook};
use std::path::{Path, PathBuf};

/// One check: would `runbook` succeed on `env` if `target` (a zone, or a region) failed?
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// The runbook's name (as runs record it).
    pub runbook: String,
    pub file: PathBuf,
    pub env: String,
    /// The zone, or for a region runbook the region, whose failure the check supposes.
    pub target: String,
    /// `zone` or `region`.
    pub scope: &'static str,
    /// The runbook's parameter set to `target`, and the other parameters it is given.
    pub param: String,
    pub params: Vec<(String, String)>,
}

/// The checks readiness covers among `runbooks` on `env`: every runbook with a zone
/// parameter (`zone` or `zones`) whose other required parameters have defaults and that binds
/// to the environment without a problem, once per zone of the environment. An environment
/// that does not load has no check.
pub fn checks(app: &App, runbooks: &[PathBuf], env: &str) -> Vec<Check> {
    let Ok(loaded) = load_env(&app.config_dir, env) else {
        return vec![];
    };
    let mut out = vec![];
    for file in runbooks {
        let Ok(rb) = Runbook::load(file) else {
            continue;
        };
        let Some(zone_param) = zone_param(&rb) else {
            continue;
        };
        if !bind::check_against_env(&rb, &loaded.env).is_empty() {
            continue;
        }
        for zone in &loaded.env.zones {
            out.push(Check {
                runbook: rb.name.clone(),
                file: file.clone(),
                env: env.to_string(),
                target: zone.to_string(),
                scope: "zone",
                param: zone_param.clone(),
                params: vec![],
            });
        }
    }
    out.extend(region_check(&loaded.env));
    out
}

/// The region runbook the watcher would start if the environment's home region failed
/// (`[health.region_trigger]`: its runbook, its region parameter and its other parameters),
/// when the environment has another region to move to. A runbook that does not load or bind
/// is checked all the same: its plan fails, and the check is red (`invalid`) with the reason,
/// as the watcher would refuse it at 03:00.
fn region_check(env: &crate::env::Environment) -> Option<Check> {
    let tr = env.health.as_ref()?.region_trigger.as_ref()?;
    if env.regions.len() < 2 {
        return None;
    }
    let path = Path::new(&tr.runbook);
    let runbook = match Runbook::load(path) {
        Ok(rb) => rb.name,
        Err(_) => path
            .file_stem()
            .map_or(tr.runbook.clone(), |s| s.to_string_lossy().into_owned()),
    };
    let mut params: Vec<(String, String)> = tr
        .params
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(r) = &tr.reason_param {
        params.push((r.clone(), "readiness check".into()));
    }
    Some(Check {
        runbook,
        file: PathBuf::from(&tr.runbook),
        env: env.name.clone(),
        target: env.region.clone(),
        scope: "region",
        param: tr.zone_param.clone(),
        params,
    })
}

/// The runbook's zone parameter, when it has one and no other parameter lacks a value.
fn zone_param(rb: &Runbook) -> Option<String> {
    let zone = rb
        .params
        .iter()
        .find(|p| matches!(p.kind, ParamKind::Zone | ParamKind::Zones))?;
    let others_ok = rb
        .params
        .iter()
        .filter(|p| p.name != zone.name)
        .all(|p| !p.required || p.default.is_some());
    others_ok.then(|| zone.name.clone())
}

/// The verdict of one check: its dry-run plan now, or why it could not be made.
pub async fn check(app: &App, c: &Check) -> Verdict {
    let mut params = vec![(c.param.clone(), c.target.clone())];
    params.extend(c.params.iter().cloned());
    match super::run::plan(app, &c.file, &c.env, &params).await {
        Ok(p) => readiness::of_plan(&p.plan),
        Err(AppError::Cloud { error, .. }) => {
            readiness::of_read_error(error.kind, &error.to_string())
        }
        Err(e @ (AppError::Invalid(_) | AppError::Input(_))) => {
            readiness::of_cause(Cause::Invalid, &e.to_string())
        }
        Err(e) => readiness::of_cause(Cause::Unreachable, &e.to_string()),
    }
}
