//! `failover serve` over a real loopback socket: the built binary is started as an SRE would
//! (`serve --listen 127.0.0.1:0`), called with reqwest, its event streams read as they come
//! and its metrics read by a Prometheus text-format parser. Runs go to the simulated
//! environment (config/simulated.toml) or to moto (config/local.toml) when a run must wait in
//! real time at an approval gate.

use crate::common;

use common::moto::MotoServer;
use common::sink::Sink;
use common::topo::{repo, TestConfig};
use failover::serve::config::hash_token;
use serde_json::{json, Value};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// People and systems with their tokens and roles.
const PEOPLE: &[(&str, &str, &[&str])] = &[
    ("alice", "tok-alice", &["operator", "approver"]),
    ("carol", "tok-carol", &["operator"]),
    ("bob", "tok-bob", &["approver"]),
    ("vera", "tok-vera", &["viewer"]),
];

pub(crate) fn token(name: &str) -> &'static str {
    PEOPLE.iter().find(|p| p.0 == name).unwrap().1
}

/// Write `<dir>/serve/serve.toml` with everyone's hashed token.
pub(crate) fn write_tokens(dir: &Path) {
    let mut text = String::from("# written by tests/it/serve.rs\n");
    for (name, tok, roles) in PEOPLE {
        let roles: Vec<String> = roles.iter().map(|r| format!("\"{r}\"")).collect();
        text += &format!(
            "\n[[tokens]]\nname = \"{name}\"\nroles = [{}]\nsha256 = \"{}\"\n",
            roles.join(", "),
            hash_token(tok)
        );
    }
    std::fs::create_dir_all(dir.join("serve")).unwrap();
    std::fs::write(dir.join("serve/serve.toml"), text).unwrap();
}

/// A config directory holding the simulated environment and its topologies.
pub(crate) fn simulated_config() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("config/simulated.toml"),
        dir.path().join("simulated.toml"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("sim")).unwrap();
    for f in std::fs::read_dir(repo().join("config/sim")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.path().join("sim").join(f.file_name().unwrap())).unwrap();
    }
    write_tokens(dir.path());
    dir
}

/// The service, as a child process; SIGTERM (then a kill) when dropped.
pub(crate) struct Service {
    child: Option<std::process::Child>,
    pub(crate) base: String,
    journal: PathBuf,
    http: reqwest::Client,
}

impl Service {
    fn start(config_dir: &Path, journal: &Path) -> Service {
        Self::start_with(
            config_dir,
            journal,
            &["--no-probes", "--readiness-interval", "off"],
        )
    }

    /// The service with more arguments after `serve --listen 127.0.0.1:0`.
    pub(crate) fn start_with(config_dir: &Path, journal: &Path, extra: &[&str]) -> Service {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_failover"))
            .current_dir(repo())
            .env_remove("FAILOVER_JOURNAL")
            .env_remove("FAILOVER_CONFIG_DIR")
            .env("HOME", std::env::temp_dir())
            .args(["--config-dir", config_dir.to_str().unwrap()])
            .args(["--journal", journal.to_str().unwrap()])
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start failover serve");
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let base = first
            .trim()
            .strip_prefix("failover serve: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {first:?}"))
            .to_string();
        // Keep reading its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in out.lines() {});
        Service {
            child: Some(child),
            base,
            journal: journal.to_path_buf(),
            http: reqwest::Client::new(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// A request as `who` (None: no token), with a raw body.
    async fn raw(&self, method: &str, path: &str, who: Option<&str>, body: &str) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut r = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url).body(body.to_string()),
        };
        if let Some(w) = who {
            r = r.bearer_auth(token(w));
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        who: &str,
        body: Value,
    ) -> (u16, Value) {
        self.raw(method, path, Some(who), &body.to_string()).await
    }

    /// SIGTERM, then wait for the process to end; its exit code.
    fn stop(&mut self) -> i32 {
        let mut child = self.child.take().unwrap();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "the service did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Poll the run until `pred` holds on it.
    pub(crate) async fn wait_run(
        &self,
        id: &str,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (code, v) = self
                .call("GET", &format!("/v1/runs/{id}"), "vera", json!({}))
                .await;
            assert_eq!(code, 200, "{v}");
            if pred(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "run {id} never became {what}: {v:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn journal_head(&self) -> Option<String> {
        let j = failover::journal::Journal::open(&self.journal).unwrap();
        j.head().unwrap().map(|h| h.to_string())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One server-sent event.
#[derive(Debug, Clone)]
struct Sse {
    id: Option<i64>,
    event: String,
    data: Value,
}

/// Read a stream of server-sent events until it ends (or `until` holds on one).
async fn read_events(s: &Service, path: &str, until: impl Fn(&Sse) -> bool) -> Vec<Sse> {
    let mut resp = s
        .http
        .get(format!("{}{path}", s.base))
        .bearer_auth(token("vera"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let (mut buf, mut out) = (String::new(), vec![]);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("the stream {path} did not end: {out:#?}"))
            .unwrap();
        let Some(chunk) = chunk else { return out };
        buf += &String::from_utf8_lossy(&chunk);
        while let Some(i) = buf.find("\n\n") {
            let block: String = buf.drain(..i + 2).collect();
            let mut ev = Sse {
                id: None,
                event: "message".into(),
                data: Value::Null,
            };
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    ev.id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    ev.event = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data += v.trim_start();
                }
            }
            if data.is_empty() {
                continue; // a keep-alive comment
            }
            ev.data = serde_json::from_str(&data).unwrap();
            let stop = until(&ev);
            out.push(ev);
            if stop {
                return out;
            }
        }
    }
}

/// The metrics, parsed by a Prometheus text-format parser; the value of one sample.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    use prometheus_parse::Value as V;
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            V::Counter(x) | V::Gauge(x) | V::Untyped(x) => *x,
            V::Histogram(h) => h.last().map(|c| c.count).unwrap_or(0.0),
            V::Summary(_) => f64::NAN,
        })
}

async fn metrics(s: &Service) -> (String, prometheus_parse::Scrape) {
    let text = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    (text, scrape)
}

/// Start a simulated evacuation through the API, follow its events to the end, read it back,
/// and find it in the metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_over_the_api_is_followed_to_its_end_and_counted() {
    let cfg = simulated_config();
    let s = Service::start(cfg.path(), &cfg.path().join("journal.db"));
    let start = json!({"runbook": "az-evacuation", "env": "simulated", "params": {"failed_az": "us-west-2a"}});

    // The dry run: the exact calls, nothing journaled.
    let (code, plan) = s.call("POST", "/v1/runs", "vera", start.clone()).await;
    assert_eq!(code, 200, "{plan}");
    assert!(plan["mutating_calls"].as_u64().unwrap() > 0, "{plan}");
    assert_eq!(s.journal_head().await, None);

    // Everything the service sees, from before the run.
    let all = tokio::spawn({
        let base = s.base.clone();
        async move {
            let s2 = Service {
                child: None,
                base,
                journal: PathBuf::new(),
                http: reqwest::Client::new(),
            };
            read_events(&s2, "/v1/events", |e| e.event == "run_finished").await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut run = start.clone();
    run["mode"] = json!("run");
    let (code, started) = s.call("POST", "/v1/runs", "carol", run).await;
    assert_eq!(code, 202, "{started}");
    let id = started["run_id"].as_str().unwrap().to_string();
    assert_eq!(started["events"], format!("/v1/runs/{id}/events"));

    let events = read_events(&s, &format!("/v1/runs/{id}/events"), |_| false).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    // The leases first (a run takes them before it plans), the stream's `end` last.
    assert_eq!(kinds.first(), Some(&"leases_acquired"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"end"), "{kinds:?}");
    for k in [
        "run_started",
        "intent",
        "outcome",
        "step_finished",
        "run_finished",
        "leases_released",
    ] {
        assert!(kinds.contains(&k), "no {k} in {kinds:?}");
    }
    let seqs: Vec<i64> = events.iter().filter_map(|e| e.id).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(events
        .iter()
        .filter(|e| e.id.is_some())
        .all(|e| e.data["run_id"] == id.as_str()));
    let fin = events.iter().find(|e| e.event == "run_finished").unwrap();
    assert_eq!(fin.data["data"]["status"], "succeeded", "{fin:?}");
    // Every intent has its outcome in the stream.
    let intents = kinds.iter().filter(|k| **k == "intent").count();
    assert_eq!(intents, kinds.iter().filter(|k| **k == "outcome").count());

    let seen = all.await.unwrap();
    assert!(seen
        .iter()
        .any(|e| e.event == "run_started" && e.data["run_id"] == id.as_str()));

    let (code, r) = s
        .call("GET", &format!("/v1/runs/{id}"), "vera", json!({}))
        .await;
    assert_eq!(code, 200);
    assert_eq!(r["run"]["status"], "succeeded");
    assert_eq!(r["run"]["initiator"], "carol");
    assert_eq!(r["in_doubt"], json!([]));
    let calls = r["calls"].as_array().unwrap();
    assert_eq!(calls.len(), intents);
    assert!(
        calls.iter().all(|c| c["outcome"]["ok"] == true),
        "{calls:#?}"
    );
    assert!(r["timeline"].as_array().unwrap().len() >= events.len() - 1);

    let (text, m) = metrics(&s).await;
    assert!(text.contains("# TYPE failover_runs counter"), "{text}");
    let labels = [
        ("runbook", "az-evacuation"),
        ("environment", "simulated"),
        ("outcome", "succeeded"),
    ];
    assert_eq!(
        sample(&m, "failover_runs_total", &labels),
        Some(1.0),
        "{text}"
    );
    let failovers = [
        ("service", "rds"),
        ("operation", "FailoverDBCluster"),
        ("result", "ok"),
    ];
    assert!(
        sample(&m, "failover_aws_calls_total", &failovers).unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    assert!(
        sample(
            &m,
            "failover_aws_requests_total",
            &[("service", "rds"), ("result", "ok")]
        )
        .unwrap_or(0.0)
            > 0.0,
        "{text}"
    );
    let step = [
        ("runbook", "az-evacuation"),
        ("step", "failover-aurora"),
        ("status", "succeeded"),
    ];
    assert_eq!(
        sample(&m, "failover_step_duration_seconds", &step),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(&m, "failover_journal_write_seconds", &[("durable", "true")]).unwrap_or(0.0) > 0.0,
        "{text}"
    );
    assert_eq!(
        sample(&m, "failover_service_runs_in_progress", &[]),
        Some(0.0),
        "{text}"
    );
}

/// No token, a bad token, the wrong role, malformed JSON, an unknown runbook, a bad
/// parameter: each is refused with its status and the CLI's words, and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_change_nothing() {
    let cfg = simulated_config();
    let s = Service::start(cfg.path(), &cfg.path().join("journal.db"));
    let run = json!({"runbook": "az-evacuation", "env": "simulated", "mode": "run", "params": {"failed_az": "us-west-2a"}}).to_string();

    let (code, v) = s.raw("POST", "/v1/runs", None, &run).await;
    assert_eq!(code, 401, "{v}");
    // A token in the URL is taken by the read-only event streams only.
    let q = format!("?access_token={}", token("carol"));
    let (code, v) = s.raw("POST", &format!("/v1/runs{q}"), None, &run).await;
    assert_eq!(code, 401, "{v}");
    let (code, v) = s.raw("GET", &format!("/v1/runs{q}"), None, "").await;
    assert_eq!(code, 401, "{v}");
    let resp = s
        .http
        .get(format!("{}/v1/events{q}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    drop(resp);
    let resp = s
        .http
        .get(format!("{}/v1/events?access_token=nope", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(v["error"], "unauthorized");
    let resp = s
        .http
        .post(format!("{}/v1/runs", s.base))
        .bearer_auth("not-a-token")
        .body(run.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer realm=\"failover\""
    );
    let (code, v) = s.raw("GET", "/v1/runs", None, "").await;
    assert_eq!(code, 401, "{v}");

    let (code, v) = s.raw("POST", "/v1/runs", Some("vera"), &run).await;
    assert_eq!(code, 403, "{v}");
    assert_eq!(v["message"], "error: vera may not do this: it needs the `operator` role, and the token has viewer\n  hint: ask whoever runs the service to add `operator` to this token's roles in its serve.toml");
    let (code, _) = s
        .raw(
            "POST",
            "/v1/runs/20990101-000000-zzzz/approve",
            Some("carol"),
            "{}",
        )
        .await;
    assert_eq!(code, 403);
    let (code, _) = s
        .raw(
            "POST",
            "/v1/runs/20990101-000000-zzzz/abort",
            Some("bob"),
            "{}",
        )
        .await;
    assert_eq!(code, 403);

    let (code, v) = s
        .raw(
            "POST",
            "/v1/runs",
            Some("carol"),
            "{\"runbook\": \"az-evacuation\",\n \"env\": }",
        )
        .await;
    assert_eq!(code, 400, "{v}");
    assert_eq!(v["diagnostics"][0]["line"], 2);
    assert_eq!(v["diagnostics"][0]["col"], 9);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("request body:2:9: error: invalid JSON: expected value"),
        "{v}"
    );

    let (code, v) = s
        .raw(
            "POST",
            "/v1/runs",
            Some("carol"),
            &run.replace("az-evacuation", "az-evacuaton"),
        )
        .await;
    assert_eq!(code, 400, "{v}");
    assert_eq!(v["message"], "request body: error: runbook `az-evacuaton` is not in the service's runbooks directory runbooks\n  hint: did you mean `az-evacuation`? known runbooks: az-evacuation, az-failback, region-evacuation, restore-load, shed-load\n\n1 problem(s) found; nothing was changed.");

    // A bad parameter: the same diagnostics, word for word, as `failover run` prints.
    let bad = run.replace("us-west-2a", "us-west-9z");
    let (code, v) = s.raw("POST", "/v1/runs", Some("carol"), &bad).await;
    assert_eq!(code, 400, "{v}");
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_failover"))
        .current_dir(repo())
        .args([
            "--config-dir",
            cfg.path().to_str().unwrap(),
            "--journal",
            s.journal.to_str().unwrap(),
        ])
        .args([
            "run",
            "runbooks/az-evacuation.toml",
            "--env",
            "simulated",
            "-p",
            "failed_az=us-west-9z",
        ])
        .output()
        .unwrap();
    assert_eq!(cli.status.code(), Some(2));
    assert_eq!(
        format!("{}\n", v["message"].as_str().unwrap()),
        String::from_utf8_lossy(&cli.stderr)
    );
    assert!(
        v["diagnostics"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("az-evacuation.toml"),
        "{v}"
    );

    // An environment is named, never a path.
    let outside = run.replace("\"simulated\"", "\"../simulated\"");
    let (code, v) = s.raw("POST", "/v1/runs", Some("carol"), &outside).await;
    assert_eq!(code, 400, "{v}");
    let m = v["message"].as_str().unwrap();
    assert!(
        m.contains("error: environment `../simulated` does not exist"),
        "{v}"
    );

    let (code, v) = s
        .raw(
            "POST",
            "/v1/runs/20990101-000000-zzzz/abort",
            Some("carol"),
            "{\"reason\": 3}",
        )
        .await;
    assert_eq!(code, 400, "{v}");
    let (code, v) = s
        .raw(
            "POST",
            "/v1/runs/20990101-000000-zzzz/abort",
            Some("carol"),
            "{}",
        )
        .await;
    assert_eq!(code, 404, "{v}");

    assert_eq!(s.journal_head().await, None, "the journal changed");
    let (code, v) = s.call("GET", "/v1/runs", "vera", json!({})).await;
    assert_eq!((code, v), (200, json!({"runs": []})));
    let (code, v) = s
        .call("GET", "/v1/leases?all=true", "vera", json!({}))
        .await;
    assert_eq!(code, 200);
    assert_eq!(v["leases"], json!([]));
}

/// Against moto, in real time: two starts at once on the same resources (one 409 naming the
/// holder); an approval gate (the initiator refused, a second person approves); a rejection;
/// an abort; a shutdown that stops a waiting run cleanly, and its resume in a new service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_reject_abort_shutdown_and_resume_over_the_api() {
    let moto = MotoServer::start();
    let sink = Sink::start().await;
    let cfg = TestConfig::local(&moto.endpoint(), &sink.url());
    common::topo::seed(&cfg.env()).await;
    write_tokens(cfg.path());
    let mut s = Service::start(cfg.path(), &cfg.journal());
    let gated = json!({"runbook": "az-evacuation", "env": "local", "mode": "run",
        "params": {"failed_az": "us-west-2a", "require_approval": true}});
    let waiting = |v: &Value| v["run"]["status"] == "waiting_approval";

    // Two starts at once: one runs, the other is refused naming it.
    let (a, b) = tokio::join!(
        s.call("POST", "/v1/runs", "alice", gated.clone()),
        s.call("POST", "/v1/runs", "carol", gated.clone())
    );
    let ((won, ok), (lost, refused)) = if a.0 == 202 { (a, b) } else { (b, a) };
    assert_eq!((won, lost), (202, 409), "{ok}\n{refused}");
    let id = ok["run_id"].as_str().unwrap().to_string();
    assert_eq!(refused["error"], "leased");
    assert_eq!(refused["lease"]["held_by"], id.as_str(), "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains(&format!("is leased by run {id}")),
        "{refused}"
    );
    let first_by = s.wait_run(&id, "waiting", waiting).await["run"]["initiator"]
        .as_str()
        .unwrap()
        .to_string();

    // The initiator cannot approve; bob (approver) can, with a comment.
    let (code, v) = s
        .call(
            "POST",
            &format!("/v1/runs/{id}/approve"),
            &first_by,
            json!({}),
        )
        .await;
    if first_by == "alice" {
        assert_eq!(code, 409, "{v}");
        assert!(
            v["message"].as_str().unwrap().starts_with(&format!(
                "error: alice started run {id} and cannot approve it"
            )),
            "{v}"
        );
    } else {
        assert_eq!(code, 403, "{v}");
    }
    let follow = tokio::spawn({
        let (base, path) = (s.base.clone(), format!("/v1/runs/{id}/events?since=0"));
        async move {
            let s2 = Service {
                child: None,
                base,
                journal: PathBuf::new(),
                http: reqwest::Client::new(),
            };
            read_events(&s2, &path, |_| false).await
        }
    });
    let (code, v) = s
        .call(
            "POST",
            &format!("/v1/runs/{id}/approve"),
            "bob",
            json!({"comment": "zone a is gone, go"}),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (v["by"].clone(), v["released"].clone()),
        (json!("bob"), json!(true))
    );
    let events = follow.await.unwrap();
    let approved = events
        .iter()
        .find(|e| e.event == "approved")
        .expect("an approved event");
    assert_eq!(approved.data["data"]["by"], "bob", "{approved:?}");
    assert!(events
        .iter()
        .any(|e| e.event == "comment" && e.data["data"]["text"] == "zone a is gone, go"));
    let fin = events.iter().find(|e| e.event == "run_finished").unwrap();
    assert_eq!(fin.data["data"]["status"], "succeeded", "{events:#?}");

    // A rejection ends the run (aborted), with why.
    let (code, v) = s.call("POST", "/v1/runs", "carol", gated.clone()).await;
    assert_eq!(code, 202, "{v}");
    let id2 = v["run_id"].as_str().unwrap().to_string();
    s.wait_run(&id2, "waiting", waiting).await;
    let (code, v) = s
        .call("POST", &format!("/v1/runs/{id2}/reject"), "bob", json!({}))
        .await;
    assert_eq!(code, 400, "a rejection needs a comment: {v}");
    let (code, v) = s
        .call(
            "POST",
            &format!("/v1/runs/{id2}/reject"),
            "bob",
            json!({"comment": "not before the incident call"}),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    let r = s
        .wait_run(&id2, "aborted", |v| v["run"]["status"] == "aborted")
        .await;
    assert_eq!(
        r["run"]["error"],
        "aborted by bob: rejected at step `approve`: not before the incident call"
    );
    assert!(r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "rejected"));

    // An abort: the run ends, its leases are released, its task in the service stops.
    let (code, v) = s.call("POST", "/v1/runs", "carol", gated.clone()).await;
    assert_eq!(code, 202, "{v}");
    let id3 = v["run_id"].as_str().unwrap().to_string();
    s.wait_run(&id3, "waiting", waiting).await;
    let (code, v) = s
        .call(
            "POST",
            &format!("/v1/runs/{id3}/abort"),
            "carol",
            json!({"reason": "drill over"}),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["stopped_in_this_service"], true);
    s.wait_run(&id3, "out of the service", |v| {
        v["in_this_service"] == false
    })
    .await;
    let (_, v) = s.call("GET", "/v1/leases", "vera", json!({})).await;
    assert_eq!(v["leases"], json!([]), "{v}");
    let (code, v) = s
        .call("POST", &format!("/v1/runs/{id3}/abort"), "carol", json!({}))
        .await;
    assert_eq!(code, 409, "{v}");

    // Shutdown while a run waits: it stops cleanly (interrupted, resumable) ...
    let (code, v) = s.call("POST", "/v1/runs", "carol", gated.clone()).await;
    assert_eq!(code, 202, "{v}");
    let id4 = v["run_id"].as_str().unwrap().to_string();
    s.wait_run(&id4, "waiting", waiting).await;
    let pid = s.pid();
    assert_eq!(s.stop(), 0);
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    let j = failover::journal::Journal::open(&cfg.journal()).unwrap();
    let r = j.run_exact(&failover::types::RunId::new(&id4)).unwrap();
    assert_eq!(r.status.as_str(), "interrupted", "{r:?}");
    assert!(j.open_intents(&r.id).unwrap().is_empty());

    // ... and a new service resumes it; bob approves; it ends.
    let s = Service::start(cfg.path(), &cfg.journal());
    let (code, v) = s
        .call("POST", &format!("/v1/runs/{id4}/resume"), "vera", json!({}))
        .await;
    assert_eq!(code, 403, "{v}");
    let (code, v) = s
        .call(
            "POST",
            &format!("/v1/runs/{id4}/resume"),
            "carol",
            json!({}),
        )
        .await;
    assert_eq!(code, 202, "{v}");
    s.wait_run(&id4, "waiting again", waiting).await;
    let (code, v) = s
        .call("POST", &format!("/v1/runs/{id4}/approve"), "bob", json!({}))
        .await;
    assert_eq!(code, 200, "{v}");
    let r = s
        .wait_run(&id4, "ended", |v| v["run"]["ended_at"].is_i64())
        .await;
    assert_eq!(r["run"]["status"], "succeeded", "{r:#}");
    assert!(r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "resumed" && e["data"]["by"] == "carol"));
    assert_eq!(j.verify_chain().unwrap(), None);
}

/// Poll `path` (as vera) until `pred` holds on its answer.
async fn wait_for(s: &Service, path: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, v) = s.call("GET", path, "vera", json!({})).await;
        if code == 200 && pred(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never showed {what}: {code} {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The service runs `failover watch`'s loop for `[health.trigger]` environments: zone a's
/// alarms go off in moto, the service's own probes declare it unhealthy (quorum, hysteresis),
/// and the service starts the evacuation itself, in its own process (policy `approval`: paused
/// at the gate), and notifies the chat. Zone b failing next is within the cooldown: no second
/// run. Approved by a second person, the run completes in the service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_watches_zones_and_starts_the_evacuation_itself_once_per_cooldown() {
    let moto = MotoServer::start();
    let sink = Sink::start().await;
    let cfg = TestConfig::local(&moto.endpoint(), &sink.url());
    common::topo::seed(&cfg.env()).await;
    write_tokens(cfg.path());
    let s = Service::start_with(cfg.path(), &cfg.journal(), &[]);
    let health = "/v1/environments/local/health";
    let v = wait_for(&s, health, "a report", |v| v["source"] == "service").await;
    assert_eq!(v["watch"]["watching"], true, "{v:#}");
    assert!(
        v["watch"]["summary"]
            .as_str()
            .unwrap()
            .contains("Approval `runbooks/az-evacuation.toml`"),
        "{v:#}"
    );

    common::topo::zone_alarms(
        &moto.endpoint(),
        "us-west-2a",
        aws_sdk_cloudwatch::types::StateValue::Alarm,
    )
    .await;
    let watch_runs = |v: &Value| -> Vec<Value> {
        v["runs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["initiator"] == "watch:local" && r["mode"] == "run")
            .cloned()
            .collect()
    };
    let v = wait_for(&s, "/v1/runs", "a run started by the watcher", |v| {
        !watch_runs(v).is_empty()
    })
    .await;
    let run = watch_runs(&v)[0].clone();
    let id = run["id"].as_str().unwrap().to_string();
    assert_eq!(run["in_this_service"], true, "{run:#}");
    assert_eq!(run["params"]["failed_az"], "us-west-2a", "{run:#}");
    s.wait_run(&id, "waiting", |v| v["run"]["status"] == "waiting_approval")
        .await;
    // No child process: the run's holder is the service itself.
    assert!(
        run["holder"]
            .as_str()
            .unwrap_or_default()
            .ends_with(&format!(":{}", s.pid())),
        "{run:#}"
    );

    let v =
        wait_for(&s, health, "zone a unhealthy", |v| {
            v["report"]["zones"].as_array().unwrap().iter().any(|z| {
                z["target"].to_string().contains("us-west-2a") && z["state"] == "unhealthy"
            })
        })
        .await;
    let decisions = v["watch"]["decisions"].as_array().unwrap();
    assert!(
        decisions
            .iter()
            .any(|d| d["decision"]["decision"] == "start_paused_for_approval"),
        "{v:#}"
    );
    assert!(
        decisions.iter().any(|d| d["run_started"] == id.as_str()),
        "{v:#}"
    );
    let (_, m) = metrics(&s).await;
    let a_down = [
        ("environment", "local"),
        ("zone", "us-west-2a"),
        ("state", "unhealthy"),
    ];
    assert_eq!(sample(&m, "failover_zone_health", &a_down), Some(1.0));
    // The watch loop's alarm probes are AWS calls, counted as they are made.
    let cw = [
        ("environment", "local"),
        ("service", "cloudwatch"),
        ("result", "ok"),
    ];
    assert!(
        sample(&m, "failover_probe_requests_total", &cw).is_some_and(|n| n >= 1.0),
        "{:?}",
        m.samples
            .iter()
            .filter(|s| s.metric.starts_with("failover_probe"))
            .collect::<Vec<_>>()
    );
    assert!(
        v["report"]["aws_calls"]["cloudwatch"]["reads"].as_u64() >= Some(1),
        "{v:#}"
    );
    assert!(
        sink.received()
            .iter()
            .any(|r| r.path == "/chat" && r.body.contains(&format!("run {id}"))),
        "{:?}",
        sink.received()
    );

    // Zone b fails too, within the cooldown: the decision is a refusal, and no second run.
    common::topo::zone_alarms(
        &moto.endpoint(),
        "us-west-2b",
        aws_sdk_cloudwatch::types::StateValue::Alarm,
    )
    .await;
    let v = wait_for(&s, health, "a cooldown refusal", |v| {
        v["watch"]["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["decision"]["decision"] == "refused_cooldown")
    })
    .await;
    let text = v["watch"]["decisions"].to_string();
    assert!(
        text.contains("us-west-2b is unhealthy, but a run was started at"),
        "{text}"
    );
    let (_, v) = s.call("GET", "/v1/runs", "vera", json!({})).await;
    assert_eq!(watch_runs(&v).len(), 1, "{v:#}");

    // bob approves: the run the service started completes in it.
    let (code, v) = s
        .call("POST", &format!("/v1/runs/{id}/approve"), "bob", json!({}))
        .await;
    assert_eq!(code, 200, "{v}");
    let v = s
        .wait_run(&id, "ended", |v| v["run"]["ended_at"].is_number())
        .await;
    assert_eq!(v["run"]["status"], "succeeded", "{v:#}");
    assert_eq!(v["run"]["initiator"], "watch:local");

    // SIGTERM: the watch loop ends its journal session.
    let mut s = s;
    assert_eq!(s.stop(), 0);
    let j = failover::journal::Journal::open(&cfg.journal()).unwrap();
    let sessions: Vec<_> = j
        .runs(50)
        .unwrap()
        .into_iter()
        .filter(|r| r.mode == failover::status::RunMode::Watch)
        .collect();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(
        sessions[0].status,
        failover::status::RunStatus::Stopped,
        "{sessions:?}"
    );
}

/// Continuous readiness on the simulated environment: every zone green while each cluster has
/// a reader outside it; once `orders-db` loses its readers outside us-west-2a (the topology
/// edited under the running service), the check for us-west-2a turns red with that reason,
/// in the API and in /metrics, the others stay green, and the chat is told once. An
/// environment whose AWS endpoint does not answer is red on every zone, `unreachable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_turns_red_when_a_cluster_loses_its_last_reader_outside_a_zone() {
    let sink = Sink::start().await;
    let cfg = simulated_config();
    let dir = cfg.path();
    std::fs::write(
        dir.join("simulated.toml"),
        "simulated = \"sim/storefront.toml\"\nseed = 7\n",
    )
    .unwrap();
    let topo = dir.join("sim/storefront.toml");
    let text = std::fs::read_to_string(&topo).unwrap();
    let text = text.replace(
        "https://chat.example.com/hooks/oncall",
        &format!("{}/chat", sink.url()),
    );
    std::fs::write(&topo, &text).unwrap();
    // An environment whose AWS endpoint does not answer: its checks are red, `unreachable`.
    let dead = std::fs::read_to_string(repo().join("config/local.toml"))
        .unwrap()
        .replace("http://127.0.0.1:5055", "http://127.0.0.1:9")
        .replace("name = \"local\"", "name = \"dead\"")
        .replace("http://127.0.0.1:5056", &sink.url());
    std::fs::write(dir.join("dead.toml"), dead).unwrap();
    let serve_toml = dir.join("serve/serve.toml");
    let tokens = std::fs::read_to_string(&serve_toml).unwrap();
    std::fs::write(
        &serve_toml,
        format!("readiness_notify = \"chat\"\n{tokens}"),
    )
    .unwrap();
    let s = Service::start_with(
        dir,
        &dir.join("journal.db"),
        &["--no-probes", "--readiness-interval", "1s"],
    );

    let path = "/v1/readiness/simulated";
    let checks = |v: &Value| v["checks"].as_array().cloned().unwrap_or_default();
    let check = |v: &Value, zone: &str| -> Value {
        checks(v)
            .into_iter()
            .find(|c| c["runbook"] == "az-evacuation" && c["zone"] == zone)
            .unwrap_or(Value::Null)
    };
    let v = wait_for(&s, path, "a first round", |v| {
        v["rounds"].as_u64() >= Some(1)
    })
    .await;
    for z in ZONES {
        assert_eq!(check(&v, z)["ready"], true, "{z}: {v:#}");
    }
    assert_eq!(v["ready"], true, "{v:#}");
    let (text_m, m) = metrics(&s).await;
    let a = [
        ("runbook", "az-evacuation"),
        ("environment", "simulated"),
        ("zone", "us-west-2a"),
    ];
    assert_eq!(sample(&m, "failover_readiness", &a), Some(1.0), "{text_m}");
    let told_of = |env: &str| -> Vec<String> {
        let needle = format!("`az-evacuation` on {env} would not succeed");
        sink.received()
            .into_iter()
            .filter(|r| r.path == "/chat" && r.body.contains(&needle))
            .map(|r| r.body)
            .collect()
    };
    assert!(told_of("simulated").is_empty(), "{:?}", sink.received());
    let (_, d) = s.call("GET", "/v1/readiness/dead", "vera", json!({})).await;
    // The evacuation's checks (az-failback, a zone runbook too, is checked beside it).
    let dead_checks: Vec<Value> = checks(&d)
        .into_iter()
        .filter(|c| c["runbook"] == "az-evacuation")
        .collect();
    assert_eq!(dead_checks.len(), 3, "{d:#}");
    for c in &dead_checks {
        assert_eq!(c["ready"], false, "{c:#}");
        assert_eq!(c["reasons"][0]["cause"], "unreachable", "{c:#}");
        assert!(
            c["reasons"][0]["text"]
                .as_str()
                .unwrap()
                .contains("Connection refused"),
            "{c:#}"
        );
    }
    assert_eq!(told_of("dead").len(), 3, "{:?}", sink.received());

    // orders-db keeps only its writer, in us-west-2a.
    let broken = text
        .replace(
            "  { id = \"orders-db-b\", zone = \"us-west-2b\", tier = 1 },\n",
            "",
        )
        .replace(
            "  { id = \"orders-db-c\", zone = \"us-west-2c\", tier = 0 },\n",
            "",
        );
    assert_ne!(broken, text);
    std::fs::write(&topo, &broken).unwrap();
    let v = wait_for(&s, path, "us-west-2a red", |v| {
        check(v, "us-west-2a")["ready"] == false
    })
    .await;
    let red = check(&v, "us-west-2a");
    let reasons = red["reasons"].as_array().unwrap();
    assert!(
        reasons.iter().any(|r| r["cause"] == "no_eligible_reader"
            && r["step"] == "failover-aurora"
            && r["text"]
                .as_str()
                .unwrap()
                .contains("cluster `orders-db`: no eligible reader")),
        "{red:#}"
    );
    assert_eq!(check(&v, "us-west-2b")["ready"], true, "{v:#}");
    assert_eq!(check(&v, "us-west-2c")["ready"], true, "{v:#}");
    assert_eq!(v["ready"], false);
    let (_, all) = s.call("GET", "/v1/readiness", "vera", json!({})).await;
    assert!(
        checks(&all)
            .iter()
            .any(|c| c["zone"] == "us-west-2a" && c["ready"] == false),
        "{all:#}"
    );
    let (text_m, m) = metrics(&s).await;
    assert_eq!(sample(&m, "failover_readiness", &a), Some(0.0), "{text_m}");

    // Two more rounds, still red: the chat was told once.
    let rounds = v["rounds"].as_u64().unwrap();
    wait_for(&s, path, "two more rounds", |v| {
        v["rounds"].as_u64() >= Some(rounds + 2)
    })
    .await;
    let told = told_of("simulated");
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].contains("`az-evacuation` on simulated would not succeed if us-west-2a failed"),
        "{told:?}"
    );
    assert!(told[0].contains("no eligible reader"), "{told:?}");
    assert_eq!(told_of("dead").len(), 3, "still red: not told again");
}

const ZONES: [&str; 3] = ["us-west-2a", "us-west-2b", "us-west-2c"];

/// A drill started over the API (as `failover drill`): a viewer may not start one, drill
/// settings on a run are refused, and the drill runs its phases in the service to its verdict;
/// its success is the `failover_last_successful_drill_timestamp_seconds` of its runbook and
/// environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_started_over_the_api_fails_back_and_is_in_the_metrics() {
    let cfg = simulated_config();
    // The storefront with nothing wrong: a drill fails over and back.
    std::fs::write(
        cfg.path().join("drillsim.toml"),
        "description = \"the simulated storefront, nothing wrong\"\nsimulated = \"sim/storefront.toml\"\nseed = 7\n",
    )
    .unwrap();
    let s = Service::start(cfg.path(), &cfg.path().join("journal.db"));
    let drill = json!({"runbook": "az-evacuation", "env": "drillsim", "params": {"failed_az": "us-west-2a"}, "mode": "drill"});
    let (code, v) = s.call("POST", "/v1/runs", "vera", drill.clone()).await;
    assert_eq!(code, 403, "{v}");
    let mut run = drill.clone();
    run["mode"] = json!("run");
    run["no_failback"] = json!(true);
    let (code, v) = s.call("POST", "/v1/runs", "carol", run).await;
    assert_eq!(code, 400, "{v}");
    let mut bad = drill.clone();
    bad["max_duration"] = json!("soon");
    let (code, v) = s.call("POST", "/v1/runs", "carol", bad).await;
    assert_eq!(code, 400, "{v}");
    assert!(v.to_string().contains("not a duration"), "{v}");
    assert_eq!(
        s.journal_head().await,
        None,
        "refused requests journal nothing"
    );

    let (code, started) = s.call("POST", "/v1/runs", "carol", drill).await;
    assert_eq!(code, 202, "{started}");
    let id = started["run_id"].as_str().unwrap().to_string();
    let done = wait_for(&s, &format!("/v1/runs/{id}"), "the drill's end", |v| {
        v["run"]["ended_at"].is_i64()
    })
    .await;
    assert_eq!(done["run"]["mode"], json!("drill"), "{done:#}");
    assert_eq!(done["run"]["status"], json!("succeeded"), "{done:#}");
    assert_eq!(done["run"]["initiator"], json!("carol"), "{done:#}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (text, m) = metrics(&s).await;
        let at = sample(
            &m,
            "failover_last_successful_drill_timestamp_seconds",
            &[("runbook", "az-evacuation"), ("environment", "drillsim")],
        );
        if let Some(at) = at {
            assert!(at > 1.7e9, "a Unix time: {at}\n{text}");
            break;
        }
        assert!(Instant::now() < deadline, "no drill timestamp in\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The service's drill timer: a `[[drills]]` slot due when the service starts is claimed and
/// run at once (here the drill cannot even start: its runbook is gone), and the failure is
/// notified to the schedule's endpoint; `drills run-due` later reports the slots missed in
/// between, each notified, and runs the latest — each slot handled once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_due_drills_and_notifies_failed_and_missed_ones() {
    use failover::app::drills;
    let sink = common::sink::Sink::start().await;
    let cfg = common::topo::TestConfig::local("http://127.0.0.1:9", &sink.url());
    let file = cfg.path().join("local.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{text}\n[[drills]]\nname = \"minutely\"\nrunbook = \"runbooks/moved-away.toml\"\nparams = {{ failed_az = \"us-west-2a\" }}\ncron = \"* * * * *\"\nnotify = \"chat\"\n")).unwrap();
    write_tokens(cfg.path());
    let mut s = Service::start_with(
        cfg.path(),
        &cfg.journal(),
        &["--no-probes", "--readiness-interval", "off"],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let told = loop {
        let got: Vec<String> = sink
            .received()
            .into_iter()
            .filter(|r| r.path == "/chat" && r.body.contains("drill `minutely`"))
            .map(|r| r.body)
            .collect();
        if !got.is_empty() {
            break got;
        }
        assert!(Instant::now() < deadline, "no drill notification");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(told[0].contains("on `local`"), "{told:?}");
    assert!(told[0].contains("ended failed"), "{told:?}");
    assert!(told[0].contains("runbooks/moved-away.toml"), "{told:?}");
    assert_eq!(s.stop(), 0);
    // The slot is in the journal, claimed once.
    let app = failover::app::App::new(cfg.path(), cfg.journal());
    let j = app.open_journal().unwrap();
    let slots = |runs: &[failover::store::RunRecord]| {
        runs.iter()
            .filter(|r| r.mode == failover::status::RunMode::DrillSlot)
            .count()
    };
    let runs = j.runs(50).await.unwrap();
    assert_eq!(slots(&runs), 1, "{runs:#?}");
    // Three minutes later (the service was down): two slots missed, the latest run.
    let now = failover::journal::now_ms() + 3 * 60_000;
    let mut seen = vec![];
    let stop = failover::engine::Stop::default();
    let out = drills::run_due(&app, Some("local"), now, &stop, &mut |o| {
        seen.push(o.what.clone())
    })
    .await
    .unwrap();
    assert_eq!(out.len(), 3, "{out:#?}");
    assert_eq!(
        out.iter().filter(|o| o.what == "missed").count(),
        2,
        "{out:#?}"
    );
    assert!(out.iter().all(|o| o.notify_error.is_none()), "{out:#?}");
    let missed = sink
        .received()
        .into_iter()
        .filter(|r| r.body.contains("was missed"))
        .count();
    assert_eq!(missed, 2);
    // Asked again at the same time: nothing more.
    let again = drills::run_due(&app, Some("local"), now, &stop, &mut |_| {})
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:#?}");
}

/// Readiness covers the region runbook the watcher would start: for an environment of several
/// regions with `[health.region_trigger]` (staging), one check of `region-evacuation` for the
/// home region failing, with the trigger's parameters (`recovery_region`, the reason). Its
/// dry-run plan binds with them (an AWS endpoint that does not answer makes it red as
/// `unreachable`, not `invalid`: no parameter is missing); the zone runbooks keep their checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_checks_the_region_runbook_of_the_region_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let staging = std::fs::read_to_string(repo().join("config/staging.toml"))
        .unwrap()
        .replace(
            "profile = \"storefront-staging\"",
            "endpoint_url = \"http://127.0.0.1:9\"",
        );
    std::fs::write(dir.path().join("staging.toml"), staging).unwrap();
    let app = failover::app::App::new(dir.path(), dir.path().join("j.db"));
    let files: Vec<PathBuf> = ["az-evacuation", "region-evacuation", "shed-load"]
        .iter()
        .map(|n| repo().join(format!("runbooks/{n}.toml")))
        .collect();
    let checks = failover::app::readiness::checks(&app, &files, "staging");
    let region: Vec<_> = checks.iter().filter(|c| c.scope == "region").collect();
    assert_eq!(region.len(), 1, "{checks:#?}");
    let c = region[0];
    assert_eq!(
        (c.runbook.as_str(), c.target.as_str(), c.param.as_str()),
        ("region-evacuation", "us-west-2", "failed_region")
    );
    assert_eq!(
        c.params,
        vec![
            ("recovery_region".to_string(), "us-east-1".to_string()),
            ("reason".to_string(), "readiness check".to_string())
        ]
    );
    // The evacuation is checked once per zone, as before; the region runbook is not a zone one.
    let zones: Vec<&str> = checks
        .iter()
        .filter(|c| c.scope == "zone" && c.runbook == "az-evacuation")
        .map(|c| c.target.as_str())
        .collect();
    assert_eq!(zones, ["us-west-2a", "us-west-2b", "us-west-2c"]);
    let app2 = app.clone();
    let c2 = c.clone();
    let h = tokio::runtime::Handle::current();
    let v = tokio::task::spawn_blocking(move || {
        h.block_on(failover::app::readiness::check(&app2, &c2))
    })
    .await
    .unwrap();
    assert!(!v.ready, "{v:?}");
    let text = format!("{:?}", v.reasons);
    assert!(text.contains("nreachable"), "{text}");
    assert!(!text.to_lowercase().contains("invalid"), "{text}");

    // A region trigger whose runbook is misspelt is not skipped: its check is red, `invalid`,
    // with the reason (the watcher would refuse it when it starts).
    let broken = std::fs::read_to_string(dir.path().join("staging.toml"))
        .unwrap()
        .replace(
            "runbook = \"runbooks/region-evacuation.toml\"",
            "runbook = \"runbooks/region-evacuaton.toml\"",
        );
    std::fs::write(dir.path().join("staging.toml"), broken).unwrap();
    let checks = failover::app::readiness::checks(&app, &files, "staging");
    let c = checks
        .iter()
        .find(|c| c.scope == "region")
        .unwrap_or_else(|| panic!("{checks:#?}"))
        .clone();
    assert_eq!(c.runbook, "region-evacuaton");
    let (app2, h) = (app.clone(), tokio::runtime::Handle::current());
    let v =
        tokio::task::spawn_blocking(move || h.block_on(failover::app::readiness::check(&app2, &c)))
            .await
            .unwrap();
    assert!(!v.ready, "{v:?}");
    let text = format!("{:?}", v.reasons);
    assert!(
        text.contains("Invalid") && text.contains("region-evacuaton.toml"),
        "{text}"
    );
}
