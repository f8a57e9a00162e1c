//! Per-sandbox clocks, faults scoped to a sandbox, and deterministic mode (API.md §5).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use twh_emulator::{Config, Emulator};

use crate::common::*;

const DAY: i64 = 24 * 3600;

/// `POST /_emulator/sandboxes/{id}/clock/advance` by `seconds`; returns the answer.
async fn advance_sandbox(env: &Env, sandbox: &str, seconds: i64) -> Value {
    env.anonymous()
        .post(&format!("/_emulator/sandboxes/{sandbox}/clock/advance"), &json!({"seconds": seconds}))
        .await
        .ok(200)
}

async fn sandbox_now(env: &Env, sandbox: &str) -> chrono::DateTime<chrono::Utc> {
    parse_time(&env.anonymous().get(&format!("/_emulator/sandboxes/{sandbox}/clock")).await.ok(200)["now"])
}

#[tokio::test]
async fn advancing_one_sandbox_invoices_it_alone_and_stamps_its_records_later() {
    let env = Env::new().await;
    let (b, b_api) = env.other_tenant();
    let a = env.sandbox.id.clone();
    let before = env.now().await;

    let moved = advance_sandbox(&env, &a, 40 * DAY).await;
    assert_eq!(moved["sandbox_id"], a.as_str());
    assert_eq!(moved["sandbox_offset_seconds"], json!(40.0 * DAY as f64));
    let a_now = parse_time(&moved["now"]);
    assert!(a_now >= before + chrono::Duration::days(40), "{a_now} vs {before}");

    // A crossed a month end: one invoice and its event. B and the emulator clock did not move.
    let a_invoices = env.api.all("/v1/invoices").await;
    assert!(!a_invoices.is_empty(), "A is invoiced");
    assert!(env.api.all("/v1/events?type=invoice.created").await.len() == a_invoices.len());
    assert!(b_api.all("/v1/invoices").await.is_empty(), "B is not");
    assert!(b_api.all("/v1/events?type=invoice.created").await.is_empty());
    assert!(env.now().await < before + chrono::Duration::days(1), "the emulator clock stays");
    assert!(sandbox_now(&env, &b.id).await < before + chrono::Duration::days(1), "B's clock stays");

    // A's records are stamped by A's clock, B's by B's; so is A's subscription period.
    let (a_loc, b_loc) = (env.api.new_location().await, b_api.new_location().await);
    let (a_item, b_item) = (env.api.new_item().await, b_api.new_item().await);
    let b_mov = b_api.receipt(&b_item, &b_loc, 5).await;
    let a_mov = env.api.receipt(&a_item, &a_loc, 5).await;
    let (a_at, b_at) = (parse_time(&a_mov["created_at"]), parse_time(&b_mov["created_at"]));
    assert!(a_at - b_at >= chrono::Duration::days(40), "A {a_at}, B {b_at}");
    assert!(a_at - b_at < chrono::Duration::days(40) + chrono::Duration::minutes(5));
    let sub = env.api.get("/v1/subscription").await.ok(200);
    assert!(parse_time(&sub["period_start"]) > before, "A's period is a later month: {sub}");

    // The global advance moves every sandbox: B is invoiced now, and A keeps its lead.
    env.advance_to(before + chrono::Duration::days(40)).await;
    assert!(!b_api.all("/v1/invoices").await.is_empty(), "B is invoiced after the global advance");
    let (b_after, a_after) = (sandbox_now(&env, &b.id).await, sandbox_now(&env, &a).await);
    assert!(b_after >= before + chrono::Duration::days(40), "B {b_after}");
    assert!(a_after - b_after >= chrono::Duration::days(40), "A {a_after}, B {b_after}");
    let a_count = env.api.all("/v1/invoices").await.len();
    assert!(a_count > a_invoices.len(), "A's clock moved on with the emulator's: {a_count}");
}

#[tokio::test]
async fn sandbox_clock_routes_validate_like_the_global_one() {
    let env = Env::new().await;
    let anon = env.anonymous();
    let a = env.sandbox.id.clone();
    anon.get("/_emulator/sandboxes/sbx_nosuchsandbox/clock").await.expect(404, "not_found");
    anon.post("/_emulator/sandboxes/sbx_nosuchsandbox/clock/advance", &json!({"seconds": 5}))
        .await
        .expect(404, "not_found");
    let path = format!("/_emulator/sandboxes/{a}/clock/advance");
    let bad = anon.post(&path, &json!({"seconds": -1})).await;
    bad.expect(422, "validation_failed");
    assert_eq!(bad.error_fields(), ["seconds"]);
    anon.post(&path, &json!({"seconds": 1, "to": "2030-01-01T00:00:00Z"})).await.expect(422, "validation_failed");
    anon.post(&path, &json!({})).await.expect(422, "validation_failed");
    anon.post(&path, &json!({"minutes": 1})).await.expect(422, "validation_failed");
    // `to` is a time of the sandbox's clock: a time it has passed is refused, even one the
    // emulator clock has not reached.
    let ahead = advance_sandbox(&env, &a, DAY).await;
    let a_now = parse_time(&ahead["now"]);
    let past = (a_now - chrono::Duration::hours(1)).to_rfc3339();
    let refused = anon.post(&path, &json!({"to": past})).await;
    refused.expect(422, "validation_failed");
    assert_eq!(refused.error_fields(), ["to"]);
    let to = a_now + chrono::Duration::hours(2);
    let moved = anon.post(&path, &json!({"to": to.to_rfc3339()})).await.ok(200);
    assert!(parse_time(&moved["now"]) >= to);
    let read = anon.get(&format!("/_emulator/sandboxes/{a}/clock")).await.ok(200);
    assert!(read["sandbox_offset_seconds"].as_f64().unwrap() >= (DAY + 2 * 3600) as f64 - 1.0, "{read}");
    anon.get(&format!("/_emulator/sandboxes/{a}/clock?x=1")).await.expect(422, "validation_failed");
}

#[tokio::test]
async fn a_webhook_retry_of_one_sandbox_fires_on_its_advance_not_on_anothers() {
    let env = Env::new().await;
    let (b, _) = env.other_tenant();
    let a = env.sandbox.id.clone();
    // Nothing listens on port 9: every attempt fails at once.
    let endpoint = env
        .api
        .post(
            "/v1/webhook-endpoints",
            &json!({"url": "http://127.0.0.1:9/hook", "event_types": ["item.created"], "retry_schedule_seconds": [60, 60]}),
        )
        .await
        .ok(201);
    env.api.new_item().await;
    let query = format!("/v1/webhook-deliveries?endpoint_id={}", id(&endpoint));
    let attempts = |api: Api, query: String| async move {
        let d = api.all(&query).await;
        assert_eq!(d.len(), 1, "{d:?}");
        (d[0]["attempts"].as_array().unwrap().len(), d[0].clone())
    };
    // The first attempt is the background loop's.
    eventually("the first attempt", 10, || {
        let (api, q) = (env.api.clone(), query.clone());
        async move { (attempts(api, q).await.0 == 1).then_some(()) }
    })
    .await;
    // B's clock moves two minutes: A's retry (due a minute after the failure, by A's clock) waits.
    advance_sandbox(&env, &b.id, 120).await;
    let (n, delivery) = attempts(env.api.clone(), query.clone()).await;
    assert_eq!(n, 1, "B's advance fired A's retry: {delivery}");
    let due = parse_time(&delivery["next_attempt_at"]);
    // A's clock moves: the retry fires, recorded at the time it was due (A's time).
    advance_sandbox(&env, &a, 90).await;
    let (n, delivery) = attempts(env.api.clone(), query.clone()).await;
    assert_eq!(n, 2, "A's advance fires A's retry: {delivery}");
    assert_eq!(parse_time(&delivery["attempts"][1]["at"]), due);
    assert_eq!(delivery["status"], "failed");
    // The global advance fires the third (and last) attempt.
    let to = env.now().await + chrono::Duration::seconds(90);
    env.advance_to(to).await;
    let (n, delivery) = attempts(env.api.clone(), query).await;
    assert_eq!((n, delivery["status"].as_str()), (3, Some("dead")), "{delivery}");
}

#[tokio::test]
async fn idempotency_keys_and_key_grace_expire_by_each_sandboxs_clock() {
    let env = Env::new().await;
    let (b, b_api) = env.other_tenant();
    let a = env.sandbox.id.clone();
    let body = |_: &Api, item: &str, loc: &str, q: i64| json!({"type": "receipt", "item_id": item, "location_id": loc, "quantity": q});
    let (a_item, a_loc) = (env.api.new_item().await, env.api.new_location().await);
    let (b_item, b_loc) = (b_api.new_item().await, b_api.new_location().await);
    let k = key();
    env.api.post_key("/v1/stock-movements", &k, &body(&env.api, &a_item, &a_loc, 1)).await.ok(201);
    b_api.post_key("/v1/stock-movements", &k, &body(&b_api, &b_item, &b_loc, 1)).await.ok(201);
    // Both keys roll: the old secret keys enter their grace period.
    let a_rolled = env.api.post("/v1/api-keys/roll", &json!({})).await.ok(201);
    let b_rolled = b_api.post("/v1/api-keys/roll", &json!({})).await.ok(201);

    advance_sandbox(&env, &a, DAY + 3600).await;

    // A: the record expired (the key runs the new request) and the old key stopped working.
    env.api.get("/v1/items").await.expect(401, "unauthenticated");
    let a_new = env.api.with_key(a_rolled["secret_key"].as_str());
    let fresh = a_new.post_key("/v1/stock-movements", &k, &body(&a_new, &a_item, &a_loc, 2)).await;
    assert!(!fresh.replayed());
    assert_eq!(fresh.ok(201)["lines"][0]["delta"], 2);
    // B: the record and the old key live on.
    b_api.get("/v1/items").await.ok(200);
    b_api
        .post_key("/v1/stock-movements", &k, &body(&b_api, &b_item, &b_loc, 2))
        .await
        .expect(422, "idempotency_key_reused");
    let replay = b_api.post_key("/v1/stock-movements", &k, &body(&b_api, &b_item, &b_loc, 1)).await;
    assert!(replay.replayed());
    assert!(b_rolled["secret_key"].is_string());
    let _ = b;
}

#[tokio::test]
async fn the_rate_limit_refills_by_the_sandboxs_clock() {
    // Deterministic mode's clock does not move by itself, so no wall-clock refill can blur this.
    let http = twh_emulator::HttpConfig { rate_limit_per_second: 1, rate_limit_burst: 2, ..Default::default() };
    let env = Env::with_config(Config { http, deterministic: Some(7), ..Config::default() }).await;
    let (_, b_api) = env.other_tenant();
    for api in [&env.api, &b_api] {
        api.get("/v1/items").await.ok(200);
        api.get("/v1/items").await.ok(200);
        api.get("/v1/items").await.expect(429, "rate_limited");
    }
    advance_sandbox(&env, &env.sandbox.id, 10).await;
    env.api.get("/v1/items").await.ok(200);
    b_api.get("/v1/items").await.expect(429, "rate_limited");
}

#[tokio::test]
async fn a_fault_scoped_to_one_sandbox_never_touches_another() {
    let env = Env::new().await;
    let (b, b_api) = env.other_tenant();
    let anon = env.anonymous();
    let a = env.sandbox.id.clone();
    let unknown = anon
        .post("/_emulator/faults", &json!({"action": "error_before_commit", "sandbox_id": "sbx_nosuch", "times": 1}))
        .await;
    unknown.expect(404, "not_found");
    assert_eq!(unknown.error_fields(), ["sandbox_id"]);
    assert!(anon.get("/_emulator/faults").await.ok(200)["data"].as_array().unwrap().is_empty(), "nothing armed");

    let fault = anon
        .post(
            "/_emulator/faults",
            &json!({"action": "error_before_commit", "status": 503, "path_prefix": "/v1/items", "sandbox_id": a, "times": 3}),
        )
        .await
        .ok(201);
    assert_eq!(fault["sandbox_id"], a.as_str());
    // B is never touched, however often it calls.
    for _ in 0..5 {
        b_api.item(&unique("B")).await;
    }
    let listed = anon.get("/_emulator/faults").await.ok(200);
    assert_eq!(listed["data"][0]["sandbox_id"], a.as_str());
    assert_eq!(listed["data"][0]["remaining"], 3, "B's requests did not use it up");
    assert_eq!(listed["data"][0]["times"], 3, "`times` counts down with it");
    // Unauthenticated requests are no sandbox's either.
    env.anonymous().get("/v1/items").await.expect(401, "unauthenticated");
    // A's requests meet it, and nothing is written.
    env.api.post("/v1/items", &json!({"sku": "A-1", "name": "a"})).await.expect(503, "injected_fault");
    let listed = anon.get("/_emulator/faults").await.ok(200);
    assert_eq!(listed["data"][0]["remaining"], 2);
    assert_eq!(listed["data"][0]["times"], 2);
    env.api.get("/v1/items").await.expect(503, "injected_fault");
    env.api.get("/v1/items?sku=A-1").await.expect(503, "injected_fault");
    assert!(anon.get("/_emulator/faults").await.ok(200)["data"].as_array().unwrap().is_empty(), "used up");
    assert!(env.api.get("/v1/items?sku=A-1").await.ok(200)["data"].as_array().unwrap().is_empty(), "not written");
    assert_eq!(b_api.all("/v1/items").await.len(), 5);
    let _ = b;
}

/// Every answer (status, `X-Request-Id`, body) of a fixed sequence of requests to a fresh
/// emulator in deterministic mode with `seed`.
async fn deterministic_run(seed: u64) -> Vec<(String, u16, String, String)> {
    let emu = Emulator::start(Config { deterministic: Some(seed), ..Config::default() }).await.expect("start");
    let anon = Api::new(&emu.base_url(), None);
    let mut out = Vec::new();
    let mut log = |what: &str, r: &Resp| {
        out.push((what.to_owned(), r.status, r.header("x-request-id").unwrap_or_default().to_owned(), r.text()));
    };
    let clock = anon.get("/_emulator/clock").await;
    assert_eq!(clock.ok(200)["now"], "2030-01-01T00:00:00.000000Z");
    log("clock", &clock);
    let created = anon.post("/v1/sandboxes", &json!({"name": "det", "seed": "demo"})).await;
    log("sandbox", &created);
    let sandbox = created.ok(201);
    assert_eq!(sandbox["created_at"], "2030-01-01T00:00:00.000000Z");
    let api = anon.with_key(sandbox["secret_key"].as_str());
    let item = api.post("/v1/items", &json!({"sku": "DET-1", "name": "Deterministic"})).await;
    log("item", &item);
    let location = api.post("/v1/locations", &json!({"code": "DET-LOC", "name": "Here"})).await;
    log("location", &location);
    let (item, location) = (id(&item.json()), id(&location.json()));
    for (n, q) in [(1, 10), (2, -3)] {
        let body = json!({"type": "adjustment", "item_id": item, "location_id": location, "quantity": q});
        let r = api.post_key("/v1/stock-movements", &format!("det-{n}"), &body).await;
        log("movement", &r);
    }
    let hook = api
        .post("/v1/webhook-endpoints", &json!({"url": "http://127.0.0.1:9/det", "event_types": ["item.created"]}))
        .await;
    log("endpoint", &hook);
    assert!(hook.ok(201)["secret"].as_str().unwrap().starts_with("whsec_"));
    let secret = api.get(&format!("/v1/webhook-endpoints/{}/secret", id(&hook.json()))).await;
    log("secret", &secret);
    let rotated = api.post(&format!("/v1/webhook-endpoints/{}/rotate-secret", id(&hook.json())), &json!({})).await;
    log("rotated", &rotated);
    for path in ["/v1/items", "/v1/locations", "/v1/stock-movements", "/v1/stock-levels", "/v1/events?limit=100"] {
        let r = api.get(path).await;
        log(path, &r);
    }
    let problem = api.post("/v1/items", &json!({"sku": "DET-1", "name": "again"})).await;
    log("problem", &problem);
    let fault = anon.post("/_emulator/faults", &json!({"action": "delay", "delay_ms": 0, "times": 1})).await;
    log("fault", &fault);
    let rolled = api.post("/v1/api-keys/roll", &json!({})).await;
    log("roll", &rolled);
    tokio::time::sleep(Duration::from_millis(30)).await;
    let clock = anon.get("/_emulator/clock").await;
    assert_eq!(clock.json()["now"], "2030-01-01T00:00:00.000000Z", "no wall-clock drift");
    log("clock", &clock);
    let moved = anon.post("/_emulator/clock/advance", &json!({"seconds": 3600})).await;
    assert_eq!(moved.json()["now"], "2030-01-01T01:00:00.000000Z");
    log("advance", &moved);
    let item = api.post("/v1/items", &json!({"sku": "DET-2", "name": "Later"})).await;
    assert_eq!(item.json()["created_at"], "2030-01-01T01:00:00.000000Z");
    log("later item", &item);
    emu.shutdown().await;
    out
}

#[tokio::test]
async fn deterministic_mode_answers_byte_identical_bodies_and_another_seed_differs() {
    let (first, second, other) =
        (deterministic_run(42).await, deterministic_run(42).await, deterministic_run(43).await);
    assert_eq!(first.len(), second.len());
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(a, b, "seed 42 answered {} differently", a.0);
    }
    let bodies = |run: &[(String, u16, String, String)], what: &str| {
        run.iter().find(|r| r.0 == what).map(|r| r.3.clone()).expect(what)
    };
    for what in ["sandbox", "item", "endpoint", "/v1/events?limit=100"] {
        assert_ne!(bodies(&first, what), bodies(&other, what), "seed 43 answered {what} as 42 did");
    }
    // The same (frozen) clock either way: only the drawn values differ.
    assert_eq!(bodies(&first, "clock"), bodies(&other, "clock"));
}

/// The first `export TWH_API_KEY=` line that `twh-emulator serve` prints with these flags.
fn printed_key(args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_twh-emulator"))
        .args(["serve", "--port", "0", "--log", "warn"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn twh-emulator");
    let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let key =
        lines.map_while(Result::ok).take(10).find_map(|l| l.strip_prefix("export TWH_API_KEY=").map(str::to_owned));
    let _ = child.kill();
    let _ = child.wait();
    key.expect("the demo sandbox's key is printed")
}

#[test]
fn serve_deterministic_prints_the_same_key_every_time() {
    let first = printed_key(&["--deterministic", "42"]);
    assert!(first.starts_with("sk_test_"), "{first}");
    assert_eq!(printed_key(&["--deterministic", "42"]), first);
    assert_ne!(printed_key(&["--deterministic", "43"]), first);
    assert_ne!(printed_key(&[]), printed_key(&[]), "random without the flag");
}

#[tokio::test]
async fn a_sandboxs_clock_survives_export_and_import() {
    let env = Env::new().await;
    let a = env.sandbox.id.clone();
    advance_sandbox(&env, &a, 10 * DAY).await;
    let anon = env.anonymous();
    let state = anon.get("/_emulator/state").await.ok(200);
    let tenant =
        state["tenants"].as_array().unwrap().iter().find(|t| t["sandbox"]["id"] == a.as_str()).unwrap().clone();
    assert_eq!(tenant["clock_offset_micros"], json!(10 * DAY * 1_000_000));
    anon.send(anon.req(Method::POST, "/_emulator/reset")).await.ok(204);
    anon.get(&format!("/_emulator/sandboxes/{a}/clock")).await.expect(404, "not_found");
    anon.send(anon.req_json(Method::PUT, "/_emulator/state", &state)).await.ok(204);
    let read = anon.get(&format!("/_emulator/sandboxes/{a}/clock")).await.ok(200);
    assert_eq!(read["sandbox_offset_seconds"], json!(10.0 * DAY as f64));
    // A negative offset is refused whole.
    let mut bad = state.clone();
    bad["tenants"][0]["clock_offset_micros"] = json!(-1);
    anon.send(anon.req_json(Method::PUT, "/_emulator/state", &bad)).await.expect(422, "validation_failed");
}

#[tokio::test]
async fn a_sandboxs_clock_survives_a_restart_with_a_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = || Config { data_dir: Some(dir.path().to_owned()), ..Config::default() };
    let emu = Emulator::start(config()).await.expect("start");
    let (a, b) =
        (emu.create_sandbox(Default::default()).expect("a"), emu.create_sandbox(Default::default()).expect("b"));
    let anon = Api::new(&emu.base_url(), None);
    anon.post(&format!("/_emulator/sandboxes/{}/clock/advance", a.id), &json!({"seconds": 3 * DAY})).await.ok(200);
    emu.shutdown().await;

    let emu = Emulator::start(config()).await.expect("restart");
    let anon = Api::new(&emu.base_url(), None);
    let read = |id: String| {
        let anon = anon.clone();
        async move { anon.get(&format!("/_emulator/sandboxes/{id}/clock")).await.ok(200)["sandbox_offset_seconds"].clone() }
    };
    assert_eq!(read(a.id.clone()).await, json!(3.0 * DAY as f64));
    assert_eq!(read(b.id.clone()).await, json!(0.0));
    // And it goes on from there.
    let api = Api::new(&emu.base_url(), Some(&a.secret_key));
    let item = api.item("AFTER").await;
    assert!(
        parse_time(&item["created_at"])
            >= chrono::Utc::now() + chrono::Duration::days(3) - chrono::Duration::minutes(1)
    );
    emu.shutdown().await;
}
