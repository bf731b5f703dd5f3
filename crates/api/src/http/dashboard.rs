//! The dashboard: one static page and its script and styles, built into the binary (no Node
//! toolchain, no CDN). The page holds no data: its script signs in with the `login` mutation,
//! keeps the token in memory only, and reads everything through `POST /graphql` and
//! `/graphql/ws` like any other client. A strict Content-Security-Policy allows scripts and
//! styles from this origin only (nothing inline), and connections to this origin only.

use poem::http::{StatusCode, header};
use poem::web::Path;
use poem::{IntoResponse, Response, handler};

const PAGE: &str = include_str!("dashboard/index.html");

/// Every asset, by the name in its URL.
const ASSETS: &[(&str, &str, &str)] = &[
    ("dashboard.js", "text/javascript; charset=utf-8", include_str!("dashboard/dashboard.js")),
    ("dashboard.css", "text/css; charset=utf-8", include_str!("dashboard/dashboard.css")),
];

/// `'self'` covers `ws:`/`wss:` to this host in CSP Level 3 browsers.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn secured(content_type: &str, body: &'static str) -> Response {
    Response::builder()
        .content_type(content_type)
        .header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        .header("X-Content-Type-Options", "nosniff")
        .header("Referrer-Policy", "no-referrer")
        .header("X-Frame-Options", "DENY")
        // Unversioned names: revalidated on each load, so an upgrade shows at once.
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
}

#[handler]
pub fn page() -> Response {
    secured("text/html; charset=utf-8", PAGE)
}

#[handler]
pub fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(asset, _, _)| *asset == name) {
        Some((_, content_type, text)) => secured(content_type, text),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
