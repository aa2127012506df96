//! The read-only use cases: runs, show, verify, traffic state, health, validate; and seeding a
//! local AWS peer for demos and tests.

use super::lifecycle::liveness;
use super::load::load_env;
use super::watch::health_error;
use super::{App, AppError};
use crate::cloud::aws::seed::{self, SeedError, Seeded};
use crate::diag::Diagnostics;
use crate::env::Environment;
use crate::health::{self, HealthReport};
use crate::journal::{Event, RunRecord, StepRecord};
use crate::lease::Lease;
use crate::runbook::{bind, Runbook};
use crate::store::{Head, Liveness, VerifyReport};
use crate::traffic::Ladder;
use crate::types::RunId;
use std::path::PathBuf;

/// The newest runs, each with whether its process is alive.
pub async fn runs(app: &App, limit: usize) -> Result<Vec<(RunRecord, Liveness)>, AppError> {
    let now = crate::journal::now_ms();
    Ok(app
        .open_journal()?
        .runs(limit)
        .await?
        .into_iter()
        .map(|r| {
            let l = liveness(&r, now);
            (r, l)
        })
        .collect())
}

/// One run as `show` prints it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunDetails {
    pub run: RunRecord,
    /// Whether its process is alive.
    pub liveness: Liveness,
    pub steps: Vec<StepRecord>,
    pub events: Vec<Event>,
    /// Intents without an outcome: calls that may or may not have happened.
    pub open_intents: Vec<Event>,
}

/// One mutating call of a run: its intent and, when it was written, its outcome.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CallRecord {
    /// The intent's sequence number.
    pub seq: i64,
    pub step_id: Option<String>,
    pub at: i64,
    pub operation: String,
    pub resource: String,
    /// The call as journaled (redacted).
    pub call: serde_json::Value,
    /// The outcome event's data (`ok`, `result` or `error`, `ms`), if it was written.
    pub outcome: Option<serde_json::Value>,
    /// With no outcome: how a later observation settled it, if one did.
    pub settled: Option<String>,
}

impl RunDetails {
    /// Every mutating call of the run, in order, each with its outcome or how it was settled.
    pub fn calls(&self) -> Vec<CallRecord> {
        let answer = |seq: i64, kind: &str| {
            self.events
                .iter()
                .find(|e| e.kind == kind && e.intent_seq == Some(seq))
        };
        self.events
            .iter()
            .filter(|e| e.kind == "intent")
            .map(|i| CallRecord {
                seq: i.seq,
                step_id: i.step_id.clone(),
                at: i.at,
                operation: i.operation.clone().unwrap_or_default(),
                resource: i.resource.clone().unwrap_or_default(),
                call: i.data.clone(),
                outcome: answer(i.seq, "outcome").map(|o| o.data.clone()),
                settled: answer(i.seq, "settled").map(|s| {
                    s.data
                        .get("how")
                        .and_then(|h| h.as_str())
                        .unwrap_or("settled")
                        .to_string()
                }),
            })
            .collect()
    }

    /// Calls still in doubt: an intent without an outcome that no later observation settled
    /// (what `show` lists under "Calls in doubt", and what a resume waits on).
    pub fn in_doubt(&self) -> Vec<CallRecord> {
        let open: Vec<i64> = self.open_intents.iter().map(|e| e.seq).collect();
        self.calls()
            .into_iter()
            .filter(|c| open.contains(&c.seq) && c.settled.is_none())
            .collect()
    }
}

/// `run_id`: an id or a unique prefix of one, as a person typed it ([`crate::journal::Journal::run`]).
pub async fn show(app: &App, run_id: &str) -> Result<RunDetails, AppError> {
    let j = app.open_journal()?;
    let run = j.run(run_id).await?;
    Ok(RunDetails {
        steps: j.steps(&run.id).await?,
        events: j.events(&run.id).await?,
        open_intents: j.open_intents(&run.id).await?,
        liveness: liveness(&run, crate::journal::now_ms()),
        run,
    })
}

/// Every lease in the journal, live or not, as of now.
pub async fn locks(app: &App) -> Result<(Vec<Lease>, i64), AppError> {
    Ok((
        app.open_journal()?.leases().await?,
        crate::journal::now_ms(),
    ))
}

/// What `verify` found.
pub struct Verified {
    pub path: PathBuf,
    pub report: VerifyReport,
    /// Heads that were checked, and where they came from (`--expect-head`, an anchor file).
    pub heads: Vec<(Head, String)>,
}

/// Check the journal: its chain, the heads remembered outside it (given, and every line of the
/// anchor files), and its tables against their events.
pub async fn verify(
    app: &App,
    expect: Vec<Head>,
    anchors: &[PathBuf],
) -> Result<Verified, AppError> {
    let mut heads: Vec<(Head, String)> = expect
        .into_iter()
        .map(|h| (h, "--expect-head".to_string()))
        .collect();
    for a in anchors {
        let text = std::fs::read_to_string(a).map_err(|e| {
            AppError::Input(format!(
                "error: cannot read the anchor file {}: {e}",
                a.display()
            ))
        })?;
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let h: Head = line
                .parse()
                .map_err(|e| AppError::Input(format!("error: {}:{}: {e}", a.display(), n + 1)))?;
            heads.push((h, format!("{}:{}", a.display(), n + 1)));
        }
    }
    let only: Vec<Head> = heads.iter().map(|(h, _)| h.clone()).collect();
    let report = app.open_journal()?.verify(&only).await?;
    Ok(Verified {
        path: app.journal_path.clone(),
        report,
        heads,
    })
}

/// The journal's last event, as `SEQ:HASH`.
pub async fn head(app: &App) -> Result<Option<Head>, AppError> {
    Ok(app.open_journal()?.head().await?)
}

/// Every event from `since` on, as JSON lines to `out`; how many.
pub async fn export(
    app: &App,
    since: i64,
    out: &mut (dyn std::io::Write + Send),
) -> Result<u64, AppError> {
    let j = app.open_journal()?;
    let mut next = since.max(1);
    let mut n = 0;
    loop {
        let page = j.events_since(next, 1000).await?;
        let Some(last) = page.last().map(|e| e.seq) else {
            return Ok(n);
        };
        for e in &page {
            let line = serde_json::to_string(e).unwrap_or_default();
            writeln!(out, "{line}")
                .map_err(|e| AppError::Runtime(format!("cannot write the export: {e}")))?;
            n += 1;
        }
        next = last + 1;
    }
}

/// The load-shedding ladder of an environment and which tiers are shed.
pub struct TrafficState {
    pub environment: String,
    pub ladder: Ladder,
    /// (tier, since ms, run id) of every shed tier.
    pub shed: Vec<(String, i64, RunId)>,
}

/// A simulated environment's ladder is its topology's.
pub async fn traffic_state(app: &App, env_name: &str) -> Result<TrafficState, AppError> {
    let env = load_env(&app.config_dir, env_name)?.env;
    let Some(ladder) = env.traffic.clone() else {
        return Err(AppError::Input(format!(
            "error: environment `{}` has no [traffic] ladder\n  hint: see docs/traffic.md",
            env.name
        )));
    };
    let shed = app.open_journal()?.shed_tiers(&env.name).await?;
    Ok(TrafficState {
        environment: env.name,
        ladder,
        shed,
    })
}

/// Probe `env_name`'s zones: `rounds` rounds (forever with `watch`), `on` after each round
/// that should be reported (every round with `watch`, else the last).
pub async fn health(
    app: &App,
    env_name: &str,
    rounds: u32,
    watch: bool,
    on: &mut (dyn FnMut(u32, &HealthReport) + Send),
) -> Result<(), AppError> {
    let loaded = load_env(&app.config_dir, env_name)?;
    if loaded.target.simulated().is_some() {
        return Err(AppError::Input(format!("error: environment `{}` is simulated and has no probes\n  hint: health detection runs against real endpoints; try `--env local` (moto) or `--env staging`", loaded.env.name)));
    }
    let env = loaded.env;
    let (ports, meter) = super::wiring::health_ports(&env)
        .await
        .map_err(health_error)?;
    let mut det = health::detector(&env, ports).map_err(health_error)?;
    let mut n = 0u32;
    loop {
        det.next_round().await;
        n += 1;
        let done = !watch && n >= rounds.max(1);
        if watch || done {
            let mut r = det.report();
            r.aws_calls = Some(crate::cloud::CallMeter::counts(&*meter));
            on(n, &r);
        }
        if done {
            return Ok(());
        }
    }
}

/// What `validate` found: every problem of every runbook against every environment.
pub struct Validation {
    pub runbooks: usize,
    /// Runbooks with no problem.
    pub valid: usize,
    pub environments: Vec<String>,
    /// Environments whose file could not be loaded.
    pub broken_environments: usize,
    /// `[[drills]]` entries checked, and those with a problem.
    pub drills: usize,
    pub broken_drills: usize,
    /// Runbooks of `[health.trigger]`, `[health.region_trigger]` and `[health.failback]`
    /// checked, and those with a problem.
    pub triggers: usize,
    pub broken_triggers: usize,
    /// Runbooks not checked against some environments because they do not apply there.
    pub not_applicable: Vec<NotApplicable>,
    pub diagnostics: Diagnostics,
}

/// A runbook that does not apply to some environments (checked against the others).
#[derive(Clone, Debug, serde::Serialize)]
pub struct NotApplicable {
    pub runbook: String,
    pub environments: Vec<String>,
    pub why: String,
}

pub fn validate(app: &App, runbooks: &[PathBuf], env: Option<&str>) -> Validation {
    let mut diags = Diagnostics::default();
    let env_names: Vec<String> = match env {
        Some(e) => vec![e.to_string()],
        None => Environment::list(&app.config_dir),
    };
    let mut envs = vec![];
    let (mut drills, mut broken_drills) = (0, 0);
    let (mut triggers, mut broken_triggers) = (0, 0);
    for name in &env_names {
        match load_env(&app.config_dir, name) {
            Ok(l) => {
                for s in &l.env.drills {
                    let d = check_drill(&l.env, s);
                    drills += 1;
                    broken_drills += usize::from(!d.is_empty());
                    diags.extend(d);
                }
                // The runbooks `watch` and `serve` would start: found today, not when the
                // watcher refuses to start (or the zone fails at 03:00).
                if let Some(h) = &l.env.health {
                    for d in super::watch::trigger_problems(h, &l.env) {
                        triggers += 1;
                        broken_triggers += usize::from(!d.is_empty());
                        diags.extend(d);
                    }
                }
                envs.push(l.env)
            }
            Err(d) => diags.extend(d),
        }
    }
    let mut valid = 0;
    let mut not_applicable = vec![];
    for path in runbooks {
        match Runbook::load(path) {
            Ok(rb) => {
                let mut local = Diagnostics::default();
                // Without --env, a region runbook is checked against the environments that
                // span several regions only; against none of them, it is a problem.
                let (fit, unfit): (Vec<&Environment>, Vec<&Environment>) = envs
                    .iter()
                    .partition(|e| env.is_some() || bind::region_mismatch(&rb, e).is_none());
                if fit.is_empty() {
                    for e in &unfit {
                        local.extend(bind::check_against_env(&rb, e));
                    }
                } else if !unfit.is_empty() {
                    not_applicable.push(NotApplicable {
                        runbook: path.display().to_string(),
                        environments: unfit.iter().map(|e| e.name.clone()).collect(),
                        why: "it moves writers between regions; these environments span one".into(),
                    });
                }
                for e in fit {
                    local.extend(bind::check_against_env(&rb, e));
                }
                if local.is_empty() {
                    valid += 1;
                }
                diags.extend(local);
            }
            Err(d) => diags.extend(d),
        }
    }
    Validation {
        runbooks: runbooks.len(),
        valid,
        broken_environments: env_names.len() - envs.len(),
        environments: env_names,
        drills,
        broken_drills,
        triggers,
        broken_triggers,
        not_applicable,
        diagnostics: diags.sorted(),
    }
}

/// A `[[drills]]` entry binds: its runbook loads, its parameters bind against the
/// environment (required ones given, zones known, no unknown name), and its steps find their
/// groups. Problems point at the entry, with the runbook's own message after it; a drill that
/// would fail at 03:00 on Tuesday is found by `validate` today.
fn check_drill(env: &Environment, s: &crate::schedule::DrillSchedule) -> Diagnostics {
    let mut out = Diagnostics::default();
    let what = format!("drill `{}`", s.name);
    let rb = match super::load::entry_runbook(
        &s.runbook,
        &what,
        &s.at,
        "`failover serve` / `drills run-due`",
    ) {
        Ok(rb) => rb,
        Err(d) => return d,
    };
    let params: Vec<(String, String)> = s.params.clone().into_iter().collect();
    let run = bind::RunContext {
        run_id: RunId::from("drill-validate"),
        initiator: format!("schedule:{}/{}", env.name, s.name),
        mode: crate::status::RunMode::Drill,
    };
    let bound = bind::bind_params(&rb, env, &params).and_then(|p| bind::bind(&rb, env, &p, &run));
    if let Err(d) = bound {
        for x in d.0 {
            let hint = match &x.hint {
                Some(h) => format!("{h} (in this entry's `params`)"),
                None => "set it in this entry's `params`".into(),
            };
            let at = if x.line > 0 {
                format!("{}:{}:{}", x.file, x.line, x.col)
            } else {
                s.runbook.clone()
            };
            out.push(s.at.diag(
                format!("drill `{}` ({at}): {}", s.name, x.message),
                Some(hint),
            ));
        }
    }
    out
}

/// Create, in a local AWS peer, every resource an environment names.
pub async fn seed_local_peer(app: &App, env_name: &str) -> Result<(Environment, Seeded), AppError> {
    let env = Environment::load(&app.config_dir, env_name)?;
    match seed::seed(&env).await {
        Ok(s) => Ok((env, s)),
        Err(e @ SeedError::NotLocal(_)) => Err(AppError::Refused(e.to_string())),
        Err(e) => Err(AppError::Peer(format!("error: {e}\n  hint: is the local peer running? scripts/demo-moto starts one on 127.0.0.1:5055; reseed after restarting it"))),
    }
}
