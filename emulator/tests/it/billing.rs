//! API.md "Metering, quotas and billing": plans and the subscription, hard quotas (429
//! `quota_exceeded` with `Retry-After`, nothing written, one event per meter and period), upgrades
//! that apply at once, per-key rate limits and their headers, and a month of mixed traffic whose
//! invoice equals what the ledger, the webhook attempts and the test's own request log say, to
//! the unit, as does the usage export.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use twh_emulator::domain::billing::{PerMeter, Plans};
use twh_emulator::domain::model::{CreateSandbox, Seed};
use twh_emulator::domain::registry::Settings;
use twh_emulator::{Config, HttpConfig};

use crate::common::*;

fn receipts(item: &str, loc: &str, n: usize) -> Value {
    let movements: Vec<Value> =
        (0..n).map(|_| json!({"type": "receipt", "item_id": item, "location_id": loc, "quantity": 1})).collect();
    json!({"movements": movements})
}

fn meter(usage: &Value, name: &str) -> Value {
    usage["meters"].as_array().expect("meters").iter().find(|m| m["meter"] == name).cloned().expect("meter")
}

/// `Retry-After` must be the seconds from now to the end of the period (ceil; a second of slack
/// for the time the requests take).
#[track_caller]
fn assert_retry_after_is_period_end(r: &Resp, now: chrono::DateTime<chrono::Utc>) {
    let retry: i64 = r.header("retry-after").expect("Retry-After").parse().expect("seconds");
    let expected = (next_month_start(now) - now).num_milliseconds().div_euclid(1000) + 1;
    assert!((retry - expected).abs() <= 2, "Retry-After {retry}, expected about {expected}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_and_the_subscription() {
    let env = Env::new().await;
    let a = &env.api;
    let plans = a.get("/v1/plans").await.ok(200);
    let ids: Vec<&str> = plans["data"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["free", "pro"]);
    let free = &plans["data"][0];
    assert_eq!(free["hard_quotas"], true);
    assert_eq!(free["quotas"], json!({"api_requests": 100_000, "ledger_lines": 20_000, "webhook_attempts": 20_000}));
    let pro = &plans["data"][1];
    assert_eq!((pro["currency"].as_str(), pro["hard_quotas"].as_bool()), (Some("usd"), Some(false)));
    assert!(pro["base_amount"].as_u64().unwrap() > 0);
    assert!(pro["overage_unit_amount"]["ledger_lines"].as_u64().unwrap() > 0);

    let now = env.now().await;
    let sub = a.get("/v1/subscription").await.ok(200);
    assert_eq!(sub["plan"], "free");
    assert_eq!(parse_time(&sub["period_end"]), next_month_start(now));
    assert!(parse_time(&sub["period_start"]) <= now);
    a.post("/v1/subscription", &json!({"plan": "gold"})).await.expect(422, "validation_failed");
    a.post("/v1/subscription", &json!({})).await.expect(422, "validation_failed");
    env.restricted().post("/v1/subscription", &json!({"plan": "pro"})).await.expect(403, "forbidden");
    assert_eq!(a.post("/v1/subscription", &json!({"plan": "pro"})).await.ok(200)["plan"], "pro");
    assert_eq!(a.get("/v1/sandbox").await.ok(200)["plan"], "pro");
    let usage = a.get("/v1/usage").await.ok(200);
    assert_eq!(usage["plan"], "pro");
    assert_eq!(meter(&usage, "ledger_lines")["quota"], 200_000);
    a.get("/v1/usage?period=2999-01").await.expect(422, "validation_failed");
    a.get("/v1/usage?period=last").await.expect(422, "validation_failed");
    let old = a.get("/v1/usage?period=2001-01").await.ok(200);
    assert_eq!(meter(&old, "api_requests")["quantity"], 0, "before the sandbox existed");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_free_sandbox_past_its_ledger_lines_quota_is_refused_until_it_upgrades() {
    let env = Env::new().await;
    let a = &env.api;
    let item = a.new_item().await;
    let loc = a.new_location().await;
    // 20,000 lines: exactly the free quota.
    for _ in 0..20 {
        a.post_key("/v1/stock-movements/batch", &key(), &receipts(&item, &loc, 1000)).await.ok(201);
    }
    let usage = a.get("/v1/usage").await.ok(200);
    assert_eq!(
        meter(&usage, "ledger_lines"),
        json!({"meter": "ledger_lines", "quantity": 20_000, "quota": 20_000, "hard": true})
    );

    // One more line is refused: 429, Retry-After to the period's end, nothing written.
    let k = key();
    let body = json!({"type": "receipt", "item_id": item, "location_id": loc, "quantity": 5});
    let now = env.now().await;
    let r = a.post_key("/v1/stock-movements", &k, &body).await;
    r.expect(429, "quota_exceeded");
    assert_retry_after_is_period_end(&r, now);
    assert!(r.header("ratelimit-limit").is_some(), "rate limit headers on every authenticated answer");
    a.movement(&json!({"type": "transfer", "item_id": item, "from_location_id": loc, "to_location_id": a.new_location().await, "quantity": 1}))
        .await
        .expect(429, "quota_exceeded");
    a.post_key("/v1/stock-movements/batch", &key(), &receipts(&item, &loc, 2)).await.expect(429, "quota_exceeded");
    // The refusal is not stored under the key: the same request is refused again, not replayed.
    let again = a.post_key("/v1/stock-movements", &k, &body).await;
    again.expect(429, "quota_exceeded");
    assert!(!again.replayed());
    assert!(a.get("/v1/stock-movements?after_sequence=20000").await.ok(200)["data"].as_array().unwrap().is_empty());
    assert_eq!(a.level(&item, &loc).await["quantity"], 20_000);
    assert_eq!(meter(&a.get("/v1/usage").await.ok(200), "ledger_lines")["quantity"], 20_000);
    // Exactly one usage.quota_exceeded event (and nothing else: one location was created).
    let quota_events = a.all("/v1/events?type=usage.quota_exceeded").await;
    assert_eq!(quota_events.len(), 1, "{quota_events:?}");
    assert_eq!(quota_events[0]["data"]["meter"], "ledger_lines");
    assert_eq!(quota_events[0]["data"]["quota"], 20_000);
    assert_eq!(parse_time(&quota_events[0]["data"]["period_end"]), next_month_start(now));
    assert_eq!(a.all("/v1/events?type=location.created").await.len(), 2);
    // Reads still work.
    a.get("/v1/items").await.ok(200);

    // Upgrading applies at once: the same request (same key) goes through.
    assert_eq!(a.post("/v1/subscription", &json!({"plan": "pro"})).await.ok(200)["plan"], "pro");
    let created = a.post_key("/v1/stock-movements", &k, &body).await.ok(201);
    assert_eq!(created["sequence"], 20_001);
    assert_eq!(a.level(&item, &loc).await["quantity"], 20_005);
    let usage = a.get("/v1/usage").await.ok(200);
    assert_eq!(
        meter(&usage, "ledger_lines"),
        json!({"meter": "ledger_lines", "quantity": 20_001, "quota": 200_000, "hard": false})
    );
    assert_eq!(a.all("/v1/events?type=usage.quota_exceeded").await.len(), 1, "still one");
    env.check_invariants();
    env.shutdown().await;
}

fn tiny_plans(quotas: PerMeter) -> Config {
    let mut plans = Plans::default();
    plans.free.quotas = quotas;
    Config { settings: Settings { plans, ..Settings::default() }, ..Config::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_requests_quota_refuses_without_counting_and_leaves_billing_open() {
    let env =
        Env::with_config(tiny_plans(PerMeter { api_requests: 10, ledger_lines: 100, webhook_attempts: 100 })).await;
    let a = &env.api;
    for _ in 0..10 {
        a.get("/v1/items").await.ok(200);
    }
    let now = env.now().await;
    let r = a.get("/v1/items").await;
    r.expect(429, "quota_exceeded");
    assert_retry_after_is_period_end(&r, now);
    env.restricted().get("/v1/items").await.expect(429, "quota_exceeded");
    a.post("/v1/items", &json!({"sku": "NOPE", "name": "n"})).await.expect(429, "quota_exceeded");
    // Billing endpoints stay open (they are the way out) and still count.
    let usage = a.get("/v1/usage").await.ok(200);
    assert_eq!(meter(&usage, "api_requests")["quantity"], 11, "the 10, then this one; refusals not counted");
    a.get("/v1/events").await.expect(429, "quota_exceeded");
    a.post("/v1/subscription", &json!({"plan": "pro"})).await.ok(200);
    let events = a.all("/v1/events?type=usage.quota_exceeded").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["meter"], "api_requests");
    a.post("/v1/items", &json!({"sku": "YES", "name": "y"})).await.ok(201);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_attempts_over_a_hard_quota_wait_for_the_next_period() {
    let env =
        Env::with_config(tiny_plans(PerMeter { api_requests: 1000, ledger_lines: 100, webhook_attempts: 2 })).await;
    let a = &env.api;
    let sink = format!("{}/_emulator/sink/quota", env.emu.base_url());
    a.post("/v1/webhook-endpoints", &json!({"url": sink, "event_types": ["item.created"]})).await.ok(201);
    for _ in 0..3 {
        a.new_item().await;
    }
    let anon = env.anonymous();
    let received = |n: usize| {
        let anon = anon.clone();
        async move {
            let got = anon.get("/_emulator/sink/quota").await.ok(200)["data"].as_array().unwrap().len();
            (got >= n).then_some(got)
        }
    };
    eventually("two deliveries", 10, || received(2)).await;
    let now = env.now().await;
    // The third waits for the next period (pending, never attempted, due at the period's end).
    eventually("the third delivery deferred", 10, || async {
        let d = a.all("/v1/webhook-deliveries?status=pending").await;
        d.into_iter().find(|d| {
            d["attempts"].as_array().unwrap().is_empty()
                && d["next_attempt_at"].is_string()
                && parse_time(&d["next_attempt_at"]) == next_month_start(now)
        })
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(received(0).await, Some(2), "no third attempt this period");
    let usage = a.get("/v1/usage").await.ok(200);
    assert_eq!(meter(&usage, "webhook_attempts")["quantity"], 2);
    let events = a.all("/v1/events?type=usage.quota_exceeded").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["meter"], "webhook_attempts");
    // The period ends: the invoice first, then the waiting attempt, in the new period.
    env.advance_to(next_month_start(now) + chrono::Duration::seconds(5)).await;
    eventually("the third delivery", 10, || received(3)).await;
    let invoices = a.all("/v1/invoices").await;
    assert_eq!(invoices.len(), 1);
    let line = invoices[0]["lines"].as_array().unwrap().iter().find(|l| l["meter"] == "webhook_attempts").unwrap();
    assert_eq!(line["quantity"], 2);
    assert_eq!(meter(&a.get("/v1/usage").await.ok(200), "webhook_attempts")["quantity"], 1);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_headers_and_a_burst_over_the_limit() {
    let http = HttpConfig { rate_limit_per_second: 5, rate_limit_burst: 10, ..HttpConfig::default() };
    let env = Env::with_config(Config { http, ..Config::default() }).await;
    let a = &env.api;
    let first = a.get("/v1/items").await;
    first.ok(200);
    assert_eq!(first.header("ratelimit-limit"), Some("10"));
    assert_eq!(first.header("ratelimit-remaining"), Some("9"));
    assert_eq!(first.header("ratelimit-reset"), Some("1"), "one token is back in 0.2 s");
    // A burst of 40: the bucket holds 10 (and refills at 5 a second while they run).
    let answers = futures::future::join_all((0..40).map(|_| a.get("/v1/items"))).await;
    let limited: Vec<&Resp> = answers.iter().filter(|r| r.status == 429).collect();
    let admitted = answers.len() - limited.len();
    assert!(!limited.is_empty() && admitted >= 9, "{admitted} admitted");
    for r in &limited {
        r.expect(429, "rate_limited");
        let retry: u64 = r.header("retry-after").expect("Retry-After").parse().unwrap();
        assert_eq!(retry, 1);
        assert_eq!(r.header("ratelimit-remaining"), Some("0"));
        assert_eq!(r.header("ratelimit-limit"), Some("10"));
        assert!(r.header("ratelimit-reset").unwrap().parse::<u64>().unwrap() >= 1);
    }
    for r in answers.iter().filter(|r| r.status == 200) {
        assert!(r.header("ratelimit-remaining").is_some());
    }
    // Other keys have their own bucket; requests without a key are not limited (nor metered).
    env.restricted().get("/v1/items").await.ok(200);
    env.anonymous().get("/v1/items").await.expect(401, "unauthenticated");
    assert!(env.anonymous().get("/v1/items").await.header("ratelimit-limit").is_none());
    // The bucket runs on the emulator clock: two seconds later it is full again.
    env.emu.advance_clock(Duration::from_secs(2)).await;
    let r = a.get("/v1/usage").await;
    assert_eq!(r.header("ratelimit-remaining"), Some("9"));
    let counted = meter(&r.ok(200), "api_requests")["quantity"].as_u64().unwrap();
    assert_eq!(counted, 1 + admitted as u64 + 1 + 1, "rate-limited requests are not counted");

    // 0 turns the limit off.
    let off = Env::with_config(Config {
        http: HttpConfig { rate_limit_per_second: 0, ..HttpConfig::default() },
        ..Config::default()
    })
    .await;
    let r = off.api.get("/v1/items").await;
    r.ok(200);
    assert!(r.header("ratelimit-limit").is_none());
    off.shutdown().await;
    env.shutdown().await;
}

/// Sums an export's records per meter.
fn sum_by_meter(records: impl Iterator<Item = (String, u64)>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (m, q) in records {
        *out.entry(m).or_default() += q;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_of_mixed_traffic_is_invoiced_as_the_ledger_and_the_request_log_say() {
    let emu = twh_emulator::Emulator::start(Config::default()).await.expect("start");
    let ctl = Api::new(&emu.base_url(), None);
    // Start at the beginning of next month, so the whole month lies ahead.
    let now = parse_time(&ctl.get("/_emulator/clock").await.ok(200)["now"]);
    let month_start = next_month_start(now);
    let month_end = next_month_start(month_start);
    let to = (month_start + chrono::Duration::hours(1)).to_rfc3339();
    ctl.post("/_emulator/clock/advance", &json!({"to": to})).await.ok(200);
    let sandbox = emu
        .create_sandbox(CreateSandbox { name: Some("month".into()), seed: Some(Seed::Demo), plan: None })
        .expect("sandbox");
    let log = Arc::new(parking_lot::Mutex::new(Vec::<Logged>::new()));
    let a = Api::new(&emu.base_url(), Some(&sandbox.secret_key)).logging(&log);
    let ro = Api::new(&emu.base_url(), Some(&sandbox.restricted_key)).logging(&log);
    let stranger = Api::new(&emu.base_url(), Some("sk_test_nobody")).logging(&log);

    // Webhooks: everything to the built-in sink, and movements to a dead port (retried by the clock).
    let sink = format!("{}/_emulator/sink/month", emu.base_url());
    a.post("/v1/webhook-endpoints", &json!({"url": sink, "event_types": ["*"]})).await.ok(201);
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    a.post(
        "/v1/webhook-endpoints",
        &json!({"url": dead, "event_types": ["stock_movement.created"], "retry_schedule_seconds": [60, 3600, 86400]}),
    )
    .await
    .ok(201);

    let items: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(a.new_item().await);
        }
        v
    };
    let locs = [a.new_location().await, a.new_location().await];
    let mut rng = 0x5eed_u64;
    let mut next = || {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (rng >> 33) as usize
    };
    for day in 0..6 {
        for _ in 0..25 {
            let item = &items[next() % 3];
            let (l0, l1) = (&locs[next() % 2], &locs[next() % 2]);
            match next() % 10 {
                0..=3 => {
                    a.receipt(item, l0, (next() % 50 + 1) as i64).await;
                }
                4 => {
                    // A shipment that may be refused (409, counted, no line).
                    let r = a.shipment(item, l0, (next() % 80 + 1) as i64).await;
                    assert!(r.status == 201 || r.status == 409, "{}", r.text());
                }
                5 if l0 != l1 => {
                    let body = json!({"type": "transfer", "item_id": item, "from_location_id": l0, "to_location_id": l1, "quantity": 1, "allow_negative": true});
                    let k = key();
                    a.post_key("/v1/stock-movements", &k, &body).await.ok(201);
                    // A replay: a request, no line.
                    assert!(a.post_key("/v1/stock-movements", &k, &body).await.replayed());
                }
                6 => {
                    a.post_key("/v1/stock-movements/batch", &key(), &receipts(item, l1, next() % 5 + 1)).await.ok(201);
                }
                7 => {
                    // Rejected requests: validation, unknown ids, a missing key, a restricted write,
                    // an unknown route, a method not allowed; and a stranger's key (not counted).
                    a.movement(&json!({"type": "receipt", "item_id": item, "location_id": l0, "quantity": 0}))
                        .await
                        .expect(422, "validation_failed");
                    a.get("/v1/items/itm_0000000000000001").await.expect(404, "not_found");
                    a.post("/v1/stock-movements", &json!({})).await.expect(400, "idempotency_key_required");
                    ro.post("/v1/items", &json!({"sku": "x", "name": "x"})).await.expect(403, "forbidden");
                    a.get("/v1/nothing-here").await.expect(404, "not_found");
                    a.send(a.req(Method::PUT, "/v1/items")).await.expect(405, "method_not_allowed");
                    stranger.get("/v1/items").await.expect(401, "unauthenticated");
                }
                8 => {
                    let m = a.receipt(item, l1, 3).await;
                    a.post_key(&format!("/v1/stock-movements/{}/reverse", id(&m)), &key(), &json!({})).await.ok(201);
                }
                _ => {
                    a.get("/v1/stock-levels").await.ok(200);
                    ro.get(&format!("/v1/items/{item}/stock-levels/{l0}")).await.ok(200);
                }
            }
        }
        // Reconciliation on demand once, then days pass (nightly runs, webhook retries).
        if day == 2 {
            a.post("/v1/reconciliations", &json!({})).await.ok(201);
        }
        let until = month_start + chrono::Duration::days(4 * (day + 1));
        ctl.post("/_emulator/clock/advance", &json!({"to": until.to_rfc3339()})).await.ok(200);
    }
    // Let the background loop send what the last requests queued, then end the month.
    eventually("the sink deliveries", 20, || async {
        a.all("/v1/webhook-deliveries?status=pending").await.is_empty().then_some(())
    })
    .await;
    let log_len = log.lock().len();
    ctl.post("/_emulator/clock/advance", &json!({"to": (month_end + chrono::Duration::hours(2)).to_rfc3339()}))
        .await
        .ok(200);

    // From here on, requests fall in the next period; the reader does not log.
    let r = Api::new(&emu.base_url(), Some(&sandbox.secret_key));
    let invoices = r.all("/v1/invoices").await;
    let month_label = month_start.format("%Y-%m").to_string();
    let invoice = invoices.iter().find(|i| i["period"] == month_label.as_str()).expect("the month's invoice").clone();
    assert_eq!(parse_time(&invoice["period_start"]), month_start);
    assert_eq!(parse_time(&invoice["period_end"]), month_end);
    assert_eq!((invoice["plan"].as_str(), invoice["status"].as_str()), (Some("free"), Some("issued")));
    assert_eq!(invoice["total"], 0, "free: no overage is billed");
    let quantity = |m: &str| {
        invoice["lines"].as_array().unwrap().iter().find(|l| l["meter"] == m).expect("line")["quantity"]
            .as_u64()
            .unwrap()
    };

    // api_requests == the requests this test made with the sandbox's keys and that were admitted.
    let log: Vec<Logged> = log.lock()[..log_len].to_vec();
    assert!(log.iter().all(|l| l.status != 429), "nothing was refused by a limit");
    let unauthenticated = log.iter().filter(|l| l.status == 401).count();
    assert!(unauthenticated > 0);
    let admitted: BTreeSet<String> = log.iter().filter(|l| l.status != 401).map(|l| l.request_id.clone()).collect();
    assert_eq!(admitted.len(), log.len() - unauthenticated, "request ids are unique");
    assert_eq!(quantity("api_requests"), admitted.len() as u64);

    // ledger_lines == the lines in the ledger committed in the month (the demo seed included).
    let movements =
        r.all(&format!("/v1/stock-movements?created_before={}", month_end.to_rfc3339().replace('+', "%2B"))).await;
    let lines: u64 = movements.iter().map(|m| m["lines"].as_array().unwrap().len() as u64).sum();
    assert!(lines > 100, "{lines}");
    assert_eq!(quantity("ledger_lines"), lines);
    assert_eq!(r.all("/v1/stock-movements").await.len(), movements.len(), "nothing after the month");

    // webhook_attempts == the attempts the deliveries record in the month.
    let deliveries = r.all("/v1/webhook-deliveries").await;
    let attempts_in = |from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>| {
        deliveries
            .iter()
            .flat_map(|d| d["attempts"].as_array().unwrap().iter())
            .filter(|a| (from..to).contains(&parse_time(&a["at"])))
            .count() as u64
    };
    let attempts = attempts_in(month_start, month_end);
    let failed = deliveries.iter().filter(|d| d["endpoint_id"] != deliveries[0]["endpoint_id"]).count();
    assert!(failed > 0 && attempts > 100, "{attempts} attempts");
    assert_eq!(quantity("webhook_attempts"), attempts);

    // The usage report and the exports (JSON and CSV) say the same, row by row.
    let usage = r.get(&format!("/v1/usage?period={month_label}")).await.ok(200);
    for m in ["api_requests", "ledger_lines", "webhook_attempts"] {
        assert_eq!(meter(&usage, m)["quantity"].as_u64(), Some(quantity(m)), "{m}");
    }
    let csv = r.get(&format!("/v1/usage/export?period={month_label}&format=csv")).await;
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let records = parse_csv(&csv.text());
    assert_eq!(records[0], ["time", "meter", "quantity", "request_id"]);
    let sums = sum_by_meter(records[1..].iter().map(|r| (r[1].clone(), r[2].parse::<u64>().unwrap())));
    for m in ["api_requests", "ledger_lines", "webhook_attempts"] {
        assert_eq!(sums.get(m).copied(), Some(quantity(m)), "CSV {m}");
    }
    for rec in &records[1..] {
        let t = parse_time(&json!(rec[0]));
        assert!((month_start..month_end).contains(&t), "{rec:?}");
    }
    let exported_ids: BTreeSet<String> =
        records[1..].iter().filter(|r| r[1] == "api_requests").map(|r| r[3].clone()).collect();
    assert_eq!(exported_ids, admitted, "the export names exactly the requests the test made");
    let seeded: u64 = records[1..].iter().filter(|r| r[3] == "seed").map(|r| r[2].parse::<u64>().unwrap()).sum();
    assert_eq!(seeded, 9, "the demo seed's lines");
    let json_export = r.get(&format!("/v1/usage/export?period={month_label}&format=json")).await.ok(200);
    let data = json_export["data"].as_array().unwrap();
    assert_eq!(data.len(), records.len() - 1);
    let sums_json =
        sum_by_meter(data.iter().map(|d| (d["meter"].as_str().unwrap().to_owned(), d["quantity"].as_u64().unwrap())));
    assert_eq!(sums_json, sums);

    // The invoice as CSV: the same lines, and amounts that sum to the total.
    let inv_csv =
        r.send(r.req(Method::GET, &format!("/v1/invoices/{}", id(&invoice))).header("accept", "text/csv")).await;
    assert!(inv_csv.header("content-type").unwrap().starts_with("text/csv"));
    let rows = parse_csv(&inv_csv.text());
    assert_eq!(rows[0][5..], ["item", "quantity", "included", "overage", "unit_amount", "amount"]);
    for row in &rows[1..4] {
        assert_eq!(row[6].parse::<u64>().unwrap(), quantity(&row[5]), "{row:?}");
    }
    let total: u64 = rows[1..].iter().map(|r| r[10].parse::<u64>().unwrap()).sum();
    assert_eq!(total, invoice["total"].as_u64().unwrap());

    // invoice.created was written at the period's end, and the events of the month are intact.
    let created = r.all("/v1/events?type=invoice.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["data"]["id"], invoice["id"]);
    assert!(parse_time(&created[0]["created_at"]) >= month_end);
    assert!(r.all("/v1/events?type=reconciliation.completed").await.len() >= 20, "nightly runs");
    assert_eq!(r.get("/v1/invoices/inv_0000000000000001").await.status, 404);
    emu.shutdown().await;
}
