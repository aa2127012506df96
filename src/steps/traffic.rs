//! Traffic tiers as calls. Shedding or restoring one tier is an HTTP call (edge rule, feature
//! flag) or a Route 53 weight change; [`decide_tier`] says which, as data, for the engine's
//! closed loop and for a dry run, which lists every call the loop may make and on what condition.

use crate::call::{Call, Contingent, Decision};
use crate::steps::dns;
use crate::traffic::{BoundLadder, BoundTierAction};
use crate::types::{RunId, StepId};
use crate::world::Needs;
use crate::world::World;

/// What a traffic step observes: the hosted zones of its Route 53 weight tiers.
pub fn needs(ladder: &BoundLadder) -> Needs {
    let mut n = Needs::default();
    for t in &ladder.tiers {
        for a in [&t.apply, &t.revert].into_iter().flatten() {
            if let BoundTierAction::DnsWeights { hosted_zone, .. } = a {
                n.hosted_zones.push(hosted_zone.clone());
            }
        }
    }
    n.dedup();
    n
}

/// What shedding (`shed`) or restoring tier `i` observes.
pub fn tier_needs(ladder: &BoundLadder, i: usize, shed: bool) -> Needs {
    let mut n = Needs::default();
    let action = ladder.tiers.get(i).and_then(|t| {
        if shed {
            t.apply.as_ref()
        } else {
            t.revert.as_ref()
        }
    });
    if let Some(BoundTierAction::DnsWeights { hosted_zone, .. }) = action {
        n.hosted_zones.push(hosted_zone.clone());
    }
    n
}

/// The calls that shed (`shed`) or restore tier `i` of `ladder` against `world`.
pub fn decide_tier(
    step: &StepId,
    run_id: &RunId,
    ladder: &BoundLadder,
    i: usize,
    shed: bool,
    world: &World,
) -> Decision {
    let Some(tier) = ladder.tiers.get(i) else {
        return Decision {
            problems: vec![format!("the ladder has no tier #{}", i + 1)],
            ..Default::default()
        };
    };
    if tier.protected {
        // Defence in depth: the decisions never pick a protected tier.
        return Decision {
            problems: vec![format!("refusing to touch protected tier `{}`", tier.name)],
            ..Default::default()
        };
    }
    let action = if shed { &tier.apply } else { &tier.revert };
    match action {
        None => Decision::default(),
        Some(BoundTierAction::Http {
            request,
            expect_status,
        }) => Decision {
            calls: vec![Call::Http {
                request: request.clone(),
                expect_status: expect_status.clone(),
            }],
            ..Default::default()
        },
        Some(BoundTierAction::DnsWeights {
            hosted_zone,
            records,
            weights,
            ..
        }) => dns::decide_dns_update(
            step,
            run_id,
            hosted_zone,
            records,
            &[],
            &[],
            weights,
            true,
            world,
        ),
    }
}

/// `traffic.shed` for a dry run: the loop, and each tier it may shed in order with its calls.
pub fn decide_shed(
    step: &StepId,
    run_id: &RunId,
    ladder: &BoundLadder,
    max_tier: Option<usize>,
    world: &World,
) -> Decision {
    let limit = max_tier.unwrap_or(ladder.tiers.len().saturating_sub(1));
    let candidates: Vec<usize> = (0..ladder.tiers.len())
        .filter(|i| *i <= limit && !ladder.tiers[*i].protected)
        .collect();
    let names = |idx: &[usize]| {
        idx.iter()
            .map(|i| ladder.tiers[*i].name.as_str())
            .collect::<Vec<_>>()
    };
    let protected: Vec<&str> = ladder
        .tiers
        .iter()
        .filter(|t| t.protected)
        .map(|t| t.name.as_str())
        .collect();
    let mut d = Decision {
        effects: vec![format!(
            "closed loop: while {} is bad, shed the next tier of {} and wait {} (tiers already shed are skipped); never shed: {}",
            ladder.signal.url,
            names(&candidates).join(" -> "),
            humantime::format_duration(ladder.settle),
            if protected.is_empty() { "-".to_string() } else { protected.join(", ") }
        )],
        ..Default::default()
    };
    for i in candidates {
        let t = decide_tier(step, run_id, ladder, i, true, world);
        d.problems.extend(t.problems);
        d.contingent.push(Contingent {
            when: format!(
                "if the signal is still bad (and `{}` is not shed yet), shed `{}`",
                ladder.tiers[i].name, ladder.tiers[i].name
            ),
            calls: t.calls,
        });
    }
    d
}

/// `traffic.restore` for a dry run: each tier it may restore, highest priority first.
pub fn decide_restore(
    step: &StepId,
    run_id: &RunId,
    ladder: &BoundLadder,
    world: &World,
) -> Decision {
    let mut d = Decision {
        effects: vec![format!(
            "closed loop: restore shed tiers in reverse order, each once {} has been good for {}; re-shed a restored tier if it turns bad",
            ladder.signal.url,
            humantime::format_duration(ladder.hold)
        )],
        ..Default::default()
    };
    for i in (0..ladder.tiers.len())
        .rev()
        .filter(|i| !ladder.tiers[*i].protected)
    {
        let t = decide_tier(step, run_id, ladder, i, false, world);
        d.problems.extend(t.problems);
        d.contingent.push(Contingent {
            when: format!(
                "if `{}` is shed and the signal has been good for {}, restore it",
                ladder.tiers[i].name,
                humantime::format_duration(ladder.hold)
            ),
            calls: t.calls,
        });
    }
    d
}

/// A rollback's revert of the tiers a run shed, highest priority first.
pub fn decide_revert(
    step: &StepId,
    run_id: &RunId,
    ladder: &BoundLadder,
    tiers: &[String],
    world: &World,
) -> Decision {
    let mut idx: Vec<usize> = tiers.iter().filter_map(|t| ladder.index(t)).collect();
    idx.sort_unstable_by(|a, b| b.cmp(a));
    let mut d = Decision {
        effects: vec![format!("revert tier(s) {}", tiers.join(", "))],
        ..Default::default()
    };
    for i in idx {
        let t = decide_tier(step, run_id, ladder, i, false, world);
        d.problems.extend(t.problems);
        d.contingent.push(Contingent {
            when: format!(
                "`{}` is still shed by that run: restore it",
                ladder.tiers[i].name
            ),
            calls: t.calls,
        });
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::HttpRequest;
    use crate::traffic::{BoundTier, Signal};
    use std::time::Duration;

    fn tier(name: &str, protected: bool) -> BoundTier {
        let http = |what: &str| BoundTierAction::Http {
            request: HttpRequest {
                method: "PUT".into(),
                url: format!("http://edge/{name}/{what}"),
                headers: vec![],
                body: None,
                timeout: Duration::from_secs(5),
            },
            expect_status: vec![],
        };
        BoundTier {
            name: name.into(),
            protected,
            apply: (!protected).then(|| http("shed")),
            revert: (!protected).then(|| http("restore")),
        }
    }

    fn ladder() -> BoundLadder {
        BoundLadder {
            environment: "e".into(),
            tiers: vec![
                tier("crawlers", false),
                tier("bots", false),
                tier("multi-language", false),
                tier("checkout", true),
            ],
            signal: Signal {
                url: "http://metrics/errors".into(),
                pointer: None,
                good_below: Some(0.02),
                good_above: None,
                timeout: Duration::from_secs(5),
            },
            settle: Duration::from_secs(30),
            hold: Duration::from_secs(300),
            state_file: None,
        }
    }

    fn urls(d: &Decision) -> Vec<String> {
        d.contingent
            .iter()
            .flat_map(|c| c.calls.iter())
            .map(|c| c.resource())
            .collect()
    }

    #[test]
    fn a_dry_run_lists_each_tier_call_in_order_never_a_protected_one() {
        let w = World::default();
        let s = StepId::from("shed");
        let d = decide_shed(&s, &"r".into(), &ladder(), Some(1), &w);
        assert_eq!(
            urls(&d),
            ["http://edge/crawlers/shed", "http://edge/bots/shed"]
        );
        assert!(
            d.calls.is_empty(),
            "nothing is certain before the signal is read"
        );
        let d = decide_shed(&s, &"r".into(), &ladder(), None, &w);
        assert_eq!(d.contingent.len(), 3, "checkout is protected");
        let d = decide_restore(&s, &"r".into(), &ladder(), &w);
        assert_eq!(
            urls(&d),
            [
                "http://edge/multi-language/restore",
                "http://edge/bots/restore",
                "http://edge/crawlers/restore"
            ]
        );
        let d = decide_tier(&s, &"r".into(), &ladder(), 3, true, &w);
        assert!(d.calls.is_empty() && !d.problems.is_empty(), "{d:?}");
    }
}
