//! `cargo run --release -p twh-bench-sdk`: what the SDK costs per call.
//!
//! Sequential calls per second through the SDK (`twh::Client`) and through raw `reqwest`
//! making the same HTTP calls, against one in-process emulator, in the same run. Raw reqwest does
//! what a careful hand-written client must do at least: send the key, send an `Idempotency-Key`
//! on ledger writes, check the status, deserialize into the same types, and keep the `ETag` of a
//! single resource. The SDK adds its
//! request id, retry bookkeeping, error mapping and ETag handling; the target is to stay within
//! 10% of raw.
//!
//! Raw reqwest runs twice: with only those headers ("minimal"), and sending the same headers as
//! the SDK ("same wire": `User-Agent`, `X-Request-Id`, `api-version`, `Accept`), so that both make
//! the same calls on the wire. The emulator runs in this process, so the server's work on each
//! header counts in every figure; the same-wire ratio is the SDK's own cost, the minimal one also
//! counts what the extra headers cost the server. Both are printed; the target is judged on the
//! same-wire one (the "raw reqwest doing the same calls").
//!
//! The contenders alternate in small batches of calls (so drift, such as the ledger growing
//! or another process taking a core for a while, hits both alike), after a warm-up, and each
//! workload's rate is the total calls over the total time. The run takes about 30 s;
//! `TWH_BENCH_SECONDS` sets the seconds per workload (default 8).
//!
//! The emulator's request journal is off unless `TWH_BENCH_JOURNAL=1`: both sides pay for it
//! alike, and its work, and its churn through the caches, would move the ratio without saying
//! anything about the SDK. `TWH_BENCH_ONLY=0|1|2` makes the warm-up calls of one contender only
//! (0 the SDK, 1 raw minimal, 2 raw same wire): with `TWH_BENCH_SECONDS=0` under
//! `valgrind --tool=callgrind`, two such runs give each side's instructions per call.

use std::time::{Duration, Instant};

use twh::emulator::{Config, Emulator};
use twh::types::{self, CreateMovement};

/// Calls in one batch of one contender.
const BATCH_CALLS: u32 = 25;
/// Default seconds per workload (both contenders).
const SECONDS_DEFAULT: u64 = 8;
/// Warm-up calls per contender and workload.
const WARMUP_CALLS: u32 = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    /// `GET /v1/items/{id}`: a single-resource read with its ETag.
    Read,
    /// `POST /v1/stock-movements`: an idempotent ledger write.
    Write,
    /// `GET /v1/items?limit=20`: one page of a list.
    List,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Read => "read (`GET /v1/items/{id}`)",
            Workload::Write => "ledger write (`POST /v1/stock-movements`)",
            Workload::List => "list page (`GET /v1/items?limit=20`)",
        }
    }
}

struct Fixture {
    base_url: String,
    key: String,
    item_id: String,
    location_id: String,
}

struct Raw {
    http: reqwest::Client,
    auth: String,
    /// Send the SDK's headers too: a per-call `X-Request-Id` (its client sends `User-Agent`,
    /// `api-version` and `Accept` by default).
    same_wire: bool,
}

impl Raw {
    fn new(key: &str, same_wire: bool) -> Raw {
        let mut b = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if same_wire {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert("api-version", reqwest::header::HeaderValue::from_static("1.0.0"));
            headers.insert(reqwest::header::ACCEPT, reqwest::header::HeaderValue::from_static("application/json"));
            b = b.user_agent(twh::USER_AGENT).default_headers(headers);
        }
        Raw { http: b.build().expect("reqwest"), auth: format!("Bearer {key}"), same_wire }
    }

    fn request(&self, method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
        let r = self.http.request(method, url).header("authorization", &self.auth);
        if self.same_wire { r.header("x-request-id", format!("req_{}", uuid::Uuid::new_v4().simple())) } else { r }
    }
}

async fn sdk_call(client: &twh::Client, f: &Fixture, w: Workload) {
    match w {
        Workload::Read => {
            let item = client.get_item(&f.item_id).await.expect("sdk read");
            assert!(item.etag().version().is_some());
        }
        Workload::Write => {
            client.create_movement(CreateMovement::receipt(&f.item_id, &f.location_id, 1)).await.expect("sdk write");
        }
        Workload::List => {
            let page =
                client.list_items(&twh::ItemQuery { limit: Some(20), ..Default::default() }).await.expect("sdk list");
            assert!(!page.data.is_empty());
        }
    }
}

async fn raw_call(raw: &Raw, f: &Fixture, w: Workload) {
    match w {
        Workload::Read => {
            let r = raw
                .request(reqwest::Method::GET, format!("{}/v1/items/{}", f.base_url, f.item_id))
                .send()
                .await
                .expect("raw read");
            assert!(r.status().is_success());
            // What the SDK hands back: the value and its ETag.
            let etag = r.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned).expect("an ETag");
            let item: types::Item = r.json().await.expect("an item");
            std::hint::black_box((item, etag));
        }
        Workload::Write => {
            let body = CreateMovement::receipt(&f.item_id, &f.location_id, 1);
            let r = raw
                .request(reqwest::Method::POST, format!("{}/v1/stock-movements", f.base_url))
                .header("idempotency-key", uuid::Uuid::new_v4().to_string())
                .json(&body)
                .send()
                .await
                .expect("raw write");
            assert!(r.status().is_success());
            let etag = r.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned).expect("an ETag");
            let movement: types::Movement = r.json().await.expect("a movement");
            std::hint::black_box((movement, etag));
        }
        Workload::List => {
            let r = raw
                .request(reqwest::Method::GET, format!("{}/v1/items?limit=20", f.base_url))
                .send()
                .await
                .expect("raw list");
            assert!(r.status().is_success());
            let page: types::ItemList = r.json().await.expect("a page");
            assert!(!page.data.is_empty());
        }
    }
}

/// Calls and time of one contender.
#[derive(Default, Clone, Copy)]
struct Tally {
    calls: u64,
    time: Duration,
}

impl Tally {
    fn per_second(&self) -> f64 {
        self.calls as f64 / self.time.as_secs_f64()
    }
}

// One thread for the emulator and both clients: every call costs the same wake-ups, so the
// difference measured is CPU work per call, not which worker thread each connection landed on
// (with a multi-thread runtime on two cores that placement alone moved the ratio by ±10%).
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let budget = Duration::from_secs(
        std::env::var("TWH_BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(SECONDS_DEFAULT),
    );
    // A load test: no rate limit, and a pro sandbox (overage instead of refusals).
    let mut config = Config::default();
    config.http.rate_limit_per_second = 0;
    // The request journal off unless asked for: what is measured is the SDK's cost, and the
    // journal's own cost (and its churn through the caches) would weigh on both sides alike.
    if std::env::var("TWH_BENCH_JOURNAL").is_ok_and(|v| v == "1") {
        println!("(request journal on)");
    } else {
        config.http.journal_size = 0;
    }
    let emulator = Emulator::start(config).await.expect("emulator");
    let pro = types::CreateSandbox { plan: Some(types::Plan::Pro), ..Default::default() };
    let (client, created) = emulator.create_sandbox_with(&pro).await.expect("sandbox");
    let item = client.create_item(types::CreateItem::builder().sku("BENCH-1").name("Bench item")).await.expect("item");
    let location = client
        .create_location(types::CreateLocation::builder().code("BENCH-WH").name("Bench warehouse"))
        .await
        .expect("location");
    let fixture = Fixture {
        base_url: emulator.base_url(),
        key: created.secret_key.expose().to_owned(),
        item_id: item.id.clone(),
        location_id: location.id.clone(),
    };
    let raws = [Raw::new(&fixture.key, false), Raw::new(&fixture.key, true)];

    let workloads = [Workload::Read, Workload::Write, Workload::List];
    let only: Option<usize> = std::env::var("TWH_BENCH_ONLY").ok().and_then(|v| v.parse().ok());
    let mut results = Vec::new();
    for w in workloads {
        for _ in 0..WARMUP_CALLS {
            if only.is_none_or(|o| o == 0) {
                sdk_call(&client, &fixture, w).await;
            }
            for (i, raw) in raws.iter().enumerate() {
                if only.is_none_or(|o| o == i + 1) {
                    raw_call(raw, &fixture, w).await;
                }
            }
        }
        // 0: the SDK; 1: raw, minimal; 2: raw, same wire.
        let mut tallies = [Tally::default(); 3];
        let started = Instant::now();
        let mut batch = 0usize;
        while started.elapsed() < budget {
            // Rotate which goes first, so none always follows another.
            for turn in 0..3 {
                let side = (batch + turn) % 3;
                let at = Instant::now();
                for _ in 0..BATCH_CALLS {
                    match side {
                        0 => sdk_call(&client, &fixture, w).await,
                        n => raw_call(&raws[n - 1], &fixture, w).await,
                    }
                }
                tallies[side].calls += u64::from(BATCH_CALLS);
                tallies[side].time += at.elapsed();
            }
            batch += 1;
        }
        results.push((w, tallies));
    }
    emulator.shutdown().await;

    println!("## Rust SDK overhead: sequential calls per second, SDK vs raw reqwest");
    println!();
    println!(
        "In-process emulator on a current-thread runtime, one keep-alive connection per client, calls one after another \
         in alternating batches of {BATCH_CALLS}, {} s per workload, release build.",
        budget.as_secs()
    );
    println!();
    println!(
        "| workload | SDK calls/s | raw, same wire calls/s | raw, minimal calls/s | SDK µs/call | raw same-wire µs/call | \
         SDK / raw same wire | SDK / raw minimal |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let (mut worst, mut worst_minimal) = (f64::INFINITY, f64::INFINITY);
    for (w, [sdk, minimal, same]) in &results {
        let ratio = sdk.per_second() / same.per_second();
        let ratio_minimal = sdk.per_second() / minimal.per_second();
        worst = worst.min(ratio);
        worst_minimal = worst_minimal.min(ratio_minimal);
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1}% | {:.1}% |",
            w.name(),
            sdk.per_second(),
            same.per_second(),
            minimal.per_second(),
            1e6 / sdk.per_second(),
            1e6 / same.per_second(),
            ratio * 100.0,
            ratio_minimal * 100.0
        );
    }
    println!();
    println!(
        "Target: the SDK within 10% of raw reqwest making the same calls (same-wire ratio ≥ 90%). Lowest: {:.1}% → {}. \
         Against minimal headers the lowest is {:.1}%.",
        worst * 100.0,
        if worst >= 0.9 { "met" } else { "NOT met" },
        worst_minimal * 100.0
    );
}
