//! [`Call`]: a typed read (or any call that takes no idempotency key), awaited for its value or,
//! with [`Call::with_response`], for the value with its answer's metadata ([`Response`]).
//!
//! Every typed method of [`Client`](crate::Client) returns a `Call` or a
//! [`Post`](crate::Post) (a write, whose idempotency key can be chosen before it is sent). Both
//! are awaited as before (`client.get_item(id).await?` is the value), and both have
//! `with_response()`, which yields a [`Response<T>`]: the value, dereferencing to it, and the
//! status, headers, request id, replay flag and rate limit of the answer it came in. An error
//! carries the same metadata ([`Error::response`](crate::Error::response)).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;

use crate::Result;
use crate::response::{Response, WithHeaders, poll_value_only};

/// A call about to be made: `.await` it for the value, or `.with_response().await` for the value
/// with its response metadata. Nothing is sent until it is first polled.
///
/// ```no_run
/// # async fn demo(client: &twh::Client) -> twh::Result<()> {
/// let item = client.get_item("itm_…").await?; // the value (a Versioned<Item>)
/// let item = client.get_item("itm_…").with_response().await?; // the value and its answer
/// assert_eq!(item.response().status, 200);
/// println!("{} at {}", item.sku, item.etag());
/// # Ok(()) }
/// ```
#[must_use = "a Call does nothing until it is awaited"]
pub struct Call<'a, T> {
    run: BoxFuture<'a, Result<Response<T>>>,
}

impl<'a, T> Call<'a, T> {
    pub(crate) fn new(run: impl Future<Output = Result<Response<T>>> + Send + 'a) -> Call<'a, T> {
        Call::from_boxed(Box::pin(run))
    }

    pub(crate) fn from_boxed(run: BoxFuture<'a, Result<Response<T>>>) -> Call<'a, T> {
        Call { run }
    }

    /// The value with the metadata of the answer it came in: status, headers, request id,
    /// `Idempotent-Replayed`, rate limit.
    pub fn with_response(self) -> BoxFuture<'a, Result<Response<T>>>
    where
        T: 'a,
    {
        Box::pin(WithHeaders(self.run))
    }
}

impl<T> Future for Call<'_, T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        // Awaited for the value alone: its answer's headers are not copied (but the ETag).
        poll_value_only(self.run.as_mut(), cx).map(|r| r.map(Response::into_inner))
    }
}

impl<T> fmt::Debug for Call<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call").finish_non_exhaustive()
    }
}
