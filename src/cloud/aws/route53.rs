//! Route 53 adapter: [`AwsDns`] implements the `Dns` port with `aws-sdk-route53`.
//!
//! - Hosted zones are found by id (`GetHostedZone`) or by exact name (`ListHostedZonesByName`).
//! - Record sets are listed in pages of [`PAGE_SIZE`], following `NextRecordName`,
//!   `NextRecordType` and `NextRecordIdentifier`. A peer that hands back the page it was asked
//!   for again (moto ignores `StartRecordIdentifier`) is stopped with an error instead of being
//!   paged forever, and a record set seen twice is kept once.
//! - Ids are reported bare: `/hostedzone/` and `/change/` prefixes are stripped, on input too.
//! - Names are reported as [`normalize_dns_name`] spells them (lower case, trailing dot, `*`).

use super::error::cloud_error;
use crate::cloud::rate::{Api, Class, Quotas, RateLimiter};
use crate::cloud::{
    normalize_dns_name, AliasTarget, ChangeAction, ChangeInfo, ChangeStatus, CloudError, Dns,
    ErrorKind, FailoverRole, HostedZone, RecordChange, RecordSet, Routing,
};
use async_trait::async_trait;
use aws_sdk_route53::types as r53;
use aws_sdk_route53::types::RrType;
use aws_sdk_route53::Client;
use std::collections::HashSet;
use std::sync::Arc;

/// Record sets asked for per ListResourceRecordSets page (the Route 53 maximum).
pub const PAGE_SIZE: i32 = 300;
/// Pages followed before giving up on a peer that never stops paging.
pub const MAX_PAGES: usize = 10_000;
/// Hosted zones asked for per ListHostedZonesByName page.
const ZONE_PAGE_SIZE: i32 = 100;
/// ListHostedZonesByName pages followed while they still hold zones of the wanted name.
const MAX_ZONE_PAGES: usize = 100;

/// The `Dns` port backed by a Route 53 client.
#[derive(Clone, Debug)]
pub struct AwsDns {
    client: Client,
    /// Every request waits for its token (and a change for its hosted zone's turn) here.
    limiter: Arc<RateLimiter>,
}

impl AwsDns {
    /// Wraps an existing client (e.g. one built by `aws-smithy-mocks` in tests); its requests
    /// are paced by a limiter of AWS's default quotas on the wall clock.
    pub fn from_client(client: Client) -> Self {
        let limiter = RateLimiter::new(Quotas::default(), Arc::new(crate::clock::SystemClock));
        Self::with_limiter(client, Arc::new(limiter))
    }

    /// Wraps a client whose requests go through `limiter` (shared with the RDS adapter).
    pub fn with_limiter(client: Client, limiter: Arc<RateLimiter>) -> Self {
        Self { client, limiter }
    }
}

pub use crate::cloud::{bare_zone_id, looks_like_zone_id};

/// `C123` from `C123`, `/change/C123` or `change/C123`.
pub fn bare_change_id(id: &str) -> &str {
    let id = id.trim();
    id.strip_prefix("/change/")
        .or_else(|| id.strip_prefix("change/"))
        .unwrap_or(id)
}

pub(super) fn hosted_zone(z: &r53::HostedZone) -> HostedZone {
    HostedZone {
        id: bare_zone_id(z.id()).to_string(),
        name: normalize_dns_name(z.name()),
    }
}

fn record_set(r: &r53::ResourceRecordSet) -> RecordSet {
    RecordSet {
        name: normalize_dns_name(r.name()),
        rtype: r.r#type().as_str().to_string(),
        ttl: r.ttl(),
        set_identifier: r.set_identifier().map(str::to_string),
        weight: r.weight(),
        values: r
            .resource_records()
            .iter()
            .map(|v| v.value().to_string())
            .collect(),
        alias: r.alias_target().map(|a| AliasTarget {
            hosted_zone_id: bare_zone_id(a.hosted_zone_id()).to_string(),
            dns_name: a.dns_name().to_string(),
            evaluate_target_health: a.evaluate_target_health(),
        }),
        health_check_id: r.health_check_id().map(str::to_string),
        routing: routing(r),
    }
}

/// The record set's routing policy besides simple and weighted, as the project names it.
fn routing(r: &r53::ResourceRecordSet) -> Option<Routing> {
    if let Some(f) = r.failover() {
        return Some(match f {
            r53::ResourceRecordSetFailover::Primary => Routing::Failover {
                role: FailoverRole::Primary,
            },
            r53::ResourceRecordSetFailover::Secondary => Routing::Failover {
                role: FailoverRole::Secondary,
            },
            other => Routing::Unsupported {
                name: format!("failover {}", other.as_str()),
            },
        });
    }
    if let Some(g) = r.geo_location() {
        return Some(Routing::Geolocation {
            continent: g.continent_code().map(str::to_string),
            country: g.country_code().map(str::to_string),
            subdivision: g.subdivision_code().map(str::to_string),
        });
    }
    if let Some(region) = r.region() {
        return Some(Routing::Latency {
            region: region.as_str().to_string(),
        });
    }
    if r.multi_value_answer() == Some(true) {
        return Some(Routing::Multivalue);
    }
    if r.geo_proximity_location().is_some() {
        return Some(Routing::Unsupported {
            name: "geoproximity".into(),
        });
    }
    if r.cidr_routing_config().is_some() {
        return Some(Routing::Unsupported {
            name: "cidr".into(),
        });
    }
    None
}

/// The SDK's fields for a routing policy: Failover, Region, GeoLocation, MultiValueAnswer.
/// A policy this tool only names cannot be written back.
fn with_routing(
    b: r53::builders::ResourceRecordSetBuilder,
    routing: Option<&Routing>,
) -> Result<r53::builders::ResourceRecordSetBuilder, String> {
    Ok(match routing {
        None => b,
        Some(Routing::Failover { role }) => b.failover(match role {
            FailoverRole::Primary => r53::ResourceRecordSetFailover::Primary,
            FailoverRole::Secondary => r53::ResourceRecordSetFailover::Secondary,
        }),
        Some(Routing::Latency { region }) => {
            b.region(r53::ResourceRecordSetRegion::from(region.as_str()))
        }
        Some(Routing::Geolocation {
            continent,
            country,
            subdivision,
        }) => b.geo_location(
            r53::GeoLocation::builder()
                .set_continent_code(continent.clone())
                .set_country_code(country.clone())
                .set_subdivision_code(subdivision.clone())
                .build(),
        ),
        Some(Routing::Multivalue) => b.multi_value_answer(true),
        Some(Routing::Unsupported { name }) => {
            return Err(format!(
                "{name} routing is not written by this tool (it would lose the policy)"
            ))
        }
    })
}

fn resource_record_set(r: &RecordSet) -> Result<r53::ResourceRecordSet, String> {
    let records = if r.values.is_empty() {
        None
    } else {
        Some(
            r.values
                .iter()
                .map(|v| r53::ResourceRecord::builder().value(v).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?,
        )
    };
    let alias = match &r.alias {
        None => None,
        Some(a) => Some(
            r53::AliasTarget::builder()
                .hosted_zone_id(bare_zone_id(&a.hosted_zone_id))
                .dns_name(&a.dns_name)
                .evaluate_target_health(a.evaluate_target_health)
                .build()
                .map_err(|e| e.to_string())?,
        ),
    };
    let b = r53::ResourceRecordSet::builder()
        .name(&r.name)
        .r#type(RrType::from(r.rtype.as_str()))
        .set_ttl(r.ttl)
        .set_set_identifier(r.set_identifier.clone())
        .set_weight(r.weight)
        .set_resource_records(records)
        .set_alias_target(alias)
        .set_health_check_id(r.health_check_id.clone());
    with_routing(b, r.routing.as_ref())?
        .build()
        .map_err(|e| e.to_string())
}

fn change(c: &RecordChange) -> Result<r53::Change, String> {
    let action = match c.action {
        ChangeAction::Create => r53::ChangeAction::Create,
        ChangeAction::Upsert => r53::ChangeAction::Upsert,
        ChangeAction::Delete => r53::ChangeAction::Delete,
    };
    r53::Change::builder()
        .action(action)
        .resource_record_set(resource_record_set(&c.record)?)
        .build()
        .map_err(|e| e.to_string())
}

fn change_info(
    operation: &str,
    resource: &str,
    info: Option<&r53::ChangeInfo>,
) -> Result<ChangeInfo, CloudError> {
    let info = info.ok_or_else(|| {
        CloudError::new(
            ErrorKind::Other,
            operation,
            resource,
            "the response has no ChangeInfo",
        )
    })?;
    let status = match info.status() {
        r53::ChangeStatus::Pending => ChangeStatus::Pending,
        r53::ChangeStatus::Insync => ChangeStatus::Insync,
        other => {
            return Err(CloudError::new(
                ErrorKind::Other,
                operation,
                resource,
                format!("unknown change status {:?}", other.as_str()),
            ))
        }
    };
    Ok(ChangeInfo {
        id: bare_change_id(info.id()).to_string(),
        status,
    })
}

/// Where a ListResourceRecordSets page starts: name, type and set identifier.
type StartRecord = (String, RrType, Option<String>);

#[async_trait]
impl Dns for AwsDns {
    async fn find_hosted_zone(&self, id_or_name: &str) -> Result<HostedZone, CloudError> {
        if looks_like_zone_id(id_or_name) {
            const OP: &str = "GetHostedZone";
            let id = bare_zone_id(id_or_name);
            let req = self.client.get_hosted_zone().id(id);
            let out = self
                .limiter
                .call(Api::Route53, Class::Read, || async {
                    req.send().await.map_err(|e| {
                        let mut err = cloud_error(OP, id, &e);
                        if err.kind == ErrorKind::NotFound {
                            err.message =
                                format!("no hosted zone has the id {id} ({})", err.message);
                        }
                        err
                    })
                })
                .await?;
            let zone = out.hosted_zone().ok_or_else(|| {
                CloudError::new(ErrorKind::Other, OP, id, "the response has no HostedZone")
            })?;
            return Ok(hosted_zone(zone));
        }

        const OP: &str = "ListHostedZonesByName";
        let name = normalize_dns_name(id_or_name);
        let mut matches = Vec::new();
        let mut start: (String, Option<String>) = (name.clone(), None);
        for _ in 0..MAX_ZONE_PAGES {
            let req = self
                .client
                .list_hosted_zones_by_name()
                .dns_name(&start.0)
                .set_hosted_zone_id(start.1.clone())
                .max_items(ZONE_PAGE_SIZE);
            let out = self
                .limiter
                .call(Api::Route53, Class::Read, || async {
                    req.send().await.map_err(|e| cloud_error(OP, &name, &e))
                })
                .await?;
            matches.extend(
                out.hosted_zones()
                    .iter()
                    .map(hosted_zone)
                    .filter(|z| z.name == name),
            );
            // Zones come sorted by name from DNSName on: a next page can only hold more zones
            // of this name if it starts with this name.
            let next = match (
                out.is_truncated(),
                out.next_dns_name(),
                out.next_hosted_zone_id(),
            ) {
                (true, Some(n), id) if normalize_dns_name(n) == name => {
                    (n.to_string(), id.map(|i| bare_zone_id(i).to_string()))
                }
                _ => break,
            };
            if next == start {
                break;
            }
            start = next;
        }
        let mut seen = HashSet::new();
        matches.retain(|z| seen.insert(z.id.clone()));
        match matches.len() {
            1 => Ok(matches.remove(0)),
            0 => Err(CloudError::new(
                ErrorKind::NotFound,
                OP,
                &name,
                format!("no hosted zone is named {name}"),
            )),
            _ => Err(CloudError::new(
                ErrorKind::InvalidRequest,
                OP,
                &name,
                format!(
                    "{} hosted zones are named {name} ({}), e.g. a public and a private one; \
                     name the zone by its id instead",
                    matches.len(),
                    matches
                        .iter()
                        .map(|z| z.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    async fn list_record_sets(&self, zone_id: &str) -> Result<Vec<RecordSet>, CloudError> {
        const OP: &str = "ListResourceRecordSets";
        let zone = bare_zone_id(zone_id);
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut start: Option<StartRecord> = None;
        for _ in 0..MAX_PAGES {
            let mut req = self
                .client
                .list_resource_record_sets()
                .hosted_zone_id(zone)
                .max_items(PAGE_SIZE);
            if let Some((name, rtype, identifier)) = &start {
                req = req
                    .start_record_name(name)
                    .start_record_type(rtype.clone())
                    .set_start_record_identifier(identifier.clone());
            }
            let page = self
                .limiter
                .call(Api::Route53, Class::Read, || async {
                    req.send().await.map_err(|e| cloud_error(OP, zone, &e))
                })
                .await?;
            for r in page.resource_record_sets().iter().map(record_set) {
                if seen.insert(r.key()) {
                    out.push(r);
                }
            }
            if !page.is_truncated() {
                return Ok(out);
            }
            let next: StartRecord = match (page.next_record_name(), page.next_record_type()) {
                (Some(name), Some(rtype)) => (
                    name.to_string(),
                    rtype.clone(),
                    page.next_record_identifier().map(str::to_string),
                ),
                _ => {
                    return Err(CloudError::new(
                        ErrorKind::Other,
                        OP,
                        zone,
                        "a truncated page did not say where the next one starts",
                    ))
                }
            };
            if start.as_ref() == Some(&next) {
                return Err(CloudError::new(
                    ErrorKind::Other,
                    OP,
                    zone,
                    format!(
                        "the peer returned the same page twice (next record {} {}{}); it may \
                         ignore StartRecordIdentifier; stopped paging",
                        next.0,
                        next.1.as_str(),
                        next.2
                            .as_deref()
                            .map(|i| format!(" [{i}]"))
                            .unwrap_or_default()
                    ),
                ));
            }
            start = Some(next);
        }
        Err(CloudError::new(
            ErrorKind::Other,
            OP,
            zone,
            format!("more than {MAX_PAGES} pages; stopped paging"),
        ))
    }

    async fn change_record_sets(
        &self,
        zone_id: &str,
        comment: &str,
        changes: &[RecordChange],
    ) -> Result<ChangeInfo, CloudError> {
        const OP: &str = "ChangeResourceRecordSets";
        let zone = bare_zone_id(zone_id);
        if changes.is_empty() {
            return Err(CloudError::new(
                ErrorKind::InvalidRequest,
                OP,
                zone,
                "no changes to send",
            ));
        }
        let invalid = |msg: String| CloudError::new(ErrorKind::InvalidRequest, OP, zone, msg);
        let changes = changes
            .iter()
            .map(|c| {
                change(c).map_err(|e| invalid(format!("{} {}: {e}", c.action, c.record.key())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let comment = Some(comment.trim())
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        let batch = r53::ChangeBatch::builder()
            .set_changes(Some(changes))
            .set_comment(comment)
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        let req = self
            .client
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(batch);
        // One change at a time per hosted zone, spaced by its prior-request window.
        let out = self
            .limiter
            .change_zone(zone, || async {
                req.send().await.map_err(|e| cloud_error(OP, zone, &e))
            })
            .await?;
        change_info(OP, zone, out.change_info())
    }

    async fn get_change(&self, change_id: &str) -> Result<ChangeInfo, CloudError> {
        const OP: &str = "GetChange";
        let id = bare_change_id(change_id);
        let req = self.client.get_change().id(id);
        let out = self
            .limiter
            .call(Api::Route53, Class::Read, || async {
                req.send().await.map_err(|e| cloud_error(OP, id, &e))
            })
            .await?;
        change_info(OP, id, out.change_info())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stripped_and_recognised() {
        assert_eq!(bare_zone_id("/hostedzone/Z123"), "Z123");
        assert_eq!(bare_zone_id("hostedzone/Z123"), "Z123");
        assert_eq!(bare_zone_id("Z123"), "Z123");
        assert_eq!(bare_change_id("/change/C9"), "C9");
        assert_eq!(bare_change_id("C9"), "C9");
        assert!(looks_like_zone_id("Z1D633PJN98FT9"));
        assert!(looks_like_zone_id("/hostedzone/Z1D633PJN98FT9"));
        assert!(looks_like_zone_id("4XK7MB0Q2V9PLNA3EJ1T6Z"));
        assert!(!looks_like_zone_id("example.com."));
        assert!(!looks_like_zone_id("example.com"));
        assert!(!looks_like_zone_id("Zone.example."));
        assert!(!looks_like_zone_id("internal"));
        assert!(!looks_like_zone_id(""));
    }

    #[test]
    fn record_sets_round_trip_through_the_sdk_shape() {
        let weighted = RecordSet {
            name: "api.example.com.".into(),
            rtype: "CNAME".into(),
            ttl: Some(60),
            set_identifier: Some("blue".into()),
            weight: Some(10),
            values: vec!["blue.example.com".into()],
            alias: None,
            health_check_id: None,
            routing: None,
        };
        let alias = RecordSet {
            name: "www.example.com.".into(),
            rtype: "A".into(),
            ttl: None,
            set_identifier: None,
            weight: None,
            values: vec![],
            alias: Some(AliasTarget {
                hosted_zone_id: "Z35SXDOTRQ7X7K".into(),
                dns_name: "lb-1.us-west-2.elb.amazonaws.com.".into(),
                evaluate_target_health: true,
            }),
            health_check_id: Some("hc-1234".into()),
            routing: None,
        };
        let policy = |id: &str, routing: Routing| RecordSet {
            set_identifier: Some(id.into()),
            weight: None,
            health_check_id: Some(format!("hc-{id}")),
            routing: Some(routing),
            ..weighted.clone()
        };
        let primary = policy(
            "use1",
            Routing::Failover {
                role: FailoverRole::Primary,
            },
        );
        let secondary = policy(
            "usw2",
            Routing::Failover {
                role: FailoverRole::Secondary,
            },
        );
        let latency = policy(
            "lat",
            Routing::Latency {
                region: "us-west-2".into(),
            },
        );
        let geo = policy(
            "geo",
            Routing::Geolocation {
                continent: None,
                country: Some("US".into()),
                subdivision: Some("CA".into()),
            },
        );
        let multi = policy("mv", Routing::Multivalue);
        for r in [weighted, alias, primary, secondary, latency, geo, multi] {
            let sdk = resource_record_set(&r).unwrap();
            assert_eq!(record_set(&sdk), r);
        }
    }

    #[test]
    fn a_policy_only_named_is_never_written() {
        let r = RecordSet {
            name: "api.example.com.".into(),
            rtype: "A".into(),
            set_identifier: Some("x".into()),
            values: vec!["10.0.0.1".into()],
            routing: Some(Routing::Unsupported {
                name: "geoproximity".into(),
            }),
            ..Default::default()
        };
        let err = resource_record_set(&r).unwrap_err();
        assert!(err.contains("geoproximity routing is not written"), "{err}");
    }

    #[test]
    fn unknown_change_status_is_an_error() {
        let info = r53::ChangeInfo::builder()
            .id("/change/C1")
            .status(r53::ChangeStatus::from("WEIRD"))
            .submitted_at(aws_smithy_types::DateTime::from_secs(0))
            .build()
            .unwrap();
        let err = change_info("GetChange", "C1", Some(&info)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Other);
        let info = r53::ChangeInfo::builder()
            .id("/change/C1")
            .status(r53::ChangeStatus::Pending)
            .submitted_at(aws_smithy_types::DateTime::from_secs(0))
            .build()
            .unwrap();
        assert_eq!(
            change_info("GetChange", "C1", Some(&info)).unwrap(),
            ChangeInfo {
                id: "C1".into(),
                status: ChangeStatus::Pending
            }
        );
    }
}
