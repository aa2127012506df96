//! An HTTP server on loopback standing in for a status page and a chat webhook: it records
//! every request and answers 200.

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub body: String,
}

#[derive(Clone)]
struct Shared {
    log: Arc<Mutex<Vec<Received>>>,
}

pub struct Sink {
    pub port: u16,
    log: Arc<Mutex<Vec<Received>>>,
    _task: tokio::task::JoinHandle<()>,
}

async fn record(State(s): State<Shared>, req: Request) -> (StatusCode, String) {
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, 1 << 20).await.unwrap_or_default();
    s.log.lock().unwrap().push(Received {
        path: parts.uri.path().to_string(),
        body: String::from_utf8_lossy(&bytes).to_string(),
    });
    (StatusCode::OK, "{\"ok\":true}".into())
}

impl Sink {
    pub async fn start() -> Self {
        let log = Arc::new(Mutex::new(vec![]));
        let app = axum::Router::new()
            .fallback(record)
            .with_state(Shared { log: log.clone() });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Sink {
            port,
            log,
            _task: task,
        }
    }
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }
}
