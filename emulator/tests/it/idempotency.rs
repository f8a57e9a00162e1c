//! API.md §2: Idempotency-Key, and the faults of §5 that prove retries are exactly-once.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use twh_emulator::http::faults::{FaultAction, FaultSpec};

use crate::common::*;

async fn stock(env: &Env) -> (String, String) {
    (env.api.new_item().await, env.api.new_location().await)
}

fn receipt(item: &str, loc: &str, quantity: i64) -> Value {
    json!({"type": "receipt", "item_id": item, "location_id": loc, "quantity": quantity})
}

fn fault(action: FaultAction, path_prefix: &str) -> FaultSpec {
    FaultSpec {
        method: Some("POST".to_owned()),
        path_prefix: Some(path_prefix.to_owned()),
        sandbox_id: None,
        action,
        status: None,
        delay_ms: None,
        times: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_writes_require_a_key() {
    let env = Env::new().await;
    let a = &env.api;
    let (item, loc) = stock(&env).await;
    let mov = a.receipt(&item, &loc, 5).await;
    a.post("/v1/stock-movements", &receipt(&item, &loc, 1)).await.expect(400, "idempotency_key_required");
    a.post("/v1/stock-movements/batch", &json!({"movements": [receipt(&item, &loc, 1)]}))
        .await
        .expect(400, "idempotency_key_required");
    a.post(&format!("/v1/stock-movements/{}/reverse", id(&mov)), &json!({}))
        .await
        .expect(400, "idempotency_key_required");
    assert_eq!(a.movement_count().await, 1);
    // Other POSTs accept a missing key.
    a.post("/v1/items", &json!({"sku": "NOKEY", "name": "x"})).await.ok(201);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_keys_are_400_invalid_idempotency_key() {
    let env = Env::new().await;
    let a = &env.api;
    let (item, loc) = stock(&env).await;
    let body = receipt(&item, &loc, 1);
    let send_raw = |k: reqwest::header::HeaderValue| {
        let rb = a.req_json(Method::POST, "/v1/stock-movements", &body).header("idempotency-key", k);
        a.send(rb)
    };
    use reqwest::header::HeaderValue;
    for bad in [
        HeaderValue::from_static(""),
        HeaderValue::from_static("   "),
        HeaderValue::from_str(&"k".repeat(256)).unwrap(),
        HeaderValue::from_static("tab\there"),
        HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        HeaderValue::from_static("\"\""),
        HeaderValue::from_static("\"bad\"inner\""),
        HeaderValue::from_static("\"bad\\escape\""),
    ] {
        let shown = format!("{bad:?}");
        let r = send_raw(bad).await;
        assert_eq!(r.status, 400, "{shown}: {}", r.text());
        r.expect(400, "invalid_idempotency_key");
    }
    // Also on other POSTs, where the key is optional but must be well-formed when sent.
    let r = a
        .send(a.req_json(Method::POST, "/v1/items", &json!({"sku": "K", "name": "K"})).header("idempotency-key", ""))
        .await;
    r.expect(400, "invalid_idempotency_key");
    assert!(a.all("/v1/items").await.len() == 1);
    // Boundaries: 1 and 255 printable characters are fine, spaces inside too.
    send_raw(HeaderValue::from_static("x")).await.ok(201);
    send_raw(HeaderValue::from_str(&"k".repeat(255)).unwrap()).await.ok(201);
    send_raw(HeaderValue::from_static("with inner spaces ~!@#")).await.ok(201);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quoted_and_bare_forms_are_the_same_key() {
    let env = Env::new().await;
    let a = &env.api;
    let (item, loc) = stock(&env).await;
    let body = receipt(&item, &loc, 4);
    let first = a.post_key("/v1/stock-movements", "\"abc\"", &body).await;
    first.ok(201);
    assert!(!first.replayed());
    let second = a.post_key("/v1/stock-movements", "abc", &body).await;
    second.ok(201);
    assert!(second.replayed(), "bare abc replays quoted \"abc\"");
    assert_eq!(first.body, second.body);
    // And the other way round, with an escape: "a\"b" is the key a"b.
    let third = a.post_key("/v1/stock-movements", "a\"b", &receipt(&item, &loc, 1)).await;
    third.ok(201);
    let fourth = a.post_key("/v1/stock-movements", "\"a\\\"b\"", &receipt(&item, &loc, 1)).await;
    assert!(fourth.replayed());
    assert_eq!(third.body, fourth.body);
    assert_eq!(a.movement_count().await, 2);
    assert_eq!(a.level(&item, &loc).await["quantity"], 5);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_is_byte_identical_with_headers() {
    let env = Env::new().await;
    let a = &env.api;
    let (item, loc) = stock(&env).await;
    let k = key();
    let body = json!({"type": "receipt", "item_id": item, "location_id": loc, "quantity": 7, "reference": "PO-1",
                      "metadata": {"b": 1, "a": [1, 2]}});
    let first = a.post_key("/v1/stock-movements", &k, &body).await;
    first.ok(201);
    assert!(!first.replayed());
    let events = a.event_count().await;
    // The same request with the body's keys in another order and other whitespace is the same request.
    let reordered = r#"{ "metadata": {"a": [1, 2], "b": 1}, "reference": "PO-1", "quantity": 7,
                        "location_id": "LOC", "item_id": "ITEM", "type": "receipt" }"#
        .replace("LOC", &loc)
        .replace("ITEM", &item);
    for attempt in 0..3 {
        let rb = a
            .req(Method::POST, "/v1/stock-movements")
            .header("content-type", "application/json")
            .header("idempotency-key", &k)
            .header("x-request-id", format!("retry-{attempt}"))
            .body(reordered.clone());
        let again = a.send(rb).await;
        assert_eq!(again.status, 201);
        assert!(again.replayed(), "Idempotent-Replayed: true");
        assert_eq!(again.body, first.body, "byte-identical body");
        assert_eq!(again.header("etag"), first.header("etag"));
        assert_eq!(again.header("location"), first.header("location"));
        assert_eq!(again.header("content-type"), first.header("content-type"));
        assert_eq!(again.header("x-request-id"), Some(format!("retry-{attempt}").as_str()));
    }
    assert_eq!(a.movement_count().await, 1, "executed once");
    assert_eq!(a.event_count().await, events, "no events on replay");
    assert_eq!(a.level(&item, &loc).await["quantity"], 7);
    // A different body, path or method with the same key is 422.
    a.post_key("/v1/stock-movements", &k, &receipt(&item, &loc, 8)).await.expect(422, "idempotency_key_reused");
    a.post_key("/v1/stock-movements/batch", &k, &json!({"movements": [body.clone()]}))
        .await
        .expect(422, "idempotency_key_reused");
    a.post_key("/v1/items", &k, &json!({"sku": "REUSE", "name": "x"})).await.expect(422, "idempotency_key_reused");
    assert_eq!(a.movement_count().await, 1);
    assert_eq!(a.all("/v1/items").await.len(), 1, "the reused key created no item");
    // Keys are per tenant: the same key in another sandbox is a fresh request.
    let (_, b) = env.other_tenant();
    let (bi, bl) = (b.new_item().await, b.new_location().await);
    let other = b.post_key("/v1/stock-movements", &k, &receipt(&bi, &bl, 1)).await;
    other.ok(201);
    assert!(!other.replayed());
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_keys_make_other_posts_idempotent() {
    let env = Env::new().await;
    let a = &env.api;
    let k = key();
    let body = json!({"sku": "IDEM", "name": "Idem"});
    let first = a.post_key("/v1/items", &k, &body).await;
    first.ok(201);
    let again = a.post_key("/v1/items", &k, &body).await;
    assert_eq!(again.status, 201, "{}", again.text());
    assert!(again.replayed());
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("etag"), Some("\"1\""));
    assert_eq!(again.header("location"), first.header("location"));
    // Without a key, the second create is a conflict, not a replay.
    a.post("/v1/items", &body).await.expect(409, "sku_taken");
    // A 4xx answered under a key is replayed too.
    let k2 = key();
    let conflict = a.post_key("/v1/items", &k2, &body).await;
    conflict.expect(409, "sku_taken");
    let replay = a.post_key("/v1/items", &k2, &body).await;
    assert!(replay.replayed());
    assert_eq!(replay.body, conflict.body);
    // Sandboxes too (POST /v1/sandboxes, no tenant).
    let anon = env.anonymous();
    let k3 = key();
    let s1 = anon.post_key("/v1/sandboxes", &k3, &json!({"name": "idem"})).await;
    s1.ok(201);
    let s2 = anon.post_key("/v1/sandboxes", &k3, &json!({"name": "idem"})).await;
    assert!(s2.replayed());
    assert_eq!(s1.body, s2.body);
    assert_eq!(env.emu.state().world.tenants().len(), 2, "one sandbox created, not two");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_409_insufficient_stock_is_replayed_not_retried() {
    let env = Env::new().await;
    let a = &env.api;
    let (item, loc) = stock(&env).await;
    a.receipt(&item, &loc, 2).await;
    let events = a.event_count().await;
    let k = key();
    let ship = json!({"type": "shipment", "item_id": item, "location_id": loc, "quantity": 5});
    let first = a.post_key("/v1/stock-movements", &k, &ship).await;
    first.expect(409, "insufficient_stock");
    assert!(!first.replayed());
    assert_eq!(a.movement_count().await, 1);
    assert_eq!(a.event_count().await, events);
    // Now there is enough stock, but the key's answer stands.
    a.receipt(&item, &loc, 10).await;
    let again = a.post_key("/v1/stock-movements", &k, &ship).await;
    assert_eq!(again.status, 409);
    assert!(again.replayed());
    assert_eq!(again.body, first.body, "byte-identical problem");
    assert_eq!(again.header("content-type"), Some("application/problem+json"));
    assert_eq!(a.movement_count().await, 2);
    assert_eq!(a.level(&item, &loc).await["quantity"], 12);
    // Same for a state-decided item_archived.
    a.delete(&format!("/v1/items/{item}"), Some("*")).await.ok(200);
    let k2 = key();
    let archived = a.post_key("/v1/stock-movements", &k2, &receipt(&item, &loc, 1)).await;
    archived.expect(409, "item_archived");
    let archived_again = a.post_key("/v1/stock-movements", &k2, &receipt(&item, &loc, 1)).await;
    assert!(archived_again.replayed());
    assert_eq!(archived_again.body, archived.body);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_expire_after_24_hours_of_emulator_time() {
    let env = Env::new().await;
    let a = &env.api;
    let (item, loc) = stock(&env).await;
    let k = key();
    let first = a.post_key("/v1/stock-movements", &k, &receipt(&item, &loc, 1)).await;
    first.ok(201);
    env.emu.advance_clock(Duration::from_secs(23 * 3600)).await;
    let replay = a.post_key("/v1/stock-movements", &k, &receipt(&item, &loc, 1)).await;
    assert!(replay.replayed(), "still stored after 23 h");
    env.emu.advance_clock(Duration::from_secs(2 * 3600)).await;
    let fresh = a.post_key("/v1/stock-movements", &k, &receipt(&item, &loc, 1)).await;
    fresh.ok(201);
    assert!(!fresh.replayed(), "forgotten after 24 h");
    assert_ne!(id(&fresh.json()), id(&first.json()));
    assert_eq!(a.movement_count().await, 2);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_in_flight_is_409_in_use_with_retry_after() {
    let env = Env::new().await;
    let a = &env.api;
    let (item, loc) = stock(&env).await;
    env.emu
        .inject_fault(FaultSpec {
            method: Some("POST".to_owned()),
            path_prefix: Some("/v1/stock-movements".to_owned()),
            sandbox_id: None,
            action: FaultAction::Delay,
            status: None,
            // Long enough that the duplicate below surely lands while the first still runs.
            delay_ms: Some(2000),
            times: 1,
        })
        .expect("fault");
    let k = key();
    let body = receipt(&item, &loc, 3);
    let slow = {
        let (a, k, body) = (a.clone(), k.clone(), body.clone());
        tokio::spawn(async move { a.post_key("/v1/stock-movements", &k, &body).await })
    };
    // Wait (deterministically) until the delayed request holds its reservation.
    let tenant = env.emu.state().world.tenant(&env.sandbox.id).expect("tenant");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tenant.state.lock().ledger.idempotency.is_empty() {
        assert!(std::time::Instant::now() < deadline, "the delayed request never reserved its key");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let concurrent = a.post_key("/v1/stock-movements", &k, &body).await;
    concurrent.expect(409, "idempotency_key_in_use");
    assert_eq!(concurrent.header("retry-after"), Some("1"));
    // A different body under the in-flight key is still a mismatch.
    a.post_key("/v1/stock-movements", &k, &receipt(&item, &loc, 4)).await.expect(422, "idempotency_key_reused");
    let first = slow.await.expect("join");
    first.ok(201);
    assert!(!first.replayed());
    // Once it finished, the retry is a replay.
    let retry = a.post_key("/v1/stock-movements", &k, &body).await;
    assert!(retry.replayed());
    assert_eq!(retry.body, first.body);
    assert_eq!(a.movement_count().await, 1);
    env.check_invariants();
    env.shutdown().await;
}

async fn hammer_one_key(env: &Env, with_delay: bool) {
    let a = &env.api;
    let (item, loc) = stock(env).await;
    if with_delay {
        let mut spec = fault(FaultAction::Delay, "/v1/stock-movements");
        spec.delay_ms = Some(200);
        env.emu.inject_fault(spec).expect("fault");
    }
    let k = key();
    let body = json!({"type": "receipt", "item_id": item, "location_id": loc, "quantity": 1});
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(64));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (a, k, body, barrier) = (a.clone(), k.clone(), body.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                a.post_key("/v1/stock-movements", &k, &body).await
            })
        })
        .collect();
    let mut created = Vec::new();
    let mut replays = Vec::new();
    let mut in_use = 0;
    for t in tasks {
        let r = t.await.expect("join");
        match (r.status, r.replayed()) {
            (201, false) => created.push(r),
            (201, true) => replays.push(r),
            (409, false) => {
                r.expect(409, "idempotency_key_in_use");
                assert_eq!(r.header("retry-after"), Some("1"));
                in_use += 1;
            }
            (s, rep) => panic!("unexpected answer {s} (replayed {rep}): {}", r.text()),
        }
    }
    assert_eq!(created.len(), 1, "exactly one request executed ({} replays, {in_use} in use)", replays.len());
    for r in &replays {
        assert_eq!(r.body, created[0].body);
    }
    assert_eq!(created.len() + replays.len() + in_use, 64);
    let ledger = a.all("/v1/stock-movements").await;
    assert_eq!(ledger.len(), 1, "one ledger entry");
    assert_eq!(ledger[0], created[0].json());
    assert_eq!(a.level(&item, &loc).await["quantity"], 1);
    assert_eq!(a.all("/v1/events?type=stock_movement.created").await.len(), 1);
    env.check_invariants();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_requests_one_key_one_movement() {
    let env = Env::new().await;
    hammer_one_key(&env, false).await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_requests_one_key_one_movement_with_a_slow_first() {
    let env = Env::new().await;
    hammer_one_key(&env, true).await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_after_commit_then_retry_gets_the_original() {
    let env = Env::new().await;
    let a = &env.api;
    let (item, loc) = stock(&env).await;
    env.emu.inject_fault(fault(FaultAction::ErrorAfterCommit, "/v1/stock-movements")).expect("fault");
    let k = key();
    let body = receipt(&item, &loc, 9);
    let failed = a.post_key("/v1/stock-movements", &k, &body).await;
    failed.expect(500, "injected_fault");
    // It did commit.
    let ledger = a.all("/v1/stock-movements").await;
    assert_eq!(ledger.len(), 1);
    let retry = a.post_key("/v1/stock-movements", &k, &body).await;
    assert_eq!(retry.status, 201, "{}", retry.text());
    assert!(retry.replayed());
    assert_eq!(id(&retry.json()), id(&ledger[0]));
    assert_eq!(retry.json(), ledger[0]);
    assert_eq!(retry.header("etag"), Some("\"1\""));
    assert_eq!(a.movement_count().await, 1);
    assert_eq!(a.level(&item, &loc).await["quantity"], 9);
    // A custom status is honoured.
    let mut spec = fault(FaultAction::ErrorAfterCommit, "/v1/stock-movements/batch");
    spec.status = Some(503);
    env.emu.inject_fault(spec).expect("fault");
    let kb = key();
    let batch = json!({"movements": [receipt(&item, &loc, 1), receipt(&item, &loc, 2)]});
    a.post_key("/v1/stock-movements/batch", &kb, &batch).await.expect(503, "injected_fault");
    let retry = a.post_key("/v1/stock-movements/batch", &kb, &batch).await;
    assert_eq!(retry.status, 201);
    assert!(retry.replayed());
    assert_eq!(retry.json()["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(a.movement_count().await, 3);
    env.check_invariants();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_after_commit_then_retry_gets_the_original() {
    let env = Env::new().await;
    let a = &env.api;
    let (item, loc) = stock(&env).await;
    let original = a.receipt(&item, &loc, 10).await;
    env.emu
        .inject_fault(fault(FaultAction::DropConnectionAfterCommit, &format!("/v1/stock-movements/{}", id(&original))))
        .expect("fault");
    let k = key();
    let path = format!("/v1/stock-movements/{}/reverse", id(&original));
    let body = json!({"reason": "oops"});
    let dropped = a.try_send(a.req_json(Method::POST, &path, &body).header("idempotency-key", &k)).await;
    assert!(dropped.is_err(), "the client sees a connection error, got {:?}", dropped.map(|r| r.status));
    assert_eq!(a.movement_count().await, 2, "the reversal committed");
    let retry = a.post_key(&path, &k, &body).await;
    assert_eq!(retry.status, 201, "{}", retry.text());
    assert!(retry.replayed());
    let reversal = retry.json();
    assert_eq!(reversal["reverses"], original["id"]);
    assert_eq!(a.all("/v1/stock-movements").await[1], reversal);
    assert_eq!(a.level(&item, &loc).await["quantity"], 0);
    // And for a plain movement.
    env.emu.inject_fault(fault(FaultAction::DropConnectionAfterCommit, "/v1/stock-movements")).expect("fault");
    let k2 = key();
    let dropped = a
        .try_send(
            a.req_json(Method::POST, "/v1/stock-movements", &receipt(&item, &loc, 3)).header("idempotency-key", &k2),
        )
        .await;
    assert!(dropped.is_err());
    let retry = a.post_key("/v1/stock-movements", &k2, &receipt(&item, &loc, 3)).await;
    assert!(retry.replayed());
    assert_eq!(retry.json()["sequence"], 3);
    assert_eq!(a.movement_count().await, 3);
    env.check_invariants();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_before_commit_stores_nothing_and_the_retry_executes() {
    let env = Env::new().await;
    let a = &env.api;
    let (item, loc) = stock(&env).await;
    env.emu.inject_fault(fault(FaultAction::ErrorBeforeCommit, "/v1/stock-movements")).expect("fault");
    let events = a.event_count().await;
    let k = key();
    let body = receipt(&item, &loc, 6);
    a.post_key("/v1/stock-movements", &k, &body).await.expect(500, "injected_fault");
    assert_eq!(a.movement_count().await, 0);
    assert_eq!(a.event_count().await, events);
    assert_eq!(a.level(&item, &loc).await["version"], 0);
    let retry = a.post_key("/v1/stock-movements", &k, &body).await;
    retry.ok(201);
    assert!(!retry.replayed(), "the retry executed");
    assert_eq!(a.movement_count().await, 1);
    let again = a.post_key("/v1/stock-movements", &k, &body).await;
    assert!(again.replayed());
    assert_eq!(again.body, retry.body);
    assert_eq!(a.level(&item, &loc).await["quantity"], 6);
    // The fault only fired once, and faults never touch the control plane.
    assert!(env.emu.state().faults.list().is_empty());
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_over_http_control_plane() {
    let env = Env::new().await;
    let a = &env.api;
    let (item, loc) = stock(&env).await;
    let ctl = env.anonymous();
    let f = ctl
        .post("/_emulator/faults", &json!({"action": "error_before_commit", "path_prefix": "/v1/stock-movements", "method": "post", "status": 502, "times": 2}))
        .await
        .ok(201);
    assert_eq!(f["remaining"], 2);
    assert_eq!(ctl.get("/_emulator/faults").await.ok(200)["data"].as_array().map(Vec::len), Some(1));
    // GETs do not match a POST fault.
    a.get("/v1/stock-movements").await.ok(200);
    a.movement(&receipt(&item, &loc, 1)).await.expect(502, "injected_fault");
    ctl.send(ctl.req(Method::DELETE, "/_emulator/faults")).await.ok(204);
    a.movement(&receipt(&item, &loc, 1)).await.ok(201);
    ctl.post("/_emulator/faults", &json!({"action": "delay", "times": 1})).await.expect(422, "validation_failed");
    ctl.post("/_emulator/faults", &json!({"action": "explode", "times": 1})).await.expect(422, "validation_failed");
    ctl.post("/_emulator/faults", &json!({"action": "error_after_commit", "times": 0}))
        .await
        .expect(422, "validation_failed");
    env.shutdown().await;
}

fn fault_on(method: &str, action: FaultAction, path_prefix: &str) -> FaultSpec {
    FaultSpec { method: Some(method.to_owned()), ..fault(action, path_prefix) }
}

/// API.md §2: a PATCH or DELETE whose first attempt committed, retried with its key, gets the
/// stored answer: never a spurious 412 (its If-Match is stale by then), never a second change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_and_delete_retried_after_commit_replay_the_first_answer() {
    let env = Env::new().await;
    let a = &env.api;
    let item = a.new_item().await;
    let path = format!("/v1/items/{item}");
    let send = |method: Method, if_match: &str, k: &str, body: Option<Value>| {
        let rb = match body {
            Some(b) => a.req_json(method, &path, &b),
            None => a.req(method, &path),
        };
        a.send(rb.header("if-match", if_match).header("idempotency-key", k))
    };

    // PATCH with If-Match "1": the fault answers 500 after the change committed.
    env.emu.inject_fault(fault_on("PATCH", FaultAction::ErrorAfterCommit, "/v1/items/")).expect("fault");
    let k = key();
    let body = json!({"name": "Renamed"});
    send(Method::PATCH, "\"1\"", &k, Some(body.clone())).await.expect(500, "injected_fault");
    assert_eq!(a.get(&path).await.json()["version"], 2, "it committed");
    let retry = send(Method::PATCH, "\"1\"", &k, Some(body.clone())).await;
    assert_eq!(retry.status, 200, "not 412: {}", retry.text());
    assert!(retry.replayed());
    assert_eq!(retry.header("etag"), Some("\"2\""));
    assert_eq!(retry.json()["name"], "Renamed");

    // With `If-Match: *` a plain retry would apply twice; with its key it does not.
    env.emu.inject_fault(fault_on("PATCH", FaultAction::ErrorAfterCommit, "/v1/items/")).expect("fault");
    let k = key();
    let body = json!({"attributes": {"colour": "blue"}});
    send(Method::PATCH, "*", &k, Some(body.clone())).await.expect(500, "injected_fault");
    let retry = send(Method::PATCH, "*", &k, Some(body.clone())).await;
    assert_eq!(retry.status, 200);
    assert!(retry.replayed());
    assert_eq!(a.get(&path).await.json()["version"], 3, "one change, not two");

    // The same key with another body or on another resource is refused and changes nothing.
    send(Method::PATCH, "*", &k, Some(json!({"name": "Other"}))).await.expect(422, "idempotency_key_reused");
    let other = a.new_item().await;
    a.send(
        a.req_json(Method::PATCH, &format!("/v1/items/{other}"), &body)
            .header("if-match", "*")
            .header("idempotency-key", &k),
    )
    .await
    .expect(422, "idempotency_key_reused");

    // A stale If-Match is an answered 412: replayed to the same key with its ETag header.
    let k = key();
    let stale = send(Method::PATCH, "\"1\"", &k, Some(json!({"name": "Late"}))).await;
    stale.expect(412, "precondition_failed");
    assert_eq!(stale.header("etag"), Some("\"3\""));
    let again = send(Method::PATCH, "\"1\"", &k, Some(json!({"name": "Late"}))).await;
    // Byte-identical, so its body names the first attempt's request id.
    assert_eq!((again.status, again.code().as_deref()), (412, Some("precondition_failed")));
    assert_eq!(again.body, stale.body);
    assert!(again.replayed());
    assert_eq!(again.header("etag"), Some("\"3\""), "the replay keeps the ETag of the first answer");

    // DELETE (archive) likewise.
    env.emu.inject_fault(fault_on("DELETE", FaultAction::ErrorAfterCommit, "/v1/items/")).expect("fault");
    let k = key();
    send(Method::DELETE, "\"3\"", &k, None).await.expect(500, "injected_fault");
    let retry = send(Method::DELETE, "\"3\"", &k, None).await;
    assert_eq!(retry.status, 200, "not 412: {}", retry.text());
    assert!(retry.replayed());
    assert_eq!(retry.json()["status"], "archived");
    assert_eq!(a.get(&path).await.json()["version"], 4);

    // A webhook endpoint's PATCH and DELETE (204) too.
    let created =
        a.post("/v1/webhook-endpoints", &json!({"url": "http://127.0.0.1:9/hook", "event_types": ["*"]})).await;
    let ep = format!("/v1/webhook-endpoints/{}", id(&created.ok(201)));
    let k = key();
    let patch = |k: String| {
        a.send(
            a.req_json(Method::PATCH, &ep, &json!({"description": "orders"}))
                .header("if-match", "\"1\"")
                .header("idempotency-key", k),
        )
    };
    assert_eq!(patch(k.clone()).await.ok(200)["version"], 2);
    let again = patch(k).await;
    assert!(again.replayed(), "{}", again.text());
    assert_eq!(again.json()["version"], 2);
    let k = key();
    let delete =
        |k: String| a.send(a.req(Method::DELETE, &ep).header("if-match", "\"2\"").header("idempotency-key", k));
    assert_eq!(delete(k.clone()).await.status, 204);
    let again = delete(k).await;
    assert_eq!(again.status, 204, "{}", again.text());
    assert!(again.replayed());
    env.shutdown().await;
}

/// API.md §3: in a merge patch `null` clears a nullable field and is refused (422, nothing
/// changed) for a field that cannot be cleared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_clears_nullable_fields_and_is_refused_elsewhere() {
    let env = Env::new().await;
    let a = &env.api;
    let item = a.post("/v1/items", &json!({"sku": "NULL-1", "name": "n", "low_stock_threshold": 3})).await.ok(201);
    let path = format!("/v1/items/{}", id(&item));
    for field in ["sku", "name", "unit", "attributes"] {
        let r = a.patch(&path, Some("*"), &json!({ field: null })).await;
        r.expect(422, "validation_failed");
        assert_eq!(r.error_fields(), vec![field.to_owned()], "{}", r.text());
        assert!(r.text().contains("cannot be null"), "{}", r.text());
    }
    assert_eq!(a.get(&path).await.json()["version"], 1, "nothing changed");
    let cleared = a.patch(&path, Some("\"1\""), &json!({"low_stock_threshold": null})).await.ok(200);
    assert_eq!(cleared["low_stock_threshold"], Value::Null);
    assert_eq!(cleared["sku"], "NULL-1");

    let loc = a.new_location().await;
    let r = a.patch(&format!("/v1/locations/{loc}"), Some("*"), &json!({"kind": null})).await;
    r.expect(422, "validation_failed");

    let ep = a
        .post(
            "/v1/webhook-endpoints",
            &json!({"url": "http://127.0.0.1:9/hook", "event_types": ["*"], "description": "d", "retry_schedule_seconds": [1, 2]}),
        )
        .await
        .ok(201);
    let ep_path = format!("/v1/webhook-endpoints/{}", id(&ep));
    for field in ["url", "event_types", "enabled"] {
        a.patch(&ep_path, Some("*"), &json!({ field: null })).await.expect(422, "validation_failed");
    }
    let cleared =
        a.patch(&ep_path, Some("\"1\""), &json!({"description": null, "retry_schedule_seconds": null})).await.ok(200);
    assert_eq!(cleared["description"], Value::Null);
    assert_eq!(cleared["retry_schedule_seconds"], Value::Null);
    assert_eq!(cleared["url"], "http://127.0.0.1:9/hook");
    env.shutdown().await;
}
