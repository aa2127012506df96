//! Route 53 health-check adapter: [`AwsHealthChecks`] implements the health `HealthChecks` port
//! with `aws-sdk-route53` (GetHealthCheckStatus).
//!
//! Each Route 53 checker that has observed the endpoint reports a status line starting with
//! `Success` or `Failure`. The port reports how many checkers answered and how many report
//! success; `HealthCheckStatus::is_healthy` applies Route 53's own rule (more than 18%).
//! GetHealthCheckStatus is throttled hard (1 call a second per account, burst 4), which is why
//! the `[health]` parser refuses intervals that would exceed it.

use super::config::{route53_region, sdk_config, AwsSettings};
use super::error::cloud_error;
use crate::cloud::rate::{Api, Class, Quotas, RateLimiter};
use crate::cloud::{CloudError, ErrorKind};
use crate::health::ports::{HealthCheckStatus, HealthChecks};
use async_trait::async_trait;
use aws_config::Region;
use aws_sdk_route53::Client;
use std::sync::Arc;

/// The `HealthChecks` port backed by a Route 53 client; every call is paced and counted by
/// its limiter (the probes' own).
#[derive(Clone, Debug)]
pub struct AwsHealthChecks {
    client: Client,
    limiter: Arc<RateLimiter>,
}

impl AwsHealthChecks {
    /// Wraps an existing client (e.g. one built by `aws-smithy-mocks` in tests), paced by a
    /// limiter of AWS's default quotas on the wall clock.
    pub fn from_client(client: Client) -> Self {
        Self {
            client,
            limiter: RateLimiter::on_wall_clock(Quotas::default()),
        }
    }

    /// A Route 53 client for `settings`, in the region of the partition's Route 53 control
    /// plane (us-east-1 in `aws`), or the configured region for a custom endpoint.
    pub async fn connect(settings: &AwsSettings, limiter: Arc<RateLimiter>) -> Self {
        let sdk = sdk_config(settings).await;
        let mut conf = aws_sdk_route53::config::Builder::from(&sdk);
        conf.set_region(Some(Region::new(route53_region(
            &settings.region,
            settings.endpoint_url.is_some(),
        ))));
        Self {
            client: Client::from_conf(conf.build()),
            limiter,
        }
    }
}

/// Counts the checkers' reports: (checkers that reported, of which success, first failure).
pub fn tally<'a>(statuses: impl IntoIterator<Item = &'a str>) -> (u32, u32, Option<String>) {
    let (mut checkers, mut success, mut failure) = (0, 0, None);
    for s in statuses {
        checkers += 1;
        if s.trim_start().starts_with("Success") {
            success += 1;
        } else if failure.is_none() {
            failure = Some(s.trim().to_string());
        }
    }
    (checkers, success, failure)
}

#[async_trait]
impl HealthChecks for AwsHealthChecks {
    async fn health_check_status(&self, id: &str) -> Result<HealthCheckStatus, CloudError> {
        let id = id.trim();
        let req = self.client.get_health_check_status().health_check_id(id);
        let resp = self
            .limiter
            .call(Api::Route53, Class::Read, || async {
                req.send().await.map_err(|e| {
                    let mut err = cloud_error("GetHealthCheckStatus", id, &e);
                    if err.code.as_deref() == Some("NoSuchHealthCheck") {
                        err.kind = ErrorKind::NotFound;
                    }
                    err
                })
            })
            .await?;
        let statuses = resp
            .health_check_observations()
            .iter()
            .filter_map(|o| o.status_report().and_then(|r| r.status()));
        let (checkers, reporting_success, sample_failure) = tally(statuses);
        Ok(HealthCheckStatus {
            id: id.to_string(),
            checkers,
            reporting_success,
            sample_failure,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checker_reports_are_counted() {
        let (n, ok, fail) = tally([
            "Success: HTTP Status Code 200, OK",
            "Failure: Connection timed out",
            " Success: HTTP Status Code 200, OK",
            "Failure: Resolved IP is private",
        ]);
        assert_eq!(
            (n, ok, fail.as_deref()),
            (4, 2, Some("Failure: Connection timed out"))
        );
        assert_eq!(tally([]), (0, 0, None));
    }
}
