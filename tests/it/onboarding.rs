//! Onboarding outputs of the real binary: shell completions and man pages generated from the
//! CLI definition (every subcommand in each), and `--log-format json` (every line an object,
//! the run's lines carrying its run id, step lines their step id).

use crate::common::topo::repo;
use std::process::{Command, Output, Stdio};

fn failover(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_failover"));
    c.current_dir(repo())
        .env_remove("FAILOVER_JOURNAL")
        .env_remove("FAILOVER_CONFIG_DIR")
        .env_remove("FAILOVER_LOG_FORMAT")
        .env_remove("RUST_LOG")
        .env("HOME", std::env::temp_dir())
        .args(args)
        .stdin(Stdio::null());
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("run failover")
}

fn stdout_of(args: &[&str]) -> String {
    let o = failover(args, &[]);
    assert!(
        o.status.success(),
        "failover {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8")
}

/// The subcommands `failover --help` lists (the CLI definition as built).
fn subcommands() -> Vec<String> {
    let help = stdout_of(&["--help"]);
    let start = help.find("Commands:").expect("a Commands: section") + "Commands:".len();
    let end = help[start..].find("\n\n").map_or(help.len(), |e| start + e);
    let names: Vec<String> = help[start..end]
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_string)
        .collect();
    assert!(names.len() >= 20, "too few subcommands found: {names:?}");
    for expected in ["plan", "run", "completions", "man"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    names
}

#[test]
fn completions_name_every_subcommand_in_each_shell() {
    let commands = subcommands();
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout_of(&["completions", shell]);
        let missing: Vec<&String> = commands
            .iter()
            .filter(|c| !script.contains(c.as_str()))
            .collect();
        assert!(missing.is_empty(), "{shell} completions miss {missing:?}");
        // Global flags and value hints are there too.
        assert!(script.contains("log-format"), "{shell}: no --log-format");
    }
    let o = failover(&["completions", "tcsh"], &[]);
    assert_eq!(o.status.code(), Some(2), "an unknown shell is refused");
    assert!(String::from_utf8_lossy(&o.stderr).contains("possible values: bash"));
}

#[test]
fn man_pages_are_written_for_every_subcommand() {
    let commands = subcommands();
    let dir = tempfile::tempdir().unwrap();
    let out = stdout_of(&["man", dir.path().to_str().unwrap()]);
    assert!(out.starts_with("Wrote "), "{out}");
    // roff writes a hyphen as `\-`.
    let page = std::fs::read_to_string(dir.path().join("failover.1"))
        .unwrap()
        .replace("\\-", "-");
    assert!(page.contains(".TH failover 1"), "a roff page: {page:.200}");
    for c in &commands {
        assert!(page.contains(c.as_str()), "failover.1 does not name `{c}`");
        let sub = dir.path().join(format!("failover-{c}.1"));
        let text =
            std::fs::read_to_string(&sub).unwrap_or_else(|e| panic!("{}: {e}", sub.display()));
        assert!(text.contains(".SH SYNOPSIS"), "{}", sub.display());
    }
    // Without a directory: failover(1) on stdout.
    assert!(stdout_of(&["man"]).contains(".SH SUBCOMMANDS"));
}

/// `--log-format json -v` on a run (the simulated environment: no AWS): every stderr line is a
/// JSON object; the run's lines carry its id, the steps' lines their step id.
#[test]
fn json_logs_carry_the_run_and_step_ids() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.db");
    let run_id = "r-json-logs-1";
    let o = failover(
        &[
            "--log-format",
            "json",
            "-v",
            "--journal",
            journal.to_str().unwrap(),
            "run",
            "runbooks/az-evacuation.toml",
            "--env",
            "simulated",
            "-p",
            "failed_az=us-west-2a",
            "--run-id",
            run_id,
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let run_of = |v: &serde_json::Value| {
        v["spans"].as_array().and_then(|s| {
            s.iter()
                .find_map(|s| s["run_id"].as_str().map(str::to_string))
        })
    };
    let step_of = |v: &serde_json::Value| {
        v["spans"].as_array().and_then(|s| {
            s.iter()
                .find_map(|s| s["step_id"].as_str().map(str::to_string))
        })
    };
    let started = lines
        .iter()
        .position(|l| l["message"] == "run started")
        .unwrap_or_else(|| panic!("no `run started` line in {err}"));
    let ended = lines
        .iter()
        .position(|l| l["message"] == "run ended")
        .unwrap_or_else(|| panic!("no `run ended` line in {err}"));
    for l in &lines[started..=ended] {
        assert_eq!(
            run_of(l).as_deref(),
            Some(run_id),
            "a run line without the run id: {l}"
        );
        assert!(l["level"].is_string() && l["timestamp"].is_string(), "{l}");
    }
    let steps: std::collections::BTreeSet<String> = lines
        .iter()
        .filter(|l| l["message"] == "step ended")
        .map(|l| step_of(l).unwrap_or_else(|| panic!("a step line without its step id: {l}")))
        .collect();
    assert!(
        steps.contains("failover-aurora") && steps.contains("repoint-dns"),
        "{steps:?}"
    );

    // The same run's logs in the text format (the default) name no span: lines read as before.
    let o = failover(
        &[
            "-v",
            "--journal",
            journal.to_str().unwrap(),
            "plan",
            "runbooks/az-evacuation.toml",
            "--env",
            "simulated",
            "-p",
            "failed_az=us-west-2a",
        ],
        &[("FAILOVER_LOG_FORMAT", "text")],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains("run_id") && !err.trim_start().starts_with('{'),
        "{err}"
    );
}

/// `failover schema` prints each format's JSON Schema (their content is tested in
/// `schema::tests` against the parsers and every example).
#[test]
fn schema_prints_a_json_schema_per_format() {
    for format in ["runbook", "environment", "topology"] {
        let s: serde_json::Value = serde_json::from_str(&stdout_of(&["schema", format])).unwrap();
        assert_eq!(
            s["$schema"], "http://json-schema.org/draft-07/schema#",
            "{format}"
        );
        assert_eq!(
            s["$id"],
            format!("https://failover.dev/schema/{format}.json")
        );
    }
    let o = failover(&["schema", "runbok"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("possible values: runbook, environment, topology"));
}
