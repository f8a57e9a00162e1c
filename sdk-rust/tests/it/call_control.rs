//! Per-call control (SDK.md "Per-call control"): `with_options`, response metadata on answers
//! and errors, and the hooks around each attempt.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Map, Value, json};
use twh::dispatch::call;
use twh::types::FaultAction;
use twh::{Attempt, Error, RequestOptions};

use crate::common::emu;

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("an object")
}

fn item_body(sku: &str) -> Option<Bytes> {
    Some(Bytes::from(serde_json::to_vec(&json!({"sku": sku, "name": "Mug"})).expect("json")))
}

#[tokio::test]
async fn with_options_times_out_one_client_and_leaves_the_original_alone() {
    let emulator = emu::start().await;
    let client = emulator.create_sandbox().await.expect("sandbox");
    let quick =
        client.with_options(RequestOptions::new().timeout(Duration::from_millis(300)).max_retries(0)).expect("options");
    let mut fault = emu::fault(FaultAction::Delay, "GET", "/v1/sandbox", 1);
    fault.delay_ms = Some(2000);
    emulator.inject_fault(&fault).await.expect("fault");
    let started = Instant::now();
    let e = quick.get_sandbox().await.expect_err("too slow");
    let took = started.elapsed();
    assert!(matches!(e, Error::Timeout { attempts: 1, .. }), "{e:?}");
    assert!(took >= Duration::from_millis(250) && took < Duration::from_millis(1500), "{took:?}");

    // The original keeps its own (30 s) timeout: it waits the delay out.
    emulator.inject_fault(&fault).await.expect("fault");
    client.get_sandbox().await.expect("the original waits");

    // Limits are checked when the options are applied.
    assert!(client.with_options(RequestOptions::new().max_retries(11)).is_err());
    assert!(client.with_options(RequestOptions::new().timeout(Duration::ZERO)).is_err());
    assert!(client.with_options(RequestOptions::new().header("bad name", "v")).is_err());
    emulator.shutdown().await;
}

#[tokio::test]
async fn answers_and_errors_carry_their_response() {
    let emulator = emu::start().await;
    let client = emulator.create_sandbox().await.expect("sandbox");
    let created = call(&client, "create_item", &args(json!({"idempotency_key": "k-1"})), item_body("MUG-1"))
        .await
        .expect("create");
    let meta = created.response();
    assert_eq!(meta.status, 201);
    assert!(meta.request_id().is_some_and(|id| id.starts_with("req_")));
    assert!(meta.header("etag").is_some());
    let rate = meta.rate_limit().expect("rate-limit headers");
    assert!(rate.limit > 0 && rate.remaining < rate.limit, "{rate:?}");
    assert!(!meta.idempotent_replayed());
    let again = call(&client, "create_item", &args(json!({"idempotency_key": "k-1"})), item_body("MUG-1"))
        .await
        .expect("replay");
    assert!(again.response().idempotent_replayed());

    let e = call(&client, "get_item", &args(json!({"id": "itm_missing"})), None).await.expect_err("404");
    let meta = e.response().expect("an answer");
    assert_eq!(meta.status, 404);
    assert_eq!(meta.request_id(), e.request_id());
    assert!(meta.rate_limit().is_some());
    let details = twh::dispatch::error_details(&e);
    assert_eq!(details["message"], e.message(), "the message is the problem's detail");
    assert!(details["headers"].as_str().is_some_and(|h| h.contains("x-request-id: req_")), "{details}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn hooks_see_every_attempt_with_one_key() {
    let emulator = emu::start().await;
    let client = emulator.create_sandbox().await.expect("sandbox");
    let seen: Arc<Mutex<Vec<(&'static str, Attempt)>>> = Arc::default();
    let (a, b) = (seen.clone(), seen.clone());
    let watched = client
        .with_options(
            RequestOptions::new()
                .on_request(move |x| a.lock().expect("lock").push(("request", x.clone())))
                .on_response(move |x| b.lock().expect("lock").push(("response", x.clone()))),
        )
        .expect("options");
    let mut fault = emu::fault(FaultAction::ErrorBeforeCommit, "POST", "/v1/items", 2);
    fault.status = Some(503);
    emulator.inject_fault(&fault).await.expect("fault");
    call(&watched, "create_item", &args(json!({})), item_body("MUG-2")).await.expect("retried to success");
    let seen = seen.lock().expect("lock").clone();
    let requests: Vec<_> = seen.iter().filter(|(k, _)| *k == "request").map(|(_, a)| a).collect();
    let responses: Vec<_> = seen.iter().filter(|(k, _)| *k == "response").map(|(_, a)| a).collect();
    assert_eq!(requests.iter().map(|a| a.attempt).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(responses.iter().map(|a| a.status).collect::<Vec<_>>(), [Some(503), Some(503), Some(201)]);
    let keys: std::collections::HashSet<_> = requests.iter().map(|a| a.idempotency_key.clone()).collect();
    assert_eq!(keys.len(), 1);
    assert!(requests[0].idempotency_key.is_some());
    assert!(responses.iter().all(|a| a.elapsed.is_some() && a.method == "POST"));
    // The original client has no hooks.
    call(&client, "get_sandbox", &args(json!({})), None).await.expect("plain");
    emulator.shutdown().await;
}

/// A PATCH or DELETE whose first attempt committed before a 500: the retry carries the same
/// `Idempotency-Key`, gets the stored answer, and the version rose by exactly one.
#[tokio::test]
async fn patch_and_delete_retried_after_commit_change_once() {
    let emulator = emu::start().await;
    let client = emulator.create_sandbox().await.expect("sandbox");
    let item = client.create_item(crate::common::new_item("ONCE-1")).await.expect("item");
    let etag = item.etag.clone();

    emulator.inject_fault(&emu::fault(FaultAction::ErrorAfterCommit, "PATCH", "/v1/items/", 1)).await.expect("fault");
    let renamed = client
        .update_item(&item.id, &etag, twh::types::UpdateItem::builder().low_stock_threshold(5i64))
        .idempotency_key("rename-once-1")
        .await
        .expect("retried to the stored answer");
    assert_eq!(renamed.version, item.version + 1);
    assert_eq!(renamed.low_stock_threshold, Some(5));

    // `If-Match: *` would apply a retried change twice without the key.
    emulator.inject_fault(&emu::fault(FaultAction::ErrorAfterCommit, "PATCH", "/v1/items/", 1)).await.expect("fault");
    let star = client
        .update_item(&item.id, &twh::ETag::any(), twh::types::UpdateItem::builder().low_stock_threshold(7i64))
        .await
        .expect("retried");
    assert_eq!(star.version, item.version + 2, "one change, not two");

    emulator.inject_fault(&emu::fault(FaultAction::ErrorAfterCommit, "DELETE", "/v1/items/", 1)).await.expect("fault");
    let archived = client.archive_item(&item.id, &star.etag).await.expect("retried, not 412");
    assert_eq!(archived.version, item.version + 3);
    assert_eq!(client.get_item(&item.id).await.expect("read").version, item.version + 3);
    emulator.shutdown().await;
}

/// Clearing a field: `Patch::Clear` (or `None`) sends `null`; a field left alone is not sent.
#[tokio::test]
async fn a_patch_clears_keeps_or_sets_a_clearable_field() {
    let emulator = emu::start().await;
    let client = emulator.create_sandbox().await.expect("sandbox");
    let item = client.create_item(crate::common::new_item("CLEAR-1").low_stock_threshold(4)).await.expect("item");
    let renamed = client
        .update_item(&item.id, &item.etag, twh::types::UpdateItem::builder().name("Renamed"))
        .await
        .expect("kept");
    assert_eq!((renamed.name.as_str(), renamed.low_stock_threshold), ("Renamed", Some(4)));
    let cleared = client
        .update_item(&item.id, &renamed.etag, twh::types::UpdateItem::builder().low_stock_threshold(twh::Patch::Clear))
        .await
        .expect("cleared");
    assert_eq!(cleared.low_stock_threshold, None);
    let set = client
        .update_item(&item.id, &cleared.etag, twh::types::UpdateItem::builder().low_stock_threshold(9))
        .await
        .expect("set");
    assert_eq!(set.low_stock_threshold, Some(9));
    let by_none = client
        .update_item(&item.id, &set.etag, twh::types::UpdateItem::builder().low_stock_threshold(None))
        .await
        .expect("cleared");
    assert_eq!(by_none.low_stock_threshold, None);
    emulator.shutdown().await;
}
