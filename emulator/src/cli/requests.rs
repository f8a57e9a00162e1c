//! `twh-emulator requests`: a running emulator's request journal (`GET /_emulator/requests`),
//! one line per request, like `stripe logs tail`:
//!
//! ```text
//! 2030-01-01T00:00:01.234567Z 201 POST   /v1/stock-movements 812µs req_5k2… idem=order-1 sbx_…
//! 2030-01-01T00:00:01.301002Z 201 POST   /v1/stock-movements 95µs req_5k2… idem=order-1 replayed sbx_…
//! ```
//!
//! Without `--follow` it prints the last `--limit` matching entries (oldest first) and ends;
//! with it, it then polls every `--interval-ms` with the last entry's id as the cursor and
//! prints what is new, until Ctrl-C.

use std::collections::VecDeque;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::http::journal::{JournalEntry, JournalPage};

/// Entries asked for per request.
const PAGE_LIMIT: usize = 100;
/// Most pages read before printing (the journal's default size is 10,000 entries: 100 pages).
const PAGES_MAX: usize = 1_000;
/// Timeout of one request to the emulator.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// `twh-emulator requests`.
#[derive(Parser, Debug)]
pub struct Requests {
    /// The emulator's base URL.
    #[arg(long, env = "TWH_BASE_URL", default_value = "http://127.0.0.1:4010")]
    url: String,
    /// The emulator's admin token, if it runs with one.
    #[arg(long, env = "TWH_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// Keep printing new requests until Ctrl-C.
    #[arg(long, short)]
    follow: bool,
    /// How often `--follow` asks for new requests, in milliseconds.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    interval_ms: u64,
    /// Only requests authenticated to this sandbox.
    #[arg(long)]
    sandbox_id: Option<String>,
    /// Only this HTTP method.
    #[arg(long)]
    method: Option<String>,
    /// Only paths starting with this.
    #[arg(long)]
    path_prefix: Option<String>,
    /// Only this status (`404`) or class (`4xx`).
    #[arg(long)]
    status: Option<String>,
    /// Only this request id (every attempt of one SDK call).
    #[arg(long)]
    request_id: Option<String>,
    /// Only this Idempotency-Key.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// How many of the latest matching requests to print first.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    limit: u64,
}

/// One entry as one line: time, status, method, path and query, duration, request id, then
/// its idempotency key, `replayed`, `fault=<action>` and sandbox where there are any.
pub fn format_line(e: &JournalEntry) -> String {
    let at = serde_json::to_value(e.at).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let path = if e.query.is_empty() { e.path.clone() } else { format!("{}?{}", e.path, e.query) };
    let duration = if e.duration_us < 1_000 {
        format!("{}µs", e.duration_us)
    } else {
        format!("{:.1}ms", e.duration_us as f64 / 1_000.0)
    };
    let mut line = format!("{at} {} {:<6} {path} {duration} {}", e.status, e.method, e.request_id);
    if let Some(k) = &e.idempotency_key {
        line.push_str(&format!(" idem={k}"));
    }
    if e.idempotent_replayed {
        line.push_str(" replayed");
    }
    if let Some(f) = &e.fault {
        line.push_str(&format!(" fault={}", f.action));
    }
    if let Some(s) = &e.sandbox_id {
        line.push_str(&format!(" {s}"));
    }
    line
}

struct Client {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
    filters: Vec<(&'static str, String)>,
}

impl Client {
    async fn page(&self, cursor: Option<&str>) -> Result<JournalPage, String> {
        let mut query = self.filters.clone();
        query.push(("limit", PAGE_LIMIT.to_string()));
        if let Some(c) = cursor {
            query.push(("cursor", c.to_owned()));
        }
        let mut rb = self.http.get(format!("{}/_emulator/requests", self.url.trim_end_matches('/'))).query(&query);
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        let response = rb.send().await.map_err(|e| format!("cannot reach {}: {e}", self.url))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("the emulator answered {status}: {}", String::from_utf8_lossy(&body)));
        }
        serde_json::from_slice(&body).map_err(|e| format!("not a journal page: {e}"))
    }
}

/// Runs the command; prints errors on stderr.
pub fn run(args: Requests) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("twh-emulator: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(tail(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("twh-emulator requests: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn tail(args: Requests) -> Result<(), String> {
    let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().map_err(|e| e.to_string())?;
    let mut filters = Vec::new();
    for (name, value) in [
        ("sandbox_id", &args.sandbox_id),
        ("method", &args.method),
        ("path_prefix", &args.path_prefix),
        ("status", &args.status),
        ("request_id", &args.request_id),
        ("idempotency_key", &args.idempotency_key),
    ] {
        if let Some(v) = value {
            filters.push((name, v.clone()));
        }
    }
    let client = Client { http, url: args.url.clone(), token: args.admin_token.clone(), filters };
    // The latest `limit` entries: every page read, the last ones kept.
    let mut latest: VecDeque<JournalEntry> = VecDeque::new();
    let mut cursor: Option<String> = None;
    for _ in 0..PAGES_MAX {
        let page = client.page(cursor.as_deref()).await?;
        let end = page.next_cursor.is_none();
        for e in page.data {
            cursor = Some(e.id.clone());
            latest.push_back(e);
            if latest.len() as u64 > args.limit {
                latest.pop_front();
            }
        }
        if end {
            break;
        }
    }
    for e in &latest {
        println!("{}", format_line(e));
    }
    if !args.follow {
        return Ok(());
    }
    let interval = Duration::from_millis(args.interval_ms);
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tokio::time::sleep(interval) => {}
        }
        // Every page of what is new, then wait again.
        for _ in 0..PAGES_MAX {
            let page = client.page(cursor.as_deref()).await?;
            for e in &page.data {
                println!("{}", format_line(e));
                cursor = Some(e.id.clone());
            }
            if page.next_cursor.is_none() {
                break;
            }
        }
    }
}
