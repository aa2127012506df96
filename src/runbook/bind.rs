//! Stage two of validation: a runbook + an environment + the parameters of one run ->
//! plain, fully substituted steps with their resources resolved (`BoundStep`).
//!
//! Pure: no IO. Everything that can be known without calling AWS is checked here, so a bad
//! parameter or an unknown group fails before the first API call.

use super::ladder::bind_ladder;
use super::template;
use super::{ActionDef, OnFailure, ParamDef, ParamKind, Runbook, StepDef};
use crate::cloud::{HttpRequest, RecordSpecOut};
use crate::diag::{did_you_mean, Diagnostics};
use crate::env::{Endpoint, Environment, Group};
use crate::status::RunMode;
use crate::tomlx::Spanned;
use crate::types::{ClusterId, GlobalClusterId, InstanceId, Region, RunId, StepId, Zone};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Who runs what, for templates and the journal.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunContext {
    pub run_id: RunId,
    pub initiator: String,
    pub mode: RunMode,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BoundStep {
    pub id: StepId,
    pub description: Option<String>,
    pub after: Vec<StepId>,
    /// Result of `when` (true when absent).
    pub enabled: bool,
    pub when: Option<String>,
    pub timeout: Duration,
    pub retries: u32,
    pub on_failure: OnFailure,
    pub action: BoundAction,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SnapshotTarget {
    Cluster { id: ClusterId },
    Instance { id: InstanceId },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum BoundAction {
    FailoverCluster {
        group: String,
        clusters: Vec<ClusterId>,
        evacuate: Vec<Zone>,
        healthy: Vec<Zone>,
        wait: bool,
        /// Failback: writers whose preferred member is in this zone move back to it
        /// (`evacuate` is empty; `healthy` is the environment's zone order).
        #[serde(default)]
        return_to: Option<Zone>,
    },
    FailoverInstance {
        group: String,
        instances: Vec<InstanceId>,
        evacuate: Vec<Zone>,
        wait: bool,
        /// Failback: primaries whose standby is in this zone, earlier in the environment's
        /// order than their primary's, move back to it.
        #[serde(default)]
        return_to: Option<Zone>,
        /// The environment's zones in order of preference (for `return_to`).
        #[serde(default)]
        zones: Vec<Zone>,
    },
    Snapshot {
        targets: Vec<SnapshotTarget>,
        wait: bool,
    },
    DnsUpdate {
        group: String,
        hosted_zone: String,
        records: Vec<RecordSpecOut>,
        evacuate: Vec<Zone>,
        /// Preference order of the zones records may move to.
        healthy: Vec<Zone>,
        weights: BTreeMap<Zone, i64>,
        wait: bool,
        /// Failback: records point back at this zone (simple records whose preferred zone it
        /// is; weighted records get its weight back).
        #[serde(default)]
        return_to: Option<Zone>,
        /// Failover steps the records wait for, each record for the databases it depends on
        /// (`records_after`); empty: the step waits for its `after` steps only.
        records_after: Vec<StepId>,
        /// The databases the records depend on, when `records_after` is given (to observe).
        dep_clusters: Vec<ClusterId>,
        dep_instances: Vec<InstanceId>,
        /// A step that moves the records valued per region (`evacuate_region`,
        /// `return_to_region`); `None`: the records valued per zone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<DnsRegionMove>,
    },
    Http {
        request: HttpRequest,
        expect_status: Vec<u16>,
    },
    Approval {
        message: String,
        /// Who may approve (the step's list, else the environment's; empty: anyone but the
        /// initiator).
        approvers: Vec<String>,
        /// How many distinct people must approve.
        #[serde(default = "one")]
        required: u32,
    },
    Wait {
        duration: Duration,
    },
    HealthAssert {
        zones: Vec<Zone>,
        expect: String,
        rounds: Option<u32>,
    },
    TrafficShed {
        ladder: crate::traffic::BoundLadder,
        max_tier: Option<usize>,
    },
    TrafficRestore {
        ladder: crate::traffic::BoundLadder,
    },
    /// Revert the given tiers, highest priority first (used by `rollback`).
    TrafficRevert {
        ladder: crate::traffic::BoundLadder,
        tiers: Vec<String>,
    },
    /// `arc.zonal_shift`: ARC StartZonalShift away from a zone for each managed resource.
    ZonalShift {
        group: String,
        /// The managed resources' ARNs.
        resources: Vec<String>,
        /// The zone(s) given; ARC moves a resource's traffic away from one zone at a time.
        away_from: Vec<Zone>,
        /// Zone name -> Availability Zone id, from the group.
        zone_ids: BTreeMap<Zone, String>,
        #[serde(with = "crate::call::secs")]
        expires_in: Duration,
        comment: String,
    },
    /// `arc.cancel_zonal_shift` (and `rollback`): CancelZonalShift of the active shifts of the
    /// resources that match: away from `away_from` (failback), or started by `started_by`
    /// (rollback: the ids its outcomes journaled, or its run id in the comment of a shift whose
    /// answer was lost).
    CancelZonalShift {
        group: String,
        resources: Vec<String>,
        away_from: Option<Zone>,
        zone_ids: BTreeMap<Zone, String>,
        #[serde(default)]
        shift_ids: Vec<String>,
        #[serde(default)]
        started_by: Option<RunId>,
    },
    /// Put record sets back as they were before a run (used by `rollback`).
    RestoreRecords {
        hosted_zone_id: String,
        restore: Vec<RestoreRecord>,
        force: bool,
    },
    /// `rds.switchover_global` / `rds.failover_global`.
    GlobalMove(GlobalMove),
}

/// Move the writer of Aurora global databases to another region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalMove {
    pub group: String,
    pub global_clusters: Vec<GlobalClusterId>,
    /// Where the writer goes (the recovery region); `None`: the first of `regions` that is
    /// not `evacuate_region`.
    pub to_region: Option<Region>,
    /// The region the writer leaves (the failed one); `None`: wherever it is.
    pub evacuate_region: Option<Region>,
    /// The environment's regions in order of preference.
    pub regions: Vec<Region>,
    /// FailoverGlobalCluster with data loss allowed instead of a switchover.
    pub unplanned: bool,
    pub wait: bool,
    /// A switchover that has not completed in time escalates to a failover.
    pub escalate: Option<Escalation>,
}

/// What a graceful switchover does when it has not completed within `after`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    pub after: Duration,
    pub mode: EscalateMode,
    /// Who may approve the failover (`approval`): the environment's approvers.
    pub approvers: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalateMode {
    /// An approval gate says why and what is at risk; a person releases the failover.
    Approval,
    /// The failover is made at once, journaled with why.
    Auto,
}

impl GlobalMove {
    /// The region a global cluster's writer moves to: `to_region`, else the first of the
    /// environment's regions that is not evacuated. The step reads and calls that region's
    /// RDS endpoint (the recovery region's control plane, never the failed one's).
    pub fn target_region(&self) -> Option<Region> {
        self.to_region.clone().or_else(|| {
            self.regions
                .iter()
                .find(|r| Some(*r) != self.evacuate_region.as_ref())
                .cloned()
        })
    }
}

/// A `dns.update` of the records valued per region: out of `evacuate` (to `to`, else the
/// first other of `regions`), or back into `return_to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRegionMove {
    pub evacuate: Option<Region>,
    pub to: Option<Region>,
    pub return_to: Option<Region>,
    /// The environment's regions in order of preference.
    pub regions: Vec<Region>,
}

impl DnsRegionMove {
    /// The regions records leaving `evacuate` may move to, in order of preference.
    pub fn healthy(&self) -> Vec<Region> {
        match &self.to {
            Some(t) => vec![t.clone()],
            None => self
                .regions
                .iter()
                .filter(|r| Some(*r) != self.evacuate.as_ref())
                .cloned()
                .collect(),
        }
    }
}

fn one() -> u32 {
    1
}

/// One record set to restore: as it was before the run, and as the run left it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreRecord {
    pub key: crate::cloud::RecordKey,
    pub before: Option<crate::cloud::RecordSet>,
    pub set_by_run: Option<crate::cloud::RecordSet>,
}

impl BoundAction {
    pub fn name(&self) -> &'static str {
        match self {
            BoundAction::FailoverCluster { .. } => "rds.failover_cluster",
            BoundAction::FailoverInstance { .. } => "rds.failover_instance",
            BoundAction::Snapshot { .. } => "rds.snapshot",
            BoundAction::DnsUpdate { .. } => "dns.update",
            BoundAction::Http { .. } => "http",
            BoundAction::Approval { .. } => "approval",
            BoundAction::Wait { .. } => "wait",
            BoundAction::RestoreRecords { .. } => "dns.restore",
            BoundAction::ZonalShift { .. } => "arc.zonal_shift",
            BoundAction::CancelZonalShift { .. } => "arc.cancel_zonal_shift",
            BoundAction::HealthAssert { .. } => "health.assert",
            BoundAction::TrafficShed { .. } => "traffic.shed",
            BoundAction::TrafficRestore { .. } => "traffic.restore",
            BoundAction::TrafficRevert { .. } => "traffic.revert",
            BoundAction::GlobalMove(m) if m.unplanned => "rds.failover_global",
            BoundAction::GlobalMove(_) => "rds.switchover_global",
        }
    }
}

/// The checked parameter values of one run.
pub type Params = BTreeMap<String, String>;

/// Default step timeouts by action, from AWS_FACTS (with generous headroom).
pub fn default_timeout(action: &ActionDef) -> Duration {
    match action {
        ActionDef::FailoverCluster { .. } => Duration::from_secs(15 * 60),
        ActionDef::FailoverInstance { .. } => Duration::from_secs(20 * 60),
        ActionDef::Snapshot { .. } => Duration::from_secs(60 * 60),
        ActionDef::DnsUpdate { .. } => Duration::from_secs(10 * 60),
        ActionDef::Http { .. } => Duration::from_secs(60),
        ActionDef::Approval { .. } => Duration::from_secs(60 * 60),
        ActionDef::Wait { duration } => *duration + Duration::from_secs(60),
        ActionDef::TrafficShed { .. } => Duration::from_secs(30 * 60),
        ActionDef::HealthAssert { .. } => Duration::from_secs(5 * 60),
        ActionDef::TrafficRestore { .. } => Duration::from_secs(4 * 60 * 60),
        ActionDef::ZonalShift { .. } | ActionDef::CancelZonalShift { .. } => {
            Duration::from_secs(5 * 60)
        }
        // A switchover takes minutes (proportional to the replication lag), a failover about
        // one; an escalation adds its wait and, with approval, a person's time.
        ActionDef::GlobalMove { escalate_after, .. } => {
            Duration::from_secs(30 * 60) + escalate_after.unwrap_or_default() * 2
        }
    }
}

/// Check the given `-p name=value` pairs against the runbook's parameters and fill defaults.
pub fn bind_params(
    rb: &Runbook,
    env: &Environment,
    given: &[(String, String)],
) -> Result<Params, Diagnostics> {
    let mut d = Diagnostics::default();
    let mut out = Params::new();
    check_unknown_params(rb, given, &mut d);
    let zone_list = zone_list(env);
    for p in &rb.params {
        let value = given
            .iter()
            .rev()
            .find(|(k, _)| k == &p.name)
            .map(|(_, v)| v.clone())
            .or_else(|| p.default.clone());
        match value {
            Some(value) => {
                check_param_value(rb, env, p, &value, &zone_list, &mut d);
                out.insert(p.name.clone(), value);
            }
            None if p.required => missing_param(rb, env, p, &mut d),
            // An optional parameter that is not given is the empty string.
            None => {
                out.insert(p.name.clone(), String::new());
            }
        }
    }
    if d.is_empty() {
        Ok(out)
    } else {
        Err(d.sorted())
    }
}

/// The environment's zones, for hints: `us-west-2a, us-west-2b`.
fn zone_list(env: &Environment) -> String {
    env.zones
        .iter()
        .map(|z| z.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every given parameter must be one of the runbook's.
fn check_unknown_params(rb: &Runbook, given: &[(String, String)], d: &mut Diagnostics) {
    let names: Vec<&str> = rb.params.iter().map(|p| p.name.as_str()).collect();
    for (k, _) in given {
        if !names.contains(&k.as_str()) {
            let hint = match did_you_mean(k, names.iter().copied()) {
                Some(s) => format!("did you mean `-p {s}=...`?"),
                None if names.is_empty() => "this runbook takes no parameters".to_string(),
                None => format!("parameters of this runbook: {}", names.join(", ")),
            };
            d.push(rb.source.diag_file(
                format!("unknown parameter `{k}` for runbook `{}`", rb.name),
                Some(hint),
            ));
        }
    }
}

/// A required parameter was not given: say how to pass it.
fn missing_param(rb: &Runbook, env: &Environment, p: &ParamDef, d: &mut Diagnostics) {
    let example = match p.kind {
        ParamKind::Zone | ParamKind::Zones => env
            .zones
            .first()
            .map(|z| z.to_string())
            .unwrap_or_else(|| "us-west-2a".into()),
        ParamKind::Bool => "true".into(),
        ParamKind::String => "...".into(),
    };
    let what = p
        .description
        .as_deref()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    d.push(rb.source.diag(
        p.span.clone(),
        format!("missing required parameter `{}`{what}", p.name),
        Some(format!("pass -p {}={example}", p.name)),
    ));
}

/// A parameter's value must fit its type: zones of the environment, or true/false.
fn check_param_value(
    rb: &Runbook,
    env: &Environment,
    p: &ParamDef,
    value: &str,
    zone_list: &str,
    d: &mut Diagnostics,
) {
    match p.kind {
        ParamKind::Zone | ParamKind::Zones => check_zone_param(rb, env, p, value, zone_list, d),
        ParamKind::Bool => {
            if !["true", "false"].contains(&value) {
                d.push(rb.source.diag(
                    p.span.clone(),
                    format!(
                        "parameter `{}` must be true or false, got `{value}`",
                        p.name
                    ),
                    None,
                ));
            }
        }
        ParamKind::String => {}
    }
}

/// A `zone` parameter names one zone of the environment; a `zones` parameter one or more.
fn check_zone_param(
    rb: &Runbook,
    env: &Environment,
    p: &ParamDef,
    value: &str,
    zone_list: &str,
    d: &mut Diagnostics,
) {
    let src = &rb.source;
    let parts: Vec<&str> = value
        .split(',')
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() || (p.kind == ParamKind::Zone && parts.len() != 1) {
        d.push(src.diag(
            p.span.clone(),
            format!(
                "parameter `{}` must be {}, got `{value}`",
                p.name,
                if p.kind == ParamKind::Zone {
                    "one zone"
                } else {
                    "one or more zones separated by commas"
                }
            ),
            Some(format!("zones of environment `{}`: {zone_list}", env.name)),
        ));
    }
    for z in parts {
        if !env.zones.iter().any(|ez| ez.as_str() == z) {
            let hint = match did_you_mean(z, env.zones.iter().map(|z| z.as_str())) {
                Some(s) => format!(
                    "did you mean `{s}`? zones of environment `{}`: {zone_list}",
                    env.name
                ),
                None => format!("zones of environment `{}`: {zone_list}", env.name),
            };
            d.push(src.diag(
                p.span.clone(),
                format!(
                    "parameter `{}`: `{z}` is not a zone of environment `{}`",
                    p.name, env.name
                ),
                Some(hint),
            ));
        }
    }
}

/// The variables a template can use in this run.
pub fn variables(
    rb: &Runbook,
    env: &Environment,
    params: &Params,
    run: &RunContext,
) -> BTreeMap<String, String> {
    let mut v = params.clone();
    v.insert("env.name".into(), env.name.clone());
    v.insert("env.region".into(), env.region.clone());
    v.insert("run.id".into(), run.run_id.to_string());
    v.insert("run.initiator".into(), run.initiator.clone());
    v.insert("run.mode".into(), run.mode.to_string());
    v.insert("runbook.name".into(), rb.name.clone());
    v
}

/// Check a runbook against an environment (groups, endpoints) without parameters. Used by
/// `validate`, which has no parameter values.
pub fn check_against_env(rb: &Runbook, env: &Environment) -> Diagnostics {
    let mut d = Diagnostics::default();
    if let Some(x) = region_mismatch(rb, env) {
        d.push(x);
        return d;
    }
    for s in &rb.steps {
        // An optional (`when`) zonal shift step in an environment without its group: the
        // step can only run off there (bind checks it when it is on).
        if s.when.is_some() && arc_group_absent(env, &s.action) {
            continue;
        }
        check_resources(rb, env, &s.action, &s.id.value, None, &mut d);
    }
    d.sorted()
}

/// A runbook that moves writers between regions ([`Runbook::region_step`]) against an
/// environment of one region: it does not apply there. One problem, at that step, instead of
/// one per missing group.
pub fn region_mismatch(rb: &Runbook, env: &Environment) -> Option<crate::diag::Diagnostic> {
    let s = rb.region_step()?;
    if env.regions.len() >= 2 {
        return None;
    }
    Some(rb.source.diag(
        s.id.span.clone(),
        format!(
            "step `{}` ({}) moves writers between regions, and environment `{}` spans one region ({}): runbook `{}` does not apply to it",
            s.id.value,
            s.action.name(),
            env.name,
            env.region,
            rb.name
        ),
        Some("run it against an environment that lists its regions (regions = [\"us-west-2\", \"us-east-1\"]) and has a `global_clusters` group, e.g. --env prod".into()),
    ))
}

/// An `arc.*` step whose (untemplated) group the environment does not define.
fn arc_group_absent(env: &Environment, a: &ActionDef) -> bool {
    match a {
        ActionDef::ZonalShift { group, .. } | ActionDef::CancelZonalShift { group, .. } => {
            !env.groups.contains_key(&group.value)
        }
        _ => false,
    }
}

fn group_ref<'e>(
    rb: &Runbook,
    env: &'e Environment,
    g: &Spanned<String>,
    rendered: Option<&str>,
    want: &str,
    step: &str,
    d: &mut Diagnostics,
) -> Option<&'e Group> {
    let name = rendered.unwrap_or(&g.value);
    if name.contains("${") {
        return None; // templated group names are checked at bind time
    }
    let src = &rb.source;
    match env.groups.get(name) {
        None => {
            let known: Vec<&str> = env.groups.keys().map(|s| s.as_str()).collect();
            let hint = match did_you_mean(name, known.iter().copied()) {
                Some(s) => format!(
                    "did you mean `{s}`? groups of `{}`: {}",
                    env.name,
                    known.join(", ")
                ),
                None => format!(
                    "groups of environment `{}`: {}",
                    env.name,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            };
            d.push(src.diag(
                g.span.clone(),
                format!(
                    "step `{step}` uses group `{name}`, which environment `{}` does not define",
                    env.name
                ),
                Some(hint),
            ));
            None
        }
        Some(grp) if want != "any" && grp.kind_name() != want => {
            d.push(src.diag(
                g.span.clone(),
                format!("step `{step}` needs a `{want}` group, but `{name}` in environment `{}` is `{}`", env.name, grp.kind_name()),
                Some(format!("point the step at a group of kind `{want}`")),
            ));
            None
        }
        Some(grp) => Some(grp),
    }
}

/// The groups, endpoints and tiers a step names must exist in the environment, with the right
/// kind. With `vars`, templated names are checked as rendered; without, they are skipped.
fn check_resources(
    rb: &Runbook,
    env: &Environment,
    a: &ActionDef,
    step: &str,
    vars: Option<&BTreeMap<String, String>>,
    d: &mut Diagnostics,
) {
    let render = |s: &Spanned<String>| vars.and_then(|v| template::render(&s.value, v).ok());
    match a {
        ActionDef::FailoverCluster { group, .. } => {
            group_ref(
                rb,
                env,
                group,
                render(group).as_deref(),
                "db_clusters",
                step,
                d,
            );
        }
        ActionDef::FailoverInstance { group, .. } => {
            group_ref(
                rb,
                env,
                group,
                render(group).as_deref(),
                "db_instances",
                step,
                d,
            );
        }
        ActionDef::Snapshot { groups, .. } => {
            for g in groups {
                if let Some(grp) = group_ref(rb, env, g, render(g).as_deref(), "any", step, d) {
                    if matches!(grp, Group::Records { .. }) {
                        d.push(rb.source.diag(
                            g.span.clone(),
                            format!(
                                "step `{step}` snapshots group `{}`, which holds DNS records",
                                g.value
                            ),
                            Some("snapshot `db_clusters` or `db_instances` groups".into()),
                        ));
                    }
                }
            }
        }
        ActionDef::DnsUpdate { group, .. } => {
            group_ref(rb, env, group, render(group).as_deref(), "records", step, d);
        }
        ActionDef::ZonalShift { group, .. } | ActionDef::CancelZonalShift { group, .. } => {
            group_ref(
                rb,
                env,
                group,
                render(group).as_deref(),
                "zonal_shift_resources",
                step,
                d,
            );
        }
        ActionDef::GlobalMove { group, .. } => {
            group_ref(
                rb,
                env,
                group,
                render(group).as_deref(),
                "global_clusters",
                step,
                d,
            );
        }
        ActionDef::Http {
            endpoint: Some(e), ..
        } => {
            let name = render(e).unwrap_or_else(|| e.value.clone());
            check_endpoint(rb, env, e, &name, step, d);
        }
        ActionDef::TrafficShed { max_tier, .. } => {
            let max_tier = max_tier
                .as_ref()
                .map(|m| (m, render(m).unwrap_or_else(|| m.value.clone())));
            check_shed(rb, env, max_tier, step, d);
        }
        ActionDef::TrafficRestore { .. } if env.traffic.is_none() => {
            d.push(rb.source.diag(
                rb.step(step).map(|s| s.span.clone()).unwrap_or(0..0),
                format!(
                    "step `{step}` restores traffic, but environment `{}` has no [traffic] ladder",
                    env.name
                ),
                Some("define [traffic] in the environment file (docs/traffic.md)".into()),
            ));
        }
        _ => {}
    }
}

/// The endpoint of an `http` step (`name`, rendered when possible) must exist.
fn check_endpoint(
    rb: &Runbook,
    env: &Environment,
    e: &Spanned<String>,
    name: &str,
    step: &str,
    d: &mut Diagnostics,
) {
    if !name.contains("${") && !env.endpoints.contains_key(name) {
        let known: Vec<&str> = env.endpoints.keys().map(|s| s.as_str()).collect();
        let hint = match did_you_mean(name, known.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!(
                "endpoints of environment `{}`: {}",
                env.name,
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ),
        };
        d.push(rb.source.diag(
            e.span.clone(),
            format!(
                "step `{step}` uses endpoint `{name}`, which environment `{}` does not define",
                env.name
            ),
            Some(hint),
        ));
    }
}

/// A `traffic.shed` step needs a ladder; its `max_tier` (with its rendered name, when given)
/// must be an unprotected tier of it.
fn check_shed(
    rb: &Runbook,
    env: &Environment,
    max_tier: Option<(&Spanned<String>, String)>,
    step: &str,
    d: &mut Diagnostics,
) {
    let Some(l) = &env.traffic else {
        d.push(rb.source.diag(rb.step(step).map(|s| s.span.clone()).unwrap_or(0..0), format!("step `{step}` sheds traffic, but environment `{}` has no [traffic] ladder", env.name), Some("define [traffic] with a signal and [[traffic.tiers]] in the environment file (docs/traffic.md)".into())));
        return;
    };
    let Some((m, name)) = max_tier else {
        return;
    };
    if name.contains("${") {
        return;
    }
    match l.tiers.iter().find(|t| t.name == name) {
        None => {
            let names: Vec<&str> = l.tiers.iter().map(|t| t.name.as_str()).collect();
            let hint = match did_you_mean(&name, names.iter().copied()) {
                Some(s) => format!("did you mean `{s}`? tiers: {}", names.join(", ")),
                None => format!("tiers of `{}`: {}", env.name, names.join(", ")),
            };
            d.push(rb.source.diag(
                m.span.clone(),
                format!(
                    "step `{step}`: max_tier `{name}` is not a tier of environment `{}`",
                    env.name
                ),
                Some(hint),
            ));
        }
        Some(t) if t.protected => d.push(rb.source.diag(
            m.span.clone(),
            format!("step `{step}`: max_tier `{name}` is a protected tier, which is never shed"),
            Some("name the last unprotected tier that may be shed".into()),
        )),
        Some(_) => {}
    }
}

/// Bind a runbook to an environment and the parameters of one run.
pub fn bind(
    rb: &Runbook,
    env: &Environment,
    params: &Params,
    run: &RunContext,
) -> Result<Vec<BoundStep>, Diagnostics> {
    let binder = Binder {
        rb,
        env,
        run,
        vars: variables(rb, env, params, run),
        zone_list: zone_list(env),
    };
    let mut d = Diagnostics::default();
    if let Some(x) = region_mismatch(rb, env) {
        d.push(x);
        return Err(d);
    }
    let mut out = vec![];
    for s in &rb.steps {
        out.push(binder.step(s, &mut d));
    }
    if d.is_empty() {
        Ok(out)
    } else {
        Err(d.sorted())
    }
}

/// Binds the steps of one run; problems go to the caller's diagnostics.
struct Binder<'a> {
    rb: &'a Runbook,
    env: &'a Environment,
    run: &'a RunContext,
    vars: BTreeMap<String, String>,
    /// The environment's zones, for hints.
    zone_list: String,
}

impl Binder<'_> {
    fn step(&self, s: &StepDef, d: &mut Diagnostics) -> BoundStep {
        let step = s.id.value.as_str();
        let enabled = match &s.when {
            None => true,
            Some(w) => self.condition(w, step, d),
        };
        // A shedding step turned off (`when`) needs no ladder: the stock evacuation runs in
        // environments without [traffic].
        let shed_off = !enabled
            && matches!(s.action, ActionDef::TrafficShed { .. })
            && self.env.traffic.is_none();
        // Likewise a zonal shift step turned off needs no `zonal_shift_resources` group.
        let arc_off = !enabled && arc_group_absent(self.env, &s.action);
        if !shed_off && !arc_off {
            check_resources(self.rb, self.env, &s.action, step, Some(&self.vars), d);
        }
        let action = self.action(s, d);
        BoundStep {
            id: StepId::new(step),
            description: s.description.clone(),
            after: s
                .after
                .iter()
                .map(|a| StepId::new(a.value.clone()))
                .collect(),
            enabled,
            when: s.when.as_ref().map(|w| w.value.clone()),
            timeout: s.timeout.unwrap_or_else(|| default_timeout(&s.action)),
            retries: s.retries,
            on_failure: s.on_failure,
            action,
        }
    }

    fn render(&self, s: &Spanned<String>, d: &mut Diagnostics) -> String {
        match template::render(&s.value, &self.vars) {
            Ok(v) => v,
            Err(e) => {
                d.push(self.rb.source.diag(s.span.clone(), e, None));
                String::new()
            }
        }
    }

    fn render_http(&self, s: &Spanned<String>, d: &mut Diagnostics) -> String {
        template::render_for_http(&s.value, &self.vars).unwrap_or_else(|e| {
            d.push(self.rb.source.diag(s.span.clone(), e, None));
            String::new()
        })
    }

    /// A step's `when`, rendered and evaluated; a bad condition disables the step.
    fn condition(&self, w: &Spanned<String>, step: &str, d: &mut Diagnostics) -> bool {
        let e = self.render(w, d);
        match template::eval_condition(&e) {
            Ok(b) => b,
            Err(msg) => {
                d.push(self.rb.source.diag(
                    w.span.clone(),
                    format!("`when` of step `{step}`: {msg}"),
                    None,
                ));
                false
            }
        }
    }

    /// Zones to evacuate: each a zone of the environment, at least one, and not all of them.
    fn zones_of(&self, fields: &[Spanned<String>], step: &str, d: &mut Diagnostics) -> Vec<Zone> {
        let (src, env, zone_list) = (&self.rb.source, self.env, &self.zone_list);
        let mut zs = vec![];
        for f in fields {
            let r = self.render(f, d);
            for z in r.split(',').map(|s| s.trim()).filter(|s| !s.is_empty()) {
                let zone = Zone::new(z);
                if !env.zones.contains(&zone) {
                    d.push(src.diag(
                        f.span.clone(),
                        format!(
                            "step `{step}`: `{z}` is not a zone of environment `{}`",
                            env.name
                        ),
                        Some(format!("zones: {zone_list}")),
                    ));
                } else if !zs.contains(&zone) {
                    zs.push(zone);
                }
            }
        }
        if zs.is_empty() {
            if let Some(f) = fields.first() {
                d.push(src.diag(
                    f.span.clone(),
                    format!(
                        "step `{step}`: `evacuate` is empty, so there is nothing to move away from"
                    ),
                    Some("give the zone(s) to evacuate, e.g. -p failed_az=us-west-2a".into()),
                ));
            }
        }
        if !zs.is_empty() && zs.len() >= env.zones.len() {
            if let Some(f) = fields.first() {
                d.push(src.diag(f.span.clone(), format!("step `{step}` would evacuate every zone of environment `{}` ({zone_list})", env.name), Some("at least one zone must stay to fail over to; if every zone looks down, suspect the observer".into())));
            }
        }
        zs
    }

    /// A zone named in a step must be a zone of the environment.
    fn check_zone(&self, zone: &Zone, f: &Spanned<String>, step: &str, d: &mut Diagnostics) {
        if !self.env.zones.contains(zone) {
            d.push(self.rb.source.diag(
                f.span.clone(),
                format!(
                    "step `{step}`: `{zone}` is not a zone of environment `{}`",
                    self.env.name
                ),
                Some(format!("zones: {}", self.zone_list)),
            ));
        }
    }

    /// An approval gate: the step's approvers, else the environment's. A gate that names who
    /// may approve must have enough of them besides the initiator, or it could never open.
    fn approval(
        &self,
        s: &StepDef,
        message: Option<&Spanned<String>>,
        approvers: &[String],
        required: u32,
        d: &mut Diagnostics,
    ) -> BoundAction {
        let step = s.id.value.as_str();
        let approvers = if approvers.is_empty() {
            self.env.settings.approvers.clone()
        } else {
            approvers.to_vec()
        };
        let initiator = crate::approval::normalize(&self.run.initiator);
        let mut people: Vec<String> = vec![];
        for a in approvers.iter().map(|a| crate::approval::normalize(a)) {
            if !a.is_empty() && a != initiator && !people.contains(&a) {
                people.push(a);
            }
        }
        if !approvers.is_empty() && people.len() < required as usize {
            let who = if people.is_empty() {
                "nobody".to_string()
            } else {
                people.join(", ")
            };
            d.push(self.rb.source.diag(
                s.id.span.clone(),
                format!("step `{step}` needs {required} approval(s) from distinct people, but only {} may give them besides the initiator ({}): {who}", people.len(), self.run.initiator),
                Some("lower `approvals`, or name more `approvers` (the step's, else the environment's [settings] approvers); the initiator's own approval never counts".into()),
            ));
        }
        BoundAction::Approval {
            message: message
                .map(|m| self.render(m, d))
                .unwrap_or_else(|| format!("approve step `{step}` of run {}", self.run.run_id)),
            approvers,
            required,
        }
    }

    fn action(&self, s: &StepDef, d: &mut Diagnostics) -> BoundAction {
        let step = s.id.value.as_str();
        match &s.action {
            ActionDef::FailoverCluster {
                group,
                evacuate,
                wait,
                return_to,
            } => {
                let a = self.failover_cluster(group, evacuate, *wait, step, d);
                self.with_return(a, return_to.as_ref(), step, d)
            }
            ActionDef::FailoverInstance {
                group,
                evacuate,
                wait,
                return_to,
            } => {
                let a = self.failover_instance(group, evacuate, *wait, step, d);
                self.with_return(a, return_to.as_ref(), step, d)
            }
            ActionDef::Snapshot { groups, wait } => self.snapshot(groups, *wait, d),
            ActionDef::DnsUpdate {
                group,
                evacuate,
                weights,
                wait,
                records_after,
                return_to,
                regions,
            } => {
                let a = self.dns_update(group, evacuate, weights, *wait, step, d);
                let mut a = self.with_return(a, return_to.as_ref(), step, d);
                if let BoundAction::DnsUpdate {
                    records_after: ra,
                    records,
                    dep_clusters,
                    dep_instances,
                    region,
                    ..
                } = &mut a
                {
                    *region = self.dns_region(regions, records, step, d);
                    *ra = records_after
                        .iter()
                        .map(|s| StepId::from(s.value.as_str()))
                        .collect();
                    self.check_record_deps(records, records_after, d);
                    if !records_after.is_empty() {
                        (*dep_clusters, *dep_instances) = self.record_deps(records);
                    }
                }
                a
            }
            ActionDef::Http { .. } => self.http_step(s, d),
            ActionDef::Approval {
                message,
                approvers,
                required,
            } => self.approval(s, message.as_ref(), approvers, *required, d),
            ActionDef::Wait { duration } => BoundAction::Wait {
                duration: *duration,
            },
            ActionDef::HealthAssert {
                zones,
                expect,
                rounds,
            } => BoundAction::HealthAssert {
                zones: self.assert_zones(zones, step, d),
                expect: expect.value.clone(),
                rounds: *rounds,
            },
            ActionDef::TrafficShed { max_tier, settle } => {
                self.traffic_shed(max_tier.as_ref(), *settle, d)
            }
            ActionDef::TrafficRestore { hold, settle } => self.traffic_restore(*hold, *settle),
            ActionDef::ZonalShift { .. } | ActionDef::CancelZonalShift { .. } => {
                self.zonal_action(&s.action, step, d)
            }
            ActionDef::GlobalMove { .. } => self.global_move(s, d),
        }
    }

    /// An `http` step: its request (an endpoint's, or its own url), its timeout.
    fn http_step(&self, s: &StepDef, d: &mut Diagnostics) -> BoundAction {
        let ActionDef::Http {
            endpoint,
            url,
            method,
            headers,
            body,
            expect_status,
        } = &s.action
        else {
            return BoundAction::Wait {
                duration: Duration::ZERO,
            };
        };
        let ep = endpoint
            .as_ref()
            .map(|e| self.render(e, d))
            .and_then(|e| self.env.endpoints.get(&e).cloned());
        let mut request =
            self.http_request(ep, url.as_ref(), method.as_ref(), headers, body.as_ref(), d);
        // One request's timeout: the endpoint's (default 10 s), and never more than the
        // step's own budget shared by its attempts.
        let step_budget = s.timeout.map(|t| t / (s.retries + 1));
        request.timeout = request.timeout.min(step_budget.unwrap_or(Duration::MAX));
        BoundAction::Http {
            request,
            expect_status: expect_status.clone(),
        }
    }

    /// An `arc.*` step: its group's resources and zone ids, its zone, its comment.
    fn zonal_action(&self, a: &ActionDef, step: &str, d: &mut Diagnostics) -> BoundAction {
        match a {
            ActionDef::ZonalShift {
                group,
                away_from,
                expires_in,
                comment,
            } => {
                let (group, resources, zone_ids) = self.zonal_group(group, d);
                BoundAction::ZonalShift {
                    group,
                    resources,
                    away_from: self.zones_of(away_from, step, d),
                    zone_ids,
                    expires_in: *expires_in,
                    comment: self.zonal_comment(comment.as_ref(), step, d),
                }
            }
            ActionDef::CancelZonalShift { group, away_from } => {
                let (group, resources, zone_ids) = self.zonal_group(group, d);
                BoundAction::CancelZonalShift {
                    group,
                    resources,
                    away_from: self.zones_of(away_from, step, d).into_iter().next(),
                    zone_ids,
                    shift_ids: vec![],
                    started_by: None,
                }
            }
            _ => BoundAction::Wait {
                duration: Duration::ZERO,
            },
        }
    }

    /// A `zonal_shift_resources` group: its name, resources and zone ids.
    fn zonal_group(
        &self,
        group: &Spanned<String>,
        d: &mut Diagnostics,
    ) -> (String, Vec<String>, BTreeMap<Zone, String>) {
        let g = self.render(group, d);
        match self.env.groups.get(&g) {
            Some(Group::ZonalShiftResources {
                resources,
                zone_ids,
            }) => (g, resources.clone(), zone_ids.clone()),
            _ => (g, vec![], BTreeMap::new()),
        }
    }

    /// A zonal shift's comment, rendered: the runbook's (at most 128 characters once
    /// rendered), or one naming the run, so that a shift whose answer was lost is found again.
    fn zonal_comment(
        &self,
        comment: Option<&Spanned<String>>,
        step: &str,
        d: &mut Diagnostics,
    ) -> String {
        let run = self.run.run_id.to_string();
        let Some(c) = comment else {
            return format!("failover run {run} step {step}");
        };
        let text = self.render(c, d);
        let n = text.chars().count();
        if n > super::ZONAL_SHIFT_COMMENT_MAX {
            d.push(self.rb.source.diag(
                c.span.clone(),
                format!("the comment of step `{step}` is {n} characters long once rendered: ARC takes at most {}", super::ZONAL_SHIFT_COMMENT_MAX),
                Some("shorten it".into()),
            ));
        }
        if !text.contains(&run) {
            d.push(self.rb.source.diag(
                c.span.clone(),
                format!("the comment of step `{step}` does not name the run"),
                Some("keep `${run.id}` in it: a shift whose answer was lost is found again by it".into()),
            ));
        }
        text
    }

    /// `rds.switchover_global` / `rds.failover_global`: the group's global clusters, the
    /// regions named (each one of the environment's), the escalation.
    fn global_move(&self, s: &StepDef, d: &mut Diagnostics) -> BoundAction {
        let step = s.id.value.as_str();
        let ActionDef::GlobalMove {
            group,
            to_region,
            evacuate_region,
            unplanned,
            wait,
            escalate_after,
            escalate,
        } = &s.action
        else {
            return BoundAction::Wait {
                duration: Duration::ZERO,
            };
        };
        let g = self.render(group, d);
        let global_clusters = match self.env.groups.get(&g) {
            Some(Group::GlobalClusters { global_clusters }) => global_clusters.clone(),
            _ => vec![],
        };
        let to_region = to_region.as_ref().and_then(|r| self.region(r, step, d));
        let evacuate_region = evacuate_region
            .as_ref()
            .and_then(|r| self.region(r, step, d));
        if let (Some(t), Some(e)) = (&to_region, &evacuate_region) {
            if t == e {
                d.push(self.rb.source.diag(
                    s.id.span.clone(),
                    format!("step `{step}` moves the writer to {t}, the region it evacuates"),
                    Some("the recovery region must differ from the failed one".into()),
                ));
            }
        }
        let escalate = match (escalate_after, escalate) {
            (Some(after), Some(how)) => self.escalation(*after, how, d),
            _ => None,
        };
        BoundAction::GlobalMove(GlobalMove {
            group: g,
            global_clusters,
            to_region,
            evacuate_region,
            regions: self.env.regions.clone(),
            unplanned: *unplanned,
            wait: *wait,
            escalate,
        })
    }

    /// The region fields of a `dns.update` step: each one of the environment's `regions`, the
    /// destination not the evacuated region, and a group with records valued per region.
    fn dns_region(
        &self,
        r: &super::DnsRegionDef,
        records: &[RecordSpecOut],
        step: &str,
        d: &mut Diagnostics,
    ) -> Option<DnsRegionMove> {
        let first = [&r.evacuate_region, &r.return_to_region, &r.to_region]
            .into_iter()
            .flatten()
            .next()?;
        let mut region =
            |f: &Option<Spanned<String>>| f.as_ref().and_then(|f| self.region(f, step, d));
        let m = DnsRegionMove {
            evacuate: region(&r.evacuate_region),
            to: region(&r.to_region),
            return_to: region(&r.return_to_region),
            regions: self.env.regions.clone(),
        };
        if let (Some(t), Some(e)) = (&m.to, &m.evacuate) {
            if t == e {
                d.push(self.rb.source.diag(
                    first.span.clone(),
                    format!("step `{step}` moves records to {t}, the region it evacuates"),
                    Some("`to_region` must differ from `evacuate_region`".into()),
                ));
            }
        }
        if !records.is_empty() && records.iter().all(|x| x.region_values.is_empty()) {
            d.push(self.rb.source.diag(
                first.span.clone(),
                format!("step `{step}` moves records between regions, but its group has no record valued per region"),
                Some("key a record's `values` by region in the environment (values = { \"us-west-2\" = \"...\", \"us-east-1\" = \"...\" }), or use `evacuate` for zones".into()),
            ));
        }
        Some(m)
    }

    /// A region named in a step (rendered): one of the environment's `regions`.
    fn region(&self, f: &Spanned<String>, step: &str, d: &mut Diagnostics) -> Option<Region> {
        let r = Region::new(self.render(f, d).trim());
        if r.as_str().is_empty() {
            return None;
        }
        if self.env.regions.contains(&r) {
            return Some(r);
        }
        let known: Vec<&str> = self.env.regions.iter().map(|r| r.as_str()).collect();
        let hint = match did_you_mean(r.as_str(), known.iter().copied()) {
            Some(x) => format!(
                "did you mean `{x}`? regions of environment `{}`: {}",
                self.env.name,
                known.join(", ")
            ),
            None => format!(
                "regions of environment `{}`: {} (add more with `regions = [...]`)",
                self.env.name,
                known.join(", ")
            ),
        };
        d.push(self.rb.source.diag(
            f.span.clone(),
            format!(
                "step `{step}`: `{r}` is not a region of environment `{}`",
                self.env.name
            ),
            Some(hint),
        ));
        None
    }

    /// `escalate_after` + `escalate` of a switchover.
    fn escalation(
        &self,
        after: Duration,
        how: &Spanned<String>,
        d: &mut Diagnostics,
    ) -> Option<Escalation> {
        let mode = match self.render(how, d).as_str() {
            "approval" => EscalateMode::Approval,
            "auto" => EscalateMode::Auto,
            other => {
                d.push(self.rb.source.diag(
                    how.span.clone(),
                    format!("`escalate` is `{other}`"),
                    Some("one of: approval, auto".into()),
                ));
                return None;
            }
        };
        Some(Escalation {
            after,
            mode,
            approvers: self.env.settings.approvers.clone(),
        })
    }

    /// A failover or DNS step in failback mode (`return_to`): its zone, and the environment's
    /// zone order as the preference.
    fn with_return(
        &self,
        mut a: BoundAction,
        return_to: Option<&Spanned<String>>,
        step: &str,
        d: &mut Diagnostics,
    ) -> BoundAction {
        let Some(z) = return_to else { return a };
        let zone = self
            .zones_of(std::slice::from_ref(z), step, d)
            .into_iter()
            .next();
        match &mut a {
            BoundAction::FailoverCluster {
                return_to, healthy, ..
            }
            | BoundAction::DnsUpdate {
                return_to, healthy, ..
            } => {
                *return_to = zone;
                *healthy = self.env.zones.clone();
            }
            BoundAction::FailoverInstance { return_to, .. } => *return_to = zone,
            _ => {}
        }
        a
    }

    fn failover_cluster(
        &self,
        group: &Spanned<String>,
        evacuate: &[Spanned<String>],
        wait: bool,
        step: &str,
        d: &mut Diagnostics,
    ) -> BoundAction {
        let g = self.render(group, d);
        let evacuate = self.zones_of(evacuate, step, d);
        let clusters = match self.env.groups.get(&g) {
            Some(Group::DbClusters { clusters }) => clusters.clone(),
            _ => vec![],
        };
        BoundAction::FailoverCluster {
            group: g,
            clusters,
            healthy: self.env.healthy_zones(&evacuate),
            evacuate,
            wait,
            return_to: None,
        }
    }

    fn failover_instance(
        &self,
        group: &Spanned<String>,
        evacuate: &[Spanned<String>],
        wait: bool,
        step: &str,
        d: &mut Diagnostics,
    ) -> BoundAction {
        let g = self.render(group, d);
        let evacuate = self.zones_of(evacuate, step, d);
        let instances = match self.env.groups.get(&g) {
            Some(Group::DbInstances { instances }) => instances.clone(),
            _ => vec![],
        };
        BoundAction::FailoverInstance {
            group: g,
            instances,
            evacuate,
            wait,
            return_to: None,
            zones: self.env.zones.clone(),
        }
    }

    fn snapshot(&self, groups: &[Spanned<String>], wait: bool, d: &mut Diagnostics) -> BoundAction {
        let mut targets = vec![];
        for g in groups {
            match self.env.groups.get(&self.render(g, d)) {
                Some(Group::DbClusters { clusters }) => targets.extend(
                    clusters
                        .iter()
                        .map(|c| SnapshotTarget::Cluster { id: c.clone() }),
                ),
                Some(Group::DbInstances { instances }) => targets.extend(
                    instances
                        .iter()
                        .map(|i| SnapshotTarget::Instance { id: i.clone() }),
                ),
                _ => {}
            }
        }
        BoundAction::Snapshot { targets, wait }
    }

    fn dns_update(
        &self,
        group: &Spanned<String>,
        evacuate: &[Spanned<String>],
        weights: &[(Spanned<String>, i64)],
        wait: bool,
        step: &str,
        d: &mut Diagnostics,
    ) -> BoundAction {
        let g = self.render(group, d);
        let evacuate = self.zones_of(evacuate, step, d);
        let mut w = BTreeMap::new();
        for (z, weight) in weights {
            let zone = Zone::new(self.render(z, d));
            self.check_zone(&zone, z, step, d);
            w.insert(zone, *weight);
        }
        let (hosted_zone, records) = match self.env.groups.get(&g) {
            Some(Group::Records {
                hosted_zone,
                records,
            }) => (
                hosted_zone.clone(),
                records.iter().map(RecordSpecOut::from).collect(),
            ),
            _ => (String::new(), vec![]),
        };
        BoundAction::DnsUpdate {
            group: g,
            hosted_zone,
            records,
            healthy: self.env.healthy_zones(&evacuate),
            evacuate,
            weights: w,
            wait,
            return_to: None,
            records_after: vec![],
            dep_clusters: vec![],
            dep_instances: vec![],
            region: None,
        }
    }

    /// The clusters and instances the records depend on, each once.
    fn record_deps(&self, records: &[RecordSpecOut]) -> (Vec<ClusterId>, Vec<InstanceId>) {
        let (mut cs, mut is): (Vec<ClusterId>, Vec<InstanceId>) = (vec![], vec![]);
        for dep in records.iter().flat_map(|r| &r.depends_on) {
            for g in self.env.groups.values() {
                match g {
                    Group::DbClusters { clusters } => {
                        if let Some(c) = clusters.iter().find(|c| c.as_str() == dep) {
                            if !cs.contains(c) {
                                cs.push(c.clone());
                            }
                        }
                    }
                    Group::DbInstances { instances } => {
                        if let Some(i) = instances.iter().find(|i| i.as_str() == dep) {
                            if !is.contains(i) {
                                is.push(i.clone());
                            }
                        }
                    }
                    Group::Records { .. }
                    | Group::ZonalShiftResources { .. }
                    | Group::GlobalClusters { .. } => {}
                }
            }
        }
        (cs, is)
    }

    /// Each record's `depends_on` names a database of the environment's groups, and those of
    /// a step with `records_after` are failed over by one of those steps' groups.
    fn check_record_deps(
        &self,
        records: &[RecordSpecOut],
        records_after: &[Spanned<String>],
        d: &mut Diagnostics,
    ) {
        let Some(at) = records_after.first() else {
            return;
        };
        let known: Vec<String> = self
            .env
            .groups
            .values()
            .flat_map(|g| match g {
                Group::DbClusters { clusters } => clusters.iter().map(|c| c.to_string()).collect(),
                Group::DbInstances { instances } => {
                    instances.iter().map(|i| i.to_string()).collect()
                }
                Group::Records { .. }
                | Group::ZonalShiftResources { .. }
                | Group::GlobalClusters { .. } => vec![],
            })
            .collect();
        for r in records {
            for dep in r.depends_on.iter().filter(|x| !known.contains(x)) {
                let hint = match crate::diag::did_you_mean(dep, known.iter().map(|s| s.as_str())) {
                    Some(x) => format!("did you mean `{x}`? fix `depends_on` of the record in the environment file"),
                    None => "name a cluster or instance of the environment's db_clusters or db_instances groups in `depends_on`".to_string(),
                };
                d.push(self.rb.source.diag(
                    at.span.clone(),
                    format!(
                        "record {} depends on `{dep}`, which is in no database group of environment `{}`",
                        r.name, self.env.name
                    ),
                    Some(hint),
                ));
            }
        }
    }

    /// The request of an `http` step: its own url, method, headers and body over those of its
    /// endpoint (`ep`). The timeout is the endpoint's, 10 s without one.
    fn http_request(
        &self,
        ep: Option<Endpoint>,
        url: Option<&Spanned<String>>,
        method: Option<&String>,
        headers: &[(String, Spanned<String>)],
        body: Option<&Spanned<String>>,
        d: &mut Diagnostics,
    ) -> HttpRequest {
        let url = match (url, &ep) {
            (Some(u), _) => self.render_http(u, d),
            (None, Some(e)) => e.url.clone(),
            (None, None) => String::new(),
        };
        let method = method
            .cloned()
            .or_else(|| ep.as_ref().map(|e| e.method.clone()))
            .unwrap_or_else(|| "POST".into());
        let mut hs: Vec<(String, String)> =
            ep.as_ref().map(|e| e.headers.clone()).unwrap_or_default();
        for (k, v) in headers {
            let v = self.render_http(v, d);
            hs.retain(|(hk, _)| !hk.eq_ignore_ascii_case(k));
            hs.push((k.clone(), v));
        }
        let timeout = ep
            .as_ref()
            .map(|e| e.timeout)
            .unwrap_or(Duration::from_secs(10));
        let body = body.map(|b| self.render_http(b, d));
        HttpRequest {
            method,
            url,
            headers: hs,
            body,
            timeout,
        }
    }

    /// The zones of a `health.assert` step, as given (an unknown zone is reported, and kept).
    fn assert_zones(
        &self,
        zones: &[Spanned<String>],
        step: &str,
        d: &mut Diagnostics,
    ) -> Vec<Zone> {
        let mut zs = vec![];
        for f in zones {
            for z in self
                .render(f, d)
                .split(',')
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
            {
                let zone = Zone::new(z);
                self.check_zone(&zone, f, step, d);
                zs.push(zone);
            }
        }
        zs
    }

    /// Without a ladder (already reported) the step binds to a no-op.
    fn traffic_shed(
        &self,
        max_tier: Option<&Spanned<String>>,
        settle: Option<Duration>,
        d: &mut Diagnostics,
    ) -> BoundAction {
        let Some(l) = &self.env.traffic else {
            return BoundAction::Wait {
                duration: Duration::ZERO,
            };
        };
        let mut ladder = bind_ladder(l, self.env, &self.vars);
        if let Some(s) = settle {
            ladder.settle = s;
        }
        let max = max_tier
            .map(|m| self.render(m, d))
            .and_then(|m| l.index(&m));
        BoundAction::TrafficShed {
            ladder,
            max_tier: max,
        }
    }

    /// Without a ladder (already reported) the step binds to a no-op.
    fn traffic_restore(&self, hold: Option<Duration>, settle: Option<Duration>) -> BoundAction {
        let Some(l) = &self.env.traffic else {
            return BoundAction::Wait {
                duration: Duration::ZERO,
            };
        };
        let mut ladder = bind_ladder(l, self.env, &self.vars);
        if let Some(h) = hold {
            ladder.hold = h;
        }
        if let Some(s) = settle {
            ladder.settle = s;
        }
        BoundAction::TrafficRestore { ladder }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::SourceFile;

    fn env(text: &str, name: &str) -> Result<Environment, Diagnostics> {
        Environment::parse(SourceFile::new(format!("{name}.toml"), text), name)
    }

    fn ctx() -> RunContext {
        RunContext {
            run_id: "r".into(),
            initiator: "a".into(),
            mode: RunMode::Run,
        }
    }

    const ENV: &str = "region = \"us-west-2\"\nzones = [\"us-west-2a\", \"us-west-2b\"]\n";

    #[test]
    fn regression_optional_parameter_without_default_binds_empty() {
        let rb = Runbook::parse(SourceFile::new("rb.toml", "name = \"x\"\n[params.note]\nrequired = false\n[[steps]]\nid = \"a\"\naction = \"http\"\nurl = \"http://h/${note}\"\n")).unwrap();
        let e = env(ENV, "t").unwrap();
        let p = bind_params(&rb, &e, &[]).unwrap();
        let steps = bind(&rb, &e, &p, &ctx()).unwrap();
        let BoundAction::Http { request, .. } = &steps[0].action else {
            panic!()
        };
        assert_eq!(request.url, "http://h/");
    }

    #[test]
    fn regression_empty_evacuate_is_refused() {
        let rb = Runbook::parse(SourceFile::new("rb.toml", "name = \"x\"\n[params.failed_az]\ntype = \"zones\"\nrequired = false\n[[steps]]\nid = \"a\"\naction = \"rds.failover_cluster\"\ngroup = \"g\"\nevacuate = \"${failed_az}\"\n")).unwrap();
        let e = env(
            &format!("{ENV}[groups.g]\nkind = \"db_clusters\"\nclusters = [\"c\"]\n"),
            "t",
        )
        .unwrap();
        let p = bind_params(&rb, &e, &[]).unwrap();
        let err = bind(&rb, &e, &p, &ctx()).unwrap_err();
        assert!(
            err.to_string()
                .contains("`evacuate` is empty, so there is nothing to move away from"),
            "{err}"
        );
    }

    #[test]
    fn regression_environment_name_must_match_its_file() {
        let e = env(&format!("name = \"production\"\n{ENV}"), "prod").unwrap_err();
        assert!(
            e.to_string()
                .contains("the environment is named `production` but its file is `prod.toml`"),
            "{e}"
        );
    }

    #[test]
    fn regression_http_request_timeout_fits_in_the_step_budget() {
        let rb = Runbook::parse(SourceFile::new("rb.toml", "name = \"x\"\n[[steps]]\nid = \"a\"\naction = \"http\"\nurl = \"http://h/\"\ntimeout = \"9s\"\nretries = 2\n")).unwrap();
        let e = env(ENV, "t").unwrap();
        let steps = bind(&rb, &e, &Params::new(), &ctx()).unwrap();
        let BoundAction::Http { request, .. } = &steps[0].action else {
            panic!()
        };
        assert_eq!(
            request.timeout,
            Duration::from_secs(3),
            "three attempts share the 9 s budget"
        );
    }

    #[test]
    fn regression_an_approval_gate_nobody_can_release_is_refused() {
        let gate = |approvers: &str| {
            let text = format!("name = \"x\"\n[[steps]]\nid = \"go\"\naction = \"approval\"\napprovals = 2\napprovers = {approvers}\n");
            Runbook::parse(SourceFile::new("rb.toml", &text)).unwrap()
        };
        let e = env(ENV, "t").unwrap();
        let err = bind(&gate("[\"dave\"]"), &e, &Params::new(), &ctx()).unwrap_err();
        assert_eq!(err.to_string(), "rb.toml:3:6: error: step `go` needs 2 approval(s) from distinct people, but only 1 may give them besides the initiator (a): dave\n  hint: lower `approvals`, or name more `approvers` (the step's, else the environment's [settings] approvers); the initiator's own approval never counts");
        // The initiator never counts, and one person named twice is one person.
        let err = bind(
            &gate("[\"A\", \"dave\", \" Dave\"]"),
            &e,
            &Params::new(),
            &ctx(),
        );
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("only 1 may give them besides the initiator (a): dave"));
        let err = bind(&gate("[\"a\"]"), &e, &Params::new(), &ctx());
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("only 0 may give them besides the initiator (a): nobody"));
        assert!(bind(&gate("[\"dave\", \"erin\"]"), &e, &Params::new(), &ctx()).is_ok());
        // No list: anyone but the initiator may approve.
        assert!(bind(&gate("[]"), &e, &Params::new(), &ctx()).is_ok());
        // The environment's list, when the step has none.
        let guarded = env(&format!("{ENV}[settings]\napprovers = [\"dave\"]\n"), "t").unwrap();
        assert!(bind(&gate("[]"), &guarded, &Params::new(), &ctx()).is_err());
    }

    const GLOBAL_ENV: &str = "region = \"us-west-2\"\nregions = [\"us-west-2\", \"us-east-1\"]\nzones = [\"us-west-2a\", \"us-west-2b\"]\n[settings]\napprovers = [\"bob\"]\n[groups.orders_global]\nkind = \"global_clusters\"\nglobal_clusters = [\"orders-global\"]\n";

    const GLOBAL_RB: &str = "name = \"x\"\n[params.failed_region]\n[params.recovery_region]\n[[steps]]\nid = \"move\"\naction = \"rds.switchover_global\"\ngroup = \"orders_global\"\nevacuate_region = \"${failed_region}\"\nto_region = \"${recovery_region}\"\nescalate_after = \"5m\"\nescalate = \"approval\"\n";

    #[test]
    fn a_global_switchover_binds_its_regions_and_escalation() {
        let rb = Runbook::parse(SourceFile::new("rb.toml", GLOBAL_RB)).unwrap();
        let e = env(GLOBAL_ENV, "t").unwrap();
        assert_eq!(
            e.regions,
            vec![Region::from("us-west-2"), Region::from("us-east-1")]
        );
        let given = [
            ("failed_region".to_string(), "us-west-2".to_string()),
            ("recovery_region".to_string(), "us-east-1".to_string()),
        ];
        let p = bind_params(&rb, &e, &given).unwrap();
        let steps = bind(&rb, &e, &p, &ctx()).unwrap();
        let BoundAction::GlobalMove(m) = &steps[0].action else {
            panic!("{:?}", steps[0].action)
        };
        assert_eq!(steps[0].action.name(), "rds.switchover_global");
        assert_eq!(
            m.global_clusters,
            vec![GlobalClusterId::from("orders-global")]
        );
        assert_eq!(m.target_region(), Some(Region::from("us-east-1")));
        assert_eq!(m.evacuate_region, Some(Region::from("us-west-2")));
        assert_eq!(
            m.escalate,
            Some(Escalation {
                after: Duration::from_secs(300),
                mode: EscalateMode::Approval,
                approvers: vec!["bob".into()],
            })
        );
        // Only the evacuated region given: the writer goes to the first other region.
        let m2 = GlobalMove {
            to_region: None,
            ..m.clone()
        };
        assert_eq!(m2.target_region(), Some(Region::from("us-east-1")));
    }

    #[test]
    fn an_unknown_region_fails_binding_with_where_and_the_known_ones() {
        let rb = Runbook::parse(SourceFile::new("rb.toml", GLOBAL_RB)).unwrap();
        let e = env(GLOBAL_ENV, "t").unwrap();
        let given = [
            ("failed_region".to_string(), "us-west-2".to_string()),
            ("recovery_region".to_string(), "us-east-2".to_string()),
        ];
        let p = bind_params(&rb, &e, &given).unwrap();
        let err = bind(&rb, &e, &p, &ctx()).unwrap_err().to_string();
        assert!(
            err.contains("rb.toml:9:13")
                && err.contains("step `move`: `us-east-2` is not a region of environment `t`")
                && err.contains("did you mean `us-east-1`?"),
            "{err}"
        );
    }

    #[test]
    fn a_global_cluster_group_needs_two_regions() {
        let text = "region = \"us-west-2\"\nzones = [\"us-west-2a\", \"us-west-2b\"]\n[groups.orders_global]\nkind = \"global_clusters\"\nglobal_clusters = [\"orders-global\"]\n";
        let err = env(text, "t").unwrap_err().to_string();
        assert!(
            err.contains("t.toml:3:2")
                && err.contains("group `orders_global` holds global clusters, but the environment names one region only")
                && err.contains("regions = [\"us-west-2\", \"us-east-1\"]"),
            "{err}"
        );
        let text = "region = \"us-west-2\"\nregions = [\"us-east-1\", \"mars\", \"us-east-1\"]\nzones = [\"us-west-2a\"]\n";
        let err = env(text, "t").unwrap_err().to_string();
        assert!(err.contains("`mars` is not a region name"), "{err}");
        assert!(err.contains("region `us-east-1` is listed twice"), "{err}");
        assert!(
            err.contains("`regions` does not list the primary region `us-west-2`"),
            "{err}"
        );
    }

    #[test]
    fn escalation_needs_both_keys_and_a_known_mode() {
        let text = GLOBAL_RB.replace("escalate = \"approval\"\n", "escalate = \"maybe\"\n");
        let err = Runbook::parse(SourceFile::new("rb.toml", text))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`escalate` in step `move` is `maybe`")
                && err.contains("one of: approval, auto"),
            "{err}"
        );
        let text = GLOBAL_RB.replace("escalate = \"approval\"\n", "");
        let err = Runbook::parse(SourceFile::new("rb.toml", text))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("has `escalate_after` but not `escalate`"),
            "{err}"
        );
    }
}
