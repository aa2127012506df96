//! The subcommands: load and check input, wire the edges, call the core, print.

use crate::{exit, Cli, Command, Output};
use failover::cloud::aws;
use failover::cloud::{normalize_dns_name, ChangeAction, CloudError, RecordKey, RecordSet};
use failover::diag::Diagnostics;
use failover::engine::{self, progress::Silent, Ports, RunSpec};
use failover::env::Environment;
use failover::journal::{self, Journal, JournalError, RunRecord};
use failover::plan::Call;
use failover::report;
use failover::runbook::bind::{self, BoundAction, BoundStep, RestoreRecord, RunContext};
use failover::runbook::{OnFailure, Runbook};
use failover::types::StepId;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A failure with its exit code and a message for the terminal.
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<Diagnostics> for Failure {
    fn from(d: Diagnostics) -> Self {
        let n = d.len();
        Failure::new(
            exit::INVALID,
            format!("{d}\n\n{n} problem(s) found; nothing was changed."),
        )
    }
}

impl From<JournalError> for Failure {
    fn from(e: JournalError) -> Self {
        match e {
            JournalError::UnknownRun(id) => Failure::new(exit::REFUSED, format!("error: run `{id}` is not in the journal\n  hint: `failover runs` lists the runs; pass --journal if the run was recorded elsewhere")),
            JournalError::Refused(m) => Failure::new(exit::REFUSED, format!("error: {m}")),
            other => Failure::new(exit::JOURNAL, format!("error: {other}\n  hint: check that the journal's directory is writable, or pass --journal PATH")),
        }
    }
}

fn sim_failure(e: failover::simulate::SimError) -> Failure {
    use failover::simulate::SimError;
    match e {
        SimError::Invalid(d) => d.into(),
        SimError::Topology(t) => {
            Failure::new(exit::INVALID, format!("{t}\n\nnothing was simulated."))
        }
        SimError::Faults(_) => {
            Failure::new(exit::INVALID, format!("{e}\n\nnothing was simulated."))
        }
        other => Failure::new(exit::JOURNAL, format!("error: {other}")),
    }
}

/// `cloud_failure`, plus what is wrong with the environment's AWS profile when it is not
/// defined at all (the most common cause of "no credentials" at 3 a.m.).
fn env_cloud_failure(env: &Environment, e: CloudError, doing: &str) -> Failure {
    let mut f = cloud_failure(e.clone(), doing);
    if let (failover::cloud::ErrorKind::AccessDenied, Some(profile)) = (e.kind, &env.aws.profile) {
        let home = std::env::var_os("HOME")
            .map(std::path::PathBuf::from)
            .unwrap_or_default();
        let files = [
            std::env::var_os("AWS_CONFIG_FILE")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| home.join(".aws/config")),
            std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| home.join(".aws/credentials")),
        ];
        let defined = files.iter().any(|f| {
            std::fs::read_to_string(f).is_ok_and(|t| {
                t.lines().any(|l| {
                    let l = l.trim();
                    l == format!("[{profile}]") || l == format!("[profile {profile}]")
                })
            })
        });
        if !defined {
            f.message = f.message.replace(
                "\nNothing was changed.",
                &format!("\n  hint: environment `{}` uses AWS profile `{profile}`, which is not defined in {} or {} (aws configure sso --profile {profile})\nNothing was changed.", env.name, files[0].display(), files[1].display()),
            );
        }
    }
    f
}

fn cloud_failure(e: CloudError, doing: &str) -> Failure {
    Failure::new(
        exit::CLOUD,
        format!(
            "error: {doing}: {e}\n  hint: {}\nNothing was changed.",
            e.kind.hint()
        ),
    )
}

fn initiator(by: Option<String>) -> String {
    by.or_else(|| std::env::var("FAILOVER_USER").ok())
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn open_journal(cli: &Cli) -> Result<Arc<Journal>, Failure> {
    let path = cli.journal.clone().unwrap_or_else(Journal::default_path);
    Ok(Arc::new(Journal::open(&path)?))
}

fn print_json<T: serde::Serialize>(v: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    );
}

pub async fn ports_for(env: &Environment) -> Result<Ports, Failure> {
    failover::wiring::aws_ports(env)
        .await
        .map_err(|e| cloud_failure(e, "cannot set up the AWS clients"))
}

/// A simulated environment's world: topology, faults, seed.
pub struct SimTarget {
    topology: failover::cloud::sim::Topology,
    faults: Vec<failover::cloud::sim::Fault>,
    seed: u64,
}

/// Load an environment; a simulated one becomes the environment its topology describes.
fn load_env(cli: &Cli, name: &str) -> Result<(Environment, Option<SimTarget>), Diagnostics> {
    let env = Environment::load(&cli.config_dir, name)?;
    let Some(spec) = env.simulated.clone() else {
        return Ok((env, None));
    };
    let file = |m: String| -> Diagnostics {
        failover::diag::Diagnostic {
            file: Environment::path_for(&cli.config_dir, name)
                .display()
                .to_string(),
            line: 0,
            col: 0,
            message: m,
            hint: None,
        }
        .into()
    };
    let topology =
        failover::cloud::sim::Topology::load(&spec.topology).map_err(|e| file(e.to_string()))?;
    let faults = failover::cloud::sim::parse_faults(&spec.faults).map_err(|es| {
        file(
            es.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let mut derived = failover::cloud::sim::environment_for(&topology);
    derived.name = env.name.clone();
    derived.simulated = Some(spec.clone());
    let seed = spec.seed.or(topology.seed).unwrap_or(1);
    Ok((
        derived,
        Some(SimTarget {
            topology,
            faults,
            seed,
        }),
    ))
}

/// Runbook + environment + parameters -> bound steps, or every problem at once.
#[allow(clippy::type_complexity)]
fn load_bound(
    cli: &Cli,
    runbook: &Path,
    env_name: &str,
    params: &[(String, String)],
    run: &RunContext,
) -> Result<
    (
        Runbook,
        (Environment, Option<SimTarget>),
        bind::Params,
        Vec<BoundStep>,
    ),
    Failure,
> {
    let mut diags = Diagnostics::default();
    let rb = Runbook::load(runbook);
    let env = load_env(cli, env_name);
    let (rb, env) = match (rb, env) {
        (Ok(rb), Ok(env)) => (rb, env),
        (rb, env) => {
            if let Err(d) = rb {
                diags.extend(d);
            }
            if let Err(d) = env {
                diags.extend(d);
            }
            return Err(diags.into());
        }
    };
    let params = bind::bind_params(&rb, &env.0, params)?;
    let steps = bind::bind(&rb, &env.0, &params, run)?;
    Ok((rb, env, params, steps))
}

pub async fn dispatch(cli: Cli) -> Result<u8, Failure> {
    match &cli.command {
        Command::Validate {
            runbooks,
            env,
            output,
        } => validate(&cli, runbooks, env.as_deref(), *output),
        Command::Plan {
            runbook,
            env,
            params,
            output,
        } => plan(&cli, runbook, env, params, *output).await,
        Command::Run {
            runbook,
            env,
            params,
            by,
            require_approval,
            run_id,
            output,
        } => {
            run(
                &cli,
                runbook,
                env,
                params,
                by.clone(),
                *require_approval,
                run_id.clone(),
                *output,
            )
            .await
        }
        Command::Runs { limit, output } => {
            let j = open_journal(&cli)?;
            let runs = j.runs(*limit)?;
            match output {
                Output::Json => print_json(&runs),
                Output::Text => print!("{}", report::render_runs(&runs)),
            }
            Ok(exit::OK)
        }
        Command::Show { run_id, output } => {
            let j = open_journal(&cli)?;
            let r = j.run(run_id)?;
            let steps = j.steps(&r.id)?;
            let events = j.events(&r.id)?;
            let open = j.open_intents(&r.id)?;
            match output {
                Output::Json => print_json(
                    &serde_json::json!({"run": r, "steps": steps, "events": events, "open_intents": open}),
                ),
                Output::Text => print!("{}", report::render_show(&r, &steps, &events, &open)),
            }
            Ok(exit::OK)
        }
        Command::LocalPeer {
            command: crate::LocalPeerCommand::Seed { env },
        } => {
            let env = Environment::load(&cli.config_dir, env)?;
            match aws::seed::seed(&env).await {
                Ok(s) => {
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
                Err(e @ aws::seed::SeedError::NotLocal(_)) => Err(Failure::new(exit::REFUSED, format!("error: {e}"))),
                Err(e) => Err(Failure::new(exit::CLOUD, format!("error: {e}\n  hint: is the local peer running? scripts/demo-moto starts one on 127.0.0.1:5055; reseed after restarting it"))),
            }
        }
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
            use failover::cloud::sim::{environment_for, parse_faults, Topology};
            let mut diags = Diagnostics::default();
            let rb = Runbook::load(runbook);
            let topo = Topology::load(topology);
            let faults = parse_faults(faults);
            let (rb, topo, faults) = match (rb, topo, faults) {
                (Ok(r), Ok(t), Ok(f)) => (r, t, f),
                (r, t, f) => {
                    let mut msgs = vec![];
                    if let Err(d) = r {
                        diags.extend(d);
                    }
                    if let Err(e) = t {
                        msgs.push(e.to_string());
                    }
                    if let Err(es) = f {
                        msgs.extend(es.iter().map(|e| format!("--fault: error: {e}")));
                    }
                    let mut m = if diags.is_empty() {
                        String::new()
                    } else {
                        format!("{diags}\n")
                    };
                    m.push_str(&msgs.join("\n"));
                    return Err(Failure::new(
                        exit::INVALID,
                        format!("{}\n\nnothing was simulated.", m.trim_end()),
                    ));
                }
            };
            let env = match env {
                Some(n) => Environment::load(&cli.config_dir, n)?,
                None => environment_for(&topo),
            };
            let seed = seed.or(topo.seed).unwrap_or(1);
            let report = failover::simulate::simulate(&rb, &env, &topo, params, &faults, seed)
                .map_err(sim_failure)?;
            match output {
                Output::Json => print_json(&report),
                Output::Text => print!(
                    "{}",
                    failover::simulate::render_text(&report, *verbose_timeline)
                ),
            }
            Ok(if report.succeeded() {
                exit::OK
            } else {
                exit::RUN_FAILED
            })
        }
        Command::Demo { seed, output } => {
            let report = failover::simulate::demo(seed.unwrap_or(failover::simulate::DEMO_SEED))
                .map_err(sim_failure)?;
            match output {
                Output::Json => print_json(&report),
                Output::Text => {
                    print!("{}", failover::simulate::render_text(&report, false));
                    println!("\nThis ran in the simulated cloud (virtual time, seeded). Try it your way:");
                    println!("  failover simulate runbooks/az-evacuation.toml --topology config/sim/storefront.toml -p failed_az=us-west-2a --fault \"az-down us-west-2a at 0s\" --fault \"route53-down at 20s for 2m\"");
                    println!("  failover simulate runbooks/az-evacuation.toml --topology config/sim/oregon-two-az-outage.toml -p failed_az=us-west-2a,us-west-2b");
                    println!("Two zones cannot carry the whole load (see the Traffic table): shed low-priority traffic, crawlers first, checkout never:");
                    println!("  failover simulate runbooks/shed-load.toml --topology config/sim/storefront.toml --fault \"az-down us-west-2a at 0s\"");
                }
            }
            Ok(if report.succeeded() {
                exit::OK
            } else {
                exit::RUN_FAILED
            })
        }
        Command::Health {
            env,
            rounds,
            watch,
            output,
        } => health(&cli, env, *rounds, *watch, *output).await,
        Command::Watch { env, max_events } => watch(&cli, env, *max_events).await,
        Command::Traffic { env, output } => {
            let env = Environment::load(&cli.config_dir, env)?;
            let Some(ladder) = &env.traffic else {
                return Err(Failure::new(exit::INVALID, format!("error: environment `{}` has no [traffic] ladder\n  hint: see docs/traffic.md", env.name)));
            };
            let j = open_journal(&cli)?;
            let shed = j.shed_tiers(&env.name)?;
            let tiers: Vec<(String, bool)> = ladder
                .tiers
                .iter()
                .map(|t| (t.name.clone(), t.protected))
                .collect();
            let doc = engine::traffic::state_document(&env.name, &tiers, &shed);
            match output {
                Output::Json => print_json(&doc),
                Output::Text => {
                    println!("Load-shedding ladder of `{}` (lowest priority first; shed in this order, restored in reverse)", env.name);
                    println!(
                        "Signal: {} ({})",
                        ladder.signal.url,
                        match (ladder.signal.good_below, ladder.signal.good_above) {
                            (Some(b), _) => format!("good below {b}"),
                            (_, Some(a)) => format!("good above {a}"),
                            _ => "good when it answers 2xx".into(),
                        }
                    );
                    println!(
                        "\n{:<4} {:<22} {:<10} {:<22} RUN",
                        "#", "TIER", "STATE", "SINCE"
                    );
                    for (i, t) in ladder.tiers.iter().enumerate() {
                        let s = shed.iter().find(|(n, _, _)| n == &t.name);
                        let state = if t.protected {
                            "protected"
                        } else if s.is_some() {
                            "SHED"
                        } else {
                            "serving"
                        };
                        println!(
                            "{:<4} {:<22} {:<10} {:<22} {}",
                            i + 1,
                            t.name,
                            state,
                            s.map(|(_, at, _)| journal::format_ts(*at))
                                .unwrap_or_else(|| "-".into()),
                            s.map(|(_, _, r)| r.as_str()).unwrap_or("-")
                        );
                    }
                    if let Some(f) = &ladder.state_file {
                        println!("\nPublished for edges at {f}");
                    }
                }
            }
            Ok(exit::OK)
        }
        Command::Verify => {
            let j = open_journal(&cli)?;
            let n = j.event_count()?;
            match j.verify_chain()? {
                None => {
                    println!("journal {}: {n} event(s), the chain is intact.", j.path().display());
                    Ok(exit::OK)
                }
                Some(seq) => Err(Failure::new(
                    exit::RUN_FAILED,
                    format!("error: journal {}: the chain breaks at event #{seq}: it, or one before it, was changed or removed after it was written\n  hint: keep this file as evidence; `failover show` still reads it", j.path().display()),
                )),
            }
        }
        Command::Approve { run_id, step, by } => {
            approve(&cli, run_id, step.as_deref(), initiator(by.clone()))
        }
        Command::Rollback {
            run_id,
            by,
            dry_run,
            force,
            output,
        } => {
            rollback(
                &cli,
                run_id,
                initiator(by.clone()),
                *dry_run,
                *force,
                *output,
            )
            .await
        }
    }
}

fn validate(
    cli: &Cli,
    runbooks: &[std::path::PathBuf],
    env: Option<&str>,
    output: Output,
) -> Result<u8, Failure> {
    let mut diags = Diagnostics::default();
    let env_names: Vec<String> = match env {
        Some(e) => vec![e.to_string()],
        None => Environment::list(&cli.config_dir),
    };
    let mut envs = vec![];
    for name in &env_names {
        match load_env(cli, name) {
            Ok((e, _)) => envs.push(e),
            Err(d) => diags.extend(d),
        }
    }
    let mut ok_books = 0;
    for path in runbooks {
        match Runbook::load(path) {
            Ok(rb) => {
                let mut local = Diagnostics::default();
                for e in &envs {
                    local.extend(bind::check_against_env(&rb, e));
                }
                if local.is_empty() {
                    ok_books += 1;
                }
                diags.extend(local);
            }
            Err(d) => diags.extend(d),
        }
    }
    let diags = diags.sorted();
    let env_list = if env_names.is_empty() {
        "no environment (none found in the config directory)".to_string()
    } else {
        format!("environment(s) {}", env_names.join(", "))
    };
    match output {
        Output::Json => print_json(
            &serde_json::json!({"ok": diags.is_empty(), "runbooks": runbooks.len(), "valid": ok_books, "environments": env_names, "diagnostics": diags.0}),
        ),
        Output::Text => {
            if diags.is_empty() {
                println!("ok: {} runbook(s) valid against {env_list}", runbooks.len());
            } else {
                let env_broken = envs.len() < env_names.len();
                let scope = if env_broken {
                    format!("{} problem(s) found; {} environment file(s) could not be loaded, so runbooks were not checked against them", diags.len(), env_names.len() - envs.len())
                } else {
                    format!(
                        "{} problem(s) found in {} of {} runbook(s) checked against {env_list}",
                        diags.len(),
                        runbooks.len() - ok_books,
                        runbooks.len()
                    )
                };
                eprintln!("{diags}\n\n{scope}.");
            }
        }
    }
    Ok(if diags.is_empty() {
        exit::OK
    } else {
        exit::INVALID
    })
}

async fn plan(
    cli: &Cli,
    runbook: &Path,
    env_name: &str,
    params: &[(String, String)],
    output: Output,
) -> Result<u8, Failure> {
    let run = RunContext {
        run_id: format!("plan-{}", journal::new_run_id()),
        initiator: initiator(None),
        mode: "plan".into(),
    };
    let (rb, (env, sim), params, steps) = load_bound(cli, runbook, env_name, params, &run)?;
    let plan =
        match &sim {
            Some(t) => failover::simulate::with_sim_ports(
                &t.topology,
                &t.faults,
                t.seed,
                env.settings.max_attempts,
                None,
                |ports| {
                    let (rb, env, run, steps) = (&rb, &env, &run, &steps);
                    async move {
                        engine::plan_run(&ports, &rb.name, &env.name, &run.run_id, steps).await
                    }
                },
            )
            .map_err(sim_failure)?,
            None => {
                let ports = ports_for(&env).await?;
                engine::plan_run(&ports, &rb.name, &env.name, &run.run_id, &steps).await
            }
        }
        .map_err(|e| env_cloud_failure(&env, e, "reading the current state failed"))?;
    match output {
        Output::Json => print_json(
            &serde_json::json!({"plan": plan, "params": params, "mutating_calls": plan.mutating_calls(), "problems": plan.problems()}),
        ),
        Output::Text => print!("{}", report::render_plan(&plan, &params)),
    }
    Ok(if plan.problems().is_empty() {
        exit::OK
    } else {
        exit::RUN_FAILED
    })
}

#[allow(clippy::too_many_arguments)]
async fn run(
    cli: &Cli,
    runbook: &Path,
    env_name: &str,
    params: &[(String, String)],
    by: Option<String>,
    require_approval: bool,
    run_id: Option<String>,
    output: Output,
) -> Result<u8, Failure> {
    let run = RunContext {
        run_id: run_id.unwrap_or_else(journal::new_run_id),
        initiator: initiator(by),
        mode: "run".into(),
    };
    let (rb, (env, sim), params, mut steps) = load_bound(cli, runbook, env_name, params, &run)?;
    if require_approval {
        gate_with_approval(
            &mut steps,
            format!(
                "approve run {} of `{}` on {}?",
                run.run_id, rb.name, env.name
            ),
        );
    }
    let journal = open_journal(cli)?;
    match sim {
        None => {
            let ports = ports_for(&env).await?;
            run_with_ports(
                ports,
                journal,
                rb,
                env,
                params,
                steps,
                run,
                runbook.to_path_buf(),
                output,
            )
            .await
        }
        Some(t) => {
            let approvals = Some((journal.clone(), run.run_id.clone()));
            let runbook = runbook.to_path_buf();
            let attempts = env.settings.max_attempts;
            if output == Output::Text {
                println!("Environment `{}` is simulated ({}, seed {}): no AWS call is made; time is virtual.", env.name, t.topology.origin, t.seed);
            }
            failover::simulate::with_sim_ports(
                &t.topology,
                &t.faults,
                t.seed,
                attempts,
                approvals,
                move |ports| {
                    run_with_ports(ports, journal, rb, env, params, steps, run, runbook, output)
                },
            )
            .map_err(sim_failure)?
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_with_ports(
    ports: Ports,
    journal: Arc<Journal>,
    rb: Runbook,
    env: Environment,
    params: bind::Params,
    steps: Vec<BoundStep>,
    run: RunContext,
    runbook: std::path::PathBuf,
    output: Output,
) -> Result<u8, Failure> {
    // Static stability: if part of the world cannot be read for the plan (e.g. Route 53's
    // control plane is down), the run still starts; each step observes for itself, and a
    // database failover does not wait on DNS.
    let plan = match engine::plan_run(&ports, &rb.name, &env.name, &run.run_id, &steps).await {
        Ok(p) => p,
        Err(e) if e.kind == failover::cloud::ErrorKind::AccessDenied => {
            return Err(cloud_failure(e, "reading the current state failed"))
        }
        Err(e) => {
            eprintln!("warning: the plan could not read the current state ({e}); running anyway: every step observes before acting");
            failover::plan::Plan {
                runbook: rb.name.clone(),
                environment: env.name.clone(),
                steps: vec![],
            }
        }
    };
    let sha = journal::sha256_hex(rb.source.text.as_bytes());
    journal.create_run(&RunRecord {
        id: run.run_id.clone(),
        runbook: rb.name.clone(),
        runbook_path: runbook.display().to_string(),
        runbook_sha256: sha,
        environment: env.name.clone(),
        mode: "run".into(),
        initiator: run.initiator.clone(),
        params: serde_json::to_value(&params).unwrap_or_default(),
        status: "running".into(),
        started_at: journal::now_ms(),
        ended_at: None,
        error: None,
        plan: redact_json(serde_json::to_value(&plan).unwrap_or_default()),
        steps: redact_json(serde_json::to_value(&steps).unwrap_or_default()),
    })?;
    let text = output == Output::Text;
    if text {
        println!(
            "Run {} of `{}` on `{}` started by {} (journal: {})",
            run.run_id,
            rb.name,
            env.name,
            run.initiator,
            journal.path().display()
        );
        let problems = plan.problems();
        println!(
            "Plan: {} step(s), {} mutating call(s){}",
            plan.steps.len(),
            plan.mutating_calls(),
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
            println!("  PROBLEM in {s}: {p}");
        }
    }
    let term = if text {
        report::Terminal::stdout()
    } else {
        report::Terminal::stderr()
    };
    let reporter: Arc<dyn engine::progress::Reporter> =
        Arc::new(term.with_clock(ports.clock.clone()));
    let spec = RunSpec {
        run_id: run.run_id.clone(),
        initiator: run.initiator.clone(),
        steps,
        poll_interval: env.settings.poll_interval,
        max_concurrency: env.settings.max_concurrency,
        approval_poll: Duration::from_millis(500),
    };
    finish_run(journal, ports, spec, reporter, output, false).await
}

/// `strict`: any failed step fails the command (rollback), even one with on_failure = continue.
async fn finish_run(
    journal: Arc<Journal>,
    ports: Ports,
    spec: RunSpec,
    reporter: Arc<dyn engine::progress::Reporter>,
    output: Output,
    strict: bool,
) -> Result<u8, Failure> {
    let run_id = spec.run_id.clone();
    let outcome = engine::execute(ports, journal.clone(), spec, reporter).await;
    let failed: Vec<String> = outcome
        .steps
        .iter()
        .filter(|(_, st, _)| st.as_str() == "failed")
        .map(|(id, _, _)| id.to_string())
        .collect();
    let status = match (outcome.succeeded, failed.is_empty()) {
        (true, true) => "succeeded",
        (true, false) => "succeeded_with_failures",
        (false, _) => "failed",
    };
    let err = match (outcome.succeeded, failed.is_empty()) {
        (_, true) => None,
        (true, false) => Some(format!(
            "non-critical step(s) failed (on_failure = continue): {}",
            failed.join(", ")
        )),
        (false, false) => Some(format!("step(s) failed: {}", failed.join(", "))),
    };
    journal.set_run_status(&run_id, status, err.as_deref(), true)?;
    match output {
        Output::Json => print_json(&outcome),
        Output::Text => {
            println!("\nRun {run_id} {}.", status.replace('_', " "));
            if let Some(e) = &err {
                println!("{e}");
            }
            for (id, st, _) in &outcome.steps {
                println!("  {:<24} {}", id.to_string(), st.as_str());
            }
            println!("Details: failover show {run_id}");
            if !outcome.succeeded {
                println!("Steps observe before acting, so running the runbook again only does what is left.");
            }
        }
    }
    let ok = outcome.succeeded && (!strict || failed.is_empty());
    Ok(if ok { exit::OK } else { exit::RUN_FAILED })
}

fn health_failure(e: failover::health::HealthError) -> Failure {
    let code = match e {
        failover::health::HealthError::NotConfigured(_) => exit::INVALID,
        failover::health::HealthError::Cloud(_) => exit::CLOUD,
    };
    Failure::new(code, format!("error: {e}\n  hint: {}", e.hint()))
}

async fn health(
    cli: &Cli,
    env_name: &str,
    rounds: u32,
    watch: bool,
    output: Output,
) -> Result<u8, Failure> {
    let (env, sim) = load_env(cli, env_name)?;
    if sim.is_some() {
        return Err(Failure::new(exit::INVALID, format!("error: environment `{}` is simulated and has no probes\n  hint: health detection runs against real endpoints; try `--env local` (moto) or `--env staging`", env.name)));
    }
    let ports = failover::health::connect(&env)
        .await
        .map_err(health_failure)?;
    let mut det = failover::health::detector(&env, ports).map_err(health_failure)?;
    let mut n = 0u32;
    loop {
        det.next_round().await;
        n += 1;
        let done = !watch && n >= rounds.max(1);
        if watch || done {
            let report = det.report();
            match output {
                Output::Json => println!("{}", serde_json::to_string(&report).unwrap_or_default()),
                Output::Text => {
                    if watch {
                        println!("--- round {n} ---");
                    }
                    print!("{}", report.render_text());
                }
            }
        }
        if done {
            return Ok(exit::OK);
        }
    }
}

/// Put an approval gate before every first step.
fn gate_with_approval(steps: &mut Vec<BoundStep>, message: String) {
    let gate = StepId::new("require-approval");
    for s in steps.iter_mut() {
        if s.after.is_empty() {
            s.after.push(gate.clone());
        }
    }
    steps.insert(
        0,
        BoundStep {
            id: gate,
            description: Some("approval required before the first step".into()),
            after: vec![],
            enabled: true,
            when: None,
            timeout: Duration::from_secs(60 * 60),
            retries: 0,
            on_failure: OnFailure::Abort,
            action: BoundAction::Approval {
                message,
                approvers: vec![],
            },
        },
    );
}

/// Start a runbook for a trigger decision as its own `failover run` process, so it goes on
/// if the watcher stops. Its output goes to a log file next to the journal.
fn start_triggered(
    cli: &Cli,
    env_name: &str,
    runbook: &str,
    params: &[(String, String)],
    initiator: &str,
    paused: bool,
) -> Result<(String, std::path::PathBuf), Failure> {
    let id = journal::new_run_id();
    let jpath = cli.journal.clone().unwrap_or_else(Journal::default_path);
    let log = jpath.with_file_name(format!("run-{id}.log"));
    let out = std::fs::File::create(&log).map_err(|e| {
        Failure::new(
            exit::JOURNAL,
            format!("error: cannot create {}: {e}", log.display()),
        )
    })?;
    let exe = std::env::current_exe().map_err(|e| {
        Failure::new(
            exit::JOURNAL,
            format!("error: cannot find the failover binary: {e}"),
        )
    })?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--journal")
        .arg(&jpath)
        .arg("--config-dir")
        .arg(&cli.config_dir)
        .args([
            "run", runbook, "--env", env_name, "--by", initiator, "--run-id", &id,
        ]);
    for (k, v) in params {
        cmd.arg("-p").arg(format!("{k}={v}"));
    }
    if paused {
        cmd.arg("--require-approval");
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(
            out.try_clone()
                .map_err(|e| Failure::new(exit::JOURNAL, format!("error: {e}")))?,
        )
        .stderr(out);
    cmd.spawn().map_err(|e| {
        Failure::new(
            exit::JOURNAL,
            format!("error: cannot start `failover run`: {e}"),
        )
    })?;
    Ok((id, log))
}

async fn watch(cli: &Cli, env_name: &str, max_events: Option<u32>) -> Result<u8, Failure> {
    use failover::health::{trigger, TriggerDecision, TriggerState};
    let (env, sim) = load_env(cli, env_name)?;
    if sim.is_some() {
        return Err(Failure::new(
            exit::INVALID,
            format!(
                "error: environment `{}` is simulated and has no probes",
                env.name
            ),
        ));
    }
    let cfg = failover::health::config_of(&env)
        .map_err(health_failure)?
        .clone();
    let Some(tr) = cfg.trigger.clone() else {
        return Err(Failure::new(exit::INVALID, format!("error: environment `{}` has no [health.trigger]: nothing to start on a zone failure\n  hint: add [health.trigger] with runbook, zone_param and policy (docs/health.md); `failover health --watch` only watches", env.name)));
    };
    let rb = Runbook::load(Path::new(&tr.runbook))?;
    let problems = trigger::check_runbook(&tr, &rb);
    if !problems.is_empty() {
        return Err(Failure::new(
            exit::INVALID,
            format!(
                "error: {}\nthe watcher did not start.",
                problems.join("\nerror: ")
            ),
        ));
    }
    let journal = open_journal(cli)?;
    let who = format!("watch:{}", env.name);
    // The cooldown survives a restart of the watcher: the last run it started is in the journal.
    let mut state = TriggerState {
        last_trigger: journal
            .runs(500)?
            .into_iter()
            .find(|r| r.initiator == who && r.mode == "run")
            .map(|r| std::time::UNIX_EPOCH + Duration::from_millis(r.started_at as u64)),
    };
    let session = journal::new_run_id();
    journal.create_run(&RunRecord {
        id: session.clone(),
        runbook: format!("watch {}", env.name),
        runbook_path: tr.runbook.clone(),
        runbook_sha256: "-".into(),
        environment: env.name.clone(),
        mode: "watch".into(),
        initiator: initiator(None),
        params: serde_json::json!({"policy": format!("{:?}", tr.policy).to_lowercase(), "cooldown": humantime::format_duration(tr.cooldown).to_string()}),
        status: "watching".into(),
        started_at: journal::now_ms(),
        ended_at: None,
        error: None,
        plan: serde_json::Value::Null,
        steps: serde_json::Value::Null,
    })?;
    println!(
        "Watching `{}`: {} probe(s) every {}, a zone is unhealthy after {} bad round(s). On failure: {:?} `{}` (cooldown {}). Session {session}.",
        env.name,
        cfg.probes.len(),
        humantime::format_duration(cfg.interval),
        cfg.unhealthy_after,
        tr.policy,
        tr.runbook,
        humantime::format_duration(tr.cooldown)
    );
    let ports = failover::health::connect(&env)
        .await
        .map_err(health_failure)?;
    let clock = ports.clock.clone();
    let mut det = failover::health::detector(&env, ports).map_err(health_failure)?;
    let http = failover::cloud::http::ReqwestHttp::new()
        .map_err(|e| cloud_failure(e, "cannot build the HTTP client"))?;
    let mut seen = 0u32;
    loop {
        let ev = det.next_event().await;
        seen += 1;
        let now = clock.now();
        let decision = state.on_event(&tr, &ev, now);
        let text = decision.describe(&ev);
        println!("[{}] {text}", journal::format_ts(journal::now_ms()));
        journal.note(
            &session,
            None,
            "zone_event",
            serde_json::to_value(&ev).unwrap_or_default(),
        )?;
        journal.note(
            &session,
            None,
            "trigger_decision",
            serde_json::to_value(&decision).unwrap_or_default(),
        )?;
        let started = match &decision {
            TriggerDecision::Start { runbook, params }
            | TriggerDecision::StartPausedForApproval { runbook, params } => {
                let paused = matches!(decision, TriggerDecision::StartPausedForApproval { .. });
                let p: Vec<(String, String)> =
                    params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                match start_triggered(cli, &env.name, runbook, &p, &who, paused) {
                    Ok((id, log)) => {
                        let how = if paused {
                            format!("waiting for approval: failover approve {id} --by <name>")
                        } else {
                            "running".to_string()
                        };
                        println!("  started run {id} ({how}); output in {}", log.display());
                        journal.note(
                            &session,
                            None,
                            "run_started",
                            serde_json::json!({"run": id, "paused": paused}),
                        )?;
                        Some(format!("run {id} {how}"))
                    }
                    Err(e) => {
                        eprintln!("  could not start the runbook: {}", e.message);
                        journal.note(
                            &session,
                            None,
                            "run_not_started",
                            serde_json::json!({"error": e.message}),
                        )?;
                        Some(format!("could not start the runbook: {}", e.message))
                    }
                }
            }
            _ => None,
        };
        if let Some(ep) = tr.notify.as_ref().and_then(|n| env.endpoints.get(&n.value)) {
            let body = serde_json::json!({"text": format!("failover watch {}: {text}{}", env.name, started.map(|s| format!(" -> {s}")).unwrap_or_default())}).to_string();
            let req = failover::cloud::HttpRequest {
                method: ep.method.clone(),
                url: ep.url.clone(),
                headers: ep.headers.clone(),
                body: Some(body),
                timeout: ep.timeout,
            };
            use failover::cloud::HttpClient;
            if let Err(e) = http.send(&req).await {
                eprintln!("  notification failed: {e}");
            }
        }
        if max_events.is_some_and(|m| seen >= m) {
            journal.set_run_status(&session, "stopped", None, true)?;
            return Ok(exit::OK);
        }
    }
}

fn approve(cli: &Cli, run_id: &str, step: Option<&str>, by: String) -> Result<u8, Failure> {
    let j = open_journal(cli)?;
    let r = j.run(run_id)?;
    if r.ended_at.is_some() {
        return Err(Failure::new(
            exit::REFUSED,
            format!(
                "error: run {} has already finished ({}); there is nothing to approve",
                r.id, r.status
            ),
        ));
    }
    let steps: Vec<BoundStep> = serde_json::from_value(r.steps.clone()).unwrap_or_default();
    let records = j.steps(&r.id)?;
    let step_id = match step {
        Some(s) => s.to_string(),
        None => match records.iter().find(|s| s.status == "waiting_approval") {
            Some(s) => s.step_id.clone(),
            None => {
                return Err(Failure::new(exit::REFUSED, format!("error: run {} is not waiting for an approval right now\n  hint: pass --step to approve a later approval step in advance", r.id)));
            }
        },
    };
    let Some(bs) = steps.iter().find(|s| s.id.as_str() == step_id) else {
        return Err(Failure::new(
            exit::REFUSED,
            format!("error: run {} has no step `{step_id}`", r.id),
        ));
    };
    let BoundAction::Approval { approvers, .. } = &bs.action else {
        return Err(Failure::new(
            exit::REFUSED,
            format!(
                "error: step `{step_id}` of run {} is a `{}` step, not an approval",
                r.id,
                bs.action.name()
            ),
        ));
    };
    if by == r.initiator {
        return Err(Failure::new(exit::REFUSED, format!("error: {by} started run {} and cannot approve it\n  hint: another person approves with: failover approve {} --by <their name>", r.id, r.id)));
    }
    if !approvers.is_empty() && !approvers.contains(&by) {
        return Err(Failure::new(
            exit::REFUSED,
            format!(
                "error: {by} may not approve step `{step_id}`; allowed approvers: {}",
                approvers.join(", ")
            ),
        ));
    }
    j.approve(&r.id, &step_id, &by)?;
    println!(
        "Approved step `{step_id}` of run {} as {by}. The run continues.",
        r.id
    );
    Ok(exit::OK)
}

/// What a run changed in DNS: per hosted zone, each record's state before the run (first
/// `previous` seen) and as the run left it (last change), from intents whose outcome was OK
/// or unknown (a call in doubt may have happened).
fn dns_changes_of(
    j: &Journal,
    run_id: &str,
) -> Result<BTreeMap<String, Vec<RestoreRecord>>, Failure> {
    let events = j.events(run_id)?;
    // Only a failure that proves the request was not processed rules a change out: a 5xx or a
    // timeout may have been applied (restoring a change that did not happen is a no-op, since
    // `decide_restore` compares with what Route 53 has now).
    let not_processed = |e: &&journal::Event| {
        matches!(
            e.data.get("kind").and_then(|k| k.as_str()),
            Some("throttled" | "invalid_request" | "access_denied" | "not_found")
        )
    };
    let failed: Vec<i64> = events
        .iter()
        .filter(|e| {
            e.kind == "outcome" && e.data.get("ok").and_then(|v| v.as_bool()) == Some(false)
        })
        .filter(not_processed)
        .filter_map(|e| e.intent_seq)
        .collect();
    let mut by_zone: BTreeMap<String, BTreeMap<RecordKey, RestoreRecord>> = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e.kind == "intent" && !failed.contains(&e.seq))
    {
        let Ok(Call::ChangeResourceRecordSets {
            hosted_zone_id,
            changes,
            previous,
            ..
        }) = serde_json::from_value::<Call>(e.data.clone())
        else {
            continue;
        };
        let zone = by_zone.entry(hosted_zone_id).or_default();
        for (key, before) in previous {
            zone.entry(key.clone()).or_insert(RestoreRecord {
                key,
                before,
                set_by_run: None,
            });
        }
        for c in changes {
            let key = c.record.key();
            let set: Option<RecordSet> = if c.action == ChangeAction::Delete {
                None
            } else {
                Some(RecordSet {
                    name: normalize_dns_name(&c.record.name),
                    ..c.record.clone()
                })
            };
            if let Some(r) = zone.get_mut(&key) {
                r.set_by_run = set;
            }
        }
    }
    Ok(by_zone
        .into_iter()
        .map(|(z, m)| (z, m.into_values().collect()))
        .collect())
}

/// Tiers a run shed and did not restore itself.
fn tiers_shed_by(j: &Journal, run_id: &str) -> Result<Vec<String>, Failure> {
    let mut out: Vec<String> = vec![];
    for e in j.events(run_id)? {
        let Some(t) = e.data.get("tier").and_then(|v| v.as_str()) else {
            continue;
        };
        match e.kind.as_str() {
            "tier_shed" if !out.iter().any(|x| x == t) => out.push(t.to_string()),
            "tier_restored" => out.retain(|x| x != t),
            _ => {}
        }
    }
    Ok(out)
}

async fn rollback(
    cli: &Cli,
    run_id: &str,
    by: String,
    dry_run: bool,
    force: bool,
    output: Output,
) -> Result<u8, Failure> {
    let j = open_journal(cli)?;
    let r = j.run(run_id)?;
    if r.ended_at.is_none() && r.mode == "run" && r.status != "failed" {
        eprintln!(
            "warning: run {} has not finished (status {}); rolling back what it has done so far",
            r.id, r.status
        );
    }
    let changes = dns_changes_of(&j, &r.id)?;
    // Only tiers this run shed and that are still shed *by this run*: a tier a later run shed
    // again belongs to that run.
    let still_ours: Vec<String> = j
        .shed_tiers(&r.environment)?
        .into_iter()
        .filter(|(_, _, run)| run == &r.id)
        .map(|(t, _, _)| t)
        .collect();
    let tiers: Vec<String> = tiers_shed_by(&j, &r.id)?
        .into_iter()
        .filter(|t| still_ours.contains(t))
        .collect();
    if changes.is_empty() && tiers.is_empty() {
        return Err(Failure::new(exit::REFUSED, format!("error: run {} changed no DNS records and shed no traffic: nothing to roll back\n  hint: database failovers are not undone by rollback; fail back with the runbook and the healthy zone as parameter", r.id)));
    }
    let (env, sim) = load_env(cli, &r.environment)?;
    let new_id = journal::new_run_id();
    let mut steps: Vec<BoundStep> = vec![];
    if !tiers.is_empty() {
        let Some(ladder) = &env.traffic else {
            return Err(Failure::new(exit::INVALID, format!("error: run {} shed tiers ({}) but environment `{}` no longer has a [traffic] ladder", r.id, tiers.join(", "), env.name)));
        };
        let ctx = RunContext {
            run_id: new_id.clone(),
            initiator: by.clone(),
            mode: "rollback".into(),
        };
        let vars: BTreeMap<String, String> = [
            ("env.name", env.name.clone()),
            ("env.region", env.region.clone()),
            ("run.id", ctx.run_id.clone()),
            ("run.initiator", by.clone()),
            ("run.mode", "rollback".to_string()),
            ("runbook.name", format!("rollback of {}", r.id)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        steps.push(BoundStep {
            id: StepId::new("restore-traffic"),
            description: Some(format!("restore the traffic tiers run {} shed", r.id)),
            after: vec![],
            enabled: true,
            when: None,
            timeout: Duration::from_secs(600),
            retries: 1,
            on_failure: OnFailure::Continue,
            action: BoundAction::TrafficRevert {
                ladder: failover::runbook::ladder::bind_ladder(ladder, &env, &vars),
                tiers,
            },
        });
    }
    steps.extend(
        changes
            .into_iter()
            .enumerate()
            .map(|(i, (zone, restore))| BoundStep {
                id: StepId::new(format!("restore-dns-{}", i + 1)),
                description: Some(format!(
                    "restore the records run {} changed in hosted zone {zone}",
                    r.id
                )),
                after: vec![],
                enabled: true,
                when: None,
                timeout: Duration::from_secs(600),
                retries: 2,
                on_failure: OnFailure::Continue,
                action: BoundAction::RestoreRecords {
                    hosted_zone_id: zone,
                    restore,
                    force,
                },
            }),
    );
    let name = format!("rollback of {}", r.id);
    let job = Rollback {
        j,
        r,
        env,
        steps,
        new_id,
        name,
        by,
        dry_run,
        force,
        output,
    };
    match sim {
        None => {
            let ports = ports_for(&job.env).await?;
            rollback_with_ports(ports, job).await
        }
        Some(t) => {
            let attempts = job.env.settings.max_attempts;
            failover::simulate::with_sim_ports(
                &t.topology,
                &t.faults,
                t.seed,
                attempts,
                None,
                move |ports| rollback_with_ports(ports, job),
            )
            .map_err(sim_failure)?
        }
    }
}

/// Everything a rollback needs once its steps are built.
struct Rollback {
    j: Arc<Journal>,
    r: RunRecord,
    env: Environment,
    steps: Vec<BoundStep>,
    new_id: String,
    name: String,
    by: String,
    dry_run: bool,
    force: bool,
    output: Output,
}

async fn rollback_with_ports(ports: Ports, job: Rollback) -> Result<u8, Failure> {
    let Rollback {
        j,
        r,
        env,
        steps,
        new_id,
        name,
        by,
        dry_run,
        force,
        output,
    } = job;
    let plan = engine::plan_run(&ports, &name, &env.name, &new_id, &steps)
        .await
        .map_err(|e| cloud_failure(e, "reading the current records failed"))?;
    if dry_run {
        match output {
            Output::Json => print_json(&plan),
            Output::Text => print!("{}", report::render_plan(&plan, &BTreeMap::new())),
        }
        return Ok(if plan.problems().is_empty() {
            exit::OK
        } else {
            exit::RUN_FAILED
        });
    }
    j.create_run(&RunRecord {
        id: new_id.clone(),
        runbook: name.clone(),
        runbook_path: r.runbook_path.clone(),
        runbook_sha256: r.runbook_sha256.clone(),
        environment: env.name.clone(),
        mode: "rollback".into(),
        initiator: by.clone(),
        params: serde_json::json!({"of_run": r.id, "force": force}),
        status: "running".into(),
        started_at: journal::now_ms(),
        ended_at: None,
        error: None,
        plan: serde_json::to_value(&plan).unwrap_or_default(),
        steps: serde_json::to_value(&steps).unwrap_or_default(),
    })?;
    if output == Output::Text {
        println!(
            "Rollback {new_id} of run {} on `{}` started by {by}",
            r.id, env.name
        );
    }
    let reporter: Arc<dyn engine::progress::Reporter> = match output {
        Output::Text => Arc::new(report::Terminal::stdout().with_clock(ports.clock.clone())),
        Output::Json => Arc::new(Silent),
    };
    let spec = RunSpec {
        run_id: new_id,
        initiator: by,
        steps,
        poll_interval: env.settings.poll_interval,
        max_concurrency: env.settings.max_concurrency,
        approval_poll: Duration::from_millis(500),
    };
    finish_run(j, ports, spec, reporter, output, true).await
}

/// Sensitive header values (`cloud::is_sensitive_header`) are not stored in the journal.
fn redact_json(mut v: serde_json::Value) -> serde_json::Value {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::Array(hs)) = m.get_mut("headers") {
                    for h in hs.iter_mut() {
                        if let serde_json::Value::Array(kv) = h {
                            if let [serde_json::Value::String(k), serde_json::Value::String(val)] =
                                kv.as_mut_slice()
                            {
                                if failover::cloud::is_sensitive_header(k, val) {
                                    *val = failover::cloud::REDACTED.into();
                                }
                            }
                        }
                    }
                }
                for (_, x) in m.iter_mut() {
                    walk(x);
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}
