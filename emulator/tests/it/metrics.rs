//! API.md §5 "Metrics": `/metrics` read with a Prometheus text parser; every family present,
//! counters moving by what the requests did, `route` a template, label sets bounded whatever
//! the traffic.

use std::collections::HashMap;

use serde_json::json;
use twh_emulator::domain::registry::Settings;
use twh_emulator::{Config, HttpConfig, WebhookSettings};

use crate::common::*;

/// One scrape: every sample's value by metric name and its labels (`k="v",…` sorted).
struct Scrape {
    samples: HashMap<(String, String), f64>,
    text: String,
}

impl Scrape {
    async fn of(admin: &Api) -> Scrape {
        use openmetrics_parser::{MetricNumber, OpenMetricsValue};
        let r = admin.get("/metrics").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.header("content-type").unwrap_or_default().starts_with("application/openmetrics-text"));
        let text = r.text();
        let parsed = openmetrics_parser::openmetrics::parse_openmetrics(&text)
            .unwrap_or_else(|e| panic!("not an OpenMetrics text exposition ({e:?}):\n{text}"));
        let mut samples = HashMap::new();
        for (name, family) in &parsed.families {
            for sample in family.iter_samples() {
                let labels = sample.get_labelset().expect("labels");
                let mut labels: Vec<(&String, &String)> = labels.iter().collect();
                labels.sort();
                let labels = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect::<Vec<_>>().join(",");
                let n = |n: &MetricNumber| n.as_f64();
                let values: Vec<(String, f64)> = match &sample.value {
                    OpenMetricsValue::Counter(c) => vec![(format!("{name}_total"), n(&c.value))],
                    OpenMetricsValue::Gauge(g) | OpenMetricsValue::Unknown(g) => vec![(name.clone(), n(g))],
                    OpenMetricsValue::Histogram(h) => vec![
                        (format!("{name}_count"), h.count.unwrap_or(0) as f64),
                        (format!("{name}_sum"), h.sum.as_ref().map_or(0.0, n)),
                    ],
                    other => panic!("unexpected {other:?}"),
                };
                for (metric, v) in values {
                    samples.insert((metric, labels.clone()), v);
                }
            }
        }
        Scrape { samples, text }
    }

    /// A sample's value (0 when absent).
    fn get(&self, metric: &str, labels: &str) -> f64 {
        self.samples.get(&(metric.to_owned(), labels.to_owned())).copied().unwrap_or(0.0)
    }

    fn has(&self, metric: &str) -> bool {
        self.samples.keys().any(|(m, _)| m == metric)
    }

    /// The label sets of one metric.
    fn series(&self, metric: &str) -> Vec<&str> {
        self.samples.keys().filter(|(m, _)| m == metric).map(|(_, l)| l.as_str()).collect()
    }
}

fn req(method: &str, route: &str, status: u16) -> String {
    format!("method={method:?},route={route:?},status=\"{status}\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_and_counters_that_move_by_what_happened() {
    let env = Env::new().await;
    let admin = env.anonymous();
    let a = &env.api;
    let item = a.new_item().await;
    let (l1, l2) = (a.new_location().await, a.new_location().await);
    let before = Scrape::of(&admin).await;
    for family in [
        "twh_http_requests_total",
        "twh_http_request_duration_seconds_count",
        "twh_http_request_duration_seconds_sum",
        "twh_ledger_lines_total",
        "twh_idempotent_replays_total",
        "twh_rate_limited_total",
        "twh_quota_exceeded_total",
        "twh_webhook_attempts_total",
        "twh_webhook_deliveries",
        "twh_sandboxes",
        "twh_journal_entries",
    ] {
        assert!(before.has(family), "{family} missing from:\n{}", before.text);
    }
    for outcome in ["succeeded", "failed", "not_sent"] {
        assert!(
            before.samples.contains_key(&("twh_webhook_attempts_total".to_owned(), format!("outcome={outcome:?}")))
        );
    }
    for meter in ["api_requests", "ledger_lines"] {
        assert!(before.samples.contains_key(&("twh_quota_exceeded_total".to_owned(), format!("meter={meter:?}"))));
    }
    assert!(before.text.contains("twh_http_request_duration_seconds_bucket{"), "a histogram");
    assert_eq!(before.get("twh_sandboxes", ""), 1.0);

    // A receipt (1 line), a transfer (2 lines), a replay of the transfer (no line), a read.
    a.receipt(&item, &l1, 10).await;
    let transfer =
        json!({"type": "transfer", "item_id": item, "from_location_id": l1, "to_location_id": l2, "quantity": 4});
    a.post_key("/v1/stock-movements", "m-transfer", &transfer).await.ok(201);
    assert!(a.post_key("/v1/stock-movements", "m-transfer", &transfer).await.replayed());
    a.get(&format!("/v1/items/{item}")).await.ok(200);
    a.get("/v1/items/itm_nothing").await.expect(404, "not_found");
    env.other_tenant();
    let after = Scrape::of(&admin).await;

    let moved = |m: &str, l: &str| after.get(m, l) - before.get(m, l);
    assert_eq!(moved("twh_ledger_lines_total", ""), 3.0);
    assert_eq!(moved("twh_idempotent_replays_total", ""), 1.0);
    assert_eq!(moved("twh_http_requests_total", &req("POST", "/v1/stock-movements", 201)), 3.0);
    assert_eq!(moved("twh_http_requests_total", &req("GET", "/v1/items/{id}", 200)), 1.0);
    assert_eq!(moved("twh_http_requests_total", &req("GET", "/v1/items/{id}", 404)), 1.0);
    assert_eq!(moved("twh_http_request_duration_seconds_count", "route=\"/v1/items/{id}\""), 2.0);
    assert!(moved("twh_http_request_duration_seconds_sum", "route=\"/v1/items/{id}\"") > 0.0);
    // The scrape before this one is counted too, under its own template.
    assert!(after.get("twh_http_requests_total", &req("GET", "/metrics", 200)) >= 1.0);
    assert_eq!(after.get("twh_sandboxes", ""), 2.0);
    let (entries, _) = env.emu.state().journal.len();
    assert_eq!(after.get("twh_journal_entries", ""), entries as f64);
    assert!(entries >= 8);
    env.shutdown().await;
}

/// 200 distinct ids and 200 unknown paths add no label values: `route` is a template.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_sets_stay_bounded() {
    let env = Env::new().await;
    let admin = env.anonymous();
    for i in 0..200 {
        env.api.get(&format!("/v1/items/itm_{i}")).await.expect(404, "not_found");
        env.api.get(&format!("/v1/no-such-thing/{i}")).await.expect(404, "not_found");
        env.api.get(&format!("/v1/stock-movements/mov_{i}")).await.expect(404, "not_found");
    }
    let s = Scrape::of(&admin).await;
    assert_eq!(s.get("twh_http_requests_total", &req("GET", "/v1/items/{id}", 404)), 200.0);
    assert_eq!(s.get("twh_http_requests_total", &req("GET", "/v1/stock-movements/{id}", 404)), 200.0);
    assert_eq!(s.get("twh_http_requests_total", &req("GET", "unmatched", 404)), 200.0);
    let series = s.series("twh_http_requests_total");
    assert!(series.len() <= 5, "{series:?}");
    assert!(!s.text.contains("itm_") && !s.text.contains("mov_") && !s.text.contains("sbx_"), "{}", s.text);
    let routes = s.series("twh_http_request_duration_seconds_count");
    assert!(routes.len() <= 4, "{routes:?}");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_quotas_are_counted() {
    let mut settings = Settings::default();
    settings.plans.free.quotas.ledger_lines = 2;
    let http = HttpConfig { rate_limit_per_second: 1, rate_limit_burst: 6, ..HttpConfig::default() };
    let env = Env::with_config(Config { http, settings, ..Config::default() }).await;
    let admin = env.anonymous();
    let a = &env.api;
    let item = a.new_item().await;
    let loc = a.new_location().await;
    a.receipt(&item, &loc, 1).await;
    a.receipt(&item, &loc, 1).await;
    a.movement(&json!({"type": "receipt", "item_id": item, "location_id": loc, "quantity": 1}))
        .await
        .expect(429, "quota_exceeded");
    // Six tokens, one more a second: within a few requests the bucket is empty.
    let mut limited = 0;
    for _ in 0..30 {
        let r = a.get("/v1/sandbox").await;
        if r.status == 429 {
            r.expect(429, "rate_limited");
            limited += 1;
        }
    }
    assert!(limited >= 1);
    let s = Scrape::of(&admin).await;
    assert_eq!(s.get("twh_quota_exceeded_total", "meter=\"ledger_lines\""), 1.0);
    assert_eq!(s.get("twh_quota_exceeded_total", "meter=\"api_requests\""), 0.0);
    assert_eq!(s.get("twh_rate_limited_total", ""), f64::from(limited));
    assert_eq!(s.get("twh_ledger_lines_total", ""), 2.0);
    assert_eq!(s.get("twh_http_requests_total", &req("GET", "/v1/sandbox", 429)), f64::from(limited));
    env.shutdown().await;
}

/// Attempts by outcome, and the pending and dead deliveries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_attempts_and_deliveries() {
    let webhooks = WebhookSettings { retry_schedule_seconds: vec![1, 1], ..WebhookSettings::default() };
    let env = Env::with_config(Config { webhooks, ..Config::default() }).await;
    let admin = env.anonymous();
    let a = &env.api;
    let sink = format!("{}/_emulator/sink/metrics", env.emu.base_url());
    a.post("/v1/webhook-endpoints", &json!({"url": sink, "event_types": ["item.created"]})).await.ok(201);
    // Nothing listens on port 9 of this machine (discard): the attempt fails.
    a.post("/v1/webhook-endpoints", &json!({"url": "http://127.0.0.1:9/hook", "event_types": ["item.created"]}))
        .await
        .ok(201);
    a.new_item().await;
    let s = eventually("one success and one failure", 20, || async {
        let s = Scrape::of(&admin).await;
        let failed = s.get("twh_webhook_attempts_total", "outcome=\"failed\"")
            + s.get("twh_webhook_attempts_total", "outcome=\"not_sent\"");
        (s.get("twh_webhook_attempts_total", "outcome=\"succeeded\"") == 1.0 && failed >= 1.0).then_some(s)
    })
    .await;
    assert_eq!(s.get("twh_webhook_deliveries", "status=\"pending\""), 1.0, "the failed one waits for its retry");
    assert_eq!(s.get("twh_webhook_deliveries", "status=\"dead\""), 0.0);
    // Past the last retry: the failing delivery is dead.
    let to = env.now().await + chrono::Duration::seconds(60);
    env.advance_to(to).await;
    eventually("a dead delivery", 20, || async {
        let s = Scrape::of(&admin).await;
        (s.get("twh_webhook_deliveries", "status=\"dead\"") == 1.0
            && s.get("twh_webhook_deliveries", "status=\"pending\"") == 0.0)
            .then_some(())
    })
    .await;
    let s = Scrape::of(&admin).await;
    let attempts = s.get("twh_webhook_attempts_total", "outcome=\"succeeded\"")
        + s.get("twh_webhook_attempts_total", "outcome=\"failed\"")
        + s.get("twh_webhook_attempts_total", "outcome=\"not_sent\"");
    assert_eq!(attempts, 4.0, "one success, three attempts of the failing delivery");
    env.shutdown().await;
}
