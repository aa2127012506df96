//! `failover iam-policy`: the prod policy of the evacuation as a snapshot, the IAM grammar of
//! every policy the stock runbooks produce, and the table of operations held equal to what the
//! AWS adapters call (a new call cannot be left out of the policies).

use crate::common::snapshot;
use crate::common::topo::repo;
use std::collections::BTreeSet;
use std::process::Command;

fn iam_policy(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_failover"))
        .current_dir(repo())
        .arg("iam-policy")
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The policy grammar IAM accepts: Version 2012-10-17, a non-empty Statement list, each with a
/// unique alphanumeric Sid, Effect Allow, an `service:Operation` Action and ARN (or `*`)
/// resources.
fn assert_iam_grammar(doc: &serde_json::Value) {
    assert_eq!(doc["Version"], "2012-10-17");
    let statements = doc["Statement"].as_array().expect("Statement is a list");
    assert!(!statements.is_empty());
    let mut sids = BTreeSet::new();
    for s in statements {
        let o = s.as_object().expect("a statement is an object");
        let keys: BTreeSet<&str> = o.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            BTreeSet::from(["Sid", "Effect", "Action", "Resource"]),
            "{s}"
        );
        let sid = s["Sid"].as_str().unwrap();
        assert!(
            !sid.is_empty() && sid.chars().all(|c| c.is_ascii_alphanumeric()),
            "{sid}"
        );
        assert!(sids.insert(sid.to_string()), "Sid {sid} twice");
        assert_eq!(s["Effect"], "Allow");
        let action = s["Action"].as_str().unwrap();
        let (service, op) = action.split_once(':').expect("service:Operation");
        assert!(
            ["rds", "route53", "cloudwatch", "arc-zonal-shift"].contains(&service),
            "{action}"
        );
        assert!(op.chars().all(|c| c.is_ascii_alphanumeric()), "{action}");
        let resources: Vec<&str> = match &s["Resource"] {
            serde_json::Value::String(r) => vec![r.as_str()],
            serde_json::Value::Array(rs) => rs.iter().map(|r| r.as_str().unwrap()).collect(),
            other => panic!("Resource {other}"),
        };
        for r in resources {
            assert!(r == "*" || r.starts_with("arn:aws:"), "{action}: {r}");
        }
    }
}

#[test]
fn the_prod_policy_of_the_evacuation_with_zonal_shift() {
    let (ok, out, err) = iam_policy(&[
        "runbooks/az-evacuation.toml",
        "--env",
        "prod",
        "-p",
        "failed_az=us-west-2a",
        "-p",
        "zonal_shift=true",
        "-p",
        "check_health=true",
        "--account",
        "123456789012",
    ]);
    assert!(ok, "{out}{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("the policy is JSON");
    assert_iam_grammar(&doc);
    // Least privilege: the mutating actions name the environment's resources, never `*`.
    let text = out.as_str();
    for want in [
        "\"rds:FailoverDBCluster\"",
        "arn:aws:rds:us-west-2:123456789012:cluster:prod-orders-db",
        "\"rds:RebootDBInstance\"",
        "arn:aws:rds:us-west-2:123456789012:db:prod-legacy-mysql",
        "\"route53:ChangeResourceRecordSets\"",
        "arn:aws:route53:::change/*",
        "\"arc-zonal-shift:StartZonalShift\"",
        "loadbalancer/app/prod-storefront/5d1b7c3e9f2a4b6c",
    ] {
        assert!(text.contains(want), "missing {want}:\n{text}");
    }
    for s in doc["Statement"].as_array().unwrap() {
        let action = s["Action"].as_str().unwrap();
        let mutating = ["Failover", "Reboot", "Create", "Change", "Start", "Cancel"]
            .iter()
            .any(|m| action.contains(m));
        if mutating {
            assert_ne!(s["Resource"], "*", "{action} on every resource");
        }
    }
    snapshot("iam-policy-prod.json", &out);
}

#[test]
fn steps_turned_off_need_nothing_and_an_unknown_account_is_a_wildcard_with_a_note() {
    let (ok, out, err) = iam_policy(&[
        "runbooks/az-evacuation.toml",
        "--env",
        "staging",
        "-p",
        "failed_az=us-west-2a",
    ]);
    assert!(ok, "{out}{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_iam_grammar(&doc);
    assert!(
        !out.contains("arc-zonal-shift"),
        "the zonal shift step is off:\n{out}"
    );
    assert!(out.contains("arn:aws:rds:us-west-2:*:cluster:"), "{out}");
    assert!(
        err.contains("note: environment `staging` names no account"),
        "{err}"
    );
    let (ok, _, err) = iam_policy(&[
        "runbooks/az-evacuation.toml",
        "--env",
        "staging",
        "-p",
        "failed_az=us-west-2a",
        "--account",
        "12345",
    ]);
    assert!(
        !ok && err.contains("--account `12345` is not a 12-digit AWS account id"),
        "{err}"
    );
}

#[test]
fn every_stock_runbook_gives_a_valid_policy() {
    for (rb, params) in [
        (
            "az-failback.toml",
            vec!["zone=us-west-2a", "zonal_shift=true"],
        ),
        ("shed-load.toml", vec![]),
        ("restore-load.toml", vec![]),
    ] {
        let mut args = vec![
            format!("runbooks/{rb}"),
            "--env".into(),
            "prod".into(),
            "--watch".into(),
        ];
        for p in params {
            args.extend(["-p".to_string(), p.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let (ok, out, err) = iam_policy(&args);
        assert!(ok, "{rb}: {out}{err}");
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_iam_grammar(&doc);
    }
}

/// Every AWS operation the adapters name (each SDK call's errors name its operation) has an
/// IAM action in `failover::iam::OPERATIONS`.
#[test]
fn every_operation_the_aws_adapters_call_has_an_iam_action() {
    let dir = repo().join("src/cloud/aws");
    let mut found = BTreeSet::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        // Tests below `#[cfg(test)]` use placeholder names.
        let code = text.split("#[cfg(test)]").next().unwrap();
        for pat in ["cloud_error(\"", "const OP: &str = \""] {
            for (i, _) in code.match_indices(pat) {
                let rest = &code[i + pat.len()..];
                let op: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                found.insert(op);
            }
        }
    }
    assert!(
        found.len() >= 15,
        "the scan finds the adapters' operations: {found:?}"
    );
    let missing: Vec<&String> = found
        .iter()
        .filter(|op| failover::iam::action_of(op).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "no IAM action for {missing:?}: add them to iam::OPERATIONS"
    );
}
