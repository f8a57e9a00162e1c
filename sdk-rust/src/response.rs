//! Response metadata: what every answer says about itself, apart from its body (per-call
//! control): the status, the headers, the request id the server answered with,
//! whether it replays an earlier answer of the same idempotency key, and the rate limit.
//!
//! Both successes and errors ([`crate::Error::response`]) carry it, so a caller can quote the
//! request id or watch `RateLimit-Remaining` whatever the outcome. A typed call gives it with
//! [`Call::with_response`](crate::Call::with_response) (or
//! [`Post::with_response`](crate::Post::with_response)): a [`Response<T>`], the value with its
//! [`ResponseMeta`]; the dispatch's answers have [`crate::dispatch::Answer::response`]. The
//! request id, replay flag and rate limit are read from the headers on demand.

use std::cell::Cell;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::task::{Context, Poll};

use progenitor_client::ResponseValue;
use reqwest::header::{ETAG, HeaderMap, HeaderValue};

use crate::etag::{ETag, Versioned};
use crate::idempotency::REQUEST_ID_HEADER;
use crate::{Error, Result};

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

    /// The `ETag` the answer carries, if a valid one.
    pub fn etag(&self) -> Option<ETag> {
        self.headers.get(ETAG).and_then(ETag::from_header)
    }
}

/// A call's value with the answer it came in: what
/// [`Call::with_response`](crate::Call::with_response) and
/// [`Post::with_response`](crate::Post::with_response) yield. It dereferences to the value.
///
/// ```no_run
/// # async fn demo(client: &twh::Client) -> twh::Result<()> {
/// use twh::types::CreateItem;
/// let item = client.create_item(CreateItem::builder().sku("MUG-1").name("Mug")).with_response().await?;
/// println!("{} created, request {:?}", item.id, item.response().request_id());
/// if let Some(rate) = item.response().rate_limit() {
///     println!("{} of {} requests left", rate.remaining, rate.limit);
/// }
/// let (item, meta) = item.into_parts();
/// # let _ = (item, meta); Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Response<T> {
    value: T,
    meta: ResponseMeta,
    /// The answer's `ETag` when `meta` holds no headers: all that a call awaited for its value
    /// alone keeps of them ([`poll_value_only`]).
    etag: Option<HeaderValue>,
}

impl<T> Response<T> {
    /// A value with its answer's metadata.
    pub fn new(value: T, meta: ResponseMeta) -> Response<T> {
        Response { value, meta, etag: None }
    }

    /// The answer's metadata: status, headers, request id, replay flag, rate limit.
    pub fn response(&self) -> &ResponseMeta {
        &self.meta
    }

    /// The value, dropping the metadata.
    pub fn into_inner(self) -> T {
        self.value
    }

    /// Splits into the value and the metadata.
    pub fn into_parts(self) -> (T, ResponseMeta) {
        (self.value, self.meta)
    }

    /// The same answer with its value changed by `f`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Response<U> {
        Response { value: f(self.value), meta: self.meta, etag: self.etag }
    }

    /// The value with the answer's ETag; an error if it has none.
    pub(crate) fn versioned(self) -> Result<Response<Versioned<T>>> {
        let etag = match &self.etag {
            Some(kept) => ETag::from_header(kept),
            None => self.meta.etag(),
        };
        let etag = etag.ok_or_else(|| Error::UnexpectedResponse {
            status: Some(self.meta.status),
            message: "the response has no ETag".to_owned(),
            attempts: 0,
        })?;
        Ok(self.map(|value| Versioned { value, etag }))
    }
}

impl<T> Response<Option<T>> {
    /// Like [`Response::versioned`] for a conditional read: no value (304), no ETag needed.
    pub(crate) fn versioned_if_some(self) -> Result<Response<Option<Versioned<T>>>> {
        let Response { value, meta, etag } = self;
        match value {
            None => Ok(Response { value: None, meta, etag }),
            Some(value) => Ok(Response { value, meta, etag }.versioned()?.map(Some)),
        }
    }
}

impl<T> Deref for Response<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Response<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

thread_local! {
    /// Whether answers converted on this thread keep every header: false only while a call
    /// awaited for its value alone is polled ([`poll_value_only`]), whose metadata is dropped
    /// unread but for the ETag, so that a plain `.await` does not pay for a copy of the headers.
    static KEEP_HEADERS: Cell<bool> = const { Cell::new(true) };
}

/// Sets [`KEEP_HEADERS`] for the duration of one poll, and back after (on unwinding too).
struct KeepHeaders(bool);

impl KeepHeaders {
    fn set(keep: bool) -> KeepHeaders {
        KeepHeaders(KEEP_HEADERS.replace(keep))
    }
}

impl Drop for KeepHeaders {
    fn drop(&mut self) {
        KEEP_HEADERS.set(self.0);
    }
}

/// Polls a call awaited for its value alone: the answers it converts keep only their ETag.
pub(crate) fn poll_value_only<F: Future + ?Sized>(f: Pin<&mut F>, cx: &mut Context<'_>) -> Poll<F::Output> {
    let _scope = KeepHeaders::set(false);
    f.poll(cx)
}

/// A call awaited with its metadata: the answers it converts keep every header, wherever it is
/// polled from.
pub(crate) struct WithHeaders<F: ?Sized>(pub(crate) Pin<Box<F>>);

impl<F: Future + ?Sized> Future for WithHeaders<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _scope = KeepHeaders::set(true);
        self.0.as_mut().poll(cx)
    }
}

/// The generated client's answer as a [`Response`]: its status and headers become the
/// metadata (headers copied once, read lazily; the body was parsed once, by the generated
/// client). Inside a call awaited for its value alone only the ETag is copied, the one header
/// such a call reads ([`Response::versioned`]).
pub(crate) trait IntoResponse<T> {
    fn into_response(self) -> Response<T>;
}

impl<T> IntoResponse<T> for ResponseValue<T> {
    fn into_response(self) -> Response<T> {
        let (headers, etag) = if KEEP_HEADERS.get() {
            (self.headers().clone(), None)
        } else {
            (HeaderMap::new(), self.headers().get(ETAG).cloned())
        };
        let meta = ResponseMeta::new(self.status().as_u16(), headers);
        Response { value: self.into_inner(), meta, etag }
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
    fn a_call_awaited_for_its_value_keeps_only_the_etag() {
        let answer = || {
            let mut h = HeaderMap::new();
            h.insert("etag", "\"3\"".parse().unwrap());
            h.insert("x-request-id", "req_1".parse().unwrap());
            ResponseValue::new(5u8, reqwest::StatusCode::OK, h)
        };
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut plain = Box::pin(async { answer().into_response() });
        let Poll::Ready(r) = poll_value_only(plain.as_mut(), &mut cx) else { panic!("ready") };
        assert!(r.response().headers.is_empty(), "no header copied");
        let versioned = r.versioned().expect("the ETag was kept");
        assert_eq!(versioned.etag().as_str(), "\"3\"");
        // Asked for with its metadata, even from inside a value-only poll: every header.
        let mut nested = Box::pin(async { WithHeaders(Box::pin(async { answer().into_response() })).await });
        let Poll::Ready(r) = poll_value_only(nested.as_mut(), &mut cx) else { panic!("ready") };
        assert_eq!(r.response().request_id(), Some("req_1"));
        // Outside any call, and after one: every header.
        assert_eq!(answer().into_response().response().headers.len(), 2);
    }

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
