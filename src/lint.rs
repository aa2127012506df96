//! `failover lint`: static stability of a runbook for a region failure. Pure: bound steps and
//! the environment in, findings out.
//!
//! In a region-wide event the failed region's control planes (its RDS, CloudWatch, regional
//! API endpoints) may not answer, and Route 53's control plane lives in us-east-1 (changes,
//! `GetChange`): a step that needs one of them to evacuate *from* that region can stall the
//! evacuation when it matters most. AWS's guidance is to rely on data planes and on what was
//! prepared in advance: the recovery region's endpoints, pre-created failover records with
//! health checks, routing controls. Each finding says which step, which dependency, and what
//! to use instead.

use crate::env::Environment;
use crate::health::config::Check;
use crate::runbook::bind::{BoundAction, BoundStep};
use crate::traffic::{BoundLadder, BoundTierAction};
use serde::Serialize;

/// Route 53's control plane (ChangeResourceRecordSets, GetChange) is in us-east-1.
pub const ROUTE53_CONTROL_PLANE: &str = "us-east-1";

const GLOBAL: &str = "fail over to another region: an Aurora Global Database switchover or failover (rds.switchover_global / rds.failover_global) called on the recovery region's endpoint";

/// One dependency of a step on the failed region's control plane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub step: String,
    /// What the step needs, and why that is a problem.
    pub message: String,
    /// What to use instead.
    pub instead: String,
}

/// Every enabled step of `steps` that depends on `failed_region`'s control plane.
pub fn lint(steps: &[BoundStep], env: &Environment, failed_region: &str) -> Vec<Finding> {
    let mut out = vec![];
    let home = env.region == failed_region;
    for s in steps.iter().filter(|s| s.enabled) {
        let mut find = |message: String, instead: &str| {
            out.push(Finding {
                step: s.id.to_string(),
                message,
                instead: instead.to_string(),
            })
        };
        match &s.action {
            BoundAction::FailoverCluster { .. }
            | BoundAction::FailoverInstance { .. }
            | BoundAction::Snapshot { .. }
                if home =>
            {
                let (what, instead) = match &s.action {
                    BoundAction::FailoverCluster { .. } => ("FailoverDBCluster", GLOBAL),
                    BoundAction::FailoverInstance { .. } => ("RebootDBInstance (Multi-AZ failover)", GLOBAL),
                    _ => ("CreateDBClusterSnapshot / CreateDBSnapshot", "rely on the recovery region's copy (a global database's secondary cluster, or snapshots copied there beforehand) and give this step on_failure = \"continue\" and wait = false, so it never holds the evacuation"),
                };
                find(
                    format!("calls {what} on the RDS endpoint of {failed_region}, the failed region: its control plane may not answer, and nothing done inside the failed region moves the data out of it"),
                    instead,
                );
            }
            BoundAction::DnsUpdate { .. } | BoundAction::RestoreRecords { .. }
                if failed_region == ROUTE53_CONTROL_PLANE =>
            {
                find(
                    format!("changes Route 53 records: ChangeResourceRecordSets and GetChange are served by Route 53's control plane in {ROUTE53_CONTROL_PLANE}, the failed region"),
                    "pre-create failover (or weighted) records with Route 53 health checks, which move traffic on Route 53's data plane without any change, or use ARC routing controls",
                );
            }
            BoundAction::ZonalShift { .. } | BoundAction::CancelZonalShift { .. } if home => {
                find(
                    format!("calls ARC zonal shift in {failed_region}, the failed region: zonal shift moves traffic between the zones of one region, through that region's endpoint"),
                    "in a region failure move traffic between regions: Route 53 failover records with health checks, or ARC routing controls (a zonal shift is for one zone of a healthy region)",
                );
            }
            BoundAction::GlobalMove(m) => {
                if let Some(to) = m.target_region().filter(|t| t.as_str() == failed_region) {
                    find(
                        format!("moves the global databases' writer to {to}, the failed region, and calls its RDS endpoint to do it"),
                        "name the recovery region in `to_region` (another of the environment's `regions`), or set `evacuate_region` to the failed one",
                    );
                }
            }
            BoundAction::Http { request, .. } => {
                if let Some(host) = hosted_in(&request.url, failed_region) {
                    find(
                        format!("calls {} {host}, an endpoint hosted in {failed_region}, the failed region", request.method),
                        "point the endpoint at a copy outside the region (or a global one), or give the step on_failure = \"continue\" so the evacuation does not wait on it",
                    );
                }
            }
            BoundAction::TrafficShed { ladder, .. }
            | BoundAction::TrafficRestore { ladder }
            | BoundAction::TrafficRevert { ladder, .. } => {
                for (what, host) in ladder_hosts(ladder, failed_region) {
                    find(
                        format!("{what} is {host}, hosted in {failed_region}, the failed region"),
                        "serve the traffic signal and the tiers' admin endpoints from outside the region (or a global edge), so shedding works while it is down",
                    );
                }
            }
            BoundAction::HealthAssert { .. } => {
                for why in probe_dependencies(env, failed_region) {
                    find(
                        why,
                        "probe from outside the failed region: region-wide HTTP probes of the public endpoints, Route 53 health checks (global), or alarms in the recovery region",
                    );
                }
            }
            _ => {}
        }
    }
    out
}

/// The URL's host when it names `region` (`*.us-west-2.amazonaws.com`, `...-us-west-2...`).
fn hosted_in(url: &str, region: &str) -> Option<String> {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let host = rest.split(['/', ':', '?']).next().unwrap_or(rest);
    host.contains(region).then(|| host.to_string())
}

fn ladder_hosts(l: &BoundLadder, region: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = hosted_in(&l.signal.url, region)
        .map(|h| ("the traffic signal".to_string(), h))
        .into_iter()
        .collect();
    for t in &l.tiers {
        for (what, a) in [("apply", &t.apply), ("revert", &t.revert)] {
            if let Some(BoundTierAction::Http { request, .. }) = a {
                if let Some(h) = hosted_in(&request.url, region) {
                    out.push((format!("the {what} endpoint of tier `{}`", t.name), h));
                }
            }
        }
    }
    out
}

/// What `health.assert` reads from the failed region's APIs: CloudWatch alarms and RDS status
/// (the environment's region) answer `unknown` when it is down, never a verdict. (HTTP probes
/// hosted there are fine: they fail, which is the evidence.)
fn probe_dependencies(env: &Environment, region: &str) -> Vec<String> {
    let Some(h) = &env.health else {
        return vec![];
    };
    let mut out = vec![];
    for p in &h.probes {
        let why = match &p.check {
            Check::CloudwatchAlarm { alarm } if env.region == region => Some(format!(
                "asserts health with probe `{}`: CloudWatch alarm `{alarm}` is read from {region}, the failed region (no answer is `unknown`, never the verdict)",
                p.name
            )),
            Check::Rds { .. } if env.region == region => Some(format!(
                "asserts health with probe `{}`: DescribeDBInstances in {region}, the failed region",
                p.name
            )),
            _ => None,
        };
        out.extend(why);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::SourceFile;
    use crate::runbook::bind::{bind, bind_params, RunContext};
    use crate::runbook::Runbook;

    fn env() -> Environment {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/prod.toml"))
                .unwrap();
        Environment::parse(SourceFile::new("config/prod.toml", text), "prod")
            .unwrap_or_else(|d| panic!("{d}"))
    }

    fn steps(text: &str, env: &Environment) -> Vec<BoundStep> {
        let rb = Runbook::parse(SourceFile::new("rb.toml", text)).unwrap_or_else(|d| panic!("{d}"));
        let ctx = RunContext {
            run_id: crate::types::RunId::new("t"),
            initiator: "t".into(),
            mode: crate::status::RunMode::Plan,
        };
        let p = bind_params(&rb, env, &[]).unwrap_or_else(|d| panic!("{d}"));
        bind(&rb, env, &p, &ctx).unwrap_or_else(|d| panic!("{d}"))
    }

    const RB: &str = r#"
name = "r"
[[steps]]
id = "move"
action = "rds.failover_cluster"
group = "aurora"
evacuate = "us-west-2a"
[[steps]]
id = "dns"
action = "dns.update"
group = "storefront"
evacuate = "us-west-2a"
[[steps]]
id = "tell"
action = "http"
url = "https://hooks.execute-api.us-west-2.amazonaws.com/prod/notify"
method = "POST"
[[steps]]
id = "tell-global"
action = "http"
url = "https://status.example.com/x"
method = "POST"
[[steps]]
id = "global"
action = "rds.switchover_global"
group = "orders_global"
to_region = "us-east-1"
[[steps]]
id = "off"
action = "http"
when = "1 == 2"
url = "https://hooks.execute-api.us-west-2.amazonaws.com/prod/notify"
method = "POST"
"#;

    #[test]
    fn the_failed_regions_control_planes_are_found_step_by_step() {
        let e = env();
        let s = steps(RB, &e);
        let f = lint(&s, &e, "us-west-2");
        let got: Vec<&str> = f.iter().map(|f| f.step.as_str()).collect();
        assert_eq!(got, ["move", "tell"], "{f:#?}");
        assert!(f[0]
            .message
            .starts_with("calls FailoverDBCluster on the RDS endpoint of us-west-2"));
        assert!(f[0].instead.contains("rds.switchover_global"));
        assert!(
            f[1].message
                .contains("hooks.execute-api.us-west-2.amazonaws.com"),
            "{}",
            f[1].message
        );
        // us-east-1 failing: Route 53's control plane; the RDS calls are fine.
        let f = lint(&s, &e, "us-east-1");
        let got: Vec<&str> = f.iter().map(|f| f.step.as_str()).collect();
        assert_eq!(got, ["dns", "global"], "{f:#?}");
        assert!(f[0].instead.contains("health checks"));
        assert!(f[1]
            .message
            .contains("writer to us-east-1, the failed region"));
        assert!(lint(&s, &e, "eu-west-1").is_empty());
    }

    #[test]
    fn the_region_evacuations_dns_step_is_found_when_us_east_1_fails() {
        let e = env();
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/runbooks/region-evacuation.toml"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let rb = Runbook::parse(SourceFile::new(path, text)).unwrap_or_else(|d| panic!("{d}"));
        let ctx = RunContext {
            run_id: crate::types::RunId::new("t"),
            initiator: "t".into(),
            mode: crate::status::RunMode::Plan,
        };
        for (failed, recovery, dns_found) in [
            ("us-east-1", "us-west-2", true),
            ("us-west-2", "us-east-1", false),
        ] {
            let given = [
                ("failed_region".to_string(), failed.to_string()),
                ("recovery_region".to_string(), recovery.to_string()),
            ];
            let p = bind_params(&rb, &e, &given).unwrap_or_else(|d| panic!("{d}"));
            let s = bind(&rb, &e, &p, &ctx).unwrap_or_else(|d| panic!("{d}"));
            assert!(matches!(
                &s.iter()
                    .find(|s| s.id.as_str() == "repoint-dns")
                    .unwrap()
                    .action,
                BoundAction::DnsUpdate {
                    region: Some(_),
                    ..
                }
            ));
            let f = lint(&s, &e, failed);
            let dns = f.iter().find(|x| x.step == "repoint-dns");
            assert_eq!(dns.is_some(), dns_found, "{failed}: {f:#?}");
            if let Some(x) = dns {
                assert!(x.message.contains("Route 53's control plane in us-east-1"));
            }
        }
    }

    #[test]
    fn health_asserts_that_read_the_failed_regions_apis_are_found() {
        let e = env();
        let s = steps("name = \"r\"\n[[steps]]\nid = \"confirm\"\naction = \"health.assert\"\nzone = \"us-west-2a\"\nexpect = \"unhealthy\"\n", &e);
        let f = lint(&s, &e, "us-west-2");
        // prod's alarms (3) and RDS probes (3) answer from us-west-2; its HTTP probes fail,
        // which is the evidence, so they are fine.
        assert_eq!(f.len(), 6, "{f:#?}");
        assert!(f.iter().any(|x| x
            .message
            .contains("CloudWatch alarm `prod-api-5xx-us-west-2a`")));
        assert!(lint(&s, &e, "us-east-1").is_empty());
    }
}
