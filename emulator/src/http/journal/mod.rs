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
//! - **Cost on the request path** ([`capture`], [`ring`]): one allocation for the entry at
//!   arrival, shared through the request's scope with the steps that note what they learn (no
//!   request extension, no wrapped request body: the JSON body extractor notes the body it
//!   reads); the request's target, head and body, then the answer's request id, sandbox id,
//!   head and body, copied into one buffer of the entry's own, allocated at arrival with room
//!   for the answer (its body is taken whole when it is ready, as every handler's is, and sent
//!   on unchanged); and one lock to append. Nothing is parsed or serialised until someone reads the
//!   journal.
//! - **Paging**: `?cursor=` is the `id` of an entry; the page holds what was recorded after
//!   it, so `next_cursor` (the last entry's id, or `null` at the end) and the last id seen both
//!   work as cursors. `twh-emulator requests --follow` polls with the last id it printed.

pub mod capture;
pub mod ring;

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use http_body::Body as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::error::{ApiError, ApiResult, REQUEST};
use super::extract::{Admin, LIMIT_DEFAULT, LIMIT_MAX, Query};
use crate::clock::Timestamp;
use crate::domain::registry::Tenant;
use capture::{HeadLines, Streamed, exact, head_len, write_head};
use ring::{BodySize, Data, Filter, Sandbox, StatusFilter};
pub use ring::{Journal, Record};

/// Default most entries kept.
pub const ENTRIES_MAX_DEFAULT: usize = 10_000;
/// Default most bytes kept (64 MiB).
pub const BYTES_MAX_DEFAULT: usize = 64 << 20;
/// Most bytes of one body kept (64 KiB).
pub const BODY_BYTES_MAX: usize = 64 << 10;
/// Most room reserved at arrival for a request's body.
const BODY_ROOM_MAX: usize = 4 << 10;
/// Prefix of an entry's id; the rest is its sequence number.
const ID_PREFIX: &str = "jrn_";

/// Whether requests to `path` are journaled (see the module docs).
fn journaled(path: &str) -> bool {
    path.starts_with("/v1/") || path == "/v1"
}

/// The hook at arrival: for a journaled request, its entry, with its target and headers
/// written down. The request-id step puts it in the request's scope ([`REQUEST`]), where the
/// steps note what they learn (its sandbox, a fault) and the JSON body extractor its body as
/// read ([`note_body`]).
pub fn start(app: &AppState, req: &Request) -> Option<Arc<Record>> {
    if !app.journal.is_on() || !journaled(req.uri().path()) {
        return None;
    }
    let uri = req.uri();
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let headers = req.headers();
    // Room for the body as declared (`Content-Length`), up to [`BODY_ROOM_MAX`]: a larger body
    // grows the buffer as it is read, so a request that declares much and sends little (or is
    // refused before its body is read) does not hold 64 KiB while it runs.
    let body =
        req.body().size_hint().upper().map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX).min(BODY_ROOM_MAX));
    let text = exact(body + app.journal.answer_room(), |out| {
        out.extend_from_slice(target.as_bytes());
        write_head(out, headers, None);
    });
    let data = Data {
        path_end: uri.path().len().min(target.len()) as u32,
        target_end: target.len() as u32,
        request_head_end: text.len() as u32,
        text,
        ..Data::default()
    };
    Some(Arc::new(Record {
        at: app.world.clock.now(),
        method: req.method().clone(),
        data: parking_lot::Mutex::new(data),
    }))
}

/// The hook at the answer, `elapsed` after the request's arrival. An answer whose body is whole
/// at once (every handler builds its body in memory) is recorded here, before its head goes
/// out, and its body sent on as it was; one that streams is recorded when its last frame goes
/// out ([`Streamed`]).
pub fn finish(
    record: Arc<Record>,
    journal: &Arc<Journal>,
    request_id: &HeaderValue,
    replayed: bool,
    elapsed: Duration,
    mut response: Response,
) -> Response {
    // Whole: `Some(bytes)`. Else the first frame, if one was ready, goes first in `Streamed`.
    let mut first = None;
    let body = response.body_mut();
    let whole = if body.is_end_stream() {
        Some(Bytes::new())
    } else {
        match Pin::new(&mut *body).poll_frame(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) if body.is_end_stream() => Some(data),
                Ok(data) => {
                    first = Some(Ok(http_body::Frame::data(data)));
                    None
                }
                Err(frame) => {
                    first = Some(Ok(frame));
                    None
                }
            },
            Poll::Ready(Some(Err(e))) => {
                first = Some(Err(e));
                None
            }
            Poll::Ready(None) => {
                *body = Body::empty();
                Some(Bytes::new())
            }
            Poll::Pending => None,
        }
    };
    let mut data = record.data.lock();
    let sandbox = std::mem::take(&mut data.sandbox);
    let sandbox_id = match &sandbox {
        Sandbox::None => "",
        Sandbox::Tenant(t) => t.id.as_str(),
        Sandbox::Id(id) => id,
    };
    let id = request_id.as_bytes();
    let kept = whole.as_ref().map_or(0, |b| b.len().min(BODY_BYTES_MAX));
    // Its `X-Request-Id` is the request id written here, so it is written once (and shown among
    // the answer's headers when read).
    let skip = Some(&super::names::X_REQUEST_ID);
    let answer = id.len() + sandbox_id.len() + head_len(response.headers(), skip) + kept;
    journal.answered(answer);
    data.answered = true;
    data.request_body_end = data.text.len() as u32;
    // Within the room reserved at arrival, as a rule; else grown once, to size.
    data.text.reserve_exact(answer);
    data.text.extend_from_slice(id);
    data.request_id_end = data.text.len() as u32;
    data.text.extend_from_slice(sandbox_id.as_bytes());
    data.sandbox_end = data.text.len() as u32;
    write_head(&mut data.text, response.headers(), skip);
    data.response_head_end = data.text.len() as u32;
    drop(sandbox);
    data.status = response.status().as_u16();
    data.duration_us = elapsed.as_micros() as u64;
    data.replayed = replayed;
    match whole {
        Some(bytes) => {
            data.push_response_body(&bytes);
            let cost = data.seal();
            drop(data);
            if let Some(cost) = cost {
                journal.push(record, cost);
            }
            if !bytes.is_empty() {
                *response.body_mut() = Body::from(bytes);
            }
        }
        None => {
            drop(data);
            let body = std::mem::take(response.body_mut());
            *response.body_mut() = Streamed::wrap(first, body, record, journal.clone());
        }
    }
    response
}

/// Calls `f` with the current request's entry, if it is journaled.
fn with_record(f: impl FnOnce(&Record)) {
    let _ = REQUEST.try_with(|scope| {
        if let Some(r) = &scope.journal {
            f(r);
        }
    });
}

/// Whether the current request is journaled.
pub fn noting() -> bool {
    REQUEST.try_with(|scope| scope.journal.is_some()).unwrap_or(false)
}

/// The current request's entry, if it is journaled (for the body extractor, which notes each
/// frame it reads with [`note_body`]).
pub fn current() -> Option<Arc<Record>> {
    REQUEST.try_with(|scope| scope.journal.clone()).ok().flatten()
}

/// Notes bytes of a journaled request's body as they are read (a copy: a frame is a slice of
/// the connection's read buffer).
pub fn note_body(record: &Record, data: &[u8]) {
    record.data.lock().push_request_body(data);
}

/// Notes the sandbox the current request was authenticated to.
pub fn note_tenant(tenant: &Arc<Tenant>) {
    with_record(|r| r.data.lock().sandbox = Sandbox::Tenant(tenant.clone()));
}

/// Notes the sandbox the current request was authenticated to, by its id.
pub fn note_sandbox(sandbox_id: &str) {
    with_record(|r| r.data.lock().sandbox = Sandbox::Id(sandbox_id.into()));
}

/// Notes the fault injected into the current request.
pub fn note_fault(id: &str, action: &'static str) {
    with_record(|r| r.data.lock().fault = Some((id.into(), action)));
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

fn render_headers(h: HeadLines<'_>, request_id: Option<&str>) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    if let Some(id) = request_id {
        out.insert(super::names::X_REQUEST_ID.as_str().to_owned(), id.to_owned());
    }
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

fn render_body(bytes: &[u8], size: BodySize) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    if !size.truncated {
        if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
            return v;
        }
    }
    Value::String(String::from_utf8_lossy(bytes).into_owned())
}

fn message(headers: HeadLines<'_>, request_id: Option<&str>, body: &[u8], size: BodySize) -> JournalMessage {
    JournalMessage {
        headers: render_headers(headers, request_id),
        body: render_body(body, size),
        truncated: size.truncated,
        size_bytes: size.size_bytes,
    }
}

fn render(seq: u64, r: &Record) -> JournalEntry {
    let d = r.data.lock();
    JournalEntry {
        id: format!("{ID_PREFIX}{seq}"),
        request_id: d.request_id().to_owned(),
        at: r.at,
        sandbox_id: d.sandbox_id().map(str::to_owned),
        method: r.method.as_str().to_owned(),
        path: d.path().to_owned(),
        query: d.query().to_owned(),
        status: d.status,
        duration_us: d.duration_us,
        idempotency_key: d
            .request_head()
            .get(super::names::IDEMPOTENCY_KEY.as_str())
            .map(|v| String::from_utf8_lossy(v).into_owned()),
        idempotent_replayed: d.replayed,
        fault: d.fault.as_ref().map(|(id, action)| JournalFault { id: id.to_string(), action: (*action).to_owned() }),
        request: message(d.request_head(), None, d.request_body_bytes(), d.request_body),
        // The answer's `X-Request-Id` is the request id (see `finish`).
        response: message(d.response_head(), Some(d.request_id()), d.response_body_bytes(), d.response_body),
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
    let data: Vec<JournalEntry> = entries.iter().map(|(seq, r)| render(*seq, r)).collect();
    let next_cursor = if more { data.last().map(|e| e.id.clone()) } else { None };
    Ok(axum::Json(JournalPage { data, next_cursor }))
}

/// `GET /_emulator/requests/{id}`
pub async fn get(State(s): St, _: Admin, Path(id): Path<String>) -> ApiResult<axum::Json<JournalEntry>> {
    let found = seq_of(&id).and_then(|seq| Some((seq, s.journal.get(seq)?)));
    let (seq, record) = found.ok_or_else(|| {
        ApiError::from(crate::domain::DomainError::not_found(
            "journal entry (it may have been dropped from the journal)",
        ))
    })?;
    Ok(axum::Json(render(seq, &record)))
}

/// `DELETE /_emulator/requests`
pub async fn clear(State(s): St, _: Admin) -> StatusCode {
    s.journal.clear();
    StatusCode::NO_CONTENT
}
