//! API.md §1: authentication, tenancy, routing, problem details, validation, request ids.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_missing_unknown_and_malformed_keys() {
    let env = Env::new().await;
    let anon = env.anonymous();
    let r = anon.get("/v1/items").await;
    r.expect(401, "unauthenticated");
    assert!(r.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")), "WWW-Authenticate on 401");
    env.api.with_key(Some("sk_test_doesnotexist")).get("/v1/items").await.expect(401, "unauthenticated");
    env.api.with_key(Some("")).get("/v1/items").await.expect(401, "unauthenticated");
    // Not a bearer scheme at all.
    let r = anon.send(anon.req(Method::GET, "/v1/items").header("authorization", "Basic Zm9vOmJhcg==")).await;
    r.expect(401, "unauthenticated");
    // Writes too, and before anything else (no key, no body checks).
    anon.post("/v1/items", &json!({"sku": "A", "name": "A"})).await.expect(401, "unauthenticated");
    anon.post("/v1/stock-movements", &json!({})).await.expect(401, "unauthenticated");
    // The real key works.
    env.api.get("/v1/items").await.ok(200);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolled_secret_key_works_through_grace_then_401() {
    let env = Env::new().await;
    let old = env.api.clone();
    let rolled = old.post("/v1/api-keys/roll", &json!({})).await.ok(201);
    let new_key = rolled["secret_key"].as_str().expect("secret_key").to_owned();
    assert!(new_key.starts_with("sk_test_"));
    assert_ne!(new_key, env.sandbox.secret_key);
    assert!(rolled["previous_key_expires_at"].is_string());
    let new = old.with_key(Some(&new_key));
    // Both work during the grace period, including after 23 h.
    old.get("/v1/items").await.ok(200);
    new.get("/v1/items").await.ok(200);
    env.emu.advance_clock(Duration::from_secs(23 * 3600)).await;
    old.get("/v1/items").await.ok(200);
    // After 24 h (we go to 25 h) the old key is 401; the new one and the restricted key still work.
    env.emu.advance_clock(Duration::from_secs(2 * 3600)).await;
    old.get("/v1/items").await.expect(401, "unauthenticated");
    old.post("/v1/items", &json!({"sku": "X", "name": "X"})).await.expect(401, "unauthenticated");
    new.get("/v1/items").await.ok(200);
    new.item("AFTER-ROLL").await;
    env.restricted().get("/v1/items").await.ok(200);
    env.shutdown().await;
}

/// A key in its grace period may not mint a fresh permanent key (or a leaked key could renew
/// itself forever); the newest key may roll again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_in_its_grace_period_cannot_roll() {
    let env = Env::new().await;
    let old = env.api.clone();
    let rolled = old.post("/v1/api-keys/roll", &json!({})).await.ok(201);
    let new = old.with_key(rolled["secret_key"].as_str());
    old.post("/v1/api-keys/roll", &json!({})).await.expect(403, "forbidden");
    old.get("/v1/items").await.ok(200);
    new.post("/v1/api-keys/roll", &json!({})).await.ok(201);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_key_reads_but_never_writes() {
    let env = Env::new().await;
    let item = env.api.new_item().await;
    let loc = env.api.new_location().await;
    let mov = env.api.receipt(&item, &loc, 5).await;
    let rk = env.restricted();
    rk.get("/v1/items").await.ok(200);
    rk.get(&format!("/v1/items/{item}")).await.ok(200);
    rk.get(&format!("/v1/items/{item}/stock-levels/{loc}")).await.ok(200);
    rk.get("/v1/stock-movements").await.ok(200);
    rk.get("/v1/events").await.ok(200);
    rk.get("/v1/sandbox").await.ok(200);
    let before = env.api.event_count().await;
    rk.post("/v1/items", &json!({"sku": "RK", "name": "RK"})).await.expect(403, "forbidden");
    rk.post("/v1/locations", &json!({"code": "RK", "name": "RK"})).await.expect(403, "forbidden");
    rk.post_key(
        "/v1/stock-movements",
        &key(),
        &json!({"type": "receipt", "item_id": item, "location_id": loc, "quantity": 1}),
    )
    .await
    .expect(403, "forbidden");
    rk.post_key("/v1/stock-movements/batch", &key(), &json!({"movements": []})).await.expect(403, "forbidden");
    rk.post_key(&format!("/v1/stock-movements/{}/reverse", id(&mov)), &key(), &json!({}))
        .await
        .expect(403, "forbidden");
    rk.patch(&format!("/v1/items/{item}"), Some("*"), &json!({"name": "x"})).await.expect(403, "forbidden");
    rk.delete(&format!("/v1/items/{item}"), Some("*")).await.expect(403, "forbidden");
    rk.delete(&format!("/v1/locations/{loc}"), Some("*")).await.expect(403, "forbidden");
    rk.post("/v1/api-keys/roll", &json!({})).await.expect(403, "forbidden");
    rk.post("/v1/sandbox/reset", &json!({})).await.expect(403, "forbidden");
    rk.delete("/v1/sandbox", None).await.expect(403, "forbidden");
    // Nothing was written.
    assert_eq!(env.api.event_count().await, before);
    assert_eq!(env.api.movement_count().await, 1);
    assert_eq!(env.api.get(&format!("/v1/items/{item}")).await.ok(200)["status"], "active");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_tenants_resources_are_404_never_403() {
    let env = Env::new().await;
    let a = &env.api;
    let item = a.new_item().await;
    let loc = a.new_location().await;
    let mov = id(&a.receipt(&item, &loc, 10).await);
    let event = id(&a.all("/v1/events").await[0]);
    let (_, b) = env.other_tenant();
    let b_item = b.new_item().await;
    let b_loc = b.new_location().await;
    let a_events_before = a.event_count().await;

    b.get(&format!("/v1/items/{item}")).await.expect(404, "not_found");
    b.get(&format!("/v1/locations/{loc}")).await.expect(404, "not_found");
    b.get(&format!("/v1/stock-movements/{mov}")).await.expect(404, "not_found");
    b.get(&format!("/v1/events/{event}")).await.expect(404, "not_found");
    b.get(&format!("/v1/items/{item}/stock-levels/{loc}")).await.expect(404, "not_found");
    b.get(&format!("/v1/items/{b_item}/stock-levels/{loc}")).await.expect(404, "not_found");
    b.get(&format!("/v1/items/{item}/stock-levels/{b_loc}")).await.expect(404, "not_found");
    b.patch(&format!("/v1/items/{item}"), Some("*"), &json!({"name": "stolen"})).await.expect(404, "not_found");
    b.delete(&format!("/v1/items/{item}"), Some("*")).await.expect(404, "not_found");
    // A stale If-Match must not leak the current ETag of another tenant's resource either.
    let r = b.patch(&format!("/v1/items/{item}"), Some("\"99\""), &json!({"name": "stolen"})).await;
    r.expect(404, "not_found");
    assert!(r.json().get("current_etag").is_none() && r.header("etag").is_none());
    b.delete(&format!("/v1/locations/{loc}"), Some("\"99\"")).await.expect(404, "not_found");
    b.patch(&format!("/v1/locations/{loc}"), Some("*"), &json!({"name": "stolen"})).await.expect(404, "not_found");
    b.delete(&format!("/v1/locations/{loc}"), Some("*")).await.expect(404, "not_found");
    b.shipment(&item, &loc, 1).await.expect(404, "not_found");
    b.shipment(&b_item, &loc, 1).await.expect(404, "not_found");
    b.movement(&json!({"type": "receipt", "item_id": item, "location_id": b_loc, "quantity": 1}))
        .await
        .expect(404, "not_found");
    b.movement(&json!({"type": "transfer", "item_id": b_item, "from_location_id": b_loc, "to_location_id": loc, "quantity": 1}))
        .await
        .expect(404, "not_found");
    b.post_key(&format!("/v1/stock-movements/{mov}/reverse"), &key(), &json!({})).await.expect(404, "not_found");
    b.post_key(
        "/v1/stock-movements/batch",
        &key(),
        &json!({"movements": [
            {"type": "receipt", "item_id": b_item, "location_id": b_loc, "quantity": 1},
            {"type": "receipt", "item_id": item, "location_id": loc, "quantity": 1},
        ]}),
    )
    .await
    .expect(404, "not_found");
    // B's lists do not show A's data, and filters by A's ids find nothing.
    assert!(b.all(&format!("/v1/stock-movements?item_id={item}")).await.is_empty());
    assert!(b.all("/v1/stock-movements").await.is_empty(), "the failed batch wrote nothing");
    assert!(b.all(&format!("/v1/stock-levels?location_id={loc}")).await.is_empty());
    assert_eq!(b.all("/v1/items").await.len(), 1);
    // A is untouched.
    assert_eq!(a.level(&item, &loc).await["quantity"], 10);
    assert_eq!(a.event_count().await, a_events_before);
    assert_eq!(a.get(&format!("/v1/items/{item}")).await.ok(200)["version"], 1);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_and_routes_are_404() {
    let env = Env::new().await;
    let a = &env.api;
    a.get("/v1/items/itm_nope").await.expect(404, "not_found");
    a.get("/v1/items/itm_0000000000000001").await.expect(404, "not_found");
    a.get("/v1/locations/loc_nope").await.expect(404, "not_found");
    a.get("/v1/stock-movements/mov_nope").await.expect(404, "not_found");
    a.get("/v1/events/evt_nope").await.expect(404, "not_found");
    a.get("/v1/nothing-here").await.expect(404, "not_found");
    a.get("/v2/items").await.expect(404, "not_found");
    env.anonymous().get("/definitely/not/a/route").await.expect(404, "not_found");
    a.post("/v1/items/itm_x/whatever", &json!({})).await.expect(404, "not_found");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_is_405_with_allow() {
    let env = Env::new().await;
    let a = &env.api;
    let allow_set = |r: &Resp| -> Vec<String> {
        let mut v: Vec<String> =
            r.header("allow").expect("Allow header").split(',').map(|s| s.trim().to_ascii_uppercase()).collect();
        v.sort();
        v.dedup();
        v.retain(|m| m != "HEAD");
        v
    };
    let r = a.delete("/v1/items", None).await;
    r.expect(405, "method_not_allowed");
    assert_eq!(allow_set(&r), ["GET", "POST"]);
    let r = a.send(a.req_json(Method::PUT, "/v1/items/itm_x", &json!({}))).await;
    r.expect(405, "method_not_allowed");
    assert_eq!(allow_set(&r), ["DELETE", "GET", "PATCH"]);
    let r = a.get("/v1/stock-movements/batch").await;
    r.expect(405, "method_not_allowed");
    assert_eq!(allow_set(&r), ["POST"]);
    let r = a.get("/v1/api-keys/roll").await;
    r.expect(405, "method_not_allowed");
    assert_eq!(allow_set(&r), ["POST"]);
    let r = a.send(a.req(Method::PATCH, "/v1/stock-levels")).await;
    r.expect(405, "method_not_allowed");
    assert_eq!(allow_set(&r), ["GET"]);
    // Paths without parameters skip the router for the methods they have; HEAD still gets
    // GET's headers without its body, with a request id like every answer.
    let get = a.get("/v1/items").await;
    let head = a.send(a.req(Method::HEAD, "/v1/items")).await;
    assert_eq!((get.status, head.status), (200, 200));
    assert!(head.body.is_empty() && !get.body.is_empty());
    assert_eq!(head.header("content-type"), get.header("content-type"));
    assert!(head.header("x-request-id").is_some_and(|id| id.starts_with("req_")));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_is_immutable() {
    let env = Env::new().await;
    let a = &env.api;
    let item = a.new_item().await;
    let loc = a.new_location().await;
    let mov = a.receipt(&item, &loc, 3).await;
    let path = format!("/v1/stock-movements/{}", id(&mov));
    for method in [Method::PUT, Method::PATCH, Method::DELETE] {
        let r = a.send(a.req_json(method.clone(), &path, &json!({"quantity": 300}))).await;
        r.expect(405, "ledger_immutable");
        assert_eq!(r.header("allow"), Some("GET"), "{method}");
        // Also for an id that does not exist, and with no body at all.
        let r = a.send(a.req(method.clone(), "/v1/stock-movements/mov_nope")).await;
        r.expect(405, "ledger_immutable");
        assert_eq!(r.header("allow"), Some("GET"));
    }
    let now = a.get(&path).await.ok(200);
    assert_eq!(now, mov, "the movement is unchanged");
    assert_eq!(a.level(&item, &loc).await["quantity"], 3);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_400_invalid_json() {
    let env = Env::new().await;
    let a = &env.api;
    for body in ["{", "{\"sku\": }", "not json", "[1,2", "{\"sku\":\"A\",\"name\":\"B\"} trailing"] {
        let r = a.send(a.req(Method::POST, "/v1/items").header("content-type", "application/json").body(body)).await;
        r.expect(400, "invalid_json");
    }
    let r = a
        .send(
            a.req(Method::POST, "/v1/stock-movements")
                .header("content-type", "application/json")
                .header("idempotency-key", key())
                .body("{\"type\": \"receipt\""),
        )
        .await;
    r.expect(400, "invalid_json");
    assert!(a.all("/v1/items").await.is_empty());
    let item = a.item("JSON").await;
    let path = format!("/v1/items/{}", id(&item));
    let r = a
        .send(a.req(Method::PATCH, &path).header("if-match", "*").header("content-type", "application/json").body("{"))
        .await;
    r.expect(400, "invalid_json");
    assert_eq!(a.get(&path).await.json(), item, "nothing changed");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_an_array_is_422_and_makes_nothing() {
    // serde would read a struct from an array of its fields in order: the API takes objects only.
    let env = Env::new().await;
    let a = &env.api;
    let json = |path: &str, body: &str| {
        a.req(Method::POST, path)
            .header("content-type", "application/json")
            .header("idempotency-key", key())
            .body(body.to_owned())
    };
    let r = a.send(json("/v1/items", r#" ["ARRAY-1", "positional"]"#)).await;
    r.expect(422, "validation_failed");
    assert_eq!(r.error_fields(), vec!["body".to_owned()]);
    assert!(a.all("/v1/items").await.is_empty());
    let anonymous = env.anonymous();
    let sandboxes = anonymous.get("/_emulator/sandboxes").await.ok(200);
    anonymous.send(json("/v1/sandboxes", "[]")).await.expect(422, "validation_failed");
    assert_eq!(anonymous.get("/_emulator/sandboxes").await.ok(200), sandboxes, "no sandbox made");
    // An array that is not even JSON is still 400 invalid_json first.
    a.send(json("/v1/items", "[1,")).await.expect(400, "invalid_json");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_json_body_is_415() {
    let env = Env::new().await;
    let a = &env.api;
    let r = a
        .send(
            a.req(Method::POST, "/v1/items")
                .header("content-type", "text/plain")
                .body("{\"sku\":\"A\",\"name\":\"A\"}"),
        )
        .await;
    r.expect(415, "unsupported_media_type");
    let r = a
        .send(
            a.req(Method::POST, "/v1/items")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("sku=A&name=A"),
        )
        .await;
    r.expect(415, "unsupported_media_type");
    // `application/json; charset=utf-8` is JSON.
    let r = a
        .send(
            a.req(Method::POST, "/v1/items")
                .header("content-type", "application/json; charset=utf-8")
                .body("{\"sku\":\"A\",\"name\":\"A\"}"),
        )
        .await;
    r.ok(201);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_violations_are_422_with_fields() {
    let env = Env::new().await;
    let a = &env.api;
    let fields = |r: &Resp| {
        r.expect(422, "validation_failed");
        r.error_fields()
    };
    assert!(fields(&a.post("/v1/items", &json!({"name": "no sku"})).await).contains(&"sku".to_owned()));
    assert!(fields(&a.post("/v1/items", &json!({"sku": 5, "name": "x"})).await).contains(&"sku".to_owned()));
    assert!(
        fields(&a.post("/v1/items", &json!({"sku": "A", "name": "x", "colour": "red"})).await)
            .contains(&"colour".to_owned())
    );
    assert!(fields(&a.post("/v1/items", &json!({"sku": "", "name": "x"})).await).contains(&"sku".to_owned()));
    assert!(fields(&a.post("/v1/items", &json!({"sku": "has space", "name": "x"})).await).contains(&"sku".to_owned()));
    assert!(
        fields(&a.post("/v1/items", &json!({"sku": "A", "name": "x", "low_stock_threshold": -1})).await)
            .contains(&"low_stock_threshold".to_owned())
    );
    assert!(
        fields(&a.post("/v1/items", &json!({"sku": "A", "name": "x", "attributes": [1]})).await)
            .contains(&"attributes".to_owned())
    );
    assert!(
        fields(&a.post("/v1/locations", &json!({"code": "L", "name": "x", "kind": "moon"})).await)
            .contains(&"kind".to_owned())
    );
    assert!(fields(&a.post("/v1/locations", &json!({"name": "x"})).await).contains(&"code".to_owned()));
    // Movement rules are validation too (the quantity field is named).
    let item = a.new_item().await;
    let loc = a.new_location().await;
    for (body, field) in [
        (json!({"type": "receipt", "item_id": item, "location_id": loc, "quantity": 0}), "quantity"),
        (json!({"type": "shipment", "item_id": item, "location_id": loc, "quantity": -1}), "quantity"),
        (json!({"type": "adjustment", "item_id": item, "location_id": loc, "quantity": 0}), "quantity"),
        (json!({"type": "receipt", "item_id": item, "location_id": loc, "quantity": 1.5}), "quantity"),
        (json!({"type": "receipt", "item_id": item, "location_id": loc, "quantity": "1"}), "quantity"),
        (json!({"type": "teleport", "item_id": item, "location_id": loc, "quantity": 1}), "type"),
        (json!({"type": "receipt", "item_id": item, "quantity": 1}), "location_id"),
        (json!({"type": "transfer", "item_id": item, "from_location_id": loc, "quantity": 1}), "to_location_id"),
        (
            json!({"type": "transfer", "item_id": item, "from_location_id": loc, "to_location_id": loc, "quantity": 1}),
            "to_location_id",
        ),
        (json!({"type": "receipt", "item_id": item, "location_id": loc, "quantity": 1, "extra": true}), "extra"),
    ] {
        let got = fields(&a.movement(&body).await);
        assert!(got.contains(&field.to_owned()), "{body}: fields {got:?}");
    }
    // Query parameters: bad limit, unknown parameter, bad enum.
    assert!(fields(&a.get("/v1/items?limit=0").await).contains(&"limit".to_owned()));
    assert!(fields(&a.get("/v1/items?limit=101").await).contains(&"limit".to_owned()));
    assert!(fields(&a.get("/v1/items?limit=abc").await).contains(&"limit".to_owned()));
    assert!(fields(&a.get("/v1/items?colour=red").await).contains(&"colour".to_owned()));
    assert!(fields(&a.get("/v1/items?status=gone").await).contains(&"status".to_owned()));
    assert!(fields(&a.get("/v1/stock-movements?type=teleport").await).contains(&"type".to_owned()));
    assert!(
        fields(&a.get(&format!("/v1/items/{item}/stock-levels/{loc}?as_of=yesterday")).await)
            .contains(&"as_of".to_owned())
    );
    a.get("/v1/items?limit=100").await.ok(200);
    a.get("/v1/items?limit=1").await.ok(200);
    // Nothing was written by any of it.
    assert_eq!(a.all("/v1/items").await.len(), 1);
    assert_eq!(a.movement_count().await, 0);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_cursor_is_400_invalid_cursor() {
    let env = Env::new().await;
    let a = &env.api;
    for i in 0..3 {
        a.item(&format!("C{i}")).await;
        a.location(&format!("C{i}")).await;
    }
    a.get("/v1/items?cursor=garbage").await.expect(400, "invalid_cursor");
    a.get("/v1/stock-movements?cursor=%00%01").await.expect(400, "invalid_cursor");
    a.get("/v1/events?cursor=bm9wZQ").await.expect(400, "invalid_cursor");
    a.get("/v1/stock-levels?cursor=x").await.expect(400, "invalid_cursor");
    // A real cursor of another list, or of another tenant, is not accepted either.
    let page = a.get("/v1/items?limit=1").await.ok(200);
    let cursor = page["next_cursor"].as_str().expect("more items").to_owned();
    a.get(&format!("/v1/items?limit=1&cursor={cursor}")).await.ok(200);
    a.get(&format!("/v1/locations?cursor={cursor}")).await.expect(400, "invalid_cursor");
    let (_, b) = env.other_tenant();
    b.item("C0").await;
    b.item("C1").await;
    b.get(&format!("/v1/items?cursor={cursor}")).await.expect(400, "invalid_cursor");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sku_and_code_are_unique_per_tenant() {
    let env = Env::new().await;
    let a = &env.api;
    let first = a.item("DUP").await;
    let before = a.event_count().await;
    a.post("/v1/items", &json!({"sku": "DUP", "name": "again"})).await.expect(409, "sku_taken");
    let other = a.item("OTHER").await;
    a.patch(&format!("/v1/items/{}", id(&other)), Some("*"), &json!({"sku": "DUP"})).await.expect(409, "sku_taken");
    a.location("DUPLOC").await;
    let loc2 = a.location("LOC2").await;
    let mid = a.event_count().await;
    a.post("/v1/locations", &json!({"code": "DUPLOC", "name": "again"})).await.expect(409, "code_taken");
    a.patch(&format!("/v1/locations/{}", id(&loc2)), Some("*"), &json!({"code": "DUPLOC"}))
        .await
        .expect(409, "code_taken");
    assert_eq!(a.event_count().await, mid, "rejected requests write no event");
    assert!(mid > before);
    // Patching an item to its own SKU is fine; the SKU is per tenant.
    a.patch(&format!("/v1/items/{}", id(&first)), Some("*"), &json!({"sku": "DUP"})).await.ok(200);
    let (_, b) = env.other_tenant();
    b.item("DUP").await;
    b.location("DUPLOC").await;
    // An archived item still holds its SKU.
    a.delete(&format!("/v1/items/{}", id(&first)), Some("*")).await.ok(200);
    a.post("/v1/items", &json!({"sku": "DUP", "name": "again"})).await.expect(409, "sku_taken");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_id_is_echoed_or_generated() {
    let env = Env::new().await;
    let a = &env.api;
    let r = a.send(a.req(Method::GET, "/v1/items").header("x-request-id", "my-trace-123")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-request-id"), Some("my-trace-123"));
    // Echoed on errors too, and in the problem body.
    let r = a.send(a.req(Method::GET, "/v1/items/itm_nope").header("x-request-id", "trace-404")).await;
    r.expect(404, "not_found");
    assert_eq!(r.header("x-request-id"), Some("trace-404"));
    assert_eq!(r.json()["request_id"], "trace-404");
    let r =
        env.anonymous().send(env.anonymous().req(Method::GET, "/v1/items").header("x-request-id", "trace-401")).await;
    r.expect(401, "unauthenticated");
    assert_eq!(r.header("x-request-id"), Some("trace-401"));
    let r = a.send(a.req(Method::GET, "/nope").header("x-request-id", "trace-route")).await;
    assert_eq!(r.header("x-request-id"), Some("trace-route"));
    let r = a.send(a.req(Method::DELETE, "/v1/items").header("x-request-id", "trace-405")).await;
    r.expect(405, "method_not_allowed");
    assert_eq!(r.header("x-request-id"), Some("trace-405"));
    // An unusable one (too long, or with spaces) is replaced by a generated one.
    let r = a.send(a.req(Method::GET, "/v1/items").header("x-request-id", "x".repeat(500))).await;
    let generated = r.header("x-request-id").expect("generated");
    assert!(!generated.is_empty() && generated.len() < 500);
    let r = a.send(a.req(Method::GET, "/v1/items").header("x-request-id", "has spaces")).await;
    assert_ne!(r.header("x-request-id"), Some("has spaces"));
    // 304 and 201 carry it too.
    let item = a.item("RID").await;
    let path = format!("/v1/items/{}", id(&item));
    let r =
        a.send(a.req(Method::GET, &path).header("if-none-match", "\"1\"").header("x-request-id", "trace-304")).await;
    assert_eq!(r.status, 304);
    assert_eq!(r.header("x-request-id"), Some("trace-304"));
    let r = a
        .send(
            a.req_json(Method::POST, "/v1/items", &json!({"sku": "RID2", "name": "x"}))
                .header("x-request-id", "trace-201"),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("x-request-id"), Some("trace-201"));
    // Generated otherwise: present, non-empty, and different per request.
    let one = a.get("/v1/items").await;
    let two = a.get("/v1/items").await;
    let (one, two) = (one.header("x-request-id").expect("generated"), two.header("x-request-id").expect("generated"));
    assert!(!one.is_empty() && !two.is_empty());
    assert_ne!(one, two);
    let r = a.post("/v1/items", &json!({"name": "no sku"})).await;
    r.expect(422, "validation_failed");
    assert!(!r.header("x-request-id").unwrap_or_default().is_empty());
    // On the control plane and the document as well.
    let r = a.send(a.req(Method::GET, "/_emulator/health").header("x-request-id", "trace-ctl")).await;
    assert_eq!(r.header("x-request-id"), Some("trace-ctl"));
    assert!(a.get("/openapi.json").await.header("x-request-id").is_some());
    env.shutdown().await;
}

/// Issue 19 item 16: the server does what the document says and no more. `after_sequence` is an
/// int64 (a larger number is refused, not taken as a u64); a 405 on a movement lists only the
/// methods the document declares there; an empty `cursor=` (a string the document allows) is
/// the first page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_matches_the_document_on_int64_allow_and_empty_cursors() {
    let env = Env::new().await;
    let a = &env.api;
    let item = a.new_item().await;
    let loc = a.new_location().await;
    let mov = a.receipt(&item, &loc, 3).await;
    a.get("/v1/stock-movements?after_sequence=9223372036854775807").await.ok(200);
    let r = a.get("/v1/stock-movements?after_sequence=9223372036854775808").await;
    assert!(r.status == 400 || r.status == 422, "beyond int64: {}", r.status);
    assert_eq!(r.error_fields(), vec!["after_sequence".to_owned()]);
    let r = a.send(a.req(Method::POST, &format!("/v1/stock-movements/{}", id(&mov)))).await;
    r.expect(405, "method_not_allowed");
    let allow = r.header("allow").unwrap_or_default().to_owned();
    for undeclared in ["PUT", "PATCH", "DELETE"] {
        assert!(!allow.contains(undeclared), "Allow: {allow}");
    }
    assert!(allow.contains("GET"), "Allow: {allow}");
    let page = a.get("/v1/items?cursor=").await.ok(200);
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    a.get("/v1/stock-movements?cursor=&limit=1").await.ok(200);
    env.anonymous().get("/_emulator/sandboxes?cursor=").await.ok(200);
    env.shutdown().await;
}

/// Schemathesis (issue 19, all checks): a PATCH whose body breaks the document (a name too
/// long) with a stale or empty `If-Match` was 412; the body is checked first (RFC 9110
/// §13.2.1: a request that fails without its precondition fails the same with it), so it is 422.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_patch_is_422_whatever_its_if_match() {
    let env = Env::new().await;
    let a = &env.api;
    let item = a.new_item().await;
    let long = "x".repeat(1000);
    for if_match in ["\"\"", "\"99\""] {
        let r = a.patch(&format!("/v1/items/{item}"), Some(if_match), &json!({"name": long})).await;
        r.expect(422, "validation_failed");
    }
    let ep =
        a.post("/v1/webhook-endpoints", &json!({"url": "http://127.0.0.1:9/h", "event_types": ["*"]})).await.ok(201);
    let r = a.patch(&format!("/v1/webhook-endpoints/{}", id(&ep)), Some("\"99\""), &json!({"url": "nope"})).await;
    r.expect(422, "validation_failed");
    // A well-formed patch with a stale ETag is still 412.
    a.patch(&format!("/v1/items/{item}"), Some("\"99\""), &json!({"name": "ok"}))
        .await
        .expect(412, "precondition_failed");
    env.shutdown().await;
}
