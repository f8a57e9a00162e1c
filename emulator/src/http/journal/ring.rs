//! The journal's store: a ring of entries in the order they were recorded, bounded by count and
//! by bytes, the oldest dropped first.
//!
//! An entry is recorded when its answer is ready (the hook records it when it has the answer's
//! whole body, before its head goes out; a body that streams is recorded when its last frame
//! goes out, or when the answer is dropped), and gets the next sequence number then. So the order
//! is that of the answers, which is arrival order for every client that waits for one answer
//! before the next call (one SDK call's attempts, a CLI, a test), and a reader following with a
//! cursor never misses a slow request that ends after a quicker one (numbering at arrival would
//! put it behind the cursor already handed out). `at` is the arrival time.
//!
//! An entry is one [`Record`], allocated when its request arrives and filled in along the way;
//! its text is in one buffer of its own (see [`Data`]). What it costs against `--journal-bytes`
//! is what it holds: the buffer's capacity, a fault's id, and [`ENTRY_OVERHEAD_BYTES`] for the
//! rest.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::Method;
use parking_lot::Mutex;

use super::capture::{HeadLines, carries_secrets, redact};
use crate::clock::Timestamp;
use crate::domain::registry::Tenant;

/// What an entry costs beyond its buffers, in bytes (its record and its place in the ring).
pub const ENTRY_OVERHEAD_BYTES: usize = 512;

/// How much is known of a body: its whole length and whether only a prefix is kept.
#[derive(Debug, Default, Clone, Copy)]
pub struct BodySize {
    /// Bytes seen in all (kept or not).
    pub size_bytes: u64,
    /// Whether bytes past [`BODY_BYTES_MAX`](super::BODY_BYTES_MAX) were dropped.
    pub truncated: bool,
}

/// The sandbox a request was authenticated to, as noted while it runs: the tenant itself (its id
/// is copied into the entry when the answer is recorded, and the tenant let go), or its id.
#[derive(Debug, Default)]
pub enum Sandbox {
    /// None (yet).
    #[default]
    None,
    /// The tenant (held only until the answer).
    Tenant(Arc<Tenant>),
    /// Its id.
    Id(Box<str>),
}

/// An entry's fields that are filled in along the way.
///
/// `text` holds, in order: the request's `path?query`, its head lines (`name: value\n`,
/// credentials masked) and its body as read (up to [`BODY_BYTES_MAX`](super::BODY_BYTES_MAX));
/// then, from the answer, the request id, the sandbox id, the answer's head lines and its body.
/// It is one allocation, made at arrival with room for the request's body (`Content-Length`)
/// and for an answer the size of the one before ([`Journal::answer_room`]); an answer that does
/// not fit grows it once, to its exact size.
#[derive(Debug, Default)]
pub struct Data {
    /// The entry's text.
    pub text: Vec<u8>,
    /// End of the path.
    pub path_end: u32,
    /// End of `path?query`.
    pub target_end: u32,
    /// End of the request's head lines (its body follows).
    pub request_head_end: u32,
    /// End of the request's body (set when the answer is written down).
    pub request_body_end: u32,
    /// End of the request id.
    pub request_id_end: u32,
    /// End of the sandbox id (none when it is empty).
    pub sandbox_end: u32,
    /// End of the answer's head lines (its body follows, to the end).
    pub response_head_end: u32,
    /// The request body's size.
    pub request_body: BodySize,
    /// The answer's body size.
    pub response_body: BodySize,
    /// The sandbox, while the request runs.
    pub sandbox: Sandbox,
    /// Status of the answer.
    pub status: u16,
    /// From arrival to the answer's head, in microseconds.
    pub duration_us: u64,
    /// Whether the answer was an idempotent replay.
    pub replayed: bool,
    /// The injected fault (id, action).
    pub fault: Option<(Box<str>, &'static str)>,
    /// Whether the answer is written down (the request's body is complete then).
    pub answered: bool,
    /// Whether it is in the journal (nothing changes after that).
    pub recorded: bool,
}

fn range(buf: &[u8], r: Range<u32>) -> &[u8] {
    buf.get(r.start as usize..r.end as usize).unwrap_or_default()
}

fn text(buf: &[u8], r: Range<u32>) -> &str {
    // Only whole strings are written at these places.
    std::str::from_utf8(range(buf, r)).unwrap_or_default()
}

impl Data {
    /// The path.
    pub fn path(&self) -> &str {
        text(&self.text, 0..self.path_end)
    }

    /// The query, without `?` (empty when none).
    pub fn query(&self) -> &str {
        let q = text(&self.text, self.path_end..self.target_end);
        q.strip_prefix('?').unwrap_or_default()
    }

    /// The request's head lines.
    pub fn request_head(&self) -> HeadLines<'_> {
        HeadLines(range(&self.text, self.target_end..self.request_head_end))
    }

    /// The request body's kept bytes.
    pub fn request_body_bytes(&self) -> &[u8] {
        range(&self.text, self.request_head_end..self.request_body_end)
    }

    /// `X-Request-Id`.
    pub fn request_id(&self) -> &str {
        text(&self.text, self.request_body_end..self.request_id_end)
    }

    /// The sandbox's id.
    pub fn sandbox_id(&self) -> Option<&str> {
        Some(text(&self.text, self.request_id_end..self.sandbox_end)).filter(|s| !s.is_empty())
    }

    /// The answer's head lines.
    pub fn response_head(&self) -> HeadLines<'_> {
        HeadLines(range(&self.text, self.sandbox_end..self.response_head_end))
    }

    /// The answer body's kept bytes.
    pub fn response_body_bytes(&self) -> &[u8] {
        self.text.get(self.response_head_end as usize..).unwrap_or_default()
    }

    /// Appends to the request body what the bound lets it keep (nothing once answered).
    pub fn push_request_body(&mut self, data: &[u8]) {
        if !self.answered {
            let kept = self.text.len() - self.request_head_end as usize;
            push_bounded(&mut self.text, kept, &mut self.request_body, data);
        }
    }

    /// Appends to the answer's body what the bound lets it keep.
    pub fn push_response_body(&mut self, data: &[u8]) {
        if self.answered && !self.recorded {
            let kept = self.text.len() - self.response_head_end as usize;
            push_bounded(&mut self.text, kept, &mut self.response_body, data);
        }
    }

    /// Masks secrets in the bodies of the routes that carry them, marks it recorded, and returns
    /// the bytes it is counted as (none when it was recorded already).
    pub fn seal(&mut self) -> Option<usize> {
        if self.recorded {
            return None;
        }
        if carries_secrets(&self.text[..self.path_end as usize]) {
            let request_body = redact(self.request_body_bytes());
            let response_body = redact(self.response_body_bytes());
            let answer_head = range(&self.text, self.request_body_end..self.response_head_end).to_vec();
            // What follows the request body moves by the change in its length.
            let (old, new) = (self.request_body_end, self.request_head_end + request_body.len() as u32);
            let moved = |end: u32| end - old + new;
            self.request_id_end = moved(self.request_id_end);
            self.sandbox_end = moved(self.sandbox_end);
            self.response_head_end = moved(self.response_head_end);
            self.request_body_end = new;
            self.text.truncate(self.request_head_end as usize);
            self.text.extend_from_slice(&request_body);
            self.text.extend_from_slice(&answer_head);
            self.text.extend_from_slice(&response_body);
        }
        // Room reserved and not used (a body not read, a smaller answer than the last) is not
        // kept.
        if self.text.capacity() - self.text.len() > ROOM_KEPT_MAX {
            self.text.shrink_to_fit();
        }
        self.sandbox = Sandbox::None;
        self.recorded = true;
        Some(ENTRY_OVERHEAD_BYTES + self.text.capacity() + self.fault.as_ref().map_or(0, |(id, _)| id.len()))
    }
}

/// Most unused room an entry keeps (past it, its buffer is cut to size when recorded).
const ROOM_KEPT_MAX: usize = 256;

/// Most room reserved at arrival for the answer (an answer larger than that grows the buffer).
const ANSWER_ROOM_MAX: usize = 4 << 10;

/// Appends `data` to `buf`, of whose body `kept` bytes are there, as far as the bound allows.
fn push_bounded(buf: &mut Vec<u8>, kept: usize, size: &mut BodySize, data: &[u8]) {
    size.size_bytes += data.len() as u64;
    let room = super::BODY_BYTES_MAX.saturating_sub(kept);
    if data.len() <= room {
        buf.extend_from_slice(data);
    } else {
        buf.extend_from_slice(&data[..room]);
        size.truncated = true;
    }
}

/// One journaled request and its answer: allocated at its arrival, shared with the steps that
/// note what they learn of it, and then held by the ring.
#[derive(Debug)]
pub struct Record {
    /// Arrival (emulator clock).
    pub at: Timestamp,
    /// Method.
    pub method: Method,
    /// The rest.
    pub data: Mutex<Data>,
}

#[derive(Debug, Default)]
struct Ring {
    /// (sequence number, bytes counted, entry), in recording order.
    entries: VecDeque<(u64, usize, Arc<Record>)>,
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
    fn matches(&self, r: &Record) -> bool {
        let d = r.data.lock();
        self.sandbox_id.as_deref().is_none_or(|s| d.sandbox_id() == Some(s))
            && self.method.as_deref().is_none_or(|m| r.method.as_str() == m)
            && self.path_prefix.as_deref().is_none_or(|p| d.path().starts_with(p))
            && self.status.is_none_or(|s| match s {
                StatusFilter::Exact(n) => d.status == n,
                StatusFilter::Class(c) => d.status / 100 == c,
            })
            && self.request_id.as_deref().is_none_or(|id| d.request_id() == id)
            && self.idempotency_key.as_deref().is_none_or(|k| {
                d.request_head().get(crate::http::names::IDEMPOTENCY_KEY.as_str()).is_some_and(|v| v == k.as_bytes())
            })
    }
}

/// The request journal (see the module docs).
#[derive(Debug)]
pub struct Journal {
    entries_max: usize,
    bytes_max: usize,
    ring: Mutex<Ring>,
    /// Bytes the last answer took in its entry (see [`Journal::answer_room`]).
    last_answer: AtomicUsize,
}

impl Journal {
    /// A journal of at most `entries_max` entries and `bytes_max` bytes; 0 entries turns it off.
    pub fn new(entries_max: usize, bytes_max: usize) -> Journal {
        Journal { entries_max, bytes_max, ring: Mutex::default(), last_answer: AtomicUsize::new(0) }
    }

    /// Room to reserve at arrival for the answer: what the last one took, and a little more
    /// (answers in a run of similar requests differ by a few bytes), at most
    /// [`ANSWER_ROOM_MAX`]. Reserved with the request, the answer then needs no allocation of its
    /// own; unused room past [`ROOM_KEPT_MAX`] is given back when the entry is recorded.
    pub fn answer_room(&self) -> usize {
        let last = self.last_answer.load(Ordering::Relaxed);
        if last == 0 { 0 } else { (last + 64).min(ANSWER_ROOM_MAX) }
    }

    /// Notes the bytes an answer took (for [`Journal::answer_room`]).
    pub fn answered(&self, bytes: usize) {
        self.last_answer.store(bytes, Ordering::Relaxed);
    }

    /// Whether requests are recorded.
    pub fn is_on(&self) -> bool {
        self.entries_max > 0
    }

    /// Records `record`, sealed (see [`Data::seal`]) as `cost` bytes.
    pub fn push(&self, record: Arc<Record>, cost: usize) {
        if !self.is_on() {
            return;
        }
        let mut ring = self.ring.lock();
        ring.next_seq += 1;
        let seq = ring.next_seq;
        ring.bytes += cost;
        ring.entries.push_back((seq, cost, record));
        // The oldest entry let go after the lock (its buffers are freed outside it).
        let mut evicted = None;
        while ring.entries.len() > self.entries_max || ring.bytes > self.bytes_max {
            let Some(old) = ring.entries.pop_front() else { break };
            ring.bytes -= old.1;
            evicted = Some(old);
        }
        drop(ring);
        drop(evicted);
    }

    /// Entries held, and the bytes they are counted as.
    pub fn len(&self) -> (usize, usize) {
        let ring = self.ring.lock();
        (ring.entries.len(), ring.bytes)
    }

    /// Forgets every entry (numbering goes on, so cursors stay valid).
    pub fn clear(&self) {
        let mut ring = self.ring.lock();
        let entries = std::mem::take(&mut ring.entries);
        ring.bytes = 0;
        drop(ring);
        drop(entries);
    }

    /// Up to `limit` entries matching `filter` recorded after `after_seq`, oldest first (with
    /// their sequence numbers), and whether more match. Scans at most the ring (bounded by
    /// `--journal-size`).
    pub fn page(&self, filter: &Filter, after_seq: u64, limit: usize) -> (Vec<(u64, Arc<Record>)>, bool) {
        let ring = self.ring.lock();
        let start = ring.entries.partition_point(|e| e.0 <= after_seq);
        let mut out = Vec::with_capacity(limit.min(ring.entries.len()));
        for (seq, _, r) in ring.entries.range(start..) {
            if filter.matches(r) {
                if out.len() == limit {
                    return (out, true);
                }
                out.push((*seq, r.clone()));
            }
        }
        (out, false)
    }

    /// The entry numbered `seq`, if still held.
    pub fn get(&self, seq: u64) -> Option<Arc<Record>> {
        let ring = self.ring.lock();
        let i = ring.entries.partition_point(|e| e.0 < seq);
        ring.entries.get(i).filter(|e| e.0 == seq).map(|e| e.2.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::journal::BODY_BYTES_MAX;

    /// An entry's text as `finish` writes it: request, then answer.
    fn data(path: &str, request_body: &[u8], answer_body: &[u8]) -> Data {
        let mut d = Data { text: path.as_bytes().to_vec(), ..Data::default() };
        d.path_end = path.len() as u32;
        d.target_end = d.path_end;
        d.text.extend_from_slice(b"host: h\n");
        d.request_head_end = d.text.len() as u32;
        d.push_request_body(request_body);
        d.answered = true;
        d.request_body_end = d.text.len() as u32;
        d.text.extend_from_slice(b"req_1");
        d.request_id_end = d.text.len() as u32;
        d.text.extend_from_slice(b"sbx_1");
        d.sandbox_end = d.text.len() as u32;
        d.text.extend_from_slice(b"etag: \"1\"\n");
        d.response_head_end = d.text.len() as u32;
        d.push_response_body(answer_body);
        d
    }

    #[test]
    fn bodies_are_cut_at_the_bound() {
        let mut d = Data::default();
        d.push_request_body(&vec![b'a'; BODY_BYTES_MAX - 1]);
        d.push_request_body(b"bc");
        d.push_response_body(b"not yet answered");
        assert_eq!(d.text.len() - d.request_head_end as usize, BODY_BYTES_MAX);
        assert_eq!((d.request_body.size_bytes, d.request_body.truncated), (BODY_BYTES_MAX as u64 + 1, true));
    }

    #[test]
    fn each_part_reads_back_and_secrets_are_masked_in_place() {
        let mut d = data("/v1/items", b"{\"a\":1}", b"{\"id\":\"itm_1\"}");
        d.push_request_body(b"late");
        let cost = d.seal().expect("sealed once");
        assert!(d.seal().is_none());
        assert_eq!(cost, ENTRY_OVERHEAD_BYTES + d.text.capacity());
        assert_eq!((d.path(), d.query(), d.request_id(), d.sandbox_id()), ("/v1/items", "", "req_1", Some("sbx_1")));
        assert_eq!(d.request_head().get("host"), Some(&b"h"[..]));
        assert_eq!(d.request_body_bytes(), b"{\"a\":1}");
        assert_eq!(d.response_head().get("etag"), Some(&b"\"1\""[..]));
        assert_eq!(d.response_body_bytes(), b"{\"id\":\"itm_1\"}");

        let secret = br#"{"secret":"whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"}"#;
        let mut d = data("/v1/webhook-endpoints", secret, secret);
        d.seal();
        let masked = r#"{"secret":"whsec_…VldY"}"#.as_bytes();
        assert_eq!((d.request_body_bytes(), d.response_body_bytes()), (masked, masked));
        assert_eq!((d.request_id(), d.sandbox_id()), ("req_1", Some("sbx_1")));
        assert_eq!(d.response_head().get("etag"), Some(&b"\"1\""[..]));
        assert_eq!(d.request_body.size_bytes, secret.len() as u64, "the size sent, not the size kept");
    }
}
