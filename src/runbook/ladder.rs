//! Binding an environment's load-shedding ladder for one run: `${tier}` and the run's
//! variables rendered in the url and body of each tier action, endpoints and `records` groups
//! resolved from the environment.
//!
//! The ladder model, the bound-ladder types and the shed/restore decisions are in `traffic`,
//! which knows nothing of environments or runbooks; binding needs both, so it lives here.

use super::template;
use crate::cloud::HttpRequest;
use crate::env::{Environment, Group};
use crate::traffic::{BoundLadder, BoundTier, BoundTierAction, Ladder, TierAction};
use crate::types::Zone;
use std::collections::BTreeMap;
use std::time::Duration;

/// Bind the environment's ladder for a run: `${tier}` plus the run's variables in url/body.
pub fn bind_ladder(l: &Ladder, env: &Environment, vars: &BTreeMap<String, String>) -> BoundLadder {
    BoundLadder {
        environment: env.name.clone(),
        tiers: l
            .tiers
            .iter()
            .map(|t| BoundTier {
                name: t.name.clone(),
                protected: t.protected,
                apply: t.apply.as_ref().map(|a| bind_action(&t.name, a, env, vars)),
                revert: t
                    .revert
                    .as_ref()
                    .map(|a| bind_action(&t.name, a, env, vars)),
            })
            .collect(),
        signal: l.signal.clone(),
        settle: l.settle,
        hold: l.hold,
        state_file: l.state_file.clone(),
    }
}

/// One apply or revert action of tier `tier`.
fn bind_action(
    tier: &str,
    a: &TierAction,
    env: &Environment,
    vars: &BTreeMap<String, String>,
) -> BoundTierAction {
    match a {
        TierAction::Http {
            endpoint,
            url,
            method,
            body,
            expect_status,
        } => {
            let mut v = vars.clone();
            v.insert("tier".into(), tier.to_string());
            let request = tier_request(
                env,
                endpoint.as_deref(),
                url.as_deref(),
                method.as_deref(),
                body.as_deref(),
                &v,
            );
            BoundTierAction::Http {
                request,
                expect_status: expect_status.clone(),
            }
        }
        TierAction::DnsWeights { group, weights } => dns_weights(env, group, weights),
    }
}

/// The HTTP request of a tier action: its own url, method and body over those of its endpoint.
fn tier_request(
    env: &Environment,
    endpoint: Option<&str>,
    url: Option<&str>,
    method: Option<&str>,
    body: Option<&str>,
    vars: &BTreeMap<String, String>,
) -> HttpRequest {
    let r = |s: &str| template::render_for_http(s, vars).unwrap_or_else(|_| s.to_string());
    let ep = endpoint.and_then(|e| env.endpoints.get(e));
    HttpRequest {
        method: method
            .map(str::to_string)
            .or(ep.map(|e| e.method.clone()))
            .unwrap_or_else(|| "POST".into()),
        url: url.map(r).or(ep.map(|e| e.url.clone())).unwrap_or_default(),
        headers: ep.map(|e| e.headers.clone()).unwrap_or_default(),
        body: body.map(r),
        timeout: ep.map(|e| e.timeout).unwrap_or(Duration::from_secs(10)),
    }
}

/// A weight change of a `records` group, with the group's hosted zone and records.
fn dns_weights(env: &Environment, group: &str, weights: &BTreeMap<Zone, i64>) -> BoundTierAction {
    let (hosted_zone, records) = match env.groups.get(group) {
        Some(Group::Records {
            hosted_zone,
            records,
        }) => (
            hosted_zone.clone(),
            records.iter().map(Into::into).collect(),
        ),
        _ => (String::new(), vec![]),
    };
    BoundTierAction::DnsWeights {
        group: group.to_string(),
        hosted_zone,
        records,
        weights: weights.clone(),
    }
}
