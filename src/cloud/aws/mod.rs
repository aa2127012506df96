//! AWS adapters: the `Databases` and `Dns` ports implemented with the AWS SDK for Rust.
//!
//! This module is the only place that imports an `aws-sdk-*` crate. It builds the SDK clients
//! ([`connect`]), implements the ports in [`rds`] and [`route53`], and maps every SDK failure
//! onto the project's [`CloudError`] with one [`ErrorKind`] ([`cloud_error`]).
//!
//! The SDK's own retries are disabled: `cloud::retry` is the one place that decides whether a
//! failed call is tried again, because only it knows whether the call mutates the world. The SDK
//! keeps an operation timeout so that a hung connection surfaces as a `Transient` error.
//!
//! Pointing `endpoint_url` at a local peer (moto) with no profile and no `AWS_ACCESS_KEY_ID` in
//! the environment uses static `test`/`test` credentials, so rehearsals and tests need no AWS
//! account.

pub mod cloudwatch;
pub mod health_checks;
pub mod rds;
pub mod route53;
pub mod seed;

pub use rds::AwsDatabases;
pub use route53::AwsDns;

use super::{CloudError, ErrorKind};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_rds::config::Credentials;
use aws_sdk_rds::operation::RequestId;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::error::Error as StdError;
use std::time::Duration;

/// Operation timeout used when the environment does not say otherwise.
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

/// Builds the RDS and Route 53 adapters for `settings`.
///
/// Nothing is called here: missing credentials or an unreachable endpoint show up on the first
/// call, classified (`AccessDenied`, `Transient`).
pub async fn connect(settings: &AwsSettings) -> (AwsDatabases, AwsDns) {
    let sdk = sdk_config(settings).await;
    let rds = aws_sdk_rds::Client::new(&sdk);
    let mut r53 = aws_sdk_route53::config::Builder::from(&sdk);
    r53.set_region(Some(Region::new(route53_region(
        &settings.region,
        settings.endpoint_url.is_some(),
    ))));
    let r53 = aws_sdk_route53::Client::from_conf(r53.build());
    (AwsDatabases::from_client(rds), AwsDns::from_client(r53))
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

/// Maps a failed SDK call to a [`CloudError`] naming the AWS operation (e.g.
/// `FailoverDBCluster`) and the resource it was about.
pub fn cloud_error<E>(
    operation: &str,
    resource: &str,
    err: &SdkError<E, HttpResponse>,
) -> CloudError
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    let (kind, code, message) = match err {
        SdkError::ConstructionFailure(_) => (
            ErrorKind::InvalidRequest,
            None,
            format!("the request could not be built: {}", chain(err)),
        ),
        SdkError::TimeoutError(_) => (
            ErrorKind::Transient,
            None,
            format!("no answer within the operation timeout: {}", chain(err)),
        ),
        SdkError::DispatchFailure(_) if mentions_credentials(err) => (
            ErrorKind::AccessDenied,
            None,
            format!("no usable AWS credentials: {}", chain(err)),
        ),
        SdkError::DispatchFailure(d) => {
            let what = if d.is_timeout() {
                "timed out reaching the endpoint"
            } else if d.is_io() {
                "connection to the endpoint failed"
            } else {
                "the request could not be sent"
            };
            (
                ErrorKind::Transient,
                None,
                format!("{what}: {}", chain(err)),
            )
        }
        SdkError::ResponseError(r) => {
            let status = r.raw().status().as_u16();
            (
                ErrorKind::classify(None, Some(status)),
                None,
                format!(
                    "unreadable response (HTTP {status}{}): {}",
                    request_id_suffix(err),
                    chain(err)
                ),
            )
        }
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            let code = err
                .code()
                .map(str::to_string)
                .or_else(|| wire_code_from_display(&s.err().to_string()));
            // Unmodelled errors (e.g. an HTML 500 from a proxy) have no message: show the body.
            let text = err.message().map(str::to_string).unwrap_or_else(|| {
                match s
                    .raw()
                    .body()
                    .bytes()
                    .map(body_snippet)
                    .filter(|b| !b.is_empty())
                {
                    Some(body) => format!("{}; body: {body}", chain(s.err())),
                    None => chain(s.err()),
                }
            });
            let kind = ErrorKind::classify(code.as_deref(), Some(status));
            let message = match &code {
                Some(c) => format!("{c}: {text} (HTTP {status}{})", request_id_suffix(err)),
                None => format!("{text} (HTTP {status}{})", request_id_suffix(err)),
            };
            (kind, code, message)
        }
        _ => (ErrorKind::Other, None, chain(err)),
    };
    CloudError {
        kind,
        operation: operation.to_string(),
        resource: resource.to_string(),
        code,
        message,
    }
}

/// Modelled SDK errors display as `TypeName [WireCode]: message`, or `WireCode: message` when
/// both names agree. A modelled error built without metadata (as test doubles are) has no
/// `code()`; its wire code is read from there. Unmodelled errors display differently
/// (`unhandled error (...)`) and yield nothing.
fn wire_code_from_display(text: &str) -> Option<String> {
    let head = text.split(": ").next()?;
    let code = match head.find(" [") {
        Some(open) => head[open + 2..].strip_suffix(']')?,
        None => head,
    };
    let is_code = code.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
    is_code.then(|| code.to_string())
}

/// The start of a response body on one line, for error messages.
fn body_snippet(body: &[u8]) -> String {
    const MAX: usize = 300;
    let text = String::from_utf8_lossy(body);
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &one_line[..cut]),
        None => one_line,
    }
}

fn request_id_suffix<E>(err: &SdkError<E, HttpResponse>) -> String {
    match err.request_id() {
        Some(id) if !id.is_empty() => format!(", request id {id}"),
        _ => String::new(),
    }
}

/// An error and its sources, each shown once: `outer: inner: root cause`.
fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let text = e.to_string();
        if !text.is_empty() && !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = e.source();
    }
    s
}

/// Credential-provider failures reach us as a dispatch failure wrapping the provider's error
/// (`aws_credential_types::provider::error::CredentialsError`, whose messages all mention
/// credentials). The SDK does not export a type to downcast to from here, so the source chain
/// is inspected.
fn mentions_credentials(err: &(dyn StdError + 'static)) -> bool {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        let text = e.to_string().to_ascii_lowercase();
        if text.contains("credential") || text.contains("no identity") {
            return true;
        }
        let debug = format!("{e:?}");
        if debug.starts_with("CredentialsNotLoaded")
            || debug.starts_with("ProviderError")
            || debug.starts_with("InvalidConfiguration")
            || debug.starts_with("ProviderTimedOut")
        {
            return true;
        }
        cur = e.source();
    }
    false
}

pub(crate) use crate::cloud::describe_ids;

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_rds::operation::describe_db_clusters::DescribeDBClustersError;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    #[test]
    fn classification_table() {
        use ErrorKind::*;
        let table: &[(Option<&str>, Option<u16>, ErrorKind)] = &[
            (Some("Throttling"), Some(400), Throttled),
            (Some("ThrottlingException"), Some(400), Throttled),
            (Some("RequestLimitExceeded"), Some(503), Throttled),
            (Some("TooManyRequestsException"), Some(400), Throttled),
            (Some("PriorRequestNotComplete"), Some(400), Throttled),
            (Some("RequestThrottled"), Some(400), Throttled),
            (None, Some(429), Throttled),
            (None, Some(500), Transient),
            (None, Some(502), Transient),
            (None, Some(503), Transient),
            (Some("InternalFailure"), Some(500), Transient),
            (Some("ServiceUnavailable"), None, Transient),
            (Some("SomethingNew"), Some(500), Transient),
            (Some("AccessDenied"), Some(403), AccessDenied),
            (Some("AccessDeniedException"), Some(400), AccessDenied),
            (Some("UnauthorizedOperation"), Some(403), AccessDenied),
            (Some("InvalidClientTokenId"), Some(403), AccessDenied),
            (Some("ExpiredToken"), Some(400), AccessDenied),
            (Some("SignatureDoesNotMatch"), Some(403), AccessDenied),
            (None, Some(403), AccessDenied),
            (Some("DBClusterNotFoundFault"), Some(404), NotFound),
            (Some("DBInstanceNotFound"), Some(404), NotFound),
            (Some("DBInstanceNotFoundFault"), Some(404), NotFound),
            (Some("DBClusterSnapshotNotFoundFault"), Some(404), NotFound),
            (Some("DBSnapshotNotFound"), Some(404), NotFound),
            (Some("NoSuchHostedZone"), Some(404), NotFound),
            (Some("NoSuchChange"), Some(404), NotFound),
            (Some("InvalidDBClusterStateFault"), Some(400), InvalidState),
            (Some("InvalidDBInstanceState"), Some(400), InvalidState),
            (Some("InvalidDBInstanceStateFault"), Some(400), InvalidState),
            (
                Some("DBClusterSnapshotAlreadyExistsFault"),
                Some(400),
                InvalidState,
            ),
            (Some("DBSnapshotAlreadyExists"), Some(400), InvalidState),
            (Some("SnapshotQuotaExceeded"), Some(400), InvalidState),
            (Some("InvalidParameterValue"), Some(400), InvalidRequest),
            (
                Some("InvalidParameterCombination"),
                Some(400),
                InvalidRequest,
            ),
            (Some("InvalidInput"), Some(400), InvalidRequest),
            (Some("InvalidChangeBatch"), Some(400), InvalidRequest),
            (Some("ValidationError"), Some(400), InvalidRequest),
            (Some("SomethingNew"), Some(400), Other),
            (None, Some(404), Other),
            (None, None, Other),
        ];
        for (code, status, want) in table {
            assert_eq!(
                ErrorKind::classify(*code, *status),
                *want,
                "code {code:?} status {status:?}"
            );
        }
    }

    fn response(status: u16) -> HttpResponse {
        HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from("x"))
    }

    fn service_error(code: &str, status: u16) -> SdkError<DescribeDBClustersError, HttpResponse> {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("it went wrong")
            .build();
        SdkError::service_error(DescribeDBClustersError::generic(meta), response(status))
    }

    #[test]
    fn service_errors_keep_code_operation_and_resource() {
        let e = cloud_error(
            "DescribeDBClusters",
            "orders",
            &service_error("Throttling", 400),
        );
        assert_eq!(e.kind, ErrorKind::Throttled);
        assert_eq!(e.code.as_deref(), Some("Throttling"));
        assert_eq!(e.operation, "DescribeDBClusters");
        assert_eq!(e.resource, "orders");
        assert!(
            e.message.contains("Throttling: it went wrong"),
            "{}",
            e.message
        );
        assert!(e.message.contains("HTTP 400"), "{}", e.message);

        let e = cloud_error("X", "r", &service_error("DBClusterNotFoundFault", 404));
        assert_eq!(e.kind, ErrorKind::NotFound);
    }

    #[test]
    fn unmodelled_errors_show_the_body() {
        let html = HttpResponse::new(
            StatusCode::try_from(500).unwrap(),
            SdkBody::from("<html>\n  <body>Internal   Server Error</body></html>"),
        );
        let meta = ErrorMetadata::builder().build();
        let err = SdkError::service_error(DescribeDBClustersError::generic(meta), html);
        let e = cloud_error("DescribeDBClusters", "orders", &err);
        assert_eq!(e.kind, ErrorKind::Transient);
        assert!(
            e.message
                .contains("<html> <body>Internal Server Error</body></html>"),
            "{}",
            e.message
        );
        assert_eq!(
            body_snippet("é".repeat(400).as_bytes()).chars().count(),
            303
        );
    }

    #[test]
    fn transport_errors_are_transient() {
        let timeout: SdkError<DescribeDBClustersError, HttpResponse> =
            SdkError::timeout_error("operation timed out after 30s");
        assert_eq!(cloud_error("X", "r", &timeout).kind, ErrorKind::Transient);

        let io: SdkError<DescribeDBClustersError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io("connection refused".into()));
        let e = cloud_error("X", "r", &io);
        assert_eq!(e.kind, ErrorKind::Transient);
        assert!(e.message.contains("connection refused"), "{}", e.message);

        let unreadable: SdkError<DescribeDBClustersError, HttpResponse> =
            SdkError::response_error("bad xml", response(502));
        assert_eq!(
            cloud_error("X", "r", &unreadable).kind,
            ErrorKind::Transient
        );
        let unreadable: SdkError<DescribeDBClustersError, HttpResponse> =
            SdkError::response_error("bad xml", response(200));
        assert_eq!(cloud_error("X", "r", &unreadable).kind, ErrorKind::Other);
    }

    #[test]
    fn construction_failure_is_invalid_request() {
        let e: SdkError<DescribeDBClustersError, HttpResponse> =
            SdkError::construction_failure("missing field");
        assert_eq!(cloud_error("X", "r", &e).kind, ErrorKind::InvalidRequest);
    }

    #[test]
    fn modelled_errors_without_metadata_are_classified_by_their_wire_code() {
        use aws_sdk_rds::operation::failover_db_cluster::FailoverDBClusterError;
        use aws_sdk_rds::types::error::DbClusterNotFoundFault;
        let modelled = FailoverDBClusterError::DbClusterNotFoundFault(
            DbClusterNotFoundFault::builder()
                .message("no such cluster")
                .build(),
        );
        let err = SdkError::service_error(modelled, response(404));
        let e = cloud_error("FailoverDBCluster", "orders", &err);
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(e.code.as_deref(), Some("DBClusterNotFoundFault"));
        assert_eq!(
            wire_code_from_display("Fault [Code.Sub]: a [b]"),
            Some("Code.Sub".into())
        );
        assert_eq!(
            wire_code_from_display("unhandled error (InternalFailure)"),
            None
        );
        assert_eq!(
            wire_code_from_display("PriorRequestNotComplete: wait"),
            Some("PriorRequestNotComplete".into())
        );
        assert_eq!(wire_code_from_display("x [bad code]"), None);
    }

    #[test]
    fn route53_region_is_global_in_the_aws_partition() {
        assert_eq!(route53_region("eu-west-1", false), "us-east-1");
        assert_eq!(route53_region("us-west-2", true), "us-west-2");
        assert_eq!(route53_region("cn-north-1", false), "cn-north-1");
        assert_eq!(route53_region("us-gov-west-1", false), "us-gov-west-1");
    }
}
