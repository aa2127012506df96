//! `failover iam-policy`: bind the runbook as a run would (same parameters, same enabled
//! steps) and derive the least-privilege policy from the bound steps (`crate::iam`). No AWS
//! call.

use super::load::{initiator, load_bound};
use super::{App, AppError};
use crate::iam::{account_id, policy, Account};
use crate::runbook::bind::RunContext;
use crate::status::RunMode;
use crate::types::RunId;

/// What `failover iam-policy` is asked for.
pub struct PolicyOrder<'a> {
    pub runbook: &'a std::path::Path,
    pub env: &'a str,
    pub params: &'a [(String, String)],
    /// The account id when the environment names none.
    pub account: Option<&'a str>,
    /// Add what the environment's `[health]` probes read (`failover watch`, `serve`).
    pub watch: bool,
}

/// The policy document, and notes for the person (what could not be narrowed, and why).
pub fn iam_policy(
    app: &App,
    order: &PolicyOrder<'_>,
) -> Result<(serde_json::Value, Vec<String>), AppError> {
    let run = RunContext {
        run_id: RunId::new("iam-policy"),
        initiator: initiator(None),
        mode: RunMode::Plan,
    };
    let b = load_bound(
        &app.config_dir,
        order.runbook,
        order.env,
        order.params,
        &run,
    )?;
    let env = &b.loaded.env;
    if let Some(a) = order.account {
        if a.len() != 12 || !a.chars().all(|c| c.is_ascii_digit()) {
            return Err(AppError::Input(format!(
                "error: --account `{a}` is not a 12-digit AWS account id\n  hint: aws sts get-caller-identity --query Account"
            )));
        }
    }
    let (id, note) = account_id(env, order.account);
    let partition = if env.region.starts_with("cn-") {
        "aws-cn"
    } else if env.region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    };
    let account = Account {
        partition,
        region: &env.region,
        id,
    };
    let (doc, mut notes) = policy(env, &b.steps, &account, order.watch);
    notes.extend(note);
    if order.watch && env.health.is_none() {
        notes.push(format!(
            "--watch: environment `{}` has no [health] probes: nothing added for them",
            env.name
        ));
    }
    Ok((doc, notes))
}
