//! The command line, as clap types. Parsing only: `cli::dispatch` turns a parsed command into
//! a use-case call.

use clap::{Args, Parser, Subcommand, ValueEnum};
use failover::types::RunId;
use std::path::PathBuf;

/// Exit codes (documented in README.md and docs/cli.md).
pub mod exit {
    /// The command did what was asked.
    pub const OK: u8 = 0;
    /// A run (or rollback) finished with a failed step, or a plan has failing preconditions.
    pub const RUN_FAILED: u8 = 1;
    /// Bad input: runbook, environment, parameters or command line. Nothing was called.
    pub const INVALID: u8 = 2;
    /// AWS (or the local peer) could not be read: credentials, network, permissions.
    pub const CLOUD: u8 = 3;
    /// The journal could not be opened or written.
    pub const JOURNAL: u8 = 4;
    /// Refused: approving one's own run, unknown run or step, nothing to roll back, resources
    /// leased by another run.
    pub const REFUSED: u8 = 5;
    /// The run was interrupted (Ctrl-C, SIGTERM) between calls; `failover resume` continues it.
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Parser, Debug)]
#[command(
    name = "failover",
    version,
    about = "Disaster-recovery runbooks as code: validate, rehearse and run AZ evacuations against AWS RDS and Route 53"
)]
pub struct Cli {
    /// Journal file (SQLite). Default: $FAILOVER_JOURNAL, else $XDG_STATE_HOME/failover/journal.db,
    /// else ~/.local/state/failover/journal.db, else .failover/failover/journal.db
    #[arg(long, global = true, env = "FAILOVER_JOURNAL")]
    pub journal: Option<PathBuf>,
    /// Directory of environment files (<env>.toml).
    #[arg(
        long,
        global = true,
        default_value = "config",
        env = "FAILOVER_CONFIG_DIR"
    )]
    pub config_dir: PathBuf,
    /// More logging (-v: debug, -vv: trace). RUST_LOG also works.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log lines on stderr: `text` for people, `json` (one object a line, with the run id and
    /// step id on every line of a run) for log shippers.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "FAILOVER_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Md,
    Json,
    Html,
}

#[derive(Subcommand, Debug)]
pub enum DrillsCommand {
    /// Run the drills that are due now (for cron-less setups; `failover serve` does it on a
    /// timer): a missed or failed drill is journaled and notified.
    RunDue {
        /// Take this instant as now (RFC 3339, e.g. 2026-12-01T03:00:00Z).
        #[arg(long)]
        now: Option<String>,
        /// Only this environment.
        #[arg(long)]
        env: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check runbooks (syntax, fields, steps graph, templates) and, against each environment
    /// in the config directory (or --env), their groups and endpoints. No AWS call.
    Validate {
        /// Runbook files.
        #[arg(required = true)]
        runbooks: Vec<PathBuf>,
        /// Only check against this environment.
        #[arg(long)]
        env: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Dry run: read the current state (read-only calls) and print the exact calls a run would make.
    Plan {
        #[command(flatten)]
        target: Target,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Static stability for a region failure: the steps that depend on the failed region's
    /// control plane (its RDS or CloudWatch endpoint, Route 53's in us-east-1, endpoints
    /// hosted in it), each with what to use instead. Exit 1 when there is any.
    Lint {
        #[command(flatten)]
        target: Target,
        /// The region that fails (default: the runbook's `failed_region` parameter, else the
        /// environment's region).
        #[arg(long)]
        failed_region: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Print the least-privilege IAM policy (JSON) a runbook needs in an environment: every
    /// action its steps may call, on the environment's resource ARNs. No AWS call.
    IamPolicy {
        #[command(flatten)]
        target: Target,
        /// The 12-digit account id when the environment has no `[aws] account_id`.
        #[arg(long)]
        account: Option<String>,
        /// Also what the environment's [health] probes read (for `failover watch` / `serve`).
        #[arg(long)]
        watch: bool,
    },
    /// Run a runbook live: every mutating call is journaled before it is made.
    Run {
        #[command(flatten)]
        target: Target,
        /// Who starts the run (default: $FAILOVER_USER, else $USER).
        #[arg(long)]
        by: Option<String>,
        /// Pause before the first step until another person approves (`failover approve`).
        #[arg(long)]
        require_approval: bool,
        /// Use this run id (set by `failover watch` when it starts a run).
        #[arg(long, hide = true)]
        run_id: Option<RunId>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// List runs from the journal, newest first.
    Runs {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Show one run: steps, calls made, outcomes, timings.
    Show {
        run_id: String,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Continue a run that stopped (crashed, interrupted, failed, or whose process is gone):
    /// the runbook is bound again, the run's leases taken over, finished steps skipped, calls
    /// in doubt re-observed before anything is called again.
    Resume {
        /// The run's whole id.
        run_id: String,
        /// Who resumes (default: $FAILOVER_USER, else $USER).
        #[arg(long)]
        by: Option<String>,
        /// Go on even though the runbook file changed since the run started (the difference
        /// is shown).
        #[arg(long)]
        allow_changed_runbook: bool,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// End a run for good: status `aborted`, its leases released. If its process is alive it
    /// makes no further call and stops.
    Abort {
        /// The run's whole id.
        run_id: String,
        /// Who aborts (default: $FAILOVER_USER, else $USER).
        #[arg(long)]
        by: Option<String>,
        /// Why, for the journal.
        #[arg(long)]
        reason: Option<String>,
    },
    /// List the leases runs hold on resources (clusters, instances, records, traffic ladders),
    /// with their holder, fencing token and expiry.
    Locks {
        /// Also list released and expired leases.
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Check the journal: its hash chain (keyed with HMAC when $FAILOVER_AUDIT_KEY was set
    /// when it was created), the heads remembered outside it, and every table against the
    /// events that mirror it. Names the first bad event and what is wrong with it.
    Verify {
        /// A head remembered earlier (`SEQ:HASH`, from `failover audit head` or a run's end):
        /// it must still be in the journal, unchanged (repeatable).
        #[arg(long = "expect-head")]
        expect_head: Vec<String>,
        /// A file of remembered heads, one `SEQ:HASH ...` a line (an environment's `[audit]
        /// anchor_file`; default: $FAILOVER_AUDIT_ANCHOR).
        #[arg(long, env = "FAILOVER_AUDIT_ANCHOR")]
        anchor: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// The audit trail: the journal's head to remember, and its events for a SIEM.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Release an approval gate of a run that is waiting. The initiator cannot approve their
    /// own run; names are compared after trimming and case folding; a gate may need several
    /// people (`approvals = N`).
    Approve {
        /// The run's whole id.
        run_id: String,
        /// The approval step (default: the one the run is waiting on).
        #[arg(long)]
        step: Option<String>,
        /// Who approves (default: $FAILOVER_USER, else $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Rehearse a runbook in the simulated cloud: a modelled topology, injected faults, a
    /// virtual clock. Prints the timeline, the verdict, time to recover and the invariants.
    Simulate {
        runbook: PathBuf,
        /// Topology file (TOML), e.g. config/sim/storefront.toml.
        #[arg(long)]
        topology: PathBuf,
        /// Environment to bind the runbook against (default: the one the topology describes).
        #[arg(long)]
        env: Option<String>,
        /// Parameter, as name=value (repeatable).
        #[arg(short = 'p', long = "param", value_parser = parse_kv)]
        params: Vec<(String, String)>,
        /// A fault, e.g. "az-down us-west-2a at 0s" (repeatable; adds to the topology's).
        #[arg(long = "fault")]
        faults: Vec<String>,
        /// Seed: the same seed gives the same timeline (default: the topology's, else 1).
        #[arg(long)]
        seed: Option<u64>,
        /// Show every read call in the timeline.
        #[arg(long)]
        verbose_timeline: bool,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// No AWS account, nothing to install: a 3-zone storefront loses us-west-2a and the AZ
    /// evacuation runbook runs in the simulated cloud.
    Demo {
        #[arg(long)]
        seed: Option<u64>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Probe the environment's zones and print their health: state, probes, reasons.
    Health {
        #[arg(long)]
        env: String,
        /// Probe rounds before reporting (a zone is declared unhealthy only after
        /// `unhealthy_after` bad rounds).
        #[arg(long, default_value_t = 1)]
        rounds: u32,
        /// Keep probing and print the report after every round.
        #[arg(long)]
        watch: bool,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Run detection continuously and, when a zone turns unhealthy, act on the environment's
    /// [health.trigger] policy: start the runbook (auto), start it paused at an approval gate
    /// (approval), or only notify (notify). A cooldown refuses a second automatic start.
    Watch {
        #[arg(long)]
        env: String,
        /// Stop after this many zone events (for scripts and drills).
        #[arg(long)]
        max_events: Option<u32>,
    },
    /// Show the environment's load-shedding ladder and which tiers are shed, since when, by which run.
    Traffic {
        #[arg(long)]
        env: String,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Create, in a local AWS peer (moto on loopback), every resource an environment names.
    LocalPeer {
        #[command(subcommand)]
        command: LocalPeerCommand,
    },
    /// Run the HTTP service: the JSON API under /v1 (runs, approvals, runbooks, environments,
    /// health, traffic, leases; OpenAPI at /v1/openapi.json), live events (server-sent events)
    /// and /metrics. Runs it starts run in its process with the CLI's leases and journal.
    /// SIGTERM or Ctrl-C: no new run; runs stop between calls, resumable.
    Serve {
        /// Address to listen on, HOST:PORT (port 0 picks a free one). Default: the service
        /// file's `listen`, else 127.0.0.1:8080.
        #[arg(long, env = "FAILOVER_LISTEN")]
        listen: Option<String>,
        /// Directory of the runbooks the API may start. Default: the service file's
        /// `runbooks`, else runbooks/.
        #[arg(long, env = "FAILOVER_RUNBOOKS")]
        runbooks: Option<PathBuf>,
        /// The service file (listen, runbooks, hashed tokens with their roles). Default:
        /// <config-dir>/serve/serve.toml.
        #[arg(long, env = "FAILOVER_SERVE_CONFIG")]
        serve_config: Option<PathBuf>,
        /// Do not run the probes of the environments with [health] (nor, so, their watch
        /// loops: the service then starts no run on a zone failure).
        #[arg(long)]
        no_probes: bool,
        /// How often every runbook's dry-run plan is checked for each zone's failure
        /// (1s to 24h), or `off`. Default: the service file's `readiness_interval`, else 5m.
        #[arg(long, env = "FAILOVER_READINESS_INTERVAL")]
        readiness_interval: Option<String>,
    },
    /// API tokens for `failover serve`: make one, or hash one for the service file.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Restore the DNS records a run changed, exactly as they were before it.
    Rollback {
        run_id: String,
        /// Who rolls back (default: $FAILOVER_USER, else $USER).
        #[arg(long)]
        by: Option<String>,
        /// Print what would be restored; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Restore records even if they were changed after the run.
        #[arg(long)]
        force: bool,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// A run's report from the journal: trigger, detection, approvals, steps, calls, traffic
    /// shed and restored, databases promoted, time to detect/mitigate/recover, and for a drill
    /// its phases against the previous drills (docs/report.md).
    Report {
        run_id: String,
        #[arg(long, value_enum, default_value = "md")]
        format: ReportFormat,
        /// Write the report to this file instead of stdout.
        #[arg(short = 'o', long = "output")]
        out: Option<PathBuf>,
    },
    /// Rehearse a runbook: pre-check, run (mode `drill`), verify the end state, fail back to
    /// the starting state and verify it, each phase timed and journaled (docs/drills.md).
    Drill {
        #[command(flatten)]
        target: Target,
        /// Who runs the drill (default: $FAILOVER_USER, else $USER).
        #[arg(long)]
        by: Option<String>,
        /// Leave the environment as the runbook left it (no failback).
        #[arg(long)]
        no_failback: bool,
        /// Stop the run and fail back when it has taken this long (e.g. 30m).
        #[arg(long, value_parser = parse_duration)]
        max_duration: Option<std::time::Duration>,
        /// A [health] probe of the environment: when it fails, the run stops and fails back
        /// (repeatable).
        #[arg(long = "stop-on")]
        stop_on: Vec<String>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// The drill schedules of the environments (`[[drills]]`): last results and next runs;
    /// `drills run-due` runs the drills that are due.
    Drills {
        #[command(subcommand)]
        command: Option<DrillsCommand>,
        /// Only this environment.
        #[arg(long)]
        env: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Read an AWS account (read-only, paged calls) and write the environment file it means:
    /// clusters and Multi-AZ instances grouped, per-zone records recognised, the rest listed
    /// with the reason. An existing file is shown a diff and merged only with --merge.
    Discover(super::discover::DiscoverArgs),
    /// Print the JSON Schema of a file format, for TOML editors (taplo, Even Better TOML).
    Schema {
        #[arg(value_enum)]
        format: super::discover::SchemaFormat,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions { shell: clap_complete::Shell },
    /// Write man pages (failover.1 and one per subcommand) into DIR, or print failover(1) on
    /// stdout when no DIR is given.
    Man { dir: Option<PathBuf> },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Print the journal's last event as `SEQ:HASH`: remember it outside the journal, then
    /// `failover verify --expect-head SEQ:HASH` catches a deleted or rewritten tail.
    Head,
    /// Write every event as a JSON line (stdout), in order, for a SIEM.
    Export {
        /// Start at this event number.
        #[arg(long, default_value_t = 1)]
        since: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Print a new random token and the [[tokens]] entry (its SHA-256) for the service file.
    New {
        /// The person or system the token stands for (the journal records this name).
        #[arg(long)]
        name: String,
        /// Role (repeatable): viewer, operator, approver.
        #[arg(long = "role", required = true, value_parser = ["viewer", "operator", "approver"])]
        roles: Vec<String>,
    },
    /// Read a token on standard input and print its SHA-256, as the service file stores it.
    Hash,
}

#[derive(Subcommand, Debug)]
pub enum LocalPeerCommand {
    /// Create the environment's clusters, instances, hosted zones and records in its local peer.
    Seed {
        #[arg(long)]
        env: String,
    },
}

pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration ({e}); e.g. 30m, 1h30m"))
}

/// The runbook, environment and parameters of the commands that bind a runbook (`plan`,
/// `run`, `drill`, `lint`, `iam-policy`).
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// Runbook file, e.g. runbooks/az-evacuation.toml.
    pub runbook: PathBuf,
    /// Environment: config/<ENV>.toml.
    #[arg(long)]
    pub env: String,
    /// Parameter, as name=value (repeatable).
    #[arg(short = 'p', long = "param", value_parser = parse_kv)]
    pub params: Vec<(String, String)>,
}

pub fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!(
            "`{s}` is not name=value (example: -p failed_az=us-west-2a)"
        )),
    }
}
