//! The one place where failures become HTTP: every error response is RFC 9457 problem details
//! (`application/problem+json`) carrying a stable `code` and the request id.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::domain::model::{FieldError, Problem};
use crate::domain::{DomainError, ErrorKind};

/// What the steps of the request being served share (set by the request-id step).
#[derive(Debug)]
pub struct RequestScope {
    /// Its id, as its header value.
    pub id: HeaderValue,
    /// Its journal entry, when it is journaled.
    pub journal: Option<std::sync::Arc<super::journal::Record>>,
}

tokio::task_local! {
    /// The request being served.
    pub static REQUEST: RequestScope;
}

/// The current request's id, or an empty string outside a request.
pub fn request_id() -> String {
    with_request_id(str::to_owned)
}

/// Calls `f` with the current request's id (empty outside a request), without copying it.
pub fn with_request_id<R>(f: impl FnOnce(&str) -> R) -> R {
    let mut f = Some(f);
    // Request ids are visible ASCII (checked when taken from the request, or drawn so).
    match REQUEST.try_with(|s| f.take().map(|f| f(s.id.to_str().unwrap_or_default()))) {
        Ok(Some(r)) => r,
        _ => f.take().map_or_else(|| unreachable!("called once"), |f| f("")),
    }
}

/// An error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: &'static str,
    /// What went wrong.
    pub detail: String,
    /// Field problems.
    pub errors: Vec<FieldError>,
    /// For 412: the current ETag version.
    pub current_version: Option<u64>,
    /// Extra headers (`Allow`, `Retry-After`, `WWW-Authenticate`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with a status, code and detail.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError { status, code, detail: detail.into(), errors: Vec::new(), current_version: None, headers: Vec::new() }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: HeaderName, value: &str) -> ApiError {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }

    /// 400 `invalid_json`.
    pub fn invalid_json(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", detail)
    }

    /// 422 `validation_failed` with one field error.
    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::from(DomainError::validation(vec![FieldError::new(field, message)]))
    }

    /// 404 `not_found` for an unknown route.
    pub fn no_route() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such route.")
    }

    /// Renders the problem body (with the current request id).
    pub fn problem(&self) -> Problem {
        Problem {
            type_: format!("https://docs.twh.dev/errors/{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_owned(),
            request_id: request_id(),
            errors: self.errors.clone(),
            current_etag: self.current_version.map(|v| format!("\"{v}\"")),
        }
    }

    /// The problem body as bytes.
    pub fn body(&self) -> String {
        serde_json::to_string(&self.problem()).unwrap_or_default()
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> ApiError {
        let status = match e.kind {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Validation => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::SkuTaken
            | ErrorKind::CodeTaken
            | ErrorKind::ItemArchived
            | ErrorKind::LocationArchived
            | ErrorKind::InsufficientStock
            | ErrorKind::AlreadyReversed
            | ErrorKind::EndpointDisabled
            | ErrorKind::DeliveryInFlight
            | ErrorKind::TooManyJobs
            | ErrorKind::KeyTaken => StatusCode::CONFLICT,
            ErrorKind::QuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ErrorKind::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
        };
        let mut out = ApiError::new(status, e.kind.code(), e.detail);
        out.errors = e.errors;
        out.current_version = e.current_version;
        if let Some(v) = out.current_version {
            out = out.with_header(header::ETAG, &format!("\"{v}\""));
        }
        out
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = self.status;
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// A handler result.
pub type ApiResult<T = Response> = Result<T, ApiError>;
