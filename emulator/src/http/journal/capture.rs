//! How the journal writes down a request and its answer: head lines into a buffer of the
//! entry's own (credentials masked), the secrets in the bodies of the routes that carry them
//! masked, and a body that streams kept as it goes out ([`Streamed`]).
//!
//! Nothing here parses or serialises: rendering as JSON happens when the journal is read. What
//! is kept is copied into the entry's own buffers, so that what `--journal-bytes` counts is what
//! is held: hyper hands out request headers and body frames as slices of its connection's read
//! buffer, and keeping those slices would keep whole read buffers (8 KiB and more each) alive.
//! The copies are small (a request's head and body, typically under 1 KiB; an answer's the
//! same).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};

use super::ring::{Journal, Record};

/// `X-Api-Key`.
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Whether `name`'s values are credentials (`Authorization`, `Proxy-Authorization`, `Cookie`,
/// `Set-Cookie`, `X-Api-Key`): the journal keeps a mask of them, never the value.
fn is_secret_header(name: &HeaderName) -> bool {
    // Compared as names (a standard name is a one-byte tag), not as text.
    *name == header::AUTHORIZATION
        || *name == header::COOKIE
        || *name == header::SET_COOKIE
        || *name == header::PROXY_AUTHORIZATION
        || *name == X_API_KEY
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
        if tail.is_ascii() || std::str::from_utf8(tail).is_ok() {
            out.extend_from_slice(tail);
        }
    }
}

/// Appends a credential header's value masked, its scheme kept (`Bearer sk_test_…a1b2`).
fn push_masked_header(out: &mut Vec<u8>, value: &HeaderValue) {
    let bytes = value.as_bytes();
    if let Some(token) = bytes.strip_prefix(b"Bearer ") {
        // The usual case.
        out.extend_from_slice(b"Bearer ");
        push_masked(out, token.trim_ascii());
        return;
    }
    match bytes.iter().position(|b| *b == b' ') {
        Some(space) => {
            let scheme = &bytes[..space];
            if scheme.is_ascii() {
                out.extend_from_slice(scheme);
            } else {
                out.extend_from_slice(String::from_utf8_lossy(scheme).as_bytes());
            }
            out.push(b' ');
            push_masked(out, bytes[space + 1..].trim_ascii());
        }
        None => push_masked(out, bytes),
    }
}

/// Bytes [`write_head`] writes for `headers` but those named `skip` (a masked credential can take
/// a few more).
pub fn head_len(headers: &HeaderMap, skip: Option<&HeaderName>) -> usize {
    headers.iter().filter(|(n, _)| skip.is_none_or(|s| s != *n)).map(|(n, v)| n.as_str().len() + v.len() + 3).sum()
}

thread_local! {
    /// Where a side of an entry is written before it is copied into a buffer of its exact size
    /// (cheaper than measuring it first).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A buffer of `f`'s bytes followed by room for `more` bytes, exactly that large.
pub fn exact(more: usize, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    SCRATCH.with_borrow_mut(|scratch| {
        scratch.clear();
        f(scratch);
        let mut out = Vec::with_capacity(scratch.len() + more);
        out.extend_from_slice(scratch);
        if scratch.capacity() > 64 << 10 {
            // A huge head once does not stay held by the thread.
            *scratch = Vec::new();
        }
        out
    })
}

/// Appends the lines of `headers` (`name: value\n`) but those named `skip`, each credential
/// header's value replaced by its mask (so no credential is ever stored whole).
pub fn write_head(out: &mut Vec<u8>, headers: &HeaderMap, skip: Option<&HeaderName>) {
    for (name, value) in headers {
        if skip.is_some_and(|s| s == name) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        if is_secret_header(name) {
            push_masked_header(out, value);
        } else {
            out.extend_from_slice(value.as_bytes());
        }
        out.push(b'\n');
    }
}

/// Head lines as [`write_head`] writes them.
#[derive(Debug, Clone, Copy)]
pub struct HeadLines<'a>(pub &'a [u8]);

impl<'a> HeadLines<'a> {
    /// (name, value) pairs, in order (a header's name holds no `:`, its value no line break).
    pub fn iter(self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        self.0.split(|b| *b == b'\n').filter_map(|line| {
            let colon = line.iter().position(|b| *b == b':')?;
            Some((&line[..colon], line.get(colon + 2..).unwrap_or_default()))
        })
    }

    /// The first value of `name` (lower case).
    pub fn get(self, name: &str) -> Option<&'a [u8]> {
        self.iter().find(|(n, _)| *n == name.as_bytes()).map(|(_, v)| v)
    }
}

/// Whether bodies of `path` can carry keys or webhook signing secrets: sandbox creation and
/// key roll answers (`secret_key`, `restricted_key`), webhook endpoints (`secret` of create,
/// rotate and `GET …/secret`).
pub fn carries_secrets(path: &[u8]) -> bool {
    path == b"/v1/sandboxes" || path == b"/v1/api-keys/roll" || path.starts_with(b"/v1/webhook-endpoints")
}

/// `bytes` with every key or signing secret in it (`sk_test_…`, `rk_test_…`, `whsec_…`) masked
/// as [`mask_secret`] does.
pub fn redact(bytes: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if let Some(prefix) = KEY_PREFIXES.iter().find(|p| rest.starts_with(p.as_bytes())) {
            let end =
                rest.iter().position(|b| !(b.is_ascii_alphanumeric() || b"_+/=-".contains(b))).unwrap_or(rest.len());
            if end > prefix.len() {
                push_masked(&mut out, &rest[..end]);
                i += end;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// An answer's body that was not whole at once (it streams): sent through, what goes out kept
/// in the entry, which is recorded when the body ends (before its last frame goes out) or is
/// dropped (a dropped connection, a client gone).
pub struct Streamed {
    /// A frame already taken from `inner` (or its error), to send first.
    first: Option<Result<Frame<Bytes>, axum::Error>>,
    inner: Body,
    record: Option<(Arc<Record>, Arc<Journal>)>,
}

impl Streamed {
    /// `inner` (after `first`, if any), sent through; `record` is recorded in `journal` when it
    /// ends.
    pub fn wrap(
        first: Option<Result<Frame<Bytes>, axum::Error>>,
        inner: Body,
        record: Arc<Record>,
        journal: Arc<Journal>,
    ) -> Body {
        let mut tee = Streamed { first, inner, record: Some((record, journal)) };
        if let Some(Ok(frame)) = &tee.first {
            tee.keep(frame);
        }
        if tee.is_end_stream() {
            tee.finish();
        }
        Body::new(tee)
    }

    fn keep(&self, frame: &Frame<Bytes>) {
        if let (Some(data), Some((record, _))) = (frame.data_ref(), &self.record) {
            record.data.lock().push_response_body(data);
        }
    }

    fn finish(&mut self) {
        if let Some((record, journal)) = self.record.take() {
            let cost = record.data.lock().seal();
            if let Some(cost) = cost {
                journal.push(record, cost);
            }
        }
    }
}

impl Drop for Streamed {
    fn drop(&mut self) {
        self.finish();
    }
}

impl http_body::Body for Streamed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Some(first) = this.first.take() {
            // Kept already (when wrapped).
            if first.is_err() || this.inner.is_end_stream() {
                this.finish();
            }
            return Poll::Ready(Some(first));
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                this.keep(frame);
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
        self.first.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.inner.size_hint();
        if let Some(Ok(frame)) = &self.first {
            let n = frame.data_ref().map_or(0, |d| d.len() as u64);
            let upper = hint.upper().map(|u| u + n);
            hint.set_lower(hint.lower() + n);
            if let Some(u) = upper {
                hint.set_upper(u);
            }
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use axum::http::header;

    use super::*;

    fn head(headers: &HeaderMap) -> Vec<u8> {
        let mut out = Vec::new();
        write_head(&mut out, headers, None);
        out
    }

    #[test]
    fn masks() {
        assert_eq!(mask_secret("sk_test_abcdefghijklmnopqrstuvwxa1b2"), "sk_test_…a1b2");
        assert_eq!(mask_secret("short"), "…");
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer rk_test_0123456789abcdefghijwxyz"));
        headers.insert(header::ETAG, HeaderValue::from_static("\"1\""));
        let buf = head(&headers);
        let lines = HeadLines(&buf);
        assert_eq!(lines.get("authorization"), Some("Bearer rk_test_…wxyz".as_bytes()));
        assert_eq!(lines.iter().count(), 2);
        assert_eq!(lines.get("etag"), Some(&b"\"1\""[..]));
        // Every credential header, with or without a scheme; a value that is not text keeps no tail.
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("sk_test_0123456789abcdefghijklmn"));
        headers.insert(header::COOKIE, HeaderValue::from_static("session=0123456789abcdefXYZW"));
        headers.insert(
            header::PROXY_AUTHORIZATION,
            HeaderValue::from_bytes(b"Basic \xff\xfe0123456789abcd\xff\xfe").unwrap(),
        );
        headers.insert(header::SET_COOKIE, HeaderValue::from_static("a"));
        headers.insert("idempotency-key", HeaderValue::from_static("k-1"));
        let buf = head(&headers);
        let lines = HeadLines(&buf);
        assert_eq!(lines.get("x-api-key"), Some("sk_test_…klmn".as_bytes()));
        assert_eq!(lines.get("cookie"), Some("…XYZW".as_bytes()));
        assert_eq!(lines.get("proxy-authorization"), Some("Basic …".as_bytes()));
        assert_eq!(lines.get("set-cookie"), Some("…".as_bytes()));
        assert_eq!(lines.get("idempotency-key"), Some(&b"k-1"[..]));
        let body = br#"{"secret":"whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY","x":1,"y":"whsec_"}"#;
        assert_eq!(redact(body), r#"{"secret":"whsec_…VldY","x":1,"y":"whsec_"}"#.as_bytes());
    }
}
