//! `failover watch` in a simulated world: the environment's `[health]` probes answered by the
//! simulator (`cloud::sim::probes`), the very detector (`health::Detector`: rounds on the
//! interval grid, quorum, hysteresis, the observer rule) and trigger policy
//! (`health::TriggerState`) of the live watcher, on virtual time. A run the policy starts goes
//! through the one run lifecycle, in the same world; once the evacuated zone has been healthy
//! for long enough, the simulated on-call starts the failback runbook (the live watcher starts
//! nothing on recovery: failing back is a deliberate act).
//!
//! [`story`] turns the report into the figures of `failover demo`: time to detect, to mitigate
//! (the traffic signal good again) and to recover (nothing left in the failed zone), with the
//! AWS critical path they compare with, computed from `cloud::model`.

use super::simulate::{play_run, BoundRun, Played, SimError, SimReport, Stage};
use crate::cloud::model;
use crate::cloud::sim::probes::SimHealth;
use crate::cloud::sim::FaultKind;
use crate::health::{Became, HealthConfig, Scope, TriggerDecision, TriggerState, ZoneEvent};
use crate::runbook::bind::{self, RunContext};
use crate::runbook::Runbook;
use crate::status::RunMode;
use crate::types::{RunId, Zone};
use serde::Serialize;
use std::time::{Duration, SystemTime};

/// What the simulated watcher and on-call do.
pub struct WatchPlan<'a> {
    /// The runbook `[health.trigger]` starts (its `runbook` names this file).
    pub evacuation: &'a Runbook,
    /// Parameters given to it besides those of the trigger (the zone, the reason).
    pub params: Vec<(String, String)>,
    /// The failback the on-call starts once the evacuated zone is healthy again.
    pub failback: Option<Failback<'a>>,
    /// How long to watch, from the start (the watch ends earlier once a failback has run).
    pub watch_for: Duration,
}

/// The failback: its runbook, the parameter that takes the zone, and how long the zone must
/// have been declared healthy before it starts.
pub struct Failback<'a> {
    pub runbook: &'a Runbook,
    pub zone_param: String,
    pub after: Duration,
}

/// What a simulated watch produced besides the report's usual parts.
#[derive(Default)]
pub(super) struct Watched<'a> {
    pub(super) runs: Vec<BoundRun<'a>>,
    pub(super) detections: Vec<Detection>,
}

/// A zone event of the watcher, and what was decided on it.
#[derive(Clone, Debug, Serialize)]
pub struct Detection {
    pub at_ms: u64,
    pub target: String,
    /// `unhealthy` or `healthy`.
    pub became: String,
    pub summary: String,
    /// The failing probes of the deciding round: `name: detail`.
    pub failing: Vec<String>,
    pub observer_suspect: bool,
    /// The trigger policy's decision (`describe`), or what the on-call does.
    pub decision: String,
    /// The run started for it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<RunId>,
}

fn since_start(stage: &Stage<'_>, t: SystemTime) -> Duration {
    t.duration_since(stage.topology.start).unwrap_or_default()
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// Bind `rb` with `params` as the next run of the simulation.
fn bind_next<'a>(
    stage: &Stage<'_>,
    rb: &'a Runbook,
    params: &[(String, String)],
    seed: u64,
    n: usize,
) -> Result<BoundRun<'a>, SimError> {
    let run = RunContext {
        run_id: RunId::new(if n == 1 {
            format!("sim-{seed}")
        } else {
            format!("sim-{seed}-{n}")
        }),
        initiator: format!("watch:{}", stage.env.name),
        mode: RunMode::Simulate,
    };
    let p = bind::bind_params(rb, stage.env, params).map_err(SimError::Invalid)?;
    let steps = bind::bind(rb, stage.env, &p, &run).map_err(SimError::Invalid)?;
    Ok(BoundRun {
        runbook: rb,
        run,
        params: p,
        steps,
        not_before: None,
    })
}

fn record(ev: &ZoneEvent, at: Duration, decision: String) -> Detection {
    Detection {
        at_ms: ms(at),
        target: ev.target.to_string(),
        became: match ev.became {
            Became::Unhealthy => "unhealthy".into(),
            Became::Healthy => "healthy".into(),
        },
        summary: ev.why.summary.clone(),
        failing: ev
            .why
            .failing
            .iter()
            .map(|f| format!("{}: {}", f.probe, f.detail))
            .collect(),
        observer_suspect: ev.observer_suspect,
        decision,
        started: None,
    }
}

/// Watch the zones of the stage's environment and act as `[health.trigger]` says, until
/// `plan.watch_for` (or the failback has run).
pub(super) async fn watch<'a>(
    stage: &Stage<'_>,
    plan: &WatchPlan<'a>,
    seed: u64,
    played: &mut Played,
    watched: &mut Watched<'a>,
) -> Result<(), SimError> {
    let env = stage.env;
    let no = |what: &str| {
        SimError::Run(format!("environment `{}` has no {what}: there is nothing to watch with (add it to the topology, as in an environment file; docs/health.md)", env.name))
    };
    let cfg = env.health.clone().ok_or_else(|| no("[health]"))?;
    let tr = cfg.trigger.clone().ok_or_else(|| no("[health.trigger]"))?;
    let cloud = stage.cloud;
    let det = SimHealth::new(cloud.clone(), Scope::of(env), cfg.clone(), seed).detector();
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let task = tokio::spawn(det.run(tx));
    let time = cloud.virtual_time();
    let mut state = TriggerState::default();
    let mut evacuated: Option<Zone> = None;
    let mut failback_at: Option<Duration> = None;
    loop {
        let now = cloud.elapsed();
        let wake = failback_at.unwrap_or(plan.watch_for).min(plan.watch_for);
        if now >= plan.watch_for {
            break;
        }
        let ev = tokio::select! {
            biased;
            e = rx.recv() => e,
            _ = time.sleep(wake.saturating_sub(now)) => None,
        };
        let Some(ev) = ev else {
            let (Some(at), Some(fb), Some(zone)) = (failback_at, &plan.failback, &evacuated) else {
                continue;
            };
            if cloud.elapsed() < at {
                continue;
            }
            cloud.note(format!(
                "on-call: {zone} has been healthy for {}: failing back with `{}`",
                humantime::format_duration(fb.after),
                fb.runbook.name
            ));
            let r = bind_next(
                stage,
                fb.runbook,
                &[(fb.zone_param.clone(), zone.to_string())],
                seed,
                watched.runs.len() + 1,
            )?;
            watched.runs.push(r);
            let n = watched.runs.len();
            play_run(stage, &watched.runs[n - 1], Some((n, 0)), played).await?;
            break;
        };
        let at = since_start(stage, ev.at);
        let mut text = format!(
            "health: {} is {} ({}){}",
            ev.target,
            match ev.became {
                Became::Unhealthy => "UNHEALTHY",
                Became::Healthy => "healthy again",
            },
            ev.why.summary,
            if ev.observer_suspect {
                " [observer suspect]"
            } else {
                ""
            }
        );
        for f in ev.why.failing.iter().take(4) {
            text.push_str(&format!("\n    ✗ {}: {}", f.probe, f.detail));
        }
        cloud.note(text);
        if ev.became == Became::Healthy {
            let back = ev
                .zone()
                .filter(|z| evacuated.as_ref() == Some(*z))
                .cloned();
            let decision = match (back, &plan.failback) {
                (Some(z), Some(fb)) if failback_at.is_none() => {
                    failback_at = Some(at + fb.after);
                    format!(
                        "{z} is healthy again; the on-call fails back once it has stayed healthy for {}",
                        humantime::format_duration(fb.after)
                    )
                }
                _ => "healthy again: nothing to do".to_string(),
            };
            cloud.note(format!("watch: {decision}"));
            watched.detections.push(record(&ev, at, decision));
            continue;
        }
        if ev.zone().is_some() && ev.zone() == evacuated.as_ref() {
            // Unhealthy again before the failback: wait for it to be healthy again.
            failback_at = None;
        }
        let decision = state.on_event(&tr, &ev, ev.at);
        let said = format!("watch (policy {:?}): {}", tr.policy, decision.describe(&ev))
            .replace("policy Auto", "policy auto")
            .replace("policy Approval", "policy approval")
            .replace("policy Notify", "policy notify");
        cloud.note(said.clone());
        let mut d = record(&ev, at, said);
        let (params, paused) = match &decision {
            TriggerDecision::Start { params, .. } => (params.clone(), false),
            TriggerDecision::StartPausedForApproval { params, .. } => (params.clone(), true),
            _ => {
                watched.detections.push(d);
                continue;
            }
        };
        let mut p: Vec<(String, String)> = params.into_iter().collect();
        p.extend(plan.params.iter().cloned());
        if paused
            && plan
                .evacuation
                .params
                .iter()
                .any(|p| p.name == "require_approval")
        {
            p.push(("require_approval".into(), "true".into()));
        }
        let r = bind_next(stage, plan.evacuation, &p, seed, watched.runs.len() + 1)?;
        d.started = Some(r.run.run_id.clone());
        watched.detections.push(d);
        evacuated = ev.zone().cloned();
        watched.runs.push(r);
        let n = watched.runs.len();
        if !play_run(stage, &watched.runs[n - 1], Some((n, 0)), played).await? {
            break;
        }
    }
    task.abort();
    Ok(())
}

/// Watch the simulated world of `topology` (its `[health]`, bound as `env`) with the topology's
/// faults plus `faults`: detection, the trigger's runs and the failback, in one world.
pub fn simulate_watch(
    plan: &WatchPlan<'_>,
    env: &crate::env::Environment,
    topology: &crate::cloud::sim::Topology,
    faults: &[crate::cloud::sim::Fault],
    seed: u64,
) -> Result<(SimReport, Option<crate::cloud::sim::History>), SimError> {
    let all = super::simulate::all_faults(topology, faults)?;
    let go = move || -> Result<(SimReport, Option<crate::cloud::sim::History>), SimError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(SimError::Runtime)?;
        rt.block_on(super::simulate::run_simulation(
            env,
            topology,
            &all,
            seed,
            super::simulate::Script::Watch(plan),
        ))
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| s.spawn(go).join()).unwrap_or_else(|p| std::panic::resume_unwind(p))
    } else {
        go()
    }
}

/// The figures of the story: when the zone was lost, detected, the traffic signal good again,
/// everything out of the zone; the zone back and failed back; and the AWS critical path.
#[derive(Clone, Debug, Serialize)]
pub struct Story {
    pub zone: Zone,
    pub lost_ms: u64,
    pub detected_ms: Option<u64>,
    pub evacuation_started_ms: Option<u64>,
    /// The traffic signal good again (the model's error rate under the threshold) after the
    /// loss; `None`: it never turned bad, or never good again.
    pub mitigated_ms: Option<u64>,
    /// Every writer, primary and record out of the zone.
    pub recovered_ms: Option<u64>,
    pub zone_back_ms: Option<u64>,
    pub failback_started_ms: Option<u64>,
    pub failback_ended_ms: Option<u64>,
    pub critical_path: CriticalPath,
}

impl Story {
    pub fn time_to_detect(&self) -> Option<Duration> {
        self.detected_ms
            .map(|d| Duration::from_millis(d.saturating_sub(self.lost_ms)))
    }
    pub fn time_to_mitigate(&self) -> Option<Duration> {
        self.mitigated_ms
            .map(|d| Duration::from_millis(d.saturating_sub(self.lost_ms)))
    }
    pub fn time_to_recover(&self) -> Option<Duration> {
        self.recovered_ms
            .map(|d| Duration::from_millis(d.saturating_sub(self.lost_ms)))
    }
}

/// The least time AWS and the configured detection allow, each part from `cloud::model`
/// (failover and propagation) or the environment's `[health]` (detection).
#[derive(Clone, Debug, Serialize)]
pub struct CriticalPath {
    /// The slowest detection the probes allow: `unhealthy_after` rounds, the last one taking
    /// its full timeouts (a dead zone's probes time out).
    pub detect_ms: u64,
    /// Detect, then the slowest Aurora failover, then Route 53's slowest propagation: the
    /// writers and the records of the healthy zones serving everywhere.
    pub mitigate_ms: u64,
    /// Detect, then the slowest failover of what the zone holds (a Multi-AZ instance's reboot
    /// when it holds one).
    pub recover_ms: u64,
    /// How each figure is made, one line each.
    pub parts: Vec<String>,
}

/// The AWS critical path for losing a zone holding `multi_az` Multi-AZ primaries, with the
/// detection of `cfg`.
pub fn critical_path(cfg: &HealthConfig, multi_az: bool) -> CriticalPath {
    let detect = cfg.interval * cfg.unhealthy_after.saturating_sub(1) + cfg.worst_round();
    let aurora = Duration::from_secs(model::AURORA_FAILOVER_S.1);
    let insync = Duration::from_secs(model::ROUTE53_INSYNC_S.1);
    let slowest = if multi_az {
        Duration::from_secs(model::MULTI_AZ_FAILOVER_S.1)
    } else {
        aurora
    };
    let f = |d: Duration| crate::cloud::sim::world::fmt_dur(d);
    CriticalPath {
        detect_ms: ms(detect),
        mitigate_ms: ms(detect + aurora + insync),
        recover_ms: ms(detect + slowest),
        parts: vec![
            format!(
                "detect {}: {} rounds every {}, the last taking its timeouts ({})",
                f(detect),
                cfg.unhealthy_after,
                f(cfg.interval),
                f(cfg.worst_round())
            ),
            format!(
                "mitigate {}: detect + Aurora failover {} + Route 53 INSYNC {}",
                f(detect + aurora + insync),
                f(aurora),
                f(insync)
            ),
            format!(
                "recover {}: detect + the slowest failover out of the zone {}{}",
                f(detect + slowest),
                f(slowest),
                if multi_az {
                    " (Multi-AZ instance reboot)"
                } else {
                    " (Aurora)"
                }
            ),
        ],
    }
}

/// The story of `report` for the loss of `zone`: the fault that took it down, the watcher's
/// detection, the traffic samples, the placements (`recovered`: when nothing was left in it).
pub fn story(
    report: &SimReport,
    zone: &Zone,
    faults: &[crate::cloud::sim::Fault],
    cfg: &HealthConfig,
    recovered: Option<Duration>,
    multi_az: bool,
) -> Story {
    let down = faults
        .iter()
        .find(|f| matches!(&f.kind, FaultKind::AzDown { zone: z } if z == zone));
    let lost = down.map(|f| f.at).unwrap_or_default();
    let back = down.and_then(|f| f.end());
    let detected = report
        .detections
        .iter()
        .find(|d| d.became == "unhealthy" && d.target == zone.as_str());
    let mut mitigated = None;
    if let Some(t) = &report.traffic {
        let mut bad = false;
        for s in &t.samples {
            if s.at_ms < ms(lost) || back.is_some_and(|b| s.at_ms >= ms(b)) {
                continue;
            }
            if !s.good {
                bad = true;
                mitigated = None;
            } else if bad && mitigated.is_none() {
                mitigated = Some(s.at_ms);
            }
        }
    }
    let failback = report.runs.get(1);
    Story {
        zone: zone.clone(),
        lost_ms: ms(lost),
        detected_ms: detected.map(|d| d.at_ms),
        evacuation_started_ms: report.runs.first().and_then(|r| r.started_ms),
        mitigated_ms: mitigated,
        recovered_ms: recovered.map(ms),
        zone_back_ms: back.map(ms),
        failback_started_ms: failback.and_then(|r| r.started_ms),
        failback_ended_ms: failback.and_then(|r| r.ended_ms),
        critical_path: critical_path(cfg, multi_az),
    }
}
