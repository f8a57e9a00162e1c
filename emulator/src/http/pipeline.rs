//! How a write runs: the idempotency check, the change, its record, and the store commit, all in
//! one critical section of the tenant (docs/guide/idempotency-and-concurrency.md).
//!
//! 1. Under the tenant lock, look the key up: a finished record is replayed (byte-identical
//!    body, `Idempotent-Replayed: true`); a different fingerprint is 422; a running one is 409
//!    `idempotency_key_in_use` with `Retry-After: 1`.
//! 2. Still under the lock, run the change, then write its record and hand the commit to the
//!    store before the lock is released. 4xx outcomes decided by state are recorded like successes;
//!    a 5xx before commit records nothing, so a retry runs again.
//! 3. Metering is part of the same critical section: a plan with a hard `ledger_lines` quota
//!    gives the change a line budget (a write over it fails whole with 429 `quota_exceeded`,
//!    `Retry-After` = seconds to the period's end, and the period's one `usage.quota_exceeded`
//!    event), and the lines written are added to the request's usage row before the commit.
//!    A `quota_exceeded` answer is not stored under the key, like a 5xx: it is transient, and
//!    the same request must go through once the plan is upgraded or the period ends.
//!
//! A request only holds a key "in progress" across an await when a `delay` fault is injected:
//! then the key is reserved first, the lock released during the delay, and a guard releases the
//! reservation if the request is dropped.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::AppState;
use super::error::{ApiError, with_request_id};
use super::extract::{Auth, IdempotencyKey};
use crate::clock::Timestamp;
use crate::domain::billing::{Meter, seconds_until};
use crate::domain::idempotency::{Digest128, Lookup, Outcome, Record, StoredResponse};
use crate::domain::model::MovementBatch;
use crate::domain::registry::{Commit, Tenant, TenantState, World};

/// Extension set by the fault layer: wait this long after reserving the key, before running.
#[derive(Clone, Copy, Debug)]
pub struct FaultDelay(pub Duration);

/// A successful write's response, to store and send.
pub fn stored_json<T: Serialize>(
    status: StatusCode,
    value: &T,
    etag: Option<u64>,
    location: Option<String>,
) -> Outcome {
    Outcome::Response(Box::new(StoredResponse {
        status: status.as_u16(),
        body: serde_json::to_string(value).unwrap_or_default(),
        etag,
        location,
        problem: false,
    }))
}

fn stored_problem(e: &ApiError) -> StoredResponse {
    StoredResponse { status: e.status.as_u16(), body: e.body(), etag: e.current_version, location: None, problem: true }
}

/// Renders an outcome from the tenant state (movements are rendered again on replay).
pub fn render(state: &TenantState, outcome: &Outcome, replayed: bool) -> Response {
    let ledger = &state.ledger;
    let stored = match outcome {
        Outcome::Movement(seq) => StoredResponse {
            status: 201,
            body: ledger.movement_json(*seq),
            etag: Some(ledger.movement_etag(*seq)),
            location: Some(["/v1/stock-movements/", &ledger.movement_id(*seq)].concat()),
            problem: false,
        },
        Outcome::Batch { first, count } => {
            let data = (*first..*first + u64::from(*count)).map(|s| ledger.movement(s)).collect();
            StoredResponse {
                status: 201,
                body: serde_json::to_string(&MovementBatch { data }).unwrap_or_default(),
                etag: None,
                location: None,
                problem: false,
            }
        }
        Outcome::Response(s) => (**s).clone(),
        Outcome::InProgress => return in_use().into_response(),
    };
    respond(stored, replayed)
}

fn respond(s: StoredResponse, replayed: bool) -> Response {
    let mut r = Response::new(Body::from(s.body));
    *r.status_mut() = StatusCode::from_u16(s.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    let ct = if s.problem { "application/problem+json" } else { "application/json" };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    if let Some(v) = s.etag {
        let mut quoted = Vec::with_capacity(22);
        quoted.push(b'"');
        let _ = serde_json::to_writer(&mut quoted, &v);
        quoted.push(b'"');
        if let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(quoted)) {
            h.insert(header::ETAG, v);
        }
    }
    // From the String's own buffer, where `from_str` would copy it.
    if let Some(v) = s.location.and_then(|l| HeaderValue::from_maybe_shared(bytes::Bytes::from(l)).ok()) {
        h.insert(header::LOCATION, v);
    }
    if replayed {
        h.insert(super::names::IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    r
}

fn in_use() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_key_in_use",
        "A request with this Idempotency-Key is still running; retry shortly.",
    )
    .with_header(header::RETRY_AFTER, "1")
}

fn reused() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "This Idempotency-Key was used with a different request (method, path or body).",
    )
}

/// Releases a reservation if the request never reaches its commit.
struct Reservation<'a> {
    tenant: &'a Tenant,
    key: Digest128,
    armed: bool,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.tenant.state.lock().ledger.idempotency.release(self.key);
        }
    }
}

/// Replays, refuses, or lets the request go on; call under the tenant lock.
fn check(state: &TenantState, key: Digest128, fingerprint: Digest128, now: Timestamp) -> Result<(), Response> {
    match state.ledger.idempotency.lookup(key, fingerprint, now) {
        Lookup::Replay(outcome) => Err(render(state, &outcome, true)),
        Lookup::Mismatch => Err(reused().into_response()),
        Lookup::InUse => Err(in_use().into_response()),
        Lookup::Fresh => Ok(()),
    }
}

/// Checks the key and reserves it for a request that will wait before running.
fn reserve<'a>(
    world: &World,
    tenant: &'a Tenant,
    key: Option<IdempotencyKey>,
    fingerprint: Digest128,
) -> Result<Option<Reservation<'a>>, Response> {
    let Some(IdempotencyKey(k)) = key else { return Ok(None) };
    let mut state = tenant.state.lock();
    let now = tenant.now(&world.clock);
    check(&state, k, fingerprint, now)?;
    let expires_at = now.plus_seconds(world.settings.idempotency_ttl_seconds);
    state.ledger.idempotency.put(k, Record { fingerprint, expires_at, outcome: Outcome::InProgress });
    Ok(Some(Reservation { tenant, key: k, armed: true }))
}

/// Runs a write on a tenant with idempotency (see the module docs).
pub async fn write<F>(
    app: &AppState,
    auth: &Auth,
    key: Option<IdempotencyKey>,
    fingerprint: Digest128,
    delay: Option<FaultDelay>,
    change: F,
) -> Response
where
    F: FnOnce(&mut TenantState, Timestamp) -> Result<Outcome, ApiError>,
{
    let world = &*app.world;
    let tenant = &auth.tenant;
    let ttl = world.settings.idempotency_ttl_seconds;
    let mut reservation = None;
    if let Some(FaultDelay(d)) = delay {
        reservation = match reserve(world, tenant, key, fingerprint) {
            Ok(r) => r,
            Err(response) => return response,
        };
        // Boxed: a timer in every write's future would make all of them larger.
        Box::pin(tokio::time::sleep(d)).await;
    }

    let mut state = tenant.state.lock();
    let now = tenant.now(&world.clock);
    if let (Some(IdempotencyKey(k)), None) = (key, &reservation) {
        if let Err(response) = check(&state, k, fingerprint, now) {
            return response;
        }
    }
    let movements_before = state.ledger.movement_count();
    let events_before = state.ledger.event_count();
    let plan = world.settings.plans.get(state.sandbox.plan);
    let budget = plan.hard_quota(Meter::LedgerLines).map(|q| state.usage.remaining(now, Meter::LedgerLines, q));
    state.ledger.set_line_budget(budget);
    let result = change(&mut state, now);
    state.ledger.set_line_budget(None);
    let lines = state.ledger.lines_since(movements_before);
    app.metrics.ledger_lines.inc_by(lines);
    let mut row = auth.row;
    with_request_id(|id| state.usage.add_lines(&mut row, now, id, lines));
    let (outcome, record) = match result {
        Ok(outcome) => (Ok(outcome.clone()), Some(outcome)),
        Err(e) if e.code == "quota_exceeded" => {
            app.metrics.quota_exceeded("ledger_lines");
            state.quota_exceeded(Meter::LedgerLines, &world.settings.plans, now);
            let retry = seconds_until(state.usage.period_end(now), now);
            (Err(e.with_header(header::RETRY_AFTER, &retry.to_string())), None)
        }
        Err(e) if e.status.is_client_error() => {
            let stored = Outcome::Response(Box::new(stored_problem(&e)));
            (Err(e), Some(stored))
        }
        Err(e) => (Err(e), None),
    };
    if let (Some(IdempotencyKey(k)), Some(record)) = (key, record) {
        state.ledger.idempotency.put(k, Record { fingerprint, expires_at: now.plus_seconds(ttl), outcome: record });
    }
    if let Some(r) = reservation.as_mut() {
        // Committed or released in this critical section: the guard has nothing left to do.
        r.armed = false;
        if let Some(IdempotencyKey(k)) = key {
            state.ledger.idempotency.release(k);
        }
    }
    // The events this change wrote become webhook deliveries in the same critical section.
    let waiting_before = state.webhooks.waiting();
    {
        let state = &mut *state;
        state.webhooks.fan_out(&state.ledger, events_before, None, now);
    }
    let deliveries_created = state.webhooks.waiting() > waiting_before;
    let idempotency_key = key.map(|IdempotencyKey(k)| k);
    let commit = Commit { tenant_id: &tenant.id, state: &mut state, idempotency_key, now };
    if let Err(e) = world.store.commit(commit) {
        return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage_failed", e.to_string()).into_response();
    }
    let response = match outcome {
        Ok(outcome) => render(&state, &outcome, false),
        Err(e) => e.into_response(),
    };
    drop(state);
    if deliveries_created {
        app.dispatcher.wake();
    }
    response
}

/// Runs a write outside any tenant (`POST /v1/sandboxes`) with the global idempotency records.
pub fn write_global<F>(world: &World, key: Option<IdempotencyKey>, fingerprint: Digest128, change: F) -> Response
where
    F: FnOnce() -> Result<Outcome, ApiError>,
{
    let mut store = world.global_idempotency.lock();
    let now = world.clock.now();
    if let Some(IdempotencyKey(k)) = key {
        match store.lookup(k, fingerprint, now) {
            Lookup::Replay(Outcome::Response(s)) => return respond(*s, true),
            Lookup::Replay(_) | Lookup::InUse => return in_use().into_response(),
            Lookup::Mismatch => return reused().into_response(),
            Lookup::Fresh => {}
        }
    }
    let outcome = match change() {
        Ok(Outcome::Response(s)) => *s,
        Ok(_) => {
            return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "unexpected outcome").into_response();
        }
        Err(e) if e.status.is_client_error() => stored_problem(&e),
        Err(e) => return e.into_response(),
    };
    if let Some(IdempotencyKey(k)) = key {
        let expires_at = now.plus_seconds(world.settings.idempotency_ttl_seconds);
        let record = Record { fingerprint, expires_at, outcome: Outcome::Response(Box::new(outcome.clone())) };
        world.store.global_record(k, &record);
        store.put(k, record);
    }
    respond(outcome, false)
}

/// With a durable store (`--data-dir`), every response waits until everything committed before
/// it was sent is on disk: its own change, and any change it could have read (a replayed record,
/// a level another request just moved). Writes from concurrent requests share one disk commit
/// (group commit, see [`crate::store`]). If the store failed, the answer is 503
/// `storage_failed` instead, whatever the handler said.
pub async fn durable_barrier(
    app: std::sync::Arc<AppState>,
    req: axum::extract::Request,
    next: super::Next,
) -> Response {
    let response = super::steps(app.clone(), req, next).await;
    let store = &app.world.store;
    match store.wait(store.ticket()).await {
        Ok(()) => response,
        Err(e) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_failed",
            format!("The emulator could not write its data dir: {e}. Restart it; it recovers what it acknowledged."),
        )
        .into_response(),
    }
}
