//! The client: the generated client plus the plumbing every SDK method shares.
//!
//! Each method of the SDK is a few lines: build the generated request, [`Client::send`] it
//! (which counts the attempts the hooks make and maps a failure to [`Error`]), and shape the
//! answer ([`Versioned`](crate::Versioned), [`Page`](crate::Page)). One method per operation is
//! generated from the document (`methods.rs`, by `cargo xtask generate`); the few shaped by hand
//! live in their resource modules (`movements.rs`, `stock_levels.rs`, `billing.rs`, `jobs.rs`,
//! `catalogue.rs`).

use std::fmt::{self, Display};
use std::future::Future;

use futures::future::{self, Either, FutureExt};
use progenitor_client::{ByteStream, ResponseValue};

use crate::config::ClientBuilder;
use crate::response::{IntoResponse, Response, ResponseMeta};
use crate::{Error, Result, generated};

/// `api-version`, as a header name made once (a `&str` name is parsed, and a custom one copied,
/// on every use).
pub(crate) const API_VERSION: reqwest::header::HeaderName = reqwest::header::HeaderName::from_static("api-version");

/// The API version this SDK was generated from, as the value of [`API_VERSION`].
pub(crate) fn api_version() -> reqwest::header::HeaderValue {
    use progenitor_client::ClientInfo;
    reqwest::header::HeaderValue::from_static(
        <generated::Client as ClientInfo<crate::retry::RetryPolicy>>::api_version(),
    )
}

/// A TWH API client: cheap to clone (clones share one connection pool), safe to share
/// between tasks.
///
/// ```no_run
/// # fn demo() -> twh::Result<()> {
/// let client = twh::Client::builder().api_key("sk_test_…").base_url("http://127.0.0.1:4010").build()?;
/// // or, from TWH_API_KEY and TWH_BASE_URL:
/// let client = twh::Client::from_env()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) raw: generated::Client,
    settings: ClientBuilder,
    /// The base URL, parsed once: the dispatch sets a request's path on a copy of it instead of
    /// parsing a whole URL (scheme, host, port) again on every call.
    pub(crate) base: reqwest::Url,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The settings' `Debug` redacts the key.
        f.debug_struct("Client").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// A request value from what the caller gave (a type of [`crate::types`] or its builder); a
/// value the builder refuses is [`Error::InvalidRequest`], before anything is sent.
pub(crate) fn convert<T, B>(body: B) -> Result<T>
where
    B: TryInto<T>,
    B::Error: Display,
{
    body.try_into().map_err(|e| Error::InvalidRequest(e.to_string()))
}

/// An id as one path segment of a request built by hand ([`Client::get_text`]): refused if it
/// could change the path.
pub(crate) fn path_segment(id: &str) -> Result<&str> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(Error::InvalidRequest(format!("{id:?} is not an id")));
    }
    Ok(id)
}

impl Client {
    pub(crate) fn from_parts(raw: generated::Client, settings: ClientBuilder, base: reqwest::Url) -> Client {
        Client { raw, settings, base }
    }

    pub(crate) fn settings(&self) -> &ClientBuilder {
        &self.settings
    }

    /// A builder: API key, base URL, timeout, retries, user-agent suffix.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client configured from `TWH_API_KEY` and `TWH_BASE_URL` alone.
    pub fn from_env() -> Result<Client> {
        ClientBuilder::default().build()
    }

    /// The same client with another API key (after [`Client::roll_api_key`], or to act with a
    /// restricted key). It keeps every setting of this one, those of
    /// [`Client::with_options`] (timeout, retries, headers, hooks) included; only the
    /// connection pool is new (the key is a default header of the HTTP client).
    pub fn with_api_key(&self, key: impl Into<String>) -> Result<Client> {
        use progenitor_client::ClientInfo;
        // The settings carry the timeout and retries; the policy also carries the per-call
        // headers and hooks of `with_options`, so it is kept whole.
        let fresh = self.settings.clone().api_key(key).build()?;
        let policy = ClientInfo::<crate::retry::RetryPolicy>::inner(&self.raw).clone();
        let http = ClientInfo::<crate::retry::RetryPolicy>::client(&fresh.raw).clone();
        let raw = generated::Client::new_with_client(fresh.base_url(), http, policy);
        Ok(Client::from_parts(raw, fresh.settings, fresh.base))
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        progenitor_client::ClientInfo::baseurl(&self.raw)
    }

    /// The generated client underneath, for anything the SDK does not wrap. Its calls still
    /// retry and carry idempotency keys and request ids (the hooks are on it), but answer with
    /// progenitor's types and errors.
    pub fn raw(&self) -> &generated::Client {
        &self.raw
    }

    /// Awaits a call of the generated client, counting attempts and mapping its error.
    ///
    /// Built from combinators rather than `async` blocks, so the generated call's future
    /// (kilobytes) is held once, not copied into a second slot of a state machine; the cold error
    /// path (it reads an error body) is boxed.
    pub(crate) fn send<T, F>(&self, call: F) -> impl Future<Output = Result<ResponseValue<T>>> + use<T, F>
    where
        F: Future<Output = std::result::Result<ResponseValue<T>, progenitor_client::Error<ByteStream>>>,
    {
        let (attempts, call) = crate::retry::counted(call);
        call.then(move |result| match result {
            Ok(value) => Either::Left(future::ready(Ok(value))),
            Err(e) => Either::Right(Box::pin(async move { Err(Error::from_generated(e, attempts.get()).await) })),
        })
    }

    /// A GET answered as text in another representation than JSON (`Accept: text/csv`), which the
    /// generated client cannot ask for. It goes through the same hooks: request id, retries,
    /// attempt counting, problem+json errors.
    pub(crate) async fn get_text(
        &self,
        path: &str,
        query: &[(&str, &str)],
        accept: &'static str,
        operation_id: &'static str,
    ) -> Result<Response<String>> {
        use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
        let mut request = self
            .raw
            .client()
            .get(format!("{}{path}", self.base_url()))
            .query(query)
            .header(reqwest::header::ACCEPT, accept)
            .header(API_VERSION, api_version())
            .build()
            .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let (attempts, call) = crate::retry::counted(async move {
            crate::idempotency::prepare(&mut request);
            self.raw.exec(request, &OperationInfo { operation_id }).await
        });
        match call.await {
            Ok(r) if r.status().is_success() => {
                let meta = ResponseMeta::new(r.status().as_u16(), r.headers().clone());
                let text = r.text().await.map_err(|e| Error::transport(e, attempts.get()))?;
                Ok(Response::new(text, meta))
            }
            Ok(r) => Err(Error::from_answer(crate::error::api_error_from_response(r, attempts.get()).await)),
            Err(e) => Err(Error::transport(e, attempts.get())),
        }
    }

    /// Like [`Client::send`] for a conditional GET: `None` (with the 304's metadata) when the
    /// server answered 304.
    pub(crate) fn send_if_changed<T, F>(&self, call: F) -> impl Future<Output = Result<Response<Option<T>>>> + use<T, F>
    where
        F: Future<Output = std::result::Result<ResponseValue<T>, progenitor_client::Error<ByteStream>>>,
    {
        let (attempts, call) = crate::retry::counted(call);
        call.then(move |result| match result {
            Ok(value) => Either::Left(future::ready(Ok(value.into_response().map(Some)))),
            // progenitor does not type 3xx answers: a 304 arrives as an undocumented response.
            Err(progenitor_client::Error::UnexpectedResponse(r)) if r.status() == reqwest::StatusCode::NOT_MODIFIED => {
                let meta = ResponseMeta::new(r.status().as_u16(), r.headers().clone());
                Either::Left(future::ready(Ok(Response::new(None, meta))))
            }
            Err(e) => Either::Right(Box::pin(async move { Err(Error::from_generated(e, attempts.get()).await) })),
        })
    }
}
