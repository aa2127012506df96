//! `failover serve`: the HTTP edge of the tool, beside the CLI and as thin. Every request is
//! one call into `app` (the use cases the CLI calls: the same run lifecycle, leases, journal,
//! cooldowns and approval rules); the service adds only what a long-lived process needs:
//!
//! - [`auth`]: bearer tokens, stored hashed in [`config`], with roles;
//! - [`api`] (runs) and [`info`] (runbooks, environments, health, traffic, leases, metrics);
//! - [`runs`]: the runs it runs, as tasks of its process that outlive the request, stopped
//!   cleanly (resumable) on shutdown;
//! - [`events`]: the journal followed through its port, as server-sent events;
//! - [`metrics`]: Prometheus; [`watch`]: its own probes and watch loops (the runs a zone
//!   failure calls for, started in this process), whose last reports and decisions [`health`]
//!   keeps; [`catalog`]: its runbooks;
//! - [`readiness`]: every runbook's dry-run plan for each zone's failure, on an interval;
//! - [`console`]: the web page at `/` (HTML, JS and CSS embedded in the binary);
//! - [`openapi`]: the document describing every route of [`routes`];
//! - [`service`]: what every handler shares.

pub mod api;
pub mod auth;
pub mod catalog;
pub mod config;
pub mod console;
pub mod drills;
pub mod error;
pub mod events;
pub mod health;
pub mod info;
pub mod metrics;
pub mod openapi;
pub mod readiness;
pub mod runs;
pub mod service;
pub mod watch;

use crate::app::{App, AppError};
use crate::status::RunStatus;
use crate::types::RunId;
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use catalog::Catalog;
use config::ServeConfig;
use error::ApiError;
pub use service::Service;
use std::collections::BTreeMap;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch as signal;

/// How the service is set up (flags, environment variables and its file, resolved).
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// `host:port`; port 0 picks a free one.
    pub listen: String,
    /// The runbooks the API may start.
    pub runbooks: PathBuf,
    pub config: ServeConfig,
    /// How often the journal is read for new events.
    pub poll: Duration,
    /// Run the probes of every environment with `[health]` (and the watch loop of those with
    /// `[health.trigger]`).
    pub probes: bool,
    /// How often readiness is checked (None: never).
    pub readiness: Option<Duration>,
}

/// Every route: method, path (OpenAPI's `{param}` syntax, which axum shares), handler.
pub fn routes() -> Vec<(&'static str, &'static str, MethodRouter<Arc<Service>>)> {
    vec![
        ("get", "/v1/openapi.json", get(info::openapi)),
        ("get", "/v1/runs", get(api::list)),
        ("post", "/v1/runs", post(api::start)),
        ("get", "/v1/runs/{id}", get(api::read)),
        ("get", "/v1/runs/{id}/events", get(api::run_events)),
        ("post", "/v1/runs/{id}/approve", post(api::approve)),
        ("post", "/v1/runs/{id}/reject", post(api::reject)),
        ("post", "/v1/runs/{id}/abort", post(api::abort)),
        ("post", "/v1/runs/{id}/resume", post(api::resume)),
        ("post", "/v1/runs/{id}/rollback", post(api::rollback)),
        ("get", "/v1/events", get(api::all_events)),
        ("get", "/v1/runbooks", get(info::runbooks)),
        ("post", "/v1/validate", post(info::validate)),
        ("get", "/v1/environments", get(info::environments)),
        ("get", "/v1/environments/{env}", get(info::environment)),
        ("get", "/v1/environments/{env}/health", get(info::health)),
        ("get", "/v1/environments/{env}/traffic", get(info::traffic)),
        ("get", "/v1/leases", get(info::leases)),
        ("get", "/v1/readiness", get(info::readiness)),
        ("get", "/v1/readiness/{env}", get(info::readiness_of)),
        ("get", "/v1/whoami", get(info::whoami)),
        ("get", "/", get(console::page)),
        ("get", "/console.js", get(console::script)),
        ("get", "/console.css", get(console::style)),
        ("get", "/metrics", get(info::metrics)),
        ("get", "/healthz", get(info::healthz)),
    ]
}

fn router(service: Arc<Service>) -> Router {
    let mut by_path: BTreeMap<&str, MethodRouter<Arc<Service>>> = BTreeMap::new();
    for (_, path, handler) in routes() {
        let merged = match by_path.remove(path) {
            Some(prev) => prev.merge(handler),
            None => handler,
        };
        by_path.insert(path, merged);
    }
    let mut r = Router::new();
    for (path, handler) in by_path {
        r = r.route(path, handler);
    }
    r.fallback(|| async {
        ApiError::not_found("error: no such route\n  hint: GET /v1/openapi.json lists every route")
    })
    .with_state(service)
}

/// A bound service, not yet serving.
pub struct Server {
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
    shutdown: signal::Sender<bool>,
    options: ServeOptions,
}

/// How the service ended.
pub enum Ended {
    /// Every run it ran ended (finished, or stopped between calls: `interrupted`).
    Clean,
    /// A second signal: these runs were marked `interrupted` with calls possibly in flight.
    Forced(Vec<RunId>),
}

impl Server {
    /// Open the journal, bind the address; nothing is served yet.
    pub async fn bind(app: App, options: ServeOptions) -> Result<Server, AppError> {
        let store = app.open_journal()?;
        let feed = events::Feed::new(store).await?;
        let metrics = Arc::new(metrics::Metrics::new());
        let m = metrics.clone();
        crate::journal::observe_writes(Arc::new(move |d, durable| {
            m.journal_write(d.as_secs_f64(), durable)
        }));
        let listener = tokio::net::TcpListener::bind(&options.listen)
            .await
            .map_err(|e| {
                AppError::Input(format!(
                    "error: cannot listen on {}: {e}\n  hint: pass --listen HOST:PORT (port 0 picks a free one)",
                    options.listen
                ))
            })?;
        let (shutdown, rx) = signal::channel(false);
        let service = Arc::new(Service {
            catalog: Catalog {
                dir: options.runbooks.clone(),
            },
            config: options.config.clone(),
            runs: runs::Runs::default(),
            feed,
            metrics,
            health: Arc::new(health::Health::default()),
            readiness: Arc::new(readiness::Readiness::new(
                options.readiness,
                options.config.readiness_notify.clone(),
            )),
            shutdown: rx,
            stopping: AtomicBool::new(false),
            app,
        });
        Ok(Server {
            listener,
            service,
            shutdown,
            options,
        })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    pub fn tokens(&self) -> usize {
        self.service.config.tokens.len()
    }

    /// Serve until `signal` resolves; then take no new run, ask every run to stop between
    /// calls and wait for them (they end `interrupted`, resumable). A second `signal` leaves
    /// at once, marking the runs left `interrupted`.
    pub async fn run<F, Fut>(self, signal: F) -> Result<Ended, AppError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = ()>,
    {
        let s = self.service.clone();
        let follower = tokio::spawn(s.feed.clone().follow(
            self.options.poll,
            s.metrics.clone(),
            s.shutdown.clone(),
        ));
        if self.options.probes {
            watch::start(&s, s.shutdown.clone());
        }
        let _drills = drills::start(&s.app, s.shutdown.clone());
        let checks = readiness::Loop {
            app: s.app.clone(),
            catalog: s.catalog.clone(),
            metrics: s.metrics.clone(),
            readiness: s.readiness.clone(),
        };
        readiness::start(checks, s.shutdown.clone());
        let mut stop_rx = s.shutdown.clone();
        let server = axum::serve(self.listener, router(s.clone()))
            .with_graceful_shutdown(async move {
                let _ = stop_rx.changed().await;
            })
            .into_future();
        let server = tokio::spawn(server);
        signal().await;
        let left = s.runs.ids();
        tracing::warn!(
            runs = left.len(),
            "shutting down: no new run; runs in progress stop after their calls in flight"
        );
        s.stopping.store(true, Ordering::SeqCst);
        let _ = self.shutdown.send(true);
        s.runs
            .stop_all("the service is shutting down (SIGTERM or Ctrl-C)");
        let drained = async {
            s.runs.drained().await;
            let _ = server.await;
            let _ = follower.await;
        };
        tokio::select! {
            _ = drained => Ok(Ended::Clean),
            _ = signal() => {
                let ids = s.runs.ids();
                for id in &ids {
                    s.app.mark(id, RunStatus::Interrupted, "interrupted by a second signal while the service shut down; calls in flight are in doubt");
                }
                Ok(Ended::Forced(ids))
            }
        }
    }
}
