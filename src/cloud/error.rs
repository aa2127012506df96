//! How calls fail, in the project's own terms: `ErrorKind` (what a failure means for retries,
//! for calls in doubt and for the person reading it) and `CloudError` (one failed call, naming
//! the operation and the resource). Adapters map their errors onto a kind with
//! [`ErrorKind::classify`]; the policy (retry? may it have been processed?) is methods on the kind.

use serde::{Deserialize, Serialize};

const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "PriorRequestNotComplete",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
];

const TRANSIENT_CODES: &[&str] = &[
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
];

const ACCESS_DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "MissingAuthenticationToken",
    "IncompleteSignature",
    "UnrecognizedClientException",
    "AuthFailure",
];

const NOT_FOUND_CODES: &[&str] = &[
    "DBClusterNotFoundFault",
    "GlobalClusterNotFoundFault",
    "DBInstanceNotFound",
    "DBInstanceNotFoundFault",
    "DBClusterSnapshotNotFoundFault",
    "DBSnapshotNotFound",
    "DBSnapshotNotFoundFault",
    "NoSuchHostedZone",
    "NoSuchChange",
    // ARC zonal shift: the resource is not registered with ARC, or no such shift.
    "ResourceNotFoundException",
];

const INVALID_STATE_CODES: &[&str] = &[
    "InvalidDBClusterStateFault",
    "InvalidGlobalClusterStateFault",
    "InvalidDBInstanceState",
    "InvalidDBInstanceStateFault",
    "InvalidDBClusterSnapshotStateFault",
    "InvalidDBSnapshotState",
    "InvalidDBSnapshotStateFault",
    "DBClusterSnapshotAlreadyExistsFault",
    "DBSnapshotAlreadyExists",
    "DBSnapshotAlreadyExistsFault",
    "SnapshotQuotaExceeded",
    "SnapshotQuotaExceededFault",
    // ARC zonal shift: a shift is already active on the resource, or the shift is not active.
    "ConflictException",
];

const INVALID_REQUEST_CODES: &[&str] = &[
    "InvalidParameterValue",
    "InvalidParameterCombination",
    "InvalidInput",
    "InvalidChangeBatch",
    "ValidationError",
    "ValidationException",
    "MissingParameter",
    "MalformedQueryString",
];

/// How a failed call should be treated. One place (`cloud::retry`) decides what to do with
/// each kind; adapters only map their errors onto it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The peer refused the request because of a rate limit: it was not processed.
    Throttled,
    /// 5xx, connection reset, timeout: the request may or may not have been processed.
    Transient,
    /// Credentials missing or expired, or not allowed by IAM.
    AccessDenied,
    /// The resource does not exist.
    NotFound,
    /// The resource is not in a state that allows the call (e.g. a failover already running).
    InvalidState,
    /// The request itself is wrong (bad parameter); retrying cannot help.
    InvalidRequest,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// The kind of a failure from the error code the service returned and the HTTP status, if any.
    /// The code wins over the status: Route 53 and RDS report throttling as a 400 with a code.
    pub fn classify(code: Option<&str>, http_status: Option<u16>) -> ErrorKind {
        if let Some(code) = code {
            let is = |codes: &[&str]| codes.contains(&code);
            if is(THROTTLING_CODES) {
                return ErrorKind::Throttled;
            }
            if is(TRANSIENT_CODES) {
                return ErrorKind::Transient;
            }
            if is(ACCESS_DENIED_CODES) {
                return ErrorKind::AccessDenied;
            }
            if is(NOT_FOUND_CODES) {
                return ErrorKind::NotFound;
            }
            if is(INVALID_STATE_CODES) {
                return ErrorKind::InvalidState;
            }
            if is(INVALID_REQUEST_CODES) {
                return ErrorKind::InvalidRequest;
            }
        }
        match http_status {
            Some(429) => ErrorKind::Throttled,
            Some(s) if (500..=599).contains(&s) => ErrorKind::Transient,
            Some(401) | Some(403) => ErrorKind::AccessDenied,
            _ => ErrorKind::Other,
        }
    }

    /// The request certainly was not processed: a change it carried did not happen, and
    /// sending it again cannot do anything twice. Anything else (a 5xx, a timeout, a reset
    /// connection, an unknown failure) may have been processed: the call is in doubt.
    pub fn proves_not_processed(self) -> bool {
        matches!(
            self,
            ErrorKind::Throttled
                | ErrorKind::InvalidRequest
                | ErrorKind::AccessDenied
                | ErrorKind::NotFound
        )
    }

    /// Whether a read-only call failing this way is worth retrying at once (with backoff).
    pub fn retry_read(self) -> bool {
        matches!(self, ErrorKind::Throttled | ErrorKind::Transient)
    }

    /// Whether a mutating call failing this way may be sent again at once: only when it was
    /// refused before being processed (throttled). A 5xx may have been processed; the step
    /// observes the world again before deciding.
    pub fn retry_mutation(self) -> bool {
        self == ErrorKind::Throttled
    }

    /// Whether a step that failed this way is worth another attempt (observe again, decide
    /// again): the world may change (throttling passes, a busy resource frees up).
    pub fn retry_step(self) -> bool {
        matches!(
            self,
            ErrorKind::Throttled | ErrorKind::Transient | ErrorKind::InvalidState
        )
    }

    pub fn hint(self) -> &'static str {
        match self {
            ErrorKind::Throttled => "the API rate limit was hit; the call is retried with backoff, lower concurrency if it persists",
            ErrorKind::Transient => "a transient AWS or network error (reads were already retried with backoff); run the command again: runs observe before acting, so nothing is done twice",
            ErrorKind::AccessDenied => "check the credentials and IAM permissions of the environment's profile (aws sts get-caller-identity)",
            ErrorKind::NotFound => "check the resource name in the environment file under config/",
            ErrorKind::InvalidState => "the resource is busy (another failover or modification?); check its status in the console, then run again",
            ErrorKind::InvalidRequest => "the request was rejected as invalid; check the runbook and environment values",
            ErrorKind::Other => "see the message above; the run can be started again once fixed",
        }
    }
}

/// A classified failure of one call to a peer, naming the call and the resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{operation} on {resource} failed ({kind:?}{code}): {message}", code = self.code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
pub struct CloudError {
    pub kind: ErrorKind,
    pub operation: String,
    pub resource: String,
    pub code: Option<String>,
    pub message: String,
}

impl CloudError {
    pub fn new(
        kind: ErrorKind,
        operation: impl Into<String>,
        resource: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            operation: operation.into(),
            resource: resource.into(),
            code: None,
            message: message.into(),
        }
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }
}
