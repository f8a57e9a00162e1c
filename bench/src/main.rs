//! `twh-bench`: runs the whole benchmark of the emulator and prints one Markdown table.
//!
//! ```text
//! cargo run --release -p twh-bench [-- --seconds 20 --bare-seconds 10 --starts 10]
//! ```
//!
//! 1. Start to first answered request: spawn the binary on a free port and poll
//!    `GET /_emulator/health` until it answers 200 (median of `--starts` runs); the same
//!    in-process with `Emulator::start`. Baseline: the bare hyper server, the same way.
//! 2. Ledger writes: the bare server (baseline) and then the emulator, each pinned to core 0,
//!    loaded from core 1 by a subprocess of this program (`load-worker`) with 64 keep-alive
//!    connections; every emulator request is a new single-line movement with its own
//!    `Idempotency-Key`.
//! 3. Memory: the emulator's resident memory before and after the write phase, per movement.
//! 4. Durable writes: a third server, the emulator with `--data-dir` (SQLite, every write
//!    fsynced before its answer, group commit), loaded the same way in slices alternating with
//!    the other two, so its rate and latency are compared with the in-memory emulator's of the
//!    same run.
//!
//! 5. Request journal: two more emulators, one with the journal on (the default) and one with
//!    `--journal-size 0`, loaded the same way in equal slices alternating with the others, so
//!    their rates (same state size, same machine conditions) give the journal's cost as a ratio;
//!    then `GET /metrics` timed on the main emulator at the size it reached.
//!
//! See `bench/README.md` for what each figure means.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use http::Method;
use serde_json::json;
use twh_bench::inproc::InprocReport;
use twh_bench::load::{LoadReport, LoadSpec};
use twh_bench::process::{build_emulator, pinned, spawn_server};
use twh_bench::{bare, client, procfs};

/// Benchmark of the TWH emulator: ledger write rate and latency against a bare hyper server,
/// start to first answered request, resident memory per million movements.
#[derive(Parser, Debug)]
#[command(name = "twh-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// Internal: runs the load described by a JSON `LoadSpec` on stdin; prints a JSON report.
    #[command(hide = true)]
    LoadWorker,
    /// Internal: the in-process run (see `twh_bench::inproc`); prints a JSON report.
    #[command(hide = true)]
    InprocWorker {
        #[arg(long)]
        movements: u64,
        #[arg(long)]
        pairs: usize,
        #[arg(long)]
        block: u64,
    },
}

#[derive(Args, Debug, Clone)]
struct RunArgs {
    /// Longest measured phase of ledger writes against the emulator (state grows all along).
    #[arg(long, default_value_t = 45.0)]
    seconds: f64,
    /// Stop the emulator's write phase once it has written this many movements (0: no limit).
    #[arg(long, default_value_t = 1_000_000)]
    movements: u64,
    /// Movements of the in-process run (memory per movement, time per write); 0 skips it.
    #[arg(long, default_value_t = 1_000_000)]
    inproc_movements: u64,
    /// Measured seconds against the bare baseline server, spread over the slices.
    #[arg(long, default_value_t = 10.0)]
    bare_seconds: f64,
    /// Measured seconds against the emulator with `--data-dir`, spread over the slices (0 skips it).
    #[arg(long, default_value_t = 10.0)]
    durable_seconds: f64,
    /// Measured seconds against each of the two journal servers (journal on, and
    /// `--journal-size 0`), spread over the slices (0 skips them).
    #[arg(long, default_value_t = 8.0)]
    journal_seconds: f64,
    /// The data dir of that emulator (default: a new directory under the system temp dir,
    /// removed afterwards). It should be on the disk you want to measure, not a tmpfs.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Warm-up seconds before the first slice on each server.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Keep-alive connections of the load generator.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds of each emulator slice (one row of the timeline).
    #[arg(long, default_value_t = 2.0)]
    window: f64,
    /// Start-time runs (median reported), for the process and for in-process.
    #[arg(long, default_value_t = 10)]
    starts: usize,
    /// Items (and, separately, locations) the movements are spread over.
    #[arg(long, default_value_t = 4)]
    pairs: usize,
    /// The emulator binary (default: `twh-emulator` next to this program).
    #[arg(long)]
    emulator_bin: Option<PathBuf>,
    /// Do not run `cargo build --release -p twh-emulator` first.
    #[arg(long)]
    no_build: bool,
    /// Do not pin the server to core 0 and the load generator to core 1.
    #[arg(long)]
    no_pin: bool,
    /// Let the load generator sleep while it waits for answers (by default it spins on its
    /// core, so the servers do not pay for waking it; see bench/README.md).
    #[arg(long)]
    idle_client: bool,
    /// Where to write the table as well (default: bench/results/latest.md).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Skip the start-time measurements.
    #[arg(long)]
    skip_start: bool,
    /// Skip the load phases (and the memory figure).
    #[arg(long)]
    skip_load: bool,
}

fn main() -> ExitCode {
    twh_bench::without_huge_pages();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Sub::LoadWorker) => load_worker(),
        Some(Sub::InprocWorker { movements, pairs, block }) => inproc_worker(movements, pairs, block),
        None => run(cli.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("twh-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn inproc_worker(movements: u64, pairs: usize, block: u64) -> anyhow::Result<()> {
    let report = twh_bench::inproc::run(movements, pairs, block)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn load_worker() -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let spec: LoadSpec = serde_json::from_str(&input).context("load spec on stdin")?;
    let report = twh_bench::load::run(spec)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Runs the in-process run as a subprocess of this program (pinned to `core`).
fn run_inproc(core: Option<usize>, args: &RunArgs) -> anyhow::Result<InprocReport> {
    let me = std::env::current_exe()?;
    let block = (args.inproc_movements / 10).max(1);
    let out = pinned(core, &me)
        .arg("inproc-worker")
        .args([
            "--movements",
            &args.inproc_movements.to_string(),
            "--pairs",
            &args.pairs.to_string(),
            "--block",
            &block.to_string(),
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("spawn the in-process worker")?;
    if !out.status.success() {
        bail!("the in-process worker failed: {}", out.status);
    }
    serde_json::from_slice(&out.stdout).context("in-process worker report")
}

/// Runs the load generator as a subprocess of this program (pinned to `core`).
fn run_load(core: Option<usize>, spec: &LoadSpec) -> anyhow::Result<LoadReport> {
    let me = std::env::current_exe()?;
    let mut child = pinned(core, &me)
        .arg("load-worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("spawn the load worker")?;
    child.stdin.take().context("worker stdin")?.write_all(serde_json::to_string(spec)?.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("the load worker failed: {}", out.status);
    }
    serde_json::from_slice(&out.stdout).context("load worker report")
}

// ---- measurements ----------------------------------------------------------------------------

#[derive(Default, Debug)]
struct Starts {
    process_emulator: Vec<Duration>,
    process_bare: Vec<Duration>,
    inproc_emulator: Vec<Duration>,
    inproc_bare: Vec<Duration>,
}

fn median(v: &[Duration]) -> Option<Duration> {
    let mut v = v.to_vec();
    v.sort();
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2),
    }
}

/// Spawn → first `200`, once.
fn process_start(program: &Path, args: &[&str], probe: &str) -> anyhow::Result<Duration> {
    let port = client::free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .arg("--port")
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("spawn {}", program.display()))?;
    let waited = client::wait_for_200(addr, probe, started, Duration::from_micros(50), Duration::from_secs(10));
    let _ = child.kill();
    let _ = child.wait();
    waited
}

fn measure_starts(
    args: &RunArgs,
    emulator_bin: &Path,
    bare_bin: &Path,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Starts> {
    let mut s = Starts::default();
    for _ in 0..args.starts {
        s.process_emulator.push(process_start(emulator_bin, &["serve", "--log", "warn"], "/_emulator/health")?);
        s.process_bare.push(process_start(bare_bin, &[], "/")?);
    }
    rt.block_on(async {
        for _ in 0..args.starts {
            let started = Instant::now();
            let emu = twh_emulator::Emulator::start(twh_emulator::Config::default()).await?;
            let (status, _) = client::send(emu.addr(), Method::GET, "/_emulator/health", &[], None).await?;
            let took = started.elapsed();
            anyhow::ensure!(status == 200, "in-process health answered {status}");
            s.inproc_emulator.push(took);
            emu.shutdown().await;

            let started = Instant::now();
            let (addr, task) = bare::start(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
            let (status, _) = client::send(addr, Method::GET, "/", &[], None).await?;
            let took = started.elapsed();
            anyhow::ensure!(status == 200, "in-process bare answered {status}");
            s.inproc_bare.push(took);
            task.abort();
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(s)
}

/// One server's measured load, over all its slices.
struct Phase {
    /// Expected answers, warm-up included (for the emulator: movements written).
    ok_total: u64,
    errors: u64,
    error_sample: Option<String>,
    measured_ok: u64,
    measured_seconds: f64,
    latency: hdrhistogram::Histogram<u64>,
    server_cpu_seconds: f64,
    loadgen_cpu_seconds: f64,
    /// Per core: Σ busy share × seconds over the measured slices.
    core_busy_seconds: Vec<f64>,
    rss_before: Option<u64>,
    rss_after: Option<u64>,
    /// One row per slice.
    slices: Vec<Slice>,
    /// Σ quantity of the benchmark's stock levels after the run (emulator only).
    ledger_sum: Option<i64>,
}

/// One slice of a phase.
struct Slice {
    ok_total_at_end: u64,
    measured_ok: u64,
    seconds: f64,
    rate: f64,
    latency: twh_bench::load::Percentiles,
    histogram: Option<hdrhistogram::Histogram<u64>>,
    server_rss: Option<u64>,
    /// Share of the server's core used by other work (core busy − server's own share).
    other: Option<f64>,
}

/// A slice is quiet when other work took at most this share of the server's core.
const QUIET: f64 = 0.10;

impl Slice {
    fn quiet(&self) -> bool {
        self.other.is_some_and(|o| o <= QUIET)
    }
}

impl Phase {
    fn new(rss_before: Option<u64>) -> Phase {
        Phase {
            ok_total: 0,
            errors: 0,
            error_sample: None,
            measured_ok: 0,
            measured_seconds: 0.0,
            latency: twh_bench::load::histogram(),
            server_cpu_seconds: 0.0,
            loadgen_cpu_seconds: 0.0,
            core_busy_seconds: Vec::new(),
            rss_before,
            rss_after: None,
            slices: Vec::new(),
            ledger_sum: None,
        }
    }

    fn add(&mut self, r: &LoadReport, rss: Option<u64>, core: Option<usize>) {
        self.ok_total += r.ok_total;
        self.errors += r.errors;
        if self.error_sample.is_none() {
            self.error_sample.clone_from(&r.error_sample);
        }
        self.measured_ok += r.measured_ok;
        self.measured_seconds += r.measured_seconds;
        let histogram = twh_bench::load::decode_histogram(&r.histogram);
        if let Some(h) = &histogram {
            let _ = self.latency.add(h);
        }
        self.server_cpu_seconds += r.server_cpu_seconds.unwrap_or(0.0);
        self.loadgen_cpu_seconds += r.loadgen_cpu_seconds.unwrap_or(0.0);
        self.core_busy_seconds.resize(r.core_busy.len().max(self.core_busy_seconds.len()), 0.0);
        for (acc, b) in self.core_busy_seconds.iter_mut().zip(&r.core_busy) {
            *acc += b * r.measured_seconds;
        }
        self.rss_after = rss;
        let other = core.and_then(|c| r.core_busy.get(c)).zip(r.server_cpu_seconds).map(|(busy, cpu)| {
            let own = cpu / r.measured_seconds.max(f64::EPSILON);
            (busy - own).max(0.0)
        });
        self.slices.push(Slice {
            ok_total_at_end: self.ok_total,
            measured_ok: r.measured_ok,
            seconds: r.measured_seconds,
            rate: r.rate,
            latency: r.latency.clone(),
            histogram,
            server_rss: rss,
            other,
        });
    }

    /// Rate over some slices.
    fn rate_of(&self, slices: &[usize]) -> f64 {
        let ok: u64 = slices.iter().filter_map(|i| self.slices.get(*i)).map(|s| s.measured_ok).sum();
        let secs: f64 = slices.iter().filter_map(|i| self.slices.get(*i)).map(|s| s.seconds).sum();
        ok as f64 / secs.max(f64::EPSILON)
    }

    /// Latency over some slices.
    fn percentiles_of(&self, slices: &[usize]) -> twh_bench::load::Percentiles {
        let mut h = twh_bench::load::histogram();
        for s in slices.iter().filter_map(|i| self.slices.get(*i)) {
            if let Some(x) = &s.histogram {
                let _ = h.add(x);
            }
        }
        twh_bench::load::Percentiles::of(&h)
    }

    fn rate(&self) -> f64 {
        self.measured_ok as f64 / self.measured_seconds.max(f64::EPSILON)
    }

    fn percentiles(&self) -> twh_bench::load::Percentiles {
        twh_bench::load::Percentiles::of(&self.latency)
    }

    fn share(&self, cpu_seconds: f64) -> f64 {
        cpu_seconds / self.measured_seconds.max(f64::EPSILON)
    }

    fn core_busy(&self, core: usize) -> Option<f64> {
        self.core_busy_seconds.get(core).map(|b| b / self.measured_seconds.max(f64::EPSILON))
    }
}

#[allow(clippy::too_many_arguments)]
fn spec(
    args: &RunArgs,
    addr: SocketAddr,
    authorization: Option<String>,
    bodies: Vec<String>,
    warmup: f64,
    seconds: f64,
    stop_after_ok: Option<u64>,
    pid: u32,
    prefix: String,
) -> LoadSpec {
    LoadSpec {
        addr,
        path: "/v1/stock-movements".to_owned(),
        authorization,
        bodies,
        connections: args.connections,
        warmup: Duration::from_secs_f64(warmup),
        duration: Duration::from_secs_f64(seconds),
        window: Duration::from_secs_f64(seconds),
        key_prefix: prefix,
        expect_status: 201,
        server_pid: Some(pid),
        stop_after_ok,
        spin: !args.idle_client,
    }
}

fn movement_body(item: &str, location: &str) -> String {
    json!({"type": "receipt", "item_id": item, "location_id": location, "quantity": 1}).to_string()
}

/// What the write phase measured: the emulator, the baseline, the `--data-dir` emulator, the
/// journal-on and journal-off emulators, and the time of a `/metrics` scrape at the end.
type Measured = (Phase, Phase, Option<Phase>, Option<(Phase, Phase)>, Option<Duration>);

/// Starts both servers on the server core, then alternates slices of load on them: a slice of
/// `--window` seconds on the emulator (whose state keeps growing), then a shorter one on the
/// baseline, until the emulator has written `--movements` or run `--seconds`. Both servers thus
/// see the same machine conditions, which matters on a shared machine.
fn measure_writes(
    args: &RunArgs,
    emulator_bin: &Path,
    bare_bin: &Path,
    cores: (Option<usize>, Option<usize>),
    run_id: &str,
    rt: &tokio::runtime::Runtime,
    data_dir: Option<&Path>,
) -> anyhow::Result<Measured> {
    let mut cmd = pinned(cores.0, bare_bin);
    cmd.args(["--port", "0"]);
    let bare = spawn_server(cmd, false)?;
    let mut cmd = pinned(cores.0, emulator_bin);
    // A load test: no rate limit, and a pro sandbox whose quotas bill overage instead of refusing.
    cmd.args(["serve", "--port", "0", "--log", "warn", "--rate-limit-per-second", "0", "--demo-plan", "pro"]);
    let emulator = spawn_server(cmd, true)?;
    let key = emulator.api_key.clone().context("the emulator printed no TWH_API_KEY")?;
    let bearer = format!("Bearer {key}");
    let addr = emulator.addr;
    let (items, emu_bodies) = rt.block_on(pairs(args, addr, &bearer, run_id))?;
    // The same emulator with `--data-dir`, its own sandbox and pairs.
    let durable = match data_dir {
        Some(dir) => {
            let mut cmd = pinned(cores.0, emulator_bin);
            cmd.args(["serve", "--port", "0", "--log", "warn", "--rate-limit-per-second", "0", "--demo-plan", "pro"]);
            cmd.arg("--data-dir").arg(dir);
            let server = spawn_server(cmd, true)?;
            let bearer = format!("Bearer {}", server.api_key.clone().context("no TWH_API_KEY (--data-dir)")?);
            let (items, bodies) = rt.block_on(pairs(args, server.addr, &bearer, run_id))?;
            Some((server, bearer, items, bodies))
        }
        None => None,
    };
    // Two more emulators for the journal's cost: on (the default) and off, each with its own
    // sandbox and pairs, loaded in equal slices.
    let journal = if args.journal_seconds > 0.0 {
        let mut servers = Vec::new();
        for size in [None, Some("0")] {
            let mut cmd = pinned(cores.0, emulator_bin);
            cmd.args(["serve", "--port", "0", "--log", "warn", "--rate-limit-per-second", "0", "--demo-plan", "pro"]);
            if let Some(size) = size {
                cmd.args(["--journal-size", size]);
            }
            let server = spawn_server(cmd, true)?;
            let bearer = format!("Bearer {}", server.api_key.clone().context("no TWH_API_KEY (journal)")?);
            let (_, bodies) = rt.block_on(pairs(args, server.addr, &bearer, run_id))?;
            servers.push((server, bearer, bodies));
        }
        Some(servers)
    } else {
        None
    };
    let mut journal_phases: Option<Vec<Phase>> =
        journal.as_ref().map(|v| v.iter().map(|(s, ..)| Phase::new(procfs::rss_bytes(s.pid()))).collect());
    let journal_slice = (args.journal_seconds / (args.seconds / args.window).ceil().max(1.0)).max(0.25);
    // The same request shape for the baseline (which ignores it).
    let bare_bodies: Vec<String> = (0..emu_bodies.len())
        .map(|i| movement_body(&format!("itm_bench{i:08}"), &format!("loc_bench{i:08}")))
        .collect();

    let slices = (args.seconds / args.window).ceil().max(1.0);
    let bare_slice = (args.bare_seconds / slices).max(0.25);
    let mut emu = Phase::new(procfs::rss_bytes(emulator.pid()));
    let mut base = Phase::new(procfs::rss_bytes(bare.pid()));
    let durable_slice = (args.durable_seconds / slices).max(0.25);
    let mut dur = durable.as_ref().map(|(s, ..)| Phase::new(procfs::rss_bytes(s.pid())));
    let mut k = 0;
    while emu.measured_seconds < args.seconds - 1e-6 && (args.movements == 0 || emu.ok_total < args.movements) {
        let warmup = if k == 0 { args.warmup } else { 0.0 };
        let left = (args.seconds - emu.measured_seconds).min(args.window);
        let stop = (args.movements > 0).then(|| args.movements - emu.ok_total);
        let s = spec(
            args,
            addr,
            Some(bearer.clone()),
            emu_bodies.clone(),
            warmup,
            left,
            stop,
            emulator.pid(),
            format!("{run_id}-{k}"),
        );
        let r = run_load(cores.1, &s)?;
        emu.add(&r, procfs::rss_bytes(emulator.pid()), cores.0);
        let s = spec(
            args,
            bare.addr,
            Some("Bearer sk_test_bare".into()),
            bare_bodies.clone(),
            warmup,
            bare_slice,
            None,
            bare.pid(),
            format!("{run_id}-{k}"),
        );
        let r = run_load(cores.1, &s)?;
        base.add(&r, procfs::rss_bytes(bare.pid()), cores.0);
        if let (Some((server, bearer, _, bodies)), Some(phase)) = (&durable, dur.as_mut()) {
            let s = spec(
                args,
                server.addr,
                Some(bearer.clone()),
                bodies.clone(),
                warmup,
                durable_slice,
                None,
                server.pid(),
                format!("{run_id}-d{k}"),
            );
            let r = run_load(cores.1, &s)?;
            phase.add(&r, procfs::rss_bytes(server.pid()), cores.0);
        }
        if let (Some(servers), Some(phases)) = (&journal, journal_phases.as_mut()) {
            for (j, ((server, bearer, bodies), phase)) in servers.iter().zip(phases.iter_mut()).enumerate() {
                let s = spec(
                    args,
                    server.addr,
                    Some(bearer.clone()),
                    bodies.clone(),
                    warmup,
                    journal_slice,
                    None,
                    server.pid(),
                    format!("{run_id}-j{j}-{k}"),
                );
                let r = run_load(cores.1, &s)?;
                phase.add(&r, procfs::rss_bytes(server.pid()), cores.0);
            }
        }
        k += 1;
        eprint!("\rtwh-bench: {:.0} s, {} movements …", emu.measured_seconds, emu.ok_total);
    }
    eprintln!();

    emu.ledger_sum = ledger_sum(rt, addr, &bearer, &items);
    let scrape = scrape_time(rt, addr);
    if let (Some((server, bearer, items, _)), Some(phase)) = (&durable, dur.as_mut()) {
        phase.ledger_sum = ledger_sum(rt, server.addr, bearer, items);
    }
    let journal = journal_phases.and_then(|mut v| Some((v.remove(0), v.pop()?)));
    Ok((emu, base, dur, journal, scrape))
}

/// `GET /metrics` on the main emulator after its write phase: the median of 5 scrapes.
fn scrape_time(rt: &tokio::runtime::Runtime, addr: SocketAddr) -> Option<Duration> {
    rt.block_on(async {
        let mut took = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let (status, _) = client::send(addr, Method::GET, "/metrics", &[], None).await.ok()?;
            took.push(started.elapsed());
            if status != 200 {
                return None;
            }
        }
        median(&took)
    })
}

/// The journal's cost: the write rate with the journal on over the rate with it off, same
/// slices; and the time of a `/metrics` scrape at the size the main emulator reached.
fn journal_rows(on: &Phase, off: &Phase, main: &Phase, scrape: Option<Duration>, rows: &mut Vec<Row>) {
    rows.push(row(
        format!(
            "Ledger writes per second, request journal on (default) vs `--journal-size 0` (two more emulators, \
             {:.1} s each in equal slices alternating with the rest; baseline column: journal off)",
            on.measured_seconds
        ),
        rate(on.rate()),
        rate(off.rate()),
        ratio(on.rate(), off.rate()),
        "≥ 0.95× (journal costs ≤ 5%)",
        yes(off.rate() > 0.0 && on.rate() / off.rate() >= 0.95),
    ));
    let per_cpu = |p: &Phase| (p.server_cpu_seconds > 0.0).then(|| p.measured_ok as f64 / p.server_cpu_seconds);
    if let (Some(a), Some(b)) = (per_cpu(on), per_cpu(off)) {
        rows.push(row(
            "Ledger writes per server CPU-second, journal on vs off",
            rate(a),
            rate(b),
            ratio(a, b),
            "≥ 0.95×",
            yes(a / b >= 0.95),
        ));
    }
    let (a, b) = (on.percentiles(), off.percentiles());
    rows.push(row(
        "Write latency p99, journal on vs off",
        us_as_ms(a.p99),
        us_as_ms(b.p99),
        ratio(a.p99, b.p99),
        "—",
        "—".into(),
    ));
    if let Some(t) = scrape {
        rows.push(row(
            format!("`GET /metrics` at {} movements (median of 5 scrapes)", main.ok_total),
            ms(t),
            "—".into(),
            "—".into(),
            "milliseconds",
            yes(t < Duration::from_millis(50)),
        ));
    }
}

/// Our own items and locations; movements are spread over every pair. Returns the items and one
/// movement body per pair.
async fn pairs(
    args: &RunArgs,
    addr: SocketAddr,
    bearer: &str,
    run_id: &str,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let auth = [("authorization", bearer)];
    let mut items = Vec::new();
    let mut locations = Vec::new();
    for i in 0..args.pairs {
        let body = json!({"sku": format!("{run_id}-sku-{i}"), "name": format!("Bench item {i}")});
        let item = client::json(addr, Method::POST, "/v1/items", &auth, &body).await?;
        items.push(item["id"].as_str().context("item id")?.to_owned());
        let body = json!({"code": format!("{run_id}-loc-{i}"), "name": format!("Bench location {i}")});
        let loc = client::json(addr, Method::POST, "/v1/locations", &auth, &body).await?;
        locations.push(loc["id"].as_str().context("location id")?.to_owned());
    }
    let bodies = items.iter().flat_map(|i| locations.iter().map(move |l| movement_body(i, l))).collect();
    Ok((items, bodies))
}

/// Check: every 201 wrote exactly one unit, so the levels sum to the number of 201s.
fn ledger_sum(rt: &tokio::runtime::Runtime, addr: SocketAddr, bearer: &str, items: &[String]) -> Option<i64> {
    let auth = [("authorization", bearer)];
    let sum = rt.block_on(async {
        let mut sum = 0i64;
        for item in items {
            let path = format!("/v1/stock-levels?item_id={item}&limit=100");
            let (status, body) = client::send(addr, Method::GET, &path, &auth, None).await?;
            anyhow::ensure!(status == 200, "GET /v1/stock-levels answered {status}");
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            for level in v["data"].as_array().context("levels")? {
                sum += level["quantity"].as_i64().unwrap_or(0);
            }
        }
        Ok::<_, anyhow::Error>(sum)
    });
    match sum {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("twh-bench: WARNING: ledger check failed: {e:#}");
            None
        }
    }
}

// ---- the table -------------------------------------------------------------------------------

struct Row {
    metric: String,
    emulator: String,
    baseline: String,
    ratio: String,
    target: String,
    holds: String,
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn us_as_ms(us: f64) -> String {
    format!("{:.2} ms", us / 1e3)
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 { format!("{:.2}×", a / b) } else { "—".into() }
}

fn yes(ok: bool) -> String {
    if ok { "yes".into() } else { "**no**".into() }
}

fn rate(r: f64) -> String {
    // Thousands separated by a thin space would confuse some readers; keep plain digits.
    format!("{r:.0}/s")
}

fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| metric | emulator | baseline (bare hyper) | ratio | target | holds? |\n|---|---:|---:|---:|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.metric, r.emulator, r.baseline, r.ratio, r.target, r.holds
        ));
    }
    s
}

fn row(
    metric: impl Into<String>,
    emulator: String,
    baseline: String,
    ratio: String,
    target: &str,
    holds: String,
) -> Row {
    Row { metric: metric.into(), emulator, baseline, ratio, target: target.into(), holds }
}

fn start_rows(s: &Starts, runs: usize, rows: &mut Vec<Row>) {
    let target = Duration::from_millis(20);
    let spread = |v: &[Duration]| {
        let min = v.iter().min().copied().unwrap_or_default();
        let max = v.iter().max().copied().unwrap_or_default();
        format!(" (min {}, max {})", ms(min), ms(max))
    };
    if let (Some(e), Some(b)) = (median(&s.process_emulator), median(&s.process_bare)) {
        rows.push(row(
            format!("Start → first answered request, process (median of {runs}{})", spread(&s.process_emulator)),
            ms(e),
            ms(b),
            ratio(e.as_secs_f64(), b.as_secs_f64()),
            "< 20 ms",
            yes(e < target),
        ));
    }
    if let (Some(e), Some(b)) = (median(&s.inproc_emulator), median(&s.inproc_bare)) {
        rows.push(row(
            format!(
                "Start → first answered request, in-process `Emulator::start` (median of {runs}{})",
                spread(&s.inproc_emulator)
            ),
            ms(e),
            ms(b),
            ratio(e.as_secs_f64(), b.as_secs_f64()),
            "< 20 ms",
            yes(e < target),
        ));
    }
}

fn load_rows(args: &RunArgs, cores: (Option<usize>, Option<usize>), e: &Phase, b: &Phase, rows: &mut Vec<Row>) {
    let conns = args.connections;
    let p5 = 5_000.0;
    // Pairs of slices (emulator, then baseline) during which no other work ran on the server core.
    let quiet: Vec<usize> =
        (0..e.slices.len().min(b.slices.len())).filter(|i| e.slices[*i].quiet() && b.slices[*i].quiet()).collect();
    let quiet_seconds: f64 = quiet.iter().map(|i| e.slices[*i].seconds).sum();
    if quiet_seconds >= 2.0 * args.window - 1e-6 {
        let (eq, bq) = (e.rate_of(&quiet), b.rate_of(&quiet));
        rows.push(row(
            format!(
                "**Ledger writes per second**, HTTP/1.1, {conns} keep-alive connections — quiet slices only ({} of {} \
                 pairs, {quiet_seconds:.0} s of emulator: core {} had ≤ {:.0}% other work)",
                quiet.len(),
                e.slices.len(),
                cores.0.unwrap_or(0),
                QUIET * 100.0
            ),
            rate(eq),
            rate(bq),
            ratio(eq, bq),
            "≥ 0.50× baseline",
            yes(bq > 0.0 && eq / bq >= 0.5),
        ));
        let ql = e.percentiles_of(&quiet);
        let bl = b.percentiles_of(&quiet);
        rows.push(row(
            "Write latency p99, quiet slices only",
            us_as_ms(ql.p99),
            us_as_ms(bl.p99),
            ratio(ql.p99, bl.p99),
            "< 5 ms",
            yes(ql.p99 < p5),
        ));
    } else {
        rows.push(row(
            format!(
                "**Ledger writes per second**, quiet slices only: fewer than 2 slices had core {} free of other work \
                 (≤ {:.0}%); rerun on a quiet machine",
                cores.0.unwrap_or(0),
                QUIET * 100.0
            ),
            "—".into(),
            "—".into(),
            "—".into(),
            "≥ 0.50× baseline",
            "unknown".into(),
        ));
    }
    rows.push(row(
        format!(
            "Ledger writes per second, all slices ({:.1} s of emulator alternating with {:.1} s of baseline; other \
             work on the machine slows the baseline more, flattering the ratio)",
            e.measured_seconds, b.measured_seconds
        ),
        rate(e.rate()),
        rate(b.rate()),
        ratio(e.rate(), b.rate()),
        "≥ 0.50× baseline",
        yes(b.rate() > 0.0 && e.rate() / b.rate() >= 0.5),
    ));
    let per_cpu = |p: &Phase| (p.server_cpu_seconds > 0.0).then(|| p.measured_ok as f64 / p.server_cpu_seconds);
    if let (Some(ec), Some(bc)) = (per_cpu(e), per_cpu(b)) {
        rows.push(row(
            "Ledger writes per server CPU-second, all slices (CPU cost per write: 1 ÷ this)",
            rate(ec),
            rate(bc),
            ratio(ec, bc),
            "≥ 0.50× baseline",
            yes(ec / bc >= 0.5),
        ));
    }
    let (el, bl) = (e.percentiles(), b.percentiles());
    let lat = |name: &str, f: fn(&twh_bench::load::Percentiles) -> f64, target: Option<f64>| {
        let (ev, bv) = (f(&el), f(&bl));
        row(
            format!("Write latency {name}, all slices"),
            us_as_ms(ev),
            us_as_ms(bv),
            ratio(ev, bv),
            if target.is_some() { "< 5 ms" } else { "—" },
            target.map_or_else(|| "—".into(), |t| yes(ev < t)),
        )
    };
    rows.push(lat("p50", |p| p.p50, None));
    rows.push(lat("p99", |p| p.p99, Some(p5)));
    rows.push(lat("p99.9", |p| p.p999, None));
    rows.push(lat("max", |p| p.max, None));
    let worst = |p: &Phase| {
        p.slices
            .iter()
            .enumerate()
            .filter(|(_, w)| w.latency.count > 0)
            .max_by(|a, b| a.1.latency.p99.total_cmp(&b.1.latency.p99))
            .map(|(i, w)| (i, w.latency.p99, w.ok_total_at_end))
    };
    if let (Some((ei, ev, at)), Some((_, bv, _))) = (worst(e), worst(b)) {
        rows.push(row(
            format!(
                "Write latency p99, worst {:.0}-s slice as state grows (slice {}, at {} movements)",
                args.window,
                ei + 1,
                at
            ),
            us_as_ms(ev),
            us_as_ms(bv),
            ratio(ev, bv),
            "< 5 ms",
            yes(ev < p5),
        ));
    }
    if let (Some(a), Some(z), true) = (e.rss_before, e.rss_after, e.ok_total > 0) {
        // Bytes per movement == MB (10^6 bytes) per 10^6 movements.
        let em = (z as f64 - a as f64) / e.ok_total as f64;
        let bm = match (b.rss_before, b.rss_after) {
            (Some(x), Some(y)) if b.ok_total > 0 => format!("{:.1} MB", (y as f64 - x as f64) / b.ok_total as f64),
            _ => "—".into(),
        };
        let extrapolated = if e.ok_total < 1_000_000 { ", extrapolated" } else { "" };
        rows.push(row(
            format!(
                "Resident memory per 1,000,000 movements, HTTP run (server RSS {:.0} → {:.0} MB over {} \
                 movements{extrapolated}; baseline: per 1M requests)",
                a as f64 / 1e6,
                z as f64 / 1e6,
                e.ok_total
            ),
            format!("{em:.0} MB"),
            bm,
            "—".into(),
            "< 400 MB",
            yes(em < 400.0),
        ));
    }
    let cpu = |p: &Phase| {
        let pct = |c: f64| format!("{:.0}%", p.share(c) * 100.0);
        let core = |i: usize| p.core_busy(i).map_or_else(|| "?".into(), |b| format!("{:.0}%", b * 100.0));
        let (sc, lc) = match cores {
            (Some(a), Some(b)) => {
                (format!(" of core {a} ({} busy)", core(a)), format!(" of core {b} ({} busy)", core(b)))
            }
            _ => (String::new(), String::new()),
        };
        format!("server {}{sc}, load generator {}{lc}", pct(p.server_cpu_seconds), pct(p.loadgen_cpu_seconds))
    };
    rows.push(row(
        "CPU during the measured writes (a core busier than its process = other work on the machine)",
        cpu(e),
        cpu(b),
        "—".into(),
        "—",
        "—".into(),
    ));
    let errors = |p: &Phase| format!("{} / {}", p.ok_total, p.errors);
    let check = match e.ledger_sum {
        Some(sum) => format!("{} (Σ levels = {sum})", if sum == e.ok_total as i64 { "yes" } else { "**no**" }),
        None => "unchecked".into(),
    };
    rows.push(row(
        "Answers 201 / errors (warm-up included); emulator ledger check",
        errors(e),
        errors(b),
        "—".into(),
        "0 errors; Σ levels = 201s",
        format!("{}; {check}", yes(e.errors == 0 && b.errors == 0)),
    ));
}

/// The `--data-dir` emulator against the in-memory one of the same run (and the bare server).
fn durable_rows(args: &RunArgs, e: &Phase, d: &Phase, b: &Phase, rows: &mut Vec<Row>) {
    let conns = args.connections;
    rows.push(row(
        format!(
            "**Ledger writes per second with `--data-dir`** (SQLite WAL, fsync before each answer, group commit), {conns} connections, all slices ({:.1} s); baseline column here: the in-memory emulator of this run ({:.2}× the bare server)",
            d.measured_seconds,
            d.rate() / b.rate().max(f64::EPSILON)
        ),
        rate(d.rate()),
        rate(e.rate()),
        ratio(d.rate(), e.rate()),
        "report",
        "—".into(),
    ));
    let (dl, el) = (d.percentiles(), e.percentiles());
    for (name, f) in [
        ("p50", (|p: &twh_bench::load::Percentiles| p.p50) as fn(&twh_bench::load::Percentiles) -> f64),
        ("p99", |p| p.p99),
        ("p99.9", |p| p.p999),
    ] {
        rows.push(row(
            format!("Write latency {name} with `--data-dir`, all slices (baseline column: in-memory emulator)"),
            us_as_ms(f(&dl)),
            us_as_ms(f(&el)),
            ratio(f(&dl), f(&el)),
            if name == "p99" { "< 5 ms" } else { "—" },
            if name == "p99" { yes(dl.p99 < 5_000.0) } else { "—".into() },
        ));
    }
    let check = match d.ledger_sum {
        Some(sum) => format!("{} (Σ levels = {sum})", if sum == d.ok_total as i64 { "yes" } else { "**no**" }),
        None => "unchecked".into(),
    };
    rows.push(row(
        "Answers 201 / errors with `--data-dir` (warm-up included); ledger check",
        format!("{} / {}", d.ok_total, d.errors),
        format!("{} / {}", e.ok_total, e.errors),
        "—".into(),
        "0 errors; Σ levels = 201s",
        format!("{}; {check}", yes(d.errors == 0)),
    ));
}

fn inproc_rows(r: &InprocReport, rows: &mut Vec<Row>) {
    if let (Some(a), Some(z)) = (r.rss_before, r.rss_after) {
        let per_million = (z as f64 - a as f64) / r.movements as f64;
        rows.push(row(
            format!(
                "Resident memory per 1,000,000 movements, in-process (RSS {:.0} → {:.0} MB over exactly {} movements)",
                a as f64 / 1e6,
                z as f64 / 1e6,
                r.movements
            ),
            format!("{per_million:.0} MB"),
            "—".into(),
            "—".into(),
            "< 400 MB",
            yes(per_million < 400.0),
        ));
    }
    let four = |l: &twh_bench::load::Percentiles| {
        format!("{} / {} / {} / {}", us_as_ms(l.p50), us_as_ms(l.p99), us_as_ms(l.p999), us_as_ms(l.max))
    };
    rows.push(row(
        format!(
            "Time per write in-process, one at a time, no network ({} movements, {:.0}/s): p50 / p99 / p99.9 / max",
            r.movements,
            r.movements as f64 / r.seconds.max(f64::EPSILON)
        ),
        four(&r.latency),
        "—".into(),
        "—".into(),
        "—",
        "—".into(),
    ));
    rows.push(row(
        "CPU time per write in-process (the thread's own; the machine's other work is not in it): p50 / p99 / p99.9 / max",
        four(&r.cpu),
        "—".into(),
        "—".into(),
        "—",
        "—".into(),
    ));
}

fn mb(b: Option<u64>) -> String {
    b.map_or_else(|| "—".into(), |b| format!("{:.0} MB", b as f64 / 1e6))
}

fn timeline(args: &RunArgs, emu: &Phase, bare: &Phase, durable: Option<&Phase>) -> String {
    let mut s = format!(
        "Emulator writes over HTTP, slice by slice ({:.0} s each, each followed by {:.2} s on the baseline, whose \
         rate is shown for comparison):\n\n\
         | slice | movements at end | writes/s | p50 | p99 | p99.9 | max | server RSS | baseline writes/s | other work on \
         the server core (emulator / baseline slice) | `--data-dir` writes/s | `--data-dir` p99 |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        args.window,
        bare.measured_seconds / bare.slices.len().max(1) as f64
    );
    let pct = |o: Option<f64>| o.map_or_else(|| "?".into(), |o| format!("{:.0}%", o * 100.0));
    for (i, w) in emu.slices.iter().enumerate() {
        s.push_str(&format!(
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} / {} | {} | {} |\n",
            i + 1,
            w.ok_total_at_end,
            w.rate,
            us_as_ms(w.latency.p50),
            us_as_ms(w.latency.p99),
            us_as_ms(w.latency.p999),
            us_as_ms(w.latency.max),
            mb(w.server_rss),
            bare.slices.get(i).map_or_else(|| "—".into(), |b| format!("{:.0}", b.rate)),
            pct(w.other),
            pct(bare.slices.get(i).and_then(|b| b.other)),
            durable.and_then(|d| d.slices.get(i)).map_or_else(|| "—".into(), |d| format!("{:.0}", d.rate)),
            durable.and_then(|d| d.slices.get(i)).map_or_else(|| "—".into(), |d| us_as_ms(d.latency.p99)),
        ));
    }
    s
}

fn inproc_timeline(r: &InprocReport) -> String {
    let mut s = String::from(
        "In-process run, one write at a time through `twh_emulator::app` (time: wall clock; CPU: the thread's own):\n\n\
         | movements at end | writes/s | time p50 | time p99.9 | time max | CPU p50 | CPU p99.9 | CPU max | process RSS |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for b in &r.blocks {
        s.push_str(&format!(
            "| {} | {:.0} | {} | {} | {} | {} | {} | {} | {} |\n",
            b.movements_at_end,
            b.rate,
            us_as_ms(b.latency.p50),
            us_as_ms(b.latency.p999),
            us_as_ms(b.latency.max),
            us_as_ms(b.cpu.p50),
            us_as_ms(b.cpu.p999),
            us_as_ms(b.cpu.max),
            mb(b.rss),
        ));
    }
    if !r.slowest.is_empty() {
        let list: Vec<String> = r.slowest.iter().map(|(n, us)| format!("#{} {}", n + 1, us_as_ms(*us))).collect();
        s.push_str(&format!("\nMost CPU-expensive writes (movement number, CPU time): {}.\n", list.join(", ")));
    }
    s
}

/// A warning when the server's core was busy with other work during a measured phase.
fn contention(core: Option<usize>, p: &Phase) -> Option<String> {
    let core = core?;
    let busy = p.core_busy(core)?;
    let server = p.share(p.server_cpu_seconds);
    (busy - server > 0.15).then(|| {
        format!(
            "core {core} was {:.0}% busy but the server used only {:.0}% of it: other work on the machine took the \
             rest, so rates and latencies of this run understate the server; the CPU-normalised row is the steadier \
             figure. Rerun on a quiet machine.",
            busy * 100.0,
            server * 100.0
        )
    })
}

fn git_describe() -> String {
    let out = Command::new("git").args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short", "HEAD"]).output();
    let dirty = Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "status", "--porcelain", "--untracked-files=no"])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let mut s = String::from_utf8_lossy(&o.stdout).trim().to_owned();
            if dirty.is_ok_and(|d| !d.stdout.is_empty()) {
                s.push_str(" + uncommitted changes");
            }
            s
        }
        _ => "unknown".into(),
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let exe_dir = exe.parent().context("program directory")?.to_path_buf();
    if !args.no_build && args.emulator_bin.is_none() {
        build_emulator(&exe_dir);
    }
    let emulator_bin = args.emulator_bin.clone().unwrap_or_else(|| exe_dir.join("twh-emulator"));
    let bare_bin = exe_dir.join("bare");
    for bin in [&emulator_bin, &bare_bin] {
        if !bin.exists() {
            bail!("{} is missing; build with `cargo build --release -p twh-emulator -p twh-bench`", bin.display());
        }
    }
    let cores = if args.no_pin { (None, None) } else { (Some(0), Some(1)) };
    let load_before = procfs::load_average().unwrap_or_default();
    let run_id = format!("bench{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let started = Instant::now();

    let mut rows = Vec::new();
    let mut loads = None;
    let mut inproc = None;
    if !args.skip_load {
        eprintln!(
            "twh-bench: writes, emulator up to {:.0} s or {} movements, alternating with the baseline …",
            args.seconds, args.movements
        );
        // The `--data-dir` server's directory: fresh, and removed afterwards unless given.
        let data_dir = (args.durable_seconds > 0.0).then(|| {
            args.data_dir.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("twh-bench-data-{run_id}")))
        });
        let measured = measure_writes(&args, &emulator_bin, &bare_bin, cores, &run_id, &rt, data_dir.as_deref());
        if let (Some(dir), None) = (&data_dir, &args.data_dir) {
            let _ = std::fs::remove_dir_all(dir);
        }
        let (emu, bare, durable, journal, scrape) = measured?;
        load_rows(&args, cores, &emu, &bare, &mut rows);
        if let Some(d) = &durable {
            durable_rows(&args, &emu, d, &bare, &mut rows);
        }
        if let Some((on, off)) = &journal {
            journal_rows(on, off, &emu, scrape, &mut rows);
        }
        loads = Some((emu, bare, durable));
    }
    if args.inproc_movements > 0 {
        eprintln!("twh-bench: {} movements in-process …", args.inproc_movements);
        let r = run_inproc(cores.0, &args)?;
        inproc_rows(&r, &mut rows);
        inproc = Some(r);
    }
    if !args.skip_start {
        eprintln!("twh-bench: start times, {} runs each …", args.starts);
        let starts = measure_starts(&args, &emulator_bin, &bare_bin, &rt)?;
        start_rows(&starts, args.starts, &mut rows);
    }

    let mut out = table(&rows);
    out.push('\n');
    out.push_str(&format!(
        "Run: {} s in all; commit {}; load average before {}; server pinned to {}, load generator to {} ({}); \
         emulator `{}`.\n",
        started.elapsed().as_secs(),
        git_describe(),
        load_before,
        cores.0.map_or("no core".into(), |c| format!("core {c}")),
        cores.1.map_or("no core".into(), |c| format!("core {c}")),
        if args.idle_client { "sleeping while it waits: `--idle-client`" } else { "spinning, never asleep" },
        emulator_bin.display(),
    ));
    if let Some((emu, bare, durable)) = &loads {
        for (name, r) in [("baseline", bare), ("emulator", emu)] {
            if let Some(w) = contention(cores.0, r) {
                out.push_str(&format!("\n**Warning ({name} run):** {w}\n"));
            }
        }
        if let Some(e) = &emu.error_sample {
            out.push_str(&format!("\nFirst emulator error: `{e}`\n"));
        }
        out.push('\n');
        out.push_str(&timeline(&args, emu, bare, durable.as_ref()));
    }
    if let Some(r) = &inproc {
        out.push('\n');
        out.push_str(&inproc_timeline(r));
    }
    println!("{out}");

    let path =
        args.out.clone().unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("results").join("latest.md"));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, format!("# twh-emulator benchmark\n\n{out}"))?;
    eprintln!("twh-bench: wrote {}", path.display());
    Ok(())
}
