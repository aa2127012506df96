//! The closed loops of `traffic.shed`, `traffic.restore` and `traffic.revert` (rollback).
//!
//! Decisions are the pure `traffic::next_to_shed` / `next_to_restore`; this module reads the
//! signal, acts through the same journaled path as every other call (`execute_decision`), keeps
//! the ladder state in the journal (so a tier already shed is not shed again, and a resumed run
//! knows the ladder), publishes it to the state file, and waits on the injected clock.

use super::act::execute_decision;
use super::ctx::{Ctx, StepError};
use super::observe;
use crate::progress::Progress;
use crate::runbook::bind::BoundStep;
use crate::steps::traffic::{decide_tier, tier_needs};
use crate::traffic::{
    judge, next_to_restore, next_to_shed, BoundLadder, Reading, RestoreNext, ShedNext,
};
use std::time::{Duration, SystemTime};

async fn read_signal(ctx: &Ctx, ladder: &BoundLadder) -> Result<Reading, StepError> {
    let req = crate::cloud::HttpRequest {
        method: "GET".into(),
        url: ladder.signal.url.clone(),
        headers: vec![],
        body: None,
        timeout: ladder.signal.timeout,
    };
    let mut last = None;
    for attempt in 0..3u32 {
        match ctx.ports.http.send(&req).await {
            Ok(resp) => {
                return judge(&ladder.signal, resp.status, &resp.body).map_err(|e| {
                    StepError::Precondition(format!(
                        "cannot read the signal {}: {e}",
                        ladder.signal.url
                    ))
                })
            }
            Err(e) => {
                last = Some(e);
                ctx.sleep(Duration::from_millis(200 << attempt)).await?;
            }
        }
    }
    Err(StepError::Precondition(format!(
        "cannot read the signal {}: {}; shedding blind is unsafe, so the step stops here",
        ladder.signal.url,
        last.map(|e| e.to_string()).unwrap_or_default()
    )))
}

async fn shed_vector(ctx: &Ctx, ladder: &BoundLadder) -> Result<Vec<bool>, StepError> {
    let shed = ctx.journal.shed_tiers(&ladder.environment).await?;
    Ok(ladder
        .tiers
        .iter()
        .map(|t| shed.iter().any(|(n, _, _)| n == &t.name))
        .collect())
}

/// Write the shed state where edges poll it (atomically: temp file + rename).
async fn publish(ctx: &Ctx, ladder: &BoundLadder) -> Result<(), StepError> {
    let Some(path) = &ladder.state_file else {
        return Ok(());
    };
    let shed = ctx.journal.shed_tiers(&ladder.environment).await?;
    let doc = crate::traffic::state_document(
        crate::journal::now_ms(),
        &ladder.environment,
        &ladder
            .tiers
            .iter()
            .map(|t| (t.name.clone(), t.protected))
            .collect::<Vec<_>>(),
        &shed,
    );
    let path = std::path::Path::new(path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            StepError::Precondition(format!("cannot create {}: {e}", dir.display()))
        })?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&doc).unwrap_or_default())
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| {
            StepError::Precondition(format!(
                "cannot publish the shed state to {}: {e}",
                path.display()
            ))
        })
}

async fn set_tier(
    ctx: &Ctx,
    step: &BoundStep,
    ladder: &BoundLadder,
    i: usize,
    shed: bool,
) -> Result<(), StepError> {
    let tier = &ladder.tiers[i];
    let sid = step.id.as_str();
    ctx.reporter.report(Progress::Skip {
        step: sid.to_string(),
        text: format!(
            "{} tier `{}`",
            if shed { "shedding" } else { "restoring" },
            tier.name
        ),
    });
    let needs = tier_needs(ladder, i, shed);
    let world = if needs.is_empty() {
        Default::default()
    } else {
        observe::observe(&ctx.ports, &needs).await?
    };
    let decision = decide_tier(&step.id, &ctx.spec.run_id, ladder, i, shed, &world);
    if !decision.problems.is_empty() {
        return Err(StepError::Precondition(decision.problems.join("\n  ")));
    }
    execute_decision(ctx, step, &decision, &world).await?;
    ctx.journal
        .set_shed(&ladder.environment, &tier.name, &ctx.spec.run_id, sid, shed)
        .await?;
    publish(ctx, ladder).await
}

pub(crate) async fn shed(
    ctx: &Ctx,
    step: &BoundStep,
    ladder: &BoundLadder,
    max_tier: Option<usize>,
) -> Result<Option<String>, StepError> {
    let sid = step.id.to_string();
    let mut shed_now = vec![];
    loop {
        let state = shed_vector(ctx, ladder).await?;
        let reading = read_signal(ctx, ladder).await?;
        ctx.reporter.report(Progress::Waiting {
            step: sid.clone(),
            what: reading.detail.clone(),
        });
        match next_to_shed(&ladder.ladder(), &state, reading.good, max_tier) {
            ShedNext::Stop(why) => {
                let list = if shed_now.is_empty() {
                    "no tier shed by this step".to_string()
                } else {
                    format!("shed {}", shed_now.join(", "))
                };
                if reading.good {
                    return Ok(Some(format!("{why} ({}); {list}", reading.detail)));
                }
                return Err(StepError::Precondition(format!(
                    "{why} ({}); {list}",
                    reading.detail
                )));
            }
            ShedNext::Shed(i) => {
                set_tier(ctx, step, ladder, i, true).await?;
                shed_now.push(ladder.tiers[i].name.clone());
                ctx.reporter.report(Progress::Waiting {
                    step: sid.clone(),
                    what: format!(
                        "settling {} after shedding `{}`",
                        humantime::format_duration(ladder.settle),
                        ladder.tiers[i].name
                    ),
                });
                ctx.sleep(ladder.settle).await?;
            }
        }
    }
}

pub(crate) async fn restore(
    ctx: &Ctx,
    step: &BoundStep,
    ladder: &BoundLadder,
) -> Result<Option<String>, StepError> {
    let sid = step.id.to_string();
    let poll = ladder
        .settle
        .min(ladder.hold / 4)
        .max(Duration::from_millis(10));
    let mut good_since: Option<SystemTime> = None;
    let mut last_restored: Option<(usize, SystemTime)> = None;
    let mut resheds = vec![0u32; ladder.tiers.len()];
    let mut restored = vec![];
    let mut last_note = String::new();
    loop {
        let state = shed_vector(ctx, ladder).await?;
        let reading = read_signal(ctx, ladder).await?;
        let now = ctx.ports.clock.now();
        if reading.good {
            good_since.get_or_insert(now);
        } else {
            good_since = None;
            // Turned bad soon after a restore: put that tier back (once), hold again.
            if let Some((i, at)) = last_restored {
                if now.duration_since(at).unwrap_or_default() < ladder.hold {
                    if resheds[i] >= 1 {
                        set_tier(ctx, step, ladder, i, true).await?;
                        return Err(StepError::Precondition(format!(
                            "the signal turned bad twice right after restoring `{}` ({}); it is shed again and stays shed: restore by hand when the cause is fixed",
                            ladder.tiers[i].name, reading.detail
                        )));
                    }
                    resheds[i] += 1;
                    set_tier(ctx, step, ladder, i, true).await?;
                    restored.retain(|n| n != &ladder.tiers[i].name);
                    last_restored = None;
                    ctx.sleep(ladder.settle).await?;
                    continue;
                }
            }
        }
        let good_for = good_since.map(|g| now.duration_since(g).unwrap_or_default());
        match next_to_restore(&state, good_for, ladder.hold) {
            RestoreNext::Done => {
                return Ok(Some(if restored.is_empty() {
                    "nothing was shed: nothing to restore".to_string()
                } else {
                    format!("restored {}", restored.join(", "))
                }));
            }
            RestoreNext::Revert(i) => {
                set_tier(ctx, step, ladder, i, false).await?;
                restored.push(ladder.tiers[i].name.clone());
                last_restored = Some((i, now));
                // The next tier needs a fresh hold period of good signal.
                good_since = None;
            }
            RestoreNext::Wait(why) => {
                if why != last_note {
                    ctx.reporter.report(Progress::Waiting {
                        step: sid.clone(),
                        what: why.clone(),
                    });
                    last_note = why;
                }
            }
        }
        ctx.sleep(poll).await?;
    }
}

/// Rollback: revert the named tiers that are still shed, highest priority first.
pub(crate) async fn revert(
    ctx: &Ctx,
    step: &BoundStep,
    ladder: &BoundLadder,
    tiers: &[String],
) -> Result<Option<String>, StepError> {
    let state = shed_vector(ctx, ladder).await?;
    let mut idx: Vec<usize> = tiers
        .iter()
        .filter_map(|t| ladder.index(t))
        .filter(|i| state[*i])
        .collect();
    idx.sort_unstable_by(|a, b| b.cmp(a));
    for i in &idx {
        set_tier(ctx, step, ladder, *i, false).await?;
    }
    Ok(Some(if idx.is_empty() {
        "no tier of the run is still shed: nothing to do".into()
    } else {
        format!(
            "restored {}",
            idx.iter()
                .map(|i| ladder.tiers[*i].name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }))
}
