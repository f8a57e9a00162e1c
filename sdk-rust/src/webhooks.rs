//! Webhook verification (and signing, for tests), per Standard Webhooks.
//!
//! A delivery is a `POST` of the event's JSON with `webhook-id`, `webhook-timestamp` (unix
//! seconds of the sender's wall clock) and `webhook-signature` (one or more space-separated
//! `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, several while a rotated secret is
//! still valid). [`verify`] accepts the delivery when the timestamp is within the tolerance of
//! now (either way: [`DEFAULT_TOLERANCE`] is 5 minutes) and any one signature matches, compared in
//! constant time, and only then parses the event. Verify the raw body bytes as received, before
//! any JSON parsing or re-encoding.
//!
//! The cryptography is [`twh_webhooks`], the crate the emulator signs with; this module adds
//! header lookup, the event type and the SDK's error. Secrets ([`Secret`]) never show in `Debug`.
//!
//! ```
//! use std::time::Duration;
//! use twh::webhooks::{self, Secret};
//!
//! let secret = Secret::generate();
//! let body = br#"{"id":"evt_1","type":"item.created","created_at":"2025-01-01T00:00:00Z","data":{}}"#;
//! let headers = webhooks::sign(&secret, "evt_1", webhooks::now_unix_seconds(), body).to_header_map();
//! let event = webhooks::verify(body, &headers, &secret, webhooks::DEFAULT_TOLERANCE)?;
//! assert_eq!(event.type_, "item.created");
//! # Ok::<(), twh::Error>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use twh_webhooks::Secret;

use crate::error::WebhookError;
use crate::types::Event;
use crate::{Error, Result};

/// The default tolerance between `webhook-timestamp` and now.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(twh_webhooks::DEFAULT_TOLERANCE_SECONDS);
/// `webhook-id`
pub const ID_HEADER: &str = "webhook-id";
/// `webhook-timestamp`
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// `webhook-signature`
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// Where the three headers are read from: an `http::HeaderMap` (axum, hyper, reqwest), or a map
/// or list of name/value pairs (names compared without case).
pub trait WebhookHeaders {
    /// The value of a header, by its lower-case name.
    fn header(&self, name: &str) -> Option<&str>;
}

impl WebhookHeaders for http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok())
    }
}

impl<K: AsRef<str>, V: AsRef<str>, S> WebhookHeaders for HashMap<K, V, S> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name)).map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> WebhookHeaders for BTreeMap<K, V> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name)).map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> WebhookHeaders for [(K, V)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name)).map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> WebhookHeaders for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

/// Now, in unix seconds of the system clock.
pub fn now_unix_seconds() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
}

/// Verifies a delivery against the system clock and parses its event; see the
/// [module docs](self). Fails with [`Error::WebhookVerification`] (a missing header, a timestamp
/// outside `tolerance`, no matching signature) or, for a verified body that is not an event,
/// [`Error::UnexpectedResponse`].
pub fn verify<H: WebhookHeaders + ?Sized>(
    payload: &[u8],
    headers: &H,
    secret: &Secret,
    tolerance: Duration,
) -> Result<Event> {
    verify_at(payload, headers, secret, tolerance, now_unix_seconds())
}

/// [`verify`] at a given time (unix seconds), for tests.
pub fn verify_at<H: WebhookHeaders + ?Sized>(
    payload: &[u8],
    headers: &H,
    secret: &Secret,
    tolerance: Duration,
    now_unix_seconds: i64,
) -> Result<Event> {
    let get = |name: &'static str| headers.header(name).ok_or(WebhookError::MissingHeader(name));
    let parts = twh_webhooks::Headers {
        id: get(ID_HEADER)?,
        timestamp: get(TIMESTAMP_HEADER)?,
        signature: get(SIGNATURE_HEADER)?,
    };
    twh_webhooks::verify(secret, parts, payload, now_unix_seconds, tolerance.as_secs())?;
    serde_json::from_slice(payload).map_err(|e| Error::UnexpectedResponse {
        status: None,
        message: format!("the verified webhook body is not an event: {e}"),
        attempts: 0,
    })
}

/// The headers of a signed delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `webhook-id`
    pub id: String,
    /// `webhook-timestamp`
    pub timestamp: String,
    /// `webhook-signature`
    pub signature: String,
}

impl SignedHeaders {
    /// As an `http::HeaderMap`.
    pub fn to_header_map(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in
            [(ID_HEADER, &self.id), (TIMESTAMP_HEADER, &self.timestamp), (SIGNATURE_HEADER, &self.signature)]
        {
            if let Ok(value) = http::HeaderValue::from_str(value) {
                map.insert(name, value);
            }
        }
        map
    }

    /// As name/value pairs.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            (ID_HEADER, self.id.clone()),
            (TIMESTAMP_HEADER, self.timestamp.clone()),
            (SIGNATURE_HEADER, self.signature.clone()),
        ]
    }
}

/// Signs a delivery as TWH does (for tests of your webhook handler).
pub fn sign(secret: &Secret, id: &str, timestamp_unix_seconds: i64, payload: &[u8]) -> SignedHeaders {
    sign_with(&[secret], id, timestamp_unix_seconds, payload)
}

/// Signs a delivery with each of several secrets, as during a secret rotation.
pub fn sign_with(secrets: &[&Secret], id: &str, timestamp_unix_seconds: i64, payload: &[u8]) -> SignedHeaders {
    SignedHeaders {
        id: id.to_owned(),
        timestamp: timestamp_unix_seconds.to_string(),
        signature: twh_webhooks::signature_header(secrets, id, timestamp_unix_seconds, payload),
    }
}
