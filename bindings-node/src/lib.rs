//! Node bindings for the TWH SDK (napi-rs v3).
//!
//! The native layer is deliberately thin: every operation takes and returns plain JSON values
//! (camelCase keys on the Node side, snake_case on the wire; keys inside `metadata` are the
//! caller's and are left alone) and delegates to `twh::Client`, so retries, idempotency keys,
//! ETags and typed errors behave exactly as in Rust. Errors leave Rust as a JS `Error` whose
//! message is `TWH_ERROR:` followed by a JSON description; the hand-written `lib/errors.js`
//! turns that into the right `TwhError` subclass (SDK.md "Errors").
#![allow(clippy::needless_pass_by_value)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde_json::{Map, Value, json};
use twh::types;

/// Prefix of the message of every error the native layer throws.
const ERROR_PREFIX: &str = "TWH_ERROR:";

// ---------------------------------------------------------------------------------------------
// Errors

fn kind_of(e: &twh::Error) -> &'static str {
    use twh::Error as E;
    match e {
        E::Authentication(_) => "AuthenticationError",
        E::Permission(_) => "PermissionError",
        E::NotFound(_) => "NotFoundError",
        E::Conflict(_) => "ConflictError",
        E::IdempotencyKeyReused(_) => "IdempotencyKeyReusedError",
        E::Validation(_) => "ValidationError",
        E::PreconditionFailed(_) => "PreconditionFailedError",
        E::PreconditionRequired(_) => "PreconditionRequiredError",
        E::RateLimited(_) => "RateLimitedError",
        E::QuotaExceeded(_) => "QuotaExceededError",
        E::Server(_) => "ServerError",
        E::Api(_) => "ApiError",
        E::Connection { .. } => "ConnectionError",
        E::Timeout { .. } => "TimeoutError",
        E::UnexpectedResponse { .. } => "UnexpectedResponseError",
        E::InvalidRequest(_) => "InvalidRequestError",
        E::Configuration(_) => "ConfigurationError",
        E::WebhookVerification(_) => "WebhookVerificationError",
        _ => "TwhError",
    }
}

fn to_napi(e: twh::Error) -> napi::Error {
    let api = e.api_error();
    let errors: Vec<Value> = e.errors().iter().map(|f| json!({ "field": f.field, "message": f.message })).collect();
    let description = json!({
        "kind": kind_of(&e),
        "message": e.to_string(),
        "status": e.status(),
        "code": e.code(),
        "requestId": e.request_id(),
        "retryAfter": e.retry_after().map(|d| d.as_secs_f64()),
        "errors": errors,
        "attempts": e.attempts(),
        "currentEtag": api.and_then(|a| a.current_etag.as_ref()).map(|t| t.as_str().to_string()),
    });
    napi::Error::from_reason(format!("{ERROR_PREFIX}{description}"))
}

fn invalid(message: impl Into<String>) -> napi::Error {
    to_napi(twh::Error::InvalidRequest(message.into()))
}



// ---------------------------------------------------------------------------------------------
// camelCase <-> snake_case

fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn rekey(value: Value, f: fn(&str) -> String) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = if k == "metadata" { v } else { rekey(v, f) };
                    (f(&k), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| rekey(v, f)).collect()),
        other => other,
    }
}

/// A Node value (camelCase) as an SDK request type.
fn from_js<T: serde::de::DeserializeOwned>(value: Value, what: &str) -> napi::Result<T> {
    serde_json::from_value(rekey(value, snake)).map_err(|e| invalid(format!("{what}: {e}")))
}

/// An SDK value as a Node value (camelCase).
fn to_js<T: serde::Serialize>(value: &T) -> napi::Result<Value> {
    let value = serde_json::to_value(value).map_err(|e| invalid(e.to_string()))?;
    Ok(rekey(value, camel))
}

fn versioned<T: serde::Serialize>(v: twh::Versioned<T>) -> napi::Result<Value> {
    let mut out = to_js(&v.value)?;
    if let Value::Object(map) = &mut out {
        map.insert("etag".into(), Value::String(v.etag.as_str().to_string()));
    }
    Ok(out)
}

fn page<T: serde::Serialize>(p: twh::Page<T>) -> napi::Result<Value> {
    let data = p.data.iter().map(to_js).collect::<napi::Result<Vec<_>>>()?;
    Ok(json!({ "data": data, "nextCursor": p.next_cursor }))
}

fn etag(text: &str) -> napi::Result<twh::ETag> {
    twh::ETag::new(text).ok_or_else(|| invalid(format!("not an ETag: {text:?}")))
}

/// Reads query fields from a Node options object.
struct Query(Map<String, Value>);

impl Query {
    fn new(value: Option<Value>) -> napi::Result<Query> {
        match value {
            None | Some(Value::Null) => Ok(Query(Map::new())),
            Some(Value::Object(map)) => Ok(Query(map)),
            Some(_) => Err(invalid("a query must be an object")),
        }
    }
    fn string(&self, key: &str) -> Option<String> {
        self.0.get(key).and_then(Value::as_str).map(str::to_string)
    }
    fn u32(&self, key: &str) -> Option<u32> {
        self.0.get(key).and_then(Value::as_u64).map(|n| n.min(u64::from(u32::MAX)) as u32)
    }
    fn u64(&self, key: &str) -> Option<u64> {
        self.0.get(key).and_then(Value::as_u64)
    }
    fn bool(&self, key: &str) -> Option<bool> {
        self.0.get(key).and_then(Value::as_bool)
    }
    fn parse<T: serde::de::DeserializeOwned>(&self, key: &str) -> napi::Result<Option<T>> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|e| invalid(format!("{key}: {e}"))),
        }
    }
}

/// Options of a POST: `{ idempotencyKey?, ifMatch? }`.
#[napi(object)]
#[derive(Default)]
pub struct PostOptions {
    pub idempotency_key: Option<String>,
    pub if_match: Option<String>,
}

fn with_key<'a, T>(post: twh::Post<'a, T>, options: &Option<PostOptions>) -> twh::Post<'a, T> {
    match options.as_ref().and_then(|o| o.idempotency_key.clone()) {
        Some(key) => post.idempotency_key(key),
        None => post,
    }
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

fn build_client(builder: twh::ClientBuilder, options: ClientOptions) -> napi::Result<twh::Client> {
    let mut builder = builder;
    if let Some(key) = options.api_key {
        builder = builder.api_key(key);
    }
    if let Some(url) = options.base_url {
        builder = builder.base_url(url);
    }
    if let Some(ms) = options.timeout_ms {
        builder = builder.timeout(Duration::from_millis(u64::from(ms)));
    }
    if let Some(n) = options.max_retries {
        builder = builder.max_retries(n);
    }
    let suffix = match options.user_agent_suffix {
        Some(s) => format!("twh-node/{} {s}", env!("CARGO_PKG_VERSION")),
        None => format!("twh-node/{}", env!("CARGO_PKG_VERSION")),
    };
    builder.user_agent_suffix(suffix).build().map_err(to_napi)
}

/// A TWH API client (native part; `lib/client.js` wraps it).
#[napi]
pub struct NativeClient {
    inner: twh::Client,
}

#[napi]
impl NativeClient {
    /// Builds a client; a missing key or a malformed base URL fails here, not at the first call.
    #[napi]
    pub fn create(options: Option<ClientOptions>) -> napi::Result<NativeClient> {
        Ok(NativeClient { inner: build_client(twh::Client::builder(), options.unwrap_or_default())? })
    }

    #[napi(getter)]
    pub fn base_url(&self) -> String {
        self.inner.base_url().to_string()
    }

    // Sandboxes --------------------------------------------------------------------------------

    #[napi(ts_return_type = "Promise<any>")]
    pub async fn get_sandbox(&self) -> napi::Result<Value> {
        to_js(&self.inner.get_sandbox().await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<any>")]
    pub async fn reset_sandbox(&self, options: Option<PostOptions>) -> napi::Result<Value> {
        to_js(&with_key(self.inner.reset_sandbox(), &options).await.map_err(to_napi)?)
    }

    #[napi]
    pub async fn delete_sandbox(&self) -> napi::Result<()> {
        self.inner.delete_sandbox().await.map_err(to_napi)
    }

    // Items ------------------------------------------------------------------------------------

    #[napi(ts_return_type = "Promise<any>")]
    pub async fn create_item(&self, item: Value, options: Option<PostOptions>) -> napi::Result<Value> {
        let item: types::CreateItem = from_js(item, "item")?;
        versioned(with_key(self.inner.create_item(item), &options).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<any>")]
    pub async fn get_item(&self, id: String) -> napi::Result<Value> {
        versioned(self.inner.get_item(&id).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<any>")]
    pub async fn update_item(&self, id: String, etag_text: String, patch: Value) -> napi::Result<Value> {
        let patch: types::UpdateItem = from_js(patch, "patch")?;
        versioned(self.inner.update_item(&id, &etag(&etag_text)?, patch).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<any>")]
    pub async fn archive_item(&self, id: String, etag_text: String) -> napi::Result<Value> {
        versioned(self.inner.archive_item(&id, &etag(&etag_text)?).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<any>")]
    pub async fn list_items(&self, query: Option<Value>) -> napi::Result<Value> {
        let q = Query::new(query)?;
        let query = twh::ItemQuery {
            sku: q.string("sku"),
            q: q.string("q"),
            status: q.parse("status")?,
            limit: q.u32("limit"),
            cursor: q.string("cursor"),
        };
        page(self.inner.list_items(&query).await.map_err(to_napi)?)
    }

    // Locations --------------------------------------------------------------------------------

    #[napi(ts_return_type = "Promise<any>")]
    pub async fn create_location(&self, location: Value, options: Option<PostOptions>) -> napi::Result<Value> {
        let location: types::CreateLocation = from_js(location, "location")?;
        versioned(with_key(self.inner.create_location(location), &options).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<any>")]
    pub async fn get_location(&self, id: String) -> napi::Result<Value> {
        versioned(self.inner.get_location(&id).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<any>")]
    pub async fn update_location(&self, id: String, etag_text: String, patch: Value) -> napi::Result<Value> {
        let patch: types::UpdateLocation = from_js(patch, "patch")?;
        versioned(self.inner.update_location(&id, &etag(&etag_text)?, patch).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<any>")]
    pub async fn archive_location(&self, id: String, etag_text: String) -> napi::Result<Value> {
        versioned(self.inner.archive_location(&id, &etag(&etag_text)?).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<any>")]
    pub async fn list_locations(&self, query: Option<Value>) -> napi::Result<Value> {
        let q = Query::new(query)?;
        let query = twh::LocationQuery {
            code: q.string("code"),
            q: q.string("q"),
            status: q.parse("status")?,
            kind: q.parse("kind")?,
            limit: q.u32("limit"),
            cursor: q.string("cursor"),
        };
        page(self.inner.list_locations(&query).await.map_err(to_napi)?)
    }

    // Movements --------------------------------------------------------------------------------

    #[napi(ts_return_type = "Promise<any>")]
    pub async fn create_movement(&self, movement: Value, options: Option<PostOptions>) -> napi::Result<Value> {
        let movement: types::CreateMovement = from_js(movement, "movement")?;
        let post = match options.as_ref().and_then(|o| o.if_match.clone()) {
            Some(text) => self.inner.create_movement_if_match(movement, &etag(&text)?),
            None => self.inner.create_movement(movement),
        };
        versioned(with_key(post, &options).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<any[]>")]
    pub async fn create_movement_batch(&self, movements: Vec<Value>, options: Option<PostOptions>) -> napi::Result<Value> {
        let movements = movements
            .into_iter()
            .map(|m| from_js::<types::CreateMovement>(m, "movement"))
            .collect::<napi::Result<Vec<_>>>()?;
        to_js(&with_key(self.inner.create_movement_batch(movements), &options).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<any>")]
    pub async fn reverse_movement(&self, id: String, reverse: Option<Value>, options: Option<PostOptions>) -> napi::Result<Value> {
        let reverse: types::ReverseMovement = from_js(reverse.unwrap_or_else(|| json!({})), "reverse")?;
        versioned(with_key(self.inner.reverse_movement(&id, reverse), &options).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<any>")]
    pub async fn get_movement(&self, id: String) -> napi::Result<Value> {
        versioned(self.inner.get_movement(&id).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<any>")]
    pub async fn list_movements(&self, query: Option<Value>) -> napi::Result<Value> {
        let q = Query::new(query)?;
        let query = twh::MovementQuery {
            item_id: q.string("itemId"),
            location_id: q.string("locationId"),
            type_: q.parse("type")?,
            after_sequence: q.u64("afterSequence"),
            created_after: q.parse("createdAfter")?,
            created_before: q.parse("createdBefore")?,
            limit: q.u32("limit"),
            cursor: q.string("cursor"),
        };
        page(self.inner.list_movements(&query).await.map_err(to_napi)?)
    }

    // Stock levels -----------------------------------------------------------------------------

    #[napi(ts_return_type = "Promise<any>")]
    pub async fn get_stock_level(&self, item_id: String, location_id: String) -> napi::Result<Value> {
        versioned(self.inner.get_stock_level(&item_id, &location_id).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<any>")]
    pub async fn list_stock_levels(&self, query: Option<Value>) -> napi::Result<Value> {
        let q = Query::new(query)?;
        let query = twh::StockLevelQuery {
            item_id: q.string("itemId"),
            location_id: q.string("locationId"),
            below_threshold: q.bool("belowThreshold"),
            limit: q.u32("limit"),
            cursor: q.string("cursor"),
        };
        page(self.inner.list_stock_levels(&query).await.map_err(to_napi)?)
    }

    // Events -----------------------------------------------------------------------------------

    #[napi(ts_return_type = "Promise<any>")]
    pub async fn get_event(&self, id: String) -> napi::Result<Value> {
        versioned(self.inner.get_event(&id).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<any>")]
    pub async fn list_events(&self, query: Option<Value>) -> napi::Result<Value> {
        let q = Query::new(query)?;
        let query = twh::EventQuery {
            type_: q.string("type"),
            after: q.string("after"),
            limit: q.u32("limit"),
            cursor: q.string("cursor"),
        };
        page(self.inner.list_events(&query).await.map_err(to_napi)?)
    }
}

// ---------------------------------------------------------------------------------------------
// Emulator

/// The in-process emulator (native part; `lib/emulator.js` wraps it).
#[napi]
pub struct NativeEmulator {
    inner: Arc<Mutex<Option<Arc<twh::emulator::Emulator>>>>,
    base_url: String,
}

impl NativeEmulator {
    fn running(&self) -> napi::Result<Arc<twh::emulator::Emulator>> {
        let guard = self.inner.lock().map_err(|_| invalid("the emulator lock is poisoned"))?;
        guard.clone().ok_or_else(|| to_napi(twh::Error::Configuration("the emulator is stopped".into())))
    }
}

#[napi]
impl NativeEmulator {
    /// Binds a free port on 127.0.0.1 and starts serving.
    #[napi]
    pub async fn start() -> napi::Result<NativeEmulator> {
        let emu = twh::emulator::Emulator::start(twh::emulator::Config::default()).await.map_err(to_napi)?;
        let base_url = emu.base_url();
        Ok(NativeEmulator { inner: Arc::new(Mutex::new(Some(Arc::new(emu)))), base_url })
    }

    #[napi(getter)]
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// A new sandbox and a client using its secret key.
    #[napi]
    pub fn create_sandbox(&self, options: Option<ClientOptions>) -> napi::Result<NativeClient> {
        let emu = self.running()?;
        let (_, created) = emu.create_sandbox_with(&types::CreateSandbox::default()).map_err(to_napi)?;
        let options = options.unwrap_or_default();
        let api_key = created.secret_key.expose().to_string();
        let inner = build_client(
            emu.client_builder(),
            ClientOptions { api_key: Some(api_key), base_url: None, ..options },
        )?;
        Ok(NativeClient { inner })
    }

    /// Moves the emulator clock forward; returns the new emulator time (RFC 3339).
    #[napi]
    pub async fn advance_clock(&self, ms: f64) -> napi::Result<String> {
        if !(ms.is_finite() && ms >= 0.0) {
            return Err(invalid("advanceClock takes a non-negative number of milliseconds"));
        }
        let emu = self.running()?;
        let now = emu.advance_clock(Duration::from_secs_f64(ms / 1000.0)).await;
        Ok(now.to_rfc3339())
    }

    /// Arms a fault for the next `times` matching requests.
    #[napi(ts_return_type = "any")]
    pub fn inject_fault(&self, spec: Value) -> napi::Result<Value> {
        let spec: types::FaultSpec = from_js(spec, "fault")?;
        to_js(&self.running()?.inject_fault(&spec).map_err(to_napi)?)
    }

    /// Disarms every fault.
    #[napi]
    pub fn clear_faults(&self) -> napi::Result<()> {
        self.running()?.clear_faults();
        Ok(())
    }

    /// Stops accepting, lets in-flight requests finish, and returns. Idempotent.
    #[napi]
    pub async fn stop(&self) -> napi::Result<()> {
        let taken = self.inner.lock().map_err(|_| invalid("the emulator lock is poisoned"))?.take();
        let Some(mut emu) = taken else { return Ok(()) };
        // Calls still in flight (advanceClock) hold a clone; wait for them, bounded.
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

/// Verifies a webhook delivery (Standard Webhooks) and returns its event.
#[napi(ts_return_type = "any")]
pub fn webhooks_verify(
    payload: Either<String, Buffer>,
    headers: std::collections::HashMap<String, String>,
    secret: String,
    tolerance_ms: Option<f64>,
) -> napi::Result<Value> {
    let secret = twh::webhooks::Secret::parse(&secret).map_err(|e| to_napi(twh::Error::WebhookVerification(e)))?;
    let tolerance = Duration::from_secs_f64(tolerance_ms.unwrap_or(300_000.0).max(0.0) / 1000.0);
    let bytes: Vec<u8> = match payload {
        Either::A(text) => text.into_bytes(),
        Either::B(buffer) => buffer.to_vec(),
    };
    let headers: Vec<(String, String)> = headers.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
    to_js(&twh::webhooks::verify(&bytes, &headers, &secret, tolerance).map_err(to_napi)?)
}
