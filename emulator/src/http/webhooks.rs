//! Handlers of webhook endpoints and deliveries (`/v1/webhook-*`) and of the built-in sink
//! (`/_emulator/sink/{name}`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{Admin, Auth, Json, NoFields, OptionalKey, Query, RequiredIfMatch};
use super::pipeline::{self, FaultDelay, stored_json};
use super::respond::{ok_json, page};
use crate::clock::Timestamp;
use crate::domain::ledger::EventType;
use crate::domain::webhooks::*;

type St = State<Arc<AppState>>;
type Delay = Option<Extension<FaultDelay>>;

/// A page of webhook endpoints.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct WebhookEndpointList {
    /// This page, in creation order.
    pub data: Vec<WebhookEndpoint>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A page of webhook deliveries.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct WebhookDeliveryList {
    /// This page, in creation order.
    pub data: Vec<WebhookDelivery>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `POST /v1/webhook-endpoints`
pub async fn create_endpoint(
    State(s): St,
    auth: Auth,
    OptionalKey(key): OptionalKey,
    d: Delay,
    body: Json<CreateWebhookEndpoint>,
) -> Response {
    pipeline::write(&s, &auth, key, body.fingerprint, d.map(|Extension(d)| d), |st, now| {
        let secret = crate::domain::webhooks::new_secret(&s.world.ids);
        let e = st.webhooks.create_endpoint_with(&st.ledger.tag, body.value, secret, now)?;
        let location = format!("/v1/webhook-endpoints/{}", e.id);
        Ok(stored_json(StatusCode::CREATED, &e, Some(e.version), Some(location)))
    })
    .await
}

/// `GET /v1/webhook-endpoints`
pub async fn list_endpoints(auth: Auth, mut q: Query) -> ApiResult {
    let st = auth.tenant.state.lock();
    let window = q.window("we", &st.ledger.tag)?;
    q.finish()?;
    let p = st.webhooks.endpoints(&st.ledger.tag, window);
    Ok(axum::Json(page(p, "we", &st.ledger.tag, |data, next_cursor| WebhookEndpointList { data, next_cursor }))
        .into_response())
}

/// `GET /v1/webhook-endpoints/{id}`
pub async fn get_endpoint(auth: Auth, Path(id): Path<String>, headers: HeaderMap, q: Query) -> ApiResult {
    q.finish()?;
    let st = auth.tenant.state.lock();
    let e = st.webhooks.endpoint(&st.ledger.tag, &id)?;
    Ok(ok_json(&headers, &e, Some(e.version)))
}

/// `GET /v1/webhook-endpoints/{id}/secret`: the signing secret, to secret keys only (a
/// restricted key may read endpoints but not forge their deliveries).
pub async fn get_endpoint_secret(auth: Auth, Path(id): Path<String>, q: Query) -> ApiResult {
    q.finish()?;
    auth.require_secret_key()?;
    let st = auth.tenant.state.lock();
    Ok(axum::Json(st.webhooks.endpoint_secret(&st.ledger.tag, &id)?).into_response())
}

/// `PATCH /v1/webhook-endpoints/{id}`
pub async fn update_endpoint(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
    RequiredIfMatch(m): RequiredIfMatch,
    body: Json<UpdateWebhookEndpoint>,
) -> Response {
    pipeline::write(&s, &auth, None, 0, None, |st, now| {
        let e = st.webhooks.update_endpoint(&st.ledger.tag, &id, body.value, &m, now)?;
        Ok(stored_json(StatusCode::OK, &e, Some(e.version), None))
    })
    .await
}

/// `DELETE /v1/webhook-endpoints/{id}`: its pending deliveries stop.
pub async fn delete_endpoint(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
    RequiredIfMatch(m): RequiredIfMatch,
) -> Response {
    pipeline::write(&s, &auth, None, 0, None, |st, _| {
        st.webhooks.delete_endpoint(&st.ledger.tag, &id, &m)?;
        Ok(crate::domain::idempotency::Outcome::Response(Box::new(crate::domain::idempotency::StoredResponse {
            status: 204,
            body: String::new(),
            etag: None,
            location: None,
            problem: false,
        })))
    })
    .await
}

/// `POST /v1/webhook-endpoints/{id}/rotate-secret`
pub async fn rotate_secret(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
    OptionalKey(key): OptionalKey,
    d: Delay,
    body: Json<NoFields>,
) -> ApiResult {
    Ok(pipeline::write(&s, &auth, key, body.fingerprint, d.map(|Extension(d)| d), |st, now| {
        let secret = crate::domain::webhooks::new_secret(&s.world.ids);
        let e = st.webhooks.rotate_secret_to(&st.ledger.tag, &id, secret, now)?;
        Ok(stored_json(StatusCode::OK, &e, Some(e.version), None))
    })
    .await)
}

/// `POST /v1/webhook-endpoints/{id}/test`: sends a `ping` event to this endpoint only.
pub async fn test_endpoint(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
    OptionalKey(key): OptionalKey,
    d: Delay,
    body: Json<NoFields>,
) -> ApiResult {
    Ok(pipeline::write(&s, &auth, key, body.fingerprint, d.map(|Extension(d)| d), |st, now| {
        let target = st.webhooks.ping_target(&st.ledger.tag, &id)?;
        let before = st.ledger.event_count();
        st.ledger.emit_snapshot(EventType::Ping, serde_json::json!({"endpoint_id": id}), now);
        st.webhooks.fan_out(&st.ledger, before, Some(target), now);
        let ping = st.webhooks.latest(&st.ledger).filter(|d| d.event_type == "ping" && d.endpoint_id == id);
        let ping = ping
            .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "The ping was not queued."))?;
        Ok(stored_json(StatusCode::ACCEPTED, &ping, None, None))
    })
    .await)
}

/// `POST /v1/webhook-endpoints/{id}/replay`
pub async fn replay_endpoint(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
    OptionalKey(key): OptionalKey,
    d: Delay,
    body: Json<ReplayDeliveries>,
) -> Response {
    pipeline::write(&s, &auth, key, body.fingerprint, d.map(|Extension(d)| d), |st, now| {
        let count = st.webhooks.replay_endpoint(&st.ledger.tag, &id, &body.value, now)?;
        Ok(stored_json(StatusCode::ACCEPTED, &ReplayCount { count }, None, None))
    })
    .await
}

/// `GET /v1/webhook-deliveries`
pub async fn list_deliveries(auth: Auth, mut q: Query) -> ApiResult {
    let st = auth.tenant.state.lock();
    let endpoint = q.text("endpoint_id");
    let event = q.text("event_id");
    let status = q.enumeration("status");
    let window = q.window("msg", &st.ledger.tag)?;
    q.finish()?;
    let p = st.webhooks.deliveries(&st.ledger, endpoint.as_deref(), event.as_deref(), status, window);
    Ok(axum::Json(page(p, "msg", &st.ledger.tag, |data, next_cursor| WebhookDeliveryList { data, next_cursor }))
        .into_response())
}

/// `GET /v1/webhook-deliveries/{id}`
pub async fn get_delivery(auth: Auth, Path(id): Path<String>, q: Query) -> ApiResult {
    q.finish()?;
    let st = auth.tenant.state.lock();
    Ok(axum::Json(st.webhooks.delivery(&st.ledger, &id)?).into_response())
}

/// `POST /v1/webhook-deliveries/{id}/replay`: sends again now.
pub async fn replay_delivery(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
    OptionalKey(key): OptionalKey,
    d: Delay,
    body: Json<NoFields>,
) -> ApiResult {
    Ok(pipeline::write(&s, &auth, key, body.fingerprint, d.map(|Extension(d)| d), |st, now| {
        let delivery = st.webhooks.replay(&st.ledger, &id, now)?;
        Ok(stored_json(StatusCode::ACCEPTED, &delivery, None, None))
    })
    .await)
}

// ---- the sink ---------------------------------------------------------------------------------

/// Most sinks kept.
pub const SINK_COUNT_MAX: usize = 256;
/// Most requests one sink keeps (the oldest are dropped).
pub const SINK_LEN_MAX: usize = 1000;
/// Longest sink name, in bytes.
pub const SINK_NAME_LEN_MAX: usize = 64;
/// Largest request one sink entry keeps (headers and body), in bytes; larger ones are 413.
pub const SINK_ENTRY_BYTES_MAX: usize = 1 << 20;
/// Most bytes all sinks keep together: past it a sink drops its own oldest entries, and a
/// request that still does not fit (the others hold the room) is 507 `sink_full`.
pub const SINK_BYTES_MAX: usize = 64 << 20;

/// A request the sink received.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct SinkEntry {
    /// When (wall clock).
    pub received_at: Timestamp,
    /// Its headers (lower-case names).
    pub headers: std::collections::BTreeMap<String, String>,
    /// Its body, as text.
    pub body: String,
}

/// What a sink received, oldest first.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct SinkList {
    /// The requests.
    pub data: Vec<SinkEntry>,
}

/// The sinks, and the bytes they hold together.
#[derive(Debug, Default)]
pub struct Sinks(Mutex<SinkStore>);

/// What [`Sinks`] guards.
#[derive(Debug, Default)]
pub struct SinkStore {
    by_name: HashMap<String, VecDeque<SinkEntry>>,
    bytes: usize,
}

fn entry_bytes(e: &SinkEntry) -> usize {
    e.body.len() + e.headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
}

fn sink_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= SINK_NAME_LEN_MAX
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok { Ok(()) } else { Err(ApiError::field("name", format!("must be 1..={SINK_NAME_LEN_MAX} of [A-Za-z0-9._-]"))) }
}

/// `POST /_emulator/sink/{name}`: accepts anything, answers 204.
pub async fn sink_receive(
    State(s): St,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    sink_name(&name)?;
    let entry = SinkEntry {
        received_at: Timestamp(chrono::Utc::now().timestamp_micros()),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let size = entry_bytes(&entry);
    if size > SINK_ENTRY_BYTES_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("A sink keeps requests of at most {SINK_ENTRY_BYTES_MAX} bytes."),
        ));
    }
    let mut sinks = s.sinks.0.lock();
    let store = &mut *sinks;
    if !store.by_name.contains_key(&name) && store.by_name.len() >= SINK_COUNT_MAX {
        return Err(ApiError::field("name", format!("at most {SINK_COUNT_MAX} sinks; DELETE some")));
    }
    let queue = store.by_name.entry(name).or_default();
    while queue.len() >= SINK_LEN_MAX || (store.bytes + size > SINK_BYTES_MAX && !queue.is_empty()) {
        let Some(old) = queue.pop_front() else { break };
        store.bytes -= entry_bytes(&old);
    }
    if store.bytes + size > SINK_BYTES_MAX {
        return Err(ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "sink_full",
            format!("The sinks hold {SINK_BYTES_MAX} bytes together; DELETE some."),
        ));
    }
    store.bytes += size;
    queue.push_back(entry);
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /_emulator/sink/{name}`
pub async fn sink_list(State(s): St, _: Admin, Path(name): Path<String>) -> ApiResult<axum::Json<SinkList>> {
    sink_name(&name)?;
    let data = s.sinks.0.lock().by_name.get(&name).map(|q| q.iter().cloned().collect()).unwrap_or_default();
    Ok(axum::Json(SinkList { data }))
}

/// `DELETE /_emulator/sink/{name}`
pub async fn sink_clear(State(s): St, _: Admin, Path(name): Path<String>) -> ApiResult<StatusCode> {
    sink_name(&name)?;
    let mut sinks = s.sinks.0.lock();
    if let Some(queue) = sinks.by_name.remove(&name) {
        sinks.bytes -= queue.iter().map(entry_bytes).sum::<usize>();
    }
    Ok(StatusCode::NO_CONTENT)
}
