//! `failover report`, `failover drill` and `failover drills`: parse, call `app`, render.

use super::args::{exit, DrillsCommand, Output, ReportFormat};
use super::{on_signals, print_json, terminal};
use failover::app::drill::{DrillOrder, DrillResult};
use failover::app::{self, App, AppError};
use failover::report::run_report;
use failover::status::RunStatus;
use std::path::PathBuf;
use std::sync::Arc;

pub async fn report(
    app: &App,
    run_id: &str,
    format: ReportFormat,
    out: Option<PathBuf>,
) -> Result<u8, AppError> {
    let r = app::report::report(app, run_id).await?;
    let text = match format {
        ReportFormat::Md => run_report::render_markdown(&r),
        ReportFormat::Json => run_report::render_json(&r) + "\n",
        ReportFormat::Html => run_report::render_html(&r),
    };
    match out {
        Some(path) => {
            std::fs::write(&path, text).map_err(|e| {
                AppError::Input(format!(
                    "error: cannot write {}: {e}\n  hint: check the directory exists and is writable",
                    path.display()
                ))
            })?;
            eprintln!("Report of run {} written to {}.", r.run.id, path.display());
        }
        None => print!("{text}"),
    }
    Ok(exit::OK)
}

pub async fn drill(app: &App, mut order: DrillOrder, output: Output) -> Result<u8, AppError> {
    let stop = order.stop.clone();
    if output == Output::Text {
        order.on_phase = Some(Arc::new(|p| {
            println!(
                "== drill phase {}: {} ({})",
                p.phase,
                p.outcome,
                run_report::span(p.ended_at - p.started_at)
            );
            println!("   {}", p.detail);
        }));
    }
    let prepared = app::drill::prepare_drill(app, order)?;
    let run_id = prepared.run_id().clone();
    if output == Output::Text && prepared.simulated() {
        println!(
            "Drill {run_id} in a simulated environment: no AWS call is made; time is virtual."
        );
    }
    let r = on_signals(
        app,
        &run_id,
        stop,
        app::drill::drill(app, prepared, terminal(output)),
    )
    .await?;
    match output {
        Output::Json => print_json(&r),
        Output::Text => print_drill(&r),
    }
    Ok(drill_exit(&r))
}

fn print_drill(r: &DrillResult) {
    println!(
        "\nDrill {} {}.",
        r.run_id,
        r.status.as_str().replace('_', " ")
    );
    if let Some(c) = &r.stopped_by {
        println!("Stopped by a stop condition: {c}");
    }
    if let Some(e) = &r.error {
        println!("{e}");
    }
    for p in &r.phases {
        println!(
            "  {:<16} {:<8} {}",
            p.phase,
            p.outcome,
            run_report::span(p.ended_at - p.started_at)
        );
    }
    println!("Report: failover report {}", r.run_id);
}

/// The exit code of a drill, as `run`'s: 0 succeeded, 130 interrupted, 1 otherwise.
pub fn drill_exit(r: &DrillResult) -> u8 {
    match r.status {
        RunStatus::Succeeded => exit::OK,
        RunStatus::Interrupted => exit::INTERRUPTED,
        _ => exit::RUN_FAILED,
    }
}

pub async fn drills(
    app: &App,
    command: Option<DrillsCommand>,
    env: Option<String>,
    output: Output,
) -> Result<u8, AppError> {
    let now_wall = failover::journal::now_ms();
    match command {
        None => {
            let list = app::drills::list(app, env.as_deref(), now_wall).await?;
            match output {
                Output::Json => print_json(&list),
                Output::Text => print!("{}", render_schedules(&list)),
            }
            Ok(exit::OK)
        }
        Some(DrillsCommand::RunDue { now, env: only }) => {
            let now = match now {
                Some(s) => parse_now(&s)?,
                None => now_wall,
            };
            let only = only.or(env);
            let mut say = |o: &app::drills::DueOutcome| {
                if output == Output::Text {
                    println!("{}", render_due(o));
                }
            };
            let stop = failover::engine::Stop::default();
            let done = app::drills::run_due(app, only.as_deref(), now, &stop, &mut say).await?;
            if output == Output::Json {
                print_json(&done);
            } else if done.is_empty() {
                println!("No drill is due.");
            }
            let bad = done.iter().any(|o| {
                o.what == "missed"
                    || o.what == "failed_to_start"
                    || o.status.is_some_and(|s| s != RunStatus::Succeeded)
            });
            Ok(if bad { exit::RUN_FAILED } else { exit::OK })
        }
    }
}

fn parse_now(s: &str) -> Result<i64, AppError> {
    humantime::parse_rfc3339_weak(s)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .ok_or_else(|| {
            AppError::Input(format!(
                "error: --now `{s}` is not an RFC 3339 time\n  hint: e.g. --now 2026-12-01T03:00:00Z"
            ))
        })
}

fn render_due(o: &app::drills::DueOutcome) -> String {
    let what = match o.what.as_str() {
        "ran" => format!(
            "ran drill {} ({})",
            o.drill_run.as_deref().unwrap_or("?"),
            o.status.map(|s| s.to_string()).unwrap_or_default()
        ),
        "missed" => "MISSED".to_string(),
        "claimed_elsewhere" => "already claimed by another process".to_string(),
        other => other.to_string(),
    };
    let why = o.why.as_ref().map(|w| format!(": {w}")).unwrap_or_default();
    let notify = o
        .notify_error
        .as_ref()
        .map(|e| format!(" (notification not sent: {e})"))
        .unwrap_or_default();
    format!(
        "{}/{} slot {}: {what}{why}{notify}",
        o.environment, o.schedule, o.slot_local
    )
}

fn render_schedules(list: &[app::drills::ScheduleStatus]) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    if list.is_empty() {
        o.push_str(
            "No drill is scheduled: add [[drills]] to an environment file (docs/drills.md).\n",
        );
    }
    for s in list {
        let d = &s.schedule;
        let _ = writeln!(
            o,
            "{}/{}: `{}` at cron `{}` ({}){}",
            s.environment,
            d.name,
            d.runbook,
            d.cron,
            d.timezone,
            if d.no_failback { ", no failback" } else { "" }
        );
        let _ = writeln!(
            o,
            "  next: {}{}",
            s.next_local.as_deref().unwrap_or("none within a year"),
            s.blackout_now
                .as_ref()
                .map(|b| format!(" (now in a {b})"))
                .unwrap_or_default()
        );
        if s.last.is_empty() {
            let _ = writeln!(o, "  last: no drill yet");
        }
        for r in &s.last {
            let _ = writeln!(
                o,
                "  last: {} {}{}{}",
                r.slot_local,
                r.outcome,
                r.drill_run
                    .as_ref()
                    .map(|x| format!(" (failover report {x})"))
                    .unwrap_or_default(),
                r.why.as_ref().map(|w| format!(": {w}")).unwrap_or_default()
            );
        }
    }
    o
}
