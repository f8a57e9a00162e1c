//! Hooks and logging: one event before and one after every attempt (per-call control).
//!
//! The retry loop ([`crate::retry`]) reports each attempt, not each call: a call retried twice
//! shows three `on_request` and three `on_response` events, all with the call's one request id
//! and idempotency key and attempts numbered from 1. Hooks are set with
//! [`crate::RequestOptions::on_request`] / [`crate::RequestOptions::on_response`] (through
//! [`crate::Client::with_options`]); a client without them builds no [`Attempt`] at all.
//!
//! Logging is `tracing` at target `twh`, level DEBUG, one event per attempt with `method`,
//! `path`, `status`, `attempt`, `elapsed_ms` and `request_id`; it is silent unless a subscriber
//! enables that target. Neither carries a header but the request id and idempotency key, so the
//! API key (the `Authorization` header) and webhook secrets (only in bodies) never appear.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// One attempt of a call, as the hooks see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The HTTP method.
    pub method: String,
    /// The full URL, query included.
    pub url: String,
    /// 1 for the first attempt, 2 for the first retry, …
    pub attempt: u32,
    /// The call's request id (`X-Request-Id`; the same on every attempt).
    pub request_id: Option<String>,
    /// The call's idempotency key (the same on every attempt).
    pub idempotency_key: Option<String>,
    /// After the attempt: its status (`None` before, or when no answer came).
    pub status: Option<u16>,
    /// After the attempt: how long it took.
    pub elapsed: Option<Duration>,
}

/// A hook: called once per attempt, on the task making the call (keep it quick).
pub type Hook = Arc<dyn Fn(&Attempt) + Send + Sync>;

/// The hooks of a client.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Before each attempt.
    pub on_request: Option<Hook>,
    /// After each attempt (with its status and elapsed time).
    pub on_response: Option<Hook>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("on_request", &self.on_request.is_some())
            .field("on_response", &self.on_response.is_some())
            .finish()
    }
}

impl Hooks {
    pub(crate) fn is_empty(&self) -> bool {
        self.on_request.is_none() && self.on_response.is_none()
    }
}

fn header(request: &reqwest::Request, name: &str) -> Option<String> {
    request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The attempt of `request`, number `attempt`, before it is sent.
pub(crate) fn attempt(request: &reqwest::Request, attempt: u32) -> Attempt {
    Attempt {
        method: request.method().as_str().to_owned(),
        url: request.url().as_str().to_owned(),
        attempt,
        request_id: header(request, crate::idempotency::REQUEST_ID_HEADER),
        idempotency_key: header(request, crate::idempotency::IDEMPOTENCY_KEY_HEADER),
        status: None,
        elapsed: None,
    }
}

/// Whether attempts are watched at all: hooks set, or a `tracing` subscriber listening to
/// target `twh` at DEBUG.
pub(crate) fn watched(hooks: Option<&Hooks>) -> bool {
    hooks.is_some_and(|h| !h.is_empty()) || tracing::enabled!(target: "twh", tracing::Level::DEBUG)
}

/// The debug line of one finished attempt (target `twh`).
pub(crate) fn log(a: &Attempt) {
    let path = a.url.split_once("://").and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..])).unwrap_or("/");
    let path = path.split('?').next().unwrap_or(path);
    tracing::debug!(
        target: "twh",
        method = a.method.as_str(),
        path,
        status = a.status.unwrap_or(0),
        attempt = a.attempt,
        elapsed_ms = a.elapsed.map_or(0, |e| u64::try_from(e.as_millis()).unwrap_or(u64::MAX)),
        request_id = a.request_id.as_deref(),
        "twh request"
    );
}
