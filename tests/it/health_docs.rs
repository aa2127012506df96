//! `docs/health.md` stays true: its complete example parses as an environment (every probe
//! kind, the trigger, the notify endpoint), and its broken example is refused with exactly the
//! diagnostics the page shows.

use failover::diag::SourceFile;
use failover::env::Environment;
use failover::health::config::{Check, Policy, Target};
use failover::types::{Region, Zone};

fn doc() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/health.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Fenced blocks of the page, with their language tag.
fn blocks(text: &str) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(lang)) => current = Some((lang.trim().to_string(), String::new())),
            (Some(_), Some(_)) => out.push(current.take().expect("in a block")),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

#[test]
fn the_complete_example_is_a_valid_environment() {
    let blocks = blocks(&doc());
    let (_, example) = blocks
        .iter()
        .find(|(lang, body)| lang == "toml" && body.starts_with("name = \"prod\""))
        .expect("the complete example");
    let env = Environment::parse(SourceFile::new("config/prod.toml", example.clone()), "prod")
        .unwrap_or_else(|d| panic!("the example in docs/health.md does not validate:\n{d}"));
    let h = env.health.as_ref().expect("[health]");
    let kinds: std::collections::BTreeSet<&str> = h.probes.iter().map(|p| p.check.kind()).collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            "cloudwatch_alarm",
            "http",
            "rds",
            "route53_health_check",
            "tcp"
        ],
        "the example uses every probe kind"
    );
    assert_eq!(h.probes.len(), 10);
    assert_eq!(
        h.probe_counts()[&Target::Region(Region::from("us-west-2"))],
        1
    );
    for z in ["us-west-2a", "us-west-2b", "us-west-2c"] {
        assert_eq!(h.probe_counts()[&Target::Zone(Zone::from(z))], 3, "{z}");
    }
    let db_b = h.probes.iter().find(|p| p.name == "db-b").unwrap();
    assert_eq!(db_b.timeout, std::time::Duration::from_secs(1));
    assert!(
        matches!(&h.probes[0].check, Check::Http { expect_status, .. } if expect_status == &[200, 204])
    );
    let tr = h.trigger.as_ref().expect("[health.trigger]");
    assert_eq!(
        (
            tr.policy,
            tr.zone_param.as_str(),
            tr.reason_param.as_deref()
        ),
        (Policy::Approval, "failed_az", Some("reason"))
    );
    let endpoints: Vec<&str> = env.endpoints.keys().map(String::as_str).collect();
    let src = env.source.as_ref().expect("source kept");
    assert!(h.check_endpoints(src, &endpoints).is_empty());
    // The trigger's runbook takes the zone and the reason.
    let rb = failover::runbook::Runbook::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(&tr.runbook),
    )
    .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        failover::health::trigger::check_runbook(tr, &rb),
        Vec::<String>::new()
    );
}

#[test]
fn the_broken_example_is_refused_word_for_word() {
    let blocks = blocks(&doc());
    let i = blocks
        .iter()
        .position(|(lang, body)| lang == "toml" && body.starts_with("# config/broken.toml"))
        .expect("the broken example");
    let (lang, expected) = &blocks[i + 1];
    assert_eq!(lang, "text", "the diagnostics follow the broken example");
    let d = Environment::parse(
        SourceFile::new("config/broken.toml", blocks[i].1.clone()),
        "broken",
    )
    .expect_err("the broken example must be refused");
    assert_eq!(
        format!("{d}\n"),
        *expected,
        "update docs/health.md with:\n{d}"
    );
}
