//! Secrets never leave memory: a `${secret:NAME}` in a URL path whose endpoint is unreachable,
//! and in a header sent to a status page that answers 401 echoing it back. Neither the
//! journal's bytes (WAL included) nor any command's output may contain the value.

use crate::common::topo::repo;
use axum::http::{HeaderMap, StatusCode};
use std::path::Path;
use std::process::Command;

const TOKEN: &str = "s3cr3t-tok3n/with+odd chars=";

fn failover(config: &Path, journal: &Path, args: &[&str]) -> (String, String, i32) {
    let o = Command::new(env!("CARGO_BIN_EXE_failover"))
        .current_dir(repo())
        .env("LEAK_TOKEN", TOKEN)
        .env_remove("FAILOVER_AUDIT_KEY")
        .arg("--journal")
        .arg(journal)
        .arg("--config-dir")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.code().unwrap_or(-1),
    )
}

/// A status page that refuses the token and echoes it back, as some do.
async fn echoing_status_page() -> u16 {
    let app = axum::Router::new().fallback(|h: HeaderMap| async move {
        let auth = h
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (
            StatusCode::UNAUTHORIZED,
            format!("{{\"error\": \"bad token {auth}\"}}"),
        )
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolved_secret_reaches_no_byte_of_the_journal_and_no_output() {
    let port = echoing_status_page().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir(&config).unwrap();
    std::fs::write(
        config.join("leak.toml"),
        "region = \"us-west-2\"\nzones = [\"us-west-2a\", \"us-west-2b\"]\n[aws]\nendpoint_url = \"http://127.0.0.1:1\"\n",
    )
    .unwrap();
    let runbook = dir.path().join("leak.toml");
    std::fs::write(
        &runbook,
        format!(
            r#"name = "leak"

[[steps]]
id = "unreachable"
action = "http"
url = "http://127.0.0.1:1/hooks/${{secret:LEAK_TOKEN}}/notify"
body = "{{\"token\": \"${{secret:LEAK_TOKEN}}\"}}"
on_failure = "continue"
timeout = "3s"

[[steps]]
id = "echoes"
action = "http"
url = "http://127.0.0.1:{port}/status/${{secret:LEAK_TOKEN}}"
headers = {{ Authorization = "Bearer ${{secret:LEAK_TOKEN}}", X-Api-Key = "${{secret:LEAK_TOKEN}}" }}
on_failure = "continue"
"#
        ),
    )
    .unwrap();
    let journal = dir.path().join("j.db");
    let rb = runbook.to_str().unwrap();
    let mut outputs = vec![];
    let (out, err, code) = failover(
        &config,
        &journal,
        &["run", rb, "--env", "leak", "--by", "alice"],
    );
    assert_eq!(code, 0, "both steps fail and continue:\n{out}{err}");
    assert!(
        out.contains("unreachable") && out.contains("echoes"),
        "{out}"
    );
    assert!(
        out.contains("answered 401"),
        "the step says what happened:\n{out}"
    );
    outputs.push(out + &err);
    let run_id = outputs[0]
        .split_whitespace()
        .skip_while(|w| *w != "Run")
        .nth(1)
        .unwrap()
        .to_string();
    for args in [
        vec!["show", run_id.as_str()],
        vec!["show", run_id.as_str(), "--output", "json"],
        vec!["runs", "--output", "json"],
        vec!["audit", "export"],
        vec!["verify"],
    ] {
        let (out, err, _) = failover(&config, &journal, &args);
        outputs.push(out + &err);
    }
    let encoded: String = TOKEN
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    for (i, o) in outputs.iter().enumerate() {
        assert!(
            !o.contains(TOKEN) && !o.contains(&encoded),
            "output #{i} leaks the secret:\n{o}"
        );
    }
    assert!(
        outputs[1].contains("<redacted>"),
        "the scrubbed place is marked:\n{}",
        outputs[1]
    );
    for f in ["j.db", "j.db-wal", "j.db-shm"] {
        let p = dir.path().join(f);
        if let Ok(bytes) = std::fs::read(&p) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(TOKEN) && !text.contains(&encoded),
                "{f} holds the secret"
            );
        }
    }
}
