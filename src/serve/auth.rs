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

/// The caller of a read-only event stream: the `Authorization` header, or else the token in
/// the `access_token` query parameter, because a browser's `EventSource` cannot send headers.
/// Only the two event streams accept it (they change nothing); every other route needs the
/// header, so a token in a URL can at most read.
#[derive(Clone, Debug)]
pub struct StreamCaller(pub Caller);

impl FromRequestParts<Arc<Service>> for StreamCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        service: &Arc<Service>,
    ) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return Caller::from_request_parts(parts, service)
                .await
                .map(StreamCaller);
        }
        let token = parts
            .uri
            .query()
            .unwrap_or_default()
            .split('&')
            .find_map(|kv| kv.strip_prefix("access_token="));
        match token {
            Some(t) => caller_of(service, &percent_decode(t)).map(StreamCaller),
            None => Caller::from_request_parts(parts, service)
                .await
                .map(StreamCaller),
        }
    }
}

/// `%XX` sequences decoded (tokens are URL-safe; a client may still encode them).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn caller_of(service: &Service, token: &str) -> Result<Caller, ApiError> {
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
        caller_of(service, token)
    }
}
