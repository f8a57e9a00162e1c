//! The journal's store: a ring of entries in the order they were recorded, bounded by count and
//! by bytes, the oldest dropped first.
//!
//! An entry is recorded when its answer is ready (the hook wraps the response body and records
//! when the last frame goes out, or when the answer is dropped), and gets the next sequence
//! number then. So the order is that of the answers, which is arrival order for every client
//! that waits for one answer before the next call (one SDK call's attempts, a CLI, a test), and a
//! reader following with a cursor never misses a slow request that ends after a quicker one
//! (numbering at arrival would put it behind the cursor already handed out). `at` is the
//! arrival time.
//!
//! What an entry costs against `--journal-bytes` is an estimate of what it holds: its path and
//! query, header names and values, the bodies' kept bytes, and [`ENTRY_OVERHEAD_BYTES`] for the
//! rest.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use parking_lot::Mutex;

use super::capture::{Captured, SharedNote, carries_secrets, redact_body, redact_headers};
use crate::clock::Timestamp;

/// What an entry costs beyond its text and bodies, in bytes (its struct, vectors and maps).
pub const ENTRY_OVERHEAD_BYTES: usize = 512;

/// One journaled request and its answer.
#[derive(Debug)]
pub struct Entry {
    /// The journal's own number, in recording order.
    pub seq: u64,
    /// `X-Request-Id` of the answer.
    pub request_id: HeaderValue,
    /// Arrival (emulator clock).
    pub at: Timestamp,
    /// The sandbox it was authenticated to.
    pub sandbox_id: Option<String>,
    /// Method.
    pub method: Method,
    /// Path and query.
    pub uri: Uri,
    /// Status of the answer.
    pub status: u16,
    /// From arrival to the answer's head, in microseconds.
    pub duration_us: u64,
    /// Whether the answer was an idempotent replay.
    pub replayed: bool,
    /// The injected fault (id, action).
    pub fault: Option<(String, &'static str)>,
    /// Request headers (credentials masked).
    pub request_headers: HeaderMap,
    /// Request body as read.
    pub request_body: Captured,
    /// Response headers (credentials masked).
    pub response_headers: HeaderMap,
    /// Response body as sent.
    pub response_body: Captured,
    cost_bytes: usize,
}

fn headers_bytes(h: &HeaderMap) -> usize {
    h.iter().map(|(n, v)| n.as_str().len() + v.len()).sum()
}

/// An entry waiting for its response body.
#[derive(Debug)]
pub struct Pending {
    /// Where it goes.
    pub journal: Arc<Journal>,
    /// `X-Request-Id`.
    pub request_id: HeaderValue,
    /// Arrival.
    pub at: Timestamp,
    /// Method.
    pub method: Method,
    /// Path and query.
    pub uri: Uri,
    /// Status.
    pub status: u16,
    /// Microseconds to the answer's head.
    pub duration_us: u64,
    /// Idempotent replay.
    pub replayed: bool,
    /// Request headers, as received.
    pub request_headers: HeaderMap,
    /// Response headers.
    pub response_headers: HeaderMap,
    /// What the steps noted.
    pub note: SharedNote,
}

impl Pending {
    /// Records the entry with its response body.
    pub fn record(self: Box<Self>, response_body: Captured) {
        let Pending {
            journal,
            request_id,
            at,
            method,
            uri,
            status,
            duration_us,
            replayed,
            mut request_headers,
            mut response_headers,
            note,
        } = *self;
        let (mut request_body, sandbox_id, fault) = {
            let mut n = note.lock();
            (std::mem::take(&mut n.body), n.sandbox_id.take(), n.fault.take())
        };
        let mut response_body = response_body;
        redact_headers(&mut request_headers);
        redact_headers(&mut response_headers);
        if carries_secrets(uri.path()) {
            request_body = redact_body(&request_body);
            response_body = redact_body(&response_body);
        }
        let cost_bytes = ENTRY_OVERHEAD_BYTES
            + uri.path_and_query().map_or(0, |p| p.as_str().len())
            + headers_bytes(&request_headers)
            + headers_bytes(&response_headers)
            + request_body.kept_bytes()
            + response_body.kept_bytes();
        journal.push(Entry {
            seq: 0,
            request_id,
            at,
            sandbox_id,
            method,
            uri,
            status,
            duration_us,
            replayed,
            fault,
            request_headers,
            request_body,
            response_headers,
            response_body,
            cost_bytes,
        });
    }
}

#[derive(Debug, Default)]
struct Ring {
    entries: VecDeque<Arc<Entry>>,
    bytes: usize,
    next_seq: u64,
}

/// Which entries a read wants (every given field must match).
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Exact sandbox id.
    pub sandbox_id: Option<String>,
    /// Method, upper case.
    pub method: Option<String>,
    /// Path prefix.
    pub path_prefix: Option<String>,
    /// An exact status, or a class (`4` of `4xx`).
    pub status: Option<StatusFilter>,
    /// Exact `X-Request-Id`.
    pub request_id: Option<String>,
    /// Exact `Idempotency-Key` (as sent).
    pub idempotency_key: Option<String>,
}

/// `?status=404` or `?status=4xx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// This status.
    Exact(u16),
    /// Statuses `n00..=n99`.
    Class(u16),
}

impl Filter {
    fn matches(&self, e: &Entry) -> bool {
        self.sandbox_id.as_deref().is_none_or(|s| e.sandbox_id.as_deref() == Some(s))
            && self.method.as_deref().is_none_or(|m| e.method.as_str() == m)
            && self.path_prefix.as_deref().is_none_or(|p| e.uri.path().starts_with(p))
            && self.status.is_none_or(|s| match s {
                StatusFilter::Exact(n) => e.status == n,
                StatusFilter::Class(c) => e.status / 100 == c,
            })
            && self.request_id.as_deref().is_none_or(|r| e.request_id.as_bytes() == r.as_bytes())
            && self.idempotency_key.as_deref().is_none_or(|k| {
                e.request_headers.get(crate::http::names::IDEMPOTENCY_KEY).is_some_and(|v| v.as_bytes() == k.as_bytes())
            })
    }
}

/// The request journal (see the module docs).
#[derive(Debug)]
pub struct Journal {
    entries_max: usize,
    bytes_max: usize,
    ring: Mutex<Ring>,
}

impl Journal {
    /// A journal of at most `entries_max` entries and `bytes_max` bytes; 0 entries turns it off.
    pub fn new(entries_max: usize, bytes_max: usize) -> Journal {
        Journal { entries_max, bytes_max, ring: Mutex::default() }
    }

    /// Whether requests are recorded.
    pub fn is_on(&self) -> bool {
        self.entries_max > 0
    }

    fn push(&self, mut entry: Entry) {
        if !self.is_on() {
            return;
        }
        let mut ring = self.ring.lock();
        ring.next_seq += 1;
        entry.seq = ring.next_seq;
        ring.bytes += entry.cost_bytes;
        ring.entries.push_back(Arc::new(entry));
        while ring.entries.len() > self.entries_max || ring.bytes > self.bytes_max {
            let Some(old) = ring.entries.pop_front() else { break };
            ring.bytes -= old.cost_bytes;
        }
    }

    /// Entries held, and the bytes they are counted as.
    pub fn len(&self) -> (usize, usize) {
        let ring = self.ring.lock();
        (ring.entries.len(), ring.bytes)
    }

    /// Forgets every entry (numbering goes on, so cursors stay valid).
    pub fn clear(&self) {
        let mut ring = self.ring.lock();
        ring.entries.clear();
        ring.bytes = 0;
    }

    /// Up to `limit` entries matching `filter` recorded after `after_seq`, oldest first, and
    /// whether more match. Scans at most the ring (bounded by `--journal-size`).
    pub fn page(&self, filter: &Filter, after_seq: u64, limit: usize) -> (Vec<Arc<Entry>>, bool) {
        let ring = self.ring.lock();
        let start = ring.entries.partition_point(|e| e.seq <= after_seq);
        let mut out = Vec::with_capacity(limit.min(ring.entries.len()));
        for e in ring.entries.range(start..) {
            if filter.matches(e) {
                if out.len() == limit {
                    return (out, true);
                }
                out.push(e.clone());
            }
        }
        (out, false)
    }

    /// The entry numbered `seq`, if still held.
    pub fn get(&self, seq: u64) -> Option<Arc<Entry>> {
        let ring = self.ring.lock();
        let i = ring.entries.partition_point(|e| e.seq < seq);
        ring.entries.get(i).filter(|e| e.seq == seq).cloned()
    }
}
