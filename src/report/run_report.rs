//! `failover report RUN`: a run's report as Markdown (read like the incident reports'
//! timelines), JSON (the model, field names in docs/report.md) and one self-contained HTML page
//! (no external asset) with the phases drawn on a time axis in inline SVG. Pure rendering of
//! [`RunReport`].

use crate::app::report::{Measure, RunReport, StepEntry};
use crate::timefmt::format_ts;
use std::fmt::Write;

/// `+01:02:03` (or `-00:00:05` before the origin) from milliseconds.
pub fn offset(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "+" };
    let s = ms.unsigned_abs() / 1000;
    format!("{sign}{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// `1m24s`, `850ms`, `2h20m0s` from milliseconds.
pub fn span(ms: i64) -> String {
    if ms < 0 {
        return format!("-{}", span(-ms));
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    match (s / 3600, (s / 60) % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

fn measure(m: &Measure) -> String {
    match m.ms {
        Some(ms) => format!("{} ({})", span(ms), m.basis),
        None => m.basis.clone(),
    }
}

/// The JSON report (stable field names, `format` versioned).
pub fn render_json(r: &RunReport) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The Markdown report.
pub fn render_markdown(r: &RunReport) -> String {
    let mut o = String::new();
    let run = &r.run;
    let _ = writeln!(
        o,
        "# {} of `{}` on `{}`: {}\n",
        title_of(r),
        run.runbook,
        run.environment,
        run.status
    );
    let _ = writeln!(o, "Run `{}` ({}).\n", run.id, run.mode);
    let _ = writeln!(o, "## Summary\n");
    let _ = writeln!(o, "- Trigger: {}", r.trigger.text);
    let _ = writeln!(o, "- Started: {}", format_ts(run.started_at));
    let ended = run
        .ended_at
        .map(format_ts)
        .unwrap_or_else(|| "not ended".into());
    let _ = writeln!(o, "- Ended: {ended}");
    if let Some(e) = &run.error {
        let _ = writeln!(o, "- Error: {e}");
    }
    if let Some(p) = run.params.as_object().filter(|p| !p.is_empty()) {
        let list: Vec<String> = p
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(&v.to_string())))
            .collect();
        let _ = writeln!(o, "- Parameters: {}", list.join(", "));
    }
    let m = &r.measures;
    let _ = writeln!(o, "- Time to detect: {}", measure(&m.time_to_detect));
    let _ = writeln!(o, "- Time to mitigate: {}", measure(&m.time_to_mitigate));
    let _ = writeln!(o, "- Time to recover: {}", measure(&m.time_to_recover));
    let c = &r.calls;
    let reads = c
        .reads
        .map(|n| n.to_string())
        .unwrap_or_else(|| "unknown".into());
    let _ = writeln!(
        o,
        "- Calls: {reads} read(s); {} mutating ({} ok, {} failed, {} throttled, {} in doubt)\n",
        c.mutating, c.ok, c.failed, c.throttled, c.in_doubt
    );
    detection_md(r, &mut o);
    drill_md(r, &mut o);
    let _ = writeln!(o, "## Timeline\n");
    for t in &r.timeline {
        let _ = writeln!(
            o,
            "- **{}** ({}) {}",
            offset(t.offset_ms),
            clock(t.at),
            t.text
        );
    }
    let _ = writeln!(o);
    steps_md(&r.steps, &mut o);
    rest_md(r, &mut o);
    o
}

fn title_of(r: &RunReport) -> &'static str {
    match r.run.mode {
        crate::status::RunMode::Drill => "Drill",
        crate::status::RunMode::Rollback => "Rollback",
        _ => "Run",
    }
}

/// `04:35:12Z`.
fn clock(ms: i64) -> String {
    format_ts(ms)
        .split(' ')
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

fn detection_md(r: &RunReport, o: &mut String) {
    let Some(d) = &r.detection else { return };
    let _ = writeln!(o, "## Detection\n");
    let _ = writeln!(
        o,
        "{} (watch session `{}`), at {}.",
        d.summary,
        d.session,
        format_ts(d.detected_at)
    );
    for e in &d.evidence {
        let _ = writeln!(o, "- {e}");
    }
    let _ = writeln!(o);
}

fn drill_md(r: &RunReport, o: &mut String) {
    let Some(d) = &r.drill else { return };
    let _ = writeln!(o, "## Drill phases\n");
    if let Some(s) = &d.stopped_by {
        let _ = writeln!(o, "**Stopped by a stop condition:** {s}\n");
    }
    let _ = writeln!(
        o,
        "| Phase | Start | Took | Outcome | Detail |\n|---|---|---|---|---|"
    );
    for p in &d.phases {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} |",
            p.phase,
            clock(p.started_at),
            span(p.ended_at - p.started_at),
            p.outcome,
            p.detail.replace('|', "\\|").replace('\n', "; ")
        );
    }
    if let Some(f) = &d.failback_run {
        let _ = writeln!(o, "\nFailback run: `{f}` (`failover report {f}`).");
    }
    let _ = writeln!(o, "\n### Against the previous drills\n");
    if d.comparison.iter().all(|t| t.previous_ms.is_empty()) {
        let _ = writeln!(
            o,
            "No previous drill of this runbook on this environment.\n"
        );
        return;
    }
    let _ = writeln!(
        o,
        "| Phase | This drill | Median before | Ratio | Trend |\n|---|---|---|---|---|"
    );
    for t in &d.comparison {
        let med = t.median_ms.map(span).unwrap_or_else(|| "n/a".into());
        let ratio = t
            .ratio
            .map(|x| format!("{x:.2}x"))
            .unwrap_or_else(|| "n/a".into());
        let trend: Vec<String> = t.previous_ms.iter().map(|ms| span(*ms)).collect();
        let flag = if t.regression { " **REGRESSION**" } else { "" };
        let _ = writeln!(
            o,
            "| {} | {} | {med} | {ratio}{flag} | {} |",
            t.phase,
            span(t.this_ms),
            trend.join(" → ")
        );
    }
    let _ = writeln!(o);
}

fn steps_md(steps: &[StepEntry], o: &mut String) {
    let _ = writeln!(o, "## Steps\n");
    let _ = writeln!(o, "| Step | Action | Start | End | Took | Outcome | Calls (ok/failed/throttled/in doubt) |\n|---|---|---|---|---|---|---|");
    for s in steps {
        let c = &s.calls;
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} ({}/{}/{}/{}) |",
            s.id,
            s.action,
            s.started_at.map(clock).unwrap_or_else(|| "-".into()),
            s.ended_at.map(clock).unwrap_or_else(|| "-".into()),
            s.duration_ms.map(span).unwrap_or_else(|| "-".into()),
            s.status,
            c.mutating,
            c.ok,
            c.failed,
            c.throttled,
            c.in_doubt
        );
    }
    let _ = writeln!(o);
    for s in steps
        .iter()
        .filter(|s| !s.skips.is_empty() || s.message.is_some())
    {
        let _ = writeln!(
            o,
            "- `{}`: {}",
            s.id,
            s.message
                .clone()
                .into_iter()
                .chain(s.skips.clone())
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    let _ = writeln!(o);
}

fn rest_md(r: &RunReport, o: &mut String) {
    let _ = writeln!(o, "## Approvals\n");
    if r.approvals.is_empty() {
        let _ = writeln!(o, "None.");
    }
    for a in &r.approvals {
        let c = a
            .comment
            .as_ref()
            .map(|c| format!(": \"{c}\""))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "- `{}` approved by {} at {}{c}",
            a.step,
            a.by,
            format_ts(a.at)
        );
    }
    let _ = writeln!(o, "\n## Traffic shed and restored\n");
    if r.traffic.is_empty() {
        let _ = writeln!(o, "None.");
    }
    for t in &r.traffic {
        let _ = writeln!(o, "- {} `{}` {}", clock(t.at), t.tier, t.change);
    }
    let _ = writeln!(o, "\n## Databases promoted (data at risk)\n");
    if r.promotions.is_empty() {
        let _ = writeln!(o, "None.");
    }
    for p in &r.promotions {
        let lag = match (p.replica_lag_ms, &p.replica_lag_note) {
            (Some(ms), _) => format!(
                "replica lag at promotion {} (data at risk)",
                span(ms as i64)
            ),
            (None, Some(n)) => format!("replica lag at promotion: {n}"),
            (None, None) => "replica lag at promotion: unknown".into(),
        };
        let ok = if p.ok { "" } else { " (the call failed)" };
        let _ = writeln!(
            o,
            "- {} `{}`: writer to `{}` ({} -> {}){ok}; {lag}",
            clock(p.at),
            p.cluster,
            p.target,
            p.from_zone,
            p.to_zone
        );
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One bar of the time axis: label, start and end (epoch ms), outcome class.
struct Bar {
    label: String,
    from: i64,
    to: i64,
    class: &'static str,
}

fn bars(r: &RunReport) -> Vec<Bar> {
    let class = |ok: bool| if ok { "ok" } else { "bad" };
    if let Some(d) = &r.drill {
        return d
            .phases
            .iter()
            .map(|p| Bar {
                label: format!("{} ({})", p.phase, span(p.ended_at - p.started_at)),
                from: p.started_at,
                to: p.ended_at,
                class: if p.outcome == "skipped" {
                    "skip"
                } else {
                    class(p.outcome == "ok")
                },
            })
            .collect();
    }
    r.steps
        .iter()
        .filter_map(|s| {
            let (from, to) = (s.started_at?, s.ended_at.or(r.run.ended_at)?);
            Some(Bar {
                label: format!("{} ({})", s.id, span(to - from)),
                from,
                to,
                class: class(!matches!(s.status, crate::status::StepStatus::Failed)),
            })
        })
        .collect()
}

/// The phases (a drill's) or steps on a time axis, as inline SVG.
fn svg(r: &RunReport) -> String {
    let bars = bars(r);
    let start = bars
        .iter()
        .map(|b| b.from)
        .min()
        .unwrap_or(r.run.started_at);
    let end = bars
        .iter()
        .map(|b| b.to)
        .max()
        .unwrap_or(start)
        .max(start + 1);
    let (left, width, row) = (260.0, 600.0, 26.0);
    let x = |t: i64| left + (t - start) as f64 / (end - start) as f64 * width;
    let h = row * bars.len() as f64 + 40.0;
    let mut o = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{h}\" role=\"img\" aria-label=\"time axis\">\n", left + width + 20.0);
    for (i, b) in bars.iter().enumerate() {
        let y = 10.0 + row * i as f64;
        let w = (x(b.to) - x(b.from)).max(2.0);
        let _ = writeln!(o, "<text x=\"4\" y=\"{:.0}\">{}</text><rect class=\"{}\" x=\"{:.1}\" y=\"{y:.0}\" width=\"{w:.1}\" height=\"18\"><title>{}</title></rect>", y + 14.0, esc(&b.label), b.class, x(b.from), esc(&b.label));
    }
    let y = 10.0 + row * bars.len() as f64;
    let _ = writeln!(
        o,
        "<line x1=\"{left}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#555\"/>",
        left + width
    );
    for k in 0..=4 {
        let t = start + (end - start) * k / 4;
        let _ = writeln!(
            o,
            "<text x=\"{:.0}\" y=\"{:.0}\" class=\"tick\">{}</text>",
            x(t) - 20.0,
            y + 18.0,
            offset(t - start)
        );
    }
    o.push_str("</svg>\n");
    o
}

/// One self-contained HTML page: the Markdown report's content, with the time axis.
pub fn render_html(r: &RunReport) -> String {
    let mut o = String::new();
    let run = &r.run;
    let title = format!(
        "{} of {} on {}: {}",
        title_of(r),
        run.runbook,
        run.environment,
        run.status
    );
    let _ = writeln!(
        o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>",
        esc(&title)
    );
    o.push_str("<style>body{font:14px/1.45 system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}rect.ok{fill:#3a8f50}rect.bad{fill:#c0392b}rect.skip{fill:#aaa}text{font-size:12px}.tick{fill:#555}.reg{color:#c0392b;font-weight:bold}</style></head><body>\n");
    let _ = writeln!(
        o,
        "<h1>{}</h1>\n<p>Run <code>{}</code> ({}). {}</p>",
        esc(&title),
        esc(&run.id),
        run.mode,
        esc(&r.trigger.text)
    );
    let m = &r.measures;
    let _ = writeln!(o, "<ul><li>Started {}</li><li>Time to detect: {}</li><li>Time to mitigate: {}</li><li>Time to recover: {}</li></ul>", format_ts(run.started_at), esc(&measure(&m.time_to_detect)), esc(&measure(&m.time_to_mitigate)), esc(&measure(&m.time_to_recover)));
    let _ = writeln!(
        o,
        "<h2>{}</h2>",
        if r.drill.is_some() { "Phases" } else { "Steps" }
    );
    o.push_str(&svg(r));
    if let Some(d) = &r.drill {
        if let Some(s) = &d.stopped_by {
            let _ = writeln!(
                o,
                "<p class=\"reg\">Stopped by a stop condition: {}</p>",
                esc(s)
            );
        }
        o.push_str("<table><tr><th>Phase</th><th>This drill</th><th>Median before</th><th>Ratio</th></tr>\n");
        for t in &d.comparison {
            let ratio = t
                .ratio
                .map(|x| format!("{x:.2}x"))
                .unwrap_or_else(|| "n/a".into());
            let flag = if t.regression {
                " <span class=\"reg\">regression</span>"
            } else {
                ""
            };
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{ratio}{flag}</td></tr>",
                esc(&t.phase),
                span(t.this_ms),
                t.median_ms.map(span).unwrap_or_else(|| "n/a".into())
            );
        }
        o.push_str("</table>\n");
    }
    o.push_str("<h2>Timeline</h2>\n<table>\n");
    for t in &r.timeline {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            offset(t.offset_ms),
            clock(t.at),
            esc(&t.text)
        );
    }
    o.push_str("</table>\n<h2>Databases promoted</h2>\n<ul>\n");
    for p in &r.promotions {
        let lag = p
            .replica_lag_ms
            .map(|ms| span(ms as i64))
            .or_else(|| p.replica_lag_note.clone())
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "<li>{} → {} ({} → {}); replica lag at promotion: {}</li>",
            esc(&p.cluster),
            esc(&p.target),
            esc(&p.from_zone),
            esc(&p.to_zone),
            esc(&lag)
        );
    }
    o.push_str("</ul>\n</body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_offsets() {
        assert_eq!(span(850), "850ms");
        assert_eq!(span(84_000), "1m24s");
        assert_eq!(span(2 * 3_600_000 + 20 * 60_000), "2h20m00s");
        assert_eq!(offset(-5_000), "-00:00:05");
        assert_eq!(offset(3_723_000), "+01:02:03");
    }
}
