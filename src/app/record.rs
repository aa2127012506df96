//! The one place a run record is built, and redacted before it reaches the journal: a
//! credential-looking header value (`cloud::is_sensitive_header`) in a stored plan or in stored
//! steps is replaced by `cloud::REDACTED`, whatever use case started the run.

use crate::cloud::{is_sensitive_header, REDACTED};
use crate::journal::RunRecord;
use crate::plan::Plan;
use crate::runbook::bind::BoundStep;
use crate::status::{RunMode, RunStatus};
use crate::types::RunId;
use serde_json::Value;

/// What a run is, before it starts.
#[derive(Clone, Debug)]
pub struct RunHeader {
    pub id: RunId,
    /// The runbook's name (`rollback of RUN` for a rollback).
    pub runbook: String,
    pub runbook_path: String,
    pub runbook_sha256: String,
    pub environment: String,
    pub mode: RunMode,
    pub initiator: String,
    pub params: Value,
    /// For a rollback: the run it rolls back.
    pub of_run: Option<RunId>,
}

/// The record of a run that starts now (`started_at`, epoch ms), with its plan and steps
/// redacted.
pub fn run_record(h: &RunHeader, started_at: i64, plan: &Plan, steps: &[BoundStep]) -> RunRecord {
    RunRecord {
        id: h.id.clone(),
        runbook: h.runbook.clone(),
        runbook_path: h.runbook_path.clone(),
        runbook_sha256: h.runbook_sha256.clone(),
        environment: h.environment.clone(),
        mode: h.mode,
        initiator: h.initiator.clone(),
        params: h.params.clone(),
        status: RunStatus::Running,
        started_at,
        ended_at: None,
        error: None,
        plan: redact(serde_json::to_value(plan).unwrap_or_default()),
        steps: redact(serde_json::to_value(steps).unwrap_or_default()),
        heartbeat_at: None,
        holder: None,
    }
}

/// The record of a session that runs no steps (a `watch`): status `watching`, no plan.
pub fn session_record(h: &RunHeader, started_at: i64) -> RunRecord {
    RunRecord {
        status: RunStatus::Watching,
        plan: Value::Null,
        steps: Value::Null,
        ..run_record(h, started_at, &Plan::default(), &[])
    }
}

/// Replace sensitive header values anywhere in `v` (any object with a `headers` list of
/// `[name, value]` pairs).
pub fn redact(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                if let Some(Value::Array(hs)) = m.get_mut("headers") {
                    for h in hs.iter_mut() {
                        if let Value::Array(kv) = h {
                            if let [Value::String(k), Value::String(val)] = kv.as_mut_slice() {
                                if is_sensitive_header(k, val) {
                                    *val = REDACTED.into();
                                }
                            }
                        }
                    }
                }
                for (_, x) in m.iter_mut() {
                    walk(x);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_redacted_at_any_depth() {
        let v = serde_json::json!({"steps": [{"action": {"ladder": {"tiers": [{"apply": {"request": {
            "headers": [["Authorization", "Bearer literal"], ["Content-Type", "application/json"]]
        }}}]}}}]});
        let r = redact(v).to_string();
        assert!(!r.contains("literal"), "{r}");
        assert!(r.contains("application/json"), "{r}");
    }
}
