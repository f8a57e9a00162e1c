//! Retries: which failures are tried again, how long to wait, and how attempts are counted.
//!
//! The policy (docs/guide/errors.md, "What the SDKs retry") lives in progenitor's [`ClientHooks::exec`] for the generated
//! client, so every operation gets it, including calls made through [`Client::raw`](crate::Client::raw). `exec`
//! receives the fully built request and sends `request.try_clone()` once per attempt, so each
//! retry sends the same bytes: the same body, the same `Idempotency-Key` and the same
//! `X-Request-Id` (both set once per logical call by [`ClientHooks::pre`]; see
//! [`crate::idempotency`]).
//!
//! - **Retried**: connection errors and timeouts (any transport error but a malformed request),
//!   408, 409 whose problem `code` is `idempotency_key_in_use`, 429, 500, 502, 503 and 504.
//!   Nothing else: any other 4xx is an answer, and repeating the question will not change it.
//! - **Attempts**: at most `1 + max_retries` ([`crate::DEFAULT_MAX_RETRIES`] = 3 retries).
//! - **Waiting**: exponential backoff with full jitter, a uniformly random wait in
//!   `0..=min(BACKOFF_CAP, BACKOFF_BASE × 2^(retry − 1))`, unless the answer carries
//!   `Retry-After` (seconds or an HTTP date), which is then waited exactly. A `Retry-After`
//!   longer than [`RETRY_AFTER_CAP`] is not waited for at all: the error is returned at once with
//!   its [`Error::retry_after`](crate::Error::retry_after), since retrying sooner than the server
//!   asked cannot succeed and blocking a caller for more than a minute is worse than telling it
//!   (a `quota_exceeded` answers with the seconds to the end of the billing period).
//! - **Counting**: the number of attempts made is reported on the final error
//!   ([`Error::attempts`](crate::Error::attempts)). `exec` can only return a `reqwest` result, so
//!   the count travels in a task-local set up by the SDK around each call.
//!
//! Timeouts are per attempt (the client's `timeout`, default 30 s).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::StatusCode;

use crate::generated;

/// First backoff step (base 0.5 s).
pub const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Longest backoff wait (cap 8 s).
pub const BACKOFF_CAP: Duration = Duration::from_secs(8);
/// Longest `Retry-After` the client waits for (cap 60 s); longer ones end the call.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);
/// Most retries a client may be configured with.
pub const RETRY_COUNT_MAX: u32 = 10;
/// Largest error body read to find its problem `code` before deciding on a 409, in bytes.
const PEEK_BODY_LEN_MAX_BYTES: usize = 64 * 1024;

/// How a client retries, and what it adds to every attempt (the settings of
/// [`crate::Client::with_options`]). Made by [`crate::ClientBuilder`]; carried inside the
/// generated client.
#[derive(Clone, Debug, Default)]
pub struct RetryPolicy {
    max_retries: u32,
    /// Per-attempt timeout overriding the HTTP client's (a client of `with_options` shares the
    /// HTTP client, and so its connection pool, but may time out sooner or later).
    timeout: Option<Duration>,
    /// Headers added to every request (`with_options(headers)`); `None` when there are none.
    headers: Option<Arc<reqwest::header::HeaderMap>>,
    /// Hooks called around each attempt.
    hooks: Option<Arc<crate::hooks::Hooks>>,
}

impl RetryPolicy {
    /// A policy allowing `max_retries` retries (so `1 + max_retries` attempts), at most
    /// [`RETRY_COUNT_MAX`].
    pub(crate) fn new(max_retries: u32) -> RetryPolicy {
        debug_assert!(max_retries <= RETRY_COUNT_MAX);
        RetryPolicy { max_retries: max_retries.min(RETRY_COUNT_MAX), ..RetryPolicy::default() }
    }

    /// This policy with the overrides of [`crate::Client::with_options`].
    pub(crate) fn with(
        &self,
        max_retries: Option<u32>,
        timeout: Option<Duration>,
        headers: Option<Arc<reqwest::header::HeaderMap>>,
        hooks: Option<Arc<crate::hooks::Hooks>>,
    ) -> RetryPolicy {
        RetryPolicy {
            max_retries: max_retries.map_or(self.max_retries, |n| n.min(RETRY_COUNT_MAX)),
            timeout: timeout.or(self.timeout),
            headers: headers.or_else(|| self.headers.clone()),
            hooks: hooks.or_else(|| self.hooks.clone()),
        }
    }

    /// Retries allowed after the first attempt.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The backoff wait before retry number `retry` (1-based): full jitter.
    pub fn backoff(retry: u32) -> Duration {
        let ceiling = BACKOFF_BASE.saturating_mul(1u32 << (retry.saturating_sub(1)).min(16)).min(BACKOFF_CAP);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::random_range(0..=ceiling_ms))
    }
}

tokio::task_local! {
    static ATTEMPTS: Arc<AtomicU32>;
}

/// The attempts a call made, as counted by [`counted`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Attempts(Arc<AtomicU32>);

impl Attempts {
    pub(crate) fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

/// `call`, with the attempts its hooks make counted into the returned [`Attempts`]. (Not an
/// `async fn`: that would keep a second copy of `call`, kilobytes, in its state.)
pub(crate) fn counted<F: Future>(call: F) -> (Attempts, impl Future<Output = F::Output>) {
    let attempts = Attempts::default();
    let scoped = ATTEMPTS.scope(attempts.0.clone(), call);
    (attempts, scoped)
}

fn record_attempt(attempt: u32) {
    let _ = ATTEMPTS.try_with(|a| a.store(attempt, Ordering::Relaxed));
}

/// What to do after one attempt.
enum Next {
    /// Return this outcome.
    Done,
    /// Try again, after the server's `Retry-After` or, if `None`, after a backoff.
    Retry(Option<Duration>),
}

/// `Retry-After`: delta-seconds or an HTTP date.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

fn classify_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// A 409 is retried only when it says the same key is still running elsewhere. Finding out
/// means reading the body, so the response is rebuilt from the bytes read.
async fn peek_conflict(response: reqwest::Response) -> (reqwest::Response, bool) {
    let status = response.status();
    let version = response.version();
    let headers = response.headers().clone();
    let body = match response.bytes().await {
        Ok(b) => b,
        // The body could not be read: answer with an empty one; not a key in use.
        Err(_) => bytes::Bytes::new(),
    };
    let in_use = body.len() <= PEEK_BODY_LEN_MAX_BYTES
        && serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(|c| c == "idempotency_key_in_use"))
            .unwrap_or(false);
    let mut rebuilt = http::Response::new(body);
    *rebuilt.status_mut() = status;
    *rebuilt.version_mut() = version;
    *rebuilt.headers_mut() = headers;
    (reqwest::Response::from(rebuilt), in_use)
}

impl ClientHooks<RetryPolicy> for generated::Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        _info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        crate::idempotency::prepare(request);
        Ok(())
    }

    async fn exec(&self, mut request: reqwest::Request, _info: &OperationInfo) -> reqwest::Result<reqwest::Response> {
        let policy = self.inner();
        let max_retries = policy.max_retries;
        if let Some(headers) = &policy.headers {
            for (name, value) in headers.iter() {
                request.headers_mut().insert(name, value.clone());
            }
        }
        if let Some(timeout) = policy.timeout {
            *request.timeout_mut() = Some(timeout);
        }
        let hooks = policy.hooks.as_deref();
        let mut attempt = 0u32;
        let mut template = Some(request);
        loop {
            attempt += 1;
            record_attempt(attempt);
            // Keep the template for a later attempt while retries remain and the body can be
            // cloned (every body this API sends is a byte buffer, so it always can).
            let this = match template.take() {
                Some(t) if attempt <= max_retries => match t.try_clone() {
                    Some(copy) => {
                        template = Some(t);
                        copy
                    }
                    None => t,
                },
                Some(t) => t,
                None => unreachable!("the last attempt returns"),
            };
            let watch = crate::hooks::watched(hooks).then(|| {
                let a = crate::hooks::attempt(&this, attempt);
                if let Some(f) = hooks.and_then(|h| h.on_request.as_ref()) {
                    f(&a);
                }
                (a, std::time::Instant::now())
            });
            let outcome = self.client().execute(this).await;
            if let Some((mut a, started)) = watch {
                a.status = outcome.as_ref().ok().map(|r| r.status().as_u16());
                a.elapsed = Some(started.elapsed());
                if let Some(r) =
                    outcome.as_ref().ok().and_then(|r| r.headers().get(crate::idempotency::REQUEST_ID_HEADER))
                {
                    a.request_id = r.to_str().ok().map(str::to_owned).or(a.request_id);
                }
                crate::hooks::log(&a);
                if let Some(f) = hooks.and_then(|h| h.on_response.as_ref()) {
                    f(&a);
                }
            }
            let (outcome, next) = match outcome {
                Err(e) if e.is_builder() || e.is_redirect() => (Err(e), Next::Done),
                Err(e) => (Err(e), Next::Retry(None)),
                Ok(r) if r.status() == StatusCode::CONFLICT && template.is_some() => {
                    let (r, in_use) = peek_conflict(r).await;
                    let next = if in_use { Next::Retry(retry_after(r.headers())) } else { Next::Done };
                    (Ok(r), next)
                }
                Ok(r) if classify_status(r.status()) => {
                    let after = retry_after(r.headers());
                    (Ok(r), Next::Retry(after))
                }
                Ok(r) => (Ok(r), Next::Done),
            };
            let wait = match next {
                Next::Done => return outcome,
                _ if template.is_none() => return outcome,
                Next::Retry(Some(after)) if after > RETRY_AFTER_CAP => return outcome,
                Next::Retry(Some(after)) => after,
                Next::Retry(None) => RetryPolicy::backoff(attempt),
            };
            // Let the connection go back to the pool (or close) before waiting.
            drop(outcome);
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_full_jitter_under_an_exponential_ceiling() {
        for retry in 1..=12 {
            let ceiling = BACKOFF_BASE.saturating_mul(1 << (retry - 1).min(16)).min(BACKOFF_CAP);
            for _ in 0..200 {
                assert!(RetryPolicy::backoff(retry) <= ceiling, "retry {retry}");
            }
        }
        // Full jitter: the waits spread over the whole range, down to (almost) nothing.
        let waits: Vec<_> = (0..500).map(|_| RetryPolicy::backoff(5)).collect();
        assert!(waits.iter().any(|w| *w < Duration::from_secs(1)));
        assert!(waits.iter().any(|w| *w > Duration::from_secs(5)));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(reqwest::header::RETRY_AFTER, "2".parse().expect("value"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        h.insert(reqwest::header::RETRY_AFTER, later.parse().expect("value"));
        let d = retry_after(&h).expect("a date");
        assert!(d > Duration::from_secs(27) && d <= Duration::from_secs(30), "{d:?}");
        h.insert(reqwest::header::RETRY_AFTER, "soon".parse().expect("value"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(classify_status(StatusCode::from_u16(s).expect("status")), "{s}");
        }
        for s in [400, 401, 403, 404, 405, 409, 412, 413, 415, 422, 428, 501, 505] {
            assert!(!classify_status(StatusCode::from_u16(s).expect("status")), "{s}");
        }
    }
}
