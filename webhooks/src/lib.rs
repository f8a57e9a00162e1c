//! Standard Webhooks signatures, as TWH sends them.
//!
//! A delivery carries `webhook-id`, `webhook-timestamp` (unix seconds) and `webhook-signature`:
//! one or more space-separated `v1,<base64 HMAC-SHA256>` over `"{id}.{timestamp}.{body}"`, keyed
//! by the base64-decoded part of a `whsec_…` secret. Several signatures appear while a rotated
//! secret is still valid; a verifier accepts the delivery when any one matches.
//!
//! This crate has no HTTP and no server in it, so the SDK can depend on it alone.
#![warn(missing_docs)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The prefix of a secret's text form.
pub const SECRET_PREFIX: &str = "whsec_";
/// Bytes of key material in a generated secret (the API allows 24..=64).
pub const SECRET_LEN_BYTES: usize = 32;
/// Fewest bytes of key material accepted.
pub const SECRET_LEN_MIN_BYTES: usize = 24;
/// Most bytes of key material accepted.
pub const SECRET_LEN_MAX_BYTES: usize = 64;
/// Most signatures read from one `webhook-signature` header.
pub const SIGNATURE_COUNT_MAX: usize = 16;
/// Default tolerance between `webhook-timestamp` and now, in seconds.
pub const DEFAULT_TOLERANCE_SECONDS: u64 = 300;

/// Why a secret or a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The secret is not `whsec_` + base64 of 24..=64 bytes.
    #[error("invalid webhook secret: {0}")]
    InvalidSecret(&'static str),
    /// A required header is missing or malformed.
    #[error("missing or malformed header `{0}`")]
    MissingHeader(&'static str),
    /// The timestamp is too far from now.
    #[error("timestamp outside the tolerance of {tolerance_seconds} s ({age_seconds} s from now)")]
    TimestampOutOfTolerance {
        /// Signed distance from now: positive in the past, negative in the future.
        age_seconds: i64,
        /// The tolerance.
        tolerance_seconds: u64,
    },
    /// No signature matches.
    #[error("no matching signature")]
    NoMatchingSignature,
}

/// A signing secret. Its `Debug` form never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(whsec_…redacted)")
    }
}

impl Secret {
    /// A new random secret.
    pub fn generate() -> Secret {
        let mut key = vec![0u8; SECRET_LEN_BYTES];
        rand::rng().fill_bytes(&mut key);
        Secret(key)
    }

    /// Parses `whsec_<base64>` (the bare base64 is accepted too).
    pub fn parse(text: &str) -> Result<Secret, Error> {
        let b64 = text.trim().strip_prefix(SECRET_PREFIX).unwrap_or(text.trim());
        let key = STANDARD.decode(b64).map_err(|_| Error::InvalidSecret("not base64"))?;
        if !(SECRET_LEN_MIN_BYTES..=SECRET_LEN_MAX_BYTES).contains(&key.len()) {
            return Err(Error::InvalidSecret("key must be 24..=64 bytes"));
        }
        Ok(Secret(key))
    }

    /// The text form, `whsec_<base64>`. Treat it as a password.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    fn mac(&self, id: &str, timestamp: i64, payload: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length; `new_from_slice` cannot fail for HMAC.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        mac
    }

    /// The `v1,<base64>` signature of a message.
    pub fn sign(&self, id: &str, timestamp: i64, payload: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(id, timestamp, payload).finalize().into_bytes()))
    }
}

/// The `webhook-signature` header value for a message signed by each of `secrets`.
pub fn signature_header(secrets: &[&Secret], id: &str, timestamp: i64, payload: &[u8]) -> String {
    secrets.iter().map(|s| s.sign(id, timestamp, payload)).collect::<Vec<_>>().join(" ")
}

/// The three headers of a delivery.
#[derive(Debug, Clone, Copy)]
pub struct Headers<'a> {
    /// `webhook-id`
    pub id: &'a str,
    /// `webhook-timestamp`
    pub timestamp: &'a str,
    /// `webhook-signature`
    pub signature: &'a str,
}

/// Checks a delivery: the timestamp is within `tolerance_seconds` of `now_unix_seconds` (either
/// way) and some `v1` signature matches `secret` (compared in constant time).
pub fn verify(
    secret: &Secret,
    headers: Headers<'_>,
    payload: &[u8],
    now_unix_seconds: i64,
    tolerance_seconds: u64,
) -> Result<(), Error> {
    if headers.id.is_empty() {
        return Err(Error::MissingHeader("webhook-id"));
    }
    let timestamp: i64 = headers.timestamp.trim().parse().map_err(|_| Error::MissingHeader("webhook-timestamp"))?;
    let age_seconds = now_unix_seconds.saturating_sub(timestamp);
    if age_seconds.unsigned_abs() > tolerance_seconds {
        return Err(Error::TimestampOutOfTolerance { age_seconds, tolerance_seconds });
    }
    if headers.signature.trim().is_empty() {
        return Err(Error::MissingHeader("webhook-signature"));
    }
    let expected = secret.mac(headers.id, timestamp, payload);
    let matched = headers
        .signature
        .split_whitespace()
        .take(SIGNATURE_COUNT_MAX)
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .any(|sig| expected.clone().verify_slice(&sig).is_ok());
    if matched { Ok(()) } else { Err(Error::NoMatchingSignature) }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of the Standard Webhooks specification's reference tests.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1614265330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn matches_the_specification_example() {
        let secret = Secret::parse(SPEC_SECRET).expect("secret");
        assert_eq!(secret.sign(SPEC_ID, SPEC_TS, SPEC_BODY), SPEC_SIG);
        let h = Headers { id: SPEC_ID, timestamp: "1614265330", signature: SPEC_SIG };
        assert_eq!(verify(&secret, h, SPEC_BODY, SPEC_TS + 10, 300), Ok(()));
    }

    #[test]
    fn rejects_changed_body_wrong_secret_and_stale_or_future_timestamps() {
        let secret = Secret::generate();
        let other = Secret::generate();
        let sig = signature_header(&[&other, &secret], "msg_1", 1000, b"{}");
        let h = Headers { id: "msg_1", timestamp: "1000", signature: &sig };
        assert_eq!(verify(&secret, h, b"{}", 1000, 300), Ok(()), "any of several signatures");
        assert_eq!(verify(&secret, h, b"{ }", 1000, 300), Err(Error::NoMatchingSignature));
        assert_eq!(verify(&Secret::generate(), h, b"{}", 1000, 300), Err(Error::NoMatchingSignature));
        assert!(matches!(verify(&secret, h, b"{}", 1301, 300), Err(Error::TimestampOutOfTolerance { .. })));
        assert!(matches!(verify(&secret, h, b"{}", 699, 300), Err(Error::TimestampOutOfTolerance { .. })));
        let bad = Headers { id: "msg_1", timestamp: "soon", signature: &sig };
        assert_eq!(verify(&secret, bad, b"{}", 1000, 300), Err(Error::MissingHeader("webhook-timestamp")));
    }

    #[test]
    fn secrets_round_trip_and_are_redacted() {
        let s = Secret::generate();
        assert!(s.expose().starts_with("whsec_"));
        assert_eq!(Secret::parse(&s.expose()), Ok(s.clone()));
        assert!(!format!("{s:?}").contains(&s.expose()[6..]));
        assert!(Secret::parse("whsec_c2hvcnQ=").is_err(), "too short");
        assert!(Secret::parse("whsec_***").is_err());
    }
}
