//! API.md §3 and §4: ETags and preconditions, items and locations, the movement rules, levels,
//! `as_of`, sequences and events.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

fn mv(kind: &str, item: &str, loc: &str, quantity: i64) -> Value {
    json!({"type": kind, "item_id": item, "location_id": loc, "quantity": quantity})
}

fn transfer(item: &str, from: &str, to: &str, quantity: i64) -> Value {
    json!({"type": "transfer", "item_id": item, "from_location_id": from, "to_location_id": to, "quantity": quantity})
}

/// Counts of (movements, events) and the level, to show that a rejected request wrote nothing.
async fn snapshot(a: &Api, item: &str, loc: &str) -> (usize, usize, Value) {
    (a.movement_count().await, a.event_count().await, a.level(item, loc).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_etag_rises_by_one_per_change_and_conditional_requests() {
    let env = Env::new().await;
    let a = &env.api;
    let created = a.post("/v1/items", &json!({"sku": "ET", "name": "Etag"})).await;
    let item = created.ok(201);
    assert_eq!(created.etag(), 1);
    assert_eq!(item["version"], 1);
    let path = format!("/v1/items/{}", id(&item));
    assert_eq!(created.header("location"), Some(path.as_str()));
    let got = a.get(&path).await;
    assert_eq!(got.etag(), 1);
    assert_eq!(got.json(), item);
    // 304 on a matching If-None-Match (also in a list, and weak), with no body.
    for inm in ["\"1\"", "\"7\", \"1\"", "W/\"1\"", "*"] {
        let r = a.send(a.req(Method::GET, &path).header("if-none-match", inm)).await;
        assert_eq!(r.status, 304, "{inm}");
        assert!(r.body.is_empty(), "304 has no body");
        assert_eq!(r.etag(), 1);
    }
    let r = a.send(a.req(Method::GET, &path).header("if-none-match", "\"2\"")).await;
    assert_eq!(r.status, 200);
    // 428 without If-Match, on PATCH and DELETE; nothing written.
    a.patch(&path, None, &json!({"name": "x"})).await.expect(428, "precondition_required");
    a.delete(&path, None).await.expect(428, "precondition_required");
    // 412 on a stale one, with current_etag; nothing written.
    let events = a.event_count().await;
    let stale = a.patch(&path, Some("\"0\""), &json!({"name": "stale"})).await;
    stale.expect(412, "precondition_failed");
    assert_eq!(stale.json()["current_etag"], "\"1\"");
    let stale = a.delete(&path, Some("\"2\"")).await;
    stale.expect(412, "precondition_failed");
    assert_eq!(stale.json()["current_etag"], "\"1\"");
    a.patch(&path, Some("W/\"1\""), &json!({"name": "weak"})).await.expect(412, "precondition_failed");
    assert_eq!(a.event_count().await, events);
    assert_eq!(a.get(&path).await.json(), item);
    // Matching: version 2, 3 (with a list of tags), then * → 4, archive → 5.
    let r = a.patch(&path, Some("\"1\""), &json!({"name": "two"})).await;
    assert_eq!(r.ok(200)["version"], 2);
    assert_eq!(r.etag(), 2);
    let r = a.patch(&path, Some("\"9\", \"2\""), &json!({"name": "three"})).await;
    assert_eq!(r.etag(), 3);
    let r = a.patch(&path, Some("*"), &json!({"unit": "kg"})).await;
    assert_eq!(r.etag(), 4);
    assert_eq!(r.json()["unit"], "kg");
    let stale = a.patch(&path, Some("\"3\""), &json!({"name": "late"})).await;
    stale.expect(412, "precondition_failed");
    assert_eq!(stale.json()["current_etag"], "\"4\"");
    let r = a.delete(&path, Some("\"4\"")).await;
    assert_eq!(r.etag(), 5);
    let archived = r.json();
    assert_eq!(archived["status"], "archived");
    // The archived item is still readable, with its history.
    let got = a.get(&path).await;
    assert_eq!(got.etag(), 5);
    assert_eq!(got.json(), archived);
    assert_eq!(got.json()["name"], "three");
    assert_eq!(a.all("/v1/items?status=archived").await.len(), 1);
    assert!(a.all("/v1/items?status=active").await.is_empty());
    let types: Vec<String> =
        a.all("/v1/events").await.iter().map(|e| e["type"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(types, ["item.created", "item.updated", "item.updated", "item.updated", "item.archived"]);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn location_preconditions_and_archive() {
    let env = Env::new().await;
    let a = &env.api;
    let created = a.post("/v1/locations", &json!({"code": "WH1", "name": "One", "kind": "store"})).await;
    assert_eq!(created.etag(), 1);
    let loc = created.json();
    assert_eq!(loc["kind"], "store");
    let path = format!("/v1/locations/{}", id(&loc));
    assert_eq!(created.header("location"), Some(path.as_str()));
    let r = a.send(a.req(Method::GET, &path).header("if-none-match", "\"1\"")).await;
    assert_eq!(r.status, 304);
    a.patch(&path, None, &json!({"name": "x"})).await.expect(428, "precondition_required");
    a.delete(&path, None).await.expect(428, "precondition_required");
    let stale = a.patch(&path, Some("\"5\""), &json!({"name": "x"})).await;
    stale.expect(412, "precondition_failed");
    assert_eq!(stale.json()["current_etag"], "\"1\"");
    let r = a.patch(&path, Some("\"1\""), &json!({"name": "Renamed", "kind": "virtual"})).await;
    assert_eq!(r.etag(), 2);
    assert_eq!(r.json()["kind"], "virtual");
    assert_eq!(r.json()["code"], "WH1");
    let stale = a.delete(&path, Some("\"1\"")).await;
    stale.expect(412, "precondition_failed");
    assert_eq!(stale.json()["current_etag"], "\"2\"");
    let r = a.delete(&path, Some("*")).await;
    assert_eq!(r.etag(), 3);
    assert_eq!(r.json()["status"], "archived");
    assert_eq!(a.get(&path).await.json()["status"], "archived");
    assert_eq!(a.all("/v1/locations?status=archived").await.len(), 1);
    assert_eq!(a.all("/v1/locations?kind=virtual").await.len(), 1);
    // Filters.
    a.location("SHOP-A").await;
    assert_eq!(a.all("/v1/locations?code=SHOP-A").await.len(), 1);
    assert_eq!(a.all("/v1/locations?q=shop").await.len(), 1);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_is_a_json_merge_patch() {
    let env = Env::new().await;
    let a = &env.api;
    let item = a
        .post(
            "/v1/items",
            &json!({"sku": "MP", "name": "Merge", "unit": "each", "low_stock_threshold": 5,
                    "attributes": {"colour": "red", "size": "M", "dims": {"w": 1, "h": 2}, "tags": [1, 2]}}),
        )
        .await
        .ok(201);
    let path = format!("/v1/items/{}", id(&item));
    let r = a
        .patch(
            &path,
            Some("*"),
            &json!({"attributes": {"size": null, "dims": {"h": null, "d": 3}, "tags": [3], "new": true}}),
        )
        .await
        .ok(200);
    assert_eq!(r["attributes"], json!({"colour": "red", "dims": {"w": 1, "d": 3}, "tags": [3], "new": true}));
    assert_eq!(r["name"], "Merge", "absent fields unchanged");
    assert_eq!(r["low_stock_threshold"], 5);
    assert_eq!(r["unit"], "each");
    let r = a.patch(&path, Some("*"), &json!({"low_stock_threshold": null})).await.ok(200);
    assert!(r["low_stock_threshold"].is_null(), "null clears");
    assert_eq!(r["attributes"]["colour"], "red");
    let r = a.patch(&path, Some("*"), &json!({})).await.ok(200);
    assert_eq!(r["attributes"], json!({"colour": "red", "dims": {"w": 1, "d": 3}, "tags": [3], "new": true}));
    let r = a.patch(&path, Some("*"), &json!({"attributes": {"dims": "flat"}})).await.ok(200);
    assert_eq!(r["attributes"]["dims"], "flat");
    let got = a.get(&path).await.json();
    assert_eq!(got, r);
    // Type errors name the field.
    let bad = a.patch(&path, Some("*"), &json!({"name": 5})).await;
    bad.expect(422, "validation_failed");
    assert_eq!(bad.error_fields(), ["name"]);
    let bad = a.patch(&path, Some("*"), &json!({"status": "archived"})).await;
    bad.expect(422, "validation_failed");
    assert_eq!(a.get(&path).await.json(), got);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipt_shipment_adjustment_lines_and_levels() {
    let env = Env::new().await;
    let a = &env.api;
    let item = a.new_item().await;
    let loc = a.new_location().await;
    let r = a
        .movement(&json!({"type": "receipt", "item_id": item, "location_id": loc, "quantity": 10,
                                "reference": "PO-1", "reason": "inbound", "metadata": {"po": 1}}))
        .await;
    let m = r.ok(201);
    assert_eq!(r.etag(), 1, "ETag of the level changed");
    assert_eq!(r.header("location"), Some(format!("/v1/stock-movements/{}", id(&m)).as_str()));
    assert!(id(&m).starts_with("mov_"));
    assert_eq!(m["type"], "receipt");
    assert_eq!(m["sequence"], 1);
    assert_eq!(m["item_id"], json!(item));
    assert_eq!(m["lines"], json!([{"location_id": loc, "delta": 10, "quantity_after": 10}]));
    assert_eq!(m["reference"], "PO-1");
    assert_eq!(m["reason"], "inbound");
    assert_eq!(m["metadata"], json!({"po": 1}));
    assert!(m["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    let r = a.shipment(&item, &loc, 4).await;
    assert_eq!(r.ok(201)["lines"][0], json!({"location_id": loc, "delta": -4, "quantity_after": 6}));
    assert_eq!(r.etag(), 2);
    let r = a.movement(&mv("adjustment", &item, &loc, -2)).await;
    assert_eq!(r.ok(201)["lines"][0]["delta"], -2);
    let r = a.movement(&mv("adjustment", &item, &loc, 5)).await;
    assert_eq!(r.ok(201)["lines"][0]["delta"], 5);
    assert_eq!(r.etag(), 4);
    let level = a.get(&format!("/v1/items/{item}/stock-levels/{loc}")).await;
    assert_eq!(level.etag(), 4);
    let level = level.json();
    assert_eq!(level["quantity"], 9);
    assert_eq!(level["version"], 4);
    assert_eq!(level["item_id"], json!(item));
    assert_eq!(level["location_id"], json!(loc));
    assert_eq!(level["last_movement_id"], json!(id(&r.json())));
    assert_eq!(level["updated_at"], r.json()["created_at"]);
    let r = a
        .send(a.req(Method::GET, &format!("/v1/items/{item}/stock-levels/{loc}")).header("if-none-match", "\"4\""))
        .await;
    assert_eq!(r.status, 304);
    // Movements are readable, with ETag and 304.
    let path = format!("/v1/stock-movements/{}", id(&m));
    let got = a.get(&path).await;
    assert_eq!(got.json(), m);
    let etag = got.header("etag").expect("etag").to_owned();
    let r = a.send(a.req(Method::GET, &path).header("if-none-match", etag)).await;
    assert_eq!(r.status, 304);
    // Filters of the ledger.
    assert_eq!(a.all("/v1/stock-movements?type=adjustment").await.len(), 2);
    assert_eq!(a.all(&format!("/v1/stock-movements?item_id={item}")).await.len(), 4);
    assert_eq!(a.all(&format!("/v1/stock-movements?location_id={loc}&type=shipment")).await.len(), 1);
    assert_eq!(a.all("/v1/stock-movements?after_sequence=3").await.len(), 1);
    env.check_invariants();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_moved_pair_reads_zero_version_zero() {
    let env = Env::new().await;
    let a = &env.api;
    let item = a.new_item().await;
    let loc = a.new_location().await;
    let r = a.get(&format!("/v1/items/{item}/stock-levels/{loc}")).await;
    let level = r.ok(200);
    assert_eq!(r.etag(), 0);
    assert_eq!(level["quantity"], 0);
    assert_eq!(level["version"], 0);
    assert!(level["last_movement_id"].is_null());
    assert!(a.all("/v1/stock-levels").await.is_empty());
    // And an If-Match of "0" matches a never-moved pair.
    let r = a
        .send(
            a.req_json(Method::POST, "/v1/stock-movements", &mv("receipt", &item, &loc, 1))
                .header("idempotency-key", key())
                .header("if-match", "\"0\""),
        )
        .await;
    r.ok(201);
    assert_eq!(a.all("/v1/stock-levels").await.len(), 1);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insufficient_stock_writes_nothing_unless_allow_negative() {
    let env = Env::new().await;
    let a = &env.api;
    let item = a.new_item().await;
    let loc = a.new_location().await;
    let other = a.new_location().await;
    a.receipt(&item, &loc, 3).await;
    let before = snapshot(a, &item, &loc).await;
    let r = a.shipment(&item, &loc, 4).await;
    r.expect(409, "insufficient_stock");
    a.movement(&mv("adjustment", &item, &loc, -4)).await.expect(409, "insufficient_stock");
    a.movement(&transfer(&item, &loc, &other, 4)).await.expect(409, "insufficient_stock");
    a.shipment(&item, &other, 1).await.expect(409, "insufficient_stock");
    assert_eq!(snapshot(a, &item, &loc).await, before, "ledger, events and level unchanged");
    assert_eq!(a.level(&item, &other).await["version"], 0);
    // Exactly to zero is fine.
    a.shipment(&item, &loc, 3).await.ok(201);
    // allow_negative lets it go below zero.
    let r = a
        .movement(
            &json!({"type": "shipment", "item_id": item, "location_id": loc, "quantity": 5, "allow_negative": true}),
        )
        .await;
    assert_eq!(r.ok(201)["lines"][0]["quantity_after"], -5);
    assert_eq!(a.level(&item, &loc).await["quantity"], -5);
    // A level already below zero still takes receipts (a positive change is never refused)...
    a.receipt(&item, &loc, 2).await;
    // ...and a further decrease without allow_negative is refused.
    a.shipment(&item, &loc, 1).await.expect(409, "insufficient_stock");
    let r = a
        .movement(&json!({"type": "transfer", "item_id": item, "from_location_id": other, "to_location_id": loc,
                          "quantity": 2, "allow_negative": true}))
        .await
        .ok(201);
    assert_eq!(r["lines"][0]["quantity_after"], -2);
    assert_eq!(a.level(&item, &loc).await["quantity"], -1);
    env.check_invariants();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_writes_two_lines_in_one_movement() {
    let env = Env::new().await;
    let a = &env.api;
    let item = a.new_item().await;
    let from = a.new_location().await;
    let to = a.new_location().await;
    a.receipt(&item, &from, 10).await;
    a.receipt(&item, &to, 1).await;
    let events = a.event_count().await;
    let r = a.movement(&transfer(&item, &from, &to, 4)).await;
    let m = r.ok(201);
    assert_eq!(r.etag(), 2, "ETag of the first level changed (the source)");
    assert_eq!(m["type"], "transfer");
    assert_eq!(m["sequence"], 3);
    assert_eq!(
        m["lines"],
        json!([{"location_id": from, "delta": -4, "quantity_after": 6}, {"location_id": to, "delta": 4, "quantity_after": 5}])
    );
    assert_eq!(a.level(&item, &from).await["quantity"], 6);
    assert_eq!(a.level(&item, &to).await["quantity"], 5);
    assert_eq!(a.level(&item, &to).await["version"], 2);
    assert_eq!(a.movement_count().await, 3, "one movement");
    let new_events: Vec<Value> = a.all("/v1/events").await.split_off(events);
    let types: Vec<&str> = new_events.iter().map(|e| e["type"].as_str().unwrap_or_default()).collect();
    assert_eq!(types, ["stock_movement.created", "stock_level.updated", "stock_level.updated"]);
    assert_eq!(new_events[0]["data"], m);
    assert_eq!(new_events[1]["data"]["location_id"], json!(from));
    assert_eq!(new_events[1]["data"]["quantity"], 6);
    assert_eq!(new_events[2]["data"]["location_id"], json!(to));
    assert_eq!(new_events[2]["data"]["quantity"], 5);
    // Both locations see it.
    assert_eq!(a.all(&format!("/v1/stock-movements?location_id={to}&type=transfer")).await.len(), 1);
    env.check_invariants();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reversal_undoes_and_only_once() {
    let env = Env::new().await;
    let a = &env.api;
    let item = a.new_item().await;
    let from = a.new_location().await;
    let to = a.new_location().await;
    let receipt = a.receipt(&item, &from, 10).await;
    let tr = a.movement(&transfer(&item, &from, &to, 4)).await.ok(201);
    let r = a
        .post_key(&format!("/v1/stock-movements/{}/reverse", id(&tr)), &key(), &json!({"reason": "wrong shelf"}))
        .await;
    let rev = r.ok(201);
    assert_eq!(rev["reverses"], tr["id"]);
    assert_eq!(rev["type"], "transfer");
    assert_eq!(rev["reason"], "wrong shelf");
    assert_eq!(rev["sequence"], 3);
    assert_eq!(
        rev["lines"],
        json!([{"location_id": from, "delta": 4, "quantity_after": 10}, {"location_id": to, "delta": -4, "quantity_after": 0}])
    );
    assert!(tr["reverses"].is_null());
    assert_eq!(a.level(&item, &from).await["quantity"], 10);
    assert_eq!(a.level(&item, &to).await["quantity"], 0);
    // Twice → 409, nothing written; a reversal of a reversal is a new one.
    let before = snapshot(a, &item, &from).await;
    a.post_key(&format!("/v1/stock-movements/{}/reverse", id(&tr)), &key(), &json!({}))
        .await
        .expect(409, "already_reversed");
    assert_eq!(snapshot(a, &item, &from).await, before);
    let rr = a.post_key(&format!("/v1/stock-movements/{}/reverse", id(&rev)), &key(), &json!({})).await.ok(201);
    assert_eq!(rr["reverses"], rev["id"]);
    assert_eq!(a.level(&item, &to).await["quantity"], 4);
    // A reversal that would drive a level negative is refused...
    a.shipment(&item, &from, 6).await.ok(201);
    let k = key();
    a.post_key(&format!("/v1/stock-movements/{}/reverse", id(&receipt)), &k, &json!({}))
        .await
        .expect(409, "insufficient_stock");
    // ...unless allow_negative; it did not count as reversed.
    let r = a
        .post_key(&format!("/v1/stock-movements/{}/reverse", id(&receipt)), &key(), &json!({"allow_negative": true}))
        .await;
    assert_eq!(r.ok(201)["lines"][0]["quantity_after"], -10);
    // Reversing a movement that does not exist is 404.
    a.post_key("/v1/stock-movements/mov_nope/reverse", &key(), &json!({})).await.expect(404, "not_found");
    // Unknown fields are 422.
    a.post_key(&format!("/v1/stock-movements/{}/reverse", id(&rr)), &key(), &json!({"quantity": 1}))
        .await
        .expect(422, "validation_failed");
    env.check_invariants();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archived_items_and_locations_take_no_movements() {
    let env = Env::new().await;
    let a = &env.api;
    let item = a.new_item().await;
    let loc = a.new_location().await;
    let loc2 = a.new_location().await;
    let receipt = a.receipt(&item, &loc, 5).await;
    a.delete(&format!("/v1/locations/{loc2}"), Some("*")).await.ok(200);
    let before = snapshot(a, &item, &loc).await;
    a.movement(&transfer(&item, &loc, &loc2, 1)).await.expect(409, "location_archived");
    a.receipt_resp(&item, &loc2).await.expect(409, "location_archived");
    a.delete(&format!("/v1/items/{item}"), Some("*")).await.ok(200);
    let before_items = a.event_count().await;
    a.receipt_resp(&item, &loc).await.expect(409, "item_archived");
    a.shipment(&item, &loc, 1).await.expect(409, "item_archived");
    a.post_key(&format!("/v1/stock-movements/{}/reverse", id(&receipt)), &key(), &json!({}))
        .await
        .expect(409, "item_archived");
    a.post_key("/v1/stock-movements/batch", &key(), &json!({"movements": [mv("receipt", &item, &loc, 1)]}))
        .await
        .expect(409, "item_archived");
    assert_eq!(a.event_count().await, before_items);
    assert_eq!(a.movement_count().await, before.0);
    // Still readable, with its level and ledger history.
    let got = a.get(&format!("/v1/items/{item}")).await.ok(200);
    assert_eq!(got["status"], "archived");
    assert_eq!(a.level(&item, &loc).await["quantity"], 5);
    assert_eq!(a.get(&format!("/v1/stock-movements/{}", id(&receipt))).await.json(), receipt);
    // Archiving again changes nothing.
    let again = a.delete(&format!("/v1/items/{item}"), Some("*")).await;
    assert_eq!(again.ok(200)["version"], got["version"]);
    env.shutdown().await;
}

impl Api {
    async fn receipt_resp(&self, item: &str, loc: &str) -> Resp {
        self.movement(&mv("receipt", item, loc, 1)).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn movement_if_match_on_the_level() {
    let env = Env::new().await;
    let a = &env.api;
    let item = a.new_item().await;
    let loc = a.new_location().await;
    let to = a.new_location().await;
    a.receipt(&item, &loc, 5).await;
    a.receipt(&item, &loc, 5).await;
    let seen = a.get(&format!("/v1/items/{item}/stock-levels/{loc}")).await;
    assert_eq!(seen.etag(), 2);
    let sell = |m: &'static str| {
        let body = mv("shipment", &item, &loc, 1);
        let rb = a
            .req_json(Method::POST, "/v1/stock-movements", &body)
            .header("idempotency-key", key())
            .header("if-match", m);
        a.send(rb)
    };
    // Stale: 412 with current_etag, nothing written.
    let before = snapshot(a, &item, &loc).await;
    let r = sell("\"1\"").await;
    r.expect(412, "precondition_failed");
    assert_eq!(r.json()["current_etag"], "\"2\"");
    assert_eq!(snapshot(a, &item, &loc).await, before);
    // Current: written, ETag now 3; the same tag again is stale.
    let r = sell("\"2\"").await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.etag(), 3);
    sell("\"2\"").await.expect(412, "precondition_failed");
    sell("*").await.ok(201);
    // For a transfer the tag is the source level's.
    let body = transfer(&item, &loc, &to, 1);
    let rb = a
        .req_json(Method::POST, "/v1/stock-movements", &body)
        .header("idempotency-key", key())
        .header("if-match", "\"0\"");
    a.send(rb).await.expect(412, "precondition_failed");
    let rb = a
        .req_json(Method::POST, "/v1/stock-movements", &body)
        .header("idempotency-key", key())
        .header("if-match", "\"4\"");
    a.send(rb).await.ok(201);
    // A stale If-Match under a key is stored like any answered 4xx.
    let k = key();
    let rb = || {
        a.req_json(Method::POST, "/v1/stock-movements", &mv("shipment", &item, &loc, 1))
            .header("idempotency-key", &k)
            .header("if-match", "\"1\"")
    };
    let first = a.send(rb()).await;
    first.expect(412, "precondition_failed");
    let again = a.send(rb()).await;
    assert!(again.replayed());
    assert_eq!(again.body, first.body);
    assert_eq!(a.level(&item, &loc).await["quantity"], 7);
    env.check_invariants();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_is_all_or_nothing_and_names_the_entry() {
    let env = Env::new().await;
    let a = &env.api;
    let item = a.new_item().await;
    let loc = a.new_location().await;
    let to = a.new_location().await;
    a.receipt(&item, &loc, 2).await;
    let before = snapshot(a, &item, &loc).await;
    let batch = |movements: Vec<Value>| json!({"movements": movements});
    // A validation error in entry 1.
    let r = a
        .post_key(
            "/v1/stock-movements/batch",
            &key(),
            &batch(vec![mv("receipt", &item, &loc, 5), mv("receipt", &item, &loc, 0), mv("receipt", &item, &loc, 1)]),
        )
        .await;
    r.expect(422, "validation_failed");
    assert_eq!(r.error_fields(), ["movements[1].quantity"]);
    // A type error in entry 2.
    let r = a
        .post_key(
            "/v1/stock-movements/batch",
            &key(),
            &batch(vec![
                mv("receipt", &item, &loc, 5),
                mv("receipt", &item, &loc, 1),
                json!({"type": "receipt", "item_id": item, "location_id": loc, "quantity": "x"}),
            ]),
        )
        .await;
    r.expect(422, "validation_failed");
    assert_eq!(r.error_fields(), ["movements[2].quantity"]);
    // Stock is counted across entries: 2 + 1 - 4 < 0 in entry 2.
    let r = a
        .post_key(
            "/v1/stock-movements/batch",
            &key(),
            &batch(vec![mv("receipt", &item, &loc, 1), transfer(&item, &loc, &to, 1), mv("shipment", &item, &loc, 3)]),
        )
        .await;
    r.expect(409, "insufficient_stock");
    assert_eq!(r.error_fields(), ["movements[2].quantity"]);
    // An unknown item in entry 1.
    let r = a
        .post_key(
            "/v1/stock-movements/batch",
            &key(),
            &batch(vec![mv("receipt", &item, &loc, 1), mv("receipt", "itm_nope", &loc, 1)]),
        )
        .await;
    r.expect(404, "not_found");
    assert_eq!(r.error_fields(), ["movements[1].item_id"]);
    // Empty, missing.
    let r = a.post_key("/v1/stock-movements/batch", &key(), &batch(vec![])).await;
    r.expect(422, "validation_failed");
    assert_eq!(r.error_fields(), ["movements"]);
    a.post_key("/v1/stock-movements/batch", &key(), &json!({})).await.expect(422, "validation_failed");
    assert_eq!(snapshot(a, &item, &loc).await, before, "nothing written by any failed batch");
    // A good batch: in order, consecutive sequences, stock counted across entries.
    let r = a
        .post_key(
            "/v1/stock-movements/batch",
            &key(),
            &batch(vec![
                mv("shipment", &item, &loc, 2),
                mv("receipt", &item, &loc, 3),
                transfer(&item, &loc, &to, 3),
                mv("adjustment", &item, &to, -1),
            ]),
        )
        .await;
    let data = r.ok(201)["data"].as_array().expect("data").clone();
    assert_eq!(data.len(), 4);
    let seqs: Vec<i64> = data.iter().map(|m| m["sequence"].as_i64().unwrap_or_default()).collect();
    assert_eq!(seqs, [2, 3, 4, 5]);
    assert_eq!(data[0]["lines"][0]["quantity_after"], 0);
    assert_eq!(data[2]["lines"][1]["quantity_after"], 3);
    assert_eq!(a.level(&item, &loc).await["quantity"], 0);
    assert_eq!(a.level(&item, &to).await["quantity"], 2);
    let ledger = a.all("/v1/stock-movements").await;
    assert_eq!(&ledger[1..], &data[..]);
    env.check_invariants();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_are_gap_free_despite_failures() {
    let env = Env::new().await;
    let a = &env.api;
    let item = a.new_item().await;
    let loc = a.new_location().await;
    let mut expected = 0;
    for i in 0..30 {
        match i % 3 {
            0 => {
                expected += 1;
                assert_eq!(a.receipt(&item, &loc, 2).await["sequence"], expected);
            }
            1 => {
                a.shipment(&item, &loc, 1000).await.expect(409, "insufficient_stock");
            }
            _ => {
                let r = a
                    .post_key(
                        "/v1/stock-movements/batch",
                        &key(),
                        &json!({"movements": [mv("receipt", &item, &loc, 1), mv("receipt", &item, &loc, 1)]}),
                    )
                    .await;
                let data = r.ok(201)["data"].clone();
                assert_eq!(data[0]["sequence"], expected + 1);
                assert_eq!(data[1]["sequence"], expected + 2);
                expected += 2;
            }
        }
    }
    let seqs: Vec<i64> =
        a.all("/v1/stock-movements").await.iter().map(|m| m["sequence"].as_i64().unwrap_or_default()).collect();
    assert_eq!(seqs, (1..=expected).collect::<Vec<_>>());
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_of_answers_from_the_ledger_at_that_time() {
    let env = Env::new().await;
    let a = &env.api;
    let item = a.new_item().await;
    let loc = a.new_location().await;
    let other = a.new_location().await;
    let t_before = a.get("/_emulator/clock").await.ok(200)["now"].as_str().expect("now").to_owned();
    env.emu.advance_clock(Duration::from_secs(3600)).await;
    let m1 = a.receipt(&item, &loc, 10).await;
    env.emu.advance_clock(Duration::from_secs(3600)).await;
    let t_between = a.get("/_emulator/clock").await.ok(200)["now"].as_str().expect("now").to_owned();
    env.emu.advance_clock(Duration::from_secs(3600)).await;
    let m2 = a.movement(&transfer(&item, &loc, &other, 4)).await.ok(201);
    env.emu.advance_clock(Duration::from_secs(3600)).await;
    let m3 = a.shipment(&item, &loc, 1).await.ok(201);
    let at = |t: &str, l: &str| {
        let path = format!("/v1/items/{item}/stock-levels/{l}?as_of={}", t.replace('+', "%2B"));
        async move { a.get(&path).await }
    };
    let r = at(&t_before, &loc).await;
    let v = r.ok(200);
    assert_eq!((v["quantity"].as_i64(), v["version"].as_i64()), (Some(0), Some(0)));
    assert_eq!(r.etag(), 0);
    let r = at(&t_between, &loc).await;
    let v = r.ok(200);
    assert_eq!((v["quantity"].as_i64(), v["version"].as_i64()), (Some(10), Some(1)));
    assert_eq!(v["last_movement_id"], m1["id"]);
    assert_eq!(r.etag(), 1);
    // Exactly at a movement's time includes it.
    let v = at(m2["created_at"].as_str().unwrap_or_default(), &loc).await.ok(200);
    assert_eq!((v["quantity"].as_i64(), v["version"].as_i64()), (Some(6), Some(2)));
    let v = at(m2["created_at"].as_str().unwrap_or_default(), &other).await.ok(200);
    assert_eq!((v["quantity"].as_i64(), v["version"].as_i64()), (Some(4), Some(1)));
    let v = at(&t_between, &other).await.ok(200);
    assert_eq!(v["quantity"], 0);
    let v = at(m3["created_at"].as_str().unwrap_or_default(), &loc).await.ok(200);
    assert_eq!((v["quantity"].as_i64(), v["version"].as_i64()), (Some(5), Some(3)));
    // A time with an offset is converted to UTC.
    let between = chrono_offset(&t_between);
    let v = at(&between, &loc).await.ok(200);
    assert_eq!(v["quantity"], 10);
    // The time-window filters of the ledger agree.
    let windowed = a.all(&format!("/v1/stock-movements?created_after={}", t_between)).await;
    assert_eq!(windowed.iter().map(id).collect::<Vec<_>>(), [id(&m2), id(&m3)]);
    let windowed = a.all(&format!("/v1/stock-movements?created_before={}", t_between)).await;
    assert_eq!(windowed.iter().map(id).collect::<Vec<_>>(), [id(&m1)]);
    assert_eq!(a.level(&item, &loc).await["quantity"], 5);
    env.shutdown().await;
}

/// The same instant written with a `+02:00` offset, URL-encoded.
fn chrono_offset(t: &str) -> String {
    let utc = chrono::DateTime::parse_from_rfc3339(t).expect("rfc3339");
    let plus_two = chrono::FixedOffset::east_opt(2 * 3600).expect("offset");
    utc.with_timezone(&plus_two).to_rfc3339_opts(chrono::SecondsFormat::Micros, false).replace('+', "%2B")
}

/// A PATCH that fails late (its merged attributes are too many, checked after the new SKU) must
/// leave the SKU index as it was: the old SKU still taken, the new one still free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_patch_leaves_the_sku_index_alone() {
    let env = Env::new().await;
    let old = unique("OLD");
    let new = unique("NEW");
    let some: serde_json::Map<String, Value> = (0..30).map(|i| (format!("a{i}"), json!(i))).collect();
    let more: serde_json::Map<String, Value> = (0..30).map(|i| (format!("b{i}"), json!(i))).collect();
    let item = env.api.post("/v1/items", &json!({"sku": old, "name": "x", "attributes": some})).await.ok(201);
    let path = format!("/v1/items/{}", item["id"].as_str().unwrap());
    env.api.patch(&path, Some("*"), &json!({"sku": new, "attributes": more})).await.expect(422, "validation_failed");
    env.api.post("/v1/items", &json!({"sku": old, "name": "again"})).await.expect(409, "sku_taken");
    assert_eq!(env.api.get(&format!("/v1/items?sku={old}")).await.ok(200)["data"][0]["id"], item["id"]);
    assert_eq!(env.api.get(&path).await.ok(200)["sku"], json!(old));
    env.api.post("/v1/items", &json!({"sku": new, "name": "fresh"})).await.ok(201);
    env.shutdown().await;
}
