//! CloudWatch adapter: [`AwsAlarms`] implements the health `Alarms` port with
//! `aws-sdk-cloudwatch`.
//!
//! - DescribeAlarms takes up to [`NAMES_PER_CALL`] alarm names per call; the names of a round
//!   are sent in as few calls as that allows, and every `NextToken` page is followed.
//! - Metric and composite alarms are both asked for (`AlarmTypes`): without it CloudWatch
//!   returns metric alarms only, and a composite per-zone alarm would look missing.
//! - Only the requested names come back (exact, case-sensitive match, as CloudWatch names
//!   are), each once; an alarm that does not exist is absent, never an error.
//! - Failures are classified by [`cloud_error`] like every other AWS call.

use super::config::{sdk_config, AwsSettings};
use super::error::cloud_error;
use crate::cloud::describe_ids;
use crate::cloud::rate::{Api, Class, Quotas, RateLimiter};
use crate::cloud::{CloudError, ErrorKind};
use crate::health::ports::{AlarmState, AlarmValue, Alarms};
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::AlarmType;
use aws_sdk_cloudwatch::Client;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

/// Most alarm names DescribeAlarms accepts in one call.
pub const NAMES_PER_CALL: usize = 100;
/// Page size asked for (the DescribeAlarms maximum).
pub const PAGE_SIZE: i32 = 100;
/// Pages followed for one batch before giving up on a peer that never stops paging.
pub const MAX_PAGES: usize = 1_000;

/// The `Alarms` port backed by a CloudWatch client; every page is paced and counted by its
/// limiter (CloudWatch's bucket).
#[derive(Clone, Debug)]
pub struct AwsAlarms {
    client: Client,
    limiter: Arc<RateLimiter>,
}

impl AwsAlarms {
    /// Wraps an existing client (e.g. one built by `aws-smithy-mocks` in tests), paced by a
    /// limiter of AWS's default quotas on the wall clock.
    pub fn from_client(client: Client) -> Self {
        Self {
            client,
            limiter: RateLimiter::on_wall_clock(Quotas::default()),
        }
    }

    /// A client for `settings` (region, profile, endpoint, operation timeout; no SDK retries),
    /// paced and counted by `limiter`. Nothing is called here.
    pub async fn connect(settings: &AwsSettings, limiter: Arc<RateLimiter>) -> Self {
        let sdk = sdk_config(settings).await;
        Self {
            client: Client::new(&sdk),
            limiter,
        }
    }
}

fn time(t: Option<&aws_smithy_types::DateTime>) -> Option<SystemTime> {
    t.and_then(|t| SystemTime::try_from(*t).ok())
}

#[async_trait]
impl Alarms for AwsAlarms {
    async fn alarm_states(&self, names: &[String]) -> Result<Vec<AlarmState>, CloudError> {
        let mut seen = HashSet::new();
        let distinct: Vec<String> = names
            .iter()
            .filter(|n| seen.insert(n.as_str()))
            .cloned()
            .collect();
        let mut out: Vec<AlarmState> = vec![];
        let mut found = HashSet::new();
        for chunk in distinct.chunks(NAMES_PER_CALL) {
            let wanted: HashSet<&str> = chunk.iter().map(String::as_str).collect();
            let resource = describe_ids(chunk);
            let mut token: Option<String> = None;
            let mut pages = 0;
            loop {
                pages += 1;
                if pages > MAX_PAGES {
                    return Err(CloudError::new(
                        ErrorKind::Other,
                        "DescribeAlarms",
                        &resource,
                        format!("the peer kept returning NextToken after {MAX_PAGES} pages; stopped to avoid paging forever"),
                    ));
                }
                let req = self
                    .client
                    .describe_alarms()
                    .set_alarm_names(Some(chunk.to_vec()))
                    .alarm_types(AlarmType::MetricAlarm)
                    .alarm_types(AlarmType::CompositeAlarm)
                    .max_records(PAGE_SIZE)
                    .set_next_token(token.clone());
                let resp = self
                    .limiter
                    .call(Api::CloudWatch, Class::Read, || async {
                        req.send()
                            .await
                            .map_err(|e| cloud_error("DescribeAlarms", &resource, &e))
                    })
                    .await?;
                let metric = resp.metric_alarms().iter().map(|a| {
                    (
                        a.alarm_name(),
                        a.state_value(),
                        a.state_reason(),
                        time(a.state_updated_timestamp()),
                    )
                });
                let composite = resp.composite_alarms().iter().map(|a| {
                    (
                        a.alarm_name(),
                        a.state_value(),
                        a.state_reason(),
                        time(a.state_updated_timestamp()),
                    )
                });
                for (name, value, reason, updated) in metric.chain(composite) {
                    let Some(name) = name.filter(|n| wanted.contains(n)) else {
                        continue;
                    };
                    if !found.insert(name.to_string()) {
                        continue;
                    }
                    out.push(AlarmState {
                        name: name.to_string(),
                        value: value
                            .map(|v| AlarmValue::from_wire(v.as_str()))
                            .unwrap_or(AlarmValue::InsufficientData),
                        reason: reason.unwrap_or_default().to_string(),
                        updated,
                    });
                }
                match resp.next_token() {
                    Some(t) if !t.is_empty() && Some(t) != token.as_deref() => {
                        token = Some(t.to_string())
                    }
                    Some(t) if !t.is_empty() => {
                        return Err(CloudError::new(ErrorKind::Other, "DescribeAlarms", &resource, "the peer returned the same NextToken twice; stopped to avoid paging forever"));
                    }
                    _ => break,
                }
            }
        }
        Ok(out)
    }
}
