//! Errors: one enum, one variant per kind of failure a caller handles differently.
//!
//! Every answer with an error status becomes an [`ApiError`] read from the RFC 9457 problem
//! body (`code`, `detail`, `request_id`, `errors`, `current_etag`) and its headers
//! (`X-Request-Id`, `Retry-After`), wrapped in the variant of its kind (docs/guide/errors.md):
//!
//! | status | variant |
//! | --- | --- |
//! | 401 | [`Error::Authentication`] |
//! | 403 | [`Error::Permission`] |
//! | 404 | [`Error::NotFound`] |
//! | 409 | [`Error::Conflict`] (`insufficient_stock`, `sku_taken`, `item_archived`, …) |
//! | 422 `idempotency_key_reused` | [`Error::IdempotencyKeyReused`] |
//! | 400, other 422 | [`Error::Validation`] (field problems in [`Error::errors`]) |
//! | 412 | [`Error::PreconditionFailed`] |
//! | 428 | [`Error::PreconditionRequired`] |
//! | 429 `quota_exceeded` | [`Error::QuotaExceeded`] |
//! | other 429 | [`Error::RateLimited`] |
//! | 5xx | [`Error::Server`] |
//! | any other status | [`Error::Api`] |
//!
//! Failures without an answer are [`Error::Connection`] and [`Error::Timeout`]. All of them
//! report the attempts made ([`Error::attempts`]). A problem body that cannot be read still
//! gives an error of the right kind, with the status's reason as its message.

use std::fmt;
use std::time::Duration;

use futures::StreamExt;
use progenitor_client::{ByteStream, ResponseValue};

use crate::etag::ETag;
use crate::types::FieldError;

/// The SDK's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Largest error body read, in bytes; a longer one is cut (its problem is then unreadable).
pub const ERROR_BODY_LEN_MAX_BYTES: usize = 256 * 1024;

/// An answer with an error status, as the problem details and headers describe it.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// The stable snake_case code (`not_found`, `insufficient_stock`, …); empty if the body had
    /// none.
    pub code: String,
    /// What went wrong (the problem's `detail`, else its `title`, else the status's reason).
    pub message: String,
    /// The request id: the problem's, else the `X-Request-Id` header.
    pub request_id: Option<String>,
    /// Field problems (400/422).
    pub errors: Vec<FieldError>,
    /// `Retry-After`, if the answer had one.
    pub retry_after: Option<Duration>,
    /// On 412: the resource's current ETag.
    pub current_etag: Option<ETag>,
    /// Attempts made, this one included.
    pub attempts: u32,
    /// The answer's headers (its metadata: [`Error::response`]).
    pub headers: reqwest::header::HeaderMap,
}

/// Why a webhook delivery was refused ([`crate::webhooks::verify`]).
pub type WebhookError = twh_webhooks::Error;

/// Everything that can go wrong in the SDK.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 401: missing, unknown or expired API key.
    #[error("authentication failed: {0}")]
    Authentication(ApiError),
    /// 403: the key may not do this (a restricted key writing).
    #[error("permission denied: {0}")]
    Permission(ApiError),
    /// 404: no such resource in this sandbox.
    #[error("not found: {0}")]
    NotFound(ApiError),
    /// 409: the request conflicts with the current state (`insufficient_stock`, `sku_taken`,
    /// `code_taken`, `item_archived`, `location_archived`, `already_reversed`, or a still
    /// running `idempotency_key_in_use` after the last retry).
    #[error("conflict: {0}")]
    Conflict(ApiError),
    /// 422 `idempotency_key_reused`: this key was used for a different request.
    #[error("idempotency key reused: {0}")]
    IdempotencyKeyReused(ApiError),
    /// 400 or 422: the request is malformed or invalid; see [`Error::errors`].
    #[error("invalid request: {0}")]
    Validation(ApiError),
    /// 412: the `If-Match` ETag is stale; read again (the current one is in
    /// [`ApiError::current_etag`]).
    #[error("precondition failed: {0}")]
    PreconditionFailed(ApiError),
    /// 428: the request needs `If-Match`.
    #[error("precondition required: {0}")]
    PreconditionRequired(ApiError),
    /// 429 `rate_limited`: too many requests; see [`Error::retry_after`].
    #[error("rate limited: {0}")]
    RateLimited(ApiError),
    /// 429 `quota_exceeded`: a hard quota of the plan is used up until the period ends.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(ApiError),
    /// 5xx: the server failed.
    #[error("server error: {0}")]
    Server(ApiError),
    /// Any other error status.
    #[error("unexpected error status: {0}")]
    Api(ApiError),
    /// The request could not be sent or its answer not received.
    #[error("connection failed after {attempts} attempt(s): {source}")]
    Connection {
        /// The transport error of the last attempt.
        #[source]
        source: reqwest::Error,
        /// Attempts made.
        attempts: u32,
    },
    /// No answer within the timeout.
    #[error("timed out after {attempts} attempt(s): {source}")]
    Timeout {
        /// The transport error of the last attempt.
        #[source]
        source: reqwest::Error,
        /// Attempts made.
        attempts: u32,
    },
    /// The server's answer was not what the API describes (an undocumented success status, a
    /// body that does not parse, a missing `ETag`).
    #[error("unexpected response{}: {message}", status.map(|s| format!(" ({s})")).unwrap_or_default())]
    UnexpectedResponse {
        /// Its status, when known.
        status: Option<u16>,
        /// What was wrong.
        message: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The request was refused before it was sent (a value the API does not accept, such as an
    /// empty SKU or a too long idempotency key).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The client could not be built (no API key, a malformed base URL, …).
    #[error("invalid configuration: {0}")]
    Configuration(String),
    /// A webhook delivery failed verification.
    #[error("webhook verification failed: {0}")]
    WebhookVerification(#[from] WebhookError),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        if !self.code.is_empty() {
            write!(f, " {}", self.code)?;
        }
        write!(f, ": {} (", self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, "request {id}, ")?;
        }
        write!(f, "{} attempt{})", self.attempts, if self.attempts == 1 { "" } else { "s" })
    }
}

/// The kind of an [`Error`], with a stable name: the one table the Python and Node packages map
/// to their exception classes (`twh.NotFoundError`, `NotFoundError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`Error::Authentication`].
    Authentication,
    /// [`Error::Permission`].
    Permission,
    /// [`Error::NotFound`].
    NotFound,
    /// [`Error::Conflict`].
    Conflict,
    /// [`Error::IdempotencyKeyReused`].
    IdempotencyKeyReused,
    /// [`Error::Validation`].
    Validation,
    /// [`Error::PreconditionFailed`].
    PreconditionFailed,
    /// [`Error::PreconditionRequired`].
    PreconditionRequired,
    /// [`Error::RateLimited`].
    RateLimited,
    /// [`Error::QuotaExceeded`].
    QuotaExceeded,
    /// [`Error::Server`].
    Server,
    /// [`Error::Api`].
    Api,
    /// [`Error::Connection`].
    Connection,
    /// [`Error::Timeout`].
    Timeout,
    /// [`Error::UnexpectedResponse`].
    UnexpectedResponse,
    /// [`Error::InvalidRequest`].
    InvalidRequest,
    /// [`Error::Configuration`].
    Configuration,
    /// [`Error::WebhookVerification`].
    WebhookVerification,
}

impl ErrorKind {
    /// Every kind, in the order of the enum.
    pub const ALL: [ErrorKind; 18] = [
        ErrorKind::Authentication,
        ErrorKind::Permission,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::IdempotencyKeyReused,
        ErrorKind::Validation,
        ErrorKind::PreconditionFailed,
        ErrorKind::PreconditionRequired,
        ErrorKind::RateLimited,
        ErrorKind::QuotaExceeded,
        ErrorKind::Server,
        ErrorKind::Api,
        ErrorKind::Connection,
        ErrorKind::Timeout,
        ErrorKind::UnexpectedResponse,
        ErrorKind::InvalidRequest,
        ErrorKind::Configuration,
        ErrorKind::WebhookVerification,
    ];

    /// The kind's stable snake_case name (`not_found`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Authentication => "authentication",
            ErrorKind::Permission => "permission",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorKind::Validation => "validation",
            ErrorKind::PreconditionFailed => "precondition_failed",
            ErrorKind::PreconditionRequired => "precondition_required",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::QuotaExceeded => "quota_exceeded",
            ErrorKind::Server => "server",
            ErrorKind::Api => "api",
            ErrorKind::Connection => "connection",
            ErrorKind::Timeout => "timeout",
            ErrorKind::UnexpectedResponse => "unexpected_response",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Configuration => "configuration",
            ErrorKind::WebhookVerification => "webhook_verification",
        }
    }
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Authentication(_) => ErrorKind::Authentication,
            Error::Permission(_) => ErrorKind::Permission,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::IdempotencyKeyReused(_) => ErrorKind::IdempotencyKeyReused,
            Error::Validation(_) => ErrorKind::Validation,
            Error::PreconditionFailed(_) => ErrorKind::PreconditionFailed,
            Error::PreconditionRequired(_) => ErrorKind::PreconditionRequired,
            Error::RateLimited(_) => ErrorKind::RateLimited,
            Error::QuotaExceeded(_) => ErrorKind::QuotaExceeded,
            Error::Server(_) => ErrorKind::Server,
            Error::Api(_) => ErrorKind::Api,
            Error::Connection { .. } => ErrorKind::Connection,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::UnexpectedResponse { .. } => ErrorKind::UnexpectedResponse,
            Error::InvalidRequest(_) => ErrorKind::InvalidRequest,
            Error::Configuration(_) => ErrorKind::Configuration,
            Error::WebhookVerification(_) => ErrorKind::WebhookVerification,
        }
    }

    /// The answer's details, for errors that had an answer.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Error::Authentication(e)
            | Error::Permission(e)
            | Error::NotFound(e)
            | Error::Conflict(e)
            | Error::IdempotencyKeyReused(e)
            | Error::Validation(e)
            | Error::PreconditionFailed(e)
            | Error::PreconditionRequired(e)
            | Error::RateLimited(e)
            | Error::QuotaExceeded(e)
            | Error::Server(e)
            | Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// The HTTP status, for errors that had an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::UnexpectedResponse { status, .. } => *status,
            other => other.api_error().map(|e| e.status),
        }
    }

    /// The problem's stable `code` (`insufficient_stock`, …), for errors that had one.
    pub fn code(&self) -> Option<&str> {
        self.api_error().map(|e| e.code.as_str()).filter(|c| !c.is_empty())
    }

    /// What went wrong, for people.
    pub fn message(&self) -> String {
        match self.api_error() {
            Some(e) => e.message.clone(),
            None => self.to_string(),
        }
    }

    /// The answer's metadata (status, headers, request id, rate limit), for errors that had an
    /// answer.
    pub fn response(&self) -> Option<crate::response::ResponseMeta> {
        self.api_error().map(|e| crate::response::ResponseMeta::new(e.status, e.headers.clone()))
    }

    /// The request id of the answer, to quote to support.
    pub fn request_id(&self) -> Option<&str> {
        self.api_error().and_then(|e| e.request_id.as_deref())
    }

    /// Field problems of a 400 or 422 (empty otherwise).
    pub fn errors(&self) -> &[FieldError] {
        self.api_error().map_or(&[], |e| &e.errors)
    }

    /// How long the server asked to wait (`Retry-After`), if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        self.api_error().and_then(|e| e.retry_after)
    }

    /// Attempts made before giving up (0 if nothing was sent).
    pub fn attempts(&self) -> u32 {
        match self {
            Error::Connection { attempts, .. }
            | Error::Timeout { attempts, .. }
            | Error::UnexpectedResponse { attempts, .. } => *attempts,
            other => other.api_error().map_or(0, |e| e.attempts),
        }
    }

    /// Whether the SDK's retry policy treats this failure as transient (it has then already
    /// been retried up to the client's `max_retries`).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Connection { .. } | Error::Timeout { .. } => true,
            Error::Conflict(e) => e.code == "idempotency_key_in_use",
            other => other.status().is_some_and(|s| matches!(s, 408 | 429 | 500 | 502 | 503 | 504)),
        }
    }

    /// The error of a problem answer.
    pub(crate) fn from_answer(mut e: ApiError) -> Error {
        match e.status {
            401 => Error::Authentication(e),
            403 => Error::Permission(e),
            404 => Error::NotFound(e),
            409 => Error::Conflict(e),
            412 => Error::PreconditionFailed(e),
            428 => Error::PreconditionRequired(e),
            422 if e.code == "idempotency_key_reused" => Error::IdempotencyKeyReused(e),
            400 | 422 => Error::Validation(e),
            429 if e.code == "quota_exceeded" => Error::QuotaExceeded(e),
            429 => Error::RateLimited(e),
            500..=599 => Error::Server(e),
            _ => {
                e.message = if e.message.is_empty() { "unexpected status".to_owned() } else { e.message };
                Error::Api(e)
            }
        }
    }

    pub(crate) fn transport(source: reqwest::Error, attempts: u32) -> Error {
        if source.is_timeout() { Error::Timeout { source, attempts } } else { Error::Connection { source, attempts } }
    }

    /// Maps an error of the generated client, reading an error body if there is one.
    pub(crate) async fn from_generated(e: progenitor_client::Error<ByteStream>, attempts: u32) -> Error {
        use progenitor_client::Error as G;
        match e {
            G::InvalidRequest(message) => Error::InvalidRequest(message),
            G::CommunicationError(source) | G::ResponseBodyError(source) => Error::transport(source, attempts),
            G::ErrorResponse(rv) => Error::from_answer(api_error_from_stream(rv, attempts).await),
            G::UnexpectedResponse(response) if !response.status().is_success() => {
                Error::from_answer(api_error_from_response(response, attempts).await)
            }
            G::UnexpectedResponse(response) => Error::UnexpectedResponse {
                status: Some(response.status().as_u16()),
                message: "a success status the API does not document".to_owned(),
                attempts,
            },
            G::InvalidResponsePayload(_, e) => Error::UnexpectedResponse {
                status: None,
                message: format!("the response body does not match the API: {e}"),
                attempts,
            },
            G::InvalidUpgrade(source) => Error::transport(source, attempts),
            G::Custom(message) => Error::UnexpectedResponse { status: None, message, attempts },
        }
    }
}

/// The lenient shape of a problem body: every field optional.
#[derive(serde::Deserialize, Default)]
struct LenientProblem {
    code: Option<String>,
    title: Option<String>,
    detail: Option<String>,
    request_id: Option<String>,
    #[serde(default)]
    errors: Vec<FieldError>,
    current_etag: Option<String>,
}

async fn api_error_from_stream(rv: ResponseValue<ByteStream>, attempts: u32) -> ApiError {
    let status = rv.status();
    let headers = rv.headers().clone();
    let mut stream = rv.into_inner_stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { break };
        body.extend_from_slice(&chunk[..chunk.len().min(ERROR_BODY_LEN_MAX_BYTES.saturating_sub(body.len()))]);
        if body.len() >= ERROR_BODY_LEN_MAX_BYTES {
            break;
        }
    }
    api_error(status, &headers, &body, attempts)
}

pub(crate) async fn api_error_from_response(response: reqwest::Response, attempts: u32) -> ApiError {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap_or_default();
    api_error(status, &headers, &body[..body.len().min(ERROR_BODY_LEN_MAX_BYTES)], attempts)
}

pub(crate) fn api_error(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    attempts: u32,
) -> ApiError {
    let problem: LenientProblem = serde_json::from_slice(body).unwrap_or_default();
    let header_id = headers.get(crate::idempotency::REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let message = problem
        .detail
        .filter(|d| !d.is_empty())
        .or(problem.title.filter(|t| !t.is_empty()))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    ApiError {
        status: status.as_u16(),
        code: problem.code.unwrap_or_default(),
        message,
        request_id: problem.request_id.or(header_id),
        errors: problem.errors,
        retry_after: crate::retry::retry_after(headers),
        current_etag: problem.current_etag.and_then(ETag::new),
        attempts,
        headers: headers.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use reqwest::header::HeaderMap;

    fn answer(status: u16, code: &str) -> Error {
        let body = format!(
            r#"{{"type":"about:blank","title":"T","status":{status},"detail":"D","code":"{code}","request_id":"req_1"}}"#
        );
        Error::from_answer(api_error(
            StatusCode::from_u16(status).expect("status"),
            &HeaderMap::new(),
            body.as_bytes(),
            1,
        ))
    }

    #[test]
    fn statuses_and_codes_map_to_kinds() {
        assert!(matches!(answer(401, "unauthenticated"), Error::Authentication(_)));
        assert!(matches!(answer(403, "forbidden"), Error::Permission(_)));
        assert!(matches!(answer(404, "not_found"), Error::NotFound(_)));
        assert!(matches!(answer(409, "insufficient_stock"), Error::Conflict(_)));
        assert!(matches!(answer(422, "idempotency_key_reused"), Error::IdempotencyKeyReused(_)));
        assert!(matches!(answer(422, "validation_failed"), Error::Validation(_)));
        assert!(matches!(answer(400, "invalid_json"), Error::Validation(_)));
        assert!(matches!(answer(412, "precondition_failed"), Error::PreconditionFailed(_)));
        assert!(matches!(answer(428, "precondition_required"), Error::PreconditionRequired(_)));
        assert!(matches!(answer(429, "rate_limited"), Error::RateLimited(_)));
        assert!(matches!(answer(429, "quota_exceeded"), Error::QuotaExceeded(_)));
        assert!(matches!(answer(503, "unavailable"), Error::Server(_)));
        assert!(matches!(answer(405, "method_not_allowed"), Error::Api(_)));
        let e = answer(404, "not_found");
        assert_eq!(
            (e.status(), e.code(), e.request_id(), e.attempts()),
            (Some(404), Some("not_found"), Some("req_1"), 1)
        );
        assert_eq!(e.message(), "D");
        assert_eq!(e.to_string(), "not found: 404 not_found: D (request req_1, 1 attempt)");
    }

    #[test]
    fn an_unreadable_body_still_gives_the_kind_and_the_header_request_id() {
        let mut h = HeaderMap::new();
        h.insert("x-request-id", "req_h".parse().expect("value"));
        h.insert("retry-after", "3".parse().expect("value"));
        let e = Error::from_answer(api_error(StatusCode::BAD_GATEWAY, &h, b"<html>oops</html>", 4));
        assert!(matches!(e, Error::Server(_)));
        assert_eq!(e.message(), "Bad Gateway");
        assert_eq!(e.request_id(), Some("req_h"));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(e.attempts(), 4);
        assert!(e.is_retryable());
    }
}
