//! The AWS adapters against a real peer: moto 5.2.5 (`moto_server`) speaking the RDS and
//! Route 53 wire protocols, driven through the real SDK clients built by `cloud::aws::connect`.
//!
//! Each test starts its own server and builds its topology with the SDK. What moto cannot show
//! (throttling, PENDING changes, timed transitions) is covered by `tests/aws_mocks.rs`.
//!
//! Run with `MOTO_SERVER=/path/to/moto_server cargo test --test aws_moto`.

use crate::common;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_rds::config::Credentials;
use aws_sdk_route53::types::{AliasTarget as SdkAlias, ResourceRecord, ResourceRecordSet, RrType};
use common::moto::MotoServer;
use failover::cloud::aws::{connect, AwsDatabases, AwsDns, AwsSettings};
use failover::cloud::rate::RateLimiter;
use failover::cloud::{
    ChangeAction, ChangeStatus, Databases, DbStatus, Dns, ErrorKind, RecordChange, RecordSet,
    SnapshotKind,
};
use failover::types::{ClusterId, InstanceId, Zone};
use std::collections::BTreeMap;
use std::time::Duration;

const REGION: &str = "us-west-2";

/// A running moto plus the adapters under test and raw SDK clients to build the topology.
struct Peer {
    moto: MotoServer,
    db: AwsDatabases,
    dns: AwsDns,
    rds: aws_sdk_rds::Client,
    r53: aws_sdk_route53::Client,
}

async fn peer() -> Peer {
    let moto = tokio::task::spawn_blocking(MotoServer::start)
        .await
        .unwrap();
    let settings = AwsSettings {
        region: REGION.into(),
        profile: None,
        endpoint_url: Some(moto.endpoint()),
        operation_timeout: Duration::from_secs(20),
    };
    let (db, dns) = connect(&settings, RateLimiter::on_wall_clock(Default::default())).await;
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(moto.endpoint())
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .retry_config(RetryConfig::disabled())
        .load()
        .await;
    let rds = aws_sdk_rds::Client::new(&sdk);
    let r53 = aws_sdk_route53::Client::new(&sdk);
    Peer {
        moto,
        db,
        dns,
        rds,
        r53,
    }
}

fn cid(s: &str) -> ClusterId {
    ClusterId::new(s)
}
fn iid(s: &str) -> InstanceId {
    InstanceId::new(s)
}

async fn create_cluster(rds: &aws_sdk_rds::Client, id: &str) {
    rds.create_db_cluster()
        .db_cluster_identifier(id)
        .engine("aurora-postgresql")
        .master_username("admin")
        .master_user_password("correct-horse-battery")
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateDBCluster {id}: {e:?}"));
}

async fn create_member(rds: &aws_sdk_rds::Client, cluster: &str, id: &str, zone: &str, tier: i32) {
    rds.create_db_instance()
        .db_instance_identifier(id)
        .db_cluster_identifier(cluster)
        .engine("aurora-postgresql")
        .db_instance_class("db.r6g.large")
        .availability_zone(zone)
        .promotion_tier(tier)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateDBInstance {id}: {e:?}"));
}

/// Aurora cluster `orders` with a writer in us-west-2a (tier 0) and readers in b (tier 1) and
/// c (tier 2); cluster `payments` with one instance; cluster `audit` with none; a standalone
/// Multi-AZ instance `ledger` in us-west-2a.
async fn topology(rds: &aws_sdk_rds::Client) {
    create_cluster(rds, "orders").await;
    create_member(rds, "orders", "orders-1", "us-west-2a", 0).await;
    create_member(rds, "orders", "orders-2", "us-west-2b", 1).await;
    create_member(rds, "orders", "orders-3", "us-west-2c", 2).await;
    create_cluster(rds, "payments").await;
    create_member(rds, "payments", "payments-1", "us-west-2b", 0).await;
    create_cluster(rds, "audit").await;
    rds.create_db_instance()
        .db_instance_identifier("ledger")
        .engine("postgres")
        .db_instance_class("db.m6g.large")
        .allocated_storage(20)
        .master_username("admin")
        .master_user_password("correct-horse-battery")
        .availability_zone("us-west-2a")
        .multi_az(true)
        .send()
        .await
        .expect("CreateDBInstance ledger");
}

#[tokio::test]
async fn describe_clusters_returns_only_requested_clusters_with_members() {
    let p = peer().await;
    topology(&p.rds).await;

    let mut got =
        p.db.describe_clusters(&[cid("orders"), cid("payments"), cid("missing")])
            .await
            .unwrap();
    got.sort_by(|a, b| a.id.cmp(&b.id));
    let ids: Vec<&str> = got.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        ["orders", "payments"],
        "audit was not asked for, missing does not exist"
    );

    let orders = &got[0];
    assert_eq!(orders.status, DbStatus::Available);
    assert_eq!(orders.engine, "aurora-postgresql");
    let mut members: Vec<(String, bool, i32)> = orders
        .members
        .iter()
        .map(|m| (m.instance.to_string(), m.is_writer, m.promotion_tier))
        .collect();
    members.sort();
    assert_eq!(
        members,
        [
            ("orders-1".to_string(), true, 0),
            ("orders-2".to_string(), false, 1),
            ("orders-3".to_string(), false, 2)
        ]
    );
    assert_eq!(orders.writer().unwrap().instance, iid("orders-1"));
    assert_eq!(got[1].members.len(), 1);

    // The caller's spelling comes back; an empty request makes no call and returns nothing.
    let upper = p.db.describe_clusters(&[cid("ORDERS")]).await.unwrap();
    assert_eq!(upper.len(), 1);
    assert_eq!(upper[0].id, cid("ORDERS"));
    assert!(p.db.describe_clusters(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn describe_clusters_chunks_more_than_a_hundred_ids() {
    let p = peer().await;
    let ids: Vec<String> = (0..130).map(|i| format!("c{i:03}")).collect();
    for id in &ids {
        create_cluster(&p.rds, id).await;
    }
    let asked: Vec<ClusterId> = ids[..125].iter().map(|s| cid(s)).collect();
    let got = p.db.describe_clusters(&asked).await.unwrap();
    assert_eq!(got.len(), 125);
    let mut got_ids: Vec<String> = got.iter().map(|c| c.id.to_string()).collect();
    got_ids.sort();
    assert_eq!(got_ids, ids[..125].to_vec());
}

#[tokio::test]
async fn describe_instances_reports_zones_clusters_and_multi_az() {
    let p = peer().await;
    topology(&p.rds).await;

    let mut members =
        p.db.describe_cluster_instances(&[cid("orders")])
            .await
            .unwrap();
    members.sort_by(|a, b| a.id.cmp(&b.id));
    let zones: Vec<(&str, Option<&str>)> = members
        .iter()
        .map(|i| (i.id.as_str(), i.zone.as_ref().map(Zone::as_str)))
        .collect();
    assert_eq!(
        zones,
        [
            ("orders-1", Some("us-west-2a")),
            ("orders-2", Some("us-west-2b")),
            ("orders-3", Some("us-west-2c"))
        ],
        "only the members of orders, with their zones"
    );
    for m in &members {
        assert_eq!(m.cluster, Some(cid("orders")));
        assert_eq!(m.status, DbStatus::Available);
        assert_eq!(m.engine, "aurora-postgresql");
    }

    let got =
        p.db.describe_instances(&[iid("ledger"), iid("payments-1"), iid("nope")])
            .await
            .unwrap();
    let by_id: BTreeMap<&str, _> = got.iter().map(|i| (i.id.as_str(), i)).collect();
    assert_eq!(
        by_id.keys().copied().collect::<Vec<_>>(),
        ["ledger", "payments-1"]
    );
    let ledger = by_id["ledger"];
    assert!(ledger.multi_az);
    assert_eq!(ledger.cluster, None);
    assert_eq!(ledger.zone, Some(Zone::from("us-west-2a")));
    assert_eq!(ledger.engine, "postgres");
    assert_eq!(by_id["payments-1"].cluster, Some(cid("payments")));
    assert!(p
        .db
        .describe_cluster_instances(&[cid("audit")])
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn failover_cluster_moves_the_writer() {
    let p = peer().await;
    topology(&p.rds).await;

    p.db.failover_cluster(&cid("orders"), &iid("orders-3"))
        .await
        .unwrap();
    let orders = p.db.describe_clusters(&[cid("orders")]).await.unwrap();
    assert_eq!(orders[0].writer().unwrap().instance, iid("orders-3"));
    assert_eq!(orders[0].members.iter().filter(|m| m.is_writer).count(), 1);

    let err =
        p.db.failover_cluster(&cid("nope"), &iid("orders-2"))
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert_eq!(err.operation, "FailoverDBCluster");
    assert_eq!(err.code.as_deref(), Some("DBClusterNotFoundFault"));

    let err =
        p.db.failover_cluster(&cid("payments"), &iid("payments-1"))
            .await
            .unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::InvalidState,
        "one member cannot fail over: {err}"
    );
}

#[tokio::test]
async fn reboot_with_failover_is_accepted_and_missing_instances_are_not_found() {
    let p = peer().await;
    topology(&p.rds).await;
    p.db.reboot_with_failover(&iid("ledger")).await.unwrap();
    let err = p.db.reboot_with_failover(&iid("nope")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert_eq!(err.operation, "RebootDBInstance");
    assert_eq!(err.resource, "nope");
}

#[tokio::test]
async fn snapshots_are_created_and_described() {
    let p = peer().await;
    topology(&p.rds).await;

    p.db.create_cluster_snapshot(&cid("orders"), "orders-before-evac")
        .await
        .unwrap();
    p.db.create_instance_snapshot(&iid("ledger"), "ledger-before-evac")
        .await
        .unwrap();

    let cluster_snaps =
        p.db.describe_snapshots(
            SnapshotKind::Cluster,
            &["orders-before-evac".into(), "never-taken".into()],
        )
        .await
        .unwrap();
    assert_eq!(cluster_snaps.len(), 1, "{cluster_snaps:?}");
    assert_eq!(cluster_snaps[0].id, "orders-before-evac");
    assert_eq!(cluster_snaps[0].kind, SnapshotKind::Cluster);
    assert_eq!(cluster_snaps[0].source, "orders");
    assert_eq!(cluster_snaps[0].status, DbStatus::Available);

    let instance_snaps =
        p.db.describe_snapshots(
            SnapshotKind::Instance,
            &["ledger-before-evac".into(), "orders-before-evac".into()],
        )
        .await
        .unwrap();
    assert_eq!(
        instance_snaps.len(),
        1,
        "a cluster snapshot is not an instance snapshot"
    );
    assert_eq!(instance_snaps[0].id, "ledger-before-evac");
    assert_eq!(instance_snaps[0].source, "ledger");
    assert!(p
        .db
        .describe_snapshots(SnapshotKind::Instance, &[])
        .await
        .unwrap()
        .is_empty());

    let err =
        p.db.create_cluster_snapshot(&cid("orders"), "orders-before-evac")
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidState, "{err}");
    let err =
        p.db.create_instance_snapshot(&iid("ledger"), "ledger-before-evac")
            .await
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidState, "{err}");
}

// ---------------------------------------------------------------- Route 53

fn plain(name: &str, rtype: RrType, ttl: i64, values: &[&str]) -> ResourceRecordSet {
    ResourceRecordSet::builder()
        .name(name)
        .r#type(rtype)
        .ttl(ttl)
        .set_resource_records(Some(
            values
                .iter()
                .map(|v| ResourceRecord::builder().value(*v).build().unwrap())
                .collect(),
        ))
        .build()
        .unwrap()
}

fn weighted(name: &str, id: &str, weight: i64, value: &str) -> ResourceRecordSet {
    ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::Cname)
        .ttl(60)
        .set_identifier(id)
        .weight(weight)
        .resource_records(ResourceRecord::builder().value(value).build().unwrap())
        .build()
        .unwrap()
}

/// Hosted zone `example.com.` with A, CNAME, alias and weighted records. Returns its bare id.
async fn zone(r53: &aws_sdk_route53::Client) -> String {
    let out = r53
        .create_hosted_zone()
        .name("example.com.")
        .caller_reference("failover-tests")
        .send()
        .await
        .expect("CreateHostedZone");
    let id = out
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string();
    common::topo::create_record_sets(
        r53,
        &id,
        vec![
            plain(
                "db.example.com.",
                RrType::A,
                300,
                &["10.0.1.10", "10.0.2.10"],
            ),
            plain(
                "writer.example.com.",
                RrType::Cname,
                60,
                &["orders.cluster-x.us-west-2.rds.amazonaws.com"],
            ),
            weighted("api.example.com.", "blue", 100, "blue.example.com"),
            weighted("api.example.com.", "green", 0, "green.example.com"),
            ResourceRecordSet::builder()
                .name("www.example.com.")
                .r#type(RrType::A)
                .alias_target(
                    SdkAlias::builder()
                        .hosted_zone_id(&id)
                        .dns_name("db.example.com.")
                        .evaluate_target_health(false)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        ],
    )
    .await;
    id
}

fn find<'a>(sets: &'a [RecordSet], name: &str, rtype: &str, set_id: Option<&str>) -> &'a RecordSet {
    sets.iter()
        .find(|r| r.name == name && r.rtype == rtype && r.set_identifier.as_deref() == set_id)
        .unwrap_or_else(|| panic!("no {name} {rtype} {set_id:?} in {sets:#?}"))
}

#[tokio::test]
async fn find_hosted_zone_by_name_and_by_id() {
    let p = peer().await;
    let id = zone(&p.r53).await;
    p.r53
        .create_hosted_zone()
        .name("other.example.org.")
        .caller_reference("other")
        .send()
        .await
        .unwrap();

    for name in ["example.com.", "example.com", "Example.COM."] {
        let z = p.dns.find_hosted_zone(name).await.unwrap();
        assert_eq!(
            (z.id.as_str(), z.name.as_str()),
            (id.as_str(), "example.com."),
            "by {name}"
        );
    }
    for by_id in [id.clone(), format!("/hostedzone/{id}")] {
        let z = p.dns.find_hosted_zone(&by_id).await.unwrap();
        assert_eq!(
            (z.id.as_str(), z.name.as_str()),
            (id.as_str(), "example.com."),
            "by {by_id}"
        );
    }

    let err = p
        .dns
        .find_hosted_zone("missing.example.net.")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert!(err.message.contains("missing.example.net."), "{err}");
    let err = p
        .dns
        .find_hosted_zone("Z0000000000000000NONE")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert_eq!(err.operation, "GetHostedZone");
}

#[tokio::test]
async fn list_record_sets_returns_everything_including_weighted_and_alias() {
    let p = peer().await;
    let id = zone(&p.r53).await;
    let sets = p
        .dns
        .list_record_sets(&format!("/hostedzone/{id}"))
        .await
        .unwrap();

    find(&sets, "example.com.", "SOA", None);
    find(&sets, "example.com.", "NS", None);
    let a = find(&sets, "db.example.com.", "A", None);
    assert_eq!(a.ttl, Some(300));
    let mut values = a.values.clone();
    values.sort();
    assert_eq!(values, ["10.0.1.10", "10.0.2.10"]);
    let cname = find(&sets, "writer.example.com.", "CNAME", None);
    assert_eq!(
        cname.values,
        ["orders.cluster-x.us-west-2.rds.amazonaws.com"]
    );
    let blue = find(&sets, "api.example.com.", "CNAME", Some("blue"));
    assert_eq!(
        (blue.weight, blue.values.as_slice()),
        (Some(100), &["blue.example.com".to_string()][..])
    );
    let green = find(&sets, "api.example.com.", "CNAME", Some("green"));
    assert_eq!(green.weight, Some(0));
    let www = find(&sets, "www.example.com.", "A", None);
    let alias = www.alias.as_ref().expect("alias target");
    assert_eq!(alias.hosted_zone_id, id);
    assert_eq!(alias.dns_name, "db.example.com.");
    assert!(www.values.is_empty());
    assert_eq!(sets.len(), 7, "{sets:#?}");
}

#[tokio::test]
async fn list_record_sets_follows_pages() {
    let p = peer().await;
    let id = zone(&p.r53).await;
    // 650 more record sets: three pages of 300.
    for batch in 0..2 {
        let sets = (0..325)
            .map(|i| {
                plain(
                    &format!("h{batch}{i:03}.bulk.example.com."),
                    RrType::A,
                    60,
                    &["10.9.9.9"],
                )
            })
            .collect();
        common::topo::create_record_sets(&p.r53, &id, sets).await;
    }
    let sets = p.dns.list_record_sets(&id).await.unwrap();
    assert_eq!(sets.len(), 7 + 650);
    find(&sets, "h0000.bulk.example.com.", "A", None);
    find(&sets, "h1324.bulk.example.com.", "A", None);
    find(&sets, "api.example.com.", "CNAME", Some("green"));
}

#[tokio::test]
async fn upsert_then_list_shows_the_new_value_and_the_change_is_insync() {
    let p = peer().await;
    let id = zone(&p.r53).await;
    let record = RecordSet {
        name: "writer.example.com.".into(),
        rtype: "CNAME".into(),
        ttl: Some(30),
        set_identifier: None,
        weight: None,
        values: vec!["orders-3.x.us-west-2.rds.amazonaws.com".into()],
        alias: None,
        health_check_id: None,
        routing: None,
    };
    let shift = RecordSet {
        name: "api.example.com.".into(),
        rtype: "CNAME".into(),
        ttl: Some(60),
        set_identifier: Some("green".into()),
        weight: Some(100),
        values: vec!["green.example.com".into()],
        alias: None,
        health_check_id: None,
        routing: None,
    };
    let info = p
        .dns
        .change_record_sets(
            &id,
            "failover: evacuate us-west-2a",
            &[
                RecordChange {
                    action: ChangeAction::Upsert,
                    record: record.clone(),
                },
                RecordChange {
                    action: ChangeAction::Upsert,
                    record: shift.clone(),
                },
            ],
        )
        .await
        .unwrap();
    assert!(
        !info.id.is_empty() && !info.id.starts_with("/change/"),
        "{info:?}"
    );

    let sets = p.dns.list_record_sets(&id).await.unwrap();
    assert_eq!(find(&sets, "writer.example.com.", "CNAME", None), &record);
    assert_eq!(
        find(&sets, "api.example.com.", "CNAME", Some("green")),
        &shift
    );
    assert_eq!(
        find(&sets, "api.example.com.", "CNAME", Some("blue")).weight,
        Some(100)
    );

    let change = p
        .dns
        .get_change(&format!("/change/{}", info.id))
        .await
        .unwrap();
    assert_eq!(change.status, ChangeStatus::Insync);
    assert_eq!(change.id, info.id);

    let err = p
        .dns
        .change_record_sets(
            "Z0000000000000000NONE",
            "",
            &[RecordChange {
                action: ChangeAction::Upsert,
                record,
            }],
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn reset_clears_the_peer() {
    let p = peer().await;
    topology(&p.rds).await;
    assert_eq!(
        p.db.describe_clusters(&[cid("orders")])
            .await
            .unwrap()
            .len(),
        1
    );
    p.moto.reset().await;
    assert!(p
        .db
        .describe_clusters(&[cid("orders")])
        .await
        .unwrap()
        .is_empty());
}

/// The adapter filters on the server side and again on this side; this pins down that moto
/// 5.2.5 honours the four RDS filters the adapter sends (so the server-side path is exercised).
#[tokio::test]
async fn moto_honours_the_rds_filters_the_adapter_sends() {
    use aws_sdk_rds::types::Filter;
    let p = peer().await;
    topology(&p.rds).await;
    p.db.create_cluster_snapshot(&cid("orders"), "s-orders")
        .await
        .unwrap();
    p.db.create_cluster_snapshot(&cid("payments"), "s-payments")
        .await
        .unwrap();
    p.db.create_instance_snapshot(&iid("ledger"), "s-ledger")
        .await
        .unwrap();
    p.db.create_instance_snapshot(&iid("payments-1"), "s-payments-1")
        .await
        .unwrap();
    let f = |name: &str, values: &[&str]| {
        Filter::builder()
            .name(name)
            .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
            .build()
    };

    let out = p
        .rds
        .describe_db_clusters()
        .filters(f("db-cluster-id", &["orders", "audit"]))
        .send()
        .await
        .unwrap();
    let mut ids: Vec<&str> = out
        .db_clusters()
        .iter()
        .filter_map(|c| c.db_cluster_identifier())
        .collect();
    ids.sort();
    assert_eq!(ids, ["audit", "orders"]);

    let out = p
        .rds
        .describe_db_instances()
        .filters(f("db-cluster-id", &["payments"]))
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = out
        .db_instances()
        .iter()
        .filter_map(|i| i.db_instance_identifier())
        .collect();
    assert_eq!(ids, ["payments-1"]);

    let out = p
        .rds
        .describe_db_instances()
        .filters(f("db-instance-id", &["ledger", "orders-2"]))
        .send()
        .await
        .unwrap();
    let mut ids: Vec<&str> = out
        .db_instances()
        .iter()
        .filter_map(|i| i.db_instance_identifier())
        .collect();
    ids.sort();
    assert_eq!(ids, ["ledger", "orders-2"]);

    let out = p
        .rds
        .describe_db_cluster_snapshots()
        .filters(f("db-cluster-snapshot-id", &["s-orders"]))
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = out
        .db_cluster_snapshots()
        .iter()
        .filter_map(|s| s.db_cluster_snapshot_identifier())
        .collect();
    assert_eq!(ids, ["s-orders"]);

    let out = p
        .rds
        .describe_db_snapshots()
        .filters(f("db-snapshot-id", &["s-ledger"]))
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = out
        .db_snapshots()
        .iter()
        .filter_map(|s| s.db_snapshot_identifier())
        .collect();
    assert_eq!(ids, ["s-ledger"]);
}
