//! The simulator's report for people: the timeline with virtual time stamps, the verdict, the
//! invariants, the traffic table and the final state.

use crate::app::simulate::{SimReport, Verdict, NOT_RUN};
use crate::cloud::sim::invariants::InvariantStatus;
use crate::cloud::sim::{Event, FaultPhase, TrafficReport};
use crate::progress::Progress;
use crate::status::StepStatus;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// The simulated load over time: one line per change, then how long the signal was bad.
fn render_traffic(o: &mut String, t: &TrafficReport) {
    use crate::cloud::sim::traffic::{fmt_load, fmt_rate, fmt_util};
    let _ = writeln!(
        o,
        "\nTraffic (simulated load; the signal is the {}, {}; an admin call takes effect after {})",
        t.signal,
        t.threshold(),
        dur(t.lag_ms)
    );
    let _ = writeln!(
        o,
        "  {:<8} {:>8} {:>6} {:>6} {:>7}    {:<22} shed",
        "time", "capacity", "demand", "util.", "errors", "zones down"
    );
    for s in &t.samples {
        let down: Vec<&str> = s.zones_down.iter().map(|z| z.as_str()).collect();
        let _ = writeln!(
            o,
            "  {:<8} {:>8} {:>6} {:>6} {:>7} {}  {:<22} {}",
            stamp(Duration::from_millis(s.at_ms)),
            fmt_load(s.capacity),
            fmt_load(s.demand),
            fmt_util(s.utilisation),
            fmt_rate(s.error_rate),
            if s.good { "✔" } else { "✘" },
            if down.is_empty() {
                "-".to_string()
            } else {
                down.join(", ")
            },
            if s.shed.is_empty() {
                "-".to_string()
            } else {
                s.shed.join(", ")
            }
        );
    }
    let readings = t.readings.len();
    let bad = match (t.degraded_at(), t.recovered_at(), t.samples.last()) {
        (None, _, _) => "the signal was good throughout".to_string(),
        (Some(b), Some(g), _) => format!(
            "the signal was bad from {} and good again from {} ({} later)",
            stamp(b),
            stamp(g),
            dur(g.saturating_sub(b).as_millis() as u64)
        ),
        (Some(b), None, _) => format!(
            "the signal went bad at {} and is still bad at the end",
            stamp(b)
        ),
    };
    let _ = writeln!(o, "  {bad}; {readings} reading(s) of the signal");
    let protected: Vec<&str> = t
        .tiers
        .iter()
        .filter(|x| x.protected)
        .map(|x| x.name.as_str())
        .collect();
    let pending: Vec<String> = t
        .pending_at_end
        .iter()
        .map(|c| {
            format!(
                "{} ({} at {}, not in effect yet)",
                c.tier,
                if c.shed { "shed" } else { "restored" },
                stamp(Duration::from_millis(c.at_ms))
            )
        })
        .collect();
    let _ = writeln!(
        o,
        "  shed at the end: {}{}{}",
        if t.shed_at_end.is_empty() {
            "nothing".to_string()
        } else {
            t.shed_at_end.join(", ")
        },
        if pending.is_empty() {
            String::new()
        } else {
            format!("; changing: {}", pending.join(", "))
        },
        if protected.is_empty() {
            String::new()
        } else {
            format!("; protected, never shed: {}", protected.join(", "))
        }
    );
}

/// `+MM:SS` (or `+H:MM:SS`) of a virtual time.
pub fn stamp(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("+{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
    } else {
        format!("+{:02}:{:02}", s / 60, s % 60)
    }
}

fn dur(ms: u64) -> String {
    crate::cloud::sim::world::fmt_dur(Duration::from_millis(ms))
}

fn indent_rest(text: &str, pad: &str) -> String {
    let mut lines = text.lines();
    let mut out = lines.next().unwrap_or("").to_string();
    for l in lines {
        out.push('\n');
        out.push_str(pad);
        out.push_str(l.trim_start());
    }
    out
}

struct Reads {
    first: u64,
    last: u64,
    ops: BTreeMap<String, usize>,
}

/// The report for a person: what happened when, then the verdict. Successful read-only calls
/// are summarised per stretch; `verbose` lists each one.
pub fn render_text(r: &SimReport, verbose: bool) -> String {
    let mut o = String::new();
    render_header(&mut o, r);
    render_timeline(&mut o, r, verbose);
    render_verdict(&mut o, r);
    render_invariants_and_state(&mut o, r);
    o
}

fn render_header(o: &mut String, r: &SimReport) {
    let list = |params: &BTreeMap<String, String>| -> String {
        let p: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if p.is_empty() {
            "none".into()
        } else {
            p.join(", ")
        }
    };
    if r.runs.len() > 1 {
        let _ = writeln!(
            o,
            "Simulation of {} runbooks in one world on topology `{}` ({}), seed {}",
            r.runs.len(),
            r.topology,
            r.topology_origin,
            r.seed
        );
        let _ = writeln!(o, "Environment `{}`", r.environment);
        let _ = writeln!(o, "Runs:");
        for (i, run) in r.runs.iter().enumerate() {
            let _ = writeln!(
                o,
                "  {}. `{}` (run {}), {}; parameters: {}",
                i + 1,
                run.runbook,
                run.run_id,
                match run.started_ms {
                    Some(ms) => format!("started at {}", stamp(Duration::from_millis(ms))),
                    None => "never started".into(),
                },
                list(&run.params)
            );
        }
    } else {
        let _ = writeln!(
            o,
            "Simulation of runbook `{}` on topology `{}` ({}), seed {}",
            r.runbook, r.topology, r.topology_origin, r.seed
        );
        let _ = writeln!(
            o,
            "Environment `{}`; parameters: {}",
            r.environment,
            list(&r.params)
        );
    }
    if r.faults.is_empty() {
        let _ = writeln!(o, "Faults: none");
    } else {
        let _ = writeln!(o, "Faults:");
        for f in &r.faults {
            let _ = writeln!(o, "  ⚡ {f}");
        }
    }
}

fn render_timeline(o: &mut String, r: &SimReport, verbose: bool) {
    let _ = writeln!(o, "\nTimeline (virtual time since the start)");
    let mut reads: Option<Reads> = None;
    let flush = |o: &mut String, reads: &mut Option<Reads>| {
        if let Some(rd) = reads.take() {
            let n: usize = rd.ops.values().sum();
            let ops: Vec<String> = rd
                .ops
                .iter()
                .map(|(op, c)| {
                    if *c > 1 {
                        format!("{op} ×{c}")
                    } else {
                        op.clone()
                    }
                })
                .collect();
            let (a, b) = (
                stamp(Duration::from_millis(rd.first)),
                stamp(Duration::from_millis(rd.last)),
            );
            let span = if a != b {
                format!(" until {b}")
            } else {
                String::new()
            };
            let _ = writeln!(o, "{a}      · {n} read call(s){span}: {}", ops.join(", "));
        }
    };
    for e in &r.timeline {
        let t = stamp(e.at());
        if let Event::Api(c) = &e.event {
            if c.ok && !c.mutating && !verbose {
                let rd = reads.get_or_insert(Reads {
                    first: e.at_ms,
                    last: e.at_ms,
                    ops: BTreeMap::new(),
                });
                rd.last = e.at_ms;
                *rd.ops.entry(c.operation.clone()).or_default() += 1;
                continue;
            }
        }
        if let Event::Engine {
            progress: Progress::CallDone { .. },
        } = &e.event
        {
            continue; // the simulated service's own record of the call says the same, and more
        }
        flush(o, &mut reads);
        let Some(line) = event_line(r, &e.event, &t) else {
            continue;
        };
        let _ = writeln!(o, "{t}  {line}");
    }
    flush(o, &mut reads);
}

/// One timeline line for an event (`t`: its stamp, for continuation lines); `None`: not shown.
fn event_line(r: &SimReport, event: &Event, t: &str) -> Option<String> {
    let line = match event {
        Event::Fault { fault, phase, text } => match phase {
            FaultPhase::Begins => format!("⚡ {text}  [{fault}]"),
            _ => format!("⚡ {text}"),
        },
        Event::World { text } => format!("  ◆ {text}"),
        Event::Api(c) => {
            let what = format!("{} {}", c.operation, c.resource);
            let mut s = match (&c.error, c.http_status) {
                (None, Some(st)) => format!("    ⇢ {what}: answered {st}"),
                (None, None) => format!("    ⇢ {what}: ok"),
                (Some(err), _) => format!(
                    "    ✗ {what}: {:?}{}: {}",
                    err.kind,
                    err.code
                        .as_deref()
                        .map(|c| format!(" {c}"))
                        .unwrap_or_default(),
                    err.message
                ),
            };
            if let Some(n) = &c.note {
                let _ = write!(s, "  ({n})");
            }
            s
        }
        Event::Engine { progress } => return progress_line(r, progress, t),
    };
    Some(line)
}

/// The line of an engine event; `None`: not shown.
fn progress_line(r: &SimReport, progress: &Progress, t: &str) -> Option<String> {
    let line = match progress {
        Progress::StepStarted { step, action } => {
            let desc = r
                .steps
                .iter()
                .find(|s| &s.id == step)
                .and_then(|s| s.description.clone())
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            format!("▶ {step} ({action}){desc}")
        }
        Progress::StepFinished {
            step,
            status,
            message,
        } => {
            let m = message
                .as_deref()
                .map(|m| indent_rest(m, "            "))
                .unwrap_or_default();
            match status {
                StepStatus::Succeeded => format!(
                    "✔ {step} succeeded{}",
                    if m.is_empty() {
                        String::new()
                    } else {
                        format!(": {m}")
                    }
                ),
                StepStatus::Failed => format!("✘ {step} FAILED: {m}"),
                StepStatus::Skipped => format!("○ {step} {m}"),
                other => format!("✘ {step} {}: {m}", other.as_str()),
            }
        }
        Progress::Call { step, text } => {
            format!("  → {step}: {}", indent_rest(text, "              "))
        }
        Progress::Skip { step, text } => format!("  = {step}: {text}"),
        Progress::Problem { step, text } => format!("  ! {step}: {text}"),
        Progress::Waiting { step, what } => format!("  … {step}: {what}"),
        Progress::Converged { step, what } => format!("  ✓ {step}: {what}"),
        Progress::StepError {
            step,
            attempt,
            error,
            retrying,
        } => {
            format!(
                "  ✗ {step}: attempt {attempt} failed: {}{}",
                indent_rest(error, "              "),
                if *retrying { " (retrying)" } else { "" }
            )
        }
        Progress::ApprovalRequested { step, message, .. } => {
            format!("  ? {step}: waiting for approval: {message}")
        }
        Progress::RunStarted { .. } | Progress::RunFinished { .. } => return None,
        Progress::PlanUnavailable { error, .. } => format!("  ◆ the plan could not read the world ({error}); running anyway: every step observes before acting"),
        Progress::RunPlanned {
            runbook,
            steps,
            mutating_calls,
            problems,
            ..
        } => {
            let mut l = format!(
                "  ◆ plan: {steps} step(s), {mutating_calls} mutating call(s){}",
                if problems.is_empty() {
                    String::new()
                } else {
                    format!(", {} precondition(s) failing", problems.len())
                }
            );
            let prefix = if r.runs.len() > 1 {
                format!("{runbook}: ")
            } else {
                String::new()
            };
            for (s, p) in problems {
                let _ = write!(l, "\n{t}    ◆ plan problem in {prefix}{s}: {p}");
            }
            l
        }
        other => format!("  · {}", serde_json::to_string(other).unwrap_or_default()),
    };
    Some(line)
}

/// The demo's figures: time to detect, mitigate and recover, against the AWS critical path.
fn render_story(o: &mut String, r: &SimReport) {
    let Some(s) = &r.story else { return };
    let t = |ms: Option<u64>| {
        ms.map(|m| crate::cloud::sim::world::fmt_dur(Duration::from_millis(m)))
            .unwrap_or_else(|| "never".into())
    };
    let at = |ms: Option<u64>| {
        ms.map(|m| stamp(Duration::from_millis(m)))
            .unwrap_or_else(|| "-".into())
    };
    let cp = &s.critical_path;
    let since = |ms: Option<u64>| ms.map(|m| m.saturating_sub(s.lost_ms));
    let _ = writeln!(
        o,
        "  zone {} lost at {}, back at {}",
        s.zone,
        at(Some(s.lost_ms)),
        at(s.zone_back_ms)
    );
    let _ = writeln!(
        o,
        "  time to detect:   {:>8}   (AWS critical path: {})",
        t(since(s.detected_ms)),
        t(Some(cp.detect_ms))
    );
    let _ = writeln!(
        o,
        "  time to mitigate: {:>8}   (AWS critical path: {}; the signal good again)",
        t(since(s.mitigated_ms)),
        t(Some(cp.mitigate_ms))
    );
    let _ = writeln!(
        o,
        "  time to recover:  {:>8}   (AWS critical path: {}; out of the failed zone)",
        t(since(s.recovered_ms)),
        t(Some(cp.recover_ms))
    );
    let _ = writeln!(
        o,
        "  failback:         started {}, ended {}",
        at(s.failback_started_ms),
        at(s.failback_ended_ms)
    );
    for p in &cp.parts {
        let _ = writeln!(o, "    critical path: {p}");
    }
}

fn render_verdict(o: &mut String, r: &SimReport) {
    let _ = writeln!(o, "\n{}", "─".repeat(72));
    let _ = writeln!(
        o,
        "Verdict: {}",
        match r.verdict {
            Verdict::Succeeded => "SUCCEEDED: the run finished and every invariant held",
            Verdict::Failed => "FAILED",
        }
    );
    for reason in &r.reasons {
        let _ = writeln!(o, "  - {reason}");
    }
    render_story(o, r);
    let counts = |st: Option<StepStatus>| r.steps.iter().filter(|s| s.status == st).count();
    let run = if !r.run_started {
        "not started".to_string()
    } else {
        let parts: Vec<String> = [
            Some(StepStatus::Succeeded),
            Some(StepStatus::Failed),
            Some(StepStatus::Skipped),
            Some(StepStatus::Blocked),
            Some(StepStatus::Cancelled),
            None,
        ]
        .into_iter()
        .filter(|s| counts(*s) > 0)
        .map(|s| {
            let word = s.map_or(NOT_RUN, StepStatus::as_str);
            format!("{} {word}", counts(s))
        })
        .collect();
        let runs = match r.runs.len() {
            0 | 1 => String::new(),
            n => format!("{n} runs, "),
        };
        format!(
            "{} ({runs}{} steps: {})",
            if r.run_succeeded {
                "succeeded"
            } else {
                "failed"
            },
            r.steps.len(),
            parts.join(", ")
        )
    };
    let _ = writeln!(o, "  run:             {run}");
    // The story (time to detect, mitigate, recover) already said how the zone was left; the
    // end state's figures would speak of the failback's world.
    if r.story.is_none() {
        render_recovery(o, r);
    }
    let _ = writeln!(o, "  simulated time:  {}", dur(r.simulated_ms));
    let total: usize = r.api_calls.values().map(|c| c.calls).sum();
    let throttled: usize = r.api_calls.values().map(|c| c.throttled).sum();
    let errors: usize = r.api_calls.values().map(|c| c.failed).sum();
    let _ = writeln!(
        o,
        "  API calls:       {total} ({throttled} throttled, {errors} failed otherwise)"
    );
}

/// The zones the run had to leave and when the last writer or record left them.
fn render_recovery(o: &mut String, r: &SimReport) {
    let failed: Vec<String> = r
        .failed_zones
        .all()
        .iter()
        .map(|z| format!("{z} ({})", r.failed_zones.why(z)))
        .collect();
    let _ = writeln!(
        o,
        "  failed zones:    {}",
        if failed.is_empty() {
            "none".into()
        } else {
            failed.join(", ")
        }
    );
    let _ = writeln!(
        o,
        "  time to recover: {}",
        match r.time_to_recover_ms {
            Some(0) => "0s (nothing was in a failed zone)".to_string(),
            Some(ms) => format!(
                "{} (at {} the last writer or record left the failed zones)",
                dur(ms),
                stamp(Duration::from_millis(ms))
            ),
            None => "not recovered: something is still in a failed zone".to_string(),
        }
    );
}

fn render_invariants_and_state(o: &mut String, r: &SimReport) {
    let _ = writeln!(o, "\nInvariants");
    for i in &r.invariants {
        let mark = match i.status {
            InvariantStatus::Held => "✔",
            InvariantStatus::Violated => "✘",
            InvariantStatus::NotApplicable => "–",
        };
        let status = match i.status {
            InvariantStatus::Held => "held",
            InvariantStatus::Violated => "VIOLATED",
            InvariantStatus::NotApplicable => "not applicable",
        };
        let _ = writeln!(o, "  {mark} {}: {status}", i.title);
        for d in &i.details {
            let _ = writeln!(o, "      {d}");
        }
    }
    if let Some(t) = &r.traffic {
        render_traffic(o, t);
    }
    let _ = writeln!(o, "\nFinal state");
    for c in &r.final_state.clusters {
        let _ = writeln!(
            o,
            "  cluster  {:<16} writer {:<20} {:<12} {}",
            c.id.as_str(),
            c.writer.as_str(),
            c.zone.as_str(),
            c.status
        );
    }
    for i in &r.final_state.instances {
        let _ = writeln!(
            o,
            "  instance {:<16} primary in {:<16} {:<12} {}",
            i.id.as_str(),
            i.zone.as_str(),
            i.standby_zone
                .as_ref()
                .map(|z| format!("standby {z}"))
                .unwrap_or_default(),
            i.status
        );
    }
    for rec in &r.final_state.records {
        let to = if rec.weighted {
            rec.weights
                .iter()
                .map(|(z, w)| format!("{z}={w}"))
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            format!(
                "{} ({})",
                rec.values.join(", "),
                rec.zones
                    .iter()
                    .map(|z| z.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let _ = writeln!(o, "  record   {} {} -> {to}", rec.name, rec.rtype);
    }
    render_global(o, r);
}

/// The global clusters' writer regions, and the writes each failover with data loss lost.
fn render_global(o: &mut String, r: &SimReport) {
    for g in &r.final_state.global_clusters {
        let regions: Vec<&str> = g.writer_regions.iter().map(|r| r.as_str()).collect();
        let busy = g
            .under_way
            .as_ref()
            .map(|u| format!(" ({u} under way)"))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "  global   {:<16} writer in {:<14} {}{busy}",
            g.id.as_str(),
            regions.join(", "),
            g.status
        );
    }
    for l in &r.final_state.data_lost {
        let _ = writeln!(
            o,
            "  data lost: global cluster {} failed over from {} to {} at {}: about {:.1} s of writes not replicated",
            l.global_cluster,
            l.from,
            l.to,
            stamp(Duration::from_millis(l.at_ms)),
            l.lost_ms / 1000.0
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_minutes_and_seconds() {
        assert_eq!(stamp(Duration::from_millis(31_400)), "+00:31");
        assert_eq!(stamp(Duration::from_secs(754)), "+12:34");
        assert_eq!(stamp(Duration::from_secs(3600 + 62)), "+1:01:02");
    }
}
