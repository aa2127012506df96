//! AWS failures in the project's terms: an SDK error becomes a `CloudError` naming the
//! operation, the resource, the service's code and request id, classified by
//! `ErrorKind::classify`.

use crate::cloud::{CloudError, ErrorKind};
use aws_sdk_rds::operation::RequestId;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::error::Error as StdError;

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
}
