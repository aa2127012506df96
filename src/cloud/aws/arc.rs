//! ARC zonal shift adapter: [`AwsZonalShifts`] implements the `ZonalShifts` port with
//! `aws-sdk-arczonalshift` (restJson).
//!
//! - GetManagedResource: a resource ARC does not know answers `ResourceNotFoundException`
//!   (`NotFound`: the step reports it as not registered).
//! - ListZonalShifts of one resource, every status, in pages of [`ARC_PAGE_SIZE`] following
//!   `nextToken`.
//! - StartZonalShift: `expiresIn` as ARC spells it (`90m`, `2h`, `3d`).
//! - CancelZonalShift of a shift that is no longer active answers `ConflictException` with the
//!   reason `ZonalShiftStatusNotActive`: that is `Ok(None)` (it expired or was canceled), not
//!   a failure. Any other conflict (a shift already active on the resource) is `InvalidState`.
//!
//! Every request goes through the limiter's ARC bucket.

use super::error::cloud_error;
use crate::call::arc_expires_in;
use crate::cloud::model::ARC_PAGE_SIZE;
use crate::cloud::rate::{Api, Class, Quotas, RateLimiter};
use crate::cloud::{CloudError, ManagedResource, ZonalShift, ZonalShiftStatus, ZonalShifts};
use async_trait::async_trait;
use aws_sdk_arczonalshift::operation::cancel_zonal_shift::CancelZonalShiftError;
use aws_sdk_arczonalshift::types as arc;
use aws_sdk_arczonalshift::Client;
use aws_smithy_types::DateTime;
use std::sync::Arc;
use std::time::Duration;

/// Pages of ListZonalShifts followed before giving up on a peer that never stops paging.
const MAX_PAGES: usize = 1_000;

/// The `ZonalShifts` port backed by an ARC zonal shift client.
#[derive(Clone, Debug)]
pub struct AwsZonalShifts {
    client: Client,
    limiter: Arc<RateLimiter>,
}

impl AwsZonalShifts {
    /// Wraps an existing client (e.g. one built by `aws-smithy-mocks` in tests), paced by a
    /// limiter of the default quotas on the wall clock.
    pub fn from_client(client: Client) -> Self {
        let limiter = RateLimiter::new(Quotas::default(), Arc::new(crate::clock::SystemClock));
        Self::with_limiter(client, Arc::new(limiter))
    }

    pub fn with_limiter(client: Client, limiter: Arc<RateLimiter>) -> Self {
        Self { client, limiter }
    }
}

fn ms(t: &DateTime) -> i64 {
    t.to_millis().unwrap_or(0)
}

fn status(s: &arc::ZonalShiftStatus) -> ZonalShiftStatus {
    match s {
        arc::ZonalShiftStatus::Expired => ZonalShiftStatus::Expired,
        arc::ZonalShiftStatus::Canceled => ZonalShiftStatus::Canceled,
        _ => ZonalShiftStatus::Active,
    }
}

/// A shift as the four operations report it (each its own SDK type, the same fields).
struct Fields<'a> {
    id: &'a str,
    resource: &'a str,
    away_from: &'a str,
    status: ZonalShiftStatus,
    start: &'a DateTime,
    expiry: &'a DateTime,
    comment: &'a str,
}

impl Fields<'_> {
    fn shift(self) -> ZonalShift {
        ZonalShift {
            id: self.id.to_string(),
            resource: self.resource.to_string(),
            away_from: self.away_from.to_string(),
            status: self.status,
            start_ms: ms(self.start),
            expiry_ms: ms(self.expiry),
            comment: self.comment.to_string(),
        }
    }
}

#[async_trait]
impl ZonalShifts for AwsZonalShifts {
    async fn get_managed_resource(&self, arn: &str) -> Result<ManagedResource, CloudError> {
        let out = self
            .limiter
            .call(Api::Arc, Class::Read, || async {
                self.client
                    .get_managed_resource()
                    .resource_identifier(arn)
                    .send()
                    .await
                    .map_err(|e| cloud_error("GetManagedResource", arn, &e))
            })
            .await?;
        let shifts = out
            .zonal_shifts()
            .iter()
            .map(|s| {
                Fields {
                    id: s.zonal_shift_id(),
                    resource: s.resource_identifier(),
                    away_from: s.away_from(),
                    // GetManagedResource lists the shifts in effect.
                    status: ZonalShiftStatus::Active,
                    start: s.start_time(),
                    expiry: s.expiry_time(),
                    comment: s.comment(),
                }
                .shift()
            })
            .collect();
        Ok(ManagedResource {
            arn: out.arn().unwrap_or(arn).to_string(),
            autoshift_enabled: out.zonal_autoshift_status()
                == Some(&arc::ZonalAutoshiftStatus::Enabled),
            autoshifts_away_from: out
                .autoshifts()
                .iter()
                .map(|a| a.away_from().to_string())
                .collect(),
            shifts,
        })
    }

    async fn list_zonal_shifts(&self, arn: &str) -> Result<Vec<ZonalShift>, CloudError> {
        let mut out = vec![];
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .limiter
                .call(Api::Arc, Class::Read, || async {
                    self.client
                        .list_zonal_shifts()
                        .resource_identifier(arn)
                        .max_results(ARC_PAGE_SIZE as i32)
                        .set_next_token(token.clone())
                        .send()
                        .await
                        .map_err(|e| cloud_error("ListZonalShifts", arn, &e))
                })
                .await?;
            out.extend(page.items().iter().map(|s| {
                Fields {
                    id: s.zonal_shift_id(),
                    resource: s.resource_identifier(),
                    away_from: s.away_from(),
                    status: status(s.status()),
                    start: s.start_time(),
                    expiry: s.expiry_time(),
                    comment: s.comment(),
                }
                .shift()
            }));
            match page.next_token() {
                Some(t) if !t.is_empty() && token.as_deref() != Some(t) => {
                    token = Some(t.to_string())
                }
                _ => return Ok(out),
            }
        }
        Err(CloudError::new(
            crate::cloud::ErrorKind::Other,
            "ListZonalShifts",
            arn,
            format!("still paging after {MAX_PAGES} pages"),
        ))
    }

    async fn start_zonal_shift(
        &self,
        arn: &str,
        away_from: &str,
        expires_in: Duration,
        comment: &str,
    ) -> Result<ZonalShift, CloudError> {
        let s = self
            .limiter
            .call(Api::Arc, Class::Mutate, || async {
                self.client
                    .start_zonal_shift()
                    .resource_identifier(arn)
                    .away_from(away_from)
                    .expires_in(arc_expires_in(expires_in))
                    .comment(comment)
                    .send()
                    .await
                    .map_err(|e| cloud_error("StartZonalShift", arn, &e))
            })
            .await?;
        Ok(Fields {
            id: s.zonal_shift_id(),
            resource: s.resource_identifier(),
            away_from: s.away_from(),
            status: status(s.status()),
            start: s.start_time(),
            expiry: s.expiry_time(),
            comment: s.comment(),
        }
        .shift())
    }

    async fn cancel_zonal_shift(&self, id: &str) -> Result<Option<ZonalShift>, CloudError> {
        let r = self
            .limiter
            .call(Api::Arc, Class::Mutate, || async {
                match self
                    .client
                    .cancel_zonal_shift()
                    .zonal_shift_id(id)
                    .send()
                    .await
                {
                    Ok(s) => Ok(Some(s)),
                    Err(e) if not_active(e.as_service_error()) => Ok(None),
                    Err(e) => Err(cloud_error("CancelZonalShift", id, &e)),
                }
            })
            .await?;
        Ok(r.map(|s| {
            Fields {
                id: s.zonal_shift_id(),
                resource: s.resource_identifier(),
                away_from: s.away_from(),
                status: status(s.status()),
                start: s.start_time(),
                expiry: s.expiry_time(),
                comment: s.comment(),
            }
            .shift()
        }))
    }
}

/// The shift is not active any more (expired or canceled): nothing to cancel.
fn not_active(e: Option<&CancelZonalShiftError>) -> bool {
    matches!(
        e,
        Some(CancelZonalShiftError::ConflictException(c))
            if c.reason() == &arc::ConflictExceptionReason::ZonalShiftStatusNotActive
    )
}
