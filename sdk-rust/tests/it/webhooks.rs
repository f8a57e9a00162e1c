//! Webhook verification, and interoperation with the `standardwebhooks` reference crate.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use twh::Error;
use twh::types::Event;
use twh::webhooks::{self, DEFAULT_TOLERANCE, Secret, now_unix_seconds};

fn event_body() -> Vec<u8> {
    json!({
        "id": "evt_1", "type": "stock_movement.created", "created_at": "2025-01-01T00:00:00Z",
        "data": {"id": "mov_1", "quantity": 3}
    })
    .to_string()
    .into_bytes()
}

/// Verifies one entry of the emulator's webhook sink (`GET /_emulator/sink/{name}` →
/// `{data: [{received_at, headers, body}]}`) with the endpoint's secret: the helper of
/// `webhook_endpoints::verifies_what_the_emulator_sends` (an endpoint pointed at
/// `/_emulator/sink/<name>`, an event caused, the sink read, each entry passed here).
pub(crate) fn verify_emulator_delivery(entry: &Value, secret: &Secret) -> twh::Result<Event> {
    let headers: BTreeMap<String, String> = entry["headers"]
        .as_object()
        .map(|h| h.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
        .unwrap_or_default();
    let body = entry["body"].as_str().unwrap_or_default();
    webhooks::verify(body.as_bytes(), &headers, secret, DEFAULT_TOLERANCE)
}

#[test]
fn a_signed_delivery_verifies_and_parses_its_event() {
    let secret = Secret::generate();
    let body = event_body();
    let headers = webhooks::sign(&secret, "evt_1", now_unix_seconds(), &body);
    let event = webhooks::verify(&body, &headers.to_header_map(), &secret, DEFAULT_TOLERANCE).expect("verified");
    assert_eq!((event.id.as_str(), event.type_.as_str()), ("evt_1", "stock_movement.created"));
    // Any header source: pairs, with any case of names.
    let pairs: Vec<(String, String)> = headers.to_pairs().into_iter().map(|(k, v)| (k.to_uppercase(), v)).collect();
    webhooks::verify(&body, &pairs, &secret, DEFAULT_TOLERANCE).expect("verified from pairs");
}

#[test]
fn a_changed_body_a_wrong_secret_and_missing_headers_are_rejected() {
    let secret = Secret::generate();
    let body = event_body();
    let headers = webhooks::sign(&secret, "evt_1", now_unix_seconds(), &body).to_header_map();
    let mut changed = body.clone();
    changed[10] ^= 1;
    let e = webhooks::verify(&changed, &headers, &secret, DEFAULT_TOLERANCE).expect_err("changed body");
    assert!(matches!(e, Error::WebhookVerification(twh::error::WebhookError::NoMatchingSignature)), "{e:?}");
    let e = webhooks::verify(&body, &headers, &Secret::generate(), DEFAULT_TOLERANCE).expect_err("wrong secret");
    assert!(matches!(e, Error::WebhookVerification(twh::error::WebhookError::NoMatchingSignature)), "{e:?}");
    let mut missing = headers.clone();
    missing.remove("webhook-signature");
    let e = webhooks::verify(&body, &missing, &secret, DEFAULT_TOLERANCE).expect_err("no signature");
    assert!(
        matches!(e, Error::WebhookVerification(twh::error::WebhookError::MissingHeader("webhook-signature"))),
        "{e:?}"
    );
}

#[test]
fn timestamps_outside_the_tolerance_are_rejected_either_way() {
    let secret = Secret::generate();
    let body = event_body();
    let now = now_unix_seconds();
    let tolerance = Duration::from_secs(300);
    for (at, ok) in [(now - 301, false), (now + 301, false), (now - 299, true), (now + 299, true)] {
        let headers = webhooks::sign(&secret, "evt_1", at, &body).to_header_map();
        let result = webhooks::verify_at(&body, &headers, &secret, tolerance, now);
        assert_eq!(result.is_ok(), ok, "timestamp {} s from now", at - now);
        if let Err(e) = result {
            assert!(
                matches!(e, Error::WebhookVerification(twh::error::WebhookError::TimestampOutOfTolerance { .. })),
                "{e:?}"
            );
        }
    }
}

#[test]
fn any_of_several_signatures_is_enough() {
    let (old, new) = (Secret::generate(), Secret::generate());
    let body = event_body();
    let headers = webhooks::sign_with(&[&old, &new], "evt_1", now_unix_seconds(), &body).to_header_map();
    assert_eq!(headers["webhook-signature"].to_str().expect("ascii").split(' ').count(), 2);
    webhooks::verify(&body, &headers, &old, DEFAULT_TOLERANCE).expect("old secret");
    webhooks::verify(&body, &headers, &new, DEFAULT_TOLERANCE).expect("new secret");
    let e = webhooks::verify(&body, &headers, &Secret::generate(), DEFAULT_TOLERANCE).expect_err("neither");
    assert!(matches!(e, Error::WebhookVerification(_)));
}

#[test]
fn what_standardwebhooks_signs_verifies_here() {
    let secret = Secret::generate();
    let theirs = standardwebhooks::Webhook::new(&secret.expose()).expect("their secret parser");
    let body = event_body();
    let ts = now_unix_seconds();
    let signature = theirs.sign("evt_1", ts, &body).expect("signed");
    let headers =
        [("webhook-id", "evt_1".to_owned()), ("webhook-timestamp", ts.to_string()), ("webhook-signature", signature)];
    webhooks::verify(&body, &headers[..], &secret, DEFAULT_TOLERANCE).expect("verified here");
}

#[test]
fn what_this_signs_verifies_with_standardwebhooks() {
    let secret = Secret::generate();
    let theirs = standardwebhooks::Webhook::new(&secret.expose()).expect("their secret parser");
    let body = event_body();
    let headers = webhooks::sign(&secret, "evt_1", now_unix_seconds(), &body).to_header_map();
    theirs.verify(&body, &headers).expect("verified by the reference implementation");
    // And several signatures, as during a rotation.
    let rotated =
        webhooks::sign_with(&[&Secret::generate(), &secret], "evt_1", now_unix_seconds(), &body).to_header_map();
    theirs.verify(&body, &rotated).expect("the reference accepts any matching signature");
    // It rejects what this rejects.
    let mut changed = body.clone();
    changed[10] ^= 1;
    assert!(theirs.verify(&changed, &headers).is_err());
}

#[test]
fn the_emulator_delivery_helper_reads_sink_entries() {
    let secret = Secret::generate();
    let body = String::from_utf8(event_body()).expect("utf-8");
    let signed = webhooks::sign(&secret, "evt_1", now_unix_seconds(), body.as_bytes());
    let entry = json!({
        "received_at": "2025-01-01T00:00:00Z",
        "headers": {"content-type": "application/json", "webhook-id": signed.id, "webhook-timestamp": signed.timestamp, "webhook-signature": signed.signature},
        "body": body,
    });
    assert_eq!(verify_emulator_delivery(&entry, &secret).expect("verified").id, "evt_1");
    assert!(verify_emulator_delivery(&entry, &Secret::generate()).is_err());
}
