//! The `twh-emulator` command line: its flags and what each subcommand does.
//!
//! The binary (`src/main.rs`) is only this module's [`run`]; the Python package's console script
//! and the npm package's `bin` call the same function through their native modules, so every way
//! of installing the emulator takes the same flags.

use std::net::IpAddr;
use std::process::ExitCode;

use crate::domain::fixtures::Fixtures;
use crate::domain::model::{CreateSandbox, Plan, SandboxCreated, Seed};
use crate::domain::registry::Settings;
use clap::{Parser, Subcommand, ValueEnum};
use std::time::Duration;

use crate::{Config, Emulator, HttpConfig, WebhookSettings};

mod requests;
use requests::Requests;

/// A complete, stateful emulator of the TWH inventory API: ledger, idempotency, ETags, events,
/// clock control and fault injection, with no cloud account.
#[derive(Parser, Debug)]
#[command(name = "twh-emulator", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the API; prints the base URL and a ready demo sandbox's secret key.
    Serve(Serve),
    /// Print a running emulator's request journal, one line per request (`--follow` to tail it).
    Requests(Requests),
}

#[derive(Parser, Debug)]
struct Serve {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1", env = "TWH_EMULATOR_HOST")]
    host: IpAddr,
    /// Port to bind (0 picks a free one).
    #[arg(long, default_value_t = 4010, env = "TWH_EMULATOR_PORT")]
    port: u16,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    /// Log filter (tracing-subscriber syntax, e.g. `info`, `warn`, `twh_emulator=debug`).
    #[arg(long, default_value = "info", env = "TWH_LOG")]
    log: String,
    /// Require `Authorization: Bearer <token>` on `POST /v1/sandboxes` and `/_emulator/*`.
    #[arg(long, env = "TWH_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// Keep the state in this directory (created if needed; SQLite file `twh.sqlite3`) and
    /// recover it on the next start. Every acknowledged write is on disk before its response.
    /// Without it the state lives in memory only.
    #[arg(long, env = "TWH_DATA_DIR", value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// Do not create the demo sandbox at start (with --data-dir it is created only in an empty
    /// data dir).
    #[arg(long)]
    no_demo_sandbox: bool,
    /// Create the sandboxes of this fixtures file at start (JSON: the document of
    /// `POST /_emulator/fixtures`), all or none, and print one `# sandbox <id> <secret key>
    /// <restricted key> <name>` line each. A bad file fails the start, naming the entry. With
    /// --data-dir it is loaded only into an empty data dir (later starts recover it).
    #[arg(long, env = "TWH_FIXTURES", value_name = "FILE")]
    fixtures: Option<std::path::PathBuf>,
    /// Plan of the demo sandbox (`pro` for load tests: its quotas bill overage instead of refusing).
    #[arg(long, value_enum, default_value_t = DemoPlan::Free)]
    demo_plan: DemoPlan,
    /// How long idempotency records live, in seconds of emulator time.
    #[arg(long, default_value_t = 86_400)]
    idempotency_ttl_seconds: i64,
    /// How long a rolled secret key keeps working, in seconds of emulator time.
    #[arg(long, default_value_t = 86_400)]
    key_grace_seconds: i64,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 4 << 20)]
    body_limit_bytes: usize,
    /// Timeout of one webhook attempt, in milliseconds.
    #[arg(long, default_value_t = 15_000)]
    webhook_timeout_ms: u64,
    /// Webhook retry delays after a failed attempt, in seconds, comma-separated (endpoints may
    /// override). Shorten it for fast sandboxes, e.g. `1,2,4`.
    #[arg(long, value_delimiter = ',', default_value = "5,300,1800,7200,18000,36000,36000")]
    webhook_retry_schedule: Vec<u64>,
    /// Most webhook attempts of one sandbox in flight at once (1,024 at most over all sandboxes).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1024))]
    webhook_concurrency: u64,
    /// Send webhooks only to loopback hosts (127.0.0.0/8, ::1, localhost); attempts to other
    /// hosts fail without any traffic.
    #[arg(long)]
    webhook_loopback_only: bool,
    /// Sustained requests per second allowed per API key (a token bucket on the emulator clock);
    /// 0 turns rate limiting off (for load tests).
    #[arg(long, default_value_t = 1000, env = "TWH_RATE_LIMIT_PER_SECOND")]
    rate_limit_per_second: u64,
    /// Requests per API key allowed in a burst (the bucket's size).
    #[arg(long, default_value_t = 2000, env = "TWH_RATE_LIMIT_BURST")]
    rate_limit_burst: u64,
    /// Most requests the request journal keeps (`GET /_emulator/requests`); 0 turns it off.
    #[arg(long, default_value_t = crate::http::journal::ENTRIES_MAX_DEFAULT, env = "TWH_JOURNAL_SIZE")]
    journal_size: usize,
    /// Most bytes the request journal keeps; the oldest entries go first.
    #[arg(long, default_value_t = crate::http::journal::BYTES_MAX_DEFAULT, env = "TWH_JOURNAL_BYTES")]
    journal_bytes: usize,
    /// Deterministic mode: ids, keys, webhook secrets, request ids and retry jitter come from a
    /// generator seeded by SEED, and the clock starts at 2030-01-01T00:00:00Z and moves only when
    /// advanced, so the same requests (sent one at a time) get the same answers on every run.
    #[arg(long, value_name = "SEED", env = "TWH_DETERMINISTIC")]
    deterministic: Option<u64>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DemoPlan {
    /// Hard quotas.
    Free,
    /// Higher quotas, overage billed.
    Pro,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Parses `args` (the program name first, as in [`std::env::args_os`]) and runs the command
/// until it ends (for `serve`: until Ctrl-C or SIGTERM). `--help`, `--version` and bad flags
/// print as clap prints them and return the matching exit code.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    let args = match cli.command {
        Command::Serve(args) => args,
        Command::Requests(args) => return requests::run(args),
    };
    // No transparent huge pages for this process. mimalloc asks for them (`MADV_HUGEPAGE`) on its
    // segments, and as the state grows each first touch of a 2 MiB page zeroes it (and, in a VM,
    // has the host back it) inside whatever request happened to allocate there: in `twh-bench`
    // that was a 6–9 ms stall about three times a second, with all 64 connections waiting, and
    // the write p99 went from about 2× the median to about 3.5×. Small pages spread the same work
    // evenly (the latency advice Redis and MongoDB give too). Best effort: an old kernel without
    // the prctl just keeps its default.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    // Room for `connections_max` connections (a soft limit of 1,024 descriptors is common): the
    // soft limit up to the hard one. Best effort.
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut files = getrlimit(Resource::Nofile);
        if files.current < files.maximum {
            files.current = files.maximum;
            let _ = setrlimit(Resource::Nofile, files);
        }
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log).unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match args.log_format {
        // `try_init`: a host process (Python, Node) may have set a subscriber already.
        LogFormat::Human => {
            let _ = logs.try_init();
        }
        LogFormat::Json => {
            let _ = logs.json().flatten_event(true).with_current_span(true).try_init();
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("twh-emulator: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(args))
}

async fn serve(args: Serve) -> ExitCode {
    let config = Config {
        host: args.host,
        port: args.port,
        settings: Settings {
            idempotency_ttl_seconds: args.idempotency_ttl_seconds,
            key_grace_seconds: args.key_grace_seconds,
            ..Settings::default()
        },
        http: HttpConfig {
            admin_token: args.admin_token,
            body_limit_bytes: args.body_limit_bytes,
            rate_limit_per_second: args.rate_limit_per_second,
            rate_limit_burst: args.rate_limit_burst,
            journal_size: args.journal_size,
            journal_bytes: args.journal_bytes,
            ..HttpConfig::default()
        },
        webhooks: WebhookSettings {
            timeout: Duration::from_millis(args.webhook_timeout_ms),
            retry_schedule_seconds: args.webhook_retry_schedule,
            concurrency: args.webhook_concurrency as usize,
            loopback_only: args.webhook_loopback_only,
            ..WebhookSettings::default()
        },
        data_dir: args.data_dir.clone(),
        deterministic: args.deterministic,
    };
    // The file is read and parsed before anything starts: a bad one costs no port.
    let fixtures = match args.fixtures.as_deref().map(|path| read_fixtures(path, args.body_limit_bytes)) {
        None => None,
        Some(Ok(doc)) => Some(doc),
        Some(Err(message)) => {
            eprintln!("twh-emulator: {message}");
            return ExitCode::FAILURE;
        }
    };
    let emulator = match Emulator::start(config).await {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse || e.kind() == std::io::ErrorKind::AddrNotAvailable => {
            eprintln!("twh-emulator: cannot listen on {}:{}: {e}", args.host, args.port);
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("twh-emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Listening for Ctrl-C and SIGTERM before the lines that tell a caller the server is ready: a
    // signal sent as soon as they are read stops it cleanly instead of killing it.
    let stop = stop_signal();
    let recovered = emulator.state().world.tenants().len();
    // Fixtures before the first line is printed, so a caller waiting for it sees the sandboxes
    // ready (or no line, and the error, when the document is refused).
    let fixture_sandboxes = match (fixtures, recovered) {
        (Some(doc), 0) => match load_fixtures(&emulator, doc).await {
            Ok(created) => created,
            Err(message) => {
                eprintln!(
                    "twh-emulator: --fixtures {}: {message}",
                    args.fixtures.clone().unwrap_or_default().display()
                );
                emulator.shutdown().await;
                return ExitCode::FAILURE;
            }
        },
        (Some(doc), _) => recovered_fixtures(&emulator, &doc),
        (None, _) => Vec::new(),
    };
    println!("TWH emulator listening on {}", emulator.base_url());
    println!("export TWH_BASE_URL={}", emulator.base_url());
    if let Some(dir) = &args.data_dir {
        println!("# state in {} ({recovered} sandboxes recovered)", dir.display());
    }
    if args.fixtures.is_some() && recovered > 0 {
        println!("# fixtures not loaded: the data dir holds {recovered} sandboxes (they load into an empty one)");
    }
    for s in &fixture_sandboxes {
        println!("# sandbox {} {} {} {}", s.id, s.secret_key, s.restricted_key, s.name);
    }
    if recovered > 0 {
        // A data dir with sandboxes: no new demo sandbox; the recovered one's key, if any.
        let world = &emulator.state().world;
        let demo = world.tenants().into_iter().find(|t| t.state.lock().sandbox.name == "demo");
        let keys = world.keys();
        let key = demo.and_then(|t| {
            keys.values()
                .filter(|g| g.tenant_id == t.id && g.expires_at.is_none())
                .find(|g| g.kind == crate::domain::registry::KeyKind::Secret)
                .map(|g| g.secret.clone())
        });
        if let Some(key) = key {
            println!("export TWH_API_KEY={key}");
        }
    } else if !args.no_demo_sandbox {
        let plan = match args.demo_plan {
            DemoPlan::Free => Plan::Free,
            DemoPlan::Pro => Plan::Pro,
        };
        let req = CreateSandbox { name: Some("demo".to_owned()), seed: Some(Seed::Demo), plan: Some(plan) };
        match emulator.create_sandbox(req) {
            Ok(s) => {
                println!("export TWH_API_KEY={}", s.secret_key);
                println!("# demo sandbox {}; read-only key {}", s.id, s.restricted_key);
            }
            Err(e) => {
                eprintln!("twh-emulator: cannot create the demo sandbox: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("# dashboard: {}/_emulator/ui", emulator.base_url());
    println!("# Ctrl-C stops it. Try: curl -H \"Authorization: Bearer $TWH_API_KEY\" $TWH_BASE_URL/v1/items");
    stop.await;
    tracing::info!("shutting down");
    emulator.shutdown().await;
    ExitCode::SUCCESS
}

/// Reads and parses a fixtures file of at most `bytes_max` bytes (the body limit, so that a file
/// that loads here also loads over HTTP); the error names the file and the entry.
fn read_fixtures(path: &std::path::Path, bytes_max: usize) -> Result<Fixtures, String> {
    use std::io::Read;
    let named = |m: String| format!("--fixtures {}: {m}", path.display());
    let file = std::fs::File::open(path).map_err(|e| named(e.to_string()))?;
    let mut text = Vec::new();
    file.take(bytes_max as u64 + 1).read_to_end(&mut text).map_err(|e| named(e.to_string()))?;
    if text.len() > bytes_max {
        return Err(named(format!("is larger than {bytes_max} bytes (--body-limit-bytes)")));
    }
    crate::domain::fixtures::parse(&text).map_err(|e| named(problem_text(&e)))
}

/// A refused document as lines for people: the detail, then each field with its message.
fn problem_text(e: &crate::domain::DomainError) -> String {
    let mut out = format!("{} ({})", e.detail, e.kind.code());
    for f in e.errors.iter().filter(|f| !e.detail.contains(&f.field)) {
        out.push_str(&format!("\n  {}: {}", f.field, f.message));
    }
    out
}

/// Loads the fixtures and, with a data dir, waits until they are on disk.
async fn load_fixtures(emulator: &Emulator, doc: Fixtures) -> Result<Vec<SandboxCreated>, String> {
    let loaded = emulator.load_fixtures(doc).map_err(|e| problem_text(&e))?;
    let store = &emulator.state().world.store;
    store.wait(store.ticket()).await.map_err(|e| format!("cannot write the data dir: {e}"))?;
    Ok(loaded.sandboxes)
}

/// With a data dir that was not empty: the recovered sandboxes named like the file's, with
/// their live keys, so the same lines are printed on every start.
fn recovered_fixtures(emulator: &Emulator, doc: &Fixtures) -> Vec<SandboxCreated> {
    use crate::domain::registry::KeyKind;
    let world = &emulator.state().world;
    let keys = world.keys();
    let key = |tenant: &str, kind: KeyKind| {
        keys.values()
            .filter(|g| g.tenant_id == tenant && g.kind == kind && g.expires_at.is_none())
            .map(|g| g.secret.clone())
            .next()
            .unwrap_or_default()
    };
    let mut tenants: Vec<_> = world.tenants().into_iter().map(|t| t.state.lock().sandbox.clone()).collect();
    tenants.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    tenants
        .into_iter()
        .filter(|t| doc.sandboxes.iter().any(|s| s.name == t.name))
        .map(|t| SandboxCreated {
            secret_key: key(&t.id, KeyKind::Secret),
            restricted_key: key(&t.id, KeyKind::Restricted),
            id: t.id,
            name: t.name,
            plan: t.plan,
            created_at: t.created_at,
        })
        .collect()
}

/// Registers the handlers of Ctrl-C (SIGINT) and SIGTERM now (inside the runtime) and answers a
/// future that ends at the first of them.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                (Ok(mut interrupt), Err(_)) => {
                    interrupt.recv().await;
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
