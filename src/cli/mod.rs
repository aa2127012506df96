//! The CLI: one arm per subcommand, each a call into `failover::app` and a rendering of what it
//! returns (text for people, JSON for machines). No decision is made here.

pub mod args;
mod discover;
mod drills;
mod generate;

use args::{exit, AuditCommand, Cli, Command, LocalPeerCommand, Output, TokenCommand};
use failover::app::lifecycle::RunResult;
use failover::app::load::initiator;
use failover::app::run::{MakeReporter, RunOrder};
use failover::app::{self, App, AppError, FailureClass};
use failover::engine::{Stop, StopKind};
use failover::journal::Journal;
use failover::progress::{Reporter, Silent};
use failover::report::{self, Terminal};
use failover::status::RunStatus;
use failover::timefmt::format_ts;
use std::sync::Arc;

/// The exit code of a failure (documented in README.md and docs/cli.md).
pub fn exit_code(e: &AppError) -> u8 {
    match e.class() {
        FailureClass::Invalid => exit::INVALID,
        FailureClass::Cloud => exit::CLOUD,
        FailureClass::Journal => exit::JOURNAL,
        FailureClass::Refused => exit::REFUSED,
    }
}

fn print_json<T: serde::Serialize>(v: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    );
}

fn ok_or_failed(ok: bool) -> u8 {
    if ok {
        exit::OK
    } else {
        exit::RUN_FAILED
    }
}

/// Live progress on stdout (text) or stderr (JSON output), stamped on the run's clock.
fn terminal(output: Output) -> MakeReporter {
    Box::new(move |clock| -> Arc<dyn Reporter> {
        let t = match output {
            Output::Text => Terminal::stdout(),
            Output::Json => Terminal::stderr(),
        };
        Arc::new(t.with_clock(clock))
    })
}

pub async fn dispatch(cli: Cli) -> Result<u8, AppError> {
    let app = App::new(
        cli.config_dir.clone(),
        cli.journal.clone().unwrap_or_else(Journal::default_path),
    );
    match cli.command {
        Command::Validate {
            runbooks,
            env,
            output,
        } => Ok(validate(&app, &runbooks, env.as_deref(), output)),
        Command::Plan { target: t, output } => {
            plan(&app, &t.runbook, &t.env, &t.params, output).await
        }
        Command::Lint {
            target: t,
            failed_region,
            output,
        } => lint(
            &app,
            &t.runbook,
            &t.env,
            &t.params,
            failed_region.as_deref(),
            output,
        ),
        Command::IamPolicy {
            target: t,
            account,
            watch,
        } => {
            let order = app::iam::PolicyOrder {
                runbook: &t.runbook,
                env: &t.env,
                params: &t.params,
                account: account.as_deref(),
                watch,
            };
            let (doc, notes) = app::iam::iam_policy(&app, &order)?;
            for n in notes {
                eprintln!("note: {n}");
            }
            print_json(&doc);
            Ok(0)
        }
        Command::Run {
            target: t,
            by,
            require_approval,
            run_id,
            output,
        } => {
            let order = RunOrder {
                runbook: t.runbook,
                env: t.env,
                params: t.params,
                by,
                require_approval,
                run_id,
                stop: Stop::default(),
            };
            run(&app, order, output).await
        }
        Command::Runs { limit, output } => runs(&app, limit, output).await,
        Command::Show { run_id, output } => show(&app, &run_id, output).await,
        Command::Verify {
            expect_head,
            anchor,
            output,
        } => verify(&app, &expect_head, &anchor, output).await,
        Command::Audit { command } => audit(&app, command).await,
        Command::Approve { run_id, step, by } => approve(&app, &run_id, step, by).await,
        Command::Resume {
            run_id,
            by,
            allow_changed_runbook,
            output,
        } => {
            let order = app::resume::ResumeOrder {
                run_id,
                by: initiator(by),
                allow_changed_runbook,
                stop: Stop::default(),
            };
            resume(&app, order, output).await
        }
        Command::Abort { run_id, by, reason } => abort(&app, &run_id, by, reason).await,
        Command::Locks { all, output } => locks(&app, all, output).await,
        Command::Rollback {
            run_id,
            by,
            dry_run,
            force,
            output,
        } => rollback(&app, run_id, initiator(by), dry_run, force, output).await,
        Command::Report {
            run_id,
            format,
            out,
        } => drills::report(&app, &run_id, format, out).await,
        Command::Drill {
            target: t,
            by,
            no_failback,
            max_duration,
            stop_on,
            output,
        } => {
            let order = app::drill::DrillOrder {
                runbook: t.runbook,
                env: t.env,
                params: t.params,
                by,
                no_failback,
                max_duration,
                stop_on,
                stop: Stop::default(),
                run_id: None,
                on_phase: None,
            };
            drills::drill(&app, order, output).await
        }
        Command::Drills {
            command,
            env,
            output,
        } => drills::drills(&app, command, env, output).await,
        Command::Simulate {
            runbook,
            topology,
            env,
            params,
            faults,
            seed,
            verbose_timeline,
            output,
        } => {
            let r = app::simulate::simulate_files(
                &app,
                &runbook,
                &topology,
                env.as_deref(),
                &params,
                &faults,
                seed,
            )?;
            Ok(simulated(&r, output, verbose_timeline, false))
        }
        Command::Demo { seed, output } => {
            let r = app::simulate::demo(seed.unwrap_or(app::simulate::DEMO_SEED))?;
            Ok(simulated(&r, output, false, true))
        }
        Command::Health {
            env,
            rounds,
            watch,
            output,
        } => health(&app, &env, rounds, watch, output).await,
        Command::Watch { env, max_events } => {
            let mut on = |e: app::watch::WatchEvent| print_watch(e);
            app::watch::watch(&app, &env, max_events, &mut on).await?;
            Ok(exit::OK)
        }
        Command::Traffic { env, output } => traffic(&app, &env, output).await,
        Command::LocalPeer {
            command: LocalPeerCommand::Seed { env },
        } => seed(&app, &env).await,
        Command::Serve {
            listen,
            runbooks,
            serve_config,
            no_probes,
            readiness_interval,
        } => {
            let o = ServeFlags {
                listen,
                runbooks,
                serve_config,
                probes: !no_probes,
                readiness_interval,
            };
            serve(app, o).await
        }
        Command::Token { command } => token(command),
        Command::Discover(a) => discover::discover(&app.config_dir, a).await,
        Command::Schema { format } => discover::schema(format),
        Command::Completions { shell } => generate::completions(shell),
        Command::Man { dir } => generate::man(dir.as_deref()),
    }
}

async fn plan(
    app: &App,
    runbook: &std::path::Path,
    env: &str,
    params: &[(String, String)],
    output: Output,
) -> Result<u8, AppError> {
    let p = app::run::plan(app, runbook, env, params).await?;
    match output {
        Output::Json => print_json(
            &serde_json::json!({"plan": p.plan, "params": p.params, "mutating_calls": p.plan.mutating_calls(), "problems": p.plan.problems(), "calls": p.calls}),
        ),
        Output::Text => {
            print!("{}", report::render_plan(&p.plan, &p.params));
            println!("Observed with {}", p.calls.line());
        }
    }
    Ok(ok_or_failed(p.plan.problems().is_empty()))
}

async fn run(app: &App, order: RunOrder, output: Output) -> Result<u8, AppError> {
    let stop = order.stop.clone();
    let prepared = app::run::prepare_run(app, order)?;
    let run_id = prepared.run_id().clone();
    if let (Some(t), Output::Text) = (prepared.simulated(), output) {
        println!(
            "Environment `{}` is simulated ({}, seed {}): no AWS call is made; time is virtual.",
            prepared.environment(),
            t.topology.origin,
            t.seed
        );
    }
    let result = on_signals(
        app,
        &run_id,
        stop,
        app::run::run(app, prepared, terminal(output)),
    )
    .await?;
    Ok(finished(&result, output, false))
}

async fn resume(
    app: &App,
    order: app::resume::ResumeOrder,
    output: Output,
) -> Result<u8, AppError> {
    let stop = order.stop.clone();
    let prepared = app::resume::prepare_resume(app, order).await?;
    for w in &prepared.warnings {
        eprintln!("warning: {w}");
    }
    let run_id = prepared.run_id().clone();
    if output == Output::Text {
        let done = prepared.finished_steps();
        if !done.is_empty() {
            println!(
                "Resuming run {run_id}: finished before it stopped, not run again: {}",
                done.join(", ")
            );
        }
    }
    let result = on_signals(
        app,
        &run_id,
        stop,
        app::resume::resume(app, prepared, terminal(output)),
    )
    .await?;
    Ok(finished(&result, output, false))
}

async fn approve(
    app: &App,
    run_id: &str,
    step: Option<String>,
    by: Option<String>,
) -> Result<u8, AppError> {
    // A name given with --by is taken as it is: an empty one is refused by the approval rules,
    // never replaced by $USER or `unknown` (which would count as one more person).
    let by = by.unwrap_or_else(|| initiator(None));
    let a = app::approve::approve(app, run_id, step.as_deref(), by).await?;
    if a.released() {
        println!(
            "Approved step `{}` of run {} as {}. The run continues.",
            a.step_id, a.run_id, a.by
        );
    } else {
        println!(
            "Approved step `{}` of run {} as {} ({} of {} approvals): the gate waits for {} more person(s).",
            a.step_id,
            a.run_id,
            a.by,
            a.count,
            a.required,
            a.required as usize - a.count
        );
    }
    Ok(exit::OK)
}

async fn abort(
    app: &App,
    run_id: &str,
    by: Option<String>,
    reason: Option<String>,
) -> Result<u8, AppError> {
    let a = app::resume::abort(app, run_id, initiator(by), reason).await?;
    println!("Run {} aborted; its leases are released.", a.run_id);
    if let Some(h) = &a.live_on {
        println!(
            "Its process on {h} was alive: it makes no further call and stops at its next one."
        );
    }
    if a.in_doubt > 0 {
        println!(
            "{} call(s) of it are in doubt (intent, no outcome): check them with `failover show {}`.",
            a.in_doubt, a.run_id
        );
    }
    Ok(exit::OK)
}

async fn locks(app: &App, all: bool, output: Output) -> Result<u8, AppError> {
    let (leases, now) = app::inspect::locks(app).await?;
    let shown: Vec<_> = leases
        .into_iter()
        .filter(|l| all || l.live_at(now))
        .collect();
    match output {
        Output::Json => print_json(&shown),
        Output::Text => print!("{}", report::render_locks(&shown, now, all)),
    }
    Ok(exit::OK)
}

/// Run `fut` to its end; on Ctrl-C or SIGTERM ask the run to stop between calls (it ends
/// `interrupted`, resumable). A second signal leaves at once: the run is marked
/// `interrupted`, and any call in flight is in doubt.
async fn on_signals<T>(
    app: &App,
    run_id: &failover::types::RunId,
    stop: Stop,
    fut: impl std::future::Future<Output = T>,
) -> T {
    tokio::pin!(fut);
    let mut asked = false;
    loop {
        tokio::select! {
            r = &mut fut => return r,
            _ = signal() => {
                if asked {
                    eprintln!("\nleaving now: run {run_id} is marked interrupted; calls in flight are in doubt (`failover show {run_id}`, then `failover resume {run_id}`)");
                    app.mark(run_id, RunStatus::Interrupted, "interrupted by a second signal while calls were in flight");
                    std::process::exit(exit::INTERRUPTED.into());
                }
                eprintln!("\ninterrupt: stopping after the calls in flight (interrupt again to leave at once)");
                stop.request(StopKind::Interrupted, "interrupted by a signal (Ctrl-C or SIGTERM)");
                asked = true;
            }
        }
    }
}

/// Ctrl-C, or SIGTERM where there is one.
async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn runs(app: &App, limit: usize, output: Output) -> Result<u8, AppError> {
    let runs = app::inspect::runs(app, limit).await?;
    match output {
        Output::Json => print_json(
            &runs
                .iter()
                .map(|(r, l)| {
                    let mut v = serde_json::to_value(r).unwrap_or_default();
                    v["liveness"] = serde_json::to_value(l).unwrap_or_default();
                    v
                })
                .collect::<Vec<_>>(),
        ),
        Output::Text => print!("{}", report::render_runs(&runs)),
    }
    Ok(exit::OK)
}

async fn show(app: &App, run_id: &str, output: Output) -> Result<u8, AppError> {
    let d = app::inspect::show(app, run_id).await?;
    match output {
        Output::Json => print_json(
            &serde_json::json!({"run": d.run, "liveness": d.liveness, "steps": d.steps, "events": d.events, "open_intents": d.open_intents}),
        ),
        Output::Text => print!(
            "{}",
            report::render_show(&d.run, d.liveness, &d.steps, &d.events, &d.open_intents)
        ),
    }
    Ok(exit::OK)
}

async fn verify(
    app: &App,
    expect: &[String],
    anchors: &[std::path::PathBuf],
    output: Output,
) -> Result<u8, AppError> {
    let heads = expect
        .iter()
        .map(|h| {
            h.parse()
                .map_err(|e| AppError::Input(format!("error: --expect-head: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let v = app::inspect::verify(app, heads, anchors).await?;
    match output {
        Output::Json => print_json(&v.report),
        Output::Text => print!("{}", report::render_verify(&v)),
    }
    Ok(ok_or_failed(v.report.intact()))
}

async fn audit(app: &App, command: AuditCommand) -> Result<u8, AppError> {
    match command {
        AuditCommand::Head => match app::inspect::head(app).await? {
            Some(h) => println!("{h}"),
            None => println!("0:"),
        },
        AuditCommand::Export { since } => {
            let mut out = std::io::stdout();
            app::inspect::export(app, since, &mut out).await?;
        }
    }
    Ok(exit::OK)
}

/// Print a simulation's report (`demo`: with what to try next).
fn simulated(r: &app::simulate::SimReport, output: Output, verbose: bool, demo: bool) -> u8 {
    match output {
        Output::Json => print_json(r),
        Output::Text => {
            print!("{}", report::sim::render_text(r, verbose));
            if demo {
                print!("{DEMO_NEXT}");
            }
        }
    }
    ok_or_failed(r.succeeded())
}

async fn health(
    app: &App,
    env: &str,
    rounds: u32,
    watch: bool,
    output: Output,
) -> Result<u8, AppError> {
    let mut on = |n: u32, r: &failover::health::HealthReport| match output {
        Output::Json => println!("{}", serde_json::to_string(r).unwrap_or_default()),
        Output::Text => {
            if watch {
                println!("--- round {n} ---");
            }
            print!("{}", r.render_text());
        }
    };
    app::inspect::health(app, env, rounds, watch, &mut on).await?;
    Ok(exit::OK)
}

async fn traffic(app: &App, env: &str, output: Output) -> Result<u8, AppError> {
    let t = app::inspect::traffic_state(app, env).await?;
    match output {
        Output::Json => print_json(&report::traffic::state_document(&t)),
        Output::Text => print!("{}", report::traffic::render(&t)),
    }
    Ok(exit::OK)
}

async fn seed(app: &App, env: &str) -> Result<u8, AppError> {
    let (env, s) = app::inspect::seed_local_peer(app, env).await?;
    println!(
        "Seeded environment `{}` at {}: {} cluster(s), {} instance(s), {} hosted zone(s), {} record set(s), {} alarm(s).",
        env.name,
        env.aws.endpoint_url.as_deref().unwrap_or("?"),
        s.clusters.len(),
        s.instances.len(),
        s.hosted_zones.len(),
        s.records,
        s.alarms
    );
    Ok(exit::OK)
}

const DEMO_NEXT: &str = "
This ran in the simulated cloud (virtual time, seeded). Try it your way:
  failover simulate runbooks/az-evacuation.toml --topology config/sim/storefront.toml -p failed_az=us-west-2a --fault \"az-down us-west-2a at 0s\" --fault \"route53-down at 20s for 2m\"
  failover simulate runbooks/az-evacuation.toml --topology config/sim/oregon-two-az-outage.toml -p failed_az=us-west-2a,us-west-2b
The evacuation alone, shedding load while it fails over (crawlers first, checkout never):
  failover simulate runbooks/az-evacuation.toml --topology config/sim/storefront.toml -p failed_az=us-west-2a -p shed_load=true --fault \"az-down us-west-2a at 0s\"
";

fn print_watch(e: app::watch::WatchEvent) {
    use app::watch::WatchEvent;
    match e {
        WatchEvent::Started(line) => println!("{line}"),
        WatchEvent::Decision { at_ms, text, .. } => println!("[{}] {text}", format_ts(at_ms)),
        WatchEvent::RunStarted { run_id, how, log } => match log {
            Some(log) => println!(
                "  started run {run_id} ({how}); output in {}",
                log.display()
            ),
            None => println!("  started run {run_id} ({how})"),
        },
        WatchEvent::RunNotStarted { error } => {
            eprintln!("  could not start the runbook: {error}")
        }
        WatchEvent::NotifyFailed { error } => eprintln!("  notification failed: {error}"),
        WatchEvent::Role { text, .. } => println!("{text}"),
    }
}

fn validate(app: &App, runbooks: &[std::path::PathBuf], env: Option<&str>, output: Output) -> u8 {
    let v = app::inspect::validate(app, runbooks, env);
    let diags = &v.diagnostics;
    let env_list = if v.environments.is_empty() {
        "no environment (none found in the config directory)".to_string()
    } else {
        format!("environment(s) {}", v.environments.join(", "))
    };
    match output {
        Output::Json => print_json(
            &serde_json::json!({"ok": diags.is_empty(), "runbooks": v.runbooks, "valid": v.valid, "drills": v.drills, "broken_drills": v.broken_drills, "triggers": v.triggers, "broken_triggers": v.broken_triggers, "environments": v.environments, "not_applicable": v.not_applicable, "diagnostics": diags.0}),
        ),
        Output::Text if diags.is_empty() => {
            let mut what = vec![format!("{} runbook(s)", v.runbooks)];
            if v.drills > 0 {
                what.push(format!("{} drill schedule(s)", v.drills));
            }
            if v.triggers > 0 {
                what.push(format!("{} health trigger runbook(s)", v.triggers));
            }
            println!("ok: {} valid against {env_list}", and_list(&what));
            for n in &v.not_applicable {
                println!(
                    "  {}: not checked against {} ({})",
                    n.runbook,
                    n.environments.join(", "),
                    n.why
                );
            }
        }
        Output::Text => {
            let scope = if v.broken_environments > 0 {
                format!("{} problem(s) found; {} environment file(s) could not be loaded, so runbooks were not checked against them", diags.len(), v.broken_environments)
            } else {
                let mut what = vec![format!(
                    "{} of {} runbook(s)",
                    v.runbooks - v.valid,
                    v.runbooks
                )];
                if v.drills > 0 {
                    what.push(format!(
                        "{} of {} drill schedule(s)",
                        v.broken_drills, v.drills
                    ));
                }
                if v.triggers > 0 {
                    what.push(format!(
                        "{} of {} health trigger runbook(s)",
                        v.broken_triggers, v.triggers
                    ));
                }
                format!(
                    "{} problem(s) found in {} checked against {env_list}",
                    diags.len(),
                    and_list(&what)
                )
            };
            eprintln!("{diags}\n\n{scope}.");
        }
    }
    if diags.is_empty() {
        exit::OK
    } else {
        exit::INVALID
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

fn lint(
    app: &App,
    runbook: &std::path::Path,
    env: &str,
    params: &[(String, String)],
    failed_region: Option<&str>,
    output: Output,
) -> Result<u8, AppError> {
    let r = app::lint::run_lint(app, runbook, env, params, failed_region)?;
    match output {
        Output::Json => print_json(&r),
        Output::Text => {
            for f in &r.findings {
                println!(
                    "{}:{}:{}: warning: step `{}` {}\n  instead: {}",
                    r.file, f.line, f.col, f.finding.step, f.finding.message, f.finding.instead
                );
            }
            let n = r.findings.len();
            let head = if n == 0 {
                "ok: no step depends on the failed region's control plane".to_string()
            } else {
                format!("\n{n} warning(s)")
            };
            println!(
                "{head}: runbook `{}` on `{}` if {} fails ({}).",
                r.runbook, r.environment, r.failed_region, r.assumed
            );
        }
    }
    Ok(ok_or_failed(r.findings.is_empty()))
}

async fn rollback(
    app: &App,
    run_id: String,
    by: String,
    dry_run: bool,
    force: bool,
    output: Output,
) -> Result<u8, AppError> {
    let order = app::rollback::RollbackOrder {
        run_id,
        by,
        force,
        stop: Stop::default(),
    };
    let prepared = app::rollback::prepare_rollback(app, order).await?;
    for w in &prepared.warnings {
        eprintln!("warning: {w}");
    }
    if dry_run {
        let plan = app::rollback::plan_rollback(&prepared).await?;
        match output {
            Output::Json => print_json(&plan),
            Output::Text => print!(
                "{}",
                report::render_plan(&plan, &std::collections::BTreeMap::new())
            ),
        }
        return Ok(ok_or_failed(plan.problems().is_empty()));
    }
    let reporter: MakeReporter = match output {
        Output::Text => terminal(output),
        Output::Json => Box::new(|_| Arc::new(Silent)),
    };
    let result = app::rollback::rollback(app, prepared, reporter).await?;
    Ok(finished(&result, output, true))
}

/// Print how a run ended; `strict`: any failed step fails the command (rollback), even one
/// with on_failure = continue.
fn finished(r: &RunResult, output: Output, strict: bool) -> u8 {
    match output {
        Output::Json => print_json(&r.outcome),
        Output::Text => {
            println!(
                "\nRun {} {}.",
                r.run_id,
                r.status.as_str().replace('_', " ")
            );
            if let Some(e) = &r.error {
                println!("{e}");
            }
            for (id, st, _) in &r.outcome.steps {
                println!("  {:<24} {}", id.to_string(), st.as_str());
            }
            println!("Details: failover show {}", r.run_id);
            match r.status {
                RunStatus::Interrupted | RunStatus::Crashed | RunStatus::Failed => println!(
                    "Continue it with `failover resume {}`: finished steps are not run again, and steps observe before acting.",
                    r.run_id
                ),
                RunStatus::Running | RunStatus::WaitingApproval => println!(
                    "This process lost the run's leases ({}); another process owns the run now.",
                    r.error.as_deref().unwrap_or("?")
                ),
                _ => {}
            }
        }
    }
    match r.status {
        RunStatus::Interrupted => exit::INTERRUPTED,
        RunStatus::Crashed | RunStatus::Aborted => exit::RUN_FAILED,
        // Fenced off: another process owns the run now.
        RunStatus::Running | RunStatus::WaitingApproval => exit::RUN_FAILED,
        _ => ok_or_failed(r.outcome.succeeded && (!strict || r.failed_steps().is_empty())),
    }
}

/// `failover serve`: resolve the settings (flag or environment variable, else the service
/// file, else the default), bind, print where, serve until a signal.
struct ServeFlags {
    listen: Option<String>,
    runbooks: Option<std::path::PathBuf>,
    serve_config: Option<std::path::PathBuf>,
    probes: bool,
    readiness_interval: Option<String>,
}

/// `--readiness-interval`: a duration within bounds, `off`, or the file's, else the default.
fn readiness_interval(
    flag: Option<&str>,
    file: &failover::serve::config::ServeConfig,
) -> Result<Option<std::time::Duration>, AppError> {
    use failover::serve::config;
    let Some(text) = flag else {
        return Ok(Some(
            file.readiness_interval
                .unwrap_or(config::DEFAULT_READINESS_INTERVAL),
        ));
    };
    if text.trim() == "off" {
        return Ok(None);
    }
    let bad = |e: String| {
        AppError::Input(format!("error: --readiness-interval {text}: {e}\n  hint: a duration such as 5m (1s to 24h), or `off`"))
    };
    let d = failover::limits::parse_duration(text).map_err(bad)?;
    config::check_readiness_interval(d).map(Some).map_err(bad)
}

async fn serve(app: App, flags: ServeFlags) -> Result<u8, AppError> {
    use failover::serve::{config, Ended, ServeOptions, Server};
    let ServeFlags {
        listen,
        runbooks,
        serve_config,
        probes,
        readiness_interval: readiness_flag,
    } = flags;
    let required = serve_config.is_some();
    let path = serve_config.unwrap_or_else(|| config::default_path(&app.config_dir));
    let file = config::ServeConfig::load(&path, required)?;
    let readiness = readiness_interval(readiness_flag.as_deref(), &file)?;
    let options = ServeOptions {
        readiness,
        listen: listen
            .or_else(|| file.listen.clone())
            .unwrap_or_else(|| "127.0.0.1:8080".into()),
        runbooks: runbooks
            .or_else(|| file.runbooks.clone())
            .unwrap_or_else(|| "runbooks".into()),
        config: file,
        poll: std::time::Duration::from_millis(200),
        probes,
    };
    let journal = app.journal_path.clone();
    let (dir, tokens_from) = (
        options.runbooks.clone(),
        options.config.path.clone().unwrap_or(path),
    );
    let server = Server::bind(app, options).await?;
    let addr = server
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|| "?".into());
    println!("failover serve: listening on http://{addr}");
    println!("  API /v1 (OpenAPI: /v1/openapi.json), events /v1/events, metrics /metrics");
    println!(
        "  runbooks {}, journal {}, {} token(s) from {}",
        dir.display(),
        journal.display(),
        server.tokens(),
        tokens_from.display()
    );
    if server.tokens() == 0 {
        eprintln!("warning: no token is configured: every /v1 request will be refused (401); add one with `failover token new --name NAME --role operator`");
    }
    match server.run(signal).await? {
        Ended::Clean => {
            println!("failover serve: stopped; runs in progress were stopped between calls (`failover resume RUN` continues them)");
            Ok(exit::OK)
        }
        Ended::Forced(ids) => {
            for id in ids {
                eprintln!("leaving now: run {id} is marked interrupted; calls in flight are in doubt (`failover show {id}`, then `failover resume {id}`)");
            }
            Ok(exit::INTERRUPTED)
        }
    }
}

/// `failover token new` and `failover token hash`.
fn token(command: TokenCommand) -> Result<u8, AppError> {
    use failover::serve::config::{hash_token, new_token};
    match command {
        TokenCommand::New { name, roles } => {
            let t = new_token().map_err(AppError::Runtime)?;
            let roles: Vec<String> = roles.iter().map(|r| format!("\"{r}\"")).collect();
            println!(
                "Token for {name} (shown once; give it to them, keep only its hash):\n\n  {t}\n"
            );
            println!("Add to the service file (<config-dir>/serve/serve.toml):\n");
            println!(
                "[[tokens]]\nname = \"{name}\"\nroles = [{}]\nsha256 = \"{}\"",
                roles.join(", "),
                hash_token(&t)
            );
        }
        TokenCommand::Hash => {
            let mut t = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut t).map_err(|e| {
                AppError::Input(format!(
                    "error: cannot read the token on standard input: {e}"
                ))
            })?;
            if t.trim().is_empty() {
                return Err(AppError::Input(
                    "error: no token on standard input\n  hint: failover token hash < token.txt"
                        .into(),
                ));
            }
            println!("{}", hash_token(&t));
        }
    }
    Ok(exit::OK)
}
