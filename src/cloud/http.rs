//! `HttpClient` port backed by reqwest (rustls), for `http` steps: status pages, chat hooks,
//! edge admin APIs.
//!
//! Any HTTP status is a response, not an error: the step compares it with the statuses it
//! expects. Errors are failures to get a response at all: connection refused or reset, DNS,
//! TLS and timeouts are `Transient`; a request that cannot be built (bad method, URL or header)
//! is `InvalidRequest`. The operation is named `HTTP <METHOD>` and the resource is the URL
//! without its query string, fragment or credentials, so secrets in tokens do not reach logs or
//! the journal.

use super::{redacted_url, CloudError, ErrorKind, HttpClient, HttpRequest, HttpResponse};
use async_trait::async_trait;
use std::error::Error as StdError;
use std::time::Duration;

/// Time allowed to open a TCP/TLS connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout used when a request carries a zero timeout.
pub const DEFAULT_TIMEOUT: Duration = crate::cloud::DEFAULT_HTTP_TIMEOUT;
/// Bytes of a response body kept; the rest is read and dropped.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The `HttpClient` port backed by a shared reqwest connection pool.
#[derive(Clone, Debug)]
pub struct ReqwestHttp {
    client: reqwest::Client,
}

impl ReqwestHttp {
    /// A client with rustls, a connect timeout of [`CONNECT_TIMEOUT`] and a `failover` user
    /// agent. Fails only if the TLS backend cannot be initialised.
    pub fn new() -> Result<Self, CloudError> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("failover/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                CloudError::new(
                    ErrorKind::Other,
                    "HTTP client",
                    "-",
                    format!("cannot build the HTTP client: {}", chain(&e)),
                )
            })?;
        Ok(Self { client })
    }

    /// Wraps an existing reqwest client.
    pub fn from_client(client: reqwest::Client) -> Self {
        Self { client }
    }
}

fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let text = e.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = e.source();
    }
    s
}

fn classify(operation: &str, resource: &str, timeout: Duration, e: reqwest::Error) -> CloudError {
    let e = e.without_url();
    let (kind, what) = if e.is_builder() {
        (
            ErrorKind::InvalidRequest,
            "the request is invalid".to_string(),
        )
    } else if e.is_timeout() {
        (
            ErrorKind::Transient,
            format!(
                "no complete answer within {}",
                humantime::format_duration(timeout)
            ),
        )
    } else if e.is_connect() {
        (ErrorKind::Transient, "cannot connect".to_string())
    } else if e.is_redirect() {
        (
            ErrorKind::Other,
            "redirect loop or too many redirects".to_string(),
        )
    } else if e.is_body() || e.is_decode() {
        (
            ErrorKind::Transient,
            "reading the response failed".to_string(),
        )
    } else {
        (ErrorKind::Transient, "the request failed".to_string())
    };
    CloudError::new(kind, operation, resource, format!("{what}: {}", chain(&e)))
}

#[async_trait]
impl HttpClient for ReqwestHttp {
    async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, CloudError> {
        let method_name = request.method.trim().to_ascii_uppercase();
        let operation = format!("HTTP {method_name}");
        let resource = redacted_url(&request.url);
        let method = reqwest::Method::from_bytes(method_name.as_bytes()).map_err(|_| {
            CloudError::new(
                ErrorKind::InvalidRequest,
                &operation,
                &resource,
                format!("invalid HTTP method {:?}", request.method),
            )
        })?;
        let timeout = if request.timeout.is_zero() {
            DEFAULT_TIMEOUT
        } else {
            request.timeout
        };
        let mut req = self.client.request(method, &request.url).timeout(timeout);
        for (name, value) in &request.headers {
            req = req.header(name, value);
        }
        if let Some(body) = &request.body {
            req = req.body(body.clone());
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| classify(&operation, &resource, timeout, e))?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| classify(&operation, &resource, timeout, e))?
        {
            let room = MAX_BODY_BYTES.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        Ok(HttpResponse {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{get, post};
    use axum::Router;

    async fn serve() -> String {
        let app = Router::new()
            .route("/ok", get(|| async { "fine" }))
            .route(
                "/missing",
                get(|| async { (StatusCode::NOT_FOUND, "nope") }),
            )
            .route(
                "/echo",
                post(|headers: HeaderMap, body: String| async move {
                    let token = headers
                        .get("x-token")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    (StatusCode::CREATED, format!("{token}:{body}"))
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    fn req(method: &str, url: String, timeout: Duration) -> HttpRequest {
        HttpRequest {
            method: method.into(),
            url,
            headers: vec![],
            body: None,
            timeout,
        }
    }

    #[tokio::test]
    async fn statuses_are_responses_not_errors() {
        let base = serve().await;
        let http = ReqwestHttp::new().unwrap();
        let ok = http
            .send(&req(
                "get",
                format!("{base}/ok?token=secret"),
                Duration::from_secs(5),
            ))
            .await
            .unwrap();
        assert_eq!(
            ok,
            HttpResponse {
                status: 200,
                body: "fine".into()
            }
        );
        let missing = http
            .send(&req(
                "GET",
                format!("{base}/missing"),
                Duration::from_secs(5),
            ))
            .await
            .unwrap();
        assert_eq!(
            missing,
            HttpResponse {
                status: 404,
                body: "nope".into()
            }
        );
    }

    #[tokio::test]
    async fn headers_and_body_are_sent() {
        let base = serve().await;
        let http = ReqwestHttp::new().unwrap();
        let mut r = req("POST", format!("{base}/echo"), Duration::from_secs(5));
        r.headers.push(("x-token".into(), "t0k".into()));
        r.body = Some("{\"a\":1}".into());
        let resp = http.send(&r).await.unwrap();
        assert_eq!(
            resp,
            HttpResponse {
                status: 201,
                body: "t0k:{\"a\":1}".into()
            }
        );
    }

    #[tokio::test]
    async fn timeouts_and_refused_connections_are_transient() {
        let base = serve().await;
        let http = ReqwestHttp::new().unwrap();
        let err = http
            .send(&req(
                "GET",
                format!("{base}/slow?key=secret"),
                Duration::from_millis(200),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Transient, "{err}");
        assert_eq!(err.operation, "HTTP GET");
        assert_eq!(err.resource, format!("{base}/slow"));
        assert!(!err.to_string().contains("secret"), "{err}");

        // A port nobody listens on: bind, take the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = http
            .send(&req(
                "GET",
                format!("http://127.0.0.1:{port}/"),
                Duration::from_secs(5),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Transient, "{err}");
    }

    #[tokio::test]
    async fn malformed_requests_are_invalid() {
        let http = ReqwestHttp::new().unwrap();
        let err = http
            .send(&req(
                "GE T",
                "http://127.0.0.1:9/".into(),
                Duration::from_secs(1),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidRequest, "{err}");
        let err = http
            .send(&req("GET", "not a url".into(), Duration::from_secs(1)))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidRequest, "{err}");
        let mut r = req("GET", "http://127.0.0.1:9/".into(), Duration::from_secs(1));
        r.headers.push(("bad header".into(), "v".into()));
        let err = http.send(&r).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidRequest, "{err}");
    }
}
