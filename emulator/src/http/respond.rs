//! Answers the handlers share: JSON with an `ETag` (and the 304 of `If-None-Match`), a page of
//! a list with its next cursor, and CSV attachments.
//!
//! Why a module of its own: these were defined in one handler module and imported by the
//! others (webhooks took `ok_json` from the ledger's handlers, reconciliations took
//! `csv_response` from billing's), so handler modules doubled as helper libraries. Here, below
//! every handler module, each handler module imports only this and the extractors.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::extract::none_match;
use crate::domain::paging::{Page, encode_cursor};

/// 200 with a JSON body and an optional ETag (304 when `If-None-Match` matches).
pub fn ok_json<T: Serialize>(headers: &HeaderMap, value: &T, etag: Option<u64>) -> Response {
    if let Some(v) = etag {
        if none_match(headers, v) {
            let mut r = StatusCode::NOT_MODIFIED.into_response();
            r.headers_mut().insert(header::ETAG, etag_value(v));
            return r;
        }
    }
    let mut r = axum::Json(value).into_response();
    if let Some(v) = etag {
        r.headers_mut().insert(header::ETAG, etag_value(v));
    }
    r
}

fn etag_value(v: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{v}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// A page of list `kind` in incarnation `tag` as its list type: `wrap` gets the entries and the
/// cursor of the next page (`None` on the last).
pub fn page<T, L>(p: Page<T>, kind: &str, tag: &str, wrap: impl FnOnce(Vec<T>, Option<String>) -> L) -> L {
    wrap(p.data, p.next.map(|n| encode_cursor(kind, tag, n)))
}

/// A CSV response.
pub fn csv_response(body: String, filename: &str) -> Response {
    let mut r = Response::new(Body::from(body));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}
