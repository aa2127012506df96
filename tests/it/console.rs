//! The web console in a real browser: headless Chromium (Debian's `chromium`, which
//! `scripts/test` installs when missing) driven over the Chrome DevTools Protocol on its
//! websocket. Alice (operator) starts runs through the page: one in the simulated environment,
//! followed live to its end; one in the local environment (moto, so the approval gate waits in
//! real time) paused for approval, which she may not approve herself and bob (approver)
//! approves from the page. The DOM is read with `Runtime.evaluate`; screenshots are kept in
//! `target/test-artefacts/console/`.

use crate::common;
use crate::serve::{simulated_config, token, write_tokens, Service};

use common::moto::MotoServer;
use common::sink::Sink;
use common::topo::{repo, TestConfig};
use serde_json::{json, Value};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// The Chromium binary: `$CHROMIUM`, else the first of Debian's and others' names on PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

/// Headless Chromium with one page, attached over the DevTools protocol.
struct Browser {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    session: String,
    next: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch(exe: &std::path::Path) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--window-size=1280,1400",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        // Chromium writes its DevTools port and the browser's websocket path here.
        let file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        let text = loop {
            if let Ok(t) = std::fs::read_to_string(&file) {
                if t.lines().count() >= 2 {
                    break t;
                }
            }
            assert!(
                Instant::now() < deadline,
                "Chromium wrote no DevToolsActivePort"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut lines = text.lines();
        let (port, path) = (lines.next().unwrap(), lines.next().unwrap());
        let (ws, _) = tungstenite::connect(format!("ws://127.0.0.1:{port}{path}")).unwrap();
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        }
        let mut b = Browser {
            child,
            ws,
            session: String::new(),
            next: 0,
            _profile: profile,
        };
        let t = b.call("Target.createTarget", json!({"url": "about:blank"}));
        let target = t["targetId"].as_str().unwrap().to_string();
        let a = b.call(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        b.session = a["sessionId"].as_str().unwrap().to_string();
        b.call("Page.enable", json!({}));
        b.call("Runtime.enable", json!({}));
        b
    }

    /// One DevTools command (on the page once attached); its result. Events are skipped.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        self.ws.send(Message::text(msg.to_string())).unwrap();
        loop {
            let m = self.ws.read().unwrap();
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["id"] == id {
                assert!(v["error"].is_null(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Evaluate `expr` in the page (promises awaited); its value.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(r["exceptionDetails"].is_null(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Poll `expr` until it is truthy; its value.
    fn wait(&mut self, what: &str, expr: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(45);
        loop {
            let v = self.eval(expr);
            if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) {
                return v;
            }
            if Instant::now() > deadline {
                self.screenshot("timeout");
                let page = self.eval("document.body.innerText");
                panic!(
                    "the page never showed {what} ({expr}):\n{}",
                    page.as_str().unwrap_or("")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&mut self, name: &str) -> PathBuf {
        let r = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let png = base64_decode(r["data"].as_str().unwrap());
        let dir = repo().join("target/test-artefacts/console");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Type a token into the page's token form and use it.
    fn sign_in(&mut self, who: &str) {
        self.eval(&format!(
            "document.querySelector('#token').value = {}; document.querySelector('#auth').requestSubmit(); true",
            json!(token(who))
        ));
        self.wait(
            &format!("{who} signed in"),
            &format!("document.querySelector('#whoami').textContent.startsWith('{who} (')"),
        );
    }

    /// Fill the start form and submit it; the run id the page then shows.
    fn start_run(&mut self, env: &str, zone: &str, approval: bool) -> String {
        let before = self.eval("document.querySelector('#run-id').textContent");
        self.wait(
            "the runbooks",
            "document.querySelector('#start-runbook option[value=\"az-evacuation\"]') !== null",
        );
        self.wait(
            "the environments",
            &format!("document.querySelector('#start-env option[value=\"{env}\"]') !== null"),
        );
        self.eval(&format!(
            r#"(() => {{
                const rb = document.querySelector('#start-runbook');
                rb.value = 'az-evacuation';
                rb.dispatchEvent(new Event('change'));
                document.querySelector('#start-env').value = '{env}';
                document.querySelector('#start-params [data-param="failed_az"]').value = '{zone}';
                document.querySelector('#start-mode').value = 'run';
                document.querySelector('#start-approval').checked = {approval};
                document.querySelector('#start-submit').click();
                return true;
            }})()"#
        ));
        let id = self.wait(
            "the new run",
            &format!("(() => {{ const t = document.querySelector('#run-id').textContent; return t && t !== {before} ? t : null; }})()"),
        );
        id.as_str().unwrap().to_string()
    }

    fn status(&mut self) -> String {
        self.eval("document.querySelector('#run-status').dataset.status || ''")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 (the screenshots' PNG).
fn base64_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| *c != b'=' && !c.is_ascii_whitespace()) {
        let v = A.iter().position(|a| *a == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_starts_runs_follows_them_live_and_a_second_person_approves() {
    let Some(exe) = chromium() else {
        eprintln!(
            "SKIPPED the_console_starts_runs_follows_them_live_and_a_second_person_approves: no Chromium found (apt-get install chromium, or set CHROMIUM=/path/to/chrome); scripts/test installs it"
        );
        return;
    };
    let moto = MotoServer::start();
    let sink = Sink::start().await;
    let cfg = simulated_config();
    let local = TestConfig::local(&moto.endpoint(), &sink.url());
    std::fs::copy(
        local.path().join("local.toml"),
        cfg.path().join("local.toml"),
    )
    .unwrap();
    common::topo::seed(&local.env()).await;
    write_tokens(cfg.path());
    let s = Service::start_with(
        cfg.path(),
        &cfg.path().join("journal.db"),
        &["--no-probes", "--readiness-interval", "60s"],
    );
    let mut b = Browser::launch(&exe);
    b.call("Page.navigate", json!({"url": format!("{}/", s.base)}));
    b.wait(
        "the console",
        "document.readyState === 'complete' && document.querySelector('#start-form') !== null",
    );
    assert_eq!(b.eval("document.title"), "failover console");
    b.sign_in("alice");
    b.wait(
        "the live stream",
        "document.querySelector('#live').textContent === 'live'",
    );
    b.wait(
        "the zones of each environment",
        "document.querySelectorAll('#envs [data-zone]').length >= 6",
    );

    // A run in the simulated environment, followed live to its end.
    let sim = b.start_run("simulated", "us-west-2a", false);
    b.wait(
        "the simulated run succeeded",
        "document.querySelector('#run-status').dataset.status === 'succeeded'",
    );
    let text = b
        .wait(
            "the timeline",
            "document.querySelector('#run-text').textContent",
        )
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.starts_with(&format!("Run {sim}: runbook `az-evacuation`")),
        "{text}"
    );
    assert!(text.contains("failover-aurora"), "{text}");
    assert!(text.contains("started by alice"), "{text}");
    let phases = b.eval("[...document.querySelectorAll('#phases rect')].map(r => r.getAttribute('class') + ':' + r.dataset.step)");
    let phases: Vec<&str> = phases
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(phases.contains(&"p-failover:failover-aurora"), "{phases:?}");
    assert!(phases.iter().any(|p| p.starts_with("p-dns:")), "{phases:?}");
    b.wait("the run in the list", &format!("document.querySelector('#runs-rows tr[data-run=\"{sim}\"] [data-status=\"succeeded\"]') !== null"));
    b.wait(
        "readiness",
        "document.querySelectorAll('#readiness-rows tr').length >= 3",
    );
    println!(
        "screenshot: {}",
        b.screenshot("1-simulated-run-succeeded").display()
    );

    // A run paused for approval (local environment: the gate waits in real time).
    let gated = b.start_run("local", "us-west-2a", true);
    assert_ne!(gated, sim);
    b.wait(
        "the run waiting for approval",
        "document.querySelector('#run-status').dataset.status === 'waiting_approval'",
    );
    println!(
        "screenshot: {}",
        b.screenshot("2-waiting-for-approval").display()
    );
    // Alice started it: her approval is refused, and the page says why.
    b.eval("document.querySelector('#btn-approve').click(); true");
    b.wait(
        "the refusal",
        "document.querySelector('#error').textContent.includes('cannot approve it')",
    );
    assert_eq!(b.status(), "waiting_approval");

    // Bob, in the same tab with his own token, approves with a comment.
    b.sign_in("bob");
    b.wait(
        "the gated run still shown",
        &format!("document.querySelector('#run-id').textContent === '{gated}'"),
    );
    // The page applies bob's roles: he may approve, he may not abort (no operator).
    b.wait(
        "bob's buttons",
        "document.querySelector('#btn-abort').disabled && !document.querySelector('#btn-approve').disabled",
    );
    b.eval("document.querySelector('#run-comment').value = 'zone a is gone, go'; document.querySelector('#btn-approve').click(); true");
    b.wait(
        "the approval",
        "document.querySelector('#action-result').textContent.startsWith('approved by bob')",
    );
    b.wait(
        "the gated run succeeded",
        "document.querySelector('#run-status').dataset.status === 'succeeded'",
    );
    let text = b.eval("document.querySelector('#run-text').textContent");
    assert!(text.as_str().unwrap().contains("bob"), "{text}");
    println!(
        "screenshot: {}",
        b.screenshot("3-approved-and-succeeded").display()
    );

    // The journal agrees: bob approved alice's run, with his comment.
    let (code, v) = s
        .call("GET", &format!("/v1/runs/{gated}"), "vera", json!({}))
        .await;
    assert_eq!(code, 200);
    assert_eq!(v["run"]["initiator"], "alice");
    let tl = v["timeline"].as_array().unwrap();
    assert!(
        tl.iter()
            .any(|e| e["kind"] == "approved" && e.to_string().contains("bob")),
        "{v:#}"
    );
    assert!(
        tl.iter()
            .any(|e| e["kind"] == "comment" && e.to_string().contains("zone a is gone, go")),
        "{v:#}"
    );
}
