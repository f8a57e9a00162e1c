//! The request journal (docs/guide/emulator.md, "Request journal"): the last requests to `/v1` and their
//! answers, in memory, for `GET /_emulator/requests`, the dashboard and `twh-emulator requests`.
//!
//! - **What is journaled**: every request under `/v1` (whatever its answer, including 401s,
//!   429s, injected faults and unknown `/v1` routes). Not the control plane (`/_emulator/*`, so
//!   reading the journal does not fill it), `/metrics`, `/openapi*`, or any other path.
//! - **Bounds**: at most `--journal-size` entries (default [`ENTRIES_MAX_DEFAULT`]; 0 turns it
//!   off and records nothing) and `--journal-bytes` bytes (default [`BYTES_MAX_DEFAULT`]), the
//!   oldest dropped first ([`ring`]); each body kept up to [`BODY_BYTES_MAX`] bytes, with
//!   `truncated: true` past that; reads are pages of at most 100.
//! - **Secrets**: `Authorization` (and `Proxy-Authorization`, `Cookie`, `Set-Cookie`,
//!   `X-Api-Key`) is stored as its key prefix and last 4 characters only (`Bearer
//!   sk_test_…a1b2`; a credential shorter than 16 characters shows none of its own). Bodies of
//!   the routes that carry keys or webhook signing secrets (`POST /v1/sandboxes`,
//!   `POST /v1/api-keys/roll`, `/v1/webhook-endpoints…`: `secret_key`, `restricted_key`, the
//!   endpoint `secret` of create, rotate and `GET …/secret`) are stored with each such
//!   secret masked the same way. Nothing secret is stored whole.
//! - **Bodies** are rendered when read: a body that parses as JSON is that JSON value; any other
//!   is a string (invalid UTF-8 replaced), a truncated one the string of its kept prefix; an
//!   empty one is `null`.
//! - **Cost on the request path** ([`capture`]): a copy of the request's head and body (typically
//!   under 1 KiB) into buffers of the journal's own, the response's headers written out the same
//!   way, its body kept by reference count, and one lock to append. Nothing is parsed or
//!   serialised until someone reads the journal.
//! - **Paging**: `?cursor=` is the `id` of an entry; the page holds what was recorded after
//!   it, so `next_cursor` (the last entry's id, or `null` at the end) and the last id seen both
//!   work as cursors. `twh-emulator requests --follow` polls with the last id it printed.

pub mod capture;
pub mod ring;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{Admin, LIMIT_DEFAULT, LIMIT_MAX, Query};
use crate::clock::Timestamp;
use capture::{Captured, Head, RequestTee, ResponseTee, SharedNote};
pub use ring::Journal;
use ring::{Entry, Filter, Pending, StatusFilter, Target};

/// Default most entries kept.
pub const ENTRIES_MAX_DEFAULT: usize = 10_000;
/// Default most bytes kept (64 MiB).
pub const BYTES_MAX_DEFAULT: usize = 64 << 20;
/// Most bytes of one body kept (64 KiB).
pub const BODY_BYTES_MAX: usize = 64 << 10;
/// Prefix of an entry's id; the rest is its sequence number.
const ID_PREFIX: &str = "jrn_";

/// Whether requests to `path` are journaled (see the module docs).
fn journaled(path: &str) -> bool {
    path.starts_with("/v1/") || path == "/v1"
}

/// What the journal holds of a request from its arrival to its answer (boxed: one pointer in
/// every request's future).
#[derive(Debug)]
pub struct Started {
    journal: Arc<Journal>,
    note: SharedNote,
    headers: Head,
    at: Timestamp,
    method: Method,
    target: Target,
    started: Instant,
}

/// The hook at arrival: for a journaled request, keeps its headers, reads its body through a
/// [`capture::RequestTee`], and hands the steps a note (in the request's extensions).
pub fn start(app: &AppState, req: &mut Request) -> Option<Box<Started>> {
    if !app.journal.is_on() || !journaled(req.uri().path()) {
        return None;
    }
    let note: SharedNote = Arc::default();
    if !http_body::Body::is_end_stream(req.body()) {
        let body = std::mem::take(req.body_mut());
        *req.body_mut() = RequestTee::wrap(body, note.clone());
    }
    req.extensions_mut().insert(note.clone());
    Some(Box::new(Started {
        journal: app.journal.clone(),
        note,
        headers: Head::of(req.headers()),
        at: app.world.clock.now(),
        method: req.method().clone(),
        target: Target::of(req.uri()),
        started: Instant::now(),
    }))
}

/// The hook at the answer: the entry is recorded when its body has been sent.
// Boxed by the caller, whose future (held by every request) then holds one pointer.
#[allow(clippy::boxed_local)]
pub fn finish(started: Box<Started>, request_id: HeaderValue, response: Response) -> Response {
    let Started { journal, note, headers, at, method, target, started } = *started;
    let replayed = response.headers().get(super::names::IDEMPOTENT_REPLAYED).is_some_and(|v| v == "true");
    let pending = Box::new(Pending {
        journal,
        // A copy: a client's id is a slice of the connection's read buffer.
        request_id: String::from_utf8_lossy(request_id.as_bytes()).into(),
        at,
        method,
        target,
        status: response.status().as_u16(),
        duration_us: started.elapsed().as_micros() as u64,
        replayed,
        request_headers: headers,
        response_headers: Head::of(response.headers()),
        note,
    });
    response.map(|body| ResponseTee::wrap(body, pending))
}

/// The request's note, if it is journaled.
pub fn note(req: &Request) -> Option<&SharedNote> {
    req.extensions().get::<SharedNote>()
}

/// Notes the sandbox a journaled request was authenticated to.
pub fn note_sandbox(req: &Request, sandbox_id: &str) {
    if let Some(n) = note(req) {
        n.lock().sandbox_id = Some(sandbox_id.to_owned());
    }
}

/// Notes the fault injected into a journaled request.
pub fn note_fault(req: &Request, id: &str, action: &'static str) {
    if let Some(n) = note(req) {
        n.lock().fault = Some((id.to_owned(), action));
    }
}

/// A fault that hit a journaled request.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct JournalFault {
    /// The fault's id (`flt_…`).
    pub id: String,
    /// What it did: `error_before_commit`, `error_after_commit`, `delay` or
    /// `drop_connection_after_commit`.
    pub action: String,
}

/// One side of an exchange.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct JournalMessage {
    /// Header names (lower case) and values; a repeated header's values joined with `, `.
    /// Credentials are masked (`Bearer sk_test_…a1b2`).
    pub headers: BTreeMap<String, String>,
    /// The body: its JSON value when it parses as JSON, else a string (of the kept prefix when
    /// truncated); `null` when empty.
    pub body: Value,
    /// Whether the body was longer than 64 KiB and only its first 64 KiB were kept.
    pub truncated: bool,
    /// The body's whole length, in bytes.
    pub size_bytes: u64,
}

/// One journaled request and its answer.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct JournalEntry {
    /// The entry's own id (`jrn_…`), increasing in recording order.
    pub id: String,
    /// The request's `X-Request-Id` (every attempt of one SDK call shares it).
    pub request_id: String,
    /// When it arrived (emulator clock).
    pub at: Timestamp,
    /// The sandbox it was authenticated to, if any.
    pub sandbox_id: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query string without `?` (empty when none).
    pub query: String,
    /// Status of the answer.
    pub status: u16,
    /// From arrival to the answer's head, in microseconds.
    pub duration_us: u64,
    /// Its `Idempotency-Key`, if sent.
    pub idempotency_key: Option<String>,
    /// Whether the answer was a stored one (`Idempotent-Replayed: true`).
    pub idempotent_replayed: bool,
    /// The fault injected into it, if any.
    pub fault: Option<JournalFault>,
    /// The request.
    pub request: JournalMessage,
    /// The answer.
    pub response: JournalMessage,
}

/// A page of the journal.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct JournalPage {
    /// Entries, oldest first.
    pub data: Vec<JournalEntry>,
    /// Pass as `cursor` for the next page; `null` at the end (the last entry's `id` then
    /// follows what is recorded later).
    pub next_cursor: Option<String>,
}

fn render_headers(h: &Head) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in h.iter() {
        let v = String::from_utf8_lossy(value);
        out.entry(String::from_utf8_lossy(name).into_owned())
            .and_modify(|s| {
                s.push_str(", ");
                s.push_str(&v);
            })
            .or_insert_with(|| v.into_owned());
    }
    out
}

fn render_body(c: &Captured) -> Value {
    let bytes = c.joined();
    if bytes.is_empty() {
        return Value::Null;
    }
    if !c.truncated {
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            return v;
        }
    }
    Value::String(String::from_utf8_lossy(&bytes).into_owned())
}

fn message(headers: &Head, body: &Captured) -> JournalMessage {
    JournalMessage {
        headers: render_headers(headers),
        body: render_body(body),
        truncated: body.truncated,
        size_bytes: body.size_bytes,
    }
}

fn render(e: &Entry) -> JournalEntry {
    JournalEntry {
        id: format!("{ID_PREFIX}{}", e.seq),
        request_id: e.request_id.to_string(),
        at: e.at,
        sandbox_id: e.sandbox_id.clone(),
        method: e.method.as_str().to_owned(),
        path: e.target.path().to_owned(),
        query: e.target.query().to_owned(),
        status: e.status,
        duration_us: e.duration_us,
        idempotency_key: e
            .request_headers
            .get(super::names::IDEMPOTENCY_KEY.as_str())
            .map(|v| String::from_utf8_lossy(v).into_owned()),
        idempotent_replayed: e.replayed,
        fault: e.fault.as_ref().map(|(id, action)| JournalFault { id: id.clone(), action: (*action).to_owned() }),
        request: message(&e.request_headers, &e.request_body),
        response: message(&e.response_headers, &e.response_body),
    }
}

/// The sequence number of an entry id.
fn seq_of(id: &str) -> Option<u64> {
    let digits = id.strip_prefix(ID_PREFIX)?;
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

type St = State<Arc<AppState>>;

/// `GET /_emulator/requests`
pub async fn list(State(s): St, _: Admin, mut q: Query) -> ApiResult<axum::Json<JournalPage>> {
    let limit = q
        .parsed("limit", &format!("an integer in 1..={LIMIT_MAX}"), |v| {
            v.parse::<usize>().ok().filter(|n| (1..=LIMIT_MAX).contains(n))
        })
        .unwrap_or(LIMIT_DEFAULT);
    let after = match q.cursor() {
        Some(c) => seq_of(&c).ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_cursor", "The cursor is not an entry id of this journal.")
        })?,
        None => 0,
    };
    let status = q.parsed("status", "a status code (e.g. 404) or class (e.g. 4xx)", |v| {
        let b = v.as_bytes();
        if b.len() == 3 && b[1..].eq_ignore_ascii_case(b"xx") && (b'1'..=b'5').contains(&b[0]) {
            Some(StatusFilter::Class(u16::from(b[0] - b'0')))
        } else {
            v.parse::<u16>().ok().filter(|n| (100..=599).contains(n)).map(StatusFilter::Exact)
        }
    });
    let method = q.parsed("method", "an HTTP method", |v| {
        let m = v.to_ascii_uppercase();
        Method::from_bytes(m.as_bytes()).ok().filter(|_| !m.is_empty()).map(|_| m)
    });
    let filter = Filter {
        sandbox_id: q.text("sandbox_id"),
        method,
        path_prefix: q.text("path_prefix"),
        status,
        request_id: q.text("request_id"),
        idempotency_key: q.text("idempotency_key"),
    };
    q.finish()?;
    let (entries, more) = s.journal.page(&filter, after, limit);
    let data: Vec<JournalEntry> = entries.iter().map(|e| render(e)).collect();
    let next_cursor = if more { data.last().map(|e| e.id.clone()) } else { None };
    Ok(axum::Json(JournalPage { data, next_cursor }))
}

/// `GET /_emulator/requests/{id}`
pub async fn get(State(s): St, _: Admin, Path(id): Path<String>) -> ApiResult<axum::Json<JournalEntry>> {
    let entry = seq_of(&id).and_then(|seq| s.journal.get(seq)).ok_or_else(|| {
        ApiError::from(crate::domain::DomainError::not_found(
            "journal entry (it may have been dropped from the journal)",
        ))
    })?;
    Ok(axum::Json(render(&entry)))
}

/// `DELETE /_emulator/requests`
pub async fn clear(State(s): St, _: Admin) -> StatusCode {
    s.journal.clear();
    StatusCode::NO_CONTENT
}
