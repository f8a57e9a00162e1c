//! The in-process run: exactly `movements` single-line movements, each with its own
//! `Idempotency-Key`, sent one after the other through the emulator's whole HTTP application
//! (`twh_emulator::app`: request-id, metering and fault steps, router, auth, JSON extraction,
//! idempotency, ledger, rendering) with `tower::ServiceExt::oneshot`, as the server does for each
//! request, but with no sockets.
//!
//! It measures the resident memory of this process before and after (so it runs in a process of
//! its own), and the time of every call: with one request at a time and no network, a call's time
//! is the work done for it, so a latency spike here (a rehash, a buffer copy under the tenant
//! lock) belongs to the emulator, not to the network or the machine's scheduler.

use std::time::Instant;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};
use tower::ServiceExt;

use crate::load::Percentiles;
use crate::procfs;

/// One block of consecutive movements.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Block {
    /// Movements written at the block's end.
    pub movements_at_end: u64,
    /// Movements per second in the block.
    pub rate: f64,
    /// Time of one call.
    pub latency: Percentiles,
    /// CPU time of one call (this thread's: time the machine gave to other work is not in it).
    pub cpu: Percentiles,
    /// Resident memory of the process at the block's end, in bytes.
    pub rss: Option<u64>,
}

/// What the in-process run measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct InprocReport {
    /// Movements written (every one answered 201).
    pub movements: u64,
    /// Seconds the writes took.
    pub seconds: f64,
    /// Resident memory before the first movement, in bytes.
    pub rss_before: Option<u64>,
    /// Resident memory after the last, in bytes.
    pub rss_after: Option<u64>,
    /// Time of one call over the whole run.
    pub latency: Percentiles,
    /// CPU time of one call over the whole run.
    pub cpu: Percentiles,
    /// The calls that took the most CPU time: (movements written before it, microseconds).
    pub slowest: Vec<(u64, f64)>,
    /// The run, block by block.
    pub blocks: Vec<Block>,
}

async fn call(app: &twh_emulator::App, req: Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)> {
    let response = app.clone().oneshot(req.map(axum::body::Body::new)).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

fn post(path: &str, bearer: &str, key: Option<&str>, body: Bytes) -> anyhow::Result<Request<Full<Bytes>>> {
    let mut b =
        Request::post(path).header(header::AUTHORIZATION, bearer).header(header::CONTENT_TYPE, "application/json");
    if let Some(k) = key {
        b = b.header("idempotency-key", k);
    }
    Ok(b.body(Full::new(body))?)
}

async fn create(app: &twh_emulator::App, bearer: &str, path: &str, body: serde_json::Value) -> anyhow::Result<String> {
    let (status, bytes) = call(app, post(path, bearer, None, Bytes::from(body.to_string()))?).await?;
    if status != 201 {
        bail!("POST {path} answered {status}: {}", String::from_utf8_lossy(&bytes));
    }
    let v: serde_json::Value = serde_json::from_slice(&bytes)?;
    Ok(v["id"].as_str().context("id")?.to_owned())
}

/// Runs `movements` movements over `pairs`×`pairs` (item, location) pairs, reporting every `block`.
pub fn run(movements: u64, pairs: usize, block: u64) -> anyhow::Result<InprocReport> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        // A load test: no rate limit, and a pro sandbox (overage instead of refusals).
        let mut config = twh_emulator::Config::default();
        config.http.rate_limit_per_second = 0;
        let emulator = twh_emulator::Emulator::start(config).await?;
        let pro = twh_emulator::domain::model::CreateSandbox {
            plan: Some(twh_emulator::domain::model::Plan::Pro),
            ..Default::default()
        };
        let sandbox = emulator.create_sandbox(pro).map_err(|e| anyhow::anyhow!("create sandbox: {e}"))?;
        let bearer = format!("Bearer {}", sandbox.secret_key);
        let app = twh_emulator::app(emulator.state().clone());
        let mut bodies = Vec::new();
        let mut items = Vec::new();
        for i in 0..pairs {
            items.push(
                create(&app, &bearer, "/v1/items", serde_json::json!({"sku": format!("mem-{i}"), "name": "Memory"}))
                    .await?,
            );
        }
        for i in 0..pairs {
            let location = create(
                &app,
                &bearer,
                "/v1/locations",
                serde_json::json!({"code": format!("mem-{i}"), "name": "Memory"}),
            )
            .await?;
            for item in &items {
                let body =
                    serde_json::json!({"type": "receipt", "item_id": item, "location_id": location, "quantity": 1});
                bodies.push(Bytes::from(body.to_string()));
            }
        }
        let block = block.max(1);
        let mut whole = crate::load::histogram();
        let mut current = crate::load::histogram();
        let mut whole_cpu = crate::load::histogram();
        let mut current_cpu = crate::load::histogram();
        // The `SLOWEST` largest CPU times, smallest first.
        const SLOWEST: usize = 12;
        let mut slowest: Vec<(u64, u64)> = Vec::with_capacity(SLOWEST + 1);
        let mut blocks = Vec::with_capacity(usize::try_from(movements / block + 1).unwrap_or(0));
        let mut key = String::with_capacity(32);

        let rss_before = procfs::rss_bytes(std::process::id());
        let started = Instant::now();
        let mut block_started = started;
        for n in 0..movements {
            key.clear();
            {
                use std::fmt::Write;
                let _ = write!(key, "mem-{n}");
            }
            let cpu_before = procfs::thread_cpu_ns();
            let t = Instant::now();
            let req = post("/v1/stock-movements", &bearer, Some(&key), bodies[n as usize % bodies.len()].clone())?;
            let (status, body) = call(&app, req).await?;
            let ns = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1);
            let cpu_ns = procfs::thread_cpu_ns().saturating_sub(cpu_before).max(1);
            if status != 201 {
                bail!("movement {n} answered {status}: {}", String::from_utf8_lossy(&body));
            }
            whole.saturating_record(ns);
            current.saturating_record(ns);
            whole_cpu.saturating_record(cpu_ns);
            current_cpu.saturating_record(cpu_ns);
            if slowest.len() < SLOWEST || cpu_ns > slowest[0].1 {
                let at = slowest.partition_point(|(_, c)| *c < cpu_ns);
                slowest.insert(at, (n, cpu_ns));
                if slowest.len() > SLOWEST {
                    slowest.remove(0);
                }
            }
            if (n + 1) % block == 0 || n + 1 == movements {
                let now = Instant::now();
                blocks.push(Block {
                    movements_at_end: n + 1,
                    rate: current.len() as f64 / (now - block_started).as_secs_f64().max(f64::EPSILON),
                    latency: Percentiles::of(&current),
                    cpu: Percentiles::of(&current_cpu),
                    rss: procfs::rss_bytes(std::process::id()),
                });
                current.reset();
                current_cpu.reset();
                block_started = now;
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let rss_after = procfs::rss_bytes(std::process::id());
        emulator.shutdown().await;
        slowest.reverse();
        Ok(InprocReport {
            movements,
            seconds,
            rss_before,
            rss_after,
            latency: Percentiles::of(&whole),
            cpu: Percentiles::of(&whole_cpu),
            slowest: slowest.into_iter().map(|(n, c)| (n, c as f64 / 1e3)).collect(),
            blocks,
        })
    })
}
