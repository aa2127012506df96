//! The web console: one page served at `/`, with its script and style sheet, embedded in the
//! binary (`include_str!`): plain HTML, JavaScript and CSS, no framework, no build step and
//! nothing fetched from another origin (the Content-Security-Policy says so to the browser).
//! It calls the same `/v1` API as any client, with the token the user enters (kept in the
//! tab's sessionStorage, sent as `Authorization: Bearer`), and follows `/v1/events` live
//! (`access_token`: see `auth::StreamCaller`). The page itself holds no data and needs no token.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const HTML: &str = include_str!("assets/console.html");
const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// Only this origin's script, style and API; no frame may embed the console.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `GET /`: the console.
pub async fn page() -> Response {
    asset("text/html; charset=utf-8", HTML)
}

/// `GET /console.js`.
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /console.css`.
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_loads_nothing_from_another_origin() {
        for text in [super::HTML, super::SCRIPT, super::STYLE] {
            assert!(!text.contains("http://") || text.contains("http://www.w3.org/2000/svg"));
            assert!(!text.contains("https://"), "an external URL in the console");
        }
        assert!(super::HTML.contains("<script src=\"/console.js\"></script>"));
    }
}
