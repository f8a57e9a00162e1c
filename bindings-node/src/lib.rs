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

/// The `User-Agent` product token (SDK.md: `twh-<lang>/<version>`); the crate's version is the
/// npm package's (`test/api.test.js` checks that they agree).
const PRODUCT: &str = concat!("twh-node/", env!("CARGO_PKG_VERSION"));

/// The package version, as the native layer was built.
#[napi]
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Rounds of read-modify-write in `updateItemWith` / `updateLocationWith`: the Rust SDK's bound.
#[napi]
pub const READ_MODIFY_WRITE_ATTEMPTS_MAX: u32 = twh::etag::READ_MODIFY_WRITE_ATTEMPTS_MAX;

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

/// Objects whose keys are data, not field names: the caller's own (`metadata`, `attributes`)
/// and maps keyed by meter name (`quotas`, `overage_unit_amount`). Their keys cross unchanged.
const OPAQUE_KEYS: &[&str] = &["metadata", "attributes", "quotas", "overage_unit_amount", "overageUnitAmount"];

fn rekey(value: Value, f: fn(&str) -> String) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = if OPAQUE_KEYS.contains(&k.as_str()) { v } else { rekey(v, f) };
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

// The client's answers cross to JS as JSON text and are parsed there with `JSON.parse`: V8's
// parser builds objects several times faster than N-API can set them up property by property
// (measured by bench/node/bench.mjs on a page of 20 items).

fn to_text<T: serde::Serialize>(value: &T) -> napi::Result<String> {
    json_text(&to_js(value)?)
}

fn versioned_text<T: serde::Serialize>(v: twh::Versioned<T>) -> napi::Result<String> {
    json_text(&versioned(v)?)
}

fn page_text<T: serde::Serialize>(p: twh::Page<T>) -> napi::Result<String> {
    json_text(&page(p)?)
}

fn json_text(value: &Value) -> napi::Result<String> {
    serde_json::to_string(value).map_err(|e| invalid(e.to_string()))
}

fn etag(text: &str) -> napi::Result<twh::ETag> {
    twh::ETag::new(text).ok_or_else(|| invalid(format!("not an ETag: {text:?}")))
}

/// Reads the fields of a Node options object (a list query, `{ asOf }`). Every value is
/// checked (a negative `limit` or a numeric `sku` is an error, not ignored), and so is every key:
/// [`Query::finish`] refuses one that was never read, so a typo (`itemid`) fails loudly instead
/// of silently listing everything.
struct Query {
    map: Map<String, Value>,
    read: std::cell::RefCell<Vec<&'static str>>,
}

impl Query {
    fn new(value: Option<Value>) -> napi::Result<Query> {
        let map = match value {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map,
            Some(_) => return Err(invalid("options must be an object")),
        };
        Ok(Query { map, read: std::cell::RefCell::new(Vec::new()) })
    }

    fn parse<T: serde::de::DeserializeOwned>(&self, key: &'static str) -> napi::Result<Option<T>> {
        self.read.borrow_mut().push(key);
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|e| invalid(format!("option {key}: {e}"))),
        }
    }

    /// Fails on a key that no `parse` asked for.
    fn finish(self) -> napi::Result<()> {
        let read = self.read.into_inner();
        for (key, value) in &self.map {
            if !value.is_null() && !read.contains(&key.as_str()) {
                return Err(invalid(format!("unknown option {key:?} (known: {})", read.join(", "))));
            }
        }
        Ok(())
    }
}

/// `{ period?: 'current' | 'YYYY-MM' }`
fn period_of(query: Option<Value>) -> napi::Result<Option<String>> {
    let q = Query::new(query)?;
    let period = q.parse("period")?;
    q.finish()?;
    Ok(period)
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
    if let Some(suffix) = options.user_agent_suffix {
        builder = builder.user_agent_suffix(suffix);
    }
    builder.product(PRODUCT).build().map_err(to_napi)
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

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn get_sandbox(&self) -> napi::Result<String> {
        to_text(&self.inner.get_sandbox().await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn reset_sandbox(&self, options: Option<PostOptions>) -> napi::Result<String> {
        to_text(&with_key(self.inner.reset_sandbox(), &options).await.map_err(to_napi)?)
    }

    #[napi]
    pub async fn delete_sandbox(&self) -> napi::Result<()> {
        self.inner.delete_sandbox().await.map_err(to_napi)
    }

    /// Issues a new secret key; the old one keeps working for a grace period.
    #[napi(ts_return_type = "Promise<string>")]
    pub async fn roll_api_key(&self, options: Option<PostOptions>) -> napi::Result<String> {
        to_text(&with_key(self.inner.roll_api_key(), &options).await.map_err(to_napi)?)
    }

    /// Creates another sandbox (this client's key is the admin token where one is required).
    #[napi(ts_return_type = "Promise<string>")]
    pub async fn create_sandbox(&self, sandbox: Option<Value>, options: Option<PostOptions>) -> napi::Result<String> {
        let sandbox: types::CreateSandbox = from_js(sandbox.unwrap_or_else(|| json!({})), "sandbox")?;
        to_text(&with_key(self.inner.create_sandbox(sandbox), &options).await.map_err(to_napi)?)
    }

    /// The same configuration with another API key.
    #[napi]
    pub fn with_api_key(&self, api_key: String) -> napi::Result<NativeClient> {
        Ok(NativeClient { inner: self.inner.with_api_key(api_key).map_err(to_napi)? })
    }

    // Items ------------------------------------------------------------------------------------

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn create_item(&self, item: Value, options: Option<PostOptions>) -> napi::Result<String> {
        let item: types::CreateItem = from_js(item, "item")?;
        versioned_text(with_key(self.inner.create_item(item), &options).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn get_item(&self, id: String) -> napi::Result<String> {
        versioned_text(self.inner.get_item(&id).await.map_err(to_napi)?)
    }

    /// The item, or `null` when it still has `etag`.
    #[napi(ts_return_type = "Promise<string>")]
    pub async fn get_item_if_changed(&self, id: String, etag_text: String) -> napi::Result<String> {
        match self.inner.get_item_if_changed(&id, &etag(&etag_text)?).await.map_err(to_napi)? {
            Some(v) => versioned_text(v),
            None => Ok("null".to_owned()),
        }
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn update_item(&self, id: String, etag_text: String, patch: Value) -> napi::Result<String> {
        let patch: types::UpdateItem = from_js(patch, "patch")?;
        versioned_text(self.inner.update_item(&id, &etag(&etag_text)?, patch).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn archive_item(&self, id: String, etag_text: String) -> napi::Result<String> {
        versioned_text(self.inner.archive_item(&id, &etag(&etag_text)?).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn list_items(&self, query: Option<Value>) -> napi::Result<String> {
        let q = Query::new(query)?;
        let query = twh::ItemQuery {
            sku: q.parse("sku")?,
            q: q.parse("q")?,
            status: q.parse("status")?,
            limit: q.parse("limit")?,
            cursor: q.parse("cursor")?,
        };
        q.finish()?;
        page_text(self.inner.list_items(&query).await.map_err(to_napi)?)
    }

    // Locations --------------------------------------------------------------------------------

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn create_location(&self, location: Value, options: Option<PostOptions>) -> napi::Result<String> {
        let location: types::CreateLocation = from_js(location, "location")?;
        versioned_text(with_key(self.inner.create_location(location), &options).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn get_location(&self, id: String) -> napi::Result<String> {
        versioned_text(self.inner.get_location(&id).await.map_err(to_napi)?)
    }

    /// The location, or `null` when it still has `etag`.
    #[napi(ts_return_type = "Promise<string>")]
    pub async fn get_location_if_changed(&self, id: String, etag_text: String) -> napi::Result<String> {
        match self.inner.get_location_if_changed(&id, &etag(&etag_text)?).await.map_err(to_napi)? {
            Some(v) => versioned_text(v),
            None => Ok("null".to_owned()),
        }
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn update_location(&self, id: String, etag_text: String, patch: Value) -> napi::Result<String> {
        let patch: types::UpdateLocation = from_js(patch, "patch")?;
        versioned_text(self.inner.update_location(&id, &etag(&etag_text)?, patch).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn archive_location(&self, id: String, etag_text: String) -> napi::Result<String> {
        versioned_text(self.inner.archive_location(&id, &etag(&etag_text)?).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn list_locations(&self, query: Option<Value>) -> napi::Result<String> {
        let q = Query::new(query)?;
        let query = twh::LocationQuery {
            code: q.parse("code")?,
            q: q.parse("q")?,
            status: q.parse("status")?,
            kind: q.parse("kind")?,
            limit: q.parse("limit")?,
            cursor: q.parse("cursor")?,
        };
        q.finish()?;
        page_text(self.inner.list_locations(&query).await.map_err(to_napi)?)
    }

    // Movements --------------------------------------------------------------------------------

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn create_movement(&self, movement: Value, options: Option<PostOptions>) -> napi::Result<String> {
        let movement: types::CreateMovement = from_js(movement, "movement")?;
        let post = match options.as_ref().and_then(|o| o.if_match.clone()) {
            Some(text) => self.inner.create_movement_if_match(movement, &etag(&text)?),
            None => self.inner.create_movement(movement),
        };
        versioned_text(with_key(post, &options).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn create_movement_batch(&self, movements: Vec<Value>, options: Option<PostOptions>) -> napi::Result<String> {
        let movements = movements
            .into_iter()
            .map(|m| from_js::<types::CreateMovement>(m, "movement"))
            .collect::<napi::Result<Vec<_>>>()?;
        to_text(&with_key(self.inner.create_movement_batch(movements), &options).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn reverse_movement(&self, id: String, reverse: Option<Value>, options: Option<PostOptions>) -> napi::Result<String> {
        let reverse: types::ReverseMovement = from_js(reverse.unwrap_or_else(|| json!({})), "reverse")?;
        versioned_text(with_key(self.inner.reverse_movement(&id, reverse), &options).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn get_movement(&self, id: String) -> napi::Result<String> {
        versioned_text(self.inner.get_movement(&id).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn list_movements(&self, query: Option<Value>) -> napi::Result<String> {
        let q = Query::new(query)?;
        let query = twh::MovementQuery {
            item_id: q.parse("itemId")?,
            location_id: q.parse("locationId")?,
            type_: q.parse("type")?,
            after_sequence: q.parse("afterSequence")?,
            created_after: q.parse("createdAfter")?,
            created_before: q.parse("createdBefore")?,
            limit: q.parse("limit")?,
            cursor: q.parse("cursor")?,
        };
        q.finish()?;
        page_text(self.inner.list_movements(&query).await.map_err(to_napi)?)
    }

    // Stock levels -----------------------------------------------------------------------------

    /// The level now, or as of a time (`{ asOf: "<RFC 3339>" }`).
    #[napi(ts_return_type = "Promise<string>")]
    pub async fn get_stock_level(&self, item_id: String, location_id: String, query: Option<Value>) -> napi::Result<String> {
        let q = Query::new(query)?;
        let as_of: Option<chrono::DateTime<chrono::Utc>> = q.parse("asOf")?;
        q.finish()?;
        let level = match as_of {
            Some(t) => self.inner.get_stock_level_as_of(&item_id, &location_id, t).await,
            None => self.inner.get_stock_level(&item_id, &location_id).await,
        };
        versioned_text(level.map_err(to_napi)?)
    }

    /// The level, or `null` when it still has `etag`.
    #[napi(ts_return_type = "Promise<string>")]
    pub async fn get_stock_level_if_changed(&self, item_id: String, location_id: String, etag_text: String) -> napi::Result<String> {
        let answer = self.inner.get_stock_level_if_changed(&item_id, &location_id, &etag(&etag_text)?).await;
        match answer.map_err(to_napi)? {
            Some(v) => versioned_text(v),
            None => Ok("null".to_owned()),
        }
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn list_stock_levels(&self, query: Option<Value>) -> napi::Result<String> {
        let q = Query::new(query)?;
        let query = twh::StockLevelQuery {
            item_id: q.parse("itemId")?,
            location_id: q.parse("locationId")?,
            below_threshold: q.parse("belowThreshold")?,
            limit: q.parse("limit")?,
            cursor: q.parse("cursor")?,
        };
        q.finish()?;
        page_text(self.inner.list_stock_levels(&query).await.map_err(to_napi)?)
    }

    // Events -----------------------------------------------------------------------------------

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn get_event(&self, id: String) -> napi::Result<String> {
        versioned_text(self.inner.get_event(&id).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn list_events(&self, query: Option<Value>) -> napi::Result<String> {
        let q = Query::new(query)?;
        let query = twh::EventQuery {
            type_: q.parse("type")?,
            after: q.parse("after")?,
            limit: q.parse("limit")?,
            cursor: q.parse("cursor")?,
        };
        q.finish()?;
        page_text(self.inner.list_events(&query).await.map_err(to_napi)?)
    }

    // Webhook endpoints and deliveries ------------------------------------------------------------

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn create_webhook_endpoint(&self, endpoint: Value, options: Option<PostOptions>) -> napi::Result<String> {
        let endpoint: types::CreateWebhookEndpoint = from_js(endpoint, "endpoint")?;
        versioned_text(with_key(self.inner.create_webhook_endpoint(endpoint), &options).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn get_webhook_endpoint(&self, id: String) -> napi::Result<String> {
        versioned_text(self.inner.get_webhook_endpoint(&id).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn update_webhook_endpoint(&self, id: String, etag_text: String, patch: Value) -> napi::Result<String> {
        let patch: types::UpdateWebhookEndpoint = from_js(patch, "patch")?;
        versioned_text(self.inner.update_webhook_endpoint(&id, &etag(&etag_text)?, patch).await.map_err(to_napi)?)
    }

    #[napi]
    pub async fn delete_webhook_endpoint(&self, id: String, etag_text: String) -> napi::Result<()> {
        self.inner.delete_webhook_endpoint(&id, &etag(&etag_text)?).await.map_err(to_napi)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn rotate_webhook_secret(&self, id: String, options: Option<PostOptions>) -> napi::Result<String> {
        versioned_text(with_key(self.inner.rotate_webhook_secret(&id), &options).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn test_webhook_endpoint(&self, id: String, options: Option<PostOptions>) -> napi::Result<String> {
        to_text(&with_key(self.inner.test_webhook_endpoint(&id), &options).await.map_err(to_napi)?)
    }

    /// Re-queues the endpoint's dead deliveries (`{ status: 'dead', since?, until? }`).
    #[napi(ts_return_type = "Promise<string>")]
    pub async fn replay_webhook_endpoint(&self, id: String, replay: Option<Value>, options: Option<PostOptions>) -> napi::Result<String> {
        let replay: types::ReplayDeliveries = from_js(replay.unwrap_or_else(|| json!({ "status": "dead" })), "replay")?;
        to_text(&with_key(self.inner.replay_webhook_endpoint(&id, replay), &options).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn list_webhook_endpoints(&self, query: Option<Value>) -> napi::Result<String> {
        let q = Query::new(query)?;
        let query = twh::WebhookEndpointQuery { limit: q.parse("limit")?, cursor: q.parse("cursor")? };
        q.finish()?;
        page_text(self.inner.list_webhook_endpoints(&query).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn get_webhook_delivery(&self, id: String) -> napi::Result<String> {
        to_text(&self.inner.get_webhook_delivery(&id).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn replay_webhook_delivery(&self, id: String, options: Option<PostOptions>) -> napi::Result<String> {
        to_text(&with_key(self.inner.replay_webhook_delivery(&id), &options).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn list_webhook_deliveries(&self, query: Option<Value>) -> napi::Result<String> {
        let q = Query::new(query)?;
        let query = twh::WebhookDeliveryQuery {
            endpoint_id: q.parse("endpointId")?,
            event_id: q.parse("eventId")?,
            status: q.parse("status")?,
            limit: q.parse("limit")?,
            cursor: q.parse("cursor")?,
        };
        q.finish()?;
        page_text(self.inner.list_webhook_deliveries(&query).await.map_err(to_napi)?)
    }

    // Billing -------------------------------------------------------------------------------------

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn list_plans(&self) -> napi::Result<String> {
        to_text(&self.inner.list_plans().await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn get_subscription(&self) -> napi::Result<String> {
        to_text(&self.inner.get_subscription().await.map_err(to_napi)?)
    }

    /// Changes the plan (`'free'` or `'pro'`); its quotas apply at once.
    #[napi(ts_return_type = "Promise<string>")]
    pub async fn update_subscription(&self, plan: String, options: Option<PostOptions>) -> napi::Result<String> {
        let plan: types::Plan = from_js(Value::String(plan), "plan")?;
        to_text(&with_key(self.inner.update_subscription(plan), &options).await.map_err(to_napi)?)
    }

    /// Usage of a period (`{ period?: 'current' | 'YYYY-MM' }`).
    #[napi(ts_return_type = "Promise<string>")]
    pub async fn get_usage(&self, query: Option<Value>) -> napi::Result<String> {
        let period = period_of(query)?;
        to_text(&self.inner.get_usage(period.as_deref()).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn export_usage(&self, query: Option<Value>) -> napi::Result<String> {
        let period = period_of(query)?;
        to_text(&self.inner.export_usage(period.as_deref()).await.map_err(to_napi)?)
    }

    #[napi]
    pub async fn export_usage_csv(&self, query: Option<Value>) -> napi::Result<String> {
        let period = period_of(query)?;
        self.inner.export_usage_csv(period.as_deref()).await.map_err(to_napi)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn list_invoices(&self, query: Option<Value>) -> napi::Result<String> {
        let q = Query::new(query)?;
        let query = twh::InvoiceQuery { limit: q.parse("limit")?, cursor: q.parse("cursor")? };
        q.finish()?;
        page_text(self.inner.list_invoices(&query).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn get_invoice(&self, id: String) -> napi::Result<String> {
        to_text(&self.inner.get_invoice(&id).await.map_err(to_napi)?)
    }

    #[napi]
    pub async fn get_invoice_csv(&self, id: String) -> napi::Result<String> {
        self.inner.get_invoice_csv(&id).await.map_err(to_napi)
    }

    // Reconciliations and jobs ------------------------------------------------------------------

    /// Recomputes every level (of one location, `{ locationId }`) from the ledger and compares.
    #[napi(ts_return_type = "Promise<string>")]
    pub async fn create_reconciliation(&self, reconciliation: Option<Value>, options: Option<PostOptions>) -> napi::Result<String> {
        let body: types::CreateReconciliation = from_js(reconciliation.unwrap_or_else(|| json!({})), "reconciliation")?;
        to_text(&with_key(self.inner.create_reconciliation(body), &options).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn get_reconciliation(&self, id: String) -> napi::Result<String> {
        to_text(&self.inner.get_reconciliation(&id).await.map_err(to_napi)?)
    }

    #[napi]
    pub async fn get_reconciliation_csv(&self, id: String) -> napi::Result<String> {
        self.inner.get_reconciliation_csv(&id).await.map_err(to_napi)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn list_reconciliations(&self, query: Option<Value>) -> napi::Result<String> {
        let q = Query::new(query)?;
        let query = twh::ReconciliationQuery { limit: q.parse("limit")?, cursor: q.parse("cursor")? };
        q.finish()?;
        page_text(self.inner.list_reconciliations(&query).await.map_err(to_napi)?)
    }

    /// Starts a background job (`{ type: 'import_movements', format: 'csv', data }`).
    #[napi(ts_return_type = "Promise<string>")]
    pub async fn create_job(&self, job: Value, options: Option<PostOptions>) -> napi::Result<String> {
        let job: types::CreateJob = from_js(job, "job")?;
        to_text(&with_key(self.inner.create_job(job), &options).await.map_err(to_napi)?)
    }

    /// Imports movements from CSV in the background (header
    /// `type,item_id,location_id,from_location_id,to_location_id,quantity,reference,reason`).
    #[napi(ts_return_type = "Promise<string>")]
    pub async fn import_movements_csv(&self, csv: String, options: Option<PostOptions>) -> napi::Result<String> {
        to_text(&with_key(self.inner.import_movements_csv(&csv), &options).await.map_err(to_napi)?)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn get_job(&self, id: String) -> napi::Result<String> {
        to_text(&self.inner.get_job(&id).await.map_err(to_napi)?)
    }
}

// ---------------------------------------------------------------------------------------------
// Emulator

/// Settings of the in-process emulator (each as `twh-emulator serve` has it; unset: its default).
#[napi(object)]
#[derive(Default)]
pub struct EmulatorOptions {
    /// Port on 127.0.0.1 (default: any free port).
    pub port: Option<u32>,
    /// Sustained requests per second per API key (0 turns the rate limit off; default 1000).
    pub rate_limit_per_second: Option<u32>,
    /// Token-bucket size per API key (default 2000).
    pub rate_limit_burst: Option<u32>,
    /// Default webhook retry delays, in seconds (default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h).
    pub webhook_retry_schedule_seconds: Option<Vec<u32>>,
    /// Timeout of one webhook attempt, in milliseconds (default 15 000).
    pub webhook_timeout_ms: Option<u32>,
    /// How long a rolled secret key keeps working, in seconds of emulator time (default 86 400).
    pub key_grace_seconds: Option<u32>,
    /// How long idempotency records live, in seconds of emulator time (default 86 400).
    pub idempotency_ttl_seconds: Option<u32>,
    /// Hard monthly quotas of the `free` plan (default 100 000 / 20 000 / 20 000).
    pub free_quotas: Option<QuotaOptions>,
    /// Keep the state in this directory (SQLite) and recover it on the next start; every
    /// acknowledged write is on disk before its answer. Default: in memory only.
    pub data_dir: Option<String>,
}

/// Quotas per meter.
#[napi(object)]
#[derive(Default)]
pub struct QuotaOptions {
    pub api_requests: Option<u32>,
    pub ledger_lines: Option<u32>,
    pub webhook_attempts: Option<u32>,
}

fn emulator_config(options: EmulatorOptions) -> napi::Result<twh::emulator::Config> {
    let mut config = twh::emulator::Config::default();
    if let Some(port) = options.port {
        config.port = u16::try_from(port).map_err(|_| invalid(format!("port {port} is not a TCP port")))?;
    }
    if let Some(n) = options.rate_limit_per_second {
        config.http.rate_limit_per_second = u64::from(n);
    }
    if let Some(n) = options.rate_limit_burst {
        config.http.rate_limit_burst = u64::from(n);
    }
    if let Some(schedule) = options.webhook_retry_schedule_seconds {
        config.webhooks.retry_schedule_seconds = schedule.into_iter().map(u64::from).collect();
    }
    if let Some(ms) = options.webhook_timeout_ms {
        if ms == 0 {
            return Err(invalid("webhookTimeoutMs must be more than 0"));
        }
        config.webhooks.timeout = Duration::from_millis(u64::from(ms));
    }
    if let Some(s) = options.key_grace_seconds {
        config.settings.key_grace_seconds = i64::from(s);
    }
    if let Some(s) = options.idempotency_ttl_seconds {
        config.settings.idempotency_ttl_seconds = i64::from(s);
    }
    if let Some(dir) = options.data_dir {
        if dir.is_empty() {
            return Err(invalid("dataDir must not be empty"));
        }
        config.data_dir = Some(dir.into());
    }
    if let Some(q) = options.free_quotas {
        let quotas = &mut config.settings.plans.free.quotas;
        if let Some(n) = q.api_requests {
            quotas.api_requests = u64::from(n);
        }
        if let Some(n) = q.ledger_lines {
            quotas.ledger_lines = u64::from(n);
        }
        if let Some(n) = q.webhook_attempts {
            quotas.webhook_attempts = u64::from(n);
        }
    }
    Ok(config)
}

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
    /// Binds a port on 127.0.0.1 (a free one unless `port` is given) and starts serving.
    #[napi]
    pub async fn start(options: Option<EmulatorOptions>) -> napi::Result<NativeEmulator> {
        let config = emulator_config(options.unwrap_or_default())?;
        let emu = twh::emulator::Emulator::start(config).await.map_err(to_napi)?;
        let base_url = emu.base_url();
        Ok(NativeEmulator { inner: Arc::new(Mutex::new(Some(Arc::new(emu)))), base_url })
    }

    #[napi(getter)]
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Creates a sandbox in-process (`{ name?, seed?, plan? }`) and returns its details with both
    /// keys; `lib/emulator.js` makes the client.
    #[napi(ts_return_type = "any")]
    pub fn create_sandbox(&self, request: Option<Value>) -> napi::Result<Value> {
        let request: types::CreateSandbox = from_js(request.unwrap_or_else(|| json!({})), "sandbox")?;
        let (_, created) = self.running()?.create_sandbox_with(&request).map_err(to_napi)?;
        to_js(&created)
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

/// Signs a delivery as TWH does (for tests of a webhook handler): one `v1,` signature per
/// secret, as during a rotation. Returns the three headers.
#[napi(ts_return_type = "{ 'webhook-id': string; 'webhook-timestamp': string; 'webhook-signature': string }")]
pub fn webhooks_sign(
    secrets: Vec<String>,
    id: String,
    timestamp_unix_seconds: i64,
    payload: Either<String, Buffer>,
) -> napi::Result<Value> {
    if secrets.is_empty() {
        return Err(invalid("webhooks.sign needs at least one secret"));
    }
    let secrets = secrets
        .iter()
        .map(|s| twh::webhooks::Secret::parse(s).map_err(|e| to_napi(twh::Error::WebhookVerification(e))))
        .collect::<napi::Result<Vec<_>>>()?;
    let refs: Vec<&twh::webhooks::Secret> = secrets.iter().collect();
    let bytes: Vec<u8> = match payload {
        Either::A(text) => text.into_bytes(),
        Either::B(buffer) => buffer.to_vec(),
    };
    let signed = twh::webhooks::sign_with(&refs, &id, timestamp_unix_seconds, &bytes);
    Ok(json!({
        twh::webhooks::ID_HEADER: signed.id,
        twh::webhooks::TIMESTAMP_HEADER: signed.timestamp,
        twh::webhooks::SIGNATURE_HEADER: signed.signature,
    }))
}

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
