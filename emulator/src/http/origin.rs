//! Who may call the admin routes (docs/guide/emulator.md, "Who may call it"): the control plane
//! (`/_emulator/*`), `/metrics` and `POST /v1/sandboxes`.
//!
//! With an admin token, they need `Authorization: Bearer <token>`, compared in constant time
//! ([`token_matches`]; the [`super::extract::Admin`] guard). Without one they are open, but only
//! to this machine's own pages and tools, which this step enforces for every such route at once
//! (a rule here, not a check per handler):
//!
//! - a `Host` that is not a loopback name (`localhost`, `127.0.0.1`, `[::1]`) or the configured
//!   `--host` is refused with 403 `forbidden_origin`: a page whose name was rebound to 127.0.0.1
//!   (DNS rebinding) sends its own name as `Host`;
//! - an `Origin` other than the emulator's own (`http://` + the request's `Host`) is refused the
//!   same way: a cross-site page's requests carry its origin;
//! - a state-changing request's body, where one is sent, must be `application/json` (else 415):
//!   a browser sends a cross-site `text/plain` or form body without asking first (no CORS
//!   preflight), but never a JSON one.
//!
//! A request with no `Host` at all is one made in-process (HTTP/1.1 clients always send it).

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};

use super::HttpConfig;
use super::error::ApiError;

/// Whether the route of `method` `path` is an admin route (see the module docs).
pub fn is_admin_route(method: &Method, path: &str) -> bool {
    path.starts_with("/_emulator/") || path == "/metrics" || (path == "/v1/sandboxes" && method == Method::POST)
}

/// The host part of a `Host` value or an origin's authority (`name`, `1.2.3.4`, `[::1]`),
/// without its port, in lower case.
fn host_part(authority: &str) -> String {
    let host = if authority.starts_with('[') {
        authority.split_inclusive(']').next().unwrap_or(authority)
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    host.to_ascii_lowercase()
}

/// Whether `host` (from [`host_part`]) names this emulator: a loopback name or the configured host.
fn is_own_host(host: &str, config: &HttpConfig) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
        || config.host.as_deref().is_some_and(|own| host_part(own) == host || own.eq_ignore_ascii_case(host))
}

fn forbidden(detail: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden_origin", detail)
}

fn is_json(headers: &HeaderMap) -> Option<bool> {
    let ct = headers.get(header::CONTENT_TYPE)?;
    let essence = ct.to_str().unwrap_or_default().split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    Some(essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json")))
}

/// Whether a body is (or may be) sent: a non-zero `Content-Length` or a chunked one.
fn has_body(headers: &HeaderMap) -> bool {
    let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    length.is_some_and(|n| n > 0) || headers.contains_key(header::TRANSFER_ENCODING)
}

/// Refuses an admin route's request from a foreign page (see the module docs); `Ok` for every
/// other route, and for all of them when an admin token is configured (the token decides).
pub fn check(config: &HttpConfig, req: &Request) -> Result<(), ApiError> {
    if config.admin_token.is_some() || !is_admin_route(req.method(), req.uri().path()) {
        return Ok(());
    }
    let headers = req.headers();
    let host = match headers.get(header::HOST) {
        Some(v) => Some(v.to_str().map_err(|_| forbidden("The Host header is not this emulator's."))?),
        None => req.uri().authority().map(|a| a.as_str()),
    };
    if let Some(host) = host {
        if !is_own_host(&host_part(host), config) {
            return Err(forbidden(
                "This emulator's admin routes answer only to its own names (localhost, 127.0.0.1, [::1] or --host).",
            ));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let authority = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
        let own = match (authority, host) {
            (Some(a), Some(h)) => a.eq_ignore_ascii_case(h),
            (Some(a), None) => is_own_host(&host_part(a), config),
            (None, _) => false,
        };
        if !own {
            return Err(forbidden("Requests from other web pages may not call this emulator's admin routes."));
        }
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    match is_json(headers) {
        Some(true) => {}
        Some(false) if !safe => return Err(not_json()),
        None if !safe && has_body(headers) => return Err(not_json()),
        _ => {}
    }
    Ok(())
}

fn not_json() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "Send a JSON body with `Content-Type: application/json`.",
    )
}

/// Whether `given` is `expected`, in time that does not depend on where they differ (only on
/// their lengths): a byte-by-byte `==` stops at the first difference, which a caller can time.
pub fn token_matches(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for (i, e) in expected.iter().enumerate() {
        // Compared with itself past the end of `given`, so the work is `expected`'s length.
        let g = given.get(i).copied().unwrap_or(*e);
        diff |= g ^ e;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(token_matches(b"secret", b"secret"));
        assert!(!token_matches(b"secreT", b"secret"));
        assert!(!token_matches(b"secre", b"secret"));
        assert!(!token_matches(b"secrets", b"secret"));
        assert!(!token_matches(b"", b"secret"));
        assert!(token_matches(b"", b""));
    }

    #[test]
    fn hosts_without_ports() {
        assert_eq!(host_part("LocalHost:8080"), "localhost");
        assert_eq!(host_part("[::1]:80"), "[::1]");
        assert_eq!(host_part("[::1]"), "[::1]");
        assert_eq!(host_part("127.0.0.1"), "127.0.0.1");
        let config = HttpConfig { host: Some("10.0.0.5".to_owned()), ..HttpConfig::default() };
        assert!(is_own_host("10.0.0.5", &config));
        assert!(!is_own_host("evil.example", &config));
    }
}
