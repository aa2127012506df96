//! `dns.update` across regions against moto, through the counting proxy: records valued per
//! region whose Route 53 record sets use latency, failover and weighted routing with health
//! checks, and a simple one. The dry run lists the exact calls and makes no mutating one; the
//! live run moves every set out of the failed region keeping its policy, set identifier and
//! health check (read back from moto itself); `failover rollback` restores every set exactly;
//! bad input fails validation with file:line:col before any call reaches the peer.

use crate::common;

use aws_sdk_route53::types::{
    HealthCheckConfig, HealthCheckType, ResourceRecord, ResourceRecordSet,
    ResourceRecordSetFailover, ResourceRecordSetRegion, RrType,
};
use common::rig::MotoRig;
use common::topo;
use failover::journal::Journal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const HOSTED_ZONE: &str = "global.example.com.";

fn env_text(endpoint: &str) -> String {
    format!(
        r#"
name = "regional"
region = "us-west-2"
regions = ["us-west-2", "us-east-1"]
zones = ["us-west-2a", "us-west-2b"]

[aws]
endpoint_url = "{endpoint}"

[settings]
poll_interval = "50ms"

[groups.global]
kind = "records"
hosted_zone = "{HOSTED_ZONE}"

[[groups.global.records]]
name = "api.global.example.com."
values = {{ "us-west-2" = "api.usw2.example.com", "us-east-1" = "api.use1.example.com" }}

[[groups.global.records]]
name = "db.global.example.com."
ttl = 5
values = {{ "us-west-2" = "db.usw2.example.com", "us-east-1" = "db.use1.example.com" }}

[[groups.global.records]]
name = "www.global.example.com."
type = "A"
weighted = true
values = {{ "us-west-2" = "10.0.1.1", "us-east-1" = "10.1.1.1" }}

[[groups.global.records]]
name = "static.global.example.com."
values = {{ "us-west-2" = "static.usw2.example.com", "us-east-1" = "static.use1.example.com" }}
"#
    )
}

const RUNBOOK: &str = r#"
name = "dns-region"
[params.failed_region]
[[steps]]
id = "repoint-dns"
action = "dns.update"
group = "global"
evacuate_region = "${failed_region}"
"#;

struct Setup {
    rig: MotoRig,
    runbook: PathBuf,
    /// Health check ids: (us-west-2's, us-east-1's).
    checks: (String, String),
    zone_id: String,
}

async fn health_check(r53: &aws_sdk_route53::Client, host: &str) -> String {
    let cfg = HealthCheckConfig::builder()
        .r#type(HealthCheckType::Https)
        .fully_qualified_domain_name(host)
        .port(443)
        .resource_path("/healthz")
        .build()
        .unwrap();
    r53.create_health_check()
        .caller_reference(host)
        .health_check_config(cfg)
        .send()
        .await
        .expect("CreateHealthCheck")
        .health_check()
        .unwrap()
        .id()
        .to_string()
}

fn set(
    name: &str,
    rtype: RrType,
    ttl: i64,
    value: &str,
) -> aws_sdk_route53::types::builders::ResourceRecordSetBuilder {
    ResourceRecordSet::builder()
        .name(name)
        .r#type(rtype)
        .ttl(ttl)
        .resource_records(ResourceRecord::builder().value(value).build().unwrap())
}

/// The record sets as an SRE would have built them: latency and failover pairs and weighted
/// sets with a health check on the us-west-2 side, and a simple record.
fn record_sets(hc_w: &str, hc_e: &str) -> Vec<ResourceRecordSet> {
    let api = "api.global.example.com.";
    let db = "db.global.example.com.";
    let www = "www.global.example.com.";
    vec![
        set(api, RrType::Cname, 60, "api.usw2.example.com")
            .set_identifier("api-usw2")
            .region(ResourceRecordSetRegion::UsWest2)
            .health_check_id(hc_w),
        set(api, RrType::Cname, 60, "api.use1.example.com")
            .set_identifier("api-use1")
            .region(ResourceRecordSetRegion::UsEast1)
            .health_check_id(hc_e),
        set(db, RrType::Cname, 5, "db.usw2.example.com")
            .set_identifier("db-primary")
            .failover(ResourceRecordSetFailover::Primary)
            .health_check_id(hc_w),
        set(db, RrType::Cname, 5, "db.use1.example.com")
            .set_identifier("db-secondary")
            .failover(ResourceRecordSetFailover::Secondary),
        set(www, RrType::A, 60, "10.0.1.1")
            .set_identifier("us-west-2")
            .weight(100)
            .health_check_id(hc_w),
        set(www, RrType::A, 60, "10.1.1.1")
            .set_identifier("us-east-1")
            .weight(100),
        set(
            "static.global.example.com.",
            RrType::Cname,
            300,
            "static.usw2.example.com",
        ),
    ]
    .into_iter()
    .map(|b| b.build().unwrap())
    .collect()
}

async fn setup() -> Setup {
    let rig = MotoRig::start(None).await;
    let (_, r53) = topo::clients(&rig.moto_url()).await;
    let zone_id = r53
        .create_hosted_zone()
        .name(HOSTED_ZONE)
        .caller_reference("dns-region")
        .send()
        .await
        .expect("CreateHostedZone")
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string();
    let checks = (
        health_check(&r53, "api.usw2.example.com").await,
        health_check(&r53, "api.use1.example.com").await,
    );
    topo::create_record_sets(&r53, &zone_id, record_sets(&checks.0, &checks.1)).await;
    let dir = rig.cfg.path();
    std::fs::write(dir.join("regional.toml"), env_text(&rig.proxy.endpoint())).unwrap();
    let runbook = dir.join("dns-region.toml");
    std::fs::write(&runbook, RUNBOOK).unwrap();
    rig.proxy.clear();
    Setup {
        rig,
        runbook,
        checks,
        zone_id,
    }
}

/// The zone's record sets read straight from moto, NS and SOA left out, sorted.
async fn read_back(s: &Setup) -> Vec<ResourceRecordSet> {
    let (_, r53) = topo::clients(&s.rig.moto_url()).await;
    let out = r53
        .list_resource_record_sets()
        .hosted_zone_id(&s.zone_id)
        .send()
        .await
        .unwrap();
    let mut sets: Vec<ResourceRecordSet> = out
        .resource_record_sets()
        .iter()
        .filter(|r| !matches!(r.r#type(), RrType::Ns | RrType::Soa))
        .cloned()
        .collect();
    sets.sort_by_key(|r| (r.name().to_string(), r.set_identifier().map(str::to_string)));
    sets
}

fn find<'a>(sets: &'a [ResourceRecordSet], name: &str, id: Option<&str>) -> &'a ResourceRecordSet {
    sets.iter()
        .find(|r| r.name() == name && r.set_identifier() == id)
        .unwrap_or_else(|| panic!("no {name} {id:?} in {sets:#?}"))
}

fn value(r: &ResourceRecordSet) -> &str {
    r.resource_records()[0].value()
}

async fn cli(s: &Setup, args: &[&str]) -> (bool, String) {
    let dir = s.rig.cfg.path();
    let journal = s.rig.cfg.journal();
    let mut all = vec![
        "--config-dir",
        dir.to_str().unwrap(),
        "--journal",
        journal.to_str().unwrap(),
    ];
    all.extend(args);
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_failover"))
        .args(&all)
        .output()
        .await
        .unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_evacuation_keeps_routing_policies_and_rollback_restores_them() {
    let s = setup().await;
    let before = read_back(&s).await;
    let (hc_w, hc_e) = s.checks.clone();

    // The dry run: reads only, and the exact call a live run makes.
    let (ok, plan) = cli(
        &s,
        &[
            "plan",
            path(&s.runbook),
            "--env",
            "regional",
            "-p",
            "failed_region=us-west-2",
        ],
    )
    .await;
    assert!(ok, "{plan}");
    assert_eq!(s.rig.proxy.mutating(), Vec::<String>::new(), "{plan}");
    for line in [
        "4 change(s):".to_string(),
        format!("UPSERT api.global.example.com. CNAME [api-usw2] latency=us-west-2 health_check={hc_w} ttl=60 -> api.use1.example.com"),
        format!("UPSERT db.global.example.com. CNAME [db-primary] failover=PRIMARY health_check={hc_w} ttl=5 -> db.use1.example.com"),
        "UPSERT static.global.example.com. CNAME ttl=300 -> static.use1.example.com".to_string(),
        format!("UPSERT www.global.example.com. A [us-west-2] weight=0 health_check={hc_w} ttl=60 -> 10.0.1.1"),
        "record db.global.example.com. CNAME [db-secondary] already points at us-east-1".to_string(),
    ] {
        assert!(plan.contains(&line), "missing `{line}` in:\n{plan}");
    }

    // The live run.
    let journal = Arc::new(Journal::open(&s.rig.cfg.journal()).unwrap());
    let (run_id, out, _) = common::run::run_runbook(
        s.rig.cfg.path(),
        "regional",
        &s.runbook,
        &journal,
        &[("failed_region", "us-west-2")],
        "alice",
    )
    .await;
    assert!(out.succeeded, "{out:?}");
    let after = read_back(&s).await;
    let api = find(&after, "api.global.example.com.", Some("api-usw2"));
    assert_eq!(value(api), "api.use1.example.com");
    assert_eq!(api.region(), Some(&ResourceRecordSetRegion::UsWest2));
    assert_eq!(api.health_check_id(), Some(hc_w.as_str()));
    let primary = find(&after, "db.global.example.com.", Some("db-primary"));
    assert_eq!(value(primary), "db.use1.example.com");
    assert_eq!(
        primary.failover(),
        Some(&ResourceRecordSetFailover::Primary)
    );
    assert_eq!(primary.health_check_id(), Some(hc_w.as_str()));
    assert_eq!(primary.ttl(), Some(5));
    let www = find(&after, "www.global.example.com.", Some("us-west-2"));
    assert_eq!((www.weight(), value(www)), (Some(0), "10.0.1.1"));
    assert_eq!(www.health_check_id(), Some(hc_w.as_str()));
    assert_eq!(
        value(find(&after, "static.global.example.com.", None)),
        "static.use1.example.com"
    );
    // The us-east-1 sides were not touched.
    for (name, id) in [
        ("api.global.example.com.", "api-use1"),
        ("db.global.example.com.", "db-secondary"),
        ("www.global.example.com.", "us-east-1"),
    ] {
        assert_eq!(find(&after, name, Some(id)), find(&before, name, Some(id)));
    }
    assert_eq!(
        find(&after, "api.global.example.com.", Some("api-use1")).health_check_id(),
        Some(hc_e.as_str())
    );

    // Rollback with the real binary: every set back exactly, policies and checks included.
    let (ok, text) = cli(&s, &["rollback", run_id.as_str(), "--by", "bob"]).await;
    assert!(ok, "{text}");
    assert_eq!(read_back(&s).await, before, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_region_input_fails_with_where_before_any_call() {
    let s = setup().await;
    let dir = s.rig.cfg.path();
    let env = std::fs::read_to_string(dir.join("regional.toml")).unwrap();
    let cases = [
        (
            env.replace(
                "\"us-east-1\" = \"api.use1.example.com\"",
                "\"us-west-2b\" = \"api.use1.example.com\"",
            ),
            "failed_region=us-west-2",
            "regional.toml:19:50: error: record #1 of group `global`: `us-west-2b` is a zone but `us-west-2` is a region",
        ),
        (
            env.replace(
                "\"us-east-1\" = \"api.use1.example.com\"",
                "\"eu-west-1\" = \"api.use1.example.com\"",
            ),
            "failed_region=us-west-2",
            "regional.toml:19:50: error: record #1 of group `global`: `eu-west-1` is not a region of this environment",
        ),
        (
            env.clone(),
            "failed_region=eu-west-1",
            "dns-region.toml:8:19: error: step `repoint-dns`: `eu-west-1` is not a region of environment `regional`",
        ),
    ];
    for (text, param, want) in cases {
        std::fs::write(dir.join("regional.toml"), text).unwrap();
        let (ok, out) = cli(
            &s,
            &["plan", path(&s.runbook), "--env", "regional", "-p", param],
        )
        .await;
        assert!(!ok, "{out}");
        assert!(out.contains(want), "want `{want}` in:\n{out}");
        assert_eq!(s.rig.proxy.calls(), Vec::<String>::new(), "{out}");
    }
}

// ------------------------------------------------------------ the simulator's Route 53

mod sim {
    use failover::call::Call;
    use failover::cloud::sim::{SimCloud, Topology};
    use failover::cloud::{
        ChangeAction, Dns, ErrorKind, FailoverRole, RecordChange, RecordSet, Routing,
    };
    use failover::runbook::bind::{DnsRegionMove, RestoreRecord};
    use failover::types::Region;
    use failover::world::World;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    const TOPOLOGY: &str = "name = \"gen\"\nregion = \"us-west-2\"\nzones = [\"us-west-2a\", \"us-west-2b\"]\n\n[generate]\nclusters = 1\nrecords_per_cluster = 1\n";

    fn policy(name: &str, id: &str, value: &str, routing: Routing, hc: Option<&str>) -> RecordSet {
        RecordSet {
            name: name.into(),
            rtype: "CNAME".into(),
            ttl: Some(60),
            set_identifier: Some(id.into()),
            values: vec![value.into()],
            health_check_id: hc.map(str::to_string),
            routing: Some(routing),
            ..Default::default()
        }
    }

    fn create(sets: &[RecordSet]) -> Vec<RecordChange> {
        sets.iter()
            .map(|r| RecordChange {
                action: ChangeAction::Create,
                record: r.clone(),
            })
            .collect()
    }

    async fn world(dns: &Arc<failover::cloud::sim::SimDns>, zone: &str) -> World {
        let hz = dns.find_hosted_zone(zone).await.unwrap();
        let sets = dns.list_record_sets(&hz.id).await.unwrap();
        let mut w = World::default();
        w.records.insert(
            hz.id.clone(),
            sets.into_iter().map(|r| (r.key(), r)).collect(),
        );
        w.hosted_zones.insert(zone.to_string(), hz);
        w
    }

    /// Make a decision's calls through the port; the restore records they leave.
    async fn apply(cloud: &Arc<SimCloud>, calls: &[Call]) -> Vec<RestoreRecord> {
        let dns = cloud.dns();
        let mut out = vec![];
        for c in calls {
            let Call::ChangeResourceRecordSets {
                hosted_zone_id,
                changes,
                previous,
                ..
            } = c
            else {
                panic!("{c:?}")
            };
            dns.change_record_sets(hosted_zone_id, "test", changes)
                .await
                .expect("accepted");
            spaced(cloud).await;
            for (ch, (key, before)) in changes.iter().zip(previous) {
                out.push(RestoreRecord {
                    key: key.clone(),
                    before: before.clone(),
                    set_by_run: Some(ch.record.clone()),
                });
            }
        }
        out
    }

    /// Past the hosted zone's prior-request window.
    async fn spaced(cloud: &Arc<SimCloud>) {
        cloud
            .virtual_time()
            .sleep(std::time::Duration::from_secs(3))
            .await;
    }

    #[test]
    fn the_simulators_route53_keeps_policies_and_refuses_what_route53_refuses() {
        let t = Topology::parse(TOPOLOGY, "gen.toml").unwrap_or_else(|e| panic!("{e}"));
        let zone = t.hosted_zones[0].name.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let cloud = SimCloud::new(&t, &[], 1);
            let driver = tokio::spawn(cloud.driver());
            let dns = cloud.dns();
            let hz = dns.find_hosted_zone(&zone).await.unwrap();
            let api = format!("api.global.{zone}");
            let db = format!("db.global.{zone}");
            let lat = |r: &str| Routing::Latency { region: r.into() };
            let fo = |role| Routing::Failover { role };
            let sets = vec![
                policy(&api, "usw2", "api.usw2", lat("us-west-2"), Some("hc-w")),
                policy(&api, "use1", "api.use1", lat("us-east-1"), Some("hc-e")),
                policy(
                    &db,
                    "primary",
                    "db.usw2",
                    fo(FailoverRole::Primary),
                    Some("hc-w"),
                ),
                policy(
                    &db,
                    "secondary",
                    "db.use1",
                    fo(FailoverRole::Secondary),
                    None,
                ),
            ];
            dns.change_record_sets(&hz.id, "seed", &create(&sets))
                .await
                .expect("policy sets are accepted");
            spaced(&cloud).await;
            let before = world(&dns, &zone).await;
            for s in &sets {
                assert_eq!(
                    before.records[&hz.id].get(&s.key()),
                    Some(s),
                    "listed as written"
                );
            }
            // What Route 53 refuses: a set identifier without a policy, two policies.
            let mut none = sets[0].clone();
            none.routing = None;
            let mut two = sets[0].clone();
            two.weight = Some(10);
            for bad in [none, two] {
                let upsert = RecordChange {
                    action: ChangeAction::Upsert,
                    record: bad,
                };
                let e = dns
                    .change_record_sets(&hz.id, "bad", &[upsert])
                    .await
                    .unwrap_err();
                assert_eq!(e.kind, ErrorKind::InvalidRequest, "{e}");
                assert!(e.message.contains("Expected exactly one of"), "{e}");
            }
            // A region evacuation through the simulator's port, then its exact restore.
            let spec = failover::cloud::RecordSpecOut {
                name: api.clone(),
                rtype: "CNAME".into(),
                ttl: 60,
                values: BTreeMap::new(),
                region_values: [("us-west-2", "api.usw2"), ("us-east-1", "api.use1")]
                    .into_iter()
                    .map(|(r, v)| (Region::from(r), vec![v.to_string()]))
                    .collect(),
                weighted: false,
                weight: 100,
                depends_on: vec![],
            };
            let mut db_spec = spec.clone();
            db_spec.name = db.clone();
            db_spec.region_values = [("us-west-2", "db.usw2"), ("us-east-1", "db.use1")]
                .into_iter()
                .map(|(r, v)| (Region::from(r), vec![v.to_string()]))
                .collect();
            let m = DnsRegionMove {
                evacuate: Some(Region::from("us-west-2")),
                to: None,
                return_to: None,
                regions: vec![Region::from("us-west-2"), Region::from("us-east-1")],
            };
            let d = failover::steps::dns_region::decide(
                &"dns".into(),
                &"sim".into(),
                &zone,
                &[spec, db_spec],
                &m,
                true,
                &before,
            );
            assert!(d.problems.is_empty(), "{:?}", d.problems);
            let restore = apply(&cloud, &d.calls).await;
            assert_eq!(restore.len(), 2);
            let after = world(&dns, &zone).await;
            let moved = &after.records[&hz.id][&sets[0].key()];
            assert_eq!(moved.values, vec!["api.use1".to_string()]);
            assert_eq!(moved.routing, Some(lat("us-west-2")));
            assert_eq!(moved.health_check_id.as_deref(), Some("hc-w"));
            let primary = &after.records[&hz.id][&sets[2].key()];
            assert_eq!(primary.routing, Some(fo(FailoverRole::Primary)));
            assert_eq!(primary.values, vec!["db.use1".to_string()]);
            let d =
                failover::steps::dns::decide_restore(&"sim".into(), &zone, &restore, false, &after);
            assert!(d.problems.is_empty(), "{:?}", d.problems);
            apply(&cloud, &d.calls).await;
            assert_eq!(
                world(&dns, &zone).await.records,
                before.records,
                "restored exactly"
            );
            driver.abort();
        });
    }

    const REGIONAL: &str = r#"
name = "regional"
region = "us-west-2"
zones = ["us-west-2a", "us-west-2b"]

[[hosted_zones]]
name = "global.example.com."
group = "global_records"

[[hosted_zones.records]]
name = "api.global.example.com."
values = { "us-west-2" = "api.usw2.example.com", "us-east-1" = "api.use1.example.com" }
live = "us-west-2"

[[hosted_zones.records]]
name = "www.global.example.com."
type = "A"
weighted = true
values = { "us-west-2" = "10.0.1.1", "us-east-1" = "10.1.1.1" }
"#;

    #[test]
    fn a_topology_may_key_records_by_region() {
        let t = Topology::parse(REGIONAL, "regional.toml").unwrap_or_else(|e| panic!("{e}"));
        let env = failover::cloud::sim::environment_for(&t);
        let Some(failover::env::Group::Records { records, .. }) = env.groups.get("global_records")
        else {
            panic!("{:?}", env.groups)
        };
        assert!(records.iter().all(|r| r.values.is_empty()));
        assert_eq!(
            records[0].region_values[&Region::from("us-east-1")],
            vec!["api.use1.example.com".to_string()]
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let cloud = SimCloud::new(&t, &[], 1);
            let driver = tokio::spawn(cloud.driver());
            let w = world(&cloud.dns(), "global.example.com.").await;
            let sets: Vec<&RecordSet> = w.records.values().flat_map(|m| m.values()).collect();
            let api = sets
                .iter()
                .find(|r| r.name == "api.global.example.com.")
                .unwrap();
            assert_eq!(
                api.values,
                vec!["api.usw2.example.com".to_string()],
                "the live region's value"
            );
            let ids: Vec<Option<&str>> = sets
                .iter()
                .filter(|r| r.name == "www.global.example.com.")
                .map(|r| r.set_identifier.as_deref())
                .collect();
            assert_eq!(
                ids,
                [Some("us-east-1"), Some("us-west-2")],
                "one weighted set per region"
            );
            driver.abort();
        });
        let bad = REGIONAL.replace("\"us-east-1\" = \"api", "\"eu-west-1\" = \"api");
        let e = Topology::parse(&bad, "regional.toml").unwrap_err();
        assert!(
            e.to_string()
                .contains("`eu-west-1` is not a region of the topology (us-west-2, us-east-1)"),
            "{e}"
        );
    }
}
