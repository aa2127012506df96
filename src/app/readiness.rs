//! Readiness checks: for each runbook that takes a zone and binds to an environment, for each
//! zone of that environment, the dry-run plan of the runbook for that zone (`run::plan`, the
//! one planner, read-only calls only) judged by the pure `readiness` verdict. The service runs
//! them on an interval (`serve::readiness`).

use super::load::load_env;
use super::{App, AppError};
use crate::readiness::{self, Cause, Verdict};
use crate::runbook::{bind, ParamKind, Runbook};
use crate::types::Zone;
use std::path::PathBuf;

/// One check: would `runbook` succeed on `env` if `zone` failed?
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// The runbook's name (as runs record it).
    pub runbook: String,
    pub file: PathBuf,
    pub env: String,
    pub zone: Zone,
    /// The runbook's zone parameter, set to `zone`.
    pub zone_param: String,
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
                zone: zone.clone(),
                zone_param: zone_param.clone(),
            });
        }
    }
    out
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
    let params = [(c.zone_param.clone(), c.zone.to_string())];
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
