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
        println!("Drill {run_id} in a simulated environment: no AWS call is made; time is virtual.");
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
    let _ = (app, command, env, output);
    Err(AppError::Input("error: not yet".into()))
}
