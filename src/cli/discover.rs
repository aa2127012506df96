//! `failover discover` and `failover schema`: their arguments and how their results print.

use super::args::{exit, Output};
use clap::{Args, ValueEnum};
use failover::app::discover::{DiscoverOrder, DiscoverReport};
use failover::app::{self, AppError};
use failover::discover::GroupBy;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct DiscoverArgs {
    /// The environment's name: the file is <config-dir>/<ENV>.toml unless --output says otherwise.
    #[arg(long)]
    pub env: String,
    /// The AWS region to read, e.g. us-east-1.
    #[arg(long)]
    pub region: String,
    /// Only clusters and instances with this tag, as key=value (repeatable: all must match).
    #[arg(long = "tag", value_parser = super::args::parse_kv)]
    pub tags: Vec<(String, String)>,
    /// A hosted zone to read records from, by name or id (repeatable; default: every one).
    #[arg(long = "hosted-zone")]
    pub hosted_zones: Vec<String>,
    /// The zones in order of preference, comma separated (default: the zones the DB instances
    /// are in, or the existing file's).
    #[arg(long, value_delimiter = ',')]
    pub zones: Option<Vec<String>>,
    /// Group clusters and instances by the value of this tag (clusters_<value>, ...).
    #[arg(long, conflicts_with = "group_by_engine")]
    pub group_by_tag: Option<String>,
    /// Group clusters and instances by engine (clusters_aurora_postgresql, ...). Default: one
    /// group per kind, named as the stock runbooks expect (aurora, multi_az, storefront).
    #[arg(long)]
    pub group_by_engine: bool,
    /// AWS profile (default: the existing file's, else the default credential chain).
    #[arg(long)]
    pub profile: Option<String>,
    /// A local AWS peer (moto) instead of AWS.
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// Where to write: a file, or `-` for stdout (default: <config-dir>/<ENV>.toml).
    #[arg(long = "output-file", short = 'o')]
    pub output_file: Option<PathBuf>,
    /// The file exists: merge what was discovered into it (default: only show the difference).
    #[arg(long)]
    pub merge: bool,
    /// The report: text for people, json for machines.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
}

/// The file formats `failover schema` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SchemaFormat {
    Runbook,
    Environment,
    Topology,
}

pub fn schema(format: SchemaFormat) -> Result<u8, AppError> {
    let s = match format {
        SchemaFormat::Runbook => failover::schema::runbook(),
        SchemaFormat::Environment => failover::schema::environment(),
        SchemaFormat::Topology => failover::cloud::sim::topology::json_schema(),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&s).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    );
    Ok(exit::OK)
}

pub async fn discover(config_dir: &Path, a: DiscoverArgs) -> Result<u8, AppError> {
    let output = match &a.output_file {
        Some(p) if p.as_os_str() == "-" => None,
        Some(p) => Some(p.clone()),
        None => Some(failover::env::Environment::path_for(config_dir, &a.env)),
    };
    let group_by = match (&a.group_by_tag, a.group_by_engine) {
        (Some(t), _) => GroupBy::Tag(t.clone()),
        (None, true) => GroupBy::Engine,
        (None, false) => GroupBy::Kind,
    };
    let order = DiscoverOrder {
        env: a.env.clone(),
        region: a.region.clone(),
        tags: a.tags.clone(),
        hosted_zones: a.hosted_zones.clone(),
        zones: a.zones.clone(),
        group_by,
        profile: a.profile.clone(),
        endpoint_url: a.endpoint_url.clone(),
        output,
        merge: a.merge,
    };
    let r = app::discover::discover(order).await?;
    match a.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&r).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
        ),
        Output::Text => print_report(&r, &a.env),
    }
    Ok(exit::OK)
}

fn print_report(r: &DiscoverReport, env: &str) {
    let d = &r.discovered;
    let (c, i, n) = d.count();
    let Some(path) = &r.path else {
        print!("{}", r.text);
        return;
    };
    let zones: Vec<&str> = d.zones.iter().map(|z| z.as_str()).collect();
    println!(
        "Discovered {c} cluster(s), {i} instance(s) and {n} per-zone record(s) in {} group(s) over {}; {} not classified, {} left out by --tag ({}).",
        d.groups.len(),
        zones.join(", "),
        d.unclassified.len(),
        d.filtered_out,
        r.calls.line()
    );
    match (&r.merged, r.written) {
        (None, true) => println!("Wrote {}.", path.display()),
        (Some(m), true) => {
            println!(
                "Merged into {}: {} added, everything else kept.",
                path.display(),
                m.added.len()
            );
            print_merge(m);
        }
        (Some(m), false) => {
            if r.diff.as_deref().is_some_and(|d| !d.is_empty()) {
                print!("{}", r.diff.as_deref().unwrap_or_default());
                println!("{} exists: nothing was written. Run again with --merge to apply the changes above ({} added; nothing of the file is removed).", path.display(), m.added.len());
            } else {
                println!("{} is up to date: nothing to add.", path.display());
            }
            print_merge(m);
        }
        (None, false) => {}
    }
    let missing = d.missing_stock_groups();
    if missing.is_empty() {
        println!(
            "Rehearse it: failover plan runbooks/az-evacuation.toml --env {env} -p failed_az={}",
            zones.first().copied().unwrap_or("ZONE")
        );
    } else {
        println!(
            "runbooks/az-evacuation.toml names the groups {}; this environment has no {}: copy the runbook and name your groups ({}), or discover again without --group-by-*.",
            failover::discover::STOCK_GROUPS.join(", "),
            missing.join(", "),
            d.groups.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }
}

fn print_merge(m: &failover::discover::Merged) {
    if !m.not_found.is_empty() {
        println!(
            "{} resource(s) listed in the file were not found this time (kept): {}",
            m.not_found.len(),
            m.not_found
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for g in &m.renamed {
        println!("The file's group `{g}` holds another kind: the discovered one went into `{g}_discovered`.");
    }
}
