//! Runbooks: TOML files of parameters and steps, parsed into a checked model.
//!
//! Stage one (`Runbook::parse`) checks the file on its own: syntax, keys, types, step ids,
//! `after` references and cycles, templates. Stage two (`bind::bind`) checks it against an
//! environment and the parameters of one run and produces the plain `BoundStep`s that the
//! planner works on. Both report every problem at once, with file:line:col and a hint.

pub mod bind;
pub mod ladder;
pub mod template;

use crate::diag::{did_you_mean, Diagnostics, SourceFile};
use crate::tomlx::{parse_document, SKind, SVal, Spanned, TableReader};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Runbook {
    pub name: String,
    pub description: Option<String>,
    pub params: Vec<ParamDef>,
    pub steps: Vec<StepDef>,
    pub source: SourceFile,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    String,
    /// One availability zone of the environment.
    Zone,
    /// One or more zones, comma separated.
    Zones,
    Bool,
}

#[derive(Clone, Debug)]
pub struct ParamDef {
    pub name: String,
    pub description: Option<String>,
    pub kind: ParamKind,
    pub default: Option<String>,
    pub required: bool,
    pub span: std::ops::Range<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Stop starting new steps; the run fails.
    Abort,
    /// Record the failure and let dependent steps run.
    Continue,
}

#[derive(Clone, Debug)]
pub struct StepDef {
    pub id: Spanned<String>,
    pub description: Option<String>,
    pub after: Vec<Spanned<String>>,
    pub when: Option<Spanned<String>>,
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub on_failure: OnFailure,
    pub action: ActionDef,
    pub span: std::ops::Range<usize>,
}

/// The region fields of a `dns.update` step, still templated.
#[derive(Clone, Debug, Default)]
pub struct DnsRegionDef {
    pub evacuate_region: Option<Spanned<String>>,
    pub to_region: Option<Spanned<String>>,
    pub return_to_region: Option<Spanned<String>>,
}

impl DnsRegionDef {
    pub fn is_empty(&self) -> bool {
        self.evacuate_region.is_none() && self.return_to_region.is_none()
    }
}

/// The action of a step with its fields still templated.
#[derive(Clone, Debug)]
pub enum ActionDef {
    FailoverCluster {
        group: Spanned<String>,
        evacuate: Vec<Spanned<String>>,
        wait: bool,
        /// Failback instead of evacuation: writers whose preferred zone this is move back.
        return_to: Option<Spanned<String>>,
    },
    FailoverInstance {
        return_to: Option<Spanned<String>>,
        group: Spanned<String>,
        evacuate: Vec<Spanned<String>>,
        wait: bool,
    },
    Snapshot {
        groups: Vec<Spanned<String>>,
        wait: bool,
    },
    DnsUpdate {
        /// Failback: records point back at this zone when it is their preferred one.
        return_to: Option<Spanned<String>>,
        group: Spanned<String>,
        evacuate: Vec<Spanned<String>>,
        weights: Vec<(Spanned<String>, i64)>,
        wait: bool,
        /// Database failover steps the records depend on, per record: the step starts without
        /// waiting for them, and moves each record as soon as the databases it `depends_on`
        /// (in the environment) are out of the evacuated zone.
        records_after: Vec<Spanned<String>>,
        /// Records valued per region: the region they leave, the region they move to (else
        /// the first other of the environment's `regions`), or the region they fail back to.
        regions: DnsRegionDef,
    },
    Http {
        endpoint: Option<Spanned<String>>,
        url: Option<Spanned<String>>,
        method: Option<String>,
        headers: Vec<(String, Spanned<String>)>,
        body: Option<Spanned<String>>,
        expect_status: Vec<u16>,
    },
    Approval {
        message: Option<Spanned<String>>,
        approvers: Vec<String>,
        /// How many distinct people must approve (the initiator never counts).
        required: u32,
    },
    Wait {
        duration: Duration,
    },
    /// Require zones to be healthy / unhealthy (from the environment's probes) before going on.
    HealthAssert {
        zones: Vec<Spanned<String>>,
        expect: Spanned<String>,
        rounds: Option<u32>,
    },
    /// ARC StartZonalShift away from one zone for the resources of a
    /// `zonal_shift_resources` group.
    ZonalShift {
        group: Spanned<String>,
        away_from: Vec<Spanned<String>>,
        /// 1 minute to 3 days (ARC's bounds).
        expires_in: Duration,
        /// Rendered, then at most 128 characters (ARC's bound).
        comment: Option<Spanned<String>>,
    },
    /// ARC CancelZonalShift of the active shifts away from one zone.
    CancelZonalShift {
        group: Spanned<String>,
        away_from: Vec<Spanned<String>>,
    },
    /// Closed loop: shed tiers of the environment's ladder in order while the signal is bad.
    TrafficShed {
        max_tier: Option<Spanned<String>>,
        settle: Option<Duration>,
    },
    /// Closed loop: restore shed tiers in reverse once the signal has been good for `hold`.
    TrafficRestore {
        hold: Option<Duration>,
        settle: Option<Duration>,
    },
    /// `rds.switchover_global` (graceful) or `rds.failover_global` (`unplanned`): move the
    /// writer of a group's global clusters to `to_region`, or out of `evacuate_region`.
    GlobalMove {
        group: Spanned<String>,
        to_region: Option<Spanned<String>>,
        evacuate_region: Option<Spanned<String>>,
        unplanned: bool,
        wait: bool,
        /// Graceful only: how long the switchover has before it escalates, and how
        /// (`approval` or `auto`).
        escalate_after: Option<Duration>,
        escalate: Option<Spanned<String>>,
    },
}

pub const ACTIONS: &[&str] = &[
    "rds.failover_cluster",
    "rds.failover_instance",
    "rds.snapshot",
    "dns.update",
    "http",
    "approval",
    "wait",
    "traffic.shed",
    "traffic.restore",
    "health.assert",
    "arc.zonal_shift",
    "arc.cancel_zonal_shift",
    "rds.switchover_global",
    "rds.failover_global",
];

impl ActionDef {
    pub fn name(&self) -> &'static str {
        match self {
            ActionDef::FailoverCluster { .. } => "rds.failover_cluster",
            ActionDef::FailoverInstance { .. } => "rds.failover_instance",
            ActionDef::Snapshot { .. } => "rds.snapshot",
            ActionDef::DnsUpdate { .. } => "dns.update",
            ActionDef::Http { .. } => "http",
            ActionDef::Approval { .. } => "approval",
            ActionDef::Wait { .. } => "wait",
            ActionDef::HealthAssert { .. } => "health.assert",
            ActionDef::TrafficShed { .. } => "traffic.shed",
            ActionDef::TrafficRestore { .. } => "traffic.restore",
            ActionDef::ZonalShift { .. } => "arc.zonal_shift",
            ActionDef::CancelZonalShift { .. } => "arc.cancel_zonal_shift",
            ActionDef::GlobalMove {
                unplanned: false, ..
            } => "rds.switchover_global",
            ActionDef::GlobalMove {
                unplanned: true, ..
            } => "rds.failover_global",
        }
    }

    /// Templated fields with their spans, for checking variables.
    fn templated(&self) -> Vec<&Spanned<String>> {
        let mut v: Vec<&Spanned<String>> = vec![];
        match self {
            ActionDef::FailoverCluster {
                group,
                evacuate,
                return_to,
                ..
            }
            | ActionDef::FailoverInstance {
                group,
                evacuate,
                return_to,
                ..
            } => {
                v.push(group);
                v.extend(evacuate.iter());
                v.extend(return_to.iter());
            }
            ActionDef::Snapshot { groups, .. } => v.extend(groups.iter()),
            ActionDef::DnsUpdate {
                group,
                evacuate,
                weights,
                return_to,
                regions,
                ..
            } => {
                v.push(group);
                v.extend(return_to.iter());
                v.extend(regions.evacuate_region.iter());
                v.extend(regions.to_region.iter());
                v.extend(regions.return_to_region.iter());
                v.extend(evacuate.iter());
                v.extend(weights.iter().map(|(z, _)| z));
            }
            ActionDef::Http {
                endpoint,
                url,
                headers,
                body,
                ..
            } => {
                v.extend(endpoint.iter());
                v.extend(url.iter());
                v.extend(headers.iter().map(|(_, h)| h));
                v.extend(body.iter());
            }
            ActionDef::Approval { message, .. } => v.extend(message.iter()),
            ActionDef::Wait { .. } | ActionDef::TrafficRestore { .. } => {}
            ActionDef::TrafficShed { max_tier, .. } => v.extend(max_tier.iter()),
            ActionDef::HealthAssert { zones, .. } => v.extend(zones.iter()),
            ActionDef::ZonalShift {
                group,
                away_from,
                comment,
                ..
            } => {
                v.push(group);
                v.extend(away_from.iter());
                v.extend(comment.iter());
            }
            ActionDef::CancelZonalShift { group, away_from } => {
                v.push(group);
                v.extend(away_from.iter());
            }
            ActionDef::GlobalMove {
                group,
                to_region,
                evacuate_region,
                escalate,
                ..
            } => {
                v.push(group);
                v.extend(to_region.iter());
                v.extend(evacuate_region.iter());
                v.extend(escalate.iter());
            }
        }
        v
    }
}

/// Built-in template variables, available in every runbook.
pub const BUILTIN_VARS: &[&str] = &[
    "env.name",
    "env.region",
    "run.id",
    "run.initiator",
    "run.mode",
    "runbook.name",
];

const TOP_KEYS: &[&str] = &["name", "description", "params", "steps"];
const COMMON_STEP_KEYS: &[&str] = &[
    "id",
    "action",
    "description",
    "after",
    "when",
    "timeout",
    "retries",
    "on_failure",
];

impl Runbook {
    /// The first step that moves something between regions (a global database's writer):
    /// such a runbook applies only to environments that span several regions (`regions`).
    pub fn region_step(&self) -> Option<&StepDef> {
        self.steps
            .iter()
            .find(|s| matches!(s.action, ActionDef::GlobalMove { .. }))
    }

    pub fn load(path: &Path) -> Result<Runbook, Diagnostics> {
        let src = SourceFile::read(path)?;
        Self::parse(src)
    }

    pub fn parse(src: SourceFile) -> Result<Runbook, Diagnostics> {
        let doc = parse_document(&src)?;
        let mut d = Diagnostics::default();
        let rb = parse_runbook(&src, &doc, &mut d);
        if let Some(rb) = &rb {
            check_graph(&src, rb, &mut d);
            check_templates(&src, rb, &mut d);
        }
        match rb {
            Some(mut rb) if d.is_empty() => {
                rb.source = src;
                Ok(rb)
            }
            _ => Err(d.sorted()),
        }
    }

    pub fn step(&self, id: &str) -> Option<&StepDef> {
        self.steps.iter().find(|s| s.id.value == id)
    }

    /// Step ids in a topological order (stable: file order among ready steps).
    pub fn topo_order(&self) -> Vec<String> {
        let mut done: Vec<String> = vec![];
        let mut remaining: Vec<&StepDef> = self.steps.iter().collect();
        while !remaining.is_empty() {
            let before = remaining.len();
            remaining.retain(|s| {
                if s.after.iter().all(|a| done.contains(&a.value)) {
                    done.push(s.id.value.clone());
                    false
                } else {
                    true
                }
            });
            if remaining.len() == before {
                break; // cycle: rejected by validation
            }
        }
        done
    }
}

fn parse_runbook(src: &SourceFile, doc: &SVal, d: &mut Diagnostics) -> Option<Runbook> {
    let mut t = TableReader::new(src, doc, "the runbook", d)?;
    let name = t.req_str(
        "name",
        "give the runbook a name: name = \"az-evacuation\"",
        d,
    );
    let description = t.str("description", d).map(|s| s.value);
    let mut params = vec![];
    if let Some(pv) = t.get("params") {
        match &pv.kind {
            SKind::Table(entries) => {
                for (pname, pspan, v) in entries {
                    if let Some(p) = parse_param(src, pname, pspan.clone(), v, d) {
                        params.push(p);
                    }
                }
            }
            _ => d.push(src.diag(
                pv.span.clone(),
                "`params` must be a table: [params.failed_az]",
                None,
            )),
        }
    }
    let mut steps = vec![];
    match t.get("steps") {
        Some(SVal {
            kind: SKind::Array(items),
            ..
        }) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(s) = parse_step(src, i, item, d) {
                    steps.push(s);
                }
            }
        }
        Some(other) => d.push(src.diag(
            other.span.clone(),
            "`steps` must be an array of tables: [[steps]]",
            None,
        )),
        None => d.push(src.diag_file(
            "the runbook has no steps",
            Some("add at least one [[steps]] table with an `id` and an `action`".into()),
        )),
    }
    t.finish(TOP_KEYS, d);
    Some(Runbook {
        name: name.map(|n| n.value).unwrap_or_default(),
        description,
        params,
        steps,
        source: src.clone(),
    })
}

fn parse_param(
    src: &SourceFile,
    name: &str,
    span: std::ops::Range<usize>,
    v: &SVal,
    d: &mut Diagnostics,
) -> Option<ParamDef> {
    if !valid_ident(name) {
        d.push(src.diag(
            span.clone(),
            format!("parameter name `{name}` is not valid"),
            Some("use letters, digits, `_` and `-`".into()),
        ));
    }
    let what = format!("parameter `{name}`");
    let mut t = TableReader::new(src, v, what.clone(), d)?;
    let description = t.str("description", d).map(|s| s.value);
    let kind = match t.str("type", d) {
        None => ParamKind::String,
        Some(k) => match k.value.as_str() {
            "string" => ParamKind::String,
            "zone" => ParamKind::Zone,
            "zones" => ParamKind::Zones,
            "bool" => ParamKind::Bool,
            other => {
                d.push(src.diag(
                    k.span.clone(),
                    format!("unknown parameter type `{other}` for {what}"),
                    Some("one of: string, zone, zones, bool".into()),
                ));
                ParamKind::String
            }
        },
    };
    let default = match t.get("default") {
        None => None,
        Some(dv) => match &dv.kind {
            SKind::Str(s) => Some(s.clone()),
            SKind::Bool(b) => Some(b.to_string()),
            SKind::Int(i) => Some(i.to_string()),
            _ => {
                d.push(src.diag(
                    dv.span.clone(),
                    format!("the default of {what} must be a string, a boolean or an integer"),
                    None,
                ));
                None
            }
        },
    };
    let required = t
        .bool("required", d)
        .map(|b| b.value)
        .unwrap_or(default.is_none());
    if required && default.is_some() {
        d.push(src.diag(
            span.clone(),
            format!("{what} is required and has a default"),
            Some("drop `required = true` or the default".into()),
        ));
    }
    t.finish(&["description", "type", "default", "required"], d);
    Some(ParamDef {
        name: name.to_string(),
        description,
        kind,
        default,
        required,
        span,
    })
}

fn valid_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Read a string-or-array-of-strings field.
fn str_or_list(t: &mut TableReader<'_>, key: &str, d: &mut Diagnostics) -> Vec<Spanned<String>> {
    match t.get(key) {
        None => vec![],
        Some(v) => match &v.kind {
            SKind::Str(s) => vec![Spanned::new(s.clone(), v.span.clone())],
            SKind::Array(items) => items
                .iter()
                .filter_map(|i| {
                    crate::tomlx::expect_str(t.src, i, &format!("`{key}` in {}", t.what), d)
                })
                .collect(),
            _ => {
                d.push(t.src.diag(
                    v.span.clone(),
                    format!(
                        "`{key}` in {} must be a string or an array of strings",
                        t.what
                    ),
                    None,
                ));
                vec![]
            }
        },
    }
}

fn parse_step(src: &SourceFile, index: usize, v: &SVal, d: &mut Diagnostics) -> Option<StepDef> {
    let provisional = format!("step #{}", index + 1);
    let mut t = TableReader::new(src, v, provisional.clone(), d)?;
    let id = t.req_str(
        "id",
        "give every step a unique id: id = \"failover-aurora\"",
        d,
    );
    if let Some(id) = &id {
        t.what = format!("step `{}`", id.value);
        if !valid_ident(&id.value) {
            d.push(src.diag(
                id.span.clone(),
                format!("step id `{}` is not valid", id.value),
                Some("use letters, digits, `-` and `_`".into()),
            ));
        }
    }
    let action_name = t.req_str("action", &format!("one of: {}", ACTIONS.join(", ")), d);
    let description = t.str("description", d).map(|s| s.value);
    let after = if t.has("after") {
        t.str_list("after", d).unwrap_or_default()
    } else {
        vec![]
    };
    let when = t.str("when", d);
    let timeout = parse_timeout(src, &mut t, d);
    let retries = t
        .int("retries", 0, 10, d)
        .map(|s| s.value as u32)
        .unwrap_or(0);
    let on_failure = parse_on_failure(src, &mut t, d);
    let action_name = action_name?;
    let mut keys: Vec<&str> = COMMON_STEP_KEYS.to_vec();
    let action = parse_action(src, &mut t, &action_name, &mut keys, d)?;
    t.finish(&keys, d);
    Some(StepDef {
        id: id?,
        description,
        after,
        when,
        timeout,
        retries,
        on_failure,
        action,
        span: v.span.clone(),
    })
}

/// A step's `timeout`: at least 1s.
fn parse_timeout(
    src: &SourceFile,
    t: &mut TableReader<'_>,
    d: &mut Diagnostics,
) -> Option<Duration> {
    let what = t.what.clone();
    t.duration("timeout", d).map(|s| {
        if s.value < Duration::from_secs(1) {
            d.push(src.diag(
                s.span.clone(),
                format!(
                    "`timeout` of {what} is {}, too short for any step",
                    humantime::format_duration(s.value)
                ),
                Some("a step timeout is at least 1s; \"30s\" or \"5m\" are typical".into()),
            ));
        }
        s.value
    })
}

/// A step's `on_failure`: `abort` (the default) or `continue`.
fn parse_on_failure(src: &SourceFile, t: &mut TableReader<'_>, d: &mut Diagnostics) -> OnFailure {
    let what = t.what.clone();
    match t.str("on_failure", d) {
        None => OnFailure::Abort,
        Some(s) => match s.value.as_str() {
            "abort" => OnFailure::Abort,
            "continue" => OnFailure::Continue,
            other => {
                d.push(src.diag(
                    s.span.clone(),
                    format!("`on_failure` in {what} is `{other}`"),
                    Some("one of: abort, continue".into()),
                ));
                OnFailure::Abort
            }
        },
    }
}

const GROUP_HINT: &str = "name a group of the environment: group = \"aurora\"";

/// The action of a step, adding its keys to `keys`. `None` when the action is unknown or a
/// required field is missing; the step's unknown keys are then not reported.
/// The keys of each action, besides the common ones.
fn action_keys(action: &str) -> &'static [&'static str] {
    match action {
        "rds.failover_cluster" | "rds.failover_instance" => {
            &["group", "evacuate", "return_to", "wait"]
        }
        "rds.snapshot" => &["group", "groups", "wait"],
        "dns.update" => &[
            "group",
            "evacuate",
            "return_to",
            "weights",
            "wait",
            "records_after",
            "evacuate_region",
            "to_region",
            "return_to_region",
        ],
        "http" => &[
            "endpoint",
            "url",
            "method",
            "headers",
            "body",
            "expect_status",
        ],
        "approval" => &["message", "approvers", "approvals"],
        "wait" => &["duration"],
        "health.assert" => &["zone", "expect", "rounds"],
        "arc.zonal_shift" => &["group", "away_from", "expires_in", "comment"],
        "arc.cancel_zonal_shift" => &["group", "away_from"],
        "rds.switchover_global" => &[
            "group",
            "to_region",
            "evacuate_region",
            "wait",
            "escalate_after",
            "escalate",
        ],
        "rds.failover_global" => &["group", "to_region", "evacuate_region", "wait"],
        "traffic.shed" => &["max_tier", "settle"],
        "traffic.restore" => &["hold", "settle"],
        _ => &[],
    }
}

fn parse_action(
    src: &SourceFile,
    t: &mut TableReader<'_>,
    action_name: &Spanned<String>,
    keys: &mut Vec<&str>,
    d: &mut Diagnostics,
) -> Option<ActionDef> {
    keys.extend(action_keys(&action_name.value));
    let action = match action_name.value.as_str() {
        "rds.failover_cluster" | "rds.failover_instance" => {
            let cluster = action_name.value == "rds.failover_cluster";
            parse_failover(src, t, cluster, d)?
        }
        "rds.snapshot" => parse_snapshot(src, t, d),
        "dns.update" => parse_dns_update(src, t, d)?,
        "http" => parse_http(src, t, d),
        "approval" => parse_approval(t, d),
        "wait" => parse_wait(src, t, d),
        "health.assert" => parse_health_assert(src, t, d)?,
        "arc.zonal_shift" => parse_zonal_shift(src, t, d)?,
        "arc.cancel_zonal_shift" => {
            let group = t.req_str("group", GROUP_HINT, d);
            let away_from = zonal_away_from(src, t, d);
            ActionDef::CancelZonalShift {
                group: group?,
                away_from,
            }
        }
        "rds.switchover_global" => parse_global_move(src, t, false, d)?,
        "rds.failover_global" => parse_global_move(src, t, true, d)?,
        "traffic.shed" => {
            let max_tier = t.str("max_tier", d);
            let settle = t.duration("settle", d).map(|s| s.value);
            ActionDef::TrafficShed { max_tier, settle }
        }
        "traffic.restore" => {
            let hold = t.duration("hold", d).map(|s| s.value);
            let settle = t.duration("settle", d).map(|s| s.value);
            ActionDef::TrafficRestore { hold, settle }
        }
        other => {
            let hint = match did_you_mean(other, ACTIONS.iter().copied()) {
                Some(s) => format!("did you mean `{s}`? actions: {}", ACTIONS.join(", ")),
                None => format!("actions: {}", ACTIONS.join(", ")),
            };
            d.push(src.diag(
                action_name.span.clone(),
                format!("unknown action `{other}` in {}", t.what),
                Some(hint),
            ));
            return None;
        }
    };
    Some(action)
}

/// `rds.failover_cluster` (`cluster`) or `rds.failover_instance`.
fn parse_failover(
    src: &SourceFile,
    t: &mut TableReader<'_>,
    cluster: bool,
    d: &mut Diagnostics,
) -> Option<ActionDef> {
    let what = t.what.clone();
    let group = t.req_str("group", GROUP_HINT, d);
    let evacuate = str_or_list(t, "evacuate", d);
    let return_to = t.str("return_to", d);
    match (evacuate.is_empty(), &return_to) {
        (true, None) => d.push(
            src.diag(
                t.span.clone(),
                format!("{what} does not say which zone to evacuate"),
                Some(
                    "add `evacuate = \"${failed_az}\"` (or `return_to = \"${zone}\"` to fail back)"
                        .into(),
                ),
            ),
        ),
        (false, Some(r)) => d.push(src.diag(
            r.span.clone(),
            format!("{what} has both `evacuate` and `return_to`"),
            Some("a step either evacuates zones or fails back into one: keep one of them".into()),
        )),
        _ => {}
    }
    let wait = t.bool("wait", d).map(|b| b.value).unwrap_or(true);
    let group = group?;
    Some(if cluster {
        ActionDef::FailoverCluster {
            group,
            evacuate,
            wait,
            return_to,
        }
    } else {
        ActionDef::FailoverInstance {
            group,
            evacuate,
            wait,
            return_to,
        }
    })
}

/// `rds.switchover_global` / `rds.failover_global`: a `global_clusters` group, the region to
/// move the writer to and/or the region to evacuate; a switchover may escalate.
fn parse_global_move(
    src: &SourceFile,
    t: &mut TableReader<'_>,
    unplanned: bool,
    d: &mut Diagnostics,
) -> Option<ActionDef> {
    let what = t.what.clone();
    let group = t.req_str(
        "group",
        "name a `global_clusters` group: group = \"orders_global\"",
        d,
    );
    let to_region = t.str("to_region", d);
    let evacuate_region = t.str("evacuate_region", d);
    if to_region.is_none() && evacuate_region.is_none() {
        d.push(src.diag(
            t.span.clone(),
            format!("{what} says neither where to move the writer nor which region to leave"),
            Some("add `to_region = \"${recovery_region}\"` (and/or `evacuate_region = \"${failed_region}\"`)".into()),
        ));
    }
    let wait = t.bool("wait", d).map(|b| b.value).unwrap_or(true);
    let (escalate_after, escalate) = if unplanned {
        (None, None)
    } else {
        let after = t.duration("escalate_after", d);
        let how = t.str("escalate", d);
        match (&after, &how) {
            (Some(_), None) => d.push(src.diag(
                after.as_ref().map(|a| a.span.clone()).unwrap_or(t.span.clone()),
                format!("{what} has `escalate_after` but not `escalate`"),
                Some("say what happens then: escalate = \"approval\" (a person decides) or \"auto\" (fail over with data loss at once)".into()),
            )),
            (None, Some(h)) => d.push(src.diag(
                h.span.clone(),
                format!("{what} has `escalate` but not `escalate_after`"),
                Some("say how long the graceful switchover has: escalate_after = \"5m\"".into()),
            )),
            _ => {}
        }
        if let Some(h) = &how {
            if !["approval", "auto"].contains(&h.value.as_str()) && !h.value.contains("${") {
                d.push(src.diag(
                    h.span.clone(),
                    format!("`escalate` in {what} is `{}`", h.value),
                    Some("one of: approval, auto".into()),
                ));
            }
        }
        if let Some(a) = &after {
            if !wait {
                d.push(src.diag(
                    a.span.clone(),
                    format!("{what} escalates but does not wait (`wait = false`)"),
                    Some("escalation needs the step to watch the switchover: remove `wait = false`".into()),
                ));
            }
        }
        (after.map(|a| a.value), how)
    };
    Some(ActionDef::GlobalMove {
        group: group?,
        to_region,
        evacuate_region,
        unplanned,
        wait,
        escalate_after,
        escalate,
    })
}

/// `rds.snapshot`: `group` and/or `groups`.
fn parse_snapshot(src: &SourceFile, t: &mut TableReader<'_>, d: &mut Diagnostics) -> ActionDef {
    let what = t.what.clone();
    let mut groups = str_or_list(t, "group", d);
    groups.extend(str_or_list(t, "groups", d));
    if groups.is_empty() {
        d.push(src.diag(
            t.span.clone(),
            format!("{what} names no group to snapshot"),
            Some("add `groups = [\"aurora\", \"multi_az\"]`".into()),
        ));
    }
    let wait = t.bool("wait", d).map(|b| b.value).unwrap_or(true);
    ActionDef::Snapshot { groups, wait }
}

/// `dns.update`: zones to evacuate and/or weights to set.
fn parse_dns_update(
    src: &SourceFile,
    t: &mut TableReader<'_>,
    d: &mut Diagnostics,
) -> Option<ActionDef> {
    let what = t.what.clone();
    let group = t.req_str("group", GROUP_HINT, d);
    let evacuate = str_or_list(t, "evacuate", d);
    let weights = parse_weights(src, t, d);
    let return_to = t.str("return_to", d);
    let regions = DnsRegionDef {
        evacuate_region: t.str("evacuate_region", d),
        to_region: t.str("to_region", d),
        return_to_region: t.str("return_to_region", d),
    };
    if evacuate.is_empty() && weights.is_empty() && return_to.is_none() && regions.is_empty() {
        d.push(src.diag(
            t.span.clone(),
            format!("{what} says neither which zone to evacuate nor which weights to set"),
            Some("add `evacuate = \"${failed_az}\"` or `weights = { \"us-west-2a\" = 0 }` (or `evacuate_region = \"${failed_region}\"` for records valued per region)".into()),
        ));
    }
    let records_after = str_or_list(t, "records_after", d);
    check_dns_regions(
        src,
        &what,
        &regions,
        !evacuate.is_empty() || !weights.is_empty() || return_to.is_some(),
        !records_after.is_empty(),
        d,
    );
    let wait = t.bool("wait", d).map(|b| b.value).unwrap_or(true);
    Some(ActionDef::DnsUpdate {
        return_to,
        group: group?,
        evacuate,
        weights,
        wait,
        records_after,
        regions,
    })
}

/// The region fields of a `dns.update` step: a region step neither evacuates zones nor waits
/// for zonal failovers; it evacuates a region or fails back into one, not both; `to_region`
/// goes with `evacuate_region`.
fn check_dns_regions(
    src: &SourceFile,
    what: &str,
    r: &DnsRegionDef,
    zonal: bool,
    records_after: bool,
    d: &mut Diagnostics,
) {
    let Some(first) = [&r.evacuate_region, &r.return_to_region, &r.to_region]
        .into_iter()
        .flatten()
        .next()
    else {
        return;
    };
    let mut bad =
        |m: String, hint: &str| d.push(src.diag(first.span.clone(), m, Some(hint.into())));
    if zonal {
        bad(format!("{what} moves records between zones and between regions"), "a step evacuates zones (`evacuate`, `weights`, `return_to`) or a region (`evacuate_region`, `return_to_region`): use two steps");
    }
    if records_after {
        bad(format!("{what} has `records_after` and a region field"), "`records_after` waits for zonal failover steps; put a region step `after` the global switchover instead");
    }
    match (&r.evacuate_region, &r.return_to_region, &r.to_region) {
        (Some(_), Some(_), _) => bad(format!("{what} has both `evacuate_region` and `return_to_region`"), "a step either evacuates a region or fails back into one: keep one of them"),
        (None, _, Some(_)) => bad(format!("{what} has `to_region` without `evacuate_region`"), "`to_region` says where records leaving `evacuate_region` go: add `evacuate_region = \"${failed_region}\"`"),
        _ => {}
    }
}

/// The `weights` of a `dns.update` step: a table of zone = weight.
fn parse_weights(
    src: &SourceFile,
    t: &mut TableReader<'_>,
    d: &mut Diagnostics,
) -> Vec<(Spanned<String>, i64)> {
    let mut weights = vec![];
    if let Some(wv) = t.get("weights") {
        match &wv.kind {
            SKind::Table(entries) => {
                for (zk, zs, zv) in entries {
                    if let Some(w) =
                        crate::tomlx::expect_int(src, zv, &format!("weight of `{zk}`"), 0, 255, d)
                    {
                        weights.push((Spanned::new(zk.clone(), zs.clone()), w.value));
                    }
                }
            }
            _ => d.push(src.diag(
                wv.span.clone(),
                format!("`weights` in {} must be a table of zone = weight", t.what),
                None,
            )),
        }
    }
    weights
}

/// `http`: an endpoint of the environment and/or a url, method, headers, body, statuses.
fn parse_http(src: &SourceFile, t: &mut TableReader<'_>, d: &mut Diagnostics) -> ActionDef {
    let what = t.what.clone();
    let endpoint = t.str("endpoint", d);
    let url = t.str("url", d);
    if endpoint.is_none() && url.is_none() {
        d.push(src.diag(t.span.clone(), format!("{what} has neither `endpoint` nor `url`"), Some("name an endpoint of the environment (endpoint = \"status_page\") or give `url`".into())));
    }
    let method = t.str("method", d).map(|m| m.value.to_ascii_uppercase());
    if let Some(m) = &method {
        if !["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(&m.as_str()) {
            d.push(src.diag(
                t.span.clone(),
                format!("{what}: unsupported method `{m}`"),
                Some("one of GET, POST, PUT, PATCH, DELETE, HEAD".into()),
            ));
        }
    }
    let headers = parse_headers(src, t, d);
    let body = t.str("body", d);
    let expect_status = parse_expect_status(src, t, d);
    ActionDef::Http {
        endpoint,
        url,
        method,
        headers,
        body,
        expect_status,
    }
}

/// The `headers` of an `http` step: a table of (templated) strings.
fn parse_headers(
    src: &SourceFile,
    t: &mut TableReader<'_>,
    d: &mut Diagnostics,
) -> Vec<(String, Spanned<String>)> {
    let mut headers = vec![];
    if let Some(hv) = t.get("headers") {
        match &hv.kind {
            SKind::Table(entries) => {
                for (hk, _, hval) in entries {
                    if let Some(s) =
                        crate::tomlx::expect_str(src, hval, &format!("header `{hk}`"), d)
                    {
                        headers.push((hk.clone(), s));
                    }
                }
            }
            _ => d.push(src.diag(
                hv.span.clone(),
                "`headers` must be a table of strings",
                None,
            )),
        }
    }
    headers
}

/// The `expect_status` of an `http` step: one status or an array of them.
fn parse_expect_status(src: &SourceFile, t: &mut TableReader<'_>, d: &mut Diagnostics) -> Vec<u16> {
    let mut expect_status = vec![];
    if let Some(ev) = t.get("expect_status") {
        match &ev.kind {
            SKind::Array(items) => {
                for i in items {
                    if let Some(c) =
                        crate::tomlx::expect_int(src, i, "`expect_status`", 100, 599, d)
                    {
                        expect_status.push(c.value as u16);
                    }
                }
            }
            _ => {
                if let Some(c) = crate::tomlx::expect_int(src, ev, "`expect_status`", 100, 599, d) {
                    expect_status.push(c.value as u16);
                }
            }
        }
    }
    expect_status
}

/// `approval`: an optional message and approvers.
fn parse_approval(t: &mut TableReader<'_>, d: &mut Diagnostics) -> ActionDef {
    let message = t.str("message", d);
    let approvers = if t.has("approvers") {
        t.str_list("approvers", d)
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.value)
            .collect()
    } else {
        vec![]
    };
    let required = t
        .int("approvals", 1, 10, d)
        .map(|n| n.value as u32)
        .unwrap_or(1);
    ActionDef::Approval {
        message,
        approvers,
        required,
    }
}

/// `wait`: a required `duration`.
fn parse_wait(src: &SourceFile, t: &mut TableReader<'_>, d: &mut Diagnostics) -> ActionDef {
    let duration = if t.has("duration") {
        t.duration("duration", d).map(|s| s.value)
    } else {
        d.push(src.diag(
            t.span.clone(),
            format!("{} has no `duration`", t.what),
            Some("add `duration = \"30s\"`".into()),
        ));
        None
    };
    ActionDef::Wait {
        duration: duration.unwrap_or_default(),
    }
}

/// `health.assert`: zones and the state they must be in.
fn parse_health_assert(
    src: &SourceFile,
    t: &mut TableReader<'_>,
    d: &mut Diagnostics,
) -> Option<ActionDef> {
    let what = t.what.clone();
    let zones = str_or_list(t, "zone", d);
    if zones.is_empty() {
        d.push(src.diag(
            t.span.clone(),
            format!("{what} names no zone"),
            Some("add `zone = \"${failed_az}\"`".into()),
        ));
    }
    let expect = t.req_str("expect", "`expect = \"unhealthy\"` (don't evacuate a healthy zone) or `\"healthy\"` (don't fail into a sick one)", d);
    if let Some(e) = &expect {
        if e.value != "healthy" && e.value != "unhealthy" {
            d.push(src.diag(
                e.span.clone(),
                format!("`expect` in {what} is `{}`", e.value),
                Some("one of: healthy, unhealthy".into()),
            ));
        }
    }
    let rounds = t.int("rounds", 1, 100, d).map(|r| r.value as u32);
    Some(ActionDef::HealthAssert {
        zones,
        expect: expect?,
        rounds,
    })
}

/// ARC's bounds on a zonal shift's `expiresIn`.
pub const ZONAL_SHIFT_MIN: Duration = Duration::from_secs(60);
pub const ZONAL_SHIFT_MAX: Duration = Duration::from_secs(3 * 24 * 3600);
/// ARC's bound on a zonal shift's comment.
pub const ZONAL_SHIFT_COMMENT_MAX: usize = 128;

/// `arc.zonal_shift`: `group`, `away_from`, `expires_in` (default 1h), `comment`.
fn parse_zonal_shift(
    src: &SourceFile,
    t: &mut TableReader<'_>,
    d: &mut Diagnostics,
) -> Option<ActionDef> {
    let what = t.what.clone();
    let group = t.req_str("group", GROUP_HINT, d);
    let away_from = zonal_away_from(src, t, d);
    let expires_in = match t.duration("expires_in", d) {
        Some(e) if e.value < ZONAL_SHIFT_MIN || e.value > ZONAL_SHIFT_MAX => {
            d.push(src.diag(
                e.span.clone(),
                format!(
                    "`expires_in` in {what} is {}: ARC allows 1 minute to 3 days",
                    humantime::format_duration(e.value)
                ),
                Some("e.g. `expires_in = \"2h\"`; a run that needs longer can start the shift again before it expires".into()),
            ));
            e.value
        }
        Some(e) => e.value,
        None => Duration::from_secs(3600),
    };
    let comment = t.str("comment", d);
    if let Some(c) = &comment {
        if c.value.chars().count() > ZONAL_SHIFT_COMMENT_MAX {
            d.push(src.diag(
                c.span.clone(),
                format!(
                    "`comment` in {what} is {} characters long: ARC takes at most {ZONAL_SHIFT_COMMENT_MAX}",
                    c.value.chars().count()
                ),
                Some("shorten it; keep `${run.id}` in it (a shift whose answer was lost is found again by it)".into()),
            ));
        }
    }
    Some(ActionDef::ZonalShift {
        group: group?,
        away_from,
        expires_in,
        comment,
    })
}

/// The `away_from` zone of an `arc.*` step (required).
fn zonal_away_from(
    src: &SourceFile,
    t: &mut TableReader<'_>,
    d: &mut Diagnostics,
) -> Vec<Spanned<String>> {
    let away_from = str_or_list(t, "away_from", d);
    if away_from.is_empty() {
        d.push(src.diag(
            t.span.clone(),
            format!("{} does not say which zone traffic moves away from", t.what),
            Some("add `away_from = \"${failed_az}\"`".into()),
        ));
    }
    away_from
}

/// Duplicate ids, unknown `after` references and cycles.
fn check_graph(src: &SourceFile, rb: &Runbook, d: &mut Diagnostics) {
    check_unique_ids(src, rb, d);
    check_after(src, rb, d);
    check_records_after(src, rb, d);
    check_cycles(src, rb, d);
}

/// The `records_after` of a step: its own, for `dns.update` steps.
fn records_after(s: &StepDef) -> &[Spanned<String>] {
    match &s.action {
        ActionDef::DnsUpdate { records_after, .. } => records_after,
        _ => &[],
    }
}

/// Every `records_after` names a database failover step of the runbook.
fn check_records_after(src: &SourceFile, rb: &Runbook, d: &mut Diagnostics) {
    let ids: Vec<&str> = rb.steps.iter().map(|s| s.id.value.as_str()).collect();
    for s in &rb.steps {
        for a in records_after(s) {
            match rb.steps.iter().find(|x| x.id.value == a.value) {
                None => {
                    let hint = match did_you_mean(&a.value, ids.iter().copied()) {
                        Some(x) => format!("did you mean `{x}`?"),
                        None => format!("steps in this runbook: {}", ids.join(", ")),
                    };
                    d.push(src.diag(
                        a.span.clone(),
                        format!(
                            "step `{}`: `records_after` names `{}`, which is not a step of this runbook",
                            s.id.value, a.value
                        ),
                        Some(hint),
                    ));
                }
                Some(x)
                    if !matches!(
                        x.action,
                        ActionDef::FailoverCluster { .. } | ActionDef::FailoverInstance { .. }
                    ) =>
                {
                    d.push(src.diag(
                        a.span.clone(),
                        format!(
                            "step `{}`: `records_after` names `{}`, a `{}` step; records can only wait for database failovers",
                            s.id.value, a.value, x.action.name()
                        ),
                        Some("name `rds.failover_cluster` or `rds.failover_instance` steps; use `after` for any other step".into()),
                    ));
                }
                Some(_) => {}
            }
        }
    }
}

fn check_unique_ids(src: &SourceFile, rb: &Runbook, d: &mut Diagnostics) {
    let mut seen: HashMap<&str, &StepDef> = HashMap::new();
    for s in &rb.steps {
        if let Some(first) = seen.get(s.id.value.as_str()) {
            let (l, c) = src.line_col(first.id.span.start);
            d.push(src.diag(
                s.id.span.clone(),
                format!("step id `{}` is used twice", s.id.value),
                Some(format!(
                    "the first is at line {l}, column {c}; step ids must be unique"
                )),
            ));
        } else {
            seen.insert(&s.id.value, s);
        }
    }
}

/// Every `after` names another step of the runbook.
fn check_after(src: &SourceFile, rb: &Runbook, d: &mut Diagnostics) {
    let ids: Vec<&str> = rb.steps.iter().map(|s| s.id.value.as_str()).collect();
    for s in &rb.steps {
        for a in &s.after {
            if a.value == s.id.value {
                d.push(src.diag(
                    a.span.clone(),
                    format!("step `{}` waits for itself", s.id.value),
                    Some("remove it from `after`".into()),
                ));
            } else if !ids.contains(&a.value.as_str()) {
                let hint = match did_you_mean(&a.value, ids.iter().copied()) {
                    Some(x) => format!("did you mean `{x}`?"),
                    None => format!("steps in this runbook: {}", ids.join(", ")),
                };
                d.push(src.diag(
                    a.span.clone(),
                    format!(
                        "step `{}` comes after `{}`, which is not a step of this runbook",
                        s.id.value, a.value
                    ),
                    Some(hint),
                ));
            }
        }
    }
}

/// Cycle detection: DFS with colours; report each cycle once, at the edge that closes it.
fn check_cycles(src: &SourceFile, rb: &Runbook, d: &mut Diagnostics) {
    let index: BTreeMap<&str, usize> = rb
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.value.as_str(), i))
        .collect();
    let mut colour = vec![0u8; rb.steps.len()];
    let mut stack: Vec<usize> = vec![];
    for i in 0..rb.steps.len() {
        if colour[i] == 0 {
            dfs(i, rb, &index, &mut colour, &mut stack, src, d);
        }
    }
}

fn dfs(
    i: usize,
    rb: &Runbook,
    index: &BTreeMap<&str, usize>,
    colour: &mut [u8],
    stack: &mut Vec<usize>,
    src: &SourceFile,
    d: &mut Diagnostics,
) {
    colour[i] = 1;
    stack.push(i);
    for a in rb.steps[i].after.iter().chain(records_after(&rb.steps[i])) {
        let Some(&j) = index.get(a.value.as_str()) else {
            continue;
        };
        if j == i {
            continue;
        }
        if colour[j] == 1 {
            let pos = stack.iter().position(|&k| k == j).unwrap_or(0);
            let mut path: Vec<&str> = stack[pos..]
                .iter()
                .map(|&k| rb.steps[k].id.value.as_str())
                .collect();
            path.push(rb.steps[j].id.value.as_str());
            d.push(src.diag(
                a.span.clone(),
                format!("the steps form a cycle: {}", path.join(" -> after -> ")),
                Some("a step cannot wait, directly or not, for itself; remove one of these `after` entries".into()),
            ));
        } else if colour[j] == 0 {
            dfs(j, rb, index, colour, stack, src, d);
        }
    }
    stack.pop();
    colour[i] = 2;
}

/// Every `${var}` must name a parameter or a built-in; `when` must be a condition.
fn check_templates(src: &SourceFile, rb: &Runbook, d: &mut Diagnostics) {
    let params: Vec<&str> = rb.params.iter().map(|p| p.name.as_str()).collect();
    let known: Vec<&str> = params
        .iter()
        .copied()
        .chain(BUILTIN_VARS.iter().copied())
        .collect();
    for s in &rb.steps {
        let where_ = format!("step `{}`", s.id.value);
        let is_http = matches!(s.action, ActionDef::Http { .. });
        for f in s.action.templated() {
            check_variables(src, f, &where_, &known, &params, d);
            if !is_http {
                check_no_secret(src, f, &where_, d);
            }
        }
        if let ActionDef::Http {
            endpoint: Some(e), ..
        } = &s.action
        {
            if e.value.contains("${secret:") {
                d.push(src.diag(
                    e.span.clone(),
                    format!("`endpoint` of {where_} cannot be a secret"),
                    None,
                ));
            }
        }
        if let Some(w) = &s.when {
            check_variables(src, w, &format!("`when` of {where_}"), &known, &params, d);
            check_condition(src, rb, w, &where_, &known, d);
        }
    }
}

/// A field is a valid template whose variables are `known` (secrets aside).
fn check_variables(
    src: &SourceFile,
    f: &Spanned<String>,
    where_: &str,
    known: &[&str],
    params: &[&str],
    d: &mut Diagnostics,
) {
    match template::variables(&f.value) {
        Err(e) => d.push(src.diag(
            f.span.clone(),
            format!("bad template in {where_}: {e}"),
            Some("write `${name}`; `$${` is a literal `${`".into()),
        )),
        Ok(vars) => {
            for v in vars {
                if v.starts_with("secret:") {
                    continue;
                }
                if !known.contains(&v.as_str()) {
                    let hint = match did_you_mean(&v, known.iter().copied()) {
                        Some(s) => format!("did you mean `${{{s}}}`?"),
                        None if params.is_empty() => "declare it under [params]".to_string(),
                        None => format!(
                            "declare it under [params]; parameters: {}",
                            params.join(", ")
                        ),
                    };
                    d.push(src.diag(
                        f.span.clone(),
                        format!("unknown variable `${{{v}}}` in {where_}"),
                        Some(hint),
                    ));
                }
            }
        }
    }
}

/// Secrets are only for the url, headers and body of `http` steps.
fn check_no_secret(src: &SourceFile, f: &Spanned<String>, where_: &str, d: &mut Diagnostics) {
    if let Ok(vars) = template::variables(&f.value) {
        if let Some(v) = vars.iter().find(|v| v.starts_with("secret:")) {
            d.push(src.diag(f.span.clone(), format!("`${{{v}}}` in {where_}: secrets can only be used in the url, headers and body of `http` steps"), Some("secrets are read from the process environment at call time, for HTTP requests only".into())));
        }
    }
}

/// `when` must be a condition whatever the variables' values.
fn check_condition(
    src: &SourceFile,
    rb: &Runbook,
    w: &Spanned<String>,
    where_: &str,
    known: &[&str],
    d: &mut Diagnostics,
) {
    // Parse with every variable replaced by a placeholder value.
    // Bool parameters stand in as `true`; anything else as a word, so a condition that
    // is only a string parameter is caught here rather than at plan time.
    let mut vars = BTreeMap::new();
    for k in known {
        let is_bool = rb
            .params
            .iter()
            .any(|p| p.name == *k && p.kind == ParamKind::Bool);
        vars.insert(
            k.to_string(),
            if is_bool {
                "true".to_string()
            } else {
                "some-value".to_string()
            },
        );
    }
    if let Ok(e) = template::render(&w.value, &vars) {
        if let Err(msg) = template::eval_condition(&e) {
            d.push(
                src.diag(
                    w.span.clone(),
                    format!("`when` of {where_} is not a condition: {msg}"),
                    Some(
                        "examples: when = \"${notify} == true\", when = \"${env.name} != 'prod'\""
                            .into(),
                    ),
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Runbook, Diagnostics> {
        Runbook::parse(SourceFile::new("rb.toml", text))
    }

    #[test]
    fn regression_secret_outside_http_is_rejected() {
        let e = parse("name = \"x\"\n[[steps]]\nid = \"a\"\naction = \"rds.failover_cluster\"\ngroup = \"${secret:X}\"\nevacuate = \"us-west-2a\"\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("secrets can only be used in the url, headers and body of `http` steps"),
            "{e}"
        );
    }

    #[test]
    fn regression_when_with_a_string_parameter_fails_validation() {
        let e = parse("name = \"x\"\n[params.mode]\ndefault = \"fast\"\n[[steps]]\nid = \"a\"\naction = \"wait\"\nduration = \"1s\"\nwhen = \"${mode}\"\n").unwrap_err();
        assert!(e.to_string().contains("is not a condition"), "{e}");
        parse("name = \"x\"\n[params.go]\ntype = \"bool\"\ndefault = \"true\"\n[[steps]]\nid = \"a\"\naction = \"wait\"\nduration = \"1s\"\nwhen = \"${go}\"\n").unwrap();
    }

    #[test]
    fn regression_zero_timeout_is_refused() {
        let e = parse("name = \"x\"\n[[steps]]\nid = \"a\"\naction = \"wait\"\nduration = \"1s\"\ntimeout = \"0s\"\n").unwrap_err();
        assert!(e.to_string().contains("too short for any step"), "{e}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let e = parse("name = \"x\"\n[[steps]]\nid = \"a\"\naction = \"wait\"\n[[steps]]\nid = \"a\"\naction = \"http\"\nurl = \"${nope}\"\nbogus = 1\n").unwrap_err();
        let s = e.to_string();
        assert!(s.contains("has no `duration`"), "{s}");
        assert!(s.contains("step id `a` is used twice"), "{s}");
        assert!(s.contains("unknown variable `${nope}`"), "{s}");
        assert!(s.contains("unknown key `bogus`"), "{s}");
        assert_eq!(e.len(), 4, "{s}");
    }
}
