//! The dashboard: `GET /_emulator/ui` (docs/guide/emulator.md, "Dashboard"), a page the emulator serves itself.
//!
//! The page is plain HTML, CSS and JavaScript modules from `emulator/ui/`, compiled into the
//! binary (`include_str!`): no build step, nothing fetched from another host (the answer's
//! `Content-Security-Policy` is `default-src 'self'`, so a browser would refuse it anyway). What
//! it shows it reads in the browser, through the same routes any client has: the control plane
//! (`/_emulator/...`) and the product API (`/v1`, with the sandbox's keys from
//! `GET /_emulator/sandboxes`).
//!
//! Who may open it: the Origin/Host rule of every `/_emulator` route applies (the pipeline's
//! step). The page's own files hold no data and no secret (they are the same bytes in every
//! emulator), so they answer without the admin token; every call the page makes needs it when
//! one is set. The page takes it from the URL's fragment (`/_emulator/ui#token=T`: a fragment is
//! never sent to the server, so it is in no log or journal), keeps it in the tab's
//! `sessionStorage` and removes it from the address bar; or it asks for it.
//!
//! Not an operation of the OpenAPI document: it answers HTML, not the API, so it is routed
//! beside the operation table ([`router`]) rather than in it.

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::error::ApiError;

/// The page's policy: its own origin only, no framing, no forms posted anywhere.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page's files: name under `/_emulator/ui/`, media type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.js", "text/javascript; charset=utf-8", include_str!("../../ui/app.js")),
    ("api.js", "text/javascript; charset=utf-8", include_str!("../../ui/api.js")),
    ("view.js", "text/javascript; charset=utf-8", include_str!("../../ui/view.js")),
    ("style.css", "text/css; charset=utf-8", include_str!("../../ui/style.css")),
    ("favicon.svg", "image/svg+xml", include_str!("../../ui/favicon.svg")),
];

const INDEX_HTML: &str = include_str!("../../ui/index.html");

/// The dashboard's routes, merged into the application's router.
pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/_emulator/ui", get(page)).route("/_emulator/ui/{asset}", get(asset))
}

fn with_headers(media_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The files change only with the binary; `no-cache` revalidates after an upgrade.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /_emulator/ui`
async fn page() -> Response {
    with_headers("text/html; charset=utf-8", INDEX_HTML)
}

/// `GET /_emulator/ui/{asset}`
async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, media_type, body)) => with_headers(media_type, body),
        None => ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("The dashboard has no file {name:?}."))
            .into_response(),
    }
}
