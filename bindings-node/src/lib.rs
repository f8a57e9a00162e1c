//! Node bindings for the TWH SDK (napi-rs v3).
//!
//! The native layer knows no operation: the generated `lib/operations.js` names the operation and
//! its arguments, and [`NativeClient::call`] sends them through `twh::dispatch` (the Rust SDK's
//! retries, idempotency keys, ETags and typed errors) and answers the server's body as text with
//! its keys in camelCase ([`rekey`]), for one `JSON.parse` in JS. Errors leave Rust as a JS
//! `Error` whose message is `TWH_ERROR:` followed by `twh::dispatch::error_details`; the
//! hand-written `lib/errors.js` turns that into the right `TwhError` subclass.
#![allow(clippy::needless_pass_by_value)]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use twh::dispatch::rekey::{self, Case};

/// Prefix of the message of every error the native layer throws.
const ERROR_PREFIX: &str = "TWH_ERROR:";

/// The `User-Agent` product token (SDK.md: `twh-<lang>/<version>`); the crate's version is the
/// npm package's (`test/api.test.js` checks that they agree).
const PRODUCT: &str = concat!("twh-node/", env!("CARGO_PKG_VERSION"));

/// The package version, as the native layer was built.
#[napi]
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Rounds of read-modify-write in `updateItemWith` / `updateLocationWith`: the Rust SDK's bound.
#[napi]
pub const READ_MODIFY_WRITE_ATTEMPTS_MAX: u32 = twh::etag::READ_MODIFY_WRITE_ATTEMPTS_MAX;

fn to_napi(e: twh::Error) -> napi::Error {
    napi::Error::from_reason(format!("{ERROR_PREFIX}{}", twh::dispatch::error_details(&e)))
}

fn invalid(message: impl Into<String>) -> napi::Error {
    to_napi(twh::Error::InvalidRequest(message.into()))
}

/// Keys whose values are maps keyed by data (`lib/operations.js` `MAP_KEYS`, set once at load).
static MAP_KEYS: OnceLock<Vec<String>> = OnceLock::new();

/// Sets the keys whose values' keys are data, not field names (the first call wins).
#[napi]
pub fn set_map_keys(keys: Vec<String>) {
    let _ = MAP_KEYS.set(keys);
}

fn rekey(text: &str, case: Case) -> String {
    rekey::rekey(text, case, MAP_KEYS.get().map_or(&[], Vec::as_slice))
}

/// JSON text from JS (camelCase) as a value of the SDK.
fn from_js<T: serde::de::DeserializeOwned>(json: &str, what: &str) -> napi::Result<T> {
    serde_json::from_str(&rekey(json, Case::Snake)).map_err(|e| invalid(format!("{what}: {e}")))
}

/// A value of the SDK as JSON text for JS (camelCase).
fn to_js<T: serde::Serialize>(value: &T) -> napi::Result<String> {
    let text = serde_json::to_string(value).map_err(|e| invalid(e.to_string()))?;
    Ok(rekey(&text, Case::Camel))
}

// ---------------------------------------------------------------------------------------------
// Client

/// Client configuration: `{ apiKey?, baseUrl?, timeoutMs?, maxRetries?, userAgentSuffix? }`.
#[napi(object)]
#[derive(Default)]
pub struct ClientOptions {
    pub api_key: Option<String>,
    pub base_url: Option<String>,
    pub timeout_ms: Option<u32>,
    pub max_retries: Option<u32>,
    pub user_agent_suffix: Option<String>,
}

/// A successful answer, as `[head, body]`. `head` is the status, a space and the `ETag` (empty
/// when none) on its first line, then the headers as `name: value` lines (split in JS only when
/// `lastResponse.headers` is read); `body` is JSON with camelCase keys, CSV text as sent, or empty.
/// Two strings in an array cost less to hand over than an object of named fields: every call
/// makes one.
type Answer = (String, String);

/// Settings of `withOptions`: `{ timeoutMs?, maxRetries?, headers? }`.
#[napi(object)]
#[derive(Default)]
pub struct RequestOptions {
    pub timeout_ms: Option<u32>,
    pub max_retries: Option<u32>,
    pub headers: Option<std::collections::HashMap<String, String>>,
}

/// A TWH API client (native part; `lib/client.js` wraps it).
#[napi]
pub struct NativeClient {
    inner: Arc<twh::Client>,
}

#[napi]
impl NativeClient {
    /// Builds a client; a missing key or a malformed base URL fails here, not at the first call.
    #[napi]
    pub fn create(options: Option<ClientOptions>) -> napi::Result<NativeClient> {
        let o = options.unwrap_or_default();
        let mut builder = twh::Client::builder().product(PRODUCT);
        if let Some(key) = o.api_key {
            builder = builder.api_key(key);
        }
        if let Some(url) = o.base_url {
            builder = builder.base_url(url);
        }
        if let Some(ms) = o.timeout_ms {
            builder = builder.timeout(Duration::from_millis(u64::from(ms)));
        }
        if let Some(n) = o.max_retries {
            builder = builder.max_retries(n);
        }
        if let Some(suffix) = o.user_agent_suffix {
            builder = builder.user_agent_suffix(suffix);
        }
        Ok(NativeClient { inner: Arc::new(builder.build().map_err(to_napi)?) })
    }

    #[napi(getter)]
    pub fn base_url(&self) -> String {
        self.inner.base_url().to_string()
    }

    /// The same configuration with another API key.
    #[napi]
    pub fn with_api_key(&self, api_key: String) -> napi::Result<NativeClient> {
        Ok(NativeClient { inner: Arc::new(self.inner.with_api_key(api_key).map_err(to_napi)?) })
    }

    /// A client sharing this one's connection pool and key, differing only in `options`.
    #[napi]
    pub fn with_options(&self, options: RequestOptions) -> napi::Result<NativeClient> {
        let mut r = twh::RequestOptions::new();
        if let Some(ms) = options.timeout_ms {
            r = r.timeout(Duration::from_millis(u64::from(ms)));
        }
        if let Some(n) = options.max_retries {
            r = r.max_retries(n);
        }
        for (name, value) in options.headers.unwrap_or_default() {
            r = r.header(name, value);
        }
        Ok(NativeClient { inner: Arc::new(self.inner.with_options(r).map_err(to_napi)?) })
    }

    /// A client sharing this one's connection pool and settings that reports every attempt to
    /// `observer` as JSON text `{event, method, url, attempt, requestId, idempotencyKey, status,
    /// elapsedMs}` (`event`: `"request"` before it, `"response"` after it). The observer is
    /// weak: it does not keep the process alive.
    #[napi(ts_args_type = "observer: (event: string) => void")]
    pub fn with_observer(
        &self,
        observer: napi::threadsafe_function::ThreadsafeFunction<String, (), String, napi::Status, false, true>,
    ) -> napi::Result<NativeClient> {
        let observer = Arc::new(observer);
        let notify = move |event: &'static str| {
            let observer = observer.clone();
            move |a: &twh::Attempt| {
                let text = serde_json::json!({
                    "event": event,
                    "method": a.method,
                    "url": a.url,
                    "attempt": a.attempt,
                    "requestId": a.request_id,
                    "idempotencyKey": a.idempotency_key,
                    "status": a.status,
                    "elapsedMs": a.elapsed.map(|d| d.as_secs_f64() * 1000.0),
                })
                .to_string();
                let _ = observer.call(text, napi::threadsafe_function::ThreadsafeFunctionCallMode::NonBlocking);
            }
        };
        let options = twh::RequestOptions::new().on_request(notify("request")).on_response(notify("response"));
        Ok(NativeClient { inner: Arc::new(self.inner.with_options(options).map_err(to_napi)?) })
    }

    /// This client as the handle [`call`] takes (`lib/call.js` makes it once per client).
    #[napi(ts_return_type = "ExternalObject<'twh.Client'>")]
    pub fn handle(&self) -> External<Arc<twh::Client>> {
        External::new(Arc::clone(&self.inner))
    }

    /// Like `call`, stopped by `cancel`: once `cancel.cancel()` is called the native call is
    /// dropped at once (its request's connection closed, no further attempt made) and the
    /// promise rejects. How `lib/call.js` honours a per-call `signal`.
    #[napi(ts_return_type = "Promise<[head: string, body: string]>")]
    pub fn call_cancellable<'env>(
        &self,
        env: &'env Env,
        op: String,
        args_json: String,
        body: Option<String>,
        cancel: &NativeCancel,
    ) -> napi::Result<PromiseRaw<'env, Answer>> {
        let registration = cancel
            .registration
            .lock()
            .map_err(|_| invalid("the cancel handle is poisoned"))?
            .take()
            .ok_or_else(|| invalid(format!("{op}: a cancel handle serves one call")))?;
        let client = Arc::clone(&self.inner);
        let call =
            futures::future::Abortable::new(async move { answer(&client, op, args_json, body).await }, registration);
        env.spawn_future(async move {
            call.await.unwrap_or_else(|_| Err(napi::Error::new(napi::Status::Cancelled, "the call was aborted")))
        })
    }
}

/// Calls the SDK method `op` (snake_case) with its arguments (a JSON object: see
/// `twh::dispatch`) and its body (JSON text, camelCase keys), through `client`.
///
/// A function of a handle rather than a method of `NativeClient`: napi-rs tracks every call of a
/// `&self` method in a global borrow table and roots `this` until an async one settles, which
/// cost about 4,000 instructions a call (callgrind, Node 20); reading an `External` costs none of
/// that.
#[napi(
    ts_args_type = "client: ExternalObject<'twh.Client'>, op: string, argsJson: string, body?: string | undefined | null",
    ts_return_type = "Promise<[head: string, body: string]>"
)]
pub fn call<'env>(
    env: &'env Env,
    client: &External<Arc<twh::Client>>,
    op: String,
    args_json: String,
    body: Option<String>,
) -> napi::Result<PromiseRaw<'env, Answer>> {
    let client = Arc::clone(client);
    env.spawn_future(async move { answer(&client, op, args_json, body).await })
}

/// One call through the dispatch, its answer ready for `JSON.parse` in JS.
async fn answer(client: &twh::Client, op: String, args_json: String, body: Option<String>) -> napi::Result<Answer> {
    let args: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&args_json).map_err(|e| invalid(format!("{op}: arguments: {e}")))?;
    let body = body.map(|text| bytes::Bytes::from(rekey(&text, Case::Snake)));
    let answer = twh::dispatch::call(client, &op, &args, body).await.map_err(to_napi)?;
    let text = std::str::from_utf8(&answer.body).map_err(|_| {
        to_napi(twh::Error::UnexpectedResponse {
            status: Some(answer.status),
            message: format!("{op}: the answer is not UTF-8"),
            attempts: 1,
        })
    })?;
    let json = answer.headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|t| t.contains("json"));
    let body = if json { rekey(text, Case::Camel) } else { text.to_owned() };
    Ok((head(&answer), body))
}

/// The `head` of an [`Answer`]: `{status} {etag}` and the headers as `name: value` lines.
fn head(answer: &twh::dispatch::Answer) -> String {
    let etag = answer.etag().unwrap_or_default();
    let mut head = String::with_capacity(5 + etag.len());
    // A status is three digits (100 to 999).
    for digit in [answer.status / 100 % 10, answer.status / 10 % 10, answer.status % 10] {
        head.push(char::from(b'0' + digit as u8));
    }
    head.push(' ');
    head.push_str(etag);
    head.push('\n');
    twh::dispatch::push_headers_text(&mut head, &answer.headers);
    head
}

/// Stops one `callCancellable` (made per call by `lib/call.js` when the caller gives a
/// `signal`): `cancel()` drops the native future, wherever it is (sending, waiting for the
/// answer, or sleeping before a retry).
#[napi]
pub struct NativeCancel {
    handle: futures::future::AbortHandle,
    registration: Mutex<Option<futures::future::AbortRegistration>>,
}

#[napi]
impl NativeCancel {
    /// A handle for one call.
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> NativeCancel {
        let (handle, registration) = futures::future::AbortHandle::new_pair();
        NativeCancel { handle, registration: Mutex::new(Some(registration)) }
    }

    /// Drops the call (before it starts, or wherever it is).
    #[napi]
    pub fn cancel(&self) {
        self.handle.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// Emulator

/// The emulator handle (native part; `lib/emulator.js` wraps it): started in this process, or
/// connected to one another process serves. Every method talks HTTP to the control plane
/// through the Rust handle (`twh::emulator::Emulator`); values cross as JSON with camelCase keys.
#[napi]
pub struct NativeEmulator {
    inner: Arc<Mutex<Option<Arc<twh::emulator::Emulator>>>>,
    base_url: String,
    connected: bool,
}

impl NativeEmulator {
    fn running(&self) -> napi::Result<Arc<twh::emulator::Emulator>> {
        let guard = self.inner.lock().map_err(|_| invalid("the emulator lock is poisoned"))?;
        guard.clone().ok_or_else(|| to_napi(twh::Error::Configuration("the emulator is stopped".into())))
    }

    fn wrap(emu: twh::emulator::Emulator) -> NativeEmulator {
        let (base_url, connected) = (emu.base_url(), emu.is_connected());
        NativeEmulator { inner: Arc::new(Mutex::new(Some(Arc::new(emu)))), base_url, connected }
    }
}

/// A duration in milliseconds from JS.
fn millis(ms: f64, what: &str) -> napi::Result<Duration> {
    if !(ms.is_finite() && ms >= 0.0) {
        return Err(invalid(format!("{what} takes a non-negative number of milliseconds")));
    }
    Ok(Duration::from_secs_f64(ms / 1000.0))
}

#[napi]
impl NativeEmulator {
    /// Binds a port on 127.0.0.1 and starts serving, with the settings of
    /// `twh::emulator::Options` as JSON (camelCase keys).
    #[napi]
    pub async fn start(options_json: String) -> napi::Result<NativeEmulator> {
        let options = twh::emulator::Options::from_json(&rekey(&options_json, Case::Snake)).map_err(to_napi)?;
        let emu = twh::emulator::Emulator::start(options.into_config().map_err(to_napi)?).await.map_err(to_napi)?;
        Ok(NativeEmulator::wrap(emu))
    }

    /// The handle of an emulator another process serves, with its admin token if any.
    #[napi]
    pub async fn connect(base_url: String, admin_token: Option<String>) -> napi::Result<NativeEmulator> {
        let emu = twh::emulator::Emulator::connect(base_url, admin_token.as_deref()).await.map_err(to_napi)?;
        Ok(NativeEmulator::wrap(emu))
    }

    #[napi(getter)]
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    #[napi(getter)]
    pub fn connected(&self) -> bool {
        self.connected
    }

    /// Creates a sandbox (`{ name?, seed?, plan? }` as JSON) and answers its details with both
    /// keys as JSON; `lib/emulator.js` makes the client. Synchronous, as it always was: it
    /// waits for the emulator's answer (milliseconds) on the calling thread.
    #[napi]
    pub fn create_sandbox(&self, request_json: String) -> napi::Result<String> {
        let request: twh::types::CreateSandbox = from_js(&request_json, "sandbox")?;
        let emu = self.running()?;
        let (_, created) = napi::bindgen_prelude::block_on(emu.create_sandbox_with(&request)).map_err(to_napi)?;
        to_js(&created)
    }

    /// The emulator clock, or one sandbox's (ClockState JSON).
    #[napi]
    pub async fn clock(&self, sandbox: Option<String>) -> napi::Result<String> {
        let emu = self.running()?;
        let state = match sandbox {
            Some(id) => emu.sandbox_clock(&id).await,
            None => emu.clock().await,
        };
        to_js(&state.map_err(to_napi)?)
    }

    /// Moves the emulator clock, or one sandbox's, forward; returns the new time (RFC 3339).
    #[napi]
    pub async fn advance_clock(&self, ms: f64, sandbox: Option<String>) -> napi::Result<String> {
        let by = millis(ms, "advanceClock")?;
        let emu = self.running()?;
        let now = match sandbox {
            Some(id) => emu.advance_sandbox_clock(&id, by).await,
            None => emu.advance_clock(by).await,
        };
        Ok(now.map_err(to_napi)?.to_rfc3339())
    }

    /// Arms a fault (a `FaultSpec` as JSON) for the next `times` matching requests; answers the
    /// `Fault` as JSON. Synchronous, as it always was.
    #[napi]
    pub fn inject_fault(&self, spec_json: String) -> napi::Result<String> {
        let spec: twh::types::FaultSpec = from_js(&spec_json, "fault")?;
        let emu = self.running()?;
        to_js(&napi::bindgen_prelude::block_on(emu.inject_fault(&spec)).map_err(to_napi)?)
    }

    /// The armed faults (JSON list).
    #[napi]
    pub async fn faults(&self) -> napi::Result<String> {
        to_js(&self.running()?.faults().await.map_err(to_napi)?)
    }

    /// Disarms every fault. Synchronous, as it always was.
    #[napi]
    pub fn clear_faults(&self) -> napi::Result<()> {
        let emu = self.running()?;
        napi::bindgen_prelude::block_on(emu.clear_faults()).map_err(to_napi)
    }

    /// What sink `name` received (JSON list; header names kept as sent).
    #[napi]
    pub async fn sink(&self, name: String) -> napi::Result<String> {
        to_js(&self.running()?.sink(&name).await.map_err(to_napi)?)
    }

    /// Forgets what sink `name` received.
    #[napi]
    pub async fn clear_sink(&self, name: String) -> napi::Result<()> {
        self.running()?.clear_sink(&name).await.map_err(to_napi)
    }

    /// A page of the request journal (`{ sandboxId?, method?, pathPrefix?, status?, requestId?,
    /// idempotencyKey?, limit?, cursor? }` as JSON); answers `{ data, nextCursor }` JSON.
    #[napi]
    pub async fn requests(&self, query_json: String) -> napi::Result<String> {
        let query: twh::emulator::RequestsQuery = from_js(&query_json, "requests")?;
        let page = self.running()?.requests(&query).await.map_err(to_napi)?;
        to_js(&serde_json::json!({ "data": page.data, "next_cursor": page.next_cursor }))
    }

    /// One journal entry (JSON).
    #[napi]
    pub async fn request(&self, id: String) -> napi::Result<String> {
        to_js(&self.running()?.request(&id).await.map_err(to_napi)?)
    }

    /// Empties the request journal.
    #[napi]
    pub async fn clear_requests(&self) -> napi::Result<()> {
        self.running()?.clear_requests().await.map_err(to_napi)
    }

    /// Loads a fixtures document (JSON, camelCase like the package's `Fixtures` type, or
    /// snake_case as `serve --fixtures` reads it: both read the same); answers the sandboxes
    /// with their keys (JSON list); `lib/emulator.js` makes the clients.
    #[napi]
    pub async fn load_fixtures(&self, document_json: String) -> napi::Result<String> {
        let document: serde_json::Value = from_js(&document_json, "loadFixtures")?;
        let loaded = self.running()?.load_fixtures(&document).await.map_err(to_napi)?;
        let sandboxes: Vec<_> = loaded.into_iter().map(|(_, s)| s).collect();
        to_js(&sandboxes)
    }

    /// Stops accepting, lets in-flight requests finish, and returns. Idempotent. A connected
    /// handle stops nothing; it is only closed.
    #[napi]
    pub async fn stop(&self) -> napi::Result<()> {
        let taken = self.inner.lock().map_err(|_| invalid("the emulator lock is poisoned"))?.take();
        let Some(mut emu) = taken else { return Ok(()) };
        // Calls still in flight hold a clone; wait for them, bounded.
        for _ in 0..500 {
            match Arc::try_unwrap(emu) {
                Ok(emu) => {
                    emu.shutdown().await;
                    return Ok(());
                }
                Err(shared) => {
                    emu = shared;
                    napi::tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        Err(invalid("the emulator is still in use after 5 s"))
    }
}

// ---------------------------------------------------------------------------------------------
// Webhooks

fn payload_bytes(payload: Either<String, Buffer>) -> Vec<u8> {
    match payload {
        Either::A(text) => text.into_bytes(),
        Either::B(buffer) => buffer.to_vec(),
    }
}

fn secret(text: &str) -> napi::Result<twh::webhooks::Secret> {
    twh::webhooks::Secret::parse(text).map_err(|e| to_napi(twh::Error::WebhookVerification(e)))
}

/// Signs a delivery as TWH does (for tests of a webhook handler): one `v1,` signature per
/// secret, as during a rotation. Returns the three headers.
#[napi(ts_return_type = "{ 'webhook-id': string; 'webhook-timestamp': string; 'webhook-signature': string }")]
pub fn webhooks_sign(
    secrets: Vec<String>,
    id: String,
    timestamp_unix_seconds: i64,
    payload: Either<String, Buffer>,
) -> napi::Result<serde_json::Value> {
    if secrets.is_empty() {
        return Err(invalid("webhooks.sign needs at least one secret"));
    }
    let secrets = secrets.iter().map(|s| secret(s)).collect::<napi::Result<Vec<_>>>()?;
    let refs: Vec<&twh::webhooks::Secret> = secrets.iter().collect();
    let signed = twh::webhooks::sign_with(&refs, &id, timestamp_unix_seconds, &payload_bytes(payload));
    Ok(serde_json::json!({
        twh::webhooks::ID_HEADER: signed.id,
        twh::webhooks::TIMESTAMP_HEADER: signed.timestamp,
        twh::webhooks::SIGNATURE_HEADER: signed.signature,
    }))
}

/// Verifies a webhook delivery (Standard Webhooks) and answers its event as JSON text with
/// camelCase keys: the payload itself, so fields newer than this package are kept.
#[napi]
pub fn webhooks_verify(
    payload: Either<String, Buffer>,
    headers: std::collections::HashMap<String, String>,
    secret_text: String,
    tolerance_ms: Option<f64>,
) -> napi::Result<String> {
    let tolerance = Duration::from_secs_f64(tolerance_ms.unwrap_or(300_000.0).max(0.0) / 1000.0);
    let bytes = payload_bytes(payload);
    let headers: Vec<(String, String)> = headers.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
    twh::webhooks::verify(&bytes, &headers, &secret(&secret_text)?, tolerance).map_err(to_napi)?;
    Ok(rekey(&String::from_utf8_lossy(&bytes), Case::Camel))
}

// ---------------------------------------------------------------------------------------------
// The `twh-emulator` command

/// Runs the `twh-emulator` command line (`twh_emulator::cli::run`, the Rust binary's very
/// function) with `args` (the program name first) until it ends, and answers its exit status.
/// It blocks the calling thread, event loop included, for as long as the emulator serves: it is
/// for the package's `bin/twh-emulator.js`, whose process is the emulator. Ctrl-C and SIGTERM
/// reach the emulator's own handlers (tokio's), which stop it cleanly and make this return; the
/// process must listen for both first (`process.on`), or Node's default handlers, which tokio's
/// call in turn, raise them again without end.
#[napi]
pub fn run_cli(args: Vec<String>) -> u32 {
    u32::from(exit_status(twh_emulator::cli::run(args)))
}

/// The number of an [`std::process::ExitCode`] (the standard library compares them but does not
/// hand the number back).
fn exit_status(code: std::process::ExitCode) -> u8 {
    (0..=u8::MAX).find(|&n| std::process::ExitCode::from(n) == code).unwrap_or(1)
}
