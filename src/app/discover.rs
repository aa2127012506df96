//! `failover discover`: read an account (read-only, paged, paced) and write the environment
//! file it means, or show how an existing one would change and merge only when asked.
//! Classification and merging are pure (`crate::discover`); this is the IO around them.

use super::AppError;
use crate::cloud::aws::AwsSettings;
use crate::cloud::model::CallCounts;
use crate::diag::SourceFile;
use crate::discover::{self, Discovered, GroupBy, Listing, Merged, Options};
use crate::env::Environment;
use crate::types::Zone;
use std::path::PathBuf;
use std::time::Duration;

/// What to discover and where to put it.
#[derive(Clone, Debug)]
pub struct DiscoverOrder {
    pub env: String,
    pub region: String,
    pub tags: Vec<(String, String)>,
    /// Hosted zones by name or id; none: every hosted zone of the account.
    pub hosted_zones: Vec<String>,
    pub zones: Option<Vec<String>>,
    pub group_by: GroupBy,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    /// The file to write; `None`: stdout only.
    pub output: Option<PathBuf>,
    /// Merge into an existing file instead of only showing the difference.
    pub merge: bool,
}

/// What discover found and did.
#[derive(Debug, serde::Serialize)]
pub struct DiscoverReport {
    pub discovered: Discovered,
    /// The environment file's text as discover would write it.
    pub text: String,
    pub path: Option<PathBuf>,
    /// The file existed: `diff` shows how it would change; it is written only with `--merge`.
    pub existed: bool,
    pub diff: Option<String>,
    pub written: bool,
    pub merged: Option<Merged>,
    pub calls: CallCounts,
}

fn input(msg: String) -> AppError {
    AppError::Input(msg)
}

/// Discover, render or merge, check that the result is a valid environment, and write it
/// (a new file; an existing one only with `merge`).
pub async fn discover(order: DiscoverOrder) -> Result<DiscoverReport, AppError> {
    let existing = match &order.output {
        Some(p) if p.exists() => Some(std::fs::read_to_string(p).map_err(|e| {
            input(format!("error: cannot read {}: {e}\n  hint: check its permissions, or write elsewhere with --output FILE", p.display()))
        })?),
        _ => None,
    };
    let opts = options(&order, existing.as_deref())?;
    let settings = AwsSettings {
        region: order.region.clone(),
        profile: opts.profile.clone(),
        endpoint_url: opts.endpoint_url.clone(),
        operation_timeout: Duration::from_secs(30),
    };
    let (listing, calls) = list(&settings, &order.hosted_zones).await?;
    let discovered = discover::classify(&listing, &opts).map_err(|e| {
        input(format!(
            "error: {e}\n  hint: check --region, or name the zones with --zones {r}a,{r}b,{r}c",
            r = order.region
        ))
    })?;
    let (text, merged) = match &existing {
        None => (discover::render(&discovered, &opts), None),
        Some(old) => {
            let m = discover::merge(old, &discovered).map_err(|e| {
                input(format!("error: {} is not valid TOML, so discover cannot merge into it: {e}\n  hint: fix it, or write elsewhere with --output FILE", order.output.as_ref().map(|p| p.display().to_string()).unwrap_or_default()))
            })?;
            (m.text.clone(), Some(m))
        }
    };
    check(&order, &text)?;
    let diff = existing.as_deref().map(|old| {
        let name = order
            .output
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        similar::TextDiff::from_lines(old, &text)
            .unified_diff()
            .context_radius(2)
            .header(&name, &format!("{name} (discovered)"))
            .to_string()
    });
    let write = order.output.is_some() && (existing.is_none() || order.merge);
    if let (true, Some(p)) = (write, &order.output) {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::write(p, &text).map_err(|e| {
            input(format!("error: cannot write {}: {e}\n  hint: write elsewhere with --output FILE, or print it with --output -", p.display()))
        })?;
    }
    Ok(DiscoverReport {
        discovered,
        text,
        path: order.output.clone(),
        existed: existing.is_some(),
        diff,
        written: write,
        merged,
        calls,
    })
}

/// The classification options; AWS access from the flags, else from the existing file.
fn options(order: &DiscoverOrder, existing: Option<&str>) -> Result<Options, AppError> {
    let from_file =
        existing.and_then(|t| Environment::parse(SourceFile::new("existing", t), &order.env).ok());
    let (profile, endpoint_url) = match (&order.profile, &order.endpoint_url, &from_file) {
        (None, None, Some(e)) => (e.aws.profile.clone(), e.aws.endpoint_url.clone()),
        _ => (order.profile.clone(), order.endpoint_url.clone()),
    };
    let zones = match &order.zones {
        Some(z) => {
            let zones: Vec<Zone> = z.iter().map(|s| Zone::new(s.trim())).collect();
            if let Some(bad) = zones.iter().find(|z| z.region().as_str() != order.region) {
                return Err(input(format!("error: --zones: `{bad}` is not a zone of {}\n  hint: zones are named after their region, e.g. {}a", order.region, order.region)));
            }
            Some(zones)
        }
        None => from_file
            .as_ref()
            .map(|e| e.zones.clone())
            .filter(|z| !z.is_empty()),
    };
    Ok(Options {
        env_name: order.env.clone(),
        region: order.region.clone(),
        zones,
        tags: order.tags.clone(),
        group_by: order.group_by.clone(),
        profile,
        endpoint_url,
    })
}

/// Every cluster and instance of the region and the records of the hosted zones.
async fn list(
    settings: &AwsSettings,
    hosted: &[String],
) -> Result<(Listing, CallCounts), AppError> {
    let (inv, dns, meter) = super::wiring::inventory_ports(settings).await;
    let cloud = |doing: &str| {
        let doing = doing.to_string();
        move |e| AppError::cloud(doing, e)
    };
    let clusters = inv
        .list_clusters()
        .await
        .map_err(cloud("listing the DB clusters"))?;
    let instances = inv
        .list_instances()
        .await
        .map_err(cloud("listing the DB instances"))?;
    let zones = if hosted.is_empty() {
        inv.list_hosted_zones()
            .await
            .map_err(cloud("listing the hosted zones"))?
    } else {
        let mut z = vec![];
        for h in hosted {
            z.push(
                dns.find_hosted_zone(h)
                    .await
                    .map_err(cloud(&format!("finding hosted zone {h}")))?,
            );
        }
        z
    };
    let mut hosted_zones = vec![];
    for z in zones {
        let records = dns
            .list_record_sets(&z.id)
            .await
            .map_err(cloud(&format!("listing the records of {}", z.name)))?;
        hosted_zones.push((z, records));
    }
    Ok((
        Listing {
            clusters,
            instances,
            hosted_zones,
        },
        meter.counts(),
    ))
}

/// The text must be an environment the tool accepts (a bug otherwise, never written).
fn check(order: &DiscoverOrder, text: &str) -> Result<(), AppError> {
    let name = order
        .output
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| format!("{}.toml", order.env));
    Environment::parse(SourceFile::new(name, text), &order.env)
        .map(|_| ())
        .map_err(|d| {
            input(format!("{d}\n\nerror: the discovered environment is not valid (nothing was written)\n  hint: if the file existed, fix the problems above in it; otherwise this is a bug in discover: report it with this output"))
        })
}
