//! What the journal keeps of a request while it runs: the request body as the handler reads it
//! and the response body as the server sends it, each through a body that hands the frames on
//! unchanged and keeps a reference-counted clone of their bytes (up to
//! [`BODY_BYTES_MAX`](super::BODY_BYTES_MAX)), and the redaction of secrets before anything is
//! stored.
//!
//! Nothing here parses or serialises: rendering as JSON happens when the journal is read. What
//! is kept is copied into buffers of the journal's own, so that what `--journal-bytes` counts is
//! what is held: hyper hands out request headers and body frames as slices of its connection's
//! read buffer, and keeping those slices would keep whole read buffers (8 KiB and more each)
//! alive. The copies are small (a request's head and body, typically under 1 KiB); a response
//! body (the emulator's own buffer) is kept by reference count, its first 64 KiB copied only when
//! it is longer.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use parking_lot::Mutex;

use super::BODY_BYTES_MAX;
use super::ring::Pending;

/// The bytes of one body, as far as kept.
#[derive(Debug, Default)]
pub struct Captured {
    /// The frames kept, in order; together at most [`BODY_BYTES_MAX`] bytes.
    pub chunks: Vec<Bytes>,
    /// Bytes seen in all (kept or not).
    pub size_bytes: u64,
    /// Whether bytes past [`BODY_BYTES_MAX`] were dropped.
    pub truncated: bool,
}

impl Captured {
    /// Keeps `data` (a copy when `copy`, else a reference) as far as the bound allows.
    fn push(&mut self, data: &Bytes, copy: bool) {
        let kept: usize = self.chunks.iter().map(Bytes::len).sum();
        self.size_bytes += data.len() as u64;
        let room = BODY_BYTES_MAX.saturating_sub(kept);
        if data.len() <= room {
            if !data.is_empty() {
                self.chunks.push(if copy { Bytes::copy_from_slice(data) } else { data.clone() });
            }
        } else {
            if room > 0 {
                self.chunks.push(Bytes::copy_from_slice(&data[..room]));
            }
            self.truncated = true;
        }
    }

    /// The kept bytes, in one piece.
    pub fn joined(&self) -> Bytes {
        match self.chunks.as_slice() {
            [] => Bytes::new(),
            [one] => one.clone(),
            many => many.concat().into(),
        }
    }

    /// Bytes kept.
    pub fn kept_bytes(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }
}

/// What the steps learn about a request while it runs, shared with the journal's hook: its
/// request body as read, its sandbox, the fault that hit it.
#[derive(Debug, Default)]
pub struct Note {
    /// The request body as the handler read it.
    pub body: Captured,
    /// The sandbox the request was authenticated to.
    pub sandbox_id: Option<String>,
    /// The injected fault: its id and action.
    pub fault: Option<(String, &'static str)>,
}

/// A shared [`Note`].
pub type SharedNote = Arc<Mutex<Note>>;

/// A request body that keeps what is read of it in a [`Note`].
pub struct RequestTee {
    inner: Body,
    note: SharedNote,
}

impl RequestTee {
    /// `inner`, read through into `note`.
    pub fn wrap(inner: Body, note: SharedNote) -> Body {
        Body::new(RequestTee { inner, note })
    }
}

impl http_body::Body for RequestTee {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                // A copy: the frame is a slice of the connection's read buffer.
                self.note.lock().body.push(data, true);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps what is sent of it and records the journal entry when it ends
/// (or is dropped: a dropped connection, a client gone).
pub struct ResponseTee {
    inner: Body,
    body: Captured,
    pending: Option<Box<Pending>>,
}

impl ResponseTee {
    /// `inner`, sent through; `pending` is recorded when it ends.
    pub fn wrap(inner: Body, pending: Box<Pending>) -> Body {
        let mut tee = ResponseTee { inner, body: Captured::default(), pending: Some(pending) };
        if tee.inner.is_end_stream() {
            // An empty body may never be polled.
            tee.finish();
        }
        Body::new(tee)
    }

    fn finish(&mut self) {
        if let Some(pending) = self.pending.take() {
            (*pending).record(std::mem::take(&mut self.body));
        }
    }
}

impl Drop for ResponseTee {
    fn drop(&mut self) {
        self.finish();
    }
}

impl http_body::Body for ResponseTee {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.body.push(data, false);
                }
                // Recorded before the last bytes go out, so a client that reads the journal
                // right after its answer finds it there.
                if this.inner.is_end_stream() {
                    this.finish();
                }
            }
            Poll::Ready(_) => this.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `name`'s values are credentials (`Authorization`, `Proxy-Authorization`, `Cookie`,
/// `Set-Cookie`, `X-Api-Key`): the journal keeps a mask of them, never the value.
fn is_secret_header(name: &HeaderName) -> bool {
    matches!(name.as_str(), "authorization" | "proxy-authorization" | "cookie" | "set-cookie" | "x-api-key")
}

/// Key prefixes the emulator issues, shown in masks: `sk_test_…a1b2`.
const KEY_PREFIXES: [&str; 3] = ["sk_test_", "rk_test_", "whsec_"];

/// Shortest secret whose last 4 characters are shown (a shorter one shows none).
const SHOWN_TAIL_MIN_CHARS: usize = 16;

/// `secret` masked: its key prefix if it has one, `…`, and its last 4 characters when it is
/// long enough that they say little.
pub fn mask_secret(secret: &str) -> String {
    let mut out = Vec::with_capacity(16);
    push_masked(&mut out, secret.as_bytes());
    String::from_utf8(out).expect("a mask of text is text")
}

/// Appends the mask of `secret` (as [`mask_secret`]) to `out`, without a copy of the secret.
fn push_masked(out: &mut Vec<u8>, secret: &[u8]) {
    if let Some(prefix) = KEY_PREFIXES.iter().find(|p| secret.starts_with(p.as_bytes())) {
        out.extend_from_slice(prefix.as_bytes());
    }
    out.extend_from_slice("…".as_bytes());
    if secret.len() >= SHOWN_TAIL_MIN_CHARS {
        let tail = &secret[secret.len() - 4..];
        // Only a tail of whole characters (bytes that do not start inside a UTF-8 sequence).
        if std::str::from_utf8(tail).is_ok() {
            out.extend_from_slice(tail);
        }
    }
}

/// Appends a credential header's value masked, its scheme kept (`Bearer sk_test_…a1b2`).
fn push_masked_header(out: &mut Vec<u8>, value: &HeaderValue) {
    let bytes = value.as_bytes();
    match bytes.iter().position(|b| *b == b' ') {
        Some(space) => {
            out.extend_from_slice(String::from_utf8_lossy(&bytes[..space]).as_bytes());
            out.push(b' ');
            push_masked(out, bytes[space + 1..].trim_ascii());
        }
        None => push_masked(out, bytes),
    }
}

/// Headers as the journal keeps them: `name: value` lines in one buffer of its own, each
/// credential header's value replaced by its mask (so no credential is ever stored whole).
#[derive(Debug, Default)]
pub struct Head(Vec<u8>);

impl Head {
    /// The lines of `headers`, masked.
    pub fn of(headers: &HeaderMap) -> Head {
        let mut out = Vec::with_capacity(headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 3).sum());
        for (name, value) in headers {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            if is_secret_header(name) {
                push_masked_header(&mut out, value);
            } else {
                out.extend_from_slice(value.as_bytes());
            }
            out.push(b'\n');
        }
        Head(out)
    }

    /// (name, value) pairs, in order (a header's name holds no `:`, its value no line break).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.0.split(|b| *b == b'\n').filter_map(|line| {
            let colon = line.iter().position(|b| *b == b':')?;
            Some((&line[..colon], line.get(colon + 2..).unwrap_or_default()))
        })
    }

    /// The first value of `name` (lower case).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter().find(|(n, _)| *n == name.as_bytes()).map(|(_, v)| v)
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.0.capacity()
    }
}

/// Whether bodies of `path` can carry keys or webhook signing secrets: sandbox creation and
/// key roll answers (`secret_key`, `restricted_key`), webhook endpoints (`secret` of create,
/// rotate and `GET …/secret`).
pub fn carries_secrets(path: &str) -> bool {
    path == "/v1/sandboxes" || path == "/v1/api-keys/roll" || path.starts_with("/v1/webhook-endpoints")
}

/// `body` with every key or signing secret in it (`sk_test_…`, `rk_test_…`, `whsec_…`) masked
/// as [`mask_secret`] does.
pub fn redact_body(body: &Captured) -> Captured {
    let bytes = body.joined();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if let Some(prefix) = KEY_PREFIXES.iter().find(|p| rest.starts_with(p.as_bytes())) {
            let end =
                rest.iter().position(|b| !(b.is_ascii_alphanumeric() || b"_+/=-".contains(b))).unwrap_or(rest.len());
            let secret = String::from_utf8_lossy(&rest[..end]);
            if end > prefix.len() {
                out.extend_from_slice(mask_secret(&secret).as_bytes());
                i += end;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    Captured { chunks: vec![Bytes::from(out)], size_bytes: body.size_bytes, truncated: body.truncated }
}

#[cfg(test)]
mod tests {
    use axum::http::header;

    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask_secret("sk_test_abcdefghijklmnopqrstuvwxa1b2"), "sk_test_…a1b2");
        assert_eq!(mask_secret("short"), "…");
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer rk_test_0123456789abcdefghijwxyz"));
        headers.insert(header::ETAG, HeaderValue::from_static("\"1\""));
        let head = Head::of(&headers);
        assert_eq!(head.get("authorization"), Some("Bearer rk_test_…wxyz".as_bytes()));
        assert_eq!(head.iter().count(), 2);
        assert_eq!(head.get("etag"), Some(&b"\"1\""[..]));
        // Every credential header, with or without a scheme; a value that is not text keeps no tail.
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("sk_test_0123456789abcdefghijklmn"));
        headers.insert(header::COOKIE, HeaderValue::from_static("session=0123456789abcdefXYZW"));
        headers.insert(
            header::PROXY_AUTHORIZATION,
            HeaderValue::from_bytes(b"Basic \xff\xfe0123456789abcd\xff\xfe").unwrap(),
        );
        headers.insert("idempotency-key", HeaderValue::from_static("k-1"));
        let head = Head::of(&headers);
        assert_eq!(head.get("x-api-key"), Some("sk_test_…klmn".as_bytes()));
        assert_eq!(head.get("cookie"), Some("…XYZW".as_bytes()));
        assert_eq!(head.get("proxy-authorization"), Some("Basic …".as_bytes()));
        assert_eq!(head.get("idempotency-key"), Some(&b"k-1"[..]));
        let body = Captured {
            chunks: vec![Bytes::from_static(br#"{"secret":"whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY","x":1}"#)],
            size_bytes: 10,
            truncated: false,
        };
        assert_eq!(redact_body(&body).joined(), Bytes::from_static(r#"{"secret":"whsec_…VldY","x":1}"#.as_bytes()));
    }

    #[test]
    fn bodies_are_cut_at_the_bound() {
        let mut c = Captured::default();
        c.push(&Bytes::from(vec![b'a'; BODY_BYTES_MAX - 1]), true);
        c.push(&Bytes::from_static(b"bc"), false);
        assert_eq!((c.kept_bytes(), c.size_bytes, c.truncated), (BODY_BYTES_MAX, BODY_BYTES_MAX as u64 + 1, true));
    }
}
