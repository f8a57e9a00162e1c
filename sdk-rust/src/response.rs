//! Response metadata: what every answer says about itself, apart from its body (per-call
//! control): the status, the headers, the request id the server answered with,
//! whether it replays an earlier answer of the same idempotency key, and the rate limit.
//!
//! Both successes ([`crate::dispatch::Answer::response`]) and errors ([`crate::Error::response`])
//! carry it, so a caller can quote the request id or watch `RateLimit-Remaining` whatever the
//! outcome. It is computed on demand from the headers, so a call that never asks pays nothing.

use reqwest::header::HeaderMap;

use crate::idempotency::REQUEST_ID_HEADER;

/// The rate limit an answer reports (`RateLimit-Limit`, `RateLimit-Remaining`,
/// `RateLimit-Reset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests the bucket holds.
    pub limit: u64,
    /// Whole requests left after this one.
    pub remaining: u64,
    /// Seconds until the bucket is full again.
    pub reset: u64,
}

/// One answer's metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct ResponseMeta {
    /// The HTTP status.
    pub status: u16,
    /// Every response header.
    pub headers: HeaderMap,
}

impl ResponseMeta {
    /// The metadata of an answer with this status and these headers.
    pub fn new(status: u16, headers: HeaderMap) -> ResponseMeta {
        ResponseMeta { status, headers }
    }

    /// A header as text (`None` if absent or not visible ASCII).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The request id the server answered with (`X-Request-Id`).
    pub fn request_id(&self) -> Option<&str> {
        self.header(REQUEST_ID_HEADER)
    }

    /// The answer replays an earlier one of the same idempotency key (`Idempotent-Replayed`).
    pub fn idempotent_replayed(&self) -> bool {
        idempotent_replayed(&self.headers)
    }

    /// The rate limit, when the answer reports all three numbers.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        rate_limit(&self.headers)
    }
}

pub(crate) fn idempotent_replayed(headers: &HeaderMap) -> bool {
    headers.get("idempotent-replayed").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
}

pub(crate) fn rate_limit(headers: &HeaderMap) -> Option<RateLimit> {
    let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
    Some(RateLimit {
        limit: number("ratelimit-limit")?,
        remaining: number("ratelimit-remaining")?,
        reset: number("ratelimit-reset")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_read_from_the_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-request-id", "req_1".parse().expect("value"));
        h.insert("idempotent-replayed", "true".parse().expect("value"));
        h.insert("ratelimit-limit", "100".parse().expect("value"));
        h.insert("ratelimit-remaining", "99".parse().expect("value"));
        h.insert("ratelimit-reset", "1".parse().expect("value"));
        let m = ResponseMeta::new(201, h);
        assert_eq!(m.request_id(), Some("req_1"));
        assert!(m.idempotent_replayed());
        assert_eq!(m.rate_limit(), Some(RateLimit { limit: 100, remaining: 99, reset: 1 }));
        let empty = ResponseMeta::new(200, HeaderMap::new());
        assert!(!empty.idempotent_replayed());
        assert_eq!(empty.rate_limit(), None);
    }
}
