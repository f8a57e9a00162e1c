//! Webhooks (API.md "Events and webhooks", §5 sink): signed delivery that interoperates with the
//! `standardwebhooks` reference library, the retry schedule walked by clock advances, the
//! dead-letter queue and replay, timeouts, 410, `Retry-After`, deletion, tenant isolation, and
//! a burst to a dead receiver staying bounded.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use parking_lot::Mutex;
use reqwest::Method;
use serde_json::{Value, json};
use twh_emulator::domain::model::CreateSandbox;
use twh_emulator::{Config, Emulator, WebhookSettings};

use crate::common::{Api, Env, id, unique};

/// One request a receiver got.
#[derive(Clone, Debug)]
struct Received {
    headers: BTreeMap<String, String>,
    body: String,
}

/// How a receiver answers.
#[derive(Clone, Debug)]
struct Behaviour {
    status: u16,
    delay: Duration,
    retry_after: Option<u64>,
}

/// A plain local HTTP server that records what it receives.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    behaviour: Arc<Mutex<Behaviour>>,
}

impl Receiver {
    async fn start(status: u16) -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let behaviour = Arc::new(Mutex::new(Behaviour { status, delay: Duration::ZERO, retry_after: None }));
        let (g, b) = (got.clone(), behaviour.clone());
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let (g, b) = (g.clone(), b.clone());
            async move {
                let now = b.lock().clone();
                g.lock().push(Received {
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                        .collect(),
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                tokio::time::sleep(now.delay).await;
                let mut r = StatusCode::from_u16(now.status).unwrap_or(StatusCode::OK).into_response();
                if let Some(s) = now.retry_after {
                    r.headers_mut().insert("retry-after", s.to_string().parse().unwrap());
                }
                r
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Receiver { url, got, behaviour }
    }

    fn set(&self, status: u16) {
        self.behaviour.lock().status = status;
    }

    fn count(&self) -> usize {
        self.got.lock().len()
    }

    fn all(&self) -> Vec<Received> {
        self.got.lock().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.count() < n {
            assert!(Instant::now() < deadline, "receiver got {} requests, expected {n}", self.count());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.all()
    }
}

/// The Python of the test tools' virtualenv (`scripts/python-env` makes it).
fn python() -> PathBuf {
    let path = std::env::var_os("TWH_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        home.join(".cache/twh/venv/bin/python")
    });
    assert!(path.exists(), "{} is missing: run scripts/python-env (it installs standardwebhooks)", path.display());
    path
}

fn run_python(script: &str, args: &[&str], stdin: &str) -> Result<String, String> {
    use std::io::Write;
    let mut child = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Verifies a delivery with the `standardwebhooks` reference library.
fn reference_verify(secret: &str, r: &Received) -> Result<(), String> {
    let script = "import sys, json\nfrom standardwebhooks.webhooks import Webhook\nWebhook(sys.argv[1]).verify(sys.stdin.read(), json.loads(sys.argv[2]))\n";
    let headers = serde_json::to_string(&r.headers).unwrap();
    run_python(script, &[secret, &headers], &r.body).map(|_| ())
}

/// Signs with the `standardwebhooks` reference library.
fn reference_sign(secret: &str, msg_id: &str, timestamp: i64, body: &str) -> String {
    let script = "import sys, datetime\nfrom standardwebhooks.webhooks import Webhook\nts = datetime.datetime.fromtimestamp(int(sys.argv[3]), tz=datetime.timezone.utc)\nprint(Webhook(sys.argv[1]).sign(sys.argv[2], ts, sys.stdin.read()))\n";
    run_python(script, &[secret, msg_id, &timestamp.to_string()], body).expect("reference sign")
}

fn ours_verify(secret: &str, r: &Received) -> Result<(), twh_webhooks::Error> {
    let secret = twh_webhooks::Secret::parse(secret).expect("secret");
    let h = twh_webhooks::Headers {
        id: &r.headers["webhook-id"],
        timestamp: &r.headers["webhook-timestamp"],
        signature: &r.headers["webhook-signature"],
    };
    twh_webhooks::verify(&secret, h, r.body.as_bytes(), chrono::Utc::now().timestamp(), 300)
}

async fn endpoint(api: &Api, url: &str, types: Value) -> Value {
    api.post("/v1/webhook-endpoints", &json!({"url": url, "event_types": types})).await.ok(201)
}

async fn deliveries(api: &Api, query: &str) -> Vec<Value> {
    api.all(&format!("/v1/webhook-deliveries?{query}")).await
}

async fn start_with(webhooks: WebhookSettings) -> Env {
    let emu = Emulator::start(Config { webhooks, ..Config::default() }).await.unwrap();
    let sandbox = emu.create_sandbox(CreateSandbox::default()).unwrap();
    let api = Api::new(&emu.base_url(), Some(&sandbox.secret_key));
    Env { emu, sandbox, api }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_interoperate_with_the_reference_library_both_ways_and_through_a_rotation() {
    let env = Env::new().await;
    let rx = Receiver::start(200).await;
    // Only item.created: the clock advance below passes a midnight (a nightly
    // `reconciliation.completed`) and, near a month's end, a period end (`invoice.created`).
    let ep = endpoint(&env.api, &rx.url, json!(["item.created"])).await;
    let secret = ep["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let item = env.api.item(&unique("SKU")).await;

    let got = rx.wait_for(1).await;
    let r = &got[0];
    let event: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(event["type"], "item.created");
    assert_eq!(event["data"]["id"], item["id"]);
    assert_eq!(r.headers["webhook-id"], event["id"].as_str().unwrap(), "webhook-id is the event id");
    assert_eq!(r.headers["content-type"], "application/json");
    let ts: i64 = r.headers["webhook-timestamp"].parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 60, "wall-clock timestamp");
    reference_verify(&secret, r).expect("the reference library accepts our delivery");
    ours_verify(&secret, r).expect("we accept our delivery");
    let mut tampered = r.clone();
    tampered.body.push(' ');
    assert!(reference_verify(&secret, &tampered).is_err(), "a changed body fails the reference check");

    // Signed by the reference library, verified by ours.
    let now = chrono::Utc::now().timestamp();
    let sig = reference_sign(&secret, "msg_ref_1", now, r#"{"hello":"world"}"#);
    let signed = Received {
        headers: BTreeMap::from([
            ("webhook-id".to_owned(), "msg_ref_1".to_owned()),
            ("webhook-timestamp".to_owned(), now.to_string()),
            ("webhook-signature".to_owned(), sig),
        ]),
        body: r#"{"hello":"world"}"#.to_owned(),
    };
    ours_verify(&secret, &signed).expect("we accept what the reference library signs");

    // Rotation: for 24 h both secrets sign, and each verifies with the reference library.
    let rotated = env.api.post(&format!("/v1/webhook-endpoints/{}/rotate-secret", id(&ep)), &json!({})).await.ok(200);
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    env.api.item(&unique("SKU")).await;
    let got = rx.wait_for(2).await;
    let r = &got[1];
    assert_eq!(r.headers["webhook-signature"].split(' ').count(), 2, "both signatures during the overlap");
    reference_verify(&new_secret, r).expect("new secret verifies");
    reference_verify(&secret, r).expect("old secret verifies during the overlap");
    ours_verify(&secret, r).expect("ours: old secret");
    ours_verify(&new_secret, r).expect("ours: new secret");

    // After the overlap only the new secret signs.
    env.emu.advance_clock(Duration::from_secs(24 * 3600 + 1)).await;
    env.api.item(&unique("SKU")).await;
    let got = rx.wait_for(3).await;
    let r = &got[2];
    assert_eq!(r.headers["webhook-signature"].split(' ').count(), 1);
    reference_verify(&new_secret, r).expect("new secret verifies");
    assert!(reference_verify(&secret, r).is_err(), "old secret no longer signs");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_gets_eight_attempts_on_schedule_then_the_delivery_is_dead_and_replays() {
    let env = Env::new().await;
    let rx = Receiver::start(500).await;
    let ep = endpoint(&env.api, &rx.url, json!(["item.created"])).await;
    env.api.item(&unique("SKU")).await;
    rx.wait_for(1).await;

    // Walk the whole schedule (27.6 h) in one advance: every attempt fires in time order.
    env.emu.advance_clock(Duration::from_secs(30 * 3600)).await;
    assert_eq!(rx.count(), 8, "exactly 8 attempts");
    let list = deliveries(&env.api, &format!("endpoint_id={}", id(&ep))).await;
    assert_eq!(list.len(), 1);
    let d = &list[0];
    assert_eq!(d["status"], "dead");
    assert_eq!(d["next_attempt_at"], Value::Null);
    let attempts = d["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 8);
    let at: Vec<i64> = attempts
        .iter()
        .map(|a| chrono::DateTime::parse_from_rfc3339(a["at"].as_str().unwrap()).unwrap().timestamp_micros())
        .collect();
    let expected = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];
    for (i, want) in expected.iter().enumerate() {
        let gap = (at[i + 1] - at[i]) as f64 / 1e6;
        let want = *want as f64;
        assert!(
            gap >= want && gap <= want * 1.01 + 0.5,
            "attempt {} came {gap} s after the previous, expected {want} s",
            i + 2
        );
    }
    for a in attempts {
        assert_eq!(a["status_code"], 500);
        assert!(a["error"].as_str().unwrap().contains("500"));
        assert!(a["duration_ms"].as_u64().is_some());
    }
    let exhausted = env.api.all("/v1/events?type=webhook_delivery.exhausted").await;
    assert_eq!(exhausted.len(), 1, "one exhausted event");
    assert_eq!(exhausted[0]["data"]["id"], d["id"]);
    assert_eq!(
        deliveries(&env.api, "status=dead").await.len(),
        1,
        "the exhausted event is not sent to the dead endpoint"
    );

    // Replay to a now-healthy receiver: same webhook-id, succeeded.
    rx.set(200);
    let replayed = env.api.post(&format!("/v1/webhook-deliveries/{}/replay", id(d)), &json!({})).await.ok(202);
    assert_eq!(replayed["status"], "pending");
    let got = rx.wait_for(9).await;
    let ids: Vec<&str> = got.iter().map(|r| r.headers["webhook-id"].as_str()).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "same webhook-id on every attempt and the replay");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let d = env.api.get(&format!("/v1/webhook-deliveries/{}", id(d))).await.ok(200);
        if d["status"] == "succeeded" {
            assert_eq!(d["attempts"].as_array().unwrap().len(), 9);
            break;
        }
        assert!(Instant::now() < deadline, "replay did not succeed: {d}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_replay_requeues_dead_deliveries_in_a_window_and_counts_them() {
    let env = Env::new().await;
    let rx = Receiver::start(500).await;
    let ep = env
        .api
        .post(
            "/v1/webhook-endpoints",
            &json!({"url": rx.url, "event_types": ["item.created"], "retry_schedule_seconds": [1]}),
        )
        .await
        .ok(201);
    env.api.item(&unique("SKU")).await;
    env.api.item(&unique("SKU")).await;
    rx.wait_for(2).await;
    env.emu.advance_clock(Duration::from_secs(10)).await;
    assert_eq!(rx.count(), 4, "per-endpoint schedule: 2 attempts each");
    assert_eq!(deliveries(&env.api, "status=dead").await.len(), 2);
    let path = format!("/v1/webhook-endpoints/{}/replay", id(&ep));
    let past = env.api.post(&path, &json!({"status": "dead", "until": "2000-01-01T00:00:00Z"})).await.ok(202);
    assert_eq!(past["count"], 0, "nothing before 2000");
    env.api.post(&path, &json!({"status": "failed"})).await.expect(422, "validation_failed");
    rx.set(200);
    // No body: `status` defaults to `dead`, the only status a bulk replay takes.
    let all = env.api.send(env.api.req(Method::POST, &path)).await.ok(202);
    assert_eq!(all["count"], 2);
    rx.wait_for(6).await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_beyond_the_timeout_is_a_failed_attempt() {
    let env = start_with(WebhookSettings { timeout: Duration::from_millis(300), ..WebhookSettings::default() }).await;
    let rx = Receiver::start(200).await;
    rx.behaviour.lock().delay = Duration::from_secs(3);
    endpoint(&env.api, &rx.url, json!(["item.created"])).await;
    env.api.item(&unique("SKU")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let d = loop {
        let list = deliveries(&env.api, "").await;
        if list.first().is_some_and(|d| !d["attempts"].as_array().unwrap().is_empty()) {
            break list[0].clone();
        }
        assert!(Instant::now() < deadline, "no attempt recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(d["status"], "failed");
    let a = &d["attempts"][0];
    assert_eq!(a["status_code"], Value::Null);
    assert!(a["error"].as_str().unwrap().contains("timed out"), "{a}");
    assert!(a["duration_ms"].as_u64().unwrap() >= 300);
    assert!(d["next_attempt_at"].is_string(), "a retry is scheduled");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_the_endpoint_and_retry_after_is_honoured() {
    let env = Env::new().await;
    let gone = Receiver::start(410).await;
    let ep = endpoint(&env.api, &gone.url, json!(["item.created"])).await;
    env.api.item(&unique("SKU")).await;
    gone.wait_for(1).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while env.api.all("/v1/events?type=webhook_endpoint.disabled").await.is_empty() {
        assert!(Instant::now() < deadline, "no webhook_endpoint.disabled event");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let e = env.api.get(&format!("/v1/webhook-endpoints/{}", id(&ep))).await.ok(200);
    assert_eq!(e["enabled"], false);
    assert_eq!(deliveries(&env.api, "").await[0]["status"], "dead");
    env.api.item(&unique("SKU")).await;
    env.emu.advance_clock(Duration::from_secs(3600)).await;
    assert_eq!(gone.count(), 1, "a disabled endpoint gets nothing");
    env.api.post(&format!("/v1/webhook-endpoints/{}/test", id(&ep)), &json!({})).await.expect(409, "endpoint_disabled");

    let busy = Receiver::start(503).await;
    busy.behaviour.lock().retry_after = Some(600);
    endpoint(&env.api, &busy.url, json!(["item.created"])).await;
    env.api.item(&unique("SKU")).await;
    busy.wait_for(1).await;
    env.emu.advance_clock(Duration::from_secs(300)).await;
    assert_eq!(busy.count(), 1, "Retry-After: 600 holds the 5 s retry back");
    env.emu.advance_clock(Duration::from_secs(301)).await;
    assert_eq!(busy.count(), 2);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_endpoint_stops_its_pending_deliveries() {
    let env = Env::new().await;
    let rx = Receiver::start(500).await;
    let ep = endpoint(&env.api, &rx.url, json!(["*"])).await;
    env.api.item(&unique("SKU")).await;
    rx.wait_for(1).await;
    let path = format!("/v1/webhook-endpoints/{}", id(&ep));
    env.api.delete(&path, None).await.expect(428, "precondition_required");
    env.api.delete(&path, Some("\"1\"")).await.ok(204);
    env.api.get(&path).await.expect(404, "not_found");
    env.emu.advance_clock(Duration::from_secs(48 * 3600)).await;
    assert_eq!(rx.count(), 1, "no attempt after the delete");
    let d = &deliveries(&env.api, "").await[0];
    assert_eq!(d["status"], "dead");
    assert_eq!(d["next_attempt_at"], Value::Null);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_never_receive_each_others_events_and_the_sink_records_deliveries() {
    let env = Env::new().await;
    let (_, other) = env.other_tenant();
    let base = env.emu.base_url();
    let mine = endpoint(&env.api, &format!("{base}/_emulator/sink/mine"), json!(["*"])).await;
    endpoint(&other, &format!("{base}/_emulator/sink/theirs"), json!(["*"])).await;
    let item = env.api.item(&unique("SKU")).await;
    let loc = env.api.location(&unique("LOC")).await;
    env.api.receipt(&id(&item), &id(&loc), 5).await;
    other.item(&unique("SKU")).await;

    let anon = env.anonymous();
    let deadline = Instant::now() + Duration::from_secs(10);
    let (got_mine, got_theirs) = loop {
        let m = anon.get("/_emulator/sink/mine").await.ok(200)["data"].as_array().unwrap().clone();
        let t = anon.get("/_emulator/sink/theirs").await.ok(200)["data"].as_array().unwrap().clone();
        if m.len() >= 4 && !t.is_empty() {
            break (m, t);
        }
        assert!(Instant::now() < deadline, "sinks got {} and {}", m.len(), t.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let my_events: Vec<String> = env.api.all("/v1/events").await.iter().map(id).collect();
    let their_events: Vec<String> = other.all("/v1/events").await.iter().map(id).collect();
    let ids = |entries: &[Value]| -> Vec<String> {
        entries.iter().map(|e| e["headers"]["webhook-id"].as_str().unwrap().to_owned()).collect()
    };
    let mut received_mine = ids(&got_mine);
    received_mine.sort();
    let mut expected = my_events.clone();
    expected.sort();
    assert_eq!(received_mine, expected, "every event of mine, once, and nothing else");
    assert!(ids(&got_theirs).iter().all(|i| their_events.contains(i) && !my_events.contains(i)));
    let secret = mine["secret"].as_str().unwrap();
    for e in &got_mine {
        let r = Received {
            headers: serde_json::from_value(e["headers"].clone()).unwrap(),
            body: e["body"].as_str().unwrap().to_owned(),
        };
        ours_verify(secret, &r).expect("sink entries verify");
    }
    anon.delete("/_emulator/sink/mine", None).await.ok(204);
    assert!(anon.get("/_emulator/sink/mine").await.ok(200)["data"].as_array().unwrap().is_empty());
    anon.get("/_emulator/sink/bad%20name").await.expect(422, "validation_failed");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_validate_and_version_and_ping() {
    let env = Env::new().await;
    let rx = Receiver::start(204).await;
    env.api
        .post("/v1/webhook-endpoints", &json!({"url": "ftp://x", "event_types": ["*"]}))
        .await
        .expect(422, "validation_failed");
    let bad = env.api.post("/v1/webhook-endpoints", &json!({"url": rx.url, "event_types": ["item.exploded"]})).await;
    bad.expect(422, "validation_failed");
    assert_eq!(bad.error_fields(), vec!["event_types[0]"]);
    let ep = endpoint(&env.api, &rx.url, json!(["stock_movement.created"])).await;
    let path = format!("/v1/webhook-endpoints/{}", id(&ep));
    env.api.patch(&path, Some("\"9\""), &json!({"description": "x"})).await.expect(412, "precondition_failed");
    let patched = env.api.patch(&path, Some("\"1\""), &json!({"description": "orders"})).await.ok(200);
    assert_eq!(patched["version"], 2);
    assert_eq!(env.api.all("/v1/webhook-endpoints").await.len(), 1);
    let ping = env.api.post(&format!("{path}/test"), &json!({})).await.ok(202);
    assert_eq!(ping["event_type"], "ping");
    let got = rx.wait_for(1).await;
    let event: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(event["type"], "ping");
    ours_verify(ep["secret"].as_str().unwrap(), &got[0]).unwrap();
    env.api.item(&unique("SKU")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.count(), 1, "item.created is not subscribed");
    let (_, other) = env.other_tenant();
    other.get(&path).await.expect(404, "not_found");
    other.get(&format!("/v1/webhook-deliveries/{}", id(&ping))).await.expect(404, "not_found");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_ten_thousand_events_to_a_dead_receiver_stays_bounded_and_the_api_answers() {
    let env = start_with(WebhookSettings { concurrency: 8, batch_max: 256, ..WebhookSettings::default() }).await;
    // A port nothing listens on: every attempt fails at connect.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    endpoint(&env.api, &dead, json!(["stock_movement.created"])).await;
    let item = id(&env.api.item(&unique("SKU")).await);
    let loc = id(&env.api.location(&unique("LOC")).await);
    for _ in 0..10 {
        let movements: Vec<Value> =
            (0..1000).map(|_| json!({"type": "receipt", "item_id": item, "location_id": loc, "quantity": 1})).collect();
        env.api
            .post_key("/v1/stock-movements/batch", &crate::common::key(), &json!({"movements": movements}))
            .await
            .ok(201);
        let h = env.anonymous().get("/_emulator/health").await.ok(200);
        assert!(h["webhooks"]["in_flight"].as_u64().unwrap() <= 8, "concurrency bound: {h}");
        assert_eq!(h["webhooks"]["batch_max"], 256, "queue bound reported");
    }
    assert_eq!(env.api.level(&item, &loc).await["quantity"], 10_000);
    let h = env.anonymous().get("/_emulator/health").await.ok(200);
    assert!(h["webhooks"]["waiting"].as_u64().unwrap() <= 10_000, "{h}");
    // Every delivery is a record in the tenant (none lost, none duplicated), not a queue entry.
    assert_eq!(env.api.all("/v1/webhook-deliveries?status=succeeded").await.len(), 0);
    let tenant = env.emu.state().world.tenant(&env.sandbox.id).unwrap();
    assert!(tenant.state.lock().webhooks.waiting() <= 10_000);
    env.shutdown().await;
}

/// Polls the deliveries of `query` until `n` of them have `attempts` attempts each.
async fn wait_attempts(api: &Api, query: &str, n: usize, attempts: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = deliveries(api, query).await;
        if list.len() == n && list.iter().all(|d| d["attempts"].as_array().map_or(0, Vec::len) == attempts) {
            return list;
        }
        assert!(Instant::now() < deadline, "waiting for {n} deliveries with {attempts} attempts: {list:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_receiver_is_not_connected_to_again_during_the_cool_down_but_every_attempt_is_recorded() {
    let cool_down = Duration::from_secs(60);
    let env = start_with(WebhookSettings { connect_cool_down: cool_down, ..WebhookSettings::default() }).await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    let ep = endpoint(&env.api, &dead, json!(["item.created"])).await;
    let query = format!("endpoint_id={}", id(&ep));
    env.api.item(&unique("SKU")).await;
    let first = wait_attempts(&env.api, &query, 1, 1).await;
    let error = first[0]["attempts"][0]["error"].as_str().unwrap();
    assert!(error.starts_with("could not connect") && !error.contains("not sent"), "{error}");

    // Within the cool-down the next delivery's attempt is made and recorded, without a connect.
    env.api.item(&unique("SKU")).await;
    let both = wait_attempts(&env.api, &query, 2, 1).await;
    let second = both.iter().find(|d| d["id"] != first[0]["id"]).unwrap();
    let error = second["attempts"][0]["error"].as_str().unwrap();
    assert!(error.starts_with("could not connect") && error.contains("not sent"), "{error}");
    assert_eq!(second["status"], "failed");
    assert!(second["next_attempt_at"].is_string(), "the schedule goes on");

    // A clock advance always connects: the retries (due 5 s later) are really sent.
    env.emu.advance_clock(Duration::from_secs(10)).await;
    for d in wait_attempts(&env.api, &query, 2, 2).await {
        let error = d["attempts"][1]["error"].as_str().unwrap();
        assert!(error.starts_with("could not connect") && !error.contains("not sent"), "{error}");
    }
    env.shutdown().await;
}

/// A signing secret is enough to forge deliveries: only the create and rotate answers and
/// `GET …/{id}/secret` with a secret key show it (API.md §4); a restricted key, which may read
/// endpoints, sees none and gets 403 at `…/secret`.
#[tokio::test]
async fn a_restricted_key_never_reads_a_signing_secret() {
    let env = Env::new().await;
    let created = endpoint(&env.api, "https://example.com/hook", json!(["*"])).await;
    let secret = created["secret"].as_str().expect("create answers the secret").to_owned();
    let path = format!("/v1/webhook-endpoints/{}", id(&created));
    let read = env.api.with_key(Some(&env.sandbox.restricted_key));
    for answer in [
        read.get("/v1/webhook-endpoints").await.ok(200)["data"][0].clone(),
        read.get(&path).await.ok(200),
        env.api.get(&path).await.ok(200),
        env.api.patch(&path, Some("*"), &json!({"description": "x"})).await.ok(200),
    ] {
        assert_eq!(answer["id"], created["id"]);
        assert!(answer.get("secret").is_none(), "no secret in {answer}");
    }
    read.get(&format!("{path}/secret")).await.expect(403, "forbidden");
    assert_eq!(env.api.get(&format!("{path}/secret")).await.ok(200), json!({"secret": secret}));
    let rotated = env.api.post(&format!("{path}/rotate-secret"), &json!({})).await.ok(200);
    let fresh = rotated["secret"].as_str().expect("rotate answers the secret");
    assert_ne!(fresh, secret);
    assert_eq!(env.api.get(&format!("{path}/secret")).await.ok(200)["secret"], fresh);
    env.api.get("/v1/webhook-endpoints/we_nope/secret").await.expect(404, "not_found");
}

/// Issue 19 item 11: one sandbox's receiver that accepts connections and never answers, with a
/// batch of 1,000 movements waiting for it, must not hold up another sandbox's delivery for a
/// webhook timeout. The dispatcher claims across sandboxes in turn, caps what one sandbox has in
/// flight, and claims again as soon as a slot frees or a commit wakes it (it never waits for a
/// whole batch to finish).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_does_not_delay_another_sandboxs_delivery() {
    let timeout = Duration::from_secs(5);
    let env = start_with(WebhookSettings { timeout, ..WebhookSettings::default() }).await;
    // Accepts every connection and never answers (the sockets are kept open).
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}/hooks", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    endpoint(&env.api, &silent_url, json!(["stock_movement.created"])).await;
    let item = id(&env.api.item(&unique("SKU")).await);
    let loc = id(&env.api.location(&unique("LOC")).await);
    let movements: Vec<Value> =
        (0..1000).map(|_| json!({"type": "receipt", "item_id": item, "location_id": loc, "quantity": 1})).collect();
    env.api
        .post_key("/v1/stock-movements/batch", &crate::common::key(), &json!({"movements": movements}))
        .await
        .ok(201);
    // Let the dispatcher take the silent receiver's deliveries first.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let h = env.anonymous().get("/_emulator/health").await.ok(200);
        if h["webhooks"]["in_flight"].as_u64().unwrap() > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "nothing went to the silent receiver: {h}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let (_, other) = env.other_tenant();
    let rx = Receiver::start(200).await;
    endpoint(&other, &rx.url, json!(["item.created"])).await;
    let started = Instant::now();
    other.item(&unique("SKU")).await;
    rx.wait_for(1).await;
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(2), "the other sandbox's delivery waited {waited:?} (timeout {timeout:?})");
    held.abort();
    env.shutdown().await;
}

/// Issue 19 item 14: a receiver that never answers starts the connect cool-down like a refused
/// connection (a timeout used not to), so the next attempt within it is recorded without tying
/// up a slot for another whole timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_receiver_starts_the_cool_down() {
    let env = start_with(WebhookSettings {
        timeout: Duration::from_millis(300),
        connect_cool_down: Duration::from_secs(60),
        ..WebhookSettings::default()
    })
    .await;
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let ep = endpoint(&env.api, &url, json!(["item.created"])).await;
    let query = format!("endpoint_id={}", id(&ep));
    env.api.item(&unique("SKU")).await;
    let first = wait_attempts(&env.api, &query, 1, 1).await;
    let error = first[0]["attempts"][0]["error"].as_str().unwrap();
    assert!(error.starts_with("timed out") && !error.contains("not sent"), "{error}");
    let started = Instant::now();
    env.api.item(&unique("SKU")).await;
    let both = wait_attempts(&env.api, &query, 2, 1).await;
    let second = both.iter().find(|d| d["id"] != first[0]["id"]).unwrap();
    let error = second["attempts"][0]["error"].as_str().unwrap();
    assert!(error.contains("not sent"), "{error}");
    assert!(started.elapsed() < Duration::from_millis(300), "no second timeout was waited for");
    held.abort();
    env.shutdown().await;
}

/// Issue 19 item 14: `https://` endpoints are accepted, so the emulator speaks TLS to them (it
/// used to be built without TLS, and every attempt to an https URL failed before connecting).
/// Here the receiver is a plain TCP socket that answers garbage: the attempt fails in the TLS
/// handshake, which it could only reach with TLS built in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_receivers_are_reached_over_tls() {
    let env = start_with(WebhookSettings { connect_cool_down: Duration::ZERO, ..WebhookSettings::default() }).await;
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://localhost:{}/hooks", plain.local_addr().unwrap().port());
    let handshakes = Arc::new(Mutex::new(0usize));
    let seen = handshakes.clone();
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = plain.accept().await {
            let mut first = [0u8; 1];
            // A TLS ClientHello starts with the handshake record type, 22.
            if socket.read_exact(&mut first).await.is_ok() && first[0] == 22 {
                *seen.lock() += 1;
            }
            let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
        }
    });
    let ep = endpoint(&env.api, &url, json!(["item.created"])).await;
    env.api.item(&unique("SKU")).await;
    let list = wait_attempts(&env.api, &format!("endpoint_id={}", id(&ep)), 1, 1).await;
    let error = list[0]["attempts"][0]["error"].as_str().unwrap().to_owned();
    assert_eq!(list[0]["attempts"][0]["status_code"], Value::Null, "{error}");
    assert_eq!(*handshakes.lock(), 1, "the emulator sent a TLS ClientHello (attempt error: {error})");
    server.abort();
    env.shutdown().await;
}
