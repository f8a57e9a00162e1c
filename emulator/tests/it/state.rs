//! API.md §4 sandboxes and §5 control plane: export, reset, import; sandbox lifecycle; clock.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

/// Everything a client can read from a sandbox, to compare before and after.
async fn observe(a: &Api, singles: &[String]) -> Value {
    let mut one = serde_json::Map::new();
    for path in singles {
        let r = a.get(path).await;
        one.insert(path.clone(), json!({"status": r.status, "etag": r.header("etag"), "body": r.json()}));
    }
    json!({
        "sandbox": a.get("/v1/sandbox").await.ok(200),
        "items": a.all("/v1/items").await,
        "locations": a.all("/v1/locations").await,
        "movements": a.all("/v1/stock-movements").await,
        "levels": a.all("/v1/stock-levels").await,
        "events": a.all("/v1/events").await,
        "single": one,
    })
}

/// A sandbox with some history: items, locations, movements of each type, a reversal, an archive.
async fn populate(a: &Api) -> Vec<String> {
    let i1 = a.new_item().await;
    let i2 = id(&a.post("/v1/items", &json!({"sku": unique("ATTR"), "name": "attrs", "attributes": {"k": [1, {"x": null}]}, "low_stock_threshold": 3})).await.ok(201));
    let l1 = a.new_location().await;
    let l2 = a.new_location().await;
    let m1 = a.receipt(&i1, &l1, 10).await;
    a.movement(&json!({"type": "transfer", "item_id": i1, "from_location_id": l1, "to_location_id": l2, "quantity": 3, "metadata": {"n": 1}})).await.ok(201);
    a.receipt(&i2, &l2, 5).await;
    a.shipment(&i2, &l2, 4).await.ok(201);
    a.movement(&json!({"type": "adjustment", "item_id": i1, "location_id": l2, "quantity": -1, "reason": "count"}))
        .await
        .ok(201);
    let rev = a
        .post_key(&format!("/v1/stock-movements/{}/reverse", id(&m1)), &key(), &json!({"allow_negative": true}))
        .await
        .ok(201);
    a.patch(&format!("/v1/items/{i2}"), Some("*"), &json!({"name": "renamed"})).await.ok(200);
    a.delete(&format!("/v1/locations/{l2}"), Some("*")).await.ok(200);
    vec![
        format!("/v1/items/{i1}"),
        format!("/v1/items/{i2}"),
        format!("/v1/locations/{l1}"),
        format!("/v1/locations/{l2}"),
        format!("/v1/stock-movements/{}", id(&m1)),
        format!("/v1/stock-movements/{}", id(&rev)),
        format!("/v1/items/{i1}/stock-levels/{l1}"),
        format!("/v1/items/{i1}/stock-levels/{l2}"),
        format!("/v1/items/{i2}/stock-levels/{l2}"),
        format!("/v1/items/{i2}/stock-levels/{l1}"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_reset_import_round_trips() {
    let env = Env::new().await;
    let a = &env.api;
    let singles_a = populate(a).await;
    let (_, b) = env.other_tenant();
    let singles_b = populate(&b).await;
    // An idempotent answer to replay after the round trip.
    let item = a.new_item().await;
    let loc = a.new_location().await;
    let k = key();
    let body = json!({"type": "receipt", "item_id": item, "location_id": loc, "quantity": 2});
    let original = a.post_key("/v1/stock-movements", &k, &body).await;
    original.ok(201);
    // A rolled key: the new one and the old one (in grace) both survive.
    let rolled = b.post("/v1/api-keys/roll", &json!({})).await.ok(201);
    let b_new = b.with_key(Some(rolled["secret_key"].as_str().expect("key")));
    env.emu.advance_clock(Duration::from_secs(3600)).await;

    let before_a = observe(a, &singles_a).await;
    let before_b = observe(&b, &singles_b).await;
    let ctl = env.anonymous();
    let exported = ctl.get("/_emulator/state").await;
    assert_eq!(exported.status, 200);
    let export_json = exported.json();
    assert_eq!(export_json["format_version"], 1);
    assert_eq!(export_json["tenants"].as_array().map(Vec::len), Some(2));
    let clock_before = ctl.get("/_emulator/clock").await.ok(200);

    ctl.send(ctl.req(Method::POST, "/_emulator/reset")).await.ok(204);
    a.get("/v1/items").await.expect(401, "unauthenticated");
    b.get("/v1/items").await.expect(401, "unauthenticated");
    let empty = ctl.get("/_emulator/state").await.json();
    assert_eq!(empty["tenants"], json!([]));
    assert_eq!(empty["keys"], json!([]));

    let r = ctl
        .send(
            ctl.req(Method::PUT, "/_emulator/state")
                .header("content-type", "application/json")
                .body(exported.body.clone()),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    // The old keys work again and every answer is the same.
    assert_eq!(observe(a, &singles_a).await, before_a);
    assert_eq!(observe(&b, &singles_b).await, before_b);
    b_new.get("/v1/items").await.ok(200);
    env.restricted().get("/v1/items").await.ok(200);
    // The clock did not go back.
    let clock_after = ctl.get("/_emulator/clock").await.ok(200);
    assert!(clock_after["now"].as_str() >= clock_before["now"].as_str());
    // A second export holds the same tenants and keys.
    let again = ctl.get("/_emulator/state").await.json();
    assert_eq!(again["tenants"], export_json["tenants"]);
    assert_eq!(again["keys"], export_json["keys"]);
    // Idempotency records survived: the retry is a replay, byte for byte.
    let replay = a.post_key("/v1/stock-movements", &k, &body).await;
    assert!(replay.replayed());
    assert_eq!(replay.body, original.body);
    // Indexes were rebuilt: SKUs stay unique, new writes continue the sequence.
    let sku = before_a["items"][0]["sku"].as_str().expect("sku").to_owned();
    a.post("/v1/items", &json!({"sku": sku, "name": "dup"})).await.expect(409, "sku_taken");
    let next = a.receipt(&item, &loc, 1).await;
    let count = before_a["movements"].as_array().map_or(0, Vec::len) as i64;
    assert_eq!(next["sequence"], count + 1);
    // The rolled key's grace period still ends.
    env.emu.advance_clock(Duration::from_secs(24 * 3600)).await;
    b.get("/v1/items").await.expect(401, "unauthenticated");
    b_new.get("/v1/items").await.ok(200);
    env.check_invariants();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_is_stable_across_an_import() {
    let env = Env::new().await;
    let a = &env.api;
    // Many idempotency records (they live in hash maps), then export → import → export.
    for i in 0..400 {
        a.post_key("/v1/items", &format!("stable-{i}"), &json!({"sku": format!("S{i}"), "name": "s"})).await.ok(201);
    }
    let ctl = env.anonymous();
    let first = ctl.get("/_emulator/state").await;
    let r = ctl
        .send(
            ctl.req(Method::PUT, "/_emulator/state")
                .header("content-type", "application/json")
                .body(first.body.clone()),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let second = ctl.get("/_emulator/state").await.json();
    let first = first.json();
    // (`assert!`, not `assert_eq!`: the values are large.)
    assert!(second["tenants"] == first["tenants"], "the same state exports differently after an import");
    assert!(second["keys"] == first["keys"], "keys export differently after an import");
    assert_eq!(first["tenants"][0]["ledger"]["idempotency"].as_array().map(Vec::len), Some(400));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_refuses_a_broken_state_and_keeps_the_current_one() {
    let env = Env::new().await;
    let a = &env.api;
    let singles = populate(a).await;
    let before = observe(a, &singles).await;
    let ctl = env.anonymous();
    let export = ctl.get("/_emulator/state").await.json();
    let put = |v: &Value| ctl.send(ctl.req_json(Method::PUT, "/_emulator/state", v));
    let mut wrong_version = export.clone();
    wrong_version["format_version"] = json!(99);
    put(&wrong_version).await.expect(422, "validation_failed");
    // A snapshot that disagrees with its ledger.
    let mut skewed = export.clone();
    let levels = skewed["tenants"][0]["ledger"]["levels"].as_array_mut().expect("levels");
    let quantity = &mut levels[0][1]["quantity"];
    *quantity = json!(quantity.as_i64().unwrap_or_default() + 1);
    put(&skewed).await.expect(422, "validation_failed");
    // A key of a tenant that is not there.
    let mut orphan = export.clone();
    orphan["tenants"] = json!([]);
    put(&orphan).await.expect(422, "validation_failed");
    put(&json!({"hello": "world"})).await.expect(422, "validation_failed");
    assert_eq!(observe(a, &singles).await, before, "the failed imports changed nothing");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_lifecycle_over_http() {
    let env = Env::new().await;
    let anon = env.anonymous();
    let r = anon.post("/v1/sandboxes", &json!({"name": "demo", "seed": "demo", "plan": "pro"})).await;
    let created = r.ok(201);
    assert!(created["id"].as_str().is_some_and(|s| s.starts_with("sbx_")));
    assert_eq!(created["name"], "demo");
    assert_eq!(created["plan"], "pro");
    assert!(created["created_at"].is_string());
    let sk = created["secret_key"].as_str().expect("sk").to_owned();
    let rk = created["restricted_key"].as_str().expect("rk").to_owned();
    assert!(sk.starts_with("sk_test_") && rk.starts_with("rk_test_"));
    let demo = anon.with_key(Some(&sk));
    let me = demo.get("/v1/sandbox").await.ok(200);
    assert_eq!(me["id"], created["id"]);
    // The demo seed has items, two or more locations, and movements.
    assert!(!demo.all("/v1/items").await.is_empty());
    assert!(demo.all("/v1/locations").await.len() >= 2);
    let movements = demo.all("/v1/stock-movements").await;
    assert!(!movements.is_empty());
    assert!(!demo.all("/v1/stock-levels").await.is_empty());
    // Validation of the create.
    anon.post("/v1/sandboxes", &json!({"seed": "full"})).await.expect(422, "validation_failed");
    anon.post("/v1/sandboxes", &json!({"plan": "gold"})).await.expect(422, "validation_failed");
    anon.post("/v1/sandboxes", &json!({"name": ""})).await.expect(422, "validation_failed");
    let empty = anon.post("/v1/sandboxes", &json!({})).await.ok(201);
    assert_eq!(empty["plan"], "free");
    let e = anon.with_key(empty["secret_key"].as_str());
    assert!(e.all("/v1/items").await.is_empty());
    // Reset empties it and keeps the keys; old ids are gone (404), old cursors void.
    let old_item = id(&demo.all("/v1/items").await[0]);
    let cursor = demo.get("/v1/items?limit=1").await.ok(200)["next_cursor"].as_str().expect("cursor").to_owned();
    let r = demo.post("/v1/sandbox/reset", &json!({})).await;
    assert_eq!(r.ok(200)["id"], created["id"]);
    assert!(demo.all("/v1/items").await.is_empty());
    assert!(demo.all("/v1/stock-movements").await.is_empty());
    assert!(demo.all("/v1/events").await.is_empty());
    demo.get(&format!("/v1/items/{old_item}")).await.expect(404, "not_found");
    demo.get(&format!("/v1/items?cursor={cursor}")).await.expect(400, "invalid_cursor");
    anon.with_key(Some(&rk)).get("/v1/items").await.ok(200);
    demo.post("/v1/sandbox/reset", &json!({"all": true})).await.expect(422, "validation_failed");
    // New history starts over at sequence 1.
    let i = demo.new_item().await;
    let l = demo.new_location().await;
    assert_eq!(demo.receipt(&i, &l, 1).await["sequence"], 1);
    // Delete: the sandbox and both its keys are gone.
    let r = demo.delete("/v1/sandbox", None).await;
    assert_eq!(r.status, 204);
    demo.get("/v1/sandbox").await.expect(401, "unauthenticated");
    anon.with_key(Some(&rk)).get("/v1/items").await.expect(401, "unauthenticated");
    // Others are untouched.
    env.api.get("/v1/sandbox").await.ok(200);
    e.get("/v1/sandbox").await.ok(200);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_health_and_clock() {
    let env = Env::new().await;
    let ctl = env.anonymous();
    let h = ctl.get("/_emulator/health").await.ok(200);
    assert_eq!(h["status"], "ok");
    let c0 = ctl.get("/_emulator/clock").await.ok(200);
    let c1 = ctl.post("/_emulator/clock/advance", &json!({"seconds": 7200})).await.ok(200);
    let (t0, t1) = (ts(&c0["now"]), ts(&c1["now"]));
    assert!(t1 - t0 >= 7200 && t1 - t0 < 7200 + 60, "{t0} → {t1}");
    // (The target is computed a few microseconds before the clock moves, hence not exactly 7200.)
    assert!(c1["offset_seconds"].as_f64().unwrap_or_default() >= 7199.0);
    let target = "2999-01-01T00:00:00Z";
    let c2 = ctl.post("/_emulator/clock/advance", &json!({"to": target})).await.ok(200);
    assert!(c2["now"].as_str().is_some_and(|t| t.starts_with("2999-01-01T00:00:0")));
    ctl.post("/_emulator/clock/advance", &json!({"to": "2000-01-01T00:00:00Z"})).await.expect(422, "validation_failed");
    ctl.post("/_emulator/clock/advance", &json!({"seconds": -1})).await.expect(422, "validation_failed");
    ctl.post("/_emulator/clock/advance", &json!({})).await.expect(422, "validation_failed");
    ctl.post("/_emulator/clock/advance", &json!({"seconds": 1, "to": target})).await.expect(422, "validation_failed");
    // Resources are stamped with emulator time.
    let item = env.api.item("CLOCKED").await;
    assert!(item["created_at"].as_str().is_some_and(|t| t.starts_with("2999-01-01")));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_token_guards_sandbox_creation_and_the_control_plane() {
    let mut config = twh_emulator::Config::default();
    config.http.admin_token = Some("admin-secret".to_owned());
    let emu = twh_emulator::Emulator::start(config).await.expect("start");
    let anon = Api::new(&emu.base_url(), None);
    let admin = anon.with_key(Some("admin-secret"));
    anon.post("/v1/sandboxes", &json!({})).await.expect(401, "unauthenticated");
    anon.with_key(Some("wrong")).post("/v1/sandboxes", &json!({})).await.expect(401, "unauthenticated");
    anon.get("/_emulator/state").await.expect(401, "unauthenticated");
    anon.post("/_emulator/clock/advance", &json!({"seconds": 1})).await.expect(401, "unauthenticated");
    anon.send(anon.req(Method::POST, "/_emulator/reset")).await.expect(401, "unauthenticated");
    let created = admin.post("/v1/sandboxes", &json!({"name": "guarded"})).await.ok(201);
    admin.get("/_emulator/state").await.ok(200);
    // The product API still takes the sandbox's own keys, not the admin token.
    let sk = anon.with_key(created["secret_key"].as_str());
    sk.get("/v1/items").await.ok(200);
    admin.get("/v1/items").await.expect(401, "unauthenticated");
    assert_eq!(emu.state().world.tenants().len(), 1);
    emu.shutdown().await;
}

fn ts(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().expect("time")).expect("rfc3339").timestamp()
}

/// A state naming what it does not hold (a delivery's endpoint, a movement's item or location)
/// is refused whole with 422; before, it was accepted and then panicked the dispatcher and
/// `GET /v1/stock-levels`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_refuses_dangling_references_and_keeps_the_current_state() {
    let env = Env::new().await;
    let a = &env.api;
    let sink = format!("{}/_emulator/sink/dangling", env.emu.base_url());
    a.post("/v1/webhook-endpoints", &json!({"url": sink, "event_types": ["*"]})).await.ok(201);
    let singles = populate(a).await;
    let before = observe(a, &singles).await;
    let ctl = env.anonymous();
    let export = ctl.get("/_emulator/state").await.json();
    let put = |v: &Value| ctl.send(ctl.req_json(Method::PUT, "/_emulator/state", v));
    let tenant = &export["tenants"][0];
    assert!(tenant["webhooks"]["deliveries"].as_array().is_some_and(|d| !d.is_empty()), "{}", tenant["webhooks"]);
    let mut no_endpoint = export.clone();
    no_endpoint["tenants"][0]["webhooks"]["deliveries"][0]["endpoint"] = json!(7);
    put(&no_endpoint).await.expect(422, "validation_failed");
    let mut no_event = export.clone();
    no_event["tenants"][0]["webhooks"]["deliveries"][0]["event"] = json!(1_000_000);
    put(&no_event).await.expect(422, "validation_failed");
    let mut no_item = export.clone();
    no_item["tenants"][0]["ledger"]["movements"][0]["item"] = json!(1000);
    put(&no_item).await.expect(422, "validation_failed");
    assert_eq!(observe(a, &singles).await, before, "the failed imports changed nothing");
    a.get("/v1/stock-levels").await.ok(200);
    env.shutdown().await;
}

/// Importing an earlier export keeps the clock running from where it was (it froze until wall
/// time caught up, and a rate-limited key was never admitted again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_an_older_state_keeps_the_clock_running() {
    let env = Env::new().await;
    let ctl = env.anonymous();
    let export = ctl.get("/_emulator/state").await.json();
    env.emu.advance_clock(Duration::from_secs(24 * 3600)).await;
    let ahead = ctl.get("/_emulator/clock").await.ok(200);
    ctl.send(ctl.req_json(Method::PUT, "/_emulator/state", &export)).await.ok(204);
    let first = ctl.get("/_emulator/clock").await.ok(200);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = ctl.get("/_emulator/clock").await.ok(200);
    let micros = |v: &Value| parse_time(&v["now"]).timestamp_micros();
    assert!(micros(&first) >= micros(&ahead), "the clock never goes back");
    assert!(micros(&second) - micros(&first) >= 10_000, "the clock runs: {first} then {second}");
    env.shutdown().await;
}
