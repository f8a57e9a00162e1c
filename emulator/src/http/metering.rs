//! Admission of authenticated requests: the per-key rate limit, the hard `api_requests` quota,
//! and the `api_requests` meter (API.md "Metering, quotas and billing").
//!
//! A step inside the request id's and outside the fault step's. For every request under
//! `/v1/` that carries a working key (not `POST /v1/sandboxes`, which takes the admin token):
//!
//! 1. the key's token bucket gives one token, or the answer is 429 `rate_limited` with
//!    `Retry-After`;
//! 2. under the tenant lock the request is counted in `api_requests`, in a usage row with its
//!    request id, unless the plan's hard `api_requests` quota is used up: then the answer is 429
//!    `quota_exceeded` with `Retry-After` = seconds to the end of the period, the request is
//!    not counted, and the period's one `usage.quota_exceeded` event is written;
//! 3. the admission (key, tenant, usage row) goes to the handler in the request's extensions,
//!    so `Auth` does not look the key up again and a write adds its ledger lines to that row.
//!
//! Every answer to such a request carries `RateLimit-Limit`, `RateLimit-Remaining` and
//! `RateLimit-Reset` (unless the rate limit is turned off). A request without a working key goes
//! on untouched: the handler answers 401 and there is nothing to meter.
//!
//! What counts as a request: every admitted one, whatever its answer (idempotent replays, 4xx,
//! a 404 of an unknown `/v1` route, injected faults). What does not: requests refused by the rate
//! limit or by the `api_requests` quota. The billing endpoints (`/v1/plans`, `/v1/subscription`,
//! `/v1/usage…`, `/v1/invoices…`) are never refused by the quota (they are how a sandbox gets
//! out of it), and still count.
//!
//! The rate limit is a token bucket per key, on the emulator clock: `burst` tokens, refilled at
//! `per_second` tokens a second, one per request. `RateLimit-Limit` is the bucket size,
//! `RateLimit-Remaining` the whole tokens left after this request, `RateLimit-Reset` the seconds
//! until the bucket is full again; `Retry-After` on a 429 is the seconds until a token is back
//! (at least 1).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

use super::AppState;
use super::admission::{Admission, bearer};
use super::error::{ApiError, with_request_id};
use crate::clock::Timestamp;
use crate::domain::billing::{Meter, OverQuota, seconds_until};
use crate::domain::registry::{KeyGrant, Tenant};

/// Most token buckets kept (one per key seen); beyond it, full (idle) buckets are forgotten.
pub const BUCKET_COUNT_MAX: usize = 100_000;
/// Default sustained rate, per key.
pub const RATE_LIMIT_PER_SECOND_DEFAULT: u64 = 1000;
/// Default bucket size, per key.
pub const RATE_LIMIT_BURST_DEFAULT: u64 = 2000;

const MICRO: i128 = 1_000_000;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Tokens, in millionths.
    micro_tokens: i128,
    /// Emulator time of the last refill, in microseconds.
    at: i64,
}

/// The rate limiter's answer for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may go on.
    pub allowed: bool,
    /// Bucket size (`RateLimit-Limit`).
    pub limit: u64,
    /// Whole tokens left (`RateLimit-Remaining`).
    pub remaining: u64,
    /// Seconds until the bucket is full (`RateLimit-Reset`).
    pub reset_seconds: u64,
    /// Seconds until a token is back (`Retry-After` of a 429).
    pub retry_after_seconds: u64,
}

/// Per-key token buckets.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: u64,
    burst: u64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

fn ceil_div(a: i128, b: i128) -> u64 {
    if a <= 0 { 0 } else { ((a + b - 1) / b) as u64 }
}

impl RateLimiter {
    /// `per_second` tokens a second into buckets of `burst` (0: as many as `per_second`);
    /// `per_second == 0` turns the limit off.
    pub fn new(per_second: u64, burst: u64) -> RateLimiter {
        let burst = if burst == 0 { per_second } else { burst };
        RateLimiter { per_second, burst, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes a token from `key`'s bucket at `now`; `None` when the limit is off.
    pub fn take(&self, key: &str, now: Timestamp) -> Option<Decision> {
        if self.per_second == 0 {
            return None;
        }
        let capacity = i128::from(self.burst) * MICRO;
        let rate = i128::from(self.per_second); // millionths of a token per microsecond
        let refill = |b: &mut Bucket| {
            let elapsed = i128::from(now.micros().saturating_sub(b.at).max(0));
            b.micro_tokens = (b.micro_tokens + elapsed * rate).min(capacity);
            b.at = b.at.max(now.micros());
        };
        let mut buckets = self.buckets.lock();
        if !buckets.contains_key(key) {
            if buckets.len() >= BUCKET_COUNT_MAX {
                buckets.retain(|_, b| {
                    refill(b);
                    b.micro_tokens < capacity
                });
            }
            buckets.insert(key.to_owned(), Bucket { micro_tokens: capacity, at: now.micros() });
        }
        let b = buckets.get_mut(key)?;
        refill(b);
        let allowed = b.micro_tokens >= MICRO;
        if allowed {
            b.micro_tokens -= MICRO;
        }
        let per_second_micro = rate * MICRO;
        Some(Decision {
            allowed,
            limit: self.burst,
            remaining: (b.micro_tokens / MICRO) as u64,
            reset_seconds: ceil_div(capacity - b.micro_tokens, per_second_micro),
            retry_after_seconds: ceil_div(MICRO - b.micro_tokens, per_second_micro).max(1),
        })
    }
}

fn rate_headers(response: &mut Response, d: &Decision) {
    const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
    const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
    const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
    let h = response.headers_mut();
    h.insert(LIMIT, HeaderValue::from(d.limit));
    h.insert(REMAINING, HeaderValue::from(d.remaining));
    h.insert(RESET, HeaderValue::from(d.reset_seconds));
}

/// Paths never refused by the `api_requests` quota: the way out of it.
fn billing_path(path: &str) -> bool {
    path == "/v1/plans"
        || path == "/v1/subscription"
        || path.starts_with("/v1/usage")
        || path.starts_with("/v1/invoices")
}

/// 429 `quota_exceeded` for a hard quota used up until `over.period_end`.
pub fn quota_error(over: &OverQuota, plan: &str, now: Timestamp) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
        format!(
            "The {plan} plan's {} quota ({} per month) is used up until {}; upgrade with POST /v1/subscription or wait.",
            over.meter.as_str(),
            over.quota,
            over.period_end.to_rfc3339()
        ),
    )
    .with_header(header::RETRY_AFTER, &seconds_until(over.period_end, now).to_string())
}

/// The key and tenant a request is metered to: an authenticated `/v1/` request other than
/// `POST /v1/sandboxes`; the rest passes unmetered.
fn metered(app: &AppState, req: &Request) -> Option<(Arc<KeyGrant>, Arc<Tenant>)> {
    let path = req.uri().path();
    if !path.starts_with("/v1/") || path == "/v1/sandboxes" {
        return None;
    }
    let grant = bearer(req.headers()).and_then(|t| app.world.authenticate(t))?;
    let tenant = app.world.tenant(&grant.tenant_id)?;
    Some((grant, tenant))
}

/// The metering step, before the handler (see the module docs): refuses the request (429), or
/// admits it, handing the admission to the handler in its extensions. The rate limiter's
/// decision, if any, goes to [`after`].
pub fn before(app: &AppState, req: &mut Request) -> Result<Option<Decision>, Response> {
    let Some((grant, tenant)) = metered(app, req) else { return Ok(None) };
    let refusable = !billing_path(req.uri().path());
    // The sandbox's own clock: its rate-limit refill and usage rows follow it.
    let now = tenant.now(&app.world.clock);
    let decision = app.limiter.take(&grant.id, now);
    let refused = |mut r: Response| {
        if let Some(d) = &decision {
            rate_headers(&mut r, d);
        }
        Err(r)
    };
    if let Some(d) = decision.filter(|d| !d.allowed) {
        app.metrics.rate_limited.inc();
        return refused(
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "Too many requests with this key: at most {} a second in bursts of {}; retry in {} s.",
                    app.limiter.per_second, d.limit, d.retry_after_seconds
                ),
            )
            .with_header(header::RETRY_AFTER, &d.retry_after_seconds.to_string())
            .into_response(),
        );
    }
    let admitted = {
        let mut guard = tenant.state.lock();
        let state = &mut *guard;
        let plans = &app.world.settings.plans;
        let plan = plans.get(state.sandbox.plan);
        let quota = plan.hard_quota(Meter::ApiRequests).filter(|_| refusable);
        match with_request_id(|id| state.usage.admit(now, id, quota)) {
            Ok(row) => Ok(row),
            Err(over) => {
                let (movements, events) = (state.ledger.movement_count(), state.ledger.event_count());
                state.quota_exceeded(Meter::ApiRequests, plans, now);
                let woke = app.world.settle(&tenant.id, state, movements, events, now);
                Err((quota_error(&over, &plan.name.to_lowercase(), now), woke))
            }
        }
    };
    match admitted {
        Ok(row) => {
            req.extensions_mut().insert(Admission { grant, tenant, row });
            Ok(decision)
        }
        Err((e, woke)) => {
            app.metrics.quota_exceeded("api_requests");
            if woke {
                app.dispatcher.wake();
            }
            refused(e.into_response())
        }
    }
}

/// The metering step, after the handler: the rate-limit headers of every answer to a metered
/// request.
pub fn after(response: &mut Response, decision: Option<Decision>) {
    if let Some(d) = decision {
        rate_headers(response, &d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket() {
        let l = RateLimiter::new(5, 10);
        let t0 = Timestamp(1_000_000_000);
        let first = l.take("k", t0).expect("on");
        assert_eq!((first.allowed, first.limit, first.remaining, first.reset_seconds), (true, 10, 9, 1));
        for _ in 0..9 {
            assert!(l.take("k", t0).expect("on").allowed);
        }
        let refused = l.take("k", t0).expect("on");
        assert!(!refused.allowed);
        assert_eq!((refused.remaining, refused.retry_after_seconds, refused.reset_seconds), (0, 1, 2));
        // 200 ms later one token (5 a second) is back.
        assert!(l.take("k", Timestamp(t0.0 + 200_000)).expect("on").allowed);
        assert!(l.take("other", t0).expect("on").allowed, "per key");
        assert_eq!(RateLimiter::new(0, 10).take("k", t0), None, "off");
    }
}
