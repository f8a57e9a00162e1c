//! `twh-bench-webhooks`: ledger write latency before and during a burst of 10,000 webhook
//! deliveries to a dead receiver, in one emulator process, in one run.
//!
//! ```text
//! cargo run --release -p twh-bench --bin twh-bench-webhooks [-- --seconds 5 --events 10000]
//! ```
//!
//! The emulator runs pinned to core 0, the load generator (16 keep-alive connections, each
//! request a new single-line movement) on core 1. Phases, each measured for `--seconds`:
//!
//! 1. **before**: no webhook endpoint.
//! 2. **refused**: an endpoint whose port refuses connections (every attempt fails at once and
//!    is rescheduled), after a burst of `--events` `stock_movement.created` events written in
//!    batches of 1,000.
//! 3. **black hole**: the first endpoint deleted (its pending deliveries stop), a second one on
//!    a listener that accepts and never answers (every attempt holds a connection until the
//!    15 s timeout), after another burst.
//!
//! Each row has the write rate and latency, the emulator's resident memory, and the
//! dispatcher's counters from `GET /_emulator/health` (deliveries waiting, attempts in flight,
//! the claim bound), and how busy the server's core was: the emulator's own share of it and
//! the rest (other work on the machine). Ratios are against phase 1 of the same run.
//!
//! `--runs N` repeats the whole sequence N times, each with a fresh emulator, and ends with the
//! medians over the runs (ratios taken within each run first): one run on a shared machine
//! says little.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use http::Method;
use serde_json::{Value, json};
use twh_bench::load::{LoadReport, LoadSpec};
use twh_bench::process::{build_emulator, pinned, spawn_server};
use twh_bench::{client, procfs};

/// Ledger writes before and during a burst of webhook deliveries to a dead receiver.
#[derive(Parser, Debug)]
#[command(name = "twh-bench-webhooks", version, about)]
struct Args {
    /// Measured seconds of each phase.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Events (deliveries) in each burst.
    #[arg(long, default_value_t = 10_000)]
    events: u64,
    /// Keep-alive connections of the load generator.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Do not run `cargo build --release -p twh-emulator` first.
    #[arg(long)]
    no_build: bool,
    /// Do not pin the emulator to core 0 and the load generator to core 1.
    #[arg(long)]
    no_pin: bool,
    /// Runs of the three phases, each with a fresh emulator (medians reported).
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Measure this emulator binary instead of the one next to this program (no build).
    #[arg(long)]
    emulator_bin: Option<PathBuf>,
}

/// Movements per batch request of a burst (the API's batch bound).
const BATCH: u64 = 1_000;

/// Core the emulator is pinned to.
const SERVER_CORE: usize = 0;
/// Core the load generator is pinned to.
const CLIENT_CORE: usize = 1;

struct Phase {
    name: &'static str,
    load: LoadReport,
    rss: Option<u64>,
    health: Value,
}

impl Phase {
    /// Share of its core the emulator used, and what the rest of the machine took of that core.
    fn core_shares(&self, pinned: bool) -> (Option<f64>, Option<f64>) {
        let l = &self.load;
        let own = l.server_cpu_seconds.map(|c| c / l.measured_seconds.max(f64::EPSILON));
        let busy = l.core_busy.get(SERVER_CORE).copied().filter(|_| pinned);
        (own, busy.zip(own).map(|(b, o)| (b - o).max(0.0)))
    }

    /// Emulator CPU time per write, in microseconds: what a write costs, webhook work included
    /// (steadier than rates and latency when other work shares the cores).
    fn cpu_micros_per_write(&self) -> Option<f64> {
        let l = &self.load;
        l.server_cpu_seconds.filter(|_| l.measured_ok > 0).map(|c| c * 1e6 / l.measured_ok as f64)
    }

    /// What the rest of the machine took of the load generator's core.
    fn client_other(&self, pinned: bool) -> Option<f64> {
        let l = &self.load;
        let own = l.loadgen_cpu_seconds.map(|c| c / l.measured_seconds.max(f64::EPSILON));
        let busy = l.core_busy.get(CLIENT_CORE).copied().filter(|_| pinned);
        busy.zip(own).map(|(b, o)| (b - o).max(0.0))
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let exe = std::env::current_exe()?;
    let exe_dir = exe.parent().context("program directory")?.to_path_buf();
    if !args.no_build && args.emulator_bin.is_none() {
        build_emulator(&exe_dir);
    }
    let emulator_bin = args.emulator_bin.clone().unwrap_or_else(|| exe_dir.join("twh-emulator"));
    if !emulator_bin.exists() {
        bail!("{} is missing; build with `cargo build --release -p twh-emulator`", emulator_bin.display());
    }
    if !args.no_pin {
        pin_self(CLIENT_CORE);
    }
    let mut runs = Vec::new();
    for run in 1..=args.runs.max(1) {
        if args.runs > 1 {
            eprintln!("twh-bench-webhooks: run {run} of {} …", args.runs);
        }
        let phases = run_once(&args, &emulator_bin)?;
        if args.runs > 1 {
            println!("Run {run}:\n");
        }
        println!("{}", table(&phases, args.events, !args.no_pin));
        runs.push(phases);
    }
    if runs.len() > 1 {
        println!("{}", medians(&runs, !args.no_pin));
    }
    Ok(())
}

/// One emulator, three phases.
fn run_once(args: &Args, emulator_bin: &Path) -> anyhow::Result<Vec<Phase>> {
    let mut cmd = pinned((!args.no_pin).then_some(SERVER_CORE), emulator_bin);
    cmd.args(["serve", "--port", "0", "--log", "warn", "--rate-limit-per-second", "0", "--demo-plan", "pro"]);
    let emulator = spawn_server(cmd, true)?;
    let key = emulator.api_key.clone().context("the emulator printed no TWH_API_KEY")?;
    let bearer = format!("Bearer {key}");
    let addr = emulator.addr;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let api = Api { addr, bearer: &bearer, rt: &rt };

    let item = api.post("/v1/items", &json!({"sku": "BURST-1", "name": "Burst"}))?;
    let location = api.post("/v1/locations", &json!({"code": "BURST-WH", "name": "Burst warehouse"}))?;
    let (item, location) = (id(&item)?, id(&location)?);
    let body = json!({"type": "receipt", "item_id": item, "location_id": location, "quantity": 1}).to_string();
    let measure = |name: &'static str, prefix: &str| -> anyhow::Result<Phase> {
        eprintln!("twh-bench-webhooks: measuring {name} …");
        let load = twh_bench::load::run(LoadSpec {
            addr,
            path: "/v1/stock-movements".to_owned(),
            authorization: Some(bearer.clone()),
            bodies: vec![body.clone()],
            connections: args.connections,
            warmup: Duration::from_millis(500),
            duration: Duration::from_secs_f64(args.seconds),
            window: Duration::from_secs_f64(args.seconds),
            key_prefix: format!("{prefix}-{}", std::process::id()),
            expect_status: 201,
            server_pid: Some(emulator.pid()),
            stop_after_ok: None,
            // Measured before spinning clients were an option; its ratios are within one run.
            spin: false,
        })?;
        let health = api.get("/_emulator/health")?;
        Ok(Phase { name, load, rss: procfs::rss_bytes(emulator.pid()), health })
    };

    let mut phases = vec![measure("before (no endpoint)", "before")?];

    // A port that refuses: bind, note the port, close.
    let refused = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let first = api.post(
        "/v1/webhook-endpoints",
        &json!({"url": format!("http://{refused}/hook"), "event_types": ["stock_movement.created"]}),
    )?;
    burst(&api, &item, &location, args.events, "refused")?;
    phases.push(measure("during a burst, receiver refuses", "refused")?);

    // Deleting the endpoint stops its deliveries; then a receiver that never answers.
    let etag = format!("\"{}\"", first["version"].as_u64().unwrap_or(1));
    api.send(Method::DELETE, &format!("/v1/webhook-endpoints/{}", id(&first)?), &[("if-match", &etag)], None)?;
    let hole = TcpListener::bind("127.0.0.1:0")?;
    let hole_addr = hole.local_addr()?;
    std::thread::spawn(move || black_hole(&hole));
    api.post(
        "/v1/webhook-endpoints",
        &json!({"url": format!("http://{hole_addr}/hook"), "event_types": ["stock_movement.created"]}),
    )?;
    burst(&api, &item, &location, args.events, "hole")?;
    phases.push(measure("during a burst, receiver never answers", "hole")?);
    Ok(phases)
}

/// Accepts connections and holds them open, reading nothing and answering nothing.
fn black_hole(listener: &TcpListener) {
    let mut held = Vec::new();
    for stream in listener.incoming().flatten() {
        // The emulator's concurrency bounds how many attempts are open at once; keep at most a
        // few thousand sockets, dropping the oldest.
        if held.len() >= 4096 {
            held.remove(0);
        }
        held.push(stream);
    }
}

/// Writes `events` receipts in batches of [`BATCH`]: one `stock_movement.created` each.
fn burst(api: &Api<'_>, item: &str, location: &str, events: u64, tag: &str) -> anyhow::Result<()> {
    eprintln!("twh-bench-webhooks: burst of {events} events ({tag}) …");
    let mut left = events;
    let mut n = 0;
    while left > 0 {
        let size = left.min(BATCH);
        let movements: Vec<Value> = (0..size)
            .map(|_| json!({"type": "receipt", "item_id": item, "location_id": location, "quantity": 1}))
            .collect();
        let key = format!("burst-{tag}-{}-{n}", std::process::id());
        let (status, bytes) = api.send(
            Method::POST,
            "/v1/stock-movements/batch",
            &[("idempotency-key", &key)],
            Some(&json!({"movements": movements})),
        )?;
        if status != 201 {
            bail!("batch answered {status}: {}", String::from_utf8_lossy(&bytes));
        }
        left -= size;
        n += 1;
    }
    Ok(())
}

struct Api<'a> {
    addr: SocketAddr,
    bearer: &'a str,
    rt: &'a tokio::runtime::Runtime,
}

impl Api<'_> {
    fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, bytes::Bytes)> {
        let mut all = vec![("authorization", self.bearer)];
        all.extend_from_slice(headers);
        self.rt.block_on(client::send(self.addr, method, path, &all, body))
    }

    fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let key = format!("setup-{}-{}", std::process::id(), rand_suffix());
        let (status, bytes) = self.send(Method::POST, path, &[("idempotency-key", &key)], Some(body))?;
        if !(200..300).contains(&status) {
            bail!("POST {path} answered {status}: {}", String::from_utf8_lossy(&bytes));
        }
        Ok(serde_json::from_slice(&bytes)?)
    }

    fn get(&self, path: &str) -> anyhow::Result<Value> {
        let (status, bytes) = self.send(Method::GET, path, &[], None)?;
        if status != 200 {
            bail!("GET {path} answered {status}");
        }
        Ok(serde_json::from_slice(&bytes)?)
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
}

fn id(v: &Value) -> anyhow::Result<String> {
    v["id"].as_str().map(str::to_owned).context("an id in the answer")
}

/// Pins this process (the load generator) to `core`.
fn pin_self(core: usize) {
    let status = std::process::Command::new("taskset")
        .args(["-p", "-c", &core.to_string(), &std::process::id().to_string()])
        .stdout(std::process::Stdio::null())
        .status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("twh-bench-webhooks: WARNING: could not pin the load generator to core {core}");
    }
}

fn percent(share: Option<f64>) -> String {
    share.map_or("?".to_owned(), |s| format!("{:.0}%", s * 100.0))
}

fn table(phases: &[Phase], events: u64, pinned: bool) -> String {
    let base = &phases[0].load;
    let mut out = String::from(
        "| phase | writes/s | vs before | p50 ms | p99 ms | p99 vs before | emulator CPU | CPU µs per write | other work: emulator's core | load generator's core | emulator RSS MB | deliveries waiting | attempts in flight | claim bound |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for p in phases {
        let l = &p.load;
        let w = &p.health["webhooks"];
        let (own, other) = p.core_shares(pinned);
        out.push_str(&format!(
            "| {} | {:.0} | {:.2}× | {:.2} | {:.2} | {:.2}× | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            p.name,
            l.rate,
            l.rate / base.rate.max(f64::EPSILON),
            l.latency.p50 / 1000.0,
            l.latency.p99 / 1000.0,
            l.latency.p99 / base.latency.p99.max(1.0),
            percent(own),
            p.cpu_micros_per_write().map_or("?".to_owned(), |m| format!("{m:.0}")),
            percent(other),
            percent(p.client_other(pinned)),
            p.rss.map_or("?".to_owned(), |b| format!("{:.0}", b as f64 / 1e6)),
            w["waiting"],
            w["in_flight"],
            w["batch_max"],
        ));
    }
    out.push_str(&format!(
        "\nBursts of {events} `stock_movement.created` events each; {} errors in the measured phases. \
         Load average at the end: {}.\n",
        phases.iter().map(|p| p.load.errors).sum::<u64>(),
        procfs::load_average().unwrap_or_default(),
    ));
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Medians over the runs, phase by phase; ratios are taken within each run first.
fn medians(runs: &[Vec<Phase>], pinned: bool) -> String {
    let mut out = format!(
        "Medians of {} runs (ratios against the first phase of the same run):\n\n\
         | phase | writes/s | vs before | p99 ms | p99 vs before | emulator CPU | CPU µs per write | other work: emulator's core | load generator's core |\n\
         |---|---|---|---|---|---|---|---|---|\n",
        runs.len()
    );
    for (i, first) in runs[0].iter().enumerate() {
        let of = |f: &dyn Fn(&[Phase], &Phase) -> Option<f64>| {
            median(runs.iter().filter_map(|r| r.get(i).and_then(|p| f(r, p))).collect())
        };
        let rate = of(&|_, p| Some(p.load.rate));
        let rate_ratio = of(&|r, p| Some(p.load.rate / r[0].load.rate.max(f64::EPSILON)));
        let p99 = of(&|_, p| Some(p.load.latency.p99 / 1000.0));
        let p99_ratio = of(&|r, p| Some(p.load.latency.p99 / r[0].load.latency.p99.max(1.0)));
        let own = of(&|_, p| p.core_shares(pinned).0);
        let other = of(&|_, p| p.core_shares(pinned).1);
        let client_other = of(&|_, p| p.client_other(pinned));
        let per_write = of(&|_, p| p.cpu_micros_per_write());
        let shown = |v: f64| percent(Some(v).filter(|v| v.is_finite()));
        out.push_str(&format!(
            "| {} | {rate:.0} | {rate_ratio:.2}× | {p99:.2} | {p99_ratio:.2}× | {} | {per_write:.0} | {} | {} |\n",
            first.name,
            shown(own),
            shown(other),
            shown(client_other),
        ));
    }
    out
}
