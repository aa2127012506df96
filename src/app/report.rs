//! `failover report RUN`: the model of a run's report (the timeline of an incident report),
//! built from the journal alone through the `Store` port. Rendering (Markdown, JSON, HTML) is
//! `report::run_report`; nothing here formats for people beyond one-line descriptions.
//!
//! The figures are defined in docs/report.md; a figure the journal cannot support is `None`
//! with the reason, never estimated.

use super::{App, AppError};
use crate::call::Call;
use crate::cloud::model::CallCounts;
use crate::cloud::ErrorKind;
use crate::status::{RunMode, RunStatus, StepStatus};
use crate::store::{Event, RunRecord, Store};
use serde::Serialize;
use std::sync::Arc;

/// The version of the JSON report's field names (bumped on any incompatible change).
pub const REPORT_FORMAT: u32 = 1;

/// Everything a run's report says. The JSON output is this, serialized (docs/report.md).
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub format: u32,
    pub run: RunSummary,
    pub trigger: Trigger,
    /// How the failure was detected, when failover's probes detected it.
    pub detection: Option<Detection>,
    pub approvals: Vec<ApprovalEntry>,
    pub steps: Vec<StepEntry>,
    pub calls: CallTotals,
    /// Traffic tiers shed and restored, in order.
    pub traffic: Vec<TierChange>,
    pub promotions: Vec<Promotion>,
    pub measures: Measures,
    /// Everything above, in time order (what an incident report's timeline reads like).
    pub timeline: Vec<TimelineEntry>,
    /// A drill's phases, stop condition and comparison with the previous drills.
    pub drill: Option<DrillSection>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub id: String,
    pub runbook: String,
    pub environment: String,
    pub mode: RunMode,
    pub status: RunStatus,
    pub initiator: String,
    pub params: serde_json::Value,
    /// Epoch milliseconds, on the journal's clock.
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Trigger {
    /// `person`, `watch` (the environment's watch policy) or `drill`.
    pub kind: String,
    /// Who or what started the run.
    pub by: String,
    /// One line for people.
    pub text: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Detection {
    /// The watch session that detected it.
    pub session: String,
    pub target: String,
    /// When the deciding round ran (epoch ms).
    pub detected_at: i64,
    /// The first failing round of the streak that led to it (epoch ms), when journaled.
    pub onset_at: Option<i64>,
    pub summary: String,
    /// The failing probes of the deciding round: `probe: detail`.
    pub evidence: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ApprovalEntry {
    pub step: String,
    pub by: String,
    pub at: i64,
    pub comment: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct StepCalls {
    pub mutating: u32,
    pub ok: u32,
    pub failed: u32,
    pub throttled: u32,
    /// An intent with no outcome, or a failure that may have been processed, never settled.
    pub in_doubt: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct StepEntry {
    pub id: String,
    pub action: String,
    pub status: StepStatus,
    pub attempts: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub message: Option<String>,
    pub calls: StepCalls,
    /// What the step found already done ("nothing to do" lines).
    pub skips: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct CallTotals {
    /// AWS read calls, from the run's final count (`None`: the run did not record one).
    pub reads: Option<u64>,
    pub mutating: u32,
    pub ok: u32,
    pub failed: u32,
    pub throttled: u32,
    pub in_doubt: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct TierChange {
    pub at: i64,
    pub tier: String,
    /// `shed` or `restored`.
    pub change: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Promotion {
    pub at: i64,
    pub cluster: String,
    pub target: String,
    /// The zone the writer left (the region, for a global database).
    pub from_zone: String,
    /// The zone the writer went to (the region, for a global database).
    pub to_zone: String,
    pub ok: bool,
    /// Replica lag of the promoted reader at promotion (ms), when the journal has it.
    pub replica_lag_ms: Option<u64>,
    /// Why the lag is unknown, when it is.
    pub replica_lag_note: Option<String>,
}

/// A duration figure, or why there is none.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Measure {
    pub ms: Option<i64>,
    /// From what to what it was measured, or why it is `n/a`.
    pub basis: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Measures {
    pub time_to_detect: Measure,
    pub time_to_mitigate: Measure,
    pub time_to_recover: Measure,
}

#[derive(Clone, Debug, Serialize)]
pub struct TimelineEntry {
    pub at: i64,
    /// Milliseconds since the report's origin (the onset when known, else the run's start).
    pub offset_ms: i64,
    pub text: String,
}

/// A drill's part of the report (from the journal's `drill_phase` events).
#[derive(Clone, Debug, Serialize)]
pub struct DrillSection {
    pub phases: Vec<DrillPhase>,
    /// The stop condition that fired, if one did.
    pub stopped_by: Option<String>,
    /// The failback run (a rollback of this one), if there was one.
    pub failback_run: Option<String>,
    /// Each phase against the previous drills of the same runbook and environment.
    pub comparison: Vec<PhaseTrend>,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct DrillPhase {
    /// `pre-check`, `run`, `verify`, `failback`, `verify-failback`.
    pub phase: String,
    pub started_at: i64,
    pub ended_at: i64,
    /// `ok`, `failed` or `skipped`.
    pub outcome: String,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PhaseTrend {
    pub phase: String,
    pub this_ms: i64,
    /// The same phase in the previous drills, oldest first (at most 10).
    pub previous_ms: Vec<i64>,
    pub median_ms: Option<i64>,
    /// `this_ms / median_ms`.
    pub ratio: Option<f64>,
    /// Slower than [`REGRESSION_RATIO`] times the median of the previous drills.
    pub regression: bool,
}

/// A phase is flagged when it took more than this many times the previous drills' median.
pub const REGRESSION_RATIO: f64 = 1.5;

/// The report of one run (an id or a unique prefix of one).
pub async fn report(app: &App, run_id: &str) -> Result<RunReport, AppError> {
    let j = app.open_journal()?;
    build(&j, run_id).await
}

/// The report of one run, from any store.
pub async fn build(j: &Arc<dyn Store>, run_id: &str) -> Result<RunReport, AppError> {
    let r = j.run(run_id).await?;
    let events = j.events(&r.id).await?;
    let steps = j.steps(&r.id).await?;
    let detection = detection_of(j, &r).await?;
    let drill = match r.mode {
        RunMode::Drill => Some(drill_section(j, &r, &events).await?),
        _ => None,
    };
    Ok(assemble(&r, &events, steps, detection, drill))
}

/// The pure part: the report from a run's record, events and steps.
pub fn assemble(
    r: &RunRecord,
    events: &[Event],
    steps: Vec<crate::store::StepRecord>,
    detection: Option<Detection>,
    drill: Option<DrillSection>,
) -> RunReport {
    let calls = calls_of(events);
    let step_entries: Vec<StepEntry> = steps
        .into_iter()
        .map(|s| StepEntry {
            calls: calls.per_step(&s.step_id),
            skips: texts(events, Some(&s.step_id), "skip"),
            duration_ms: s.started_at.zip(s.ended_at).map(|(a, b)| b - a),
            id: s.step_id,
            action: s.action,
            status: s.status,
            attempts: s.attempts,
            started_at: s.started_at,
            ended_at: s.ended_at,
            message: s.message,
        })
        .collect();
    let approvals = approvals_of(events);
    let traffic = traffic_of(events);
    let promotions = promotions_of(events, &calls.list);
    // The onset when known; else the run's start, or a drill's pre-check before it.
    let first_phase = drill
        .as_ref()
        .and_then(|d| d.phases.first())
        .map(|p| p.started_at);
    let origin = detection
        .as_ref()
        .and_then(|d| d.onset_at)
        .unwrap_or(r.started_at.min(first_phase.unwrap_or(i64::MAX)));
    let measures = measures(r, &step_entries, detection.as_ref());
    let mut report = RunReport {
        format: REPORT_FORMAT,
        run: summary(r),
        trigger: trigger_of(r),
        detection,
        approvals,
        steps: step_entries,
        calls: calls.totals(events),
        traffic,
        promotions,
        measures,
        timeline: vec![],
        drill,
    };
    report.timeline = timeline(&report, &calls.list, origin);
    report
}

fn summary(r: &RunRecord) -> RunSummary {
    RunSummary {
        id: r.id.to_string(),
        runbook: r.runbook.clone(),
        environment: r.environment.clone(),
        mode: r.mode,
        status: r.status,
        initiator: r.initiator.clone(),
        params: r.params.clone(),
        started_at: r.started_at,
        ended_at: r.ended_at,
        error: r.error.clone(),
    }
}

fn trigger_of(r: &RunRecord) -> Trigger {
    let (kind, text) = if let Some(env) = r.initiator.strip_prefix("watch:") {
        (
            "watch",
            format!("started by the watch policy of environment `{env}` (`failover watch`)"),
        )
    } else if r.mode == RunMode::Drill {
        (
            "drill",
            format!("a drill started by {} (`failover drill`)", r.initiator),
        )
    } else {
        (
            "person",
            format!("started by {} (`failover {}`)", r.initiator, r.mode),
        )
    };
    Trigger {
        kind: kind.into(),
        by: r.initiator.clone(),
        text,
    }
}

/// The `text` (or `message`) of a step's notes of one kind.
fn texts(events: &[Event], step: Option<&str>, kind: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind == kind && e.step_id.as_deref() == step)
        .filter_map(|e| {
            e.data
                .get("text")
                .or_else(|| e.data.get("message"))
                .and_then(|v| v.as_str())
                .map(String::from)
        })
        .collect()
}

fn approvals_of(events: &[Event]) -> Vec<ApprovalEntry> {
    events
        .iter()
        .filter(|e| e.kind == "approved")
        .map(|e| ApprovalEntry {
            step: e.step_id.clone().unwrap_or_default(),
            by: str_of(&e.data, "by"),
            at: e.at,
            // `failover approve --comment`: a `comment` note of the same person on that gate.
            comment: events
                .iter()
                .find(|c| {
                    c.kind == "comment"
                        && c.step_id == e.step_id
                        && str_of(&c.data, "by") == str_of(&e.data, "by")
                })
                .map(|c| str_of(&c.data, "text")),
        })
        .collect()
}

fn traffic_of(events: &[Event]) -> Vec<TierChange> {
    events
        .iter()
        .filter_map(|e| {
            let change = match e.kind.as_str() {
                "tier_shed" => "shed",
                "tier_restored" => "restored",
                _ => return None,
            };
            Some(TierChange {
                at: e.at,
                tier: str_of(&e.data, "tier"),
                change: change.into(),
            })
        })
        .collect()
}

fn str_of(v: &serde_json::Value, key: &str) -> String {
    v.get(key)
        .and_then(|x| x.as_str())
        .unwrap_or_default()
        .to_string()
}

/// One mutating call: its intent and outcome.
#[derive(Clone, Debug)]
struct CallSeen {
    at: i64,
    step: Option<String>,
    call: Option<Call>,
    operation: String,
    resource: String,
    /// `Some(ok)` when an outcome was written.
    ok: Option<bool>,
    throttled: bool,
    in_doubt: bool,
}

struct Calls {
    list: Vec<CallSeen>,
}

fn calls_of(events: &[Event]) -> Calls {
    let outcome = |seq: i64| {
        events
            .iter()
            .find(|e| e.kind == "outcome" && e.intent_seq == Some(seq))
    };
    let settled = |seq: i64| {
        events
            .iter()
            .any(|e| e.kind == "settled" && e.intent_seq == Some(seq))
    };
    let list = events
        .iter()
        .filter(|e| e.kind == "intent")
        .map(|i| {
            let o = outcome(i.seq);
            let ok = o.and_then(|o| o.data.get("ok").and_then(|v| v.as_bool()));
            let kind = o
                .and_then(|o| o.data.get("kind"))
                .and_then(|k| serde_json::from_value::<ErrorKind>(k.clone()).ok());
            let not_processed = kind.is_some_and(ErrorKind::proves_not_processed);
            CallSeen {
                at: i.at,
                step: i.step_id.clone(),
                call: serde_json::from_value::<Call>(i.data.clone()).ok(),
                operation: i.operation.clone().unwrap_or_default(),
                resource: i.resource.clone().unwrap_or_default(),
                ok,
                throttled: kind == Some(ErrorKind::Throttled),
                in_doubt: ok != Some(true) && !not_processed && !settled(i.seq),
            }
        })
        .collect();
    Calls { list }
}

impl Calls {
    fn count<'a>(calls: impl Iterator<Item = &'a CallSeen>) -> StepCalls {
        let mut c = StepCalls::default();
        for x in calls {
            c.mutating += 1;
            match x.ok {
                Some(true) => c.ok += 1,
                Some(false) => c.failed += 1,
                None => {}
            }
            c.throttled += u32::from(x.throttled);
            c.in_doubt += u32::from(x.in_doubt);
        }
        c
    }

    fn per_step(&self, step: &str) -> StepCalls {
        Self::count(self.list.iter().filter(|c| c.step.as_deref() == Some(step)))
    }

    fn totals(&self, events: &[Event]) -> CallTotals {
        let c = Self::count(self.list.iter());
        // The run's last `calls` note: the AWS requests its ports counted.
        let reads = events
            .iter()
            .rev()
            .find(|e| e.kind == "calls")
            .and_then(|e| serde_json::from_value::<CallCounts>(e.data.clone()).ok())
            .map(|c| c.reads());
        CallTotals {
            reads,
            mutating: c.mutating,
            ok: c.ok,
            failed: c.failed,
            throttled: c.throttled,
            in_doubt: c.in_doubt,
        }
    }
}

fn promotions_of(events: &[Event], calls: &[CallSeen]) -> Vec<Promotion> {
    calls
        .iter()
        .filter_map(|c| match &c.call {
            Some(Call::FailoverDbCluster {
                cluster,
                target,
                target_zone,
                from_zone,
            }) => {
                let (ms, note) = lag_journaled(events, "cluster", cluster.as_str(), c.at);
                Some(Promotion {
                    at: c.at,
                    cluster: cluster.to_string(),
                    target: target.to_string(),
                    from_zone: from_zone.to_string(),
                    to_zone: target_zone.to_string(),
                    ok: c.ok == Some(true),
                    replica_lag_ms: ms,
                    replica_lag_note: note,
                })
            }
            Some(Call::SwitchoverGlobalCluster {
                global_cluster,
                target_arn,
                region,
                from_region,
            }) => Some(Promotion {
                at: c.at,
                cluster: global_cluster.to_string(),
                target: cluster_of_arn(target_arn),
                from_zone: from_region.to_string(),
                to_zone: region.to_string(),
                ok: c.ok == Some(true),
                replica_lag_ms: None,
                replica_lag_note: Some(
                    "switchover: secondaries synchronised first, no data loss (RPO 0)".into(),
                ),
            }),
            Some(Call::FailoverGlobalCluster {
                global_cluster,
                target_arn,
                region,
                from_region,
                ..
            }) => {
                let (ms, note) =
                    lag_journaled(events, "global_cluster", global_cluster.as_str(), c.at);
                Some(Promotion {
                    at: c.at,
                    cluster: global_cluster.to_string(),
                    target: cluster_of_arn(target_arn),
                    from_zone: from_region.to_string(),
                    to_zone: region.to_string(),
                    ok: c.ok == Some(true),
                    replica_lag_ms: ms,
                    replica_lag_note: note,
                })
            }
            _ => None,
        })
        .collect()
}

/// `orders-east` of `arn:aws:rds:us-east-1:1:cluster:orders-east`.
fn cluster_of_arn(arn: &str) -> String {
    arn.rsplit(':').next().unwrap_or(arn).to_string()
}

/// The replication lag journaled (`data_at_risk`) right before a failover of `id` (under
/// `key`: `cluster` or `global_cluster`) made at `at`: the figure, or why there is none.
fn lag_journaled(events: &[Event], key: &str, id: &str, at: i64) -> (Option<u64>, Option<String>) {
    let seen = events.iter().rev().find(|e| {
        e.kind == "data_at_risk"
            && e.at <= at
            && e.data.get(key).and_then(|g| g.as_str()) == Some(id)
    });
    let Some(e) = seen else {
        return (None, Some("not journaled".into()));
    };
    let lag = e.data.get("lag");
    let metric = lag
        .and_then(|l| l.get("metric"))
        .and_then(|m| m.as_str())
        .unwrap_or("lag");
    match lag.and_then(|l| l.get("ms")).and_then(|m| m.as_f64()) {
        Some(ms) => (
            Some(ms.max(0.0) as u64),
            Some(format!("{metric} at promotion")),
        ),
        None => {
            let why = lag
                .and_then(|l| l.get("why"))
                .and_then(|w| w.as_str())
                .unwrap_or("no datapoint");
            (None, Some(format!("unknown: {metric} {why}")))
        }
    }
}

/// The actions that change where users' traffic goes (mitigation).
const MITIGATING: &[&str] = &["dns.update", "traffic.shed"];

/// The actions that change AWS resources or traffic (recovery); `http` calls are not.
const CHANGING: &[&str] = &["rds.", "dns.", "traffic."];

/// Time to detect, mitigate and recover (defined in docs/report.md). Pure.
pub fn measures(r: &RunRecord, steps: &[StepEntry], det: Option<&Detection>) -> Measures {
    let onset = det.and_then(|d| d.onset_at);
    let (origin, from) = match onset {
        Some(o) => (o, "the first failing probe round"),
        None => (r.started_at, "the run's start"),
    };
    let time_to_detect = match det {
        Some(Detection {
            onset_at: Some(o),
            detected_at,
            ..
        }) => Measure {
            ms: Some(detected_at - o),
            basis: "from the first failing probe round to the round that declared the zone unhealthy".into(),
        },
        Some(_) => Measure { ms: None, basis: "n/a: the watch session journaled the detection but not the first failing round".into() },
        None => Measure { ms: None, basis: format!("n/a: the run was not started by failover's detection ({}); the failure was detected outside failover", trigger_of(r).kind) },
    };
    let did = |s: &&StepEntry| s.calls.ok > 0 && s.ended_at.is_some();
    let last_end = |filter: &dyn Fn(&StepEntry) -> bool| {
        steps
            .iter()
            .filter(did)
            .filter(|s| filter(s))
            .filter_map(|s| s.ended_at)
            .max()
    };
    let mitigated = last_end(&|s| MITIGATING.contains(&s.action.as_str()));
    let time_to_mitigate = match mitigated {
        Some(t) => Measure { ms: Some(t - origin), basis: format!("from {from} to the end of the last step that moved or shed traffic (DNS records, traffic tiers)") },
        None => Measure { ms: None, basis: "n/a: no step of the run moved DNS records or shed traffic".into() },
    };
    let recovered = last_end(&|s| CHANGING.iter().any(|p| s.action.starts_with(p)));
    let time_to_recover = match (r.status.is_success(), recovered) {
        (true, Some(t)) => Measure { ms: Some(t - origin), basis: format!("from {from} to the end of the last step that changed anything (every writer and record out of the failed zone)") },
        (true, None) => Measure { ms: None, basis: "n/a: the run changed nothing (everything was already out of the failed zone)".into() },
        (false, _) => Measure { ms: None, basis: format!("n/a: the run ended {}, so it did not recover the service", r.status) },
    };
    Measures {
        time_to_detect,
        time_to_mitigate,
        time_to_recover,
    }
}

/// The entries of the timeline, in time order.
fn timeline(rep: &RunReport, calls: &[CallSeen], origin: i64) -> Vec<TimelineEntry> {
    let mut t: Vec<(i64, String)> = vec![];
    if let Some(d) = &rep.detection {
        if let Some(o) = d.onset_at {
            t.push((o, format!("{}: first failing probe round", d.target)));
        }
        t.push((
            d.detected_at,
            format!("{} detected: {}", d.target, d.summary),
        ));
    }
    t.push((
        rep.run.started_at,
        format!(
            "run {} of `{}` {}",
            rep.run.id, rep.run.runbook, rep.trigger.text
        ),
    ));
    for a in &rep.approvals {
        let c = a
            .comment
            .as_ref()
            .map(|c| format!(": {c}"))
            .unwrap_or_default();
        t.push((a.at, format!("{} approved by {}{c}", a.step, a.by)));
    }
    for s in &rep.steps {
        if let Some(at) = s.started_at {
            t.push((at, format!("step {} ({}) started", s.id, s.action)));
        }
        if let Some(at) = s.ended_at {
            let m = s
                .message
                .as_ref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            t.push((at, format!("step {} {}{m}", s.id, s.status)));
        }
    }
    for c in calls {
        let how = match (c.ok, c.throttled) {
            (Some(true), _) => "ok",
            (_, true) => "throttled",
            (Some(false), _) => "failed",
            (None, _) => "in doubt (no outcome)",
        };
        let what = c
            .call
            .as_ref()
            .map(|x| x.describe())
            .unwrap_or_else(|| format!("{} {}", c.operation, c.resource));
        let what = what.lines().map(str::trim).collect::<Vec<_>>().join("; ");
        t.push((c.at, format!("{what}: {how}")));
    }
    for x in &rep.traffic {
        t.push((x.at, format!("traffic tier `{}` {}", x.tier, x.change)));
    }
    if let Some(d) = &rep.drill {
        for p in &d.phases {
            t.push((
                p.ended_at,
                format!("drill phase {}: {} ({})", p.phase, p.outcome, p.detail),
            ));
        }
    }
    if let Some(end) = rep.run.ended_at {
        let e = rep
            .run
            .error
            .as_ref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        t.push((end, format!("run ended {}{e}", rep.run.status)));
    }
    t.sort_by_key(|(at, _)| *at);
    t.into_iter()
        .map(|(at, text)| TimelineEntry {
            at,
            offset_ms: at - origin,
            text,
        })
        .collect()
}

/// The detection behind a run the watch policy started: the zone event its session journaled
/// just before the `run_started` note naming this run.
async fn detection_of(j: &Arc<dyn Store>, r: &RunRecord) -> Result<Option<Detection>, AppError> {
    if !r.initiator.starts_with("watch:") {
        return Ok(None);
    }
    let sessions = j.runs(500).await?;
    for s in sessions
        .iter()
        .filter(|s| s.mode == RunMode::Watch && s.environment == r.environment)
    {
        let ev = j.events(&s.id).await?;
        let Some(pos) = ev.iter().position(|e| {
            e.kind == "run_started"
                && e.data.get("run").and_then(|v| v.as_str()) == Some(r.id.as_str())
        }) else {
            continue;
        };
        let Some(z) = ev[..pos].iter().rev().find(|e| e.kind == "zone_event") else {
            continue;
        };
        return Ok(Some(detection_from(&s.id.to_string(), z)));
    }
    Ok(None)
}

fn detection_from(session: &str, z: &Event) -> Detection {
    let why = z.data.get("why").cloned().unwrap_or_default();
    let time = |v: Option<&serde_json::Value>| {
        v.and_then(|v| v.as_str())
            .and_then(|s| humantime::parse_rfc3339_weak(s).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
    };
    let target = z
        .data
        .get("target")
        .map(|t| match t {
            serde_json::Value::String(s) => s.clone(),
            other => other
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(|v| v.as_str())
                .map(String::from)
                .unwrap_or_else(|| other.to_string()),
        })
        .unwrap_or_else(|| "?".into());
    let evidence = why
        .get("failing")
        .and_then(|f| f.as_array())
        .map(|a| {
            a.iter()
                .map(|f| format!("{}: {}", str_of(f, "probe"), str_of(f, "detail")))
                .collect()
        })
        .unwrap_or_default();
    Detection {
        session: session.to_string(),
        target,
        detected_at: time(z.data.get("at")).unwrap_or(z.at),
        onset_at: time(why.get("since")),
        summary: str_of(&why, "summary"),
        evidence,
    }
}

/// The journal event kind of a drill's phases.
pub const DRILL_PHASE: &str = "drill_phase";

async fn drill_section(
    j: &Arc<dyn Store>,
    r: &RunRecord,
    events: &[Event],
) -> Result<DrillSection, AppError> {
    let phases = phases_of(events);
    let stopped_by = events
        .iter()
        .rev()
        .find(|e| e.kind == "drill_stopped")
        .map(|e| str_of(&e.data, "condition"));
    let failback_run = events
        .iter()
        .rev()
        .find(|e| e.kind == "drill_failback")
        .map(|e| str_of(&e.data, "run"));
    let mut previous = vec![];
    for p in j.runs(1000).await? {
        let same = p.mode == RunMode::Drill
            && p.runbook == r.runbook
            && p.environment == r.environment
            && p.started_at < r.started_at;
        if same {
            previous.push((p.started_at, phases_of(&j.events(&p.id).await?)));
        }
    }
    previous.sort_by_key(|(at, _)| *at);
    let previous: Vec<Vec<DrillPhase>> = previous.into_iter().map(|(_, p)| p).collect();
    Ok(DrillSection {
        comparison: compare(&phases, &previous),
        phases,
        stopped_by,
        failback_run,
    })
}

/// A drill's phases, as journaled.
pub fn phases_of(events: &[Event]) -> Vec<DrillPhase> {
    events
        .iter()
        .filter(|e| e.kind == DRILL_PHASE)
        .filter_map(|e| serde_json::from_value(e.data.clone()).ok())
        .collect()
}

/// Each phase of this drill against the same phase of the previous ones (oldest first; the
/// last 10 count). Pure.
pub fn compare(this: &[DrillPhase], previous: &[Vec<DrillPhase>]) -> Vec<PhaseTrend> {
    this.iter()
        .filter(|p| p.outcome != "skipped")
        .map(|p| {
            let this_ms = p.ended_at - p.started_at;
            let mut prev: Vec<i64> = previous
                .iter()
                .filter_map(|d| d.iter().find(|q| q.phase == p.phase && q.outcome == "ok"))
                .map(|q| q.ended_at - q.started_at)
                .collect();
            if prev.len() > 10 {
                prev.drain(..prev.len() - 10);
            }
            let median_ms = median(&prev);
            let ratio = median_ms
                .filter(|m| *m > 0)
                .map(|m| this_ms as f64 / m as f64);
            PhaseTrend {
                phase: p.phase.clone(),
                this_ms,
                previous_ms: prev,
                median_ms,
                ratio,
                regression: ratio.is_some_and(|r| r > REGRESSION_RATIO),
            }
        })
        .collect()
}

fn median(v: &[i64]) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(name: &str, ms: i64) -> DrillPhase {
        DrillPhase {
            phase: name.into(),
            started_at: 1_000,
            ended_at: 1_000 + ms,
            outcome: "ok".into(),
            detail: String::new(),
        }
    }

    #[test]
    fn a_phase_slower_than_one_and_a_half_medians_is_a_regression() {
        let prev = vec![
            vec![phase("run", 100_000), phase("failback", 50_000)],
            vec![phase("run", 120_000), phase("failback", 40_000)],
            vec![phase("run", 110_000)],
        ];
        let t = compare(&[phase("run", 170_000), phase("failback", 60_000)], &prev);
        assert_eq!(t[0].median_ms, Some(110_000));
        assert!(t[0].regression, "{t:?}");
        assert_eq!(t[1].median_ms, Some(45_000));
        assert!(!t[1].regression, "60s is 1.33x the median of 45s: {t:?}");
        let first = compare(&[phase("run", 1)], &[]);
        assert_eq!((first[0].median_ms, first[0].regression), (None, false));
    }
}
