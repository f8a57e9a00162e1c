//! `twh-bench-scale`: the cost of a list page on a large tenant (issue 21, API.md §1 "Filters
//! answer from indexes"). Builds one tenant of 100,000 items and 1,000,000 movements through the
//! emulator's whole HTTP application in this process (`twh_emulator::app`, no sockets, as
//! `inproc` does), then times the first page of each filter, of `q=` at 0.1% selectivity, of an
//! exact `sku=`, of `as_of` in the middle of a pair with 200,000 lines, and of each filter of
//! the webhook deliveries (about 1,100,000 of them, from three endpoints subscribed before the
//! first write), each against the unfiltered first page of the same list in the same run
//! (interleaved call by call), and prints a Markdown table, then the same in thread CPU time.
//! The timing starts once the dispatcher has caught up (nothing due within a minute, no attempt
//! for half a second), and the bench prints how many attempts it made during the timing.
//!
//! ```sh
//! cargo run --release -p twh-bench --bin twh-bench-scale [-- ITEMS MOVEMENTS]
//! ```

use std::time::Instant;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tower::ServiceExt;

/// Timed calls of each side of a row (after as many untimed): 1,000, so that p99 is the 10th
/// slowest, not the 3rd (which one stray interruption decides).
const REPEATS: usize = 1000;

async fn call(app: &twh_emulator::App, req: Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)> {
    let response = app.clone().oneshot(req.map(axum::body::Body::new)).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

async fn post(
    app: &twh_emulator::App,
    bearer: &str,
    path: &str,
    key: Option<String>,
    body: Value,
) -> anyhow::Result<Value> {
    let mut b =
        Request::post(path).header(header::AUTHORIZATION, bearer).header(header::CONTENT_TYPE, "application/json");
    if let Some(k) = key {
        b = b.header("idempotency-key", k);
    }
    let (status, bytes) = call(app, b.body(Full::new(Bytes::from(body.to_string())))?).await?;
    if !(200..300).contains(&status) {
        bail!("POST {path} answered {status}: {}", String::from_utf8_lossy(&bytes));
    }
    Ok(serde_json::from_slice(&bytes)?)
}

/// Creates a webhook endpoint; returns its id.
async fn endpoint(app: &twh_emulator::App, bearer: &str, url: String, types: &[&str]) -> anyhow::Result<String> {
    let v = post(app, bearer, "/v1/webhook-endpoints", None, json!({"url": url, "event_types": types})).await?;
    Ok(v["id"].as_str().context("endpoint id")?.to_owned())
}

/// `PATCH` with `If-Match: *`.
async fn patch(app: &twh_emulator::App, bearer: &str, path: &str, body: Value) -> anyhow::Result<()> {
    let req = Request::patch(path)
        .header(header::AUTHORIZATION, bearer)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::IF_MATCH, "*")
        .body(Full::new(Bytes::from(body.to_string())))?;
    let (status, bytes) = call(app, req).await?;
    if status != 200 {
        bail!("PATCH {path} answered {status}: {}", String::from_utf8_lossy(&bytes));
    }
    Ok(())
}

async fn get(app: &twh_emulator::App, bearer: &str, path: &str) -> anyhow::Result<Bytes> {
    let req = Request::get(path).header(header::AUTHORIZATION, bearer).body(Full::new(Bytes::new()))?;
    let (status, bytes) = call(app, req).await?;
    if status != 200 {
        bail!("GET {path} answered {status}: {}", String::from_utf8_lossy(&bytes));
    }
    Ok(bytes)
}

/// Percentiles (p50, p99) of a sorted sample.
fn percentiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

/// One row: `REPEATS` calls of the filtered page and as many of the unfiltered one, interleaved
/// (filtered, plain, plain, filtered, …) after as many untimed, so that whatever else the
/// machine does meanwhile (other processes, a timer tick) falls on both alike; run in blocks,
/// a burst of outside work lands on one side only and decides its p99. Returns wall-clock
/// (p50, p99) in microseconds of each side, the same in thread CPU time (what the call itself
/// cost, without time spent preempted), and the length of the filtered page.
async fn time_pair(app: &twh_emulator::App, bearer: &str, filtered: &str, plain: &str) -> anyhow::Result<Row> {
    let trace = std::env::var_os("TWH_SCALE_TRACE").is_some();
    let mut wall = [Vec::with_capacity(REPEATS), Vec::with_capacity(REPEATS)];
    let mut cpu = [Vec::with_capacity(REPEATS), Vec::with_capacity(REPEATS)];
    let v: Value = serde_json::from_slice(&get(app, bearer, filtered).await?)?;
    let len = v["data"].as_array().map_or(1, Vec::len);
    for i in 0..2 * REPEATS {
        for k in 0..2 {
            // ABBA: neither side always goes first.
            let side = if i % 2 == 0 { k } else { 1 - k };
            let path = if side == 0 { filtered } else { plain };
            let counts = trace.then(proc_counts);
            let c0 = cpu_now();
            let t = Instant::now();
            get(app, bearer, path).await?;
            let us = t.elapsed().as_secs_f64() * 1e6;
            let cpu_us = (cpu_now() - c0) * 1e6;
            if let Some((f0, v0, n0)) = counts {
                let (f1, v1, n1) = proc_counts();
                if us > 500.0 {
                    eprintln!(
                        "slow {path} call {i}: wall {us:.0} us, cpu {cpu_us:.0} us, minflt {}, vcsw {}, ivcsw {}",
                        f1 - f0,
                        v1 - v0,
                        n1 - n0
                    );
                }
            }
            if i >= REPEATS {
                wall[side].push(us);
                cpu[side].push(cpu_us);
            }
        }
    }
    let [wf, wp] = wall;
    let [cf, cp] = cpu;
    Ok(Row { len, wall: (percentiles(wf), percentiles(wp)), cpu: (percentiles(cf), percentiles(cp)) })
}

/// The figures of one row: (filtered, unfiltered) × (p50, p99).
struct Row {
    len: usize,
    wall: ((f64, f64), (f64, f64)),
    cpu: ((f64, f64), (f64, f64)),
}

/// This thread's CPU time in seconds.
fn cpu_now() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// This thread's (minor faults, voluntary, involuntary context switches), for
/// `TWH_SCALE_TRACE=1`, which prints every call slower than 500 µs with what it cost in CPU and
/// whether it was preempted.
fn proc_counts() -> (u64, u64, u64) {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let minflt = rest.split_whitespace().nth(7).and_then(|x| x.parse().ok()).unwrap_or(0);
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|x| x.parse().ok())
            .unwrap_or(0)
    };
    (minflt, field("voluntary_ctxt_switches"), field("nonvoluntary_ctxt_switches"))
}

/// Serves the bench's webhook receiver (answers every `POST` with a 201) on a thread of its own,
/// so that it never runs on the thread that times the calls; returns its address.
fn start_receiver() -> anyhow::Result<std::net::SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    std::thread::Builder::new().name("receiver".into()).spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(async move {
            if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
                twh_bench::bare::serve(listener).await;
            }
        });
    })?;
    Ok(addr)
}

/// Waits until the dispatcher has caught up with the tenant: nothing due within a minute and no
/// attempt made for half a second. Returns the seconds waited.
async fn settle(emulator: &twh_emulator::Emulator, tenant: &str) -> anyhow::Result<f64> {
    let started = Instant::now();
    let state = emulator.state();
    let tenant = state.world.tenant(tenant).context("the tenant")?;
    let mut last = u64::MAX;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let attempts = state.dispatcher.stats().attempts;
        let now = tenant.now(&state.world.clock);
        let next = tenant.state.lock().webhooks.next_due();
        if attempts == last && next.is_none_or(|t| t > now.plus_seconds(60)) {
            return Ok(started.elapsed().as_secs_f64());
        }
        if started.elapsed().as_secs() > 900 {
            bail!("the dispatcher did not catch up in 15 minutes");
        }
        last = attempts;
    }
}

fn main() -> anyhow::Result<()> {
    twh_bench::without_huge_pages();
    let mut args = std::env::args().skip(1);
    let items: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100_000);
    let movements: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(items, movements))
}

async fn run(items: usize, movements: usize) -> anyhow::Result<()> {
    let mut config = twh_emulator::Config::default();
    config.http.rate_limit_per_second = 0;
    // Deliveries that fail without traffic (a receiver refusing, cooling down) finish at once,
    // so the default 32 in flight per sandbox, claimed every 5 ms, would cap the dispatcher at
    // about 6,400 attempts a second, behind a load that creates far more deliveries than that:
    // let it claim its whole batch, so it catches up with the load before the timing starts.
    config.webhooks.concurrency = config.webhooks.batch_max;
    let emulator = twh_emulator::Emulator::start(config).await?;
    let pro = twh_emulator::domain::model::CreateSandbox {
        plan: Some(twh_emulator::domain::model::Plan::Pro),
        ..Default::default()
    };
    let sandbox = emulator.create_sandbox(pro).map_err(|e| anyhow::anyhow!("create sandbox: {e}"))?;
    let bearer = format!("Bearer {}", sandbox.secret_key);
    let app = twh_emulator::app(emulator.state().clone());
    let started = Instant::now();

    // Webhooks, subscribed before anything is written: "erp" gets every movement and refuses
    // connections (its deliveries fail and wait for their retries); "catalogue" gets item
    // updates, one per batch of movements, and answers 201 (they succeed: 0.1% of the
    // deliveries, spread over the list); "legacy" got every item and location created and was
    // then switched off (its deliveries go dead: the first tenth of the list).
    let refused = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let receiver = start_receiver()?;
    let erp = endpoint(&app, &bearer, format!("http://{refused}/erp"), &["stock_movement.created"]).await?;
    let catalogue = endpoint(&app, &bearer, format!("http://{receiver}/catalogue"), &["item.updated"]).await?;
    let legacy =
        endpoint(&app, &bearer, format!("http://{refused}/legacy"), &["item.created", "location.created"]).await?;

    // Catalogue: every 1,000th item is a "special" (q= at 0.1%); every 500th has a threshold.
    let mut ids = Vec::with_capacity(items);
    for i in 0..items {
        let name = if i % 1000 == 999 { format!("Special gadget {i}") } else { format!("Widget {i}") };
        let threshold = (i % 500 == 0).then_some(1_000_000);
        let v = post(
            &app,
            &bearer,
            "/v1/items",
            None,
            json!({"sku": format!("SKU-{i:06}"), "name": name, "low_stock_threshold": threshold}),
        )
        .await?;
        ids.push(v["id"].as_str().context("item id")?.to_owned());
    }
    let mut locations = Vec::new();
    for i in 0..10 {
        let v =
            post(&app, &bearer, "/v1/locations", None, json!({"code": format!("LOC-{i}"), "name": "Store"})).await?;
        locations.push(v["id"].as_str().context("location id")?.to_owned());
    }
    patch(&app, &bearer, &format!("/v1/webhook-endpoints/{legacy}"), json!({"enabled": false})).await?;
    let hot = ids[0].clone();
    let rare = ids[items / 2].clone();
    let hot_lines = (movements / 5).max(1);

    // Ledger: one hot pair with a fifth of the lines, the rest spread over every item and
    // location; one transfer in 1,000; the "rare" item gets one movement, in the middle.
    let mut written = 0;
    let mut middle_time = None;
    let mut batch = Vec::with_capacity(1000);
    let mut batches = 0;
    while written < movements {
        batch.clear();
        while batch.len() < 1000 && written + batch.len() < movements {
            let n = written + batch.len();
            let body = if n % 5 == 0 {
                json!({"type": "receipt", "item_id": hot, "location_id": locations[0], "quantity": 1})
            } else if n == movements / 2 + 1 {
                json!({"type": "adjustment", "item_id": rare, "location_id": locations[1], "quantity": 5})
            } else if n % 1000 == 7 {
                let item = &ids[((n / 7) % items).max(1)];
                let item = if *item == rare { &ids[1] } else { item };
                json!({"type": "transfer", "item_id": item, "from_location_id": locations[2], "to_location_id": locations[3], "quantity": 1, "allow_negative": true})
            } else {
                let item = &ids[((n * 7919) % items).max(1)];
                let item = if *item == rare { &ids[1] } else { item };
                json!({"type": "receipt", "item_id": item, "location_id": locations[n % locations.len()], "quantity": 1})
            };
            batch.push(body);
        }
        let v = post(
            &app,
            &bearer,
            "/v1/stock-movements/batch",
            Some(format!("scale-{batches}")),
            json!({"movements": batch}),
        )
        .await?;
        // A catalogue edit between batches: one item.updated event, one delivery to "catalogue".
        let edited = &ids[(batches * 7919 + 13) % items];
        patch(&app, &bearer, &format!("/v1/items/{edited}"), json!({"name": format!("Widget {batches} (edited)")}))
            .await?;
        batches += 1;
        written += batch.len();
        if middle_time.is_none() && written >= movements / 2 {
            middle_time = v["data"][0]["created_at"].as_str().map(str::to_owned);
        }
    }
    let built = started.elapsed().as_secs_f64();
    let settled = settle(&emulator, &sandbox.id).await?;
    let tenant = emulator.state().world.tenant(&sandbox.id).context("the tenant")?;
    let (ledger_index_bytes, delivery_index_bytes, statuses) = {
        use twh_emulator::domain::webhooks::DeliveryStatus as S;
        let st = tenant.state.lock();
        let count = |s| st.webhooks.status_count(s);
        let statuses = [S::Pending, S::Failed, S::Succeeded, S::Dead].map(count);
        (st.ledger.index_bytes(), st.webhooks.index_bytes(), statuses)
    };
    let deliveries: usize = statuses.iter().sum();
    let rss = twh_bench::procfs::rss_bytes(std::process::id()).unwrap_or_default();
    let middle = middle_time.context("a middle time")?;

    // An event with one delivery, from the middle of the list: the middle one of "catalogue".
    let mut cursor = String::new();
    let mut events = Vec::new();
    loop {
        let path = format!("/v1/webhook-deliveries?endpoint_id={catalogue}&limit=100&cursor={cursor}");
        let v: Value = serde_json::from_slice(&get(&app, &bearer, &path).await?)?;
        for d in v["data"].as_array().context("deliveries")? {
            events.push(d["event_id"].as_str().context("event id")?.to_owned());
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    let mid_event = events.get(events.len() / 2).context("a catalogue delivery")?.clone();

    let item_q = format!("/v1/items?sku=SKU-{:06}", items / 3);
    let as_of = format!("/v1/items/{hot}/stock-levels/{}?as_of={middle}", locations[0]);
    let current = format!("/v1/items/{hot}/stock-levels/{}", locations[0]);
    let rows: Vec<(&str, String, String)> = vec![
        ("items: sku= (exact)", item_q, "/v1/items".into()),
        ("items: q= (0.1%)", "/v1/items?q=special".into(), "/v1/items".into()),
        ("items: q= (one SKU)", format!("/v1/items?q=sku-{:06}", items / 4), "/v1/items".into()),
        ("items: status=active", "/v1/items?status=active".into(), "/v1/items".into()),
        ("locations: code=", "/v1/locations?code=LOC-7".into(), "/v1/locations".into()),
        ("movements: item_id= (1 match)", format!("/v1/stock-movements?item_id={rare}"), "/v1/stock-movements".into()),
        ("movements: item_id= (hot)", format!("/v1/stock-movements?item_id={hot}"), "/v1/stock-movements".into()),
        (
            "movements: location_id=",
            format!("/v1/stock-movements?location_id={}", locations[3]),
            "/v1/stock-movements".into(),
        ),
        ("movements: type=transfer", "/v1/stock-movements?type=transfer".into(), "/v1/stock-movements".into()),
        (
            "movements: type=adjustment (1 match)",
            "/v1/stock-movements?type=adjustment".into(),
            "/v1/stock-movements".into(),
        ),
        (
            "movements: item_id= & type=",
            format!("/v1/stock-movements?item_id={hot}&type=receipt"),
            "/v1/stock-movements".into(),
        ),
        ("events: type=stock_movement.created", "/v1/events?type=stock_movement.created".into(), "/v1/events".into()),
        ("events: type=item.created", "/v1/events?type=item.created".into(), "/v1/events".into()),
        ("levels: item_id=", format!("/v1/stock-levels?item_id={rare}"), "/v1/stock-levels".into()),
        ("levels: location_id=", format!("/v1/stock-levels?location_id={}", locations[3]), "/v1/stock-levels".into()),
        ("levels: below_threshold=true", "/v1/stock-levels?below_threshold=true".into(), "/v1/stock-levels".into()),
        ("level: as_of mid-pair (200k lines)", as_of, current),
        (
            "deliveries: endpoint_id= (0.1%)",
            format!("/v1/webhook-deliveries?endpoint_id={catalogue}"),
            "/v1/webhook-deliveries".into(),
        ),
        (
            "deliveries: endpoint_id= (90%)",
            format!("/v1/webhook-deliveries?endpoint_id={erp}"),
            "/v1/webhook-deliveries".into(),
        ),
        (
            "deliveries: event_id= (1 match)",
            format!("/v1/webhook-deliveries?event_id={mid_event}"),
            "/v1/webhook-deliveries".into(),
        ),
        (
            "deliveries: status=succeeded (0.1%)",
            "/v1/webhook-deliveries?status=succeeded".into(),
            "/v1/webhook-deliveries".into(),
        ),
        (
            "deliveries: status=dead (first 9%)",
            "/v1/webhook-deliveries?status=dead".into(),
            "/v1/webhook-deliveries".into(),
        ),
        (
            "deliveries: status=failed (after the dead)",
            "/v1/webhook-deliveries?status=failed".into(),
            "/v1/webhook-deliveries".into(),
        ),
        (
            "deliveries: endpoint_id= & status=failed",
            format!("/v1/webhook-deliveries?endpoint_id={erp}&status=failed"),
            "/v1/webhook-deliveries".into(),
        ),
        (
            "deliveries: event_id= & endpoint_id=",
            format!("/v1/webhook-deliveries?event_id={mid_event}&endpoint_id={catalogue}"),
            "/v1/webhook-deliveries".into(),
        ),
    ];
    let [pending, failed, succeeded, dead] = statuses;
    let load = twh_bench::procfs::load_average().unwrap_or_default();
    println!(
        "Tenant: {items} items, {movements} movements ({hot_lines} on one pair), {deliveries} webhook deliveries \
         ({pending} pending, {failed} failed, {succeeded} succeeded, {dead} dead); built in {built:.1} s, \
         dispatcher caught up {settled:.1} s later; load average {load}.\n\
         Indexes {:.1} MB: ledger and catalogue {:.1} MB, webhook deliveries {:.1} MB. Resident memory of the \
         process (tenant, deliveries with their attempts, indexes, allocator): {:.0} MB.\n",
        (ledger_index_bytes + delivery_index_bytes) as f64 / 1e6,
        ledger_index_bytes as f64 / 1e6,
        delivery_index_bytes as f64 / 1e6,
        rss as f64 / 1e6,
    );
    let attempts_before = emulator.state().dispatcher.stats().attempts;
    let timing = Instant::now();
    println!("| first page of | rows | p50 µs | p99 µs | unfiltered p50 µs | p99 µs | ratio p50 | ratio p99 |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut cpu_table = Vec::new();
    for (name, filtered, plain) in rows {
        let Row { len, wall, cpu } = time_pair(&app, &bearer, &filtered, &plain).await?;
        let ((p50, p99), (b50, b99)) = wall;
        println!(
            "| {name} | {len} | {p50:.1} | {p99:.1} | {b50:.1} | {b99:.1} | {:.2}× | {:.2}× |",
            p50 / b50,
            p99 / b99
        );
        let ((p50, p99), (b50, b99)) = cpu;
        cpu_table.push(format!(
            "| {name} | {p50:.1} | {p99:.1} | {b50:.1} | {b99:.1} | {:.2}× | {:.2}× |",
            p50 / b50,
            p99 / b99
        ));
    }
    println!(
        "\nTimed in {:.1} s; webhook attempts made meanwhile: {}; load average {}.",
        timing.elapsed().as_secs_f64(),
        emulator.state().dispatcher.stats().attempts - attempts_before,
        twh_bench::procfs::load_average().unwrap_or_default()
    );
    println!("\nThe same calls in thread CPU time (without time spent preempted by other processes):\n");
    println!("| first page of | p50 µs | p99 µs | unfiltered p50 µs | p99 µs | ratio p50 | ratio p99 |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for line in cpu_table {
        println!("{line}");
    }
    emulator.shutdown().await;
    Ok(())
}
