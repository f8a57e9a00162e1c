//! Shared helpers: start an emulator, make a sandbox, and talk to it over real HTTP.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use twh_emulator::domain::model::{CreateSandbox, SandboxCreated};
use twh_emulator::{Config, Emulator};

/// A fresh idempotency key, unique in this test binary.
pub fn key() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("it-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A unique suffix for SKUs and codes.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// One HTTP answer, read whole.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("status {}: body is not JSON ({e}): {:?}", self.status, self.text()))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The problem `code`, if the body is a problem.
    pub fn code(&self) -> Option<String> {
        serde_json::from_slice::<Value>(&self.body).ok()?.get("code")?.as_str().map(str::to_owned)
    }

    /// The fields named in `errors[]`.
    pub fn error_fields(&self) -> Vec<String> {
        self.json()["errors"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["field"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    /// Asserts the status and, for problems, the code, the media type and the request id.
    #[track_caller]
    pub fn expect(&self, status: u16, code: &str) -> &Resp {
        assert_eq!(self.status, status, "expected {status} {code}, got {}: {}", self.status, self.text());
        assert_eq!(self.code().as_deref(), Some(code), "body: {}", self.text());
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "problem media type");
        let body = self.json();
        assert_eq!(body["status"], json!(status), "problem status");
        for field in ["type", "title", "detail", "request_id"] {
            assert!(body[field].is_string(), "problem lacks {field}: {body}");
        }
        assert!(body["errors"].is_array(), "problem lacks errors[]: {body}");
        assert_eq!(body["request_id"].as_str(), self.header("x-request-id"), "request_id == X-Request-Id");
        self
    }

    /// Asserts a success status and returns the JSON body.
    #[track_caller]
    pub fn ok(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "expected {status}, got {}: {}", self.status, self.text());
        if self.body.is_empty() { Value::Null } else { self.json() }
    }

    /// The `ETag` version number (`"<n>"` → n).
    #[track_caller]
    pub fn etag(&self) -> u64 {
        let raw = self.header("etag").unwrap_or_else(|| panic!("no ETag on {}: {}", self.status, self.text()));
        raw.strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("not a strong numeric ETag: {raw}"))
    }

    /// Whether `Idempotent-Replayed: true` is present.
    pub fn replayed(&self) -> bool {
        self.header("idempotent-replayed") == Some("true")
    }
}

/// What a client with a log saw: one entry per answer.
#[derive(Clone, Debug)]
pub struct Logged {
    pub status: u16,
    pub request_id: String,
}

/// A client of one emulator, acting with one key (or none).
#[derive(Clone, Debug)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub key: Option<String>,
    /// When set, every answer is logged here (tests of metering keep their own request log).
    pub log: Option<Arc<parking_lot::Mutex<Vec<Logged>>>>,
}

impl Api {
    pub fn new(base: &str, key: Option<&str>) -> Api {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
        Api { http, base: base.to_owned(), key: key.map(str::to_owned), log: None }
    }

    /// The same server, another key (and no log).
    pub fn with_key(&self, key: Option<&str>) -> Api {
        Api { http: self.http.clone(), base: self.base.clone(), key: key.map(str::to_owned), log: None }
    }

    /// The same client, logging every answer into `log`.
    pub fn logging(&self, log: &Arc<parking_lot::Mutex<Vec<Logged>>>) -> Api {
        Api { log: Some(log.clone()), ..self.clone() }
    }

    /// A request with the bearer key set.
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        let rb = self.http.request(method, format!("{}{}", self.base, path));
        match &self.key {
            Some(k) => rb.bearer_auth(k),
            None => rb,
        }
    }

    /// A request with a JSON body.
    pub fn req_json(&self, method: Method, path: &str, body: &Value) -> RequestBuilder {
        self.req(method, path).header("content-type", "application/json").body(serde_json::to_vec(body).expect("json"))
    }

    /// Sends and reads the whole answer.
    pub async fn send(&self, rb: RequestBuilder) -> Resp {
        self.try_send(rb).await.expect("request failed")
    }

    /// Sends and reads the whole answer; transport errors are returned.
    pub async fn try_send(&self, rb: RequestBuilder) -> Result<Resp, reqwest::Error> {
        let r = rb.send().await?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().await?;
        let resp = Resp { status, headers, body };
        if let Some(log) = &self.log {
            let request_id = resp.header("x-request-id").unwrap_or_default().to_owned();
            log.lock().push(Logged { status, request_id });
        }
        Ok(resp)
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.req(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.send(self.req_json(Method::POST, path, body)).await
    }

    /// POST with an `Idempotency-Key`.
    pub async fn post_key(&self, path: &str, key: &str, body: &Value) -> Resp {
        self.send(self.req_json(Method::POST, path, body).header("idempotency-key", key)).await
    }

    pub async fn patch(&self, path: &str, if_match: Option<&str>, body: &Value) -> Resp {
        let mut rb = self.req_json(Method::PATCH, path, body);
        if let Some(m) = if_match {
            rb = rb.header("if-match", m);
        }
        self.send(rb).await
    }

    pub async fn delete(&self, path: &str, if_match: Option<&str>) -> Resp {
        let mut rb = self.req(Method::DELETE, path);
        if let Some(m) = if_match {
            rb = rb.header("if-match", m);
        }
        self.send(rb).await
    }

    /// Creates an item with this SKU; returns it.
    pub async fn item(&self, sku: &str) -> Value {
        self.post("/v1/items", &json!({"sku": sku, "name": format!("Item {sku}")})).await.ok(201)
    }

    /// Creates a location with this code; returns it.
    pub async fn location(&self, code: &str) -> Value {
        self.post("/v1/locations", &json!({"code": code, "name": format!("Location {code}")})).await.ok(201)
    }

    /// Creates an item with a fresh SKU; returns its id.
    pub async fn new_item(&self) -> String {
        id(&self.item(&unique("SKU")).await)
    }

    /// Creates a location with a fresh code; returns its id.
    pub async fn new_location(&self) -> String {
        id(&self.location(&unique("LOC")).await)
    }

    /// `POST /v1/stock-movements` with a fresh key.
    pub async fn movement(&self, body: &Value) -> Resp {
        self.post_key("/v1/stock-movements", &key(), body).await
    }

    /// A receipt that must succeed; returns the movement.
    pub async fn receipt(&self, item: &str, location: &str, quantity: i64) -> Value {
        self.movement(&json!({"type": "receipt", "item_id": item, "location_id": location, "quantity": quantity}))
            .await
            .ok(201)
    }

    /// A shipment (any outcome).
    pub async fn shipment(&self, item: &str, location: &str, quantity: i64) -> Resp {
        self.movement(&json!({"type": "shipment", "item_id": item, "location_id": location, "quantity": quantity}))
            .await
    }

    /// `GET` of one stock level, as JSON.
    pub async fn level(&self, item: &str, location: &str) -> Value {
        self.get(&format!("/v1/items/{item}/stock-levels/{location}")).await.ok(200)
    }

    /// Every page of a list, following `next_cursor` (limit 100).
    pub async fn all(&self, path: &str) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("{path}{sep}limit=100&cursor={c}"),
                None => format!("{path}{sep}limit=100"),
            };
            let page = self.get(&url).await.ok(200);
            out.extend(page["data"].as_array().expect("data").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }

    /// How many movements the ledger holds (via the API).
    pub async fn movement_count(&self) -> usize {
        self.all("/v1/stock-movements").await.len()
    }

    /// How many events the log holds (via the API).
    pub async fn event_count(&self) -> usize {
        self.all("/v1/events").await.len()
    }
}

/// An RFC 3339 time in a JSON value.
#[track_caller]
pub fn parse_time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    let text = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}")).with_timezone(&chrono::Utc)
}

/// The start of the calendar month after the one holding `t` (UTC).
pub fn next_month_start(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::{Datelike, TimeZone};
    let (y, m) = if t.month() == 12 { (t.year() + 1, 1) } else { (t.year(), t.month() + 1) };
    chrono::Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single().expect("month start")
}

/// The next 00:00 UTC strictly after `t`.
pub fn next_midnight(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    (t.date_naive() + chrono::Days::new(1)).and_hms_opt(0, 0, 0).expect("midnight").and_utc()
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `seconds`.
pub async fn eventually<T, F, Fut>(what: &str, seconds: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Parses CSV (RFC 4180, as the emulator writes it) into records.
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

/// The `id` of a resource.
pub fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_owned()
}

/// A running emulator with one empty sandbox and a client acting with its secret key.
pub struct Env {
    pub emu: Emulator,
    pub sandbox: SandboxCreated,
    pub api: Api,
}

impl Env {
    pub async fn new() -> Env {
        Env::with_config(Config::default()).await
    }

    /// An emulator started with `config`, and one empty (`free`) sandbox.
    pub async fn with_config(config: Config) -> Env {
        let emu = Emulator::start(config).await.expect("start emulator");
        let sandbox = emu.create_sandbox(CreateSandbox::default()).expect("sandbox");
        let api = Api::new(&emu.base_url(), Some(&sandbox.secret_key));
        Env { emu, sandbox, api }
    }

    /// The emulator clock's now.
    pub async fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let c = self.anonymous().get("/_emulator/clock").await.ok(200);
        parse_time(&c["now"])
    }

    /// Moves the emulator clock forward to `to` (over HTTP, as users do).
    pub async fn advance_to(&self, to: chrono::DateTime<chrono::Utc>) {
        let to = to.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        self.anonymous().post("/_emulator/clock/advance", &json!({"to": to})).await.ok(200);
    }

    /// Another sandbox in the same emulator, with a client of its secret key.
    pub fn other_tenant(&self) -> (SandboxCreated, Api) {
        let s = self.emu.create_sandbox(CreateSandbox::default()).expect("sandbox");
        let api = self.api.with_key(Some(&s.secret_key));
        (s, api)
    }

    /// A client with no key.
    pub fn anonymous(&self) -> Api {
        self.api.with_key(None)
    }

    /// A client with the sandbox's restricted key.
    pub fn restricted(&self) -> Api {
        self.api.with_key(Some(&self.sandbox.restricted_key))
    }

    /// Runs the server-side invariant checker of this sandbox.
    #[track_caller]
    pub fn check_invariants(&self) {
        let tenant = self.emu.state().world.tenant(&self.sandbox.id).expect("tenant");
        let state = tenant.state.lock();
        if let Err(e) = state.ledger.check_invariants() {
            panic!("ledger invariants broken: {e}");
        }
    }

    pub async fn shutdown(self) {
        self.emu.shutdown().await;
    }
}
