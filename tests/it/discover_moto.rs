//! `failover discover` against moto seeded with a realistic account: 300 Aurora clusters over
//! three zones (two teams by tag, some with every instance in one zone), Multi-AZ and single-AZ
//! instances, a hosted zone with weighted and simple records (some per zone, some not) and a
//! second hosted zone that is not asked for. The environment written validates, the evacuation
//! plan on it moves exactly the right resources, and merging into an edited file keeps the edits.

use crate::common::moto::MotoServer;
use crate::common::topo::{clients, repo};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use futures_util::stream::{self, StreamExt};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

const ZONES: [&str; 3] = ["us-west-2a", "us-west-2b", "us-west-2c"];

fn failover(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_failover"))
        .current_dir(repo())
        .env_remove("FAILOVER_JOURNAL")
        .env_remove("FAILOVER_LOG_FORMAT")
        .env("FAILOVER_CONFIG_DIR", config)
        .env("FAILOVER_JOURNAL", config.join("journal.db"))
        .env("HOME", std::env::temp_dir())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run failover")
}

/// A cluster: `team` tag, its writer in `writer_zone`, one reader in the next zone (or in the
/// same zone when `one_zone`).
#[derive(Clone)]
struct Seeded {
    id: String,
    team: &'static str,
    writer_zone: usize,
    one_zone: bool,
}

/// A create that the SDK retried after moto had already done it fails with AlreadyExists: the
/// resource is there, which is all the seeding needs.
fn created<T, E: std::fmt::Debug>(r: Result<T, E>) {
    if let Err(e) = r {
        let e = format!("{e:?}");
        assert!(e.contains("AlreadyExists"), "{e}");
    }
}

async fn seed_cluster(rds: &aws_sdk_rds::Client, c: &Seeded) {
    let r = rds
        .create_db_cluster()
        .db_cluster_identifier(&c.id)
        .engine("aurora-postgresql")
        .master_username("failover")
        .master_user_password("not-a-real-password-1")
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("team")
                .value(c.team)
                .build(),
        )
        .send()
        .await;
    created(r);
    let reader_zone = if c.one_zone {
        c.writer_zone
    } else {
        (c.writer_zone + 1) % 3
    };
    // Writer first: moto makes the first member the writer.
    for (i, z) in [c.writer_zone, reader_zone].into_iter().enumerate() {
        let r = rds
            .create_db_instance()
            .db_instance_identifier(format!("{}-{i}", c.id))
            .db_cluster_identifier(&c.id)
            .engine("aurora-postgresql")
            .db_instance_class("db.r6g.large")
            .availability_zone(ZONES[z])
            .send()
            .await;
        created(r);
    }
}

async fn seed_instance(
    rds: &aws_sdk_rds::Client,
    id: &str,
    team: &str,
    zone: usize,
    multi_az: bool,
) {
    let r = rds
        .create_db_instance()
        .db_instance_identifier(id)
        .engine("mysql")
        .db_instance_class("db.m6g.large")
        .allocated_storage(20)
        .master_username("failover")
        .master_user_password("not-a-real-password-1")
        .multi_az(multi_az)
        .availability_zone(ZONES[zone])
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("team")
                .value(team)
                .build(),
        )
        .send()
        .await;
    created(r);
}

fn set(name: &str, rtype: RrType, id: Option<&str>, value: &str) -> Change {
    let mut r = ResourceRecordSet::builder()
        .name(name)
        .r#type(rtype)
        .ttl(60)
        .resource_records(ResourceRecord::builder().value(value).build().unwrap());
    if let Some(id) = id {
        r = r.set_identifier(id).weight(100);
    }
    Change::builder()
        .action(ChangeAction::Create)
        .resource_record_set(r.build().unwrap())
        .build()
        .unwrap()
}

/// shop.example.com.: 20 simple CNAMEs naming a zone (`svc-N-a.lb...`, their current zone
/// rotating), 10 weighted A records with one set per zone named after it, 2 weighted records
/// whose sets are not named after zones, 6 records naming no zone. other.example.com.: not
/// asked for.
async fn seed_dns(r53: &aws_sdk_route53::Client) -> (usize, usize) {
    let mut ids = vec![];
    for name in ["shop.example.com.", "other.example.com."] {
        let hz = r53
            .create_hosted_zone()
            .name(name)
            .caller_reference(format!("discover-{name}"))
            .send()
            .await
            .unwrap();
        ids.push(
            hz.hosted_zone()
                .unwrap()
                .id()
                .trim_start_matches("/hostedzone/")
                .to_string(),
        );
    }
    let mut changes = vec![];
    let mut simple_in_a = 0;
    for n in 0..20 {
        let z = n % 3;
        simple_in_a += usize::from(z == 0);
        let letter = &ZONES[z][9..];
        changes.push(set(
            &format!("svc{n}.shop.example.com."),
            RrType::Cname,
            None,
            &format!("svc{n}-{letter}.lb.shop.example.com"),
        ));
    }
    for n in 0..10 {
        for (k, z) in ZONES.iter().enumerate() {
            changes.push(set(
                &format!("www{n}.shop.example.com."),
                RrType::A,
                Some(z),
                &format!("10.{n}.{k}.10"),
            ));
        }
    }
    for n in 0..2 {
        for c in ["blue", "green"] {
            changes.push(set(
                &format!("canary{n}.shop.example.com."),
                RrType::A,
                Some(c),
                "10.9.9.9",
            ));
        }
    }
    for n in 0..5 {
        changes.push(set(
            &format!("blog{n}.shop.example.com."),
            RrType::Cname,
            None,
            "blog.example.net",
        ));
    }
    changes.push(set(
        "shop.example.com.",
        RrType::Txt,
        None,
        "\"v=spf1 -all\"",
    ));
    let batch = ChangeBatch::builder()
        .set_changes(Some(changes))
        .build()
        .unwrap();
    r53.change_resource_record_sets()
        .hosted_zone_id(&ids[0])
        .change_batch(batch)
        .send()
        .await
        .unwrap();
    let batch = ChangeBatch::builder()
        .changes(set(
            "api.other.example.com.",
            RrType::Cname,
            None,
            "api-a.lb.other.example.com",
        ))
        .build()
        .unwrap();
    r53.change_resource_record_sets()
        .hosted_zone_id(&ids[1])
        .change_batch(batch)
        .send()
        .await
        .unwrap();
    (simple_in_a, 10)
}

fn calls(plan: &serde_json::Value, kind: &str) -> Vec<serde_json::Value> {
    plan["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["decision"]["calls"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|c| c["call"] == kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn discover_a_realistic_account_then_plan_and_merge() {
    let started = Instant::now();
    let moto = MotoServer::start();
    let endpoint = moto.endpoint();
    let (rds, r53) = clients(&endpoint).await;
    // 300 clusters: 187 storefront, 93 search (outside the tag filter), 20 storefront ones
    // with both instances in one zone (nothing to fail over to).
    let mut clusters = vec![];
    for n in 0..300 {
        clusters.push(Seeded {
            id: format!("db{n:03}"),
            team: if n % 3 == 2 && n < 280 {
                "search"
            } else {
                "storefront"
            },
            writer_zone: n % 3,
            one_zone: n >= 280,
        });
    }
    stream::iter(clusters.iter().map(|c| seed_cluster(&rds, c)))
        .buffer_unordered(1)
        .collect::<Vec<_>>()
        .await;
    let mut instances = vec![];
    for n in 0..12 {
        instances.push((
            format!("legacy{n:02}"),
            if n % 4 == 3 { "search" } else { "storefront" },
            n % 3,
            true,
        ));
    }
    for n in 0..3 {
        instances.push((format!("single{n}"), "storefront", n % 3, false));
    }
    stream::iter(
        instances
            .iter()
            .map(|(id, team, z, m)| seed_instance(&rds, id, team, *z, *m)),
    )
    .buffer_unordered(1)
    .collect::<Vec<_>>()
    .await;
    let (simple_in_a, weighted) = seed_dns(&r53).await;
    let seeded = started.elapsed();

    // Discover.
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let args = [
        "discover",
        "--env",
        "prod",
        "--region",
        "us-west-2",
        "--tag",
        "team=storefront",
        "--hosted-zone",
        "shop.example.com.",
        "--endpoint-url",
        &endpoint,
    ];
    let o = failover(dir.path(), &args);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let discover_time = t.elapsed();
    let path = dir.path().join("prod.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(out.starts_with("Discovered 187 cluster(s), 9 instance(s) and 30 per-zone record(s) in 3 group(s) over us-west-2a, us-west-2b, us-west-2c; 31 not classified, 96 left out by --tag"), "{out}");
    assert!(out.contains(&format!("Wrote {}.", path.display())), "{out}");

    // It validates and names what the stock runbook needs.
    let env = failover::env::Environment::load(dir.path(), "prod")
        .unwrap_or_else(|d| panic!("{d}\n{text}"));
    let storefront: BTreeSet<String> = clusters
        .iter()
        .filter(|c| c.team == "storefront" && !c.one_zone)
        .map(|c| c.id.clone())
        .collect();
    let Some(failover::env::Group::DbClusters { clusters: found }) = env.groups.get("aurora")
    else {
        panic!("{text}")
    };
    assert_eq!(
        found.iter().map(|c| c.to_string()).collect::<BTreeSet<_>>(),
        storefront
    );
    let Some(failover::env::Group::DbInstances { instances: found }) = env.groups.get("multi_az")
    else {
        panic!("{text}")
    };
    assert_eq!(found.len(), 9);
    for c in clusters.iter().filter(|c| c.one_zone) {
        assert!(
            text.contains(&format!(
                "# cluster {}: all its instances are in us-west-2",
                c.id
            )),
            "{}",
            c.id
        );
    }
    assert!(text.contains("# record canary0.shop.example.com. A: weighted sets `blue`, `green` are not named after a zone"), "{text}");
    assert!(text.contains("# instance single0: single-AZ"), "{text}");
    assert!(!text.contains("other.example.com"), "{text}");

    // The evacuation plan moves exactly the right resources.
    let o = failover(
        dir.path(),
        &[
            "plan",
            "runbooks/az-evacuation.toml",
            "--env",
            "prod",
            "-p",
            "failed_az=us-west-2a",
            "--output",
            "json",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let moved: BTreeSet<String> = calls(&plan, "FailoverDbCluster")
        .iter()
        .map(|c| c["cluster"].as_str().unwrap().to_string())
        .collect();
    let expect: BTreeSet<String> = clusters
        .iter()
        .filter(|c| c.team == "storefront" && !c.one_zone && c.writer_zone == 0)
        .map(|c| c.id.clone())
        .collect();
    assert_eq!(moved, expect);
    let rebooted: BTreeSet<String> = calls(&plan, "RebootDbInstance")
        .iter()
        .map(|c| c["instance"].as_str().unwrap().to_string())
        .collect();
    let expect: BTreeSet<String> = instances
        .iter()
        .filter(|(_, team, z, m)| *team == "storefront" && *z == 0 && *m)
        .map(|(id, ..)| id.clone())
        .collect();
    assert_eq!(rebooted, expect);
    let dns = calls(&plan, "ChangeResourceRecordSets");
    let changed: BTreeSet<String> = dns
        .iter()
        .flat_map(|c| c["changes"].as_array().cloned().unwrap_or_default())
        .map(|ch| ch["record"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(changed.len(), simple_in_a + weighted, "{changed:?}");

    // A person edits the file; the account grows; discover shows a diff and writes nothing.
    let edited = text.replace("[groups.aurora]", "# db000 is mine.\n[groups.mine]\nkind = \"db_clusters\"\nclusters = [\"db000\"]\n\n[groups.aurora]")
        + "\n[settings]\npoll_interval = \"2s\" # tuned by hand\n";
    std::fs::write(&path, &edited).unwrap();
    let new = Seeded {
        id: "db999".into(),
        team: "storefront",
        writer_zone: 1,
        one_zone: false,
    };
    seed_cluster(&rds, &new).await;
    let o = failover(dir.path(), &args);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("+    \"db999\","), "{out}");
    assert!(
        out.contains("exists: nothing was written. Run again with --merge"),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);
    // --merge keeps the edits, adds db999, and does not list db000 twice.
    let mut merge = args.to_vec();
    merge.push("--merge");
    let o = failover(dir.path(), &merge);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let merged = std::fs::read_to_string(&path).unwrap();
    assert!(
        merged.contains(
            "# db000 is mine.\n[groups.mine]\nkind = \"db_clusters\"\nclusters = [\"db000\"]"
        ),
        "{merged}"
    );
    assert!(
        merged.contains("poll_interval = \"2s\" # tuned by hand"),
        "{merged}"
    );
    assert_eq!(
        merged.matches("\"db000\"").count(),
        edited.matches("\"db000\"").count()
    );
    assert_eq!(merged.matches("\"db999\"").count(), 1);
    failover::env::Environment::load(dir.path(), "prod")
        .unwrap_or_else(|d| panic!("{d}\n{merged}"));
    eprintln!(
        "seeded in {seeded:?}, discovered in {discover_time:?}, all in {:?}",
        started.elapsed()
    );
}
