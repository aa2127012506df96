//! Rendering for people: plans, live progress, run listings and run details.

pub mod run_report;
pub mod sim;
pub mod traffic;

use crate::journal::{Event, RunRecord, StepRecord};
use crate::plan::{Plan, PlannedStatus};
use crate::progress::{Progress, Reporter};
use crate::status::StepStatus;
use crate::store::Liveness;
use crate::timefmt::format_ts;
use std::fmt::Write;
use std::io::Write as _;
use std::time::Instant;

pub fn render_plan(plan: &Plan, params: &std::collections::BTreeMap<String, String>) -> String {
    let mut o = String::new();
    let p = params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let _ = writeln!(
        o,
        "Plan for runbook `{}` on environment `{}`{}",
        plan.runbook,
        plan.environment,
        if p.is_empty() {
            String::new()
        } else {
            format!(" ({p})")
        }
    );
    let _ = writeln!(
        o,
        "Dry run: read-only calls only; nothing below has been done.\n"
    );
    for (i, s) in plan.steps.iter().enumerate() {
        let status = match s.status {
            PlannedStatus::Run if s.decision.calls.is_empty() && s.decision.effects.is_empty() => {
                "nothing to do"
            }
            PlannedStatus::Run => "will run",
            PlannedStatus::SkippedByCondition => "skipped",
            PlannedStatus::Blocked => "blocked",
            PlannedStatus::Failing => "PRECONDITION FAILS",
        };
        let after = if s.after.is_empty() {
            String::new()
        } else {
            format!(
                " after {}",
                s.after
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let _ = writeln!(
            o,
            "{}. {} ({}){} - {}",
            i + 1,
            s.id,
            s.action,
            after,
            status
        );
        if let Some(d) = &s.description {
            let _ = writeln!(o, "   {d}");
        }
        for c in &s.decision.calls {
            let _ = writeln!(o, "   call: {}", c.describe());
        }
        for e in &s.decision.effects {
            let _ = writeln!(o, "   will: {e}");
        }
        for c in &s.decision.contingent {
            let _ = writeln!(o, "   {}:", c.when);
            for call in &c.calls {
                let _ = writeln!(o, "      call: {}", call.describe().replace("\n", "\n   "));
            }
        }
        for sk in &s.decision.skips {
            let _ = writeln!(o, "   skip: {sk}");
        }
        for a in &s.decision.awaits {
            let _ = writeln!(o, "   then: wait until {}", crate::steps::wait::describe(a));
        }
        for p in &s.decision.problems {
            let _ = writeln!(o, "   PROBLEM: {p}");
        }
        for e in &s.decision.expected {
            let _ = writeln!(o, "   expect: {e}");
        }
    }
    let problems = plan.problems().len();
    let maybe = plan.contingent_calls();
    let _ = writeln!(
        o,
        "\n{} mutating call(s) planned{}; {}.",
        plan.mutating_calls(),
        if maybe == 0 {
            String::new()
        } else {
            format!(", up to {maybe} more if their conditions hold")
        },
        if problems == 0 {
            "no precondition fails".to_string()
        } else {
            format!("{problems} precondition(s) fail")
        }
    );
    o
}

/// Live progress on the terminal, with time since the run started on the run's own clock
/// (virtual time against a simulated environment).
pub struct Terminal {
    clock: Option<std::sync::Arc<dyn crate::cloud::Clock>>,
    start: std::time::SystemTime,
    wall: Instant,
    out: std::sync::Mutex<Box<dyn std::io::Write + Send>>,
}

impl Terminal {
    pub fn stderr() -> Self {
        Self {
            clock: None,
            start: std::time::SystemTime::now(),
            wall: Instant::now(),
            out: std::sync::Mutex::new(Box::new(std::io::stderr())),
        }
    }
    pub fn stdout() -> Self {
        Self {
            clock: None,
            start: std::time::SystemTime::now(),
            wall: Instant::now(),
            out: std::sync::Mutex::new(Box::new(std::io::stdout())),
        }
    }
    /// Stamp lines with `clock`'s time since now.
    pub fn with_clock(mut self, clock: std::sync::Arc<dyn crate::cloud::Clock>) -> Self {
        self.start = clock.now();
        self.clock = Some(clock);
        self
    }
    fn elapsed(&self) -> std::time::Duration {
        match &self.clock {
            Some(c) => c.now().duration_since(self.start).unwrap_or_default(),
            None => self.wall.elapsed(),
        }
    }
}

impl Reporter for Terminal {
    fn report(&self, p: Progress) {
        let t = self.elapsed();
        let stamp = format!(
            "[{:02}:{:02}.{}]",
            t.as_secs() / 60,
            t.as_secs() % 60,
            t.subsec_millis() / 100
        );
        let line = match p {
            Progress::RunStarted {
                run_id,
                environment,
                initiator,
                of_run: Some(of),
                ..
            } => format!("Rollback {run_id} of run {of} on `{environment}` started by {initiator}"),
            Progress::RunStarted {
                run_id,
                runbook,
                environment,
                initiator,
                journal,
                resumed_by: Some(by),
                ..
            } => format!(
                "Run {run_id} of `{runbook}` on `{environment}` resumed by {by} (started by {initiator}; journal: {journal})"
            ),
            Progress::RunStarted {
                run_id,
                runbook,
                environment,
                initiator,
                journal,
                ..
            } => format!(
                "Run {run_id} of `{runbook}` on `{environment}` started by {initiator} (journal: {journal})"
            ),
            Progress::RunPlanned {
                steps,
                mutating_calls,
                problems,
                ..
            } => {
                let mut l = format!(
                    "Plan: {steps} step(s), {mutating_calls} mutating call(s){}",
                    if problems.is_empty() {
                        String::new()
                    } else {
                        format!(
                            ", {} precondition(s) failing (those steps will do what they can, then fail)",
                            problems.len()
                        )
                    }
                );
                for (s, p) in &problems {
                    l.push_str(&format!("\n  PROBLEM in {s}: {p}"));
                }
                l
            }
            Progress::PlanUnavailable { error, .. } => format!("warning: the plan could not read the current state ({error}); running anyway: every step observes before acting"),
            Progress::RunFinished { head, calls, .. } => {
                let mut l = vec![];
                if let Some(c) = calls {
                    l.push(format!("Made {}", c.line()));
                }
                if let Some(h) = head {
                    l.push(format!("Journal head {h}: remember it to catch a deleted tail (failover verify --expect-head {h})"));
                }
                if l.is_empty() {
                    return;
                }
                l.join("\n")
            }
            Progress::StepStarted { step, action } => format!("{stamp} > {step} ({action})"),
            Progress::Skip { step, text } => format!("{stamp}   {step}: {text}"),
            Progress::Problem { step, text } => format!("{stamp}   {step}: PROBLEM: {text}"),
            Progress::Call { step, text } => format!("{stamp}   {step}: call {text}"),
            Progress::CallDone { step, operation, resource, ok, ms, detail } => {
                if ok {
                    format!("{stamp}   {step}: {operation} {resource}: ok ({ms} ms)")
                } else {
                    format!("{stamp}   {step}: {operation} {resource}: FAILED ({ms} ms): {}", detail.unwrap_or_default())
                }
            }
            Progress::Waiting { step, what } => format!("{stamp}   {step}: waiting: {what}"),
            Progress::Converged { step, what } => format!("{stamp}   {step}: done: {what}"),
            Progress::ApprovalRequested { step, message, run_id } => format!(
                "{stamp}   {step}: WAITING FOR APPROVAL: {message}\n{stamp}   {step}: another person approves with: failover approve {run_id} --step {step} --by <name>"
            ),
            Progress::StepError { step, attempt, error, retrying } => {
                format!("{stamp}   {step}: attempt {attempt} failed: {error}{}", if retrying { " (retrying)" } else { "" })
            }
            Progress::StepFinished { step, status, message } => {
                let m = message.map(|m| format!(": {m}")).unwrap_or_default();
                let word = match status {
                    StepStatus::Failed => "FAILED",
                    other => other.as_str(),
                };
                format!("{stamp} < {step} {word}{m}")
            }
        };
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

fn dur(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// A run's status for people: a run whose process is gone says so, and since when.
pub fn status_word(r: &RunRecord, l: Liveness) -> String {
    match l {
        Liveness::Stale { since } => {
            format!(
                "{} (STALE: no heartbeat since {})",
                r.status,
                format_ts(since)
            )
        }
        _ => r.status.to_string(),
    }
}

pub fn render_runs(runs: &[(RunRecord, Liveness)]) -> String {
    let mut o = String::new();
    if runs.is_empty() {
        return "No runs in the journal yet. Start one with `failover run RUNBOOK --env ENV`.\n"
            .into();
    }
    let _ = writeln!(
        o,
        "{:<22} {:<20} {:<10} {:<8} {:<17} {:<21} {:>8}  PARAMS",
        "RUN", "RUNBOOK", "ENV", "MODE", "STATUS", "STARTED", "TOOK"
    );
    for (r, l) in runs {
        let took = r
            .ended_at
            .map(|e| dur(e - r.started_at))
            .unwrap_or_else(|| "-".into());
        let params = r
            .params
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(&v.to_string())))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "{:<22} {:<20} {:<10} {:<8} {:<17} {:<21} {:>8}  {}",
            r.id,
            r.runbook,
            r.environment,
            r.mode,
            match l {
                Liveness::Stale { .. } => format!("{} (stale)", r.status),
                _ => r.status.to_string(),
            },
            format_ts(r.started_at),
            took,
            params
        );
    }
    o
}

/// What `verify` found, for people: the first problem first, then the others.
pub fn render_verify(v: &crate::app::inspect::Verified) -> String {
    let r = &v.report;
    let mut o = String::new();
    let head = r
        .head
        .as_ref()
        .map(|h| h.to_string())
        .unwrap_or_else(|| "none".into());
    let _ = writeln!(
        o,
        "journal {}: {} event(s), chain {}, head {head}",
        v.path.display(),
        r.events,
        r.chain
    );
    for (h, from) in &v.heads {
        let _ = writeln!(o, "  checking remembered head {h} ({from})");
    }
    if r.intact() {
        let tables = if r.tables_checked {
            "every table matches its events"
        } else {
            "tables not checked: the journal is older than mirrored tables"
        };
        let _ = writeln!(o, "The chain is intact; {tables}.");
    } else {
        let first = &r.problems[0];
        let at = first
            .seq
            .map(|s| format!("event #{s}: "))
            .unwrap_or_default();
        let _ = writeln!(o, "TAMPERED: {at}{}", first.what);
        for p in &r.problems[1..] {
            let at = p.seq.map(|s| format!("event #{s}: ")).unwrap_or_default();
            let _ = writeln!(o, "  also: {at}{}", p.what);
        }
        let _ = writeln!(
            o,
            "  hint: keep this file as evidence; `failover show` still reads it"
        );
    }
    if r.chain == "sha256" {
        let _ = writeln!(o, "Note: the chain is not keyed: it catches edits and deletions, not a chain recomputed by someone who can write the file. A journal created with $FAILOVER_AUDIT_KEY set is keyed (HMAC-SHA256).");
    }
    if v.heads.is_empty() {
        let _ = writeln!(o, "Note: no remembered head was checked: a deleted tail is only caught against one (--expect-head, --anchor, or an environment's [audit] anchor_file).");
    }
    o
}

/// The leases, one line each: key, state, run, by, holder, token, since, expires.
pub fn render_locks(leases: &[crate::lease::Lease], now: i64, all: bool) -> String {
    if leases.is_empty() {
        return if all {
            "No lease was ever taken in this journal.\n".into()
        } else {
            "No run holds a lease right now (`--all` lists released and expired ones).\n".into()
        };
    }
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<44} {:<9} {:<24} {:<10} {:<20} {:>5}  {:<21} EXPIRES",
        "RESOURCE", "STATE", "RUN", "BY", "HOLDER", "TOKEN", "SINCE"
    );
    for l in leases {
        let state = match (&l.run_id, l.live_at(now)) {
            (None, _) => "released",
            (Some(_), true) => "held",
            (Some(_), false) => "expired",
        };
        let _ = writeln!(
            o,
            "{:<44} {:<9} {:<24} {:<10} {:<20} {:>5}  {:<21} {}",
            l.key.to_string(),
            state,
            l.run_id.as_deref().unwrap_or("-"),
            l.initiator,
            l.holder,
            l.token,
            format_ts(l.acquired_ms),
            format_ts(l.expires_ms())
        );
    }
    o
}

pub fn render_show(
    r: &RunRecord,
    liveness: Liveness,
    steps: &[StepRecord],
    events: &[Event],
    open: &[Event],
) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Run {}: runbook `{}` ({}) on `{}`, mode {}, started by {}",
        r.id, r.runbook, r.runbook_path, r.environment, r.mode, r.initiator
    );
    let took = r
        .ended_at
        .map(|e| format!(", took {}", dur(e - r.started_at)))
        .unwrap_or_default();
    let _ = writeln!(
        o,
        "Status: {}  started {}{took}",
        status_word(r, liveness),
        format_ts(r.started_at)
    );
    if let Liveness::Stale { .. } = liveness {
        let _ = writeln!(
            o,
            "Its process ({}) is gone or stuck: nothing is waiting for its approvals. Continue it with `failover resume {}`, or end it with `failover abort {}`.",
            r.holder.as_deref().unwrap_or("?"),
            r.id,
            r.id
        );
    }
    if let Some(m) = r.params.as_object().filter(|m| !m.is_empty()) {
        let _ = writeln!(
            o,
            "Params: {}",
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(&v.to_string())))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    if let Some(e) = &r.error {
        let _ = writeln!(o, "Error: {e}");
    }
    let _ = writeln!(
        o,
        "\n{:<24} {:<22} {:<17} {:>8} {:>8}",
        "STEP", "ACTION", "STATUS", "TOOK", "ATTEMPTS"
    );
    for s in steps {
        let took = match (s.started_at, s.ended_at) {
            (Some(a), Some(b)) => dur(b - a),
            _ => "-".into(),
        };
        let _ = writeln!(
            o,
            "{:<24} {:<22} {:<17} {:>8} {:>8}",
            s.step_id, s.action, s.status, took, s.attempts
        );
        if let Some(m) = &s.message {
            for l in m.lines() {
                let _ = writeln!(o, "    {l}");
            }
        }
    }
    let _ = writeln!(o, "\nTimeline:");
    for e in events {
        let rel = dur(e.at - r.started_at);
        let step = e.step_id.clone().unwrap_or_default();
        let detail = match e.kind.as_str() {
            "intent" => format!(
                "{} {}: {}",
                e.operation.clone().unwrap_or_default(),
                e.resource.clone().unwrap_or_default(),
                summarize_call(&e.data)
            ),
            "outcome" => {
                let ok = e.data.get("ok").and_then(|v| v.as_bool()).unwrap_or(false);
                let ms = e.data.get("ms").and_then(|v| v.as_u64()).unwrap_or(0);
                if ok {
                    format!(
                        "{} {}: ok ({ms} ms){}",
                        e.operation.clone().unwrap_or_default(),
                        e.resource.clone().unwrap_or_default(),
                        e.data
                            .get("result")
                            .and_then(|r| r.get("change_id"))
                            .and_then(|c| c.as_str())
                            .map(|c| format!(" change {c}"))
                            .unwrap_or_default()
                    )
                } else {
                    format!(
                        "{} {}: FAILED: {}",
                        e.operation.clone().unwrap_or_default(),
                        e.resource.clone().unwrap_or_default(),
                        e.data.get("error").and_then(|v| v.as_str()).unwrap_or("")
                    )
                }
            }
            _ => compact(&e.data),
        };
        let _ = writeln!(o, "  +{rel:>7}  {:<20} {:<18} {detail}", step, e.kind);
    }
    render_open_intents(&mut o, events, open);
    o
}

/// Intents without an outcome: those still in doubt, then those a later observation settled
/// (their effect showed, or they were made again), which are in doubt no more.
fn render_open_intents(o: &mut String, events: &[Event], open: &[Event]) {
    if open.is_empty() {
        let _ = writeln!(o, "\nEvery intent has an outcome: no call is in doubt.");
        return;
    }
    let how = |seq: i64| {
        events
            .iter()
            .find(|e| e.kind == "settled" && e.intent_seq == Some(seq))
            .map(|e| {
                e.data
                    .get("how")
                    .and_then(|h| h.as_str())
                    .unwrap_or("settled")
            })
    };
    let line = |e: &Event| {
        format!(
            "  #{} {} {} {}",
            e.seq,
            e.step_id.clone().unwrap_or_default(),
            e.operation.clone().unwrap_or_default(),
            e.resource.clone().unwrap_or_default()
        )
    };
    let (settled, doubt): (Vec<&Event>, Vec<&Event>) =
        open.iter().partition(|e| how(e.seq).is_some());
    if !doubt.is_empty() {
        let _ = writeln!(o, "\nCalls in doubt: the intent was written, the outcome never was (the process stopped?). A resume waits for their effect to show before making them again:");
        for e in doubt {
            let _ = writeln!(o, "{}", line(e));
        }
    }
    if !settled.is_empty() {
        let head = if open.len() == settled.len() {
            "No call is in doubt. "
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "\n{head}Calls whose outcome was never written, settled since:"
        );
        for e in settled {
            let _ = writeln!(o, "{}: {}", line(e), how(e.seq).unwrap_or_default());
        }
    }
}

fn summarize_call(v: &serde_json::Value) -> String {
    match serde_json::from_value::<crate::call::Call>(v.clone()) {
        Ok(c) => c
            .describe()
            .lines()
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) => compact(v),
    }
}

fn compact(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.as_str()
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| v.to_string())
                )
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64, kind: &str, intent_seq: Option<i64>, data: serde_json::Value) -> Event {
        Event {
            seq,
            run_id: crate::types::RunId::new("r"),
            step_id: Some("snapshot".into()),
            at: 0,
            kind: kind.into(),
            operation: (kind == "intent").then(|| "CreateDBSnapshot".into()),
            resource: (kind == "intent").then(|| format!("db-{seq}")),
            data,
            intent_seq,
            hash: String::new(),
        }
    }

    #[test]
    fn regression_show_does_not_call_a_settled_call_in_doubt() {
        let (a, b) = (
            event(3, "intent", None, serde_json::json!({})),
            event(4, "intent", None, serde_json::json!({})),
        );
        let settled = event(
            9,
            "settled",
            Some(3),
            serde_json::json!({"how": "its effect was observed"}),
        );
        let events = vec![a.clone(), b.clone(), settled];
        let mut o = String::new();
        render_open_intents(&mut o, &events, &[a.clone(), b]);
        assert_eq!(o, "\nCalls in doubt: the intent was written, the outcome never was (the process stopped?). A resume waits for their effect to show before making them again:\n  #4 snapshot CreateDBSnapshot db-4\n\nCalls whose outcome was never written, settled since:\n  #3 snapshot CreateDBSnapshot db-3: its effect was observed\n");
        let mut o = String::new();
        render_open_intents(&mut o, &events, &[a]);
        assert_eq!(o, "\nNo call is in doubt. Calls whose outcome was never written, settled since:\n  #3 snapshot CreateDBSnapshot db-3: its effect was observed\n");
    }
}
