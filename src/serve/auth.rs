//! Who calls: the bearer token of a request, looked up by its SHA-256 among the configured
//! tokens. The person it names is the initiator or approver the journal records; a request
//! cannot name anyone else. Checked before the body is read, so a request without the right
//! token changes nothing and starts nothing.

use super::config::Role;
use super::error::ApiError;
use super::service::Service;
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use std::sync::Arc;

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub name: String,
    pub roles: Vec<Role>,
}

impl Caller {
    /// Every role may read; `operator` and `approver` must be granted.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if role == Role::Viewer || self.roles.contains(&role) {
            return Ok(());
        }
        let has: Vec<&str> = self.roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::forbidden(format!(
            "error: {} may not do this: it needs the `{}` role, and the token has {}\n  hint: ask whoever runs the service to add `{}` to this token's roles in its serve.toml",
            self.name,
            role.as_str(),
            if has.is_empty() { "none".to_string() } else { has.join(", ") },
            role.as_str()
        )))
    }
}

impl FromRequestParts<Arc<Service>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        service: &Arc<Service>,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "error: this request needs a token: `Authorization: Bearer TOKEN`\n  hint: tokens are listed, hashed, in the service's serve.toml (`failover token new`)",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Err(ApiError::unauthorized(
                "error: the Authorization header must be `Bearer TOKEN`",
            ));
        };
        match service.config.caller(token) {
            Some(t) => Ok(Caller {
                name: t.name.clone(),
                roles: t.roles.clone(),
            }),
            None => Err(ApiError::unauthorized(
                "error: this token is not known to the service\n  hint: check the token; its SHA-256 (`failover token hash`) must be listed in the service's serve.toml",
            )),
        }
    }
}
