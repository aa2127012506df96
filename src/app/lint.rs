//! `failover lint`: the runbook bound for an environment, judged by `lint` for the failure of
//! one region (given, the runbook's `failed_region`, else the environment's own region), each
//! finding placed at its step in the runbook file.

use super::load::load_bound;
use super::{App, AppError};
use crate::lint::{lint, Finding};
use crate::runbook::bind::RunContext;
use crate::status::RunMode;
use crate::types::RunId;
use serde::Serialize;
use std::path::Path;

/// What `lint` found, and for which failure.
#[derive(Clone, Debug, Serialize)]
pub struct LintReport {
    pub runbook: String,
    pub file: String,
    pub environment: String,
    pub failed_region: String,
    /// How the failed region was chosen.
    pub assumed: String,
    pub findings: Vec<Placed>,
}

/// A finding at its step's place in the runbook file.
#[derive(Clone, Debug, Serialize)]
pub struct Placed {
    pub line: usize,
    pub col: usize,
    #[serde(flatten)]
    pub finding: Finding,
}

/// Lint `runbook` bound for `env` with `params` against the failure of `failed_region` (else
/// the runbook's `failed_region` parameter, else the environment's region).
pub fn run_lint(
    app: &App,
    runbook: &Path,
    env: &str,
    params: &[(String, String)],
    failed_region: Option<&str>,
) -> Result<LintReport, AppError> {
    let ctx = RunContext {
        run_id: RunId::new("lint"),
        initiator: "lint".into(),
        mode: RunMode::Plan,
    };
    if let Some(r) = failed_region.filter(|r| !looks_like_region(r)) {
        return Err(AppError::Input(format!(
            "error: --failed-region `{r}` is not an AWS region name\n  hint: e.g. us-east-1, eu-west-1, ap-southeast-2"
        )));
    }
    let b = load_bound(&app.config_dir, runbook, env, params, &ctx)?;
    let from_param = b.params.get("failed_region").filter(|v| !v.is_empty());
    let (region, assumed) = match (failed_region, from_param) {
        (Some(r), _) => (r.to_string(), "--failed-region".to_string()),
        (None, Some(r)) => (r.clone(), "the runbook's `failed_region` parameter".into()),
        (None, None) => (
            b.loaded.env.region.clone(),
            "the environment's own region (choose another with --failed-region)".into(),
        ),
    };
    let src = &b.runbook.source;
    let findings = lint(&b.steps, &b.loaded.env, &region)
        .into_iter()
        .map(|f| {
            let at = b
                .runbook
                .steps
                .iter()
                .find(|s| s.id.value == f.step)
                .map(|s| src.line_col(s.id.span.start))
                .unwrap_or((0, 0));
            Placed {
                line: at.0,
                col: at.1,
                finding: f,
            }
        })
        .collect();
    Ok(LintReport {
        runbook: b.runbook.name.clone(),
        file: runbook.display().to_string(),
        environment: b.loaded.env.name.clone(),
        failed_region: region,
        assumed,
        findings,
    })
}

/// `us-east-1`, `ap-southeast-2`, `us-gov-west-1`: letters, dashes, a final number.
fn looks_like_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}
