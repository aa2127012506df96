//! A temporary config directory whose `local` environment (copied from config/local.toml)
//! points at the test's own AWS peer and HTTP sink, plus the demo topology seeded into moto.

use std::path::{Path, PathBuf};

pub struct TestConfig {
    pub dir: tempfile::TempDir,
}

impl TestConfig {
    /// `aws_endpoint`: moto or the counting proxy; `sink`: base URL of the HTTP sink.
    pub fn local(aws_endpoint: &str, sink: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(repo().join("config/local.toml")).unwrap();
        let text = text
            .replace("http://127.0.0.1:5055", aws_endpoint)
            .replace("http://127.0.0.1:5056", sink)
            .replace("poll_interval = \"200ms\"", "poll_interval = \"50ms\"");
        std::fs::write(dir.path().join("local.toml"), text).unwrap();
        TestConfig { dir }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn env(&self) -> failover::env::Environment {
        failover::env::Environment::load(self.path(), "local").unwrap_or_else(|d| panic!("{d}"))
    }
    pub fn journal(&self) -> PathBuf {
        self.dir.path().join("journal.db")
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Seed the environment's resources into the (local) peer it points at.
pub async fn seed(env: &failover::env::Environment) {
    failover::cloud::aws::seed::seed(env)
        .await
        .unwrap_or_else(|e| panic!("seeding moto failed: {e}"));
}

/// SDK clients for checking the end state directly against moto.
pub async fn clients(endpoint: &str) -> (aws_sdk_rds::Client, aws_sdk_route53::Client) {
    let creds = aws_sdk_rds::config::Credentials::new("test", "test", None, None, "test");
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-west-2"))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .load()
        .await;
    (
        aws_sdk_rds::Client::new(&conf),
        aws_sdk_route53::Client::new(&conf),
    )
}

/// Set both local CloudWatch alarms of a zone (config/local.toml's health probes) to `state`.
pub async fn zone_alarms(endpoint: &str, zone: &str, state: aws_sdk_cloudwatch::types::StateValue) {
    let cw = cloudwatch(endpoint).await;
    for alarm in [
        format!("local-api-5xx-{zone}"),
        format!("local-api-latency-{zone}"),
    ] {
        cw.set_alarm_state()
            .alarm_name(&alarm)
            .state_value(state.clone())
            .state_reason("test")
            .send()
            .await
            .unwrap();
    }
}

/// A CloudWatch client on the local peer.
pub async fn cloudwatch(endpoint: &str) -> aws_sdk_cloudwatch::Client {
    let creds = aws_sdk_rds::config::Credentials::new("test", "test", None, None, "test");
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-west-2"))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .load()
        .await;
    aws_sdk_cloudwatch::Client::new(&conf)
}

/// CREATE these record sets in hosted zone `zone` of the peer, in one change batch.
pub async fn create_record_sets(
    r53: &aws_sdk_route53::Client,
    zone: &str,
    sets: Vec<aws_sdk_route53::types::ResourceRecordSet>,
) {
    use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch};
    let changes = sets
        .into_iter()
        .map(|s| {
            Change::builder()
                .action(ChangeAction::Create)
                .resource_record_set(s)
                .build()
                .unwrap()
        })
        .collect();
    r53.change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(
            ChangeBatch::builder()
                .set_changes(Some(changes))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("ChangeResourceRecordSets");
}
