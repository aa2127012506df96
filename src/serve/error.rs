//! How a failure becomes an HTTP answer: the status from the failure's class, and a JSON body
//! with the same message the CLI prints (`message`), its diagnostics (file:line:col) when the
//! input was bad, and the lease holder when another run holds a resource.
//!
//! | failure | status |
//! |---|---|
//! | no token, unknown token | 401 (with `WWW-Authenticate: Bearer`) |
//! | a role the token lacks | 403 |
//! | bad input: JSON, runbook, environment, parameters | 400 |
//! | unknown run, runbook, environment, path | 404 |
//! | refused: a lease held by another run, a run that ended, approving one's own run | 409 |
//! | AWS (or the local peer) could not be read | 502 |
//! | the journal, the service itself | 500 |
//! | the service is shutting down | 503 |

use crate::app::AppError;
use crate::diag::{Diagnostic, Diagnostics};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// A failed request: its status and JSON body.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({"error": kind, "message": message.into()}),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", message)
    }

    /// Bad input, as diagnostics (the same lines the CLI prints).
    pub fn invalid(d: Diagnostics) -> Self {
        AppError::Invalid(d).into()
    }

    /// One diagnostic about the request itself (`request body:LINE:COL`).
    pub fn bad_request(d: Diagnostic) -> Self {
        Self::invalid(d.into())
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let message = e.to_string();
        let (status, kind) = match &e {
            AppError::Invalid(_) | AppError::Input(_) => (StatusCode::BAD_REQUEST, "invalid"),
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AppError::Busy { .. } => (StatusCode::CONFLICT, "leased"),
            AppError::Refused(_) => (StatusCode::CONFLICT, "refused"),
            AppError::Cloud { .. } | AppError::Peer(_) => (StatusCode::BAD_GATEWAY, "cloud"),
            AppError::Journal(_) | AppError::Runtime(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let mut body = json!({"error": kind, "message": message});
        match e {
            AppError::Invalid(d) => body["diagnostics"] = json!(d.0),
            AppError::Busy { conflict, .. } => body["lease"] = json!(conflict),
            _ => {}
        }
        Self { status, body }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"failover\""),
            );
        }
        r
    }
}
