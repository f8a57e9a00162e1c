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

/// Typed calls give their answer's metadata with `with_response()` (and still `.await` to the
/// bare value): a create's 201, the request id the client sent and the server echoed, the
/// ETag, the rate limit; a replayed create says so; reads, pages and 304s carry theirs; an
/// error carries the same.
#[tokio::test]
async fn typed_calls_carry_their_response() {
    let emulator = emu::start().await;
    let client = emulator.create_sandbox().await.expect("sandbox");
    let sent: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let log = sent.clone();
    let client = client
        .with_options(RequestOptions::new().on_request(move |a| log.lock().expect("lock").push(a.request_id.clone())))
        .expect("options");
    let last_sent = || sent.lock().expect("lock").last().cloned().flatten().expect("a request id was sent");

    let created = client
        .create_item(crate::common::new_item("META-1"))
        .idempotency_key("meta-1")
        .with_response()
        .await
        .expect("create");
    let meta = created.response();
    assert_eq!(meta.status, 201);
    assert_eq!(meta.request_id(), Some(last_sent().as_str()), "the server echoes the request id it was sent");
    assert_eq!(meta.header("etag"), Some(created.etag.as_str()));
    assert_eq!(meta.etag().as_ref(), Some(created.etag()));
    let rate = meta.rate_limit().expect("rate-limit headers");
    assert!(rate.limit > 0 && rate.remaining < rate.limit, "{rate:?}");
    assert!(!meta.idempotent_replayed());
    assert_eq!(created.sku, "META-1", "a Response dereferences to its value");

    let replayed = client
        .create_item(crate::common::new_item("META-1"))
        .idempotency_key("meta-1")
        .with_response()
        .await
        .expect("replay");
    assert!(replayed.response().idempotent_replayed());
    assert_eq!(replayed.response().status, 201);
    let (item, meta) = replayed.into_parts();
    assert_eq!(item.id, created.id);
    assert_eq!(meta.request_id(), Some(last_sent().as_str()));

    // Reads, pages and a conditional read's 304.
    let read = client.get_item(&created.id).with_response().await.expect("read");
    assert_eq!((read.response().status, read.version), (200, created.version));
    assert_eq!(read.response().request_id(), Some(last_sent().as_str()));
    let page = client.list_items(&twh::ItemQuery::default()).with_response().await.expect("page");
    assert_eq!(page.response().status, 200);
    assert!(page.response().rate_limit().is_some());
    assert_eq!(page.data.len(), 1);
    let current = client.get_item_if_changed(&created.id, &created.etag).with_response().await.expect("304");
    assert_eq!(current.response().status, 304);
    assert!(current.is_none());
    let csv = client.export_usage_csv(None).with_response().await.expect("csv");
    assert_eq!(csv.response().status, 200);
    assert!(csv.response().header("content-type").is_some_and(|t| t.starts_with("text/csv")));
    // Plain `.await` is unchanged: the bare value.
    let plain: twh::Versioned<twh::types::Item> = client.get_item(&created.id).await.expect("read");
    assert_eq!(plain.id, created.id);
    // A read-modify-write carries the answer to its successful write.
    let changed = client
        .update_item_with(&created.id, |_| twh::types::UpdateItem::builder().name("Renamed"))
        .with_response()
        .await
        .expect("update_item_with");
    assert_eq!((changed.response().status, changed.name.as_str()), (200, "Renamed"));
    assert_eq!(changed.response().etag().as_ref(), Some(changed.etag()));
    assert_eq!(changed.response().request_id(), Some(last_sent().as_str()));
    let changed: twh::Versioned<twh::types::Item> =
        client.update_item_with(&created.id, |_| twh::types::UpdateItem::builder().name("Again")).await.expect("plain");
    assert_eq!(changed.version, created.version + 2);

    // An error carries the same metadata.
    let e = client.get_item("itm_missing").with_response().await.expect_err("404");
    let meta = e.response().expect("an answer");
    assert_eq!(meta.status, 404);
    assert_eq!(meta.request_id(), Some(last_sent().as_str()));
    assert_eq!(meta.request_id(), e.request_id());
    assert!(meta.rate_limit().is_some());
    emulator.shutdown().await;
}

/// `with_api_key` keeps the settings of `with_options`: timeout, retries, headers and hooks.
#[tokio::test]
async fn with_api_key_keeps_the_options() {
    let emulator = emu::start().await;
    let client = emulator.create_sandbox().await.expect("sandbox");
    let seen: Arc<Mutex<Vec<Attempt>>> = Arc::default();
    let log = seen.clone();
    let quick = client
        .with_options(
            RequestOptions::new()
                .timeout(Duration::from_millis(300))
                .max_retries(0)
                .header("x-test-caller", "with-api-key")
                .on_request(move |a| log.lock().expect("lock").push(a.clone())),
        )
        .expect("options");
    let rolled = client.roll_api_key().await.expect("roll");
    let rekeyed = quick.with_api_key(rolled.secret_key.expose()).expect("rekeyed");

    // The hook still runs, and the header is still sent (the journal shows it).
    let got = rekeyed.get_sandbox().with_response().await.expect("new key works");
    assert_eq!(seen.lock().expect("lock").len(), 1, "the hook of with_options still runs");
    let request_id = got.response().request_id().expect("request id").to_owned();
    let query = twh::emulator::RequestsQuery { request_id: Some(request_id), ..Default::default() };
    let journal = emulator.requests(&query).await.expect("journal");
    let entry = journal.data.first().expect("journaled");
    assert_eq!(entry.request.headers.get("x-test-caller").map(String::as_str), Some("with-api-key"));
    // With the new key.
    assert!(
        entry
            .request
            .headers
            .get("authorization")
            .is_some_and(|a| a.ends_with(&rolled.secret_key.expose()[rolled.secret_key.expose().len() - 4..]))
    );

    // The timeout and retries too: one attempt, cut off at 300 ms.
    let mut fault = emu::fault(FaultAction::Delay, "GET", "/v1/sandbox", 1);
    fault.delay_ms = Some(2000);
    emulator.inject_fault(&fault).await.expect("fault");
    let started = Instant::now();
    let e = rekeyed.get_sandbox().await.expect_err("too slow");
    assert!(matches!(e, Error::Timeout { attempts: 1, .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
    emulator.shutdown().await;
}
