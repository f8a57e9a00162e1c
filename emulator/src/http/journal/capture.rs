//! What the journal keeps of a request while it runs: the request body as the handler reads it
//! and the response body as the server sends it, each through a body that hands the frames on
//! unchanged and keeps a reference-counted clone of their bytes (up to
//! [`BODY_BYTES_MAX`](super::BODY_BYTES_MAX)), and the redaction of secrets before anything is
//! stored.
//!
//! Nothing here copies a body on the way (a frame's `Bytes` clone is a reference count) or
//! parses one: rendering as JSON happens when the journal is read. The one copy is of the first
//! 64 KiB of a body larger than that, so that a kept prefix never holds a large buffer alive.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
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
    fn push(&mut self, data: &Bytes) {
        let kept: usize = self.chunks.iter().map(Bytes::len).sum();
        self.size_bytes += data.len() as u64;
        let room = BODY_BYTES_MAX.saturating_sub(kept);
        if data.len() <= room {
            if !data.is_empty() {
                self.chunks.push(data.clone());
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
                self.note.lock().body.push(data);
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
            pending.record(std::mem::take(&mut self.body));
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
                    this.body.push(data);
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

/// Headers whose values are credentials: the journal keeps a mask of them, never the value.
const SECRET_HEADERS: [HeaderName; 5] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
    header::SET_COOKIE,
    HeaderName::from_static("x-api-key"),
];

/// Key prefixes the emulator issues, shown in masks: `sk_test_…a1b2`.
const KEY_PREFIXES: [&str; 3] = ["sk_test_", "rk_test_", "whsec_"];

/// Shortest secret whose last 4 characters are shown (a shorter one shows none).
const SHOWN_TAIL_MIN_CHARS: usize = 16;

/// `secret` masked: its key prefix if it has one, `…`, and its last 4 characters when it is
/// long enough that they say little.
pub fn mask_secret(secret: &str) -> String {
    let prefix = KEY_PREFIXES.iter().find(|p| secret.starts_with(**p)).copied().unwrap_or("");
    let tail = if secret.len() >= SHOWN_TAIL_MIN_CHARS && secret.is_char_boundary(secret.len() - 4) {
        &secret[secret.len() - 4..]
    } else {
        ""
    };
    format!("{prefix}…{tail}")
}

/// A credential header's value masked: the scheme kept (`Bearer sk_test_…a1b2`).
fn mask_header(value: &HeaderValue) -> HeaderValue {
    let text = String::from_utf8_lossy(value.as_bytes());
    let masked = match text.split_once(' ') {
        Some((scheme, secret)) => format!("{scheme} {}", mask_secret(secret.trim())),
        None => mask_secret(&text),
    };
    // `from_bytes`: the `…` is UTF-8, which a header value may hold (as obs-text) but
    // `from_str` refuses.
    HeaderValue::from_bytes(masked.as_bytes()).unwrap_or(HeaderValue::from_static("redacted"))
}

/// Replaces every credential header's value with its mask, in place.
pub fn redact_headers(headers: &mut HeaderMap) {
    for name in &SECRET_HEADERS {
        if let header::Entry::Occupied(mut e) = headers.entry(name) {
            for v in e.iter_mut() {
                *v = mask_header(v);
            }
        }
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
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask_secret("sk_test_abcdefghijklmnopqrstuvwxa1b2"), "sk_test_…a1b2");
        assert_eq!(mask_secret("short"), "…");
        let v = mask_header(&HeaderValue::from_static("Bearer rk_test_0123456789abcdefghijwxyz"));
        assert_eq!(v, "Bearer rk_test_…wxyz");
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
        c.push(&Bytes::from(vec![b'a'; BODY_BYTES_MAX - 1]));
        c.push(&Bytes::from_static(b"bc"));
        assert_eq!((c.kept_bytes(), c.size_bytes, c.truncated), (BODY_BYTES_MAX, BODY_BYTES_MAX as u64 + 1, true));
    }
}
