//! A counting reverse proxy in front of moto: every request that reaches the AWS peer is
//! recorded with its operation name, so a test can prove what a command did (or did not) call.
//!
//! RDS speaks the Query protocol (`Action=...` in the form body); Route 53 is REST-XML, so its
//! operations are named from the method and path.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::response::Response;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
struct Shared {
    upstream: String,
    client: reqwest::Client,
    log: Arc<Mutex<Vec<String>>>,
}

pub struct CountingProxy {
    pub port: u16,
    log: Arc<Mutex<Vec<String>>>,
    _task: tokio::task::JoinHandle<()>,
}

/// Operation name of a request: the Query `Action`, or a Route 53 REST operation.
pub fn operation(method: &str, path: &str, body: &str) -> String {
    if let Some(a) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        return a.to_string();
    }
    let p = path.split('?').next().unwrap_or(path);
    let parts: Vec<&str> = p.trim_start_matches('/').split('/').collect();
    // /2013-04-01/hostedzone/ID/rrset, /2013-04-01/change/ID, /2013-04-01/hostedzonesbyname ...
    match (method, parts.get(1).copied(), parts.get(3).copied()) {
        ("POST", Some("hostedzone"), Some("rrset")) => "ChangeResourceRecordSets".into(),
        ("GET", Some("hostedzone"), Some("rrset")) => "ListResourceRecordSets".into(),
        ("GET", Some("hostedzone"), None) if parts.len() >= 3 => "GetHostedZone".into(),
        ("GET", Some("hostedzone"), None) => "ListHostedZones".into(),
        ("POST", Some("hostedzone"), None) => "CreateHostedZone".into(),
        ("GET", Some("hostedzonesbyname"), _) => "ListHostedZonesByName".into(),
        ("GET", Some("change"), _) => "GetChange".into(),
        _ => format!("{method} {p}"),
    }
}

/// Mutating operations among those the tool may call.
pub fn is_mutating(op: &str) -> bool {
    [
        "Failover",
        "Reboot",
        "Create",
        "Change",
        "Delete",
        "Modify",
        "Promote",
        "Switchover",
        "Restore",
    ]
    .iter()
    .any(|p| op.starts_with(p))
}

async fn forward(State(s): State<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, 64 * 1024 * 1024).await.unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let op = operation(
        parts.method.as_str(),
        &path,
        &String::from_utf8_lossy(&bytes),
    );
    s.log.lock().unwrap().push(op);
    let mut rb = s
        .client
        .request(parts.method.clone(), format!("{}{}", s.upstream, path));
    for (k, v) in parts.headers.iter() {
        if k != "host" && k != "content-length" {
            rb = rb.header(k, v);
        }
    }
    let resp = rb
        .body(bytes.to_vec())
        .send()
        .await
        .expect("forward to moto");
    let mut out = Response::builder().status(resp.status().as_u16());
    for (k, v) in resp.headers().iter() {
        if k != "transfer-encoding" && k != "content-length" {
            out = out.header(k, v);
        }
    }
    out.body(Body::from(resp.bytes().await.unwrap_or_default()))
        .unwrap()
}

impl CountingProxy {
    pub async fn start(upstream: String) -> Self {
        let log = Arc::new(Mutex::new(vec![]));
        let shared = Shared {
            upstream,
            client: reqwest::Client::new(),
            log: log.clone(),
        };
        let app = axum::Router::new().fallback(forward).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        CountingProxy {
            port,
            log,
            _task: task,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn calls(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn mutating(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| is_mutating(c))
            .collect()
    }

    pub fn clear(&self) {
        self.log.lock().unwrap().clear();
    }
}
