//! Create, in a *local* AWS peer (moto on loopback), every resource an environment names, so
//! runbooks can be run for real with no AWS account: `failover local-peer seed --env local`.
//!
//! Layout, derived from the environment only: cluster k of a `db_clusters` group gets one
//! instance per zone, its writer in zone k (mod the number of zones), promotion tiers 0, 1, 2...
//! in creation order; Multi-AZ instances start in the first zone; simple records point at the
//! first zone's value; weighted records get one set per zone at the configured weight.
//! Refuses to run against anything that is not a loopback endpoint.

use crate::env::{Environment, Group, RecordSpec};
use crate::types::Zone;
use aws_sdk_rds::Client as Rds;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use aws_sdk_route53::Client as R53;

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("refusing to seed environment `{0}`: its endpoint_url is not a loopback address (seeding is for a local peer such as moto, never AWS)")]
    NotLocal(String),
    #[error("{operation} {resource}: {message}")]
    Call {
        operation: &'static str,
        resource: String,
        message: String,
    },
}

fn call_err<E: std::fmt::Debug>(operation: &'static str, resource: &str, e: E) -> SeedError {
    let m = format!("{e:?}");
    SeedError::Call {
        operation,
        resource: resource.to_string(),
        message: m.chars().take(400).collect(),
    }
}

pub fn is_loopback(url: &str) -> bool {
    let rest = url
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let host = rest.split(['/', ':']).next().unwrap_or("");
    host == "localhost" || host.starts_with("127.") || rest.starts_with("[::1]")
}

/// What was created, for the terminal.
#[derive(Debug, Default, serde::Serialize)]
pub struct Seeded {
    pub clusters: Vec<String>,
    pub instances: Vec<String>,
    pub hosted_zones: Vec<(String, String)>,
    pub records: usize,
    pub alarms: usize,
}

pub async fn seed(env: &Environment) -> Result<Seeded, SeedError> {
    let Some(url) = env.aws.endpoint_url.as_deref().filter(|u| is_loopback(u)) else {
        return Err(SeedError::NotLocal(env.name.clone()));
    };
    let settings = super::config::AwsSettings {
        region: env.region.clone(),
        profile: None,
        endpoint_url: Some(url.to_string()),
        operation_timeout: std::time::Duration::from_secs(30),
    };
    let sdk = super::config::sdk_config(&settings).await;
    let rds = Rds::new(&sdk);
    let r53 = R53::new(&sdk);
    let mut out = Seeded::default();
    let mut k = 0usize;
    for g in env.groups.values() {
        match g {
            Group::DbClusters { clusters } => {
                for c in clusters {
                    seed_cluster(&rds, c.as_str(), &env.zones, k, &mut out).await?;
                    k += 1;
                }
            }
            Group::DbInstances { instances } => {
                for id in instances {
                    seed_instance(&rds, id.as_str(), &env.zones, &mut out).await?;
                }
            }
            Group::Records {
                hosted_zone,
                records,
            } => seed_records(&r53, hosted_zone, records, env, &mut out).await?,
            // The local peer (moto) has no ARC zonal shift: nothing to seed.
            Group::ZonalShiftResources { .. } => {}
            // moto implements no global cluster operation worth seeding (docs: MOTO.md).
            Group::GlobalClusters { .. } => {}
        }
    }
    // The CloudWatch alarms the environment's health probes watch, in state OK.
    if let Some(h) = &env.health {
        let cw = aws_sdk_cloudwatch::Client::new(&sdk);
        for p in &h.probes {
            if let crate::health::config::Check::CloudwatchAlarm { alarm } = &p.check {
                seed_alarm(&cw, alarm).await?;
                out.alarms += 1;
            }
        }
    }
    Ok(out)
}

/// An Aurora cluster with one instance per zone, its writer in the `k`-th zone (rotating).
async fn seed_cluster(
    rds: &Rds,
    c: &str,
    zones: &[Zone],
    k: usize,
    out: &mut Seeded,
) -> Result<(), SeedError> {
    rds.create_db_cluster()
        .db_cluster_identifier(c)
        .engine("aurora-postgresql")
        .master_username("failover")
        .master_user_password("not-a-real-password-1")
        .send()
        .await
        .map_err(|e| call_err("CreateDBCluster", c, e))?;
    out.clusters.push(c.to_string());
    // Writer first (moto makes the first member the writer).
    for i in 0..zones.len() {
        let zone = &zones[(k + i) % zones.len()];
        let id = format!("{c}-{}", zone.as_str().chars().last().unwrap_or('x'));
        rds.create_db_instance()
            .db_instance_identifier(&id)
            .db_cluster_identifier(c)
            .engine("aurora-postgresql")
            .db_instance_class("db.r6g.large")
            .availability_zone(zone.as_str())
            .promotion_tier(i as i32)
            .send()
            .await
            .map_err(|e| call_err("CreateDBInstance", &id, e))?;
        out.instances.push(id);
    }
    Ok(())
}

/// A Multi-AZ MySQL instance, its primary in the first zone.
async fn seed_instance(
    rds: &Rds,
    id: &str,
    zones: &[Zone],
    out: &mut Seeded,
) -> Result<(), SeedError> {
    rds.create_db_instance()
        .db_instance_identifier(id)
        .engine("mysql")
        .db_instance_class("db.m6g.large")
        .allocated_storage(20)
        .master_username("failover")
        .master_user_password("not-a-real-password-1")
        .multi_az(true)
        .availability_zone(zones[0].as_str())
        .send()
        .await
        .map_err(|e| call_err("CreateDBInstance", id, e))?;
    out.instances.push(id.to_string());
    Ok(())
}

/// A hosted zone with the group's records: one weighted set per zone, or one simple record
/// with the first zone's values.
async fn seed_records(
    r53: &R53,
    hosted_zone: &str,
    records: &[RecordSpec],
    env: &Environment,
    out: &mut Seeded,
) -> Result<(), SeedError> {
    let hz = r53
        .create_hosted_zone()
        .name(hosted_zone)
        .caller_reference(format!("failover-seed-{hosted_zone}-{}", seed_stamp()))
        .send()
        .await
        .map_err(|e| call_err("CreateHostedZone", hosted_zone, e))?;
    let id = hz
        .hosted_zone()
        .map(|h| h.id().trim_start_matches("/hostedzone/").to_string())
        .unwrap_or_default();
    out.hosted_zones.push((hosted_zone.to_string(), id.clone()));
    let mut changes = vec![];
    for r in records {
        for (set_id, weight, values) in record_sets(r, &env.zones, &env.regions) {
            changes.push(upsert(r, set_id, weight, values)?);
            out.records += 1;
        }
    }
    if changes.is_empty() {
        return Ok(());
    }
    let batch = ChangeBatch::builder()
        .set_changes(Some(changes))
        .build()
        .map_err(|e| call_err("ChangeBatch", hosted_zone, e))?;
    r53.change_resource_record_sets()
        .hosted_zone_id(&id)
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| call_err("ChangeResourceRecordSets", hosted_zone, e))?;
    Ok(())
}

/// (set identifier, weight, values) of the record sets a record spec stands for; a record
/// valued per region as one valued per zone, by the environment's `regions`.
fn record_sets(
    r: &RecordSpec,
    zones: &[Zone],
    regions: &[crate::types::Region],
) -> Vec<(Option<String>, Option<i64>, Vec<String>)> {
    if !r.region_values.is_empty() {
        let by_name = RecordSpec {
            values: r
                .region_values
                .iter()
                .map(|(k, v)| (Zone::new(k.as_str()), v.clone()))
                .collect(),
            region_values: Default::default(),
            ..r.clone()
        };
        let order: Vec<Zone> = regions.iter().map(|k| Zone::new(k.as_str())).collect();
        return record_sets(&by_name, &order, &[]);
    }
    if r.weighted {
        return r
            .values
            .iter()
            .map(|(z, v)| (Some(z.to_string()), Some(r.weight), v.clone()))
            .collect();
    }
    let first = zones
        .iter()
        .find_map(|z| r.values.get(z))
        .cloned()
        .unwrap_or_default();
    vec![(None, None, first)]
}

fn upsert(
    r: &RecordSpec,
    set_id: Option<String>,
    weight: Option<i64>,
    values: Vec<String>,
) -> Result<Change, SeedError> {
    let mut b = ResourceRecordSet::builder()
        .name(&r.name)
        .r#type(RrType::from(r.rtype.as_str()))
        .ttl(r.ttl);
    if let Some(s) = set_id {
        b = b.set_identifier(s);
    }
    if let Some(w) = weight {
        b = b.weight(w);
    }
    for v in values {
        b = b.resource_records(
            ResourceRecord::builder()
                .value(v)
                .build()
                .map_err(|e| call_err("ResourceRecord", &r.name, e))?,
        );
    }
    let set = b
        .build()
        .map_err(|e| call_err("ResourceRecordSet", &r.name, e))?;
    Change::builder()
        .action(ChangeAction::Upsert)
        .resource_record_set(set)
        .build()
        .map_err(|e| call_err("Change", &r.name, e))
}

/// A CloudWatch alarm on a made-up metric, set to OK.
async fn seed_alarm(cw: &aws_sdk_cloudwatch::Client, alarm: &str) -> Result<(), SeedError> {
    cw.put_metric_alarm()
        .alarm_name(alarm)
        .namespace("Failover/Local")
        .metric_name(format!("{alarm}-metric"))
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(
            aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanOrEqualToThreshold,
        )
        .send()
        .await
        .map_err(|e| call_err("PutMetricAlarm", alarm, e))?;
    cw.set_alarm_state()
        .alarm_name(alarm)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Ok)
        .state_reason("seeded by failover local-peer seed")
        .send()
        .await
        .map_err(|e| call_err("SetAlarmState", alarm, e))?;
    Ok(())
}

/// A unique-enough caller reference suffix (milliseconds since the epoch).
fn seed_stamp() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_only() {
        assert!(super::is_loopback("http://127.0.0.1:5055"));
        assert!(super::is_loopback("http://localhost:5000/"));
        assert!(!super::is_loopback("https://rds.us-west-2.amazonaws.com"));
        assert!(!super::is_loopback("http://10.0.0.5:5000"));
    }
}
