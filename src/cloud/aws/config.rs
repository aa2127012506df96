//! How the AWS clients are built: region, profile or static credentials for a local peer,
//! endpoint, timeouts, and the SDK's own retries turned off (retries are decided by
//! `cloud::ErrorKind`).

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_rds::config::Credentials;
use std::time::Duration;

pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed to open a TCP/TLS connection to an AWS endpoint.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Region of the Route 53 control plane (a global service) in the `aws` partition.
pub const ROUTE53_REGION: &str = "us-east-1";
/// Name under which the static credentials for a local peer are reported.
const LOCAL_PEER_CREDENTIALS: &str = "failover-local-peer";

/// Where and as whom to call AWS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsSettings {
    /// Region of the RDS resources, e.g. `us-west-2`.
    pub region: String,
    /// Named profile from `~/.aws/config`; `None` uses the default credential chain.
    pub profile: Option<String>,
    /// Override of the service endpoints (e.g. `http://127.0.0.1:5000` for moto).
    pub endpoint_url: Option<String>,
    /// Upper bound of one SDK call, including reading the response.
    pub operation_timeout: Duration,
}

impl AwsSettings {
    /// Settings for `region` with the default credential chain, real endpoints and the default
    /// operation timeout.
    pub fn new(region: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            profile: None,
            endpoint_url: None,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }

    /// Whether static test credentials are used instead of the credential chain: only against a
    /// custom endpoint, with no profile, and when the environment has no access key.
    pub fn uses_local_peer_credentials(&self) -> bool {
        self.endpoint_url.is_some()
            && self.profile.is_none()
            && std::env::var_os("AWS_ACCESS_KEY_ID").is_none()
    }
}

pub(crate) async fn sdk_config(settings: &AwsSettings) -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_timeout(settings.operation_timeout)
        .operation_attempt_timeout(settings.operation_timeout)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts);
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if settings.uses_local_peer_credentials() {
        loader = loader.credentials_provider(Credentials::new(
            "test",
            "test",
            None,
            None,
            LOCAL_PEER_CREDENTIALS,
        ));
    }
    loader.load().await
}

/// Region for the Route 53 client. Route 53 is global: in the `aws` partition its control plane
/// is in us-east-1. Other partitions (China, GovCloud, ISO) keep their own region, from which
/// the SDK's endpoint rules pick the partition's Route 53 endpoint. A custom endpoint keeps the
/// configured region.
pub fn route53_region(region: &str, custom_endpoint: bool) -> String {
    let other_partition = ["cn-", "us-gov-", "us-iso", "eu-iso"]
        .iter()
        .any(|p| region.starts_with(p));
    if custom_endpoint || other_partition {
        region.to_string()
    } else {
        ROUTE53_REGION.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route53_region_is_global_in_the_aws_partition() {
        assert_eq!(route53_region("eu-west-1", false), "us-east-1");
        assert_eq!(route53_region("us-west-2", true), "us-west-2");
        assert_eq!(route53_region("cn-north-1", false), "cn-north-1");
        assert_eq!(route53_region("us-gov-west-1", false), "us-gov-west-1");
    }
}
