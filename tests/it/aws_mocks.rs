//! The AWS adapters against scripted responses (`aws-smithy-mocks`): what a local peer cannot
//! show. Throttling, 5xx, modelled faults, multi-page results and PENDING changes go through
//! the real SDK deserialisers and the adapters' classification.

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_rds::config::Credentials;
use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::failover_db_cluster::FailoverDBClusterError;
use aws_sdk_rds::types::error::DbClusterNotFoundFault;
use aws_sdk_rds::types::{DbCluster, DbClusterMember};
use aws_sdk_route53::operation::change_resource_record_sets::ChangeResourceRecordSetsError;
use aws_sdk_route53::operation::get_change::GetChangeOutput;
use aws_sdk_route53::operation::list_resource_record_sets::ListResourceRecordSetsOutput;
use aws_sdk_route53::types::error::PriorRequestNotComplete;
use aws_sdk_route53::types::{
    ChangeInfo as SdkChangeInfo, ResourceRecord, ResourceRecordSet, RrType,
};
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use failover::cloud::aws::{connect, AwsDatabases, AwsDns, AwsSettings};
use failover::cloud::rate::RateLimiter;
use failover::cloud::{
    ChangeAction, ChangeStatus, Databases, Dns, ErrorKind, RecordChange, RecordSet,
};
use failover::types::{ClusterId, InstanceId};
use std::time::Duration;

/// An SDK client of `$krate` answering from `$rules`, with the SDK's retries off (as the
/// adapters' own clients have them), so one rule response is one adapter-visible attempt.
macro_rules! mocked {
    ($krate:ident, $mode:expr, $rules:expr) => {{
        let mut interceptor = MockResponseInterceptor::new().rule_mode($mode);
        for rule in $rules {
            interceptor = interceptor.with_rule(rule);
        }
        let conf = $krate::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-west-2"))
            .credentials_provider(Credentials::new("test", "test", None, None, "mock"))
            .http_client(create_mock_http_client())
            .interceptor(interceptor)
            .retry_config(RetryConfig::disabled())
            .build();
        $krate::Client::from_conf(conf)
    }};
}

fn rds(mode: RuleMode, rules: &[&Rule]) -> AwsDatabases {
    AwsDatabases::from_client(mocked!(aws_sdk_rds, mode, rules.iter().copied()))
}

fn dns(mode: RuleMode, rules: &[&Rule]) -> AwsDns {
    AwsDns::from_client(mocked!(aws_sdk_route53, mode, rules.iter().copied()))
}

fn rds_error_xml(code: &str, message: &str) -> String {
    format!(
        r#"<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>req-1</RequestId></ErrorResponse>"#
    )
}

fn route53_error_xml(code: &str, message: &str) -> String {
    format!(
        r#"<?xml version="1.0"?><ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>req-2</RequestId></ErrorResponse>"#
    )
}

fn cluster(id: &str, members: &[(&str, bool, Option<i32>)]) -> DbCluster {
    let mut b = DbCluster::builder()
        .db_cluster_identifier(id)
        .status("available")
        .engine("aurora-mysql");
    for (instance, writer, tier) in members {
        b = b.db_cluster_members(
            DbClusterMember::builder()
                .db_instance_identifier(*instance)
                .is_cluster_writer(*writer)
                .set_promotion_tier(*tier)
                .build(),
        );
    }
    b.build()
}

fn filter_values(filters: &[aws_sdk_rds::types::Filter], name: &str) -> Vec<String> {
    filters
        .iter()
        .filter(|f| f.name() == Some(name))
        .flat_map(|f| f.values().to_vec())
        .collect()
}

#[tokio::test]
async fn throttling_is_classified_throttled() {
    let throttled = mock!(aws_sdk_rds::Client::describe_db_clusters)
        .sequence()
        .http_status(400, Some(rds_error_xml("Throttling", "Rate exceeded")))
        .build();
    let db = rds(RuleMode::Sequential, &[&throttled]);
    let err = db
        .describe_clusters(&[ClusterId::new("orders")])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Throttled, "{err}");
    assert_eq!(err.code.as_deref(), Some("Throttling"));
    assert_eq!(err.operation, "DescribeDBClusters");
    assert_eq!(err.resource, "orders");
    assert!(err.message.contains("Rate exceeded"), "{err}");
    assert_eq!(
        throttled.num_calls(),
        1,
        "the SDK must not retry on its own"
    );

    // Route 53: a wire-level Throttling and a modelled PriorRequestNotComplete.
    let r53_throttled = mock!(aws_sdk_route53::Client::change_resource_record_sets)
        .sequence()
        .http_status(400, Some(route53_error_xml("Throttling", "Rate exceeded")))
        .error(|| {
            ChangeResourceRecordSetsError::PriorRequestNotComplete(
                PriorRequestNotComplete::builder()
                    .message("The request was rejected")
                    .build(),
            )
        })
        .build();
    let r53 = dns(RuleMode::Sequential, &[&r53_throttled]);
    let change = RecordChange {
        action: ChangeAction::Upsert,
        record: cname("writer.example.com.", "a.example.com"),
    };
    for code in ["Throttling", "PriorRequestNotComplete"] {
        let err = r53
            .change_record_sets("/hostedzone/Z1", "c", std::slice::from_ref(&change))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Throttled, "{err}");
        assert_eq!(err.code.as_deref(), Some(code));
        assert_eq!(err.resource, "Z1");
    }
}

#[tokio::test]
async fn a_500_is_transient() {
    let failing = mock!(aws_sdk_rds::Client::failover_db_cluster)
        .sequence()
        .http_status(
            500,
            Some("<html><body>Internal Server Error</body></html>".into()),
        )
        .http_status(503, Some(rds_error_xml("ServiceUnavailable", "try later")))
        .build();
    let db = rds(RuleMode::Sequential, &[&failing]);
    let err = db
        .failover_cluster(&ClusterId::new("orders"), &InstanceId::new("orders-2"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
    assert_eq!(err.operation, "FailoverDBCluster");
    assert!(err.message.contains("HTTP 500"), "{err}");
    let err = db
        .failover_cluster(&ClusterId::new("orders"), &InstanceId::new("orders-2"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
    assert_eq!(failing.num_calls(), 2);
}

#[tokio::test]
async fn db_cluster_not_found_is_not_found() {
    let missing = mock!(aws_sdk_rds::Client::failover_db_cluster)
        .sequence()
        .http_status(
            404,
            Some(rds_error_xml(
                "DBClusterNotFoundFault",
                "DBCluster orders not found.",
            )),
        )
        .error(|| {
            FailoverDBClusterError::DbClusterNotFoundFault(
                DbClusterNotFoundFault::builder()
                    .message("DBCluster orders not found.")
                    .meta(
                        ErrorMetadata::builder()
                            .code("DBClusterNotFoundFault")
                            .build(),
                    )
                    .build(),
            )
        })
        .build();
    let db = rds(RuleMode::Sequential, &[&missing]);
    for _ in 0..2 {
        let err = db
            .failover_cluster(&ClusterId::new("orders"), &InstanceId::new("orders-2"))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
        assert_eq!(err.code.as_deref(), Some("DBClusterNotFoundFault"));
        assert!(err.resource.contains("orders"), "{err}");
    }
}

#[tokio::test]
async fn describe_clusters_follows_markers_across_pages() {
    let page1 = mock!(aws_sdk_rds::Client::describe_db_clusters)
        .match_requests(|r| {
            r.marker().is_none()
                && filter_values(r.filters(), "db-cluster-id") == ["orders", "payments"]
        })
        .then_output(|| {
            DescribeDbClustersOutput::builder()
                .db_clusters(cluster(
                    "orders",
                    &[("orders-1", true, Some(0)), ("orders-2", false, None)],
                ))
                .marker("page-2")
                .build()
        });
    let page2 = mock!(aws_sdk_rds::Client::describe_db_clusters)
        .match_requests(|r| r.marker() == Some("page-2"))
        .then_output(|| {
            DescribeDbClustersOutput::builder()
                .db_clusters(cluster("payments", &[("payments-1", true, Some(3))]))
                // A cluster nobody asked for (a peer ignoring the filter) is dropped.
                .db_clusters(cluster("audit", &[]))
                .build()
        });
    let db = rds(RuleMode::Sequential, &[&page1, &page2]);
    let got = db
        .describe_clusters(&[ClusterId::new("orders"), ClusterId::new("payments")])
        .await
        .unwrap();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0].id, ClusterId::new("orders"));
    assert_eq!(
        got[0].writer().unwrap().instance,
        InstanceId::new("orders-1")
    );
    assert_eq!(
        got[0].members[1].promotion_tier, 1,
        "RDS's default tier when none is reported"
    );
    assert_eq!(got[1].id, ClusterId::new("payments"));
    assert_eq!(got[1].members[0].promotion_tier, 3);
    assert_eq!((page1.num_calls(), page2.num_calls()), (1, 1));
}

#[tokio::test]
async fn describe_clusters_chunks_ids_and_skips_the_call_for_none() {
    let echo = mock!(aws_sdk_rds::Client::describe_db_clusters).then_compute_output(|r| {
        let ids = filter_values(r.filters(), "db-cluster-id");
        assert!(ids.len() <= 100, "{} ids in one filter", ids.len());
        let mut out = DescribeDbClustersOutput::builder();
        for id in ids {
            out = out.db_clusters(cluster(&id, &[]));
        }
        out.build()
    });
    let db = rds(RuleMode::MatchAny, &[&echo]);
    assert!(db.describe_clusters(&[]).await.unwrap().is_empty());
    assert_eq!(echo.num_calls(), 0, "no ids, no call");
    let ids: Vec<ClusterId> = (0..250).map(|i| ClusterId::new(format!("c{i}"))).collect();
    let got = db.describe_clusters(&ids).await.unwrap();
    assert_eq!(got.len(), 250);
    assert_eq!(echo.num_calls(), 3);
}

#[tokio::test]
async fn a_marker_returned_twice_stops_paging() {
    let stuck = mock!(aws_sdk_rds::Client::describe_db_instances).then_output(|| {
        aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput::builder()
            .marker("again")
            .build()
    });
    let db = rds(RuleMode::MatchAny, &[&stuck]);
    let err = db
        .describe_instances(&[InstanceId::new("ledger")])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Other, "{err}");
    assert_eq!(err.operation, "DescribeDBInstances");
    assert_eq!(stuck.num_calls(), 2);
}

fn cname(name: &str, value: &str) -> RecordSet {
    RecordSet {
        name: name.into(),
        rtype: "CNAME".into(),
        ttl: Some(60),
        set_identifier: None,
        weight: None,
        values: vec![value.into()],
        alias: None,
        health_check_id: None,
        routing: None,
    }
}

fn sdk_weighted(id: &str, weight: i64) -> ResourceRecordSet {
    ResourceRecordSet::builder()
        .name("api.example.com.")
        .r#type(RrType::Cname)
        .ttl(60)
        .set_identifier(id)
        .weight(weight)
        .resource_records(
            ResourceRecord::builder()
                .value(format!("{id}.example.com"))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn list_record_sets_follows_name_type_and_identifier() {
    let page1 = mock!(aws_sdk_route53::Client::list_resource_record_sets)
        .match_requests(|r| {
            r.hosted_zone_id() == Some("Z1")
                && r.max_items() == Some(300)
                && r.start_record_name().is_none()
        })
        .then_output(|| {
            ListResourceRecordSetsOutput::builder()
                .resource_record_sets(sdk_weighted("blue", 100))
                .is_truncated(true)
                .next_record_name("api.example.com.")
                .next_record_type(RrType::Cname)
                .next_record_identifier("green")
                .max_items(300)
                .build()
                .unwrap()
        });
    let page2 = mock!(aws_sdk_route53::Client::list_resource_record_sets)
        .match_requests(|r| {
            r.start_record_name() == Some("api.example.com.")
                && r.start_record_type() == Some(&RrType::Cname)
                && r.start_record_identifier() == Some("green")
        })
        .then_output(|| {
            ListResourceRecordSetsOutput::builder()
                .resource_record_sets(sdk_weighted("green", 0))
                .is_truncated(false)
                .max_items(300)
                .build()
                .unwrap()
        });
    let r53 = dns(RuleMode::Sequential, &[&page1, &page2]);
    let sets = r53.list_record_sets("/hostedzone/Z1").await.unwrap();
    let got: Vec<(Option<&str>, Option<i64>)> = sets
        .iter()
        .map(|r| (r.set_identifier.as_deref(), r.weight))
        .collect();
    assert_eq!(got, [(Some("blue"), Some(100)), (Some("green"), Some(0))]);
    assert_eq!(sets[1].values, ["green.example.com"]);
}

#[tokio::test]
async fn a_peer_returning_the_same_page_twice_is_stopped() {
    // What moto does with weighted sets: it ignores StartRecordIdentifier and never returns
    // NextRecordIdentifier, so the same start comes back.
    let looping = mock!(aws_sdk_route53::Client::list_resource_record_sets).then_output(|| {
        ListResourceRecordSetsOutput::builder()
            .resource_record_sets(sdk_weighted("blue", 100))
            .is_truncated(true)
            .next_record_name("api.example.com.")
            .next_record_type(RrType::Cname)
            .max_items(300)
            .build()
            .unwrap()
    });
    let r53 = dns(RuleMode::MatchAny, &[&looping]);
    let err = r53.list_record_sets("Z1").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Other, "{err}");
    assert!(err.message.contains("same page twice"), "{err}");
    assert_eq!(looping.num_calls(), 2);
}

#[tokio::test]
async fn get_change_maps_pending_then_insync() {
    let info = |status: aws_sdk_route53::types::ChangeStatus| {
        GetChangeOutput::builder()
            .change_info(
                SdkChangeInfo::builder()
                    .id("/change/C2ABCDEF")
                    .status(status)
                    .submitted_at(aws_smithy_types::DateTime::from_secs(1_700_000_000))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    let change = mock!(aws_sdk_route53::Client::get_change)
        .match_requests(|r| r.id() == Some("C2ABCDEF"))
        .sequence()
        .output(move || info(aws_sdk_route53::types::ChangeStatus::Pending))
        .output(move || info(aws_sdk_route53::types::ChangeStatus::Insync))
        .build();
    let r53 = dns(RuleMode::Sequential, &[&change]);
    let first = r53.get_change("/change/C2ABCDEF").await.unwrap();
    assert_eq!(
        (first.id.as_str(), first.status),
        ("C2ABCDEF", ChangeStatus::Pending)
    );
    let second = r53.get_change("C2ABCDEF").await.unwrap();
    assert_eq!(
        (second.id.as_str(), second.status),
        ("C2ABCDEF", ChangeStatus::Insync)
    );
}

#[tokio::test]
async fn missing_hosted_zone_and_change_are_not_found() {
    let zone = mock!(aws_sdk_route53::Client::get_hosted_zone)
        .sequence()
        .http_status(
            404,
            Some(route53_error_xml(
                "NoSuchHostedZone",
                "No hosted zone found with ID: Z9",
            )),
        )
        .build();
    let change = mock!(aws_sdk_route53::Client::get_change)
        .sequence()
        .http_status(
            404,
            Some(route53_error_xml(
                "NoSuchChange",
                "Could not find resource with ID: C9",
            )),
        )
        .build();
    let r53 = dns(RuleMode::MatchAny, &[&zone, &change]);
    let err = r53.find_hosted_zone("Z9").await.unwrap_err();
    assert_eq!(
        (err.kind, err.operation.as_str(), err.resource.as_str()),
        (ErrorKind::NotFound, "GetHostedZone", "Z9")
    );
    let err = r53.get_change("C9").await.unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_deref()),
        (ErrorKind::NotFound, Some("NoSuchChange"))
    );
}

#[tokio::test]
async fn access_denied_and_missing_credentials_are_access_denied() {
    let denied = mock!(aws_sdk_rds::Client::describe_db_instances)
        .sequence()
        .http_status(
            403,
            Some(rds_error_xml(
                "AccessDenied",
                "User is not authorized to perform: rds:DescribeDBInstances",
            )),
        )
        .build();
    let db = rds(RuleMode::Sequential, &[&denied]);
    let err = db
        .describe_cluster_instances(&[ClusterId::new("orders")])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::AccessDenied, "{err}");

    // A credential provider that cannot produce credentials (a profile that does not exist).
    #[allow(deprecated)]
    let files = aws_config::profile::profile_file::ProfileFiles::builder()
        .with_contents(
            aws_config::profile::profile_file::ProfileFileKind::Config,
            "[profile someone-else]\nregion = us-west-2\n",
        )
        .build();
    let provider = aws_config::profile::ProfileFileCredentialsProvider::builder()
        .profile_files(files)
        .profile_name("failover-test-no-such-profile")
        .build();
    // No mock rule: a scripted response would replace the failed attempt's error.
    let client = aws_sdk_rds::Client::from_conf(
        aws_sdk_rds::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-west-2"))
            .credentials_provider(provider)
            .http_client(create_mock_http_client())
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    let err = AwsDatabases::from_client(client)
        .describe_clusters(&[ClusterId::new("orders")])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::AccessDenied, "{err}");
    assert!(err.message.contains("credentials"), "{err}");
}

#[tokio::test]
async fn connect_to_an_endpoint_nobody_listens_on_is_transient() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let settings = AwsSettings {
        region: "us-west-2".into(),
        profile: None,
        endpoint_url: Some(format!("http://127.0.0.1:{port}")),
        operation_timeout: Duration::from_secs(5),
    };
    let (db, r53) = connect(&settings, RateLimiter::on_wall_clock(Default::default())).await;
    let err = db
        .describe_clusters(&[ClusterId::new("orders")])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
    let err = r53.get_change("C1").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
}

/// `failover discover`'s listing pages through every DB cluster, and a throttled page is retried
/// (the listing is read-only) rather than failing the discovery.
#[tokio::test(start_paused = true)]
async fn the_inventory_listing_pages_and_retries_a_throttled_page() {
    use failover::clock::TokioClock;
    use failover::cloud::retry::{RetryPolicy, RetryingInventory};
    use failover::cloud::Inventory;
    use std::sync::Arc;

    let page1 = mock!(aws_sdk_rds::Client::describe_db_clusters)
        .match_requests(|r| r.marker().is_none() && r.max_records() == Some(100))
        .then_output(|| {
            DescribeDbClustersOutput::builder()
                .db_clusters(cluster("orders", &[("orders-1", true, Some(0))]))
                .marker("page-2")
                .build()
        });
    // Once, then the page itself.
    let throttled = mock!(aws_sdk_rds::Client::describe_db_clusters)
        .match_requests(|r| r.marker() == Some("page-2"))
        .sequence()
        .http_status(400, Some(rds_error_xml("Throttling", "Rate exceeded")))
        .build();
    let page2 = mock!(aws_sdk_rds::Client::describe_db_clusters)
        .match_requests(|r| r.marker() == Some("page-2"))
        .then_output(|| {
            DescribeDbClustersOutput::builder()
                .db_clusters(cluster("payments", &[("payments-1", true, Some(1))]))
                .build()
        });
    let clock: Arc<dyn failover::cloud::Clock> = Arc::new(TokioClock::new());
    let limiter = Arc::new(RateLimiter::new(Default::default(), clock.clone()));
    let rds_client = mocked!(
        aws_sdk_rds,
        RuleMode::MatchAny,
        [&page1, &throttled, &page2].into_iter()
    );
    let r53_client = mocked!(
        aws_sdk_route53,
        RuleMode::Sequential,
        std::iter::empty::<&Rule>()
    );
    let inventory = failover::cloud::aws::AwsInventory::new(rds_client, r53_client, limiter);
    let retrying =
        RetryingInventory::new(Arc::new(inventory), RetryPolicy::default(), clock, Some(1));
    let got = retrying.list_clusters().await.unwrap();
    let ids: Vec<&str> = got.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["orders", "payments"]);
    assert_eq!(throttled.num_calls(), 1);
    // The whole listing starts again after the throttled page: its first page is read twice.
    assert_eq!((page1.num_calls(), page2.num_calls()), (2, 1));
}

// ---- ARC zonal shift ---------------------------------------------------------------------

mod arc {
    use super::*;
    use aws_sdk_arczonalshift::operation::get_managed_resource::GetManagedResourceOutput;
    use aws_sdk_arczonalshift::operation::list_zonal_shifts::ListZonalShiftsOutput;
    use aws_sdk_arczonalshift::operation::start_zonal_shift::StartZonalShiftOutput;
    use aws_sdk_arczonalshift::types::{
        AppliedStatus, AutoshiftAppliedStatus, AutoshiftInResource, ZonalAutoshiftStatus,
        ZonalShiftInResource, ZonalShiftStatus as SdkStatus, ZonalShiftSummary,
    };
    use aws_smithy_types::DateTime;
    use failover::cloud::aws::AwsZonalShifts;
    use failover::cloud::retry::{RetryPolicy, RetryingZonalShifts};
    use failover::cloud::{ZonalShiftStatus, ZonalShifts};
    use std::sync::Arc;

    const LB: &str =
        "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/web/5d1b7c3e9f2a4b6c";

    fn arc(rules: &[&Rule]) -> AwsZonalShifts {
        AwsZonalShifts::from_client(mocked!(
            aws_sdk_arczonalshift,
            RuleMode::Sequential,
            rules.iter().copied()
        ))
    }

    /// A restJson error body as ARC sends it.
    fn arc_error(code: &str, reason: &str) -> String {
        format!(
            r#"{{"__type":"{code}","message":"{code} for the test","reason":"{reason}","zonalShiftId":"zs-1"}}"#
        )
    }

    fn t(s: i64) -> DateTime {
        DateTime::from_secs(s)
    }

    #[tokio::test]
    async fn start_sends_every_parameter_and_returns_the_shift() {
        let start = mock!(aws_sdk_arczonalshift::Client::start_zonal_shift)
            .match_requests(|r| {
                r.resource_identifier() == Some(LB)
                    && r.away_from() == Some("usw2-az2")
                    && r.expires_in() == Some("2h")
                    && r.comment() == Some("failover run r1 step zonal-shift")
            })
            .then_output(|| {
                StartZonalShiftOutput::builder()
                    .zonal_shift_id("zs-1")
                    .resource_identifier(LB)
                    .away_from("usw2-az2")
                    .expiry_time(t(1_000 + 7200))
                    .start_time(t(1_000))
                    .status(SdkStatus::Active)
                    .comment("failover run r1 step zonal-shift")
                    .build()
                    .unwrap()
            });
        let a = arc(&[&start]);
        let s = a
            .start_zonal_shift(
                LB,
                "usw2-az2",
                Duration::from_secs(7200),
                "failover run r1 step zonal-shift",
            )
            .await
            .unwrap();
        assert_eq!(start.num_calls(), 1);
        assert_eq!(
            (s.id.as_str(), s.away_from.as_str(), s.status),
            ("zs-1", "usw2-az2", ZonalShiftStatus::Active)
        );
        assert_eq!((s.start_ms, s.expiry_ms), (1_000_000, 8_200_000));
    }

    #[tokio::test]
    async fn a_resource_already_shifted_is_a_conflict_and_throttling_is_throttled() {
        let start = mock!(aws_sdk_arczonalshift::Client::start_zonal_shift)
            .sequence()
            .http_status(
                409,
                Some(arc_error("ConflictException", "ZonalShiftAlreadyExists")),
            )
            .http_status(429, Some(arc_error("ThrottlingException", "-")))
            .http_status(
                400,
                Some(arc_error("ValidationException", "InvalidExpiresIn")),
            )
            .http_status(403, Some(arc_error("AccessDeniedException", "-")))
            .build();
        let a = arc(&[&start]);
        let mut kinds = vec![];
        for _ in 0..4 {
            let e = a
                .start_zonal_shift(LB, "usw2-az2", Duration::from_secs(600), "c")
                .await
                .unwrap_err();
            assert_eq!(
                (e.operation.as_str(), e.resource.as_str()),
                ("StartZonalShift", LB)
            );
            kinds.push((e.kind, e.code.unwrap_or_default()));
        }
        assert_eq!(
            kinds,
            vec![
                (ErrorKind::InvalidState, "ConflictException".to_string()),
                (ErrorKind::Throttled, "ThrottlingException".to_string()),
                (ErrorKind::InvalidRequest, "ValidationException".to_string()),
                (ErrorKind::AccessDenied, "AccessDeniedException".to_string()),
            ]
        );
        assert_eq!(start.num_calls(), 4, "the SDK must not retry on its own");
    }

    #[tokio::test]
    async fn a_throttled_start_is_sent_again_by_the_retry_policy_a_500_is_not() {
        let start = mock!(aws_sdk_arczonalshift::Client::start_zonal_shift)
            .sequence()
            .http_status(429, Some(arc_error("ThrottlingException", "-")))
            .output(|| {
                StartZonalShiftOutput::builder()
                    .zonal_shift_id("zs-2")
                    .resource_identifier(LB)
                    .away_from("usw2-az2")
                    .expiry_time(t(60))
                    .start_time(t(0))
                    .status(SdkStatus::Active)
                    .comment("c")
                    .build()
                    .unwrap()
            })
            .http_status(500, Some(arc_error("InternalServerException", "-")))
            .build();
        let inner: Arc<dyn ZonalShifts> = Arc::new(arc(&[&start]));
        let policy = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        };
        let r = RetryingZonalShifts::new(
            inner,
            policy,
            Arc::new(failover::clock::SystemClock),
            Some(1),
        );
        let s = r
            .start_zonal_shift(LB, "usw2-az2", Duration::from_secs(60), "c")
            .await
            .unwrap();
        assert_eq!((s.id.as_str(), start.num_calls()), ("zs-2", 2));
        // A 5xx may have been processed: not sent again (the step observes first).
        let e = r
            .start_zonal_shift(LB, "usw2-az2", Duration::from_secs(60), "c")
            .await
            .unwrap_err();
        assert_eq!((e.kind, start.num_calls()), (ErrorKind::Transient, 3));
    }

    #[tokio::test]
    async fn cancelling_a_shift_no_longer_active_is_not_a_failure() {
        let cancel = mock!(aws_sdk_arczonalshift::Client::cancel_zonal_shift)
            .match_requests(|r| r.zonal_shift_id() == Some("zs-1"))
            .sequence()
            .http_status(
                409,
                Some(arc_error("ConflictException", "ZonalShiftStatusNotActive")),
            )
            .http_status(404, Some(arc_error("ResourceNotFoundException", "-")))
            .build();
        let a = arc(&[&cancel]);
        assert_eq!(a.cancel_zonal_shift("zs-1").await.unwrap(), None);
        let e = a.cancel_zonal_shift("zs-1").await.unwrap_err();
        assert_eq!(
            (e.kind, e.operation.as_str()),
            (ErrorKind::NotFound, "CancelZonalShift")
        );
    }

    #[tokio::test]
    async fn a_managed_resource_reports_its_shifts_and_autoshifts_an_unknown_one_is_not_found() {
        let get = mock!(aws_sdk_arczonalshift::Client::get_managed_resource)
            .match_requests(|r| r.resource_identifier() == Some(LB))
            .sequence()
            .output(|| {
                GetManagedResourceOutput::builder()
                    .arn(LB)
                    .set_applied_weights(Some(Default::default()))
                    .zonal_shifts(
                        ZonalShiftInResource::builder()
                            .applied_status(AppliedStatus::Applied)
                            .zonal_shift_id("zs-9")
                            .resource_identifier(LB)
                            .away_from("usw2-az1")
                            .expiry_time(t(100))
                            .start_time(t(0))
                            .comment("manual")
                            .build()
                            .unwrap(),
                    )
                    .autoshifts(
                        AutoshiftInResource::builder()
                            .applied_status(AutoshiftAppliedStatus::Applied)
                            .away_from("usw2-az3")
                            .start_time(t(0))
                            .build()
                            .unwrap(),
                    )
                    .zonal_autoshift_status(ZonalAutoshiftStatus::Enabled)
                    .build()
                    .unwrap()
            })
            .http_status(404, Some(arc_error("ResourceNotFoundException", "-")))
            .build();
        let a = arc(&[&get]);
        let m = a.get_managed_resource(LB).await.unwrap();
        assert!(m.autoshift_enabled);
        assert_eq!(m.autoshifts_away_from, vec!["usw2-az3"]);
        assert_eq!(m.shifts.len(), 1);
        assert_eq!(
            (m.shifts[0].id.as_str(), m.shifts[0].status),
            ("zs-9", ZonalShiftStatus::Active)
        );
        let e = a.get_managed_resource(LB).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    }

    /// A start whose answer was lost: the shift is found again by listing the resource's
    /// shifts (every page) and reading the run id in its comment.
    #[tokio::test]
    async fn a_lost_start_is_found_by_listing_the_shifts_across_pages() {
        let summary = |id: &str, status: SdkStatus, comment: &str| {
            ZonalShiftSummary::builder()
                .zonal_shift_id(id)
                .resource_identifier(LB)
                .away_from("usw2-az2")
                .expiry_time(t(100))
                .start_time(t(0))
                .status(status)
                .comment(comment)
                .build()
                .unwrap()
        };
        let start = mock!(aws_sdk_arczonalshift::Client::start_zonal_shift)
            .sequence()
            .http_status(503, None)
            .build();
        let page1 = mock!(aws_sdk_arczonalshift::Client::list_zonal_shifts)
            .match_requests(|r| {
                r.resource_identifier() == Some(LB)
                    && r.next_token().is_none()
                    && r.status().is_none()
            })
            .then_output(move || {
                ListZonalShiftsOutput::builder()
                    .items(summary(
                        "zs-old",
                        SdkStatus::Expired,
                        "failover run r0 step zonal-shift",
                    ))
                    .next_token("p2")
                    .build()
            });
        let page2 = mock!(aws_sdk_arczonalshift::Client::list_zonal_shifts)
            .match_requests(|r| r.next_token() == Some("p2"))
            .then_output(move || {
                ListZonalShiftsOutput::builder()
                    .items(summary(
                        "zs-lost",
                        SdkStatus::Active,
                        "failover run r1 step zonal-shift",
                    ))
                    .build()
            });
        let a = arc(&[&start, &page1, &page2]);
        let e = a
            .start_zonal_shift(
                LB,
                "usw2-az2",
                Duration::from_secs(600),
                "failover run r1 step zonal-shift",
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Transient, "may have been processed: {e}");
        assert!(!e.kind.proves_not_processed());
        let shifts = a.list_zonal_shifts(LB).await.unwrap();
        assert_eq!((page1.num_calls(), page2.num_calls()), (1, 1));
        let found: Vec<(&str, ZonalShiftStatus)> = shifts
            .iter()
            .filter(|s| s.comment.contains("r1"))
            .map(|s| (s.id.as_str(), s.status))
            .collect();
        assert_eq!(found, vec![("zs-lost", ZonalShiftStatus::Active)]);
    }
}
