//! Idempotency keys and request ids: one of each per logical call, the same on every retry.
//!
//! Every POST, PATCH and DELETE carries an `Idempotency-Key` (docs/guide/idempotency-and-concurrency.md): the caller's, given with
//! [`Post::idempotency_key`], or a random UUIDv4 made once per call. (A PATCH or DELETE retried
//! after its first attempt committed then gets the stored answer: not a 412 for its now-stale
//! `If-Match`, and with `If-Match: *` not a second change.) The key is put on the
//! request before the first attempt, and the retry loop ([`crate::retry`]) re-sends that same
//! request, so a call creates at most one ledger entry however many attempts it takes: the
//! server replays the stored answer to a repeated key.
//!
//! The SDK's methods pass the key to the generated builders (whose `Idempotency-Key` header is a
//! typed argument); `prepare`, run by the generated client's `pre` hook, adds one to any POST
//! (or PATCH or DELETE) that still has none (e.g. a call through [`Client::raw`](crate::Client::raw)), and adds
//! the `X-Request-Id` to every request. The request id, `req_` and a UUIDv4, is likewise one per
//! logical call: the server echoes it, it is in every error ([`Error::request_id`]), and it
//! names all the attempts of one call in the server's logs.
//!
//! [`Error::request_id`]: crate::Error::request_id

use std::fmt;
use std::future::{Future, IntoFuture};

use futures::future::BoxFuture;
use reqwest::header::{HeaderName, HeaderValue};

use crate::Result;
use crate::etag::ETag;
use crate::response::{Response, WithHeaders};

/// The idempotency key header.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// The request id header.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

// The two as header names, made once: a `&str` name is parsed again, and a custom one copied
// into a new buffer, on every use (about 1,000 instructions a call for these two).
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);
pub(crate) const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static(IDEMPOTENCY_KEY_HEADER);

/// Longest idempotency key the API accepts, in characters (the API's bound).
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 255;

/// A random UUIDv4 from the thread-local CSPRNG (`uuid`'s own `new_v4` asks the OS for every
/// one: a system call per request that the benchmark notices).
fn uuid_v4() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

/// A fresh idempotency key: a random UUIDv4.
pub fn new_key() -> String {
    uuid_v4().to_string()
}

/// A fresh request id: `req_` and a random UUIDv4 in hex.
pub fn new_request_id() -> String {
    format!("req_{}", uuid_v4().simple())
}

/// Adds an `X-Request-Id` to a request without one, and an `Idempotency-Key` to a POST, PATCH or
/// DELETE without one. Runs once per logical call, before the first attempt.
pub(crate) fn prepare(request: &mut reqwest::Request) {
    use reqwest::Method;
    let is_write = matches!(*request.method(), Method::POST | Method::PATCH | Method::DELETE);
    let headers = request.headers_mut();
    if let reqwest::header::Entry::Vacant(slot) = headers.entry(REQUEST_ID) {
        slot.insert(header_value(new_request_id()));
    }
    if is_write && let reqwest::header::Entry::Vacant(slot) = headers.entry(IDEMPOTENCY_KEY) {
        slot.insert(header_value(new_key()));
    }
}

fn header_value(ascii: String) -> HeaderValue {
    // Both are ASCII letters, digits, `_` and `-`, always valid header values.
    HeaderValue::try_from(ascii).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

type Run<'a, T> = Box<dyn FnOnce(String, Option<ETag>) -> BoxFuture<'a, Result<Response<T>>> + Send + 'a>;

/// A POST (or PATCH, or DELETE) about to be sent: `.await` it, after choosing its idempotency key
/// if you want your own; `.with_response().await` yields the value with its response metadata
/// ([`Response`]: status, request id, `Idempotent-Replayed`, rate limit).
///
/// ```no_run
/// # async fn demo(client: &twh::Client, item_id: &str, location_id: &str) -> twh::Result<()> {
/// use twh::types::CreateMovement;
/// // A random key, made once and re-sent on every retry:
/// client.create_movement(CreateMovement::receipt(item_id, location_id, 10)).await?;
/// // Your own key (an order number, say): sending it again replays the first answer.
/// client.create_movement(CreateMovement::shipment(item_id, location_id, 1)).idempotency_key("order-1042").await?;
/// // The same key again, asking for the answer's metadata: a replay of the first answer.
/// let again = client
///     .create_movement(CreateMovement::shipment(item_id, location_id, 1))
///     .idempotency_key("order-1042")
///     .with_response()
///     .await?;
/// assert!(again.response().idempotent_replayed());
/// # Ok(()) }
/// ```
#[must_use = "a Post does nothing until it is awaited"]
pub struct Post<'a, T> {
    idempotency_key: Option<String>,
    if_match: Option<ETag>,
    run: Run<'a, T>,
}

impl<'a, T> Post<'a, T> {
    pub(crate) fn new<F, Fut>(run: F) -> Post<'a, T>
    where
        F: FnOnce(String, Option<ETag>) -> Fut + Send + 'a,
        Fut: Future<Output = Result<Response<T>>> + Send + 'a,
    {
        Post { idempotency_key: None, if_match: None, run: Box::new(move |key, etag| Box::pin(run(key, etag))) }
    }

    pub(crate) fn with_if_match(mut self, etag: ETag) -> Post<'a, T> {
        self.if_match = Some(etag);
        self
    }

    /// Sends this key instead of a random one (1..=255 printable ASCII characters). Use a key
    /// that names the operation in your own system, so that repeating it, even from another
    /// process, replays the first answer instead of writing twice.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Post<'a, T> {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sends it; the value with the metadata of the answer it came in.
    pub fn with_response(self) -> BoxFuture<'a, Result<Response<T>>>
    where
        T: 'a,
    {
        Box::pin(WithHeaders(self.start()))
    }

    /// The call, sent when first polled.
    fn start(self) -> BoxFuture<'a, Result<Response<T>>> {
        let key = self.idempotency_key.unwrap_or_else(new_key);
        (self.run)(key, self.if_match)
    }
}

impl<T> fmt::Debug for Post<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Post")
            .field("idempotency_key", &self.idempotency_key)
            .field("if_match", &self.if_match)
            .finish_non_exhaustive()
    }
}

impl<'a, T: 'a> IntoFuture for Post<'a, T> {
    type Output = Result<T>;
    /// Awaited for the value alone, as a [`Call`](crate::Call) is.
    type IntoFuture = crate::Call<'a, T>;

    fn into_future(self) -> Self::IntoFuture {
        crate::Call::from_boxed(self.start())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_adds_a_request_id_everywhere_and_a_key_to_writes_only() {
        let url = reqwest::Url::parse("http://x.invalid/v1/items").expect("url");
        let mut get = reqwest::Request::new(reqwest::Method::GET, url.clone());
        prepare(&mut get);
        assert!(get.headers().get(REQUEST_ID_HEADER).is_some());
        assert!(get.headers().get(IDEMPOTENCY_KEY_HEADER).is_none());

        let mut post = reqwest::Request::new(reqwest::Method::POST, url.clone());
        prepare(&mut post);
        let key = post.headers()[IDEMPOTENCY_KEY_HEADER].to_str().expect("ascii").to_owned();
        assert_eq!(uuid::Uuid::parse_str(&key).expect("a uuid").get_version_num(), 4);

        for method in [reqwest::Method::PATCH, reqwest::Method::DELETE] {
            let mut write = reqwest::Request::new(method, url.clone());
            prepare(&mut write);
            assert!(write.headers().get(IDEMPOTENCY_KEY_HEADER).is_some());
        }

        let mut mine = reqwest::Request::new(reqwest::Method::POST, url);
        mine.headers_mut().insert(IDEMPOTENCY_KEY_HEADER, HeaderValue::from_static("order-1"));
        prepare(&mut mine);
        assert_eq!(mine.headers()[IDEMPOTENCY_KEY_HEADER], "order-1");
    }

    #[test]
    fn keys_and_request_ids_are_fresh() {
        assert_ne!(new_key(), new_key());
        let id = new_request_id();
        assert!(id.starts_with("req_") && id.len() == 36, "{id}");
    }
}
